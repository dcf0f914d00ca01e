//! TLS load client for `benches/tls.sh` (rustls, ring provider), kept in the
//! main crate as an example so that it reuses the already built rustls.
//!
//! ```text
//! handshake rate ADDR SNI THREADS SECS full|resume
//!     each thread loops connect + handshake + one GET (Connection: close) +
//!     read to close; prints `handshakes=N full=F resumed=R errors=E secs=S rate=X`
//! handshake idle ADDR SNI CONNS UNTIL_FILE
//!     opens CONNS keep-alive connections, one GET each, keeps them open,
//!     prints `READY opened=N errors=E`, then waits (at most 120 s) until
//!     UNTIL_FILE exists
//! ```
//!
//! The server certificate is not verified (signatures are not checked
//! either): the subject is the server's handshake cost, and the two cores
//! are shared with the server under test, so the client does as little as a
//! TLS client can.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme,
};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn config(resume: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.resumption = if resume {
        Resumption::in_memory_sessions(1024)
    } else {
        Resumption::disabled()
    };
    Arc::new(cfg)
}

fn connect(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    sni: &ServerName<'static>,
) -> io::Result<(ClientConnection, TcpStream)> {
    let mut conn = ClientConnection::new(cfg.clone(), sni.clone()).map_err(io::Error::other)?;
    let mut sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok((conn, sock))
}

/// Reads one response with a Content-Length body (or to the close).
fn read_response(
    stream: &mut rustls::Stream<'_, ClientConnection, TcpStream>,
    to_close: bool,
) -> io::Result<u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut tmp = [0u8; 4096];
    loop {
        let n = match stream.read(&mut tmp) {
            Ok(n) => n,
            Err(e) if to_close && e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&tmp[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = resp.parse(&buf) {
            let status = resp.code.unwrap_or(0);
            let len = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                });
            match len {
                Some(len) if !to_close && buf.len() >= head + len => return Ok(status),
                _ if n == 0 => return Ok(status),
                _ => {}
            }
        } else if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

fn rate(addr: SocketAddr, sni: ServerName<'static>, threads: usize, secs: u64, resume: bool) {
    let cfg = config(resume);
    let full = Arc::new(AtomicU64::new(0));
    let resumed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (cfg, sni) = (cfg.clone(), sni.clone());
            let (full, resumed, errors, stop) =
                (full.clone(), resumed.clone(), errors.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let one = || -> io::Result<HandshakeKind> {
                        let (mut conn, mut sock) = connect(addr, &cfg, &sni)?;
                        let kind = conn.handshake_kind().unwrap_or(HandshakeKind::Full);
                        let mut s = rustls::Stream::new(&mut conn, &mut sock);
                        s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
                        if read_response(&mut s, true)? != 200 {
                            return Err(io::Error::other("status is not 200"));
                        }
                        Ok(kind)
                    };
                    match one() {
                        Ok(HandshakeKind::Resumed) => resumed.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => full.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (f, r, e) = (
        full.load(Ordering::Relaxed),
        resumed.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    println!(
        "handshakes={} full={f} resumed={r} errors={e} secs={elapsed:.2} rate={:.1}",
        f + r,
        (f + r) as f64 / elapsed
    );
}

fn idle(addr: SocketAddr, sni: ServerName<'static>, conns: usize, until: &str) {
    let cfg = config(false);
    let mut open = Vec::with_capacity(conns);
    let mut errors = 0usize;
    for _ in 0..conns {
        let one = || -> io::Result<(ClientConnection, TcpStream)> {
            let (mut conn, mut sock) = connect(addr, &cfg, &sni)?;
            let mut s = rustls::Stream::new(&mut conn, &mut sock);
            s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")?;
            read_response(&mut s, false)?;
            Ok((conn, sock))
        };
        match one() {
            Ok(c) => open.push(c),
            Err(_) => errors += 1,
        }
    }
    println!("READY opened={} errors={errors}", open.len());
    let _ = io::stdout().flush();
    let end = Instant::now() + Duration::from_secs(120);
    while !std::path::Path::new(until).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(open);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: handshake rate ADDR SNI THREADS SECS full|resume | handshake idle ADDR SNI CONNS UNTIL_FILE";
    let (Some(mode), Some(addr), Some(sni)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR is ip:port");
    let sni = ServerName::try_from(sni.clone()).expect("SNI is a DNS name");
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{usage}"))
    };
    match mode.as_str() {
        "rate" => rate(
            addr,
            sni,
            num(3) as usize,
            num(4),
            args.get(5).map(String::as_str) == Some("resume"),
        ),
        "idle" => idle(addr, sni, num(3) as usize, args.get(4).expect(usage)),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

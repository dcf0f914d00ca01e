//! Black-box tests of TLS termination: the real binary on loopback, talked to
//! by a rustls client (ring provider), by `curl --cacert` and by raw bytes
//! (a TLS 1.1 ClientHello, a CBC-only one, garbage, half a handshake).
//!
//! Covers versions and suites, ALPN, SNI with exact, wildcard and default
//! certificates, every key form (PKCS#8, PKCS#1, SEC1) and a chain, session
//! resumption by tickets and by the session cache (also across a reload),
//! the handshake deadline, the redirect listener and security headers,
//! forwarding headers, the JSON access log and `torii -t` on bad files.

mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, ProtocolVersion,
    RootCertStore, SignatureScheme, StreamOwned, SupportedProtocolVersion,
};

use common::{Backend, Conf, HttpResponse, TempDir, Torii, parse_responses, run_torii};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn versions(v: &str) -> Vec<&'static SupportedProtocolVersion> {
    match v {
        "1.2" => vec![&rustls::version::TLS12],
        "1.3" => vec![&rustls::version::TLS13],
        _ => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    }
}

/// A client that trusts the certificates in `roots` (PEM files) and speaks
/// the TLS versions `v` ("1.2", "1.3" or "any").
fn client_config(roots: &[&str], v: &str) -> ClientConfig {
    let mut store = RootCertStore::empty();
    for r in roots {
        for c in pem_certs(&fixture(r)) {
            store.add(c).expect("add a root certificate");
        }
    }
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions(v))
        .expect("client protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg
}

/// Accepts any certificate (signatures are still checked) so that a test
/// can look at which certificate the server presented for any name.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn accept_any_config(v: &str) -> ClientConfig {
    let p = provider();
    let mut cfg = ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&versions(v))
        .expect("client protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(p)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg
}

type TlsConn = StreamOwned<ClientConnection, TcpStream>;

/// Connects and completes the handshake.
fn tls_connect(addr: SocketAddr, cfg: &Arc<ClientConfig>, sni: &str) -> io::Result<TlsConn> {
    let name = ServerName::try_from(sni.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let conn = ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Sends a `Connection: close` GET and reads the response to the close.
fn tls_get(s: &mut TlsConn, host: &str, target: &str) -> io::Result<HttpResponse> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    s.flush()?;
    let mut got = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    loop {
        match s.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&tmp[..n]),
            // A close without close_notify still ends a read-to-close body.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    parse_responses(&got).into_iter().next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no response in {:?}", String::from_utf8_lossy(&got)),
        )
    })
}

/// Handshake plus one GET; returns the response and the finished session.
fn fetch(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    sni: &str,
    target: &str,
) -> (HttpResponse, TlsConn) {
    let mut s = tls_connect(addr, cfg, sni)
        .unwrap_or_else(|e| panic!("TLS handshake with {addr} as {sni}: {e}"));
    let r = tls_get(&mut s, sni, target).unwrap_or_else(|e| panic!("GET {target} over TLS: {e}"));
    (r, s)
}

fn respond_route(body: &str) -> String {
    format!("path = \"/\"\nrespond = {{ status = 200, body = \"{body}\" }}")
}

fn tls_files(cert: &str, key: &str) -> String {
    format!("tls = {{ cert = \"{cert}\", key = \"{key}\" }}")
}

/// The JSON access log line whose uri is `uri`.
fn json_log_line(t: &Torii, uri: &str) -> String {
    let needle = format!("\"uri\":\"{uri}\"");
    t.wait_for_stdout_line(IO_TIMEOUT, |l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no access log line for {uri}; stdout:\n{}", t.stdout()))
}

#[test]
fn rustls_client_completes_tls13_and_tls12_with_chain_alpn_and_json_log() {
    let t = Conf::new()
        .global("access_log_format = \"json\"")
        .listener("https", &tls_files(&fx("chain.crt"), &fx("leaf.key")))
        .route(&respond_route("hello tls\\n"))
        .start();
    for (v, name, target) in [("1.3", "TLSv1.3", "/v13"), ("1.2", "TLSv1.2", "/v12")] {
        let cfg = Arc::new(client_config(&["ca.crt"], v));
        let (r, s) = fetch(t.addr(), &cfg, "localhost", target);
        assert_eq!(r.status, 200, "TLS {v}");
        assert_eq!(r.body_str(), "hello tls\n");
        let want = if v == "1.3" {
            ProtocolVersion::TLSv1_3
        } else {
            ProtocolVersion::TLSv1_2
        };
        assert_eq!(s.conn.protocol_version(), Some(want));
        assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        // Leaf then CA, as in the chain file: clients that only trust the CA
        // need the intermediate from the server.
        let presented = s.conn.peer_certificates().expect("peer certificates");
        assert_eq!(presented, pem_certs(&fixture("chain.crt")).as_slice());
        let suite = s
            .conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .expect("a named cipher suite");
        let line = json_log_line(&t, target);
        assert!(
            line.contains(&format!("\"tls_version\":\"{name}\"")),
            "{line}"
        );
        assert!(
            line.contains(&format!("\"tls_cipher\":\"{suite}\"")),
            "{line}"
        );
        assert!(
            suite.contains("GCM") || suite.contains("CHACHA20_POLY1305"),
            "AEAD suite expected, got {suite}"
        );
    }
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is required by tests/tls.rs (Debian package curl, see .ci/apt-core.txt)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_with_cacert_completes_tls12_and_tls13() {
    let t = Conf::new()
        .global("access_log_format = \"json\"")
        .listener("https", &tls_files(&fx("chain.crt"), &fx("leaf.key")))
        .route(&respond_route("hello curl\\n"))
        .start();
    let port = t.addr().port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let cacert = fx("ca.crt");
    for (flags, uri, name) in [
        (&["--tlsv1.3"][..], "/curl13", "TLSv1.3"),
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "/curl12", "TLSv1.2"),
    ] {
        let url = format!("https://localhost:{port}{uri}");
        let mut args = vec![
            "--cacert",
            &cacert,
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_code} %{http_version}",
        ];
        args.extend_from_slice(flags);
        args.push(&url);
        let (ok, stdout, stderr) = curl(&args);
        assert!(ok, "curl {flags:?} failed: {stderr}");
        // ALPN chose HTTP/1.1 although curl offers h2 first.
        assert_eq!(stdout, "hello curl\n\n200 1.1", "curl {flags:?}: {stderr}");
        let line = json_log_line(&t, uri);
        assert!(
            line.contains(&format!("\"tls_version\":\"{name}\"")),
            "{line}"
        );
    }
    // Without the CA, curl must refuse: the certificate is really checked.
    let url = format!("https://localhost:{port}/");
    let (ok, _, _) = curl(&["--resolve", &resolve, &url]);
    assert!(!ok, "curl accepted a certificate it does not trust");
}

/// A ClientHello record built by hand: `legacy_version`, `suites`, and the
/// extensions that version would send (no supported_versions, so the
/// server must decide from `legacy_version` alone).
fn raw_client_hello(legacy_version: u16, suites: &[u16], sig_algs: bool) -> Vec<u8> {
    let mut ext = Vec::new();
    // supported_groups: secp256r1, x25519.
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d]);
    // ec_point_formats: uncompressed.
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    if sig_algs {
        // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
        ext.extend_from_slice(&[
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
        ]);
    }
    let mut body = Vec::new();
    body.extend_from_slice(&legacy_version.to_be_bytes());
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&u16::try_from(suites.len() * 2).unwrap().to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    body.extend_from_slice(&u16::try_from(ext.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1u8];
    hs.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// Sends `bytes`, returns what came back and whether the server closed
/// within `deadline`.
fn exchange_raw(addr: SocketAddr, bytes: &[u8], deadline: Duration) -> (Vec<u8>, bool) {
    let mut c = common::Client::connect(addr);
    let _ = c.send(bytes);
    match c.wait_closed(deadline) {
        Ok(got) => (got, true),
        Err(_) => (Vec::new(), false),
    }
}

/// The first record of `got` is a fatal alert with description `desc`.
fn assert_fatal_alert(got: &[u8], desc: u8, what: &str) {
    assert!(
        got.len() >= 7 && got[0] == 0x15 && got[3..5] == [0, 2] && got[5] == 2,
        "{what}: expected a fatal alert record, got {got:02x?}"
    );
    assert_eq!(got[6], desc, "{what}: alert description in {got:02x?}");
}

#[test]
fn tls11_client_hello_is_refused_with_protocol_version_alert() {
    let t = Conf::new()
        .listener("https", &tls_files(&fx("ec.crt"), &fx("ec_pkcs8.key")))
        .route(&respond_route("x"))
        .start();
    // ECDHE-ECDSA-AES128-SHA, ECDHE-RSA-AES128-SHA, AES128-SHA: what a TLS
    // 1.1 client offers.
    // Without signature_algorithms (a TLS 1.2 extension a 1.1 client does
    // not send) rustls stops at that check with handshake_failure, before
    // looking at the version; either alert is a refusal.
    let hello = raw_client_hello(0x0302, &[0xc009, 0xc013, 0x002f], false);
    let (got, closed) = exchange_raw(t.addr(), &hello, Duration::from_secs(5));
    assert!(closed, "the server kept a TLS 1.1 client's connection open");
    assert!(
        got.len() >= 7 && [40, 70].contains(&got[6]),
        "TLS 1.1 ClientHello: {got:02x?}"
    );
    assert_fatal_alert(&got, got[6], "TLS 1.1 ClientHello");
    // With it, the version decides: protocol_version.
    let hello = raw_client_hello(0x0302, &[0xc009, 0xc013, 0x002f], true);
    let (got, closed) = exchange_raw(t.addr(), &hello, Duration::from_secs(5));
    assert!(closed, "the server kept a TLS 1.1 client's connection open");
    assert_fatal_alert(&got, 70, "TLS 1.1 ClientHello with signature_algorithms");

    // TLS 1.2 but only CBC suites: no AEAD suite in common.
    let hello = raw_client_hello(0x0303, &[0xc009, 0xc013, 0xc00a, 0x002f, 0x0035], true);
    let (got, closed) = exchange_raw(t.addr(), &hello, Duration::from_secs(5));
    assert!(
        closed,
        "the server kept a CBC-only client's connection open"
    );
    assert_fatal_alert(&got, 40, "CBC-only ClientHello"); // handshake_failure

    // The listener still serves a proper client afterwards.
    let cfg = Arc::new(accept_any_config("any"));
    let (r, _) = fetch(t.addr(), &cfg, "ec.test", "/");
    assert_eq!(r.status, 200);
}

#[test]
fn min_version_13_refuses_a_tls12_only_client() {
    let t = Conf::new()
        .listener(
            "https",
            "tls = { cert = \"CERT\", key = \"KEY\", min_version = \"1.3\" }"
                .replace("CERT", &fx("chain.crt"))
                .replace("KEY", &fx("leaf.key"))
                .as_str(),
        )
        .route(&respond_route("x"))
        .start();
    let tls12 = Arc::new(client_config(&["ca.crt"], "1.2"));
    let Err(err) = tls_connect(t.addr(), &tls12, "localhost") else {
        panic!("a TLS 1.2 only client must be refused");
    };
    assert!(
        err.to_string().to_lowercase().contains("protocolversion")
            || err.to_string().to_lowercase().contains("protocol version"),
        "unexpected error: {err}"
    );
    let tls13 = Arc::new(client_config(&["ca.crt"], "1.3"));
    let (r, s) = fetch(t.addr(), &tls13, "localhost", "/");
    assert_eq!(r.status, 200);
    assert_eq!(s.conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));
}

#[test]
fn sni_picks_certificate_by_exact_and_wildcard_name_and_first_as_default() {
    // SEC1 EC key first (the default), then a PKCS#1 RSA key: both forms
    // served by the real binary.
    let t = Conf::new()
        .listener(
            "https",
            &format!(
                "tls.certificates = [ {{ cert = \"{}\", key = \"{}\" }}, {{ cert = \"{}\", key = \"{}\" }} ]",
                fx("ec.crt"),
                fx("ec_sec1.key"),
                fx("rsa.crt"),
                fx("rsa_pkcs1.key")
            ),
        )
        .route(&respond_route("sni\\n"))
        .start();
    let ec = pem_certs(&fixture("ec.crt"));
    let rsa = pem_certs(&fixture("rsa.crt"));
    for v in ["1.3", "1.2"] {
        let cfg = Arc::new(accept_any_config(v));
        for (sni, want, which) in [
            ("ec.test", &ec, "ec"),
            ("rsa.test", &rsa, "rsa"),
            ("www.rsa.test", &rsa, "rsa (wildcard)"),
            ("RSA.Test", &rsa, "rsa (case)"),
            ("a.wild.test", &ec, "ec (wildcard)"),
            ("a.b.rsa.test", &ec, "default (wildcard is one label)"),
            ("unknown.test", &ec, "default"),
        ] {
            let (r, s) = fetch(t.addr(), &cfg, sni, "/");
            assert_eq!(r.status, 200, "{sni} TLS {v}");
            assert_eq!(
                s.conn.peer_certificates().expect("certificates"),
                want.as_slice(),
                "TLS {v}, SNI {sni}: expected the {which} certificate"
            );
        }
        // No SNI at all (an IP address as the name sends none).
        let (_, s) = fetch(t.addr(), &cfg, "127.0.0.1", "/");
        assert_eq!(
            s.conn.peer_certificates().expect("certificates"),
            ec.as_slice(),
            "TLS {v}, no SNI: expected the default certificate"
        );
    }
}

#[test]
fn pkcs8_rsa_and_ec_keys_serve_handshakes() {
    let t = Conf::new()
        .listener(
            "https",
            &format!(
                "tls.certificates = [ {{ cert = \"{}\", key = \"{}\" }}, {{ cert = \"{}\", key = \"{}\" }} ]",
                fx("rsa.crt"),
                fx("rsa_pkcs8.key"),
                fx("ec.crt"),
                fx("ec_pkcs8.key")
            ),
        )
        .route(&respond_route("ok"))
        .start();
    // These fixtures are self-signed with CA:TRUE (`openssl req -x509`),
    // which webpki refuses as a server certificate: compare instead. The
    // handshake itself proves the key signs for its certificate.
    for v in ["1.2", "1.3"] {
        let cfg = Arc::new(accept_any_config(v));
        for (sni, file) in [("rsa.test", "rsa.crt"), ("ec.test", "ec.crt")] {
            let (r, s) = fetch(t.addr(), &cfg, sni, "/");
            assert_eq!(r.status, 200, "{sni} over TLS {v}");
            assert_eq!(
                s.conn.peer_certificates().expect("certificates"),
                pem_certs(&fixture(file)).as_slice(),
                "{sni} over TLS {v}"
            );
        }
    }
}

fn kind_of(addr: SocketAddr, cfg: &Arc<ClientConfig>) -> HandshakeKind {
    let (r, s) = fetch(addr, cfg, "localhost", "/");
    assert_eq!(r.status, 200);
    s.conn
        .handshake_kind()
        .expect("handshake kind after the handshake")
}

#[test]
fn sessions_resume_by_ticket_and_by_cache_also_across_a_reload() {
    let conf = Conf::new()
        .listener("https", &tls_files(&fx("chain.crt"), &fx("leaf.key")))
        .route(&respond_route("r"));
    let t = conf.start();
    let tickets13 = Arc::new(client_config(&["ca.crt"], "1.3"));
    let tickets12 = Arc::new(client_config(&["ca.crt"], "1.2"));
    let mut ids12 = client_config(&["ca.crt"], "1.2");
    // Session IDs only: resumption must come from the server's cache.
    ids12.resumption =
        Resumption::in_memory_sessions(16).tls12_resumption(Tls12Resumption::SessionIdOnly);
    let ids12 = Arc::new(ids12);
    let clients = [
        ("TLS 1.3 tickets", &tickets13),
        ("TLS 1.2 tickets", &tickets12),
        ("TLS 1.2 session cache", &ids12),
    ];
    for (what, cfg) in clients {
        assert_eq!(kind_of(t.addr(), cfg), HandshakeKind::Full, "{what}: first");
        assert_eq!(
            kind_of(t.addr(), cfg),
            HandshakeKind::Resumed,
            "{what}: second"
        );
    }
    // A reload builds new rustls configurations; the ticket keys and the
    // cache are kept, so the sessions stay valid.
    let mut text = fs::read_to_string(t.config_path()).expect("read the config");
    text.push_str("\n[[route]]\npath = \"/new/\"\nrespond = { status = 204 }\n");
    fs::write(t.config_path(), text).expect("rewrite the config");
    t.signal("HUP");
    assert!(
        t.wait_for_log("reloaded in", IO_TIMEOUT),
        "no reload: {}",
        t.stderr()
    );
    let (r, _) = fetch(t.addr(), &tickets13, "localhost", "/new/");
    assert_eq!(r.status, 204, "the reload took effect");
    for (what, cfg) in clients {
        assert_eq!(
            kind_of(t.addr(), cfg),
            HandshakeKind::Resumed,
            "{what}: after the reload"
        );
    }
}

/// The first half of a real ClientHello.
fn half_client_hello() -> Vec<u8> {
    let cfg = Arc::new(accept_any_config("any"));
    let mut c = ClientConnection::new(cfg, ServerName::try_from("localhost").expect("name"))
        .expect("client connection");
    let mut hello = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut hello).expect("write the ClientHello");
    }
    hello.truncate(hello.len() / 2);
    hello
}

#[test]
fn garbage_and_half_handshakes_do_not_disturb_others_and_time_out_at_client_header() {
    let t = Conf::new()
        .timeout("client_header = \"1s\"")
        .listener("https", &tls_files(&fx("chain.crt"), &fx("leaf.key")))
        .route(&respond_route("still here\\n"))
        .start();
    let started = Instant::now();
    let mut half = common::Client::connect(t.addr());
    half.send(&half_client_hello())
        .expect("send half a ClientHello");
    let mut silent = common::Client::connect(t.addr());

    // Plain HTTP on the TLS port: not a TLS record, refused at once.
    let (got, closed) = exchange_raw(
        t.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(closed, "garbage did not close the connection");
    assert_fatal_alert(&got, 50, "plain HTTP on the TLS port"); // decode_error
    let (got, closed) = exchange_raw(t.addr(), &[0xde; 300], Duration::from_secs(5));
    assert!(closed, "random bytes did not close the connection");
    assert_fatal_alert(&got, 50, "random bytes"); // decode_error

    // One worker, yet a proper client is served while those are pending.
    let cfg = Arc::new(client_config(&["ca.crt"], "any"));
    for _ in 0..3 {
        let (r, _) = fetch(t.addr(), &cfg, "localhost", "/");
        assert_eq!(r.body_str(), "still here\n");
    }
    let served = started.elapsed();

    // The stalled handshakes go at client_header (1 s), not before.
    half.wait_closed(Duration::from_secs(5))
        .expect("half a handshake must be closed after client_header");
    let half_closed = started.elapsed();
    silent
        .wait_closed(Duration::from_secs(5))
        .expect("a silent TLS connection must be closed after client_header");
    assert!(
        served < half_closed,
        "the parallel client waited for the stalled handshake ({served:?} vs {half_closed:?})"
    );
    assert!(
        half_closed >= Duration::from_millis(900),
        "half handshake closed at {half_closed:?}, before client_header"
    );
    assert!(t.stderr().is_empty() || !t.stderr().contains("panicked"));
}

#[test]
fn http_redirects_to_https_and_security_headers_are_on_every_response() {
    let backend = Backend::echo();
    let dead = SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let headers = "response_headers = { \"Strict-Transport-Security\" = \"max-age=31536000; includeSubDomains\", \"X-Frame-Options\" = \"SAMEORIGIN\", \"X-Content-Type-Options\" = \"nosniff\" }";
    let t = Conf::new()
        .upstream("app", &[backend.addr()], "")
        .upstream("dead", &[dead], "")
        .listener(
            "https",
            &format!(
                "{}\n{headers}",
                tls_files(&fx("chain.crt"), &fx("leaf.key"))
            ),
        )
        .listener("http", "")
        .route("listeners = [\"http\"]\npath = \"/\"\nredirect = \"https://{host}{request_uri}\"")
        .route("listeners = [\"https\"]\npath = \"/app/\"\nupstream = \"app\"")
        .route("listeners = [\"https\"]\npath = \"/dead/\"\nupstream = \"dead\"")
        .start();
    let https = t.addr_of(0);
    let http = t.addr_of(1);

    let r = common::get(http, "www.example.com:8080", "/some/where?x=1&y=2");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("Location"),
        Some("https://www.example.com/some/where?x=1&y=2")
    );

    let cfg = Arc::new(client_config(&["ca.crt"], "any"));
    for (target, status) in [("/app/x", 200), ("/nothing", 404), ("/dead/x", 502)] {
        let (r, _) = fetch(https, &cfg, "localhost", target);
        assert_eq!(r.status, status, "{target}");
        assert_eq!(
            r.header("Strict-Transport-Security"),
            Some("max-age=31536000; includeSubDomains"),
            "{target}"
        );
        assert_eq!(r.header("X-Frame-Options"), Some("SAMEORIGIN"), "{target}");
        assert_eq!(
            r.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{target}"
        );
    }
    // The backend learns that the client came over TLS.
    let req = backend.last();
    assert_eq!(req.header("X-Forwarded-Proto"), Some("https"));
    let fwd = req.header("Forwarded").expect("Forwarded header");
    assert!(
        fwd.split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("proto=https")),
        "Forwarded: {fwd}"
    );
    // Every path of the plain listener redirects, proxied ones included.
    let r = common::get(http, "localhost", "/app/x");
    assert_eq!(r.status, 301, "the plain listener only redirects");
}

#[test]
fn self_signed_listener_serves_localhost_and_route_hosts() {
    let t = Conf::new()
        .listener("https", "tls = { self_signed = true }")
        .route(
            "hosts = [\"dev.example\"]\npath = \"/\"\nrespond = { status = 200, body = \"dev\" }",
        )
        .start();
    let cfg = Arc::new(accept_any_config("any"));
    let (r, s) = fetch(t.addr(), &cfg, "dev.example", "/");
    assert_eq!(r.body_str(), "dev");
    let cert = s.conn.peer_certificates().expect("a certificate")[0].clone();
    // Now trust exactly that certificate: it must name both hosts.
    let mut store = RootCertStore::empty();
    store.add(cert).expect("add the self-signed certificate");
    let mut strict = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions("any"))
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    strict.alpn_protocols = vec![b"http/1.1".to_vec()];
    let strict = Arc::new(strict);
    tls_connect(t.addr(), &strict, "dev.example").expect("verified for dev.example");
    tls_connect(t.addr(), &strict, "localhost").expect("verified for localhost");
}

// ---- torii -t on certificate problems -------------------------------------

fn self_signed_pair(dir: &Path, sub: &str, host: &str) -> (PathBuf, PathBuf) {
    let out = dir.join(sub);
    let r = run_torii(&[
        "cert",
        "self-signed",
        "--host",
        host,
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(r.status.success(), "torii cert self-signed: {}", r.all());
    (out.join("server.crt"), out.join("server.key"))
}

fn check_config(dir: &TempDir, cert: &Path, key: &Path) -> common::Output {
    let config = dir.join("torii.toml");
    let text = Conf::new()
        .listener(
            "https",
            &tls_files(&cert.display().to_string(), &key.display().to_string()),
        )
        .route(&respond_route("x"))
        .build();
    fs::write(&config, text).expect("write the config");
    run_torii(&["-t", "-c", config.to_str().expect("utf-8 path")])
}

/// A certificate valid from `from` to `until` (days relative to today), with
/// its key written 0600, generated with rcgen because this OpenSSL cannot
/// backdate a certificate.
fn dated_pair(dir: &Path, name: &str, from_days: i64, until_days: i64) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["dated.test".to_owned()]).expect("params");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let ymd = |days: i64| {
        // Civil date of a Unix day (Howard Hinnant's algorithm).
        let z = (now / 86_400 + days) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
        rcgen::date_time_ymd(y, m, d)
    };
    params.not_before = ymd(from_days);
    params.not_after = ymd(until_days);
    let cert = params.self_signed(&key).expect("self-sign");
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    fs::write(&cert_path, cert.pem()).expect("write cert");
    fs::write(&key_path, key.serialize_pem()).expect("write key");
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).expect("chmod key");
    (cert_path, key_path)
}

#[test]
fn check_reports_mismatched_key_and_expired_certificate_by_file_name() {
    let dir = TempDir::new("tls-check");
    let (a_crt, a_key) = self_signed_pair(dir.path(), "a", "a.test");
    let (b_crt, b_key) = self_signed_pair(dir.path(), "b", "b.test");

    let ok = check_config(&dir, &a_crt, &a_key);
    assert!(ok.status.success(), "a valid pair: {}", ok.all());
    assert!(ok.stdout.contains("test is successful"), "{}", ok.all());
    assert!(!ok.all().contains("warning"), "{}", ok.all());
    let ok = check_config(&dir, &b_crt, &b_key);
    assert!(ok.status.success(), "a valid pair: {}", ok.all());

    let bad = check_config(&dir, &a_crt, &b_key);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a mismatched pair: {}",
        bad.all()
    );
    let msg = bad.all();
    assert!(
        msg.contains(&a_crt.display().to_string())
            && msg.contains(&b_key.display().to_string())
            && msg.contains("does not match"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{}:", dir.join("torii.toml").display())),
        "{msg}"
    );

    let (old_crt, old_key) = dated_pair(dir.path(), "expired", -60, -2);
    let bad = check_config(&dir, &old_crt, &old_key);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "an expired certificate: {}",
        bad.all()
    );
    let msg = bad.all();
    assert!(
        msg.contains(&old_crt.display().to_string()) && msg.contains("expired"),
        "{msg}"
    );

    let (soon_crt, soon_key) = dated_pair(dir.path(), "soon", -60, 10);
    let warn = check_config(&dir, &soon_crt, &soon_key);
    assert!(
        warn.status.success(),
        "expiring soon is a warning: {}",
        warn.all()
    );
    let msg = warn.all();
    assert!(
        msg.contains("warning")
            && msg.contains(&soon_crt.display().to_string())
            && msg.contains("expires"),
        "{msg}"
    );

    fs::set_permissions(&a_key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let warn = check_config(&dir, &a_crt, &a_key);
    assert!(warn.status.success(), "{}", warn.all());
    let msg = warn.all();
    assert!(
        msg.contains("warning")
            && msg.contains(&a_key.display().to_string())
            && msg.contains("chmod 600"),
        "{msg}"
    );
}

/// Sends a keep-alive GET and reads one Content-Length response, leaving
/// the connection open.
fn tls_get_keepalive(s: &mut TlsConn, target: &str) -> io::Result<u16> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&tmp[..n]);
        if let Some(r) = parse_responses(&got).into_iter().next() {
            let len: usize = r
                .header("Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if r.body.len() == len {
                return Ok(r.status);
            }
        }
    }
}

#[test]
fn idle_tls_keepalive_connections_do_not_keep_a_read_buffer() {
    const CONNS: usize = 400;
    let t = Conf::new()
        .global("access_log = \"off\"")
        .listener("https", &tls_files(&fx("chain.crt"), &fx("leaf.key")))
        .route(&respond_route("ok"))
        .start();
    let cfg = Arc::new(client_config(&["ca.crt"], "any"));
    // Warm up allocator arenas and lazily built state with a few first.
    let mut open: Vec<TlsConn> = Vec::with_capacity(CONNS + 20);
    for _ in 0..20 {
        let mut s = tls_connect(t.addr(), &cfg, "localhost").expect("handshake");
        assert_eq!(tls_get_keepalive(&mut s, "/").expect("GET"), 200);
        open.push(s);
    }
    let before = t.memory().rss_kib;
    for _ in 0..CONNS {
        let mut s = tls_connect(t.addr(), &cfg, "localhost").expect("handshake");
        assert_eq!(tls_get_keepalive(&mut s, "/").expect("GET"), 200);
        open.push(s);
    }
    let after = t.memory().rss_kib;
    assert!(before > 0 && after > 0, "could not read torii's RSS");
    let per_conn = after.saturating_sub(before) as f64 / CONNS as f64;
    // An idle connection used to keep its 16 KiB head buffer (about 21 KiB
    // each in all); without it about 7 KiB remain (rustls state and its 4 KiB
    // record buffer, the socket's slab entry).
    assert!(
        per_conn < 12.0,
        "{per_conn:.1} KiB per idle TLS connection (RSS {before} -> {after} KiB)"
    );
    drop(open);
}

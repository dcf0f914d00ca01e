//! Reload under load, end to end: SIGHUP and file replacement (rename,
//! Kubernetes `..data` swap, certbot symlink retarget) while client threads
//! keep sending requests; certificate swaps under TLS handshake load; broken
//! files and mismatched key pairs rejected with `FILE:LINE:COL`; listeners
//! added and removed; upstream pools kept across reloads.
//!
//! Every wait is a condition with a deadline (`wait_until`), every load loop
//! is bounded in iterations and time.

mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;

/// How long one reload may take to show (log line, switched responses).
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);
/// Bounds of every load thread, whatever happens to the test.
const LOAD_MAX_ITER: usize = 200_000;
const LOAD_MAX_TIME: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Load threads

/// What one load thread saw.
#[derive(Default)]
struct Slot {
    ok: AtomicUsize,
    connects: AtomicUsize,
    failures: Mutex<Vec<String>>,
    /// The body (plain HTTP) or certificate DER (TLS) of the last success.
    last: Mutex<Vec<u8>>,
}

/// One step of a load thread: one request (and response), or an error.
type Step = Box<dyn FnMut(&Slot) -> Result<Vec<u8>, String> + Send>;

/// Client threads running a step in a loop until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    slots: Vec<Arc<Slot>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(n: usize, make: impl Fn(usize) -> Step) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut slots = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n {
            let slot = Arc::new(Slot::default());
            let mut step = make(i);
            let (s, st) = (slot.clone(), stop.clone());
            threads.push(thread::spawn(move || {
                let end = Instant::now() + LOAD_MAX_TIME;
                for _ in 0..LOAD_MAX_ITER {
                    if st.load(Ordering::Acquire) || Instant::now() >= end {
                        break;
                    }
                    match step(&s) {
                        Ok(v) => {
                            s.ok.fetch_add(1, Ordering::AcqRel);
                            *s.last.lock().expect("slot lock") = v;
                        }
                        Err(e) => s.failures.lock().expect("slot lock").push(e),
                    }
                }
            }));
            slots.push(slot);
        }
        Load {
            stop,
            slots,
            threads,
        }
    }

    /// Waits until every thread has a new success whose value is `want`.
    fn wait_all(&self, want: &[u8], deadline: Duration) -> bool {
        let base: Vec<usize> = self
            .slots
            .iter()
            .map(|s| s.ok.load(Ordering::Acquire))
            .collect();
        wait_until(deadline, || {
            self.slots.iter().zip(&base).all(|(s, b)| {
                s.ok.load(Ordering::Acquire) > *b && *s.last.lock().expect("slot lock") == want
            })
        })
    }

    fn failures(&self) -> Vec<String> {
        self.slots
            .iter()
            .flat_map(|s| s.failures.lock().expect("slot lock").clone())
            .collect()
    }

    fn ok(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.ok.load(Ordering::Acquire))
            .sum()
    }

    fn connects(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.connects.load(Ordering::Acquire))
            .sum()
    }

    /// Stops the threads and returns (successes, failures).
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            t.join().expect("load thread panicked");
        }
        (self.ok(), self.failures())
    }
}

/// A keep-alive client that sends `GET /` in a loop on one connection;
/// reconnects (counted) only after a failure.
fn keepalive_step(addr: SocketAddr) -> Step {
    let mut client: Option<Client> = None;
    Box::new(move |slot: &Slot| {
        if client.is_none() {
            slot.connects.fetch_add(1, Ordering::AcqRel);
            client = Some(Client::connect(addr));
        }
        let c = client.as_mut().expect("client just set");
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        match r {
            Ok(r) if r.status == 200 && r.header("connection") != Some("close") => Ok(r.body),
            Ok(r) => {
                client = None;
                Err(format!(
                    "status {} connection {:?}",
                    r.status,
                    r.header("connection")
                ))
            }
            Err(e) => {
                client = None;
                Err(format!("keep-alive request: {e}"))
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Log lines

/// Whether `log` has the reload line of generation `n` (`generation=N`
/// not followed by another digit).
fn has_generation(log: &str, n: u64) -> bool {
    let needle = format!("generation={n}");
    log.match_indices(&needle).any(|(i, _)| {
        !log[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn wait_generation(t: &Torii, n: u64) {
    assert!(
        wait_until(RELOAD_DEADLINE, || has_generation(&t.stderr(), n)),
        "no log line generation={n}; stderr:\n{}",
        t.stderr()
    );
}

/// The number of `reload rejected` lines in the event log.
fn rejections(t: &Torii) -> usize {
    t.stderr().matches("reload rejected").count()
}

/// Replaces `path` the way editors and config tools do: a temporary file in
/// the same directory, then rename over the original.
fn replace_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-new");
    fs::write(&tmp, text).expect("write the temporary file");
    fs::rename(&tmp, path).expect("rename over the file");
}

fn respond_route(body: &str) -> String {
    format!("path = \"/\"\nrespond = {{ status = 200, body = \"{body}\" }}")
}

// ---------------------------------------------------------------------------
// TLS client

/// `torii cert self-signed --host localhost --out DIR`; returns the DER of
/// the certificate written.
fn make_cert(dir: &Path) -> Vec<u8> {
    let out = run_torii(&[
        "cert",
        "self-signed",
        "--host",
        "localhost",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "cert self-signed: {}",
        out.all()
    );
    cert_der(&dir.join("server.crt"))
}

fn cert_der(path: &Path) -> Vec<u8> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path)
        .unwrap_or_else(|e| panic!("read certificate {}: {e:?}", path.display()))
        .to_vec()
}

/// A rustls client that trusts exactly `certs` and never resumes (every
/// connection is a full handshake that shows the current certificate).
fn tls_client(certs: &[Vec<u8>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for der in certs {
        roots
            .add(rustls_pki_types::CertificateDer::from(der.clone()))
            .expect("add a trusted certificate");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// One HTTPS request on a new connection; returns the server certificate's
/// DER after checking the response is a 200.
fn tls_get(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("handshake or write: {e}"))?;
    let mut buf = Vec::new();
    match tls.read_to_end(&mut buf) {
        Ok(_) => {}
        // A close without close_notify after a complete response is fine.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "response: {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(80)])
        ));
    }
    tls.conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or_else(|| "no server certificate".to_string())
}

fn tls_step(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Step {
    Box::new(move |slot: &Slot| {
        slot.connects.fetch_add(1, Ordering::AcqRel);
        tls_get(addr, &cfg)
    })
}

/// Points `link` at `target` the way certbot renews: the old link removed,
/// a new one made.
fn retarget(link: &Path, target: &Path) {
    fs::remove_file(link).expect("remove the old link");
    symlink(target, link).expect("create the new link");
}

// ---------------------------------------------------------------------------
// (1) SIGHUP under keep-alive load

#[test]
fn twenty_sighup_reloads_under_keepalive_load_lose_nothing() {
    let conf = |body: &str| {
        Conf::new()
            .global("workers = 2")
            .listener("http", "")
            .route(&respond_route(body))
    };
    let base = conf("A");
    let text_a = base.build();
    let t = Torii::start(&text_a);
    let addr = t.addr();
    // The listener line carries the port: build B from A's text.
    let text_b = text_a.replace("body = \"A\"", "body = \"B\"");
    assert_ne!(text_a, text_b);

    // Idle keep-alive connections opened before any reload.
    let mut idle: Vec<Client> = (0..4).map(|_| Client::connect(addr)).collect();
    for c in &mut idle {
        let r = c
            .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("first request on an idle connection");
        assert_eq!(r.body, b"A");
    }

    let load = Load::start(4, |_| keepalive_step(addr));
    assert!(load.wait_all(b"A", RELOAD_DEADLINE), "load did not start");
    for i in 0..20u64 {
        let (text, body) = if i % 2 == 0 {
            (&text_b, b"B")
        } else {
            (&text_a, b"A")
        };
        fs::write(t.config_path(), text).expect("rewrite the configuration");
        t.signal("HUP");
        wait_generation(&t, i + 2);
        assert!(
            load.wait_all(body, RELOAD_DEADLINE),
            "reload {} (generation {}): responses did not switch to {:?}; failures: {:?}",
            i + 1,
            i + 2,
            String::from_utf8_lossy(body),
            load.failures()
        );
    }
    let connects = load.connects();
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(connects, 4, "a keep-alive connection had to reconnect");
    assert!(ok > 40, "only {ok} requests made");
    assert_eq!(rejections(&t), 0, "stderr:\n{}", t.stderr());
    // The reload line says what changed and how long it took.
    let log = t.stderr();
    let line = log
        .lines()
        .find(|l| has_generation(l, 21))
        .expect("generation 21 line");
    assert!(
        line.contains("reloaded in") && line.contains("routes changed"),
        "reload line lacks timing or change summary: {line}"
    );

    // After 20 generations the idle connections still work, with the
    // current routes (20 reloads end on "A").
    for (i, c) in idle.iter_mut().enumerate() {
        let r = c
            .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap_or_else(|e| panic!("idle connection {i} after the reloads: {e}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"A", "idle connection {i} answered with old routes");
    }
}

// ---------------------------------------------------------------------------
// (2) File rewritten by rename (watch), two upstream backends alternating

#[test]
fn twenty_rename_reloads_switch_backends_under_keepalive_load() {
    let a = Backend::start(|_| Reply::ok("A"));
    let b = Backend::start(|_| Reply::ok("B"));
    let text_a = Conf::new()
        .global("workers = 2")
        .global("watch = true")
        .upstream("u", &[a.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"u\"")
        .build();
    let text_b = text_a.replace(&a.addr().to_string(), &b.addr().to_string());
    assert_ne!(text_a, text_b);
    let t = Torii::start(&text_a);
    let addr = t.addr();
    let mut idle = Client::connect(addr);
    assert_eq!(
        idle.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("idle connection, first request")
            .body,
        b"A"
    );

    let load = Load::start(4, |_| keepalive_step(addr));
    assert!(load.wait_all(b"A", RELOAD_DEADLINE), "load did not start");
    for i in 0..20u64 {
        let (text, body) = if i % 2 == 0 {
            (&text_b, b"B")
        } else {
            (&text_a, b"A")
        };
        replace_by_rename(t.config_path(), text);
        wait_generation(&t, i + 2);
        assert!(
            load.wait_all(body, RELOAD_DEADLINE),
            "rename {}: responses did not switch; failures: {:?}",
            i + 1,
            load.failures()
        );
    }
    let connects = load.connects();
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(connects, 4, "a keep-alive connection had to reconnect");
    assert!(ok > 40);
    assert_eq!(rejections(&t), 0, "stderr:\n{}", t.stderr());
    // One reload per rename: the watch neither missed nor doubled one.
    assert!(
        !has_generation(&t.stderr(), 22),
        "more reloads than renames:\n{}",
        t.stderr()
    );
    let r = idle
        .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("idle connection after 20 renames");
    assert_eq!(r.body, b"A");
}

// ---------------------------------------------------------------------------
// (3) Certificate replaced under TLS handshake load

#[test]
fn certificate_swaps_under_tls_load_fail_no_handshake() {
    let dir = TempDir::new("certswap");
    let (d1, d2, live) = (dir.join("one"), dir.join("two"), dir.join("live"));
    let der1 = make_cert(&d1);
    let der2 = make_cert(&d2);
    assert_ne!(der1, der2);
    fs::create_dir_all(&live).expect("mkdir live");
    let install = |from: &Path| {
        // Each file replaced by rename, as a deployment tool writes them.
        for f in ["server.crt", "server.key"] {
            fs::copy(from.join(f), live.join(format!("{f}.tmp"))).expect("copy");
            fs::rename(live.join(format!("{f}.tmp")), live.join(f)).expect("rename");
        }
    };
    install(&d1);
    let text = Conf::new()
        .global("workers = 2")
        .listener(
            "https",
            &format!(
                "tls = {{ cert = \"{}\", key = \"{}\" }}",
                live.join("server.crt").display(),
                live.join("server.key").display()
            ),
        )
        .route(&respond_route("tls"))
        .build();
    let t = Torii::start(&text);
    let addr = t.addr();
    let cfg = tls_client(&[der1.clone(), der2.clone()]);

    let load = Load::start(3, |_| tls_step(addr, cfg.clone()));
    assert!(
        load.wait_all(&der1, RELOAD_DEADLINE),
        "TLS load did not start"
    );
    for i in 0..6u64 {
        let (from, der) = if i % 2 == 0 {
            (&d2, &der2)
        } else {
            (&d1, &der1)
        };
        install(from);
        t.signal("HUP");
        wait_generation(&t, i + 2);
        assert!(
            load.wait_all(der, RELOAD_DEADLINE),
            "swap {}: new connections do not present the new certificate; failures: {:?}",
            i + 1,
            load.failures()
        );
    }
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "failed handshakes: {failures:?}");
    assert!(ok > 12, "only {ok} handshakes");
    assert_eq!(rejections(&t), 0, "stderr:\n{}", t.stderr());
}

// ---------------------------------------------------------------------------
// (4) Broken file, mismatched key pair

/// `FILE:LINE:` (then a column and `: `) in `log`.
fn has_position(log: &str, file: &Path, line: usize) -> bool {
    let prefix = format!("{}:{line}:", file.display());
    log.match_indices(&prefix).any(|(i, _)| {
        let rest = &log[i + prefix.len()..];
        let col: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        !col.is_empty() && rest[col.len()..].starts_with(": ")
    })
}

#[test]
fn broken_file_keeps_the_routes_names_the_line_and_a_later_good_file_wins() {
    let text = Conf::new()
        .global("watch = true")
        .listener("http", "")
        .route(&respond_route("v1"))
        .build();
    let t = Torii::start(&text);
    let addr = t.addr();
    let mut keep = Client::connect(addr);
    assert_eq!(
        keep.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("first")
            .body,
        b"v1"
    );

    // A syntax error on a known line, written in place, also signalled.
    let kept = text.trim_end_matches('\n');
    let bad_line = kept.lines().count() + 2;
    fs::write(t.config_path(), format!("{kept}\n\nvia = = true\n")).expect("write the broken file");
    t.signal("HUP");
    assert!(
        wait_until(RELOAD_DEADLINE, || has_position(
            &t.stderr(),
            t.config_path(),
            bad_line
        ) && rejections(&t) >= 1),
        "no {}:{bad_line}:COL error; stderr:\n{}",
        t.config_path().display(),
        t.stderr()
    );
    assert_eq!(get(addr, "x", "/").body, b"v1");
    assert_eq!(
        keep.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("keep-alive after a rejected reload")
            .body,
        b"v1"
    );

    // A validation error (a route naming no upstream): the line of the key.
    let lines: Vec<&str> = text.lines().collect();
    let route_line = lines
        .iter()
        .position(|l| l.starts_with("respond"))
        .expect("respond line")
        + 1;
    let before = rejections(&t);
    replace_by_rename(
        t.config_path(),
        &text.replace(
            "respond = { status = 200, body = \"v1\" }",
            "upstream = \"nowhere\"",
        ),
    );
    assert!(
        wait_until(RELOAD_DEADLINE, || rejections(&t) > before
            && has_position(&t.stderr(), t.config_path(), route_line)),
        "validation error not logged at line {route_line}; stderr:\n{}",
        t.stderr()
    );
    assert_eq!(get(addr, "x", "/").body, b"v1");

    // A good file, picked up by the watch without a signal.
    replace_by_rename(t.config_path(), &text.replace("\"v1\"", "\"v2\""));
    assert!(
        wait_until(RELOAD_DEADLINE, || get(addr, "x", "/").body == b"v2"),
        "the good file was not picked up; stderr:\n{}",
        t.stderr()
    );
    assert_eq!(
        keep.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("keep-alive after the good reload")
            .body,
        b"v2"
    );
    // Rejected reloads consume no generation number.
    wait_generation(&t, 2);
}

#[test]
fn mismatched_certificate_and_key_are_rejected_and_the_old_pair_stays() {
    let dir = TempDir::new("mismatch");
    let (d1, d2) = (dir.join("one"), dir.join("two"));
    let der1 = make_cert(&d1);
    let der2 = make_cert(&d2);
    let tls_line = |cert: &Path, key: &Path| {
        format!(
            "tls = {{ cert = \"{}\", key = \"{}\" }}",
            cert.display(),
            key.display()
        )
    };
    let good1 = tls_line(&d1.join("server.crt"), &d1.join("server.key"));
    let text = Conf::new()
        .listener("https", &good1)
        .route(&respond_route("tls"))
        .build();
    let t = Torii::start(&text);
    let cfg = tls_client(&[der1.clone(), der2.clone()]);
    assert_eq!(tls_get(t.addr(), &cfg).expect("first handshake"), der1);

    let bad = tls_line(&d2.join("server.crt"), &d1.join("server.key"));
    let bad_line = text
        .lines()
        .position(|l| l.starts_with("tls ="))
        .expect("tls line")
        + 1;
    fs::write(t.config_path(), text.replace(&good1, &bad)).expect("write");
    t.signal("HUP");
    assert!(
        wait_until(RELOAD_DEADLINE, || rejections(&t) >= 1),
        "mismatched pair not rejected; stderr:\n{}",
        t.stderr()
    );
    assert!(
        has_position(&t.stderr(), t.config_path(), bad_line),
        "the error does not name {}:{bad_line}; stderr:\n{}",
        t.config_path().display(),
        t.stderr()
    );
    assert_eq!(
        tls_get(t.addr(), &cfg).expect("handshake after the rejection"),
        der1
    );

    let good2 = tls_line(&d2.join("server.crt"), &d2.join("server.key"));
    fs::write(t.config_path(), text.replace(&good1, &good2)).expect("write");
    t.signal("HUP");
    wait_generation(&t, 2);
    assert_eq!(tls_get(t.addr(), &cfg).expect("handshake after"), der2);
}

// ---------------------------------------------------------------------------
// (5) Listeners added and removed

#[test]
fn removed_listener_refuses_new_connections_and_drains_an_open_one() {
    let text = Conf::new()
        .global("workers = 2")
        .listener("keep", "")
        .listener("gone", "")
        .route(&respond_route("r"))
        .build();
    let t = Torii::start(&text);
    let (keep_addr, gone_addr) = (t.addr_of(0), t.addr_of(1));
    let mut on_gone = Client::connect(gone_addr);
    let r = on_gone
        .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request on the listener to be removed");
    assert_eq!(r.status, 200);
    // An idle connection on the listener that stays: it pins the old
    // generation, which must not keep the removed socket listening.
    let mut on_keep = Client::connect(keep_addr);
    on_keep
        .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request on the kept listener");

    let new_port = free_port();
    let new_addr = SocketAddr::from(([127, 0, 0, 1], new_port));
    let gone_block = format!("[[listener]]\nname = \"gone\"\nbind = \"{gone_addr}\"\n");
    assert!(text.contains(&gone_block), "unexpected config layout");
    let next = text.replace(
        &gone_block,
        &format!("[[listener]]\nname = \"added\"\nbind = \"{new_addr}\"\n"),
    );
    fs::write(t.config_path(), &next).expect("rewrite");
    t.signal("HUP");
    wait_generation(&t, 2);
    let line = t
        .stderr()
        .lines()
        .find(|l| has_generation(l, 2))
        .expect("a generation=2 reload line")
        .to_string();
    assert!(
        line.contains(&format!("+{new_addr}")) && line.contains(&format!("-{gone_addr}")),
        "reload line does not list the listener changes: {line}"
    );

    assert!(
        wait_until(RELOAD_DEADLINE, || TcpStream::connect_timeout(
            &gone_addr,
            Duration::from_millis(200)
        )
        .is_err()),
        "the removed listener {gone_addr} still accepts connections"
    );
    // The connection opened before is served once more, then closed.
    let r = on_gone
        .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request on a connection of the removed listener");
    assert_eq!(r.status, 200);
    assert!(
        r.has_token("connection", "close"),
        "headers: {:?}",
        r.headers
    );
    on_gone
        .wait_closed(Duration::from_secs(5))
        .expect("connection of the removed listener closed after its request");

    assert_eq!(get(new_addr, "x", "/").body, b"r");
    assert_eq!(get(keep_addr, "x", "/").body, b"r");
    let r = on_keep
        .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("idle connection on the kept listener");
    assert_eq!(r.status, 200);

    // The address can come back in a later reload, and answers again.
    fs::write(
        t.config_path(),
        format!("{next}\n[[listener]]\nname = \"back\"\nbind = \"{gone_addr}\"\n"),
    )
    .expect("rewrite");
    t.signal("HUP");
    wait_generation(&t, 3);
    for _ in 0..20 {
        // Several connections: with SO_REUSEPORT a leftover socket of the
        // first binding would take a share of them and never answer.
        let mut c = Client::connect(gone_addr);
        c.set_read_timeout(Duration::from_secs(5));
        let r = c
            .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request on the re-added listener");
        assert_eq!(r.body, b"r");
    }
}

// ---------------------------------------------------------------------------
// (6) Kubernetes `..data` swap and certbot `live/` retarget, by the watch

#[test]
fn configmap_data_symlink_swap_triggers_reloads() {
    let dir = TempDir::new("configmap");
    let base = Conf::new()
        .global("watch = true")
        .listener("http", "")
        .route(&respond_route("c1"))
        .build();
    let root = dir.path().to_path_buf();
    let version = |n: u32, body: &str| {
        let d = root.join(format!("..2026_12_03_0{n}"));
        fs::create_dir_all(&d).expect("mkdir timestamped dir");
        fs::write(
            d.join("torii.toml"),
            base.replace("\"c1\"", &format!("\"{body}\"")),
        )
        .expect("write");
        d
    };
    let first = version(1, "c1");
    symlink(first.file_name().expect("name"), dir.join("..data")).expect("..data");
    symlink("..data/torii.toml", dir.join("torii.toml")).expect("torii.toml link");
    let config = dir.join("torii.toml");
    let t = Torii::start_file(dir, config);
    let addr = t.addr();
    assert_eq!(get(addr, "x", "/").body, b"c1");

    let mut previous = first;
    for (n, body) in [(2u32, "c2"), (3, "c3")] {
        // The kubelet's update: a new timestamped dir, `..data_tmp` pointing
        // at it, renamed over `..data`, then the old dir removed.
        let next = version(n, body);
        let tmp = t.dir().join("..data_tmp");
        symlink(next.file_name().expect("name"), &tmp).expect("..data_tmp");
        fs::rename(&tmp, t.dir().join("..data")).expect("rename ..data_tmp");
        fs::remove_dir_all(&previous).expect("remove the old dir");
        previous = next;
        assert!(
            wait_until(RELOAD_DEADLINE, || get(addr, "x", "/").body
                == body.as_bytes()),
            "..data swap to {body} not picked up; stderr:\n{}",
            t.stderr()
        );
    }
    assert_eq!(rejections(&t), 0, "stderr:\n{}", t.stderr());
}

#[test]
fn certbot_live_symlink_retarget_triggers_a_reload() {
    let dir = TempDir::new("certbot");
    let (archive, live) = (dir.join("archive"), dir.join("live"));
    fs::create_dir_all(&archive).expect("mkdir archive");
    fs::create_dir_all(&live).expect("mkdir live");
    let mut ders = Vec::new();
    for n in 1..=3 {
        let d = dir.join(&format!("gen{n}"));
        ders.push(make_cert(&d));
        fs::rename(d.join("server.crt"), archive.join(format!("cert{n}.pem"))).expect("mv");
        fs::rename(
            d.join("server.key"),
            archive.join(format!("privkey{n}.pem")),
        )
        .expect("mv");
    }
    symlink("../archive/cert1.pem", live.join("cert.pem")).expect("link");
    symlink("../archive/privkey1.pem", live.join("privkey.pem")).expect("link");
    let text = Conf::new()
        .global("watch = true")
        .listener(
            "https",
            &format!(
                "tls = {{ cert = \"{}\", key = \"{}\" }}",
                live.join("cert.pem").display(),
                live.join("privkey.pem").display()
            ),
        )
        .route(&respond_route("tls"))
        .build();
    fs::write(dir.join("torii.toml"), text).expect("write config");
    let config = dir.join("torii.toml");
    let t = Torii::start_file(dir, config);
    let cfg = tls_client(&ders);
    assert_eq!(tls_get(t.addr(), &cfg).expect("first handshake"), ders[0]);
    for n in 2..=3usize {
        retarget(
            &live.join("privkey.pem"),
            Path::new(&format!("../archive/privkey{n}.pem")),
        );
        retarget(
            &live.join("cert.pem"),
            Path::new(&format!("../archive/cert{n}.pem")),
        );
        let want = &ders[n - 1];
        assert!(
            wait_until(RELOAD_DEADLINE, || tls_get(t.addr(), &cfg).ok().as_ref()
                == Some(want)),
            "renewal {n} not picked up; stderr:\n{}",
            t.stderr()
        );
    }
    assert_eq!(rejections(&t), 0, "stderr:\n{}", t.stderr());
}

// ---------------------------------------------------------------------------
// (7) Upstream pools across reloads

#[test]
fn upstream_pool_survives_reloads_and_removed_servers_are_closed() {
    let kept = Backend::start(|_| Reply::ok("kept"));
    let removed = Backend::start(|_| Reply::ok("removed"));
    let text = Conf::new()
        .upstream("kept", &[kept.addr()], "")
        .upstream("removed", &[removed.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"kept\"")
        .route("path = \"/removed\"\nupstream = \"removed\"")
        .route(&respond_route("x").replace("path = \"/\"", "path = \"/other\""))
        .build();
    let t = Torii::start(&text);
    let addr = t.addr();
    let mut c = Client::connect(addr);
    let mut ask = |path: &str| {
        c.roundtrip(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };
    for _ in 0..3 {
        assert_eq!(ask("/").body, b"kept");
    }
    assert_eq!(ask("/removed").body, b"removed");
    let kept_conns = kept.connections();
    assert_eq!(
        kept_conns, 1,
        "sequential requests should share one pooled connection"
    );
    assert_eq!(removed.connections(), 1);

    // Five reloads that change something else: the pool stays.
    let mut current = text.clone();
    for i in 0..5u64 {
        current = current.replace(
            &format!(
                "body = \"{}\"",
                if i == 0 {
                    "x".to_string()
                } else {
                    format!("x{i}")
                }
            ),
            &format!("body = \"x{}\"", i + 1),
        );
        fs::write(t.config_path(), &current).expect("rewrite");
        t.signal("HUP");
        wait_generation(&t, i + 2);
        for _ in 0..3 {
            assert_eq!(ask("/").body, b"kept");
        }
        assert_eq!(ask("/other").body, format!("x{}", i + 1).as_bytes());
    }
    assert_eq!(
        kept.connections(),
        kept_conns,
        "reloads opened new connections to an upstream that stayed"
    );

    // Removing an upstream closes its idle pooled connections.
    let without = current
        .replace(
            &format!(
                "[[upstream]]\nname = \"removed\"\nservers = [\"{}\"]\n",
                removed.addr()
            ),
            "",
        )
        .replace(
            "[[route]]\npath = \"/removed\"\nupstream = \"removed\"\n",
            "",
        );
    assert!(
        !without.contains("removed"),
        "config edit failed:\n{without}"
    );
    fs::write(t.config_path(), &without).expect("rewrite");
    t.signal("HUP");
    wait_generation(&t, 7);
    assert!(
        wait_until(RELOAD_DEADLINE, || removed.closed()
            == removed.connections()),
        "the idle connection to the removed upstream stayed open"
    );
    assert_eq!(ask("/").body, b"kept");
    assert_eq!(ask("/removed").body, b"kept", "/removed now falls to /");
    assert_eq!(kept.connections(), kept_conns);
}

// ---------------------------------------------------------------------------
// In-flight requests and debouncing

#[test]
fn a_request_in_flight_finishes_on_its_generation_and_the_next_uses_the_new_one() {
    let a = Backend::start(|_| Reply::ok("A").delay(Duration::from_millis(1500)));
    let b = Backend::start(|_| Reply::ok("B"));
    let text = Conf::new()
        .upstream("u", &[a.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"u\"")
        .build();
    let t = Torii::start(&text);
    let mut c = Client::connect(t.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    assert!(
        wait_until(RELOAD_DEADLINE, || a.heads() == 1),
        "request did not reach backend A"
    );
    fs::write(
        t.config_path(),
        text.replace(&a.addr().to_string(), &b.addr().to_string()),
    )
    .expect("rewrite");
    t.signal("HUP");
    wait_generation(&t, 2);
    // Backend A still holds the request: it was in flight across the swap.
    assert_eq!(a.request_count(), 1);
    let r = c.read_final().expect("the in-flight response");
    assert_eq!(r.body, b"A", "the in-flight request changed generation");
    let r = c
        .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("next request on the same connection");
    assert_eq!(
        r.body, b"B",
        "the next request did not use the new generation"
    );
    assert_eq!(a.request_count(), 1);
}

#[test]
fn a_renewal_writing_certificate_and_key_is_one_reload() {
    let dir = TempDir::new("debounce");
    let (d1, d2, live) = (dir.join("one"), dir.join("two"), dir.join("live"));
    let der1 = make_cert(&d1);
    let der2 = make_cert(&d2);
    fs::create_dir_all(&live).expect("mkdir live");
    for f in ["server.crt", "server.key"] {
        fs::copy(d1.join(f), live.join(f)).expect("copy");
    }
    let text = Conf::new()
        .global("watch = true")
        .listener(
            "https",
            &format!(
                "tls = {{ cert = \"{}\", key = \"{}\" }}",
                live.join("server.crt").display(),
                live.join("server.key").display()
            ),
        )
        .route(&respond_route("tls"))
        .build();
    let t = Torii::start(&text);
    let cfg = tls_client(&[der1.clone(), der2.clone()]);
    assert_eq!(tls_get(t.addr(), &cfg).expect("first handshake"), der1);
    // Certificate first, key second: in between the pair does not match,
    // so a reload that did not wait for the burst to settle is rejected.
    for f in ["server.crt", "server.key"] {
        fs::copy(d2.join(f), live.join(format!("{f}.new"))).expect("copy");
        fs::rename(live.join(format!("{f}.new")), live.join(f)).expect("rename");
    }
    wait_generation(&t, 2);
    assert_eq!(tls_get(t.addr(), &cfg).expect("after the renewal"), der2);
    // A SIGHUP afterwards is generation 3: no second file-triggered reload
    // came from the same burst before it.
    t.signal("HUP");
    wait_generation(&t, 3);
    let log = t.stderr();
    assert_eq!(
        log.matches("changed: reloading").count(),
        1,
        "the renewal caused more than one reload:\n{log}"
    );
    assert_eq!(rejections(&t), 0, "stderr:\n{log}");
}

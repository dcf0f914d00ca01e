//! The OpenERP deployment of `conf/openerp.toml` end to end, with real
//! clients and servers: curl for the web client (redirect to HTTPS, security
//! headers, the login redirect's Location), WebDAV methods and headers through
//! the `/webdav/` route with one upstream connection per request, a streamed
//! 207 multi-status, the `litmus` WebDAV suite against WsgiDAV directly and
//! through torii, Radicale with the `caldav` client library over HTTPS, and
//! `xmlrpc.client` over the TLS listener on "8071".
//!
//! Each test runs a copy of the real file with the ports (443, 80, 8071,
//! 8080, 8069), the certificate directory and the pid file moved into a
//! temporary directory, so nothing needs root. The Python pieces come from
//! `.venv` (`.ci/pip-openerp.txt`), litmus from `.ci/apt-openerp.txt`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{Backend, Conf, Reply, TempDir, Torii, free_port, run_torii, wait_until};

/// The public name the certificate is made for.
const HOST: &str = "erp.example.com";
/// How long a helper server gets to listen, and a client script to finish.
const START: Duration = Duration::from_secs(20);
const SCRIPT: Duration = Duration::from_secs(60);
/// One litmus run takes a few seconds; this only bounds a hang.
const LITMUS: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/openerp").join(name)
}

/// The venv python that holds Radicale, caldav, wsgidav and cheroot.
fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/setup.sh` (installs .ci/pip-openerp.txt)",
        p.display()
    );
    p
}

/// A helper process (Python server) killed on drop; its output goes to
/// files that a failing assertion prints.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = fs::File::create(&log).expect("create helper log");
        let err = out.try_clone().expect("clone helper log");
        let child = cmd
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `port` accepts connections, failing early if the process
    /// died.
    fn wait_listening(&mut self, port: u16) {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut exited = None;
        let ok = wait_until(START, || {
            if let Ok(Some(st)) = self.child.try_wait() {
                exited = Some(st);
                return true;
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
        });
        assert!(
            ok && exited.is_none(),
            "helper did not listen on {addr} (exit: {exited:?}):\n{}",
            self.log()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion within `deadline`, returning (success,
/// stdout + stderr).
fn run(cmd: &mut Command, deadline: Duration, dir: &Path, tag: &str) -> (bool, String) {
    let log = dir.join(format!("{tag}.log"));
    let mut p = Proc::spawn(cmd, log);
    let mut status = None;
    wait_until(deadline, || {
        status = p.child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.unwrap_or_else(|| panic!("{cmd:?} did not finish within {deadline:?}"));
    (status.success(), p.log())
}

/// A TCP forwarder in front of an upstream server that counts the
/// connections it accepts: proves what torii does on the upstream side.
struct CountingForwarder {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CountingForwarder {
    fn start(target: SocketAddr) -> CountingForwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the forwarder");
        let addr = listener.local_addr().expect("forwarder address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, st) = (Arc::clone(&accepted), Arc::clone(&stop));
        thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                acc.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for s in [&client, &server] {
                    // Bounds the copy threads if a peer vanishes silently.
                    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
                }
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                thread::spawn(move || pipe(client, server));
                thread::spawn(move || pipe(s2, c2));
            }
        });
        CountingForwarder {
            addr,
            accepted,
            stop,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for CountingForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// The public ports of one deployment.
#[derive(Clone, Copy, Debug)]
struct Ports {
    https: u16,
    http: u16,
    xmlrpcs: u16,
}

/// conf/openerp.toml with its ports and paths moved into a temporary
/// directory, and a certificate made by `torii cert self-signed`.
struct Deployment {
    dir: TempDir,
    config: PathBuf,
    cert: PathBuf,
    ports: Ports,
}

impl Deployment {
    /// `web` stands for 127.0.0.1:8080 (the web client), `server` for
    /// 127.0.0.1:8069 (the OpenERP server: WebDAV and XML-RPC).
    fn new(web: u16, server: u16) -> Deployment {
        let dir = TempDir::new("openerp");
        let ssl = dir.join("ssl");
        let out = run_torii(&[
            "cert",
            "self-signed",
            "--host",
            HOST,
            "--host",
            "127.0.0.1",
            "--out",
            ssl.to_str().expect("utf-8 temp path"),
        ]);
        assert!(
            out.status.success(),
            "torii cert self-signed: {}",
            out.all()
        );
        let ports = Ports {
            https: free_port(),
            http: free_port(),
            xmlrpcs: free_port(),
        };
        let mut text =
            fs::read_to_string(repo().join("conf/openerp.toml")).expect("read conf/openerp.toml");
        let ssl_dir = format!("{}/", ssl.display());
        let pid = format!("\"{}\"", dir.join("torii.pid").display());
        for (from, to) in [
            ("\"0.0.0.0:443\"", format!("\"127.0.0.1:{}\"", ports.https)),
            ("\"0.0.0.0:80\"", format!("\"127.0.0.1:{}\"", ports.http)),
            (
                "\"0.0.0.0:8071\"",
                format!("\"127.0.0.1:{}\"", ports.xmlrpcs),
            ),
            ("\"127.0.0.1:8080\"", format!("\"127.0.0.1:{web}\"")),
            ("\"127.0.0.1:8069\"", format!("\"127.0.0.1:{server}\"")),
            ("/etc/ssl/openerp/", ssl_dir),
            ("\"/run/torii-openerp.pid\"", pid),
            // The tests may run as root, and there is no user "torii" here.
            ("user = \"torii\"", "# user = \"torii\"".into()),
            // JSON lines name the upstream of each request, to count them.
            (
                "access_log = \"stdout\"",
                "access_log = \"stdout\"\naccess_log_format = \"json\"".into(),
            ),
        ] {
            assert!(
                text.contains(from),
                "conf/openerp.toml no longer contains {from}: update tests/openerp.rs"
            );
            text = text.replace(from, &to);
        }
        let config = dir.join("openerp.toml");
        fs::write(&config, text).expect("write the deployment copy");
        let cert = ssl.join("server.crt");
        Deployment {
            dir,
            config,
            cert,
            ports,
        }
    }

    /// Starts torii on the copy; returns it with the certificate path (the
    /// directory lives as long as the process).
    fn start(self) -> (Torii, PathBuf, Ports) {
        let (cert, ports) = (self.cert.clone(), self.ports);
        (Torii::start_file(self.dir, self.config), cert, ports)
    }
}

/// Access-log lines (JSON) of requests forwarded to `upstream`.
fn forwarded(torii: &Torii, upstream: &str) -> usize {
    let needle = format!("\"upstream\":\"{upstream}\"");
    torii
        .stdout()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// One response as curl saw it: the last head of its `-D` file (after any
/// 100 Continue) and the body.
#[derive(Debug)]
struct CurlResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    connects: u32,
}

impl CurlResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Runs one curl with one transfer per element of `transfers` (joined by
/// `--next`, so they share one connection when they can); `common` options
/// are repeated for each transfer.
fn curl(dir: &Path, common: &[String], transfers: &[Vec<String>]) -> Vec<CurlResponse> {
    let mut args: Vec<String> = Vec::new();
    for (i, t) in transfers.iter().enumerate() {
        if i > 0 {
            args.push("--next".into());
        }
        args.extend(["-sS", "--max-time", "20", "-w", "%{num_connects}\\n"].map(String::from));
        args.extend(common.iter().cloned());
        args.push("-D".into());
        args.push(dir.join(format!("h{i}")).display().to_string());
        args.push("-o".into());
        args.push(dir.join(format!("b{i}")).display().to_string());
        args.extend(t.iter().cloned());
    }
    let out = Command::new("curl")
        .args(&args)
        .output()
        .expect("run curl (Debian package curl, .ci/apt-openerp.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let connects: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    (0..transfers.len())
        .map(|i| {
            let head = fs::read_to_string(dir.join(format!("h{i}"))).unwrap_or_default();
            let block = head
                .split("\r\n\r\n")
                .filter(|b| b.starts_with("HTTP/"))
                .last()
                .unwrap_or_else(|| panic!("no response head from curl: {head:?}"))
                .to_string();
            let mut lines = block.lines();
            let status = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            CurlResponse {
                status,
                headers,
                body: fs::read_to_string(dir.join(format!("b{i}"))).unwrap_or_default(),
                connects: connects.get(i).copied().unwrap_or(u32::MAX),
            }
        })
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `--cacert` and `--resolve` so that curl reaches https://erp.example.com:PORT
/// on loopback and trusts only torii's certificate.
fn tls_opts(cert: &Path, ports: &[u16]) -> Vec<String> {
    let mut v = vec!["--cacert".to_string(), cert.display().to_string()];
    for p in ports {
        v.push("--resolve".into());
        v.push(format!("{HOST}:{p}:127.0.0.1"));
    }
    v
}

#[test]
fn configtest_passes_with_the_certificates_and_names_a_missing_key() {
    let d = Deployment::new(free_port(), free_port());
    let config = d.config.to_str().expect("utf-8 path").to_string();
    let out = run_torii(&["-t", "-c", &config]);
    assert!(out.status.success(), "torii -t: {}", out.all());
    assert!(
        out.all()
            .contains(&format!("configuration {config} test is successful")),
        "{}",
        out.all()
    );

    // apache2ctl configtest's job: a key that is not there is reported with
    // the place in the file, and the test fails.
    let key = d.cert.with_file_name("server.key");
    fs::remove_file(&key).expect("remove the key");
    let out = run_torii(&["-t", "-c", &config]);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    assert!(
        out.all().contains(&format!("{config}:")) && out.all().contains(&key.display().to_string()),
        "{}",
        out.all()
    );
}

#[test]
fn web_client_over_https_redirects_headers_login_and_reload() {
    let web_port = Arc::new(AtomicU16::new(0));
    let wp = Arc::clone(&web_port);
    // The web client: "/" sends the browser to its login page by an
    // absolute URL at its own address, as openerp-web does.
    let web = Backend::start(move |req| {
        let me = wp.load(Ordering::SeqCst);
        match req.target.as_str() {
            "/" => Reply::new(302).header("Location", &format!("http://127.0.0.1:{me}/web/login")),
            _ => Reply::ok(common::backend::echo_text(req)),
        }
    });
    web_port.store(web.port(), Ordering::SeqCst);
    // Nothing listens at the server port: /webdav/ answers 502.
    let d = Deployment::new(web.port(), free_port());
    let tmp = TempDir::new("curl");
    let (torii, cert, p) = d.start();
    let tls = tls_opts(&cert, &[p.https]);

    // Port 80: every URL goes to the same one over HTTPS.
    let r = &curl(
        tmp.path(),
        &strings(&["--resolve", &format!("{HOST}:{}:127.0.0.1", p.http)]),
        &[vec![format!(
            "http://{HOST}:{}/web/webclient/home?db=erp#x",
            p.http
        )]],
    )[0];
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(
        r.header("Location"),
        Some(format!("https://{HOST}/web/webclient/home?db=erp").as_str())
    );
    assert_eq!(
        r.header("Strict-Transport-Security"),
        None,
        "HSTS is never sent over plain HTTP (RFC 6797 7.2)"
    );

    let base = format!("https://{HOST}:{}", p.https);
    let rs = curl(
        tmp.path(),
        &tls,
        &[
            vec![format!("{base}/")],
            vec![format!("{base}/web/webclient/home?db=erp")],
            vec![format!("{base}/webdav/erp/")],
        ],
    );
    // The login redirect comes back at the public https URL (ProxyPassReverse).
    assert_eq!(rs[0].status, 302, "{:?}", rs[0]);
    assert_eq!(
        rs[0].header("Location"),
        Some(format!("{base}/web/login").as_str())
    );
    // The web client sees https and the public host (tools.proxy.on).
    assert_eq!(rs[1].status, 200, "{:?}", rs[1]);
    let seen = web.last();
    assert_eq!(seen.target, "/web/webclient/home?db=erp");
    assert_eq!(seen.header("X-Forwarded-Proto"), Some("https"));
    assert_eq!(
        seen.header("Host"),
        Some(format!("{HOST}:{}", p.https).as_str())
    );
    assert_eq!(seen.header("X-Forwarded-For"), Some("127.0.0.1"));
    assert_eq!(seen.header("Via"), Some("1.1 torii"));
    // The security headers, on torii's own 502 too.
    assert_eq!(rs[2].status, 502, "{:?}", rs[2]);
    for r in &rs {
        assert_eq!(
            r.header("Strict-Transport-Security"),
            Some("max-age=31536000; includeSubDomains"),
            "{r:?}"
        );
        assert_eq!(r.header("X-Frame-Options"), Some("SAMEORIGIN"), "{r:?}");
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"), "{r:?}");
    }

    // An edit, then `torii -s reload`: the next request has the new header.
    let text = fs::read_to_string(torii.config_path()).expect("read config");
    fs::write(
        torii.config_path(),
        text.replace(
            "\"X-Frame-Options\" = \"SAMEORIGIN\"",
            "\"X-Frame-Options\" = \"DENY\"",
        ),
    )
    .expect("edit config");
    let config = torii.config_path().to_str().expect("utf-8").to_string();
    let out = run_torii(&["-s", "reload", "-c", &config]);
    assert!(out.status.success(), "torii -s reload: {}", out.all());
    let mut last = None;
    let ok = wait_until(Duration::from_secs(10), || {
        let r = curl(tmp.path(), &tls, &[vec![format!("{base}/")]]).remove(0);
        let done = r.header("X-Frame-Options") == Some("DENY");
        last = Some(r);
        done
    });
    assert!(ok, "reload not applied: {last:?}\n{}", torii.stderr());
}

/// One WebDAV request: method, path under /webdav/, extra headers, body.
struct DavCall {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: &'static str,
}

#[test]
fn webdav_methods_and_headers_pass_with_one_upstream_connection_each() {
    let lock = "opaquelocktoken:e71d4fae-5dec-22d6-fea5-00a0c91e6be4";
    // The OpenERP server's WebDAV side: answers like a DAV server, with the
    // response headers clients rely on.
    let server = Backend::start(move |req| {
        match req.method.as_str() {
        "OPTIONS" => Reply::new(200)
            .header("DAV", "1, 2, access-control, calendar-access")
            .header("Allow", "OPTIONS, GET, PUT, DELETE, PROPFIND, PROPPATCH, COPY, MOVE, LOCK, UNLOCK, MKCOL, REPORT"),
        "PROPFIND" | "REPORT" | "PROPPATCH" => Reply::new(207)
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\
                 <D:response><D:href>{}</D:href><D:propstat><D:prop/>\
                 <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>\n",
                req.target
            )),
        "LOCK" => Reply::new(200)
            .header("Lock-Token", &format!("<{lock}>"))
            .header("Content-Type", "application/xml; charset=utf-8")
            .body("<?xml version=\"1.0\"?><D:prop xmlns:D=\"DAV:\"><D:lockdiscovery/></D:prop>"),
        "UNLOCK" | "DELETE" => Reply::new(204),
        _ => Reply::new(201),
    }
    });
    let d = Deployment::new(free_port(), server.port());
    let tmp = TempDir::new("dav");
    let (torii, cert, p) = d.start();
    let base = format!("https://{HOST}:{}", p.https);
    let upstream_base = format!("http://{HOST}:{}", p.https);
    let propfind = "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>";
    let calls = vec![
        DavCall {
            method: "OPTIONS",
            path: "/webdav/erp/",
            headers: vec![],
            body: "",
        },
        DavCall {
            method: "PROPFIND",
            path: "/webdav/erp/Documents/",
            headers: vec![("Depth", "1".into())],
            body: propfind,
        },
        DavCall {
            method: "MKCOL",
            path: "/webdav/erp/Documents/new/",
            headers: vec![],
            body: "",
        },
        DavCall {
            method: "PUT",
            path: "/webdav/erp/Documents/a.txt",
            headers: vec![
                ("If-None-Match", "*".into()),
                ("Content-Type", "text/plain".into()),
            ],
            body: "hello from the GTK client\n",
        },
        DavCall {
            method: "LOCK",
            path: "/webdav/erp/Documents/a.txt",
            headers: vec![
                ("Depth", "0".into()),
                ("Timeout", "Second-600, Infinite".into()),
            ],
            body: "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>",
        },
        DavCall {
            method: "PROPPATCH",
            path: "/webdav/erp/Documents/a.txt",
            headers: vec![("If", format!("(<{lock}>)"))],
            body: "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><x xmlns=\"urn:t\">1</x></D:prop></D:set></D:propertyupdate>",
        },
        DavCall {
            method: "COPY",
            path: "/webdav/erp/Documents/a.txt",
            headers: vec![
                (
                    "Destination",
                    format!("{base}/webdav/erp/Documents/b%20copy.txt"),
                ),
                ("Overwrite", "F".into()),
                ("Depth", "infinity".into()),
            ],
            body: "",
        },
        DavCall {
            method: "MOVE",
            path: "/webdav/erp/Documents/a.txt",
            headers: vec![
                ("Destination", format!("{base}/webdav/erp/Archive/a.txt")),
                ("Overwrite", "T".into()),
                (
                    "If",
                    format!("<{base}/webdav/erp/Documents/a.txt> (<{lock}>)"),
                ),
            ],
            body: "",
        },
        DavCall {
            method: "UNLOCK",
            path: "/webdav/erp/Archive/a.txt",
            headers: vec![("Lock-Token", format!("<{lock}>"))],
            body: "",
        },
        DavCall {
            method: "REPORT",
            path: "/webdav/erp/calendars/users/admin/c/Meetings/",
            headers: vec![("Depth", "1".into())],
            body: "<?xml version=\"1.0\"?><C:calendar-query xmlns:C=\"urn:ietf:params:xml:ns:caldav\" xmlns:D=\"DAV:\"><D:prop><D:getetag/></D:prop></C:calendar-query>",
        },
        DavCall {
            method: "DELETE",
            path: "/webdav/erp/Documents/new/",
            headers: vec![],
            body: "",
        },
    ];
    let transfers: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            let mut t = vec!["-X".to_string(), c.method.to_string()];
            for (n, v) in &c.headers {
                t.push("-H".into());
                t.push(format!("{n}: {v}"));
            }
            if !c.body.is_empty() {
                t.push("--data-binary".into());
                t.push(c.body.to_string());
                if !c.headers.iter().any(|(n, _)| *n == "Content-Type") {
                    t.push("-H".into());
                    t.push("Content-Type: application/xml; charset=utf-8".into());
                }
            }
            t.push(format!("{base}{}", c.path));
            t
        })
        .collect();
    let rs = curl(tmp.path(), &tls_opts(&cert, &[p.https]), &transfers);

    // The client kept one connection for all of them...
    let opened: u32 = rs.iter().map(|r| r.connects).sum();
    assert_eq!(opened, 1, "curl should reuse its connection: {rs:?}");
    // ...and every request reached the server on a fresh connection of its
    // own, told to close (proxy-nokeepalive).
    let seen = server.requests();
    assert_eq!(seen.len(), calls.len(), "{seen:?}");
    assert_eq!(server.connections(), calls.len());
    for (i, (c, s)) in calls.iter().zip(&seen).enumerate() {
        assert_eq!(s.method, c.method);
        assert_eq!(s.target, c.path);
        assert_eq!(s.conn, i, "request {i} on connection {}", s.conn);
        assert_eq!(s.seq_on_conn, 0);
        assert!(s.has_token("Connection", "close"), "{s:?}");
        assert_eq!(s.body_str(), c.body, "{} body", c.method);
        for (n, v) in &c.headers {
            let want = if *n == "Destination" {
                // Rewritten to the URL the server sees itself at: same Host,
                // plain http.
                v.replacen(&base, &upstream_base, 1)
            } else {
                v.clone()
            };
            assert_eq!(s.header(n), Some(want.as_str()), "{} {n}", c.method);
        }
    }

    // The response headers and multi-status bodies come back unchanged.
    assert_eq!(
        rs[0].header("DAV"),
        Some("1, 2, access-control, calendar-access")
    );
    assert!(
        rs[0]
            .header("Allow")
            .is_some_and(|a| a.contains("PROPFIND"))
    );
    for i in [1, 5, 9] {
        assert_eq!(rs[i].status, 207, "{:?}", rs[i]);
        assert!(
            rs[i]
                .body
                .contains(&format!("<D:href>{}</D:href>", calls[i].path)),
            "{:?}",
            rs[i]
        );
    }
    assert_eq!(
        rs[4].header("Lock-Token"),
        Some(format!("<{lock}>").as_str())
    );
    assert_eq!(
        rs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 207, 201, 201, 200, 207, 201, 201, 204, 207, 204]
    );
    assert!(
        wait_until(Duration::from_secs(5), || forwarded(&torii, "webdav")
            == calls.len()),
        "access log:\n{}",
        torii.stdout()
    );
}

#[test]
fn multistatus_streams_through_in_pieces() {
    // A PROPFIND Depth: infinity over a big tree: the server sends the first
    // <D:response> and waits; the client must have it before the rest exists.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let first = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\
                 <D:response><D:href>/webdav/erp/first</D:href><D:status>HTTP/1.1 200 OK</D:status></D:response>\n";
    let rest: String = (0..2000)
        .map(|i| format!("<D:response><D:href>/webdav/erp/f{i}</D:href><D:status>HTTP/1.1 200 OK</D:status></D:response>\n"))
        .collect::<String>()
        + "</D:multistatus>\n";
    let expected = format!("{first}{rest}");
    let rest_c = rest.clone();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => return String::new(),
            }
        }
        let chunk = |d: &str| format!("{:x}\r\n{d}\r\n", d.len());
        let _ = s.write_all(
            format!(
                "HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml; charset=utf-8\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{}",
                chunk(first)
            )
            .as_bytes(),
        );
        // Bounded: without the go-ahead the test has failed anyway.
        let _ = go_rx.recv_timeout(Duration::from_secs(15));
        let mut tail = String::new();
        for piece in rest_c.as_bytes().chunks(7000) {
            tail.push_str(&chunk(std::str::from_utf8(piece).expect("ascii")));
        }
        tail.push_str("0\r\n\r\n");
        let _ = s.write_all(tail.as_bytes());
        String::from_utf8_lossy(&head).to_string()
    });

    let d = Deployment::new(free_port(), port);
    let (_torii, cert, p) = d.start();
    let mut args = tls_opts(&cert, &[p.https]);
    args.extend(strings(&[
        "-sS",
        "-N",
        "--max-time",
        "30",
        "-X",
        "PROPFIND",
    ]));
    args.extend(strings(&["-H", "Depth: infinity"]));
    args.push(format!("https://{HOST}:{}/webdav/erp/", p.https));
    let mut child = Command::new("curl")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run curl");
    let mut out = child.stdout.take().expect("curl stdout");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < first.len() {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => got.extend(b),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the first part of the 207 did not arrive on its own: got {:?}",
                    String::from_utf8_lossy(&got)
                );
            }
        }
    }
    assert_eq!(String::from_utf8_lossy(&got), first);
    go_tx.send(()).expect("release the server");
    let end = Instant::now() + Duration::from_secs(20);
    while let Ok(b) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        got.extend(b);
    }
    let _ = child.wait();
    assert_eq!(String::from_utf8_lossy(&got), expected);
    let head = server.join().expect("server thread");
    assert!(
        head.starts_with("PROPFIND /webdav/erp/ HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nDepth: infinity\r\n"), "{head}");
}

/// Per litmus suite, each test's outcome: "pass", "fail" or "skip".
type LitmusResults = BTreeMap<String, BTreeMap<String, &'static str>>;

const SUITES: [&str; 5] = ["basic", "copymove", "props", "locks", "http"];

/// Parses litmus output. Its progress lines are doubled (stdout and stderr
/// interleave), so a test's outcome is read from the text between its first
/// mention and the next test's.
fn parse_litmus(out: &str) -> LitmusResults {
    let mut res = LitmusResults::new();
    for part in out.split("-> running `").skip(1) {
        let Some((suite, body)) = part.split_once("':") else {
            continue;
        };
        // (name, offset of its first mention)
        let mut tests: Vec<(String, usize)> = Vec::new();
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
                let num_end = i + bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                let rest = &body[num_end..];
                if let Some(r) = rest.strip_prefix(". ") {
                    let name: String = r
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    // Long names fill the column: "18. cond_put_corrupt_token pass".
                    let after = r[name.len()..].chars().next();
                    if !name.is_empty() && matches!(after, Some('.' | ' ')) {
                        // Numbered: a suite may run a test of the same name
                        // more than once (locks' notowner_modify).
                        let key = format!("{:>2}. {name}", &body[i..num_end]);
                        if !tests.iter().any(|(n, _)| *n == key) {
                            tests.push((key, i));
                        }
                        i = num_end;
                        continue;
                    }
                }
                i = num_end;
                continue;
            }
            i += 1;
        }
        let summary = body.find("<- summary").unwrap_or(body.len());
        let mut outcomes = BTreeMap::new();
        for (k, (name, start)) in tests.iter().enumerate() {
            let end = tests.get(k + 1).map_or(summary, |(_, s)| *s);
            let seg = &body[*start..end.max(*start)];
            let outcome = if seg.contains("FAIL") {
                "fail"
            } else if seg.contains("SKIPPED") {
                "skip"
            } else if seg.contains("pass") {
                "pass"
            } else {
                "fail"
            };
            outcomes.insert(name.clone(), outcome);
        }
        // Cross-check with litmus's own count: "of N tests run: P passed, F failed".
        if let Some(line) = body[summary..].lines().next()
            && let Some(run) = line.split("of ").nth(1)
        {
            let num = |after: &str| -> Option<usize> {
                run.split(after)
                    .next()?
                    .split_whitespace()
                    .last()?
                    .parse()
                    .ok()
            };
            let passed = outcomes.values().filter(|o| **o == "pass").count();
            let failed = outcomes.values().filter(|o| **o == "fail").count();
            assert_eq!(
                (num(" tests run"), num(" passed"), num(" failed")),
                (Some(passed + failed), Some(passed), Some(failed)),
                "litmus output parsed wrongly for {suite}: {line}"
            );
        }
        res.insert(suite.to_string(), outcomes);
    }
    res
}

fn counts(r: &LitmusResults, suite: &str) -> (usize, usize, usize) {
    let m = r.get(suite);
    let n = |o: &str| m.map_or(0, |m| m.values().filter(|v| **v == o).count());
    (n("pass"), n("fail"), n("skip"))
}

fn litmus(url: &str, dir: &Path, tag: &str) -> (LitmusResults, String) {
    let mut cmd = Command::new("litmus");
    // litmus writes debug.log and child.log into its working directory.
    let cwd = dir.join(format!("litmus-{tag}"));
    fs::create_dir_all(&cwd).expect("litmus working directory");
    cmd.arg("-k")
        .arg(url)
        .env("TESTS", SUITES.join(" "))
        .current_dir(&cwd);
    let log = dir.join(format!("litmus-{tag}.log"));
    let mut p = Proc {
        child: cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).expect("litmus log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("run litmus: {e} (Debian package litmus, .ci/apt-openerp.txt)")
            }),
        log,
    };
    let done = wait_until(LITMUS, || p.child.try_wait().ok().flatten().is_some());
    assert!(done, "litmus {url} did not finish within {LITMUS:?}");
    let out = p.log();
    (parse_litmus(&out), out)
}

#[test]
fn litmus_through_torii_passes_whatever_passes_directly() {
    let tmp = TempDir::new("litmus");
    let root = tmp.join("dav");
    fs::create_dir_all(&root).expect("mkdir dav root");
    let dav_port = free_port();
    let mut dav = Proc::spawn(
        Command::new(python())
            .arg(fixture("webdav_server.py"))
            .arg(dav_port.to_string())
            .arg(&root),
        tmp.join("wsgidav.log"),
    );
    dav.wait_listening(dav_port);
    let dav_addr: SocketAddr = ([127, 0, 0, 1], dav_port).into();

    // Plain http through torii: the same upstream settings as the
    // deployment's "webdav", with its own counting forwarder.
    let fwd_http = CountingForwarder::start(dav_addr);
    let plain = Conf::new()
        .global("access_log_format = \"json\"")
        .upstream("webdav", &[fwd_http.addr], "keepalive = false")
        .listener("http", "")
        .route("path = \"/webdav/\"\nupstream = \"webdav\"")
        .start();
    // HTTPS through the deployment itself.
    let fwd_https = CountingForwarder::start(dav_addr);
    let (deploy, _cert, p) = Deployment::new(free_port(), fwd_https.port()).start();

    let (direct, direct_out) = litmus(
        &format!("http://127.0.0.1:{dav_port}/webdav/"),
        tmp.path(),
        "direct",
    );
    let (via_http, http_out) = litmus(
        &format!("http://{}/webdav/", plain.addr()),
        tmp.path(),
        "torii-http",
    );
    // litmus accepts any server certificate (neon without verification):
    // no --insecure exists or is needed.
    let (via_https, https_out) = litmus(
        &format!("https://127.0.0.1:{}/webdav/", p.https),
        tmp.path(),
        "torii-https",
    );

    println!("litmus results (pass/fail/skip):");
    println!(
        "{:<10} {:>14} {:>14} {:>14}",
        "suite", "direct", "torii http", "torii https"
    );
    for s in SUITES {
        let f = |r: &LitmusResults| {
            let (p, f, k) = counts(r, s);
            format!("{p}/{f}/{k}")
        };
        println!(
            "{s:<10} {:>14} {:>14} {:>14}",
            f(&direct),
            f(&via_http),
            f(&via_https)
        );
    }

    for s in SUITES {
        let (passed, _, _) = counts(&direct, s);
        assert!(
            passed > 0,
            "litmus suite {s} passed nothing directly against WsgiDAV:\n{direct_out}\n{}",
            dav.log()
        );
    }
    for (name, results, out) in [
        ("http", &via_http, &http_out),
        ("https", &via_https, &https_out),
    ] {
        for s in SUITES {
            for (t, o) in &direct[s] {
                let through = results.get(s).and_then(|m| m.get(t)).copied();
                // Over TLS litmus itself skips expect100, and only that.
                if name == "https" && t.ends_with("expect100") && through == Some("skip") {
                    continue;
                }
                if *o == "pass" {
                    assert_eq!(
                        through,
                        Some("pass"),
                        "litmus {s}/{t} passes directly but not through torii {name}:\n{out}"
                    );
                }
            }
        }
    }

    // One upstream connection per forwarded request, on both routes.
    for (t, fwd, label) in [(&plain, &fwd_http, "http"), (&deploy, &fwd_https, "https")] {
        let mut logged = 0;
        let ok = wait_until(Duration::from_secs(5), || {
            logged = forwarded(t, "webdav");
            logged > 0 && logged == fwd.connections()
        });
        assert!(
            ok,
            "torii {label}: {logged} requests forwarded over {} upstream connections",
            fwd.connections()
        );
        println!(
            "torii {label}: {logged} requests, {} upstream connections",
            fwd.connections()
        );
    }
}

#[test]
fn caldav_client_creates_and_reads_an_event_over_https() {
    let tmp = TempDir::new("caldav");
    let rad_port = free_port();
    let mut radicale = Proc::spawn(
        Command::new(python())
            .args(["-m", "radicale", "-C", ""])
            .arg("--server-hosts")
            .arg(format!("127.0.0.1:{rad_port}"))
            // Served under OpenERP's vdir, as the guide's calendar URLs are.
            .args(["--server-script-name", "/webdav"])
            .arg("--storage-filesystem-folder")
            .arg(tmp.join("collections"))
            .args(["--auth-type", "none", "--rights-type", "owner_only"]),
        tmp.join("radicale.log"),
    );
    radicale.wait_listening(rad_port);
    let fwd = CountingForwarder::start(([127, 0, 0, 1], rad_port).into());
    let (torii, cert, p) = Deployment::new(free_port(), fwd.port()).start();

    let url = format!("https://127.0.0.1:{}/webdav/", p.https);
    let (ok, out) = run(
        Command::new(python())
            .arg(fixture("caldav_client.py"))
            .arg(&url)
            .arg(&cert),
        SCRIPT,
        tmp.path(),
        "caldav-client",
    );
    assert!(
        ok,
        "caldav client failed:\n{out}\nradicale:\n{}",
        radicale.log()
    );
    let line = out.lines().last().unwrap_or_default();
    for want in [
        format!("\"calendar\": \"{url}admin/sales/\""),
        format!("\"calendars\": [\"{url}admin/sales/\"]"),
        "\"found\": 1".to_string(),
        "\"summary_ok\": true".to_string(),
        "\"after_delete\": 0".to_string(),
    ] {
        assert!(line.contains(&want), "{want} not in {line}");
    }
    let mut logged = 0;
    let same = wait_until(Duration::from_secs(5), || {
        logged = forwarded(&torii, "webdav");
        logged > 0 && logged == fwd.connections()
    });
    assert!(
        same,
        "{logged} CalDAV requests over {} upstream connections",
        fwd.connections()
    );
}

#[test]
fn xmlrpc_clients_reach_the_server_over_the_tls_listener() {
    let tmp = TempDir::new("xmlrpc");
    let port = free_port();
    let mut server = Proc::spawn(
        Command::new(python())
            .arg(fixture("xmlrpc_server.py"))
            .arg(port.to_string()),
        tmp.join("xmlrpc-server.log"),
    );
    server.wait_listening(port);
    let (_torii, cert, p) = Deployment::new(free_port(), port).start();
    let (ok, out) = run(
        Command::new(python())
            .arg(fixture("xmlrpc_client.py"))
            .arg(format!("https://127.0.0.1:{}", p.xmlrpcs))
            .arg(&cert),
        SCRIPT,
        tmp.path(),
        "xmlrpc-client",
    );
    assert!(
        ok,
        "xmlrpc client failed:\n{out}\nserver:\n{}",
        server.log()
    );
    let line = out.lines().last().unwrap_or_default();
    for want in [
        "\"server_version\": \"6.0.4\"",
        "\"uid\": 1",
        "\"denied\": false",
        "\"echo_ok\": true",
        "\"X-Forwarded-Proto\": \"https\"",
        "\"path\": \"/xmlrpc/common\"",
        "\"untrusted_rejected\": true",
    ] {
        assert!(line.contains(want), "{want} not in {line}");
    }

    // Plain HTTP on the TLS port gets no XML-RPC answer.
    let raw = common::send_raw(
        ([127, 0, 0, 1], p.xmlrpcs).into(),
        b"POST /xmlrpc/common HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(
        !String::from_utf8_lossy(&raw).contains("methodResponse"),
        "{raw:?}"
    );
}

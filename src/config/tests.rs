//! Tests of the whole `parse` pipeline: defaults, every key, every error
//! kind with its position, the bundled configuration files and the man page.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{self, fields_of};
use super::*;

const FILE: &str = "/etc/torii/torii.toml";

const MINIMAL: &str = r#"
[[listener]]
name = "http"
bind = "127.0.0.1:8080"

[[route]]
respond = {}
"#;

fn ok(text: &str) -> Loaded {
    match parse(Path::new(FILE), text) {
        Ok(l) => l,
        Err(e) => panic!("unexpected errors: {e:#?}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(Path::new(FILE), text) {
        Ok(l) => panic!("accepted: {:#?}", l.config),
        Err(e) => e,
    }
}

/// Asserts exactly one error, at `line:col`, whose message contains `needle`.
fn one_error(text: &str, line: usize, col: usize, needle: &str) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].pos, Pos { line, col }, "{}", e[0]);
    assert!(
        e[0].message.contains(needle),
        "{:?} lacks {needle:?}",
        e[0].message
    );
}

#[test]
fn minimal_file_gets_every_default() {
    let c = ok(MINIMAL).config;
    assert_eq!(c.source, PathBuf::from(FILE));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.global.workers, cores);
    assert_eq!(c.global.pid_file, None);
    assert_eq!(c.global.user, None);
    assert_eq!(c.global.access_log, LogTarget::Stdout);
    assert_eq!(c.global.access_log_format, LogFormat::Combined);
    assert_eq!(c.global.log_level, "info");
    assert!(!c.global.watch);
    assert!(c.global.via);
    assert_eq!(c.global.max_connections, 10_000);
    let t = c.timeouts;
    assert_eq!(t.client_header, Duration::from_secs(10));
    assert_eq!(t.client_body, Duration::from_secs(60));
    assert_eq!(t.client_keepalive, Duration::from_secs(75));
    assert_eq!(t.upstream_connect, Duration::from_secs(5));
    assert_eq!(t.upstream_read, Duration::from_secs(60));
    assert_eq!(t.upstream_send, Duration::from_secs(60));
    assert_eq!(t.upstream_idle, Duration::from_secs(60));
    assert_eq!(t.shutdown, Duration::from_secs(30));
    assert_eq!(c.limits.max_request_head, 16 * 1024);
    assert_eq!(c.limits.max_request_body, Some(1 << 30));
    assert_eq!(c.limits.max_response_head, 64 * 1024);
    let r = &c.routes[0];
    assert_eq!(r.listeners, vec![0]);
    assert!(r.hosts.is_empty());
    assert_eq!(r.path, "/");
    assert_eq!(
        r.action,
        Action::Respond {
            status: 200,
            body: String::new(),
            content_type: "text/plain".into()
        }
    );
    assert!(r.preserve_host && r.rewrite_location);
    assert_eq!(r.upstream_path, None);
    assert_eq!(r.request_headers, HeaderEdits::default());
    assert!(r.response_headers.is_empty());
    assert_eq!(r.pos, Pos { line: 6, col: 1 });
    assert_eq!(c.listeners[0].pos, Pos { line: 2, col: 1 });
    assert_eq!(c.listeners[0].tls, None);
}

const FULL: &str = r#"
[global]
workers = 3
pid_file = "run/torii.pid"
user = "torii"
access_log = "/var/log/torii/access.log"
access_log_format = "json"
log_level = "torii=debug,warn"
watch = true
via = false
max_connections = 500

[timeouts]
client_header = "500ms"
client_body = "2m"
client_keepalive = "1h"
upstream_connect = "1s"
upstream_read = "2s"
upstream_send = "3s"
upstream_idle = "4s"
shutdown = "0s"

[limits]
max_request_head = 8192
max_request_body = "0"
max_response_head = "1KB"

[[upstream]]
name = "web"
servers = ["127.0.0.1:9000", "[::1]:9001", "localhost:9002"]

[[upstream]]
name = "dav"
servers = ["127.0.0.1:8069"]
keepalive = false
max_idle = 4

[[listener]]
name = "https"
bind = "[::1]:8443"
tls = { certificates = [ { cert = "a.crt", key = "/abs/a.key" }, { cert = "sub/b.crt", key = "sub/b.key" } ], min_version = "1.3" }
response_headers = { "X-Frame-Options" = "SAMEORIGIN", "Strict-Transport-Security" = "max-age=1", "A-Last" = "z" }

[[listener]]
name = "http"
bind = "127.0.0.1:8080"

[[route]]
listeners = ["http"]
path = "/"
redirect = "https://{host}{request_uri}"
status = 308

[[route]]
listeners = ["https"]
hosts = ["ERP.example.com", "*.Example.com"]
path = "/webdav/"
upstream = "dav"
upstream_path = "/"
preserve_host = false
rewrite_location = false
request_headers = { set = { "X-Custom" = "1", "A-Second" = "2" }, remove = ["X-Debug"] }
response_headers = { "Cache-Control" = "no-store" }

[[route]]
listeners = ["https", "http"]
path = "/hello"
respond = { status = 404, body = "nope\n", content_type = "text/html" }

[[route]]
listeners = ["https"]
upstream = "web"
"#;

#[test]
fn every_key_is_parsed() {
    let loaded = ok(FULL);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    let g = &c.global;
    assert_eq!(g.workers, 3);
    assert_eq!(g.pid_file, Some(PathBuf::from("/etc/torii/run/torii.pid")));
    assert_eq!(g.user.as_deref(), Some("torii"));
    assert_eq!(
        g.access_log,
        LogTarget::File("/var/log/torii/access.log".into())
    );
    assert_eq!(g.access_log_format, LogFormat::Json);
    assert_eq!(g.log_level, "torii=debug,warn");
    assert!(g.watch);
    assert!(!g.via);
    assert_eq!(g.max_connections, 500);
    let t = c.timeouts;
    assert_eq!(t.client_header, Duration::from_millis(500));
    assert_eq!(t.client_body, Duration::from_secs(120));
    assert_eq!(t.client_keepalive, Duration::from_secs(3600));
    assert_eq!(t.upstream_connect, Duration::from_secs(1));
    assert_eq!(t.upstream_read, Duration::from_secs(2));
    assert_eq!(t.upstream_send, Duration::from_secs(3));
    assert_eq!(t.upstream_idle, Duration::from_secs(4));
    assert_eq!(t.shutdown, Duration::ZERO);
    assert_eq!(c.limits.max_request_head, 8192);
    assert_eq!(c.limits.max_request_body, None);
    assert_eq!(c.limits.max_response_head, 1000);

    let web = &c.upstreams[0];
    assert_eq!(web.name, "web");
    assert_eq!(web.servers.len(), 3);
    assert_eq!(web.servers[0].text, "127.0.0.1:9000");
    assert_eq!(
        web.servers[0].addrs,
        vec!["127.0.0.1:9000".parse().unwrap()]
    );
    assert_eq!(web.servers[1].addrs, vec!["[::1]:9001".parse().unwrap()]);
    assert!(!web.servers[2].addrs.is_empty());
    assert!(web.keepalive);
    assert_eq!(web.max_idle, 32);
    let dav = &c.upstreams[1];
    assert!(!dav.keepalive);
    assert_eq!(dav.max_idle, 4);

    let https = &c.listeners[0];
    assert_eq!(https.bind, "[::1]:8443".parse().unwrap());
    let tls = https.tls.as_ref().unwrap();
    assert_eq!(tls.min_version, TlsVersion::V1_3);
    assert_eq!(
        tls.certificates,
        vec![
            CertSource::Files {
                cert: "/etc/torii/a.crt".into(),
                key: "/abs/a.key".into()
            },
            CertSource::Files {
                cert: "/etc/torii/sub/b.crt".into(),
                key: "/etc/torii/sub/b.key".into()
            },
        ]
    );
    // File order, not alphabetical order.
    let names: Vec<&str> = https
        .response_headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        ["X-Frame-Options", "Strict-Transport-Security", "A-Last"]
    );

    let r = &c.routes;
    assert_eq!(r[0].listeners, vec![1]);
    assert_eq!(
        r[0].action,
        Action::Redirect {
            template: "https://{host}{request_uri}".into(),
            status: 308
        }
    );
    assert_eq!(
        r[1].hosts,
        vec![
            HostPattern::Exact("erp.example.com".into()),
            HostPattern::Wildcard(".example.com".into())
        ]
    );
    assert_eq!(r[1].path, "/webdav/");
    assert_eq!(r[1].action, Action::Upstream(1));
    assert_eq!(r[1].upstream_path.as_deref(), Some("/"));
    assert!(!r[1].preserve_host && !r[1].rewrite_location);
    assert_eq!(
        r[1].request_headers.set,
        vec![
            ("X-Custom".into(), "1".into()),
            ("A-Second".into(), "2".into())
        ]
    );
    assert_eq!(r[1].request_headers.remove, vec!["x-debug".to_owned()]);
    assert_eq!(
        r[1].response_headers,
        vec![("Cache-Control".into(), "no-store".into())]
    );
    assert_eq!(r[2].listeners, vec![0, 1]);
    assert_eq!(
        r[2].action,
        Action::Respond {
            status: 404,
            body: "nope\n".into(),
            content_type: "text/html".into()
        }
    );
    assert_eq!(r[3].action, Action::Upstream(0));
    assert_eq!(r[3].path, "/");

    assert_eq!(
        watched_files(&c),
        vec![
            PathBuf::from(FILE),
            "/etc/torii/a.crt".into(),
            "/abs/a.key".into(),
            "/etc/torii/sub/b.crt".into(),
            "/etc/torii/sub/b.key".into()
        ]
    );
}

#[test]
fn tls_single_pair_and_self_signed_forms() {
    let c = ok(r#"
[[listener]]
name = "a"
bind = "127.0.0.1:1"
tls = { cert = "c.pem", key = "k.pem" }
[[listener]]
name = "b"
bind = "127.0.0.1:2"
tls = { self_signed = true }
[[route]]
respond = {}
"#)
    .config;
    let a = c.listeners[0].tls.as_ref().unwrap();
    assert_eq!(a.min_version, TlsVersion::V1_2);
    assert_eq!(a.pos, Pos { line: 5, col: 7 });
    assert_eq!(
        a.certificates,
        vec![CertSource::Files {
            cert: "/etc/torii/c.pem".into(),
            key: "/etc/torii/k.pem".into()
        }]
    );
    let b = c.listeners[1].tls.as_ref().unwrap();
    assert_eq!(b.certificates, vec![CertSource::SelfSigned]);
    assert_eq!(watched_files(&c).len(), 3);
}

#[test]
fn relative_paths_follow_the_config_file_not_the_cwd() {
    let text = "[global]\npid_file = \"torii.pid\"\naccess_log = \"logs/a.log\"\n[[listener]]\nname = \"s\"\nbind = \"127.0.0.1:1\"\ntls = { cert = \"../c.crt\", key = \"/k.key\" }\n[[route]]\nrespond = {}\n";
    let c = parse(Path::new("/srv/conf/torii.toml"), text)
        .unwrap()
        .config;
    assert_eq!(
        c.global.pid_file,
        Some(PathBuf::from("/srv/conf/torii.pid"))
    );
    assert_eq!(
        c.global.access_log,
        LogTarget::File("/srv/conf/logs/a.log".into())
    );
    let Some(CertSource::Files { cert, key }) = c.listeners[0]
        .tls
        .as_ref()
        .map(|t| t.certificates[0].clone())
    else {
        panic!("no cert");
    };
    assert_eq!(cert, PathBuf::from("/srv/conf/../c.crt"));
    assert_eq!(key, PathBuf::from("/k.key"));
    // A bare file name: relative to the working directory, made absolute so a
    // later chdir does not move it.
    let c = parse(Path::new("torii.toml"), text).unwrap().config;
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(c.global.pid_file, Some(cwd.join("torii.pid")));
}

#[test]
fn stdout_stderr_off_are_keywords_for_access_log() {
    for (word, target) in [
        ("stdout", LogTarget::Stdout),
        ("stderr", LogTarget::Stderr),
        ("off", LogTarget::Off),
    ] {
        let c = ok(&format!("[global]\naccess_log = \"{word}\"\n{MINIMAL}")).config;
        assert_eq!(c.global.access_log, target);
    }
}

#[test]
fn workers_auto_and_number() {
    let c = ok(&format!("[global]\nworkers = \"auto\"\n{MINIMAL}")).config;
    assert!(c.global.workers >= 1);
    let c = ok(&format!("[global]\nworkers = 1\n{MINIMAL}")).config;
    assert_eq!(c.global.workers, 1);
}

#[test]
fn syntax_error_is_single_with_position() {
    one_error("[global]\nworkers = [1,\n", 2, 14, "unclosed array");
    let e = errors("[global]\nwatch = true\nwatch = false\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].pos, Pos { line: 3, col: 1 });
    assert!(e[0].message.contains("duplicate"), "{}", e[0]);
}

#[test]
fn display_is_file_line_col_message() {
    let e = errors(&format!("[global]\n  wokers = 2\n{MINIMAL}"));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].to_string()
            .starts_with("/etc/torii/torii.toml:2:3: unknown field `wokers`"),
        "{}",
        e[0]
    );
}

#[test]
fn unknown_keys_are_named_in_every_section() {
    one_error(
        &format!("[timeouts]\nclient_head = \"1s\"\n{MINIMAL}"),
        2,
        1,
        "`client_head`",
    );
    one_error(
        &format!("[limits]\nmax_body = 1\n{MINIMAL}"),
        2,
        1,
        "`max_body`",
    );
    one_error(&format!("[nope]\n{MINIMAL}"), 1, 2, "`nope`");
    one_error(
        "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\ntls = { self_signed = true, sni = 1 }\n[[route]]\nrespond = {}\n",
        4,
        29,
        "`sni`",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/x\"\nrespond = {{ code = 1 }}\n"),
        10,
        13,
        "`code`",
    );
}

#[test]
fn type_errors_in_several_items_are_all_reported() {
    let e = errors(&format!(
        "{MINIMAL}[[route]]\npath = 1\nrespond = {{}}\n[[route]]\npreserve_host = \"yes\"\nrespond = {{}}\n"
    ));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].pos, Pos { line: 9, col: 8 });
    assert_eq!(e[1].pos, Pos { line: 12, col: 17 });
}

#[test]
fn many_validation_errors_are_reported_at_once_in_file_order() {
    let text = r#"[global]
workers = 0
access_log_format = "xml"
log_level = "=["
max_connections = -1

[timeouts]
client_header = 10
shutdown = "soon"

[limits]
max_request_head = "0"
max_request_body = "1.5GiB"

[[upstream]]
name = "u"
servers = ["nocolon", "127.0.0.1:99999", "host.invalid:80"]
max_idle = 0

[[listener]]
name = "a"
bind = "localhost:80"

[[route]]
path = "nope"
"#;
    let e = errors(text);
    let at: Vec<(usize, usize)> = e.iter().map(|e| (e.pos.line, e.pos.col)).collect();
    assert_eq!(
        at,
        vec![
            (2, 11),
            (3, 21),
            (4, 13),
            (5, 19),
            (8, 17),
            (9, 12),
            (12, 20),
            (13, 20),
            (17, 12),
            (17, 23),
            (17, 42),
            (18, 12),
            (22, 8),
            (24, 1),
            (25, 8),
        ],
        "{e:#?}"
    );
    assert!(e[0].message.contains("workers"));
    assert!(
        e[10]
            .message
            .contains("upstream u: server host.invalid:80 does not resolve"),
        "{}",
        e[10]
    );
    assert!(e[13].message.contains("no action"));
}

#[test]
fn missing_listener_is_an_error() {
    one_error("", 1, 1, "no [[listener]]");
}

#[test]
fn value_range_errors() {
    let l = "[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\n";
    one_error(
        &format!("[global]\nworkers = \"many\"\n{MINIMAL}"),
        2,
        11,
        "\"auto\"",
    );
    one_error(&format!("[global]\nuser = \"\"\n{MINIMAL}"), 2, 8, "user");
    one_error(
        &format!("[timeouts]\nupstream_read = \"0s\"\n{MINIMAL}"),
        2,
        17,
        "longer than zero",
    );
    one_error(
        &format!("[limits]\nmax_response_head = -5\n{MINIMAL}"),
        2,
        21,
        "negative",
    );
    one_error(
        &format!(
            "{l}tls = {{ min_version = \"1.1\" , self_signed = true }}\n[[route]]\nrespond = {{}}\n"
        ),
        4,
        23,
        "min_version",
    );
    one_error(
        &format!("{l}tls = {{ self_signed = false }}\n[[route]]\nrespond = {{}}\n"),
        4,
        7,
        "no certificate",
    );
    one_error(
        &format!("{l}tls = {{ cert = \"a\" }}\n[[route]]\nrespond = {{}}\n"),
        4,
        7,
        "both cert and key",
    );
    one_error(
        &format!(
            "{l}tls = {{ cert = \"a\", key = \"b\", self_signed = true }}\n[[route]]\nrespond = {{}}\n"
        ),
        4,
        7,
        "mixes",
    );
    one_error(
        &format!("{l}tls = {{ certificates = [] }}\n[[route]]\nrespond = {{}}\n"),
        4,
        24,
        "must not be empty",
    );
}

#[test]
fn duplicate_names_and_binds() {
    one_error(
        "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:1\"]\n[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:2\"]\n[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\n[[route]]\nupstream = \"u\"\n",
        5,
        8,
        "already defined at 1:1",
    );
    one_error(
        &format!("{MINIMAL}[[listener]]\nname = \"http\"\nbind = \"127.0.0.1:8081\"\n"),
        9,
        8,
        "listener \"http\" is already defined at 2:1",
    );
    one_error(
        &format!("{MINIMAL}[[listener]]\nname = \"other\"\nbind = \"127.0.0.1:8080\"\n"),
        10,
        8,
        "already used by listener \"http\"",
    );
}

#[test]
fn upstream_server_shape_and_resolution() {
    let base = "[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\n[[route]]\nupstream = \"u\"\n[[upstream]]\nname = \"u\"\n";
    one_error(
        &format!("{base}servers = []\n"),
        8,
        11,
        "servers must not be empty",
    );
    one_error(
        &format!("{base}servers = [\"::1:80\"]\n"),
        8,
        12,
        "not host:port",
    );
    one_error(
        &format!("{base}servers = [\"example.invalid:80\"]\n"),
        8,
        12,
        "does not resolve",
    );
    one_error(
        &format!("{base}servers = [\"127.0.0.1:0\"]\n"),
        8,
        12,
        "not host:port",
    );
    one_error(&format!("{base}\n"), 6, 1, "missing field `servers`");
}

#[test]
fn route_reference_errors() {
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nupstream = \"ghost\"\n"),
        10,
        12,
        "unknown upstream \"ghost\"",
    );
    one_error(
        &format!(
            "{MINIMAL}[[route]]\nlisteners = [\"http\", \"ghost\"]\npath = \"/a\"\nrespond = {{}}\n"
        ),
        9,
        22,
        "unknown listener \"ghost\"",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\nlisteners = []\npath = \"/a\"\nrespond = {{}}\n"),
        9,
        13,
        "listeners must not be empty",
    );
}

#[test]
fn route_action_errors() {
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\n"),
        8,
        1,
        "no action",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{}}\nredirect = \"/b\"\n"),
        8,
        1,
        "more than one action",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nredirect = \"/b\"\nstatus = 200\n"),
        11,
        10,
        "301, 302, 303, 307 or 308",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{}}\nstatus = 302\n"),
        11,
        10,
        "only applies to redirect",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nredirect = \"/{{nope}}\"\n"),
        10,
        12,
        "{nope}",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nredirect = \"/{{host\"\n"),
        10,
        12,
        "unclosed",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{ status = 99 }}\n"),
        10,
        22,
        "between 200 and 599",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{ status = 204, body = \"x\" }}\n"),
        10,
        34,
        "must be empty",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{}}\npreserve_host = false\n"),
        11,
        17,
        "preserve_host only applies to routes with an upstream",
    );
}

#[test]
fn route_host_and_path_errors() {
    one_error(
        &format!("{MINIMAL}[[route]]\nhosts = [\"a.com:80\"]\nrespond = {{}}\n"),
        9,
        10,
        "not a host name",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\nhosts = [\"*\"]\nrespond = {{}}\n"),
        9,
        10,
        "not a host name",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a?b\"\nrespond = {{}}\n"),
        9,
        8,
        "must start with /",
    );
    one_error(
        &format!("{MINIMAL}[[route]]\npath = \"/a%zz\"\nrespond = {{}}\n"),
        9,
        8,
        "must start with /",
    );
}

#[test]
fn header_errors() {
    one_error(
        &format!(
            "{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{}}\nresponse_headers = {{ \"Bad Name\" = \"1\" }}\n"
        ),
        11,
        22,
        "not a valid header name",
    );
    one_error(
        &format!(
            "{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{}}\nresponse_headers = {{ \"X-A\" = \"1\\r\\nX-B: 2\" }}\n"
        ),
        11,
        30,
        "line break",
    );
    one_error(
        &format!(
            "{MINIMAL}[[route]]\npath = \"/a\"\nrespond = {{}}\nresponse_headers = {{ \"X-A\" = \"1\", \"x-a\" = \"2\" }}\n"
        ),
        11,
        35,
        "set twice",
    );
    one_error(
        "[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\nresponse_headers = { \"Transfer-Encoding\" = \"chunked\" }\n[[route]]\nrespond = {}\n",
        4,
        22,
        "cannot be set",
    );
    one_error(
        "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:1\"]\n[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\n[[route]]\nupstream = \"u\"\nrequest_headers = { remove = [\"X Y\"] }\n",
        9,
        31,
        "not a valid header name",
    );
}

#[test]
fn route_conflicts_are_reported_at_the_later_route() {
    one_error(
        &format!("{MINIMAL}\n[[route]]\npath = \"/./\"\nrespond = {{}}\n"),
        9,
        1,
        "route at 9:1 conflicts with route at 6:1",
    );
    one_error(
        &format!(
            "{MINIMAL}[[route]]\nhosts = [\"a.com\", \"*.b.com\"]\npath = \"/x\"\nrespond = {{}}\n[[route]]\nhosts = [\"*.B.com\"]\npath = \"/x\"\nrespond = {{}}\n"
        ),
        12,
        1,
        "conflicts with route at 8:1",
    );
}

#[test]
fn routes_separated_by_listener_host_or_path_do_not_conflict() {
    let text = r#"
[[listener]]
name = "a"
bind = "127.0.0.1:1"
[[listener]]
name = "b"
bind = "127.0.0.1:2"
[[route]]
listeners = ["a"]
respond = {}
[[route]]
listeners = ["b"]
respond = {}
[[route]]
hosts = ["x.com"]
respond = {}
[[route]]
hosts = ["*.x.com"]
respond = {}
[[route]]
hosts = ["x.com"]
path = "/x"
respond = {}
[[route]]
hosts = ["x.com"]
path = "/x/"
respond = {}
"#;
    assert_eq!(ok(text).config.routes.len(), 6);
}

#[test]
fn warnings_for_unused_upstream_and_routeless_listener() {
    let loaded = ok(&format!(
        "{MINIMAL}[[upstream]]\nname = \"idle\"\nservers = [\"127.0.0.1:1\"]\n[[listener]]\nname = \"lonely\"\nbind = \"127.0.0.1:2\"\n"
    ));
    let w: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(":8:1: upstream \"idle\" is not used"),
        "{w:?}"
    );
    // The catch-all route has no listeners key, so it covers "lonely" too.
    let loaded = ok(&format!(
        "{MINIMAL}[[listener]]\nname = \"lonely\"\nbind = \"127.0.0.1:2\"\n[[route]]\nlisteners = [\"http\"]\npath = \"/a\"\nrespond = {{}}\n"
    ));
    assert!(loaded.warnings.is_empty());
}

#[test]
fn load_reports_unreadable_file_with_position() {
    let e = load(Path::new("/nonexistent/torii.toml")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].to_string()
            .starts_with("/nonexistent/torii.toml:1:1: cannot read"),
        "{}",
        e[0]
    );
}

#[test]
fn load_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("torii-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.config.source, path);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bundled_configuration_files_are_valid() {
    let conf = Path::new("/etc/torii/torii.toml");
    let default = parse(conf, include_str!("../../conf/torii.toml")).unwrap();
    let c = &default.config;
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[0].bind, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        c.listeners[1].tls.as_ref().map(|t| t.certificates.clone()),
        Some(vec![CertSource::SelfSigned])
    );
    assert!(c.global.watch);
    assert_eq!(c.global.pid_file, None);
    assert!(default.warnings.is_empty(), "{:?}", default.warnings);
    let full = parse(conf, include_str!("../../conf/example-full.toml")).unwrap();
    assert!(full.warnings.is_empty(), "{:?}", full.warnings);
}

/// Every key the parser accepts, with the prefix it is documented under.
fn accepted_keys() -> Vec<String> {
    let mut keys: Vec<String> = file::SECTIONS.iter().map(|s| format!("[{s}]")).collect();
    let tables: [(&str, &[&str]); 10] = [
        ("", fields_of::<file::GlobalFile>()),
        ("", fields_of::<file::TimeoutsFile>()),
        ("", fields_of::<file::LimitsFile>()),
        ("", fields_of::<file::UpstreamFile>()),
        ("", fields_of::<file::ListenerFile>()),
        ("tls.", fields_of::<file::TlsFile>()),
        // Written as `tls.certificates = [{ cert, key }, ...]`.
        ("", fields_of::<file::CertFile>()),
        ("", fields_of::<file::RouteFile>()),
        ("respond.", fields_of::<file::RespondFile>()),
        ("request_headers.", fields_of::<file::RequestHeadersFile>()),
    ];
    for (prefix, fields) in tables {
        keys.extend(fields.iter().map(|f| format!("{prefix}{f}")));
    }
    keys
}

#[test]
fn every_accepted_key_is_documented_in_the_man_page() {
    let man = include_str!("../../man/torii.toml.5");
    let keys = accepted_keys();
    assert!(
        keys.len() > 40,
        "introspection found too few keys: {keys:?}"
    );
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            if k.starts_with('[') {
                return !man.contains(k.as_str());
            }
            let bold = format!("\\fB{k}\\fR");
            !(man.contains(&bold) || man.contains(&format!(".B {k}\n")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from man/torii.toml.5: {missing:?}"
    );
}

#[test]
fn man_page_example_is_valid() {
    let man = include_str!("../../man/torii.toml.5");
    let start = man.find("\n.SH EXAMPLE").expect("EXAMPLE section");
    let block = &man[start..];
    let (Some(from), Some(to)) = (block.find(".EX\n"), block.find("\n.EE")) else {
        panic!("no .EX block in EXAMPLE");
    };
    let text = block[from + 4..to].replace("\\-", "-").replace("\\e", "\\");
    let loaded = ok(&text);
    assert_eq!(loaded.config.routes.len(), 3);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_bad_listener_does_not_make_its_routes_fail_too() {
    one_error(
        "[[listener]]\nname = \"l\"\nbind = \"nowhere\"\n[[route]]\nlisteners = [\"l\"]\nrespond = {}\n",
        3,
        8,
        "not an ip:port",
    );
}

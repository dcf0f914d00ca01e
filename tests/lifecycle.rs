//! The running process: pid file and `-s stop`, fast stop (TERM, INT),
//! graceful stop (QUIT) with a request in flight, reload (HUP and file
//! watching, a broken file keeps the old configuration), log reopening, and
//! the access log formats.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::*;

fn respond_conf(text: &str) -> Conf {
    Conf::new().listener("http", "").route(&format!(
        "path = \"/\"\nrespond = {{ status = 200, body = \"{text}\" }}"
    ))
}

#[test]
fn pid_file_is_written_and_dash_s_stop_stops_the_process() {
    let dir = TempDir::new("pid");
    let pid_path = dir.join("torii.pid");
    let text = respond_conf("x")
        .global(&format!("pid_file = \"{}\"", pid_path.display()))
        .build();
    let mut t = Torii::start(&text);
    let pid = t.pid().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || fs::read_to_string(&pid_path)
            .is_ok_and(|s| s.trim() == pid)),
        "pid file {} does not hold {pid}",
        pid_path.display()
    );
    let cfg = t.config_path().to_str().expect("utf-8 path").to_string();
    let out = run_torii(&["-s", "stop", "-c", &cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", out.all());
    let status = t.wait_exit(Duration::from_secs(5)).expect("torii stopped");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_stops_fast_and_cleanly() {
    let mut t = respond_conf("x").start();
    t.signal("TERM");
    let status = t
        .wait_exit(Duration::from_secs(5))
        .expect("torii stopped on TERM");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigint_stops_fast_and_cleanly() {
    let mut t = respond_conf("x").start();
    t.signal("INT");
    let status = t
        .wait_exit(Duration::from_secs(5))
        .expect("torii stopped on INT");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_does_not_wait_for_slow_requests() {
    let b = Backend::start(|_| Reply::ok("slow").delay(Duration::from_secs(20)));
    let mut t = proxy_to(&b, "");
    let addr = t.addr();
    let client = thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send the slow request");
        c.wait_closed(Duration::from_secs(10))
    });
    assert!(wait_until(Duration::from_secs(5), || b.heads() == 1));
    t.signal("TERM");
    assert!(
        t.wait_exit(Duration::from_secs(5)).is_some(),
        "TERM waited for a 20 s request"
    );
    let closed = client.join().expect("client thread");
    assert!(
        closed.is_ok(),
        "in-flight connection not closed by TERM: {closed:?}"
    );
}

#[test]
fn sigquit_finishes_in_flight_requests_stops_accepting_and_exits_zero() {
    let b = Backend::start(|_| Reply::ok("slow but complete").delay(Duration::from_secs(3)));
    let mut t = proxy_to(&b, "");
    let addr = t.addr();
    let in_flight = thread::spawn(move || get(addr, "x", "/slow"));
    assert!(
        wait_until(Duration::from_secs(5), || b.heads() == 1),
        "request never reached the backend"
    );

    t.signal("QUIT");
    let refused = wait_until(Duration::from_secs(2), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err()
    });
    assert!(refused, "listener still accepting after QUIT");
    assert!(
        !in_flight.is_finished(),
        "in-flight request ended before its response was due"
    );

    let r = in_flight.join().expect("in-flight client");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"slow but complete");
    let status = t
        .wait_exit(Duration::from_secs(10))
        .expect("torii exited after draining");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sighup_reloads_the_configuration() {
    let text = respond_conf("v1").build();
    let t = Torii::start(&text);
    assert_eq!(get(t.addr(), "x", "/").body, b"v1");
    fs::write(t.config_path(), text.replace("v1", "v2")).expect("rewrite config");
    t.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || get(t.addr(), "x", "/").body
            == b"v2"),
        "reload did not take effect"
    );
}

#[test]
fn dash_s_reload_reloads_the_configuration() {
    let dir = TempDir::new("pid");
    let pid_path = dir.join("torii.pid");
    let text = respond_conf("v1")
        .global(&format!("pid_file = \"{}\"", pid_path.display()))
        .build();
    let t = Torii::start(&text);
    assert!(wait_until(Duration::from_secs(5), || pid_path.exists()));
    fs::write(t.config_path(), text.replace("\"v1\"", "\"v2\"")).expect("rewrite config");
    let cfg = t.config_path().to_str().expect("utf-8 path").to_string();
    let out = run_torii(&["-s", "reload", "-c", &cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", out.all());
    assert!(wait_until(Duration::from_secs(10), || get(
        t.addr(),
        "x",
        "/"
    )
    .body
        == b"v2"));
}

#[test]
fn broken_reload_keeps_the_running_configuration_and_logs_the_position() {
    let text = respond_conf("v1").build();
    let t = Torii::start(&text);
    fs::write(t.config_path(), format!("{text}\n[global\n")).expect("break config");
    t.signal("HUP");
    let prefix = format!("{}:", t.config_path().display());
    // `FILE:LINE:COL` somewhere in the event log.
    let has_position = |log: &str| {
        log.match_indices(&prefix).any(|(i, _)| {
            let mut parts = log[i + prefix.len()..].splitn(3, ':');
            let num = |p: Option<&str>| {
                p.is_some_and(|x| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit()))
            };
            num(parts.next()) && num(parts.next())
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || has_position(&t.stderr())),
        "no FILE:LINE:COL error logged; stderr:\n{}",
        t.stderr()
    );
    let r = get(t.addr(), "x", "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"v1");
}

#[test]
fn reload_adds_a_listener_and_keeps_the_old_one() {
    let conf = respond_conf("v1");
    let text = conf.build();
    let t = Torii::start(&text);
    let port = free_port();
    let added = format!("{text}\n[[listener]]\nname = \"extra\"\nbind = \"127.0.0.1:{port}\"\n");
    fs::write(t.config_path(), added).expect("rewrite config");
    t.signal("HUP");
    let new_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        wait_until(Duration::from_secs(10), || TcpStream::connect_timeout(
            &new_addr,
            Duration::from_millis(100)
        )
        .is_ok()),
        "added listener not bound"
    );
    assert_eq!(get(new_addr, "x", "/").body, b"v1");
    assert_eq!(get(t.addr(), "x", "/").body, b"v1");
}

#[test]
fn watch_reloads_after_a_write_then_rename() {
    let text = respond_conf("v1").global("watch = true").build();
    let t = Torii::start(&text);
    assert_eq!(get(t.addr(), "x", "/").body, b"v1");
    let tmp = t.dir().join("torii.toml.tmp");
    fs::write(&tmp, text.replace("\"v1\"", "\"v2\"")).expect("write new config");
    fs::rename(&tmp, t.config_path()).expect("rename over config");
    assert!(
        wait_until(Duration::from_secs(10), || get(t.addr(), "x", "/").body
            == b"v2"),
        "file change not picked up"
    );
}

#[test]
fn sigusr1_reopens_the_access_log_file() {
    let dir = TempDir::new("log");
    let log = dir.join("access.log");
    let t = respond_conf("x")
        .global(&format!("access_log = \"{}\"", log.display()))
        .start();
    get(t.addr(), "x", "/before");
    assert!(wait_until(Duration::from_secs(5), || fs::read_to_string(
        &log
    )
    .is_ok_and(|s| s.contains("/before"))));
    let rotated = dir.join("access.log.1");
    fs::rename(&log, &rotated).expect("rotate");
    t.signal("USR1");
    assert!(
        wait_until(Duration::from_secs(5), || log.exists()),
        "log not reopened"
    );
    get(t.addr(), "x", "/after");
    assert!(wait_until(Duration::from_secs(5), || fs::read_to_string(
        &log
    )
    .is_ok_and(|s| s.contains("/after"))));
    assert!(
        !fs::read_to_string(&rotated)
            .unwrap_or_default()
            .contains("/after")
    );
}

/// Checks one combined-format line: the client part, a `[dd/Mon/yyyy:HH:MM:SS +zzzz]`
/// time, and exactly `rest` after it.
fn check_combined(line: &str, rest: &str) -> Result<(), String> {
    let after_client = line
        .strip_prefix("127.0.0.1 - - [")
        .ok_or("does not start with `127.0.0.1 - - [`")?;
    let (time, tail) = after_client
        .split_once("] ")
        .ok_or("no `] ` after the time")?;
    let b = time.as_bytes();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let ok = time.len() == 26
        && digits(0..2)
        && b[2] == b'/'
        && months.contains(&&time[3..6])
        && b[6] == b'/'
        && digits(7..11)
        && b[11] == b':'
        && digits(12..14)
        && b[14] == b':'
        && digits(15..17)
        && b[17] == b':'
        && digits(18..20)
        && b[20] == b' '
        && (b[21] == b'+' || b[21] == b'-')
        && digits(22..26);
    if !ok {
        return Err(format!("time {time:?} is not dd/Mon/yyyy:HH:MM:SS +zzzz"));
    }
    if tail != rest {
        return Err(format!("after the time: {tail:?}, expected {rest:?}"));
    }
    Ok(())
}

#[test]
fn access_log_combined_is_the_nginx_layout() {
    let t = respond_conf("hello\\n").start();
    request(
        t.addr(),
        b"GET /logged?a=1 HTTP/1.1\r\nHost: x\r\nReferer: http://ref.example/\r\nUser-Agent: test-agent/1.0\r\nConnection: close\r\n\r\n",
    );
    request(
        t.addr(),
        b"GET /bare HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let line = t
        .wait_for_stdout_line(Duration::from_secs(5), |l| l.contains("/logged"))
        .unwrap_or_else(|| panic!("no access log line; stdout:\n{}", t.stdout()));
    check_combined(
        &line,
        "\"GET /logged?a=1 HTTP/1.1\" 200 6 \"http://ref.example/\" \"test-agent/1.0\"",
    )
    .unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let bare = t
        .wait_for_stdout_line(Duration::from_secs(5), |l| l.contains("/bare"))
        .unwrap_or_else(|| panic!("no access log line; stdout:\n{}", t.stdout()));
    check_combined(&bare, "\"GET /bare HTTP/1.1\" 200 6 \"-\" \"-\"")
        .unwrap_or_else(|e| panic!("{e}: {bare:?}"));
}

/// A JSON value, enough to check a flat log object.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing bytes at {}", p.i));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value()? else {
                        return Err("object key is not a string".into());
                    };
                    self.eat(b':')?;
                    let v = self.value()?;
                    if m.insert(k.clone(), v).is_some() {
                        return Err(format!("duplicate key {k}"));
                    }
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'"') => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let c = *self.s.get(self.i).ok_or("unterminated string")?;
                    self.i += 1;
                    match c {
                        b'"' => return Ok(Json::Str(out)),
                        b'\\' => {
                            let e = *self.s.get(self.i).ok_or("bad escape")?;
                            self.i += 1;
                            match e {
                                b'"' | b'\\' | b'/' => out.push(e as char),
                                b'n' => out.push('\n'),
                                b't' => out.push('\t'),
                                b'r' => out.push('\r'),
                                b'b' | b'f' => {}
                                b'u' => {
                                    let hex = self.s.get(self.i..self.i + 4).ok_or("bad \\u")?;
                                    let code = u32::from_str_radix(
                                        std::str::from_utf8(hex).map_err(|e| e.to_string())?,
                                        16,
                                    )
                                    .map_err(|e| e.to_string())?;
                                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                    self.i += 4;
                                }
                                _ => return Err("bad escape".into()),
                            }
                        }
                        c if c < 0x20 => return Err("control character in string".into()),
                        _ => {
                            // Copy a whole UTF-8 sequence.
                            let start = self.i - 1;
                            while self.s.get(self.i).is_some_and(|&b| b & 0xC0 == 0x80) {
                                self.i += 1;
                            }
                            out.push_str(&String::from_utf8_lossy(&self.s[start..self.i]));
                        }
                    }
                }
            }
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Json::Null)
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"-+.eE".contains(c))
                {
                    self.i += 1;
                }
                let text =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                text.parse()
                    .map(Json::Num)
                    .map_err(|_| format!("bad number {text}"))
            }
            _ => Err(format!("unexpected byte at {}", self.i)),
        }
    }
}

#[test]
fn json_parser_self_check() {
    let v = JsonParser::parse(r#"{"a": "x\"y", "b": 2.5, "c": null, "d": [true, false], "e": {}}"#)
        .expect("valid");
    let Json::Obj(m) = v else {
        panic!("not an object")
    };
    assert_eq!(m["a"], Json::Str("x\"y".into()));
    assert_eq!(m["b"], Json::Num(2.5));
    assert!(JsonParser::parse("{\"a\": 1,}").is_err());
}

#[test]
fn access_log_json_has_the_required_keys() {
    // A backend that takes 50 ms, so duration_ms must measure something.
    let b = Backend::start(|req| backend::echo_reply(req).delay(Duration::from_millis(50)));
    let t = Conf::new()
        .global("access_log_format = \"json\"")
        .upstream("b", &[b.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"b\"")
        .start();
    assert_eq!(get(t.addr(), "x", "/j?x=1").status, 200);
    let line = t
        .wait_for_stdout_line(Duration::from_secs(5), |l| l.contains("/j?x=1"))
        .unwrap_or_else(|| panic!("no access log line; stdout:\n{}", t.stdout()));
    let Json::Obj(m) = JsonParser::parse(&line).unwrap_or_else(|e| panic!("{e}: {line}")) else {
        panic!("not an object: {line}")
    };
    for key in [
        "time",
        "remote_addr",
        "method",
        "uri",
        "status",
        "bytes_sent",
        "duration_ms",
        "upstream",
        "upstream_addr",
        "upstream_ms",
        "listener",
        "tls_version",
    ] {
        assert!(m.contains_key(key), "missing {key}: {line}");
    }
    assert_eq!(m["remote_addr"], Json::Str("127.0.0.1".into()));
    assert_eq!(m["method"], Json::Str("GET".into()));
    assert_eq!(m["uri"], Json::Str("/j?x=1".into()));
    assert_eq!(m["status"], Json::Num(200.0));
    assert_eq!(m["upstream"], Json::Str("b".into()));
    assert_eq!(m["upstream_addr"], Json::Str(b.addr().to_string()));
    assert_eq!(m["listener"], Json::Str("http".into()));
    assert!(matches!(m["bytes_sent"], Json::Num(n) if n > 0.0), "{line}");
    assert!(
        matches!(m["duration_ms"], Json::Num(n) if n >= 40.0),
        "{line}"
    );
}

#[test]
fn combined_checker_self_check() {
    let rest = "\"GET / HTTP/1.1\" 200 6 \"-\" \"-\"";
    assert!(
        check_combined(
            &format!("127.0.0.1 - - [03/Dec/2025:18:00:00 +0000] {rest}"),
            rest
        )
        .is_ok()
    );
    assert!(
        check_combined(
            &format!("127.0.0.1 - - [3/Dec/2025:18:00:00 +0000] {rest}"),
            rest
        )
        .is_err()
    );
    assert!(
        check_combined(
            &format!("127.0.0.1 - - [03/Dec/2025:18:00:00 +0000] {rest} "),
            rest
        )
        .is_err()
    );
}

#[test]
fn started_as_root_it_drops_to_the_configured_user_after_binding() {
    // CI runs as root (it installs packages); the drop is only observable there.
    assert!(
        nix_is_root(),
        "this test needs root: it checks that torii binds as root and then runs as `nobody`"
    );
    let t = respond_conf("still serving")
        .global("user = \"nobody\"")
        .start();
    let status = fs::read_to_string(format!("/proc/{}/status", t.pid())).expect("proc status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert_eq!(
        uids, ["65534"; 4],
        "real, effective, saved, fs uid: {uid_line}"
    );
    assert_eq!(get(t.addr(), "x", "/").body, b"still serving");
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

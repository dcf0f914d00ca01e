//! Self-tests of the test harness (backend, clients, parsers) that need no
//! torii: if these fail, the other suites' failures mean nothing.

mod common;

use std::time::Duration;

use common::backend::pattern_byte;
use common::*;

#[test]
fn backend_echoes_method_target_and_headers() {
    let b = Backend::echo();
    let r = get(b.addr(), "example.test", "/a?b=1");
    assert_eq!(r.status, 200);
    assert!(r.body_str().starts_with("GET /a?b=1\n"), "{}", r.body_str());
    assert!(r.body_str().contains("Host: example.test\n"));
    assert_eq!(b.request_count(), 1);
    assert_eq!(b.last().header("host"), Some("example.test"));
}

#[test]
fn backend_keeps_connection_alive_and_counts_it() {
    let b = Backend::echo();
    let mut c = Client::connect(b.addr());
    for i in 0..3 {
        let r = c
            .roundtrip(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .expect("roundtrip");
        assert_eq!(r.status, 200);
    }
    assert_eq!(b.connections(), 1);
    let reqs = b.requests();
    assert_eq!(
        reqs.iter().map(|r| r.seq_on_conn).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn backend_decodes_chunked_request_body() {
    let b = Backend::echo();
    let r = request(
        b.addr(),
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let req = b.last();
    assert!(req.chunked);
    assert_eq!(req.body, b"hello world");
}

#[test]
fn backend_sends_chunked_and_client_decodes_it() {
    let b = Backend::start(|_| Reply::ok("").chunked(vec![b"abc".to_vec(), b"defg".to_vec()]));
    let r = get(b.addr(), "x", "/");
    assert!(r.chunked);
    assert_eq!(r.body, b"abcdefg");
}

#[test]
fn backend_streams_a_generated_body() {
    let b = Backend::start(|_| Reply::ok("").stream(1_000_000));
    let mut c = Client::connect(b.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let head = c.read_head().expect("head");
    assert_eq!(
        c.read_body_checked(&head, pattern_byte).expect("body"),
        1_000_000
    );
}

#[test]
fn backend_answers_expect_100_continue() {
    let b = Backend::echo();
    let mut c = Client::connect(b.addr());
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        .expect("send");
    assert_eq!(c.read_response().expect("interim").status, 100);
    c.send(b"abc").expect("send body");
    assert_eq!(c.read_final().expect("final").status, 200);
    assert_eq!(b.last().body, b"abc");
}

#[test]
fn backend_upgrade_echoes_raw_bytes() {
    let b = Backend::start(|_| Reply::switching_protocols());
    let mut c = Client::connect(b.addr());
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .expect("send");
    assert_eq!(c.read_head().expect("101").status, 101);
    c.send(b"ping").expect("send");
    let mut got = [0u8; 4];
    std::io::Read::read_exact(c.stream(), &mut got).expect("echo");
    assert_eq!(&got, b"ping");
}

#[test]
fn backend_drop_closes_without_response() {
    let b = Backend::start(|_| Reply::drop_connection());
    let got = send_raw(
        b.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(got.is_empty());
    assert!(wait_until(Duration::from_secs(5), || b.closed() == 1));
}

#[test]
fn backend_closes_idle_connections_when_asked() {
    let b = Backend::with_options(
        Options {
            idle_close: Some(Duration::from_millis(100)),
            ..Options::default()
        },
        backend::echo_reply,
    );
    let mut c = Client::connect(b.addr());
    assert_eq!(
        c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("rt")
            .status,
        200
    );
    c.wait_closed(Duration::from_secs(5)).expect("idle close");
    assert!(wait_until(Duration::from_secs(5), || b.closed() == 1));
}

#[test]
fn parse_responses_splits_pipelined_responses() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nbye";
    let rs = parse_responses(raw);
    assert_eq!(
        rs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 204, 200, 400]
    );
    assert_eq!(rs[0].body, b"hi");
    assert_eq!(rs[2].body, b"abc");
    assert_eq!(rs[3].body, b"bye");
}

#[test]
fn conf_builder_yields_bind_addresses() {
    let text = Conf::new()
        .listener("a", "")
        .listener("b", "")
        .route("path = \"/\"\nrespond = { status = 200 }")
        .build();
    let addrs = bind_addrs(&text);
    assert_eq!(addrs.len(), 2);
    assert!(addrs.iter().all(|a| a.ip().is_loopback()));
}

#[test]
fn memory_of_self_is_readable() {
    let m = memory_of(std::process::id());
    assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib, "{m:?}");
}

//! Talking to upstreams: failures (502, 504), keep-alive pooling, the
//! `keepalive = false` mode, round robin, and what happens when a pooled
//! connection died (idempotent requests recover, POST is never replayed).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn nothing_listening_upstream_is_502() {
    let t = Conf::new()
        .upstream("dead", &[addr(free_port())], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"dead\"")
        .start();
    assert_eq!(get(t.addr(), "x", "/").status, 502);
}

#[test]
fn upstream_silent_past_upstream_read_is_504() {
    let b = Backend::start(|_| Reply::ok("late").delay(Duration::from_secs(3)));
    let t = Conf::new()
        .timeout("upstream_read = \"1s\"")
        .upstream("b", &[b.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"b\"")
        .start();
    let start = Instant::now();
    let r = get(t.addr(), "x", "/");
    let elapsed = start.elapsed();
    assert_eq!(r.status, 504);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2900),
        "504 after {elapsed:?}"
    );
}

#[test]
fn keep_alive_pool_reuses_upstream_connections() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    for i in 0..50 {
        let r = get(t.addr(), "x", &format!("/{i}"));
        assert_eq!(r.status, 200, "request {i}");
    }
    assert_eq!(b.request_count(), 50);
    assert!(
        b.connections() <= 5,
        "{} upstream connections for 50 requests",
        b.connections()
    );
    assert!(
        b.requests()
            .iter()
            .all(|r| !r.has_token("Connection", "close")),
        "pooled requests must not ask the upstream to close"
    );
}

#[test]
fn keepalive_false_uses_one_connection_per_request_with_connection_close() {
    let b = Backend::echo();
    let t = Conf::new()
        .upstream("dav", &[b.addr()], "keepalive = false")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"dav\"")
        .start();
    // One client connection for all: the upstream side must still not reuse.
    let mut c = Client::connect(t.addr());
    for i in 0..10 {
        let r = c
            .roundtrip(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status, 200);
    }
    assert_eq!(b.connections(), 10);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 10);
    for r in &reqs {
        assert!(
            r.has_token("Connection", "close"),
            "request {} lacks Connection: close",
            r.target
        );
        assert_eq!(r.seq_on_conn, 0);
    }
}

#[test]
fn round_robin_spreads_requests_over_servers() {
    let b1 = Backend::start(|_| Reply::ok("one"));
    let b2 = Backend::start(|_| Reply::ok("two"));
    let t = Conf::new()
        .upstream("b", &[b1.addr(), b2.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"b\"")
        .start();
    let bodies: Vec<String> = (0..10)
        .map(|_| get(t.addr(), "x", "/").body_str())
        .collect();
    assert_eq!(b1.request_count(), 5, "{bodies:?}");
    assert_eq!(b2.request_count(), 5, "{bodies:?}");
    assert!(
        bodies.windows(2).all(|w| w[0] != w[1]),
        "not alternating: {bodies:?}"
    );
}

#[test]
fn pooled_connection_closed_by_the_upstream_while_idle_is_not_fatal() {
    let b = Backend::with_options(
        Options {
            idle_close: Some(Duration::from_millis(100)),
            ..Options::default()
        },
        backend::echo_reply,
    );
    let t = proxy_to(&b, "");
    for i in 0..5 {
        let r = get(t.addr(), "x", &format!("/{i}"));
        assert_eq!(r.status, 200, "request {i}");
        // The pooled connection is now dead on the upstream side.
        assert!(
            wait_until(Duration::from_secs(5), || b.closed() == i + 1),
            "backend did not close its idle connection"
        );
    }
    assert_eq!(b.request_count(), 5);
}

#[test]
fn upstream_closing_after_each_response_without_saying_so_is_not_fatal() {
    let b = Backend::start(|req| backend::echo_reply(req).close_silently());
    let t = proxy_to(&b, "");
    for i in 0..20 {
        let r = get(t.addr(), "x", &format!("/{i}"));
        assert_eq!(r.status, 200, "request {i}");
    }
}

#[test]
fn post_on_a_pooled_connection_the_upstream_closed_is_sent_once() {
    let b = Backend::start(|req| backend::echo_reply(req).close_silently());
    let t = proxy_to(&b, "");
    assert_eq!(get(t.addr(), "x", "/warm").status, 200);
    assert!(wait_until(Duration::from_secs(5), || b.closed() == 1));
    let r = request(
        t.addr(),
        b"POST /order HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(r.status, 200);
    let posts = b
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1);
}

#[test]
fn post_whose_upstream_dies_before_answering_is_not_replayed() {
    let b = Backend::start(|req| {
        if req.method == "POST" {
            Reply::drop_connection()
        } else {
            backend::echo_reply(req)
        }
    });
    let t = proxy_to(&b, "");
    assert_eq!(get(t.addr(), "x", "/warm").status, 200);
    let r = request(
        t.addr(),
        b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(r.status, 502);
    let posts = b
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "the POST was replayed");
}

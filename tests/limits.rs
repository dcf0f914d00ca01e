//! Size limits and client timeouts: 414, 431, 413 (declared and streamed),
//! 408 on a slow head, idle keep-alive close.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn limited(b: &Backend, limits: &[&str], timeouts: &[&str]) -> Torii {
    let mut c = Conf::new();
    for l in limits {
        c = c.limit(l);
    }
    for t in timeouts {
        c = c.timeout(t);
    }
    c.upstream("b", &[b.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"b\"")
        .start()
}

#[test]
fn request_line_over_max_request_head_is_414() {
    let b = Backend::echo();
    let t = limited(&b, &["max_request_head = \"4KiB\""], &[]);
    let raw = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(8000));
    let rs = parse_responses(&send_raw(t.addr(), raw.as_bytes(), Duration::from_secs(10)));
    assert_eq!(rs.first().map(|r| r.status), Some(414));
    assert_eq!(b.request_count(), 0);
}

#[test]
fn header_section_over_max_request_head_is_431() {
    let b = Backend::echo();
    let t = limited(&b, &["max_request_head = \"4KiB\""], &[]);
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..100 {
        raw.push_str(&format!("X-Filler-{i}: {}\r\n", "v".repeat(60)));
    }
    raw.push_str("\r\n");
    let rs = parse_responses(&send_raw(t.addr(), raw.as_bytes(), Duration::from_secs(10)));
    assert_eq!(rs.first().map(|r| r.status), Some(431));
    assert_eq!(b.request_count(), 0);
}

#[test]
fn head_just_under_the_limit_is_accepted() {
    let b = Backend::echo();
    let t = limited(&b, &["max_request_head = \"4KiB\""], &[]);
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
        "v".repeat(3000)
    );
    assert_eq!(request(t.addr(), raw.as_bytes()).status, 200);
}

#[test]
fn declared_body_over_max_request_body_is_413_without_reading_it() {
    let b = Backend::echo();
    let t = limited(&b, &["max_request_body = \"1KiB\""], &[]);
    let mut c = Client::connect(t.addr());
    // Only the head is sent: the answer must not wait for the body.
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n")
        .expect("send");
    let r = c.read_final().expect("413 before the body");
    assert_eq!(r.status, 413);
    assert_eq!(b.request_count(), 0);
}

#[test]
fn streamed_chunked_body_over_max_request_body_is_413() {
    let b = Backend::echo();
    let t = limited(&b, &["max_request_body = \"1KiB\""], &[]);
    let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        raw.extend_from_slice(b"3e8\r\n");
        raw.extend_from_slice(&[b'a'; 1000]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let got = send_raw(t.addr(), &raw, Duration::from_secs(10));
    let rs = parse_responses(&got);
    assert_eq!(
        rs.first().map(|r| r.status),
        Some(413),
        "got {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        b.requests().iter().all(|r| r.body_len <= 1024),
        "an over-limit body was delivered upstream"
    );
}

#[test]
fn body_of_exactly_max_request_body_is_accepted() {
    let b = Backend::echo();
    let t = limited(&b, &["max_request_body = \"1KiB\""], &[]);
    let mut raw =
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n".to_vec();
    raw.extend_from_slice(&[b'a'; 1024]);
    assert_eq!(request(t.addr(), &raw).status, 200);
    assert_eq!(b.last().body_len, 1024);
}

#[test]
fn incomplete_head_gets_408_after_client_header_timeout() {
    let b = Backend::echo();
    let t = limited(&b, &[], &["client_header = \"1s\""]);
    let mut c = Client::connect(t.addr());
    let start = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("send half a head");
    let got = c
        .wait_closed(Duration::from_secs(6))
        .expect("closed after the header timeout");
    let elapsed = start.elapsed();
    let rs = parse_responses(&got);
    assert_eq!(
        rs.first().map(|r| r.status),
        Some(408),
        "got {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "408 too early: {elapsed:?}"
    );
    assert_eq!(b.request_count(), 0);
}

#[test]
fn idle_keep_alive_connection_is_closed_after_client_keepalive() {
    let b = Backend::echo();
    let t = limited(&b, &[], &["client_keepalive = \"1s\""]);
    let mut c = Client::connect(t.addr());
    let r = c
        .roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("first request");
    assert_eq!(r.status, 200);
    let start = Instant::now();
    let extra = c
        .wait_closed(Duration::from_secs(6))
        .expect("idle connection closed");
    let elapsed = start.elapsed();
    assert!(
        extra.is_empty(),
        "idle close sends nothing: {:?}",
        String::from_utf8_lossy(&extra)
    );
    assert!(
        elapsed >= Duration::from_millis(800),
        "closed too early: {elapsed:?}"
    );
}

#[test]
fn at_max_connections_accepting_pauses_until_a_connection_closes() {
    let t = Conf::new()
        .global("workers = 1\nmax_connections = 2")
        .listener("http", "")
        .route("path = \"/\"\nrespond = { status = 200, body = \"ok\" }")
        .start();
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // Two keep-alive connections fill the worker.
    let mut first = Client::connect(t.addr());
    first.send(req).expect("send on the first connection");
    assert_eq!(first.read_final().expect("first answered").status, 200);
    let mut second = Client::connect(t.addr());
    second.send(req).expect("send on the second connection");
    assert_eq!(second.read_final().expect("second answered").status, 200);

    // The third completes its TCP handshake in the kernel's queue but is not
    // accepted, so its request stays unanswered while the limit holds.
    let mut third = Client::connect(t.addr());
    third.send(req).expect("send on the third connection");
    third.set_read_timeout(Duration::from_millis(500));
    let early = third.read_final();
    assert!(early.is_err(), "answered beyond max_connections: {early:?}");

    // One closes: torii accepts again and the waiting request is served.
    drop(first);
    third.set_read_timeout(Duration::from_secs(5));
    let r = third.read_final().expect("served once a slot was free");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    second
        .send(req)
        .expect("send again on the second connection");
    assert_eq!(second.read_final().expect("second still open").status, 200);
}

#[test]
fn a_head_trickled_byte_by_byte_is_answered() {
    // torii parses a head again only when a line has ended: the last byte
    // completing the blank line must still be noticed.
    let t = Conf::new()
        .listener("http", "")
        .route("path = \"/\"\nrespond = { status = 200, body = \"ok\" }")
        .start();
    let mut c = Client::connect(t.addr());
    for b in b"GET /slowly HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n" {
        c.send(&[*b]).expect("send one byte");
    }
    let r = c.read_final().expect("response to a trickled head");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
}

//! Message framing through the proxy: chunked and Content-Length bodies
//! both ways, HTTP/1.0 keep-alive, pipelining, 100-continue, HEAD, 204/304,
//! and protocol upgrades (tunnel only after a real 101).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;

#[test]
fn chunked_request_body_reaches_the_upstream_intact() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let r = request(
        t.addr(),
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6;name=value\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(b.last().body, b"hello world");
}

#[test]
fn large_chunked_request_body_of_uneven_chunks_is_intact() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut raw =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    let mut at = 0;
    let mut size = 1;
    while at < data.len() {
        let end = (at + size).min(data.len());
        raw.extend_from_slice(format!("{:x}\r\n", end - at).as_bytes());
        raw.extend_from_slice(&data[at..end]);
        raw.extend_from_slice(b"\r\n");
        at = end;
        size = size * 3 % 70_001 + 1;
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(request(t.addr(), &raw).status, 200);
    let req = b.last();
    assert_eq!(req.body_len, data.len() as u64);
    assert!(req.body == data, "body content differs");
}

#[test]
fn chunked_response_reaches_the_client_intact() {
    let b = Backend::start(|_| {
        Reply::ok("").chunked(vec![b"abc".to_vec(), vec![b'z'; 100_000], b"defg".to_vec()])
    });
    let t = proxy_to(&b, "");
    let r = get(t.addr(), "x", "/");
    assert_eq!(r.status, 200);
    assert!(
        !(r.header("Content-Length").is_some() && r.header("Transfer-Encoding").is_some()),
        "both framings: {:?}",
        r.headers
    );
    let mut expect = b"abc".to_vec();
    expect.extend(vec![b'z'; 100_000]);
    expect.extend_from_slice(b"defg");
    assert!(r.body == expect, "body differs ({} bytes)", r.body.len());
}

#[test]
fn content_length_bodies_both_ways() {
    let b = Backend::start(|req| Reply::ok(format!("got {} bytes", req.body_len)));
    let t = proxy_to(&b, "");
    let r = request(
        t.addr(),
        b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("12"));
    assert_eq!(r.body, b"got 11 bytes");
    let req = b.last();
    assert_eq!(req.body, b"hello world");
    assert_eq!(req.header("Content-Length"), Some("11"));
}

#[test]
fn http10_client_with_keep_alive_keeps_its_connection() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    for i in 0..2 {
        let r = c
            .roundtrip(
                format!("GET /{i} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status, 200);
        assert!(
            r.header("Content-Length").is_some(),
            "an HTTP/1.0 client needs a length: {:?}",
            r.headers
        );
        assert!(
            r.header("Transfer-Encoding").is_none(),
            "no chunked to HTTP/1.0"
        );
        assert!(r.has_token("Connection", "keep-alive"), "{:?}", r.headers);
        assert!(r.body_str().starts_with(&format!("GET /{i}")));
    }
}

#[test]
fn http10_client_without_keep_alive_is_closed_after_the_response() {
    let b = Backend::start(|_| Reply::ok("").chunked(vec![b"chunked upstream".to_vec()]));
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    c.send(b"GET / HTTP/1.0\r\n\r\n").expect("send");
    let rest = c
        .wait_closed(Duration::from_secs(10))
        .expect("closed after the response");
    let rs = parse_responses(&rest);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&rest));
    assert_eq!(rs[0].status, 200);
    assert!(
        rs[0].header("Transfer-Encoding").is_none(),
        "no chunked to HTTP/1.0"
    );
    assert_eq!(rs[0].body, b"chunked upstream");
}

#[test]
fn pipelined_requests_get_their_responses_in_order() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    c.send(
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("send");
    for i in 1..=3 {
        let r = c
            .read_response()
            .unwrap_or_else(|e| panic!("response {i}: {e}"));
        assert_eq!(r.status, 200);
        assert!(
            r.body_str().starts_with(&format!("GET /{i}\n")),
            "response {i}: {}",
            r.body_str()
        );
    }
    c.wait_closed(Duration::from_secs(5))
        .expect("closed after Connection: close");
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .expect("send head");
    c.set_read_timeout(Duration::from_secs(5));
    let interim = c
        .read_response()
        .expect("an interim response before the body is sent");
    assert_eq!(interim.status, 100);
    c.send(b"abcde").expect("send body");
    let r = c.read_final().expect("final response");
    assert_eq!(r.status, 200);
    assert_eq!(b.last().body, b"abcde");
}

#[test]
fn head_response_has_no_body_despite_content_length() {
    let b = Backend::start(|_| Reply::ok("hello world"));
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let head = c.read_response_to(true).expect("HEAD response");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("11"));
    // Any body bytes after the HEAD response would corrupt this one.
    let next = c.read_response().expect("GET response");
    assert_eq!(next.status, 200);
    assert_eq!(next.body, b"hello world");
}

#[test]
fn no_content_and_not_modified_carry_no_body() {
    let b = Backend::start(|req| match req.target.as_str() {
        "/204" => Reply::new(204),
        "/304" => Reply::new(304).header("ETag", "\"v1\""),
        _ => Reply::ok("after"),
    });
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    c.send(b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let r204 = c.read_response().expect("204");
    assert_eq!(r204.status, 204);
    assert!(r204.header("Transfer-Encoding").is_none());
    let r304 = c.read_response().expect("304");
    assert_eq!(r304.status, 304);
    assert_eq!(r304.header("ETag"), Some("\"v1\""));
    let after = c.read_response().expect("third");
    assert_eq!(after.body, b"after");
}

#[test]
fn upgrade_after_101_tunnels_bytes_both_ways() {
    let b = Backend::start(|_| Reply::switching_protocols());
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("send");
    let r = c.read_head().expect("101");
    assert_eq!(r.status, 101);
    assert!(r.has_token("Upgrade", "websocket"), "{:?}", r.headers);
    assert!(r.has_token("Connection", "upgrade"), "{:?}", r.headers);
    let req = b.last();
    assert!(
        req.has_token("Upgrade", "websocket"),
        "upstream saw {:?}",
        req.headers
    );
    assert!(
        req.has_token("Connection", "upgrade"),
        "upstream saw {:?}",
        req.headers
    );

    for msg in [
        b"ping".to_vec(),
        vec![0u8, 1, 2, 255, 13, 10],
        vec![b'w'; 1_000_000],
    ] {
        // Write from another thread: a large message echoes back while it is
        // still being sent, and nobody reading would stall both directions.
        let mut w = c.stream().try_clone().expect("clone stream");
        let out = msg.clone();
        let writer = std::thread::spawn(move || w.write_all(&out));
        let mut got = vec![0u8; msg.len()];
        c.stream()
            .read_exact(&mut got)
            .expect("echo through the tunnel");
        writer
            .join()
            .expect("writer thread")
            .expect("send through the tunnel");
        assert!(got == msg, "echo differs");
    }
}

#[test]
fn upgrade_refused_with_200_does_not_create_a_tunnel() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let mut c = Client::connect(t.addr());
    let r = c
        .roundtrip(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .expect("response");
    assert_eq!(r.status, 200);
    // Still HTTP on this connection: the next bytes are parsed as a request.
    let r2 = c
        .roundtrip(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("second response");
    assert_eq!(r2.status, 200);
    assert!(
        r2.body_str().starts_with("GET /after\n"),
        "{}",
        r2.body_str()
    );
    assert_eq!(b.request_count(), 2);
    // Through a tunnel the bytes would arrive raw; a proxied request carries
    // the forwarding headers torii adds.
    assert!(
        b.last().header("X-Forwarded-For").is_some(),
        "second request was tunnelled raw"
    );
}

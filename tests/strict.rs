//! Request smuggling defences: ambiguous or malformed requests are refused
//! with 400 and the connection is closed, before anything reaches the
//! upstream; an ambiguous upstream response is a 502.

mod common;

use std::time::Duration;

use common::*;

/// Sends `raw`, expects exactly one 400 response, then the connection
/// closed, and nothing forwarded upstream.
fn assert_rejected(raw: &[u8]) {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let what = String::from_utf8_lossy(raw).into_owned();
    let mut c = Client::connect(t.addr());
    // A proxy that answers early may make a late part of the write fail.
    let _ = c.send(raw);
    let got = c
        .wait_closed(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connection not closed after {what:?}: {e}"));
    let rs = parse_responses(&got);
    assert!(
        !rs.is_empty(),
        "no response to {what:?} (got {:?})",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(rs[0].status, 400, "for {what:?}");
    assert_eq!(rs.len(), 1, "only the 400 for {what:?}");
    let mut c = Client::connect(t.addr());
    // The proxy is still alive for others.
    assert_eq!(
        c.roundtrip(b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("torii still serves")
            .status,
        200
    );
    let smuggled: Vec<_> = b
        .requests()
        .into_iter()
        .filter(|r| r.target != "/alive")
        .collect();
    assert!(smuggled.is_empty(), "forwarded upstream: {smuggled:?}");
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn two_different_content_lengths_are_400() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    );
}

#[test]
fn content_length_list_with_different_values_is_400() {
    assert_rejected(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!");
}

#[test]
fn transfer_encoding_gzip_chunked_is_400() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn transfer_encoding_identity_is_400() {
    assert_rejected(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n");
}

#[test]
fn transfer_encoding_chunked_twice_is_400() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn bare_lf_line_endings_are_400() {
    assert_rejected(b"GET / HTTP/1.1\nHost: x\n\n");
}

#[test]
fn obs_fold_is_400() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n");
}

#[test]
fn whitespace_before_colon_is_400() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n");
}

#[test]
fn control_character_in_a_header_value_is_400() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x01c\r\n\r\n");
}

#[test]
fn chunk_size_overflow_is_400() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    );
}

#[test]
fn missing_host_on_http11_is_400() {
    assert_rejected(b"GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n");
}

#[test]
fn upstream_response_with_content_length_and_transfer_encoding_is_502() {
    let b = Backend::start(|_| {
        Reply::raw(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                [..],
        )
    });
    let t = proxy_to(&b, "");
    assert_eq!(get(t.addr(), "x", "/").status, 502);
}

#[test]
fn upstream_response_head_over_max_response_head_is_502() {
    let b = Backend::start(|_| Reply::ok("x").header("X-Big", &"a".repeat(8 * 1024)));
    let t = Conf::new()
        .limit("max_response_head = \"4KiB\"")
        .upstream("b", &[b.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"b\"")
        .start();
    assert_eq!(get(t.addr(), "x", "/").status, 502);
}

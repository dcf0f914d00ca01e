//! Header handling on the way through: hop-by-hop removal both ways,
//! forwarding headers, Via, Host preservation, Location / Content-Location /
//! Destination rewriting, request_headers, response_headers (errors too).

mod common;

use common::*;

fn send(t: &Torii, raw: &str) -> HttpResponse {
    request(t.addr(), raw.as_bytes())
}

#[test]
fn hop_by_hop_request_headers_are_removed_including_those_named_by_connection() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let r = send(
        &t,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nX-Secret: 1\r\nX-Keep: 1\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let req = b.last();
    for h in [
        "X-Secret",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
    ] {
        assert!(
            req.header(h).is_none(),
            "upstream saw {h}: {:?}",
            req.headers
        );
    }
    assert!(!req.has_token("Connection", "x-secret"));
    assert_eq!(req.header("X-Keep"), Some("1"));
}

#[test]
fn hop_by_hop_response_headers_are_removed_including_those_named_by_connection() {
    let b = Backend::start(|_| {
        Reply::ok("ok")
            .header("Connection", "X-Internal")
            .header("X-Internal", "secret")
            .header("Keep-Alive", "timeout=5")
            .header("Proxy-Connection", "keep-alive")
            .header("X-App", "1")
    });
    let t = proxy_to(&b, "");
    let r = get(t.addr(), "x", "/");
    assert_eq!(r.status, 200);
    for h in ["X-Internal", "Keep-Alive", "Proxy-Connection"] {
        assert!(r.header(h).is_none(), "client saw {h}: {:?}", r.headers);
    }
    assert!(!r.has_token("Connection", "x-internal"));
    assert_eq!(r.header("X-App"), Some("1"));
    assert_eq!(r.body, b"ok");
}

#[test]
fn x_forwarded_for_is_appended_to() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    send(&t, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(b.last().header_all("X-Forwarded-For"), vec!["127.0.0.1"]);
    send(
        &t,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n",
    );
    let xff = b.last().header_all("X-Forwarded-For").join(", ");
    assert_eq!(xff, "203.0.113.7, 127.0.0.1");
}

#[test]
fn x_forwarded_proto_is_http_on_a_plain_listener_even_if_the_client_claims_https() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    send(
        &t,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(b.last().header_all("X-Forwarded-Proto"), vec!["http"]);
}

#[test]
fn x_forwarded_host_and_forwarded_describe_the_client_request() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    send(
        &t,
        "GET / HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
    );
    let req = b.last();
    assert_eq!(req.header_all("X-Forwarded-Host"), vec!["app.example"]);
    let fwd = req.header_all("Forwarded").join(", ").to_ascii_lowercase();
    assert!(
        fwd.contains("for=127.0.0.1") || fwd.contains("for=\"127.0.0.1\""),
        "Forwarded: {fwd}"
    );
    assert!(fwd.contains("proto=http"), "Forwarded: {fwd}");
    assert!(
        fwd.contains("host=app.example") || fwd.contains("host=\"app.example\""),
        "Forwarded: {fwd}"
    );
}

#[test]
fn via_is_added_both_ways_after_existing_entries() {
    let b = Backend::start(|_| Reply::ok("ok").header("Via", "1.1 origin-cache"));
    let t = proxy_to(&b, "");
    let r = send(
        &t,
        "GET / HTTP/1.1\r\nHost: x\r\nVia: 1.0 fred\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(b.last().header_all("Via").join(", "), "1.0 fred, 1.1 torii");
    assert_eq!(
        r.header_all("Via").join(", "),
        "1.1 origin-cache, 1.1 torii"
    );
}

#[test]
fn via_false_adds_no_via() {
    let b = Backend::echo();
    let t = Conf::new()
        .global("via = false")
        .upstream("b", &[b.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"b\"")
        .start();
    let r = get(t.addr(), "x", "/");
    assert!(b.last().header("Via").is_none());
    assert!(r.header("Via").is_none());
}

#[test]
fn preserve_host_true_sends_the_client_host_upstream() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    get(t.addr(), "app.example:8080", "/");
    assert_eq!(b.last().header_all("Host"), vec!["app.example:8080"]);
}

#[test]
fn preserve_host_false_sends_the_upstream_address_as_host() {
    let b = Backend::echo();
    let t = proxy_to(&b, "preserve_host = false");
    get(t.addr(), "app.example:8080", "/");
    assert_eq!(
        b.last().header_all("Host"),
        vec![format!("127.0.0.1:{}", b.port()).as_str()]
    );
}

#[test]
fn location_and_content_location_pointing_at_the_upstream_are_rewritten() {
    let b = Backend::start(|req| {
        let port = req.header("X-Backend-Port").unwrap_or("0").to_string();
        match req.target.as_str() {
            "/abs" => Reply::new(302)
                .header("Location", &format!("http://127.0.0.1:{port}/x?y=1"))
                .header("Content-Location", &format!("http://127.0.0.1:{port}/doc")),
            "/rel" => Reply::new(302).header("Location", "/relative"),
            _ => Reply::new(302).header("Location", "http://elsewhere.example/z"),
        }
    });
    let t = proxy_to(&b, "");
    let go = |target: &str| {
        send(
            &t,
            &format!(
                "GET {target} HTTP/1.1\r\nHost: public.example:8080\r\nX-Backend-Port: {}\r\nConnection: close\r\n\r\n",
                b.port()
            ),
        )
    };
    let r = go("/abs");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some("http://public.example:8080/x?y=1")
    );
    assert_eq!(
        r.header("Content-Location"),
        Some("http://public.example:8080/doc")
    );
    assert_eq!(go("/rel").header("Location"), Some("/relative"));
    assert_eq!(
        go("/other").header("Location"),
        Some("http://elsewhere.example/z")
    );
}

#[test]
fn rewrite_location_false_leaves_location_alone() {
    let b = Backend::start(|req| {
        let port = req.header("X-Backend-Port").unwrap_or("0").to_string();
        Reply::new(302).header("Location", &format!("http://127.0.0.1:{port}/x"))
    });
    let t = proxy_to(&b, "rewrite_location = false");
    let r = send(
        &t,
        &format!(
            "GET / HTTP/1.1\r\nHost: public.example\r\nX-Backend-Port: {}\r\nConnection: close\r\n\r\n",
            b.port()
        ),
    );
    assert_eq!(
        r.header("Location").map(str::to_string),
        Some(format!("http://127.0.0.1:{}/x", b.port()))
    );
}

#[test]
fn destination_of_move_is_rewritten_to_the_upstream() {
    let b = Backend::start(|_| Reply::new(201));
    let t = proxy_to(&b, "preserve_host = false");
    let r = send(
        &t,
        "MOVE /dav/a.txt HTTP/1.1\r\nHost: public.example:8080\r\n\
         Destination: http://public.example:8080/dav/b.txt\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 201);
    let req = b.last();
    assert_eq!(req.method, "MOVE");
    assert_eq!(
        req.header("Destination").map(str::to_string),
        Some(format!("http://127.0.0.1:{}/dav/b.txt", b.port()))
    );
}

#[test]
fn destination_names_the_preserved_host_upstream() {
    // The upstream compares Destination with the Host it receives (WsgiDAV
    // answers 502 "same host name" otherwise): with the client's Host kept,
    // only the scheme may change.
    let b = Backend::start(|_| Reply::new(201));
    let t = proxy_to(&b, "");
    let r = send(
        &t,
        "COPY /dav/a.txt HTTP/1.1\r\nHost: public.example:8080\r\n\
         Destination: http://public.example:8080/dav/b.txt\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 201);
    let req = b.last();
    assert_eq!(req.header("Host"), Some("public.example:8080"));
    assert_eq!(
        req.header("Destination"),
        Some("http://public.example:8080/dav/b.txt")
    );
}

#[test]
fn request_headers_set_and_remove() {
    let b = Backend::echo();
    let t = proxy_to(
        &b,
        "request_headers = { set = { \"X-Custom\" = \"1\" }, remove = [\"X-Debug\"] }",
    );
    send(
        &t,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Custom: 0\r\nX-Debug: yes\r\nX-Other: k\r\nConnection: close\r\n\r\n",
    );
    let req = b.last();
    assert_eq!(req.header_all("X-Custom"), vec!["1"]);
    assert!(req.header("X-Debug").is_none());
    assert_eq!(req.header("X-Other"), Some("k"));
}

#[test]
fn response_headers_apply_to_proxied_responses_and_to_torii_errors() {
    let b = Backend::start(|_| Reply::ok("ok").header("Cache-Control", "public"));
    let dead = free_port();
    let t = Conf::new()
        .upstream("b", &[b.addr()], "")
        .upstream("dead", &[format!("127.0.0.1:{dead}").parse().expect("addr")], "")
        .listener("http", "response_headers = { \"X-Frame-Options\" = \"SAMEORIGIN\" }")
        .route("path = \"/app/\"\nupstream = \"b\"\nresponse_headers = { \"Cache-Control\" = \"no-store\" }")
        .route("path = \"/dead/\"\nupstream = \"dead\"\nresponse_headers = { \"Cache-Control\" = \"no-store\" }")
        .start();

    let ok = get(t.addr(), "x", "/app/x");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header_all("X-Frame-Options"), vec!["SAMEORIGIN"]);
    assert_eq!(ok.header_all("Cache-Control"), vec!["no-store"]);

    let not_found = get(t.addr(), "x", "/nothing");
    assert_eq!(not_found.status, 404);
    assert_eq!(not_found.header_all("X-Frame-Options"), vec!["SAMEORIGIN"]);

    let bad_gateway = get(t.addr(), "x", "/dead/x");
    assert_eq!(bad_gateway.status, 502);
    assert_eq!(
        bad_gateway.header_all("X-Frame-Options"),
        vec!["SAMEORIGIN"]
    );
    assert_eq!(bad_gateway.header_all("Cache-Control"), vec!["no-store"]);
}

//! Route selection and route actions, observed through real requests:
//! host and path precedence, segment boundaries, path normalisation,
//! `upstream` (with `upstream_path`), `redirect`, `respond`, and 404.

mod common;

use common::*;

fn respond(text: &str) -> String {
    format!("respond = {{ status = 200, body = \"{text}\", content_type = \"text/plain\" }}")
}

fn body_for(t: &Torii, host: &str, target: &str) -> (u16, String) {
    let r = get(t.addr(), host, target);
    (r.status, r.body_str())
}

#[test]
fn exact_host_beats_wildcard_beats_no_host_whatever_the_file_order() {
    let t = Conf::new()
        .listener("http", "")
        .route(&format!("path = \"/\"\n{}", respond("none")))
        .route(&format!(
            "hosts = [\"*.example.com\"]\npath = \"/\"\n{}",
            respond("wild")
        ))
        .route(&format!(
            "hosts = [\"a.example.com\"]\npath = \"/\"\n{}",
            respond("exact")
        ))
        .start();
    assert_eq!(body_for(&t, "a.example.com", "/"), (200, "exact".into()));
    assert_eq!(
        body_for(&t, "A.Example.COM:8080", "/"),
        (200, "exact".into())
    );
    assert_eq!(body_for(&t, "b.example.com", "/"), (200, "wild".into()));
    assert_eq!(body_for(&t, "other.org", "/"), (200, "none".into()));
}

#[test]
fn host_specificity_wins_over_a_longer_path() {
    let t = Conf::new()
        .listener("http", "")
        .route(&format!(
            "path = \"/long/path/\"\n{}",
            respond("nohost-long")
        ))
        .route(&format!(
            "hosts = [\"h.test\"]\npath = \"/\"\n{}",
            respond("host-short")
        ))
        .start();
    assert_eq!(body_for(&t, "h.test", "/long/path/x").1, "host-short");
    assert_eq!(body_for(&t, "other.test", "/long/path/x").1, "nohost-long");
}

#[test]
fn longest_path_prefix_wins_whatever_the_file_order() {
    let t = Conf::new()
        .listener("http", "")
        .route(&format!("path = \"/api/\"\n{}", respond("api")))
        .route(&format!("path = \"/api/v2/\"\n{}", respond("v2")))
        .route(&format!("path = \"/\"\n{}", respond("root")))
        .start();
    assert_eq!(body_for(&t, "x", "/api/v2/users").1, "v2");
    assert_eq!(body_for(&t, "x", "/api/v1/users").1, "api");
    assert_eq!(body_for(&t, "x", "/apix").1, "root");
    assert_eq!(body_for(&t, "x", "/").1, "root");
}

#[test]
fn prefix_without_trailing_slash_matches_at_segment_boundaries_only() {
    let t = Conf::new()
        .listener("http", "")
        .route(&format!("path = \"/webdav\"\n{}", respond("dav")))
        .route(&format!("path = \"/\"\n{}", respond("root")))
        .start();
    assert_eq!(body_for(&t, "x", "/webdav").1, "dav");
    assert_eq!(body_for(&t, "x", "/webdav/").1, "dav");
    assert_eq!(body_for(&t, "x", "/webdav/file.txt").1, "dav");
    assert_eq!(body_for(&t, "x", "/webdav?x=1").1, "dav");
    assert_eq!(body_for(&t, "x", "/webdavx").1, "root");
}

#[test]
fn dot_segments_and_unreserved_escapes_are_resolved_before_matching() {
    let t = Conf::new()
        .listener("http", "")
        .route(&format!("path = \"/webdav/\"\n{}", respond("dav")))
        .route(&format!("path = \"/admin\"\n{}", respond("admin")))
        .route(&format!("path = \"/\"\n{}", respond("root")))
        .start();
    assert_eq!(body_for(&t, "x", "/webdav/../admin").1, "admin");
    assert_eq!(body_for(&t, "x", "/webdav/./x/../../admin/y").1, "admin");
    assert_eq!(body_for(&t, "x", "/%61dmin").1, "admin");
    assert_eq!(body_for(&t, "x", "/web%64av/f").1, "dav");
}

#[test]
fn no_matching_route_is_404() {
    let t = Conf::new()
        .listener("http", "")
        .route(&format!(
            "hosts = [\"only.test\"]\npath = \"/only/\"\n{}",
            respond("x")
        ))
        .start();
    assert_eq!(get(t.addr(), "only.test", "/other").status, 404);
    assert_eq!(get(t.addr(), "else.test", "/only/x").status, 404);
    assert_eq!(get(t.addr(), "only.test", "/only/x").status, 200);
}

#[test]
fn routes_apply_only_to_their_listeners() {
    let t = Conf::new()
        .listener("a", "")
        .listener("b", "")
        .route(&format!(
            "listeners = [\"a\"]\npath = \"/\"\n{}",
            respond("on-a")
        ))
        .start();
    assert_eq!(body_for(&t, "x", "/").1, "on-a");
    assert_eq!(get(t.addr_of(1), "x", "/").status, 404);
}

#[test]
fn redirect_defaults_to_301_and_expands_host_and_request_uri() {
    let t = Conf::new()
        .listener("http", "")
        .route("path = \"/\"\nredirect = \"https://{host}{request_uri}\"")
        .start();
    let r = get(t.addr(), "WWW.Example.COM:8080", "/a/b?x=1&y=2");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("Location"),
        Some("https://www.example.com/a/b?x=1&y=2")
    );
}

#[test]
fn redirect_with_status_302_expands_path_and_query() {
    let t = Conf::new()
        .listener("http", "")
        .route("path = \"/\"\nredirect = \"https://new.example{path}#{query}\"\nstatus = 302")
        .start();
    let r = get(t.addr(), "old.example", "/p/q?a=1");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("https://new.example/p/q#a=1"));
}

#[test]
fn respond_sends_status_body_and_content_type() {
    let t = Conf::new()
        .listener("http", "")
        .route("path = \"/\"\nrespond = { status = 418, body = \"hello\\n\", content_type = \"text/x-test\" }")
        .start();
    let r = get(t.addr(), "x", "/anything");
    assert_eq!(r.status, 418);
    assert_eq!(r.body, b"hello\n");
    assert_eq!(r.header("Content-Type"), Some("text/x-test"));
    assert_eq!(r.header("Content-Length"), Some("6"));
}

#[test]
fn upstream_receives_the_target_unchanged_by_default() {
    let b = Backend::echo();
    let t = proxy_to(&b, "");
    let r = get(t.addr(), "x", "/a/b?q=1");
    assert_eq!(r.status, 200);
    assert!(
        r.body_str().starts_with("GET /a/b?q=1\n"),
        "{}",
        r.body_str()
    );
    assert_eq!(b.last().target, "/a/b?q=1");
}

#[test]
fn upstream_path_replaces_the_matched_prefix() {
    let b = Backend::echo();
    let t = Conf::new()
        .upstream("b", &[b.addr()], "")
        .listener("http", "")
        .route("path = \"/api/\"\nupstream = \"b\"\nupstream_path = \"/v1/\"")
        .start();
    assert_eq!(get(t.addr(), "x", "/api/users?x=1").status, 200);
    assert_eq!(b.last().target, "/v1/users?x=1");
}

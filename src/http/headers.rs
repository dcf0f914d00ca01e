//! Header rules on the way through: hop-by-hop removal both ways, the
//! forwarding headers (X-Forwarded-*, Forwarded, Via), Host, Destination and
//! Location rewriting, and the configured header sets.

use std::io::Write as _;
use std::net::IpAddr;

use super::body::is_tchar;
use super::canned;
use super::head::{Head, RequestBody, RequestHead, ResponseHead, list_items, trim_ows};
use crate::config::model::HeaderEdits;

/// What the proxy decided about a request, needed to write its upstream head.
#[derive(Debug)]
pub struct UpstreamRequest<'a> {
    /// Path and query to send (after `upstream_path` replacement).
    pub target: &'a str,
    pub client_ip: IpAddr,
    /// The request came over TLS (`X-Forwarded-Proto: https`, `Forwarded: proto=https`).
    pub tls: bool,
    /// The `host:port` of the upstream server, for `Host` when `preserve_host` is off.
    pub upstream_authority: &'a str,
    pub preserve_host: bool,
    pub via: bool,
    /// Send `Connection: close` (upstream `keepalive = false`).
    pub close: bool,
    /// Forward `Upgrade` and `Connection: upgrade` (a tunnel was asked for).
    pub upgrade: bool,
    pub edits: &'a HeaderEdits,
    /// Rewrite `Destination` from the public URL (scheme and this request's
    /// Host) to `http://` and the Host sent upstream, mapping the route
    /// prefix to `upstream_path` the same way as the target (the route's
    /// `rewrite_location`).
    pub rewrite_destination: bool,
    pub route_prefix: &'a str,
    pub upstream_prefix: Option<&'a str>,
}

/// Appends the request head to send upstream (request line, headers, CRLF).
/// Framing headers (Content-Length / Transfer-Encoding: chunked) are written
/// from `req.body` since the body bytes pass through unchanged.
pub fn write_upstream_request(out: &mut Vec<u8>, req: &RequestHead, up: &UpstreamRequest<'_>) {
    let raw = &req.head.raw;
    // Upstream we always speak 1.1, whatever the client spoke: keep-alive
    // and chunked framing are then available on that side.
    out.extend_from_slice(&raw[req.method.clone()]);
    out.push(b' ');
    out.extend_from_slice(up.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let edited = |name: &str| {
        up.edits.remove.iter().any(|r| r.eq_ignore_ascii_case(name))
            || up
                .edits
                .set
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let authority = req.authority();
    let host = if up.preserve_host && !authority.is_empty() {
        authority
    } else {
        up.upstream_authority
    };
    if !edited("host") {
        put(out, b"Host", host.as_bytes());
    }

    let conn = ConnectionNames::of(&req.head);
    let mut xff_seen = false;
    let mut via_seen = false;
    for (name, value) in req.head.iter() {
        match kind(name) {
            Kind::HopByHop | Kind::Upgrade | Kind::TransferEncoding => continue,
            // Rewritten from what we parsed, never copied.
            Kind::Host | Kind::ContentLength => continue,
            // Never trust the client's own claims about the original request.
            Kind::ForwardedProto | Kind::ForwardedHost | Kind::Forwarded => continue,
            Kind::ForwardedFor => {
                xff_seen = true;
                continue;
            }
            // torii answers `100-continue` itself and reads the body before
            // the upstream could; passing it on would only earn a second 100.
            Kind::Expect if req.expect_continue => continue,
            _ if conn.names(&req.head, name) || edited(name) => continue,
            Kind::Via if up.via => {
                via_seen = true;
                continue;
            }
            Kind::Destination if up.rewrite_destination => {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                write_destination(out, value, authority, host, up);
                out.extend_from_slice(b"\r\n");
            }
            _ => put(out, name.as_bytes(), value),
        }
    }

    match req.body {
        RequestBody::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        RequestBody::Length(n) => {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        RequestBody::None => {}
    }

    // Dual-stack listeners report IPv4 clients as ::ffff:a.b.c.d; logs and
    // upstreams expect the plain IPv4 form.
    let ip = up.client_ip.to_canonical();
    if !edited("x-forwarded-for") {
        out.extend_from_slice(b"X-Forwarded-For: ");
        if xff_seen {
            join_values(out, &req.head, "x-forwarded-for");
        }
        let _ = write!(out, "{ip}\r\n");
    }
    let proto: &[u8] = if up.tls { b"https" } else { b"http" };
    if !edited("x-forwarded-proto") {
        put(out, b"X-Forwarded-Proto", proto);
    }
    if !authority.is_empty() && !edited("x-forwarded-host") {
        put(out, b"X-Forwarded-Host", authority.as_bytes());
    }
    if !edited("forwarded") {
        // RFC 7239 §6: an IPv6 node is bracketed and then quoted (":" is not
        // a token character); so is a host with a port.
        match ip {
            IpAddr::V4(v4) => {
                let _ = write!(out, "Forwarded: for={v4}");
            }
            IpAddr::V6(v6) => {
                let _ = write!(out, "Forwarded: for=\"[{v6}]\"");
            }
        }
        if !authority.is_empty() {
            out.extend_from_slice(b";host=");
            if authority.bytes().all(is_tchar) {
                out.extend_from_slice(authority.as_bytes());
            } else {
                // The authority was validated when parsed: it holds no `"`
                // or `\` that would need escaping.
                out.push(b'"');
                out.extend_from_slice(authority.as_bytes());
                out.push(b'"');
            }
        }
        out.extend_from_slice(b";proto=");
        out.extend_from_slice(proto);
        out.extend_from_slice(b"\r\n");
    }
    if up.via && !edited("via") {
        out.extend_from_slice(b"Via: ");
        if via_seen {
            join_values(out, &req.head, "via");
        }
        out.extend_from_slice(b"1.1 torii\r\n");
    }

    match req.upgrade_value() {
        Some(v) if up.upgrade => {
            put(out, b"Upgrade", v);
            out.extend_from_slice(b"Connection: upgrade\r\n");
        }
        _ if up.close => out.extend_from_slice(b"Connection: close\r\n"),
        _ => {}
    }

    for (k, v) in &up.edits.set {
        // Framing and connection management are ours alone: a configured
        // value there would desynchronise us from the upstream.
        if matches!(
            kind(k),
            Kind::HopByHop | Kind::Upgrade | Kind::TransferEncoding | Kind::ContentLength
        ) {
            continue;
        }
        put(out, k.as_bytes(), v.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// What the proxy decided about a response, needed to write the client head.
#[derive(Debug)]
pub struct ClientResponse<'a> {
    pub via: bool,
    /// Tell the client the connection closes after this response.
    pub close: bool,
    /// The response body is sent de-chunked and close-delimited (chunked
    /// upstream response to an HTTP/1.0 client): drop Transfer-Encoding.
    pub dechunk: bool,
    /// A 101 being tunnelled: keep Upgrade and `Connection: upgrade`.
    pub upgrade: bool,
    /// `Some` when `rewrite_location` is on for the route.
    pub location: Option<LocationRewrite<'a>>,
    /// Listener's then route's `response_headers` (the route's win on a clash);
    /// each replaces any header of that name from the upstream.
    pub set_headers: [&'a [(String, String)]; 2],
    /// 1.0 or 1.1 as spoken to the client.
    pub client_minor: u8,
}

/// How to map upstream URLs in Location / Content-Location to the public one.
#[derive(Debug, Clone, Copy)]
pub struct LocationRewrite<'a> {
    /// `host:port` of the upstream server that answered.
    pub upstream_authority: &'a str,
    /// `https` or `http`: the scheme the client used.
    pub public_scheme: &'a str,
    /// The Host header the client sent (with port when it had one).
    pub public_host: &'a str,
    pub route_prefix: &'a str,
    pub upstream_prefix: Option<&'a str>,
}

/// Appends the response head to send to the client.
pub fn write_client_response(out: &mut Vec<u8>, resp: &ResponseHead, ctx: &ClientResponse<'_>) {
    let _ = write!(out, "HTTP/1.{} {} ", ctx.client_minor.min(1), resp.status);
    let reason = resp.reason();
    if reason.is_empty() {
        let canned = canned::reason(resp.status);
        if canned != "Unknown" {
            out.extend_from_slice(canned.as_bytes());
        }
    } else {
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(b"\r\n");

    let [listener_set, route_set] = ctx.set_headers;
    let configured = |name: &str| {
        listener_set
            .iter()
            .chain(route_set)
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let conn = ConnectionNames::of(&resp.head);
    let mut via_seen = false;
    for (name, value) in resp.head.iter() {
        let k = kind(name);
        match k {
            Kind::HopByHop => continue,
            Kind::Upgrade if !ctx.upgrade => continue,
            Kind::TransferEncoding if ctx.dechunk => continue,
            Kind::Via if ctx.via => {
                via_seen = true;
                continue;
            }
            _ => {}
        }
        // The framing headers describe the body we pass through unchanged:
        // an upstream naming them in Connection must not make us drop them.
        // Likewise Upgrade, which `Connection: upgrade` names by design.
        let exempt = matches!(
            k,
            Kind::TransferEncoding | Kind::ContentLength | Kind::Upgrade
        );
        if (!exempt && conn.names(&resp.head, name)) || configured(name) {
            continue;
        }
        match (k, &ctx.location) {
            (Kind::Location, Some(lr)) => {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                write_location(out, value, lr);
                out.extend_from_slice(b"\r\n");
            }
            _ => put(out, name.as_bytes(), value),
        }
    }
    if ctx.via {
        out.extend_from_slice(b"Via: ");
        if via_seen {
            join_values(out, &resp.head, "via");
        }
        out.extend_from_slice(b"1.1 torii\r\n");
    }
    if ctx.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if ctx.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if ctx.client_minor == 0 {
        // A 1.0 client closes unless told otherwise.
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    for (k, v) in listener_set {
        if !route_set.iter().any(|(r, _)| r.eq_ignore_ascii_case(k)) {
            put(out, k.as_bytes(), v.as_bytes());
        }
    }
    for (k, v) in route_set {
        put(out, k.as_bytes(), v.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Maps the start of a path (with its query, if any) from one prefix to
/// another, the way a route's `upstream_path` replaces its `path`: the
/// prefix must match at a segment boundary, and slashes are joined so that
/// neither `//` nor a missing `/` appears (`/webdav/x` with `/webdav/` → `/`
/// gives `/x`; `/api` with `/api` → `/v1/` gives `/v1/`). `None` when `from`
/// does not match.
pub fn map_prefix(path: &str, from: &str, to: &str) -> Option<String> {
    let (base, rest) = split_prefix(path, from, to)?;
    let mut s = String::with_capacity(base.len() + rest.len() + 1);
    if !base.starts_with('/') && !rest.starts_with('/') {
        s.push('/');
    }
    s.push_str(base);
    s.push_str(rest);
    Some(s)
}

fn write_mapped(out: &mut Vec<u8>, path: &[u8], from: &str, to: &str) {
    let path_str = std::str::from_utf8(path).ok();
    match path_str.and_then(|p| split_prefix(p, from, to)) {
        Some((base, rest)) => {
            if !base.starts_with('/') && !rest.starts_with('/') {
                out.push(b'/');
            }
            out.extend_from_slice(base.as_bytes());
            out.extend_from_slice(rest.as_bytes());
        }
        None => out.extend_from_slice(path),
    }
}

/// `(to without its trailing slash, rest of path from the boundary)`.
fn split_prefix<'p, 't>(path: &'p str, from: &str, to: &'t str) -> Option<(&'t str, &'p str)> {
    if !path.starts_with(from) {
        return None;
    }
    let base_len = from.trim_end_matches('/').len();
    let rest = &path[base_len..];
    if !(from.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?'])) {
        return None;
    }
    Some((to.trim_end_matches('/'), rest))
}

/// Classes of header names the rules above treat specially.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Connection, Keep-Alive, Proxy-Connection, TE, Trailer.
    HopByHop,
    Upgrade,
    TransferEncoding,
    ContentLength,
    Host,
    ForwardedFor,
    ForwardedProto,
    ForwardedHost,
    Forwarded,
    Via,
    Destination,
    Expect,
    /// Location and Content-Location.
    Location,
    Other,
}

fn kind(name: &str) -> Kind {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    match name.len() {
        2 if is("te") => Kind::HopByHop,
        3 if is("via") => Kind::Via,
        6 if is("expect") => Kind::Expect,
        4 if is("host") => Kind::Host,
        7 if is("trailer") => Kind::HopByHop,
        7 if is("upgrade") => Kind::Upgrade,
        8 if is("location") => Kind::Location,
        9 if is("forwarded") => Kind::Forwarded,
        10 if is("connection") || is("keep-alive") => Kind::HopByHop,
        11 if is("destination") => Kind::Destination,
        14 if is("content-length") => Kind::ContentLength,
        15 if is("x-forwarded-for") => Kind::ForwardedFor,
        16 if is("proxy-connection") => Kind::HopByHop,
        16 if is("x-forwarded-host") => Kind::ForwardedHost,
        16 if is("content-location") => Kind::Location,
        17 if is("transfer-encoding") => Kind::TransferEncoding,
        17 if is("x-forwarded-proto") => Kind::ForwardedProto,
        _ => Kind::Other,
    }
}

/// The header names listed in Connection fields (RFC 9110 §7.6.1), looked
/// up in place rather than collected: most heads have one Connection field
/// naming only `keep-alive` or `close`, so we remember where the (first few)
/// Connection fields are and scan just those.
struct ConnectionNames {
    at: [usize; 4],
    count: usize,
}

impl ConnectionNames {
    fn of(head: &Head) -> Self {
        let mut c = ConnectionNames {
            at: [0; 4],
            count: 0,
        };
        for (i, (n, _)) in head.iter().enumerate() {
            if n.eq_ignore_ascii_case("connection") {
                if let Some(slot) = c.at.get_mut(c.count) {
                    *slot = i;
                }
                c.count += 1;
            }
        }
        c
    }
    fn names(&self, head: &Head, name: &str) -> bool {
        let named = |v: &[u8]| list_items(v).any(|t| t.eq_ignore_ascii_case(name.as_bytes()));
        if self.count <= self.at.len() {
            self.at[..self.count]
                .iter()
                .any(|&i| named(&head.raw[head.fields[i].1.clone()]))
        } else {
            head.iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .any(|(_, v)| named(v))
        }
    }
}

fn put(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes every non-empty value of the fields named `name`, each followed by
/// `, ` (the caller appends its own element).
fn join_values(out: &mut Vec<u8>, head: &Head, name: &str) {
    for (n, v) in head.iter() {
        let v = trim_ows(v);
        if n.eq_ignore_ascii_case(name) && !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
}

/// Splits an absolute URI into `(scheme, authority, rest)` where rest is the
/// path, query and fragment (possibly empty).
fn split_url(v: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let sep = v.iter().position(|&b| b == b':')?;
    let scheme = &v[..sep];
    let first_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic);
    let rest_ok = scheme
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !first_ok || !rest_ok || !v[sep..].starts_with(b"://") {
        return None;
    }
    let a_start = sep + 3;
    let a_end = v[a_start..]
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(v.len(), |i| a_start + i);
    Some((scheme, &v[a_start..a_end], &v[a_end..]))
}

/// Authorities compared as URLs compare them: case-insensitively, and with
/// the scheme's default port the same as no port.
fn same_authority<'a>(a: &'a [u8], b: &'a [u8], scheme: &[u8]) -> bool {
    let default: &[u8] = if scheme.eq_ignore_ascii_case(b"https") {
        b":443"
    } else if scheme.eq_ignore_ascii_case(b"http") {
        b":80"
    } else {
        b""
    };
    let strip = |x: &'a [u8]| -> &'a [u8] {
        if !default.is_empty() && x.ends_with(default) {
            &x[..x.len() - default.len()]
        } else {
            x
        }
    };
    strip(a).eq_ignore_ascii_case(strip(b))
}

/// Destination names the public URL of this very resource tree; the upstream
/// only knows itself as `http://` and the Host it was sent (the classic
/// WebDAV COPY/MOVE failure behind a TLS proxy is a "different server" 502).
/// With `preserve_host` that Host is the client's, so the upstream
/// authority there would be just as foreign as the https scheme.
fn write_destination(
    out: &mut Vec<u8>,
    value: &[u8],
    client_authority: &str,
    upstream_host: &str,
    up: &UpstreamRequest<'_>,
) {
    if let Some((scheme, auth, rest)) = split_url(value)
        && !client_authority.is_empty()
        && same_authority(auth, client_authority.as_bytes(), scheme)
    {
        out.extend_from_slice(b"http://");
        out.extend_from_slice(upstream_host.as_bytes());
        match up.upstream_prefix {
            Some(to) => write_mapped(out, rest, up.route_prefix, to),
            None => out.extend_from_slice(rest),
        }
        return;
    }
    out.extend_from_slice(value);
}

/// Location / Content-Location, as Apache's ProxyPassReverse: an absolute
/// URL at the upstream (or at the public host with the wrong scheme, from an
/// upstream that sees the preserved Host but not TLS) becomes the public one.
fn write_location(out: &mut Vec<u8>, value: &[u8], lr: &LocationRewrite<'_>) {
    if let Some((scheme, auth, rest)) = split_url(value) {
        let at_upstream = same_authority(auth, lr.upstream_authority.as_bytes(), scheme);
        let wrong_scheme = !lr.public_host.is_empty()
            && auth.eq_ignore_ascii_case(lr.public_host.as_bytes())
            && !scheme.eq_ignore_ascii_case(lr.public_scheme.as_bytes());
        if at_upstream || wrong_scheme {
            out.extend_from_slice(lr.public_scheme.as_bytes());
            out.extend_from_slice(b"://");
            out.extend_from_slice(lr.public_host.as_bytes());
            match lr.upstream_prefix {
                Some(from) => write_mapped(out, rest, from, lr.route_prefix),
                None => out.extend_from_slice(rest),
            }
            return;
        }
    }
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse_request, parse_response};

    fn request(raw: &str) -> RequestHead {
        parse_request(raw.as_bytes(), 1 << 16).unwrap().unwrap().0
    }
    fn response(raw: &str) -> ResponseHead {
        parse_response(raw.as_bytes(), 1 << 16, false)
            .unwrap()
            .unwrap()
            .0
    }

    fn up<'a>(edits: &'a HeaderEdits) -> UpstreamRequest<'a> {
        UpstreamRequest {
            target: "/x?y",
            client_ip: "192.0.2.7".parse().unwrap(),
            tls: true,
            upstream_authority: "10.0.0.5:8080",
            preserve_host: true,
            via: true,
            close: false,
            upgrade: false,
            edits,
            rewrite_destination: true,
            route_prefix: "/",
            upstream_prefix: None,
        }
    }

    fn upstream(raw: &str, f: impl FnOnce(&mut UpstreamRequest<'_>)) -> String {
        let edits = HeaderEdits::default();
        upstream_with(raw, &edits, f)
    }
    fn upstream_with(
        raw: &str,
        edits: &HeaderEdits,
        f: impl FnOnce(&mut UpstreamRequest<'_>),
    ) -> String {
        let req = request(raw);
        let mut u = up(edits);
        f(&mut u);
        let mut out = Vec::new();
        write_upstream_request(&mut out, &req, &u);
        // What we write must itself be a valid request head.
        let (_, n) = parse_request(&out, 1 << 16).unwrap().unwrap();
        assert_eq!(n, out.len());
        String::from_utf8(out).unwrap()
    }

    /// Values of the header `name` in a written head.
    fn values(head: &str, name: &str) -> Vec<String> {
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(": "))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_string())
            .collect()
    }
    fn one(head: &str, name: &str) -> String {
        let v = values(head, name);
        assert_eq!(v.len(), 1, "{name} in {head}");
        v[0].clone()
    }

    const GET: &str = "GET /p HTTP/1.1\r\nHost: Pub.Example\r\nAccept: */*\r\n\r\n";

    #[test]
    fn request_line_is_always_http11_with_given_target() {
        let out = upstream("GET /p HTTP/1.0\r\nHost: a\r\n\r\n", |_| {});
        assert!(out.starts_with("GET /x?y HTTP/1.1\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"));
    }

    #[test]
    fn host_preserved_or_upstream_authority() {
        assert_eq!(one(&upstream(GET, |_| {}), "host"), "Pub.Example");
        let out = upstream(GET, |u| u.preserve_host = false);
        assert_eq!(one(&out, "host"), "10.0.0.5:8080");
        // A 1.0 client without Host still gets a Host upstream.
        let out = upstream("GET / HTTP/1.0\r\n\r\n", |_| {});
        assert_eq!(one(&out, "host"), "10.0.0.5:8080");
        // The absolute-form authority wins over Host.
        let out = upstream(
            "GET http://b.example:81/ HTTP/1.1\r\nHost: a\r\n\r\n",
            |_| {},
        );
        assert_eq!(one(&out, "host"), "b.example:81");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_upstream() {
        let out = upstream(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: websocket\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n",
            |_| {},
        );
        for h in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
            "x-secret",
        ] {
            assert!(values(&out, h).is_empty(), "{h} kept in {out}");
        }
        assert_eq!(one(&out, "x-kept"), "k");
    }

    #[test]
    fn framing_is_rewritten_from_parsed_body() {
        let out = upstream(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            |_| {},
        );
        assert_eq!(one(&out, "transfer-encoding"), "chunked");
        assert!(values(&out, "content-length").is_empty());
        let out = upstream(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            |_| {},
        );
        assert_eq!(one(&out, "content-length"), "5");
        let out = upstream("GET / HTTP/1.1\r\nHost: a\r\n\r\n", |_| {});
        assert!(values(&out, "content-length").is_empty());
        assert!(values(&out, "transfer-encoding").is_empty());
    }

    #[test]
    fn forwarding_headers_are_set_and_client_ones_dropped() {
        let out = upstream(
            "GET / HTTP/1.1\r\nHost: pub.example:8443\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\nForwarded: for=1.1.1.1\r\n\r\n",
            |_| {},
        );
        assert_eq!(one(&out, "x-forwarded-for"), "192.0.2.7");
        assert_eq!(one(&out, "x-forwarded-proto"), "https");
        assert_eq!(one(&out, "x-forwarded-host"), "pub.example:8443");
        assert_eq!(
            one(&out, "forwarded"),
            "for=192.0.2.7;host=\"pub.example:8443\";proto=https"
        );
        let out = upstream("GET / HTTP/1.1\r\nHost: pub.example\r\n\r\n", |u| {
            u.tls = false
        });
        assert_eq!(
            one(&out, "forwarded"),
            "for=192.0.2.7;host=pub.example;proto=http"
        );
        assert_eq!(one(&out, "x-forwarded-proto"), "http");
    }

    #[test]
    fn x_forwarded_for_is_appended() {
        let out = upstream(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-For: 3.3.3.3\r\n\r\n",
            |_| {},
        );
        assert_eq!(
            one(&out, "x-forwarded-for"),
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 192.0.2.7"
        );
    }

    #[test]
    fn ipv6_client_is_bracketed_and_quoted_in_forwarded() {
        let out = upstream(GET, |u| u.client_ip = "2001:db8::1".parse().unwrap());
        assert_eq!(
            one(&out, "forwarded"),
            "for=\"[2001:db8::1]\";host=Pub.Example;proto=https"
        );
        assert_eq!(one(&out, "x-forwarded-for"), "2001:db8::1");
        // An IPv4 client seen through a dual-stack socket is plain IPv4.
        let out = upstream(GET, |u| u.client_ip = "::ffff:192.0.2.9".parse().unwrap());
        assert_eq!(one(&out, "x-forwarded-for"), "192.0.2.9");
        assert!(one(&out, "forwarded").starts_with("for=192.0.2.9;"));
    }

    #[test]
    fn via_is_appended_or_left_alone() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\nVia: 1.0 fred\r\n\r\n";
        assert_eq!(one(&upstream(raw, |_| {}), "via"), "1.0 fred, 1.1 torii");
        assert_eq!(one(&upstream(raw, |u| u.via = false), "via"), "1.0 fred");
        assert_eq!(one(&upstream(GET, |_| {}), "via"), "1.1 torii");
        assert!(values(&upstream(GET, |u| u.via = false), "via").is_empty());
    }

    #[test]
    fn connection_close_and_upgrade_upstream() {
        assert_eq!(
            one(&upstream(GET, |u| u.close = true), "connection"),
            "close"
        );
        assert!(values(&upstream(GET, |_| {}), "connection").is_empty());
        let ws = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
        let out = upstream(ws, |u| u.upgrade = true);
        assert_eq!(one(&out, "upgrade"), "websocket");
        assert_eq!(one(&out, "connection"), "upgrade");
        assert_eq!(one(&out, "sec-websocket-key"), "k");
        let out = upstream(ws, |_| {});
        assert!(values(&out, "upgrade").is_empty());
        assert!(values(&out, "connection").is_empty());
    }

    #[test]
    fn header_edits_remove_and_set() {
        let edits = HeaderEdits {
            set: vec![
                ("X-Custom".into(), "1".into()),
                ("Accept".into(), "text/plain".into()),
                ("Transfer-Encoding".into(), "gzip".into()),
            ],
            remove: vec!["x-debug".into(), "x-forwarded-for".into()],
        };
        let out = upstream_with(
            "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Debug: 1\r\nX-DEBUG: 2\r\n\r\n",
            &edits,
            |_| {},
        );
        assert_eq!(one(&out, "x-custom"), "1");
        assert_eq!(one(&out, "accept"), "text/plain");
        assert!(values(&out, "x-debug").is_empty());
        assert!(values(&out, "x-forwarded-for").is_empty());
        assert!(
            values(&out, "transfer-encoding").is_empty(),
            "framing is never configurable"
        );
    }

    #[test]
    fn destination_on_client_host_is_rewritten() {
        let raw = "MOVE /webdav/a HTTP/1.1\r\nHost: Pub.Example\r\nDestination: https://pub.example/webdav/b%20c?x\r\n\r\n";
        let out = upstream(raw, |u| {
            u.route_prefix = "/webdav/";
            u.upstream_prefix = Some("/dav/");
            u.preserve_host = false;
        });
        assert_eq!(one(&out, "destination"), "http://10.0.0.5:8080/dav/b%20c?x");
        let out = upstream(raw, |u| {
            u.route_prefix = "/webdav/";
            u.preserve_host = false;
        });
        assert_eq!(
            one(&out, "destination"),
            "http://10.0.0.5:8080/webdav/b%20c?x"
        );
        // Default port of the scheme is the same authority.
        let raw = "COPY /a HTTP/1.1\r\nHost: pub.example\r\nDestination: https://pub.example:443/b\r\n\r\n";
        assert_eq!(
            one(&upstream(raw, |u| u.preserve_host = false), "destination"),
            "http://10.0.0.5:8080/b"
        );
    }

    #[test]
    fn destination_names_the_host_sent_upstream() {
        // With the client's Host preserved, the upstream compares Destination
        // with that Host (WsgiDAV, Apache mod_dav): only the scheme changes.
        let raw = "MOVE /webdav/a HTTP/1.1\r\nHost: Pub.Example:8443\r\nDestination: https://pub.example:8443/webdav/b\r\n\r\n";
        let out = upstream(raw, |u| u.route_prefix = "/webdav/");
        assert_eq!(one(&out, "host"), "Pub.Example:8443");
        assert_eq!(one(&out, "destination"), "http://Pub.Example:8443/webdav/b");
        let out = upstream(raw, |u| {
            u.route_prefix = "/webdav/";
            u.upstream_prefix = Some("/");
        });
        assert_eq!(one(&out, "destination"), "http://Pub.Example:8443/b");
    }

    #[test]
    fn destination_elsewhere_is_unchanged() {
        for d in [
            "https://other.example/b",
            "/relative/b",
            "https://pub.example:444/b",
        ] {
            let raw = format!("COPY /a HTTP/1.1\r\nHost: pub.example\r\nDestination: {d}\r\n\r\n");
            assert_eq!(one(&upstream(&raw, |_| {}), "destination"), d);
        }
    }

    #[test]
    fn destination_is_left_alone_without_rewrite_location() {
        let raw =
            "MOVE /a HTTP/1.1\r\nHost: pub.example\r\nDestination: https://pub.example/b\r\n\r\n";
        let out = upstream(raw, |u| u.rewrite_destination = false);
        assert_eq!(one(&out, "destination"), "https://pub.example/b");
    }

    #[test]
    fn map_prefix_joins_slashes() {
        assert_eq!(
            map_prefix("/webdav/x", "/webdav/", "/").as_deref(),
            Some("/x")
        );
        assert_eq!(
            map_prefix("/webdav/", "/webdav/", "/").as_deref(),
            Some("/")
        );
        assert_eq!(map_prefix("/webdav", "/webdav/", "/"), None);
        assert_eq!(
            map_prefix("/webdav/x", "/webdav", "/dav").as_deref(),
            Some("/dav/x")
        );
        assert_eq!(
            map_prefix("/webdav", "/webdav", "/dav").as_deref(),
            Some("/dav")
        );
        assert_eq!(map_prefix("/webdavx", "/webdav", "/dav"), None);
        assert_eq!(
            map_prefix("/api?q=1", "/api", "/").as_deref(),
            Some("/?q=1")
        );
        assert_eq!(map_prefix("/x", "/", "/app/").as_deref(), Some("/app/x"));
        assert_eq!(map_prefix("/", "/", "/app/").as_deref(), Some("/app/"));
        assert_eq!(
            map_prefix("/dav/x", "/dav/", "/webdav/").as_deref(),
            Some("/webdav/x")
        );
    }

    fn ctx<'a>() -> ClientResponse<'a> {
        ClientResponse {
            via: false,
            close: false,
            dechunk: false,
            upgrade: false,
            location: None,
            set_headers: [&[], &[]],
            client_minor: 1,
        }
    }
    fn client(raw: &str, c: &ClientResponse<'_>) -> String {
        let resp = response(raw);
        let mut out = Vec::new();
        write_client_response(&mut out, &resp, c);
        let (_, n) = parse_response(&out, 1 << 16, false).unwrap().unwrap();
        assert_eq!(n, out.len());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn status_line_uses_client_version_and_reason() {
        let raw = "HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n";
        assert!(client(raw, &ctx()).starts_with("HTTP/1.1 404 Nope\r\n"));
        let c = ClientResponse {
            client_minor: 0,
            ..ctx()
        };
        let out = client(raw, &c);
        assert!(out.starts_with("HTTP/1.0 404 Nope\r\n"));
        assert_eq!(one(&out, "connection"), "keep-alive");
        let out = client("HTTP/1.1 207\r\nContent-Length: 0\r\n\r\n", &ctx());
        assert!(out.starts_with("HTTP/1.1 207 Multi-Status\r\n"), "{out}");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_to_client() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\nX-Internal: 1\r\nTrailer: X\r\nUpgrade: h2c\r\nContent-Length: 2\r\nX-Kept: y\r\n\r\n";
        let out = client(raw, &ctx());
        for h in [
            "connection",
            "keep-alive",
            "x-internal",
            "trailer",
            "upgrade",
        ] {
            assert!(values(&out, h).is_empty(), "{h} kept in {out}");
        }
        assert_eq!(one(&out, "content-length"), "2");
        assert_eq!(one(&out, "x-kept"), "y");
    }

    #[test]
    fn many_connection_fields_are_all_honoured() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..6 {
            raw.push_str(&format!("Connection: X-{i}\r\nX-{i}: v\r\n"));
        }
        raw.push_str("X-Kept: k\r\n\r\n");
        let out = upstream(&raw, |_| {});
        for i in 0..6 {
            assert!(
                values(&out, &format!("x-{i}")).is_empty(),
                "x-{i} kept in {out}"
            );
        }
        assert_eq!(one(&out, "x-kept"), "k");
    }

    #[test]
    fn framing_headers_survive_connection_naming_them() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(one(&client(raw, &ctx()), "content-length"), "2");
    }

    #[test]
    fn transfer_encoding_kept_unless_dechunked() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(one(&client(raw, &ctx()), "transfer-encoding"), "chunked");
        let c = ClientResponse {
            dechunk: true,
            close: true,
            client_minor: 0,
            ..ctx()
        };
        let out = client(raw, &c);
        assert!(values(&out, "transfer-encoding").is_empty());
        assert_eq!(one(&out, "connection"), "close");
    }

    #[test]
    fn via_and_connection_to_client() {
        let raw = "HTTP/1.1 200 OK\r\nVia: 1.1 backend\r\nContent-Length: 0\r\n\r\n";
        let c = ClientResponse {
            via: true,
            close: true,
            ..ctx()
        };
        let out = client(raw, &c);
        assert_eq!(one(&out, "via"), "1.1 backend, 1.1 torii");
        assert_eq!(one(&out, "connection"), "close");
        let out = client(raw, &ctx());
        assert_eq!(one(&out, "via"), "1.1 backend");
        assert!(values(&out, "connection").is_empty());
    }

    #[test]
    fn upgrade_response_keeps_upgrade() {
        let raw = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\r\n";
        let c = ClientResponse {
            upgrade: true,
            ..ctx()
        };
        let out = client(raw, &c);
        assert_eq!(one(&out, "upgrade"), "websocket");
        assert_eq!(one(&out, "connection"), "upgrade");
        assert_eq!(one(&out, "sec-websocket-accept"), "a");
    }

    fn lr<'a>() -> LocationRewrite<'a> {
        LocationRewrite {
            upstream_authority: "10.0.0.5:8080",
            public_scheme: "https",
            public_host: "pub.example",
            route_prefix: "/webdav/",
            upstream_prefix: Some("/"),
        }
    }
    fn location(loc: &str, l: LocationRewrite<'_>) -> (String, String) {
        let raw = format!(
            "HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Location: {loc}\r\nContent-Length: 0\r\n\r\n"
        );
        let c = ClientResponse {
            location: Some(l),
            ..ctx()
        };
        let out = client(&raw, &c);
        (one(&out, "location"), one(&out, "content-location"))
    }

    #[test]
    fn location_at_upstream_is_mapped_to_public_url() {
        let (l, cl) = location("http://10.0.0.5:8080/a/b?c", lr());
        assert_eq!(l, "https://pub.example/webdav/a/b?c");
        assert_eq!(cl, l);
        let (l, _) = location("http://10.0.0.5:8080", lr());
        assert_eq!(l, "https://pub.example");
        let no_prefix = LocationRewrite {
            upstream_prefix: None,
            ..lr()
        };
        assert_eq!(
            location("http://10.0.0.5:8080/a", no_prefix).0,
            "https://pub.example/a"
        );
    }

    #[test]
    fn location_at_public_host_with_wrong_scheme_is_fixed() {
        let no_prefix = LocationRewrite {
            upstream_prefix: None,
            ..lr()
        };
        assert_eq!(
            location("http://PUB.example/x", no_prefix).0,
            "https://pub.example/x"
        );
        // Right scheme already: untouched.
        assert_eq!(
            location("https://pub.example/x", no_prefix).0,
            "https://pub.example/x"
        );
    }

    #[test]
    fn other_locations_are_unchanged() {
        for loc in [
            "/relative",
            "https://other.example/x",
            "http://10.0.0.5:9090/x",
            "mailto:x@y",
        ] {
            assert_eq!(location(loc, lr()).0, loc);
        }
        // Without rewrite_location nothing changes.
        let raw =
            "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.5:8080/a\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            one(&client(raw, &ctx()), "location"),
            "http://10.0.0.5:8080/a"
        );
    }

    #[test]
    fn configured_response_headers_replace_and_route_wins() {
        let listener = vec![
            ("X-Frame-Options".to_string(), "SAMEORIGIN".to_string()),
            ("Cache-Control".to_string(), "public".to_string()),
        ];
        let route = vec![("cache-control".to_string(), "no-store".to_string())];
        let raw = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nx-frame-options: DENY\r\nContent-Length: 0\r\n\r\n";
        let c = ClientResponse {
            set_headers: [&listener, &route],
            ..ctx()
        };
        let out = client(raw, &c);
        assert_eq!(one(&out, "cache-control"), "no-store");
        assert_eq!(one(&out, "x-frame-options"), "SAMEORIGIN");
    }
}

//! Pure request decisions: splitting the request target, the path sent
//! upstream, redirect templates and which methods may be retried. No I/O.

/// The parts of a request target used for routing and templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// Path as received (percent-encoding untouched); `*` for `OPTIONS *`.
    pub path: &'a str,
    /// Query without the `?`, if there was one.
    pub query: Option<&'a str>,
    /// Path and query as received (`$request_uri`), origin-form even when
    /// the client used the absolute form.
    pub request_uri: &'a str,
}

/// Splits an origin-form, absolute-form or asterisk-form target.
pub fn split_target(target: &str) -> Target<'_> {
    let mut uri = target;
    if !uri.starts_with('/') && uri != "*" {
        // absolute-form: scheme "://" authority [path-abempty] [? query]
        if let Some(rest) = uri.find("://").map(|i| &uri[i + 3..]) {
            uri = match rest.find(['/', '?']) {
                Some(i) => &rest[i..],
                None => "",
            };
        }
    }
    let (path, query) = match uri.find('?') {
        Some(i) => (&uri[..i], Some(&uri[i + 1..])),
        None => (uri, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    Target {
        path,
        query,
        request_uri: if uri.is_empty() { "/" } else { uri },
    }
}

/// The target sent upstream. Without `upstream_path` the target goes as
/// received (origin-form), like nginx's `proxy_pass` without a URI part.
/// With it, the route's prefix of the normalised path is replaced, the way
/// Apache's `ProxyPass /webdav/ http://backend/dav/` maps paths.
pub fn upstream_target(
    t: &Target<'_>,
    normalized: &str,
    prefix: &str,
    upstream_path: Option<&str>,
) -> String {
    let Some(up) = upstream_path else {
        return t.request_uri.to_string();
    };
    // The same mapping Location and Destination use in reverse, so the
    // three can never disagree on where slashes go.
    let mut out = crate::http::headers::map_prefix(normalized, prefix, up)
        .unwrap_or_else(|| normalized.to_string());
    if let Some(q) = t.query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Expands a redirect template: `{host}`, `{request_uri}`, `{path}`, `{query}`.
/// Unknown placeholders are kept literally (validation already rejected them
/// where it could).
pub fn expand_redirect(template: &str, host: &str, t: &Target<'_>) -> String {
    let mut out = String::with_capacity(template.len() + t.request_uri.len() + host.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            out.push_str(after);
            return out;
        };
        match &after[1..close] {
            "host" => out.push_str(host),
            "request_uri" => out.push_str(t.request_uri),
            "path" => out.push_str(t.path),
            "query" => out.push_str(t.query.unwrap_or("")),
            _ => out.push_str(&after[..=close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Methods whose request may be sent again after a pooled connection died
/// under it (RFC 9110 §9.2.2 idempotent methods, plus WebDAV's read-only
/// PROPFIND and REPORT).
pub fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE" | "PROPFIND" | "REPORT"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_origin_and_absolute_forms() {
        let t = split_target("/a/b?x=1");
        assert_eq!(
            (t.path, t.query, t.request_uri),
            ("/a/b", Some("x=1"), "/a/b?x=1")
        );
        let t = split_target("http://Example.com:8080/p?q");
        assert_eq!((t.path, t.query, t.request_uri), ("/p", Some("q"), "/p?q"));
        let t = split_target("http://example.com");
        assert_eq!((t.path, t.request_uri), ("/", "/"));
        assert_eq!(split_target("*").path, "*");
    }

    #[test]
    fn upstream_path_replaces_prefix() {
        let t = split_target("/webdav/db/cal?x");
        assert_eq!(
            upstream_target(&t, "/webdav/db/cal", "/webdav/", Some("/")),
            "/db/cal?x"
        );
        assert_eq!(
            upstream_target(&t, "/webdav/db/cal", "/webdav/", Some("/dav/")),
            "/dav/db/cal?x"
        );
        assert_eq!(
            upstream_target(&t, "/webdav/db/cal", "/webdav/", None),
            "/webdav/db/cal?x"
        );
        let t = split_target("/app");
        assert_eq!(upstream_target(&t, "/app", "/app", Some("/")), "/");
        let t = split_target("/app/x");
        assert_eq!(upstream_target(&t, "/app/x", "/app", Some("/v2")), "/v2/x");
    }

    #[test]
    fn redirect_placeholders() {
        let t = split_target("/a b/c?q=1");
        assert_eq!(
            expand_redirect("https://{host}{request_uri}", "erp.example.com", &t),
            "https://erp.example.com/a b/c?q=1"
        );
        assert_eq!(
            expand_redirect("https://{host}:8443{path}?{query}", "h", &t),
            "https://h:8443/a b/c?q=1"
        );
        assert_eq!(expand_redirect("/x{unknown}", "h", &t), "/x{unknown}");
    }

    #[test]
    fn post_is_not_retried() {
        assert!(idempotent("GET"));
        assert!(idempotent("PROPFIND"));
        assert!(!idempotent("POST"));
        assert!(!idempotent("MOVE"));
    }
}

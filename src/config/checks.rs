//! Checks and normalisations of single values (addresses, host patterns,
//! header names and values, redirect templates, path prefixes). Pure
//! functions, no positions: the caller reports where.

use super::model::HostPattern;

/// Headers that frame the message or belong to one hop: setting them from
/// the configuration would corrupt the stream, so it is refused.
pub const FORBIDDEN_SET_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

pub const REDIRECT_PLACEHOLDERS: &[&str] = &["host", "request_uri", "path", "query"];

/// `host:port` or `[v6]:port` with a non-zero port. Unbracketed IPv6 is
/// refused because its last colon is ambiguous.
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}

pub fn host_pattern(raw: &str) -> Result<HostPattern, String> {
    let h = raw.trim().to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h);
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if let Some(suffix) = h.strip_prefix("*.") {
        if valid_name(suffix) {
            return Ok(HostPattern::Wildcard(format!(".{suffix}")));
        }
    } else if valid_name(h) {
        return Ok(HostPattern::Exact(h.to_owned()));
    } else if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
        && inner.parse::<std::net::Ipv6Addr>().is_ok()
    {
        return Ok(HostPattern::Exact(h.to_owned()));
    }
    Err(format!(
        "host \"{raw}\" is not a host name or *.suffix wildcard (no port, no scheme; omit hosts for any host)"
    ))
}

/// RFC 9110 token (header names).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header field value: no CR, LF, NUL or other controls except tab.
pub fn is_field_value(s: &str) -> bool {
    s.chars().all(|c| c == '\t' || !c.is_control())
}

pub fn check_template(t: &str) -> Result<(), String> {
    if t.trim().is_empty() {
        return Err("target must not be empty".into());
    }
    if !is_field_value(t) {
        return Err("target contains a line break or control character".into());
    }
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("target \"{t}\" has an unmatched }}"));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("target \"{t}\" has an unclosed {{"))?;
        let name = &after[..close];
        if !REDIRECT_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "target uses unknown placeholder {{{name}}}: use {{host}}, {{request_uri}}, {{path}} or {{query}}"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Normalises a configured path prefix the way request paths are normalised
/// before matching (RFC 3986 §6.2.2: unreserved characters percent-decoded,
/// other escapes upper-cased, dot segments removed), so that a prefix and
/// the requests it should match compare equal.
pub fn normalize_path(raw: &str) -> Option<String> {
    if !raw.starts_with('/')
        || raw
            .bytes()
            .any(|b| b <= b' ' || b == b'?' || b == b'#' || b == 0x7f)
    {
        return None;
    }
    let bytes = raw.as_bytes();
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                decoded.push(char::from(v));
            } else {
                decoded.push('%');
                decoded.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            let c = raw[i..].chars().next()?;
            decoded.push(c);
            i += c.len_utf8();
        }
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (n, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = n == last,
            ".." => {
                out.pop();
                trailing_slash = n == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if trailing_slash && !path.ends_with('/') {
        path.push('/');
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_like_requests() {
        assert_eq!(normalize_path("/").as_deref(), Some("/"));
        assert_eq!(normalize_path("/webdav/").as_deref(), Some("/webdav/"));
        assert_eq!(normalize_path("/webdav").as_deref(), Some("/webdav"));
        assert_eq!(normalize_path("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(normalize_path("/a/.").as_deref(), Some("/a/"));
        assert_eq!(normalize_path("/a/..").as_deref(), Some("/"));
        assert_eq!(normalize_path("/../../x").as_deref(), Some("/x"));
        assert_eq!(
            normalize_path("/%7Euser/%2f").as_deref(),
            Some("/~user/%2F")
        );
        for bad in ["", "x", "/a b", "/a?b", "/a#b", "/%", "/%4", "/%zz"] {
            assert_eq!(normalize_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_patterns() {
        assert_eq!(
            host_pattern("Example.COM."),
            Ok(HostPattern::Exact("example.com".into()))
        );
        assert_eq!(
            host_pattern("*.Example.com"),
            Ok(HostPattern::Wildcard(".example.com".into()))
        );
        assert_eq!(
            host_pattern("[::1]"),
            Ok(HostPattern::Exact("[::1]".into()))
        );
        for bad in [
            "",
            "*",
            "*.",
            "a..b",
            "a.com:80",
            "http://a.com",
            "*.*.a.com",
            "[zz]",
        ] {
            assert!(host_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_port_shapes() {
        assert_eq!(split_host_port("a.b:80"), Some(("a.b", 80)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        for bad in ["a.b", "::1:80", ":80", "a:0", "a:99999", "[::1]80"] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_tokens_and_values() {
        assert!(is_token("X-Custom_1"));
        assert!(!is_token("Bad Name") && !is_token("") && !is_token("a:b"));
        assert!(is_field_value("max-age=1; x\ty"));
        assert!(!is_field_value("a\r\nb") && !is_field_value("a\0"));
    }

    #[test]
    fn redirect_templates() {
        assert!(check_template("https://{host}{request_uri}").is_ok());
        assert!(check_template("/new{path}?{query}").is_ok());
        assert!(check_template("/{nope}").is_err());
        assert!(check_template("/{host").is_err());
        assert!(check_template("/}").is_err());
        assert!(check_template(" ").is_err());
    }
}

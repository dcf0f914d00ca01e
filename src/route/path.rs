//! Request-target path normalisation before matching (RFC 3986 §6.2.2):
//! percent-decoding of unreserved characters and removal of dot segments.
//! Matching the normalised form is what makes `/webdav/../admin` reach the
//! `/admin` route rather than slip through `/webdav/`.

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Normalises the path part (no query) of an origin-form request target.
/// Returns `None` when it cannot be normalised safely (the caller answers 400):
/// not starting with `/`, bad percent-encoding, NUL, or dot segments climbing
/// above the root are clamped at the root as RFC 3986 says (so not an error).
///
/// Beyond RFC 3986, runs of `/` are merged into one, as nginx does by
/// default (`merge_slashes`): otherwise `//admin` would miss an `/admin`
/// route and reach a catch-all upstream that treats it as `/admin` anyway.
/// The trailing slash is kept.
pub fn normalize(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    // Fast path: nothing to decode, no dot segment, no `//`.
    let simple = !bytes.contains(&b'%')
        && !bytes.contains(&0)
        && !bytes.windows(2).any(|w| w == b"/." || w == b"//");
    if simple {
        return Some(raw.to_owned());
    }

    // Pass 1: percent-decoding of unreserved characters only; other escapes
    // are kept with upper-case hex (so `%2f` and `%2F` route alike).
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0 {
            return None;
        }
        if b != b'%' {
            decoded.push(b);
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).copied().and_then(hex)?;
        let lo = bytes.get(i + 2).copied().and_then(hex)?;
        let v = hi << 4 | lo;
        if v == 0 {
            return None;
        }
        if is_unreserved(v) {
            decoded.push(v);
        } else {
            decoded.push(b'%');
            decoded.push(bytes[i + 1].to_ascii_uppercase());
            decoded.push(bytes[i + 2].to_ascii_uppercase());
        }
        i += 3;
    }

    // Pass 2: RFC 3986 §5.2.4 over whole segments, with empty segments
    // (from `//`) dropped except the final one that carries a trailing `/`.
    let mut out: Vec<u8> = Vec::with_capacity(decoded.len());
    let mut segs = decoded[1..].split(|&b| b == b'/').peekable();
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        match seg {
            b"." => {}
            b".." => {
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            b"" if !last => {}
            _ => {
                out.push(b'/');
                out.extend_from_slice(seg);
                continue;
            }
        }
        // A dot segment (or empty one) at the end leaves a directory: `/a/..`
        // is `/`, `/a/.` is `/a/`.
        if last {
            out.push(b'/');
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    // Only ASCII was decoded and every other byte was copied whole, so the
    // UTF-8 of `raw` is intact.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn n(s: &str) -> Option<String> {
        normalize(s)
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in ["/", "/a", "/a/b/", "/a.b/c..d/.e", "/é/ü"] {
            assert_eq!(n(p).as_deref(), Some(p));
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_uppercased() {
        assert_eq!(n("/%41%62%2d%2E%5f%7E").as_deref(), Some("/Ab-._~"));
        assert_eq!(n("/a%2fb").as_deref(), Some("/a%2Fb"));
        assert_eq!(n("/a%20b%3f").as_deref(), Some("/a%20b%3F"));
        assert_eq!(n("/%c3%a9").as_deref(), Some("/%C3%A9"));
    }

    #[test]
    fn malformed_escapes_and_nul_are_refused() {
        for p in ["/%", "/%4", "/%zz", "/a%g1", "/%00", "/a%00b", "/a\0b"] {
            assert_eq!(n(p), None, "{p:?}");
        }
    }

    #[test]
    fn must_start_with_slash() {
        assert_eq!(n(""), None);
        assert_eq!(n("a/b"), None);
        assert_eq!(n("*"), None);
    }

    #[test]
    fn dot_segments_are_removed() {
        let cases = [
            ("/a/../b", "/b"),
            ("/webdav/../admin", "/admin"),
            ("/..", "/"),
            ("/../..", "/"),
            ("/../a", "/a"),
            ("/a/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a/./b", "/a/b"),
            ("/./a", "/a"),
            ("/.", "/"),
            ("/a/b/../../c/", "/c/"),
            ("/a/b/../../../c", "/c"),
            ("/a/..b/c", "/a/..b/c"),
        ];
        for (input, want) in cases {
            assert_eq!(n(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn encoded_dots_are_dot_segments() {
        assert_eq!(n("/webdav/%2E%2E/admin").as_deref(), Some("/admin"));
        assert_eq!(n("/webdav/.%2e/admin").as_deref(), Some("/admin"));
        assert_eq!(n("/a/%2e/b").as_deref(), Some("/a/b"));
        // An encoded slash is data, not a separator.
        assert_eq!(n("/a/..%2Fb").as_deref(), Some("/a/..%2Fb"));
    }

    #[test]
    fn slashes_are_merged_and_trailing_kept() {
        assert_eq!(n("//admin").as_deref(), Some("/admin"));
        assert_eq!(n("/a//b///c").as_deref(), Some("/a/b/c"));
        assert_eq!(n("/a//").as_deref(), Some("/a/"));
        assert_eq!(n("//").as_deref(), Some("/"));
        assert_eq!(n("/a/b/").as_deref(), Some("/a/b/"));
    }
}

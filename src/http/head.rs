//! Request and response heads: parsing with httparse, then the framing rules
//! of RFC 9112 (Content-Length / Transfer-Encoding, obs-fold, bare LF,
//! whitespace before colon, control characters) that decide how a body ends.

use std::borrow::Cow;
use std::ops::Range;

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    None,
    Length(u64),
    Chunked,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    None,
    Length(u64),
    Chunked,
    /// Ends when the upstream closes the connection.
    Close,
}

/// Why a request head was refused; `status` is what the client gets
/// (400, 414 or 431) before the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestError {
    pub status: u16,
    pub reason: &'static str,
}

/// Why an upstream response head was refused (the client gets 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseError {
    pub reason: &'static str,
}

/// An owned copy of a head: the raw bytes plus ranges into them, so that
/// parsing allocates once and headers are forwarded without re-encoding.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub raw: Vec<u8>,
    /// (name, value) ranges into `raw`, in received order.
    pub fields: Vec<(Range<usize>, Range<usize>)>,
}

impl Head {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| {
            (
                std::str::from_utf8(&self.raw[n.clone()]).unwrap_or(""),
                &self.raw[v.clone()],
            )
        })
    }
    /// First value of the header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone)]
pub struct RequestHead {
    pub head: Head,
    pub method: Range<usize>,
    /// The request target as received (origin-form, absolute-form, `*` or authority-form).
    pub target: Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub body: RequestBody,
    /// Whether the client lets the connection stay open after this exchange.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// The Upgrade header's value when `Connection: upgrade` names it.
    pub upgrade: Option<Range<usize>>,
    /// Host without port, lower-cased (from the Host header, or from an
    /// absolute-form target); empty when absent.
    pub host: String,
    /// The authority as received (host with its port, if any): the
    /// absolute-form target's when there is one, else the Host header's.
    /// Feeds `X-Forwarded-Host`, `Forwarded: host=` and a preserved `Host`.
    pub authority: Option<Range<usize>>,
    /// Path and query of the target: all of an origin-form target, the part
    /// after the authority of an absolute-form one (possibly empty), `*` for
    /// the asterisk-form.
    pub origin: Range<usize>,
}

impl RequestHead {
    pub fn method(&self) -> &str {
        std::str::from_utf8(&self.head.raw[self.method.clone()]).unwrap_or("")
    }
    pub fn target(&self) -> &str {
        std::str::from_utf8(&self.head.raw[self.target.clone()]).unwrap_or("")
    }
    /// The authority (Host with port) the client addressed, `""` when none.
    pub fn authority(&self) -> &str {
        self.authority
            .as_ref()
            .and_then(|r| std::str::from_utf8(&self.head.raw[r.clone()]).ok())
            .unwrap_or("")
    }
    /// Path and query in origin-form (`/` when an absolute-form target has
    /// no path), what `{request_uri}` and the upstream target start from.
    pub fn origin_form(&self) -> Cow<'_, str> {
        let s = std::str::from_utf8(&self.head.raw[self.origin.clone()]).unwrap_or("/");
        if s.starts_with('/') || s == "*" {
            Cow::Borrowed(s)
        } else {
            // Only an absolute-form target without path gets here (`http://h`
            // or `http://h?q`): RFC 9112 §3.2.1 says its path is `/`.
            Cow::Owned(format!("/{s}"))
        }
    }
    /// The path of the target without the query (`/` when empty, `*` for
    /// the asterisk-form); not normalised.
    pub fn path(&self) -> &str {
        let o = std::str::from_utf8(&self.head.raw[self.origin.clone()]).unwrap_or("/");
        let p = o.split_once('?').map_or(o, |(p, _)| p);
        if p.is_empty() { "/" } else { p }
    }
    /// The query of the target without its `?`, when it has one.
    pub fn query(&self) -> Option<&str> {
        let o = std::str::from_utf8(&self.head.raw[self.origin.clone()]).unwrap_or("");
        o.split_once('?').map(|(_, q)| q)
    }
    /// The Upgrade value when the client asked for one (see `upgrade`).
    pub fn upgrade_value(&self) -> Option<&[u8]> {
        self.upgrade.as_ref().map(|r| &self.head.raw[r.clone()])
    }
}

#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub head: Head,
    pub status: u16,
    pub reason: Range<usize>,
    pub minor: u8,
    pub body: ResponseBody,
    /// Whether the upstream keeps the connection open after this response.
    pub keep_alive: bool,
}

impl ResponseHead {
    pub fn reason(&self) -> &[u8] {
        &self.head.raw[self.reason.clone()]
    }
}

/// Header slots handed to httparse; one more field is a 431 (request) or a
/// 502 (response). A fixed array keeps parsing free of allocation.
const MAX_FIELDS: usize = 128;

/// httparse's defaults are the strict settings we want and are spelled out
/// here so that nobody loosens one by accident: no obs-fold, no whitespace
/// between a field name and its colon, no runs of spaces in the start line,
/// no silently skipped invalid lines.
fn parser_config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_obsolete_multiline_headers_in_responses(false)
        .allow_spaces_after_header_name_in_responses(false)
        .allow_multiple_spaces_in_request_line_delimiters(false)
        .allow_multiple_spaces_in_response_status_delimiters(false)
        .allow_space_before_first_header_name(false)
        .ignore_invalid_headers_in_requests(false)
        .ignore_invalid_headers_in_responses(false);
    c
}

const fn bad(reason: &'static str) -> RequestError {
    RequestError {
        status: 400,
        reason,
    }
}

enum Scan {
    /// The head is `buf[..end]`.
    Complete {
        end: usize,
    },
    /// No empty line yet; `line_seen` tells whether the start line is whole.
    Partial {
        line_seen: bool,
    },
    BareLf,
}

/// Finds the empty line that ends a head within `buf[..limit]`, in one pass
/// over the line feeds, before httparse runs: an incomplete head then costs
/// one scan rather than a parse. httparse takes a bare LF as a line end, so
/// `strict` (requests) refuses it here: a proxy that reads line ends
/// differently from its upstream is a request-smuggling vector.
fn scan_head(buf: &[u8], limit: usize, strict: bool) -> Scan {
    let window = &buf[..buf.len().min(limit)];
    // RFC 9112 §2.2: empty lines before a request line are ignored (clients
    // send a stray CRLF after a body).
    let mut start = 0;
    loop {
        match window.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\n', ..]) if !strict => start += 1,
            Some([b'\n', ..]) => return Scan::BareLf,
            _ => break,
        }
    }
    let mut line_start = start;
    let mut line_seen = false;
    let mut pos = start;
    while let Some(off) = window[pos..].iter().position(|&b| b == b'\n') {
        let i = pos + off;
        let cr = i > line_start && window[i - 1] == b'\r';
        if strict && !cr {
            return Scan::BareLf;
        }
        let content_end = if cr { i - 1 } else { i };
        if !line_seen {
            line_seen = true;
        } else if content_end == line_start {
            return Scan::Complete { end: i + 1 };
        }
        line_start = i + 1;
        pos = i + 1;
    }
    Scan::Partial { line_seen }
}

/// The range of `part` within `base`; `part` must be a sub-slice of it (all
/// httparse output is). An empty slice that is not gives an empty range.
fn range_in(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    if start <= base.len() && part.len() <= base.len() - start {
        start..start + part.len()
    } else {
        0..0
    }
}

/// Optional whitespace (SP / HTAB) trimmed from both ends.
pub fn trim_ows(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(s, |e| e + 1);
    &v[s..e]
}

/// The elements of a comma-separated field value (RFC 9110 §5.6.1), trimmed,
/// empty elements skipped.
pub fn list_items(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Folds one Content-Length field value into `acc`. Each comma element must
/// be 1*DIGIT within u64; a value differing from one already seen is an
/// error, an identical repetition is one value (RFC 9110 §8.6).
fn fold_content_length(value: &[u8], acc: &mut Option<u64>) -> Result<(), ()> {
    for part in value.split(|&b| b == b',') {
        let p = trim_ows(part);
        if p.is_empty() {
            return Err(());
        }
        let mut n: u64 = 0;
        for &d in p {
            if !d.is_ascii_digit() {
                return Err(());
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(())?;
        }
        match *acc {
            Some(prev) if prev != n => return Err(()),
            _ => *acc = Some(n),
        }
    }
    Ok(())
}

/// The header names the framing and routing rules look at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    ContentLength,
    TransferEncoding,
    Host,
    Connection,
    Expect,
    Upgrade,
    Other,
}

fn classify(name: &str) -> Known {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    match name.len() {
        4 if is("host") => Known::Host,
        6 if is("expect") => Known::Expect,
        7 if is("upgrade") => Known::Upgrade,
        10 if is("connection") => Known::Connection,
        14 if is("content-length") => Known::ContentLength,
        17 if is("transfer-encoding") => Known::TransferEncoding,
        _ => Known::Other,
    }
}

/// Connection options that matter to us.
#[derive(Default, Clone, Copy)]
struct ConnTokens {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
}

impl ConnTokens {
    fn add(&mut self, value: &[u8]) {
        for t in list_items(value) {
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if t.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            }
        }
    }
    fn persistent(&self, minor: u8) -> bool {
        !self.close && (minor == 1 || self.keep_alive)
    }
}

fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
        )
}

/// Splits an authority (`host[:port]`, no userinfo) and checks its syntax
/// (RFC 3986 §3.2.2): returns the host part, brackets of an IP literal kept.
/// Routing and `{host}` in redirects depend on it, so junk is refused.
fn authority_host(a: &[u8]) -> Option<&[u8]> {
    let (host, port) = if a.first() == Some(&b'[') {
        let close = a.iter().position(|&b| b == b']')?;
        let inner = &a[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let rest = &a[close + 1..];
        let port = match rest {
            [] => &rest[..0],
            [b':', p @ ..] => p,
            _ => return None,
        };
        (&a[..=close], port)
    } else {
        let (h, p) = match a.iter().rposition(|&b| b == b':') {
            Some(i) => (&a[..i], &a[i + 1..]),
            None => (a, &a[..0]),
        };
        if !h.iter().all(|&b| is_unreserved_or_sub_delim(b)) {
            return None;
        }
        (h, p)
    };
    if port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(host)
}

/// The host as routing sees it: lower-case, without port or trailing dot.
fn routing_host(host: &[u8]) -> String {
    let h = host.strip_suffix(b".").unwrap_or(host);
    // authority_host admitted ASCII only.
    String::from_utf8_lossy(h).to_ascii_lowercase()
}

/// Where an absolute-form target keeps its authority and path: `(authority,
/// path and query)` as ranges into `target`.
fn split_absolute(target: &[u8]) -> Option<(Range<usize>, Range<usize>)> {
    let sep = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..sep];
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    let a_start = sep + 3;
    let a_end = target[a_start..]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .map_or(target.len(), |i| a_start + i);
    Some((a_start..a_end, a_end..target.len()))
}

/// The 400-or-505 decision for a version httparse refused: a well-formed
/// `HTTP/x.y` that is not 1.0/1.1 gets 505, anything else is malformed.
fn version_error(head: &[u8]) -> RequestError {
    let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    let line = &head[..line_end];
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    match version {
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            RequestError {
                status: 505,
                reason: "HTTP version not supported",
            }
        }
        _ => bad("malformed request line"),
    }
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read
/// more (the caller enforces `max_head` on what it buffers by calling again;
/// this function returns 414/431 as soon as `buf` proves the limit is passed).
/// `Ok(Some((head, n)))`: the head took the first `n` bytes.
///
/// Versions: HTTP/1.0 and 1.1 only; another well-formed `HTTP/x.y` is 505,
/// anything else 400. CONNECT is refused with 400 (no tunnelling here).
pub fn parse_request(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    let n = match scan_head(buf, max_head, true) {
        Scan::BareLf => return Err(bad("bare LF in request head")),
        Scan::Partial { .. } if buf.len() < max_head => return Ok(None),
        Scan::Partial { line_seen: false } => {
            return Err(RequestError {
                status: 414,
                reason: "request line too long",
            });
        }
        Scan::Partial { line_seen: true } => {
            return Err(RequestError {
                status: 431,
                reason: "request head too large",
            });
        }
        Scan::Complete { end } => end,
    };
    let bytes = &buf[..n];
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut slots);
    match parser_config().parse_request(&mut req, bytes) {
        Ok(httparse::Status::Complete(m)) if m == n => {}
        Ok(_) => return Err(bad("malformed request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError {
                status: 431,
                reason: "too many header fields",
            });
        }
        Err(httparse::Error::Version) => return Err(version_error(bytes)),
        Err(httparse::Error::HeaderName) => return Err(bad("invalid header field name")),
        Err(httparse::Error::HeaderValue) => return Err(bad("invalid header field value")),
        Err(_) => return Err(bad("malformed request line")),
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(bad("malformed request line"));
    };
    if method == "CONNECT" {
        return Err(bad("CONNECT is not supported"));
    }
    let method_r = range_in(bytes, method.as_bytes());
    let target_r = range_in(bytes, target.as_bytes());
    let tb = target.as_bytes();
    if tb.contains(&b'#') {
        return Err(bad("fragment in request target"));
    }

    // The target's form decides where path and authority are.
    let mut abs_authority = None;
    let origin = if tb.first() == Some(&b'/') {
        target_r.clone()
    } else if tb == b"*" {
        if method != "OPTIONS" {
            return Err(bad("asterisk-form target outside OPTIONS"));
        }
        target_r.clone()
    } else if let Some((a, p)) = split_absolute(tb) {
        abs_authority = Some(target_r.start + a.start..target_r.start + a.end);
        target_r.start + p.start..target_r.start + p.end
    } else {
        return Err(bad("invalid request target"));
    };

    let mut content_length: Option<u64> = None;
    let mut te_fields = 0usize;
    let mut te_chunked = false;
    let mut host_field: Option<Range<usize>> = None;
    let mut conn = ConnTokens::default();
    let mut expect_continue = false;
    let mut upgrade_value: Option<Range<usize>> = None;
    let mut fields = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name_r = range_in(bytes, h.name.as_bytes());
        let value_r = range_in(bytes, h.value);
        fields.push((name_r, value_r.clone()));
        match classify(h.name) {
            Known::ContentLength => {
                fold_content_length(h.value, &mut content_length)
                    .map_err(|()| bad("invalid Content-Length"))?;
            }
            Known::TransferEncoding => {
                te_fields += 1;
                te_chunked = trim_ows(h.value).eq_ignore_ascii_case(b"chunked");
            }
            Known::Host => {
                if host_field.is_some() {
                    return Err(bad("several Host fields"));
                }
                host_field = Some(value_r);
            }
            Known::Connection => conn.add(h.value),
            Known::Expect => {
                expect_continue |= trim_ows(h.value).eq_ignore_ascii_case(b"100-continue");
            }
            Known::Upgrade => {
                if upgrade_value.is_none() {
                    upgrade_value = Some(value_r);
                }
            }
            Known::Other => {}
        }
    }

    // Framing (RFC 9112 §6.1, §6.3). Only a lone `chunked` is accepted: any
    // other coding list is where front and back ends have disagreed before.
    let body = if te_fields > 0 {
        if minor == 0 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if content_length.is_some() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if te_fields > 1 || !te_chunked {
            return Err(bad("unsupported Transfer-Encoding"));
        }
        RequestBody::Chunked
    } else if let Some(len) = content_length {
        RequestBody::Length(len)
    } else {
        RequestBody::None
    };

    if minor == 1 && host_field.is_none() {
        return Err(bad("missing Host"));
    }
    let mut host = String::new();
    if let Some(r) = &host_field {
        let h = authority_host(&bytes[r.clone()]).ok_or(bad("invalid Host"))?;
        host = routing_host(h);
    }
    // RFC 9112 §3.2.2: the absolute-form authority wins over Host.
    let authority = if let Some(a) = abs_authority {
        let av = &bytes[a.clone()];
        if av.is_empty() || av.contains(&b'@') {
            return Err(bad("invalid authority in request target"));
        }
        let h = authority_host(av).ok_or(bad("invalid authority in request target"))?;
        host = routing_host(h);
        Some(a)
    } else {
        host_field.filter(|r| !r.is_empty())
    };

    // RFC 9110 §7.8 and §10.1.1: both are ignored in HTTP/1.0 requests.
    let upgrade = if minor == 1 && conn.upgrade {
        upgrade_value
    } else {
        None
    };
    let head = RequestHead {
        head: Head {
            raw: bytes.to_vec(),
            fields,
        },
        method: method_r,
        target: target_r,
        minor,
        body,
        keep_alive: conn.persistent(minor),
        expect_continue: expect_continue && minor == 1,
        upgrade,
        host,
        authority,
        origin,
    };
    Ok(Some((head, n)))
}

const fn upstream_bad(reason: &'static str) -> ResponseError {
    ResponseError { reason }
}

/// Parses an upstream response head. `head_request` tells that the request
/// was HEAD (no body whatever the headers say).
///
/// Upstreams are trusted a little more than clients in one respect only: a
/// bare LF ends a line (RFC 9112 §2.2 allows it), because the head is
/// re-serialised field by field before it reaches the client. Framing stays
/// strict: Content-Length with Transfer-Encoding, conflicting lengths, or
/// `chunked` anywhere but last are errors (502), not guesses.
pub fn parse_response(
    buf: &[u8],
    max_head: usize,
    head_request: bool,
) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    let n = match scan_head(buf, max_head, false) {
        Scan::BareLf => return Err(upstream_bad("bare LF in response head")),
        Scan::Partial { .. } if buf.len() < max_head => return Ok(None),
        Scan::Partial { .. } => return Err(upstream_bad("response head too large")),
        Scan::Complete { end } => end,
    };
    let bytes = &buf[..n];
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut resp = httparse::Response::new(&mut slots);
    match parser_config().parse_response(&mut resp, bytes) {
        Ok(httparse::Status::Complete(m)) if m == n => {}
        Ok(_) => return Err(upstream_bad("malformed response head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(upstream_bad("too many header fields in response"));
        }
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(upstream_bad("invalid header field in response"));
        }
        Err(_) => return Err(upstream_bad("malformed status line")),
    }
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(upstream_bad("malformed status line"));
    };
    if !(100..=999).contains(&status) {
        return Err(upstream_bad("invalid status code"));
    }
    // The reason phrase by position: httparse hands back "" for one holding
    // obs-text, which would lose it. Strict delimiters put it right after
    // `HTTP/1.x NNN `.
    let line_start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let line_end = bytes[line_start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(n, |i| line_start + i);
    let line_end = if line_end > line_start && bytes[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    let reason = (line_start + 13).min(line_end)..line_end;

    let mut content_length: Option<u64> = None;
    let mut te_present = false;
    // Whether the last coding seen is `chunked`; `chunked` before another
    // coding is refused below.
    let mut te_final_chunked = false;
    let mut chunked_not_last = false;
    let mut conn = ConnTokens::default();
    let mut fields = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        fields.push((range_in(bytes, h.name.as_bytes()), range_in(bytes, h.value)));
        match classify(h.name) {
            Known::ContentLength => {
                fold_content_length(h.value, &mut content_length)
                    .map_err(|()| upstream_bad("invalid Content-Length in response"))?;
            }
            Known::TransferEncoding => {
                for coding in list_items(h.value) {
                    if te_final_chunked {
                        chunked_not_last = true;
                    }
                    te_present = true;
                    te_final_chunked = coding.eq_ignore_ascii_case(b"chunked");
                }
            }
            Known::Connection => conn.add(h.value),
            _ => {}
        }
    }
    if te_present && content_length.is_some() {
        return Err(upstream_bad(
            "both Content-Length and Transfer-Encoding in response",
        ));
    }
    if chunked_not_last {
        return Err(upstream_bad("chunked is not the final transfer coding"));
    }
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        ResponseBody::None
    } else if te_present {
        if te_final_chunked {
            ResponseBody::Chunked
        } else {
            ResponseBody::Close
        }
    } else if let Some(len) = content_length {
        ResponseBody::Length(len)
    } else {
        ResponseBody::Close
    };
    let head = ResponseHead {
        head: Head {
            raw: bytes.to_vec(),
            fields,
        },
        status,
        reason,
        minor,
        body,
        keep_alive: conn.persistent(minor) && body != ResponseBody::Close,
    };
    Ok(Some((head, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 16 * 1024;

    fn req(raw: &str) -> Result<Option<(RequestHead, usize)>, RequestError> {
        parse_request(raw.as_bytes(), MAX)
    }
    fn ok(raw: &str) -> RequestHead {
        match req(raw) {
            Ok(Some((h, n))) => {
                assert_eq!(n, raw.find("\r\n\r\n").map_or(0, |i| i + 4));
                h
            }
            other => panic!("expected a head for {raw:?}, got {other:?}"),
        }
    }
    fn status(raw: &str) -> u16 {
        match req(raw) {
            Err(e) => e.status,
            other => panic!("expected an error for {raw:?}, got {other:?}"),
        }
    }
    fn resp(raw: &str, head_request: bool) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
        parse_response(raw.as_bytes(), MAX, head_request)
    }
    fn resp_ok(raw: &str) -> ResponseHead {
        match resp(raw, false) {
            Ok(Some((h, _))) => h,
            other => panic!("expected a response head for {raw:?}, got {other:?}"),
        }
    }
    fn resp_err(raw: &str) {
        assert!(resp(raw, false).is_err(), "expected an error for {raw:?}");
    }

    #[test]
    fn simple_get_parses_fields_and_defaults() {
        let h = ok("GET /a/b?x=1 HTTP/1.1\r\nHost: Example.COM:8443\r\nAccept: */*\r\n\r\n");
        assert_eq!(h.method(), "GET");
        assert_eq!(h.target(), "/a/b?x=1");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.query(), Some("x=1"));
        assert_eq!(h.origin_form(), "/a/b?x=1");
        assert_eq!(h.minor, 1);
        assert_eq!(h.host, "example.com");
        assert_eq!(h.authority(), "Example.COM:8443");
        assert_eq!(h.body, RequestBody::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.upgrade, None);
        assert_eq!(h.head.get("accept"), Some(&b"*/*"[..]));
        assert_eq!(h.head.fields.len(), 2);
    }

    #[test]
    fn body_bytes_after_head_are_not_consumed() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        let (h, n) = parse_request(raw, MAX).unwrap().unwrap();
        assert_eq!(&raw[n..], b"abcGET");
        assert_eq!(h.body, RequestBody::Length(3));
    }

    #[test]
    fn incomplete_head_asks_for_more() {
        assert!(matches!(req("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None)));
        assert!(matches!(req("GET / HTT"), Ok(None)));
        assert!(matches!(req(""), Ok(None)));
        assert!(matches!(req("GET / HTTP/1.1\r\nHost: a\r\n\r"), Ok(None)));
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let raw = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let (h, n) = req(raw).unwrap().unwrap();
        assert_eq!(n, raw.len());
        assert_eq!(h.target(), "/");
    }

    #[test]
    fn http10_keep_alive_only_when_asked() {
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n").keep_alive);
        assert_eq!(ok("GET / HTTP/1.0\r\n\r\n").host, "");
    }

    #[test]
    fn expect_continue_and_upgrade_are_seen() {
        let h =
            ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
        assert!(h.expect_continue);
        let h = ok(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        assert_eq!(h.upgrade_value(), Some(&b"websocket"[..]));
        let h = ok("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(
            h.upgrade, None,
            "Upgrade without Connection: upgrade is not an upgrade"
        );
    }

    #[test]
    fn absolute_form_overrides_host() {
        let h = ok("GET http://Other.Example:81/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n");
        assert_eq!(h.host, "other.example");
        assert_eq!(h.authority(), "Other.Example:81");
        assert_eq!(h.path(), "/p");
        assert_eq!(h.origin_form(), "/p?q");
        let h = ok("GET https://b.example HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.path(), "/");
        assert_eq!(h.origin_form(), "/");
        let h = ok("GET http://b.example?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.origin_form(), "/?x=1");
        assert_eq!(h.query(), Some("x=1"));
    }

    #[test]
    fn host_forms() {
        assert_eq!(
            ok("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").host,
            "[::1]"
        );
        assert_eq!(
            ok("GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n").host,
            "[2001:db8::1]"
        );
        assert_eq!(
            ok("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n").host,
            "10.0.0.1"
        );
        assert_eq!(
            ok("GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n").host,
            "example.com"
        );
        assert_eq!(ok("GET / HTTP/1.1\r\nHost:\r\n\r\n").host, "");
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400);
    }

    #[test]
    fn missing_or_repeated_host_is_400() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400);
    }

    #[test]
    fn content_length_rules() {
        let h = ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.body, RequestBody::Length(5));
        let h = ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n");
        assert_eq!(h.body, RequestBody::Length(7));
        let h = ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.body, RequestBody::Length(0));
        let h = ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n");
        assert_eq!(h.body, RequestBody::Length(u64::MAX));
        for v in [
            "5\r\nContent-Length: 6",
            "5, 6",
            "5,",
            "",
            "+5",
            "-1",
            "0x5",
            "5 5",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n");
            assert_eq!(status(&raw), 400, "Content-Length {v:?}");
        }
    }

    #[test]
    fn transfer_encoding_rules() {
        let h = ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.body, RequestBody::Chunked);
        let h = ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD \t\r\n\r\n");
        assert_eq!(h.body, RequestBody::Chunked);
        for te in [
            "chunked, chunked",
            "gzip, chunked",
            "chunked, gzip",
            "identity",
            "chunked\tx",
            "chunkedx",
            "",
            "chunked\r\nTransfer-Encoding: chunked",
        ] {
            let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(status(&raw), 400, "Transfer-Encoding {te:?}");
        }
    }

    #[test]
    fn content_length_with_transfer_encoding_is_400() {
        assert_eq!(
            status(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            400
        );
        assert_eq!(
            status(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            400
        );
    }

    #[test]
    fn transfer_encoding_in_http10_is_400() {
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn bare_lf_anywhere_is_400() {
        assert_eq!(status("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400);
        assert_eq!(status("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        // Refused before the head is complete.
        assert_eq!(status("GET / HTTP/1.1\r\nX: y\nZ"), 400);
    }

    #[test]
    fn obs_fold_and_space_before_colon_are_400() {
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"),
            400
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"),
            400
        );
        assert_eq!(status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
    }

    #[test]
    fn control_characters_in_values_are_400() {
        for c in (0u8..0x20)
            .filter(|&c| c != b'\t' && c != b'\r' && c != b'\n')
            .chain([0x7f])
        {
            let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: a".to_vec();
            raw.push(c);
            raw.extend_from_slice(b"b\r\n\r\n");
            let r = parse_request(&raw, MAX);
            assert_eq!(r.map(|_| ()).map_err(|e| e.status), Err(400), "byte {c:#x}");
        }
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), 400);
        let h = ok("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n");
        assert_eq!(h.head.get("x"), Some(&b"a\tb"[..]));
    }

    #[test]
    fn invalid_names_methods_and_targets_are_400() {
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n"), 400);
        assert_eq!(status("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(
            status("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"),
            400
        );
        assert_eq!(status("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(
            status("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"),
            400
        );
        assert_eq!(ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").path(), "*");
    }

    #[test]
    fn unsupported_versions() {
        assert_eq!(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET / FOO\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET /\r\n\r\n"), 400);
    }

    #[test]
    fn request_line_over_limit_is_414() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100));
        assert_eq!(parse_request(long.as_bytes(), 64).unwrap_err().status, 414);
        // Still incomplete, but already past the limit.
        let partial = format!("GET /{}", "a".repeat(100));
        assert_eq!(
            parse_request(partial.as_bytes(), 64).unwrap_err().status,
            414
        );
        // Incomplete and under the limit: wait.
        assert!(matches!(
            parse_request(&partial.as_bytes()[..60], 64),
            Ok(None)
        ));
    }

    #[test]
    fn head_over_limit_is_431() {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(100)
        );
        assert_eq!(parse_request(raw.as_bytes(), 64).unwrap_err().status, 431);
        assert_eq!(
            parse_request(&raw.as_bytes()[..70], 64).unwrap_err().status,
            431
        );
        // Exactly at the limit is accepted.
        let n = raw.len();
        assert!(parse_request(raw.as_bytes(), n).unwrap().is_some());
        assert_eq!(
            parse_request(raw.as_bytes(), n - 1).unwrap_err().status,
            431
        );
    }

    #[test]
    fn too_many_fields_is_431() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_FIELDS {
            raw.push_str(&format!("X-{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(
            parse_request(raw.as_bytes(), 1 << 20).unwrap_err().status,
            431
        );
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_FIELDS - 1 {
            raw.push_str(&format!("X-{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        assert!(parse_request(raw.as_bytes(), 1 << 20).unwrap().is_some());
    }

    #[test]
    fn response_basic() {
        let h = resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX: y\r\n\r\n");
        assert_eq!(h.status, 200);
        assert_eq!(h.reason(), b"OK");
        assert_eq!(h.minor, 1);
        assert_eq!(h.body, ResponseBody::Length(12));
        assert!(h.keep_alive);
        let h = resp_ok("HTTP/1.1 404 Not Found Here\r\n\r\n");
        assert_eq!(h.reason(), b"Not Found Here");
        assert_eq!(h.body, ResponseBody::Close);
        assert!(!h.keep_alive, "a close-delimited body ends the connection");
        let h = resp_ok("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.reason(), b"");
        let h = resp_ok("HTTP/1.1 200 été\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.reason(), "été".as_bytes());
    }

    #[test]
    fn response_bodiless_statuses_and_head() {
        for s in [100, 101, 103, 204, 304] {
            let h = resp_ok(&format!("HTTP/1.1 {s} X\r\nContent-Length: 5\r\n\r\n"));
            assert_eq!(h.body, ResponseBody::None, "status {s}");
        }
        let (h, _) = resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.body, ResponseBody::None);
        assert!(h.keep_alive);
    }

    #[test]
    fn response_framing() {
        let h = resp_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.body, ResponseBody::Chunked);
        let h = resp_ok(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
        );
        assert_eq!(h.body, ResponseBody::Chunked);
        let h = resp_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(h.body, ResponseBody::Close);
        assert!(!h.keep_alive);
        let h = resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n");
        assert_eq!(h.body, ResponseBody::Length(4));
        resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n");
        resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
        resp_err("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n");
        resp_err("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
    }

    #[test]
    fn response_keep_alive() {
        assert!(
            !resp_ok("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        assert!(!resp_ok("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(
            resp_ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
    }

    #[test]
    fn response_status_and_syntax_errors() {
        resp_err("HTTP/1.1 099 X\r\n\r\n");
        resp_err("HTTP/1.1 20 X\r\n\r\n");
        resp_err("HTTP/1.1 2000 X\r\n\r\n");
        resp_err("HTTP/2.0 200 OK\r\n\r\n");
        resp_err("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n");
        resp_err("HTTP/1.1 200 OK\r\nX : a\r\n\r\n");
        resp_err("HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n");
        assert_eq!(resp_ok("HTTP/1.1 999 Weird\r\n\r\n").status, 999);
    }

    #[test]
    fn response_bare_lf_is_tolerated() {
        let raw = "HTTP/1.1 200 OK\nContent-Length: 2\n\nok";
        let (h, n) = resp(raw, false).unwrap().unwrap();
        assert_eq!(n, raw.len() - 2);
        assert_eq!(h.body, ResponseBody::Length(2));
        assert_eq!(h.reason(), b"OK");
    }

    #[test]
    fn response_limits() {
        assert!(matches!(resp("HTTP/1.1 200 OK\r\nX: y", false), Ok(None)));
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "v".repeat(200));
        assert!(parse_response(big.as_bytes(), 100, false).is_err());
        assert!(parse_response(&big.as_bytes()[..120], 100, false).is_err());
        let mut many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..=MAX_FIELDS {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert!(parse_response(many.as_bytes(), 1 << 20, false).is_err());
    }

    /// A stable-toolchain stand-in for the fuzz targets: deterministic byte
    /// mutations of valid heads must never panic, and every accepted head
    /// keeps its limits.
    #[test]
    fn mutated_heads_never_panic() {
        let seeds: [&[u8]; 3] = [
            b"POST http://a.example:8/p?q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
            b"GET / HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in seeds {
            for _ in 0..3000 {
                let mut buf = seed.to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() % buf.len() as u64) as usize;
                    match next() % 3 {
                        0 => buf[i] = next() as u8,
                        1 => {
                            buf.remove(i);
                        }
                        _ => buf.insert(i, b"\r\n: ,\t"[(next() % 6) as usize]),
                    }
                }
                let max = (next() % 128 + 16) as usize;
                if let Ok(Some((h, n))) = parse_request(&buf, max) {
                    assert!(n <= max);
                    let _ = (h.path(), h.query(), h.origin_form(), h.authority());
                }
                if let Ok(Some((_, n))) = parse_response(&buf, max, false) {
                    assert!(n <= max);
                }
            }
        }
    }
}

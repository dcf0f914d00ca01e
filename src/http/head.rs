//! Request and response heads: parsing with httparse, then the framing rules
//! of RFC 9112 (Content-Length / Transfer-Encoding, obs-fold, bare LF,
//! whitespace before colon, control characters) that decide how a body ends.

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
}

impl RequestHead {
    pub fn method(&self) -> &str {
        std::str::from_utf8(&self.head.raw[self.method.clone()]).unwrap_or("")
    }
    pub fn target(&self) -> &str {
        std::str::from_utf8(&self.head.raw[self.target.clone()]).unwrap_or("")
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

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read
/// more (the caller enforces `max_head` on what it buffers by calling again;
/// this function returns 414/431 as soon as `buf` proves the limit is passed).
/// `Ok(Some((head, n)))`: the head took the first `n` bytes.
pub fn parse_request(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    let _ = (buf, max_head);
    unimplemented!()
}

/// Parses an upstream response head. `head_request` tells that the request
/// was HEAD (no body whatever the headers say).
pub fn parse_response(
    buf: &[u8],
    max_head: usize,
    head_request: bool,
) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    let _ = (buf, max_head, head_request);
    unimplemented!()
}

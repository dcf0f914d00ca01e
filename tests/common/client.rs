//! Test clients: raw bytes over TCP, a minimal response parser, and a
//! keep-alive client that reads responses one by one from one connection.
//! Every read has a deadline; nothing here can hang a test.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::wire::{self, Collector, Wire};

/// Default deadline for a single read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as the client received it.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    /// Minor version of the status line.
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body came chunked.
    pub chunked: bool,
    pub trailers: Vec<String>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        wire::header_all(&self.headers, name)
    }

    pub fn has_token(&self, name: &str, token: &str) -> bool {
        wire::header_has_token(&self.headers, name, token)
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a response body is delimited, decided from the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

fn parse_response_head(buf: &[u8]) -> io::Result<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "bad response head ({e}): {:?}",
                String::from_utf8_lossy(buf)
            ),
        )),
    }
}

/// Parses a complete response head (as delimited by the reader).
fn decode_head(head: &[u8]) -> io::Result<HttpResponse> {
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(head)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(HttpResponse {
        version: resp.version.unwrap_or(1),
        status: resp.code.unwrap_or(0),
        reason: resp.reason.unwrap_or("").to_string(),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        ..HttpResponse::default()
    })
}

/// Body framing of a response to a request with method HEAD (`head`) or not.
pub fn framing(resp: &HttpResponse, head: bool) -> io::Result<Framing> {
    if head || matches!(resp.status, 100..=199 | 204 | 304) {
        return Ok(Framing::None);
    }
    if resp.header("Transfer-Encoding").is_some() {
        return Ok(if resp.has_token("Transfer-Encoding", "chunked") {
            Framing::Chunked
        } else {
            Framing::Close
        });
    }
    match resp.header("Content-Length") {
        Some(v) => v.trim().parse().map(Framing::Length).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad Content-Length {v:?}"),
            )
        }),
        None => Ok(Framing::Close),
    }
}

/// One client connection, reading responses in order.
pub struct Client {
    wire: Wire<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("set write timeout");
        let _ = stream.set_nodelay(true);
        Client {
            wire: Wire::new(stream),
        }
    }

    pub fn set_read_timeout(&mut self, d: Duration) {
        let _ = self.wire.stream.set_read_timeout(Some(d));
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.wire.stream
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.stream.write_all(bytes)?;
        self.wire.stream.flush()
    }

    /// Reads the next response head (an interim 1xx included).
    pub fn read_head(&mut self) -> io::Result<HttpResponse> {
        match self.wire.read_head_with(parse_response_head)? {
            Some(head) => decode_head(&head),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            )),
        }
    }

    /// Reads the body of `resp` into it (keeping at most `cap` bytes) and
    /// returns the full length.
    pub fn read_body_into(
        &mut self,
        resp: &mut HttpResponse,
        head: bool,
        cap: usize,
    ) -> io::Result<u64> {
        let mut c = Collector::new(cap);
        match framing(resp, head)? {
            Framing::None => {}
            Framing::Length(n) => self.wire.read_exact_body(n, &mut |b| c.push(b))?,
            Framing::Chunked => {
                resp.chunked = true;
                resp.trailers = self.wire.read_chunked_body(&mut |b| c.push(b))?;
            }
            Framing::Close => self.wire.read_to_close(&mut |b| c.push(b))?,
        }
        resp.body = c.data;
        Ok(c.len)
    }

    /// Reads the body of `resp`, checking that byte `i` is `expect(i)`;
    /// returns the length. Memory stays constant whatever the size.
    pub fn read_body_checked(
        &mut self,
        resp: &HttpResponse,
        expect: impl Fn(u64) -> u8,
    ) -> io::Result<u64> {
        let mut n = 0u64;
        let mut bad: Option<u64> = None;
        let mut sink = |b: &[u8]| {
            for &x in b {
                if bad.is_none() && x != expect(n) {
                    bad = Some(n);
                }
                n += 1;
            }
        };
        match framing(resp, false)? {
            Framing::None => {}
            Framing::Length(len) => self.wire.read_exact_body(len, &mut sink)?,
            Framing::Chunked => {
                self.wire.read_chunked_body(&mut sink)?;
            }
            Framing::Close => self.wire.read_to_close(&mut sink)?,
        }
        if let Some(at) = bad {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("body differs at byte {at}"),
            ));
        }
        Ok(n)
    }

    /// Reads one full response (interim 1xx responses are returned too).
    pub fn read_response(&mut self) -> io::Result<HttpResponse> {
        self.read_response_to(false)
    }

    /// Reads one full response to a request whose method was HEAD if `head`.
    pub fn read_response_to(&mut self, head: bool) -> io::Result<HttpResponse> {
        let mut resp = self.read_head()?;
        self.read_body_into(&mut resp, head, usize::MAX)?;
        Ok(resp)
    }

    /// Reads responses until a final (non-1xx) one.
    pub fn read_final(&mut self) -> io::Result<HttpResponse> {
        loop {
            let r = self.read_response()?;
            if !(100..200).contains(&r.status) {
                return Ok(r);
            }
        }
    }

    /// Sends a request and reads its final response.
    pub fn roundtrip(&mut self, request: &[u8]) -> io::Result<HttpResponse> {
        self.send(request)?;
        self.read_final()
    }

    /// Waits until the peer closes: `Ok(bytes received meanwhile)`, or an
    /// error if it is still open at the deadline. A reset counts as closed.
    pub fn wait_closed(&mut self, deadline: Duration) -> io::Result<Vec<u8>> {
        let end = Instant::now() + deadline;
        let mut got = std::mem::take(&mut self.wire.buf);
        let mut tmp = [0u8; 16 * 1024];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection still open at the deadline",
                ));
            }
            self.wire.stream.set_read_timeout(Some(left))?;
            match self.wire.stream.read(&mut tmp) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&tmp[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(got);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// True if nothing arrives and the connection stays open for `d`.
    pub fn stays_open_silent(&mut self, d: Duration) -> bool {
        if !self.wire.buf.is_empty() {
            return false;
        }
        let _ = self.wire.stream.set_read_timeout(Some(d));
        let mut tmp = [0u8; 1];
        let r = self.wire.stream.read(&mut tmp);
        let _ = self.wire.stream.set_read_timeout(Some(READ_TIMEOUT));
        matches!(r, Err(ref e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

/// Sends `bytes` on a fresh connection and returns everything received until
/// the peer closes or `deadline` passes.
pub fn send_raw(addr: SocketAddr, bytes: &[u8], deadline: Duration) -> Vec<u8> {
    let mut c = Client::connect(addr);
    // A peer that answers and closes early may make a late write fail; what
    // it sent before is still worth reading.
    let _ = c.send(bytes);
    match c.wait_closed(deadline) {
        Ok(v) => v,
        Err(_) => std::mem::take(&mut c.wire.buf),
    }
}

/// Parses every complete response in `bytes` (responses to non-HEAD
/// requests).
pub fn parse_responses(bytes: &[u8]) -> Vec<HttpResponse> {
    let mut c = Wire::new(io::empty());
    c.buf = bytes.to_vec();
    let mut out = Vec::new();
    while !c.buf.is_empty() {
        let Ok(Some(head)) = c.read_head_with(parse_response_head) else {
            break;
        };
        let Ok(mut resp) = decode_head(&head) else {
            break;
        };
        let mut col = Collector::new(usize::MAX);
        let ok = match framing(&resp, false) {
            Ok(Framing::None) => Ok(()),
            Ok(Framing::Length(n)) => c.read_exact_body(n, &mut |b| col.push(b)),
            Ok(Framing::Chunked) => c.read_chunked_body(&mut |b| col.push(b)).map(|_| ()),
            Ok(Framing::Close) => c.read_to_close(&mut |b| col.push(b)),
            Err(e) => Err(e),
        };
        resp.body = col.data;
        out.push(resp);
        if ok.is_err() {
            break;
        }
    }
    out
}

/// One GET on a fresh connection (`Connection: close`), its final response.
pub fn get(addr: SocketAddr, host: &str, target: &str) -> HttpResponse {
    request(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Sends a raw request on a fresh connection, returns its final response.
pub fn request(addr: SocketAddr, raw: &[u8]) -> HttpResponse {
    let mut c = Client::connect(addr);
    c.roundtrip(raw).unwrap_or_else(|e| {
        panic!(
            "request to {addr} failed: {e}; request was {:?}",
            String::from_utf8_lossy(raw)
        )
    })
}

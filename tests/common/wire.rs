//! Buffered reading of HTTP/1.1 framing from a stream, shared by the test
//! backend and the test clients: head boundaries, Content-Length bodies,
//! chunked bodies (decoded) and read-to-close bodies.
//!
//! Bodies are handed to a sink slice by slice so that a 1 GiB body is counted
//! without ever being held in memory.

use std::io::{self, Read};

/// Largest single read; also the most a sink is handed at once.
const READ_SIZE: usize = 64 * 1024;

/// A stream plus the bytes read from it but not consumed yet (pipelining and
/// read-ahead leave bytes of the next message here).
pub struct Wire<S: Read> {
    pub stream: S,
    pub buf: Vec<u8>,
}

impl<S: Read> Wire<S> {
    pub fn new(stream: S) -> Self {
        Wire {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads once more into `buf`; `Ok(0)` is end of stream.
    pub fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; READ_SIZE];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes and returns the first `n` buffered bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        self.buf.drain(..n).collect()
    }

    /// Reads until `buf` holds a complete head according to `complete`,
    /// which returns the head length once it parses. `Ok(None)`: the stream
    /// ended cleanly before any byte of a head arrived.
    pub fn read_head_with(
        &mut self,
        mut complete: impl FnMut(&[u8]) -> io::Result<Option<usize>>,
    ) -> io::Result<Option<Vec<u8>>> {
        loop {
            if !self.buf.is_empty()
                && let Some(n) = complete(&self.buf)?
            {
                return Ok(Some(self.take(n)));
            }
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "stream ended inside a head: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        }
    }

    /// Reads exactly `n` body bytes into `sink`.
    pub fn read_exact_body(&mut self, mut n: u64, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.buf.is_empty() && self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended with {n} body bytes missing"),
                ));
            }
            let k = self.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            sink(&self.buf[..k]);
            self.buf.drain(..k);
            n -= k as u64;
        }
        Ok(())
    }

    /// Reads one CRLF-terminated line (without the CRLF).
    pub fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i);
                self.buf.drain(..2);
                return Ok(line);
            }
            if self.buf.len() > 64 * 1024 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a line",
                ));
            }
        }
    }

    /// Reads a chunked body, handing the decoded data to `sink`; returns the
    /// trailer lines.
    pub fn read_chunked_body(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Vec<String>> {
        loop {
            let line = self.read_line()?;
            let line = String::from_utf8_lossy(&line).into_owned();
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size line {line:?}"),
                )
            })?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let t = self.read_line()?;
                    if t.is_empty() {
                        return Ok(trailers);
                    }
                    trailers.push(String::from_utf8_lossy(&t).into_owned());
                }
            }
            self.read_exact_body(size, sink)?;
            let crlf = self.read_line()?;
            if !crlf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk data not followed by CRLF",
                ));
            }
        }
    }

    /// Reads until the peer closes, handing everything to `sink`.
    pub fn read_to_close(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        loop {
            if !self.buf.is_empty() {
                sink(&self.buf);
                self.buf.clear();
            }
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }
}

/// Collects a body: counts every byte, keeps the first `cap` bytes.
pub struct Collector {
    pub len: u64,
    pub data: Vec<u8>,
    pub cap: usize,
}

impl Collector {
    pub fn new(cap: usize) -> Self {
        Collector {
            len: 0,
            data: Vec::new(),
            cap,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        let room = self.cap.saturating_sub(self.data.len());
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Case-insensitive lookup in a header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every value of a header, in order.
pub fn header_all<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// True when a comma-separated header (all its occurrences) lists `token`.
pub fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    header_all(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

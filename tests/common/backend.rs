//! A real threaded HTTP/1.1 origin server living in the test process, which
//! torii proxies to. It records what it was sent (so tests can assert what
//! the upstream saw) and answers through a handler closure whose `Reply`
//! can misbehave on purpose: delay, drop the connection, switch protocols,
//! send raw bytes, stream a huge body, close an idle keep-alive connection.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::wire::{self, Collector, Wire};

/// Beyond this many simultaneous connections the backend refuses more, so a
/// runaway test cannot exhaust threads.
const MAX_CONNECTIONS: usize = 512;
/// Request bodies are counted in full but only this much is kept.
const RECORDED_BODY: usize = 1024 * 1024;
/// A connection silent for this long is abandoned (torii being killed closes
/// its sockets anyway; this only bounds stray threads).
const SAFETY_TIMEOUT: Duration = Duration::from_secs(60);

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<(String, String)>,
    /// The first `RECORDED_BODY` bytes of the (decoded) body.
    pub body: Vec<u8>,
    /// The full body length.
    pub body_len: u64,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// Index (0-based, in accept order) of the connection it came on.
    pub conn: usize,
    /// Index of the request on its connection (0 = first).
    pub seq_on_conn: usize,
}

impl Request {
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

/// How the reply body is framed and produced.
#[derive(Debug, Clone)]
pub enum Body {
    /// `Content-Length` framed (omitted for 1xx/204/304).
    Fixed(Vec<u8>),
    /// `Transfer-Encoding: chunked`, one chunk per element.
    Chunked(Vec<Vec<u8>>),
    /// `Content-Length: n`, bytes generated on the fly (`pattern_byte(i)`).
    Stream(u64),
    /// No length: the body ends when the backend closes.
    UntilClose(Vec<u8>),
}

/// What the backend does with a request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send a normal response.
    Respond,
    /// Close the connection without a byte of response.
    Drop,
    /// Send `101 Switching Protocols` (with the reply's headers), then echo
    /// every byte received until the peer closes.
    Upgrade,
    /// Write these bytes verbatim, then close.
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub action: Action,
    /// Sleep before answering (simulates a slow origin).
    pub delay: Duration,
    /// Say `Connection: close` and close after the response.
    pub close: bool,
    /// Close after the response without announcing it (a server that drops
    /// keep-alive connections behind the proxy's back).
    pub close_silently: bool,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Fixed(Vec::new()),
            action: Action::Respond,
            delay: Duration::ZERO,
            close: false,
            close_silently: false,
        }
    }

    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply::new(200).body(body)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Fixed(body.into());
        self
    }

    pub fn chunked(mut self, chunks: Vec<Vec<u8>>) -> Self {
        self.body = Body::Chunked(chunks);
        self
    }

    pub fn stream(mut self, len: u64) -> Self {
        self.body = Body::Stream(len);
        self
    }

    pub fn until_close(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::UntilClose(body.into());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }

    pub fn close_silently(mut self) -> Self {
        self.close_silently = true;
        self
    }

    pub fn drop_connection() -> Self {
        let mut r = Reply::new(0);
        r.action = Action::Drop;
        r
    }

    pub fn switching_protocols() -> Self {
        let mut r = Reply::new(101)
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket");
        r.action = Action::Upgrade;
        r
    }

    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        let mut r = Reply::new(0);
        r.action = Action::Raw(bytes.into());
        r
    }
}

/// The byte at offset `i` of a generated stream body; not constant so that
/// a proxy that duplicates or drops a buffer is caught by content checks.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Backend behaviour that is not per request.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Close a keep-alive connection after this much idleness between
    /// requests.
    pub idle_close: Option<Duration>,
    /// Do not answer `Expect: 100-continue` with an interim 100.
    pub no_continue: bool,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct State {
    handler: Box<Handler>,
    options: Options,
    accepted: AtomicUsize,
    active: AtomicUsize,
    closed: AtomicUsize,
    heads: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

pub struct Backend {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Backend {
    /// A backend whose default handler echoes `METHOD TARGET` and the request
    /// headers as text lines.
    pub fn echo() -> Backend {
        Backend::start(echo_reply)
    }

    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Backend {
        Backend::with_options(Options::default(), handler)
    }

    pub fn with_options(
        options: Options,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for the backend");
        let addr = listener.local_addr().expect("backend local address");
        let state = Arc::new(State {
            handler: Box::new(handler),
            options,
            accepted: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            heads: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let st = Arc::clone(&state);
        thread::spawn(move || accept_loop(listener, st));
        Backend { addr, state }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections that have ended (either side closed).
    pub fn closed(&self) -> usize {
        self.state.closed.load(Ordering::SeqCst)
    }

    /// Request heads received, counted before the body and the handler:
    /// tells a test that a request is in flight at the backend.
    pub fn heads(&self) -> usize {
        self.state.heads.load(Ordering::SeqCst)
    }

    /// Complete requests received (head and body).
    pub fn request_count(&self) -> usize {
        self.lock().len()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().clone()
    }

    /// The last complete request; panics if there is none.
    pub fn last(&self) -> Request {
        self.lock()
            .last()
            .cloned()
            .expect("the backend received no request")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        // A handler panic poisons nothing here (the lock is never held across
        // it), so recovering the data is always sound.
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so its thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// The default handler: 200, body = `METHOD TARGET\n` + `name: value\n` per
/// request header.
pub fn echo_reply(req: &Request) -> Reply {
    Reply::ok(echo_text(req))
}

pub fn echo_text(req: &Request) -> String {
    let mut s = format!("{} {}\n", req.method, req.target);
    for (n, v) in &req.headers {
        s.push_str(&format!("{n}: {v}\n"));
    }
    s
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let index = state.accepted.fetch_add(1, Ordering::SeqCst);
        if state.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            state.closed.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        state.active.fetch_add(1, Ordering::SeqCst);
        let st = Arc::clone(&state);
        thread::spawn(move || {
            let _ = serve(stream, index, &st);
            st.active.fetch_sub(1, Ordering::SeqCst);
            st.closed.fetch_add(1, Ordering::SeqCst);
        });
    }
}

fn parse_request_head(buf: &[u8]) -> io::Result<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("backend: bad request head: {e}"),
        )),
    }
}

fn serve(stream: TcpStream, index: usize, state: &State) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut wire = Wire::new(stream);
    let mut seq = 0;
    loop {
        let idle = if wire.buf.is_empty() {
            state.options.idle_close.unwrap_or(SAFETY_TIMEOUT)
        } else {
            SAFETY_TIMEOUT
        };
        wire.stream.set_read_timeout(Some(idle))?;
        let Some(head) = wire.read_head_with(parse_request_head)? else {
            return Ok(());
        };
        wire.stream.set_read_timeout(Some(SAFETY_TIMEOUT))?;
        state.heads.fetch_add(1, Ordering::SeqCst);

        let mut hbuf = [httparse::EMPTY_HEADER; 256];
        let mut parsed = httparse::Request::new(&mut hbuf);
        parsed
            .parse(&head)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let mut req = Request {
            method: parsed.method.unwrap_or("").to_string(),
            target: parsed.path.unwrap_or("").to_string(),
            version: parsed.version.unwrap_or(1),
            headers,
            body: Vec::new(),
            body_len: 0,
            chunked: false,
            conn: index,
            seq_on_conn: seq,
        };
        seq += 1;

        if !state.options.no_continue
            && req
                .header("Expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }

        let mut body = Collector::new(RECORDED_BODY);
        if wire::header_has_token(&req.headers, "Transfer-Encoding", "chunked") {
            req.chunked = true;
            wire.read_chunked_body(&mut |b| body.push(b))?;
        } else if let Some(cl) = req.header("Content-Length") {
            let n: u64 = cl
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
            wire.read_exact_body(n, &mut |b| body.push(b))?;
        }
        req.body_len = body.len;
        req.body = body.data;

        let reply = (state.handler)(&req);
        let client_wants_close = req.has_token("Connection", "close")
            || (req.version == 0 && !req.has_token("Connection", "keep-alive"));
        let is_head = req.method.eq_ignore_ascii_case("HEAD");
        state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req);

        if !reply.delay.is_zero() {
            thread::sleep(reply.delay);
        }
        match &reply.action {
            Action::Drop => return Ok(()),
            Action::Raw(bytes) => {
                out.write_all(bytes)?;
                let _ = out.shutdown(Shutdown::Write);
                return Ok(());
            }
            Action::Upgrade => {
                write_head(&mut out, &reply, None, false)?;
                return echo_tunnel(wire, out);
            }
            Action::Respond => {}
        }
        write_response(&mut out, &reply, is_head)?;
        if reply.close
            || reply.close_silently
            || client_wants_close
            || matches!(reply.body, Body::UntilClose(_))
        {
            let _ = out.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

fn write_head(
    out: &mut TcpStream,
    reply: &Reply,
    framing: Option<String>,
    close: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(f) = framing {
        head.push_str(&f);
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn write_response(out: &mut TcpStream, reply: &Reply, is_head: bool) -> io::Result<()> {
    let bodiless = matches!(reply.status, 100..=199 | 204 | 304);
    let user_framed = reply.headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    let framing = |f: String| {
        if bodiless || user_framed {
            None
        } else {
            Some(f)
        }
    };
    match &reply.body {
        Body::Fixed(b) => {
            write_head(
                out,
                reply,
                framing(format!("Content-Length: {}\r\n", b.len())),
                reply.close,
            )?;
            if !is_head && !bodiless {
                out.write_all(b)?;
            }
        }
        Body::Chunked(chunks) => {
            write_head(
                out,
                reply,
                framing("Transfer-Encoding: chunked\r\n".into()),
                reply.close,
            )?;
            if !is_head && !bodiless {
                for c in chunks.iter().filter(|c| !c.is_empty()) {
                    out.write_all(format!("{:x}\r\n", c.len()).as_bytes())?;
                    out.write_all(c)?;
                    out.write_all(b"\r\n")?;
                }
                out.write_all(b"0\r\n\r\n")?;
            }
        }
        Body::Stream(n) => {
            write_head(
                out,
                reply,
                framing(format!("Content-Length: {n}\r\n")),
                reply.close,
            )?;
            if !is_head && !bodiless {
                let block: Vec<u8> = (0..251u64 * 256).map(pattern_byte).collect();
                let mut left = *n;
                while left > 0 {
                    let k = left.min(block.len() as u64) as usize;
                    out.write_all(&block[..k])?;
                    left -= k as u64;
                }
            }
        }
        Body::UntilClose(b) => {
            write_head(out, reply, None, reply.close)?;
            if !is_head {
                out.write_all(b)?;
            }
        }
    }
    out.flush()
}

/// After a 101: echo every byte back until the peer closes.
fn echo_tunnel(mut wire: Wire<TcpStream>, mut out: TcpStream) -> io::Result<()> {
    if !wire.buf.is_empty() {
        out.write_all(&wire.buf)?;
        wire.buf.clear();
    }
    loop {
        if wire.fill()? == 0 {
            let _ = out.shutdown(Shutdown::Write);
            return Ok(());
        }
        out.write_all(&wire.buf)?;
        wire.buf.clear();
    }
}

//! One client connection: the state machine and its pump, [`Client::drive`].
//!
//! `drive` is called on every readiness event of either socket (client or
//! upstream) and loops until nothing moves. Edge-triggered contract: each
//! side has `readable`/`writable` flags set by events and cleared only by a
//! `WouldBlock`, so a spurious wake-up costs one loop and a missed one cannot
//! happen. Bytes flow through four bounded buffers:
//!
//! ```text
//! client ──read──> inb ──framing──> up_out ──write──> upstream
//! client <─write── outb <─framing── up_in <──read──── upstream
//! ```
//!
//! Each side is read only while the buffer it fills has room, which is the
//! whole of backpressure: a slow reader stops the writer's reads, so memory
//! per connection is bounded whatever the body size.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpStream;
use mio::{Interest, Registry};

use super::Cx;
use super::exchange::{
    BUF_LIMIT, Exchange, Failure, ReqBody, RespBody, drop_up, exchange_complete, exchange_deadline,
    log_exchange, log_simple, pump,
};
use super::request;
use crate::config::{Action, Route};
use crate::http::body::ChunkedDecoder;
use crate::http::canned;
use crate::http::head::{self, RequestBody, RequestHead};
use crate::http::headers::{self, UpstreamRequest};
use crate::net::buffer::{Buf, IO_SIZE};
use crate::net::listener::Bound;
use crate::net::transport::Transport;
use crate::route::path;
use crate::runtime::generation::Generation;
use crate::runtime::token::Tok;
use crate::upstream::pool::UpConn;

/// How long a closing connection may linger reading what the client still
/// sends (so our last response is not destroyed by a TCP reset).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 1 << 20;

pub struct Client {
    pub id: u64,
    pub io: Transport,
    pub peer: SocketAddr,
    pub bound: Arc<Bound>,
    /// The generation of the last request (or of the accept): used when the
    /// listener disappeared in a reload, so the connection can drain.
    pub generation: Arc<Generation>,
    pub readable: bool,
    pub writable: bool,
    /// The peer's FIN was seen by epoll: reads continue until EOF.
    pub hup: bool,
    /// The client has half-closed (read returned 0).
    eof: bool,
    inb: Buf,
    outb: Buf,
    phase: Phase,
    /// Deadline of the current state; `scheduled` is the one the timer heap holds.
    pub deadline: Instant,
    pub scheduled: Option<Instant>,
    /// Bytes discarded while lingering.
    lingered: u64,
    /// Bytes of `inb` already parsed as an incomplete head.
    head_seen: usize,
}

enum Phase {
    /// Waiting for a request head. `since`: when its first byte (or, for the
    /// first request, the connection) arrived; `None` while idle between
    /// keep-alive requests.
    Head {
        since: Option<Instant>,
        idle_from: Instant,
    },
    Exchange(Box<Exchange>),
    /// Writing out `outb`, then closing (after lingering).
    Closing {
        since: Instant,
        shut: bool,
    },
    Done,
}

/// What `drive` tells the worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Waiting for readiness or a deadline.
    Keep,
    /// More work is ready: drive again on the worker's next turn.
    Again,
    Close,
}

/// Pump rounds before a busy connection yields to the others (each round
/// moves up to a buffer's worth each way).
const DRIVE_ROUNDS: usize = 16;

impl Client {
    pub fn new(
        id: u64,
        io: Transport,
        peer: SocketAddr,
        bound: Arc<Bound>,
        generation: Arc<Generation>,
        now: Instant,
    ) -> Client {
        let deadline = now + generation.config.timeouts.client_header;
        Client {
            id,
            io,
            peer,
            bound,
            generation,
            readable: true,
            writable: true,
            hup: false,
            eof: false,
            inb: Buf::new(),
            outb: Buf::new(),
            phase: Phase::Head {
                since: Some(now),
                idle_from: now,
            },
            deadline,
            scheduled: None,
            lingered: 0,
            head_seen: 0,
        }
    }

    /// Idle between requests: the first to go on a graceful stop.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head { since: None, .. })
            && self.inb.is_empty()
            && self.outb.is_empty()
    }

    /// The upstream connection this client is using, if any.
    pub fn upstream_key(&self) -> Option<usize> {
        match &self.phase {
            Phase::Exchange(ex) => ex.up,
            _ => None,
        }
    }

    /// Starts a graceful close: idle connections close now, busy ones after
    /// their current response.
    pub fn drain(&mut self, now: Instant) {
        let idle = self.is_idle();
        match &mut self.phase {
            Phase::Exchange(ex) => ex.close_after = true,
            Phase::Head { .. } if idle => {
                self.phase = Phase::Closing {
                    since: now,
                    shut: false,
                };
            }
            _ => {}
        }
    }

    /// Releases everything when the connection goes away: an upstream
    /// connection in use is closed (its stream is mid-exchange).
    pub fn teardown(&mut self, cx: &mut Cx<'_>) {
        if let Phase::Exchange(ex) = &mut self.phase {
            if let Some(k) = ex.up.take()
                && cx.ups.contains(k)
            {
                cx.ups.remove(k);
            }
            if ex.status == 0 {
                ex.status = 499;
            }
            log_exchange(cx, self.peer, &self.io, ex);
        }
        self.phase = Phase::Done;
    }

    /// The pump. Returns `Close` when the connection is finished.
    pub fn drive(&mut self, cx: &mut Cx<'_>) -> Verdict {
        for _ in 0..DRIVE_ROUNDS {
            let mut progress = false;
            match self.read_client(cx) {
                Ok(p) => progress |= p,
                Err(_) => return self.abort(cx),
            }
            match self.step(cx) {
                Ok(p) => progress |= p,
                Err(()) => return self.abort(cx),
            }
            match self.write_client() {
                Ok(p) => progress |= p,
                Err(_) => return self.abort(cx),
            }
            if let Phase::Closing { shut, .. } = &mut self.phase
                && self.outb.is_empty()
                && !self.io.has_pending_output()
            {
                if !*shut {
                    *shut = true;
                    self.io.close();
                }
                if self.eof || self.lingered > LINGER_BYTES {
                    self.phase = Phase::Done;
                }
            }
            if matches!(self.phase, Phase::Done) {
                return Verdict::Close;
            }
            if !progress {
                if self.is_idle() {
                    // Waiting for the next request: hold no buffer memory.
                    self.inb.release(cx.bufs);
                    self.outb.release(cx.bufs);
                }
                self.update_deadline(cx);
                return Verdict::Keep;
            }
        }
        // Still moving: yield to the other connections of the worker and
        // come back on its next turn (no new readiness edge may ever come for
        // bytes that already sit in a socket buffer).
        self.update_deadline(cx);
        Verdict::Again
    }

    fn abort(&mut self, cx: &mut Cx<'_>) -> Verdict {
        self.teardown(cx);
        Verdict::Close
    }

    /// How much the current phase wants in `inb`.
    fn read_limit(&self) -> usize {
        match &self.phase {
            Phase::Head { .. } => self.generation.config.limits.max_request_head + 1,
            Phase::Exchange(ex) => match ex.req_body {
                ReqBody::Done => 0,
                _ => BUF_LIMIT,
            },
            Phase::Closing { .. } => IO_SIZE,
            Phase::Done => 0,
        }
    }

    fn read_client(&mut self, cx: &mut Cx<'_>) -> io::Result<bool> {
        if !self.readable || self.eof {
            return Ok(false);
        }
        let limit = self.read_limit();
        if self.inb.len() >= limit {
            return Ok(false);
        }
        let spare = self.inb.spare(limit, cx.bufs);
        let asked = spare.len();
        let r = self.io.read(spare);
        match r {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(n) => {
                self.inb.commit(n);
                if n < asked && !self.hup && matches!(self.io, Transport::Plain(_)) {
                    // A short read drained the socket: the next read would
                    // only say WouldBlock, and new bytes bring a new edge.
                    self.readable = false;
                }
                if let Phase::Closing { .. } = self.phase {
                    // Lingering: what the client still sends is dropped.
                    self.lingered += n as u64;
                    self.inb.clear();
                }
                if let Phase::Exchange(ex) = &mut self.phase {
                    ex.last_client = cx.now;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                // `spare` zero-filled a whole head's worth (16 KiB) for this
                // read; a connection waiting for its next request (or its
                // handshake) would otherwise keep those pages for as long
                // as it idles: most of an idle connection's memory.
                if matches!(self.phase, Phase::Head { .. }) {
                    self.inb.release(cx.bufs);
                }
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => {
                if matches!(self.phase, Phase::Head { .. }) && self.io.is_handshaking() {
                    tracing::debug!(peer = %self.peer, "TLS handshake failed: {e}");
                }
                Err(e)
            }
        }
    }

    fn write_client(&mut self) -> io::Result<bool> {
        let mut progress = false;
        if !self.writable {
            return Ok(false);
        }
        while !self.outb.is_empty() {
            match self.io.write(self.outb.bytes()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outb.consume(n);
                    progress = true;
                    if let Phase::Exchange(ex) = &mut self.phase {
                        ex.last_client = Instant::now();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Ok(progress);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.io.has_pending_output() {
            match self.io.flush() {
                Ok(true) => progress = true,
                Ok(false) => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    fn step(&mut self, cx: &mut Cx<'_>) -> Result<bool, ()> {
        match &mut self.phase {
            Phase::Head { .. } => self.step_head(cx),
            Phase::Exchange(_) => self.step_exchange(cx),
            Phase::Closing { .. } | Phase::Done => Ok(false),
        }
    }

    fn step_head(&mut self, cx: &mut Cx<'_>) -> Result<bool, ()> {
        if self.inb.is_empty() {
            if self.eof {
                self.phase = Phase::Done;
                return Ok(true);
            }
            return Ok(false);
        }
        if let Phase::Head { since, .. } = &mut self.phase
            && since.is_none()
        {
            *since = Some(cx.now);
        }
        let limits = self.generation.config.limits;
        // Parsing starts from the first byte each time; do it only when a
        // line has ended since the last try (or the size limit is passed),
        // so a client trickling a head byte by byte, or a drive round with
        // nothing new, costs no rescan of what is already known incomplete.
        let bytes = self.inb.bytes();
        let new_line = bytes[self.head_seen.min(bytes.len())..].contains(&b'\n');
        let parsed = if new_line || bytes.len() > limits.max_request_head {
            head::parse_request(bytes, limits.max_request_head)
        } else {
            Ok(None)
        };
        self.head_seen = bytes.len();
        match parsed {
            Ok(None) => {
                if self.eof {
                    // Half a head then EOF: nothing sensible to answer.
                    tracing::debug!(peer = %self.peer, "client closed mid request head");
                    self.phase = Phase::Done;
                    return Ok(true);
                }
                Ok(false)
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, status = e.status, "bad request: {}", e.reason);
                let listener = self.current_listener();
                self.canned_error(cx, listener, None, e.status, true);
                Ok(true)
            }
            Ok(Some((req, n))) => {
                self.inb.consume(n);
                self.head_seen = 0;
                self.start_request(cx, req);
                Ok(true)
            }
        }
    }

    /// The generation and listener index a new request runs with.
    fn current_listener(&mut self) -> (Arc<Generation>, Option<usize>) {
        (
            self.generation.clone(),
            self.generation.listener_index(&self.bound),
        )
    }

    fn start_request(&mut self, cx: &mut Cx<'_>, req: RequestHead) {
        // One load per request: the request keeps this generation to its end.
        let current = cx.shared.generation.load_full();
        let (generation, listener, draining_listener) = match current.listener_index(&self.bound) {
            Some(i) => (current, i, false),
            None => match self.generation.listener_index(&self.bound) {
                // Listener removed by a reload: serve this request with the
                // generation it had, then close so the connection drains.
                Some(i) => (self.generation.clone(), i, true),
                None => {
                    self.phase = Phase::Done;
                    return;
                }
            },
        };
        self.generation = generation.clone();
        cx.shared.requests.fetch_add(1, Ordering::Relaxed);
        let target = request::split_target(req.target());
        let keep = req.keep_alive && !cx.draining && !draining_listener;
        let has_body = !matches!(req.body, RequestBody::None | RequestBody::Length(0));
        let head_only = req.method() == "HEAD";

        let normalized = if target.path == "*" {
            Some("/".to_string())
        } else if target.path.starts_with('/') {
            path::normalize(target.path)
        } else {
            None
        };
        let Some(normalized) = normalized else {
            tracing::info!(peer = %self.peer, "bad request: target {:?} cannot be normalised", req.target());
            self.canned_error(cx, (generation, Some(listener)), Some(&req), 400, true);
            return;
        };
        let Some(route_index) = generation.routes.lookup(listener, &req.host, &normalized) else {
            self.canned_error(
                cx,
                (generation, Some(listener)),
                Some(&req),
                404,
                !keep || has_body,
            );
            return;
        };
        let route: &Route = &generation.config.routes[route_index];
        if let Some(max) = generation.config.limits.max_request_body
            && let RequestBody::Length(n) = req.body
            && n > max
        {
            tracing::info!(peer = %self.peer, "request body of {n} bytes over the limit of {max}");
            self.canned_error(
                cx,
                (generation.clone(), Some(listener)),
                Some(&req),
                413,
                true,
            );
            return;
        }
        match &route.action {
            Action::Respond {
                status,
                body,
                content_type,
            } => {
                let close = !keep || has_body;
                let hdrs = merged_headers(
                    &generation,
                    listener,
                    Some(route),
                    keep_alive_header(close, req.minor),
                );
                let sent = self.outb.write_with(|out| {
                    canned::write(
                        out,
                        *status,
                        content_type,
                        body.as_bytes(),
                        close,
                        head_only,
                        &hdrs,
                    )
                });
                self.finish_canned(cx, &generation, listener, &req, *status, sent, close);
            }
            Action::Redirect { template, status } => {
                let host = if req.host.is_empty() {
                    self.bound.addr.ip().to_string()
                } else {
                    req.host.clone()
                };
                let location = request::expand_redirect(template, &host, &target);
                let close = !keep || has_body;
                let body = format!(
                    "<html>\r\n<head><title>{s} {r}</title></head>\r\n<body>\r\n<center><h1>{s} {r}</h1></center>\r\n<hr><center>torii</center>\r\n</body>\r\n</html>\r\n",
                    s = status,
                    r = canned::reason(*status)
                );
                let mut hdrs = merged_headers(
                    &generation,
                    listener,
                    Some(route),
                    keep_alive_header(close, req.minor),
                );
                hdrs.push(("Location", &location));
                let sent = self.outb.write_with(|out| {
                    canned::write(
                        out,
                        *status,
                        "text/html",
                        body.as_bytes(),
                        close,
                        head_only,
                        &hdrs,
                    )
                });
                self.finish_canned(cx, &generation, listener, &req, *status, sent, close);
            }
            Action::Upstream(upstream) => {
                let upstream = *upstream;
                let up_target = request::upstream_target(
                    &target,
                    &normalized,
                    &route.path,
                    route.upstream_path.as_deref(),
                );
                let req_body = match req.body {
                    RequestBody::None | RequestBody::Length(0) => ReqBody::Done,
                    RequestBody::Length(n) => ReqBody::Length(n),
                    RequestBody::Chunked => ReqBody::Chunked(ChunkedDecoder::new()),
                };
                if req.expect_continue && req.minor == 1 && !matches!(req_body, ReqBody::Done) {
                    // Answered here rather than by the upstream: torii reads the
                    // body itself and the upstream never sees the Expect.
                    self.outb.extend(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                let upgrade = req.upgrade.is_some();
                let servers = generation.config.upstreams[upstream].servers.len();
                let first = cx.next_server(&generation, upstream, servers);
                let now = cx.now;
                let ex = Exchange {
                    generation: generation.clone(),
                    listener,
                    route: route_index,
                    upstream,
                    tried: 0,
                    server: first,
                    target: up_target,
                    up: None,
                    reused: false,
                    retried: false,
                    up_written: 0,
                    body_moved: 0,
                    body_total: 0,
                    req_body,
                    up_out: Buf::new(),
                    up_in: Buf::new(),
                    resp: None,
                    resp_body: RespBody::Done,
                    dechunk: false,
                    close_after: !keep,
                    upgrade,
                    tunnel: false,
                    up_eof: false,
                    started: now,
                    started_wall: SystemTime::now(),
                    connect_started: now,
                    up_first_byte: None,
                    last_up: now,
                    last_client: now,
                    status: 0,
                    bytes_sent: 0,
                    req,
                };
                self.phase = Phase::Exchange(Box::new(ex));
                if self.connect(cx).is_err() {
                    self.fail_exchange(cx, 502);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_canned(
        &mut self,
        cx: &mut Cx<'_>,
        generation: &Arc<Generation>,
        listener: usize,
        req: &RequestHead,
        status: u16,
        sent: u64,
        close: bool,
    ) {
        log_simple(
            cx,
            self.peer,
            &self.io,
            generation,
            Some(listener),
            Some(req),
            status,
            sent,
        );
        self.next_after_response(cx.now, close);
    }

    #[allow(clippy::too_many_arguments)]
    fn canned_error(
        &mut self,
        cx: &mut Cx<'_>,
        (generation, listener): (Arc<Generation>, Option<usize>),
        req: Option<&RequestHead>,
        status: u16,
        close: bool,
    ) {
        let minor = req.map_or(1, |r| r.minor);
        let head_only = req.is_some_and(|r| r.method() == "HEAD");
        let hdrs = match listener {
            Some(l) => merged_headers(&generation, l, None, keep_alive_header(close, minor)),
            None => Vec::new(),
        };
        let sent = self
            .outb
            .write_with(|out| canned::error(out, status, close, head_only, &hdrs));
        log_simple(
            cx,
            self.peer,
            &self.io,
            &generation,
            listener,
            req,
            status,
            sent,
        );
        self.next_after_response(cx.now, close);
    }

    fn next_after_response(&mut self, now: Instant, close: bool) {
        if close {
            self.phase = Phase::Closing {
                since: now,
                shut: false,
            };
        } else {
            self.phase = Phase::Head {
                since: None,
                idle_from: now,
            };
        }
    }

    /// Opens (or takes from the pool) a connection to the exchange's server.
    fn connect(&mut self, cx: &mut Cx<'_>) -> io::Result<()> {
        let Phase::Exchange(ex) = &mut self.phase else {
            return Ok(());
        };
        let upstream = &ex.generation.config.upstreams[ex.upstream];
        loop {
            if ex.tried >= upstream.servers.len() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "every server failed",
                ));
            }
            let server = &upstream.servers[ex.server];
            let Some(&addr) = server.addrs.first() else {
                ex.tried += 1;
                ex.server = (ex.server + 1) % upstream.servers.len();
                continue;
            };
            ex.up_out.clear();
            let tls = self.io.tls_conn().is_some();
            let peer_ip = self.peer.ip();
            ex.up_out.write_with(|out| {
                headers::write_upstream_request(
                    out,
                    &ex.req,
                    &UpstreamRequest {
                        target: &ex.target,
                        client_ip: peer_ip,
                        tls,
                        upstream_authority: &server.text,
                        preserve_host: ex.generation.config.routes[ex.route].preserve_host,
                        via: ex.generation.config.global.via,
                        close: !upstream.keepalive,
                        upgrade: ex.upgrade,
                        edits: &ex.generation.config.routes[ex.route].request_headers,
                        rewrite_destination: ex.generation.config.routes[ex.route].rewrite_location,
                        route_prefix: &ex.generation.config.routes[ex.route].path,
                        upstream_prefix: ex.generation.config.routes[ex.route]
                            .upstream_path
                            .as_deref(),
                    },
                )
            });
            // Per-connection state starts afresh: a retry or the next
            // server must not inherit the EOF or bytes of the one that failed.
            ex.connect_started = cx.now;
            ex.last_up = cx.now;
            ex.up_written = 0;
            ex.up_eof = false;
            ex.up_in.clear();
            ex.up_first_byte = None;
            if upstream.keepalive
                && !ex.retried
                && let Some(k) = cx.pool.take(cx.ups, addr, cx.key, cx.now)
            {
                ex.up = Some(k);
                ex.reused = true;
                return Ok(());
            }
            ex.reused = false;
            match TcpStream::connect(addr) {
                Ok(sock) => {
                    let _ = sock.set_nodelay(true);
                    let entry = cx.ups.vacant_entry();
                    let k = entry.key();
                    let mut up = UpConn::new(sock, addr, cx.key, cx.now);
                    if let Err(e) = cx.registry.register(
                        &mut up.sock,
                        Tok::Upstream(k).token(),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::warn!("cannot register upstream socket: {e}");
                        return Err(e);
                    }
                    entry.insert(up);
                    ex.up = Some(k);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(upstream = %upstream.name, server = %server.text, "connect failed: {e}");
                    ex.tried += 1;
                    ex.server = (ex.server + 1) % upstream.servers.len();
                }
            }
        }
    }

    fn step_exchange(&mut self, cx: &mut Cx<'_>) -> Result<bool, ()> {
        let Phase::Exchange(ex) = &mut self.phase else {
            return Ok(false);
        };
        match pump(ex, cx, &mut self.inb, &mut self.outb, self.eof, self.peer) {
            Ok(progress) => {
                if exchange_complete(ex) {
                    self.finish_exchange(cx);
                    return Ok(true);
                }
                Ok(progress)
            }
            Err(Failure::Connect(e)) => {
                let generation = ex.generation.clone();
                let up = &generation.config.upstreams[ex.upstream];
                tracing::warn!(upstream = %up.name, server = %up.servers[ex.server].text, "connect failed: {e}");
                drop_up(cx, ex);
                ex.tried += 1;
                ex.server = (ex.server + 1) % up.servers.len();
                if self.connect(cx).is_err() {
                    self.fail_exchange(cx, 502);
                }
                Ok(true)
            }
            Err(Failure::Broken(e)) => {
                let retry = ex.reused
                    && !ex.retried
                    && ex.up_first_byte.is_none()
                    && (ex.up_written == 0
                        || (request::idempotent(ex.req.method()) && ex.body_moved == 0));
                drop_up(cx, ex);
                if retry {
                    tracing::debug!(
                        "pooled upstream connection broke ({e}); retrying on a fresh one"
                    );
                    ex.retried = true;
                    if self.connect(cx).is_err() {
                        self.fail_exchange(cx, 502);
                    }
                    return Ok(true);
                }
                let up = &ex.generation.config.upstreams[ex.upstream];
                tracing::warn!(upstream = %up.name, server = %up.servers[ex.server].text, "upstream connection broke: {e}");
                self.fail_exchange(cx, 502);
                Ok(true)
            }
            Err(Failure::Protocol(reason)) => {
                let up = &ex.generation.config.upstreams[ex.upstream];
                tracing::warn!(upstream = %up.name, server = %up.servers[ex.server].text, "invalid upstream response: {reason}");
                drop_up(cx, ex);
                self.fail_exchange(cx, 502);
                Ok(true)
            }
            Err(Failure::Client(status, reason)) => {
                tracing::info!(peer = %self.peer, status, "request body refused: {reason}");
                drop_up(cx, ex);
                if self.eof {
                    return Err(());
                }
                self.fail_exchange(cx, status);
                Ok(true)
            }
        }
    }

    /// Ends an exchange with an error status when no response byte went to
    /// the client yet; otherwise the only honest signal left is closing.
    fn fail_exchange(&mut self, cx: &mut Cx<'_>, status: u16) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        drop_up(cx, ex);
        if ex.resp.is_some() {
            log_exchange(cx, self.peer, &self.io, ex);
            self.phase = Phase::Closing {
                since: cx.now,
                shut: false,
            };
            return;
        }
        let hdrs = merged_headers(
            &ex.generation,
            ex.listener,
            Some(&ex.generation.config.routes[ex.route]),
            &[],
        );
        ex.status = status;
        ex.bytes_sent += self
            .outb
            .write_with(|out| canned::error(out, status, true, ex.req.method() == "HEAD", &hdrs));
        log_exchange(cx, self.peer, &self.io, ex);
        self.phase = Phase::Closing {
            since: cx.now,
            shut: false,
        };
    }

    fn finish_exchange(&mut self, cx: &mut Cx<'_>) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        let upstream = &ex.generation.config.upstreams[ex.upstream];
        let reusable = upstream.keepalive
            && !ex.tunnel
            && !ex.up_eof
            && ex.up_out.is_empty()
            && matches!(ex.req_body, ReqBody::Done)
            && ex.resp.as_ref().is_some_and(|r| r.keep_alive)
            && ex.up_in.is_empty();
        if let Some(k) = ex.up.take() {
            if reusable {
                cx.pool.put(cx.ups, k, upstream.max_idle, cx.now);
            } else if cx.ups.contains(k) {
                cx.ups.remove(k);
            }
        }
        log_exchange(cx, self.peer, &self.io, ex);
        let close =
            ex.close_after || ex.tunnel || !matches!(ex.req_body, ReqBody::Done) || cx.draining;
        ex.up_in.release(cx.bufs);
        ex.up_out.release(cx.bufs);
        self.next_after_response(cx.now, close);
    }

    /// Recomputes the deadline of the current state and schedules it.
    fn update_deadline(&mut self, cx: &Cx<'_>) {
        let t = &self.generation.config.timeouts;
        self.deadline = match &self.phase {
            Phase::Head { since: Some(s), .. } => *s + t.client_header,
            Phase::Head {
                since: None,
                idle_from,
            } => *idle_from + t.client_keepalive,
            Phase::Exchange(ex) => {
                let connecting = ex
                    .up
                    .and_then(|k| cx.ups.get(k))
                    .is_none_or(|u| u.connecting);
                exchange_deadline(ex, &self.outb, connecting)
            }
            Phase::Closing { since, .. } => *since + LINGER + t.client_send,
            Phase::Done => Instant::now(),
        };
    }

    /// Called when the deadline has passed. Returns `Close` when the
    /// connection is to go now; otherwise the caller drives it again.
    pub fn on_timeout(&mut self, cx: &mut Cx<'_>) -> Verdict {
        match &mut self.phase {
            Phase::Head { since, .. } => {
                if since.is_some() && !self.inb.is_empty() {
                    tracing::info!(peer = %self.peer, "request head not received in time");
                    let listener = self.current_listener();
                    self.canned_error(cx, listener, None, 408, true);
                    return self.drive(cx);
                }
                if self.io.is_handshaking() {
                    tracing::info!(peer = %self.peer, "TLS handshake not completed in time; closing");
                } else if since.is_some() {
                    tracing::debug!(peer = %self.peer, "no request within client_header; closing");
                } else {
                    tracing::debug!(peer = %self.peer, "idle keep-alive connection closed");
                }
                Verdict::Close
            }
            Phase::Exchange(ex) => {
                let t = ex.generation.config.timeouts;
                let connecting = ex
                    .up
                    .and_then(|k| cx.ups.get(k))
                    .is_some_and(|u| u.connecting);
                if connecting {
                    let generation = ex.generation.clone();
                    let up = &generation.config.upstreams[ex.upstream];
                    tracing::warn!(upstream = %up.name, server = %up.servers[ex.server].text, "connect timed out after {:?}", t.upstream_connect);
                    drop_up(cx, ex);
                    ex.tried += 1;
                    ex.server = (ex.server + 1) % up.servers.len();
                    if ex.tried >= up.servers.len() || self.connect(cx).is_err() {
                        self.fail_exchange(cx, 504);
                    }
                    return self.drive(cx);
                }
                let waiting_client_body =
                    !matches!(ex.req_body, ReqBody::Done) && ex.up_out.is_empty() && !ex.tunnel;
                if waiting_client_body {
                    tracing::info!(peer = %self.peer, "request body stalled for {:?}", t.client_body);
                    self.fail_exchange(cx, 408);
                    return self.drive(cx);
                }
                if ex.resp.is_none() {
                    let up = &ex.generation.config.upstreams[ex.upstream];
                    tracing::warn!(upstream = %up.name, server = %up.servers[ex.server].text, "upstream did not answer in time");
                    self.fail_exchange(cx, 504);
                    return self.drive(cx);
                }
                tracing::info!(peer = %self.peer, "exchange stalled; closing");
                self.teardown(cx);
                Verdict::Close
            }
            Phase::Closing { .. } | Phase::Done => Verdict::Close,
        }
    }
}

/// Builds `(name, value)` pairs of the listener's then the route's
/// `response_headers`, plus `extra`.
fn merged_headers<'g>(
    generation: &'g Generation,
    listener: usize,
    route: Option<&'g Route>,
    extra: &[(&'g str, &'g str)],
) -> Vec<(&'g str, &'g str)> {
    let mut v: Vec<(&str, &str)> = Vec::new();
    let mut add = |k: &'g str, val: &'g str| {
        v.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        v.push((k, val));
    };
    for (k, val) in extra {
        add(k, val);
    }
    if let Some(l) = generation.config.listeners.get(listener) {
        for (k, val) in &l.response_headers {
            add(k, val);
        }
    }
    if let Some(r) = route {
        for (k, val) in &r.response_headers {
            add(k, val);
        }
    }
    v
}

/// HTTP/1.0 clients keep the connection only when told so.
fn keep_alive_header(close: bool, minor: u8) -> &'static [(&'static str, &'static str)] {
    if !close && minor == 0 {
        &[("Connection", "keep-alive")]
    } else {
        &[]
    }
}

pub(super) fn is_tls_listener(generation: &Generation, listener: usize) -> bool {
    generation
        .listeners
        .get(listener)
        .is_some_and(|l| l.tls.is_some())
}

/// Registers a new client socket.
pub fn register(registry: &Registry, io: &mut Transport, key: usize) -> io::Result<()> {
    registry.register(
        io.socket_mut(),
        Tok::Client(key).token(),
        Interest::READABLE | Interest::WRITABLE,
    )
}

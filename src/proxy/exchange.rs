//! One exchange: a request forwarded upstream and its response relayed
//! back, as bytes moving between the four buffers of a connection
//! ([`pump`]), with the framing of each body, the deadlines of each stage
//! and why an exchange can fail. `conn` owns the connection around it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::Cx;
use super::conn::is_tls_listener;
use crate::http::body::ChunkedDecoder;
use crate::http::head::{self, RequestHead, ResponseBody, ResponseHead};
use crate::http::headers::{self, ClientResponse, LocationRewrite};
use crate::log::access::Record;
use crate::net::buffer::{Buf, IO_SIZE};
use crate::net::transport::Transport;
use crate::runtime::generation::Generation;

/// Buffered bytes per direction before reading pauses.
pub(super) const BUF_LIMIT: usize = 4 * IO_SIZE;

pub(super) enum ReqBody {
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Tunnel: everything until the client closes.
    Stream,
    Done,
}

pub(super) enum RespBody {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
    Done,
}

pub(super) struct Exchange {
    pub(super) generation: Arc<Generation>,
    pub(super) req: RequestHead,
    pub(super) listener: usize,
    pub(super) route: usize,
    pub(super) upstream: usize,
    /// Servers tried so far for this request (connect failures move on).
    pub(super) tried: usize,
    pub(super) server: usize,
    /// Target sent upstream.
    pub(super) target: String,
    pub(super) up: Option<usize>,
    pub(super) reused: bool,
    pub(super) retried: bool,
    pub(super) up_written: u64,
    pub(super) body_moved: u64,
    pub(super) body_total: u64,
    pub(super) req_body: ReqBody,
    pub(super) up_out: Buf,
    pub(super) up_in: Buf,
    pub(super) resp: Option<ResponseHead>,
    pub(super) resp_body: RespBody,
    pub(super) dechunk: bool,
    /// The client connection closes after this response.
    pub(super) close_after: bool,
    pub(super) upgrade: bool,
    pub(super) tunnel: bool,
    pub(super) up_eof: bool,
    pub(super) started: Instant,
    pub(super) started_wall: SystemTime,
    pub(super) connect_started: Instant,
    pub(super) up_first_byte: Option<Instant>,
    pub(super) last_up: Instant,
    pub(super) last_client: Instant,
    pub(super) status: u16,
    pub(super) bytes_sent: u64,
}

/// Why an exchange ended early, which decides the status and the retry.
pub(super) enum Failure {
    /// Connect refused or failed: try the next server.
    Connect(io::Error),
    /// The upstream connection broke (write error or EOF) before or during the response.
    Broken(io::Error),
    /// The upstream sent something that is not HTTP as we accept it.
    Protocol(&'static str),
    /// The client broke the request body framing or hung up.
    Client(u16, &'static str),
}

pub(super) fn drop_up(cx: &mut Cx<'_>, ex: &mut Exchange) {
    if let Some(k) = ex.up.take()
        && cx.ups.contains(k)
    {
        cx.ups.remove(k);
    }
}

pub(super) fn exchange_complete(ex: &Exchange) -> bool {
    if ex.tunnel {
        // Both directions ended and were flushed.
        return ex.up_eof
            && ex.up_in.is_empty()
            && matches!(ex.req_body, ReqBody::Done)
            && ex.up_out.is_empty();
    }
    ex.resp.is_some() && matches!(ex.resp_body, RespBody::Done) && ex.up_in.is_empty()
}

pub(super) fn exchange_deadline(ex: &Exchange, outb: &Buf, connecting: bool) -> Instant {
    let t = &ex.generation.config.timeouts;
    if ex.tunnel {
        return ex.last_up.max(ex.last_client) + t.upstream_read;
    }
    if connecting {
        return ex.connect_started + t.upstream_connect;
    }
    if !matches!(ex.req_body, ReqBody::Done) && ex.up_out.is_empty() {
        return ex.last_client + t.client_body;
    }
    if !ex.up_out.is_empty() {
        return ex.last_up + t.upstream_send;
    }
    if outb.len() >= BUF_LIMIT {
        return ex.last_client + t.client_send;
    }
    ex.last_up + t.upstream_read
}

/// Moves bytes between the four buffers and the upstream socket. Returns
/// whether anything moved.
pub(super) fn pump(
    ex: &mut Exchange,
    cx: &mut Cx<'_>,
    inb: &mut Buf,
    outb: &mut Buf,
    client_eof: bool,
    peer: SocketAddr,
) -> Result<bool, Failure> {
    let mut progress = false;
    let Some(k) = ex.up else { return Ok(false) };
    let Some(up) = cx.ups.get_mut(k) else {
        return Err(Failure::Broken(io::Error::other(
            "upstream connection vanished",
        )));
    };

    // Connect completion.
    if up.connecting {
        if !up.writable && !up.readable {
            return Ok(false);
        }
        match up.sock.take_error() {
            Ok(Some(e)) | Err(e) => return Err(Failure::Connect(e)),
            Ok(None) => {}
        }
        match up.sock.peer_addr() {
            Ok(_) => {
                up.connecting = false;
                ex.last_up = cx.now;
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(Failure::Connect(e)),
        }
    }

    // Request body: inb -> up_out, following the framing.
    let limits = ex.generation.config.limits;
    loop {
        let room = ex.up_out.room(BUF_LIMIT);
        if room == 0 || inb.is_empty() {
            break;
        }
        match &mut ex.req_body {
            ReqBody::Done => break,
            ReqBody::Length(rem) => {
                let n = (*rem).min(inb.len() as u64).min(room as u64) as usize;
                ex.up_out.extend(&inb.bytes()[..n]);
                inb.consume(n);
                *rem -= n as u64;
                ex.body_moved += n as u64;
                ex.body_total += n as u64;
                if *rem == 0 {
                    ex.req_body = ReqBody::Done;
                }
                progress = true;
            }
            ReqBody::Stream => {
                let n = inb.len().min(room);
                ex.up_out.extend(&inb.bytes()[..n]);
                inb.consume(n);
                progress = true;
            }
            ReqBody::Chunked(dec) => {
                let avail = inb.len().min(room);
                let step = dec
                    .feed(&inb.bytes()[..avail])
                    .map_err(|e| Failure::Client(400, e.reason))?;
                if step.consumed == 0 {
                    break;
                }
                if let Some(d) = &step.data {
                    ex.body_total += (d.end - d.start) as u64;
                }
                ex.up_out.extend(&inb.bytes()[..step.consumed]);
                inb.consume(step.consumed);
                ex.body_moved += step.consumed as u64;
                progress = true;
                if let Some(max) = limits.max_request_body
                    && ex.body_total > max
                {
                    return Err(Failure::Client(413, "chunked body over max_request_body"));
                }
                if step.done {
                    ex.req_body = ReqBody::Done;
                }
            }
        }
    }
    if client_eof && inb.is_empty() {
        match ex.req_body {
            ReqBody::Done => {}
            ReqBody::Stream => {
                ex.req_body = ReqBody::Done;
                if ex.up_out.is_empty() {
                    let _ = up.sock.shutdown(std::net::Shutdown::Write);
                }
            }
            _ => {
                let _ = peer;
                return Err(Failure::Client(
                    400,
                    "client closed during the request body",
                ));
            }
        }
    }

    // up_out -> upstream.
    if !up.connecting && up.writable {
        while !ex.up_out.is_empty() {
            match io::Write::write(&mut up.sock, ex.up_out.bytes()) {
                Ok(0) => return Err(Failure::Broken(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    ex.up_out.consume(n);
                    ex.up_written += n as u64;
                    ex.last_up = cx.now;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    up.writable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if ex.resp.is_some() || !ex.up_in.is_empty() {
                        // The upstream answered early and closed its reading side:
                        // let the response through, stop sending.
                        ex.up_out.clear();
                        ex.req_body = ReqBody::Done;
                        ex.close_after = true;
                        break;
                    }
                    return Err(Failure::Broken(e));
                }
            }
        }
        if ex.tunnel && matches!(ex.req_body, ReqBody::Done) && ex.up_out.is_empty() && client_eof {
            let _ = up.sock.shutdown(std::net::Shutdown::Write);
        }
    }

    // upstream -> up_in.
    let want_in = !ex.up_eof && !up.connecting && up.readable;
    if want_in {
        let limit = if ex.resp.is_none() {
            limits.max_response_head.max(IO_SIZE)
        } else {
            BUF_LIMIT
        };
        if ex.up_in.len() < limit {
            let spare = ex.up_in.spare(limit, cx.bufs);
            let asked = spare.len();
            match io::Read::read(&mut up.sock, spare) {
                Ok(0) => {
                    ex.up_eof = true;
                    progress = true;
                }
                Ok(n) => {
                    ex.up_in.commit(n);
                    if n < asked && !up.hup {
                        // Drained (see `read_client`).
                        up.readable = false;
                    }
                    if ex.up_first_byte.is_none() {
                        ex.up_first_byte = Some(cx.now);
                    }
                    ex.last_up = cx.now;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    up.readable = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if ex.resp.is_none() && ex.up_in.is_empty() {
                        return Err(Failure::Broken(e));
                    }
                    ex.up_eof = true;
                    ex.close_after = true;
                }
            }
        }
    }

    // Response head.
    while ex.resp.is_none() && !ex.up_in.is_empty() {
        let head_request = ex.req.method() == "HEAD";
        match head::parse_response(ex.up_in.bytes(), limits.max_response_head, head_request) {
            Ok(None) => {
                if ex.up_in.len() >= limits.max_response_head {
                    return Err(Failure::Protocol("response head over max_response_head"));
                }
                if ex.up_eof {
                    return Err(Failure::Protocol("upstream closed mid response head"));
                }
                break;
            }
            Err(e) => return Err(Failure::Protocol(e.reason)),
            Ok(Some((resp, n))) => {
                ex.up_in.consume(n);
                progress = true;
                if (100..200).contains(&resp.status) && resp.status != 101 {
                    // Interim responses are not forwarded: torii answered any
                    // Expect itself, and the client waits for the final one.
                    continue;
                }
                let switching = resp.status == 101;
                if switching && !ex.upgrade {
                    return Err(Failure::Protocol("101 without an upgrade request"));
                }
                let client_minor = ex.req.minor;
                let dechunk = client_minor == 0 && resp.body == ResponseBody::Chunked;
                let close = ex.close_after
                    || matches!(resp.body, ResponseBody::Close)
                    || dechunk
                    || cx.draining
                    || !matches!(ex.req_body, ReqBody::Done) && !switching && !ex.up_out.is_empty();
                if close {
                    ex.close_after = true;
                }
                let route = &ex.generation.config.routes[ex.route];
                let server = &ex.generation.config.upstreams[ex.upstream].servers[ex.server];
                // The authority the request was routed by: an absolute-form
                // target's wins over Host (RFC 9112 §3.2.2), as for routing.
                let public_host = ex.req.authority();
                let scheme = if is_tls_listener(&ex.generation, ex.listener) {
                    "https"
                } else {
                    "http"
                };
                let listener_headers: &[(String, String)] =
                    &ex.generation.config.listeners[ex.listener].response_headers;
                outb.write_with(|out| {
                    headers::write_client_response(
                        out,
                        &resp,
                        &ClientResponse {
                            via: ex.generation.config.global.via,
                            close,
                            dechunk,
                            upgrade: switching,
                            location: route.rewrite_location.then_some(LocationRewrite {
                                upstream_authority: &server.text,
                                public_scheme: scheme,
                                public_host,
                                route_prefix: &route.path,
                                upstream_prefix: route.upstream_path.as_deref(),
                            }),
                            set_headers: [listener_headers, &route.response_headers],
                            client_minor,
                        },
                    )
                });
                ex.status = resp.status;
                ex.dechunk = dechunk;
                ex.resp_body = match resp.body {
                    ResponseBody::None => RespBody::Done,
                    ResponseBody::Length(0) => RespBody::Done,
                    ResponseBody::Length(n) => RespBody::Length(n),
                    ResponseBody::Chunked => RespBody::Chunked(ChunkedDecoder::new()),
                    ResponseBody::Close => RespBody::Close,
                };
                if switching {
                    ex.tunnel = true;
                    ex.resp_body = RespBody::Close;
                    ex.req_body = ReqBody::Stream;
                }
                ex.resp = Some(resp);
            }
        }
    }

    // Response body: up_in -> outb.
    if ex.resp.is_some() {
        loop {
            let room = outb.room(BUF_LIMIT);
            if room == 0 || ex.up_in.is_empty() {
                break;
            }
            match &mut ex.resp_body {
                RespBody::Done => {
                    // Bytes after a complete response: the upstream is out of
                    // sync, never reuse it.
                    ex.up_eof = true;
                    ex.up_in.clear();
                    break;
                }
                RespBody::Length(rem) => {
                    let n = (*rem).min(ex.up_in.len() as u64).min(room as u64) as usize;
                    outb.extend(&ex.up_in.bytes()[..n]);
                    ex.up_in.consume(n);
                    *rem -= n as u64;
                    ex.bytes_sent += n as u64;
                    if *rem == 0 {
                        ex.resp_body = RespBody::Done;
                    }
                }
                RespBody::Close => {
                    let n = ex.up_in.len().min(room);
                    outb.extend(&ex.up_in.bytes()[..n]);
                    ex.up_in.consume(n);
                    ex.bytes_sent += n as u64;
                }
                RespBody::Chunked(dec) => {
                    let avail = ex.up_in.len().min(room);
                    let step = dec
                        .feed(&ex.up_in.bytes()[..avail])
                        .map_err(|e| Failure::Protocol(e.reason))?;
                    if step.consumed == 0 {
                        break;
                    }
                    if ex.dechunk {
                        if let Some(d) = step.data.clone() {
                            outb.extend(&ex.up_in.bytes()[d.clone()]);
                            ex.bytes_sent += (d.end - d.start) as u64;
                        }
                    } else {
                        outb.extend(&ex.up_in.bytes()[..step.consumed]);
                        ex.bytes_sent += step.consumed as u64;
                    }
                    ex.up_in.consume(step.consumed);
                    if step.done {
                        ex.resp_body = RespBody::Done;
                    }
                }
            }
            progress = true;
        }
        if ex.up_eof && ex.up_in.is_empty() {
            match ex.resp_body {
                RespBody::Close => ex.resp_body = RespBody::Done,
                RespBody::Done => {}
                _ => {
                    return Err(Failure::Broken(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "upstream closed mid body",
                    )));
                }
            }
            if ex.tunnel {
                ex.close_after = true;
            }
        }
    } else if ex.up_eof {
        return Err(Failure::Broken(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed before responding",
        )));
    }
    Ok(progress)
}

pub(super) fn tls_info(io: &Transport) -> (Option<&'static str>, Option<&'static str>) {
    match io.tls_conn() {
        Some(c) => crate::tls::describe(c),
        None => (None, None),
    }
}

pub(super) fn log_exchange(cx: &mut Cx<'_>, peer: SocketAddr, io: &Transport, ex: &Exchange) {
    let (tls_version, tls_cipher) = tls_info(io);
    let up = &ex.generation.config.upstreams[ex.upstream];
    let addr = ex
        .up
        .and_then(|k| cx.ups.get(k))
        .map(|u| u.addr)
        .or_else(|| up.servers[ex.server].addrs.first().copied());
    let rec = Record {
        time: ex.started_wall,
        remote_addr: peer.ip(),
        method: ex.req.method(),
        uri: ex.req.target(),
        minor: ex.req.minor,
        status: ex.status,
        bytes_sent: ex.bytes_sent,
        referer: ex.req.head.get("referer").unwrap_or(b""),
        user_agent: ex.req.head.get("user-agent").unwrap_or(b""),
        duration: cx.now.saturating_duration_since(ex.started),
        upstream: Some(&up.name),
        upstream_addr: addr,
        upstream_time: ex
            .up_first_byte
            .map(|t| t.saturating_duration_since(ex.connect_started)),
        listener: &ex.generation.config.listeners[ex.listener].name,
        tls_version,
        tls_cipher,
    };
    cx.log.record(&rec);
}

#[allow(clippy::too_many_arguments)]
pub(super) fn log_simple(
    cx: &mut Cx<'_>,
    peer: SocketAddr,
    io: &Transport,
    generation: &Generation,
    listener: Option<usize>,
    req: Option<&RequestHead>,
    status: u16,
    bytes_sent: u64,
) {
    let (tls_version, tls_cipher) = tls_info(io);
    // Without a parsed request (a malformed head, a head timeout) the
    // request field is logged as "-".
    let rec = Record {
        time: SystemTime::now(),
        remote_addr: peer.ip(),
        method: req.map_or("", |r| r.method()),
        uri: req.map_or("", |r| r.target()),
        minor: req.map_or(1, |r| r.minor),
        status,
        bytes_sent,
        referer: req.and_then(|r| r.head.get("referer")).unwrap_or(b""),
        user_agent: req.and_then(|r| r.head.get("user-agent")).unwrap_or(b""),
        duration: Duration::ZERO,
        upstream: None,
        upstream_addr: None,
        upstream_time: None,
        listener: listener
            .and_then(|l| generation.config.listeners.get(l))
            .map_or("-", |l| l.name.as_str()),
        tls_version,
        tls_cipher,
    };
    cx.log.record(&rec);
}

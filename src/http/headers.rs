//! Header rules on the way through: hop-by-hop removal both ways, the
//! forwarding headers (X-Forwarded-*, Forwarded, Via), Host, Destination and
//! Location rewriting, and the configured header sets.

use std::net::IpAddr;

use super::head::{RequestHead, ResponseHead};
use crate::config::model::HeaderEdits;

/// What the proxy decided about a request, needed to write its upstream head.
#[derive(Debug)]
pub struct UpstreamRequest<'a> {
    /// Path and query to send (after `upstream_path` replacement).
    pub target: &'a str,
    pub client_ip: IpAddr,
    /// The request came over TLS (`X-Forwarded-Proto: https`, `Forwarded: proto=https`).
    pub tls: bool,
    /// The `host:port` of the upstream server, for `Host` when `preserve_host` is off.
    pub upstream_authority: &'a str,
    pub preserve_host: bool,
    pub via: bool,
    /// Send `Connection: close` (upstream `keepalive = false`).
    pub close: bool,
    /// Forward `Upgrade` and `Connection: upgrade` (a tunnel was asked for).
    pub upgrade: bool,
    pub edits: &'a HeaderEdits,
    /// Rewrite `Destination` from the public URL (scheme and this request's
    /// Host) to the upstream's `http://upstream_authority`, mapping the route
    /// prefix to `upstream_path` the same way as the target.
    pub route_prefix: &'a str,
    pub upstream_prefix: Option<&'a str>,
}

/// Appends the request head to send upstream (request line, headers, CRLF).
/// Framing headers (Content-Length / Transfer-Encoding: chunked) are written
/// from `req.body` since the body bytes pass through unchanged.
pub fn write_upstream_request(out: &mut Vec<u8>, req: &RequestHead, up: &UpstreamRequest<'_>) {
    let _ = (out, req, up);
    unimplemented!()
}

/// What the proxy decided about a response, needed to write the client head.
#[derive(Debug)]
pub struct ClientResponse<'a> {
    pub via: bool,
    /// Tell the client the connection closes after this response.
    pub close: bool,
    /// The response body is sent de-chunked and close-delimited (chunked
    /// upstream response to an HTTP/1.0 client): drop Transfer-Encoding.
    pub dechunk: bool,
    /// A 101 being tunnelled: keep Upgrade and `Connection: upgrade`.
    pub upgrade: bool,
    /// `Some` when `rewrite_location` is on for the route.
    pub location: Option<LocationRewrite<'a>>,
    /// Listener's then route's `response_headers` (the route's win on a clash);
    /// each replaces any header of that name from the upstream.
    pub set_headers: [&'a [(String, String)]; 2],
    /// 1.0 or 1.1 as spoken to the client.
    pub client_minor: u8,
}

/// How to map upstream URLs in Location / Content-Location to the public one.
#[derive(Debug, Clone, Copy)]
pub struct LocationRewrite<'a> {
    /// `host:port` of the upstream server that answered.
    pub upstream_authority: &'a str,
    /// `https` or `http`: the scheme the client used.
    pub public_scheme: &'a str,
    /// The Host header the client sent (with port when it had one).
    pub public_host: &'a str,
    pub route_prefix: &'a str,
    pub upstream_prefix: Option<&'a str>,
}

/// Appends the response head to send to the client.
pub fn write_client_response(out: &mut Vec<u8>, resp: &ResponseHead, ctx: &ClientResponse<'_>) {
    let _ = (out, resp, ctx);
    unimplemented!()
}

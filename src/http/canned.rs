//! Responses torii writes itself: errors, redirects and `respond` routes.

/// Appends a complete response with a small body. `close` adds
/// `Connection: close`. `extra` headers (listener and route
/// `response_headers`, `Location`) are written as given.
pub fn write(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
    head_only: bool,
    extra: &[(&str, &str)],
) {
    use std::io::Write;
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status, reason(status));
    let _ = write!(
        out,
        "Server: torii\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    for (k, v) in extra {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Appends the standard error page for `status`.
pub fn error(out: &mut Vec<u8>, status: u16, close: bool, head_only: bool, extra: &[(&str, &str)]) {
    let body = format!(
        "<html>\r\n<head><title>{s} {r}</title></head>\r\n<body>\r\n<center><h1>{s} {r}</h1></center>\r\n<hr><center>torii</center>\r\n</body>\r\n</html>\r\n",
        s = status,
        r = reason(status)
    );
    write(
        out,
        status,
        "text/html",
        body.as_bytes(),
        close,
        head_only,
        extra,
    );
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        207 => "Multi-Status",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

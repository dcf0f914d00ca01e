//! HTTP/1.x codec: heads (httparse plus the RFC 9112 framing rules httparse
//! leaves to us), body framing, header rewriting and canned responses.
//! Pure functions over byte buffers; no sockets here.

pub mod body;
pub mod canned;
pub mod head;
pub mod headers;

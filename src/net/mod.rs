//! Sockets: listening sockets (SO_REUSEPORT, one per worker), the client
//! transport (plain or rustls) and byte buffers.

pub mod buffer;
pub mod listener;
pub mod transport;

//! Upstream connections: non-blocking connect and the per-worker pool of
//! idle keep-alive connections.

pub mod pool;

//! torii — a reverse proxy on a hand-written mio reactor.
//!
//! Architecture map (kept current with the code):
//!
//! ```text
//! listener ─accept→ Conn[Handshake] ─rustls→ [ReadHead] ─httparse→ [Route] ─table→ [Connect]
//!    ─pool or connect→ [Forward ⇄ Respond] ─body framing→ log + counters → keep-alive | close
//! ```
//!
//! * `config` turns the TOML file into a validated model in one conversion
//!   (`file` → `validate` → `model`); `runtime::generation` turns a model into
//!   a [`runtime::generation::Generation`]: bound listeners, compiled routes,
//!   rustls configurations. Generations are published through one
//!   `ArcSwap`; a request pins the generation it starts on.
//! * `runtime::control` (the main thread) owns signals, the file watcher and
//!   reloads; `runtime::worker` runs one `mio::Poll` per thread with its own
//!   SO_REUSEPORT sockets (`net::listener`), a slab of client connections, a
//!   slab of upstream connections with their idle pool (`upstream::pool`), a
//!   timer heap (`runtime::timer`) and a buffer pool (`net::buffer`).
//! * `proxy::conn` is the per-connection state machine and its pump;
//!   `proxy::exchange` moves one request and its response between the four
//!   buffers; `proxy::request` holds the pure request decisions (targets,
//!   redirects, retries). `net::transport` makes TLS (rustls) and plain TCP
//!   one byte stream, so the proxy is written once.
//! * `http` is the codec (heads, chunked framing, header rules, canned
//!   responses), `route` the pure routing table, `tls` certificates, SNI and
//!   resumption state, `log` the event log and the access log writer thread.
//! * `cli` is the command line; `main.rs` only maps its result to an exit code.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod http;
pub mod log;
pub mod net;
pub mod proxy;
pub mod route;
pub mod runtime;
pub mod tls;
pub mod upstream;

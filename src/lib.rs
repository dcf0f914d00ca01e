//! torii — a reverse proxy on a hand-written mio reactor.
//!
//! Architecture map (kept current with the code):
//!
//! ```text
//! listener ─accept→ Conn[Handshake] ─rustls→ [ReadHead] ─httparse→ [Route] ─table→ [Connect]
//!    ─pool or connect→ [Forward ⇄ Respond] ─body framing→ log + counters → keep-alive | close
//! ```
//!
//! * `config` turns the TOML file into a validated model; `runtime::generation`
//!   turns a model into a [`runtime::generation::Generation`]: bound listeners,
//!   compiled routes, rustls configurations. Generations are published through
//!   one `ArcSwap`; a request pins the generation it starts on.
//! * `runtime::worker` runs one `mio::Poll` per thread with its own accepting
//!   sockets, a slab of connections, a timer heap and an upstream pool.
//! * `proxy::conn` is the per-connection state machine.
//! * `http` is the codec, `route` the pure routing table, `tls` certificates,
//!   `log` the event and access logs, `runtime::control` signals and reloads.
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

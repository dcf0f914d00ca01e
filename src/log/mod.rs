//! Logging: the tracing subscriber for events (stderr) and the access log.

pub mod access;
pub(crate) mod clock;

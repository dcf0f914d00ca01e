//! Routing: a pure `(listener, host, path) → route` lookup, no I/O.

pub mod path;
pub mod table;

//! Access log in `combined` or `json` format, written off the workers.
//!
//! Each worker formats lines into its own [`Buffer`] and hands whole batches
//! to one writer thread through a channel once per event-loop turn, so a slow
//! disk never blocks a worker. The writer owns the file: SIGUSR1 reopens it
//! (log rotation) and a reload may retarget it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::config::model::{LogFormat, LogTarget};

/// One finished request, as the log needs it.
#[derive(Debug)]
pub struct Record<'a> {
    pub time: SystemTime,
    pub remote_addr: IpAddr,
    pub method: &'a str,
    pub uri: &'a str,
    /// HTTP minor version of the request (for `"GET / HTTP/1.1"`).
    pub minor: u8,
    pub status: u16,
    pub bytes_sent: u64,
    pub referer: &'a [u8],
    pub user_agent: &'a [u8],
    pub duration: Duration,
    pub upstream: Option<&'a str>,
    pub upstream_addr: Option<SocketAddr>,
    pub upstream_time: Option<Duration>,
    pub listener: &'a str,
    pub tls_version: Option<&'a str>,
    pub tls_cipher: Option<&'a str>,
}

/// Shared handle on the writer thread (cheap to clone).
#[derive(Clone)]
pub struct Sink {}

impl Sink {
    /// Starts the writer thread for `target` (opens the file in append mode).
    pub fn start(target: &LogTarget, format: LogFormat) -> std::io::Result<Sink> {
        let _ = (target, format);
        unimplemented!()
    }
    /// Reopens the file (SIGUSR1).
    pub fn reopen(&self) {}
    /// Switches target and format (reload); errors leave the old target.
    pub fn retarget(&self, target: &LogTarget, format: LogFormat) -> std::io::Result<()> {
        let _ = (target, format);
        unimplemented!()
    }
    /// Writes everything queued so far and waits for it (shutdown).
    pub fn flush_blocking(&self) {}
}

/// A worker's batch of formatted lines.
pub struct Buffer {}

impl Buffer {
    pub fn new(sink: Sink) -> Buffer {
        let _ = sink;
        unimplemented!()
    }
    pub fn record(&mut self, rec: &Record<'_>) {
        let _ = rec;
    }
    /// Hands the batch to the writer if non-empty.
    pub fn flush(&mut self) {}
}

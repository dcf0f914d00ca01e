//! The validated configuration model: what the rest of torii consumes.
//!
//! Everything here has already been checked by `validate`: names resolve to
//! indices, durations and sizes are typed, defaults are filled in. Nothing
//! downstream re-checks these values. This module owns no I/O.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A position in the configuration file (1-based), kept so that errors
/// found after parsing (certificates, route conflicts) can still say
/// `FILE:LINE:COL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this configuration was read from (as given on the command line).
    pub source: PathBuf,
    pub global: Global,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub upstreams: Vec<Upstream>,
    pub listeners: Vec<Listener>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone)]
pub struct Global {
    /// Resolved worker count (`"auto"` already turned into the core count).
    pub workers: usize,
    pub pid_file: Option<PathBuf>,
    pub user: Option<String>,
    pub access_log: LogTarget,
    pub access_log_format: LogFormat,
    pub log_level: String,
    pub watch: bool,
    pub via: bool,
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    Off,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Combined,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub client_header: Duration,
    pub client_body: Duration,
    pub client_keepalive: Duration,
    pub upstream_connect: Duration,
    pub upstream_read: Duration,
    pub upstream_send: Duration,
    pub upstream_idle: Duration,
    pub shutdown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_request_head: usize,
    /// `None` means unlimited (`"0"` in the file).
    pub max_request_body: Option<u64>,
    pub max_response_head: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    pub servers: Vec<Server>,
    pub keepalive: bool,
    pub max_idle: usize,
    pub pos: Pos,
}

/// One upstream server: the `host:port` text as written (used for the
/// upstream `Host` header when `preserve_host = false`, for logs and for
/// Location rewriting) and the addresses it resolved to at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub text: String,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    pub tls: Option<TlsSettings>,
    /// Set on every response sent from this listener, errors included.
    pub response_headers: Vec<(String, String)>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// At least one; the first is the default for clients without (or with an
    /// unknown) SNI name.
    pub certificates: Vec<CertSource>,
    pub min_version: TlsVersion,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Generated in memory at build time (rcgen) for the hosts of the routes
    /// on this listener, plus `localhost`.
    SelfSigned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Lower-cased exact name.
    Exact(String),
    /// `*.example.com` stored as the suffix `.example.com` (lower-cased);
    /// matches any name ending with it that has at least one more label.
    Wildcard(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Indices into `Config::listeners`. Never empty: "every listener" has
    /// already been expanded.
    pub listeners: Vec<usize>,
    /// Empty means any host.
    pub hosts: Vec<HostPattern>,
    /// Normalised path prefix, starts with `/`.
    pub path: String,
    pub action: Action,
    pub upstream_path: Option<String>,
    pub preserve_host: bool,
    pub rewrite_location: bool,
    pub request_headers: HeaderEdits,
    pub response_headers: Vec<(String, String)>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Index into `Config::upstreams`.
    Upstream(usize),
    Redirect {
        template: String,
        status: u16,
    },
    Respond {
        status: u16,
        body: String,
        content_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderEdits {
    pub set: Vec<(String, String)>,
    /// Lower-cased names.
    pub remove: Vec<String>,
}

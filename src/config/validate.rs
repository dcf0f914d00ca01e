//! File → model in one conversion: defaults, ranges, names resolved to
//! indices, paths made absolute, upstream servers resolved, route conflicts.
//!
//! Every problem is recorded with its position and validation goes on, so a
//! user sees all the mistakes of a file at once. Nothing here binds sockets
//! or reads certificates (the generation builder does).

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::checks::{FORBIDDEN_SET_HEADERS, is_field_value, is_token, split_host_port};
use super::file::{
    File, GlobalFile, HeaderTable, IntOrStr, LimitsFile, ListenerFile, TimeoutsFile, TlsFile,
    UpstreamFile,
};
use super::model::*;
use super::units;

mod routes;
use super::{ConfigError, Loaded};
use routes::route_conflicts;

const DEFAULT_LOG_LEVEL: &str = "info";
/// Off unless asked for: a half-saved file must not be picked up by surprise,
/// and `SIGHUP` is always available.
const DEFAULT_WATCH: bool = false;
const DEFAULT_VIA: bool = true;
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_MAX_IDLE: usize = 32;
const DEFAULT_REDIRECT_STATUS: u16 = 301;
const DEFAULT_RESPOND_STATUS: u16 = 200;
const DEFAULT_CONTENT_TYPE: &str = "text/plain";

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            client_header: Duration::from_secs(10),
            client_body: Duration::from_secs(60),
            client_keepalive: Duration::from_secs(75),
            client_send: Duration::from_secs(60),
            upstream_connect: Duration::from_secs(5),
            upstream_read: Duration::from_secs(60),
            upstream_send: Duration::from_secs(60),
            upstream_idle: Duration::from_secs(60),
            shutdown: Duration::from_secs(30),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_head: 16 * 1024,
            max_request_body: Some(1 << 30),
            max_response_head: 64 * 1024,
        }
    }
}

/// Converts byte offsets into 1-based line and column (in characters, which
/// is what editors show).
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { text, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        Pos { line, col }
    }
}

pub(super) fn file_errors(
    source: &Path,
    text: &str,
    errors: Vec<super::file::FileError>,
) -> Vec<ConfigError> {
    let lines = Lines::new(text);
    let mut out: Vec<ConfigError> = errors
        .into_iter()
        .map(|e| ConfigError {
            file: source.to_path_buf(),
            pos: lines.pos(e.span.start),
            message: e.message,
        })
        .collect();
    sort(&mut out);
    out
}

fn sort(errors: &mut [ConfigError]) {
    errors.sort_by_key(|e| (e.pos.line, e.pos.col));
}

struct Ctx<'a> {
    source: &'a Path,
    base: PathBuf,
    lines: Lines<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

/// Validates a shape-checked file. `source` is the path as given; relative
/// file names inside are resolved against its directory.
pub(super) fn validate(source: &Path, text: &str, file: File) -> Result<Loaded, Vec<ConfigError>> {
    let base = source.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut cx = Ctx {
        source,
        base,
        lines: Lines::new(text),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let global = cx.global(file.global.as_ref());
    let timeouts = cx.timeouts(file.timeouts.as_ref());
    let limits = cx.limits(file.limits.as_ref());
    let (upstreams, upstream_index) = cx.upstreams(&file.upstreams);
    let (listeners, listener_index) = cx.listeners(&file.listeners);
    if file.listeners.is_empty() {
        cx.err(
            0..0,
            "no [[listener]] is defined: torii would serve nothing",
        );
    }
    let routes: Vec<Route> = file
        .routes
        .iter()
        .filter_map(|r| cx.route(r, &listener_index, &upstream_index, listeners.len()))
        .collect();
    for (earlier, later) in route_conflicts(&routes) {
        let (a, b) = (routes[later].pos, routes[earlier].pos);
        cx.errors.push(ConfigError {
            file: source.to_path_buf(),
            pos: a,
            message: format!(
                "route at {}:{} conflicts with route at {}:{} (same listener, host and path)",
                a.line, a.col, b.line, b.col
            ),
        });
    }
    cx.unused(&upstreams, &listeners, &routes);
    if !cx.errors.is_empty() {
        sort(&mut cx.errors);
        return Err(cx.errors);
    }
    sort(&mut cx.warnings);
    Ok(Loaded {
        config: Config {
            source: source.to_path_buf(),
            global,
            timeouts,
            limits,
            upstreams,
            listeners,
            routes,
        },
        warnings: cx.warnings,
    })
}

impl Ctx<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let pos = self.lines.pos(span.start);
        self.errors.push(ConfigError {
            file: self.source.to_path_buf(),
            pos,
            message: message.into(),
        });
    }

    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: self.source.to_path_buf(),
            pos,
            message: message.into(),
        });
    }

    fn pos(&self, span: Range<usize>) -> Pos {
        self.lines.pos(span.start)
    }

    /// Relative names in the file are relative to the file, not to wherever
    /// torii happens to be started from.
    fn resolve_path(&self, p: &str) -> PathBuf {
        let joined = self.base.join(p);
        std::path::absolute(&joined).unwrap_or(joined)
    }

    /// A non-empty string, or an error naming `what`.
    fn non_empty(&mut self, v: &Spanned<String>, what: &str) -> Option<String> {
        if v.get_ref().trim().is_empty() {
            self.err(v.span(), format!("{what} must not be empty"));
            None
        } else {
            Some(v.get_ref().clone())
        }
    }

    fn at_least_one(&mut self, v: Option<&Spanned<i64>>, what: &str, default: usize) -> usize {
        match v {
            None => default,
            Some(v) => match usize::try_from(*v.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.err(
                        v.span(),
                        format!("{what} must be an integer >= 1, got {}", v.get_ref()),
                    );
                    default
                }
            },
        }
    }

    fn global(&mut self, g: Option<&Spanned<GlobalFile>>) -> Global {
        let auto = || std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut out = Global {
            workers: auto(),
            pid_file: None,
            user: None,
            access_log: LogTarget::Stdout,
            access_log_format: LogFormat::Combined,
            log_level: DEFAULT_LOG_LEVEL.to_owned(),
            watch: DEFAULT_WATCH,
            via: DEFAULT_VIA,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        };
        let Some(g) = g.map(Spanned::get_ref) else {
            return out;
        };
        if let Some(w) = &g.workers {
            match w.get_ref() {
                IntOrStr::Str(s) if s == "auto" => {}
                IntOrStr::Int(n) if *n >= 1 => {
                    out.workers = usize::try_from(*n).unwrap_or(usize::MAX)
                }
                other => self.err(
                    w.span(),
                    format!(
                        "workers must be \"auto\" or an integer >= 1, got {}",
                        show(other)
                    ),
                ),
            }
        }
        if let Some(p) = &g.pid_file {
            out.pid_file = self.non_empty(p, "pid_file").map(|p| self.resolve_path(&p));
        }
        if let Some(u) = &g.user {
            out.user = self.non_empty(u, "user");
        }
        if let Some(a) = &g.access_log {
            out.access_log = match a.get_ref().as_str() {
                "stdout" => LogTarget::Stdout,
                "stderr" => LogTarget::Stderr,
                "off" => LogTarget::Off,
                _ => match self.non_empty(a, "access_log") {
                    Some(p) => LogTarget::File(self.resolve_path(&p)),
                    None => LogTarget::Stdout,
                },
            };
        }
        if let Some(f) = &g.access_log_format {
            match f.get_ref().as_str() {
                "combined" => out.access_log_format = LogFormat::Combined,
                "json" => out.access_log_format = LogFormat::Json,
                other => self.err(
                    f.span(),
                    format!("access_log_format must be \"combined\" or \"json\", got \"{other}\""),
                ),
            }
        }
        if let Some(l) = &g.log_level {
            let text = l.get_ref().trim();
            if text.is_empty() {
                self.err(l.span(), "log_level must not be empty");
            } else {
                match tracing_subscriber::EnvFilter::try_new(text) {
                    Ok(_) => out.log_level = text.to_owned(),
                    Err(e) => self.err(
                        l.span(),
                        format!("log_level \"{text}\" is not a valid filter: {e}"),
                    ),
                }
            }
        }
        out.watch = g.watch.unwrap_or(DEFAULT_WATCH);
        out.via = g.via.unwrap_or(DEFAULT_VIA);
        out.max_connections = self.at_least_one(
            g.max_connections.as_ref(),
            "max_connections",
            DEFAULT_MAX_CONNECTIONS,
        );
        out
    }

    fn duration(
        &mut self,
        v: &Option<Spanned<IntOrStr>>,
        key: &str,
        slot: &mut Duration,
        zero_ok: bool,
    ) {
        let Some(v) = v else { return };
        match units::duration(v.get_ref()) {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.err(v.span(), format!("timeouts.{key} must be longer than zero"));
            }
            Ok(d) => *slot = d,
            Err(e) => self.err(v.span(), format!("timeouts.{key}: {e}")),
        }
    }

    fn timeouts(&mut self, t: Option<&Spanned<TimeoutsFile>>) -> Timeouts {
        let mut out = Timeouts::default();
        let Some(t) = t.map(Spanned::get_ref) else {
            return out;
        };
        self.duration(
            &t.client_header,
            "client_header",
            &mut out.client_header,
            false,
        );
        self.duration(&t.client_body, "client_body", &mut out.client_body, false);
        self.duration(
            &t.client_keepalive,
            "client_keepalive",
            &mut out.client_keepalive,
            false,
        );
        self.duration(&t.client_send, "client_send", &mut out.client_send, false);
        self.duration(
            &t.upstream_connect,
            "upstream_connect",
            &mut out.upstream_connect,
            false,
        );
        self.duration(
            &t.upstream_read,
            "upstream_read",
            &mut out.upstream_read,
            false,
        );
        self.duration(
            &t.upstream_send,
            "upstream_send",
            &mut out.upstream_send,
            false,
        );
        self.duration(
            &t.upstream_idle,
            "upstream_idle",
            &mut out.upstream_idle,
            false,
        );
        // Zero means "do not wait for in-flight requests", a legitimate choice.
        self.duration(&t.shutdown, "shutdown", &mut out.shutdown, true);
        out
    }

    fn size(&mut self, v: &Option<Spanned<IntOrStr>>, key: &str) -> Option<u64> {
        let v = v.as_ref()?;
        match units::size(v.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.err(v.span(), format!("limits.{key}: {e}"));
                None
            }
        }
    }

    fn head_size(&mut self, v: &Option<Spanned<IntOrStr>>, key: &str, slot: &mut usize) {
        if let Some(n) = self.size(v, key) {
            match usize::try_from(n) {
                Ok(n) if n >= 1 => *slot = n,
                _ => {
                    let span = v.as_ref().map_or(0..0, Spanned::span);
                    self.err(span, format!("limits.{key} must be at least 1 byte"));
                }
            }
        }
    }

    fn limits(&mut self, l: Option<&Spanned<LimitsFile>>) -> Limits {
        let mut out = Limits::default();
        let Some(l) = l.map(Spanned::get_ref) else {
            return out;
        };
        self.head_size(
            &l.max_request_head,
            "max_request_head",
            &mut out.max_request_head,
        );
        self.head_size(
            &l.max_response_head,
            "max_response_head",
            &mut out.max_response_head,
        );
        if let Some(n) = self.size(&l.max_request_body, "max_request_body") {
            out.max_request_body = (n != 0).then_some(n);
        }
        out
    }

    fn upstreams(
        &mut self,
        items: &[Spanned<UpstreamFile>],
    ) -> (Vec<Upstream>, HashMap<String, usize>) {
        let mut out = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for item in items {
            let u = item.get_ref();
            let Some(name) = self.non_empty(&u.name, "upstream name") else {
                continue;
            };
            if let Some(first) = seen.get(&name) {
                let msg = format!(
                    "upstream \"{name}\" is already defined at {}:{}",
                    first.line, first.col
                );
                self.err(u.name.span(), msg);
                continue;
            }
            seen.insert(name.clone(), self.pos(item.span()));
            if u.servers.get_ref().is_empty() {
                self.err(
                    u.servers.span(),
                    format!("upstream \"{name}\": servers must not be empty"),
                );
            }
            let mut servers = Vec::new();
            for s in u.servers.get_ref() {
                if let Some(server) = self.server(&name, s) {
                    servers.push(server);
                }
            }
            let max_idle = self.at_least_one(u.max_idle.as_ref(), "max_idle", DEFAULT_MAX_IDLE);
            index.insert(name.clone(), out.len());
            out.push(Upstream {
                name,
                servers,
                keepalive: u.keepalive.unwrap_or(true),
                max_idle,
                pos: self.pos(item.span()),
            });
        }
        (out, index)
    }

    fn server(&mut self, upstream: &str, s: &Spanned<String>) -> Option<Server> {
        let text = s.get_ref().trim();
        if split_host_port(text).is_none() {
            self.err(
                s.span(),
                format!("upstream \"{upstream}\": server \"{text}\" is not host:port (IPv6: [addr]:port)"),
            );
            return None;
        }
        let mut addrs: Vec<SocketAddr> = match text.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(_) => Vec::new(),
        };
        addrs.dedup();
        if addrs.is_empty() {
            self.err(
                s.span(),
                format!("upstream {upstream}: server {text} does not resolve"),
            );
            return None;
        }
        Some(Server {
            text: text.to_owned(),
            addrs,
        })
    }

    fn listeners(
        &mut self,
        items: &[Spanned<ListenerFile>],
    ) -> (Vec<Listener>, HashMap<String, usize>) {
        let mut out = Vec::new();
        let mut index = HashMap::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut binds: HashMap<SocketAddr, (String, Pos)> = HashMap::new();
        for item in items {
            let l = item.get_ref();
            let Some(name) = self.non_empty(&l.name, "listener name") else {
                continue;
            };
            if let Some(first) = seen.get(&name) {
                let msg = format!(
                    "listener \"{name}\" is already defined at {}:{}",
                    first.line, first.col
                );
                self.err(l.name.span(), msg);
                continue;
            }
            seen.insert(name.clone(), self.pos(item.span()));
            let bind = match l.bind.get_ref().trim().parse::<SocketAddr>() {
                Ok(addr) => addr,
                Err(_) => {
                    self.err(
                        l.bind.span(),
                        format!(
                            "listener \"{name}\": bind \"{}\" is not an ip:port address (IPv6: [::]:443)",
                            l.bind.get_ref()
                        ),
                    );
                    // Keep the listener (the model is discarded anyway) so
                    // routes naming it do not get a second, misleading error.
                    SocketAddr::from(([0, 0, 0, 0], 0))
                }
            };
            // Port 0 asks the kernel for a fresh port each time, so two such
            // listeners never clash.
            if bind.port() != 0 {
                if let Some((other, at)) = binds.get(&bind) {
                    let msg = format!(
                        "listener \"{name}\": bind {bind} is already used by listener \"{other}\" at {}:{}",
                        at.line, at.col
                    );
                    self.err(l.bind.span(), msg);
                } else {
                    binds.insert(bind, (name.clone(), self.pos(item.span())));
                }
            }
            let tls = l.tls.as_ref().and_then(|t| self.tls(&name, t));
            let response_headers = l
                .response_headers
                .as_ref()
                .map(|h| self.header_table(h, "response_headers"))
                .unwrap_or_default();
            index.insert(name.clone(), out.len());
            out.push(Listener {
                name,
                bind,
                tls,
                response_headers,
                pos: self.pos(item.span()),
            });
        }
        (out, index)
    }

    fn tls(&mut self, listener: &str, t: &Spanned<TlsFile>) -> Option<TlsSettings> {
        let f = t.get_ref();
        let min_version = match &f.min_version {
            None => TlsVersion::V1_2,
            Some(v) => match v.get_ref().as_str() {
                "1.2" => TlsVersion::V1_2,
                "1.3" => TlsVersion::V1_3,
                other => {
                    self.err(
                        v.span(),
                        format!("tls.min_version must be \"1.2\" or \"1.3\", got \"{other}\""),
                    );
                    TlsVersion::V1_2
                }
            },
        };
        let self_signed = f.self_signed.as_ref().is_some_and(|s| *s.get_ref());
        let forms = [
            f.cert.is_some() || f.key.is_some(),
            self_signed,
            f.certificates.is_some(),
        ];
        let count = forms.iter().filter(|&&b| b).count();
        if count != 1 {
            let what = if count == 0 {
                "has no certificate"
            } else {
                "mixes certificate forms"
            };
            self.err(
                t.span(),
                format!(
                    "listener \"{listener}\": tls {what}: use {{ cert, key }}, {{ self_signed = true }} or certificates = [...]"
                ),
            );
            return None;
        }
        let certificates = if self_signed {
            vec![CertSource::SelfSigned]
        } else if let Some(list) = &f.certificates {
            if list.get_ref().is_empty() {
                self.err(
                    list.span(),
                    format!("listener \"{listener}\": tls.certificates must not be empty"),
                );
                return None;
            }
            let mut out = Vec::new();
            for c in list.get_ref() {
                let c = c.get_ref();
                if let Some(pair) = self.cert_pair(Some(&c.cert), Some(&c.key), c.cert.span()) {
                    out.push(pair);
                }
            }
            out
        } else {
            vec![self.cert_pair(f.cert.as_ref(), f.key.as_ref(), t.span())?]
        };
        Some(TlsSettings {
            certificates,
            min_version,
            pos: self.pos(t.span()),
        })
    }

    fn cert_pair(
        &mut self,
        cert: Option<&Spanned<String>>,
        key: Option<&Spanned<String>>,
        span: Range<usize>,
    ) -> Option<CertSource> {
        let (Some(cert), Some(key)) = (cert, key) else {
            self.err(span, "tls needs both cert and key");
            return None;
        };
        let cert = self.non_empty(cert, "tls cert")?;
        let key = self.non_empty(key, "tls key")?;
        Some(CertSource::Files {
            cert: self.resolve_path(&cert),
            key: self.resolve_path(&key),
        })
    }

    /// A header table in file order, names and values checked.
    fn header_table(&mut self, table: &HeaderTable, what: &str) -> Vec<(String, String)> {
        let mut entries: Vec<_> = table.get_ref().iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in entries {
            if let Some(h) = self.header_pair(name, value, what) {
                if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&h.0)) {
                    self.err(
                        name.span(),
                        format!("{what}: header \"{}\" is set twice", h.0),
                    );
                    continue;
                }
                out.push(h);
            }
        }
        out
    }

    fn header_pair(
        &mut self,
        name: &Spanned<String>,
        value: &Spanned<String>,
        what: &str,
    ) -> Option<(String, String)> {
        let n = name.get_ref();
        if !is_token(n) {
            self.err(
                name.span(),
                format!("{what}: \"{n}\" is not a valid header name"),
            );
            return None;
        }
        if FORBIDDEN_SET_HEADERS.contains(&n.to_ascii_lowercase().as_str()) {
            self.err(
                name.span(),
                format!(
                    "{what}: \"{n}\" frames the message or belongs to one hop and cannot be set"
                ),
            );
            return None;
        }
        let v = value.get_ref();
        if !is_field_value(v) {
            self.err(
                value.span(),
                format!("{what}: value of \"{n}\" contains a line break or control character"),
            );
            return None;
        }
        Some((n.clone(), v.trim().to_owned()))
    }
}

fn show(v: &IntOrStr) -> String {
    match v {
        IntOrStr::Int(n) => n.to_string(),
        IntOrStr::Str(s) => format!("\"{s}\""),
    }
}

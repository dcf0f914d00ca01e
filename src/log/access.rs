//! Access log in `combined` or `json` format, written off the workers.
//!
//! Each worker formats lines into its own [`Buffer`] and hands whole batches
//! to one writer thread through a channel once per event-loop turn, so a slow
//! disk never blocks a worker. The writer owns the file: SIGUSR1 reopens it
//! (log rotation) and a reload may retarget it. With the target `off` there
//! is no thread at all and [`Buffer::record`] returns after one atomic load.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::config::model::{LogFormat, LogTarget};
use crate::log::clock::{civil_from_unix, unix_secs};

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

/// The format workers read on every record, as one byte.
const FORMAT_COMBINED: u8 = 0;
const FORMAT_JSON: u8 = 1;
const FORMAT_OFF: u8 = 2;

/// A worker hands its batch over once it grows past this even within one
/// event-loop turn, so a burst cannot grow a buffer without bound.
const BATCH_LIMIT: usize = 64 * 1024;

/// Write failures are reported at most this often: a full disk must not turn
/// the event log into a second flood.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

enum Msg {
    Batch(Vec<u8>),
    Reopen,
    Retarget(Output),
    Flush(Sender<()>),
}

/// Where the writer thread writes; owned by that thread only.
enum Output {
    Stdout,
    Stderr,
    File { path: PathBuf, file: File },
    Off,
}

impl Output {
    fn open(target: &LogTarget) -> io::Result<Output> {
        Ok(match target {
            LogTarget::Stdout => Output::Stdout,
            LogTarget::Stderr => Output::Stderr,
            LogTarget::Off => Output::Off,
            LogTarget::File(path) => Output::File {
                path: path.clone(),
                file: open_log(path)?,
            },
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            // Locked once per batch; stdout's line buffer is flushed so a
            // batch is never left half in memory.
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Output::Stderr => io::stderr().lock().write_all(bytes),
            Output::File { file, .. } => file.write_all(bytes),
            Output::Off => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout => io::stdout().lock().flush(),
            _ => Ok(()),
        }
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
}

fn format_code(format: LogFormat) -> u8 {
    match format {
        LogFormat::Combined => FORMAT_COMBINED,
        LogFormat::Json => FORMAT_JSON,
    }
}

struct Inner {
    format: AtomicU8,
    /// `None` until a target other than `off` is first used; the thread then
    /// lives as long as the process, whatever later retargets say.
    writer: Mutex<Option<Sender<Msg>>>,
}

/// Shared handle on the writer thread (cheap to clone).
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Inner>,
}

impl Sink {
    /// Starts the writer thread for `target` (opens the file in append mode).
    pub fn start(target: &LogTarget, format: LogFormat) -> std::io::Result<Sink> {
        let sink = Sink {
            inner: Arc::new(Inner {
                format: AtomicU8::new(FORMAT_OFF),
                writer: Mutex::new(None),
            }),
        };
        sink.retarget(target, format)?;
        Ok(sink)
    }

    /// Reopens the file (SIGUSR1).
    pub fn reopen(&self) {
        self.send(Msg::Reopen);
    }

    /// Switches target and format (reload); errors leave the old target.
    pub fn retarget(&self, target: &LogTarget, format: LogFormat) -> std::io::Result<()> {
        // Opened here, on the caller's thread, so that failure is reported to
        // the reload and nothing has changed yet.
        let output = Output::open(target)?;
        let mut writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (writer.as_ref(), output) {
            (Some(tx), output) => {
                // The thread may only be gone if it panicked; then there is
                // nothing to retarget and records are dropped.
                let _ = tx.send(Msg::Retarget(output));
            }
            (None, Output::Off) => {}
            (None, output) => {
                let (tx, rx) = mpsc::channel();
                std::thread::Builder::new()
                    .name("torii-access-log".to_owned())
                    .spawn(move || run_writer(rx, output))?;
                *writer = Some(tx);
            }
        }
        let code = if *target == LogTarget::Off {
            FORMAT_OFF
        } else {
            format_code(format)
        };
        self.inner.format.store(code, Ordering::Relaxed);
        Ok(())
    }

    /// Writes everything queued so far and waits for it (shutdown).
    pub fn flush_blocking(&self) {
        let (ack_tx, ack_rx) = mpsc::channel();
        if self.send(Msg::Flush(ack_tx)) {
            // An error means the writer is gone: nothing left to wait for.
            let _ = ack_rx.recv();
        }
    }

    fn send(&self, msg: Msg) -> bool {
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        writer.as_ref().is_some_and(|tx| tx.send(msg).is_ok())
    }

    fn format(&self) -> u8 {
        self.inner.format.load(Ordering::Relaxed)
    }
}

fn run_writer(rx: Receiver<Msg>, mut output: Output) {
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: &str, path: Option<&Path>, e: &io::Error| {
        if last_warning.is_none_or(|t| t.elapsed() >= WARN_INTERVAL) {
            last_warning = Some(Instant::now());
            let path = path
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the access log".to_owned());
            tracing::warn!("cannot {what} {path}: {e} (further errors hidden for a minute)");
        }
    };
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Batch(bytes) => {
                if let Err(e) = output.write(&bytes) {
                    warn("write", output_path(&output), &e);
                }
            }
            Msg::Reopen => {
                if let Output::File { path, file } = &mut output {
                    match open_log(path) {
                        Ok(new) => *file = new,
                        Err(e) => warn("reopen", Some(path), &e),
                    }
                }
            }
            Msg::Retarget(new) => {
                let _ = output.flush();
                output = new;
            }
            Msg::Flush(ack) => {
                if let Err(e) = output.flush() {
                    warn("flush", output_path(&output), &e);
                }
                let _ = ack.send(());
            }
        }
    }
}

fn output_path(output: &Output) -> Option<&Path> {
    match output {
        Output::File { path, .. } => Some(path),
        _ => None,
    }
}

/// A worker's batch of formatted lines.
pub struct Buffer {
    sink: Sink,
    /// The writer's channel, copied once it exists so that handing a batch
    /// over does not take the sink's lock.
    tx: Option<Sender<Msg>>,
    buf: Vec<u8>,
    clock: TimeCache,
}

impl Buffer {
    pub fn new(sink: Sink) -> Buffer {
        Buffer {
            sink,
            tx: None,
            buf: Vec::new(),
            clock: TimeCache::new(),
        }
    }

    pub fn record(&mut self, rec: &Record<'_>) {
        match self.sink.format() {
            FORMAT_COMBINED => self.write_combined(rec),
            FORMAT_JSON => self.write_json(rec),
            _ => return,
        }
        if self.buf.len() >= BATCH_LIMIT {
            self.flush();
        }
    }

    /// Hands the batch to the writer if non-empty.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if self.tx.is_none() {
            self.tx = self
                .sink
                .inner
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
        }
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(4096));
        if let Some(tx) = &self.tx {
            // Fails only if the writer thread died; the lines are lost
            // either way and the worker must not stop for it.
            let _ = tx.send(Msg::Batch(batch));
        }
    }

    /// `$remote_addr - $remote_user [$time_local] "$request" $status
    /// $body_bytes_sent "$http_referer" "$http_user_agent"`, as nginx writes it.
    fn write_combined(&mut self, rec: &Record<'_>) {
        let b = &mut self.buf;
        let _ = write!(b, "{} - - [", rec.remote_addr);
        b.extend_from_slice(self.clock.local(rec.time).as_bytes());
        b.extend_from_slice(b"] \"");
        if rec.method.is_empty() {
            // No request line was read (timeout, garbage): nginx logs "-"
            // too rather than a fabricated request.
            b.push(b'-');
        } else {
            escape_nginx(b, rec.method.as_bytes());
            b.push(b' ');
            escape_nginx(b, rec.uri.as_bytes());
            let _ = write!(b, " HTTP/1.{}", rec.minor);
        }
        let _ = write!(b, "\" {} {} \"", rec.status, rec.bytes_sent);
        escape_or_dash(b, rec.referer);
        b.extend_from_slice(b"\" \"");
        escape_or_dash(b, rec.user_agent);
        b.extend_from_slice(b"\"\n");
    }

    fn write_json(&mut self, rec: &Record<'_>) {
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"time\":\"");
        b.extend_from_slice(self.clock.rfc3339(rec.time).as_bytes());
        let _ = write!(b, "\",\"remote_addr\":\"{}\",\"method\":", rec.remote_addr);
        json_str(b, rec.method);
        b.extend_from_slice(b",\"uri\":");
        json_str(b, rec.uri);
        let _ = write!(
            b,
            ",\"protocol\":\"HTTP/1.{}\",\"status\":{},\"bytes_sent\":{},\"duration_ms\":",
            rec.minor, rec.status, rec.bytes_sent
        );
        millis(b, rec.duration);
        b.extend_from_slice(b",\"upstream\":");
        json_opt(b, rec.upstream);
        b.extend_from_slice(b",\"upstream_addr\":");
        match rec.upstream_addr {
            Some(addr) => {
                let _ = write!(b, "\"{addr}\"");
            }
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"upstream_ms\":");
        match rec.upstream_time {
            Some(d) => millis(b, d),
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"listener\":");
        json_str(b, rec.listener);
        b.extend_from_slice(b",\"tls_version\":");
        json_opt(b, rec.tls_version);
        b.extend_from_slice(b",\"tls_cipher\":");
        json_opt(b, rec.tls_cipher);
        b.extend_from_slice(b",\"referer\":");
        json_bytes(b, rec.referer);
        b.extend_from_slice(b",\"user_agent\":");
        json_bytes(b, rec.user_agent);
        b.extend_from_slice(b"}\n");
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Both timestamp forms of the last second seen: a busy worker logs many
/// requests per second, and formatting a date is the costliest part of a line.
struct TimeCache {
    second: i64,
    local: String,
    rfc3339: String,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl TimeCache {
    fn new() -> TimeCache {
        TimeCache {
            second: i64::MIN,
            local: String::new(),
            rfc3339: String::new(),
        }
    }

    fn update(&mut self, time: SystemTime) {
        let second = unix_secs(time);
        if second == self.second {
            return;
        }
        self.second = second;
        let c = civil_from_unix(second);
        let month = MONTHS[usize::from(c.month.clamp(1, 12) - 1)];
        self.local = format!(
            "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
            c.day, c.year, c.hour, c.minute, c.second
        );
        self.rfc3339 = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
    }

    /// nginx's `$time_local`, in UTC: `03/Dec/2026:17:58:16 +0000`.
    fn local(&mut self, time: SystemTime) -> &str {
        self.update(time);
        &self.local
    }

    fn rfc3339(&mut self, time: SystemTime) -> &str {
        self.update(time);
        &self.rfc3339
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// nginx's default log escaping: `"`, `\`, control bytes and bytes above
/// 126 become `\xHH`, so a line stays one line of printable ASCII.
fn escape_nginx(out: &mut Vec<u8>, bytes: &[u8]) {
    let needs = |b: u8| b == b'"' || b == b'\\' || !(0x20..=0x7e).contains(&b);
    if !bytes.iter().any(|&b| needs(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        if needs(b) {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.push(b);
        }
    }
}

fn escape_or_dash(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        out.push(b'-');
    } else {
        escape_nginx(out, bytes);
    }
}

/// A JSON string literal: `"` and `\` escaped, control characters as
/// `\u00XX`; everything else (UTF-8 included) as is.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn json_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Header values are bytes; JSON must be UTF-8, so invalid sequences become
/// U+FFFD. Empty means the header was absent: `null`.
fn json_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json_str(out, &String::from_utf8_lossy(bytes));
    }
}

/// Milliseconds with exactly three decimals, from integer microseconds so no
/// float rounding shows up in the log.
fn millis(out: &mut Vec<u8>, d: Duration) {
    let micros = d.as_micros();
    let _ = write!(out, "{}.{:03}", micros / 1000, micros % 1000);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::atomic::AtomicUsize;

    /// 2026-12-03T17:58:16Z
    const T: u64 = 1_796_320_696;

    fn sample<'a>() -> Record<'a> {
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(T),
            remote_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            method: "GET",
            uri: "/webdav/file.txt?x=1",
            minor: 1,
            status: 200,
            bytes_sent: 5123,
            referer: b"https://erp.example.com/",
            user_agent: b"curl/8.5.0",
            duration: Duration::from_micros(12_345),
            upstream: Some("dav"),
            upstream_addr: Some("127.0.0.1:8069".parse().unwrap()),
            upstream_time: Some(Duration::from_micros(10_001)),
            listener: "https",
            tls_version: Some("TLSv1.3"),
            tls_cipher: Some("TLS13_AES_128_GCM_SHA256"),
        }
    }

    fn off_buffer() -> Buffer {
        Buffer::new(Sink::start(&LogTarget::Off, LogFormat::Combined).unwrap())
    }

    fn combined(rec: &Record<'_>) -> String {
        let mut b = off_buffer();
        b.write_combined(rec);
        String::from_utf8(std::mem::take(&mut b.buf)).unwrap()
    }

    fn json(rec: &Record<'_>) -> String {
        let mut b = off_buffer();
        b.write_json(rec);
        String::from_utf8(std::mem::take(&mut b.buf)).unwrap()
    }

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Scratch {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "torii-log-{}-{}-{tag}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn combined_line_matches_nginx_exactly() {
        assert_eq!(
            combined(&sample()),
            "192.0.2.10 - - [03/Dec/2026:17:58:16 +0000] \"GET /webdav/file.txt?x=1 HTTP/1.1\" 200 5123 \
             \"https://erp.example.com/\" \"curl/8.5.0\"\n"
        );
    }

    #[test]
    fn combined_writes_dash_for_missing_referer_and_agent() {
        let rec = Record {
            referer: b"",
            user_agent: b"",
            minor: 0,
            status: 404,
            bytes_sent: 0,
            ..sample()
        };
        assert_eq!(
            combined(&rec),
            "192.0.2.10 - - [03/Dec/2026:17:58:16 +0000] \"GET /webdav/file.txt?x=1 HTTP/1.0\" 404 0 \"-\" \"-\"\n"
        );
    }

    #[test]
    fn combined_without_request_line_logs_dash() {
        let rec = Record {
            method: "",
            uri: "",
            status: 408,
            ..sample()
        };
        assert!(combined(&rec).contains("] \"-\" 408 5123 "));
    }

    #[test]
    fn combined_escapes_quotes_backslashes_and_nonprintable_bytes() {
        let rec = Record {
            uri: "/a\"b",
            user_agent: b"x\"y\\z\x01\x7f\xc3\xa9 ok",
            ..sample()
        };
        let line = combined(&rec);
        assert!(line.contains("\"GET /a\\x22b HTTP/1.1\""), "{line}");
        assert!(
            line.ends_with("\"x\\x22y\\x5Cz\\x01\\x7F\\xC3\\xA9 ok\"\n"),
            "{line}"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn combined_ipv6_address_is_plain() {
        let rec = Record {
            remote_addr: "2001:db8::1".parse().unwrap(),
            ..sample()
        };
        assert!(combined(&rec).starts_with("2001:db8::1 - - ["));
    }

    #[test]
    fn json_line_has_every_field_in_order() {
        assert_eq!(
            json(&sample()),
            "{\"time\":\"2026-12-03T17:58:16Z\",\"remote_addr\":\"192.0.2.10\",\"method\":\"GET\",\
             \"uri\":\"/webdav/file.txt?x=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes_sent\":5123,\
             \"duration_ms\":12.345,\"upstream\":\"dav\",\"upstream_addr\":\"127.0.0.1:8069\",\
             \"upstream_ms\":10.001,\"listener\":\"https\",\"tls_version\":\"TLSv1.3\",\
             \"tls_cipher\":\"TLS13_AES_128_GCM_SHA256\",\"referer\":\"https://erp.example.com/\",\
             \"user_agent\":\"curl/8.5.0\"}\n"
        );
    }

    #[test]
    fn json_uses_null_for_absent_values() {
        let rec = Record {
            upstream: None,
            upstream_addr: None,
            upstream_time: None,
            tls_version: None,
            tls_cipher: None,
            referer: b"",
            user_agent: b"",
            duration: Duration::from_nanos(999),
            ..sample()
        };
        let line = json(&rec);
        for field in [
            "upstream",
            "upstream_addr",
            "upstream_ms",
            "tls_version",
            "tls_cipher",
            "referer",
            "user_agent",
        ] {
            assert!(
                line.contains(&format!("\"{field}\":null")),
                "{field} in {line}"
            );
        }
        assert!(line.contains("\"duration_ms\":0.000,"), "{line}");
    }

    #[test]
    fn json_escapes_strings_correctly() {
        let rec = Record {
            uri: "/q\"\\\n\u{1}é",
            user_agent: b"bad\xff\"ua\t",
            ..sample()
        };
        let line = json(&rec);
        assert!(
            line.contains("\"uri\":\"/q\\\"\\\\\\u000A\\u0001é\""),
            "{line}"
        );
        assert!(
            line.contains("\"user_agent\":\"bad\u{FFFD}\\\"ua\\u0009\""),
            "{line}"
        );
        // One object, one line, balanced quotes outside escapes.
        assert!(line.starts_with('{') && line.ends_with("}\n"));
        assert_eq!(line.matches('\n').count(), 1);
        let unescaped_quotes = line
            .as_bytes()
            .windows(2)
            .filter(|w| w[1] == b'"' && w[0] != b'\\')
            .count()
            + usize::from(line.starts_with('"'));
        assert_eq!(unescaped_quotes % 2, 0, "{line}");
    }

    #[test]
    fn time_cache_follows_the_second() {
        let mut c = TimeCache::new();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(T);
        assert_eq!(c.local(t), "03/Dec/2026:17:58:16 +0000");
        assert_eq!(
            c.local(t + Duration::from_millis(999)),
            "03/Dec/2026:17:58:16 +0000"
        );
        assert_eq!(
            c.local(t + Duration::from_secs(1)),
            "03/Dec/2026:17:58:17 +0000"
        );
        assert_eq!(
            c.rfc3339(t + Duration::from_secs(1)),
            "2026-12-03T17:58:17Z"
        );
        assert_eq!(
            c.local(SystemTime::UNIX_EPOCH),
            "01/Jan/1970:00:00:00 +0000"
        );
    }

    #[test]
    fn off_target_records_nothing() {
        let sink = Sink::start(&LogTarget::Off, LogFormat::Json).unwrap();
        let mut b = Buffer::new(sink.clone());
        b.record(&sample());
        assert!(b.buf.is_empty());
        b.flush();
        sink.flush_blocking();
        assert!(
            sink.inner.writer.lock().unwrap().is_none(),
            "no thread for off"
        );
    }

    #[test]
    fn file_target_writes_and_reopen_after_rename_creates_new_file() {
        let dir = Scratch::new("reopen");
        let path = dir.0.join("access.log");
        let sink = Sink::start(&LogTarget::File(path.clone()), LogFormat::Combined).unwrap();
        let mut b = Buffer::new(sink.clone());
        b.record(&sample());
        b.record(&sample());
        b.flush();
        sink.flush_blocking();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644 & !umask_bits()
        );

        let rotated = dir.0.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.reopen();
        b.record(&Record {
            status: 500,
            ..sample()
        });
        b.flush();
        sink.flush_blocking();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap().lines().count(),
            2
        );
        let fresh = std::fs::read_to_string(&path).unwrap();
        assert_eq!(fresh.lines().count(), 1);
        assert!(fresh.contains("\" 500 "));
    }

    /// The process umask narrows 0644; read what it is without unsafe code by
    /// creating a probe file.
    fn umask_bits() -> u32 {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("umask");
        let probe = dir.0.join("probe");
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o777)
            .open(&probe)
            .unwrap();
        !std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn file_target_appends_to_existing_file() {
        let dir = Scratch::new("append");
        let path = dir.0.join("access.log");
        std::fs::write(&path, "old line\n").unwrap();
        let sink = Sink::start(&LogTarget::File(path.clone()), LogFormat::Json).unwrap();
        let mut b = Buffer::new(sink.clone());
        b.record(&sample());
        drop(b);
        sink.flush_blocking();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("old line\n{\"time\":"), "{text}");
    }

    #[test]
    fn failed_retarget_keeps_old_target_and_format() {
        let dir = Scratch::new("retarget");
        let path = dir.0.join("a.log");
        let sink = Sink::start(&LogTarget::File(path.clone()), LogFormat::Combined).unwrap();
        let bad = LogTarget::File(dir.0.join("missing-dir/b.log"));
        assert!(sink.retarget(&bad, LogFormat::Json).is_err());
        let mut b = Buffer::new(sink.clone());
        b.record(&sample());
        b.flush();
        sink.flush_blocking();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("192.0.2.10 - - [")
        );
    }

    #[test]
    fn retarget_switches_file_and_format() {
        let dir = Scratch::new("switch");
        let a = dir.0.join("a.log");
        let c = dir.0.join("c.log");
        let sink = Sink::start(&LogTarget::Off, LogFormat::Combined).unwrap();
        let mut b = Buffer::new(sink.clone());
        b.record(&sample());
        assert!(b.buf.is_empty());
        sink.retarget(&LogTarget::File(a.clone()), LogFormat::Combined)
            .unwrap();
        b.record(&sample());
        b.flush();
        sink.retarget(&LogTarget::File(c.clone()), LogFormat::Json)
            .unwrap();
        b.record(&sample());
        b.flush();
        sink.retarget(&LogTarget::Off, LogFormat::Json).unwrap();
        b.record(&sample());
        assert!(b.buf.is_empty());
        sink.flush_blocking();
        assert_eq!(std::fs::read_to_string(&a).unwrap().lines().count(), 1);
        let json = std::fs::read_to_string(&c).unwrap();
        assert!(
            json.starts_with("{\"time\":\"2026-12-03T17:58:16Z\"") && json.lines().count() == 1
        );
    }

    #[test]
    fn large_batches_are_handed_over_without_waiting_for_flush() {
        let dir = Scratch::new("batch");
        let path = dir.0.join("access.log");
        let sink = Sink::start(&LogTarget::File(path.clone()), LogFormat::Combined).unwrap();
        let mut b = Buffer::new(sink.clone());
        let n = BATCH_LIMIT / combined(&sample()).len() + 2;
        for _ in 0..n {
            b.record(&sample());
        }
        assert!(b.buf.len() < BATCH_LIMIT);
        sink.flush_blocking();
        assert!(std::fs::read_to_string(&path).unwrap().lines().count() >= n - 2);
    }
}

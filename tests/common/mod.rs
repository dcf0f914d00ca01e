//! Shared harness of the black-box tests: runs the real `torii` binary on
//! ephemeral loopback ports with a generated configuration, and provides the
//! origin server (`backend`) and the clients (`client`) that surround it.
//!
//! Nothing here sleeps to synchronise: waits poll a condition with a
//! deadline (`wait_until`).
#![allow(dead_code, unused_imports)]

pub mod backend;
pub mod client;
pub mod wire;

pub use backend::{Backend, Body, Options, Reply, Request};
pub use client::{Client, HttpResponse, get, parse_responses, request, send_raw};

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long torii gets to bind its listeners.
pub const START_DEADLINE: Duration = Duration::from_secs(10);

/// The binary under test: this package's, or `TORII_BIN` to test another
/// build (an installed package, a release build from elsewhere).
pub fn torii_bin() -> String {
    std::env::var("TORII_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_torii").to_string())
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// Polls `cond` every 10 ms until it holds (true) or `deadline` passes (false).
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh, empty directory for one test; removed on drop unless the test is
/// panicking (the files then help to see what happened).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "torii-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Builds a configuration text. Listener ports are chosen free at build time.
#[derive(Default)]
pub struct Conf {
    global: Vec<String>,
    timeouts: Vec<String>,
    limits: Vec<String>,
    sections: Vec<String>,
}

impl Conf {
    /// `[global]` with one worker, access log on stdout, no file watching.
    pub fn new() -> Conf {
        Conf {
            global: vec![
                "workers = 1".into(),
                "access_log = \"stdout\"".into(),
                "watch = false".into(),
            ],
            ..Conf::default()
        }
    }

    /// Sets a `[global]` key, replacing the default one of the same name.
    pub fn global(mut self, line: &str) -> Conf {
        let key = line.split('=').next().unwrap_or("").trim().to_string();
        self.global
            .retain(|l| l.split('=').next().unwrap_or("").trim() != key);
        self.global.push(line.to_string());
        self
    }

    pub fn timeout(mut self, line: &str) -> Conf {
        self.timeouts.push(line.to_string());
        self
    }

    pub fn limit(mut self, line: &str) -> Conf {
        self.limits.push(line.to_string());
        self
    }

    /// `[[upstream]]` named `name` over `servers`, plus extra key lines.
    pub fn upstream(mut self, name: &str, servers: &[SocketAddr], extra: &str) -> Conf {
        let list: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
        self.sections.push(format!(
            "[[upstream]]\nname = \"{name}\"\nservers = [{}]\n{extra}\n",
            list.join(", ")
        ));
        self
    }

    /// `[[listener]]` on a fresh 127.0.0.1 port, plus extra key lines.
    pub fn listener(mut self, name: &str, extra: &str) -> Conf {
        self.sections.push(format!(
            "[[listener]]\nname = \"{name}\"\nbind = \"127.0.0.1:{}\"\n{extra}\n",
            free_port()
        ));
        self
    }

    /// `[[route]]` with these key lines.
    pub fn route(mut self, body: &str) -> Conf {
        self.sections.push(format!("[[route]]\n{body}\n"));
        self
    }

    /// Raw text appended at the end.
    pub fn raw(mut self, text: &str) -> Conf {
        self.sections.push(text.to_string());
        self
    }

    pub fn build(&self) -> String {
        let mut s = format!("[global]\n{}\n\n", self.global.join("\n"));
        if !self.timeouts.is_empty() {
            s.push_str(&format!("[timeouts]\n{}\n\n", self.timeouts.join("\n")));
        }
        if !self.limits.is_empty() {
            s.push_str(&format!("[limits]\n{}\n\n", self.limits.join("\n")));
        }
        for sec in &self.sections {
            s.push_str(sec);
            s.push('\n');
        }
        s
    }

    pub fn start(&self) -> Torii {
        Torii::start(&self.build())
    }
}

/// The common case: one listener "http" proxying every path to upstream "b"
/// over `backend`; `route_extra` adds key lines to that route.
pub fn proxy_to(backend: &Backend, route_extra: &str) -> Torii {
    Conf::new()
        .upstream("b", &[backend.addr()], "")
        .listener("http", "")
        .route(&format!("path = \"/\"\nupstream = \"b\"\n{route_extra}"))
        .start()
}

/// The listener addresses of a configuration text, in file order, mapped to
/// loopback so they can be connected to.
pub fn bind_addrs(config: &str) -> Vec<SocketAddr> {
    let Ok(table) = config.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(listeners) = table.get("listener").and_then(|l| l.as_array()) else {
        return Vec::new();
    };
    listeners
        .iter()
        .filter_map(|l| l.get("bind")?.as_str()?.parse::<SocketAddr>().ok())
        .map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            a
        })
        .collect()
}

/// A running torii process; killed on drop.
pub struct Torii {
    dir: TempDir,
    config_path: PathBuf,
    child: Child,
    addrs: Vec<SocketAddr>,
    exited: Option<ExitStatus>,
}

impl Torii {
    /// Writes `config` to a fresh directory, runs `torii -c FILE` there and
    /// waits until every listener accepts TCP connections.
    pub fn start(config: &str) -> Torii {
        let dir = TempDir::new("run");
        let config_path = dir.join("torii.toml");
        fs::write(&config_path, config).expect("write the configuration");
        Torii::start_file(dir, config_path)
    }

    /// Runs torii on an existing configuration file inside `dir`.
    pub fn start_file(dir: TempDir, config_path: PathBuf) -> Torii {
        let config = fs::read_to_string(&config_path).unwrap_or_default();
        let addrs = bind_addrs(&config);
        let stdout = fs::File::create(dir.join("stdout")).expect("create stdout file");
        let stderr = fs::File::create(dir.join("stderr")).expect("create stderr file");
        let child = Command::new(torii_bin())
            .arg("-c")
            .arg(&config_path)
            .current_dir(dir.path())
            .env_remove("TORII_CONFIG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", torii_bin()));
        let mut t = Torii {
            dir,
            config_path,
            child,
            addrs,
            exited: None,
        };
        t.wait_ready();
        t
    }

    fn wait_ready(&mut self) {
        let end = Instant::now() + START_DEADLINE;
        let mut pending = self.addrs.clone();
        while !pending.is_empty() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                panic!(
                    "torii exited during start-up ({status}).\nconfig:\n{}\nstderr:\n{}",
                    fs::read_to_string(&self.config_path).unwrap_or_default(),
                    self.stderr()
                );
            }
            pending.retain(|a| TcpStream::connect_timeout(a, Duration::from_millis(100)).is_err());
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= end {
                panic!(
                    "torii did not listen on {pending:?} within {START_DEADLINE:?}.\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The `i`-th listener's address (file order).
    pub fn addr_of(&self, i: usize) -> SocketAddr {
        self.addrs[i]
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Waits until stdout or stderr contains `needle`.
    pub fn wait_for_log(&self, needle: &str, deadline: Duration) -> bool {
        wait_until(deadline, || {
            self.stdout().contains(needle) || self.stderr().contains(needle)
        })
    }

    /// Waits until some stdout line satisfies `pred`, and returns it.
    pub fn wait_for_stdout_line(
        &self,
        deadline: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let mut found = None;
        wait_until(deadline, || {
            found = self.stdout().lines().find(|l| pred(l)).map(str::to_string);
            found.is_some()
        });
        found
    }

    /// Sends a signal by name (`"QUIT"`, `"TERM"`, `"HUP"`, ...).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits for the process to exit; `None` if it is still running at the
    /// deadline.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let child = &mut self.child;
        let mut status = None;
        wait_until(deadline, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        self.exited = status;
        status
    }

    /// Memory figures of the process from /proc.
    pub fn memory(&self) -> Memory {
        memory_of(self.pid())
    }
}

impl Drop for Torii {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("torii stderr:\n{}", self.stderr());
        }
    }
}

/// Resident set size now and its peak, in KiB (`VmRSS`, `VmHWM`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn memory_of(pid: u32) -> Memory {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// The result of a short-lived torii command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `torii ARGS...` to completion (killed after 20 s), capturing output.
pub fn run_torii(args: &[&str]) -> Output {
    let dir = TempDir::new("cmd");
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let mut child = Command::new(torii_bin())
        .args(args)
        .env_remove("TORII_CONFIG")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("create stdout file"))
        .stderr(fs::File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", torii_bin()));
    let mut status = None;
    wait_until(Duration::from_secs(20), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            panic!("torii {args:?} did not exit within 20 s");
        }
    };
    Output {
        status,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

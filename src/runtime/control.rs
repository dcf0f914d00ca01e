//! The control thread (the main thread after start-up): builds the first
//! generation, starts the workers, then owns signals and the file watcher
//! and runs every reload: `config::load` → `Generation::build` → one
//! `ArcSwap::store` → wake the workers. A reload that fails anywhere before
//! the store changes nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use mio::Waker;
use notify::Watcher;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};

use super::generation::Generation;
use super::worker;
use crate::config::{self, Config, ConfigError};
use crate::log::{self, access};
use crate::net::listener::Bound;
use crate::proxy::{FAST, GRACEFUL, RUNNING, Shared};
use crate::tls::TlsShared;

/// Exit codes: 0 success, 1 configuration error, 2 runtime or usage error.
pub const EXIT_CONFIG: i32 = 1;
pub const EXIT_RUNTIME: i32 = 2;

enum Msg {
    Signal(i32),
    FileChanged(PathBuf),
}

/// Quiet time after the last file event before reloading: an editor's save
/// or a renewal writing a certificate and a key is one reload.
const DEBOUNCE: Duration = Duration::from_millis(300);
const DEBOUNCE_MAX: Duration = Duration::from_secs(2);

pub fn print_errors(errors: &[ConfigError]) {
    for e in errors {
        eprintln!("{e}");
    }
}

/// Runs torii in the foreground until stopped. Returns the exit code.
pub fn run(path: &Path) -> i32 {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(errors) => {
            print_errors(&errors);
            return EXIT_CONFIG;
        }
    };
    // Signals first: from the moment a port answers, a SIGHUP or SIGTERM
    // must reach us rather than take its default action.
    let (tx, rx) = mpsc::channel::<Msg>();
    let signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1]);
    match signals {
        Ok(mut signals) => {
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name("torii-signals".into())
                .spawn(move || {
                    for s in signals.forever() {
                        if tx.send(Msg::Signal(s)).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start the signal thread: {e}");
            }
        }
        Err(e) => tracing::error!("cannot install signal handlers: {e}"),
    }
    let config = loaded.config;
    // The watch starts before any port is bound: a change made as soon as
    // torii answers must not fall between binding and watching.
    let watch = config.global.watch;
    let mut watched = config::watched_files(&config);
    let mut watcher = if watch {
        start_watcher(tx.clone())
    } else {
        None
    };
    let mut watched_dirs = HashSet::new();
    if let Some(w) = watcher.as_mut() {
        update_watches(w, &mut watched_dirs, &watched);
    }
    let mut names = relevant_names(&watched);
    let log_handle = match log::init_tracing(&config.global.log_level) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("torii: cannot set up logging: {e}");
            return EXIT_RUNTIME;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let tls = match TlsShared::new() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("cannot set up TLS: {e}");
            return EXIT_RUNTIME;
        }
    };
    let workers = config.global.workers;
    let sink = match access::Sink::start(&config.global.access_log, config.global.access_log_format)
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot open access log {:?}: {e}", config.global.access_log);
            return EXIT_RUNTIME;
        }
    };
    let started = Instant::now();
    let generation = match Generation::build(1, config, None, &tls, workers, true) {
        Ok(g) => g,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            print_errors(&errors);
            return EXIT_CONFIG;
        }
    };
    for w in &generation.warnings {
        tracing::warn!("{w}");
    }
    let pid_file = generation.config.global.pid_file.clone();
    if let Some(p) = &pid_file
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        tracing::error!("cannot write pid file {}: {e}", p.display());
        return EXIT_RUNTIME;
    }
    if let Some(user) = &generation.config.global.user
        && let Err(e) = drop_privileges(user)
    {
        tracing::error!("cannot switch to user {user}: {e}");
        return EXIT_RUNTIME;
    }
    for l in &generation.config.listeners {
        tracing::info!(
            listener = %l.name,
            "listening on {}{}",
            l.bind,
            if l.tls.is_some() { " (TLS)" } else { "" }
        );
    }
    let shared = Arc::new(Shared {
        generation: ArcSwap::from_pointee(generation),
        stop: AtomicU8::new(RUNNING),
        requests: AtomicU64::new(0),
        sink,
    });
    let mut handles = Vec::new();
    let mut wakers: Vec<Arc<Waker>> = Vec::new();
    for i in 0..workers {
        match worker::spawn(i, shared.clone()) {
            Ok((h, w)) => {
                handles.push(h);
                wakers.push(w);
            }
            Err(e) => {
                tracing::error!("cannot start worker {i}: {e}");
                shared.stop.store(FAST, Ordering::Release);
                wake(&wakers);
                return EXIT_RUNTIME;
            }
        }
    }

    tracing::info!(
        generation = 1,
        workers,
        "torii {} started in {:?}",
        env!("CARGO_PKG_VERSION"),
        started.elapsed()
    );

    let mut exit = 0;
    let reloader = Reloader {
        path,
        shared: &shared,
        tls: &tls,
        workers,
        wakers: &wakers,
        log_handle: &log_handle,
    };
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Signal(SIGHUP) => {
                tracing::info!("SIGHUP: reloading");
                reloader.reload(&mut watched);
            }
            Msg::FileChanged(p) => {
                if !is_relevant(&p, &names) {
                    continue;
                }
                // Debounce: let the burst of events of one change settle.
                // Only relevant events extend the wait (a log file in the
                // same directory changes all the time), and never past
                // DEBOUNCE_MAX.
                let first = Instant::now();
                let mut quiet_until = first + DEBOUNCE;
                loop {
                    let now = Instant::now();
                    let until = quiet_until.min(first + DEBOUNCE_MAX);
                    if now >= until {
                        break;
                    }
                    match rx.recv_timeout(until - now) {
                        Ok(Msg::FileChanged(p)) => {
                            if is_relevant(&p, &names) {
                                quiet_until = Instant::now() + DEBOUNCE;
                            }
                        }
                        Ok(Msg::Signal(s)) => {
                            let _ = tx.send(Msg::Signal(s));
                            break;
                        }
                        Err(_) => break,
                    }
                }
                tracing::info!("{} changed: reloading", p.display());
                reloader.reload(&mut watched);
            }
            Msg::Signal(SIGUSR1) => {
                tracing::info!("SIGUSR1: reopening log files");
                shared.sink.reopen();
            }
            Msg::Signal(SIGQUIT) => {
                tracing::info!("SIGQUIT: graceful stop");
                shared.stop.store(GRACEFUL, Ordering::Release);
                for l in &shared.generation.load().listeners {
                    l.bound.close();
                }
                wake(&wakers);
                break;
            }
            Msg::Signal(_) => {
                tracing::info!("stopping");
                shared.stop.store(FAST, Ordering::Release);
                wake(&wakers);
                break;
            }
        }
        names = relevant_names(&watched);
        if let Some(w) = watcher.as_mut() {
            update_watches(w, &mut watched_dirs, &watched);
        }
    }
    for h in handles {
        if h.join().is_err() {
            tracing::error!("a worker panicked");
            exit = EXIT_RUNTIME;
        }
    }
    shared.sink.flush_blocking();
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("stopped");
    exit
}

fn wake(wakers: &[Arc<Waker>]) {
    for w in wakers {
        if let Err(e) = w.wake() {
            tracing::error!("cannot wake a worker: {e}");
        }
    }
}

/// Builds and publishes the next generation, or logs why not.
/// Everything a reload needs, whatever triggered it.
struct Reloader<'a> {
    path: &'a Path,
    shared: &'a Shared,
    tls: &'a TlsShared,
    workers: usize,
    wakers: &'a [Arc<Waker>],
    log_handle: &'a log::ReloadHandle,
}

impl Reloader<'_> {
    fn reload(&self, watched: &mut Vec<PathBuf>) {
        reload(
            self.path,
            self.shared,
            self.tls,
            self.workers,
            self.wakers,
            self.log_handle,
            watched,
        );
    }
}

fn reload(
    path: &Path,
    shared: &Shared,
    tls: &TlsShared,
    workers: usize,
    wakers: &[Arc<Waker>],
    log_handle: &log::ReloadHandle,
    watched: &mut Vec<PathBuf>,
) {
    let t0 = Instant::now();
    let old = shared.generation.load_full();
    let next_id = old.id + 1;
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            tracing::error!("reload rejected: generation {} stays in force", old.id);
            return;
        }
    };
    let config = loaded.config;
    // Watching keeps working whatever the outcome: a later good file is picked up.
    *watched = config::watched_files(&config);
    if config.global.workers != workers {
        tracing::warn!(
            "workers = {} needs a restart; keeping {workers}",
            config.global.workers
        );
    }
    let summary = diff(&old.config, &config);
    let generation = match Generation::build(next_id, config, Some(&old), tls, workers, true) {
        Ok(g) => g,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            tracing::error!("reload rejected: generation {} stays in force", old.id);
            return;
        }
    };
    for w in loaded.warnings.iter().chain(generation.warnings.iter()) {
        tracing::warn!("{w}");
    }
    if let Err(e) = shared.sink.retarget(
        &generation.config.global.access_log,
        generation.config.global.access_log_format,
    ) {
        tracing::error!("access log: {e}; keeping the previous target");
    }
    if let Err(e) = log_handle.set_level(&generation.config.global.log_level) {
        tracing::error!("log_level: {e}");
    }
    // Listeners the new generation dropped. Their `Bound` must be closed
    // here: idle connections and older generations still hold the `Arc`,
    // and a socket kept open that way stays in the kernel's SO_REUSEPORT
    // group, completing handshakes nobody accepts (and, if the address
    // comes back in a later reload, taking a share of its connections).
    let removed: Vec<Arc<Bound>> = old
        .listeners
        .iter()
        .filter(|l| generation.listener_index(&l.bound).is_none())
        .map(|l| l.bound.clone())
        .collect();
    shared.generation.store(Arc::new(generation));
    wake(wakers);
    // Closing the originals after the wake-up: each worker drops its
    // duplicate as it applies the generation, and the last close makes the
    // port refuse new connections.
    for b in &removed {
        b.close();
    }
    tracing::info!(
        generation = next_id,
        "reloaded in {:?}: {summary}",
        t0.elapsed()
    );
}

/// What changed between two configurations, for the reload log line.
fn diff(old: &Config, new: &Config) -> String {
    let added: Vec<_> = new
        .listeners
        .iter()
        .filter(|l| !old.listeners.iter().any(|o| o.bind == l.bind))
        .map(|l| format!("+{}", l.bind))
        .collect();
    let removed: Vec<_> = old
        .listeners
        .iter()
        .filter(|l| !new.listeners.iter().any(|o| o.bind == l.bind))
        .map(|l| format!("-{}", l.bind))
        .collect();
    let routes = if old.routes == new.routes {
        "unchanged"
    } else {
        "changed"
    };
    let upstreams = if old.upstreams == new.upstreams {
        "unchanged"
    } else {
        "changed"
    };
    let certs = new.listeners.iter().filter(|l| l.tls.is_some()).count();
    let mut listeners = added;
    listeners.extend(removed);
    format!(
        "listeners {}, routes {routes} ({}), upstreams {upstreams} ({}), certificates reloaded for {certs} TLS listener(s)",
        if listeners.is_empty() {
            "unchanged".to_string()
        } else {
            listeners.join(" ")
        },
        new.routes.len(),
        new.upstreams.len()
    )
}

fn start_watcher(tx: mpsc::Sender<Msg>) -> Option<notify::RecommendedWatcher> {
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(ev) => {
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            for p in ev.paths {
                let _ = tx.send(Msg::FileChanged(p));
            }
        }
        Err(e) => tracing::warn!("file watcher: {e}"),
    };
    match notify::recommended_watcher(handler) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!("cannot start the file watcher: {e}; reload with SIGHUP");
            None
        }
    }
}

/// Watches the directories holding the files (as named and, for symlinks,
/// where they point): a directory watch survives the file being replaced by
/// rename, a retargeted symlink (certbot `live/`) and the `..data` swap of a
/// Kubernetes volume, which a watch on the file itself would not.
fn update_watches(
    w: &mut notify::RecommendedWatcher,
    dirs: &mut HashSet<PathBuf>,
    files: &[PathBuf],
) {
    let mut wanted = HashSet::new();
    for f in files {
        for p in [Some(f.clone()), std::fs::canonicalize(f).ok()]
            .into_iter()
            .flatten()
        {
            if let Some(d) = p.parent() {
                let d = if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                };
                wanted.insert(d);
            }
        }
    }
    for d in dirs.iter() {
        if !wanted.contains(d) {
            let _ = w.unwatch(d);
        }
    }
    for d in &wanted {
        if !dirs.contains(d)
            && let Err(e) = w.watch(d, notify::RecursiveMode::NonRecursive)
        {
            tracing::warn!("cannot watch {}: {e}", d.display());
        }
    }
    *dirs = wanted;
}

/// Whether a changed path concerns the configuration: one of the files, the
/// file a named symlink points to, or a `..data`-style link of a volume.
fn is_relevant(changed: &Path, names: &HashSet<std::ffi::OsString>) -> bool {
    changed
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("..") || names.contains(n))
}

/// File names whose change matters: each watched file's, and the name of
/// what it points to when it is a symlink (resolved again at every update,
/// since certbot moves `live/` links to new `archive/` files).
fn relevant_names(files: &[PathBuf]) -> HashSet<std::ffi::OsString> {
    let mut names = HashSet::new();
    for f in files {
        for p in [Some(f.clone()), std::fs::canonicalize(f).ok()]
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.file_name() {
                names.insert(n.to_os_string());
            }
        }
    }
    names
}

/// Switches to `user` (and its groups) after binding and reading keys, when
/// started as root.
fn drop_privileges(user: &str) -> Result<(), String> {
    use nix::unistd::{Uid, User, initgroups, setgid, setuid};
    if !Uid::effective().is_root() {
        tracing::info!("not running as root: user = {user:?} ignored");
        return Ok(());
    }
    let u = User::from_name(user)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {user}"))?;
    let name = std::ffi::CString::new(user).map_err(|e| e.to_string())?;
    initgroups(&name, u.gid).map_err(|e| format!("initgroups: {e}"))?;
    setgid(u.gid).map_err(|e| format!("setgid: {e}"))?;
    setuid(u.uid).map_err(|e| format!("setuid: {e}"))?;
    tracing::info!("running as user {user}");
    Ok(())
}

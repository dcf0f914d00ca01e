//! A worker thread: one `mio::Poll`, its own accepting sockets, a slab of
//! client connections, a slab of upstream connections with their idle pool,
//! a timer heap and an access-log buffer. It shares nothing mutable with the
//! other workers but the generation `ArcSwap` and atomic counters.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;

use super::generation::Generation;
use super::timer::Timers;
use super::token::Tok;
use crate::log::access;
use crate::net::buffer::BufPool;
use crate::net::listener::Bound;
use crate::net::transport::Transport;
use crate::proxy::conn::{self, Client, Verdict};
use crate::proxy::{Cx, FAST, GRACEFUL, Shared};
use crate::upstream::pool::{Pool, UpConn};

/// Housekeeping period: pool expiry, retrying accepts after EMFILE.
const TICK: Duration = Duration::from_millis(250);

struct WListener {
    bound: Arc<Bound>,
    sock: TcpListener,
    registered: bool,
}

pub struct Worker {
    index: usize,
    poll: Poll,
    shared: Arc<Shared>,
    gen_id: u64,
    max_connections: usize,
    listeners: Vec<WListener>,
    clients: Slab<Client>,
    ups: Slab<UpConn>,
    pool: Pool,
    timers: Timers,
    log: access::Buffer,
    next_id: u64,
    rr: Vec<usize>,
    rr_gen: u64,
    /// Graceful stop: when it started.
    draining: Option<Instant>,
    /// A listener hit an error other than WouldBlock (EMFILE): retry on tick.
    accept_retry: bool,
    /// Connections that yielded with work left: driven again next turn.
    again: Vec<usize>,
    bufs: BufPool,
}

/// Starts worker `index`; returns its thread and the waker the control
/// thread uses to tell it about a new generation or a stop.
pub fn spawn(index: usize, shared: Arc<Shared>) -> io::Result<(JoinHandle<()>, Arc<Waker>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), Tok::Waker.token())?);
    let log = access::Buffer::new(shared.sink.clone());
    let max_connections = shared.generation.load().config.global.max_connections;
    let worker = Worker {
        index,
        poll,
        shared,
        gen_id: 0,
        max_connections,
        listeners: Vec::new(),
        clients: Slab::with_capacity(1024),
        ups: Slab::with_capacity(256),
        pool: Pool::default(),
        timers: Timers::default(),
        log,
        next_id: 0,
        rr: Vec::new(),
        rr_gen: 0,
        draining: None,
        accept_retry: false,
        again: Vec::new(),
        bufs: BufPool::default(),
    };
    let handle = std::thread::Builder::new()
        .name(format!("torii-worker-{index}"))
        .spawn(move || worker.run())?;
    Ok((handle, waker))
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        self.apply_generation(Instant::now());
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let mut timeout = next_tick.saturating_duration_since(now);
            if let Some(t) = self.timers.next() {
                timeout = timeout.min(t.saturating_duration_since(now));
            }
            if !self.again.is_empty() {
                timeout = Duration::ZERO;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(worker = self.index, "poll failed: {e}");
                break;
            }
            let now = Instant::now();
            for ev in events.iter() {
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                match Tok::from_token(ev.token()) {
                    Tok::Waker => {}
                    Tok::Listener(i) => self.accept(i, now),
                    Tok::Client(k) => {
                        if let Some(c) = self.clients.get_mut(k) {
                            c.readable |= readable;
                            c.writable |= writable;
                            c.hup |= ev.is_read_closed() || ev.is_error();
                            self.drive(k, now);
                        }
                    }
                    Tok::Upstream(k) => {
                        let Some(u) = self.ups.get_mut(k) else {
                            continue;
                        };
                        u.readable |= readable;
                        u.writable |= writable;
                        u.hup |= ev.is_read_closed() || ev.is_error();
                        match u.owner {
                            Some(owner) => self.drive(owner, now),
                            None => {
                                // An idle pooled connection spoke: the server
                                // closed it (or broke the protocol). Drop it.
                                if !u.is_alive() {
                                    self.pool.remove(&mut self.ups, k);
                                }
                            }
                        }
                    }
                }
            }
            let again = std::mem::take(&mut self.again);
            for k in again {
                self.drive(k, now);
            }
            self.fire_timers(now);
            match self.shared.stop.load(Ordering::Acquire) {
                FAST => break,
                GRACEFUL if self.draining.is_none() => self.start_drain(now),
                _ => {}
            }
            if self.gen_id != self.shared.generation.load().id {
                self.apply_generation(now);
            }
            if now >= next_tick {
                next_tick = now + TICK;
                self.tick(now);
            }
            self.log.flush();
            if let Some(since) = self.draining {
                let limit = self.shared.generation.load().config.timeouts.shutdown;
                if self.clients.is_empty() || now.saturating_duration_since(since) >= limit {
                    if !self.clients.is_empty() {
                        tracing::warn!(
                            worker = self.index,
                            open = self.clients.len(),
                            "shutdown timeout: closing remaining connections"
                        );
                    }
                    break;
                }
            }
        }
        self.log.flush();
    }

    /// Drives client `key` with the worker's resources and applies the verdict.
    fn drive(&mut self, key: usize, now: Instant) {
        self.with_client(key, now, |c, cx| c.drive(cx));
    }

    fn with_client(
        &mut self,
        key: usize,
        now: Instant,
        f: impl FnOnce(&mut Client, &mut Cx<'_>) -> Verdict,
    ) {
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let mut cx = Cx {
            now,
            key,
            registry: self.poll.registry(),
            ups: &mut self.ups,
            pool: &mut self.pool,
            timers: &mut self.timers,
            shared: &self.shared,
            log: &mut self.log,
            bufs: &mut self.bufs,
            rr: &mut self.rr,
            rr_gen: &mut self.rr_gen,
            draining: self.draining.is_some(),
        };
        let verdict = f(c, &mut cx);
        if verdict == Verdict::Again {
            self.again.push(key);
        }
        match verdict {
            Verdict::Keep | Verdict::Again => {
                if c.scheduled.is_none_or(|s| c.deadline < s) {
                    cx.timers.schedule(c.deadline, key, c.id);
                    c.scheduled = Some(c.deadline);
                }
            }
            Verdict::Close => {
                c.teardown(&mut cx);
                self.clients.remove(key);
                if !self.listeners.iter().all(|l| l.registered) && self.draining.is_none() {
                    self.register_listeners();
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, key, id)) = self.timers.pop_due(now) {
            let Some(c) = self.clients.get_mut(key) else {
                continue;
            };
            if c.id != id || c.scheduled != Some(at) {
                continue;
            }
            c.scheduled = None;
            if now >= c.deadline {
                self.with_client(key, now, |c, cx| c.on_timeout(cx));
            } else {
                let d = c.deadline;
                self.timers.schedule(d, key, id);
                c.scheduled = Some(d);
            }
        }
    }

    fn accept(&mut self, index: usize, now: Instant) {
        loop {
            if self.clients.len() >= self.max_connections {
                // At the limit: stop accepting; the kernel queue holds new
                // connections until one of ours closes.
                self.deregister_listeners();
                return;
            }
            let Some(l) = self.listeners.get(index) else {
                return;
            };
            match l.sock.accept() {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    let bound = l.bound.clone();
                    let generation = self.shared.generation.load_full();
                    let tls = generation
                        .listener_index(&bound)
                        .and_then(|i| generation.listeners[i].tls.clone());
                    let io = match tls {
                        None => Transport::Plain(sock),
                        Some(cfg) => match rustls::ServerConnection::new(cfg) {
                            Ok(conn) => Transport::tls(sock, conn),
                            Err(e) => {
                                tracing::error!("cannot start TLS session: {e}");
                                continue;
                            }
                        },
                    };
                    self.next_id += 1;
                    let entry = self.clients.vacant_entry();
                    let key = entry.key();
                    let mut client = Client::new(self.next_id, io, peer, bound, generation, now);
                    if let Err(e) = conn::register(self.poll.registry(), &mut client.io, key) {
                        tracing::error!("cannot register client socket: {e}");
                        continue;
                    }
                    entry.insert(client);
                    self.drive(key, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    tracing::warn!(worker = self.index, "accept failed: {e}");
                    self.accept_retry = true;
                    return;
                }
            }
        }
    }

    /// Takes the published generation: keeps the listener sockets it still
    /// has, registers new ones, drops removed ones, trims the pool.
    fn apply_generation(&mut self, now: Instant) {
        let generation: Arc<Generation> = self.shared.generation.load_full();
        if generation.id == self.gen_id {
            return;
        }
        self.gen_id = generation.id;
        self.max_connections = generation.config.global.max_connections;
        self.deregister_listeners();
        let mut old = std::mem::take(&mut self.listeners);
        for l in &generation.listeners {
            if let Some(pos) = old.iter().position(|w| Arc::ptr_eq(&w.bound, &l.bound)) {
                self.listeners.push(old.swap_remove(pos));
                continue;
            }
            match l.bound.for_worker(self.index) {
                Ok(sock) => self.listeners.push(WListener {
                    bound: l.bound.clone(),
                    sock,
                    registered: false,
                }),
                Err(e) => {
                    tracing::error!(worker = self.index, addr = %l.bound.addr, "cannot use listener socket: {e}")
                }
            }
        }
        // `old` now holds removed listeners: dropping them closes this
        // worker's duplicate; the socket itself closes with the last
        // generation that has it.
        drop(old);
        if self.draining.is_none() {
            self.register_listeners();
        }
        let idle = generation.config.timeouts.upstream_idle;
        let addrs: Vec<_> = generation
            .config
            .upstreams
            .iter()
            .flat_map(|u| u.servers.iter().flat_map(|s| s.addrs.iter().copied()))
            .collect();
        self.pool
            .sweep(&mut self.ups, now, idle, |a| addrs.contains(a));
    }

    fn register_listeners(&mut self) {
        let registry = self.poll.registry();
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if !l.registered {
                match registry.register(&mut l.sock, Tok::Listener(i).token(), Interest::READABLE) {
                    Ok(()) => l.registered = true,
                    Err(e) => tracing::error!("cannot register listener {}: {e}", l.bound.addr),
                }
            }
        }
    }

    fn deregister_listeners(&mut self) {
        let registry = self.poll.registry();
        for l in &mut self.listeners {
            if l.registered {
                let _ = registry.deregister(&mut l.sock);
                l.registered = false;
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        let generation = self.shared.generation.load();
        let idle = generation.config.timeouts.upstream_idle;
        self.pool.sweep(&mut self.ups, now, idle, |_| true);
        if self.accept_retry && self.draining.is_none() {
            self.accept_retry = false;
            for i in 0..self.listeners.len() {
                self.accept(i, now);
            }
        }
    }

    fn start_drain(&mut self, now: Instant) {
        self.draining = Some(now);
        self.deregister_listeners();
        // Dropping our duplicates lets the sockets close (the control
        // thread drops the originals): new connections are refused.
        self.listeners.clear();
        let keys: Vec<usize> = self.clients.iter().map(|(k, _)| k).collect();
        for k in keys {
            if let Some(c) = self.clients.get_mut(k) {
                c.drain(now);
            }
            self.drive(k, now);
        }
    }
}

//! The per-worker pool of idle upstream connections, keyed by server address.
//!
//! Upstream sockets live in their own slab with a stable mio token, so moving
//! a connection in and out of the pool costs no `epoll_ctl`. An idle pooled
//! socket stays registered: when the server closes it, the event removes it
//! at once. Because that event can still be in flight when a request wants
//! the connection, [`Pool::take`] also peeks at the socket before handing it
//! out: a pooled connection the server already closed is never used for a
//! request (the fast 502 other proxies produced this way). The peek is a
//! syscall, so it is skipped for a connection idle for less than
//! [`PEEK_AFTER`]: servers close idle keep-alive connections after seconds,
//! not milliseconds, and in that window the close event itself is the check
//! (a server that closes right after responding without saying so is
//! covered by the retry of requests that are safe to repeat).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Idle time after which a pooled connection is peeked at before reuse.
pub const PEEK_AFTER: Duration = Duration::from_millis(500);

use mio::net::TcpStream;
use slab::Slab;

/// One upstream TCP connection.
#[derive(Debug)]
pub struct UpConn {
    pub sock: TcpStream,
    pub addr: SocketAddr,
    /// The client connection using it; `None` while idle in the pool.
    pub owner: Option<usize>,
    pub readable: bool,
    pub writable: bool,
    /// The server's FIN was seen by epoll: reads continue until EOF.
    pub hup: bool,
    /// Non-blocking connect not yet confirmed.
    pub connecting: bool,
    pub idle_since: Instant,
}

impl UpConn {
    pub fn new(sock: TcpStream, addr: SocketAddr, owner: usize, now: Instant) -> UpConn {
        UpConn {
            sock,
            addr,
            owner: Some(owner),
            readable: false,
            writable: false,
            hup: false,
            connecting: true,
            idle_since: now,
        }
    }

    /// Whether an idle connection is still usable: nothing to read and not
    /// closed. Unsolicited bytes also disqualify it (the stream is out of sync).
    pub fn is_alive(&self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.sock.peek(&mut b), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

#[derive(Debug, Default)]
pub struct Pool {
    idle: HashMap<SocketAddr, Vec<usize>>,
}

impl Pool {
    /// Hands out an idle live connection to `addr`, closing dead ones found
    /// on the way. Returns the slab key.
    pub fn take(
        &mut self,
        ups: &mut Slab<UpConn>,
        addr: SocketAddr,
        owner: usize,
        now: Instant,
    ) -> Option<usize> {
        let list = self.idle.get_mut(&addr)?;
        while let Some(key) = list.pop() {
            let alive = ups.get(key).is_some_and(|u| {
                !u.hup && (now.saturating_duration_since(u.idle_since) < PEEK_AFTER || u.is_alive())
            });
            if alive && let Some(u) = ups.get_mut(key) {
                u.owner = Some(owner);
                return Some(key);
            }
            if ups.contains(key) {
                ups.remove(key);
            }
        }
        None
    }

    /// Returns a connection to the pool, or closes it if the pool for that
    /// server already holds `max_idle`.
    pub fn put(&mut self, ups: &mut Slab<UpConn>, key: usize, max_idle: usize, now: Instant) {
        let Some(u) = ups.get_mut(key) else { return };
        let list = self.idle.entry(u.addr).or_default();
        if list.len() >= max_idle {
            ups.remove(key);
            return;
        }
        u.owner = None;
        u.idle_since = now;
        list.push(key);
    }

    /// Forgets `key` (the server closed it while idle) and closes it.
    pub fn remove(&mut self, ups: &mut Slab<UpConn>, key: usize) {
        if let Some(u) = ups.get(key) {
            if let Some(list) = self.idle.get_mut(&u.addr) {
                list.retain(|k| *k != key);
            }
            ups.remove(key);
        }
    }

    /// Closes connections idle for longer than `max_idle_time`, and every
    /// idle connection to a server `keep` rejects (removed by a reload).
    pub fn sweep(
        &mut self,
        ups: &mut Slab<UpConn>,
        now: Instant,
        max_idle_time: Duration,
        keep: impl Fn(&SocketAddr) -> bool,
    ) {
        self.idle.retain(|addr, list| {
            let keep_addr = keep(addr);
            list.retain(|&key| {
                let fresh = ups
                    .get(key)
                    .is_some_and(|u| now.saturating_duration_since(u.idle_since) < max_idle_time);
                if keep_addr && fresh {
                    true
                } else {
                    if ups.contains(key) {
                        ups.remove(key);
                    }
                    false
                }
            });
            !list.is_empty()
        });
    }

    pub fn idle_count(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }
}

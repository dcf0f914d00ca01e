//! Listening sockets.
//!
//! Each listener address is bound once per worker with SO_REUSEPORT (and
//! SO_REUSEADDR), so the kernel spreads new connections over the workers'
//! sockets by a hash of the connection, without a shared accept lock or a
//! thundering herd. A connection is queued on one worker's socket only, so
//! each of those sockets must stay open and accepted from for as long as the
//! address is configured.
//!
//! How reloads keep them: the sockets of one address belong to a [`Bound`],
//! shared by `Arc` between generations. `Generation::build` looks the address
//! up in the running generation and hands the very same `Bound` to the next
//! one, so no socket is closed, re-bound or re-listened and no connection
//! waiting in an accept queue is reset; only an address the running
//! generation lacks is bound anew (a failure rejects the reload). Workers
//! register a duplicate (`try_clone`: another descriptor for the same kernel
//! socket) of their own socket and keep it across generations for as long as
//! the generation still has that `Bound`.
//!
//! A listener removed by a reload is closed explicitly, not by dropping the
//! `Arc`: idle connections and in-flight requests keep older generations
//! (and so the `Bound`) alive, and a socket left open that way would stay in
//! the SO_REUSEPORT group, completing handshakes that nobody accepts. The
//! control thread calls [`Bound::close`] right after publishing the
//! generation; each worker drops its duplicate when it applies that
//! generation, and with the last descriptor the port refuses connections.
//! The number of workers (so of sockets per address) never changes without a
//! restart.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;

use socket2::{Domain, Protocol, Socket, Type};

/// The bound sockets of one listener address, one per worker.
#[derive(Debug)]
pub struct Bound {
    pub addr: SocketAddr,
    /// Behind a mutex only so that a graceful stop can close them while
    /// generations still refer to this `Bound`; workers lock it once, when
    /// they take their duplicate.
    sockets: Mutex<Vec<TcpListener>>,
}

/// Queue length for connections the workers have not accepted yet; the
/// kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

impl Bound {
    /// Binds `workers` SO_REUSEPORT sockets on `addr`.
    pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<Bound> {
        let mut sockets: Vec<TcpListener> = Vec::with_capacity(workers);
        let mut addr = addr;
        for _ in 0..workers.max(1) {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            if addr.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(BACKLOG)?;
            let socket: TcpListener = socket.into();
            // A port of 0 would give every worker its own port: pin the rest
            // to the one the kernel picked for the first socket.
            if addr.port() == 0 {
                addr = socket.local_addr()?;
            }
            sockets.push(socket);
        }
        Ok(Bound {
            addr,
            sockets: Mutex::new(sockets),
        })
    }

    /// A listener that owns no socket (`torii -t` binds nothing).
    pub fn unbound(addr: SocketAddr) -> Bound {
        Bound {
            addr,
            sockets: Mutex::new(Vec::new()),
        }
    }

    /// The socket of worker `index`, duplicated for that worker's poll.
    pub fn for_worker(&self, index: usize) -> io::Result<mio::net::TcpListener> {
        let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(socket) = sockets.get(index % sockets.len().max(1)) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "listener has no socket",
            ));
        };
        Ok(mio::net::TcpListener::from_std(socket.try_clone()?))
    }

    /// Closes the sockets (graceful stop, or the listener removed by a
    /// reload): once the workers have dropped their duplicates, new
    /// connections are refused.
    pub fn close(&self) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

//! The proxy proper: the per-connection state machine (`conn`) and the
//! request decisions it takes (`request`: routing, redirects, canned
//! responses). Everything a connection touches outside itself comes through
//! [`Cx`], borrowed from its worker for one `drive`.

pub mod conn;
mod exchange;
pub mod request;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64};
use std::time::Instant;

use arc_swap::ArcSwap;
use mio::Registry;
use slab::Slab;

use crate::log::access;
use crate::net::buffer::BufPool;
use crate::runtime::generation::Generation;
use crate::runtime::timer::Timers;
use crate::upstream::pool::{Pool, UpConn};

/// State shared by every worker and the control thread: the published
/// generation, the run state and counters. Nothing else is shared.
pub struct Shared {
    pub generation: ArcSwap<Generation>,
    pub stop: AtomicU8,
    pub requests: AtomicU64,
    pub sink: access::Sink,
}

pub const RUNNING: u8 = 0;
pub const GRACEFUL: u8 = 1;
pub const FAST: u8 = 2;

/// A worker's resources lent to one connection's `drive`.
pub struct Cx<'a> {
    pub now: Instant,
    /// Slab key of the client connection being driven.
    pub key: usize,
    pub registry: &'a Registry,
    pub ups: &'a mut Slab<UpConn>,
    pub pool: &'a mut Pool,
    pub timers: &'a mut Timers,
    pub shared: &'a Shared,
    pub log: &'a mut access::Buffer,
    pub bufs: &'a mut BufPool,
    /// Round-robin position per upstream of the worker's current generation.
    pub rr: &'a mut Vec<usize>,
    pub rr_gen: &'a mut u64,
    /// Graceful stop in progress: no more keep-alive.
    pub draining: bool,
}

impl Cx<'_> {
    /// The next server index for upstream `index` of `generation`.
    pub fn next_server(
        &mut self,
        generation: &Arc<Generation>,
        index: usize,
        servers: usize,
    ) -> usize {
        if *self.rr_gen != generation.id {
            *self.rr_gen = generation.id;
            self.rr.clear();
        }
        if self.rr.len() <= index {
            self.rr.resize(index + 1, 0);
        }
        let n = self.rr[index];
        self.rr[index] = n.wrapping_add(1);
        n % servers.max(1)
    }
}

//! A generation: the complete, immutable runtime state built from one
//! validated configuration (bound listeners, compiled routes, upstreams,
//! rustls configurations). Built off the workers, published with one
//! `ArcSwap::store`; a build that fails never exists and the old one stays.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, ConfigError, Pos};
use crate::net::listener::Bound;
use crate::route::table::RouteTable;
use crate::tls::{self, TlsShared};

pub struct Generation {
    pub id: u64,
    pub config: Config,
    pub routes: RouteTable,
    pub listeners: Vec<ListenerRt>,
    /// Warnings found while building (certificate expiry, key permissions).
    pub warnings: Vec<ConfigError>,
}

pub struct ListenerRt {
    pub bound: Arc<Bound>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Generation {
    /// Builds generation `id` from `config`. Listener addresses that `prev`
    /// already has keep their sockets; new ones are bound for `workers`
    /// workers (a bind failure fails the build). `bind` is false for
    /// `torii -t`, which must bind nothing: listeners then get no sockets.
    pub fn build(
        id: u64,
        config: Config,
        prev: Option<&Generation>,
        tls_shared: &TlsShared,
        workers: usize,
        bind: bool,
    ) -> Result<Generation, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let err = |pos: Pos, message: String| ConfigError {
            file: config.source.clone(),
            pos,
            message,
        };
        let mut old: HashMap<SocketAddr, Arc<Bound>> = HashMap::new();
        if let Some(prev) = prev {
            for l in &prev.listeners {
                old.insert(l.bound.addr, l.bound.clone());
            }
        }
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for (index, l) in config.listeners.iter().enumerate() {
            let tls = match &l.tls {
                None => None,
                Some(settings) => {
                    let hosts = listener_hosts(&config, index);
                    match tls::build(settings, &hosts, tls_shared) {
                        Ok(built) => {
                            for w in built.warnings {
                                warnings.push(err(settings.pos, w));
                            }
                            Some(built.config)
                        }
                        Err(e) => {
                            errors.push(err(settings.pos, e));
                            None
                        }
                    }
                }
            };
            let bound = if let Some(b) = old.get(&l.bind) {
                Some(b.clone())
            } else if !bind {
                Some(Arc::new(Bound::unbound(l.bind)))
            } else {
                match Bound::bind(l.bind, workers) {
                    Ok(b) => Some(Arc::new(b)),
                    Err(e) => {
                        errors.push(err(
                            l.pos,
                            format!("listener {}: cannot bind {}: {e}", l.name, l.bind),
                        ));
                        None
                    }
                }
            };
            if let Some(bound) = bound {
                listeners.push(ListenerRt { bound, tls });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let routes = RouteTable::build(&config.routes, config.listeners.len());
        Ok(Generation {
            id,
            config,
            routes,
            listeners,
            warnings,
        })
    }

    /// Index of the listener that owns `bound` in this generation, if it
    /// still exists (a removed listener's connections drain).
    pub fn listener_index(&self, bound: &Arc<Bound>) -> Option<usize> {
        self.listeners
            .iter()
            .position(|l| Arc::ptr_eq(&l.bound, bound))
    }
}

/// Host names for a self-signed certificate: the exact hosts of the routes
/// on this listener.
fn listener_hosts(config: &Config, listener: usize) -> Vec<String> {
    let mut hosts = Vec::new();
    for r in &config.routes {
        if !r.listeners.contains(&listener) {
            continue;
        }
        for h in &r.hosts {
            let name = match h {
                crate::config::HostPattern::Exact(n) => n.clone(),
                crate::config::HostPattern::Wildcard(s) => format!("*{s}"),
            };
            if !hosts.contains(&name) {
                hosts.push(name);
            }
        }
    }
    hosts
}

//! The compiled route table: most specific route wins, whatever the file order.

use crate::config::model::Route;

#[derive(Debug, Clone, Default)]
pub struct RouteTable {}

impl RouteTable {
    /// Compiles `routes` (already validated: no conflicts) for `listeners` listeners.
    pub fn build(routes: &[Route], listeners: usize) -> RouteTable {
        let _ = (routes, listeners);
        unimplemented!()
    }

    /// The index into `routes` of the route for this request, if any.
    /// `host` is lower-case without port (empty when the request has none),
    /// `path` is already normalised.
    pub fn lookup(&self, listener: usize, host: &str, path: &str) -> Option<usize> {
        let _ = (listener, host, path);
        unimplemented!()
    }
}

/// Pairs of route indices that no rule separates (same listener, same host
/// pattern, same path): configuration errors.
pub fn conflicts(routes: &[Route]) -> Vec<(usize, usize)> {
    let _ = routes;
    unimplemented!()
}

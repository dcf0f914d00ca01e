//! The compiled route table: most specific route wins, whatever the file order.
//!
//! Per listener, routes are grouped by host tier (exact names in a map,
//! wildcard suffixes longest first, host-less last); within a group, path
//! prefixes are sorted longest first so the first match is the most specific.
//! A lookup allocates nothing.

use std::collections::HashMap;

use crate::config::model::{HostPattern, Route};

#[derive(Debug, Clone)]
struct Entry {
    path: Box<str>,
    route: usize,
}

/// Routes of one host pattern (or of no host), longest path first.
#[derive(Debug, Clone, Default)]
struct Paths(Vec<Entry>);

impl Paths {
    fn push(&mut self, path: &str, route: usize) {
        self.0.push(Entry {
            path: path.into(),
            route,
        });
    }
    fn sort(&mut self) {
        // Longest first; equal lengths cannot both match one path, the index
        // only makes the order deterministic.
        self.0
            .sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.route.cmp(&b.route)));
    }
    fn find(&self, path: &str) -> Option<usize> {
        self.0
            .iter()
            .find(|e| prefix_matches(&e.path, path))
            .map(|e| e.route)
    }
}

#[derive(Debug, Clone, Default)]
struct ListenerRoutes {
    exact: HashMap<Box<str>, Paths>,
    /// `(".example.com", paths)`, longest suffix first.
    wildcard: Vec<(Box<str>, Paths)>,
    any_host: Paths,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    listeners: Vec<ListenerRoutes>,
}

/// A prefix ending in `/` matches what starts with it; another matches
/// itself or itself followed by `/` (segment boundary: `/webdav` matches
/// `/webdav/x`, not `/webdavx`). Like nginx `location /webdav/`, the prefix
/// `/webdav/` does not match `/webdav`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes()[prefix.len()] == b'/')
}

/// `*.example.com` (stored as `.example.com`) matches a name with at least
/// one more label in front, at any depth.
fn wildcard_matches(suffix: &str, host: &str) -> bool {
    host.len() > suffix.len() && host.ends_with(suffix)
}

impl RouteTable {
    /// Compiles `routes` (already validated: no conflicts) for `listeners` listeners.
    pub fn build(routes: &[Route], listeners: usize) -> RouteTable {
        let mut table = RouteTable {
            listeners: vec![ListenerRoutes::default(); listeners],
        };
        for (idx, route) in routes.iter().enumerate() {
            for &l in &route.listeners {
                // Validation guarantees the index; a stray one must not
                // take the process down, and cannot match anything anyway.
                let Some(lr) = table.listeners.get_mut(l) else {
                    continue;
                };
                if route.hosts.is_empty() {
                    lr.any_host.push(&route.path, idx);
                }
                for host in &route.hosts {
                    match host {
                        HostPattern::Exact(name) => lr
                            .exact
                            .entry(name.as_str().into())
                            .or_default()
                            .push(&route.path, idx),
                        HostPattern::Wildcard(suffix) => {
                            match lr.wildcard.iter_mut().find(|(s, _)| **s == **suffix) {
                                Some((_, paths)) => paths.push(&route.path, idx),
                                None => {
                                    let mut paths = Paths::default();
                                    paths.push(&route.path, idx);
                                    lr.wildcard.push((suffix.as_str().into(), paths));
                                }
                            }
                        }
                    }
                }
            }
        }
        for lr in &mut table.listeners {
            lr.exact.values_mut().for_each(Paths::sort);
            lr.wildcard.iter_mut().for_each(|(_, p)| p.sort());
            lr.wildcard
                .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
            lr.any_host.sort();
        }
        table
    }

    /// The index into `routes` of the route for this request, if any.
    /// `host` is lower-case without port (empty when the request has none),
    /// `path` is already normalised.
    ///
    /// Tiers are tried in order of specificity and a tier whose paths do not
    /// match falls through to the next: an exact-host route for `/api/` does
    /// not hide a host-less `/` route from other paths on that host. (nginx
    /// server blocks would not fall through; CONFIG.md ranks routes by
    /// specificity, host then path, and falling through is the reading that
    /// never answers 404 while a less specific route matches.)
    pub fn lookup(&self, listener: usize, host: &str, path: &str) -> Option<usize> {
        let lr = self.listeners.get(listener)?;
        if !host.is_empty() {
            if let Some(r) = lr.exact.get(host).and_then(|p| p.find(path)) {
                return Some(r);
            }
            for (suffix, paths) in &lr.wildcard {
                if wildcard_matches(suffix, host)
                    && let Some(r) = paths.find(path)
                {
                    return Some(r);
                }
            }
        }
        lr.any_host.find(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Action, HeaderEdits, Route};

    fn route(listeners: &[usize], hosts: &[&str], path: &str) -> Route {
        Route {
            listeners: listeners.to_vec(),
            hosts: hosts
                .iter()
                .map(|h| match h.strip_prefix('*') {
                    Some(suffix) => HostPattern::Wildcard(suffix.to_string()),
                    None => HostPattern::Exact(h.to_string()),
                })
                .collect(),
            path: path.to_string(),
            action: Action::Upstream(0),
            upstream_path: None,
            preserve_host: true,
            rewrite_location: true,
            request_headers: HeaderEdits::default(),
            response_headers: Vec::new(),
            pos: Default::default(),
        }
    }

    #[test]
    fn longest_prefix_wins_whatever_the_order() {
        let a = vec![route(&[0], &[], "/webdav/"), route(&[0], &[], "/")];
        let b = vec![route(&[0], &[], "/"), route(&[0], &[], "/webdav/")];
        let ta = RouteTable::build(&a, 1);
        let tb = RouteTable::build(&b, 1);
        assert_eq!(ta.lookup(0, "", "/webdav/x"), Some(0));
        assert_eq!(tb.lookup(0, "", "/webdav/x"), Some(1));
        assert_eq!(ta.lookup(0, "", "/other"), Some(1));
        assert_eq!(tb.lookup(0, "", "/other"), Some(0));
    }

    #[test]
    fn segment_boundary() {
        let t = RouteTable::build(&[route(&[0], &[], "/webdav"), route(&[0], &[], "/dav/")], 1);
        assert_eq!(t.lookup(0, "", "/webdav"), Some(0));
        assert_eq!(t.lookup(0, "", "/webdav/x"), Some(0));
        assert_eq!(t.lookup(0, "", "/webdavx"), None);
        assert_eq!(t.lookup(0, "", "/dav/"), Some(1));
        assert_eq!(t.lookup(0, "", "/dav/a"), Some(1));
        assert_eq!(
            t.lookup(0, "", "/dav"),
            None,
            "as nginx: /dav/ does not match /dav"
        );
    }

    #[test]
    fn host_tiers_exact_then_wildcard_then_any() {
        let routes = vec![
            route(&[0], &[], "/"),
            route(&[0], &["*.example.com"], "/"),
            route(&[0], &["erp.example.com"], "/"),
            route(&[0], &["*.b.example.com"], "/"),
        ];
        let t = RouteTable::build(&routes, 1);
        assert_eq!(t.lookup(0, "erp.example.com", "/x"), Some(2));
        assert_eq!(t.lookup(0, "shop.example.com", "/x"), Some(1));
        assert_eq!(
            t.lookup(0, "a.b.example.com", "/x"),
            Some(3),
            "longer wildcard wins"
        );
        assert_eq!(t.lookup(0, "x.y.example.com", "/x"), Some(1), "any depth");
        assert_eq!(
            t.lookup(0, "example.com", "/x"),
            Some(0),
            "wildcard needs a label"
        );
        assert_eq!(t.lookup(0, "other.org", "/x"), Some(0));
        assert_eq!(t.lookup(0, "", "/x"), Some(0));
    }

    #[test]
    fn host_tier_beats_longer_path_of_lower_tier() {
        let routes = vec![
            route(&[0], &[], "/webdav/"),
            route(&[0], &["erp.example.com"], "/"),
        ];
        let t = RouteTable::build(&routes, 1);
        assert_eq!(t.lookup(0, "erp.example.com", "/webdav/x"), Some(1));
        assert_eq!(t.lookup(0, "other", "/webdav/x"), Some(0));
    }

    #[test]
    fn unmatched_tier_falls_through() {
        let routes = vec![
            route(&[0], &["erp.example.com"], "/api/"),
            route(&[0], &["*.example.com"], "/static/"),
            route(&[0], &[], "/"),
        ];
        let t = RouteTable::build(&routes, 1);
        assert_eq!(t.lookup(0, "erp.example.com", "/api/x"), Some(0));
        assert_eq!(t.lookup(0, "erp.example.com", "/static/x"), Some(1));
        assert_eq!(t.lookup(0, "erp.example.com", "/other"), Some(2));
    }

    #[test]
    fn route_with_several_hosts_is_in_each_tier() {
        let routes = vec![
            route(&[0], &["erp.example.com", "*.example.com"], "/webdav/"),
            route(&[0], &[], "/"),
        ];
        let t = RouteTable::build(&routes, 1);
        assert_eq!(t.lookup(0, "erp.example.com", "/webdav/a"), Some(0));
        assert_eq!(t.lookup(0, "x.example.com", "/webdav/a"), Some(0));
        assert_eq!(t.lookup(0, "elsewhere.org", "/webdav/a"), Some(1));
    }

    #[test]
    fn listeners_are_separate() {
        let routes = vec![route(&[0], &[], "/"), route(&[1], &[], "/b/")];
        let t = RouteTable::build(&routes, 2);
        assert_eq!(t.lookup(0, "", "/b/x"), Some(0));
        assert_eq!(t.lookup(1, "", "/b/x"), Some(1));
        assert_eq!(t.lookup(1, "", "/x"), None);
        assert_eq!(t.lookup(2, "", "/x"), None, "unknown listener");
    }
}

//! Route validation: targets, hosts, paths and actions resolved to indices,
//! then the conflicts no matching rule can separate.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::super::checks::{
    check_template, host_pattern, is_field_value, is_token, normalize_path,
};
use super::super::file::RouteFile;
use super::super::model::*;
use super::{Ctx, DEFAULT_CONTENT_TYPE, DEFAULT_REDIRECT_STATUS, DEFAULT_RESPOND_STATUS};

impl Ctx<'_> {
    pub(super) fn route(
        &mut self,
        item: &Spanned<RouteFile>,
        listener_index: &HashMap<String, usize>,
        upstream_index: &HashMap<String, usize>,
        listener_count: usize,
    ) -> Option<Route> {
        let r = item.get_ref();
        let errors_before = self.errors.len();
        let listeners = match &r.listeners {
            None => (0..listener_count).collect(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    self.err(
                        list.span(),
                        "route: listeners must not be empty (omit it for every listener)",
                    );
                }
                let mut out = Vec::new();
                for name in list.get_ref() {
                    match listener_index.get(name.get_ref()) {
                        Some(&i) if !out.contains(&i) => out.push(i),
                        Some(_) => {}
                        None => self.err(
                            name.span(),
                            format!("route: unknown listener \"{}\"", name.get_ref()),
                        ),
                    }
                }
                out
            }
        };
        let hosts = match &r.hosts {
            None => Vec::new(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    self.err(
                        list.span(),
                        "route: hosts must not be empty (omit it for any host)",
                    );
                }
                let mut out = Vec::new();
                for h in list.get_ref() {
                    match host_pattern(h.get_ref()) {
                        Ok(p) if !out.contains(&p) => out.push(p),
                        Ok(_) => {}
                        Err(e) => self.err(h.span(), format!("route: {e}")),
                    }
                }
                out
            }
        };
        let path = match &r.path {
            None => "/".to_owned(),
            Some(p) => match normalize_path(p.get_ref()) {
                Some(n) => n,
                None => {
                    self.err(
                        p.span(),
                        format!(
                            "route: path \"{}\" must start with / and contain no query, fragment, space or bad %-escape",
                            p.get_ref()
                        ),
                    );
                    "/".to_owned()
                }
            },
        };
        let actions = [
            r.upstream.is_some(),
            r.redirect.is_some(),
            r.respond.is_some(),
        ];
        let action = match actions.iter().filter(|&&b| b).count() {
            0 => {
                self.err(
                    item.span(),
                    "route has no action: set one of upstream, redirect or respond",
                );
                None
            }
            1 => self.action(r, upstream_index),
            _ => {
                self.err(item.span(), "route has more than one action: keep only one of upstream, redirect or respond");
                None
            }
        };
        let is_upstream = r.upstream.is_some();
        let upstream_only = |name: &str, span: Option<Range<usize>>| {
            span.filter(|_| !is_upstream).map(|s| (name.to_owned(), s))
        };
        let misplaced: Vec<(String, Range<usize>)> = [
            upstream_only("upstream_path", r.upstream_path.as_ref().map(Spanned::span)),
            upstream_only("preserve_host", r.preserve_host.as_ref().map(Spanned::span)),
            upstream_only(
                "rewrite_location",
                r.rewrite_location.as_ref().map(Spanned::span),
            ),
            upstream_only(
                "request_headers",
                r.request_headers.as_ref().map(Spanned::span),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (name, span) in misplaced {
            self.err(
                span,
                format!("route: {name} only applies to routes with an upstream"),
            );
        }
        let upstream_path = match &r.upstream_path {
            Some(p) if is_upstream => match normalize_path(p.get_ref()) {
                Some(n) => Some(n),
                None => {
                    self.err(
                        p.span(),
                        format!("route: upstream_path \"{}\" must start with /", p.get_ref()),
                    );
                    None
                }
            },
            _ => None,
        };
        let mut request_headers = HeaderEdits::default();
        if let Some(rh) = &r.request_headers {
            let rh = rh.get_ref();
            if let Some(set) = &rh.set {
                request_headers.set = self.header_table(set, "request_headers.set");
            }
            if let Some(remove) = &rh.remove {
                for n in remove.get_ref() {
                    if is_token(n.get_ref()) {
                        let lower = n.get_ref().to_ascii_lowercase();
                        if !request_headers.remove.contains(&lower) {
                            request_headers.remove.push(lower);
                        }
                    } else {
                        self.err(
                            n.span(),
                            format!(
                                "request_headers.remove: \"{}\" is not a valid header name",
                                n.get_ref()
                            ),
                        );
                    }
                }
            }
        }
        let response_headers = r
            .response_headers
            .as_ref()
            .map(|h| self.header_table(h, "response_headers"))
            .unwrap_or_default();
        if self.errors.len() != errors_before {
            return None;
        }
        Some(Route {
            listeners,
            hosts,
            path,
            action: action?,
            upstream_path,
            preserve_host: r.preserve_host.as_ref().is_none_or(|b| *b.get_ref()),
            rewrite_location: r.rewrite_location.as_ref().is_none_or(|b| *b.get_ref()),
            request_headers,
            response_headers,
            pos: self.pos(item.span()),
        })
    }

    fn action(&mut self, r: &RouteFile, upstream_index: &HashMap<String, usize>) -> Option<Action> {
        if r.redirect.is_none()
            && let Some(s) = &r.status
        {
            self.err(
                s.span(),
                "route: status only applies to redirect (respond has its own status)",
            );
        }
        if let Some(u) = &r.upstream {
            return match upstream_index.get(u.get_ref()) {
                Some(&i) => Some(Action::Upstream(i)),
                None => {
                    self.err(
                        u.span(),
                        format!("route: unknown upstream \"{}\"", u.get_ref()),
                    );
                    None
                }
            };
        }
        if let Some(t) = &r.redirect {
            let status = match &r.status {
                None => DEFAULT_REDIRECT_STATUS,
                Some(s) => {
                    match *s.get_ref() {
                        n @ (301 | 302 | 303 | 307 | 308) => n as u16,
                        n => {
                            self.err(s.span(), format!("route: redirect status must be 301, 302, 303, 307 or 308, got {n}"));
                            return None;
                        }
                    }
                }
            };
            if let Err(e) = check_template(t.get_ref()) {
                self.err(t.span(), format!("route: redirect {e}"));
                return None;
            }
            return Some(Action::Redirect {
                template: t.get_ref().clone(),
                status,
            });
        }
        let resp = r.respond.as_ref()?.get_ref();
        let status = match &resp.status {
            None => DEFAULT_RESPOND_STATUS,
            Some(s) => match *s.get_ref() {
                n @ 200..=599 => n as u16,
                n => {
                    self.err(
                        s.span(),
                        format!("respond.status must be between 200 and 599, got {n}"),
                    );
                    return None;
                }
            },
        };
        let body = resp
            .body
            .as_ref()
            .map(|b| b.get_ref().clone())
            .unwrap_or_default();
        if matches!(status, 204 | 304) && !body.is_empty() {
            let span = resp.body.as_ref().map_or(0..0, Spanned::span);
            self.err(
                span,
                format!("respond.body must be empty with status {status}"),
            );
            return None;
        }
        let content_type = match &resp.content_type {
            None => DEFAULT_CONTENT_TYPE.to_owned(),
            Some(c) if is_field_value(c.get_ref()) && !c.get_ref().trim().is_empty() => {
                c.get_ref().trim().to_owned()
            }
            Some(c) => {
                self.err(
                    c.span(),
                    "respond.content_type must be a non-empty header value without line breaks",
                );
                return None;
            }
        };
        Some(Action::Respond {
            status,
            body,
            content_type,
        })
    }

    pub(super) fn unused(
        &mut self,
        upstreams: &[Upstream],
        listeners: &[Listener],
        routes: &[Route],
    ) {
        for (i, u) in upstreams.iter().enumerate() {
            if !routes.iter().any(|r| r.action == Action::Upstream(i)) {
                self.warn(
                    u.pos,
                    format!("upstream \"{}\" is not used by any route", u.name),
                );
            }
        }
        for (i, l) in listeners.iter().enumerate() {
            if !routes.iter().any(|r| r.listeners.contains(&i)) {
                self.warn(
                    l.pos,
                    format!(
                        "listener \"{}\" has no route: every request gets 404",
                        l.name
                    ),
                );
            }
        }
    }
}

/// Pairs `(earlier, later)` of routes that no matching rule separates: a
/// shared listener, the same path and a host pattern in common (or both
/// host-less). Validation owns this rule: it reports each clash at the later
/// route's position; `route::table` relies on there being none.
pub(super) fn route_conflicts(routes: &[Route]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (j, b) in routes.iter().enumerate() {
        for (i, a) in routes[..j].iter().enumerate() {
            let shared_listener = a.listeners.iter().any(|l| b.listeners.contains(l));
            let same_hosts = if a.hosts.is_empty() || b.hosts.is_empty() {
                a.hosts.is_empty() && b.hosts.is_empty()
            } else {
                a.hosts.iter().any(|h| b.hosts.contains(h))
            };
            if shared_listener && a.path == b.path && same_hosts {
                out.push((i, j));
                // One report per later route is enough to find the clash.
                break;
            }
        }
    }
    out
}

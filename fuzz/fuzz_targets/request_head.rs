//! Fuzzes request head parsing and the upstream head written from it: no
//! panic, limits honoured, and what we send upstream parses back with the
//! same framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii::config::model::HeaderEdits;
use torii::http::head::parse_request;
use torii::http::headers::{UpstreamRequest, write_upstream_request};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a limit so that 414/431 paths are reached too.
    let Some((&k, buf)) = data.split_first() else {
        return;
    };
    let max_head = 16 + usize::from(k) * 64;
    match parse_request(buf, max_head) {
        Ok(Some((req, n))) => {
            assert!(n <= max_head && n <= buf.len());
            assert_eq!(req.head.raw, &buf[..n]);
            let _ = (
                req.method(),
                req.target(),
                req.path(),
                req.query(),
                req.origin_form(),
            );
            let edits = HeaderEdits::default();
            let target = req.origin_form().into_owned();
            let up = UpstreamRequest {
                target: &target,
                client_ip: "2001:db8::1".parse().unwrap(),
                tls: k & 1 == 1,
                upstream_authority: "127.0.0.1:8080",
                preserve_host: k & 2 == 2,
                via: true,
                close: k & 4 == 4,
                upgrade: k & 8 == 8,
                edits: &edits,
                rewrite_destination: k & 16 == 16,
                route_prefix: "/",
                upstream_prefix: None,
            };
            let mut out = Vec::new();
            write_upstream_request(&mut out, &req, &up);
            // torii adds its forwarding fields, so a head already near the
            // parser's field-count limit may pass it on the way back: that
            // is the one refusal the round trip allows.
            if target != "*" {
                match parse_request(&out, usize::MAX) {
                    Err(e) if e.status == 431 => {}
                    r => {
                        let (again, m) = r
                            .expect("upstream head must parse")
                            .expect("upstream head must be complete");
                        assert_eq!(m, out.len());
                        assert_eq!(again.body, req.body);
                    }
                }
            }
        }
        Ok(None) => assert!(buf.len() < max_head),
        Err(e) => assert!(matches!(e.status, 400 | 414 | 431 | 505)),
    }
});

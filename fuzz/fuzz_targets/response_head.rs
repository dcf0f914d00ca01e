//! Fuzzes response head parsing and the client head written from it: no
//! panic, and what we send the client parses back with the same framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii::http::head::{ResponseBody, parse_response};
use torii::http::headers::{ClientResponse, LocationRewrite, write_client_response};

fuzz_target!(|data: &[u8]| {
    let Some((&k, buf)) = data.split_first() else {
        return;
    };
    let max_head = 16 + usize::from(k) * 64;
    let head_request = k & 1 == 1;
    match parse_response(buf, max_head, head_request) {
        Ok(Some((resp, n))) => {
            assert!(n <= max_head && n <= buf.len());
            assert!((100..=999).contains(&resp.status));
            if head_request {
                assert_eq!(resp.body, ResponseBody::None);
            }
            let set = [("X-Frame-Options".to_string(), "DENY".to_string())];
            let ctx = ClientResponse {
                via: true,
                close: k & 2 == 2,
                dechunk: false,
                upgrade: k & 4 == 4,
                location: Some(LocationRewrite {
                    upstream_authority: "127.0.0.1:8080",
                    public_scheme: "https",
                    public_host: "example.com",
                    route_prefix: "/app/",
                    upstream_prefix: Some("/"),
                }),
                set_headers: [&set, &[]],
                client_minor: 1,
            };
            let mut out = Vec::new();
            write_client_response(&mut out, &resp, &ctx);
            // Added fields (Via, set headers) may push a head near the
            // field-count limit past it: the one refusal allowed here.
            match parse_response(&out, usize::MAX, head_request) {
                Err(e) if e.reason.contains("too many header fields") => {}
                r => {
                    let (again, m) = r
                        .expect("client head must parse")
                        .expect("client head must be complete");
                    assert_eq!(m, out.len());
                    assert_eq!(again.status, resp.status);
                    if resp.body != ResponseBody::Close {
                        assert_eq!(again.body, resp.body);
                    }
                }
            }
        }
        Ok(None) => assert!(buf.len() < max_head),
        Err(_) => {}
    }
});

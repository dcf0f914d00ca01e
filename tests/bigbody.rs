//! Large bodies stream through with bounded memory: a 1 GiB upload and a
//! 1 GiB download, each byte counted, torii's peak RSS under 64 MiB.
//! `TORII_BIG_BODY_MIB` changes the size (default 1024).

mod common;

use std::io::Write;

use common::backend::pattern_byte;
use common::*;

const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;

fn big_body_len() -> u64 {
    let mib: u64 = std::env::var("TORII_BIG_BODY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    mib * 1024 * 1024
}

fn big_proxy(b: &Backend) -> Torii {
    Conf::new()
        .global("access_log = \"off\"")
        .limit("max_request_body = \"0\"")
        .upstream("b", &[b.addr()], "")
        .listener("http", "")
        .route("path = \"/\"\nupstream = \"b\"")
        .start()
}

#[test]
fn upload_of_a_huge_body_streams_with_bounded_memory() {
    let len = big_body_len();
    let b = Backend::start(|req| Reply::ok(format!("{}", req.body_len)));
    let t = big_proxy(&b);
    let mut c = Client::connect(t.addr());
    c.send(
        format!(
            "PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("send head");
    let block: Vec<u8> = (0..251u64 * 4096).map(pattern_byte).collect();
    let mut left = len;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        c.stream()
            .write_all(&block[..k])
            .expect("upload through torii");
        left -= k as u64;
    }
    let r = c.read_final().expect("response after the upload");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), len.to_string());
    let req = b.last();
    assert_eq!(req.body_len, len);
    assert!(
        req.body
            .iter()
            .enumerate()
            .all(|(i, &x)| x == pattern_byte(i as u64)),
        "upload content differs in its first MiB"
    );
    let mem = t.memory();
    eprintln!("torii peak RSS after {len} bytes: {} KiB", mem.hwm_kib);
    assert!(mem.hwm_kib > 0, "could not read torii's memory");
    assert!(
        mem.hwm_kib < PEAK_RSS_LIMIT_KIB,
        "torii peak RSS {} KiB",
        mem.hwm_kib
    );
}

#[test]
fn download_of_a_huge_body_streams_with_bounded_memory() {
    let len = big_body_len();
    let b = Backend::start(move |_| Reply::ok("").stream(len));
    let t = big_proxy(&b);
    let mut c = Client::connect(t.addr());
    c.send(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let head = c.read_head().expect("response head");
    assert_eq!(head.status, 200);
    let got = c
        .read_body_checked(&head, pattern_byte)
        .expect("download through torii");
    assert_eq!(got, len);
    let mem = t.memory();
    eprintln!("torii peak RSS after {len} bytes: {} KiB", mem.hwm_kib);
    assert!(mem.hwm_kib > 0, "could not read torii's memory");
    assert!(
        mem.hwm_kib < PEAK_RSS_LIMIT_KIB,
        "torii peak RSS {} KiB",
        mem.hwm_kib
    );
}

//! Fuzzes path normalisation: never panics, and the output is a fixed
//! point free of dot segments and `//`, always starting with `/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii::route::path::normalize;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(n) = normalize(s) {
        assert!(n.starts_with('/'));
        assert!(!n.contains("//"));
        assert!(!n.contains("/./") && !n.contains("/../"));
        assert!(!n.ends_with("/.") && !n.ends_with("/.."));
        assert_eq!(normalize(&n).as_deref(), Some(n.as_str()), "idempotent");
    }
});

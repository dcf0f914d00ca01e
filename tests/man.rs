//! The manual pages render: `man -l` formats them, and groff finds nothing to
//! warn about (a broken macro or escape would show up as a warning).

use std::path::Path;
use std::process::Command;

fn page(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("man")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn check(name: &str, must_contain: &[&str]) {
    let path = page(name);
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z", &path])
        .output()
        .expect("groff is installed (.ci/apt-core.txt: groff-base)");
    assert!(groff.status.success(), "groff failed on {name}");
    let warnings = String::from_utf8_lossy(&groff.stderr);
    assert!(
        warnings.trim().is_empty(),
        "groff warnings on {name}:\n{warnings}"
    );

    let man = Command::new("man")
        .args(["-l", &path])
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man is installed (.ci/apt-core.txt: man-db)");
    assert!(man.status.success(), "man -l failed on {name}");
    let text = String::from_utf8_lossy(&man.stdout);
    for needle in must_contain {
        assert!(text.contains(needle), "{name} rendered without {needle:?}");
    }
}

#[test]
fn torii_8_renders_with_man_l() {
    check(
        "torii.8",
        &[
            "SYNOPSIS",
            "SIGNALS",
            "EXIT STATUS",
            "self-signed",
            "reload",
        ],
    );
}

#[test]
fn torii_toml_5_renders_with_man_l() {
    check(
        "torii.toml.5",
        &[
            "[global]",
            "[timeouts]",
            "[limits]",
            "[[upstream]]",
            "[[listener]]",
            "[[route]]",
        ],
    );
}

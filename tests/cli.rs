//! The command line: `-t` (success message, `FILE:LINE:COL` errors, the
//! shipped `conf/` files), `cert self-signed`, `--version`, `--help`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// `(line, col)` of every `FILE:LINE:COL: message` line about `file`.
fn error_positions(output: &str, file: &Path) -> Vec<(usize, usize, String)> {
    let prefix = format!("{}:", file.display());
    output
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.parse().ok()?;
            let col = parts.next()?.parse().ok()?;
            let msg = parts.next()?.trim().to_string();
            Some((line, col, msg))
        })
        .collect()
}

fn write_conf(dir: &TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.join("torii.toml");
    fs::write(&p, text).expect("write config");
    p
}

fn test_config(path: &Path) -> Output {
    run_torii(&["-t", "-c", path.to_str().expect("utf-8 path")])
}

#[test]
fn test_flag_accepts_a_valid_file_and_says_so() {
    let dir = TempDir::new("cli");
    let text = Conf::new()
        .listener("http", "")
        .route("path = \"/\"\nrespond = { status = 200, body = \"ok\" }")
        .build();
    let path = write_conf(&dir, &text);
    let out = test_config(&path);
    assert_eq!(out.status.code(), Some(0), "{}", out.all());
    assert!(
        out.all().contains(&format!(
            "torii: configuration {} test is successful",
            path.display()
        )),
        "{}",
        out.all()
    );
}

#[test]
fn test_flag_binds_nothing() {
    let dir = TempDir::new("cli");
    let port = free_port();
    let _held = std::net::TcpListener::bind(("127.0.0.1", port)).expect("hold the port");
    let text = format!(
        "[global]\nworkers = 1\n\n[[listener]]\nname = \"http\"\nbind = \"127.0.0.1:{port}\"\n\n\
         [[route]]\npath = \"/\"\nrespond = {{ status = 200 }}\n"
    );
    let out = test_config(&write_conf(&dir, &text));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a port in use must not matter to -t: {}",
        out.all()
    );
}

#[test]
fn test_flag_reports_a_syntax_error_with_its_position() {
    let dir = TempDir::new("cli");
    let path = write_conf(&dir, "[global]\nworkers = \n");
    let out = test_config(&path);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    let errs = error_positions(&out.all(), &path);
    assert_eq!(errs.len(), 1, "{}", out.all());
    assert_eq!(errs[0].0, 2, "{}", out.all());
    assert!(errs[0].1 >= 1);
}

#[test]
fn test_flag_rejects_an_unknown_key_at_its_line() {
    let dir = TempDir::new("cli");
    let path = write_conf(
        &dir,
        "[global]\nwrokers = 1\n\n[[listener]]\nname = \"http\"\nbind = \"127.0.0.1:8080\"\n\n\
         [[route]]\npath = \"/\"\nrespond = { status = 200 }\n",
    );
    let out = test_config(&path);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    let errs = error_positions(&out.all(), &path);
    assert_eq!(errs.len(), 1, "{}", out.all());
    assert_eq!(errs[0].0, 2);
    assert!(errs[0].2.contains("wrokers"), "{}", out.all());
}

#[test]
fn test_flag_reports_every_error_one_line_each() {
    let dir = TempDir::new("cli");
    // Lines: route 1 spans 8..=10, route 2 spans 12..=14.
    let text = "[global]\nworkers = 1\n\n[[listener]]\nname = \"http\"\nbind = \"127.0.0.1:8080\"\n\n\
                [[route]]\npath = \"/a/\"\nupstream = \"nope1\"\n\n\
                [[route]]\npath = \"/b/\"\nupstream = \"nope2\"\n";
    let path = write_conf(&dir, text);
    let out = test_config(&path);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    let errs = error_positions(&out.all(), &path);
    assert_eq!(errs.len(), 2, "{}", out.all());
    assert!(
        (8..=10).contains(&errs[0].0),
        "first error line: {}",
        out.all()
    );
    assert!(
        (12..=14).contains(&errs[1].0),
        "second error line: {}",
        out.all()
    );
    assert!(
        errs[0].2.contains("nope1") && errs[1].2.contains("nope2"),
        "{}",
        out.all()
    );
}

#[test]
fn test_flag_rejects_a_missing_file() {
    let dir = TempDir::new("cli");
    let out = test_config(&dir.join("absent.toml"));
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
}

#[test]
fn every_shipped_conf_file_passes_the_test_flag() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let entries = fs::read_dir(&conf).expect("the conf/ directory");
    let mut checked = 0;
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // openerp.toml names real certificate files; covered with generated
        // ones by `openerp_example_passes_with_generated_certificates`.
        if !name.ends_with(".toml") || name == "openerp.toml" {
            continue;
        }
        let out = test_config(&p);
        assert_eq!(out.status.code(), Some(0), "{}: {}", p.display(), out.all());
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} conf files found in conf/");
}

/// Replaces the string value of every `key = "..."` (key as a whole word).
fn replace_string_values(text: &str, key: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let pat = format!("{key} = \"");
    while let Some(i) = rest.find(&pat) {
        let whole_word = i == 0
            || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        let start = i + pat.len();
        let Some(len) = rest[start..].find('"') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(if whole_word {
            value
        } else {
            &rest[start..start + len]
        });
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

fn self_signed(dir: &Path, hosts: &[&str]) -> Output {
    let mut args = vec!["cert", "self-signed"];
    for h in hosts {
        args.push("--host");
        args.push(h);
    }
    args.push("--out");
    args.push(dir.to_str().expect("utf-8 path"));
    run_torii(&args)
}

#[test]
fn openerp_example_passes_with_generated_certificates() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/openerp.toml");
    let text = fs::read_to_string(&src).expect("conf/openerp.toml");
    let dir = TempDir::new("cli");
    let out = self_signed(dir.path(), &["erp.example.com", "localhost"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.all());
    let crt = dir.join("server.crt");
    let key = dir.join("server.key");
    let text = replace_string_values(&text, "cert", crt.to_str().expect("utf-8"));
    let text = replace_string_values(&text, "key", key.to_str().expect("utf-8"));
    let path = write_conf(&dir, &text);
    let out = test_config(&path);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text, out.all());
}

#[test]
fn cert_self_signed_writes_a_private_key_and_a_p256_certificate_for_the_hosts() {
    let dir = TempDir::new("cli");
    let out = self_signed(dir.path(), &["a.example", "b.example"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.all());
    let key_meta = fs::metadata(dir.join("server.key")).expect("server.key written");
    assert_eq!(key_meta.permissions().mode() & 0o777, 0o600);
    let pem = fs::read(dir.join("server.crt")).expect("server.crt written");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM certificate");
    let cert = pem.parse_x509().expect("X.509 certificate");
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(sans, vec!["a.example".to_string(), "b.example".to_string()]);
    assert_eq!(
        cert.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
    );

    // The pair is usable in a configuration.
    let text = format!(
        "[global]\nworkers = 1\n\n[[listener]]\nname = \"https\"\nbind = \"127.0.0.1:8443\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n\n[[route]]\npath = \"/\"\nrespond = {{ status = 200 }}\n",
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    );
    let out = test_config(&write_conf(&dir, &text));
    assert_eq!(out.status.code(), Some(0), "{}", out.all());
}

#[test]
fn version_and_help_exit_zero() {
    let v = run_torii(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(v.stdout.contains(env!("CARGO_PKG_VERSION")), "{}", v.all());
    let h = run_torii(&["--help"]);
    assert_eq!(h.status.code(), Some(0));
    assert!(h.stdout.contains("-c"), "{}", h.all());
}

#[test]
fn replace_string_values_self_check() {
    let text = "tls = { cert = \"/a.crt\", key = \"/a.key\" }\nmonkey = \"x\"\n";
    let out = replace_string_values(&replace_string_values(text, "cert", "C"), "key", "K");
    assert_eq!(out, "tls = { cert = \"C\", key = \"K\" }\nmonkey = \"x\"\n");
}

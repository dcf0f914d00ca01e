//! Tests of certificate loading and checks, SNI selection, self-signed
//! generation and real in-memory handshakes against the built configuration.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConfig, ServerConnection,
};

use rustls_pki_types::pem::PemObject;

use super::*;
use crate::config::model::Pos;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A scratch directory removed on drop (no tempfile dependency for this).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "torii-tls-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Copies a fixture in with `mode`: git does not keep modes, so the
    /// checked-out fixtures cannot be trusted to be 0600.
    fn copy(&self, name: &str, mode: u32) -> PathBuf {
        let to = self.path(name);
        std::fs::copy(fixture(name), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
        to
    }
    fn write(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let to = self.path(name);
        std::fs::write(&to, contents).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files(cert: PathBuf, key: PathBuf) -> CertSource {
    CertSource::Files { cert, key }
}

fn settings(certificates: Vec<CertSource>, min_version: TlsVersion) -> TlsSettings {
    TlsSettings {
        certificates,
        min_version,
        pos: Pos::default(),
    }
}

fn shared() -> TlsShared {
    TlsShared::new().unwrap()
}

/// A pair with a private 0600 key, as an operator would install it.
fn pair(dir: &Scratch, cert: &str, key: &str) -> CertSource {
    files(dir.copy(cert, 0o644), dir.copy(key, 0o600))
}

fn build_one(source: CertSource) -> Result<Built, String> {
    build(&settings(vec![source], TlsVersion::V1_2), &[], &shared())
}

/// Writes an rcgen certificate valid from `from` to `until` (Unix seconds).
fn generated_pair(dir: &Scratch, names: &[&str], from: i64, until: i64) -> (PathBuf, PathBuf) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let g = selfsigned::generate(&names, from, until).unwrap();
    (
        dir.write("gen.crt", &g.cert_pem, 0o644),
        dir.write("gen.key", &g.key_pem, 0o600),
    )
}

fn loaded_names(source: CertSource) -> Vec<String> {
    let mut warnings = Vec::new();
    let CertSource::Files { cert, key } = source else {
        panic!("files only")
    };
    let loaded =
        certs::load_pair(&cert, &key, &crypto_provider(), now_secs(), &mut warnings).unwrap();
    loaded.names
}

// ---- key forms -------------------------------------------------------------

#[test]
fn rsa_pkcs1_key_loads() {
    let d = Scratch::new("rsa1");
    let built = build_one(pair(&d, "rsa.crt", "rsa_pkcs1.key")).unwrap();
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
}

#[test]
fn rsa_pkcs8_key_loads() {
    let d = Scratch::new("rsa8");
    assert!(build_one(pair(&d, "rsa.crt", "rsa_pkcs8.key")).is_ok());
}

#[test]
fn ec_sec1_key_loads() {
    let d = Scratch::new("sec1");
    assert!(build_one(pair(&d, "ec.crt", "ec_sec1.key")).is_ok());
}

#[test]
fn ec_pkcs8_key_loads() {
    let d = Scratch::new("ec8");
    assert!(build_one(pair(&d, "ec.crt", "ec_pkcs8.key")).is_ok());
}

#[test]
fn chain_keeps_leaf_then_ca() {
    let d = Scratch::new("chain");
    let CertSource::Files { cert, key } = pair(&d, "chain.crt", "leaf.key") else {
        unreachable!()
    };
    let loaded =
        certs::load_pair(&cert, &key, &crypto_provider(), now_secs(), &mut Vec::new()).unwrap();
    assert_eq!(loaded.key.cert.len(), 2);
    assert_eq!(loaded.names, ["chain.test", "localhost"]);
}

#[test]
fn names_come_from_san_dns_entries() {
    let d = Scratch::new("names");
    assert_eq!(
        loaded_names(pair(&d, "ec.crt", "ec_sec1.key")),
        ["ec.test", "*.wild.test"]
    );
}

#[test]
fn names_fall_back_to_lowercased_cn_without_san() {
    let d = Scratch::new("cn");
    assert_eq!(
        loaded_names(pair(&d, "cn_only.crt", "ec_sec1.key")),
        ["cn-only.test"]
    );
}

// ---- errors and warnings ---------------------------------------------------

#[test]
fn mismatched_key_error_names_both_files() {
    let d = Scratch::new("mismatch");
    let cert = d.copy("rsa.crt", 0o644);
    let key = d.copy("ec_sec1.key", 0o600);
    let err = build_one(files(cert.clone(), key.clone())).err().unwrap();
    assert_eq!(
        err,
        format!(
            "certificate {} does not match key {}",
            cert.display(),
            key.display()
        )
    );
}

#[test]
fn same_type_mismatched_key_is_refused() {
    let d = Scratch::new("mismatch2");
    let err = build_one(pair(&d, "ec.crt", "leaf.key")).err().unwrap();
    assert!(err.contains("does not match key"), "{err}");
}

#[test]
fn missing_file_error_names_it() {
    let d = Scratch::new("missing");
    let cert = d.copy("ec.crt", 0o644);
    let key = d.path("absent.key");
    let err = build_one(files(cert, key.clone())).err().unwrap();
    assert!(
        err.starts_with(&format!("cannot read {}: ", key.display())),
        "{err}"
    );
}

#[test]
fn key_file_without_key_says_so() {
    let d = Scratch::new("nokey");
    let cert = d.copy("ec.crt", 0o644);
    let err = build_one(files(cert.clone(), cert.clone())).err().unwrap();
    assert_eq!(err, format!("no private key in {}", cert.display()));
}

#[test]
fn encrypted_key_is_named_as_such() {
    let d = Scratch::new("encrypted");
    let cert = d.copy("rsa.crt", 0o644);
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                  DEK-Info: DES-EDE3-CBC,0123456789ABCDEF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    let pkcs8 =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    for (name, text) in [("legacy.key", legacy), ("pkcs8.key", pkcs8)] {
        let key = d.write(name, text, 0o600);
        let err = build_one(files(cert.clone(), key.clone())).err().unwrap();
        assert!(
            err.starts_with(&format!("private key in {} is encrypted", key.display())),
            "{err}"
        );
    }
}

#[test]
fn cert_file_without_certificate_says_so() {
    let d = Scratch::new("nocert");
    let key = d.copy("ec_sec1.key", 0o600);
    let err = build_one(files(key.clone(), key.clone())).err().unwrap();
    assert_eq!(err, format!("no certificate in {}", key.display()));
}

#[test]
fn expired_certificate_is_an_error_with_its_date() {
    let d = Scratch::new("expired");
    // 2020-01-01 .. 2024-01-01
    let (cert, key) = generated_pair(&d, &["old.test"], 1_577_836_800, 1_704_067_200);
    let err = build_one(files(cert.clone(), key)).err().unwrap();
    assert_eq!(
        err,
        format!("certificate {} expired on 2024-01-01", cert.display())
    );
}

#[test]
fn not_yet_valid_certificate_is_an_error() {
    let d = Scratch::new("future");
    let now = now_secs();
    let (cert, key) = generated_pair(&d, &["new.test"], now + 10 * 86_400, now + 400 * 86_400);
    let err = build_one(files(cert.clone(), key)).err().unwrap();
    assert!(
        err.starts_with(&format!("certificate {} is not yet valid", cert.display())),
        "{err}"
    );
}

#[test]
fn certificate_expiring_within_30_days_warns_with_date() {
    let d = Scratch::new("soon");
    let now = now_secs();
    let until = now + 10 * 86_400;
    let (cert, key) = generated_pair(&d, &["soon.test"], now - 86_400, until);
    let built = build_one(files(cert.clone(), key)).unwrap();
    let date = crate::log::clock::date_string(until - until.rem_euclid(86_400));
    assert_eq!(built.warnings.len(), 1, "{:?}", built.warnings);
    let w = &built.warnings[0];
    assert!(
        w.starts_with(&format!("certificate {} expires on {date}", cert.display())),
        "{w}"
    );
}

#[test]
fn group_readable_key_warns_and_private_key_does_not() {
    let d = Scratch::new("mode");
    let cert = d.copy("ec.crt", 0o644);
    let key = d.copy("ec_sec1.key", 0o644);
    let built = build_one(files(cert.clone(), key.clone())).unwrap();
    assert_eq!(built.warnings.len(), 1);
    assert!(built.warnings[0].contains(&format!(
        "key file {} is readable by group or others (mode 0644)",
        key.display()
    )));
    assert!(built.warnings[0].contains("chmod 600"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(build_one(files(cert, key)).unwrap().warnings.is_empty());
}

// ---- SNI -------------------------------------------------------------------

fn resolver_for(dir: &Scratch) -> (SniResolver, Vec<Arc<CertifiedKey>>) {
    let provider = crypto_provider();
    let mut keys = Vec::new();
    let mut entries = Vec::new();
    for (cert, key) in [
        ("rsa.crt", "rsa_pkcs1.key"),
        ("ec.crt", "ec_sec1.key"),
        ("chain.crt", "leaf.key"),
    ] {
        let CertSource::Files { cert, key } = pair(dir, cert, key) else {
            unreachable!()
        };
        let loaded = certs::load_pair(&cert, &key, &provider, now_secs(), &mut Vec::new()).unwrap();
        keys.push(loaded.key.clone());
        entries.push((loaded.key, loaded.names));
    }
    (SniResolver::new(entries).unwrap(), keys)
}

#[test]
fn sni_picks_exact_name() {
    let d = Scratch::new("sni1");
    let (r, keys) = resolver_for(&d);
    assert!(Arc::ptr_eq(r.lookup(Some("ec.test")), &keys[1]));
    assert!(Arc::ptr_eq(r.lookup(Some("chain.test")), &keys[2]));
    assert!(
        Arc::ptr_eq(r.lookup(Some("EC.Test")), &keys[1]),
        "SNI is case-insensitive"
    );
    assert!(
        Arc::ptr_eq(r.lookup(Some("ec.test.")), &keys[1]),
        "trailing dot ignored"
    );
}

#[test]
fn sni_wildcard_matches_exactly_one_label() {
    let d = Scratch::new("sni2");
    let (r, keys) = resolver_for(&d);
    assert!(Arc::ptr_eq(r.lookup(Some("a.wild.test")), &keys[1]));
    assert!(Arc::ptr_eq(r.lookup(Some("www.rsa.test")), &keys[0]));
    // Not the bare domain, not two labels deep: both get the default.
    assert!(Arc::ptr_eq(r.lookup(Some("wild.test")), &keys[0]));
    assert!(Arc::ptr_eq(r.lookup(Some("a.b.wild.test")), &keys[0]));
}

#[test]
fn sni_default_is_first_certificate() {
    let d = Scratch::new("sni3");
    let (r, keys) = resolver_for(&d);
    assert!(Arc::ptr_eq(r.lookup(None), &keys[0]));
    assert!(Arc::ptr_eq(r.lookup(Some("unknown.example")), &keys[0]));
}

// ---- handshakes ------------------------------------------------------------

fn client_config(
    roots: &[CertificateDer<'static>],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn ca_root() -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(fixture("ca.crt")).unwrap();
    vec![CertificateDer::from_pem_slice(&pem).unwrap()]
}

/// Runs a handshake entirely in memory by moving bytes between the two ends.
fn handshake(
    server: Arc<ServerConfig>,
    client: &Arc<ClientConfig>,
    name: &str,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c = ClientConnection::new(client.clone(), name)?;
    let mut s = ServerConnection::new(server)?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets()?;
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets()?;
        if !c.is_handshaking() && !s.is_handshaking() {
            // One more round delivers TLS 1.3 tickets to the client.
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets()?;
            return Ok((c, s));
        }
    }
    panic!("handshake did not finish");
}

fn chain_config(dir: &Scratch, min: TlsVersion, shared: &TlsShared) -> Arc<ServerConfig> {
    build(
        &settings(vec![pair(dir, "chain.crt", "leaf.key")], min),
        &[],
        shared,
    )
    .unwrap()
    .config
}

#[test]
fn handshake_tls13_succeeds_with_http11_alpn() {
    let d = Scratch::new("hs13");
    let server = chain_config(&d, TlsVersion::V1_2, &shared());
    let client = client_config(&ca_root(), &[&rustls::version::TLS13]);
    let (c, s) = handshake(server, &client, "chain.test").unwrap();
    assert_eq!(describe(&s).0, Some("TLSv1.3"));
    assert!(describe(&s).1.is_some_and(|n| n.starts_with("TLS13_")));
    assert_eq!(s.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(s.server_name(), Some("chain.test"));
}

#[test]
fn handshake_tls12_succeeds_with_ecdhe_aead() {
    let d = Scratch::new("hs12");
    let server = chain_config(&d, TlsVersion::V1_2, &shared());
    let client = client_config(&ca_root(), &[&rustls::version::TLS12]);
    let (_, s) = handshake(server, &client, "localhost").unwrap();
    assert_eq!(
        describe(&s),
        (
            Some("TLSv1.2"),
            Some("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
        )
    );
}

#[test]
fn tls13_only_config_refuses_tls12_client() {
    let d = Scratch::new("hs13only");
    let server = chain_config(&d, TlsVersion::V1_3, &shared());
    let client = client_config(&ca_root(), &[&rustls::version::TLS12]);
    assert!(handshake(server, &client, "chain.test").is_err());
}

#[test]
fn describe_is_empty_before_handshake() {
    let d = Scratch::new("desc");
    let s = ServerConnection::new(chain_config(&d, TlsVersion::V1_2, &shared())).unwrap();
    assert_eq!(describe(&s), (None, None));
}

#[test]
fn only_aead_ecdhe_suites_are_offered() {
    let p = crypto_provider();
    for suite in &p.cipher_suites {
        let name = suite.suite().as_str().unwrap();
        assert!(
            name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
            "{name} lacks forward secrecy"
        );
        assert!(
            name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"),
            "{name} is not AEAD"
        );
    }
}

#[test]
fn tickets_survive_a_rebuild() {
    let d = Scratch::new("resume");
    let shared = shared();
    let first = chain_config(&d, TlsVersion::V1_2, &shared);
    let second = chain_config(&d, TlsVersion::V1_2, &shared);
    assert!(Arc::ptr_eq(&first.ticketer, &second.ticketer));
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let client = client_config(&ca_root(), &[version]);
        let (_, s) = handshake(first.clone(), &client, "chain.test").unwrap();
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
        // A reload built `second`; the client's ticket from `first` works.
        let (_, s) = handshake(second.clone(), &client, "chain.test").unwrap();
        assert_eq!(
            s.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version:?}"
        );
    }
}

#[test]
fn several_certificates_are_chosen_by_sni_in_handshake() {
    let d = Scratch::new("hssni");
    let certs = vec![
        pair(&d, "ec.crt", "ec_sec1.key"),
        pair(&d, "chain.crt", "leaf.key"),
    ];
    let server = build(&settings(certs, TlsVersion::V1_2), &[], &shared())
        .unwrap()
        .config;
    // Only the CA is trusted, so success proves the chain certificate was served.
    let client = client_config(&ca_root(), &[&rustls::version::TLS13]);
    assert!(handshake(server.clone(), &client, "chain.test").is_ok());
    assert!(
        handshake(server, &client, "other.test").is_err(),
        "default is ec.crt, untrusted"
    );
}

// ---- self-signed -----------------------------------------------------------

#[test]
fn self_signed_listener_serves_localhost_and_hosts() {
    let shared = shared();
    let hosts = vec!["app.test".to_owned()];
    let built = build(
        &settings(vec![CertSource::SelfSigned], TlsVersion::V1_2),
        &hosts,
        &shared,
    )
    .unwrap();
    let key = shared.self_signed_key(&hosts).unwrap();
    let info = certs::inspect(&key.cert[0]).unwrap();
    assert_eq!(info.names, ["app.test", "localhost"]);
    let client = client_config(&[key.cert[0].clone()], &[&rustls::version::TLS13]);
    for name in ["localhost", "app.test", "127.0.0.1"] {
        assert!(
            handshake(built.config.clone(), &client, name).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn self_signed_certificate_is_kept_across_builds() {
    let shared = shared();
    let hosts = vec!["b.test".to_owned(), "a.test".to_owned()];
    let a = shared.self_signed_key(&hosts).unwrap();
    let b = shared
        .self_signed_key(&["a.test".to_owned(), "B.test".to_owned()])
        .unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn write_self_signed_writes_private_key_and_loadable_cert() {
    let d = Scratch::new("write");
    let out = d.path("out/nested");
    write_self_signed(
        &["erp.example.com".to_owned(), "192.0.2.7".to_owned()],
        &out,
    )
    .unwrap();
    let key = out.join("server.key");
    let cert = out.join("server.crt");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let mut warnings = Vec::new();
    let loaded =
        certs::load_pair(&cert, &key, &crypto_provider(), now_secs(), &mut warnings).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(loaded.names, ["erp.example.com"]);
    let pem = std::fs::read(&cert).unwrap();
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let san = x509.subject_alternative_name().unwrap().unwrap();
    assert!(san.value.general_names.iter().any(|g| matches!(
        g,
        x509_parser::extensions::GeneralName::IPAddress(ip) if *ip == [192, 0, 2, 7]
    )));
    let validity = x509.validity().not_after.timestamp() - now_secs();
    assert!(
        (360 * 86_400..=366 * 86_400).contains(&validity),
        "{validity}"
    );
}

#[test]
fn write_self_signed_tightens_an_existing_key_file() {
    let d = Scratch::new("rewrite");
    let key = d.write("server.key", "old", 0o644);
    write_self_signed(&["a.test".to_owned()], &d.0).unwrap();
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn write_self_signed_refuses_no_hosts() {
    let d = Scratch::new("nohosts");
    assert!(write_self_signed(&[], &d.0).is_err());
    assert!(write_self_signed(&["  ".to_owned()], &d.0).is_err());
    assert!(!d.path("server.key").exists());
}

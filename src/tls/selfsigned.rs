//! Self-signed ECDSA P-256 certificates (rcgen): in memory for
//! `tls = { self_signed = true }`, and written to disk by
//! `torii cert self-signed`. Development aids, not a CA.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::certs::TlsError;
use crate::log::clock::{civil_from_unix, now_secs};

/// Validity of generated certificates: a year, like the guide's `-days 365`;
/// started a day early so a client with a slightly slow clock accepts it.
const VALID_FOR_SECS: i64 = 365 * 86_400;
const BACKDATE_SECS: i64 = 86_400;

pub(crate) struct Generated {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: PrivateKeyDer<'static>,
    pub key_pem: String,
}

/// Generates a certificate whose SANs are `names` (IP literals become IP
/// SANs), valid from `not_before` to `not_after` (Unix seconds; whole days).
pub(crate) fn generate(
    names: &[String],
    not_before: i64,
    not_after: i64,
) -> Result<Generated, TlsError> {
    let fail = |e: rcgen::Error| {
        TlsError::Build(format!("cannot generate a self-signed certificate: {e}"))
    };
    let mut params = CertificateParams::new(names.to_vec()).map_err(fail)?;
    let (y, m, d) = ymd(not_before);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(not_after);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cn = names.first().map_or("torii", String::as_str);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok(Generated {
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        key_pem: key.serialize_pem(),
    })
}

/// The in-memory certificate of a `self_signed` listener: its route hosts
/// plus every name a developer uses for the local machine.
pub(crate) fn generate_for_listener(hosts: &[String]) -> Result<Generated, TlsError> {
    let mut names: Vec<String> = Vec::with_capacity(hosts.len() + 3);
    for name in hosts.iter().map(|h| h.trim().to_ascii_lowercase()).chain(
        ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(String::from),
    ) {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    let now = now_secs();
    generate(&names, now - BACKDATE_SECS, now + VALID_FOR_SECS)
}

/// `torii cert self-signed --host ... --out DIR`.
pub fn write_self_signed(hosts: &[String], dir: &Path) -> Result<(), String> {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        return Err("at least one --host is required".to_owned());
    }
    let now = now_secs();
    let generated =
        generate(&hosts, now - BACKDATE_SECS, now + VALID_FOR_SECS).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let key_path = dir.join("server.key");
    let cert_path = dir.join("server.crt");
    // The key is created 0600 so it is never readable by others, not even
    // between creation and a later chmod.
    write_file(&key_path, generated.key_pem.as_bytes(), 0o600)?;
    write_file(&cert_path, generated.cert_pem.as_bytes(), 0o644)?;
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // `mode` only applies to a new file; an existing one keeps its old mode.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)
}

/// rcgen takes dates as `time` values; going through year/month/day keeps
/// that crate out of torii's own dependencies.
fn ymd(secs: i64) -> (i32, u8, u8) {
    let c = civil_from_unix(secs);
    (i32::try_from(c.year).unwrap_or(9999), c.month, c.day)
}

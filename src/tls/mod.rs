//! TLS: certificates and keys from PEM, self-signed generation (rcgen), SNI
//! selection and the rustls `ServerConfig` of each TLS listener. The
//! handshake itself runs in the worker's event loop (`net::transport`).
//!
//! * `certs`: PEM parsing and the checks (key match, validity, key mode).
//! * `resolver`: the SNI certificate choice.
//! * `selfsigned`: rcgen certificates, in memory and on disk.
//!
//! Policy lives here: TLS 1.2 and 1.3 only, AEAD suites with ECDHE only,
//! ALPN `http/1.1` only, and resumption state ([`TlsShared`]) that outlives
//! every configuration built from it.

mod certs;
mod resolver;
mod selfsigned;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, SupportedProtocolVersion};

pub use certs::TlsError;
pub use selfsigned::write_self_signed;

use crate::config::model::{CertSource, TlsSettings, TlsVersion};
use crate::log::clock::now_secs;
use resolver::SniResolver;

/// TLS 1.2 sessions remembered server-side (session IDs) across all
/// listeners; about 1 KiB each. TLS 1.3 and most 1.2 clients use tickets.
const SESSION_CACHE_SIZE: usize = 4096;

/// State that outlives generations so that reloads keep session resumption
/// working: the ticket keys and the server-side session cache.
pub struct TlsShared {
    provider: Arc<CryptoProvider>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
    /// In-memory self-signed certificates by host list, so that a reload
    /// does not change the certificate a developer's browser has accepted.
    self_signed: Mutex<HashMap<Vec<String>, Arc<CertifiedKey>>>,
}

impl TlsShared {
    pub fn new() -> Result<TlsShared, String> {
        let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| format!("cannot create TLS ticket keys: {e}"))?;
        Ok(TlsShared {
            provider: Arc::new(crypto_provider()),
            ticketer,
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
            self_signed: Mutex::new(HashMap::new()),
        })
    }

    /// The crypto provider every configuration uses (clients in tests too).
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    fn self_signed_key(&self, hosts: &[String]) -> Result<Arc<CertifiedKey>, TlsError> {
        let mut hosts: Vec<String> = hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        hosts.sort();
        hosts.dedup();
        // A poisoned lock only means another build panicked mid-insert; the
        // map is still a valid cache.
        let mut cache = self
            .self_signed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = cache.get(&hosts) {
            return Ok(key.clone());
        }
        let generated = selfsigned::generate_for_listener(&hosts)?;
        let signing_key = self
            .provider
            .key_provider
            .load_private_key(generated.key_der)
            .map_err(|e| TlsError::Build(format!("cannot load the generated key: {e}")))?;
        let key = Arc::new(CertifiedKey::new(vec![generated.cert_der], signing_key));
        cache.insert(hosts, key.clone());
        Ok(key)
    }
}

/// aws-lc-rs's provider narrowed to what torii offers. Its defaults are already
/// AEAD with ECDHE only; listing the suites here keeps that a decision of
/// torii's rather than of the rustls version in Cargo.lock.
fn crypto_provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let base = rustls::crypto::aws_lc_rs::default_provider();
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        // X25519, P-256, P-384, then X25519MLKEM768 for clients offering it.
        kx_groups: base.kx_groups.clone(),
        ..base
    }
}

/// A built TLS listener configuration plus what `-t` should warn about.
pub struct Built {
    pub config: Arc<rustls::ServerConfig>,
    pub warnings: Vec<String>,
}

/// Loads every certificate and key of `settings`, checks each key matches its
/// certificate and the certificates have not expired, and builds the rustls
/// configuration (SNI resolver, TLS 1.2/1.3 AEAD+ECDHE suites only, ALPN
/// `http/1.1`, tickets and cache from `shared`). `self_signed_hosts` names
/// the hosts for a `self_signed` certificate. Errors name the file at fault.
pub fn build(
    settings: &TlsSettings,
    self_signed_hosts: &[String],
    shared: &TlsShared,
) -> Result<Built, String> {
    build_at(settings, self_signed_hosts, shared, now_secs()).map_err(|e| e.to_string())
}

fn build_at(
    settings: &TlsSettings,
    self_signed_hosts: &[String],
    shared: &TlsShared,
    now: i64,
) -> Result<Built, TlsError> {
    let mut warnings = Vec::new();
    let mut entries = Vec::with_capacity(settings.certificates.len());
    for source in &settings.certificates {
        match source {
            CertSource::Files { cert, key } => {
                let loaded = certs::load_pair(cert, key, &shared.provider, now, &mut warnings)?;
                entries.push((loaded.key, loaded.names));
            }
            CertSource::SelfSigned => {
                let key = shared.self_signed_key(self_signed_hosts)?;
                let names = match key.cert.first().map(certs::inspect) {
                    Some(Ok(info)) => info.names,
                    _ => Vec::new(),
                };
                entries.push((key, names));
            }
        }
    }
    let resolver = SniResolver::new(entries).ok_or_else(|| {
        TlsError::Build("a TLS listener needs at least one certificate".to_owned())
    })?;
    let versions: &[&'static SupportedProtocolVersion] = match settings.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(shared.provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Build(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    // torii speaks HTTP/1.x only; announcing it makes h2-first clients fall
    // back instead of guessing.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = shared.ticketer.clone();
    config.session_storage = shared.sessions.clone();
    Ok(Built {
        config: Arc::new(config),
        warnings,
    })
}

/// The negotiated protocol version ("TLSv1.2", "TLSv1.3") and cipher suite
/// name ("TLS13_AES_128_GCM_SHA256") of a connection, for the access log.
/// Both are `None` until the handshake has got that far.
pub fn describe(conn: &rustls::ServerConnection) -> (Option<&'static str>, Option<&'static str>) {
    let version = conn.protocol_version().map(|v| match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "unknown",
    });
    let suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str());
    (version, suite)
}

#[cfg(test)]
mod tests;

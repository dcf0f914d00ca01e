//! TLS: certificates and keys from PEM, self-signed generation (rcgen), SNI
//! selection and the rustls `ServerConfig` of each TLS listener. The
//! handshake itself runs in the worker's event loop (`net::transport`).

use std::path::Path;
use std::sync::Arc;

use crate::config::model::TlsSettings;

/// State that outlives generations so that reloads keep session resumption
/// working: the ticket keys and the server-side session cache.
pub struct TlsShared {}

impl TlsShared {
    pub fn new() -> Result<TlsShared, String> {
        unimplemented!()
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
    let _ = (settings, self_signed_hosts, shared);
    unimplemented!()
}

/// `torii cert self-signed`: writes `dir/server.key` (mode 0600) and
/// `dir/server.crt` (ECDSA P-256, SANs = `hosts`).
pub fn write_self_signed(hosts: &[String], dir: &Path) -> Result<(), String> {
    let _ = (hosts, dir);
    unimplemented!()
}

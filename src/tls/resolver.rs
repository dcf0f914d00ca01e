//! SNI certificate selection: the client's server name picks the certificate
//! whose names match, exactly first, then by a one-label wildcard; the first
//! certificate of the listener answers everything else (no SNI, unknown name).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug)]
pub(crate) struct SniResolver {
    default: Arc<CertifiedKey>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored under `example.com`: a name matches when what
    /// follows its first label is a key here.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl SniResolver {
    /// `entries` in configuration order, each with its lower-cased names.
    /// The first entry is the default; when two certificates claim the same
    /// name, the earlier one keeps it (as nginx picks the first server).
    pub(crate) fn new(entries: Vec<(Arc<CertifiedKey>, Vec<String>)>) -> Option<SniResolver> {
        let default = entries.first()?.0.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (key, names) in entries {
            for name in names {
                match name.strip_prefix("*.") {
                    Some(suffix) if !suffix.is_empty() => {
                        wildcard
                            .entry(suffix.to_owned())
                            .or_insert_with(|| key.clone());
                    }
                    _ => {
                        exact.entry(name).or_insert_with(|| key.clone());
                    }
                }
            }
        }
        Some(SniResolver {
            default,
            exact,
            wildcard,
        })
    }

    pub(crate) fn lookup(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return &self.default;
        };
        let name = name.trim_end_matches('.');
        // rustls hands SNI over as sent; most clients already send lower
        // case, so only allocate when they did not.
        let lowered;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = name.to_ascii_lowercase();
            lowered.as_str()
        } else {
            name
        };
        if let Some(key) = self.exact.get(name) {
            return key;
        }
        if let Some((_, rest)) = name.split_once('.')
            && let Some(key) = self.wildcard.get(rest)
        {
            return key;
        }
        &self.default
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.lookup(client_hello.server_name()).clone())
    }
}

//! Certificates and private keys from PEM files: parsing (chains; PKCS#8,
//! PKCS#1 and SEC1 keys; RSA and ECDSA), the checks `-t` and every build run
//! (key matches certificate, validity period, key file permissions) and the
//! names a certificate answers to for SNI. Choosing among certificates is
//! `resolver`'s job.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use crate::log::clock::date_string;

/// A certificate expiring sooner than this gets a warning.
const EXPIRY_WARNING_SECS: i64 = 30 * 86_400;

/// Why a certificate or key cannot be used. Every variant names the file at
/// fault, because the operator's next step is to open that file.
#[derive(Debug)]
pub enum TlsError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Pem {
        path: PathBuf,
        detail: String,
    },
    NoCertificate(PathBuf),
    NoKey(PathBuf),
    /// A passphrase-protected key: torii starts unattended, so it cannot ask.
    EncryptedKey(PathBuf),
    BadCertificate {
        path: PathBuf,
        detail: String,
    },
    BadKey {
        path: PathBuf,
        detail: String,
    },
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
    },
    Expired {
        cert: PathBuf,
        date: String,
    },
    NotYetValid {
        cert: PathBuf,
        date: String,
    },
    /// Self-signed generation (rcgen) or rustls configuration failed.
    Build(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::Pem { path, detail } => {
                write!(f, "cannot parse PEM in {}: {detail}", path.display())
            }
            TlsError::NoCertificate(path) => write!(f, "no certificate in {}", path.display()),
            TlsError::NoKey(path) => write!(f, "no private key in {}", path.display()),
            TlsError::EncryptedKey(path) => write!(
                f,
                "private key in {} is encrypted; remove the passphrase with \
                 `openssl pkey -in {} -out {}.nopass` and name that file instead",
                path.display(),
                path.display(),
                path.display()
            ),
            TlsError::BadCertificate { path, detail } => {
                write!(
                    f,
                    "cannot parse certificate in {}: {detail}",
                    path.display()
                )
            }
            TlsError::BadKey { path, detail } => {
                write!(f, "unusable private key in {}: {detail}", path.display())
            }
            TlsError::Mismatch { cert, key } => {
                write!(
                    f,
                    "certificate {} does not match key {}",
                    cert.display(),
                    key.display()
                )
            }
            TlsError::Expired { cert, date } => {
                write!(f, "certificate {} expired on {date}", cert.display())
            }
            TlsError::NotYetValid { cert, date } => {
                write!(
                    f,
                    "certificate {} is not yet valid (valid from {date})",
                    cert.display()
                )
            }
            TlsError::Build(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for TlsError {}

/// A certificate chain with its signing key, ready for the resolver.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// Lower-cased DNS names (`*.example.com` kept as written) from the
    /// leaf's subjectAltName, or its CN when it has no DNS name.
    pub names: Vec<String>,
}

/// Loads `cert` and `key`, checks them at time `now` (Unix seconds) and
/// appends non-fatal findings to `warnings`.
pub(crate) fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
    now: i64,
    warnings: &mut Vec<String>,
) -> Result<Loaded, TlsError> {
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::BadKey {
            path: key.to_path_buf(),
            detail: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        // The key type could not report its public key: nothing to compare,
        // the handshake will tell. aws-lc-rs and ring keys always can.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(TlsError::Mismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            });
        }
    }
    let leaf = certified
        .cert
        .first()
        .ok_or_else(|| TlsError::NoCertificate(cert.to_path_buf()))?;
    let info = inspect(leaf).map_err(|detail| TlsError::BadCertificate {
        path: cert.to_path_buf(),
        detail,
    })?;
    check_validity(cert, &info, now, warnings)?;
    check_key_mode(key, warnings);
    Ok(Loaded {
        key: Arc::new(certified),
        names: info.names,
    })
}

/// What torii needs from a leaf certificate.
#[derive(Debug)]
pub(crate) struct LeafInfo {
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
}

pub(crate) fn inspect(der: &CertificateDer<'_>) -> Result<LeafInfo, String> {
    let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for general in &san.value.general_names {
            if let GeneralName::DNSName(name) = general {
                push_name(&mut names, name);
            }
        }
    }
    // RFC 6125 ignores the CN once a DNS name is present; older certificates
    // (and the guide's `openssl req` ones) only have the CN.
    if names.is_empty() {
        for cn in x509.subject().iter_common_name() {
            if let Ok(name) = cn.as_str() {
                push_name(&mut names, name);
            }
        }
    }
    let validity = x509.validity();
    Ok(LeafInfo {
        names,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

fn push_name(names: &mut Vec<String>, name: &str) {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if !name.is_empty() && !names.contains(&name) {
        names.push(name);
    }
}

fn check_validity(
    cert: &Path,
    info: &LeafInfo,
    now: i64,
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    if info.not_after < now {
        return Err(TlsError::Expired {
            cert: cert.to_path_buf(),
            date: date_string(info.not_after),
        });
    }
    if info.not_before > now {
        return Err(TlsError::NotYetValid {
            cert: cert.to_path_buf(),
            date: date_string(info.not_before),
        });
    }
    if info.not_after - now < EXPIRY_WARNING_SECS {
        let days = (info.not_after - now) / 86_400;
        warnings.push(format!(
            "certificate {} expires on {} (in {days} days)",
            cert.display(),
            date_string(info.not_after)
        ));
    }
    Ok(())
}

/// A key readable by other users can be copied by any of them; say so, but
/// serve anyway (the file may be on a volume whose modes are not ours).
fn check_key_mode(key: &Path, warnings: &mut Vec<String>) {
    let Ok(meta) = std::fs::metadata(key) else {
        return;
    };
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        warnings.push(format!(
            "key file {} is readable by group or others (mode {mode:04o}); \
             make it readable by its owner only: chmod 600 {} \
             (and keep its directory, e.g. /etc/ssl/torii, at mode 0700 or 0710)",
            key.display(),
            key.display()
        ));
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(chain)
}

/// The first private key of any form (PKCS#8, PKCS#1, SEC1); a key file
/// that also holds the certificate (a combined PEM) works as well.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    // PKCS#8 "ENCRYPTED PRIVATE KEY" and the legacy "Proc-Type: 4,ENCRYPTED"
    // header (`openssl genrsa -des3`) would otherwise read as "no key" or
    // as a parse error that hides the real cause.
    if contains(&bytes, b"ENCRYPTED PRIVATE KEY") || contains(&bytes, b"Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::EncryptedKey(path.to_path_buf()));
    }
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoKey(path.to_path_buf())),
        Err(e) => Err(TlsError::Pem {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

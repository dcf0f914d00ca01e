//! Configuration: TOML file → validated [`model::Config`] in one conversion.
//!
//! `file` mirrors the TOML with spans, `validate` turns it into the model and
//! collects every error with its `FILE:LINE:COL`. Nothing here binds sockets
//! or reads certificates; that is the generation builder's job.

mod checks;
mod file;
pub mod model;
mod units;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::*;

/// One problem found in a configuration file, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.pos.line,
            self.pos.col,
            self.message
        )
    }
}

/// A successfully validated file, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigError>,
}

/// Reads, parses and validates `path`. Every error in the file is returned,
/// not only the first. Upstream host names are resolved here.
pub fn load(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        // The file has no position yet; 1:1 keeps the FILE:LINE:COL shape
        // that scripts parse.
        Err(e) => Err(vec![ConfigError {
            file: path.to_path_buf(),
            pos: Pos { line: 1, col: 1 },
            message: format!("cannot read configuration: {e}"),
        }]),
    }
}

/// Parses and validates configuration text (used by `load` and by tests).
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    match file::parse(text) {
        Ok(f) => validate::validate(path, text, f),
        Err(errors) => Err(validate::file_errors(path, text, errors)),
    }
}

/// The files whose change should trigger a reload when `global.watch` is on:
/// the configuration file itself and every certificate and key it names.
pub fn watched_files(config: &Config) -> Vec<PathBuf> {
    let mut out = vec![config.source.clone()];
    let certs = config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|t| &t.certificates);
    for c in certs {
        if let CertSource::Files { cert, key } = c {
            for p in [cert, key] {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;

//! Configuration: TOML file → validated [`model::Config`] in one conversion.
//!
//! `file` mirrors the TOML with spans, `validate` turns it into the model and
//! collects every error with its `FILE:LINE:COL`. Nothing here binds sockets
//! or reads certificates; that is the generation builder's job.

pub mod model;

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
    let _ = path;
    unimplemented!("config::load")
}

/// Parses and validates configuration text (used by `load` and by tests).
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    let _ = (path, text);
    unimplemented!("config::parse")
}

/// The files whose change triggers a reload: the configuration file and
/// every certificate and key it names.
pub fn watched_files(config: &Config) -> Vec<PathBuf> {
    let _ = config;
    unimplemented!()
}

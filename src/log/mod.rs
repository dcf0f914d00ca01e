//! Logging: the tracing subscriber for events (stderr) and the access log.
//!
//! Events go to stderr through one `fmt` layer whose `EnvFilter` sits behind
//! a reload layer, so `global.log_level` changes apply on reload without
//! restarting. The access log is [`access`].

pub mod access;
pub(crate) mod clock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

/// Changes the event log's filter at run time (reload of `log_level`).
#[derive(Clone)]
pub struct ReloadHandle {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl ReloadHandle {
    /// Applies a new filter such as `"info"` or `"torii=debug,warn"`; an
    /// invalid one is an error and the old filter stays.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let filter = parse_filter(level)?;
        self.handle
            .reload(filter)
            .map_err(|e| format!("cannot change log_level: {e}"))
    }

    /// The filter in force, as text (for "log_level changed" messages).
    pub fn current(&self) -> Option<String> {
        self.handle.with_current(|f| f.to_string()).ok()
    }
}

fn parse_filter(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(level.trim())
        .map_err(|e| format!("invalid log_level {level:?}: {e}"))
}

/// The stderr event subscriber with its reloadable filter, not yet installed.
fn subscriber(
    level: &str,
) -> Result<(impl tracing::Subscriber + Send + Sync, ReloadHandle), String> {
    let (filter, handle) = reload::Layer::new(parse_filter(level)?);
    let subscriber = tracing_subscriber::registry().with(filter).with(
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    );
    Ok((subscriber, ReloadHandle { handle }))
}

/// Installs the global event subscriber (stderr, filter `level`). Call once,
/// at start-up; a second call is an error.
pub fn init_tracing(level: &str) -> Result<ReloadHandle, String> {
    let (subscriber, handle) = subscriber(level)?;
    subscriber
        .try_init()
        .map_err(|e| format!("cannot install the event log: {e}"))?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_level_is_an_error() {
        assert!(parse_filter("info").is_ok());
        assert!(parse_filter("torii=debug,warn").is_ok());
        assert!(
            parse_filter("torii=loud")
                .unwrap_err()
                .contains("invalid log_level")
        );
    }

    #[test]
    fn set_level_changes_the_filter_and_keeps_it_on_error() {
        // Scoped rather than global: other tests may install their own.
        let (subscriber, handle) = subscriber("warn").unwrap();
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(tracing::Level::INFO));
            handle.set_level("debug").unwrap();
            assert!(tracing::enabled!(tracing::Level::DEBUG));
            assert!(handle.set_level("x=nonsense").is_err());
            assert_eq!(handle.current().as_deref(), Some("debug"));
        });
    }
}

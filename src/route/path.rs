//! Request-target path normalisation before matching (RFC 3986 §6.2.2):
//! percent-decoding of unreserved characters and removal of dot segments.

/// Normalises the path part (no query) of an origin-form request target.
/// Returns `None` when it cannot be normalised safely (the caller answers 400):
/// not starting with `/`, bad percent-encoding, NUL, or dot segments climbing
/// above the root are clamped at the root as RFC 3986 says (so not an error).
pub fn normalize(raw: &str) -> Option<String> {
    let _ = raw;
    unimplemented!()
}

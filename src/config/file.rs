//! The configuration file as written: serde structs mirroring the TOML, with
//! byte spans so that every later error can point at `FILE:LINE:COL`.
//!
//! This module only checks shape (known keys, value types). Meaning (ranges,
//! names that must resolve, defaults) is `validate`'s job. Each section item
//! is deserialised on its own so that one bad `[[route]]` does not hide the
//! errors of the next one.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// The whole document, one field per top-level section. Each item keeps the
/// span of its table header (`[[route]]`), which is where item-level errors
/// (a missing action, a conflict) are reported.
#[derive(Debug, Default)]
pub struct File {
    pub global: Option<Spanned<GlobalFile>>,
    pub timeouts: Option<Spanned<TimeoutsFile>>,
    pub limits: Option<Spanned<LimitsFile>>,
    pub upstreams: Vec<Spanned<UpstreamFile>>,
    pub listeners: Vec<Spanned<ListenerFile>>,
    pub routes: Vec<Spanned<RouteFile>>,
}

/// The top-level keys, kept beside `File` because `File` itself is
/// assembled by hand (see [`parse`]) rather than derived.
pub const SECTIONS: &[&str] = &[
    "global", "timeouts", "limits", "upstream", "listener", "route",
];

/// A shape error: where and what, before it is turned into `LINE:COL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub span: Range<usize>,
    pub message: String,
}

/// A value that may be written either as an integer or as a string:
/// `workers = 4` / `"auto"`, sizes `16384` / `"16KiB"`, and durations, which
/// accept an integer only to say that it lacks a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrStr {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                i64::try_from(v)
                    .map(IntOrStr::Int)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `{ "Name" = "value", ... }` table. TOML maps arrive sorted by key, so
/// file order is recovered from the key spans in `validate`.
pub type HeaderTable = Spanned<BTreeMap<Spanned<String>, Spanned<String>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalFile {
    pub workers: Option<Spanned<IntOrStr>>,
    pub pid_file: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub access_log: Option<Spanned<String>>,
    pub access_log_format: Option<Spanned<String>>,
    pub log_level: Option<Spanned<String>>,
    pub watch: Option<bool>,
    pub via: Option<bool>,
    pub max_connections: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsFile {
    pub client_header: Option<Spanned<IntOrStr>>,
    pub client_body: Option<Spanned<IntOrStr>>,
    pub client_keepalive: Option<Spanned<IntOrStr>>,
    pub client_send: Option<Spanned<IntOrStr>>,
    pub upstream_connect: Option<Spanned<IntOrStr>>,
    pub upstream_read: Option<Spanned<IntOrStr>>,
    pub upstream_send: Option<Spanned<IntOrStr>>,
    pub upstream_idle: Option<Spanned<IntOrStr>>,
    pub shutdown: Option<Spanned<IntOrStr>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_request_head: Option<Spanned<IntOrStr>>,
    pub max_request_body: Option<Spanned<IntOrStr>>,
    pub max_response_head: Option<Spanned<IntOrStr>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub name: Spanned<String>,
    pub servers: Spanned<Vec<Spanned<String>>>,
    pub keepalive: Option<bool>,
    pub max_idle: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub name: Spanned<String>,
    pub bind: Spanned<String>,
    pub tls: Option<Spanned<TlsFile>>,
    pub response_headers: Option<HeaderTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub self_signed: Option<Spanned<bool>>,
    pub certificates: Option<Spanned<Vec<Spanned<CertFile>>>>,
    pub min_version: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub listeners: Option<Spanned<Vec<Spanned<String>>>>,
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub path: Option<Spanned<String>>,
    pub upstream: Option<Spanned<String>>,
    pub redirect: Option<Spanned<String>>,
    pub status: Option<Spanned<i64>>,
    pub respond: Option<Spanned<RespondFile>>,
    pub upstream_path: Option<Spanned<String>>,
    pub preserve_host: Option<Spanned<bool>>,
    pub rewrite_location: Option<Spanned<bool>>,
    pub request_headers: Option<Spanned<RequestHeadersFile>>,
    pub response_headers: Option<HeaderTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondFile {
    pub status: Option<Spanned<i64>>,
    pub body: Option<Spanned<String>>,
    pub content_type: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestHeadersFile {
    pub set: Option<HeaderTable>,
    pub remove: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Parses `text` into [`File`]. A TOML syntax error is a single error (the
/// parser cannot go on); shape errors are collected across all items.
pub fn parse(text: &str) -> Result<File, Vec<FileError>> {
    let doc = DeTable::parse(text).map_err(|e| vec![toml_error(&e, text.len())])?;
    let mut file = File::default();
    let mut errors = Vec::new();
    for (key, value) in doc.into_inner() {
        match key.get_ref().as_ref() {
            "global" => file.global = item(value, &mut errors),
            "timeouts" => file.timeouts = item(value, &mut errors),
            "limits" => file.limits = item(value, &mut errors),
            "upstream" => file.upstreams = items(value, "upstream", &mut errors),
            "listener" => file.listeners = items(value, "listener", &mut errors),
            "route" => file.routes = items(value, "route", &mut errors),
            other => errors.push(FileError {
                span: key.span(),
                message: format!(
                    "unknown section `{other}`, expected one of {}",
                    SECTIONS
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

/// Deserialises one table, keeping the span of its header.
fn item<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<FileError>,
) -> Option<Spanned<T>> {
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(v) => Some(Spanned::new(span, v)),
        Err(e) => {
            errors.push(toml_error(&e, span.start));
            None
        }
    }
}

/// Deserialises every table of an array of tables (`[[route]]`).
fn items<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    section: &str,
    errors: &mut Vec<FileError>,
) -> Vec<Spanned<T>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(array) => array.into_iter().filter_map(|v| item(v, errors)).collect(),
        _ => {
            errors.push(FileError {
                span,
                message: format!(
                    "`{section}` must be an array of tables: write [[{section}]], not [{section}]"
                ),
            });
            Vec::new()
        }
    }
}

fn toml_error(e: &toml::de::Error, fallback: usize) -> FileError {
    FileError {
        span: e.span().unwrap_or(fallback..fallback),
        message: e.message().trim_end().to_owned(),
    }
}

/// Introspects the field names a derived `Deserialize` accepts, so tests can
/// check the documentation against the parser instead of a hand-kept list.
#[cfg(test)]
pub fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    #[derive(Debug)]
    enum Probe {
        Fields(&'static [&'static str]),
        Other,
    }
    impl fmt::Display for Probe {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{self:?}")
        }
    }
    impl std::error::Error for Probe {}
    impl de::Error for Probe {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Probe::Other
        }
    }
    struct Prober;
    impl<'de> de::Deserializer<'de> for Prober {
        type Error = Probe;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probe> {
            Err(Probe::Other)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Probe> {
            Err(Probe::Fields(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    match T::deserialize(Prober) {
        Err(Probe::Fields(fields)) => fields,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_lists_derived_fields() {
        assert_eq!(fields_of::<CertFile>(), &["cert", "key"]);
        assert!(fields_of::<RouteFile>().contains(&"rewrite_location"));
    }

    #[test]
    fn one_bad_item_does_not_hide_the_next() {
        let text = "[[route]]\nbogus = 1\n[[route]]\npath = 5\n";
        let errors = parse(text).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.contains("bogus"), "{errors:?}");
        assert_eq!(&text[errors[0].span.clone()], "bogus");
        assert_eq!(&text[errors[1].span.clone()], "5");
    }

    #[test]
    fn single_table_for_array_section_is_an_error() {
        let errors = parse("[route]\npath = \"/\"\n").unwrap_err();
        assert!(errors[0].message.contains("[[route]]"), "{errors:?}");
    }

    #[test]
    fn unknown_section_is_named() {
        let text = "[globals]\nworkers = 1\n";
        let errors = parse(text).unwrap_err();
        assert!(errors[0].message.contains("`globals`"));
        assert_eq!(&text[errors[0].span.clone()], "globals");
    }

    #[test]
    fn int_or_str_accepts_both() {
        let f = parse("[global]\nworkers = 3\n[limits]\nmax_request_body = \"1GiB\"\n").unwrap();
        let g = f.global.unwrap().into_inner();
        assert_eq!(g.workers.unwrap().into_inner(), IntOrStr::Int(3));
        let l = f.limits.unwrap().into_inner();
        assert_eq!(
            l.max_request_body.unwrap().into_inner(),
            IntOrStr::Str("1GiB".into())
        );
    }
}

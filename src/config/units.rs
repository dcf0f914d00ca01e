//! Durations (`"500ms"`, `"10s"`, `"5m"`, `"1h"`) and sizes (`16384`,
//! `"16KiB"`, `"100MiB"`, `"1KB"`, `"0"`) as written in the configuration.
//!
//! Pure text → value functions; the caller attaches positions to the errors.

use std::time::Duration;

use super::file::IntOrStr;

/// Parses a duration: a non-negative integer followed by `ms`, `s`, `m`,
/// `h` or `d`. Fractions and compound forms (`1m30s`) are refused so that
/// there is one obvious spelling of every value.
pub fn duration(value: &IntOrStr) -> Result<Duration, String> {
    let text = match value {
        IntOrStr::Str(s) => s.trim(),
        IntOrStr::Int(n) => {
            return Err(format!(
                "a duration needs a unit: write \"{n}s\" or \"{n}ms\", not {n}"
            ));
        }
    };
    let bad =
        || format!("invalid duration \"{text}\": expected e.g. \"500ms\", \"10s\", \"5m\", \"1h\"");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("a duration needs a unit: write \"{text}s\" or \"{text}ms\""))?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit.trim_start() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        _ => return Err(bad()),
    };
    // Deadlines are `Instant + duration`, which panics on overflow: a bound
    // far above any sensible timeout keeps every sum representable.
    match d {
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!("duration \"{text}\" is too large (at most 365d)")),
    }
}

/// The longest duration accepted anywhere in the file.
const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parses a size in bytes: an integer, or a string with an optional unit.
/// `KB`/`MB`/`GB`/`TB` are decimal, `KiB`/`MiB`/`GiB`/`TiB` binary; the
/// single letters `K`/`M`/`G` are binary, as in nginx. Units are
/// case-insensitive so `16kib` is not a surprise error.
pub fn size(value: &IntOrStr) -> Result<u64, String> {
    let text = match value {
        IntOrStr::Int(n) => {
            return u64::try_from(*n).map_err(|_| format!("size must not be negative, got {n}"));
        }
        IntOrStr::Str(s) => s.trim(),
    };
    let bad = || {
        format!("invalid size \"{text}\": expected bytes or e.g. \"16KiB\", \"100MiB\", \"1GiB\"")
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "tb" => 1000 * 1000 * 1000 * 1000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("size \"{text}\" is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> IntOrStr {
        IntOrStr::Str(text.to_owned())
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration(&s("500ms")), Ok(Duration::from_millis(500)));
        assert_eq!(duration(&s("10s")), Ok(Duration::from_secs(10)));
        assert_eq!(duration(&s("5m")), Ok(Duration::from_secs(300)));
        assert_eq!(duration(&s("1h")), Ok(Duration::from_secs(3600)));
        assert_eq!(duration(&s("2d")), Ok(Duration::from_secs(172_800)));
        assert_eq!(duration(&s("0s")), Ok(Duration::ZERO));
        assert_eq!(duration(&s(" 10 s ")), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn durations_past_a_year_are_refused() {
        assert_eq!(duration(&s("365d")), Ok(MAX_DURATION));
        assert!(duration(&s("366d")).unwrap_err().contains("too large"));
        assert!(
            duration(&s("18446744073709551615s"))
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations_without_unit_or_malformed_are_refused() {
        assert!(
            duration(&IntOrStr::Int(10))
                .unwrap_err()
                .contains("\"10s\"")
        );
        assert!(duration(&s("10")).unwrap_err().contains("unit"));
        for bad in ["", "s", "1.5s", "10x", "-1s", "1m30s", "ten seconds"] {
            assert!(duration(&s(bad)).is_err(), "{bad} accepted");
        }
        assert!(duration(&s("99999999999999999999h")).is_err());
    }

    #[test]
    fn sizes_plain_and_with_units() {
        assert_eq!(size(&IntOrStr::Int(16384)), Ok(16384));
        assert_eq!(size(&s("0")), Ok(0));
        assert_eq!(size(&s("100")), Ok(100));
        assert_eq!(size(&s("100B")), Ok(100));
        assert_eq!(size(&s("16KiB")), Ok(16 * 1024));
        assert_eq!(size(&s("100MiB")), Ok(100 * 1024 * 1024));
        assert_eq!(size(&s("1GiB")), Ok(1 << 30));
        assert_eq!(size(&s("1TiB")), Ok(1 << 40));
        assert_eq!(size(&s("1KB")), Ok(1000));
        assert_eq!(size(&s("2MB")), Ok(2_000_000));
        assert_eq!(size(&s("1GB")), Ok(1_000_000_000));
        assert_eq!(size(&s("64k")), Ok(64 * 1024));
        assert_eq!(size(&s("16 kib")), Ok(16 * 1024));
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(size(&IntOrStr::Int(-1)).unwrap_err().contains("negative"));
        for bad in ["", "KiB", "1.5MiB", "10 apples", "-5"] {
            assert!(size(&s(bad)).is_err(), "{bad} accepted");
        }
        assert!(
            size(&s("99999999999TiB"))
                .unwrap_err()
                .contains("too large")
        );
    }
}

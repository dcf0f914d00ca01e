//! Civil (proleptic Gregorian, UTC) calendar dates from Unix time, for access
//! log timestamps and certificate dates, without a date-time dependency.
//! Only conversions live here; no formatting policy.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// Seconds since the Unix epoch; times before it (a broken clock) count as 0
/// so that callers never have to handle a negative "now".
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn now_secs() -> i64 {
    unix_secs(SystemTime::now())
}

pub(crate) fn civil_from_unix(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: (rem % 60) as u8,
    }
}

/// `YYYY-MM-DD` (UTC), as errors and warnings about certificates print it.
pub(crate) fn date_string(secs: i64) -> String {
    let c = civil_from_unix(secs);
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}

/// Howard Hinnant's `civil_from_days`: exact for every day count, negative
/// ones included, with 400-year eras so no table or loop is needed.
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_1970_01_01() {
        assert_eq!(
            civil_from_unix(0),
            Civil {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
    }

    #[test]
    fn known_instants_convert_exactly() {
        // 2026-12-03T17:58:16Z
        assert_eq!(
            civil_from_unix(1_796_320_696),
            Civil {
                year: 2026,
                month: 12,
                day: 3,
                hour: 17,
                minute: 58,
                second: 16
            }
        );
        // Leap day and the day after.
        assert_eq!(date_string(951_782_400), "2000-02-29");
        assert_eq!(date_string(951_868_800), "2000-03-01");
        assert_eq!(date_string(1_704_067_199), "2023-12-31");
        assert_eq!(date_string(1_704_067_200), "2024-01-01");
        assert_eq!(date_string(-86_400), "1969-12-31");
    }
}

//! One format per kind of figure for what people read (issue 26, item 7): durations as `45s`,
//! `5m`, `3.5h`, `15.1d`; instants as `2026-12-07 01:27:03 UTC`. JSON, metrics and logs keep
//! seconds and RFC 3339 (`2026-12-07T01:27:00Z`), for programs.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Seconds in the largest unit that keeps the number short: `0.4s`, `45s`, `12m`, `3.5h`,
/// `15.1d` (a tenth of a second below 10 s, whole seconds and minutes, tenths of hours and
/// days). Negative values keep their sign.
pub fn duration(seconds: f64) -> String {
    if seconds < 0.0 {
        return format!("-{}", duration(-seconds));
    }
    if seconds < 10.0 {
        let tenths = format!("{seconds:.1}");
        return format!("{}s", tenths.strip_suffix(".0").unwrap_or(&tenths));
    }
    if seconds < 60.0 {
        format!("{seconds:.0}s")
    } else if seconds < 3_600.0 {
        format!("{:.0}m", seconds / 60.0)
    } else if seconds < 86_400.0 {
        format!("{:.1}h", seconds / 3_600.0)
    } else {
        format!("{:.1}d", seconds / 86_400.0)
    }
}

/// [`duration`] of a [`std::time::Duration`].
pub fn std_duration(d: std::time::Duration) -> String {
    duration(d.as_secs_f64())
}

/// An instant for people: `2026-12-07 01:27:03 UTC` (UTC, to the second).
pub fn instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Unix seconds as [`instant`]; `-` for a time out of range.
pub fn instant_secs(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map_or_else(|| "-".to_owned(), instant)
}

/// An RFC 3339 text (`2026-12-07T01:27:03Z`, as JSON carries it) or PostgreSQL's text of a
/// `timestamptz` (`2026-12-07 01:27:03.5+00`) for people, as [`instant`]; text that is no
/// such instant is returned as it is.
pub fn instant_text(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .or_else(|_| DateTime::parse_from_str(rfc3339, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map(|t| instant(t.with_timezone(&Utc)))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(rfc3339, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| instant(t.and_utc()))
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_largest_unit_that_keeps_them_short() {
        let got: Vec<String> = [
            0.0,
            0.44,
            3.0,
            9.96,
            45.0,
            300.0,
            3_540.0,
            12_600.0,
            1_307_720.0,
            -7_200.0,
        ]
        .into_iter()
        .map(duration)
        .collect();
        assert_eq!(
            got,
            ["0s", "0.4s", "3s", "10s", "45s", "5m", "59m", "3.5h", "15.1d", "-2.0h"]
        );
        assert_eq!(
            std_duration(std::time::Duration::from_secs(172_800)),
            "2.0d"
        );
    }

    #[test]
    fn instants_read_the_same_in_every_text_output() {
        let want = "2026-12-07 01:27:03 UTC";
        assert_eq!(instant_text("2026-12-07T01:27:03Z"), want);
        assert_eq!(instant_text("2026-12-07T02:27:03+01:00"), want);
        assert_eq!(instant_text("2026-12-07T01:27:03"), want);
        assert_eq!(instant_text("2026-12-07 01:27:03.25+00"), want);
        assert_eq!(instant_secs(1_796_606_823), want);
        assert_eq!(instant_text("not a time"), "not a time");
    }
}

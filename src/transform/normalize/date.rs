//! `db`: `YYYYMMDD` from the date forms a warehouse holds. Implausible dates (not on the calendar,
//! or a year outside 1900..=the current year, Meta's bounds) are dropped.

use chrono::{Datelike, NaiveDate};

use super::Outcome;

/// Countries that write numeric dates month first (`2/16/1997`): the US, its territories and the
/// few others that follow it (CLDR short date patterns).
const MONTH_FIRST: [&str; 12] = [
    "us", "pr", "gu", "as", "vi", "mp", "um", "ph", "fm", "mh", "pw", "bz",
];

/// Countries where both orders are common, so only an unambiguous day/month is accepted.
const EITHER_ORDER: [&str; 1] = ["ca"];

/// The first year Meta accepts in `db`.
const FIRST_YEAR: i32 = 1900;

/// `db`: `YYYYMMDD` from `YYYYMMDD`, ISO `YYYY-MM-DD` (also with `/` or `.`, and with a time after
/// it, as a PostgreSQL timestamp prints), `DD.MM.YYYY`, and `MM/DD/YYYY` or `DD/MM/YYYY` (also with
/// `-`) by the row's country. A day/month order that cannot be told is dropped.
pub(super) fn date_of_birth(value: &str, country: Option<&str>, current_year: i32) -> Outcome {
    let ymd = parse(value, country)
        .filter(|(year, _, _)| (FIRST_YEAR..=current_year).contains(year))
        .and_then(|(year, month, day)| NaiveDate::from_ymd_opt(year, month, day));
    match ymd {
        Some(date) => Outcome::Normalized(format!(
            "{:04}{:02}{:02}",
            date.year(),
            date.month(),
            date.day()
        )),
        None => Outcome::Dropped,
    }
}

/// Year, month and day as written, before any calendar check.
fn parse(value: &str, country: Option<&str>) -> Option<(i32, u32, u32)> {
    // A timestamp's time (`1990-12-31 00:00:00`, `1990-12-31T00:00:00Z`) is not part of the date.
    let date = value.split([' ', 'T']).next().unwrap_or(value);
    if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
        return Some((
            number(&date[..4])?,
            number(&date[4..6])?,
            number(&date[6..])?,
        ));
    }
    let separator = date.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
    let parts: Vec<&str> = date.split(separator).collect();
    let [first, second, third] = parts[..] else {
        return None;
    };
    if first.len() == 4 {
        return Some((number(first)?, short(second)?, short(third)?));
    }
    if third.len() != 4 {
        return None;
    }
    let (year, a, b) = (number(third)?, short(first)?, short(second)?);
    let month_first = if separator == '.' {
        false
    } else if country.is_some_and(|c| MONTH_FIRST.contains(&c)) {
        true
    } else if country.is_none() || country.is_some_and(|c| EITHER_ORDER.contains(&c)) {
        // Only a day above 12 (or the same number twice) tells the order.
        match (a > 12, b > 12) {
            (false, true) => true,
            (true, false) => false,
            _ if a == b => true,
            _ => return None,
        }
    } else {
        false
    };
    Some(if month_first {
        (year, a, b)
    } else {
        (year, b, a)
    })
}

/// A day or month: one or two ASCII digits.
fn short(part: &str) -> Option<u32> {
    (1..=2)
        .contains(&part.len())
        .then(|| number(part))
        .flatten()
}

/// ASCII digits as a number (no sign, no spaces).
fn number<T: std::str::FromStr>(part: &str) -> Option<T> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The year the tests pretend it is.
    const YEAR: i32 = 2026;

    /// Shorthand for normalizing in `country` in [`YEAR`].
    fn db(value: &str, country: Option<&str>) -> Option<String> {
        match date_of_birth(value, country, YEAR) {
            Outcome::Normalized(value) => Some(value),
            _ => None,
        }
    }

    /// Common formats become yyyymmdd.
    #[test]
    fn common_formats_become_yyyymmdd() {
        let cases = [
            ("19900101", None, "19900101"),
            ("1990-12-31", None, "19901231"),
            ("1990/12/31", None, "19901231"),
            ("1990-12-31 00:00:00", None, "19901231"),
            ("1990-12-31T00:00:00Z", None, "19901231"),
            ("1990-1-5", None, "19900105"),
            ("2/16/1997", Some("us"), "19970216"),
            ("01/02/2001", Some("us"), "20010102"),
            ("01-02-2001", Some("us"), "20010102"),
            ("01/02/2001", Some("gb"), "20010201"),
            ("16.02.1997", Some("us"), "19970216"),
            ("16.02.1997", None, "19970216"),
            ("2/16/1997", None, "19970216"),
            ("16/2/1997", None, "19970216"),
            ("16/2/1997", Some("ca"), "19970216"),
            ("5/5/1997", None, "19970505"),
        ];
        for (raw, country, want) in cases {
            assert_eq!(
                db(raw, country).as_deref(),
                Some(want),
                "{raw} in {country:?}"
            );
        }
    }

    /// Implausible or ambiguous dates are dropped.
    #[test]
    fn implausible_or_ambiguous_dates_are_dropped() {
        let cases = [
            ("123456", None),
            ("1899-12-31", None),
            ("2027-01-01", None),
            ("1990-02-30", None),
            ("1990-13-01", None),
            ("13/13/1990", Some("us")),
            ("01/02/2001", None),
            ("01/02/2001", Some("ca")),
            ("1/2/90", Some("us")),
            ("1990-12", None),
            ("+1990-12-31", None),
            ("1990-12-31-01", None),
            ("yesterday", None),
        ];
        for (raw, country) in cases {
            assert_eq!(db(raw, country), None, "{raw} in {country:?}");
        }
    }

    /// The current year is the last plausible one.
    #[test]
    fn the_current_year_is_the_last_plausible_one() {
        assert_eq!(db("2026-11-28", None).as_deref(), Some("20261128"));
        assert_eq!(db("1900-01-01", None).as_deref(), Some("19000101"));
    }
}

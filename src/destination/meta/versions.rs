//! The Graph API versions ocapi knows, with the day each stops working, and how much of its
//! life the configured one has left (docs/meta-side.md, "The API version's remaining life").
//!
//! The Conversions API follows the Graph API's lifetimes, not the Marketing API's shorter ones
//! (✅ https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api): a
//! version stops working on the day the Graph API changelog's versions table gives as
//! "available until" (✅ https://developers.facebook.com/docs/graph-api/changelog). A version
//! whose end Meta has not published yet is given the end Meta's rule implies, marked
//! `estimated`: a version lives two years after the next one is released, and at least two
//! years after its own release (✅ https://developers.facebook.com/docs/apps/versions).
//! Update [`VERSIONS`] with each ocapi release.

use chrono::{DateTime, NaiveDate, Utc};

/// How long before a version's end `check` and every run warn.
pub const WARN_DAYS: i64 = 90;

/// Where the dates of [`VERSIONS`] come from.
pub const SOURCE: &str = "https://developers.facebook.com/docs/graph-api/changelog (versions \
                          table, read November 2026)";

/// One Graph API version and its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphVersion {
    /// `vNN.0`.
    pub version: &'static str,
    /// The day it was released.
    pub released: NaiveDate,
    /// The last day it works (its "available until" date): it stops at the start of the next.
    pub sunset: NaiveDate,
    /// Meta has not published `sunset` yet: it is the date Meta's rule implies.
    pub estimated: bool,
}

/// A date known at compile time (every entry below is a valid date).
const fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => NaiveDate::MIN,
    }
}

/// The versions ocapi knows, oldest first. v16.0 is kept (its end, May 14, 2025, is published)
/// so that a configuration still naming it is told where to go. Versions v17.0–v22.0 are left
/// out: ocapi was never tested with them, and a version it does not know is warned about.
pub const VERSIONS: [GraphVersion; 6] = [
    GraphVersion {
        version: "v16.0",
        released: day(2023, 2, 2),
        sunset: day(2025, 5, 14),
        estimated: false,
    },
    GraphVersion {
        version: "v23.0",
        released: day(2025, 5, 29),
        sunset: day(2027, 10, 8),
        estimated: false,
    },
    GraphVersion {
        version: "v24.0",
        released: day(2025, 10, 8),
        sunset: day(2028, 2, 18),
        estimated: false,
    },
    GraphVersion {
        version: "v25.0",
        released: day(2026, 2, 18),
        sunset: day(2028, 7, 29),
        estimated: false,
    },
    // Two years after v27.0's release (Nov 4, 2026), by Meta's rule; not yet published.
    GraphVersion {
        version: "v26.0",
        released: day(2026, 7, 29),
        sunset: day(2028, 11, 4),
        estimated: true,
    },
    // At least two years after its own release; not yet published.
    GraphVersion {
        version: "v27.0",
        released: day(2026, 11, 4),
        sunset: day(2028, 11, 4),
        estimated: true,
    },
];

/// The newest version ocapi knows: the one to move to.
pub fn newest() -> &'static GraphVersion {
    &VERSIONS[VERSIONS.len() - 1]
}

/// The entry of `version`, if ocapi knows it.
pub fn lookup(version: &str) -> Option<&'static GraphVersion> {
    VERSIONS.iter().find(|entry| entry.version == version)
}

/// Where a version stands today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// More than [`WARN_DAYS`] left.
    Fine,
    /// Within [`WARN_DAYS`] of its end: warn.
    Ending,
    /// Past its end: `check` fails (exit 2) and runs refuse to start.
    Ended,
    /// Not in [`VERSIONS`]: its end is unknown.
    Unknown,
}

/// The configured version's remaining life at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionLife {
    /// The configured version.
    pub version: String,
    /// Its table entry.
    pub entry: Option<&'static GraphVersion>,
    /// Seconds until the end of its last day (negative once past); `None` when unknown.
    pub seconds_left: Option<i64>,
}

impl VersionLife {
    /// `version`'s life seen at `now`.
    pub fn of(version: &str, now: DateTime<Utc>) -> Self {
        let entry = lookup(version);
        let seconds_left = entry.map(|entry| {
            let end = (entry.sunset + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc();
            (end - now).num_seconds()
        });
        Self {
            version: version.to_owned(),
            entry,
            seconds_left,
        }
    }

    /// Where it stands.
    pub fn state(&self) -> VersionState {
        match self.seconds_left {
            None => VersionState::Unknown,
            Some(left) if left <= 0 => VersionState::Ended,
            Some(left) if left <= WARN_DAYS * 86_400 => VersionState::Ending,
            Some(_) => VersionState::Fine,
        }
    }

    /// The value of `ocapi_api_version_sunset_seconds`: seconds left, negative once past, NaN
    /// for a version ocapi does not know (so that no alert rule fires on a guess).
    pub fn gauge(&self) -> f64 {
        self.seconds_left.map_or(f64::NAN, |left| left as f64)
    }

    /// One line for people: the version, its end (with the source) and what to do.
    pub fn describe(&self) -> String {
        let newest = newest().version;
        let Some(entry) = self.entry else {
            return format!(
                "api version {}: ocapi does not know when it stops working (it knows {}); use \
                 {newest}, the newest it supports",
                self.version,
                VERSIONS.map(|v| v.version).join(", ")
            );
        };
        let end = if entry.estimated {
            format!(
                "{} (estimated by Meta's two-year rule, not yet published)",
                entry.sunset
            )
        } else {
            entry.sunset.to_string()
        };
        let days = self.seconds_left.unwrap_or_default().div_euclid(86_400);
        match self.state() {
            VersionState::Ended => format!(
                "api version {} stopped working after {end} ({SOURCE}): set \
                 `destination.api_version = \"{newest}\"`, the newest version ocapi supports",
                self.version
            ),
            VersionState::Ending => format!(
                "api version {} stops working after {end}, in {days} days ({SOURCE}): move to \
                 {newest}, the newest version ocapi supports (`destination.api_version`)",
                self.version
            ),
            VersionState::Fine | VersionState::Unknown => format!(
                "api version {} works until {end} ({days} days left)",
                self.version
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_order_and_valid() {
        for pair in VERSIONS.windows(2) {
            assert!(pair[0].released < pair[1].released, "{pair:?}");
            assert!(pair[0].sunset <= pair[1].sunset, "{pair:?}");
        }
        for entry in VERSIONS {
            assert_ne!(entry.sunset, NaiveDate::MIN, "{entry:?}");
            assert!(entry.sunset > entry.released, "{entry:?}");
        }
        assert_eq!(newest().version, "v27.0");
    }

    #[test]
    fn states_follow_the_days_left() {
        let at = |date: &str| {
            date.parse::<NaiveDate>()
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc()
        };
        let life = VersionLife::of("v23.0", at("2027-09-08"));
        assert_eq!(life.state(), VersionState::Ending);
        assert!(
            life.describe().contains("in 30 days"),
            "{}",
            life.describe()
        );
        assert!(life.describe().contains("v27.0"));
        assert_eq!(
            VersionLife::of("v23.0", at("2027-10-08")).state(),
            VersionState::Ending
        );
        let ended = VersionLife::of("v23.0", at("2027-10-09"));
        assert_eq!(ended.state(), VersionState::Ended);
        assert!(ended.gauge() < 0.0);
        assert_eq!(
            VersionLife::of("v26.0", at("2026-12-06")).state(),
            VersionState::Fine
        );
        let unknown = VersionLife::of("v22.0", at("2026-12-06"));
        assert_eq!(unknown.state(), VersionState::Unknown);
        assert!(unknown.gauge().is_nan());
    }
}

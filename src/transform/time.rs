//! An order's event time: the epoch PostgreSQL computed, or a local time read in the row's time
//! zone as PostgreSQL's `at time zone` would read it.

use super::{nonblank, InvalidReason};
use crate::source::SourceRow;

/// Unix seconds of the row's event time: the epoch PostgreSQL computed (`timestamptz` and epoch
/// columns), or the local time read in the row's time zone (`mapping.timezone`), else
/// `source.timezone`. A local time that a daylight-saving change makes ambiguous is read as
/// standard time, and one in the gap with the offset in force before the change, as
/// PostgreSQL's `at time zone` does.
///
/// # Errors
/// A missing or out-of-range time, or a row zone that is not an IANA name.
pub fn event_time(row: &SourceRow, default_zone: chrono_tz::Tz) -> Result<i64, InvalidReason> {
    let epoch = match row.local_time.as_deref() {
        None => row.event_time.ok_or(InvalidReason::MissingEventTime)?,
        Some(local) => local_epoch(local, row_zone(row, default_zone)?)? as f64,
    };
    // Year 0..=9999 bounds what Meta (and any receipt) can mean.
    if !epoch.is_finite() || !(-62_167_219_200.0..=253_402_300_799.0).contains(&epoch) {
        return Err(InvalidReason::EventTimeOutOfRange);
    }
    Ok(epoch.floor() as i64)
}

/// The zone a row's local event time is read in: its `mapping.timezone` value when not blank,
/// else `source.timezone`. Names are matched as PostgreSQL matches them, ignoring case
/// (`config::parse_zone`).
///
/// # Errors
/// [`InvalidReason::UnknownTimeZone`] when the row names a zone that is not an IANA name.
pub fn row_zone(
    row: &SourceRow,
    default_zone: chrono_tz::Tz,
) -> Result<chrono_tz::Tz, InvalidReason> {
    match nonblank(row.timezone.as_deref()) {
        None => Ok(default_zone),
        Some(name) => crate::config::parse_zone(name).ok_or(InvalidReason::UnknownTimeZone),
    }
}

/// Unix seconds of a local `YYYY-MM-DD HH:MM:SS[.ffffff]` (PostgreSQL's ISO form; a `T` also
/// works) in `zone`.
fn local_epoch(local: &str, zone: chrono_tz::Tz) -> Result<i64, InvalidReason> {
    use chrono::{Offset as _, TimeZone as _};
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| InvalidReason::EventTimeOutOfRange)?;
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.timestamp()),
        // Ambiguous: the later instant, standard time.
        chrono::LocalResult::Ambiguous(_, later) => Ok(later.timestamp()),
        // In the gap: the offset in force before the change.
        chrono::LocalResult::None => {
            let before = naive - chrono::Duration::hours(3);
            let offset = zone
                .from_local_datetime(&before)
                .latest()
                .ok_or(InvalidReason::EventTimeOutOfRange)?
                .offset()
                .fix();
            Ok((naive - offset).and_utc().timestamp())
        }
    }
}

//! The one clock a run judges event times by: the source database's, read once per run.
//!
//! Every rule that compares an event time with "now" (the 62-day limit, `source.max_future`,
//! the 5 minutes after which an order is held, held orders coming due) uses this clock, never
//! the host's: the watermark's cap and lookback are computed by the source database already,
//! and a host whose clock is off (a container without NTP, a laptop resumed from sleep) must
//! not write today's sales off as too old or too far ahead. The host clock only measures how
//! long the run has been going (a monotonic clock), so a run of several hours still judges its
//! last page by the database's time.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::SourceError;
use crate::db::DbError;

/// A host clock further than this from the source database's is warned about (`check` and the
/// run's log); it never changes an order's outcome.
pub const HOST_SKEW_WARNING: Duration = Duration::from_secs(60);

/// The source database's clock, read once, advanced by the host's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The database's `clock_timestamp()` when read, in unix seconds.
    at: f64,
    /// When it was read, on the host's monotonic clock.
    read: Instant,
    /// The host's wall clock minus the database's when read, in seconds.
    host_ahead: f64,
}

impl Clock {
    /// A clock that reads `at` (unix seconds) now, with the host's wall clock `host_ahead`
    /// seconds ahead of it (for tests and the pure parts of commands).
    pub fn at(at: f64, host_ahead: f64) -> Self {
        Self {
            at,
            read: Instant::now(),
            host_ahead,
        }
    }

    /// The source database's time now, in whole unix seconds.
    pub fn now(&self) -> i64 {
        // Unix seconds of any date a database holds fit an i64.
        #[allow(clippy::cast_possible_truncation)]
        let now = (self.at + self.read.elapsed().as_secs_f64()).floor() as i64;
        now
    }

    /// How far the host's wall clock is ahead of the database's (negative: behind), in seconds.
    pub fn host_ahead_secs(&self) -> f64 {
        self.host_ahead
    }

    /// What to say about the host's clock when it is further than [`HOST_SKEW_WARNING`] from
    /// the database's, else `None`.
    pub fn skew_warning(&self) -> Option<String> {
        let off = self.host_ahead.abs();
        if off <= HOST_SKEW_WARNING.as_secs_f64() {
            return None;
        }
        let way = if self.host_ahead > 0.0 {
            "ahead of"
        } else {
            "behind"
        };
        let off = crate::human::duration(off.round());
        Some(format!(
            "this host's clock is {off} {way} the source database's: ocapi judges event times \
             by the database's clock, so no order is affected, but fix the host's time (NTP)"
        ))
    }
}

/// Reads the source database's clock (`clock_timestamp()`, an unnamed statement).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn clock(client: &Client) -> Result<Clock, SourceError> {
    let rows = client
        .query_typed("select extract(epoch from clock_timestamp())::float8", &[])
        .await
        .map_err(DbError::query("cannot read the source database's clock"))?;
    let host = chrono::Utc::now();
    let at: f64 = rows
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(DbError::query("cannot read the source database's clock"))?
        .unwrap_or(0.0);
    #[allow(clippy::cast_precision_loss)]
    let host = host.timestamp_millis() as f64 / 1000.0;
    Ok(Clock::at(at, host - at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_time_is_what_counts_and_skew_over_a_minute_is_said() {
        let clock = Clock::at(1_800_000_000.0, 2.0 * 86_400.0);
        assert!((clock.now() - 1_800_000_000).abs() <= 1);
        let warning = clock.skew_warning().unwrap();
        assert!(warning.contains("2.0d ahead of"), "{warning}");
        assert!(Clock::at(1.0e9, -70.0 * 86_400.0)
            .skew_warning()
            .unwrap()
            .contains("behind"));
        assert_eq!(Clock::at(1.0e9, 59.0).skew_warning(), None);
        assert_eq!(Clock::at(1.0e9, -59.0).skew_warning(), None);
    }
}

//! How a pass ended, decided from what it counted and how its driving ended: the degraded
//! rules that make a run exit 3 and alert. Pure (no I/O, no clock), so it is table-tested.

use crate::error::Error;
use crate::stats::{RunStats, RunStatus};

/// The status of a pass whose driving ended with `result`, and the error text the stats keep
/// (`None`: the stats keep what they hold).
///
/// - failed: the driving failed (the error's chain);
/// - degraded: the share of invalid or rejected orders ([`RunStats::invalid_ratio`]) is above
///   `max_invalid_ratio` (`--max-invalid-ratio`), or orders have a watermark ahead of the
///   source database's clock (the watermark was not advanced past it; `watermark_column`
///   names the column);
/// - completed: otherwise.
pub(crate) fn verdict(
    stats: &RunStats,
    result: Result<(), &Error>,
    max_invalid_ratio: Option<f64>,
    watermark_column: &str,
) -> (RunStatus, Option<String>) {
    match result {
        Ok(()) if max_invalid_ratio.is_some_and(|limit| stats.invalid_ratio() > limit) => (
            RunStatus::Degraded,
            Some(format!(
                "{} invalid (returns and orders too old to send left out) and {} rejected orders \
                 are {:.1}% of the orders that could be sent, above --max-invalid-ratio {}; see \
                 `ocapi reconcile` for the reasons",
                stats.invalid_counted(),
                stats.rejected,
                100.0 * stats.invalid_ratio(),
                max_invalid_ratio.unwrap_or(1.0)
            )),
        ),
        Ok(()) if stats.watermark_reset.is_some() => {
            (RunStatus::Degraded, stats.watermark_reset.clone())
        }
        Ok(()) if stats.ahead_of_clock > 0 => (
            RunStatus::Degraded,
            Some(format!(
                "{} orders have a watermark ({}) ahead of the source database's clock; the \
                 watermark was not advanced past the clock (fix the rows, see `ocapi check`)",
                stats.ahead_of_clock, watermark_column
            )),
        ),
        Ok(()) => (RunStatus::Completed, None),
        Err(error) => (RunStatus::Failed, Some(crate::error::chain(error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stats of a pass that sent `events` orders and recorded `invalid` invalid ones, `ahead`
    /// of them ahead of the clock.
    fn counted(events: u64, invalid: u64, ahead: u64) -> RunStats {
        let mut stats = RunStats::new("c");
        stats.events = events;
        stats.invalid = invalid;
        stats.ahead_of_clock = ahead;
        stats
    }

    #[test]
    fn the_verdict_follows_the_degraded_rules() {
        let failed = Error::Usage("the source went away".to_owned());
        let cases: [(
            &str,
            RunStats,
            Result<(), &Error>,
            Option<f64>,
            RunStatus,
            Option<&str>,
        ); 6] = [
            (
                "completed",
                counted(10, 0, 0),
                Ok(()),
                None,
                RunStatus::Completed,
                None,
            ),
            (
                "completed under the ratio",
                counted(9, 1, 0),
                Ok(()),
                Some(0.2),
                RunStatus::Completed,
                None,
            ),
            (
                "degraded by ratio",
                counted(8, 2, 0),
                Ok(()),
                Some(0.1),
                RunStatus::Degraded,
                Some("2 invalid (returns and orders too old to send left out) and 0 rejected"),
            ),
            (
                "no ratio, no limit",
                counted(0, 5, 0),
                Ok(()),
                None,
                RunStatus::Completed,
                None,
            ),
            (
                "ahead of the clock",
                counted(10, 0, 3),
                Ok(()),
                None,
                RunStatus::Degraded,
                Some("3 orders have a watermark (updated_at) ahead of the source database's clock"),
            ),
            (
                "failed",
                counted(10, 5, 3),
                Err(&failed),
                Some(0.1),
                RunStatus::Failed,
                Some("the source went away"),
            ),
        ];
        for (name, stats, result, limit, status, error) in cases {
            let (got, text) = verdict(&stats, result, limit, "updated_at");
            assert_eq!(got, status, "{name}");
            match error {
                Some(start) => assert!(
                    text.as_deref().is_some_and(|t| t.starts_with(start)),
                    "{name}: {text:?}"
                ),
                None => assert_eq!(text, None, "{name}"),
            }
        }
    }
}

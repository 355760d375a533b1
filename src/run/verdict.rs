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

    /// One row of the table: a pass's counts and outcome, and the verdict expected.
    struct Case<'a> {
        /// What the row shows.
        name: &'a str,
        /// Orders built into events, invalid orders, orders ahead of the clock.
        counted: (u64, u64, u64),
        /// How the driving ended.
        result: Result<(), &'a Error>,
        /// `--max-invalid-ratio`.
        limit: Option<f64>,
        /// The status expected.
        status: RunStatus,
        /// How the error text expected starts (`None`: no text).
        error: Option<&'a str>,
    }

    #[test]
    fn the_verdict_follows_the_degraded_rules() {
        let failed = Error::Usage("the source went away".to_owned());
        let cases = [
            Case {
                name: "completed",
                counted: (10, 0, 0),
                result: Ok(()),
                limit: None,
                status: RunStatus::Completed,
                error: None,
            },
            Case {
                name: "completed under the ratio",
                counted: (9, 1, 0),
                result: Ok(()),
                limit: Some(0.2),
                status: RunStatus::Completed,
                error: None,
            },
            Case {
                name: "degraded by ratio",
                counted: (8, 2, 0),
                result: Ok(()),
                limit: Some(0.1),
                status: RunStatus::Degraded,
                error: Some(
                    "2 invalid (returns and orders too old to send left out) and 0 rejected",
                ),
            },
            Case {
                name: "invalid orders without a limit",
                counted: (0, 5, 0),
                result: Ok(()),
                limit: None,
                status: RunStatus::Completed,
                error: None,
            },
            Case {
                name: "ahead of the clock",
                counted: (10, 0, 3),
                result: Ok(()),
                limit: None,
                status: RunStatus::Degraded,
                error: Some(
                    "3 orders have a watermark (updated_at) ahead of the source database's clock",
                ),
            },
            Case {
                name: "failed",
                counted: (10, 5, 3),
                result: Err(&failed),
                limit: Some(0.1),
                status: RunStatus::Failed,
                error: Some("the source went away"),
            },
        ];
        for case in cases {
            let (events, invalid, ahead) = case.counted;
            let mut stats = RunStats::new("c");
            stats.events = events;
            stats.invalid = invalid;
            stats.ahead_of_clock = ahead;
            let (status, text) = verdict(&stats, case.result, case.limit, "updated_at");
            assert_eq!(status, case.status, "{}", case.name);
            match case.error {
                Some(start) => assert!(
                    text.as_deref().is_some_and(|t| t.starts_with(start)),
                    "{}: {text:?}",
                    case.name
                ),
                None => assert_eq!(text, None, "{}", case.name),
            }
        }
    }
}

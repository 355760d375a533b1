//! `ocapi runs`: the connector's recent runs with their stats and status, as the ledger
//! module reads them (the `run_summary` view of sql/0003_operations.sql).

use std::fmt::Write as _;

use crate::cli::RunsArgs;
use crate::config::Config;
use crate::error::{Error, ExitStatus};
use crate::ledger::LedgerReader;
pub use crate::ledger::RunRecord;

/// The last `last` runs of the connector, newest first.
pub async fn recent(config: &Config, last: i64) -> Result<Vec<RunRecord>, Error> {
    Ok(LedgerReader::open(config).await?.recent_runs(last).await?)
}

/// A table of runs for people.
pub fn render(runs: &[RunRecord]) -> String {
    let mut out = String::new();
    if runs.is_empty() {
        out.push_str("no runs yet\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>6}  {:<8}  {:<9}  {:<23}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>9}  {:>6}  {:>6}  {:>13}",
        "run",
        "mode",
        "status",
        "started",
        "duration",
        "rows",
        "sent",
        "dup",
        "invalid",
        "rejected",
        "anonymous",
        "held",
        "ratio",
        "lag p50/p95"
    );
    for r in runs {
        let duration = r
            .duration_ms
            .map_or_else(|| "-".to_owned(), |ms| short(ms as f64 / 1000.0));
        let _ = writeln!(
            out,
            "{:>6}  {:<8}  {:<9}  {:<23}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>9}  {:>6}  {:>6.3}  {:>13}",
            r.run_id,
            r.mode,
            r.status,
            crate::human::instant_text(&r.started_at),
            duration,
            r.rows_read,
            r.sent,
            r.skipped_duplicate,
            r.invalid,
            r.rejected,
            r.anonymous,
            r.held,
            r.invalid_ratio,
            match (r.upload_lag_median_seconds, r.upload_lag_p95_seconds) {
                (Some(median), Some(p95)) => format!("{}/{}", short(median), short(p95)),
                _ => "-".to_owned(),
            }
        );
        if let Some(error) = &r.error {
            let _ = writeln!(out, "        error: {}", crate::escape::terminal(error));
        }
    }
    out
}

/// Seconds in a short human unit: `45s`, `12m`, `3.5h`, `2.1d` ([`crate::human::duration`]).
pub(crate) fn short(seconds: f64) -> String {
    crate::human::duration(seconds)
}

/// `ocapi runs`: the last `--last` runs, newest first, as a table or one JSON array.
pub(crate) async fn command(config: &Config, args: &RunsArgs) -> Result<ExitStatus, Error> {
    let runs = recent(config, args.last).await?;
    if args.json {
        crate::commands::print_json(&runs)?;
    } else {
        print!("{}", render(&runs));
    }
    Ok(ExitStatus::Success)
}

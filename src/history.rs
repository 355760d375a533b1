//! `ocapi runs`: the connector's recent runs with their stats and status, read from the
//! ledger schema's `run_summary` view (sql/0003_operations.sql).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Config;
use crate::db::{self, quote_ident, DbError};
use crate::error::Error;

/// One run as `ocapi runs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// `runs.run_id`.
    pub run_id: i64,
    /// `run` or `backfill`.
    pub mode: String,
    /// `running`, `completed`, `degraded` or `failed`.
    pub status: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished, if it did.
    pub finished_at: Option<String>,
    /// Wall time.
    pub duration_ms: Option<i64>,
    /// Source rows read.
    pub rows_read: i64,
    /// Orders built into events.
    pub events: i64,
    /// Orders accepted by the destination.
    pub sent: i64,
    /// Orders already sent, not sent again.
    pub skipped_duplicate: i64,
    /// Of those, orders whose value or event time changed since.
    pub changed_after_send: i64,
    /// Orders that could not become an event.
    pub invalid: i64,
    /// Events the destination rejected.
    pub rejected: i64,
    /// Orders held until their event time comes (dated ahead by a fast till clock).
    pub held: i64,
    /// Orders invalid before, unchanged, read again: not counted as new.
    pub skipped_invalid: i64,
    /// Orders whose watermark was ahead of the source database's clock.
    pub ahead_of_clock: i64,
    /// Orders sent with a zero total.
    pub zero_value: i64,
    /// Retried requests.
    pub retries: i64,
    /// Requests sent.
    pub batches: i64,
    /// The share of invalid or rejected orders.
    pub invalid_ratio: f64,
    /// The watermark when it started.
    pub watermark_start: Option<String>,
    /// The watermark when it finished.
    pub watermark_end: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Median seconds from an accepted event's `event_time` to its acceptance.
    pub upload_lag_median_seconds: Option<f64>,
    /// 95th percentile of the same.
    pub upload_lag_p95_seconds: Option<f64>,
    /// Maximum of the same.
    pub upload_lag_max_seconds: Option<f64>,
    /// How many sent events carried each user_data key.
    pub match_keys: BTreeMap<String, i64>,
}

/// The last `last` runs of the connector, newest first.
pub async fn recent(config: &Config, last: i64) -> Result<Vec<RunRecord>, Error> {
    let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let client = db::connect(&pool, "ledger").await?;
    crate::ledger::ensure_schema(&client, &config.ledger.schema).await?;
    let sql = format!(
        "select s.run_id, s.mode, s.status,
                to_char(s.started_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                to_char(s.finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                s.duration_ms, s.rows_read, s.events, s.sent, s.skipped_duplicate,
                s.changed_after_send, s.invalid, s.rejected, s.retries, s.batches,
                s.invalid_ratio::float8, s.watermark_start, s.watermark_end, s.error,
                r.upload_lag_median_seconds, r.upload_lag_p95_seconds, r.upload_lag_max_seconds,
                coalesce(r.match_keys, '{{}}'::jsonb), r.held, r.skipped_invalid,
                r.ahead_of_clock, r.zero_value
         from {schema}.run_summary s join {schema}.runs r using (run_id, connector)
         where s.connector = $1 order by s.run_id desc limit $2",
        schema = quote_ident(&config.ledger.schema)
    );
    let rows = client
        .query(&sql, &[&config.connector.name, &last.max(0)])
        .await
        .map_err(DbError::query("cannot read the runs"))?;
    Ok(rows
        .iter()
        .map(|r| RunRecord {
            run_id: r.get(0),
            mode: r.get(1),
            status: r.get(2),
            started_at: r.get(3),
            finished_at: r.get(4),
            duration_ms: r.get(5),
            rows_read: r.get(6),
            events: r.get(7),
            sent: r.get(8),
            skipped_duplicate: r.get(9),
            changed_after_send: r.get(10),
            invalid: r.get(11),
            rejected: r.get(12),
            held: r.get(23),
            skipped_invalid: r.get(24),
            ahead_of_clock: r.get(25),
            zero_value: r.get(26),
            retries: r.get(13),
            batches: r.get(14),
            invalid_ratio: r.get(15),
            watermark_start: r.get(16),
            watermark_end: r.get(17),
            error: r.get(18),
            upload_lag_median_seconds: r.get(19),
            upload_lag_p95_seconds: r.get(20),
            upload_lag_max_seconds: r.get(21),
            match_keys: serde_json::from_value(r.get(22)).unwrap_or_default(),
        })
        .collect())
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
        "{:>6}  {:<8}  {:<9}  {:<20}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>6}  {:>6}  {:>13}",
        "run",
        "mode",
        "status",
        "started (UTC)",
        "duration",
        "rows",
        "sent",
        "dup",
        "invalid",
        "rejected",
        "held",
        "ratio",
        "lag p50/p95"
    );
    for r in runs {
        let duration = r.duration_ms.map_or_else(
            || "-".to_owned(),
            |ms| format!("{:.1}s", ms as f64 / 1000.0),
        );
        let _ = writeln!(
            out,
            "{:>6}  {:<8}  {:<9}  {:<20}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>6}  {:>6.3}  {:>13}",
            r.run_id,
            r.mode,
            r.status,
            r.started_at,
            duration,
            r.rows_read,
            r.sent,
            r.skipped_duplicate,
            r.invalid,
            r.rejected,
            r.held,
            r.invalid_ratio,
            match (r.upload_lag_median_seconds, r.upload_lag_p95_seconds) {
                (Some(median), Some(p95)) => format!("{}/{}", short(median), short(p95)),
                _ => "-".to_owned(),
            }
        );
        if let Some(error) = &r.error {
            let _ = writeln!(out, "        error: {error}");
        }
    }
    out
}

/// Seconds in a short human unit: `45s`, `12m`, `3.5h`, `2.1d`.
pub fn short(seconds: f64) -> String {
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

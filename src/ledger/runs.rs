//! The `runs` table: a run's record (started, finished with its stats and upload lag, or
//! closed as interrupted when its process died), and its reads for the subcommands: the recent
//! runs with their stats (`ocapi runs`, `ocapi report`), the latest upload lag and the
//! match-key totals (`ocapi quality`), how the previous run ended (alerts).

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use crate::db::DbError;
use crate::lag::UploadLag;
use crate::stats::RunStats;

use super::reader::LedgerReader;
use super::Ledger;

/// One run as `ocapi runs` shows it: a row of the `run_summary` view (sql/0003_operations.sql)
/// with the `runs` columns added since.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// `runs.run_id`.
    pub run_id: i64,
    /// `run` or `backfill`.
    pub mode: String,
    /// `running`, `completed`, `degraded`, `failed` or `stopped`.
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
    /// Walk-in sales: no customer value, recorded `anonymous`, not sent.
    pub anonymous: i64,
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

/// A run's upload lag, from the `runs` table (columns of sql/0007_upload_lag.sql).
#[derive(Debug, Clone, Serialize)]
pub struct RunLag {
    /// The run.
    pub run_id: i64,
    /// Median seconds from `event_time` to acceptance.
    pub median_seconds: f64,
    /// 95th percentile, in seconds.
    pub p95_seconds: f64,
    /// Maximum, in seconds.
    pub max_seconds: f64,
}

/// The match keys of the connector's recent runs that sent something, summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MatchKeyTotals {
    /// How many runs were summed (at most the number asked for).
    pub(crate) runs: i64,
    /// The events those runs sent.
    pub(crate) sent: i64,
    /// Per `user_data` key, how many of those events carried it.
    pub(crate) events_with: BTreeMap<String, i64>,
}

/// How the connector's latest finished run ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreviousRun {
    /// `completed`, `degraded`, `failed` or `stopped` (the `runs.status` text).
    pub(crate) status: String,
    /// Seconds since it finished, by the ledger database's clock (negative if that clock went
    /// back since).
    pub(crate) age_seconds: f64,
}

impl LedgerReader {
    /// The connector's last `last` runs (none for `last <= 0`), newest first.
    pub(crate) async fn recent_runs(&self, last: i64) -> Result<Vec<RunRecord>, DbError> {
        let sql = format!(
            "select s.run_id, s.mode, s.status,
                    to_char(s.started_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    to_char(s.finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    s.duration_ms, s.rows_read, s.events, s.sent, s.skipped_duplicate,
                    s.changed_after_send, s.invalid, s.rejected, s.retries, s.batches,
                    s.invalid_ratio::float8, s.watermark_start, s.watermark_end, s.error,
                    r.upload_lag_median_seconds, r.upload_lag_p95_seconds,
                    r.upload_lag_max_seconds, coalesce(r.match_keys, '{{}}'::jsonb), r.held,
                    r.skipped_invalid, r.ahead_of_clock, r.zero_value, r.anonymous
             from {summary} s join {runs} r using (run_id, connector)
             where s.connector = $1 order by s.run_id desc limit $2",
            summary = self.ledger.run_summary,
            runs = self.ledger.runs
        );
        let rows = self
            .client
            .query(&sql, &[&self.ledger.connector, &last.max(0)])
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
                held: r.get(23),
                skipped_invalid: r.get(24),
                ahead_of_clock: r.get(25),
                zero_value: r.get(26),
                anonymous: r.get(27),
            })
            .collect())
    }

    /// The upload lag of the connector's latest run that recorded one (`None` before any run
    /// has had an event accepted).
    pub(crate) async fn latest_lag(&self) -> Result<Option<RunLag>, DbError> {
        let sql = format!(
            "select run_id, upload_lag_median_seconds, upload_lag_p95_seconds,
                    upload_lag_max_seconds
             from {} where connector = $1 and upload_lag_median_seconds is not null
             order by run_id desc limit 1",
            self.ledger.runs
        );
        let row = self
            .client
            .query_opt(&sql, &[&self.ledger.connector])
            .await
            .map_err(DbError::query("cannot read the runs' upload lag"))?;
        Ok(row.map(|r| RunLag {
            run_id: r.get(0),
            median_seconds: r.get(1),
            p95_seconds: r.get(2),
            max_seconds: r.get(3),
        }))
    }

    /// The match keys of the connector's last `recent` runs that sent something, summed.
    pub(crate) async fn match_keys(&self, recent: i64) -> Result<MatchKeyTotals, DbError> {
        let sql = format!(
            "with recent as (
                 select run_id, sent, match_keys from {}
                 where connector = $1 and sent > 0 order by run_id desc limit $2)
             select (select count(*) from recent),
                    (select coalesce(sum(sent), 0)::int8 from recent),
                    k.key, sum(k.value::int8)::int8
             from recent cross join lateral jsonb_each_text(recent.match_keys) as k(key, value)
             group by k.key",
            self.ledger.runs
        );
        let rows = self
            .client
            .query(&sql, &[&self.ledger.connector, &recent])
            .await
            .map_err(DbError::query("cannot read the runs' match keys"))?;
        let mut totals = MatchKeyTotals::default();
        for row in &rows {
            totals.runs = row.get(0);
            totals.sent = row.get(1);
            totals.events_with.insert(row.get(2), row.get(3));
        }
        Ok(totals)
    }

    /// How the connector's latest finished run ended; `None` before any run has finished.
    pub(crate) async fn previous_run(&self) -> Result<Option<PreviousRun>, DbError> {
        let sql = format!(
            "select status, extract(epoch from now() - finished_at)::float8
             from {} where connector = $1 and finished_at is not null
             order by run_id desc limit 1",
            self.ledger.runs
        );
        let row = self
            .client
            .query_opt(&sql, &[&self.ledger.connector])
            .await
            .map_err(DbError::query("cannot read the previous run"))?;
        Ok(row.map(|r| PreviousRun {
            status: r.get(0),
            age_seconds: r.get(1),
        }))
    }
}

impl Ledger {
    /// Records a new run and returns its id.
    pub(crate) async fn start_run(&self, client: &Client, mode: &str) -> Result<i64, DbError> {
        let sql = format!(
            "insert into {} (connector, mode) values ($1, $2) returning run_id",
            self.runs
        );
        let row = client
            .query_one(&sql, &[&self.connector, &mode])
            .await
            .map_err(DbError::query("cannot record the run"))?;
        Ok(row.get(0))
    }

    /// Stores a run's final stats.
    pub(crate) async fn finish_run(
        &self,
        client: &Client,
        stats: &RunStats,
    ) -> Result<(), DbError> {
        let sql = format!(
            "update {} set status = $2, finished_at = now(), rows_read = $3, events = $4,
                 sent = $5, skipped_duplicate = $6, changed_after_send = $7, invalid = $8,
                 rejected = $9, retries = $10, batches = $11, watermark_start = $12,
                 watermark_end = $13, duration_ms = $14, match_keys = $15, dropped = $16,
                 error = $17, skipped_rejected = $18, skipped_invalid = $19, held = $20,
                 ahead_of_clock = $21, zero_value = $22, returns = $23, too_old = $24,
                 anonymous = $25
             where run_id = $1",
            self.runs
        );
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let json = |m| serde_json::to_value(m).unwrap_or_default();
        let (returns, too_old) = stats.unsendable();
        client
            .execute(
                &sql,
                &[
                    &stats.run_id,
                    &stats.status.as_str(),
                    &n(stats.rows_read),
                    &n(stats.events),
                    &n(stats.sent),
                    &n(stats.skipped_duplicate),
                    &n(stats.changed_after_send),
                    &n(stats.invalid),
                    &n(stats.rejected),
                    &n(stats.retries),
                    &n(stats.batches),
                    &stats.watermark_start.as_deref(),
                    &stats.watermark_end.as_deref(),
                    &n(stats.duration_ms),
                    &json(&stats.match_keys),
                    &json(&stats.dropped),
                    &stats.error,
                    &n(stats.skipped_rejected),
                    &n(stats.skipped_invalid),
                    &n(stats.held),
                    &n(stats.ahead_of_clock),
                    &n(stats.zero_value),
                    &n(returns),
                    &n(too_old),
                    &n(stats.anonymous),
                ],
            )
            .await
            .map_err(DbError::query("cannot record the run's stats"))?;
        self.store_lag(client, stats.run_id, &stats.upload_lag)
            .await
    }

    /// Marks the runs of this connector that are still `running` as failed: the caller holds
    /// the connector's lock, so their process died (`kill -9`, a lost machine). Returns their
    /// ids and modes, so that the caller can say what to re-run.
    pub(crate) async fn close_interrupted_runs(
        &self,
        client: &Client,
        run_id: i64,
    ) -> Result<Vec<(i64, String)>, DbError> {
        let sql = format!(
            "update {} set status = 'failed', finished_at = now(),
                 error = 'interrupted: the process stopped before the run finished'
             where connector = $1 and status = 'running' and run_id <> $2
             returning run_id, mode",
            self.runs
        );
        let rows = client
            .query(&sql, &[&self.connector, &run_id])
            .await
            .map_err(DbError::query("cannot close interrupted runs"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Stores a run's lag figures in its `runs` row (columns of sql/0007_upload_lag.sql);
    /// nothing when no event was accepted.
    pub(super) async fn store_lag(
        &self,
        client: &Client,
        run_id: i64,
        lag: &UploadLag,
    ) -> Result<(), DbError> {
        let Some(summary) = lag.summary() else {
            return Ok(());
        };
        let sql = format!(
            "update {} set upload_lag_median_seconds = $2, upload_lag_p95_seconds = $3,
                 upload_lag_max_seconds = $4
             where run_id = $1",
            self.runs
        );
        client
            .execute(
                &sql,
                &[
                    &run_id,
                    &summary.median_seconds,
                    &summary.p95_seconds,
                    &summary.max_seconds,
                ],
            )
            .await
            .map_err(DbError::query("cannot record the run's upload lag"))?;
        Ok(())
    }
}

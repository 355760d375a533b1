//! Per-run counters: printed for people, as JSON for machines, stored in `<schema>.runs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::destination::{Delivery, DestinationError};
use crate::lag::UploadLag;
use crate::source::Watermark;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still going.
    Running,
    /// Completed.
    Completed,
    /// Completed, but the share of invalid or rejected rows passed `--max-invalid-ratio`.
    Degraded,
    /// Failed; state is consistent and the next run resumes.
    Failed,
    /// Stopped by SIGINT or SIGTERM (Ctrl-C, a service stop) before it read everything: the
    /// pages in flight were sent and committed, the rest is left to the next run. Exit 0.
    Stopped,
    /// Not run: another run holds the connector's (or the dataset's) lock, as when a cron job
    /// overlaps a slow run. Not a failure (exit 0, no alert); no `runs` row is written.
    Skipped,
}

impl RunStatus {
    /// The text stored in `runs.status`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
            Self::Skipped => "skipped",
        }
    }
}

/// One `[[source.changes]]` table's watermark over a run: `start` as stored before it (`None`
/// on its first run), `end` as its last committed page left it (`start` when none moved it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableWatermark {
    /// The table as configured (`source.changes[].table`).
    pub table: String,
    /// The stored watermark when the run started (serialized as its text).
    pub start: Option<Watermark>,
    /// The stored watermark when the run ended (serialized as its text).
    pub end: Option<Watermark>,
}

/// The stats of one run. Field names are public: `--json`, the runs table and metrics use them.
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    /// `<schema>.runs.run_id` (0 for a dry run).
    pub run_id: i64,
    /// `connector.name`.
    pub connector: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Source rows read.
    pub rows_read: u64,
    /// Orders built into events (valid ones).
    pub events: u64,
    /// Orders accepted by the destination in this run, re-sent ones included.
    pub sent: u64,
    /// Orders already sent earlier (or in flight in this run), not sent again.
    pub skipped_duplicate: u64,
    /// Of the skipped, those whose value or event time changed since they were sent.
    pub changed_after_send: u64,
    /// Orders that were rejected before and have not changed since, not sent again.
    pub skipped_rejected: u64,
    /// Orders already recorded `invalid` and unchanged since, read again (by the lookback):
    /// not counted as new invalid orders.
    pub skipped_invalid: u64,
    /// Orders dated more than 5 minutes ahead (a till clock running fast), held: not sent and
    /// not invalid; the first run after their time sends them.
    pub held: u64,
    /// Orders sent with a zero total (free or fully discounted items are purchases).
    pub zero_value: u64,
    /// Orders whose watermark is ahead of the source database's clock (the watermark was not
    /// advanced past the clock; the run is degraded).
    pub ahead_of_clock: u64,
    /// Rows that could not become an event (recorded in the ledger with a reason).
    pub invalid: u64,
    /// Orders older than 7 days that a run without ledger state left, neither sent nor
    /// recorded (`source.start` or `--initial-sync` sends them; `note` says how).
    pub history_left: u64,
    /// Walk-in sales: orders whose rows carry no customer value (recorded `anonymous`, not
    /// sent: Meta cannot attribute them). Never part of `invalid` or the invalid ratio.
    pub anonymous: u64,
    /// Events the destination rejected for their data.
    pub rejected: u64,
    /// Retries for transient failures.
    pub retries: u64,
    /// Requests (batches) sent to the destination.
    pub batches: u64,
    /// The watermark when the run started (serialized, printed and stored as its text).
    pub watermark_start: Option<Watermark>,
    /// The watermark when the run ended (serialized, printed and stored as its text).
    pub watermark_end: Option<Watermark>,
    /// With `[[source.changes]]` (which leaves `watermark_start`/`watermark_end` empty): each
    /// changes table's stored watermark when the run started and ended, in config order, as
    /// `<schema>.change_watermarks` holds them (docs/source.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub change_watermarks: Vec<TableWatermark>,
    /// Wall time.
    pub duration_ms: u64,
    /// How many sent events carry each user_data key.
    pub match_keys: BTreeMap<String, u64>,
    /// Customer values dropped as unusable, by user_data key.
    pub dropped: BTreeMap<String, u64>,
    /// Invalid rows by reason.
    pub invalid_reasons: BTreeMap<String, u64>,
    /// The error that failed the run, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the run did not do, and why: another run holds the lock (a skipped run), or the
    /// older orders a first run left (see `history_left`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why a `[[source.changes]]` table was left unread (its largest watermark went behind
    /// the stored one): the run is degraded, and this names the reset.
    #[serde(skip)]
    pub watermark_reset: Option<String>,
    /// Seconds from `event_time` to acceptance of the sent events (median, p95, max).
    pub upload_lag: UploadLag,
    /// The token's and the API version's remaining life as the run read them (Meta
    /// destination only): the `ocapi_token_expires_in_seconds` and
    /// `ocapi_api_version_sunset_seconds` gauges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_life: Option<crate::destination::meta::life::MetaLife>,
    /// Alerts about Meta's side the run raised, `(key, text)`: each key is alerted once
    /// (`meta_alerts`, sql/0016) by whoever holds the webhook.
    #[serde(skip)]
    pub meta_alerts: Vec<(String, String)>,
}

impl RunStats {
    /// Empty stats for a run of `connector`.
    pub fn new(connector: &str) -> Self {
        Self {
            run_id: 0,
            connector: connector.to_owned(),
            status: RunStatus::Running,
            rows_read: 0,
            events: 0,
            sent: 0,
            skipped_duplicate: 0,
            changed_after_send: 0,
            skipped_rejected: 0,
            skipped_invalid: 0,
            held: 0,
            zero_value: 0,
            ahead_of_clock: 0,
            invalid: 0,
            anonymous: 0,
            history_left: 0,
            rejected: 0,
            retries: 0,
            batches: 0,
            watermark_start: None,
            watermark_end: None,
            change_watermarks: Vec::new(),
            duration_ms: 0,
            match_keys: BTreeMap::new(),
            dropped: BTreeMap::new(),
            invalid_reasons: BTreeMap::new(),
            error: None,
            note: None,
            watermark_reset: None,
            upload_lag: UploadLag::default(),
            meta_life: None,
            meta_alerts: Vec::new(),
        }
    }

    /// The share of handled orders that were invalid or rejected.
    ///
    /// Orders more than 62 days old and returns (negative totals) are left out: nothing in the
    /// source makes them sendable, so they say nothing about the data's quality now (a view
    /// whose watermark moves with a customer record re-reads that customer's whole history).
    /// `invalid / handled` below, and the `runs` table's `run_summary.invalid_ratio` (sql/0010),
    /// compute the same.
    pub(crate) fn invalid_ratio(&self) -> f64 {
        let invalid = self.invalid_counted();
        let handled = self.events + invalid;
        if handled == 0 {
            return 0.0;
        }
        (invalid + self.rejected) as f64 / handled as f64
    }

    /// Of `invalid`, the returns (negative totals) and the orders more than 62 days old:
    /// `(returns, too_old)`, stored in the `runs` table's columns of those names.
    pub(crate) fn unsendable(&self) -> (u64, u64) {
        let count = |reason: crate::transform::InvalidReason| {
            self.invalid_reasons
                .get(reason.as_str())
                .copied()
                .unwrap_or(0)
        };
        (
            count(crate::transform::InvalidReason::NegativeValue),
            count(crate::transform::InvalidReason::TooOld),
        )
    }

    /// The invalid orders `--max-invalid-ratio` judges: `invalid` without the returns and the
    /// orders too old to send ([`RunStats::unsendable`]).
    pub(crate) fn invalid_counted(&self) -> u64 {
        let (returns, too_old) = self.unsendable();
        self.invalid.saturating_sub(returns + too_old)
    }

    /// Adds `n` to a keyed counter. Called for every key of every sent event, so the key is
    /// copied only the first time it is seen (`entry` would take an owned copy every call).
    pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
        match map.get_mut(key) {
            Some(count) => *count += n,
            None => {
                map.insert(key.to_owned(), n);
            }
        }
    }
}

impl RunStats {
    /// Counts an event the destination accepted at `accepted_at` (unix seconds) in the
    /// upload lag.
    pub(crate) fn accepted(&mut self, event_time: i64, accepted_at: i64) {
        self.upload_lag.record(event_time, accepted_at);
    }

    /// Counts the requests (retries and bisection included) and retries of one batch the
    /// destination answered; called as each batch finishes, so a run that fails later still
    /// counts it.
    pub(crate) fn count_delivery(&mut self, delivery: &Delivery) {
        self.retries += u64::from(delivery.retries);
        self.batches += u64::from(delivery.requests);
    }
}

/// Counts the requests a batch made before it failed with `error`, so that a failed run's
/// `runs` row shows the attempts that led to the failure.
///
/// The one place that reads attempts from a destination error
/// ([`DestinationError::attempts`]): every HTTP request a failed batch made counts as a batch
/// request, and all but its first as retries, so that a failed run's record shows them.
pub(crate) fn count_failed_attempts(stats: &mut RunStats, error: &DestinationError) {
    let attempts = error.attempts();
    stats.batches += u64::from(attempts);
    stats.retries += u64::from(attempts.saturating_sub(1));
}

impl fmt::Display for RunStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status == RunStatus::Skipped {
            writeln!(f, "run of {}: skipped", self.connector)?;
            if let Some(note) = &self.note {
                writeln!(f, "  {note}")?;
            }
            return Ok(());
        }
        // A dry run (run id 0) sends nothing and has no run number (issue 26, item 7).
        let dry_run = self.run_id == 0;
        if dry_run {
            writeln!(f, "dry run of {}: {}", self.connector, self.status.as_str())?;
        } else {
            writeln!(
                f,
                "run {} of {}: {}",
                self.run_id,
                self.connector,
                self.status.as_str()
            )?;
        }
        writeln!(f, "  rows read           {:>10}", self.rows_read)?;
        writeln!(f, "  events              {:>10}", self.events)?;
        if dry_run {
            writeln!(f, "  would send          {:>10}", self.sent)?;
        } else {
            writeln!(f, "  sent                {:>10}", self.sent)?;
        }
        writeln!(f, "  skipped (duplicate) {:>10}", self.skipped_duplicate)?;
        writeln!(f, "  changed after send  {:>10}", self.changed_after_send)?;
        writeln!(f, "  skipped (rejected)  {:>10}", self.skipped_rejected)?;
        writeln!(f, "  skipped (invalid)   {:>10}", self.skipped_invalid)?;
        writeln!(f, "  held (future time)  {:>10}", self.held)?;
        writeln!(f, "  invalid             {:>10}", self.invalid)?;
        writeln!(f, "  anonymous (walk-in) {:>10}", self.anonymous)?;
        if self.zero_value > 0 {
            writeln!(f, "  zero value (sent)   {:>10}", self.zero_value)?;
        }
        writeln!(f, "  rejected            {:>10}", self.rejected)?;
        writeln!(f, "  retries             {:>10}", self.retries)?;
        writeln!(f, "  batches             {:>10}", self.batches)?;
        let none = || "-".to_owned();
        if self.change_watermarks.is_empty() || self.watermark_start.is_some() {
            writeln!(
                f,
                "  watermark           {} -> {}",
                self.watermark_start
                    .as_ref()
                    .map_or_else(none, Watermark::to_string),
                self.watermark_end
                    .as_ref()
                    .map_or_else(none, Watermark::to_string)
            )?;
        }
        for (i, w) in self.change_watermarks.iter().enumerate() {
            let label = if i == 0 { "watermark" } else { "" };
            writeln!(
                f,
                "  {label:<19} {}: {} -> {}",
                w.table,
                w.start.as_ref().map_or_else(none, Watermark::to_string),
                w.end.as_ref().map_or_else(none, Watermark::to_string)
            )?;
        }
        let human = crate::human::duration;
        writeln!(
            f,
            "  duration            {:>10}",
            human(self.duration_ms as f64 / 1000.0)
        )?;
        if let Some(lag) = self.upload_lag.summary() {
            writeln!(
                f,
                "  upload lag          median {}, p95 {}, max {}",
                human(lag.median_seconds),
                human(lag.p95_seconds),
                human(lag.max_seconds)
            )?;
        }
        let list = |map: &BTreeMap<String, u64>| {
            map.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if !self.match_keys.is_empty() {
            writeln!(f, "  match keys          {}", list(&self.match_keys))?;
        }
        if !self.dropped.is_empty() {
            writeln!(f, "  dropped values      {}", list(&self.dropped))?;
        }
        for (reason, n) in &self.invalid_reasons {
            writeln!(f, "  invalid: {reason:<32} {n}")?;
        }
        if self.ahead_of_clock > 0 {
            writeln!(
                f,
                "  ahead of the clock  {:>10} (orders whose watermark is ahead of the source's clock)",
                self.ahead_of_clock
            )?;
        }
        if let Some(error) = &self.error {
            writeln!(f, "  error: {error}")?;
        }
        if let Some(note) = &self.note {
            writeln!(f, "  note: {note}")?;
        }
        if self.status == RunStatus::Stopped {
            writeln!(
                f,
                "  stopped by a signal: the pages in flight were committed; the next run \
                 sends the rest"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_and_orders_too_old_to_send_do_not_count_toward_the_invalid_ratio() {
        let mut stats = RunStats::new("c");
        stats.events = 8;
        stats.invalid = 4;
        for reason in [
            crate::transform::InvalidReason::NegativeValue,
            crate::transform::InvalidReason::TooOld,
            crate::transform::InvalidReason::MissingCurrency,
            crate::transform::InvalidReason::MissingCurrency,
        ] {
            RunStats::bump(&mut stats.invalid_reasons, reason.as_str(), 1);
        }
        // 2 data errors of 10 orders that could have been sent.
        assert!((stats.invalid_ratio() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn walk_in_sales_do_not_count_toward_the_invalid_ratio() {
        // 66 sent and 34 walk-ins, as in a store's normal day: no invalid order at all
        let mut stats = RunStats::new("c");
        stats.events = 66;
        stats.anonymous = 34;
        assert!(stats.invalid_ratio().abs() < 1e-9);
        stats.invalid = 1;
        assert!((stats.invalid_ratio() - 1.0 / 67.0).abs() < 1e-9);
    }

    /// Trial finding 10: a run with `[[source.changes]]` shows each table's watermark, not
    /// `watermark - -> -`.
    #[test]
    fn the_summary_shows_each_changes_tables_watermark() {
        let mut stats = RunStats::new("c");
        stats.run_id = 3;
        stats.status = RunStatus::Completed;
        let time = |text| Watermark::new(crate::source::WatermarkKind::Timestamptz, text);
        stats.change_watermarks = vec![
            TableWatermark {
                table: "pos.order_headers".to_owned(),
                start: Some(time("2026-12-01 10:00:00+00")),
                end: Some(time("2026-12-01 11:00:00+00")),
            },
            TableWatermark {
                table: "crm.customers".to_owned(),
                start: None,
                end: Some(time("2026-11-30 08:00:00+00")),
            },
        ];
        let text = stats.to_string();
        assert!(!text.contains("watermark           - -> -"), "{text}");
        assert!(
            text.contains(
                "  watermark           pos.order_headers: 2026-12-01 10:00:00+00 -> \
                 2026-12-01 11:00:00+00\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("                      crm.customers: - -> 2026-11-30 08:00:00+00\n"),
            "{text}"
        );
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["change_watermarks"][1]["table"], "crm.customers");
    }

    #[test]
    fn a_failure_that_made_no_request_counts_none() {
        let mut stats = RunStats::new("c");
        count_failed_attempts(&mut stats, &DestinationError::Invalid("no path".to_owned()));
        assert_eq!((stats.batches, stats.retries), (0, 0));
    }
}

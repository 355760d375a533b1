//! `ocapi reconcile --meta`: Meta's own count of the dataset's `Purchase` events per UTC day
//! beside the ledger's sent orders whose event time falls on that day (docs/meta-side.md,
//! "Meta's counts beside the ledger").
//!
//! Meta's figures come from `GET /{dataset_id}/stats?aggregation=event`, hourly buckets summed
//! per UTC day. Meta documents neither how soon events show there nor whether a bucket is the
//! hour of the event or of its receipt, so: the figures are labelled as Meta's, the age of the
//! newest bucket is shown, days younger than `reconcile.meta_settle` are left out of the
//! difference and of alerts, and nothing here fails the command. A settled day on which Meta
//! counts more than `alerts.meta_shortfall` (a share of the day's sent orders) fewer than
//! were sent is alerted once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::reconcile::{GroupBy, Report};
use crate::alerts::Alerter;
use crate::config::Config;
use crate::destination::meta::side::{edge_warning, MetaStats, EDGE_STATS};
use crate::destination::meta::token::READ_SCOPE;
use crate::destination::MetaDestination;
use crate::error::{Error, ExitStatus};

/// One UTC day, Meta's count beside the ledger's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetaDay {
    /// The UTC day.
    pub day: NaiveDate,
    /// `Purchase` events Meta counts on that day (its hourly buckets summed); `None` when its
    /// answer could not be read.
    pub meta_received: Option<u64>,
    /// Of those, Meta's count per event source (`/stats?aggregation=event_source`), where
    /// Meta answers it; `None` when it does not.
    pub meta_event_source: Option<BTreeMap<String, u64>>,
    /// Orders the ledger has as sent whose event time is on that day.
    pub ledger_sent: u64,
    /// `ledger_sent - meta_received` (positive: Meta counts fewer); `None` for a day younger
    /// than `reconcile.meta_settle`, or without Meta's figure.
    pub difference: Option<i64>,
    /// The day ended at least `reconcile.meta_settle` ago.
    pub settled: bool,
    /// The difference is above `alerts.meta_shortfall` of the day's sent orders.
    pub shortfall: bool,
}

/// Meta's side of the reconciliation.
#[derive(Debug, Clone, Serialize)]
pub struct MetaReconcile {
    /// Where the figures come from.
    pub source: &'static str,
    /// The start of the newest hourly bucket Meta answered with.
    pub newest_bucket: Option<DateTime<Utc>>,
    /// Its age in seconds at the time of the report.
    pub newest_bucket_age_seconds: Option<i64>,
    /// `reconcile.meta_settle`, in seconds.
    pub settle_seconds: u64,
    /// One entry per UTC day of the window.
    pub days: Vec<MetaDay>,
    /// Why Meta's figures are missing, when they are.
    pub warning: Option<String>,
}

/// `reconcile --json --meta`: the report with Meta's side.
#[derive(Debug, Serialize)]
struct WithMeta<'a> {
    /// The source-vs-ledger report.
    #[serde(flatten)]
    report: &'a Report,
    /// Meta's side.
    meta: &'a MetaReconcile,
}

/// Meta's counts for the report's days, judged at `now`.
pub fn compare(
    config: &Config,
    report: &Report,
    stats: Option<&MetaStats>,
    now: DateTime<Utc>,
) -> MetaReconcile {
    let settle = config.reconcile.meta_settle;
    let settle_secs = i64::try_from(settle.as_secs()).unwrap_or(i64::MAX);
    let sent_on = |day: NaiveDate| -> u64 {
        let group = day.to_string();
        report
            .lines
            .iter()
            .filter(|line| line.group == group)
            .map(|line| line.sent)
            .sum()
    };
    let days = report
        .from
        .iter_days()
        .take_while(|day| *day < report.to)
        .map(|day| {
            let end = (day + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc();
            let settled = (now - end).num_seconds() >= settle_secs;
            let ledger_sent = sent_on(day);
            let meta_received = stats.map(|s| s.days.get(&day).copied().unwrap_or(0));
            let difference = meta_received
                .filter(|_| settled)
                .map(|meta| ledger_sent as i64 - meta as i64);
            let shortfall = difference.is_some_and(|d| {
                d > 0 && d as f64 > config.alerts.meta_shortfall * ledger_sent as f64
            });
            MetaDay {
                day,
                meta_received,
                meta_event_source: stats.and_then(|s| s.sources.get(&day).cloned()),
                ledger_sent,
                difference,
                settled,
                shortfall,
            }
        })
        // Days with nothing on either side say nothing.
        .filter(|d| d.ledger_sent > 0 || d.meta_received.is_some_and(|m| m > 0))
        .collect();
    let newest_bucket = stats.and_then(|s| s.newest_bucket);
    MetaReconcile {
        source: "meta: GET /{dataset_id}/stats?aggregation=event, Purchase, hourly buckets \
                 summed per UTC day",
        newest_bucket,
        newest_bucket_age_seconds: newest_bucket.map(|b| (now - b).num_seconds()),
        settle_seconds: settle.as_secs(),
        days,
        warning: None,
    }
}

/// The alerts a comparison calls for, `(key, text)`: one per settled day short.
pub fn alerts(config: &Config, meta: &MetaReconcile) -> Vec<(String, String)> {
    meta.days
        .iter()
        .filter(|day| day.shortfall)
        .map(|day| {
            let difference = day.difference.unwrap_or_default();
            (
                format!("meta_shortfall:{}", day.day),
                format!(
                    "ocapi connector {:?}: Meta counts {} Purchase events on {} (UTC) where the \
                     ledger sent {}: {difference} fewer ({:.1}%, above alerts.meta_shortfall \
                     {}); see `ocapi reconcile --meta` and docs/meta-side.md",
                    config.connector.name,
                    day.meta_received.unwrap_or_default(),
                    day.day,
                    day.ledger_sent,
                    100.0 * difference as f64 / day.ledger_sent.max(1) as f64,
                    config.alerts.meta_shortfall
                ),
            )
        })
        .collect()
}

/// The comparison for people.
pub fn render(meta: &MetaReconcile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Meta's counts (its figures, not ocapi's: {})",
        meta.source
    );
    if let Some(warning) = &meta.warning {
        let _ = writeln!(out, "warn  {warning}");
    }
    match (meta.newest_bucket, meta.newest_bucket_age_seconds) {
        (Some(bucket), Some(age)) => {
            let _ = writeln!(
                out,
                "newest hourly bucket from Meta: {} ({} old); days younger than {} are left out \
                 of the difference",
                crate::human::instant(bucket),
                crate::human::duration(age as f64),
                crate::human::duration(meta.settle_seconds as f64)
            );
        }
        _ => {
            let _ = writeln!(out, "Meta answered no hourly bucket for the window");
        }
    }
    let by_source = meta.days.iter().any(|d| d.meta_event_source.is_some());
    let _ = writeln!(
        out,
        "{:<12} {:>14} {:>12} {:>11}{}",
        "day",
        "meta received",
        "ledger sent",
        "difference",
        if by_source {
            "  meta by event source"
        } else {
            ""
        }
    );
    for day in &meta.days {
        let received = day
            .meta_received
            .map_or_else(|| "-".to_owned(), |m| m.to_string());
        let (difference, note) = match day.difference {
            Some(d) if day.shortfall => (
                d.to_string(),
                format!(
                    "  Meta counts {:.1}% fewer",
                    100.0 * d as f64 / day.ledger_sent.max(1) as f64
                ),
            ),
            Some(d) => (d.to_string(), String::new()),
            None if !day.settled => ("-".to_owned(), "  not settled yet".to_owned()),
            None => ("-".to_owned(), String::new()),
        };
        let sources = match (&day.meta_event_source, by_source) {
            (Some(split), _) => {
                let list: Vec<String> = split
                    .iter()
                    .map(|(source, n)| format!("{} {n}", crate::escape::terminal(source)))
                    .collect();
                format!("  {}", list.join(", "))
            }
            (None, true) => "  -".to_owned(),
            (None, false) => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:>14} {:>12} {:>11}{sources}{note}",
            day.day, received, day.ledger_sent, difference
        );
    }
    if meta.days.iter().any(|d| d.shortfall) {
        let _ = writeln!(
            out,
            "Meta counts fewer than were sent on a settled day: open Events Manager (the dataset's \
             Overview, then Diagnostics), check the orders with `ocapi explain ORDER_ID`, and \
             see docs/meta-side.md"
        );
    }
    out
}

/// Reads Meta's counts for the report's window; a failure is a warning, never an error.
pub(crate) async fn read(config: &Config, report: &Report) -> Result<MetaStats, String> {
    let meta = MetaDestination::from_config(config)
        .map_err(|error| format!("cannot read Meta's counts: {error}"))?;
    let at = |day: NaiveDate| {
        day.and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp()
    };
    meta.purchase_stats(at(report.from), at(report.to))
        .await
        .map_err(|error| edge_warning(EDGE_STATS, READ_SCOPE, &error))
}

/// `ocapi reconcile --meta`: prints the report and Meta's side; alerts once per settled day
/// short. Exits 0 whatever Meta answers.
pub(crate) async fn command(
    config: &Config,
    report: &Report,
    json: bool,
) -> Result<ExitStatus, Error> {
    if report.by != GroupBy::Day {
        return Err(Error::Usage(
            "`--meta` compares per UTC day: use it with `--by day`".to_owned(),
        ));
    }
    let stats = read(config, report).await;
    let mut meta = compare(config, report, stats.as_ref().ok(), Utc::now());
    if let Err(warning) = stats {
        tracing::warn!("{warning}");
        meta.warning = Some(warning);
    }
    if let Some(alerter) = Alerter::from_config(&config.alerts)? {
        alerter.notify_once(config, &alerts(config, &meta)).await;
    }
    if json {
        super::print_json(&WithMeta {
            report,
            meta: &meta,
        })?;
    } else {
        print!("{}", super::reconcile::render(report));
        print!("{}", render(&meta));
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::reconcile::Line;

    #[test]
    fn only_settled_days_get_a_difference_and_only_a_shortfall_above_the_threshold_alerts() {
        let config =
            Config::parse(crate::config::TEST_CONFIG, std::path::Path::new("x.toml")).unwrap();
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        let line = |group: &str, sent: u64| Line {
            group: group.to_owned(),
            sent,
            ..Line::default()
        };
        let report = Report {
            from: day("2026-12-01"),
            to: day("2026-12-07"),
            by: GroupBy::Day,
            lines: vec![
                line("2026-12-01", 100),
                line("2026-12-02", 100),
                line("2026-12-05", 10),
            ],
            total: Line::default(),
            totals: Vec::new(),
        };
        let mut stats = MetaStats::default();
        stats.days.insert(day("2026-12-01"), 99);
        stats.days.insert(day("2026-12-02"), 97);
        stats.days.insert(day("2026-12-05"), 5);
        let now = day("2026-12-06").and_hms_opt(12, 0, 0).unwrap().and_utc();
        let meta = compare(&config, &report, Some(&stats), now);
        let got: Vec<(String, Option<i64>, bool, bool)> = meta
            .days
            .iter()
            .map(|d| (d.day.to_string(), d.difference, d.settled, d.shortfall))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-12-01".to_owned(), Some(1), true, false),
                ("2026-12-02".to_owned(), Some(3), true, true),
                ("2026-12-05".to_owned(), None, false, false),
            ]
        );
        let raised = alerts(&config, &meta);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].0, "meta_shortfall:2026-12-02");
        assert!(raised[0].1.contains("97 Purchase events"), "{raised:?}");
        // Without Meta's answer, days keep the ledger's figure and no difference.
        let blind = compare(&config, &report, None, now);
        assert!(blind
            .days
            .iter()
            .all(|d| d.difference.is_none() && !d.shortfall));
    }
}

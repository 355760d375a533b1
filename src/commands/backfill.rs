//! `ocapi backfill --from TIME --to TIME`: re-reads an event-time window regardless of the
//! watermark, which it leaves alone; the ledger still keeps every order to one send. Progress
//! shows as a bar (rows done, rate, ETA) when stderr is a terminal, else as log lines.

use std::future::Future;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::observe::RunObserver;
use crate::alerts::Alerter;
use crate::cli::{BackfillArgs, Cli};
use crate::config::Config;
use crate::db;
use crate::error::{Error, ExitStatus};
use crate::run::{self, Mode, Progress, RunOptions};
use crate::source::{self, EventTimeWindow, ReadQuery};
use crate::stats::RunStats;

/// Minimum time between two progress log lines when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// `ocapi backfill`: re-reads `[--from, --to)` and prints the run's stats.
pub(crate) async fn command(
    cli: &Cli,
    config: &Config,
    args: &BackfillArgs,
) -> Result<ExitStatus, Error> {
    let window = window(parse_time(&args.from)?, parse_time(&args.to)?)?;
    let options = RunOptions {
        max_invalid_ratio: args.max_invalid_ratio,
        ..RunOptions::default()
    };
    let alerts = Alerter::from_config(&config.alerts)?;
    let mut observer = RunObserver::once(cli.metrics_file.clone(), alerts);
    observer.recall(config).await;
    let result = backfill(config, window, options, super::shutdown_signal()).await;
    observer
        .finished(config, &super::finished(config, &result))
        .await?;
    let stats = result?;
    if args.json {
        super::print_json(&stats)?;
    } else {
        print!("{stats}");
    }
    Ok(ExitStatus::of_run(&stats))
}

/// Parses a time for `--from`/`--to`: RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) or a date
/// (midnight UTC).
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, Error> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(Error::Usage(format!(
        "{t:?} is not a time: use RFC 3339 (\"2026-11-01T00:00:00Z\") or a date (\"2026-11-01\")"
    )))
}

/// The window `[from, to)`, checked to be non-empty.
pub fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<EventTimeWindow, Error> {
    if to <= from {
        return Err(Error::Usage("`--to` must be after `--from`".to_owned()));
    }
    Ok(EventTimeWindow {
        from: from.timestamp() as f64,
        to: to.timestamp() as f64,
    })
}

/// Counts the source rows in the window, for the progress bar's length and ETA.
pub async fn count(config: &Config, window: &EventTimeWindow) -> Result<u64, Error> {
    let pool = db::pool(&config.source_url()?, "source", 1)?;
    let client = db::connect(&pool, "source").await?;
    let table = source::describe(&client, config).await?;
    let query = ReadQuery::new(config, &table);
    Ok(source::count_rows(&client, &query, window).await?)
}

/// Runs the backfill with a progress display; `options` supplies the ratio and metrics-free
/// rest of the run's options, its mode and window are set here.
pub async fn backfill(
    config: &Config,
    window: EventTimeWindow,
    mut options: RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunStats, Error> {
    let total = count(config, &window).await?;
    tracing::info!(rows = total, "backfilling an event-time window");
    let display = Display::new(total);
    options.mode = Mode::Backfill;
    options.window = Some(window);
    options.progress = Some(display.callback());
    let result = run::run(config, options, shutdown).await;
    display.finish();
    result
}

/// The progress display: a bar on a terminal, log lines elsewhere.
struct Display {
    /// The bar, when stderr is a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// Rows in the window.
    total: u64,
    /// When the backfill started.
    started: Instant,
    /// When the last log line was written.
    last_log: Arc<Mutex<Instant>>,
}

impl Display {
    /// A display for `total` rows.
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            crate::commands::progress::set_active(Some(&bar));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            total,
            started: now,
            last_log: Arc::new(Mutex::new(now)),
        }
    }

    /// The callback the run calls after each committed page.
    fn callback(&self) -> Progress {
        let bar = self.bar.clone();
        let total = self.total;
        let started = self.started;
        let last_log = Arc::clone(&self.last_log);
        Arc::new(move |stats: &RunStats| {
            if let Some(bar) = &bar {
                bar.set_position(stats.rows_read);
                return;
            }
            let mut last = last_log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() < LOG_EVERY && stats.rows_read < total {
                return;
            }
            *last = Instant::now();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let rate = stats.rows_read as f64 / secs;
            let eta_secs = if rate > 0.0 {
                (total.saturating_sub(stats.rows_read) as f64 / rate).round() as u64
            } else {
                0
            };
            tracing::info!(
                rows_done = stats.rows_read,
                rows_total = total,
                rows_per_sec = rate.round() as u64,
                eta_secs,
                sent = stats.sent,
                "backfill progress"
            );
        })
    }

    /// Clears the bar.
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            crate::commands::progress::set_active(None);
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_dates_in_utc() {
        let at = parse_time("2026-11-01T10:00:00+01:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-01T09:00:00+00:00");
        let day = parse_time("2026-11-01").unwrap();
        assert_eq!(day.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert!(parse_time("yesterday").is_err());
        assert!(window(day, day).is_err());
    }
}

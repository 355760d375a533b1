//! One sync pass: read → transform → send → ledger → stats, one stage per child module.
//!
//! Three stages overlap. The reader task (`reader`) streams the source's changed orders (every
//! row of each, see `source`) in pages of whole orders and transforms them; the scheduler
//! (`send`) decides each page's orders against the ledger (`dedup`, a pure policy) and sends
//! its batches, up to `destination.concurrency` requests in flight; batches come back in page
//! order, and when the last batch of a page is back, its `sent`, `rejected` and `invalid` rows
//! and the watermark advance commit in one transaction, on one committer task, while the next
//! pages are sent. A dry run (`dry_run`) prints the events instead of sending them.
//!
//! Each order is written to the ledger once. A run that fails or is killed at any point loses
//! no order: the watermark never passes an order whose ledger row is not committed, so the next
//! run reads the dead run's in-flight orders again and sends them with the same `event_id`,
//! `order_id` and `event_time`, which Meta deduplicates.

mod dedup;
mod history;
mod dry_run;
mod meta_life;
mod reader;
mod send;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio_postgres::Client;

use crate::config::{Config, ConfigError};
use crate::db;
use crate::destination::Destination;
use crate::error::Error;
use crate::ledger::{ensure_schema, Ledger};
use crate::lock::{LockError, RunLock};
use crate::source::{self, EventTimeWindow, Filter, SourceTable};
use crate::stats::{RunStats, RunStatus};
use crate::transform;

/// What kind of pass this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An incremental sync from the watermark.
    Run,
    /// A re-read of an event-time window that leaves the watermark alone.
    Backfill,
}

impl Mode {
    /// The text stored in `runs.mode`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Backfill => "backfill",
        }
    }
}

/// How far back a run without ledger state sends, unless `source.start` is set or it is given
/// `--initial-sync`: 7 days, in seconds. Such a run cannot tell a first install from a dropped
/// ledger, and Meta deduplicates offline (`physical_store`) events on order id and event time
/// within 7 days at most (Meta's offline-conversions dedup rules), so older orders a dropped
/// ledger had sent would be counted twice.
pub const RECENT_SECS: i64 = 7 * 86_400;

/// A callback told the running stats after each committed page (progress bars).
pub(crate) type Progress = Arc<dyn Fn(&RunStats) + Send + Sync>;

/// How to run a pass.
#[derive(Clone)]
pub struct RunOptions {
    /// Run or backfill.
    pub mode: Mode,
    /// Print events as NDJSON on stdout and write nothing anywhere.
    pub dry_run: bool,
    /// Stop after about this many source rows.
    pub limit: Option<u64>,
    /// Backfill: the event-time window.
    pub window: Option<EventTimeWindow>,
    /// A completed run above this share of invalid or rejected rows is `degraded`.
    pub max_invalid_ratio: Option<f64>,
    /// `--initial-sync`: a run without ledger state and without `source.start` sends the
    /// history older than [`RECENT_SECS`] too.
    pub initial_sync: bool,
    /// Told the stats after each page.
    pub progress: Option<Progress>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Run,
            dry_run: false,
            limit: None,
            window: None,
            max_invalid_ratio: None,
            initial_sync: false,
            progress: None,
        }
    }
}

/// Runs one sync pass. `shutdown` resolving stops it after the page in flight, committed.
///
/// A dry run reads the ledger (when it has been migrated) but writes nothing anywhere and
/// sends nothing: it prints, as NDJSON on stdout, exactly the events a real run would send now,
/// and counts what a real run would count.
pub async fn run(
    config: &Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunStats, Error> {
    let started = Instant::now();
    // Cancelled when `shutdown` resolves during the pass: every wait of the destination ends.
    let stop = tokio_util::sync::CancellationToken::new();
    // Only phone numbers need it. Not awaited: the first page's normalization waits for it if
    // it is not done by then.
    if config.mapping.phone.is_some() {
        drop(tokio::task::spawn_blocking(
            crate::transform::normalize::warm_up,
        ));
    }
    // Every wait on either database has a bound (issue 23): connecting within
    // `connect_timeout`, each statement (and each page of the streamed read) within
    // `stall_timeout`. The pools live as long as this run, so a connection left mid-statement
    // by a stall is closed with them, which ends its session and frees its locks.
    let source_pool =
        db::pool(&config.source_url()?, "source", 2)?.with_timeouts(db::Timeouts::source(config));
    let source_client = db::connect(&source_pool, "source").await?;
    let table = source_pool
        .within(
            "describing the source table",
            source::describe(&source_client, config),
        )
        .await?;
    // The one clock this run judges event times by (see `source::Clock`).
    let clock = source_pool
        .within(
            "reading the source database's clock",
            source::clock(&source_client),
        )
        .await?;
    if let Some(warning) = clock.skew_warning() {
        tracing::warn!("{warning}");
    }
    let mut stats = RunStats::new(&config.connector.name);
    let ledger_pool =
        db::pool(&config.ledger_url()?, "ledger", 4)?.with_timeouts(db::Timeouts::ledger(config));
    if !options.dry_run {
        crate::lock::refuse_transaction_pooler(&ledger_pool).await?;
    }
    let mut ledger_client = db::connect(&ledger_pool, "ledger").await?;
    let ledger = Ledger::new(
        &config.ledger.schema,
        &config.connector.name,
        &config.destination.dataset_id,
    );
    let schema_ready = ledger_pool.within(
        "reading the ledger schema's version",
        ensure_schema(&ledger_client, &config.ledger.schema),
    );
    // A dry run reads a ledger that exists and treats a missing one as empty.
    let ledger_ready = if options.dry_run {
        schema_ready.await.is_ok()
    } else {
        schema_ready.await?;
        true
    };
    // Held until this function returns, so the run's end is recorded under the lock.
    let lock = if options.dry_run {
        None
    } else {
        match RunLock::acquire(&ledger_pool, config).await {
            Ok(lock) => Some(Arc::new(lock)),
            // An overlapping incremental run (cron starting while a slow run goes) is not a
            // failure: the run holding the lock does the work. A backfill was asked for by a
            // person and has not happened: it fails (exit 1).
            Err(error @ LockError::Held { .. }) if options.mode == Mode::Run => {
                tracing::warn!(error = %error, "another run holds the lock; skipped");
                stats.status = RunStatus::Skipped;
                stats.note = Some(format!("skipped: {error}"));
                stats.duration_ms = elapsed_ms(started);
                return Ok(stats);
            }
            Err(error) => return Err(error.into()),
        }
    };
    let destination = if options.dry_run {
        None
    } else {
        // An unset token variable or an unreadable token file is a configuration error
        // (exit 2, and `watch` stops): no retry can fix it.
        if config.destination.kind == crate::config::DestinationKind::Meta {
            config.access_token()?;
            config.app_secret()?;
        }
        Some(Arc::new(
            Destination::from_config(config)?.stopping_on(stop.clone()),
        ))
    };
    if let Some(Destination::Meta(meta)) = destination.as_deref() {
        meta_life::read(config, meta, &mut stats).await?;
    }
    if !options.dry_run {
        stats.run_id = ledger_pool
            .within(
                "recording the run's start",
                ledger.start_run(&ledger_client, options.mode.as_str()),
            )
            .await?;
        ledger_pool
            .within(
                "closing interrupted runs",
                report_interrupted_runs(&ledger, &ledger_client, stats.run_id),
            )
            .await?;
        // Keys written under an earlier rule (`1001.0` for a numeric id) follow the id
        // column's type from now on; `migrate` has usually done it and says so.
        let conversion = ledger_pool
            .within(
                "converting the ledger's order keys",
                ledger.convert_keys(&mut ledger_client, table.id_kind),
            )
            .await?;
        if !conversion.already {
            tracing::info!(conversion = %conversion.summary(), "ledger keys");
        }
    }

    let mut recent_from = None;
    let mut first_run = true;
    let result = async {
        // Before anything is sent, the ledger table must take a write (issue 23): a ledger
        // that cannot record what is sent would have every later run send it again.
        if !options.dry_run {
            ledger_pool
                .within(
                    "checking that the ledger can be written",
                    ledger.check_writable(&ledger_client),
                )
                .await?;
        }
        let sessions = Sessions {
            source: &source_client,
            source_pool: &source_pool,
            ledger: &ledger_client,
            ledger_pool: &ledger_pool,
        };
        let filter = start_filter(
            config,
            &options,
            ledger_ready.then_some(&ledger),
            &sessions,
            &table,
            &mut stats,
        )
        .await?;
        recent_from = history::floor(
            config,
            &options,
            ledger_ready.then_some(&ledger),
            &sessions,
            stats.watermark_start.is_none(),
            clock.now(),
        )
        .await?;
        first_run = stats.watermark_start.is_none();
        let held = if ledger_ready && options.mode == Mode::Run {
            let due = clock.now() + transform::MAX_FUTURE_SECS;
            ledger_pool
                .within(
                    "reading the held orders now due",
                    ledger.due_held(&ledger_client, due),
                )
                .await?
        } else {
            Vec::new()
        };
        drop(source_client);
        let committed = stats
            .watermark_start
            .clone()
            .filter(|_| options.mode == Mode::Run);
        let shared = SharedStats::new(std::mem::replace(
            &mut stats,
            RunStats::new(&config.connector.name),
        ));
        let pass = send::Pass {
            ledger: ledger.clone(),
            pool: ledger_pool.clone(),
            batch_size: config.destination.batch_size,
            concurrency: config.destination.concurrency,
            destination,
            ledger_ready,
            stats: shared.clone(),
            run_id: shared.update(|stats| stats.run_id),
            watermark_kind: table.watermark_kind,
            advance: options.mode == Mode::Run,
            progress: options.progress.clone(),
            in_flight: send::InFlight::default(),
            lock: lock.as_ref().map(Arc::clone),
            stop,
            clock,
        };
        let read = reader::ReadPlan {
            clock,
            filter,
            held,
            committed: committed.as_deref(),
            recent_from,
        };
        let pages = reader::pages(config, &source_pool, &table, read, &options);
        let result = Arc::new(pass).drive(pages, shutdown).await;
        // Whatever the outcome, the stats counted so far are the run's.
        stats = shared.update(|stats| stats.clone());
        result
    }
    .await;

    stats.duration_ms = elapsed_ms(started);
    if let Some(from) = recent_from.filter(|_| stats.history_left > 0) {
        stats.note = Some(history::note(stats.history_left, from, first_run));
        tracing::warn!(
            left = stats.history_left,
            "{}",
            stats.note.as_deref().unwrap_or_default()
        );
    }
    stats.status = match &result {
        Ok(()) if exceeds(&stats, options.max_invalid_ratio) => {
            stats.error = Some(format!(
                "{} invalid (returns and orders too old to send left out) and {} rejected orders \
                 are {:.1}% of the orders that could be sent, above --max-invalid-ratio {}; see \
                 `ocapi reconcile` for the reasons",
                stats.invalid_counted(),
                stats.rejected,
                100.0 * stats.invalid_ratio(),
                options.max_invalid_ratio.unwrap_or(1.0)
            ));
            RunStatus::Degraded
        }
        Ok(()) if stats.ahead_of_clock > 0 => {
            stats.error = Some(format!(
                "{} orders have a watermark ({}) ahead of the source database's clock; the \
                 watermark was not advanced past the clock (fix the rows, see `ocapi check`)",
                stats.ahead_of_clock,
                config.source.watermark_column()
            ));
            RunStatus::Degraded
        }
        Ok(()) => RunStatus::Completed,
        Err(error) => {
            stats.error = Some(crate::error::chain(error));
            RunStatus::Failed
        }
    };
    if options.dry_run {
        return result.map(|()| stats);
    }
    // A ledger that stopped answering would hold the end's record for another stall bound
    // (the run then took twice its `stall_timeout`): the next run records this one as
    // interrupted instead.
    let stalled = match &result {
        Err(Error::Db(db::DbError::Stalled { what, .. }))
        | Err(Error::Source(source::SourceError::Db(db::DbError::Stalled { what, .. }))) => {
            Some(*what)
        }
        Err(Error::LockLost(lost)) if lost.stalled() => Some("ledger"),
        _ => None,
    };
    if stalled.is_some_and(|what| what == "ledger" || config.ledger_shares_source()) {
        tracing::warn!(
            run_id = stats.run_id,
            "the ledger's database stopped answering: the run's end is not recorded, the next \
             run records it as interrupted"
        );
        return result.map(|()| stats);
    }
    let finished = ledger_pool
        .within(
            "recording the run's end",
            ledger.finish_run(&ledger_client, &stats),
        )
        .await;
    if let Err(error) = finished {
        // A run that failed (its connections cut, say) reports why it failed, not this.
        if result.is_ok() {
            return Err(error.into());
        }
        tracing::error!(error = %crate::error::chain(&error), "the failed run's stats could not be stored");
    }
    tracing::info!(
        run_id = stats.run_id,
        status = stats.status.as_str(),
        rows_read = stats.rows_read,
        sent = stats.sent,
        skipped_duplicate = stats.skipped_duplicate,
        invalid = stats.invalid,
        anonymous = stats.anonymous,
        held = stats.held,
        rejected = stats.rejected,
        retries = stats.retries,
        batches = stats.batches,
        duration_ms = stats.duration_ms,
        "run finished"
    );
    result.map(|()| stats)
}

/// Whether the share of invalid or rejected rows is above the limit.
fn exceeds(stats: &RunStats, limit: Option<f64>) -> bool {
    limit.is_some_and(|limit| stats.invalid_ratio() > limit)
}

/// Milliseconds since `started`.
fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What an incremental run reads: the orders changed since the stored watermark minus the
/// lookback, else since `source.start`, else (a time watermark) since 62 days ago, the oldest
/// a store event may be; an integer watermark without `source.start` reads the whole table. A
/// backfill reads its event-time window.
async fn start_filter(
    config: &Config,
    options: &RunOptions,
    ledger: Option<&Ledger>,
    sessions: &Sessions<'_>,
    table: &SourceTable,
    stats: &mut RunStats,
) -> Result<Filter, Error> {
    let source_client = sessions.source;
    let stored = match ledger {
        Some(ledger) => {
            sessions
                .ledger_pool
                .within("reading the watermark", ledger.watermark(sessions.ledger))
                .await?
        }
        None => None,
    };
    let bounded = sessions.source_pool;
    stats.watermark_start = stored.as_ref().map(|(w, _)| w.clone());
    stats.watermark_end = stats.watermark_start.clone();
    if let Some(window) = options.window {
        return Ok(Filter::Window(window));
    }
    let kind = table.watermark_kind;
    match stored {
        Some((watermark, stored_kind)) if stored_kind.is_none_or(|k| k == kind) => {
            let amount = config
                .source
                .lookback
                .check(kind == source::WatermarkKind::Integer, "source.lookback")?;
            let from = if amount == 0 {
                watermark
            } else {
                bounded
                    .within(
                        "reading the source's clock",
                        source::minus_lookback(source_client, kind, &watermark, amount),
                    )
                    .await?
            };
            Ok(Filter::Delta(Some(from)))
        }
        // The config no longer fits the ledger: a configuration error (exit 2), which no
        // retry by `watch` can fix.
        Some((_, Some(stored_kind))) => Err(ConfigError::Invalid {
            key: "source.watermark_column",
            constraint: format!(
                "is now a {} but the stored watermark is a {}; reset it with \
                 `delete from {}.state where connector = '{}'` after checking",
                kind.sql_type(),
                stored_kind.sql_type(),
                config.ledger.schema,
                config.connector.name
            ),
        }
        .into()),
        _ => match &config.source.start {
            Some(start) => {
                let start = bounded
                    .within(
                        "checking `source.start`",
                        source::check_watermark(source_client, kind, start),
                    )
                    .await?;
                Ok(Filter::Delta(Some(start)))
            }
            None => Ok(Filter::Delta(
                bounded
                    .within(
                        "reading the source's clock",
                        source::default_start(source_client, kind, &config.source.timezone),
                    )
                    .await?,
            )),
        },
    }
}

/// The run's two first sessions and the pools (with their bounds) they came from.
pub(super) struct Sessions<'a> {
    /// The source session that described the table.
    source: &'a Client,
    /// Its pool.
    source_pool: &'a db::Pool,
    /// The ledger session that records the run.
    ledger: &'a Client,
    /// Its pool.
    ledger_pool: &'a db::Pool,
}

/// Closes the runs of this connector that a dead process left `running` and says what they
/// leave to do: an incremental run's orders are read again from the watermark by this run, a
/// backfill's window must be backfilled again.
async fn report_interrupted_runs(
    ledger: &Ledger,
    client: &Client,
    run_id: i64,
) -> Result<(), Error> {
    for (interrupted, mode) in ledger.close_interrupted_runs(client, run_id).await? {
        let (kind, to_do) = if mode == Mode::Backfill.as_str() {
            (
                "backfill run",
                "run the same backfill again (orders it sent are skipped)",
            )
        } else {
            (
                "run",
                "its unfinished orders are read again from the watermark",
            )
        };
        tracing::warn!(
            run_id = interrupted,
            "{kind} {interrupted} was interrupted; {to_do}"
        );
    }
    Ok(())
}

/// The run's stats, counted by the stages as they go: pages as they are decided, batches as
/// they finish (failed ones included), pages as they commit. Locked only for counting, never
/// across an await.
#[derive(Clone)]
struct SharedStats(Arc<Mutex<RunStats>>);

impl SharedStats {
    /// Shares `stats`.
    fn new(stats: RunStats) -> Self {
        Self(Arc::new(Mutex::new(stats)))
    }

    /// Runs `f` on the stats (a poisoned lock still counts: a counter is never half-written).
    fn update<R>(&self, f: impl FnOnce(&mut RunStats) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Aborts a spawned task when its future is dropped: a run that stops on an error must not
/// leave requests going out behind it (their orders have no ledger row and the watermark has
/// not passed them, so the next run sends them). `send.rs` wraps each batch's send in it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_task_that_panicked_fails_the_run_and_is_not_a_configuration_error() {
        let joined = tokio::spawn(async { panic!("a bug in a worker task") }).await;
        let error = Error::TaskFailed(joined.expect_err("the task panicked"));
        assert!(!error.is_config());
    }
}

//! One sync pass: read → transform → send → ledger → stats.
//!
//! Three stages overlap. A reader task streams the source's changed orders (every row of each,
//! see `source`) in pages of whole orders and transforms them; the main loop
//! decides each page's orders against the ledger and starts its batches, up to
//! `destination.concurrency` requests in flight; batch results come back in page order, and
//! when the last batch of a page is back, its `sent`, `rejected` and `invalid` rows and the
//! watermark advance commit in one transaction, on their own task while the next page is sent.
//!
//! Each order is written to the ledger once. A run that fails or is killed at any point loses
//! no order: the watermark never passes an order whose ledger row is not committed, so the next
//! run reads the dead run's in-flight orders again and sends them with the same `event_id`,
//! `order_id` and `event_time`, which Meta deduplicates.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use deadpool_postgres::Pool;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::config::Config;
use crate::db;
use crate::destination::{Delivery, Destination, DestinationError};
use crate::error::Error;
use crate::event::Event;
use crate::ledger::{Existing, Ledger, OrderFacts, Outcome, Status, Verdict};
use crate::lock::RunLock;
use crate::source::{self, EventTimeWindow, Filter, ReadQuery, SourceTable, WatermarkKind};
use crate::stats::{RunStats, RunStatus};
use crate::transform::{self, Built, Invalid, InvalidReason, Rules};

/// Pages read ahead of the one being recorded: one keeps requests flowing (measured: the same
/// rows/s as two, within noise) and bounds memory lower (132-138 MiB vs 150-153 MiB at 100k rows).
const PAGES_AHEAD: usize = 1;

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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Backfill => "backfill",
        }
    }
}

/// A callback told the running stats after each committed page (progress bars).
pub type Progress = Arc<dyn Fn(&RunStats) + Send + Sync>;

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
            progress: None,
        }
    }
}

/// A page, read and transformed.
#[derive(Debug, Default)]
struct PagePlan {
    /// Source rows in it.
    rows: u64,
    /// Orders that became events.
    built: Vec<Built>,
    /// Orders that could not.
    invalid: Vec<Invalid>,
    /// The watermark of its last order, where the watermark may advance once the page is
    /// committed; `None` for pages that must not move it (held orders read by id).
    last_watermark: Option<String>,
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
    // Only phone numbers need it. Not awaited: the first page's normalization waits for it if
    // it is not done by then.
    if config.mapping.phone.is_some() {
        drop(tokio::task::spawn_blocking(
            crate::transform::normalize::warm_up,
        ));
    }
    let source_pool = db::pool(&config.source_url()?, "source", 2)?;
    let source_client = db::connect(&source_pool, "source").await?;
    let table = source::describe(&source_client, config).await?;
    let mut stats = RunStats::new(&config.connector.name);
    let ledger_pool = db::pool(&config.ledger_url()?, "ledger", 4)?;
    if !options.dry_run {
        crate::lock::refuse_transaction_pooler(&ledger_pool).await?;
    }
    let ledger_client = db::connect(&ledger_pool, "ledger").await?;
    let ledger = Ledger::new(
        &config.ledger.schema,
        &config.connector.name,
        &config.destination.dataset_id,
    );
    // A dry run reads a ledger that exists and treats a missing one as empty.
    let ledger_ready = if options.dry_run {
        ensure_schema(&ledger_client, &config.ledger.schema)
            .await
            .is_ok()
    } else {
        ensure_schema(&ledger_client, &config.ledger.schema).await?;
        true
    };
    // Held until this function returns, so the run's end is recorded under the lock.
    let lock = if options.dry_run {
        None
    } else {
        Some(Arc::new(RunLock::acquire(&ledger_pool, config).await?))
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
        Some(Arc::new(Destination::from_config(config)?))
    };
    if !options.dry_run {
        stats.run_id = ledger
            .start_run(&ledger_client, options.mode.as_str())
            .await?;
        report_interrupted_runs(&ledger, &ledger_client, stats.run_id).await?;
    }

    let result = async {
        let filter = start_filter(
            config,
            &options,
            ledger_ready.then_some(&ledger),
            &ledger_client,
            &table,
            &source_client,
            &mut stats,
        )
        .await?;
        let held = if ledger_ready && options.mode == Mode::Run {
            let due = chrono::Utc::now().timestamp() + transform::MAX_FUTURE_SECS;
            ledger.due_held(&ledger_client, due).await?
        } else {
            Vec::new()
        };
        drop(source_client);
        let committed = stats
            .watermark_start
            .clone()
            .filter(|_| options.mode == Mode::Run);
        let mut sync = Pipeline {
            config,
            ledger: &ledger,
            ledger_ready,
            pool: &ledger_pool,
            destination,
            stats: &mut stats,
            watermark_kind: table.watermark_kind,
            advance: options.mode == Mode::Run,
            progress: options.progress.clone(),
            in_flight: HashSet::new(),
            lock: lock.as_ref().map(Arc::clone),
        };
        let pages = spawn_reader(
            config,
            &source_pool,
            &table,
            filter,
            held,
            committed.as_deref(),
            &options,
        );
        sync.drive(pages, shutdown).await
    }
    .await;

    stats.duration_ms = elapsed_ms(started);
    stats.status = match &result {
        Ok(()) if exceeds(&stats, options.max_invalid_ratio) => RunStatus::Degraded,
        Ok(()) if stats.ahead_of_clock > 0 => {
            stats.error = Some(format!(
                "{} orders have a watermark ({}) ahead of the source database's clock; the \
                 watermark was not advanced past the clock (fix the rows, see `ocapi check`)",
                stats.ahead_of_clock, config.source.watermark_column
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
    if let Err(error) = ledger.finish_run(&ledger_client, &stats).await {
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

/// Fails unless the ledger schema is at this build's version.
pub async fn ensure_schema(client: &Client, schema: &str) -> Result<(), Error> {
    match db::schema_version(client, schema).await? {
        Some(version) if version >= db::latest_migration() => Ok(()),
        Some(version) => Err(Error::SchemaNotReady {
            schema: schema.to_owned(),
            found: format!(
                "at version {version}, older than this build's {}",
                db::latest_migration()
            ),
        }),
        None => Err(Error::SchemaNotReady {
            schema: schema.to_owned(),
            found: "missing".to_owned(),
        }),
    }
}

/// What an incremental run reads: the orders changed since the stored watermark minus the
/// lookback, else since `source.start`, else (a time watermark) since 62 days ago, the oldest
/// a store event may be; an integer watermark without `source.start` reads the whole table. A
/// backfill reads its event-time window.
async fn start_filter(
    config: &Config,
    options: &RunOptions,
    ledger: Option<&Ledger>,
    ledger_client: &Client,
    table: &SourceTable,
    source_client: &Client,
    stats: &mut RunStats,
) -> Result<Filter, Error> {
    let stored = match ledger {
        Some(ledger) => ledger.watermark(ledger_client).await?,
        None => None,
    };
    stats.watermark_start = stored.as_ref().map(|(w, _)| w.clone());
    stats.watermark_end = stats.watermark_start.clone();
    if let Some(window) = options.window {
        return Ok(Filter::Window(window));
    }
    let kind = table.watermark_kind;
    match stored {
        Some((watermark, stored_kind)) if stored_kind.is_none_or(|k| k == kind) => {
            let from = if config.source.lookback.is_zero() {
                watermark
            } else {
                source::minus_lookback(source_client, kind, &watermark, config.source.lookback)
                    .await?
            };
            Ok(Filter::Delta(Some(from)))
        }
        Some((_, Some(stored_kind))) => Err(Error::Usage(format!(
            "the stored watermark is a {} but `source.watermark_column` is now a {}; \
             reset it with `delete from {}.state where connector = '{}'` after checking",
            stored_kind.sql_type(),
            kind.sql_type(),
            config.ledger.schema,
            config.connector.name
        ))),
        _ => match &config.source.start {
            Some(start) => {
                let start = source::check_watermark(source_client, kind, start).await?;
                Ok(Filter::Delta(Some(start)))
            }
            None => Ok(Filter::Delta(
                source::default_start(source_client, kind, &config.source.timezone).await?,
            )),
        },
    }
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

/// What the ledger needs of a sent event besides the event: its source watermark and store.
#[derive(Debug)]
struct Tag {
    /// The source watermark of the version sent.
    watermark: String,
    /// The store, when mapped.
    store_id: Option<String>,
    /// The ledger held no row for the order when its page was read.
    new: bool,
}

/// One request's events, with their tags in the same order.
#[derive(Debug, Default)]
struct Batch {
    /// The events, as sent.
    events: Vec<Event>,
    /// `tags[i]` belongs to `events[i]`.
    tags: Vec<Tag>,
}

/// The ledger rows of one page, waiting for the page's last batch.
#[derive(Debug, Default)]
struct PageOutcome {
    /// Sent and rejected orders.
    outcomes: Vec<Outcome>,
}

impl PageOutcome {
    /// Adds one batch's delivery; counts match keys of accepted events.
    fn add(&mut self, batch: Batch, delivery: Delivery, stats: &mut RunStats) {
        stats.retries += u64::from(delivery.retries);
        stats.batches += u64::from(delivery.requests);
        self.outcomes.reserve(batch.events.len());
        let mut slots: Vec<Option<(Event, Tag)>> =
            batch.events.into_iter().zip(batch.tags).map(Some).collect();
        let mut take = |index: usize| slots.get_mut(index).and_then(Option::take);
        let accepted_at = chrono::Utc::now().timestamp();
        for accepted in delivery.accepted {
            let received = i32::try_from(accepted.events_received).unwrap_or(i32::MAX);
            for index in accepted.indices {
                let Some((event, tag)) = take(index) else {
                    continue;
                };
                for key in event.user_data.present_keys() {
                    RunStats::bump(&mut stats.match_keys, key, 1);
                }
                stats.accepted(event.event_time, accepted_at);
                self.outcomes.push(Outcome {
                    new: tag.new,
                    order: OrderFacts::from_event(event, tag.watermark, tag.store_id),
                    verdict: Verdict::Sent {
                        fbtrace_id: accepted.fbtrace_id.clone(),
                        events_received: received,
                    },
                });
            }
        }
        for rejected in delivery.rejected {
            let Some((event, tag)) = take(rejected.index) else {
                continue;
            };
            tracing::warn!(order_id = %event.custom_data.order_id, "event rejected by the destination");
            self.outcomes.push(Outcome {
                new: tag.new,
                order: OrderFacts::from_event(event, tag.watermark, tag.store_id),
                verdict: Verdict::from(rejected),
            });
        }
    }
}

/// Starts the reader task: first the held orders whose time has come (read by order id), then
/// the source's changed orders in watermark order, transformed, through a bounded channel.
fn spawn_reader(
    config: &Config,
    pool: &Pool,
    table: &SourceTable,
    filter: Filter,
    held: Vec<String>,
    committed: Option<&str>,
    options: &RunOptions,
) -> mpsc::Receiver<Result<PagePlan, Error>> {
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    let pool = pool.clone();
    let committed = committed.map(str::to_owned);
    let query = ReadQuery::new(config, table);
    let rules = Rules::from_config(config);
    let page_size = config.source.batch_size.get();
    let limit = options.limit;
    let window = options.window;
    let advance = options.mode == Mode::Run;
    tokio::spawn(async move {
        let result = async {
            let client = db::connect(&pool, "source").await?;
            let plan = |rows: Vec<source::SourceRow>, advance: bool| {
                let rules = rules.clone();
                async move {
                    tokio::task::spawn_blocking(move || plan_page(&rows, &rules, window, advance))
                        .await
                        .map_err(|error| Error::Usage(format!("transform task failed: {error}")))
                }
            };
            if !held.is_empty() {
                let rows = source::read_orders(&client, &query, &held).await?;
                let found: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
                // A held order deleted from the source (a voided sale) is recorded so, not
                // asked for again on every run.
                let gone: Vec<Invalid> = held
                    .iter()
                    .filter(|id| !found.contains(id.as_str()))
                    .map(|id| Invalid {
                        order_id: Some(id.clone()),
                        reason: InvalidReason::HeldOrderGone,
                        event_time: None,
                        value: None,
                        currency: None,
                        watermark: String::new(),
                        store_id: None,
                    })
                    .collect();
                let mut held_page = plan(rows, false).await?;
                held_page.invalid.extend(gone);
                if tx.send(Ok(held_page)).await.is_err() {
                    return Ok(());
                }
            }
            let mut reader =
                source::Reader::start_after(&client, &query, &filter, committed.as_deref()).await?;
            let mut read = 0u64;
            let finished = loop {
                let remaining = limit.map_or(usize::MAX, |l| {
                    usize::try_from(l.saturating_sub(read)).unwrap_or(usize::MAX)
                });
                if remaining == 0 {
                    break false;
                }
                let mut page = reader.next_page(page_size.min(remaining)).await?;
                // The last page a `--limit` allows ends where the watermark changes.
                if remaining <= page_size {
                    if let Some(last) = page.rows.last().map(|r| r.watermark.clone()) {
                        page.rows
                            .extend(reader.rest_of_watermark(&last).await?.rows);
                    }
                }
                if page.rows.is_empty() {
                    break true;
                }
                // Rows read again (at or before the stored watermark) do not count toward
                // `--limit`, or a limit smaller than a tie on one watermark would never progress.
                read += page.rows.iter().filter(|r| !r.reread).count() as u64;
                if tx.send(Ok(plan(page.rows, advance).await?)).await.is_err() {
                    break false;
                }
            };
            if finished {
                reader.finish(&client).await?;
            } else {
                // Stopped early (`--limit`, or the run stopped): close the connection, which
                // ends the statement, rather than let the driver drain the rest of it.
                drop(reader);
                drop(deadpool_postgres::Object::take(client));
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(error) = result {
            let _ = tx.send(Err(error)).await;
        }
    });
    rx
}

/// Transforms one page of rows into events and invalid orders, judged now. With a window
/// (backfill, reconcile), orders whose exact event time falls outside it are left out: the
/// database's filter is wider for local times.
fn plan_page(
    rows: &[source::SourceRow],
    rules: &Rules,
    window: Option<EventTimeWindow>,
    advance: bool,
) -> PagePlan {
    let now = chrono::Utc::now().timestamp();
    let inside = |t: Option<i64>| {
        window.is_none_or(|w| t.is_none_or(|t| (t as f64) >= w.from && (t as f64) < w.to))
    };
    let mut plan = PagePlan {
        rows: rows.len() as u64,
        // At most one event per row: reserved once, not regrown (and moved) page after page.
        built: Vec::with_capacity(rows.len()),
        last_watermark: rows
            .last()
            .map(|r| r.watermark.clone())
            .filter(|w| advance && !w.is_empty()),
        ..PagePlan::default()
    };
    for order in transform::orders(rows) {
        match transform::build(order, rules, now) {
            Ok(built) if inside(Some(built.event.event_time)) => plan.built.push(built),
            Err(invalid) if inside(invalid.event_time) => plan.invalid.push(invalid),
            _ => {}
        }
    }
    plan
}

/// The end of a page: what its commit writes besides its batches' outcomes.
#[derive(Debug)]
struct PageEnd {
    /// The watermark of its last row, where the watermark advances once it commits.
    watermark: Option<String>,
    /// Its invalid orders.
    invalid: Vec<Invalid>,
    /// Its orders held until their time comes.
    held: Vec<Built>,
    /// Sent orders changed since, with their watermark now.
    changed: Vec<(String, String)>,
    /// The orders it sends, which stay "in flight in this run" until it commits.
    sending: Vec<String>,
}

/// Work waiting to be started, in page order.
enum Work {
    /// A batch to send.
    Batch(Batch),
    /// The end of a page: commit it.
    PageEnd(PageEnd),
}

/// What came back from the in-flight queue.
enum Done {
    /// A batch's result, with its events.
    Batch(Batch, Result<Delivery, DestinationError>),
    /// All batches of a page are back.
    PageEnd(PageEnd),
}

/// A future in the ordered in-flight queue.
type Flight = Pin<Box<dyn Future<Output = Done> + Send>>;

/// The main loop's state.
struct Pipeline<'a> {
    /// The config.
    config: &'a Config,
    /// The ledger.
    ledger: &'a Ledger,
    /// Ledger connections.
    pool: &'a Pool,
    /// Where batches go; `None` for a dry run, whose batches are printed.
    destination: Option<Arc<Destination>>,
    /// Whether the ledger schema exists (a dry run may run before `migrate`).
    ledger_ready: bool,
    /// Running stats.
    stats: &'a mut RunStats,
    /// How to compare watermarks.
    watermark_kind: WatermarkKind,
    /// False for backfills: the watermark stays where it is.
    advance: bool,
    /// Told the stats after each page.
    progress: Option<Progress>,
    /// Orders sent by pages of this run that have not committed yet. Once a page commits, the
    /// ledger knows its orders (their rows carry this run's id), so memory stays bounded by the
    /// pages in flight, not by the size of the run.
    in_flight: HashSet<String>,
    /// The run's lock, checked before each page is sent and committed.
    lock: Option<Arc<RunLock>>,
}

impl Pipeline<'_> {
    /// Runs pages through the ledger and the destination until the reader is done, an error
    /// occurs, or `shutdown` resolves (then the page in flight is finished and committed).
    async fn drive(
        &mut self,
        mut pages: mpsc::Receiver<Result<PagePlan, Error>>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let concurrency = self.config.destination.concurrency;
        let mut flights: FuturesOrdered<Flight> = FuturesOrdered::new();
        let mut queue: VecDeque<Work> = VecDeque::new();
        let mut in_flight = 0usize;
        let mut source_done = false;
        let mut stopping = false;
        let mut outcome = PageOutcome::default();
        // Page commits run on their own task and connection, one at a time and in page order,
        // so that PostgreSQL records page N while the loop sends page N+1.
        let mut committing: Option<Commit> = None;
        let mut to_commit: VecDeque<(PageOutcome, PageEnd)> = VecDeque::new();
        tokio::pin!(shutdown);
        let result = loop {
            if committing.is_none() {
                if let Some((page, end)) = to_commit.pop_front() {
                    committing = Some(self.start_commit(page, end));
                }
            }
            while let Some(work) = queue.front() {
                if matches!(work, Work::Batch(_)) && in_flight >= concurrency {
                    break;
                }
                match queue.pop_front().expect("front was Some") {
                    Work::Batch(batch) => {
                        in_flight += 1;
                        flights.push_back(self.start_batch(batch));
                    }
                    Work::PageEnd(end) => {
                        flights.push_back(Box::pin(async move { Done::PageEnd(end) }));
                    }
                }
            }
            let want_page = queue.is_empty() && to_commit.is_empty() && !source_done && !stopping;
            if flights.is_empty() && !want_page && committing.is_none() && to_commit.is_empty() {
                break Ok(());
            }
            tokio::select! {
                biased;
                () = &mut shutdown, if !stopping => {
                    tracing::info!("shutdown requested: finishing the page in flight");
                    stopping = true;
                }
                joined = async {
                    match committing.as_mut() {
                        Some(commit) => (&mut commit.handle).await,
                        None => std::future::pending().await,
                    }
                }, if committing.is_some() => {
                    let commit = committing.take().expect("a commit was running");
                    if let Err(error) = self.finish_commit(commit, joined) {
                        break Err(error);
                    }
                }
                Some(done) = flights.next(), if !flights.is_empty() => match done {
                    Done::Batch(batch, result) => {
                        in_flight -= 1;
                        match result {
                            Ok(delivery) => outcome.add(batch, delivery, self.stats),
                            Err(error) => break Err(error.into()),
                        }
                    }
                    Done::PageEnd(end) => {
                        to_commit.push_back((std::mem::take(&mut outcome), end));
                    }
                },
                page = pages.recv(), if want_page => match page {
                    None => source_done = true,
                    Some(Err(error)) => break Err(error),
                    Some(Ok(plan)) => match self.prepare(plan).await {
                        Ok(work) => queue.extend(work),
                        Err(error) => break Err(error),
                    },
                },
            }
        };
        // A failing run still finishes the commit it started: its page was delivered.
        if let Some(mut commit) = committing.take() {
            let joined = (&mut commit.handle).await;
            self.finish_commit(commit, joined)?;
        }
        result
    }

    /// Starts sending one batch on its own task, so requests progress while the loop works.
    fn start_batch(&self, batch: Batch) -> Flight {
        let Some(destination) = self.destination.as_ref().map(Arc::clone) else {
            // A dry run prints the events as a real run would send them, and takes them as
            // accepted.
            let printed = print_events(&batch.events);
            let result = printed
                .map(|()| Delivery::all_accepted(batch.events.len(), None))
                .map_err(|error| DestinationError::Setup(error.into()));
            return Box::pin(async move { Done::Batch(batch, result) });
        };
        let lock = self.lock.as_ref().map(Arc::clone);
        let mut handle = AbortOnDrop(tokio::spawn(async move {
            if let Some(lock) = lock.as_ref().filter(|lock| !lock.is_held()) {
                let lost = lock.check().await.err().map(Box::from);
                let lost = lost.unwrap_or_else(|| "the run's lock was lost".into());
                return (batch, Err(DestinationError::Setup(lost)));
            }
            let result = destination.send(&batch.events).await;
            (batch, result)
        }));
        Box::pin(async move {
            match (&mut handle.0).await {
                Ok((batch, result)) => Done::Batch(batch, result),
                Err(error) => Done::Batch(
                    Batch::default(),
                    Err(DestinationError::Setup(
                        format!("send task failed: {error}").into(),
                    )),
                ),
            }
        })
    }

    /// Decides each order of a page against the ledger and returns the page's batches
    /// followed by its end marker, which carries its invalid, held and changed orders to the
    /// page's commit.
    ///
    /// An order already handled in this run (seen again, e.g. a held order that is also in the
    /// delta) is a duplicate: earlier pages are known from `in_flight` until they commit, and
    /// from the ledger (their rows carry this run's id) after.
    async fn prepare(&mut self, plan: PagePlan) -> Result<Vec<Work>, Error> {
        if let Some(lock) = &self.lock {
            lock.check().await?;
        }
        let stats = &mut *self.stats;
        stats.rows_read += plan.rows;
        let mut ids: Vec<&str> = plan
            .built
            .iter()
            .map(|b| b.event.custom_data.order_id.as_str())
            .chain(plan.invalid.iter().filter_map(|i| i.order_id.as_deref()))
            .collect();
        // In key order, consecutive probes of the ledger's index visit neighbouring pages.
        ids.sort_unstable();
        ids.dedup();
        let existing = if self.ledger_ready {
            let mut client = db::connect(self.pool, "ledger").await?;
            self.ledger.lookup(&mut client, &ids).await?
        } else {
            HashMap::new()
        };
        let run_id = stats.run_id;
        let in_flight = &self.in_flight;
        let mut in_page: HashSet<String> = HashSet::new();
        let seen_in_run = |order_id: &str, in_page: &HashSet<String>| {
            // Only orders this run sent (or is sending) count: an order it recorded invalid
            // earlier may come back fixed in a later page, and must then be sent.
            in_page.contains(order_id)
                || in_flight.contains(order_id)
                || existing.get(order_id).is_some_and(|e| {
                    run_id != 0 && e.run_id == Some(run_id) && e.status == Status::Sent
                })
        };
        let mut changed: Vec<(String, String)> = Vec::new();
        let mut held: Vec<Built> = Vec::new();
        let mut count = |decision: Decision, order_id: &str, watermark: &str| match decision {
            Decision::Duplicate { changed: true } => {
                stats.skipped_duplicate += 1;
                stats.changed_after_send += 1;
                changed.push((order_id.to_owned(), watermark.to_owned()));
            }
            Decision::Duplicate { changed: false } => stats.skipped_duplicate += 1,
            Decision::StillRejected => stats.skipped_rejected += 1,
            Decision::StillInvalid => stats.skipped_invalid += 1,
            Decision::Send | Decision::Hold | Decision::StillHeld | Decision::RecordInvalid => {}
        };

        // The orders to send, moved (not cloned) into batches.
        let mut to_send: Vec<Built> = Vec::with_capacity(plan.built.len());
        for built in plan.built {
            stats.ahead_of_clock += u64::from(built.ahead);
            let order_id = built.event.custom_data.order_id.as_str();
            let candidate = match built.held_until {
                Some(_) => Candidate::Held {
                    watermark: &built.watermark,
                },
                None => Candidate::Due {
                    watermark: &built.watermark,
                },
            };
            let decision = decide(
                existing.get(order_id),
                seen_in_run(order_id, &in_page),
                &candidate,
            );
            count(decision, order_id, &built.watermark);
            match decision {
                Decision::Send => {
                    stats.events += 1;
                    stats.zero_value += u64::from(built.event.custom_data.value.is_zero());
                    for field in &built.dropped {
                        RunStats::bump(&mut stats.dropped, field.key(), 1);
                    }
                    in_page.insert(order_id.to_owned());
                    to_send.push(built);
                }
                Decision::Hold => {
                    stats.held += 1;
                    held.push(built);
                }
                Decision::StillHeld => stats.held += 1,
                _ => {}
            }
        }
        // Invalid orders to record: one row per order id.
        let mut invalid: Vec<Invalid> = Vec::new();
        for row in plan.invalid {
            let Some(order_id) = row.order_id.as_deref() else {
                stats.invalid += 1;
                RunStats::bump(&mut stats.invalid_reasons, row.reason.as_str(), 1);
                tracing::warn!(watermark = %row.watermark, reason = %row.reason, "row without a usable order id skipped");
                continue;
            };
            let candidate = Candidate::Invalid {
                watermark: &row.watermark,
                reason: row.reason,
            };
            let decision = decide(
                existing.get(order_id),
                seen_in_run(order_id, &in_page),
                &candidate,
            );
            count(decision, order_id, &row.watermark);
            if decision == Decision::RecordInvalid {
                stats.invalid += 1;
                RunStats::bump(&mut stats.invalid_reasons, row.reason.as_str(), 1);
                invalid.push(row);
            }
        }
        let sending: Vec<String> = in_page.into_iter().collect();
        self.in_flight.extend(sending.iter().cloned());

        let batch_size = self.config.destination.batch_size;
        let mut chosen_events = to_send.into_iter().peekable();
        let mut work: Vec<Work> = Vec::new();
        while chosen_events.peek().is_some() {
            let mut batch = Batch::default();
            for built in chosen_events.by_ref().take(batch_size) {
                batch.tags.push(Tag {
                    new: !existing.contains_key(&built.event.custom_data.order_id),
                    watermark: built.watermark,
                    store_id: built.store_id,
                });
                batch.events.push(built.event);
            }
            work.push(Work::Batch(batch));
        }
        work.push(Work::PageEnd(PageEnd {
            watermark: plan.last_watermark,
            invalid,
            held,
            changed,
            sending,
        }));
        Ok(work)
    }

    /// Starts committing a page on its own task: its sent, rejected and invalid rows and the
    /// watermark, in one transaction.
    fn start_commit(&self, outcome: PageOutcome, end: PageEnd) -> Commit {
        let ledger = self.ledger.clone();
        let pool = self.pool.clone();
        let run_id = self.stats.run_id;
        let advance = self.advance.then_some(self.watermark_kind);
        let sent = outcome
            .outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Sent { .. }))
            .count() as u64;
        let rejected = outcome.outcomes.len() as u64 - sent;
        let PageEnd {
            watermark,
            invalid,
            held,
            changed,
            sending,
        } = end;
        let page_watermark = watermark.clone();
        let dry_run = self.destination.is_none();
        let lock = self.lock.as_ref().map(Arc::clone);
        let handle = tokio::spawn(async move {
            if dry_run {
                return Ok(());
            }
            if let Some(lock) = &lock {
                lock.check().await?;
            }
            let mut client = db::connect(&pool, "ledger").await?;
            let mut tx = client
                .transaction()
                .await
                .map_err(db::DbError::query("cannot start a transaction"))?;
            let invalid: Vec<&Invalid> = invalid.iter().collect();
            ledger.record_invalid(&tx, &invalid, run_id).await?;
            let held: Vec<&Built> = held.iter().collect();
            ledger.record_held(&tx, &held, run_id).await?;
            ledger.mark_changed(&tx, &changed).await?;
            ledger
                .record_outcomes(&mut tx, &outcome.outcomes, run_id)
                .await?;
            if let (Some(kind), Some(watermark)) = (advance, &page_watermark) {
                ledger
                    .advance_watermark(&tx, watermark, kind, run_id)
                    .await?;
            }
            tx.commit()
                .await
                .map_err(db::DbError::query("cannot commit a page"))?;
            Ok(())
        });
        Commit {
            handle,
            sent,
            rejected,
            watermark,
            sending,
        }
    }

    /// Counts a finished page commit in the stats and tells the progress callback.
    fn finish_commit(
        &mut self,
        commit: Commit,
        joined: Result<Result<(), Error>, tokio::task::JoinError>,
    ) -> Result<(), Error> {
        joined.map_err(|error| Error::Usage(format!("commit task failed: {error}")))??;
        // A dry run writes no ledger row, so what it "sent" stays known here until it ends.
        if self.destination.is_some() {
            for order_id in &commit.sending {
                self.in_flight.remove(order_id);
            }
        }
        self.stats.sent += commit.sent;
        self.stats.rejected += commit.rejected;
        if self.advance && commit.watermark.is_some() {
            self.stats.watermark_end = commit.watermark;
        }
        if let Some(progress) = &self.progress {
            progress(self.stats);
        }
        Ok(())
    }
}

/// A page commit running on its own task, and what to count once it has committed.
struct Commit {
    /// The task.
    handle: tokio::task::JoinHandle<Result<(), Error>>,
    /// Orders it marks sent.
    sent: u64,
    /// Orders it marks rejected.
    rejected: u64,
    /// The watermark it advances to, if any.
    watermark: Option<String>,
    /// The orders its page sent: in the ledger once it has committed.
    sending: Vec<String>,
}

/// Aborts a spawned send when its in-flight future is dropped: a run that stops on an error
/// must not leave requests going out behind it (their orders have no ledger row and the
/// watermark has not passed them, so the next run sends them).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An order as this run read it, for the dedup policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidate<'a> {
    /// A valid event whose time has come.
    Due {
        /// The order's watermark.
        watermark: &'a str,
    },
    /// A valid event dated ahead: held until its time.
    Held {
        /// The order's watermark.
        watermark: &'a str,
    },
    /// An order that cannot become an event.
    Invalid {
        /// The order's watermark.
        watermark: &'a str,
        /// Why.
        reason: InvalidReason,
    },
}

impl Candidate<'_> {
    /// The order's watermark.
    fn watermark(&self) -> &str {
        match self {
            Self::Due { watermark }
            | Self::Held { watermark }
            | Self::Invalid { watermark, .. } => watermark,
        }
    }
}

/// What to do with an order, given its ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Send it.
    Send,
    /// Record it `held` (new, or changed while held).
    Hold,
    /// Held before and unchanged: leave its row.
    StillHeld,
    /// Record it `invalid` (new, changed, or invalid for another reason now).
    RecordInvalid,
    /// Invalid before for the same reason and unchanged: skipped, not counted again.
    StillInvalid,
    /// Already sent (or being sent in this run); `changed` when its rows changed since and
    /// that change was not counted before.
    Duplicate {
        /// A row was added or changed after the order was sent.
        changed: bool,
    },
    /// Rejected before, and its source rows have not changed since.
    StillRejected,
}

/// The dedup policy: what to do with an order this run read, given what the ledger holds of it
/// and whether this run already sent it. Pure, so it is table-tested.
///
/// "Unchanged" means the order's watermark (the largest of its rows') is the one recorded.
fn decide(existing: Option<&Existing>, seen_in_run: bool, candidate: &Candidate<'_>) -> Decision {
    if seen_in_run {
        return Decision::Duplicate { changed: false };
    }
    let watermark = candidate.watermark();
    let Some(e) = existing else {
        return match candidate {
            Candidate::Due { .. } => Decision::Send,
            Candidate::Held { .. } => Decision::Hold,
            Candidate::Invalid { .. } => Decision::RecordInvalid,
        };
    };
    let unchanged = e
        .source_watermark
        .as_deref()
        .is_some_and(|w| same_watermark(w, watermark));
    match (e.status, candidate) {
        (Status::Sent, _) => Decision::Duplicate {
            changed: !unchanged
                && !e
                    .changed_watermark
                    .as_deref()
                    .is_some_and(|w| same_watermark(w, watermark)),
        },
        (Status::Rejected, Candidate::Due { .. }) if unchanged => Decision::StillRejected,
        (Status::Held, Candidate::Held { .. }) if unchanged => Decision::StillHeld,
        (Status::Invalid, Candidate::Invalid { reason, .. })
            if unchanged && e.reason.as_deref() == Some(reason.as_str()) =>
        {
            Decision::StillInvalid
        }
        (_, Candidate::Due { .. }) => Decision::Send,
        (_, Candidate::Held { .. }) => Decision::Hold,
        (_, Candidate::Invalid { .. }) => Decision::RecordInvalid,
    }
}

/// Whether two watermark texts name the same value: equal text, or the same instant written
/// two ways (ledgers written before issue 11 kept PostgreSQL's session-dependent text form,
/// `2026-11-01 10:00:00.5+00`; ocapi now writes `2026-11-01T10:00:00.500000Z`).
fn same_watermark(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let parse = |text: &str| -> Option<chrono::NaiveDateTime> {
        let text = text.trim();
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Some(t.naive_utc());
        }
        for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
            if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
                return Some(t.naive_utc());
            }
        }
        for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
                return Some(t);
            }
        }
        None
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

/// Prints events as NDJSON on stdout (a dry run's output).
fn print_events(events: &[Event]) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for event in events {
        serde_json::to_writer(&mut out, event).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: Status, watermark: &str) -> Existing {
        Existing {
            status,
            event_time: Some(1),
            value: None,
            source_watermark: Some(watermark.to_owned()),
            run_id: Some(1),
            reason: (status == Status::Invalid).then(|| "missing currency".to_owned()),
            changed_watermark: None,
        }
    }

    #[test]
    fn the_dedup_policy_table() {
        use Decision::*;
        let due = |w| Candidate::Due { watermark: w };
        let held = |w| Candidate::Held { watermark: w };
        let invalid = |w, reason| Candidate::Invalid {
            watermark: w,
            reason,
        };
        let currency = InvalidReason::MissingCurrency;
        let mut counted = row(Status::Sent, "w1");
        counted.changed_watermark = Some("w2".to_owned());
        let cases: Vec<(Option<Existing>, bool, Candidate<'_>, Decision)> = vec![
            // never seen
            (None, false, due("w1"), Send),
            (None, false, held("w1"), Hold),
            (None, false, invalid("w1", currency), RecordInvalid),
            // seen earlier in this run
            (None, true, due("w1"), Duplicate { changed: false }),
            // sent: unchanged, changed (a line added after the send), changed and counted
            (
                Some(row(Status::Sent, "w1")),
                false,
                due("w1"),
                Duplicate { changed: false },
            ),
            (
                Some(row(Status::Sent, "w1")),
                false,
                due("w2"),
                Duplicate { changed: true },
            ),
            (
                Some(row(Status::Sent, "w1")),
                false,
                invalid("w2", currency),
                Duplicate { changed: true },
            ),
            (
                Some(counted),
                false,
                due("w2"),
                Duplicate { changed: false },
            ),
            // the same instant in the old and the new text form is unchanged
            (
                Some(row(Status::Sent, "2026-11-01 10:00:00.5+00")),
                false,
                due("2026-11-01T10:00:00.500000Z"),
                Duplicate { changed: false },
            ),
            // rejected: unchanged is not sent again; changed is
            (
                Some(row(Status::Rejected, "w1")),
                false,
                due("w1"),
                StillRejected,
            ),
            (Some(row(Status::Rejected, "w1")), false, due("w2"), Send),
            // invalid: unchanged and the same reason is skipped; fixed is sent
            (
                Some(row(Status::Invalid, "w1")),
                false,
                invalid("w1", currency),
                StillInvalid,
            ),
            (
                Some(row(Status::Invalid, "w1")),
                false,
                invalid("w1", InvalidReason::TooOld),
                RecordInvalid,
            ),
            (Some(row(Status::Invalid, "w1")), false, due("w2"), Send),
            (Some(row(Status::Invalid, "w1")), false, held("w2"), Hold),
            // held: still ahead and unchanged stays; its time come, it is sent
            (Some(row(Status::Held, "w1")), false, held("w1"), StillHeld),
            (Some(row(Status::Held, "w1")), false, held("w2"), Hold),
            (Some(row(Status::Held, "w1")), false, due("w1"), Send),
            (
                Some(row(Status::Held, "w1")),
                false,
                invalid("w2", currency),
                RecordInvalid,
            ),
        ];
        for (existing, seen, candidate, expected) in cases {
            assert_eq!(
                decide(existing.as_ref(), seen, &candidate),
                expected,
                "{existing:?} seen={seen} {candidate:?}"
            );
        }
    }
}

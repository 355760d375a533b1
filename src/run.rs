//! One sync pass: read → transform → send → ledger → stats.
//!
//! Three stages overlap. A reader task reads keyset pages and transforms them; the main loop
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
use std::time::{Duration, Instant};

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
use crate::source::{self, EventTimeWindow, PageQuery, Position, SourceTable, WatermarkKind};
use crate::stats::{RunStats, RunStatus};
use crate::transform::{self, Built, Invalid, Rules};

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
    /// The watermark of its last row.
    last_watermark: Option<String>,
}

/// Runs one sync pass. `shutdown` resolving stops it after the page in flight, committed.
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
    if options.dry_run {
        let ledger_pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
        let start = dry_run_start(config, &ledger_pool, &table, &source_client).await;
        let start = start.unwrap_or(Position::Start(None));
        drop(source_client);
        dry_run(config, &options, &source_pool, &table, start, &mut stats).await?;
        stats.status = RunStatus::Completed;
        stats.duration_ms = elapsed_ms(started);
        return Ok(stats);
    }

    let ledger_pool = db::pool(&config.ledger_url()?, "ledger", 4)?;
    let ledger_client = db::connect(&ledger_pool, "ledger").await?;
    ensure_schema(&ledger_client, &config.ledger.schema).await?;
    let _lock = acquire_lock(&ledger_pool, config).await?;
    let destination = Arc::new(Destination::from_config(config)?);
    let ledger = Ledger::new(
        &config.ledger.schema,
        &config.connector.name,
        &config.destination.dataset_id,
    );
    stats.run_id = ledger
        .start_run(&ledger_client, options.mode.as_str())
        .await?;
    report_interrupted_runs(&ledger, &ledger_client, stats.run_id).await?;

    let result = async {
        let start = start_position(
            config,
            &options,
            &ledger,
            &ledger_client,
            &table,
            &source_client,
            &mut stats,
        )
        .await?;
        drop(source_client);
        let mut sync = Pipeline {
            config,
            ledger: &ledger,
            pool: &ledger_pool,
            destination,
            stats: &mut stats,
            watermark_kind: table.watermark_kind,
            advance: options.mode == Mode::Run,
            progress: options.progress.clone(),
            in_flight: HashSet::new(),
        };
        let pages = spawn_reader(config, &source_pool, &table, start, &options);
        sync.drive(pages, shutdown).await
    }
    .await;

    stats.duration_ms = elapsed_ms(started);
    stats.status = match &result {
        Ok(()) if exceeds(&stats, options.max_invalid_ratio) => RunStatus::Degraded,
        Ok(()) => RunStatus::Completed,
        Err(error) => {
            stats.error = Some(error_chain(error));
            RunStatus::Failed
        }
    };
    if let Err(error) = ledger.finish_run(&ledger_client, &stats).await {
        // A run that failed (its connections cut, say) reports why it failed, not this.
        if result.is_ok() {
            return Err(error.into());
        }
        tracing::error!(error = %error_chain(&error), "the failed run's stats could not be stored");
    }
    tracing::info!(
        run_id = stats.run_id,
        status = stats.status.as_str(),
        rows_read = stats.rows_read,
        sent = stats.sent,
        skipped_duplicate = stats.skipped_duplicate,
        invalid = stats.invalid,
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

/// An error with its sources, as one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

/// A session advisory lock per connector, held on a connection taken out of the pool so that
/// it is freed when the guard drops, or by PostgreSQL within moments if the process dies.
pub struct RunLock {
    /// The connection holding the lock; dropping it closes the session.
    _client: deadpool_postgres::ClientWrapper,
}

/// Takes the connector's lock, waiting up to `connector.lock_wait`.
pub async fn acquire_lock(pool: &Pool, config: &Config) -> Result<RunLock, Error> {
    let object = db::connect(pool, "ledger").await?;
    let client = deadpool_postgres::Object::take(object);
    let key = format!("ocapi:{}", config.connector.name);
    let wait = config.connector.lock_wait;
    let deadline = Instant::now() + wait;
    loop {
        let row = client
            .query_one("select pg_try_advisory_lock(hashtext($1))", &[&key])
            .await
            .map_err(db::DbError::query("cannot take the connector's lock"))?;
        if row.get::<_, bool>(0) {
            return Ok(RunLock { _client: client });
        }
        if Instant::now() >= deadline {
            return Err(Error::Locked {
                connector: config.connector.name.clone(),
                waited_secs: wait.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where an incremental run starts: the stored watermark minus the lookback, else
/// `source.start`, else the beginning. A backfill starts at the beginning of its window.
async fn start_position(
    config: &Config,
    options: &RunOptions,
    ledger: &Ledger,
    ledger_client: &Client,
    table: &SourceTable,
    source_client: &Client,
    stats: &mut RunStats,
) -> Result<Position, Error> {
    let stored = ledger.watermark(ledger_client).await?;
    stats.watermark_start = stored.as_ref().map(|(w, _)| w.clone());
    stats.watermark_end = stats.watermark_start.clone();
    if options.mode == Mode::Backfill {
        return Ok(Position::Start(None));
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
            Ok(Position::Start(Some(from)))
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
                Ok(Position::Start(Some(start)))
            }
            None => Ok(Position::Start(None)),
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
                verdict: Verdict::Rejected(rejected.message),
            });
        }
    }
}

/// Starts the reader task: pages in keyset order, transformed, through a bounded channel.
fn spawn_reader(
    config: &Config,
    pool: &Pool,
    table: &SourceTable,
    start: Position,
    options: &RunOptions,
) -> mpsc::Receiver<Result<PagePlan, Error>> {
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    let pool = pool.clone();
    let query = PageQuery::new(config, table);
    let rules = Rules::from_config(config);
    let page_size = config.source.batch_size.get();
    let limit = options.limit;
    let window = options.window;
    tokio::spawn(async move {
        let result = async {
            let client = db::connect(&pool, "source").await?;
            let mut position = Some(start);
            let mut read = 0u64;
            while let Some(at) = position.take() {
                let remaining = limit.map_or(usize::MAX, |l| {
                    usize::try_from(l.saturating_sub(read)).unwrap_or(usize::MAX)
                });
                if remaining == 0 {
                    break;
                }
                let page = source::read_page(
                    &client,
                    &query,
                    &at,
                    page_size.min(remaining),
                    window.as_ref(),
                )
                .await?;
                read += page.rows.len() as u64;
                position = page.next;
                let rules = rules.clone();
                let plan = tokio::task::spawn_blocking(move || plan_page(&page.rows, &rules))
                    .await
                    .map_err(|error| Error::Usage(format!("transform task failed: {error}")))?;
                if tx.send(Ok(plan)).await.is_err() {
                    break;
                }
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

/// Transforms one page of rows into events and invalid orders, judged now.
fn plan_page(rows: &[source::SourceRow], rules: &Rules) -> PagePlan {
    let now = chrono::Utc::now().timestamp();
    let mut plan = PagePlan {
        rows: rows.len() as u64,
        // At most one event per row: reserved once, not regrown (and moved) page after page.
        built: Vec::with_capacity(rows.len()),
        last_watermark: rows.last().map(|r| r.watermark.clone()),
        ..PagePlan::default()
    };
    for order in transform::orders(rows) {
        match transform::build(order, rules, now) {
            Ok(built) => plan.built.push(built),
            Err(invalid) => plan.invalid.push(invalid),
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
    /// Where batches go.
    destination: Arc<Destination>,
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
        let destination = Arc::clone(&self.destination);
        let mut handle = AbortOnDrop(tokio::spawn(async move {
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
    /// followed by its end marker, which carries its invalid orders to the page's commit.
    ///
    /// An order already handled in this run (seen again, e.g. updated meanwhile) is a
    /// duplicate: earlier pages are known from `in_flight` until they commit, and from the
    /// ledger (their rows carry this run's id) after.
    async fn prepare(&mut self, plan: PagePlan) -> Result<Vec<Work>, Error> {
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
        let mut client = db::connect(self.pool, "ledger").await?;
        let existing = self.ledger.lookup(&mut client, &ids).await?;
        drop(client);
        let run_id = stats.run_id;
        let in_flight = &self.in_flight;
        let mut in_page: HashSet<&str> = HashSet::new();
        let seen_in_run = |order_id: &str, in_page: &HashSet<&str>| {
            // Only orders this run sent (or is sending) count: an order it recorded invalid
            // earlier may come back fixed in a later page, and must then be sent.
            in_page.contains(order_id)
                || in_flight.contains(order_id)
                || existing
                    .get(order_id)
                    .is_some_and(|e| e.run_id == Some(run_id) && e.status == Status::Sent)
        };

        // Which of `plan.built` are sent, so that their events can be moved (not cloned) into
        // batches.
        let mut chosen: Vec<bool> = Vec::with_capacity(plan.built.len());
        for built in &plan.built {
            stats.events += 1;
            for field in &built.dropped {
                RunStats::bump(&mut stats.dropped, field.key(), 1);
            }
            let order_id = &built.event.custom_data.order_id;
            let decision = decide(
                existing.get(order_id),
                built,
                seen_in_run(order_id, &in_page),
            );
            chosen.push(decision == Decision::Send);
            match decision {
                Decision::Send => {
                    in_page.insert(order_id);
                }
                Decision::Duplicate { changed } => {
                    stats.skipped_duplicate += 1;
                    stats.changed_after_send += u64::from(changed);
                }
                Decision::StillRejected => stats.skipped_rejected += 1,
            }
        }
        // Invalid orders to record, one row per order id (the latest version wins): a second
        // row for the same key in one upsert would be an error.
        let mut invalid: Vec<Invalid> = Vec::new();
        let mut invalid_index: HashMap<String, usize> = HashMap::new();
        for row in plan.invalid {
            let Some(order_id) = row.order_id.as_deref() else {
                stats.invalid += 1;
                RunStats::bump(&mut stats.invalid_reasons, row.reason.as_str(), 1);
                tracing::warn!(watermark = %row.watermark, reason = %row.reason, "row without a usable order id skipped");
                continue;
            };
            // Sent before, or being sent in this run: a later invalid version never replaces it.
            let sent = existing
                .get(order_id)
                .is_some_and(|e| e.status == Status::Sent);
            if sent || seen_in_run(order_id, &in_page) {
                stats.skipped_duplicate += 1;
                continue;
            }
            stats.invalid += 1;
            RunStats::bump(&mut stats.invalid_reasons, row.reason.as_str(), 1);
            match invalid_index.get(order_id) {
                Some(&at) => invalid[at] = row,
                None => {
                    invalid_index.insert(order_id.to_owned(), invalid.len());
                    invalid.push(row);
                }
            }
        }
        let sending: Vec<String> = in_page.iter().map(|id| (*id).to_owned()).collect();
        self.in_flight.extend(sending.iter().cloned());

        let batch_size = self.config.destination.batch_size;
        let mut chosen_events = plan
            .built
            .into_iter()
            .zip(chosen)
            .filter_map(|(built, send)| send.then_some(built))
            .peekable();
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
            sending,
        } = end;
        let page_watermark = watermark.clone();
        let handle = tokio::spawn(async move {
            let mut client = db::connect(&pool, "ledger").await?;
            let mut tx = client
                .transaction()
                .await
                .map_err(db::DbError::query("cannot start a transaction"))?;
            let invalid: Vec<&Invalid> = invalid.iter().collect();
            ledger.record_invalid(&tx, &invalid, run_id).await?;
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
        for order_id in &commit.sending {
            self.in_flight.remove(order_id);
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

/// What to do with a valid order, given its ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Send it.
    Send,
    /// Already sent (or being sent in this run); `changed` when its value or time moved since.
    Duplicate {
        /// Value or event time differ from what was sent.
        changed: bool,
    },
    /// Rejected before, and its source row has not changed since.
    StillRejected,
}

/// Decides a valid order against what the ledger holds.
fn decide(existing: Option<&Existing>, built: &Built, seen_in_run: bool) -> Decision {
    let changed = |e: &Existing| {
        e.event_time != Some(built.event.event_time)
            || e.value != Some(built.event.custom_data.value)
    };
    if seen_in_run {
        return Decision::Duplicate { changed: false };
    }
    match existing {
        None => Decision::Send,
        Some(e) => match e.status {
            Status::Sent => Decision::Duplicate {
                changed: changed(e),
            },
            Status::Rejected if e.source_watermark.as_deref() == Some(built.watermark.as_str()) => {
                Decision::StillRejected
            }
            Status::Invalid | Status::Rejected => Decision::Send,
        },
    }
}

/// Where a dry run starts: the stored watermark when the ledger can be read, else the start.
async fn dry_run_start(
    config: &Config,
    ledger_pool: &Pool,
    table: &SourceTable,
    source_client: &Client,
) -> Option<Position> {
    let client = db::connect(ledger_pool, "ledger").await.ok()?;
    db::schema_version(&client, &config.ledger.schema)
        .await
        .ok()??;
    let ledger = Ledger::new(
        &config.ledger.schema,
        &config.connector.name,
        &config.destination.dataset_id,
    );
    let mut scratch = RunStats::new(&config.connector.name);
    let options = RunOptions::default();
    start_position(
        config,
        &options,
        &ledger,
        &client,
        table,
        source_client,
        &mut scratch,
    )
    .await
    .ok()
}

/// Prints the events a run would send as NDJSON on stdout; writes nothing anywhere.
async fn dry_run(
    config: &Config,
    options: &RunOptions,
    pool: &Pool,
    table: &SourceTable,
    start: Position,
    stats: &mut RunStats,
) -> Result<(), Error> {
    let mut pages = spawn_reader(config, pool, table, start, options);
    let mut seen: HashMap<String, ()> = HashMap::new();
    while let Some(plan) = pages.recv().await {
        let plan = plan?;
        stats.rows_read += plan.rows;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for built in &plan.built {
            if seen
                .insert(built.event.custom_data.order_id.clone(), ())
                .is_some()
            {
                stats.skipped_duplicate += 1;
                continue;
            }
            stats.events += 1;
            for field in &built.dropped {
                RunStats::bump(&mut stats.dropped, field.key(), 1);
            }
            for key in built.event.user_data.present_keys() {
                RunStats::bump(&mut stats.match_keys, key, 1);
            }
            serde_json::to_writer(&mut out, &built.event).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
        for invalid in &plan.invalid {
            stats.invalid += 1;
            RunStats::bump(&mut stats.invalid_reasons, invalid.reason.as_str(), 1);
        }
        out.flush()?;
    }
    Ok(())
}

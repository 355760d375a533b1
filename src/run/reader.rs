//! The reader stage: a task that streams the source's changed orders in pages of whole orders
//! (every row of each, see `source`) and transforms them, a bounded channel ahead of the pages
//! being sent. A streamed page is decoded and transformed a chunk at a time on the task itself
//! ([`CHUNK_ROWS`]); a page read whole (held orders, changed keys) is transformed on a blocking
//! thread.

use std::collections::HashSet;

use crate::db::Pool;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;

use super::spare::Spare;
use super::{RunOptions, WatermarkPolicy};
use crate::config::Config;
use crate::db;
use crate::error::Error;
use crate::source::{self, EventTimeWindow, Filter, KeyRange, ReadQuery, SourceTable, Watermark};
use crate::transform::{self, Built, Invalid, InvalidReason, Rules};

/// Pages read ahead of the one being recorded: one keeps requests flowing (measured: the same
/// rows/s as two, within noise) and bounds memory lower (132-138 MiB vs 150-153 MiB at 100k rows).
const PAGES_AHEAD: usize = 1;

/// Rows a streamed page is read and transformed in at a time: decoded into a vector that stays
/// in the core's cache (~100 KiB of rows), then normalized and hashed at once on the same
/// thread, instead of a page of ~1.5 MiB decoded on one core and read back cold on another
/// (issue 24). A chunk is whole orders: it ends where an order does.
const CHUNK_ROWS: usize = 128;

/// How many times a page of changed orders is read when the server cancels it (a recovery
/// conflict, a `statement_timeout`) before the run fails, naming the setting to change.
pub(super) const PAGE_ATTEMPTS: u32 = 3;

/// A page, read and transformed.
#[derive(Debug, Default)]
pub(super) struct PagePlan {
    /// Source rows in it.
    pub(super) rows: u64,
    /// Orders that became events.
    pub(super) built: Vec<Built>,
    /// Orders that could not.
    pub(super) invalid: Vec<Invalid>,
    /// Orders left as older than [`ReadPlan::recent_from`] (with no order id to look up).
    pub(super) left: u64,
    /// Orders older than [`ReadPlan::recent_from`] that became events, and that could not:
    /// left unless the ledger already holds them (sent by a backfill, say), when they are
    /// decided as any other order.
    pub(super) old: (Vec<Built>, Vec<Invalid>),
    /// The watermark of its last order, where the watermark advances once the page is
    /// committed; `None` for pages that must not move it (held orders read by id, backfills).
    pub(super) last_watermark: Option<Watermark>,
    /// A page of orders a `[[source.changes]]` table's changed keys touched: that table (as
    /// configured) and where its watermark advances once the page is committed.
    pub(super) change: Option<(String, Watermark)>,
}

/// Where the reader starts and what it reads.
pub(super) struct ReadPlan {
    /// The source database's clock, by which every page is judged.
    pub(super) clock: source::Clock,
    /// What to read.
    pub(super) filter: Filter,
    /// Held orders whose time has come, read by id before the changed orders.
    pub(super) held: Vec<String>,
    /// The stored watermark (incremental runs): rows at or before it are re-reads, which do
    /// not count toward `--limit`.
    pub(super) committed: Option<Watermark>,
    /// A run without ledger state ([`super::RECENT_SECS`]), or a later one while the floor
    /// that first run recorded holds: orders with an event time before this (unix seconds)
    /// that the ledger does not hold are left, neither sent nor recorded, and counted
    /// `history_left`.
    pub(super) recent_from: Option<i64>,
    /// Whether the pages of changed orders move the watermark.
    pub(super) policy: WatermarkPolicy,
    /// With `[[source.changes]]`: the changed keys of each table, read instead of `filter`.
    pub(super) changes: Option<super::changes::ChangeReads>,
    /// The vectors of built orders the sending side has emptied, each page's taken from here.
    pub(super) spare_built: Spare<Built>,
}

/// Starts the reader task and returns its pages in order: first the held orders whose time has
/// come (read by order id), then the source's changed orders in watermark order, transformed.
/// At most [`PAGES_AHEAD`] pages wait in the channel. The stream ends with the reader's error,
/// if any, or with [`Error::TaskFailed`] when the task panicked; dropping it stops the task.
pub(super) fn pages(
    config: &Config,
    pool: &Pool,
    table: &SourceTable,
    read: ReadPlan,
    options: &RunOptions,
) -> impl Stream<Item = Result<PagePlan, Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    let reader = Reader {
        pool: pool.clone(),
        query: ReadQuery::new(config, table),
        order_id_column: config.mapping.order_id.clone(),
        rules: Rules::from_config(config),
        page_size: config.source.batch_size.get(),
        limit: options.limit,
        window: options.window,
        policy: read.policy,
        committed: read.committed,
        clock: read.clock,
        recent_from: read.recent_from,
        spare_built: read.spare_built,
    };
    let (filter, held, changes) = (read.filter, read.held, read.changes);
    let task = tokio::spawn(async move {
        if let Err(error) = reader.read(filter, held, changes, &tx).await {
            let _ = tx.send(Err(error)).await;
        }
    });
    let received = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|page| (page, rx))
    });
    // The channel also closes when the task panics: say so rather than end as if the source
    // were read to its end.
    let ended = stream::once(async move { task.await.err().map(|e| Err(Error::TaskFailed(e))) })
        .filter_map(std::future::ready);
    received.chain(ended)
}

/// What the reader task owns.
struct Reader {
    /// Source connections.
    pool: Pool,
    /// The page queries.
    query: ReadQuery,
    /// `mapping.order_id`: a changes table whose key matches it names orders by their key.
    order_id_column: String,
    /// The transform's rules.
    rules: Rules,
    /// Rows per page (`source.batch_size`).
    page_size: usize,
    /// `--limit`: stop after about this many source rows.
    limit: Option<u64>,
    /// Backfill: only orders whose exact event time falls in it.
    window: Option<EventTimeWindow>,
    /// Whether pages of changed orders move the watermark (incremental runs).
    policy: WatermarkPolicy,
    /// The stored watermark, see [`ReadPlan::committed`].
    committed: Option<Watermark>,
    /// The source database's clock.
    clock: source::Clock,
    /// See [`ReadPlan::recent_from`].
    recent_from: Option<i64>,
    /// See [`ReadPlan::spare_built`].
    spare_built: Spare<Built>,
}

impl Reader {
    /// Reads every page into `tx` until the source is done, `--limit` is reached or the
    /// receiver is gone.
    async fn read(
        &self,
        filter: Filter,
        held: Vec<String>,
        changes: Option<super::changes::ChangeReads>,
        tx: &mpsc::Sender<Result<PagePlan, Error>>,
    ) -> Result<(), Error> {
        let client = db::connect(&self.pool, "source").await?;
        if !held.is_empty() {
            let rows = self
                .pool
                .within(
                    "reading the held orders",
                    source::read_orders(&client, &self.query, &held),
                )
                .await?;
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
                    watermark: Watermark::new(self.query.watermark_kind(), ""),
                    store_id: None,
                    reread: false,
                    digest: None,
                })
                .collect();
            let mut held_page = self.plan(rows, WatermarkPolicy::Leave).await?;
            held_page.invalid.extend(gone);
            if tx.send(Ok(held_page)).await.is_err() {
                return Ok(());
            }
        }
        if let Some(changes) = changes {
            drop(client);
            return self.read_changes(changes, tx).await;
        }
        // Each page of the streamed read is bounded by `source.stall_timeout`, not the whole
        // statement: a read that keeps streaming rows for an hour is no stall.
        let mut reader = self
            .pool
            .within(
                "starting the source read",
                source::Reader::start_after(&client, &self.query, &filter, self.committed.as_ref()),
            )
            .await
            .map_err(super::changes::explain_stream_error)?;
        let mut read = 0u64;
        let page_size = self.page_size;
        // The last chunk's vector and rows, for the next chunk to read over.
        let mut spare = Vec::new();
        let finished = loop {
            let remaining = self.limit.map_or(usize::MAX, |l| {
                usize::try_from(l.saturating_sub(read)).unwrap_or(usize::MAX)
            });
            if remaining == 0 {
                break false;
            }
            let page_rows = page_size.min(remaining);
            let context = PlanContext {
                rules: &self.rules,
                window: self.window,
                policy: self.policy,
                now: self.clock.now(),
                recent_from: self.recent_from,
            };
            let mut plan = PagePlan {
                built: self.spare_built.take(page_rows),
                ..PagePlan::default()
            };
            // The page is read and transformed a chunk of whole orders at a time (see
            // `CHUNK_ROWS`); each chunk asks for the rows the page still lacks, at most
            // `CHUNK_ROWS`, and ends where an order ends, so the page ends where a page read
            // at once would: at the end of the order its `page_rows`th row is in.
            let mut taken = 0;
            while taken < page_rows {
                let want = CHUNK_ROWS.min(page_rows - taken);
                let mut chunk = self
                    .pool
                    .within(
                        "reading a page of the source",
                        reader.next_page_into(want, std::mem::take(&mut spare)),
                    )
                    .await
                    .map_err(super::changes::explain_stream_error)?;
                if chunk.rows.is_empty() {
                    break;
                }
                taken += chunk.rows.len();
                // The last page a `--limit` allows ends where the watermark changes.
                if taken >= page_rows && remaining <= page_size {
                    if let Some(last) = chunk.rows.last().map(|r| r.watermark.clone()) {
                        let rest = self
                            .pool
                            .within(
                                "reading a page of the source",
                                reader.rest_of_watermark(&last),
                            )
                            .await
                            .map_err(super::changes::explain_stream_error)?;
                        chunk.rows.extend(rest.rows);
                    }
                }
                // Rows read again (at or before the stored watermark) do not count toward
                // `--limit`, or a limit smaller than a tie on one watermark would never
                // progress.
                read += chunk.rows.iter().filter(|r| !r.reread).count() as u64;
                plan_into(&chunk.rows, &context, &mut plan);
                // Its rows stay: the next chunk's are decoded over them, into their memory.
                spare = chunk.rows;
            }
            if plan.rows == 0 {
                break true;
            }
            if tx.send(Ok(plan)).await.is_err() {
                break false;
            }
        };
        if finished {
            self.pool
                .within("finishing the source read", reader.finish(&client))
                .await
                .map_err(super::changes::explain_stream_error)?;
        } else {
            // Stopped early (`--limit`, or the run stopped): close the connection, which
            // ends the statement, rather than let the driver drain the rest of it.
            drop(reader);
            drop(deadpool_postgres::Object::take(client));
        }
        Ok(())
    }

    /// Reads the orders the changed keys of each `[[source.changes]]` table touch, table by
    /// table in (watermark, key) order, a chunk of keys ([`super::changes::read_chunk`]) and
    /// then a page of keys at a time: each page is one short statement in its own transaction
    /// on a connection taken for it, so nothing stays open on the source while the page is
    /// sent. An order already read in this run (through another table) is not read again:
    /// its rows were read after the run began, and the keys read are those of rows written
    /// before ([`super::changes::ChangesRead::upto`]); its rows are dropped, and where the
    /// table's key is the order id (a new order's header and its lines) the key is not even
    /// asked for, which halves what a run over new orders reads (measured in
    /// docs/benchmarks.md). A page cancelled by the server (a recovery conflict on a hot
    /// standby, a `statement_timeout`) is read again in halves of its keys
    /// ([`Reader::read_page`]); the page's watermark is still its chunk's last key.
    async fn read_changes(
        &self,
        changes: super::changes::ChangeReads,
        tx: &mpsc::Sender<Result<PagePlan, Error>>,
    ) -> Result<(), Error> {
        // The orders read, by a 128-bit digest of their key (16 bytes each rather than the
        // key's text: a million orders in about 32 MB).
        let mut seen: HashSet<u128> = HashSet::new();
        let mut read = 0u64;
        // Orders have a few rows each (lines): a page of keys is about a page of rows.
        let keys_per_page = (self.page_size / 3).max(1);
        for table_read in changes.tables {
            let table = &table_read.table;
            // A key equal to an order's key read in this run names that order (keys are
            // canonical text, which the read's trimming and id rules leave as it is): every row
            // a read by it would give is one the filter below drops.
            let by_order_id = table.matches_column == self.order_id_column;
            let Some(upto) = table_read.upto.as_ref() else {
                continue;
            };
            let mut next = Some((table_read.from.clone(), table_read.after));
            while let Some((from, after)) = next.take() {
                let range = KeyRange {
                    from: from.as_ref(),
                    after,
                    to: Some((upto, true)),
                };
                let client = db::connect(&self.pool, "source").await?;
                let (keys, after_chunk) =
                    super::changes::read_chunk(&self.pool, &client, table, range).await?;
                drop(client);
                next = after_chunk.map(|(from, after)| (Some(from), after));
                for chunk in pages_of_keys(&keys, keys_per_page) {
                    if self.limit.is_some_and(|limit| read >= limit) {
                        return Ok(());
                    }
                    let values: Vec<String> = chunk
                        .iter()
                        .filter(|k| !(by_order_id && seen.contains(&digest(&k.key))))
                        .map(|k| k.key.clone())
                        .collect();
                    // A page of keys all read already still moves the table's watermark.
                    let rows = if values.is_empty() {
                        Vec::new()
                    } else {
                        self.read_page(&table.matches, &table.matches_type, values)
                            .await?
                    };
                    let rows: Vec<source::SourceRow> = rows
                        .into_iter()
                        .filter(|r| r.key.is_empty() || !seen.contains(&digest(&r.key)))
                        .collect();
                    seen.extend(rows.iter().map(|r| digest(&r.key)));
                    read += rows.len() as u64;
                    let mut page = self.plan(rows, WatermarkPolicy::Leave).await?;
                    page.change = chunk
                        .last()
                        .map(|last| (table.configured.clone(), last.watermark.clone()));
                    if tx.send(Ok(page)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Every row of the orders with a row whose `column` (of base type `base_type`) is one of
    /// `values`, each order once, in short reads on connections of their own. A read the
    /// server cancels (a `statement_timeout`, a recovery conflict) is read again as two halves
    /// of its keys, down to a single key, so a page completes whenever one order can be read
    /// in time; a single key is read again up to [`PAGE_ATTEMPTS`] times, and then the run
    /// fails ([`super::changes::explain_cancel`]). An order two halves both touch (a key
    /// other than the order id) keeps the rows of the first read of it.
    async fn read_page(
        &self,
        column: &str,
        base_type: &str,
        values: Vec<String>,
    ) -> Result<Vec<source::SourceRow>, Error> {
        let mut rows: Vec<source::SourceRow> = Vec::new();
        let mut orders: HashSet<String> = HashSet::new();
        // Key sets still to read and their attempt, the next one last.
        let mut pending = vec![(values, 1u32)];
        let mut split = false;
        while let Some((mut values, attempt)) = pending.pop() {
            let filter = Filter::Matching {
                column: column.to_owned(),
                base_type: base_type.to_owned(),
                values: values.clone(),
            };
            let client = db::connect(&self.pool, "source").await?;
            let result = self
                .pool
                .within(
                    "reading a page of the changed orders",
                    source::read_all(&client, &self.query, &filter),
                )
                .await;
            match result {
                Ok(read) if !split => {
                    rows = read;
                }
                Ok(read) => {
                    // Rows of an order come together in one read: an order read before (by
                    // the other half's keys) is dropped whole.
                    let fresh: Vec<source::SourceRow> = read
                        .into_iter()
                        .filter(|r| r.key.is_empty() || !orders.contains(r.key.as_str()))
                        .collect();
                    orders.extend(fresh.iter().map(|r| r.key.to_string()));
                    rows.extend(fresh);
                }
                Err(error) if values.len() > 1 && super::changes::cancelled(&error) => {
                    tracing::warn!(
                        keys = values.len(),
                        error = %crate::error::chain(&error),
                        "a page of the changed orders was cancelled by the server; \
                         reading its keys again as two halves"
                    );
                    drop(deadpool_postgres::Object::take(client));
                    let second = values.split_off(values.len() / 2);
                    pending.push((second, 1));
                    pending.push((values, 1));
                    split = true;
                }
                Err(error) if attempt < PAGE_ATTEMPTS && super::changes::cancelled(&error) => {
                    tracing::warn!(
                        attempt,
                        error = %crate::error::chain(&error),
                        "the read of one changed key's orders was cancelled by the server; \
                         reading it again"
                    );
                    drop(deadpool_postgres::Object::take(client));
                    pending.push((values, attempt + 1));
                    split = true;
                }
                Err(error) if super::changes::cancelled(&error) => {
                    return Err(super::changes::explain_cancel(error, attempt));
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(rows)
    }

    /// Transforms a page read whole (held orders, a page of changed keys) on a blocking thread
    /// (normalizing and hashing is CPU work); `policy` says whether the page moves the
    /// watermark.
    async fn plan(
        &self,
        rows: Vec<source::SourceRow>,
        policy: WatermarkPolicy,
    ) -> Result<PagePlan, Error> {
        let rules = self.rules.clone();
        let (window, recent_from) = (self.window, self.recent_from);
        let now = self.clock.now();
        let built = self.spare_built.take(rows.len());
        tokio::task::spawn_blocking(move || {
            let context = PlanContext {
                rules: &rules,
                window,
                policy,
                now,
                recent_from,
            };
            let mut plan = PagePlan {
                built,
                ..PagePlan::default()
            };
            plan_into(&rows, &context, &mut plan);
            plan
        })
        .await
        .map_err(Error::TaskFailed)
    }
}

/// A 128-bit digest of an order's key (the first half of its SHA-256): two keys of one run
/// share one with a chance of about 10^-26 at a million orders.
fn digest(key: &str) -> u128 {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(key.as_bytes());
    let mut half = [0u8; 16];
    half.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(half)
}

/// `keys` (in watermark order) cut into pages of about `size` keys, never between two keys of
/// one watermark value: a page's last watermark is then a point every key at or before it is
/// read by, which the next run may start after.
fn pages_of_keys(keys: &[source::ChangedKey], size: usize) -> Vec<&[source::ChangedKey]> {
    let mut pages = Vec::new();
    let mut start = 0;
    for i in 1..=keys.len() {
        let cut =
            i == keys.len() || (i - start >= size && keys[i].watermark != keys[i - 1].watermark);
        if cut {
            pages.push(&keys[start..i]);
            start = i;
        }
    }
    pages
}

/// How the rows of a page are judged ([`plan_into`]).
struct PlanContext<'a> {
    /// The transform's rules.
    rules: &'a Rules,
    /// Backfill, reconcile: only orders whose exact event time falls in it.
    window: Option<EventTimeWindow>,
    /// Whether the page moves the watermark.
    policy: WatermarkPolicy,
    /// The source database's clock, unix seconds.
    now: i64,
    /// See [`ReadPlan::recent_from`].
    recent_from: Option<i64>,
}

/// Transforms rows of whole orders into events and invalid orders, added to `plan` (a page's
/// rows in one call, or chunk after chunk in read order: the page's watermark is its last
/// chunk's), judged at `context.now`. With a window (backfill, reconcile), orders whose exact
/// event time falls outside it are left out: the database's filter is wider for local times.
/// With `recent_from` (a run without ledger state), orders dated before it are left and
/// counted.
fn plan_into(rows: &[source::SourceRow], context: &PlanContext<'_>, plan: &mut PagePlan) {
    let PlanContext {
        rules,
        window,
        policy,
        now,
        recent_from,
    } = *context;
    let inside = |t: Option<i64>| {
        window.is_none_or(|w| t.is_none_or(|t| (t as f64) >= w.from && (t as f64) < w.to))
    };
    plan.rows += rows.len() as u64;
    plan.last_watermark = rows
        .last()
        .filter(|r| !r.watermark.is_empty())
        .and_then(|r| policy.page_end(&r.watermark));
    let old = |t: Option<i64>| recent_from.is_some_and(|from| t.is_some_and(|t| t < from));
    for order in transform::orders(rows) {
        let built = transform::build(order, rules, now).map_err(|mut invalid| {
            invalid.digest = Some(transform::content_digest(order));
            invalid
        });
        match built {
            Ok(built) if old(Some(built.event.event_time)) => plan.old.0.push(built),
            Err(invalid) if old(invalid.event_time) && invalid.order_id.is_some() => {
                plan.old.1.push(invalid);
            }
            Err(invalid) if old(invalid.event_time) => plan.left += 1,
            Ok(built) if inside(Some(built.event.event_time)) => plan.built.push(built),
            Err(invalid) if inside(invalid.event_time) => plan.invalid.push(invalid),
            _ => {}
        }
    }
}

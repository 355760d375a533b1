//! The send stage: each page's orders decided against the ledger and cut into batches, the
//! batches sent with bounded concurrency and taken back in page order, and each page committed
//! once its last batch is back.
//!
//! The scheduler is a chain of stream combinators:
//!
//! ```text
//! pages ─take_until(shutdown)─and_then(prepare)─try_flatten─map_ok(send)─try_buffered(n)─┐
//!   ┌───────────────────────────────────────────────────────────────────────────────────┘
//!   └─▶ collect (page outcomes, in order) ─channel(1)─▶ committer task (one transaction a page)
//! ```
//!
//! `try_buffered` keeps at most `destination.concurrency` batches in flight (each batch is one
//! request at a time) and hands them back in the order they were started; a page's last batch
//! carries the page's end, so when it comes back every batch of the page has. `collect` passes
//! the page to ONE committer task, which writes its ledger rows and the watermark in one
//! transaction, page after page, while the next pages are sent. Pages are pulled from the
//! reader only when a slot is free, so the pages read ahead stay bounded.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::stream::{self, Stream, StreamExt, TryStream, TryStreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dedup::{self, Sorted};
use super::reader::PagePlan;
use super::session::LedgerSession;
use super::spare::Spare;
use super::{AbortOnDrop, Progress, SharedStats};
use crate::config::CustomerField;
use crate::destination::{Delivery, Destination};
use crate::error::Error;
use crate::event::Event;
use crate::ledger::{OrderFacts, Outcome, Verdict};
use crate::source::{Watermark, WatermarkKind};
use crate::stats::{count_failed_attempts, RunStats};
use crate::transform::{Built, Invalid};
use crate::Text;

/// What the ledger needs of a sent event besides the event: its source watermark and store.
#[derive(Debug)]
pub(super) struct Tag {
    /// The source watermark of the version sent.
    watermark: Watermark,
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

/// The end of a page: what its commit writes besides its batches' outcomes.
#[derive(Debug)]
pub(super) struct PageEnd {
    /// The watermark of its last row, where the watermark advances once it commits (`None`:
    /// the page leaves it, see [`super::WatermarkPolicy`]).
    pub(super) watermark: Option<Watermark>,
    /// The `[[source.changes]]` table whose changed keys it read, and where that table's
    /// watermark advances once it commits.
    pub(super) change: Option<(String, Watermark)>,
    /// Its invalid orders.
    pub(super) invalid: Vec<Invalid>,
    /// Its orders held until their time comes.
    pub(super) held: Vec<Built>,
    /// Sent orders changed since, with their watermark and digest now.
    pub(super) changed: Vec<crate::ledger::Changed>,
    /// The orders it sends, which stay "in flight in this run" until it commits.
    sending: Arc<super::IdSet>,
    /// Its new invalid orders, counted in the stats when it commits.
    invalid_count: dedup::InvalidCount,
}

/// One slot of the scheduler: a batch (empty for a page with nothing to send), and the page's
/// end on the page's last batch.
#[derive(Debug)]
struct Flight {
    /// The batch.
    batch: Batch,
    /// Set on the last flight of a page.
    end: Option<PageEnd>,
}

/// A flight back from the destination, in page order.
struct Sent {
    /// The batch, to match the delivery's indices with its tags.
    batch: Batch,
    /// Set on the last flight of a page.
    end: Option<PageEnd>,
    /// The destination's answer (or the run's lock lost before the request).
    result: Result<Delivery, Error>,
}

/// A page whose batches are all back, for the committer.
struct PageDone {
    /// Its sent and rejected orders.
    outcomes: Vec<Outcome>,
    /// The rest of what it records.
    end: PageEnd,
}

/// Orders sent by pages of this run that have not committed yet. Once a page commits, the
/// ledger knows its orders (their rows carry this run's id), so memory stays bounded by the
/// pages in flight, not by the size of the run. Shared by `prepare` and the committer.
#[derive(Clone, Default)]
pub(super) struct InFlight(Arc<Mutex<InFlightPages>>);

/// The ids [`InFlight`] holds: each uncommitted page's own set (shared with the page, added
/// and dropped whole: an insert and a removal per order, with a copy of its id, were ~2.5% of
/// a run), and the ids of pages a read-only session does not write, kept until the run ends.
#[derive(Default)]
pub(super) struct InFlightPages {
    /// The sets of the pages sent and not yet committed (a few: those in flight).
    pages: Vec<Arc<super::IdSet>>,
    /// Ids of pages that were not written (a dry run), in one set.
    kept: super::IdSet,
}

impl InFlight {
    /// Runs `f` on the ids; never across an await.
    fn with<R>(&self, f: impl FnOnce(&mut InFlightPages) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl InFlightPages {
    /// Whether an order is in flight.
    fn contains(&self, order_id: &str) -> bool {
        self.kept.contains(order_id) || self.pages.iter().any(|page| page.contains(order_id))
    }

    /// A page's orders leave: committed (`written`), or kept until the run ends when the
    /// session did not write them.
    fn page_done(&mut self, page: &Arc<super::IdSet>, written: bool) {
        if let Some(at) = self.pages.iter().position(|p| Arc::ptr_eq(p, page)) {
            let page = self.pages.swap_remove(at);
            if !written {
                self.kept.extend(page.iter().cloned());
            }
        }
    }
}

/// One pass's sending and committing, with what its stages share. Owned (no borrows), so that
/// the futures of its stages are `'static` and a run can be spawned on any runtime thread.
pub(super) struct Pass {
    /// The ledger, read-only or writing.
    pub(super) session: Arc<LedgerSession>,
    /// Where each page's vector of built orders goes back to the reader once its orders are
    /// in batches.
    pub(super) spare_built: Spare<Built>,
    /// The pages' vectors of outcomes, given back by the committer once written.
    pub(super) spare_outcomes: Spare<Outcome>,
    /// The batches' vectors, given back once their outcomes are read: a batch of 1000 events
    /// is ~0.3 MiB, which the allocator handed back to the system between pages and faulted
    /// in again (a fifth of a fully populated run's page faults, issue 24).
    pub(super) spare_batches: (Spare<Event>, Spare<Tag>),
    /// Events per request (`destination.batch_size`).
    pub(super) batch_size: usize,
    /// Requests in flight at most (`destination.concurrency`).
    pub(super) concurrency: usize,
    /// Where batches go (stdout for a dry run).
    pub(super) destination: Arc<Destination>,
    /// Running stats, counted as pages are decided, batches finish and pages commit.
    pub(super) stats: SharedStats,
    /// Told the stats after each committed page.
    pub(super) progress: Option<Progress>,
    /// See [`InFlight`].
    pub(super) in_flight: InFlight,
    /// Cancelled when `shutdown` resolves; the destination's waits end with it.
    pub(super) stop: CancellationToken,
    /// The source database's clock: when an event was accepted, for its upload lag.
    pub(super) clock: crate::source::Clock,
    /// The watermark column's kind, which the ledger's recorded watermarks are read as.
    pub(super) watermark_kind: WatermarkKind,
}

impl Pass {
    /// Runs pages through the ledger and the destination until the reader is done, an error
    /// occurs, or `shutdown` resolves (then no page is started, and the pages started are
    /// finished and committed; but every wait ends at once, so a batch waiting out a throttle
    /// or a backoff fails with `DestinationError::Stopped` and its page is not committed). A failing run still commits the pages whose batches all came
    /// back; the committer's error, if any, wins over the sending side's.
    pub(super) async fn drive(
        self: Arc<Self>,
        pages: impl Stream<Item = Result<PagePlan, Error>> + Send,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let (commits, committer) = self.spawn_committer();
        let stop = self.stop.clone();
        let flights = pages
            .take_until(stop.clone().cancelled_owned())
            // Each page's future owns a handle on the pass: a future borrowing it from a
            // closure could not be proven `Send` for every lifetime, which spawning a run needs.
            .and_then({
                let pass = Arc::clone(&self);
                move |plan| {
                    let pass = Arc::clone(&pass);
                    async move { pass.prepare(plan).await }
                }
            })
            .map_ok(|flights| stream::iter(flights).map(Ok))
            .try_flatten()
            .map_ok(|flight| self.send(flight))
            .try_buffered(self.concurrency);
        // Watched beside the flights, not only between pages: with every slot taken by a batch
        // waiting out a throttle, the stop must still reach those waits.
        let signal = async {
            shutdown.await;
            tracing::info!("shutdown requested: finishing the pages in flight, no more waits");
            stop.cancel();
            std::future::pending::<std::convert::Infallible>().await
        };
        // Returning drops the flights, which aborts the requests still going.
        let sent =
            match futures_util::future::select(pin!(self.collect(flights, &commits)), pin!(signal))
                .await
            {
                futures_util::future::Either::Left((sent, _)) => sent,
                futures_util::future::Either::Right((never, _)) => match never {},
            };
        drop(commits);
        let committed = committer.await.map_err(Error::TaskFailed)?;
        committed.and(sent)
    }

    /// Takes batches back in page order and hands each page to the committer once its last
    /// batch is back. Stops at the first failed batch, or when the committer has stopped (on
    /// an error of its own, which `drive` returns).
    async fn collect(
        &self,
        flights: impl TryStream<Ok = Sent, Error = Error>,
        commits: &mpsc::Sender<PageDone>,
    ) -> Result<(), Error> {
        let mut flights = pin!(flights.into_stream());
        let mut outcomes: Vec<Outcome> = self.spare_outcomes.take(0);
        loop {
            // A committer that stopped (a page's ledger write failed) stops the sending at
            // once (issue 23): returning drops the flights, which aborts the requests going,
            // so a ledger that cannot be written costs at most the batches already in flight.
            let next = tokio::select! {
                biased;
                () = commits.closed() => break,
                next = flights.try_next() => next?,
            };
            let Some(sent) = next else { break };
            let delivery = sent.result?;
            let accepted_at = self.clock.now();
            let mut batch = sent.batch;
            self.stats.update(|stats| {
                add_outcomes(&mut outcomes, &mut batch, delivery, stats, accepted_at);
            });
            self.spare_batches.0.give(batch.events);
            self.spare_batches.1.give(batch.tags);
            if let Some(end) = sent.end {
                let page = PageDone {
                    outcomes: std::mem::replace(&mut outcomes, self.spare_outcomes.take(0)),
                    end,
                };
                if commits.send(page).await.is_err() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Decides each order of a page against the ledger and returns the page's flights: its
    /// batches, the last carrying the page's end (its invalid, held and changed orders).
    ///
    /// An order already handled in this run (seen again, e.g. a held order that is also in the
    /// delta) is a duplicate: earlier pages are known from `in_flight` until they commit, and
    /// from the ledger (their rows carry this run's id) after.
    async fn prepare(&self, plan: PagePlan) -> Result<Vec<Flight>, Error> {
        self.session.check_lock().await?;
        let PagePlan {
            rows,
            mut built,
            mut invalid,
            mut left,
            old,
            last_watermark,
            change,
        } = plan;
        let mut ids: Vec<&str> = built
            .iter()
            .chain(&old.0)
            .map(|b| b.event.custom_data.order_id.as_str())
            .chain(
                invalid
                    .iter()
                    .chain(&old.1)
                    .filter_map(|i| i.order_id.as_deref()),
            )
            .collect();
        // In key order, consecutive probes of the ledger's index visit neighbouring pages.
        ids.sort_unstable();
        ids.dedup();
        // Read before the lookup: an order leaves `in_flight` only after its page committed,
        // so one that has left by now is in the lookup's answer.
        let sending_earlier: super::IdSet = self.in_flight.with(|in_flight| {
            ids.iter()
                .filter(|id| in_flight.contains(id))
                .map(|id| crate::Text::from(*id))
                .collect()
        });
        let existing = self.session.lookup(&ids, self.watermark_kind).await?;
        // Orders older than the history floor: decided as usual when the ledger holds them.
        left +=
            super::history::keep_known(old, &existing, &sending_earlier, &mut built, &mut invalid);
        let seen_before = |order_id: &str| {
            sending_earlier.contains(order_id)
                || existing
                    .get(order_id)
                    .is_some_and(|e| self.session.is_this_runs_row(e))
        };
        let Sorted {
            to_send,
            held,
            invalid,
            changed,
            sending,
            invalid_count,
        } = self.stats.update(|stats| {
            stats.rows_read += rows;
            stats.history_left += left;
            dedup::sort_page(built, invalid, &existing, seen_before, stats)
        });
        self.in_flight
            .with(|in_flight| in_flight.pages.push(Arc::clone(&sending)));

        let batch_size = self.batch_size;
        let mut flights: Vec<Flight> = Vec::with_capacity(to_send.len().div_ceil(batch_size) + 1);
        // Drained, so that the page's vector goes back to the reader (see `Spare`).
        let mut to_send = to_send;
        let mut chosen = to_send.drain(..);
        loop {
            // Sized up front: grown from empty, the events (~600 bytes each) were copied about
            // ten times per batch (callgrind: ~800 instructions per row).
            let n = chosen.len().min(batch_size);
            if n == 0 {
                break;
            }
            let mut batch = Batch {
                events: self.spare_batches.0.take(n),
                tags: self.spare_batches.1.take(n),
            };
            for built in chosen.by_ref().take(n) {
                batch.tags.push(Tag {
                    new: !existing.contains_key(built.event.custom_data.order_id.as_str()),
                    watermark: built.watermark,
                    store_id: built.store_id,
                });
                batch.events.push(built.event);
            }
            flights.push(Flight { batch, end: None });
        }
        drop(chosen);
        self.spare_built.give(to_send);
        let end = PageEnd {
            watermark: last_watermark,
            change,
            invalid,
            held,
            changed,
            sending,
            invalid_count,
        };
        match flights.last_mut() {
            Some(last) => last.end = Some(end),
            None => flights.push(Flight {
                batch: Batch::default(),
                end: Some(end),
            }),
        }
        Ok(flights)
    }

    /// Starts sending one flight's batch: on its own task, so that requests progress while
    /// the scheduler works, counted in the stats as soon as it finishes, failed or not. A
    /// destination that answers at once (stdout) takes the batch now, in page order. An empty
    /// batch sends nothing. A request is not made once the run's lock is known lost.
    fn send(&self, flight: Flight) -> impl Future<Output = Result<Sent, Error>> + Send + 'static {
        let Flight { batch, end } = flight;
        let sending = if batch.events.is_empty() {
            Sending::Done(batch, Ok(Delivery::default()))
        } else if let Some(result) = self.destination.send_now(&batch.events) {
            if let Ok(delivery) = &result {
                self.stats.update(|stats| stats.count_delivery(delivery));
            }
            Sending::Done(batch, result.map_err(Error::from))
        } else {
            let destination = Arc::clone(&self.destination);
            let lock = self.session.lock();
            let stats = self.stats.clone();
            Sending::Task(AbortOnDrop(tokio::spawn(async move {
                if let Some(lock) = lock.filter(|lock| !lock.is_held()) {
                    if let Err(lost) = lock.check().await {
                        return (batch, Err(Error::from(lost)));
                    }
                }
                let result = destination.send(&batch.events).await;
                stats.update(|stats| match &result {
                    Ok(delivery) => stats.count_delivery(delivery),
                    Err(error) => count_failed_attempts(stats, error),
                });
                (batch, result.map_err(Error::from))
            })))
        };
        async move {
            let (batch, result) = match sending {
                Sending::Done(batch, result) => (batch, result),
                Sending::Task(mut task) => (&mut task.0).await.map_err(Error::TaskFailed)?,
            };
            Ok(Sent { batch, end, result })
        }
    }

    /// Starts the committer: ONE task that commits pages in the order they are sent to it,
    /// each in one transaction, and stops at its first error. Dropping the sender lets it
    /// finish the pages it was given and end.
    fn spawn_committer(&self) -> (mpsc::Sender<PageDone>, JoinHandle<Result<(), Error>>) {
        let (tx, mut rx) = mpsc::channel::<PageDone>(1);
        let committer = Committer {
            session: Arc::clone(&self.session),
            spare_outcomes: self.spare_outcomes.clone(),
            stats: self.stats.clone(),
            in_flight: self.in_flight.clone(),
            progress: self.progress.clone(),
        };
        let task = tokio::spawn(async move {
            while let Some(page) = rx.recv().await {
                committer.commit(page).await?;
            }
            Ok(())
        });
        (tx, task)
    }
}

/// A batch being sent, or already answered (a dry run, an empty batch).
enum Sending {
    /// Answered without a request.
    Done(Batch, Result<Delivery, Error>),
    /// On its own task.
    Task(AbortOnDrop<(Batch, Result<Delivery, Error>)>),
}

/// Adds one batch's delivery to its page's outcomes, and counts the match keys and upload lag
/// of its accepted events (accepted at `accepted_at`, unix seconds by the source database's
/// clock, the clock their event times are judged by).
fn add_outcomes(
    outcomes: &mut Vec<Outcome>,
    batch: &mut Batch,
    delivery: Delivery,
    stats: &mut RunStats,
    accepted_at: i64,
) {
    outcomes.reserve(batch.events.len());
    // What became of each event, by its index in the batch: the batch's events are then read
    // in one pass where they lie, and dropped together (moved into vectors of `Option`s, taken
    // out again by index and into their outcome, each ~300-byte event was copied three times,
    // issue 24). An index the delivery names twice keeps its first verdict, accepted first.
    let mut verdicts: Vec<Option<Verdict>> = vec![None; batch.events.len()];
    for accepted in delivery.accepted {
        let received = i32::try_from(accepted.events_received).unwrap_or(i32::MAX);
        let fbtrace_id = accepted.fbtrace_id.as_deref().map(Text::from);
        for index in accepted.indices {
            if let Some(slot @ None) = verdicts.get_mut(index) {
                *slot = Some(Verdict::Sent {
                    fbtrace_id: fbtrace_id.clone(),
                    events_received: received,
                });
            }
        }
    }
    for rejected in delivery.rejected {
        if let Some(slot @ None) = verdicts.get_mut(rejected.index) {
            *slot = Some(Verdict::from(rejected));
        }
    }
    let digest = |index: usize| delivery.digests.get(index).copied().flatten();
    // Counted per field here and added to the run's map once per batch: a map lookup by key
    // text for every key of every event was ~3,300 instructions per row (callgrind).
    let mut keys = [0_u64; CustomerField::COUNT];
    for (index, (event, tag)) in batch.events.iter().zip(batch.tags.drain(..)).enumerate() {
        let Some(verdict) = verdicts[index].take() else {
            continue;
        };
        if matches!(verdict, Verdict::Sent { .. }) {
            for field in event.user_data.present_fields() {
                keys[field.index()] += 1;
            }
            stats.accepted(event.event_time, accepted_at);
        } else {
            tracing::warn!(order_id = %event.custom_data.order_id, "event rejected by the destination");
        }
        outcomes.push(Outcome {
            new: tag.new,
            order: OrderFacts::from_event(event, tag.watermark, tag.store_id, digest(index)),
            verdict,
        });
    }
    for field in CustomerField::ALL {
        let n = keys[field.index()];
        if n > 0 {
            RunStats::bump(&mut stats.match_keys, field.key(), n);
        }
    }
}

/// What the committer task owns.
struct Committer {
    /// Writes each page (a read-only session writes nothing).
    session: Arc<LedgerSession>,
    /// Takes each page's outcomes back once they are written.
    spare_outcomes: Spare<Outcome>,
    /// Counts what each commit recorded.
    stats: SharedStats,
    /// Loses a page's orders once the ledger has them.
    in_flight: InFlight,
    /// Told the stats after each page.
    progress: Option<Progress>,
}

impl Committer {
    /// Commits one page, then counts it in the stats and tells the progress callback. A page
    /// that a read-only session does not write keeps its "sent" orders in flight until the run
    /// ends.
    async fn commit(&self, page: PageDone) -> Result<(), Error> {
        let sent = page
            .outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Sent { .. }))
            .count() as u64;
        let rejected = page.outcomes.len() as u64 - sent;
        let written = self.session.write_page(&page.outcomes, &page.end).await?;
        self.spare_outcomes.give(page.outcomes);
        self.in_flight
            .with(|in_flight| in_flight.page_done(&page.end.sending, written));
        let watermark = page.end.watermark;
        let change = page.end.change;
        self.stats.update(|stats| {
            if let Some((table, watermark)) = change {
                if let Some(w) = stats
                    .change_watermarks
                    .iter_mut()
                    .find(|w| w.table == table)
                {
                    // A page re-read within the lookback ends before the stored watermark,
                    // which the ledger keeps (it never moves back).
                    let behind = w.end.as_ref().is_some_and(|end| watermark.before(end));
                    if !behind {
                        w.end = Some(watermark);
                    }
                }
            }
            stats.sent += sent;
            stats.rejected += rejected;
            page.end.invalid_count.count_in(stats);
            if let Some(watermark) = watermark {
                stats.watermark_end = Some(watermark);
            }
            if let Some(progress) = &self.progress {
                progress(stats);
            }
        });
        Ok(())
    }
}

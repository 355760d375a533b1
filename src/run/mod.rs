//! One sync pass: read → transform → send → ledger → stats, one stage per child module.
//!
//! Three stages overlap. The reader task (`reader`) streams the source's changed orders (every
//! row of each, see `source`) in pages of whole orders and transforms them; the scheduler
//! (`send`) decides each page's orders against the ledger (`dedup`, a pure policy) and sends
//! its batches, up to `destination.concurrency` requests in flight; batches come back in page
//! order, and when the last batch of a page is back, its `sent`, `rejected` and `invalid` rows
//! and the watermark advance commit in one transaction, on one committer task, while the next
//! pages are sent.
//!
//! A pass is opened (`open`: pools, the table described, the schema gate, the lock, the
//! destination, the run's row), driven (`drive`: where it starts, then the stages) and judged
//! (`verdict`, pure). Its modes are values chosen once, in `open`: the ledger session is
//! read-only or writing (`session`), the destination prints (a dry run) or sends, and the
//! watermark policy advances or leaves the watermark (a backfill).
//!
//! Each order is written to the ledger once. A run that fails or is killed at any point loses
//! no order: the watermark never passes an order whose ledger row is not committed, so the next
//! run reads the dead run's in-flight orders again and sends them with the same `event_id`,
//! `order_id` and `event_time`, which Meta deduplicates.

mod changes;
mod dedup;
mod drive;
mod history;
mod meta_life;
mod open;
mod reader;
mod send;
mod session;
mod spare;
mod verdict;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::config::Config;
use crate::error::Error;
use crate::source::{EventTimeWindow, Watermark};
use crate::stats::{RunStats, RunStatus};
use open::Opening;

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

    /// What the pass does with the watermark.
    fn watermark(self) -> WatermarkPolicy {
        match self {
            Self::Run => WatermarkPolicy::Advance,
            Self::Backfill => WatermarkPolicy::Leave,
        }
    }
}

/// What a pass does with the watermark: an incremental run advances it page by page (never
/// back: the ledger compares in the column's type), starts from it, resumes the held orders now
/// due and applies the 7-day history floor; a backfill leaves it where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatermarkPolicy {
    /// Advance it with each committed page.
    Advance,
    /// Leave it.
    Leave,
}

impl WatermarkPolicy {
    /// Whether the pass advances the watermark (and so starts from it).
    fn advances(self) -> bool {
        matches!(self, Self::Advance)
    }

    /// Where a page whose last row has `watermark` moves the watermark, if at all.
    fn page_end(self, watermark: &Watermark) -> Option<Watermark> {
        match self {
            Self::Advance => Some(watermark.clone()),
            Self::Leave => None,
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

/// Runs one sync pass: opens it, drives it, decides its verdict and records its end.
/// `shutdown` resolving stops it after the page in flight, committed.
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
    let (mut opened, stats) = match open::open(config, &options, &stop).await? {
        Opening::Open(opened, stats) => (opened, stats),
        Opening::Skipped(mut stats) => {
            stats.duration_ms = elapsed_ms(started);
            return Ok(stats);
        }
    };
    let stopped = stop.clone();
    let (mut stats, result) =
        drive::drive(config, &options, &mut opened, stats, stop, shutdown).await;
    stats.duration_ms = elapsed_ms(started);
    let (status, error) = verdict::verdict(
        &stats,
        result.as_ref().map(|_| ()),
        options.max_invalid_ratio,
        config.source.watermark_column(),
    );
    // A signal cancelled the pass: it did not read everything, and says so (trial finding 3).
    stats.status = if status == RunStatus::Completed && stopped.is_cancelled() {
        RunStatus::Stopped
    } else {
        status
    };
    stats.error = error.or(stats.error.take());
    let shares_source = config.ledger_shares_source();
    (opened.session)
        .record_end(&opened.ledger_client, &stats, &result, shares_source)
        .await?;
    result.map(|()| stats)
}

/// Milliseconds since `started`.
fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
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

/// Order ids, hashed with foldhash rather than SipHash: a run adds and looks up every order's
/// id in a few such sets (the page's, those in flight), ~2% of its CPU with SipHash on
/// fully populated rows (issue 24). The seed is random per process, as SipHash's is. Each id is a
/// [`crate::Text`]: one of up to 24 bytes (nearly every order id) is kept inline, so adding an
/// order to its page's set allocates nothing (the set is dropped on the committer's thread,
/// where freeing each id's copy was a cross-thread free per order).
pub(crate) type IdSet = std::collections::HashSet<crate::Text, foldhash::fast::RandomState>;

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

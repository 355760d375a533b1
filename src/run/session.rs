//! The run's ledger session: read-only (a dry run) or writing (a run that records), owning
//! what differs between the two: the lookup of a page's orders, the page write, the lock
//! check, "is this run's row", and recording the run's end. The pass asks it and never asks
//! which one it is.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::Client;

use super::send::PageEnd;
use crate::db::{self, Pool};
use crate::error::Error;
use crate::ledger::{Existing, Ledger, Outcome, Status};
use crate::lock::RunLock;
use crate::source::{self, WatermarkKind};
use crate::stats::RunStats;
use crate::transform::{Built, Invalid};

/// What the session may do.
pub(super) enum Access {
    /// Reads the ledger when it has been migrated (`ready`), treats a missing one as empty,
    /// writes nothing and takes no lock.
    ReadOnly {
        /// Whether the ledger schema exists.
        ready: bool,
    },
    /// Records the run (`runs.run_id`) under the run's lock.
    Writing {
        /// `runs.run_id`.
        run_id: i64,
        /// The run's lock, checked before each page is sent, each request and each commit;
        /// held as long as the session.
        lock: Arc<RunLock>,
    },
}

/// The ledger as one run sees it.
pub(super) struct LedgerSession {
    /// The ledger's tables.
    pub(super) ledger: Ledger,
    /// Ledger connections, with their bounds.
    pub(super) pool: Pool,
    /// Read-only or writing.
    pub(super) access: Access,
}

impl LedgerSession {
    /// The ledger, when it can be read (a read-only session before `migrate` cannot).
    pub(super) fn readable(&self) -> Option<&Ledger> {
        match self.access {
            Access::ReadOnly { ready: false } => None,
            _ => Some(&self.ledger),
        }
    }

    /// The ledger, when this session writes it.
    pub(super) fn writable(&self) -> Option<&Ledger> {
        match self.access {
            Access::Writing { .. } => Some(&self.ledger),
            Access::ReadOnly { .. } => None,
        }
    }

    /// The run's lock, when the session writes.
    pub(super) fn lock(&self) -> Option<Arc<RunLock>> {
        match &self.access {
            Access::Writing { lock, .. } => Some(Arc::clone(lock)),
            Access::ReadOnly { .. } => None,
        }
    }

    /// Fails with [`crate::lock::LockLost`] when a writing session's lock is lost.
    pub(super) async fn check_lock(&self) -> Result<(), Error> {
        if let Access::Writing { lock, .. } = &self.access {
            lock.check().await?;
        }
        Ok(())
    }

    /// The ledger rows of these orders (none when the ledger cannot be read).
    pub(super) async fn lookup(
        &self,
        ids: &[&str],
        kind: WatermarkKind,
    ) -> Result<HashMap<String, Existing>, Error> {
        let Some(ledger) = self.readable() else {
            return Ok(HashMap::new());
        };
        let mut client = db::connect(&self.pool, "ledger").await?;
        // Boxed: the lookup holds two requests in flight at once, and unboxed it would grow
        // every future that sends a page (one allocation a page).
        Ok(self
            .pool
            .within(
                "looking up a page's orders in the ledger",
                Box::pin(ledger.lookup(&mut client, ids, kind)),
            )
            .await?)
    }

    /// Whether a ledger row is this run's own sent order (written by an earlier page of this
    /// run); never for a read-only session, which writes no row.
    pub(super) fn is_this_runs_row(&self, row: &Existing) -> bool {
        match self.access {
            Access::Writing { run_id, .. } => {
                row.run_id == Some(run_id) && row.status == Status::Sent
            }
            Access::ReadOnly { .. } => false,
        }
    }

    /// Writes a page's sent, rejected, invalid, held and changed rows and advances the
    /// watermark to the page's end (when it moves it), in one transaction, under the run's
    /// lock. Returns whether it wrote: a read-only session writes nothing.
    pub(super) async fn write_page(
        &self,
        outcomes: &[Outcome],
        end: &PageEnd,
    ) -> Result<bool, Error> {
        let Access::Writing { run_id, lock } = &self.access else {
            return Ok(false);
        };
        lock.check().await?;
        let client = db::connect(&self.pool, "ledger").await?;
        self.pool
            .within(
                "writing a page to the ledger",
                self.write_page_on(client, outcomes, end, *run_id),
            )
            .await?;
        Ok(true)
    }

    /// [`LedgerSession::write_page`]'s transaction, on `client`.
    async fn write_page_on(
        &self,
        mut client: deadpool_postgres::Object,
        outcomes: &[Outcome],
        end: &PageEnd,
        run_id: i64,
    ) -> Result<(), Error> {
        let ledger = &self.ledger;
        let mut tx = client
            .transaction()
            .await
            .map_err(db::DbError::query("cannot start a transaction"))?;
        let invalid: Vec<&Invalid> = end.invalid.iter().collect();
        ledger.record_invalid(&tx, &invalid, run_id).await?;
        let held: Vec<&Built> = end.held.iter().collect();
        ledger.record_held(&tx, &held, run_id).await?;
        ledger.mark_changed(&tx, &end.changed).await?;
        ledger.record_outcomes(&mut tx, outcomes, run_id).await?;
        if let Some(watermark) = &end.watermark {
            ledger.advance_watermark(&tx, watermark, run_id).await?;
        }
        if let Some((table, watermark)) = &end.change {
            ledger
                .advance_change_watermark(&tx, table, watermark, run_id)
                .await?;
        }
        tx.commit()
            .await
            .map_err(db::DbError::query("cannot commit a page"))?;
        Ok(())
    }

    /// Records a writing run's end (`stats`, decided from `result`) on `client`, and logs it.
    /// A ledger that stopped answering is not waited on again: the next run records this one
    /// as interrupted. `shares_source`: the ledger is in the source's database.
    ///
    /// # Errors
    /// The ledger's error when the end cannot be recorded after a run that succeeded (a failed
    /// run reports why it failed, and this is only logged).
    pub(super) async fn record_end(
        &self,
        client: &Client,
        stats: &RunStats,
        result: &Result<(), Error>,
        shares_source: bool,
    ) -> Result<(), Error> {
        let Some(ledger) = self.writable() else {
            return Ok(());
        };
        // A ledger that stopped answering would hold the end's record for another stall bound
        // (the run then took twice its `stall_timeout`).
        let stalled = match result {
            Err(Error::Db(db::DbError::Stalled { what, .. }))
            | Err(Error::Source(source::SourceError::Db(db::DbError::Stalled { what, .. }))) => {
                Some(*what)
            }
            Err(Error::LockLost(lost)) if lost.stalled() => Some("ledger"),
            _ => None,
        };
        if stalled.is_some_and(|what| what == "ledger" || shares_source) {
            tracing::warn!(
                run_id = stats.run_id,
                "the ledger's database stopped answering: the run's end is not recorded, the \
                 next run records it as interrupted"
            );
            return Ok(());
        }
        let finished = self
            .pool
            .within("recording the run's end", ledger.finish_run(client, stats))
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
        Ok(())
    }
}

//! Opening a pass: the pools, the source table described, the source database's clock, the
//! ledger's schema gate, the lock, the destination and the run's row. A dry run is chosen here
//! (and only here): it opens a read-only ledger session and prints instead of sending.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::session::{Access, LedgerSession};
use super::{meta_life, Mode, RunOptions};
use crate::config::Config;
use crate::db;
use crate::destination::{Destination, PrintDestination};
use crate::error::Error;
use crate::ledger::{ensure_schema, Ledger};
use crate::lock::{LockError, RunLock};
use crate::source::{self, SourceTable};
use crate::stats::{RunStats, RunStatus};

/// An opened pass, ready to be driven.
pub(super) struct Opened {
    /// Source connections, bounded by `source.connect_timeout` and `source.stall_timeout`.
    pub(super) source_pool: db::Pool,
    /// The source session that described the table; dropped before the pages are read.
    pub(super) source_client: Option<deadpool_postgres::Object>,
    /// The source table as described.
    pub(super) table: SourceTable,
    /// The one clock this run judges event times by (see [`source::Clock`]).
    pub(super) clock: source::Clock,
    /// The ledger session that records the run (its start, its state, its end).
    pub(super) ledger_client: deadpool_postgres::Object,
    /// The ledger as this run may use it; holds the lock until the pass returns.
    pub(super) session: Arc<LedgerSession>,
    /// Where the events go.
    pub(super) destination: Arc<Destination>,
}

/// What opening a pass came to.
pub(super) enum Opening {
    /// Ready to drive, with the stats counted so far (Meta's side, the run's id).
    Open(Box<Opened>, RunStats),
    /// Another run holds the lock: this incremental run is `skipped` (exit 0).
    Skipped(RunStats),
}

/// Opens a pass. Every wait on either database has a bound (issue 23): connecting within
/// `connect_timeout`, each statement within `stall_timeout`. The pools live as long as the
/// pass, so a connection left mid-statement by a stall is closed with them, which ends its
/// session and frees its locks. `stop` cuts the destination's waits short.
///
/// # Errors
/// Whatever stops the pass before it has anything to record: a source or ledger that cannot
/// be reached, a table that does not fit the config, a ledger schema older than this build
/// (a dry run reads a missing ledger as empty), a lock it cannot take, a destination it
/// cannot set up.
pub(super) async fn open(
    config: &Config,
    options: &RunOptions,
    stop: &CancellationToken,
) -> Result<Opening, Error> {
    // The mode is chosen here: a dry run writes nothing anywhere and sends nothing.
    let writes = !options.dry_run;
    let source_pool =
        db::pool(&config.source_url()?, "source", 2)?.with_timeouts(db::Timeouts::source(config));
    let source_client = db::connect(&source_pool, "source").await?;
    let table = source_pool
        .within(
            "describing the source table",
            source::describe(&source_client, config),
        )
        .await?;
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
    if writes {
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
    if !writes {
        let ready = schema_ready.await.is_ok();
        let session = LedgerSession {
            ledger,
            pool: ledger_pool,
            access: Access::ReadOnly { ready },
        };
        let opened = Opened {
            source_pool,
            source_client: Some(source_client),
            table,
            clock,
            ledger_client,
            session: Arc::new(session),
            destination: Arc::new(Destination::Print(PrintDestination)),
        };
        return Ok(Opening::Open(Box::new(opened), stats));
    }
    schema_ready.await?;
    let lock = match RunLock::acquire(&ledger_pool, config).await {
        Ok(lock) => Arc::new(lock),
        // An overlapping incremental run (cron starting while a slow run goes) is not a
        // failure: the run holding the lock does the work. A backfill was asked for by a
        // person and has not happened: it fails (exit 1).
        Err(error @ LockError::Held { .. }) if options.mode == Mode::Run => {
            tracing::warn!(error = %error, "another run holds the lock; skipped");
            stats.status = RunStatus::Skipped;
            stats.note = Some(format!("skipped: {error}"));
            return Ok(Opening::Skipped(stats));
        }
        Err(error) => return Err(error.into()),
    };
    let destination = configured_destination(config, stop)?;
    if let Destination::Meta(meta) = &destination {
        meta_life::read(config, meta, &mut stats).await?;
    }
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
    // Keys written under an earlier rule (`1001.0` for a numeric id) follow the id column's
    // type from now on; `migrate` has usually done it and says so.
    let conversion = ledger_pool
        .within(
            "converting the ledger's order keys",
            ledger.convert_keys(&mut ledger_client, table.id_kind),
        )
        .await?;
    if !conversion.already {
        tracing::info!(conversion = %conversion.summary(), "ledger keys");
    }
    let session = LedgerSession {
        ledger,
        pool: ledger_pool,
        access: Access::Writing {
            run_id: stats.run_id,
            lock,
        },
    };
    let opened = Opened {
        source_pool,
        source_client: Some(source_client),
        table,
        clock,
        ledger_client,
        session: Arc::new(session),
        destination: Arc::new(destination),
    };
    Ok(Opening::Open(Box::new(opened), stats))
}

/// The configured destination (a file, Meta), its waits ending with `stop`.
///
/// # Errors
/// An unset token variable or an unreadable token file is a configuration error
/// ([`crate::destination::DestinationError::Secret`]: exit 2, and `watch` stops): no retry
/// can fix it. The destination reads its secrets once, here, for every command.
fn configured_destination(config: &Config, stop: &CancellationToken) -> Result<Destination, Error> {
    Ok(Destination::from_config(config)?.stopping_on(stop.clone()))
}

/// Closes the runs of this connector that a dead process left `running` and says what they
/// leave to do: an incremental run's orders are read again from the watermark by this run, a
/// backfill's window must be backfilled again.
async fn report_interrupted_runs(
    ledger: &Ledger,
    client: &tokio_postgres::Client,
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

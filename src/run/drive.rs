//! Driving an opened pass: where it starts (the stored watermark, `source.start`, the history
//! floor, the held orders now due), then the reader's pages through the send stage until the
//! source is done, an error occurs or `shutdown` resolves.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::open::Opened;
use super::session::LedgerSession;
use super::{history, reader, send, spare, RunOptions, SharedStats};
use crate::config::{Config, ConfigError};
use crate::db;
use crate::error::Error;
use crate::source::{self, Filter, SourceTable, Watermark};
use crate::stats::RunStats;
use crate::transform;

/// Drives an opened pass; returns its stats, counted so far whatever the outcome, and how the
/// driving ended. A pass that leaves orders under the history floor says so in the stats'
/// note.
pub(super) async fn drive(
    config: &Config,
    options: &RunOptions,
    opened: &mut Opened,
    mut stats: RunStats,
    stop: CancellationToken,
    shutdown: impl Future<Output = ()> + Send,
) -> (RunStats, Result<(), Error>) {
    let mut recent_from = None;
    let mut first_run = true;
    let result = async {
        let session = Arc::clone(&opened.session);
        // Before anything is sent, the ledger table must take a write (issue 23): a ledger
        // that cannot record what is sent would have every later run send it again.
        if let Some(ledger) = session.writable() {
            session
                .pool
                .within(
                    "checking that the ledger can be written",
                    ledger.check_writable(&opened.ledger_client),
                )
                .await?;
        }
        let Some(source_client) = opened.source_client.take() else {
            return Ok(());
        };
        let sessions = Sessions {
            source: &source_client,
            source_pool: &opened.source_pool,
            ledger: &opened.ledger_client,
            ledger_session: &session,
        };
        let policy = options.mode.watermark();
        let (filter, stored) =
            start_filter(config, options, &sessions, &opened.table, &mut stats).await?;
        // With `[[source.changes]]`, an incremental pass reads the orders their changed keys
        // touch instead of the delta of `source.watermark_column`.
        let changes =
            if config.source.changes.is_empty() || !policy.advances() || options.window.is_some() {
                None
            } else {
                Some(super::changes::discover(config, &sessions, &opened.table, &mut stats).await?)
            };
        let no_state = match &changes {
            Some((_, first)) => *first,
            None => stats.watermark_start.is_none(),
        };
        recent_from = history::floor(
            config,
            options,
            policy,
            &sessions,
            no_state,
            opened.clock.now(),
        )
        .await?;
        first_run = no_state;
        let held = match session.readable().filter(|_| policy.advances()) {
            Some(ledger) => {
                let due = opened.clock.now() + transform::MAX_FUTURE_SECS;
                session
                    .pool
                    .within(
                        "reading the held orders now due",
                        ledger.due_held(&opened.ledger_client, due),
                    )
                    .await?
            }
            None => Vec::new(),
        };
        drop(source_client);
        let committed = stored.filter(|_| policy.advances());
        let shared = SharedStats::new(std::mem::replace(
            &mut stats,
            RunStats::new(&config.connector.name),
        ));
        // A page's vector of built orders goes back from the sending side to the reader.
        let built = spare::Spare::default();
        let pass = send::Pass {
            session: Arc::clone(&session),
            spare_built: built.clone(),
            spare_outcomes: spare::Spare::default(),
            // Every batch in flight, and a page's batches waiting for a slot.
            spare_batches: (
                spare::Spare::new(config.destination.concurrency + 2),
                spare::Spare::new(config.destination.concurrency + 2),
            ),
            batch_size: config.destination.batch_size.get(),
            concurrency: config.destination.concurrency,
            destination: Arc::clone(&opened.destination),
            stats: shared.clone(),
            progress: options.progress.clone(),
            in_flight: send::InFlight::default(),
            stop,
            clock: opened.clock,
            watermark_kind: opened.table.watermark_kind,
        };
        let read = reader::ReadPlan {
            clock: opened.clock,
            filter,
            held,
            committed,
            recent_from,
            policy,
            changes: changes.map(|(keys, _)| keys),
            spare_built: built,
        };
        let pages = reader::pages(config, &opened.source_pool, &opened.table, read, options);
        let result = Arc::new(pass).drive(pages, shutdown).await;
        // Whatever the outcome, the stats counted so far are the run's.
        stats = shared.update(|stats| stats.clone());
        result
    }
    .await;
    if let Some(from) = recent_from.filter(|_| stats.history_left > 0) {
        stats.note = Some(history::note(stats.history_left, from, first_run));
        tracing::warn!(
            left = stats.history_left,
            "{}",
            stats.note.as_deref().unwrap_or_default()
        );
    }
    (stats, result)
}

/// The run's first sessions, the source's pool (with its bounds) and the ledger session.
pub(super) struct Sessions<'a> {
    /// The source session that described the table.
    pub(super) source: &'a tokio_postgres::Client,
    /// Its pool.
    pub(super) source_pool: &'a db::Pool,
    /// The ledger session that records the run.
    pub(super) ledger: &'a tokio_postgres::Client,
    /// The ledger as this run may use it.
    pub(super) ledger_session: &'a LedgerSession,
}

/// What an incremental run reads: the orders changed since the stored watermark minus the
/// lookback, else since `source.start`, else (a time watermark) since 62 days ago, the oldest
/// a store event may be; an integer watermark without `source.start` reads the whole table. A
/// backfill reads its event-time window. Returns the filter and the stored watermark, which
/// `stats` start (and end, until a page moves it) at.
async fn start_filter(
    config: &Config,
    options: &RunOptions,
    sessions: &Sessions<'_>,
    table: &SourceTable,
    stats: &mut RunStats,
) -> Result<(Filter, Option<Watermark>), Error> {
    let source_client = sessions.source;
    let session = sessions.ledger_session;
    let stored = match session.readable() {
        Some(ledger) => {
            session
                .pool
                .within("reading the watermark", ledger.watermark(sessions.ledger))
                .await?
        }
        None => None,
    };
    let kind = table.watermark_kind;
    let stored = stored.map(|stored| stored.of_kind(kind));
    stats.watermark_start = stored.clone().map(|(Ok(w) | Err(w))| w);
    stats.watermark_end = stats.watermark_start.clone();
    let stored = match stored {
        Some(Ok(watermark)) => Some(watermark),
        // The config no longer fits the ledger: a configuration error (exit 2), which no
        // retry by `watch` can fix. (A backfill reads its window whatever the state holds.)
        Some(Err(stored)) if options.window.is_none() => {
            return Err(ConfigError::Invalid {
                key: "source.watermark_column",
                constraint: format!(
                    "is now a {} but the stored watermark is a {}; reset it with \
                     `delete from {}.state where connector = '{}'` after checking",
                    kind.sql_type(),
                    stored.kind().sql_type(),
                    config.ledger.schema,
                    config.connector.name
                ),
            }
            .into())
        }
        Some(Err(stored)) => Some(stored),
        None => None,
    };
    if let Some(window) = options.window {
        return Ok((Filter::Window(window), stored));
    }
    let bounded = sessions.source_pool;
    // Without a watermark column (`[[source.changes]]` only), the lookback is theirs.
    let amount = match config.source.watermark_column {
        Some(_) => config
            .source
            .lookback
            .check(kind == source::WatermarkKind::Integer, "source.lookback")?,
        None => 0,
    };
    let from = match &stored {
        Some(watermark) if amount == 0 => Some(watermark.clone()),
        Some(watermark) => Some(
            bounded
                .within(
                    "reading the source's clock",
                    source::minus_lookback(source_client, watermark, amount),
                )
                .await?,
        ),
        None => match &config.source.start {
            Some(start) => Some(
                bounded
                    .within(
                        "checking `source.start`",
                        source::check_watermark(source_client, kind, start, "the watermark column"),
                    )
                    .await?,
            ),
            None => {
                bounded
                    .within(
                        "reading the source's clock",
                        source::default_start(source_client, kind, config.source.timezone.name()),
                    )
                    .await?
            }
        },
    };
    if let (Some(watermark), Some(from)) = (
        stored
            .as_ref()
            .filter(|_| kind == source::WatermarkKind::Integer),
        from.as_ref(),
    ) {
        behind_check(config, sessions, table, (watermark, from), stats).await?;
    }
    Ok((Filter::Delta(from), stored))
}

/// Issue 21.3 for a single `source.watermark_column`: when the source's largest integer
/// watermark is behind the stored one (the table re-created, its sequence restarted), runs
/// read only its rows from `from` on (the stored watermark minus the lookback, which may
/// cover some of them), so the run is degraded naming the reset. `watermarks` is (stored,
/// from).
///
/// # Errors
/// Database errors as they are.
async fn behind_check(
    config: &Config,
    sessions: &Sessions<'_>,
    table: &SourceTable,
    (stored, from): (&Watermark, &Watermark),
    stats: &mut RunStats,
) -> Result<(), Error> {
    let Some(column) = config.source.watermark_column.as_deref() else {
        return Ok(());
    };
    let largest = sessions
        .source_pool
        .within(
            "reading the largest watermark",
            source::max_of(sessions.source, &table.quoted_name, column),
        )
        .await?;
    let behind = largest
        .as_deref()
        .is_none_or(|largest| Watermark::new(stored.kind(), largest).before(stored));
    if behind {
        let reason = format!(
            "the largest {column:?} of {} ({}) is behind the stored watermark {}: the table was \
             re-created or its sequence restarted, and {}; after checking, reset it with `{}`",
            config.source.table,
            largest.as_deref().unwrap_or("none, the table is empty"),
            stored,
            crate::source::behind_reads(stored.as_str(), from.as_str()),
            sessions.ledger_session.ledger.reset_watermark_sql()
        );
        tracing::warn!("{reason}");
        stats.watermark_reset.get_or_insert(reason);
    }
    Ok(())
}

//! Where a run with `[[source.changes]]` starts (issue 21): each table's stored watermark minus
//! its lookback (else `source.start`, else 62 days back; an integer watermark without either
//! reads the whole table) and where it ends (the table's largest watermark as the run begins);
//! the keys each table changed in between, found a chunk of rows at a time by short statements
//! on its own index, so that memory holds one chunk's keys however much changed; and what a
//! table whose values went back (re-created, a sequence restarted) does to the run: it is left
//! unread and the run is degraded, naming the reset.

use std::collections::HashMap;

use super::drive::Sessions;
use crate::config::{Config, ConfigError};
use crate::db::DbError;
use crate::db::Pool;
use crate::error::Error;
use crate::source::{
    self, ChangedKey, ChangesTable, KeyRange, SourceError, SourceTable, Watermark, WatermarkKind,
};
use crate::stats::RunStats;

/// Rows of a changes table per chunk: the keys of about this many rows are held at once (about
/// 5 MB of keys), however many changed (a first sync of a million orders).
pub(super) const CHUNK_ROWS: usize = 50_000;

/// What a run reads of one `[[source.changes]]` table.
#[derive(Debug)]
pub(super) struct ChangesRead {
    /// The table.
    pub(super) table: ChangesTable,
    /// Where its read starts (`None`: every row).
    pub(super) from: Option<Watermark>,
    /// Whether `from` itself is past (`>`), rather than read again (`>=`).
    pub(super) after: bool,
    /// Its largest watermark as the run began, where the read ends (`None`: the table is
    /// empty). Rows written later are the next run's, as they were when every key was read at
    /// the start.
    pub(super) upto: Option<Watermark>,
}

/// What a run reads of each `[[source.changes]]` table, in config order.
#[derive(Debug, Default)]
pub(super) struct ChangeReads {
    /// Each table's read.
    pub(super) tables: Vec<ChangesRead>,
}

/// Finds where the read of every `[[source.changes]]` table starts and ends. Returns them and
/// whether no table had a stored watermark (a first run, for the history floor).
///
/// # Errors
/// [`Error::Config`] naming the key when a lookback does not fit its column or a column's type
/// changed under a stored watermark; database errors as they are.
pub(super) async fn discover(
    config: &Config,
    sessions: &Sessions<'_>,
    table: &SourceTable,
    stats: &mut RunStats,
) -> Result<(ChangeReads, bool), Error> {
    let pool = sessions.source_pool;
    let client = sessions.source;
    let tables = pool
        .within(
            "describing the [[source.changes]] tables",
            source::describe_changes(client, config, table),
        )
        .await?;
    let stored = match sessions.ledger_session.readable() {
        Some(ledger) => sessions
            .ledger_session
            .pool
            .within(
                "reading the changes tables' watermarks",
                ledger.change_watermarks(sessions.ledger),
            )
            .await
            // A ledger that has not been migrated yet (a dry run) holds none.
            .unwrap_or_default(),
        None => HashMap::new(),
    };
    let first = stored.is_empty();
    let mut found = ChangeReads::default();
    for changes in tables {
        let kept = stored.get(&changes.configured);
        let start = kept.map(|kept| Watermark::new(changes.kind, kept.value.clone()));
        stats.change_watermarks.push(crate::stats::TableWatermark {
            table: changes.configured.clone(),
            end: start.clone(),
            start,
        });
        let key = if config.source.changes[changes.entry - 1].lookback.is_some() {
            "source.changes"
        } else {
            "source.lookback"
        };
        let amount = changes
            .lookback
            .check(changes.kind == WatermarkKind::Integer, key)?;
        // A stored watermark is where a committed page ended, and pages never split the keys of
        // one watermark value: without a lookback, the next run starts after it.
        let after = kept.is_some() && amount == 0;
        let largest = pool
            .within(
                "reading the largest watermark of a changes table",
                source::max_watermark(client, &changes),
            )
            .await?;
        let from = match kept {
            Some(kept) if kept.kind.is_some_and(|k| k != changes.kind) => {
                return Err(ConfigError::Invalid {
                    key: "source.changes",
                    constraint: format!(
                        "entry {} ({:?}): its watermark column is now a {} but the stored \
                         watermark is a {}; after checking, reset it with `{}`",
                        changes.entry,
                        changes.configured,
                        changes.kind.sql_type(),
                        kept.kind.map_or("?", WatermarkKind::sql_type),
                        sessions
                            .ledger_session
                            .ledger
                            .reset_change_watermark_sql(&changes.configured)
                    ),
                }
                .into())
            }
            Some(kept) => {
                let kept = Watermark::new(changes.kind, kept.value.clone());
                if changes.kind == WatermarkKind::Integer
                    && largest
                        .as_deref()
                        .is_none_or(|largest| Watermark::new(changes.kind, largest).before(&kept))
                {
                    let reason = format!(
                        "the largest {:?} of {} ({}) is behind the stored watermark {}: the \
                             table was re-created or its sequence restarted, and its rows are \
                             not read until they pass it; after checking, reset it with `{}`",
                        changes.watermark_column,
                        changes.configured,
                        largest.as_deref().unwrap_or("none, the table is empty"),
                        kept,
                        sessions
                            .ledger_session
                            .ledger
                            .reset_change_watermark_sql(&changes.configured)
                    );
                    tracing::warn!("{reason}");
                    stats.watermark_reset.get_or_insert(reason);
                    continue;
                }
                if amount == 0 {
                    Some(kept)
                } else {
                    Some(
                        pool.within(
                            "applying the lookback",
                            source::minus_lookback(client, &kept, amount),
                        )
                        .await?,
                    )
                }
            }
            None => match &config.source.start {
                Some(start) => Some(
                    pool.within(
                        "checking source.start",
                        source::check_watermark(
                            client,
                            changes.kind,
                            start,
                            &changes.start_column(),
                        ),
                    )
                    .await?,
                ),
                None => {
                    pool.within(
                        "computing the first watermark",
                        source::default_start(client, changes.kind, config.source.timezone.name()),
                    )
                    .await?
                }
            },
        };
        let kind = changes.kind;
        found.tables.push(ChangesRead {
            table: changes,
            from,
            after,
            upto: largest.map(|largest| Watermark::new(kind, largest)),
        });
    }
    Ok((found, first))
}

/// The keys of the next chunk of `range` (about [`CHUNK_ROWS`] rows; `range.to` is the read's
/// end, inclusive), and the range after them (`None`: the read is done). A chunk ends before a
/// watermark value, never inside one, unless that one value holds the whole chunk: then the
/// chunk is that value's keys. Read again when the server cancelled a statement (a recovery
/// conflict on a standby, a `statement_timeout`, `pg_cancel_backend`), up to
/// [`super::reader::PAGE_ATTEMPTS`] times, as a page of the changed orders is.
///
/// # Errors
/// [`SourceError::Cancelled`] when every try was cancelled; other errors as they are.
pub(super) async fn read_chunk(
    pool: &Pool,
    client: &tokio_postgres::Client,
    changes: &ChangesTable,
    range: KeyRange<'_>,
) -> Result<(Vec<ChangedKey>, Option<(Watermark, bool)>), Error> {
    let mut attempt = 1;
    loop {
        let result = pool
            .within("reading the changed keys", async {
                let end = source::chunk_end(client, changes, &range, CHUNK_ROWS).await?;
                // The chunk's upper bound, and where the next one starts (after it or at it).
                let (to, next) = match end.as_ref() {
                    None => (range.to, None),
                    Some(end) if !range.after && range.from == Some(end) => {
                        (Some((end, true)), Some((end.clone(), true)))
                    }
                    Some(end) => (Some((end, false)), Some((end.clone(), false))),
                };
                let chunk = KeyRange { to, ..range };
                let keys = source::changed_keys(client, changes, &chunk).await?;
                Ok::<_, SourceError>((keys, next))
            })
            .await;
        match result {
            Err(error) if attempt < super::reader::PAGE_ATTEMPTS && cancelled(&error) => {
                tracing::warn!(
                    attempt,
                    table = %changes.configured,
                    error = %crate::error::chain(&error),
                    "the read of a changes table's changed keys was cancelled by the server; \
                     reading them again"
                );
                attempt += 1;
            }
            Err(error) if cancelled(&error) => return Err(explain_cancel(error, attempt)),
            other => return Ok(other?),
        }
    }
}

/// Whether the server cancelled the statement: `57014` (a `statement_timeout`, or
/// `pg_cancel_backend`) or `40001` (a hot standby's recovery conflict).
pub(super) fn cancelled(error: &SourceError) -> bool {
    let SourceError::Db(DbError::Query { source, .. }) = error else {
        return false;
    };
    source
        .code()
        .is_some_and(|code| code.code() == "57014" || code.code() == "40001")
}

/// The error of a page cancelled every time it was tried, naming what to change.
pub(super) fn explain_cancel(error: SourceError, tries: u32) -> Error {
    SourceError::Cancelled {
        tries,
        cause: server_message(&error),
    }
    .into()
}

/// A streamed read's error, naming what to change when the server cancelled it.
pub(super) fn explain_stream_error(error: SourceError) -> Error {
    if cancelled(&error) {
        SourceError::StreamCancelled {
            cause: server_message(&error),
        }
        .into()
    } else {
        error.into()
    }
}

/// The server's own message of an error (its text otherwise).
fn server_message(error: &SourceError) -> String {
    match error {
        SourceError::Db(DbError::Query { source, .. }) => source
            .as_db_error()
            .map_or_else(|| source.to_string(), |db| db.message().to_owned()),
        other => other.to_string(),
    }
}

//! Where a run with `[[source.changes]]` starts (issue 21): each table's stored watermark minus
//! its lookback (else `source.start`, else 62 days back; an integer watermark without either
//! reads the whole table), the keys each table changed since, found by one short statement on
//! its own index, and what a table whose values went back (re-created, a sequence restarted)
//! does to the run: it is left unread and the run is degraded, naming the reset.

use std::collections::HashMap;

use super::drive::Sessions;
use crate::config::{Config, ConfigError};
use crate::db::DbError;
use crate::error::Error;
use crate::source::{
    self, ChangedKey, ChangesTable, SourceError, SourceTable, Watermark, WatermarkKind,
};
use crate::stats::RunStats;

/// The changed keys of each `[[source.changes]]` table, in config order, each table's in
/// (watermark, key) order.
#[derive(Debug, Default)]
pub(super) struct ChangedKeys {
    /// Each table with its changed keys.
    pub(super) tables: Vec<(ChangesTable, Vec<ChangedKey>)>,
}

/// Finds the changed keys of every `[[source.changes]]` table. Returns them and whether no
/// table had a stored watermark (a first run, for the history floor).
///
/// # Errors
/// [`Error::Config`] naming the key when a lookback does not fit its column or a column's type
/// changed under a stored watermark; database errors as they are.
pub(super) async fn discover(
    config: &Config,
    sessions: &Sessions<'_>,
    table: &SourceTable,
    stats: &mut RunStats,
) -> Result<(ChangedKeys, bool), Error> {
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
    let mut found = ChangedKeys::default();
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
                if changes.kind == WatermarkKind::Integer {
                    let largest = pool
                        .within(
                            "reading the largest watermark of a changes table",
                            source::max_watermark(client, &changes),
                        )
                        .await?;
                    if largest
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
                        source::check_watermark(client, changes.kind, start),
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
        let keys = read_changed_keys(sessions, &changes, from.as_ref(), after).await?;
        found.tables.push((changes, keys));
    }
    Ok((found, first))
}

/// The keys `changes` changed since `from`, read again when the server cancelled the statement
/// (a recovery conflict on a standby, a `statement_timeout`, `pg_cancel_backend`), up to
/// [`super::reader::PAGE_ATTEMPTS`] times, as a page of the changed orders is.
///
/// # Errors
/// [`SourceError::Cancelled`] when every try was cancelled; other errors as they are.
async fn read_changed_keys(
    sessions: &Sessions<'_>,
    changes: &ChangesTable,
    from: Option<&Watermark>,
    after: bool,
) -> Result<Vec<ChangedKey>, Error> {
    let mut attempt = 1;
    loop {
        let result = sessions
            .source_pool
            .within(
                "reading the changed keys",
                source::changed_keys(sessions.source, changes, from, after),
            )
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
    let cause = match &error {
        SourceError::Db(DbError::Query { source, .. }) => source
            .as_db_error()
            .map_or_else(|| source.to_string(), |db| db.message().to_owned()),
        other => other.to_string(),
    };
    SourceError::Cancelled { tries, cause }.into()
}

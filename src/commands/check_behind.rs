//! `check` for issue 21.3: whether the source's largest integer watermark is behind the one the
//! ledger stores (the table re-created, its sequence restarted), as `run` finds it before it
//! reads; its rows are then not read until they pass the stored value. A warning naming the
//! reset, as a run's degraded reason does; the exit code is unchanged, as for `check`'s other
//! warnings.

use tokio_postgres::Client;

use crate::config::Config;
use crate::db;
use crate::source::{self, SourceTable, WatermarkKind};

/// The warnings, one per watermark (`source.watermark_column`, then each `[[source.changes]]`
/// table) whose stored integer value the source's largest is behind. A ledger that cannot be
/// read (not migrated yet, unreachable) gives none: the ledger's own line says why.
pub(super) async fn lines(client: &Client, config: &Config, table: &SourceTable) -> Vec<String> {
    let Ok(url) = config.ledger_url() else {
        return Vec::new();
    };
    let Ok(pool) = db::pool(&url, "ledger", 1) else {
        return Vec::new();
    };
    let pool = pool.with_timeouts(db::Timeouts::ledger(config));
    let Ok(ledger_client) = db::connect(&pool, "ledger").await else {
        return Vec::new();
    };
    let ledger = crate::ledger::Ledger::new(
        &config.ledger.schema,
        &config.connector.name,
        &config.destination.dataset_id,
    );
    let mut lines = Vec::new();
    if let (Some(column), WatermarkKind::Integer) =
        (&config.source.watermark_column, table.watermark_kind)
    {
        if let Ok(Some(stored)) = ledger.watermark(&ledger_client).await {
            if let Ok(largest) = source::max_of(client, &table.quoted_name, column).await {
                if behind(largest.as_deref(), &stored.value) {
                    // A run reads from the stored value minus the lookback, as `run` computes.
                    let amount = config
                        .source
                        .lookback
                        .check(true, "source.lookback")
                        .unwrap_or(0);
                    let from = stored.value.trim().parse::<i64>().map_or_else(
                        |_| stored.value.clone(),
                        |s| s.saturating_sub(amount).to_string(),
                    );
                    let reads = source::behind_reads(stored.value.trim(), &from);
                    lines.push(warning(
                        column,
                        &config.source.table,
                        largest.as_deref(),
                        &stored.value,
                        &reads,
                        &ledger.reset_watermark_sql(),
                    ));
                }
            }
        }
    }
    if config.source.changes.is_empty() {
        return lines;
    }
    let (Ok(stored), Ok(tables)) = (
        ledger.change_watermarks(&ledger_client).await,
        source::describe_changes(client, config, table).await,
    ) else {
        return lines;
    };
    for changes in tables
        .iter()
        .filter(|changes| changes.kind == WatermarkKind::Integer)
    {
        let Some(kept) = stored.get(&changes.configured) else {
            continue;
        };
        if let Ok(largest) = source::max_watermark(client, changes).await {
            if behind(largest.as_deref(), &kept.value) {
                lines.push(warning(
                    &changes.watermark_column,
                    &changes.configured,
                    largest.as_deref(),
                    &kept.value,
                    "`run` reads none of its rows until they pass it",
                    &ledger.reset_change_watermark_sql(&changes.configured),
                ));
            }
        }
    }
    lines
}

/// Whether `largest` (the source's, `None` when the table is empty) is behind the stored
/// integer watermark `stored`.
fn behind(largest: Option<&str>, stored: &str) -> bool {
    let Ok(stored) = stored.trim().parse::<i64>() else {
        return false;
    };
    largest.is_none_or(|largest| largest.trim().parse::<i64>().is_ok_and(|l| l < stored))
}

/// The warning for `column` of `table`, in the words of the run's degraded reason; `reads`
/// says what runs read of it.
fn warning(
    column: &str,
    table: &str,
    largest: Option<&str>,
    stored: &str,
    reads: &str,
    reset: &str,
) -> String {
    format!(
        "the largest {column:?} of {table} ({}) is behind the stored watermark {stored}: the \
         table was re-created or its sequence restarted, and {reads} (each run is degraded, \
         exit 3); after checking, reset it with `{reset}`",
        largest.unwrap_or("none, the table is empty")
    )
}

#[cfg(test)]
mod tests {
    use super::behind;

    #[test]
    fn a_largest_value_below_the_stored_one_or_an_empty_table_is_behind() {
        assert!(behind(Some("3"), "20"));
        assert!(behind(None, "20"));
        assert!(!behind(Some("20"), "20"));
        assert!(!behind(Some("25"), "20"));
        assert!(!behind(Some("3"), "2026-01-01 00:00:00+00"));
    }
}

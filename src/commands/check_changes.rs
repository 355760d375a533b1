//! `check` for `[[source.changes]]` (issue 21): each entry's table, columns and types, the index
//! each table needs on its watermark column, and whether PostgreSQL reaches the matching column
//! of `source.table` through an index; the `create index` statements that are missing. Without
//! `[[source.changes]]`, what the single streamed read holds open, and why.

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::config::Config;
use crate::db;
use crate::error::Error;
use crate::source::{self, SourceTable, WatermarkKind};

/// A line of `check`'s report.
pub(super) enum Line {
    /// Checked and fine.
    Pass(String),
    /// Works, but should be fixed.
    Warn(String),
}

/// Whether the table `quoted` has an index whose first column is `column`.
async fn led_by(client: &Client, quoted: &str, column: &str) -> Result<bool, Error> {
    Ok(client
        .query_typed(
            "select exists (
                 select 1 from pg_index i
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
                 where i.indrelid = to_regclass($1::text) and a.attname = $2::text)",
            &[(&quoted, Type::TEXT), (&column, Type::TEXT)],
        )
        .await
        .map_err(db::DbError::query("cannot read the source's indexes"))?
        .first()
        .is_some_and(|row| row.try_get::<_, bool>(0).unwrap_or(false)))
}

/// The report's lines about `[[source.changes]]` (or, without them, about the single read).
///
/// # Errors
/// A configuration error naming the entry's key when a table, a column or a lookback does not
/// fit; database errors as they are.
pub(super) async fn lines(
    client: &Client,
    config: &Config,
    table: &SourceTable,
) -> Result<Vec<Line>, Error> {
    let mut lines = Vec::new();
    if config.source.changes.is_empty() {
        lines.push(Line::Pass(
            "a run reads the changed orders in one streamed statement, in one transaction held \
             open while it sends (linear in the rows read, as it needs no index on the order \
             id); a `statement_timeout` on the sync role or a hot standby's \
             `max_standby_streaming_delay` can cancel a long one: `[[source.changes]]` reads \
             in short pages instead (docs/source.md)"
                .to_owned(),
        ));
        return Ok(lines);
    }
    let tables = source::describe_changes(client, config, table).await?;
    for changes in &tables {
        let key = if config.source.changes[changes.entry - 1].lookback.is_some() {
            "source.changes"
        } else {
            "source.lookback"
        };
        changes
            .lookback
            .check(changes.kind == WatermarkKind::Integer, key)
            .map_err(Error::from)?;
        lines.push(Line::Pass(format!(
            "changes: {} (watermark {:?} as {}, key {:?} = {:?} of {})",
            changes.quoted_name,
            changes.watermark_column,
            changes.kind.sql_type(),
            changes.key_column,
            changes.matches_column,
            table.quoted_name
        )));
        // A `source.start` that does not fit fails `run` (exit 2): so it fails here.
        if let Some(start) = &config.source.start {
            source::check_watermark(client, changes.kind, start, &changes.start_column())
                .await
                .map_err(Error::from)?;
        }
        if !led_by(client, &changes.quoted_name, &changes.watermark_column).await? {
            lines.push(Line::Warn(format!(
                "no index on {} leads with {:?} (`source.changes[{}].watermark_column`): each \
                 run scans the whole table to find what changed; `create index on {} ({});`",
                changes.quoted_name,
                changes.watermark_column,
                changes.entry,
                changes.quoted_name,
                db::quote_ident(&changes.watermark_column)
            )));
        }
        if changes.kind == WatermarkKind::Integer && changes.lookback.is_zero() {
            lines.push(Line::Warn(format!(
                "`source.changes[{}]` has an integer watermark and no lookback: a row that \
                 commits after one with a larger {:?} is never read; set `lookback` in the \
                 column's own units (`lookback = 5000`)",
                changes.entry, changes.watermark_column
            )));
        }
        if let Some(line) = matching_advice(client, table, changes).await? {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Whether PostgreSQL reaches `changes.matches` of `source.table` through an index: for a
/// table from the catalog, for a view from the planner (a page of keys estimated at a tenth or
/// more of reading the whole view is a scan). A foreign table's remote indexes are out of
/// sight: a line saying the read is sent to its server, which needs the index.
async fn matching_advice(
    client: &Client,
    table: &SourceTable,
    changes: &source::ChangesTable,
) -> Result<Option<Line>, Error> {
    let kind: String = client
        .query_typed(
            "select c.relkind::text from pg_class c where c.oid = to_regclass($1::text)",
            &[(&table.quoted_name, Type::TEXT)],
        )
        .await
        .map_err(db::DbError::query("cannot look up the source's kind"))?
        .first()
        .and_then(|row| row.try_get(0).ok())
        .unwrap_or_default();
    let key = format!("source.changes[{}].matches", changes.entry);
    if matches!(kind.as_str(), "r" | "p" | "m") {
        if led_by(client, &table.quoted_name, &changes.matches_column).await? {
            return Ok(None);
        }
        return Ok(Some(Line::Warn(format!(
            "no index on {} leads with {:?} (`{key}`): each page of changed keys scans the \
             table; `create index on {} ({});`",
            table.quoted_name, changes.matches_column, table.quoted_name, changes.matches
        ))));
    }
    if kind == "f" {
        // The page's `= any($1)` on a plain column is sent to the remote server (postgres_fdw
        // ships it); the local planner's estimate says nothing of the remote's indexes.
        return Ok(Some(Line::Pass(format!(
            "{} is a foreign table: each page of changed keys is sent to its server as \
             {:?} = any(…) (`{key}`), which reads them by the remote table's own index on that \
             column: `check` cannot see the remote's indexes, so make sure it has one",
            table.quoted_name, changes.matches_column
        ))));
    }
    let probe = format!(
        "select * from {} as s where s.{} = any(array[(select s2.{}::text from {} as s2 limit \
         1)]::{}[])",
        table.quoted_name,
        changes.matches,
        changes.matches,
        table.quoted_name,
        db::quote_ident(&changes.matches_type)
    );
    let whole = format!("select * from {}", table.quoted_name);
    match (
        super::check::plan_cost(client, &probe).await,
        super::check::plan_cost(client, &whole).await,
    ) {
        (Some(page), Some(all)) if page * 10.0 >= all => {
            let missing = bases(client, table, &changes.matches_column, false).await;
            let statements = if missing.is_empty() {
                // Base columns of that name all indexed: the planner judged by statistics
                // (small or not yet analyzed tables), not a missing index.
                if !bases(client, table, &changes.matches_column, true)
                    .await
                    .is_empty()
                {
                    return Ok(None);
                }
                "the column of its base table that it comes from".to_owned()
            } else {
                missing
                    .iter()
                    .map(|base| format!("`create index on {base} ({});`", changes.matches))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            Ok(Some(Line::Warn(format!(
                "{} is a view, and PostgreSQL would read about the whole of it to find the rows \
                 of one {:?} (`{key}`; {}): index {statements}",
                table.quoted_name,
                changes.matches_column,
                relative_cost(page, all)
            ))))
        }
        _ => Ok(None),
    }
}

/// The planner's estimate of a narrow read (`part`) against reading the whole view (`whole`),
/// in words: `"the planner puts that at 5.5 times the cost of reading the view whole"`, or
/// `"… at 80% of …"`. Both are `explain`'s total costs, which have no unit of their own.
pub(super) fn relative_cost(part: f64, whole: f64) -> String {
    if whole <= 0.0 || part >= whole {
        let times = if whole > 0.0 { part / whole } else { 1.0 };
        format!("the planner puts that at {times:.1} times the cost of reading the view whole")
    } else {
        format!(
            "the planner puts that at {:.0}% of the cost of reading the view whole",
            part / whole * 100.0
        )
    }
}

/// The base tables of the view `table` whose column `column` it uses and an index leads with
/// (`indexed`) or none does (from the view's rule's dependencies in `pg_depend`), as `regclass`
/// text.
async fn bases(client: &Client, table: &SourceTable, column: &str, indexed: bool) -> Vec<String> {
    client
        .query_typed(
            "select distinct d.refobjid::regclass::text from pg_rewrite r
             join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
               and d.refclassid = 'pg_class'::regclass and d.refobjid <> r.ev_class
             join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
             join pg_class c on c.oid = d.refobjid and c.relkind in ('r', 'p', 'm')
             where r.ev_class = to_regclass($1::text) and a.attname = $2::text
               and exists (select 1 from pg_index i
                           where i.indrelid = d.refobjid and i.indkey[0] = a.attnum) = $3::bool
             order by 1",
            &[
                (&table.quoted_name, Type::TEXT),
                (&column, Type::TEXT),
                (&indexed, Type::BOOL),
            ],
        )
        .await
        .map(|rows| rows.iter().filter_map(|row| row.try_get(0).ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::relative_cost;

    /// Trial finding 6: "estimated cost 317 of 58" said in words.
    #[test]
    fn costs_are_said_in_words() {
        assert_eq!(
            relative_cost(317.0, 58.0),
            "the planner puts that at 5.5 times the cost of reading the view whole"
        );
        assert_eq!(
            relative_cost(40.0, 50.0),
            "the planner puts that at 80% of the cost of reading the view whole"
        );
        assert!(!relative_cost(0.0, 0.0).contains("NaN"));
    }
}

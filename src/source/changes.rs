//! `[[source.changes]]` (issue 21): the keys each base table changed since its own watermark,
//! found by that table's index in one short statement, and the orders they touch, read from
//! `source.table` by key in pages of their own short statements, so that no statement or
//! transaction on the source stays open while ocapi waits on Meta. docs/source.md says
//! when to use it and what it costs.

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::describe::{check_column_exists, lookup, watermark_kind};
use super::{watermark_text, SourceError, SourceTable, Watermark, WatermarkKind};
use crate::config::{Config, Lookback};
use crate::db::{quote_ident, quote_literal, DbError};

/// One `[[source.changes]]` table, looked up.
#[derive(Debug, Clone)]
pub struct ChangesTable {
    /// The table as `source.changes.table` names it (the ledger's key for its watermark).
    pub configured: String,
    /// Its entry's number in the config, from 1.
    pub entry: usize,
    /// `"schema"."name"`, quoted.
    pub quoted_name: String,
    /// The quoted watermark column.
    watermark: String,
    /// The watermark column's name, as configured.
    pub watermark_column: String,
    /// The quoted key column.
    key: String,
    /// The key column's name, as configured.
    pub key_column: String,
    /// The watermark column's kind.
    pub kind: WatermarkKind,
    /// The lookback behind its stored watermark (its own, else `source.lookback`).
    pub lookback: Lookback,
    /// The quoted column of `source.table` the key equals.
    pub matches: String,
    /// Its name, as configured (or `mapping.order_id`).
    pub matches_column: String,
    /// That column's base type (`int8`, `text`, `uuid`): the keys are bound as an array of it.
    pub matches_type: String,
    /// `source.timezone`, as a literal (the clock of `timestamp` and `date` watermarks).
    timezone: String,
}

/// The config key of field `name` of entry `entry`.
pub fn entry_key(entry: usize, name: &str) -> String {
    format!("source.changes[{entry}].{name}")
}

/// Looks up every `[[source.changes]]` table: it exists, its watermark column is a time or an
/// integer, its key column exists, and the column of `source.table` it matches exists.
///
/// # Errors
/// [`SourceError::ChangesTableNotFound`], [`SourceError::ColumnNotFound`] and
/// [`SourceError::ColumnType`], each naming the entry's key.
pub async fn describe_changes(
    client: &Client,
    config: &Config,
    source: &SourceTable,
) -> Result<Vec<ChangesTable>, SourceError> {
    let mut tables = Vec::new();
    for (i, entry) in config.source.changes.iter().enumerate() {
        let n = i + 1;
        let (quoted_name, _, columns) = match lookup(client, &entry.table).await {
            Err(SourceError::TableNotFound { table }) => {
                return Err(SourceError::ChangesTableNotFound {
                    key: entry_key(n, "table"),
                    table,
                })
            }
            other => other?,
        };
        let wm_key = entry_key(n, "watermark_column");
        check_column_exists(&columns, &wm_key, &entry.watermark_column, &quoted_name)?;
        let kind = watermark_kind(
            &columns[&entry.watermark_column],
            &wm_key,
            &entry.watermark_column,
        )?;
        check_column_exists(&columns, &entry_key(n, "key"), &entry.key, &quoted_name)?;
        let matches = entry.matches_or(&config.mapping.order_id);
        check_column_exists(
            &source.columns,
            &entry_key(n, "matches"),
            matches,
            &source.quoted_name,
        )?;
        tables.push(ChangesTable {
            configured: entry.table.clone(),
            entry: n,
            quoted_name,
            watermark: quote_ident(&entry.watermark_column),
            watermark_column: entry.watermark_column.clone(),
            key: quote_ident(&entry.key),
            key_column: entry.key.clone(),
            kind,
            lookback: entry.lookback.unwrap_or(config.source.lookback),
            matches: quote_ident(matches),
            matches_column: matches.to_owned(),
            matches_type: source.columns[matches]
                .base
                .trim_start_matches('_')
                .to_owned(),
            timezone: quote_literal(config.source.timezone.name()),
        });
    }
    Ok(tables)
}

/// Which rows of a changes table a read of changed keys covers, by their watermark (values of
/// the table's kind).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyRange<'a> {
    /// The lower bound (`None`: every row with a watermark).
    pub from: Option<&'a Watermark>,
    /// Whether the lower bound is excluded (`>`) rather than included (`>=`).
    pub after: bool,
    /// The upper bound and whether it is included (`None`: no upper bound).
    pub to: Option<(&'a Watermark, bool)>,
}

/// A key a changes table changed, with the watermark of its latest change (capped at the
/// database's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedKey {
    /// The key's text.
    pub key: String,
    /// The largest watermark of its changed rows, capped at the database's clock.
    pub watermark: Watermark,
}

impl ChangesTable {
    /// The database's clock in the watermark's type (`null` for integers): no stored watermark
    /// passes it, so a row written a moment later with an earlier stamp is not skipped.
    fn cap(&self) -> String {
        match self.kind {
            WatermarkKind::Timestamptz => "now()".to_owned(),
            WatermarkKind::Timestamp => format!("(now() at time zone {})", self.timezone),
            WatermarkKind::Date => format!("(now() at time zone {})::date", self.timezone),
            WatermarkKind::Integer => "null::bigint".to_owned(),
        }
    }

    /// `c.<watermark> <op> $n`, the value bound in the column's own type (so that PostgreSQL,
    /// and `postgres_fdw`, can use the condition where the rows live; the text is cast when it
    /// is not in PostgreSQL's ISO form).
    fn bound(&self, op: &str, value: &Watermark, params: &mut Vec<super::Param>) -> String {
        let w = &self.watermark;
        match value.bind() {
            Some(param) => {
                params.push(param);
                format!("c.{w} {op} ${}", params.len())
            }
            None => {
                params.push((Box::new(value.as_str().to_owned()), Type::TEXT));
                format!(
                    "c.{w} {op} ${}::text::{}",
                    params.len(),
                    self.kind.sql_type()
                )
            }
        }
    }

    /// The condition on the rows of `range`, with its binds.
    fn range_condition(&self, range: &KeyRange<'_>, params: &mut Vec<super::Param>) -> String {
        let mut condition = match range.from {
            None => format!("c.{} is not null", self.watermark),
            Some(from) => self.bound(if range.after { ">" } else { ">=" }, from, params),
        };
        if let Some((to, inclusive)) = range.to {
            condition += " and ";
            condition += &self.bound(if inclusive { "<=" } else { "<" }, to, params);
        }
        condition
    }

    /// The statement that finds the keys with a row in `range`, each with its capped watermark
    /// (the largest of its rows' there), in (watermark, key) order, with its binds. The table's
    /// index on the watermark column serves it.
    pub fn changed_sql(&self, range: &KeyRange<'_>) -> (String, Vec<super::Param>) {
        let (w, k, t) = (&self.watermark, &self.key, &self.quoted_name);
        let mut params = Vec::new();
        let condition = self.range_condition(range, &mut params);
        let capped = format!("least(max(c.{w}), {})", self.cap());
        let sql = format!(
            "select c.{k}::text, {wm} from {t} as c where {condition} and c.{k} is not null
             group by c.{k} order by 2, 1",
            wm = watermark_text(&capped, self.kind),
        );
        (sql, params)
    }

    /// The statement that gives the watermark of the row `rows` rows into `range`, in
    /// watermark order (`None`: the range holds no more rows), with its binds: where a chunk
    /// of about `rows` rows ends. The index on the watermark column serves it, reading those
    /// rows' index entries only.
    pub fn chunk_end_sql(&self, range: &KeyRange<'_>, rows: usize) -> (String, Vec<super::Param>) {
        let mut params = Vec::new();
        let condition = self.range_condition(range, &mut params);
        let sql = format!(
            "select {} from {} as c where {condition} order by c.{} offset {rows} limit 1",
            watermark_text(&format!("c.{}", self.watermark), self.kind),
            self.quoted_name,
            self.watermark
        );
        (sql, params)
    }

    /// The statement that gives the largest watermark of the table (by its index).
    pub fn max_sql(&self) -> String {
        format!(
            "select {} from {}",
            watermark_text(&format!("max({})", self.watermark), self.kind),
            self.quoted_name
        )
    }

    /// How a `source.start` that does not fit this table's watermark type names the column
    /// ([`super::SourceError::BadStart`]): the entry, its column and what to do.
    pub fn start_column(&self) -> String {
        format!(
            "`[[source.changes]]` {}'s watermark_column {:?} (`source.start` starts every \
             table's first run: leave it out and each table starts at its default, \
             docs/source.md)",
            self.configured, self.watermark_column
        )
    }
}

/// The keys `table` changed in `range`, in (watermark, key) order: one short statement in its
/// own transaction.
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn changed_keys(
    client: &Client,
    table: &ChangesTable,
    range: &KeyRange<'_>,
) -> Result<Vec<ChangedKey>, SourceError> {
    let (sql, params) = table.changed_sql(range);
    let binds = super::binds(&params);
    let rows = crate::db::reading(client, client.query_typed(&sql, &binds))
        .await
        .map_err(DbError::query(
            "cannot read the changed keys of a changes table",
        ))?;
    rows.iter()
        .map(|row| {
            Ok(ChangedKey {
                key: row.try_get(0)?,
                watermark: Watermark::new(
                    table.kind,
                    row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                ),
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(|e| DbError::query("cannot read the changed keys of a changes table")(e).into())
}

/// Where a chunk of about `rows` rows of `range` ends: the watermark of the row after them
/// (`None` when the range holds no more).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn chunk_end(
    client: &Client,
    table: &ChangesTable,
    range: &KeyRange<'_>,
    rows: usize,
) -> Result<Option<Watermark>, SourceError> {
    let (sql, params) = table.chunk_end_sql(range, rows);
    super::text_value(client, &sql, &super::binds(&params))
        .await
        .map(|end| end.map(|end| Watermark::new(table.kind, end)))
        .map_err(|e| DbError::query("cannot read the changed keys of a changes table")(e).into())
}

/// The largest watermark of `table` now (`None` when it is empty).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn max_watermark(
    client: &Client,
    table: &ChangesTable,
) -> Result<Option<String>, SourceError> {
    super::text_value(client, &table.max_sql(), &[])
        .await
        .map_err(|e| {
            DbError::query("cannot read the largest watermark of a changes table")(e).into()
        })
}

/// The largest value of `column` in `quoted_name` now, as text (`None` when it is empty).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn max_of(
    client: &Client,
    quoted_name: &str,
    column: &str,
) -> Result<Option<String>, SourceError> {
    let sql = format!(
        "select max({})::text from {quoted_name}",
        crate::db::quote_ident(column)
    );
    super::text_value(client, &sql, &[])
        .await
        .map_err(|e| DbError::query("cannot read the largest watermark of the source")(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(kind: WatermarkKind) -> ChangesTable {
        ChangesTable {
            configured: "pos.order_lines".to_owned(),
            entry: 2,
            quoted_name: "\"pos\".\"order_lines\"".to_owned(),
            watermark: "\"updated_at\"".to_owned(),
            watermark_column: "updated_at".to_owned(),
            key: "\"order_id\"".to_owned(),
            key_column: "order_id".to_owned(),
            kind,
            lookback: Lookback::default(),
            matches: "\"order_id\"".to_owned(),
            matches_column: "order_id".to_owned(),
            matches_type: "int8".to_owned(),
            timezone: "'UTC'".to_owned(),
        }
    }

    #[test]
    fn the_changed_keys_are_found_by_the_watermark_bound_in_its_own_type() {
        let from = Watermark::new(WatermarkKind::Timestamptz, "2026-12-01 10:00:00.5+00");
        let range = KeyRange {
            from: Some(&from),
            ..KeyRange::default()
        };
        let (sql, params) = table(WatermarkKind::Timestamptz).changed_sql(&range);
        assert!(sql.contains("c.\"updated_at\" >= $1 "), "{sql}");
        assert!(!sql.contains("::text::timestamptz"), "{sql}");
        assert_eq!(params[0].1, Type::TIMESTAMPTZ);
        let (from, to) = (
            Watermark::new(WatermarkKind::Integer, "5000"),
            Watermark::new(WatermarkKind::Integer, "9000"),
        );
        let range = KeyRange {
            from: Some(&from),
            after: true,
            to: Some((&to, false)),
        };
        let (sql, params) = table(WatermarkKind::Integer).changed_sql(&range);
        assert!(sql.contains("> $1 and c.\"updated_at\" < $2 "), "{sql}");
        assert_eq!(params[1].1, Type::INT8);
        let (sql, params) = table(WatermarkKind::Date).changed_sql(&KeyRange::default());
        assert!(sql.contains("is not null"), "{sql}");
        assert!(params.is_empty());
        assert!(sql.contains("group by c.\"order_id\""), "{sql}");
        let (sql, _) = table(WatermarkKind::Integer).chunk_end_sql(&range, 50_000);
        assert!(
            sql.ends_with("order by c.\"updated_at\" offset 50000 limit 1"),
            "{sql}"
        );
    }

    #[test]
    fn entry_keys_name_the_entry() {
        assert_eq!(entry_key(2, "key"), "source.changes[2].key");
    }
}

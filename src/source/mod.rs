//! Reads source rows in keyset pages over (watermark column, order id), so that rows sharing a
//! watermark value are never skipped at a page boundary and memory is bounded by the page size,
//! not the table size.
//!
//! Every statement on a source connection goes through [`db::reading`](crate::db::reading): one
//! short transaction that sets the time zone and date style its text renderings depend on, so
//! reads work through a transaction-mode pooler and whatever the server's defaults.

mod query;

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::config::Config;
use crate::db::{quote_ident, reading, DbError};
pub use query::{EventTimeWindow, PageQuery};

/// Errors reading the source; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The table or view does not exist (or is not visible to the connecting role).
    #[error("source table {table} not found: check `source.table` and the role's privileges")]
    TableNotFound {
        /// The configured name.
        table: String,
    },
    /// A mapped column is missing.
    #[error("column {column:?} (mapped by `{key}`) does not exist in {table}{hint}")]
    ColumnNotFound {
        /// The config key, e.g. `mapping.email`.
        key: String,
        /// The configured column name.
        column: String,
        /// The table.
        table: String,
        /// A near match, when there is one.
        hint: String,
    },
    /// A column has a type ocapi cannot use for its role.
    #[error("column {column:?} (`{key}`) has type {found}; {expected}")]
    ColumnType {
        /// The config key.
        key: String,
        /// The column.
        column: String,
        /// Its PostgreSQL type.
        found: String,
        /// What would work.
        expected: String,
    },
    /// `source.start` does not fit the watermark column's type.
    #[error("`source.start` {start:?} is not a valid {kind} value for the watermark column")]
    BadStart {
        /// The configured start.
        start: String,
        /// The column's type.
        kind: &'static str,
    },
    /// A database error.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How the watermark column is typed, which decides how its text form is cast back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkKind {
    /// `timestamp with time zone`.
    Timestamptz,
    /// `timestamp without time zone`.
    Timestamp,
    /// `date`.
    Date,
    /// Any integer type, compared as `bigint`.
    Integer,
}

impl WatermarkKind {
    /// The SQL type the text form is cast to.
    pub fn sql_type(self) -> &'static str {
        match self {
            Self::Timestamptz => "timestamptz",
            Self::Timestamp => "timestamp",
            Self::Date => "date",
            Self::Integer => "bigint",
        }
    }

    /// Reads a stored `watermark_type`.
    pub fn from_sql_type(name: &str) -> Option<Self> {
        [
            Self::Timestamptz,
            Self::Timestamp,
            Self::Date,
            Self::Integer,
        ]
        .into_iter()
        .find(|kind| kind.sql_type() == name)
    }

    /// The kind for a column's `pg_type.typname`.
    fn from_typname(typname: &str) -> Option<Self> {
        match typname {
            "timestamptz" => Some(Self::Timestamptz),
            "timestamp" => Some(Self::Timestamp),
            "date" => Some(Self::Date),
            "int2" | "int4" | "int8" => Some(Self::Integer),
            _ => None,
        }
    }
}

/// Helpers for watermark values, which ocapi keeps in their PostgreSQL text form.
pub struct Watermark;

impl Watermark {
    /// Checks the form of `source.start`: an RFC 3339 timestamp, a date or an integer.
    pub fn parse_start(text: &str) -> Option<String> {
        let t = text.trim();
        let ok = t.parse::<i64>().is_ok()
            || chrono::DateTime::parse_from_rfc3339(t).is_ok()
            || chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
            || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").is_ok();
        ok.then(|| t.to_owned())
    }
}

/// What `describe` learned about the source table.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// `"schema"."name"`, quoted.
    pub quoted_name: String,
    /// Column name → `pg_type.typname`.
    pub columns: HashMap<String, String>,
    /// The watermark column's kind.
    pub watermark_kind: WatermarkKind,
    /// How the event-time column is turned into unix seconds.
    pub event_time_kind: EventTimeKind,
}

/// How the event-time column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeKind {
    /// `timestamptz`: absolute.
    Timestamptz,
    /// `timestamp` or `date`: read in `source.timezone`.
    Local,
    /// A number of unix seconds.
    Epoch,
}

/// One source row, every mapped value as PostgreSQL's text form (so no row can fail to decode);
/// the event time is already unix seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRow {
    /// The watermark value's text form.
    pub watermark: String,
    /// The keyset key: the order id as text, `""` when NULL.
    pub key: String,
    /// The order id.
    pub order_id: Option<String>,
    /// Unix seconds (may be NaN or infinite for extreme values; transform rejects them).
    pub event_time: Option<f64>,
    /// Order total.
    pub value: Option<String>,
    /// Currency.
    pub currency: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State.
    pub state: Option<String>,
    /// Zip.
    pub zip: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Gender.
    pub gender: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<String>,
    /// External id.
    pub external_id: Option<String>,
    /// Line item id.
    pub item_id: Option<String>,
    /// Line item quantity.
    pub item_quantity: Option<String>,
    /// Line item unit price.
    pub item_price: Option<String>,
    /// The store, for reconciliation by store (never sent).
    pub store_id: Option<String>,
}

impl SourceRow {
    /// Decodes a row in `PageQuery`'s select-list order.
    fn from_row(row: &Row) -> Self {
        let text = |i: usize| row.get::<_, Option<String>>(i);
        Self {
            watermark: row.get::<_, Option<String>>(0).unwrap_or_default(),
            key: row.get(1),
            order_id: text(2),
            event_time: row.get(3),
            value: text(4),
            currency: text(5),
            email: text(6),
            phone: text(7),
            first_name: text(8),
            last_name: text(9),
            city: text(10),
            state: text(11),
            zip: text(12),
            country: text(13),
            gender: text(14),
            date_of_birth: text(15),
            external_id: text(16),
            item_id: text(17),
            item_quantity: text(18),
            item_price: text(19),
            store_id: text(20),
        }
    }
}

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// At the beginning of the table, or at this watermark inclusive.
    Start(Option<String>),
    /// Strictly after this (watermark, key).
    After {
        /// The last watermark read.
        watermark: String,
        /// The last key read.
        key: String,
    },
}

/// One page of rows; whole key groups only, so an order's lines are never split.
#[derive(Debug, Default)]
pub struct Page {
    /// The rows, in keyset order.
    pub rows: Vec<SourceRow>,
    /// Where the next page starts; `None` when the source is exhausted.
    pub next: Option<Position>,
}

/// Looks up the table and checks every mapped column and its type.
pub async fn describe(client: &Client, config: &Config) -> Result<SourceTable, SourceError> {
    let table = &config.source.table;
    let found = reading(
        client,
        client.query_opt(
            "select n.nspname, c.relname from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             where c.oid = to_regclass($1)",
            &[table],
        ),
    )
    .await
    .map_err(|error| match error.code() {
        Some(_) => SourceError::TableNotFound {
            table: table.clone(),
        },
        None => DbError::query("cannot look up the source table")(error).into(),
    })?
    .ok_or_else(|| SourceError::TableNotFound {
        table: table.clone(),
    })?;
    let (schema, name): (String, String) = (found.get(0), found.get(1));
    let rows = reading(
        client,
        client.query(
            "select a.attname, t.typname from pg_attribute a
             join pg_type t on t.oid = a.atttypid
             where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped",
            &[table],
        ),
    )
    .await
    .map_err(DbError::query("cannot read the source table's columns"))?;
    let columns: HashMap<String, String> = rows
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, String>(1)))
        .collect();
    let quoted_name = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
    for (key, column) in config.mapping.columns() {
        check_column_exists(&columns, &format!("mapping.{key}"), column, &quoted_name)?;
    }
    let wm_column = &config.source.watermark_column;
    check_column_exists(&columns, "source.watermark_column", wm_column, &quoted_name)?;
    let wm_type = &columns[wm_column];
    let watermark_kind =
        WatermarkKind::from_typname(wm_type).ok_or_else(|| SourceError::ColumnType {
            key: "source.watermark_column".to_owned(),
            column: wm_column.clone(),
            found: wm_type.clone(),
            expected: "use a timestamptz, timestamp, date or integer column".to_owned(),
        })?;
    let et_column = &config.mapping.event_time;
    let et_type = &columns[et_column];
    let event_time_kind = match et_type.as_str() {
        "timestamptz" => EventTimeKind::Timestamptz,
        "timestamp" | "date" => EventTimeKind::Local,
        "int2" | "int4" | "int8" | "numeric" | "float4" | "float8" => EventTimeKind::Epoch,
        _ => {
            return Err(SourceError::ColumnType {
                key: "mapping.event_time".to_owned(),
                column: et_column.clone(),
                found: et_type.clone(),
                expected: "use a timestamptz, timestamp or date column, or unix seconds; \
                           cast a text column in a view"
                    .to_owned(),
            })
        }
    };
    Ok(SourceTable {
        quoted_name,
        columns,
        watermark_kind,
        event_time_kind,
    })
}

/// Fails with a helpful message when a configured column is missing.
fn check_column_exists(
    columns: &HashMap<String, String>,
    key: &str,
    column: &str,
    table: &str,
) -> Result<(), SourceError> {
    if columns.contains_key(column) {
        return Ok(());
    }
    let near = columns.keys().find(|c| c.eq_ignore_ascii_case(column));
    Err(SourceError::ColumnNotFound {
        key: key.to_owned(),
        column: column.to_owned(),
        table: table.to_owned(),
        hint: near
            .map(|c| format!(" (did you mean {c:?}? names are case-sensitive)"))
            .unwrap_or_default(),
    })
}

/// Reads one page starting at `position`: up to `limit` rows, plus the rest of the last key
/// group when the page ends inside it.
pub async fn read_page(
    client: &Client,
    query: &PageQuery,
    position: &Position,
    limit: usize,
    window: Option<&EventTimeWindow>,
) -> Result<Page, SourceError> {
    let (sql, mut params) = query.page(position, window);
    let limit_param = i64::try_from(limit).unwrap_or(i64::MAX);
    params.push(Box::new(limit_param));
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    let rows = reading(client, client.query(&sql, &refs))
        .await
        .map_err(DbError::query("cannot read a page of the source table"))?;
    let mut page: Vec<SourceRow> = rows.iter().map(SourceRow::from_row).collect();
    let Some(last) = page.last() else {
        return Ok(Page {
            rows: page,
            next: None,
        });
    };
    let after = Position::After {
        watermark: last.watermark.clone(),
        key: last.key.clone(),
    };
    if page.len() < limit {
        return Ok(Page {
            rows: page,
            next: None,
        });
    }
    // The page is full: the last key group may go on past it. Re-read that group whole.
    let (watermark, key) = (last.watermark.clone(), last.key.clone());
    let (sql, params) = query.group(&watermark, &key, window);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    let group = reading(client, client.query(&sql, &refs))
        .await
        .map_err(DbError::query("cannot read an order's lines"))?;
    while page
        .last()
        .is_some_and(|row| row.watermark == watermark && row.key == key)
    {
        page.pop();
    }
    page.extend(group.iter().map(SourceRow::from_row));
    Ok(Page {
        rows: page,
        next: Some(after),
    })
}

/// Counts the source rows in an event-time window.
pub async fn count_rows(
    client: &Client,
    query: &PageQuery,
    window: &EventTimeWindow,
) -> Result<u64, SourceError> {
    let (sql, params) = query.count(window);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    let row = reading(client, client.query_one(&sql, &refs))
        .await
        .map_err(DbError::query("cannot count the source rows in the window"))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Every source row of one order, in keyset order.
pub async fn read_order(
    client: &Client,
    query: &PageQuery,
    order_id: &str,
) -> Result<Vec<SourceRow>, SourceError> {
    let (sql, params) = query.order(order_id);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    let rows = reading(client, client.query(&sql, &refs))
        .await
        .map_err(DbError::query(
            "cannot read the order from the source table",
        ))?;
    Ok(rows.iter().map(SourceRow::from_row).collect())
}

/// Casts a watermark's text form to the column's type and back, or says it does not fit.
pub async fn check_watermark(
    client: &Client,
    kind: WatermarkKind,
    value: &str,
) -> Result<String, SourceError> {
    let sql = format!("select $1::text::{}::text", kind.sql_type());
    reading(client, client.query_one(&sql, &[&value]))
        .await
        .map(|row| row.get(0))
        .map_err(|_| SourceError::BadStart {
            start: value.to_owned(),
            kind: kind.sql_type(),
        })
}

/// The watermark minus the lookback window, computed by PostgreSQL in the column's own type.
pub async fn minus_lookback(
    client: &Client,
    kind: WatermarkKind,
    watermark: &str,
    lookback: std::time::Duration,
) -> Result<String, SourceError> {
    let seconds = i64::try_from(lookback.as_secs()).unwrap_or(i64::MAX);
    let t = kind.sql_type();
    let sql = match kind {
        WatermarkKind::Integer => format!("select ($1::text::{t} - $2::bigint)::text"),
        _ => format!("select ($1::text::{t} - make_interval(secs => $2::bigint))::{t}::text"),
    };
    let row = reading(client, client.query_one(&sql, &[&watermark, &seconds]))
        .await
        .map_err(DbError::query(
            "cannot apply the lookback window to the watermark",
        ))?;
    Ok(row.get(0))
}

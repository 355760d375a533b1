//! Reads the source: the orders that changed since the watermark (or that fall in an event-time
//! window, or that are named), every row of each, streamed by one statement and cut into pages
//! of whole orders, so that memory is bounded by the page size and the cost of a read by the rows
//! it reads (see `query` for the statement and why it is safe to restart from).

pub mod catalog;
mod changes;
mod clock;
mod columns;
mod describe;
mod identity;
mod query;
mod start;
mod text;
mod watermark;

use std::collections::HashMap;
use std::pin::Pin;

use futures_util::StreamExt;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, RowStream};

use crate::config::CustomerField;
use crate::db::DbError;
pub use changes::{
    changed_keys, chunk_end, describe_changes, max_of, max_watermark, ChangedKey, ChangesTable,
    KeyRange,
};
pub use clock::{clock, Clock, HOST_SKEW_WARNING};
pub(crate) use describe::check_role;
pub use describe::describe;
pub use identity::IdKind;
pub use query::{
    watermark_text, EventTimeWindow, Filter, Param, ReadQuery, VALUE_SEPARATOR, WATERMARK_SKEW,
};
pub use start::{behind_reads, check_watermark, default_start, minus_lookback};
pub use text::Fallback;
pub use watermark::Watermark;

/// Errors reading the source; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The table or view does not exist (or is not visible to the connecting role).
    #[error("source table {table} not found: check `source.table` and the role's privileges")]
    TableNotFound {
        /// The configured name.
        table: String,
    },
    /// A `[[source.changes]]` table does not exist (or is not visible to the connecting role).
    #[error("table {table} of `{key}` not found: check the name and the role's privileges")]
    ChangesTableNotFound {
        /// The entry's key, e.g. `source.changes[2].table`.
        key: String,
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
    #[error("`source.start` {start:?} is not a valid {kind} value for {column}")]
    BadStart {
        /// The configured start.
        start: String,
        /// The column it was read for, as a person finds it in the config: `the watermark
        /// column` of `source.table`, or a `[[source.changes]]` entry's and what to do there.
        column: String,
        /// The column's type.
        kind: &'static str,
    },
    /// A read of `[[source.changes]]` orders was cancelled by the server each time it was tried.
    #[error(
        "the source database cancelled a read of the changed orders {tries} times ({cause}): \
         on a hot standby set `hot_standby_feedback = on` there (or raise its \
         `max_standby_streaming_delay`); else raise the sync role's `statement_timeout` \
         (`alter role … set statement_timeout = …`) above what reading one changed order (or \
         one chunk of a changes table's keys) takes: a cancelled page is read again in halves \
         of its keys, down to a single one"
    )]
    Cancelled {
        /// How many times the page was tried.
        tries: u32,
        /// The server's message.
        cause: String,
    },
    /// The single streamed read (a source without `[[source.changes]]`) was cancelled by the
    /// server: one statement reads the whole delta there, so a `statement_timeout` or a
    /// standby's recovery conflict ends it; it is not retried (the next run starts again from
    /// the last committed page).
    #[error(
        "the source database cancelled the read ({cause}): without `[[source.changes]]` one \
         statement reads every changed row; on a hot standby set `hot_standby_feedback = on` \
         there (or raise its `max_standby_streaming_delay`); else raise the sync role's \
         `statement_timeout`, or name the base tables in `[[source.changes]]` so that each page \
         is a short statement of its own (docs/source.md)"
    )]
    StreamCancelled {
        /// The server's message.
        cause: String,
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
    pub(crate) fn sql_type(self) -> &'static str {
        match self {
            Self::Timestamptz => "timestamptz",
            Self::Timestamp => "timestamp",
            Self::Date => "date",
            Self::Integer => "bigint",
        }
    }

    /// Reads a stored `watermark_type`.
    pub(crate) fn from_sql_type(name: &str) -> Option<Self> {
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
    pub(crate) fn from_typname(typname: &str) -> Option<Self> {
        match typname {
            "timestamptz" => Some(Self::Timestamptz),
            "timestamp" => Some(Self::Timestamp),
            "date" => Some(Self::Date),
            "int2" | "int4" | "int8" => Some(Self::Integer),
            _ => None,
        }
    }
}

/// A source column's type: as declared, and the base type its values have (domains followed
/// down to the type they constrain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The declared type as PostgreSQL prints it (`utc_ts`, `character varying(20)`).
    pub declared: String,
    /// The base type's `pg_type.typname` (`timestamptz`, `varchar`, `_text` for arrays).
    pub base: String,
}

impl Column {
    /// A column of this base type, declared as such (for tests).
    pub fn of(base: &str) -> Self {
        Self {
            declared: base.to_owned(),
            base: base.to_owned(),
        }
    }
}

/// What `describe` learned about the source table.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// `"schema"."name"`, quoted.
    pub quoted_name: String,
    /// Column name → its type.
    pub columns: HashMap<String, Column>,
    /// The watermark column's kind.
    pub watermark_kind: WatermarkKind,
    /// How the event-time column is turned into unix seconds.
    pub event_time_kind: EventTimeKind,
    /// The source database's `server_encoding` (`UTF8`, `SQL_ASCII`, `LATIN1`, …): in
    /// `SQL_ASCII` PostgreSQL neither converts nor checks text, so the read takes it as bytes.
    pub server_encoding: String,
    /// How the order id column compares its values (which decides an order's key).
    pub id_kind: IdKind,
    /// A foreign table (`pg_class.relkind` `f`, e.g. `postgres_fdw`): a read finds the changed
    /// orders' ids first and sends them as one array, so the remote server reads only their
    /// rows (a semi-join on a foreign table is not sent; it fetches the whole remote table).
    pub foreign: bool,
}

impl SourceTable {
    /// Whether the database stores bytes without an encoding (`SQL_ASCII`).
    pub fn sql_ascii(&self) -> bool {
        self.server_encoding.eq_ignore_ascii_case("SQL_ASCII")
    }
}

/// How the event-time column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeKind {
    /// `timestamptz`: absolute.
    Timestamptz,
    /// `timestamp` or `date`: a local time, read in the row's `mapping.timezone` or
    /// `source.timezone`.
    Local,
    /// A number of unix seconds.
    Epoch,
}

pub use crate::Text;

/// One source row, every mapped value as text in a session-independent form (so no row can fail
/// to decode).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRow {
    /// The watermark of the row's order: the largest of its rows', capped at the source
    /// database's clock; empty when NULL.
    pub watermark: Watermark,
    /// The order's identity: its id's key (canonical text as the column's type compares it,
    /// [`IdKind`]); `""` when NULL.
    pub key: Text,
    /// The order's own watermark, not capped: what the ledger records, so that an order stamped
    /// ahead of the clock is not taken as changed each time the cap moves.
    pub order_watermark: Watermark,
    /// The order's watermark is at or before the stored one: read again (a restart, the
    /// lookback), not new.
    pub reread: bool,
    /// The order's watermark is ahead of the source database's clock by more than
    /// [`query::WATERMARK_SKEW`].
    pub ahead: bool,
    /// The row's own watermark value; empty when NULL.
    pub row_watermark: Watermark,
    /// The order id as the column holds it.
    pub order_id: Option<Text>,
    /// Unix seconds, for `timestamptz` and epoch event times (may be NaN or infinite for
    /// extreme values; transform rejects them).
    pub event_time: Option<f64>,
    /// The local date and time (`YYYY-MM-DDTHH:MM:SS.ffffff`), for `timestamp` and `date`
    /// event times; transform applies the row's time zone.
    pub local_time: Option<Text>,
    /// Order total.
    pub value: Option<Text>,
    /// Currency.
    pub currency: Option<Text>,
    /// The customer fields' values, indexed by [`CustomerField::index`]; a field mapped to
    /// several columns or to an array has its values joined by [`VALUE_SEPARATOR`].
    pub customer: [Option<Text>; CustomerField::COUNT],
    /// Line item id.
    pub item_id: Option<Text>,
    /// Line item quantity.
    pub item_quantity: Option<Text>,
    /// Line item unit price.
    pub item_price: Option<Text>,
    /// The store, for reconciliation by store (never sent).
    pub store_id: Option<Text>,
    /// The row's IANA time zone (`mapping.timezone`).
    pub timezone: Option<Text>,
    /// `mapping.data_processing_options_country`.
    pub dpo_country: Option<Text>,
    /// `mapping.data_processing_options_state`.
    pub dpo_state: Option<Text>,
    /// `mapping.opt_out`.
    pub opt_out: Option<Text>,
    /// `mapping.delivery_category`.
    pub delivery_category: Option<Text>,
    /// `mapping.data_processing_options`: its values joined by [`VALUE_SEPARATOR`].
    pub data_processing_options: Option<Text>,
    /// The config key of the first value that was not valid text (UTF-8, or
    /// `source.encoding`): its order is invalid, naming it. That value is kept with
    /// U+FFFD in place of the bytes.
    pub undecodable: Option<&'static str>,
    /// `mapping.item_line`: the line's number or id.
    pub item_line: Option<Text>,
}

impl SourceRow {
    /// This row with `value` as a customer field's raw value (benchmarks and tests build rows).
    #[must_use]
    pub fn with_customer(mut self, field: CustomerField, value: Option<&str>) -> Self {
        self.customer[field.index()] = value.map(Text::from);
        self
    }

    /// The raw value of a customer field (several joined by [`VALUE_SEPARATOR`]).
    pub fn customer(&self, field: CustomerField) -> Option<&str> {
        self.customer[field.index()].as_deref()
    }
}

/// One page of rows: whole orders only, in read order.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The rows; an order's rows are consecutive.
    pub rows: Vec<SourceRow>,
}

/// Binds as the driver wants them.
fn binds(params: &[Param]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|(value, ty)| (value.as_ref() as &(dyn ToSql + Sync), ty.clone()))
        .collect()
}

/// A whole read, streamed: one statement whose rows arrive as PostgreSQL produces them (memory
/// is bounded by the page size, not by the read), cut into pages of whole orders.
pub(crate) struct Reader {
    /// The rows.
    rows: Pin<Box<RowStream>>,
    /// The first row of the next page, read past the end of the last one.
    pending: Option<SourceRow>,
    /// The stream has ended (a finished row stream must not be polled again: it would answer
    /// "connection closed").
    done: bool,
    /// How its rows are decoded.
    decoding: text::Decoding,
}

impl Reader {
    /// Starts reading the orders `filter` selects. The statement is unnamed, so it works
    /// through a transaction-mode connection pooler.
    ///
    /// # Errors
    /// [`SourceError::Db`] when the statement fails.
    pub async fn start(
        client: &Client,
        query: &ReadQuery,
        filter: &Filter,
    ) -> Result<Self, SourceError> {
        Self::start_after(client, query, filter, None).await
    }

    /// [`Reader::start`], marking the rows of orders at or before `committed` (the stored
    /// watermark) as re-read ([`SourceRow::reread`]).
    ///
    /// # Errors
    /// [`SourceError::Db`] when the statement fails.
    pub(crate) async fn start_after(
        client: &Client,
        query: &ReadQuery,
        filter: &Filter,
        committed: Option<&Watermark>,
    ) -> Result<Self, SourceError> {
        let (sql, params) = query.read_after(filter, committed);
        // JIT off for the read: the statement's estimated cost grows with the delta, and past
        // `jit_optimize_above_cost` (a delta of about half a million rows) each of its processes
        // spent over a second of CPU compiling expressions as simple as `::text`, before the
        // first row (`docs/benchmarks.md`). `jit` exists from PostgreSQL 11.
        // A page of `[[source.changes]]` keys is read through the indexes `check` asks for: at
        // 1,000 keys PostgreSQL's default costs chose a scan of the whole headers and customers
        // tables at 200,000 orders (0.2-0.3 s a page where the indexes take 0.06-0.1 s,
        // `docs/benchmarks.md`), a cost that grows with the tables. Without such an index the
        // scan is still done.
        let by_key = if matches!(filter, Filter::Matching { .. }) {
            "set local enable_seqscan = off; "
        } else {
            ""
        };
        client
            .batch_execute(&format!(
                "begin isolation level repeatable read read only; {}{by_key}\
                 select set_config('jit', 'off', true) \
                 where current_setting('server_version_num')::int >= 110000",
                crate::db::set_statements(true)
            ))
            .await
            .map_err(DbError::query("cannot start reading the source table"))?;
        let rows = client
            .query_typed_raw(&sql, binds(&params))
            .await
            .map_err(DbError::query("cannot read the source table"))?;
        Ok(Self {
            rows: Box::pin(rows),
            pending: None,
            done: false,
            decoding: query.decoding(),
        })
    }

    /// Ends the read's transaction (call once the read is done or abandoned, before the
    /// connection is used for anything else).
    ///
    /// # Errors
    /// [`SourceError::Db`] when the commit fails.
    pub async fn finish(self, client: &Client) -> Result<(), SourceError> {
        drop(self.rows);
        // Every row has been read: a server that ended the session meanwhile (an
        // `idle_in_transaction_session_timeout`) took nothing from this read.
        if let Err(error) = client.batch_execute("commit").await {
            if !client.is_closed() {
                return Err(DbError::query("cannot end the source read")(error).into());
            }
        }
        Ok(())
    }

    /// The rest of the rows at `watermark` (the last page's): a run that stops after a page
    /// (`--limit`) reads them too, so that no order at the watermark it stores is left unread
    /// and the next run, which starts at that watermark, reads past it instead of reading the
    /// same orders again (a bulk load puts thousands of rows on one value).
    ///
    /// # Errors
    /// [`SourceError::Db`] when the stream fails.
    pub(crate) async fn rest_of_watermark(
        &mut self,
        watermark: &Watermark,
    ) -> Result<Page, SourceError> {
        let mut rows = Vec::new();
        while self.read_row_at(&mut rows, usize::MAX).await? {
            if rows.last().is_some_and(|row| row.watermark != *watermark) {
                self.pending = rows.pop();
                break;
            }
        }
        Ok(Page { rows })
    }

    /// The next page: at least `limit` rows (when the read has that many), extended to the end
    /// of the order the limit falls in. An empty page means the read is done.
    ///
    /// # Errors
    /// [`SourceError::Db`] when the stream fails.
    pub(crate) async fn next_page(&mut self, limit: usize) -> Result<Page, SourceError> {
        self.next_page_into(limit, Vec::new()).await
    }

    /// [`Self::next_page`] into `rows`, a vector an earlier page of this read used (fresh memory
    /// was ~45% of a run's page faults, issue 24), its rows written over in place, each text
    /// into the memory the earlier row's held ([`text::decode_row`]).
    ///
    /// # Errors
    /// As [`Self::next_page`].
    pub(crate) async fn next_page_into(
        &mut self,
        limit: usize,
        mut rows: Vec<SourceRow>,
    ) -> Result<Page, SourceError> {
        rows.reserve((limit.min(65_536) + 1).saturating_sub(rows.len())); // earlier rows count
        let mut len = 0;
        while self.read_row_at(&mut rows, len).await? {
            len += 1;
            let same_order = match &rows[..len] {
                [.., last, row] => {
                    !row.key.is_empty() && last.key == row.key && last.watermark == row.watermark
                }
                _ => false,
            };
            if len > limit && !same_order {
                len -= 1;
                self.pending = Some(std::mem::take(&mut rows[len]));
                break;
            }
        }
        rows.truncate(len);
        Ok(Page { rows })
    }

    /// Reads the next row into `rows[at]` (appended when `at` is past the vector's end): the one
    /// read past the last page's end, else the stream's next, decoded over what the slot held
    /// ([`text::decode_row`]); `false` once the stream has ended (a finished row stream must
    /// not be polled again: it would answer "connection closed").
    async fn read_row_at(
        &mut self,
        rows: &mut Vec<SourceRow>,
        at: usize,
    ) -> Result<bool, SourceError> {
        if let Some(row) = self.pending.take() {
            match rows.get_mut(at) {
                Some(slot) => *slot = row,
                None => rows.push(row),
            }
            return Ok(true);
        }
        if self.done {
            return Ok(false);
        }
        let Some(row) = self.rows.next().await else {
            self.done = true;
            return Ok(false);
        };
        let row = row.map_err(DbError::query("cannot read the source table"))?;
        if at >= rows.len() {
            rows.push(SourceRow::default());
        }
        let at = at.min(rows.len() - 1);
        text::decode_row(&row, &self.decoding, &mut rows[at])
            .map_err(DbError::query("cannot decode a row of the source table"))?;
        Ok(true)
    }
}

/// Reads every row of the given orders (by key, [`IdKind::canonical`]), in read order.
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub(crate) async fn read_orders(
    client: &Client,
    query: &ReadQuery,
    order_ids: &[String],
) -> Result<Vec<SourceRow>, SourceError> {
    let mut reader = Reader::start(client, query, &Filter::Orders(order_ids.to_vec())).await?;
    let rows = reader.next_page(usize::MAX).await?.rows;
    reader.finish(client).await?;
    Ok(rows)
}

/// Reads every row of the orders `filter` selects, in read order, in one statement and
/// transaction of its own (a page of `[[source.changes]]` keys).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub(crate) async fn read_all(
    client: &Client,
    query: &ReadQuery,
    filter: &Filter,
) -> Result<Vec<SourceRow>, SourceError> {
    let mut reader = Reader::start(client, query, filter).await?;
    let rows = reader.next_page(usize::MAX).await?.rows;
    reader.finish(client).await?;
    Ok(rows)
}

/// Counts the source rows in an event-time window (for a backfill's progress bar).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub(crate) async fn count_rows(
    client: &Client,
    query: &ReadQuery,
    window: &EventTimeWindow,
) -> Result<u64, SourceError> {
    let (sql, params) = query.count(window);
    count_with(
        client,
        &sql,
        &binds(&params),
        "cannot count the source rows in the window",
    )
    .await
}

/// Runs one `select count(*)`-shaped statement without binds.
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn count(client: &Client, sql: &str, context: &str) -> Result<u64, SourceError> {
    count_with(client, sql, &[], context).await
}

/// Runs one `select count(*)`-shaped statement, unnamed, with ocapi's read settings.
async fn count_with(
    client: &Client,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
    context: &str,
) -> Result<u64, SourceError> {
    let rows = crate::db::reading(client, client.query_typed(sql, params))
        .await
        .map_err(DbError::query(context))?;
    Ok(rows
        .first()
        .map_or(0, |row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
}

/// Runs a one-value text statement with text binds, unnamed.
async fn text_value(
    client: &Client,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Option<String>, tokio_postgres::Error> {
    let rows = crate::db::reading(client, client.query_typed(sql, params)).await?;
    Ok(rows.first().and_then(|row| row.get(0)))
}

//! Builds the SELECT text that reads the source. Pure: every name from the config is quoted,
//! every value is a `$n` bind, so nothing from the config is pasted into SQL unquoted.
//!
//! One statement reads a whole run's delta, streamed (see `super::Reader`): the orders that have
//! a row in the delta, **all** of their rows (whatever each row's own watermark value), sorted by
//! the order's watermark (the largest of its rows', capped at the database's clock) and then by
//! the order id. An order's rows therefore arrive together, and every order before the last one
//! read has a watermark at or below it, so the last order's watermark is a safe restart point
//! (runs restart inclusively, `>=`). PostgreSQL sorts the delta once; no page query is repeated,
//! so a run costs the same per row on a table without any index as on one with indexes.
//!
//! Every value is read in a form that does not depend on the session's `DateStyle`, `TimeZone`
//! or `extra_float_digits` (a connection pooler may hand out sessions set up by someone else):
//! times through `to_char` or `date_part('epoch', …)`, money and floats through `numeric`.

use tokio_postgres::types::{ToSql, Type};

use super::columns::{self, Role};
use super::text::{output, Fallback};
use super::{Column, EventTimeKind, IdKind, SourceTable, Watermark, WatermarkKind};
use crate::config::{Columns, Config};
use crate::db::{quote_ident, quote_literal};

/// A bind parameter with its type (statements are sent unnamed, typed by the caller).
pub type Param = (Box<dyn ToSql + Sync + Send>, Type);

/// An event-time window `[from, to)` in unix seconds, for backfills and reconciliation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventTimeWindow {
    /// Inclusive start.
    pub from: f64,
    /// Exclusive end.
    pub to: f64,
}

/// Which orders a read returns (all rows of each).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Orders with a row whose watermark is at or after this value, or every order with a
    /// non-NULL watermark when `None`.
    Delta(Option<Watermark>),
    /// Orders with a row whose event time may fall in the window (local times are widened by a
    /// day; the transform's exact event time decides).
    Window(EventTimeWindow),
    /// Like `Window`, and the orders with a row without an event time (for `reconcile`'s
    /// `undated` line).
    WindowOrUndated(EventTimeWindow),
    /// These orders, by their key (the canonical text of the id, [`super::IdKind`]).
    Orders(Vec<String>),
    /// The orders with a row whose column `column` (quoted, of base type `base_type`) equals
    /// one of `values` (their text): the orders a `[[source.changes]]` table's changed keys
    /// touch, read by the index on that column.
    Matching {
        /// The quoted column of `source.table`.
        column: String,
        /// Its base type's `typname` (`int8`, `text`, `uuid`).
        base_type: String,
        /// The keys, as text.
        values: Vec<String>,
    },
}

/// Keys (their text) bound as an array of their column's own type (`int2`, `int4`, `int8`,
/// `text`), so that `postgres_fdw` sends the condition as it is; `None` for other types, or
/// when a key is not a value of the type (the caller casts the text array instead).
fn typed_keys(base_type: &str, values: &[String]) -> Option<Param> {
    fn parsed<T: std::str::FromStr>(values: &[String]) -> Option<Vec<T>> {
        values.iter().map(|v| v.trim().parse().ok()).collect()
    }
    match base_type {
        "int8" => parsed::<i64>(values).map(|v| (Box::new(v) as _, Type::INT8_ARRAY)),
        "int4" => parsed::<i32>(values).map(|v| (Box::new(v) as _, Type::INT4_ARRAY)),
        "int2" => parsed::<i16>(values).map(|v| (Box::new(v) as _, Type::INT2_ARRAY)),
        "text" => Some((Box::new(values.to_vec()) as _, Type::TEXT_ARRAY)),
        _ => None,
    }
}

/// What is trimmed from both ends of an order id: ASCII white space and the no-break space
/// (tills and spreadsheets pad with tabs and U+00A0 too). The transform trims the same set
/// (`transform::ID_BLANKS`), so grouping, the event id, the ledger and `explain` agree.
const ID_BLANKS_SQL: &str = "E' \\t\\n\\r\\x0b\\x0c' || chr(160)";

/// `expr` with [`ID_BLANKS_SQL`] trimmed from both ends. In a `SQL_ASCII` database `chr(160)`
/// is the single byte 0xA0, which `btrim` would cut from the end of a UTF-8 character (`à` is
/// C3 A0, the no-break space C2 A0), so there the blanks are trimmed as whole byte sequences:
/// ASCII white space and the UTF-8 no-break space (C2 A0).
fn trim_blanks(expr: &str, sql_ascii: bool) -> String {
    if sql_ascii {
        let blank = "'(?:[ \\t\\n\\r\\v\\f]|' || chr(194) || chr(160) || ')+'";
        format!("regexp_replace({expr}, '^' || {blank} || '|' || {blank} || '$', '', 'g')")
    } else {
        format!("btrim({expr}, {ID_BLANKS_SQL})")
    }
}

/// Separates several values of one customer field in a row's text (U+001F, the unit
/// separator: no customer value holds it).
pub const VALUE_SEPARATOR: char = '\u{1f}';
/// [`VALUE_SEPARATOR`] as an SQL literal.
const VALUE_SEPARATOR_SQL: &str = "chr(31)";

/// How far ahead of the source database's clock a watermark value may be before its order is
/// counted as ahead of the clock (the run is then degraded): a till clock a little fast is
/// tolerated. The watermark itself never passes the clock.
pub const WATERMARK_SKEW: &str = "5 minutes";

/// The SQL pieces of one source's read, built once per run.
#[derive(Debug, Clone)]
pub struct ReadQuery {
    /// The inner select list (one output column per `SourceRow` field, `c0`…).
    inner: String,
    /// How many inner columns there are.
    width: usize,
    /// Which inner columns hold a mapped column ([`columns::read_under`]); the others are
    /// constant nulls.
    read: [bool; columns::WIDTH],
    /// The quoted table name.
    table: String,
    /// The quoted watermark column; `None` when `[[source.changes]]` find the changes.
    watermark: Option<String>,
    /// The quoted order id column.
    order_id: String,
    /// The order id's key: the identity of an order everywhere in ocapi.
    key: String,
    /// How the order id column compares its values (which decides its key).
    id_kind: IdKind,
    /// The watermark's kind.
    watermark_kind: WatermarkKind,
    /// How the event-time column is read.
    event_time_kind: EventTimeKind,
    /// The quoted event-time column.
    event_time: String,
    /// `source.timezone`, as a literal.
    timezone: String,
    /// The database stores bytes without an encoding (`SQL_ASCII`): text is read as bytes.
    sql_ascii: bool,
    /// How values that are not UTF-8 are decoded (`source.encoding`).
    fallback: Fallback,
    /// The table is a foreign table ([`SourceTable::foreign`]).
    foreign: bool,
}

/// Renders a value of `column` as text. The read runs with the session settings that
/// `db::READ_SETTINGS` fixes (ISO dates, UTC), so dates and times have one form whatever the
/// server's defaults. Money's text depends on `lc_monetary`, so it goes through `numeric`. A
/// `double precision` goes through `numeric` too (15 significant digits: `0.3`, not
/// `0.30000000000000004`); a `real` is read as its shortest exact text (`extra_float_digits` is
/// 1 in a read), since its `numeric` cast keeps only 6 digits (`1234567` would be `1234570`).
fn text_of(expr: &str, column: &Column) -> String {
    match column.base.as_str() {
        "money" | "float8" => format!("{expr}::numeric::text"),
        _ => format!("{expr}::text"),
    }
}

/// A watermark value as text (castable back with `::text::<type>`): PostgreSQL's ISO form,
/// in UTC for `timestamptz`, under `db::READ_SETTINGS`.
pub fn watermark_text(expr: &str, _kind: WatermarkKind) -> String {
    format!("({expr})::text")
}

/// The inner select list of a read: one expression per [`columns::INNER`] entry, in its order,
/// aliased `c0`, `c1`, …; unmapped fields are `null`. Every read of rows (the delta, a window,
/// orders by key) selects this list from the table aliased `s`, and `text::decode_row` reads
/// it back by the same list.
pub(crate) fn select_list(config: &Config, table: &SourceTable) -> String {
    select_exprs(config, table)
        .iter()
        .enumerate()
        .map(|(i, expr)| format!("{expr} as c{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The expressions of [`select_list`], unaliased.
fn select_exprs(config: &Config, table: &SourceTable) -> Vec<String> {
    let m = &config.mapping;
    let event_time = quote_ident(&m.event_time);
    // An array column (several values of a customer field, or the processing options) is
    // joined by the unit separator, which no value holds; the transform splits it.
    let column_text = |name: &str| match table.columns.get(name) {
        Some(column) if column.base.starts_with('_') => format!(
            "array_to_string({}::text[], {VALUE_SEPARATOR_SQL})",
            quote_ident(name)
        ),
        Some(column) => text_of(&quote_ident(name), column),
        None => format!("{}::text", quote_ident(name)),
    };
    // Several columns give several values, joined the same way.
    let values = |c: &Option<Columns>| match c.as_ref().map(|c| c.0.as_slice()) {
        None => "null::text".to_owned(),
        Some([one]) => column_text(one),
        Some(many) => format!(
            "nullif(concat_ws({VALUE_SEPARATOR_SQL}, {}), '')",
            many.iter()
                .map(|name| column_text(name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    columns::INNER
        .iter()
        .map(|role| match *role {
            // `None` when `[[source.changes]]` find the changes.
            Role::RowWatermark => config.source.watermark_column.as_deref().map_or_else(
                || "null::text".to_owned(),
                |w| watermark_text(&quote_ident(w), table.watermark_kind),
            ),
            Role::OrderId => format!("{}::text", quote_ident(&m.order_id)),
            Role::Epoch => match table.event_time_kind {
                EventTimeKind::Timestamptz => format!("date_part('epoch', {event_time})"),
                EventTimeKind::Local => "null::float8".to_owned(),
                EventTimeKind::Epoch => format!("{event_time}::float8"),
            },
            Role::LocalTime => match table.event_time_kind {
                EventTimeKind::Local => {
                    format!("to_char({event_time}::timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')")
                }
                _ => "null::text".to_owned(),
            },
            // Not read: a constant the decoder skips.
            role if !role.is_read(m) => "null::text".to_owned(),
            Role::Customer(field) => values(m.customer(field)),
            Role::Field(field) => field
                .column(m)
                .map_or_else(|| "null::text".to_owned(), column_text),
        })
        .collect()
}

impl ReadQuery {
    /// The read of `table` as `config` maps it.
    pub fn new(config: &Config, table: &SourceTable) -> Self {
        let m = &config.mapping;
        let watermark = config.source.watermark_column.as_deref().map(quote_ident);
        let order_id = quote_ident(&m.order_id);
        // The id as its column's type compares it (`1001.0` and `1001` in a numeric column are
        // one order), trimmed as text.
        let key = table.id_kind.key_of_trimmed(&trim_blanks(
            &format!("{order_id}::text"),
            table.sql_ascii(),
        ));
        let inner = select_list(config, table);
        let width = columns::WIDTH;
        Self {
            inner,
            width,
            read: columns::read_under(m),
            table: table.quoted_name.clone(),
            watermark,
            order_id,
            key,
            id_kind: table.id_kind,
            watermark_kind: table.watermark_kind,
            event_time_kind: table.event_time_kind,
            event_time: quote_ident(&m.event_time),
            timezone: quote_literal(config.source.timezone.name()),
            sql_ascii: table.sql_ascii(),
            fallback: config.source.encoding,
            foreign: table.foreign,
        }
    }

    /// The watermark column of the table aliased `alias`, or a NULL of the watermark's type
    /// when there is none (`[[source.changes]]`).
    fn wm(&self, alias: &str) -> String {
        match &self.watermark {
            Some(w) => format!("{alias}.{w}"),
            None => format!("null::{}", self.watermark_kind.sql_type()),
        }
    }

    /// The watermark column's kind (of the watermarks a read returns).
    pub(crate) fn watermark_kind(&self) -> WatermarkKind {
        self.watermark_kind
    }

    /// How a read's rows are decoded: its text encoding's fallback, its watermarks' kind and
    /// which inner columns it has.
    pub(crate) fn decoding(&self) -> super::text::Decoding {
        super::text::Decoding {
            fallback: self.fallback,
            kind: self.watermark_kind,
            read: self.read,
        }
    }

    /// The watermark's upper bound for this read: the database's clock, in the watermark's
    /// type (`null`, no bound, for integers). A row stamped later (a till clock running fast)
    /// is read, and read again by the next run, but the watermark never passes `now()`, so a
    /// row written a moment later with an earlier stamp is not skipped.
    fn cap(&self) -> String {
        self.clock("")
    }

    /// The database's clock plus `skew`, in the watermark's type (`null` for integers).
    fn clock(&self, skew: &str) -> String {
        let plus = if skew.is_empty() {
            String::new()
        } else {
            format!(" + interval '{skew}'")
        };
        match self.watermark_kind {
            WatermarkKind::Timestamptz => format!("(now(){plus})"),
            WatermarkKind::Timestamp => {
                format!("((now() at time zone {}){plus})", self.timezone)
            }
            WatermarkKind::Date => {
                format!("((now() at time zone {}){plus})::date", self.timezone)
            }
            WatermarkKind::Integer => "null::bigint".to_owned(),
        }
    }

    /// The condition on a row (of the table aliased `alias`) that puts its order in the read.
    fn condition(&self, alias: &str, filter: &Filter, params: &mut Vec<Param>) -> String {
        let w = self.wm(alias);
        let t = self.watermark_kind.sql_type();
        match filter {
            Filter::Delta(None) => format!("{w} is not null"),
            Filter::Delta(Some(from)) => match from.bind() {
                Some(param) => {
                    params.push(param);
                    format!("{w} >= ${}", params.len())
                }
                None => {
                    params.push((Box::new(from.as_str().to_owned()), Type::TEXT));
                    format!("{w} >= ${}::text::{t}", params.len())
                }
            },
            Filter::Matching {
                column,
                base_type,
                values,
            } => match typed_keys(base_type, values) {
                Some(param) => {
                    params.push(param);
                    format!("{alias}.{column} = any(${})", params.len())
                }
                None => {
                    params.push((Box::new(values.clone()), Type::TEXT_ARRAY));
                    format!(
                        "{alias}.{column} = any(${}::text[]::{}[])",
                        params.len(),
                        quote_ident(base_type)
                    )
                }
            },
            Filter::WindowOrUndated(window) => {
                let within = self.condition(alias, &Filter::Window(*window), params);
                format!("(({within}) or {alias}.{} is null)", self.event_time)
            }
            Filter::Window(window) => {
                params.push((Box::new(window.from), Type::FLOAT8));
                params.push((Box::new(window.to), Type::FLOAT8));
                let (a, b) = (params.len() - 1, params.len());
                let e = format!("{alias}.{}", self.event_time);
                match self.event_time_kind {
                    EventTimeKind::Timestamptz => {
                        format!("{e} >= to_timestamp(${a}) and {e} < to_timestamp(${b})")
                    }
                    EventTimeKind::Epoch => {
                        format!("{e}::float8 >= ${a} and {e}::float8 < ${b}")
                    }
                    // Each row's zone is applied in Rust (it may come from a column), so the
                    // database's filter is widened by a day each way (no zone is more than 14
                    // hours from UTC) and the exact event time decides afterwards.
                    EventTimeKind::Local => format!(
                        "{e}::timestamp >= (to_timestamp(${a}) at time zone 'UTC') - interval '1 day' \
                         and {e}::timestamp < (to_timestamp(${b}) at time zone 'UTC') + interval '1 day'"
                    ),
                }
            }
            Filter::Orders(ids) => {
                params.push((Box::new(ids.clone()), Type::TEXT_ARRAY));
                format!(
                    "{} = any(${})",
                    self.id_kind.key_of_trimmed(&trim_blanks(
                        &format!("{alias}.{}::text", self.order_id),
                        self.sql_ascii
                    )),
                    params.len()
                )
            }
        }
    }

    /// The statement that reads every row of the orders `filter` selects, sorted by (order
    /// watermark, order id), with its binds.
    ///
    /// Output columns: the order's watermark (canonical text, capped at the database's clock),
    /// the order's key, whether the order's watermark is ahead of the clock, then the inner
    /// columns (`columns::INNER`).
    pub fn read(&self, filter: &Filter) -> (String, Vec<Param>) {
        self.read_after(filter, None)
    }

    /// [`ReadQuery::read`], with one more output column (last): whether the order's watermark
    /// is at or before `committed`, the stored watermark, i.e. re-read by a restart or the
    /// lookback rather than new (`false` without one).
    pub(crate) fn read_after(
        &self,
        filter: &Filter,
        committed: Option<&Watermark>,
    ) -> (String, Vec<Param>) {
        let mut params: Vec<Param> = Vec::new();
        let (t, o, inner) = (&self.table, &self.order_id, &self.inner);
        let w = self.wm("s");
        let key = &self.key;
        let rows = match filter {
            Filter::Orders(_) | Filter::Matching { .. } => {
                let cond = self.condition("s", filter, &mut params);
                format!("select {inner}, {key} as k, {w} as w from {t} as s where {cond}")
            }
            _ => {
                // The orders with a row in the delta (a semi-join: PostgreSQL hashes the delta's
                // ids, or probes an index on the order id), then every row of theirs; rows
                // without an order id cannot be grouped and come alone.
                let cond = self.condition("d", filter, &mut params);
                let null_cond = self.condition("s", filter, &mut params);
                // A foreign table's semi-join is not sent to its server (the rows side would be
                // fetched whole): the ids are gathered first, into one array of the column's own
                // type, which `postgres_fdw` sends as a bound `= any($1)` the server's index on
                // the order id serves.
                let orders = if self.foreign {
                    format!("s.{o} = any(array(select d.{o} from {t} as d where {cond}))")
                } else {
                    format!("s.{o} in (select d.{o} from {t} as d where {cond})")
                };
                format!(
                    "select {inner}, {key} as k, {w} as w from {t} as s
                     where {orders}
                     union all
                     select {inner}, null, {w} from {t} as s where s.{o} is null and {null_cond}"
                )
            }
        };
        let cap = self.cap();
        let capped = format!("least(r.order_wm, {cap})");
        // In `SQL_ASCII`, text goes out as bytes (`text::output`); the epoch is a float. Only
        // the columns the mapping reads go out; a row's own watermark only where it is not its
        // order's, and the order's uncapped one only where it is not the capped one (NULL: the
        // same; `''`: NULL itself). Each copy was ~30 bytes a row to decrypt, check, compare.
        let same_or = |same: &str, text: &str| {
            format!("case when {same} then null else coalesce({text}, '') end")
        };
        let outer: Vec<String> = (0..self.width)
            .filter(|&i| self.read[i])
            .map(|i| match columns::INNER[i] {
                Role::Epoch => format!("r.c{i}"),
                Role::RowWatermark => output(
                    &same_or("r.w is not distinct from r.order_wm", &format!("r.c{i}")),
                    self.sql_ascii,
                ),
                _ => output(&format!("r.c{i}"), self.sql_ascii),
            })
            .collect();
        let positions: Vec<String> = (columns::LEADING + 1..=columns::LEADING + outer.len())
            .map(|i| i.to_string())
            .collect();
        // Without a watermark column (`[[source.changes]]` alone) every row's is null, and so is
        // its order's: no window (a sort of the rows by key and an aggregate over them, a fifth
        // of a page's statement at 1,000 orders, measured in docs/benchmarks.md).
        let order_wm = match self.watermark {
            Some(_) => {
                "case when x.k is null then x.w
                             else max(x.w) over (partition by x.k) end"
            }
            None => "x.w",
        };
        let sql = format!(
            "select {wm_text}, {k}, coalesce(r.order_wm > {ahead}, false), {outer}, {uncapped},
                    {reread}
             from (select x.*, {order_wm} as order_wm
                   from ({rows}) as x) as r
             order by {capped} nulls last, r.k nulls last, r.w, {positions}",
            wm_text = watermark_text(&capped, self.watermark_kind),
            k = output("r.k", self.sql_ascii),
            ahead = self.clock(WATERMARK_SKEW),
            uncapped = same_or(
                &format!("r.order_wm is not distinct from {capped}"),
                &watermark_text("r.order_wm", self.watermark_kind)
            ),
            reread = match committed {
                Some(committed) => {
                    params.push((Box::new(committed.as_str().to_owned()), Type::TEXT));
                    format!(
                        "coalesce(r.order_wm <= ${}::text::{}, false)",
                        params.len(),
                        self.watermark_kind.sql_type()
                    )
                }
                None => "false".to_owned(),
            },
            outer = outer.join(", "),
            positions = positions.join(", "),
        );
        (sql, params)
    }

    /// Counts the source rows a read of `window` returns, roughly (for a progress bar).
    pub fn count(&self, window: &EventTimeWindow) -> (String, Vec<Param>) {
        let mut params: Vec<Param> = Vec::new();
        let cond = self.condition("s", &Filter::Window(*window), &mut params);
        (
            format!("select count(*) from {} as s where {cond}", self.table),
            params,
        )
    }

    /// Rows whose watermark is ahead of the database's clock (for `check`).
    pub fn ahead(&self) -> String {
        format!(
            "select count(*) from {} as s where {} > {}",
            self.table,
            self.wm("s"),
            self.clock(WATERMARK_SKEW)
        )
    }

    /// Rows with a NULL watermark, which incremental runs never read (for `check`).
    pub(crate) fn null_watermarks(&self) -> String {
        format!(
            "select count(*) from {} as s where {} is null",
            self.table,
            self.wm("s")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::config::CustomerField;
    use crate::source::columns::Field;

    /// Every field mapped, each to a column named `col_<its mapping key>`.
    fn every_field_mapped() -> Config {
        let mut lines: Vec<String> = CustomerField::ALL
            .iter()
            .map(|f| format!("{0} = \"col_{0}\"", f.mapping_key()))
            .collect();
        lines.extend(Field::ALL.iter().map(|f| {
            let key = f.config_key().trim_start_matches("mapping.");
            format!("{key} = \"col_{key}\"")
        }));
        let text = crate::config::TEST_CONFIG.replace("value = \"total\"", &lines.join("\n"));
        Config::parse(&text, Path::new("t.toml")).expect("the test config parses")
    }

    #[test]
    fn the_select_list_and_the_decoder_walk_one_list_of_columns() {
        let config = every_field_mapped();
        let table = SourceTable {
            quoted_name: "\"t\"".to_owned(),
            columns: HashMap::new(),
            watermark_kind: WatermarkKind::Timestamptz,
            event_time_kind: EventTimeKind::Timestamptz,
            server_encoding: "UTF8".to_owned(),
            id_kind: IdKind::Text,
            foreign: false,
        };
        let exprs = select_exprs(&config, &table);
        assert_eq!(exprs.len(), columns::WIDTH);
        for (i, (role, expr)) in columns::INNER.iter().zip(&exprs).enumerate() {
            // The column the decoder reads at `i` under `role`'s key is the one the select
            // list put there.
            let column = match *role {
                Role::RowWatermark => "\"updated_at\"".to_owned(),
                Role::OrderId => "\"id\"".to_owned(),
                Role::Epoch => "date_part('epoch', \"at\")".to_owned(),
                Role::LocalTime => "null::text".to_owned(),
                Role::Customer(_) | Role::Field(_) => format!(
                    "\"col_{}\"",
                    role.config_key().trim_start_matches("mapping.")
                ),
            };
            assert!(expr.contains(&column), "c{i} ({role:?}) is {expr}");
        }
        let list = select_list(&config, &table);
        assert!(list.contains("\"col_item_line\"::text as c27"), "{list}");
    }

    #[test]
    fn keys_are_bound_as_an_array_of_their_column_s_own_type() {
        let keys = [" 5".to_owned(), "7".to_owned()];
        for (base, ty) in [("int8", Type::INT8_ARRAY), ("int4", Type::INT4_ARRAY)] {
            assert_eq!(typed_keys(base, &keys).unwrap().1, ty);
        }
        // Not a value of the type, or a type without a binding: the text array is cast.
        assert!(typed_keys("int8", &["x".to_owned()]).is_none());
        assert!(typed_keys("uuid", &keys).is_none());
    }
}

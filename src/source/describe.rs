//! Describing the source: the table's columns and their base types (domains followed), and
//! whether each mapped column can be read for its role. Errors name the key, column and type.

use std::collections::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::{Column, EventTimeKind, IdKind, SourceError, SourceTable, WatermarkKind};
use crate::config::{Config, CustomerField};
use crate::db::{quote_ident, DbError};

/// Type names (base types) by what they can hold.
mod types {
    /// Text.
    pub(crate) const TEXT: &[&str] = &["text", "varchar", "bpchar", "name", "citext"];
    /// Integers.
    pub(crate) const INTEGER: &[&str] = &["int2", "int4", "int8"];
    /// Exact or binary numbers, and money.
    pub(crate) const NUMBER: &[&str] = &[
        "int2", "int4", "int8", "numeric", "float4", "float8", "money",
    ];
    /// Dates and times.
    pub(crate) const TIME: &[&str] = &["date", "timestamp", "timestamptz"];
    /// Identifiers.
    pub(crate) const ID: &[&str] = &["uuid"];
}

/// Looks up the table and checks every mapped column and its type (following domains to their
/// base type).
///
/// # Errors
/// [`SourceError::TableNotFound`], [`SourceError::ColumnNotFound`], and
/// [`SourceError::ColumnType`] naming the config key, the column and its type when a column's
/// type cannot be used for its role.
pub async fn describe(client: &Client, config: &Config) -> Result<SourceTable, SourceError> {
    let (quoted_name, server_encoding, columns) = lookup(client, &config.source.table).await?;
    for (key, column) in config.mapping.columns() {
        check_column_exists(&columns, &format!("mapping.{key}"), column, &quoted_name)?;
    }
    // Without a watermark column (`[[source.changes]]` find the changes), the kind is unused.
    let watermark_kind = match config.source.watermark_column.as_deref() {
        None => WatermarkKind::Timestamptz,
        Some(wm_column) => {
            check_column_exists(&columns, "source.watermark_column", wm_column, &quoted_name)?;
            watermark_kind(&columns[wm_column], "source.watermark_column", wm_column)?
        }
    };
    let et_column = &config.mapping.event_time;
    let et_type = &columns[et_column];
    let event_time_kind = match et_type.base.as_str() {
        "timestamptz" => EventTimeKind::Timestamptz,
        "timestamp" | "date" => EventTimeKind::Local,
        "int2" | "int4" | "int8" | "numeric" | "float4" | "float8" => EventTimeKind::Epoch,
        _ => {
            return Err(SourceError::ColumnType {
                key: "mapping.event_time".to_owned(),
                column: et_column.clone(),
                found: et_type.declared.clone(),
                expected: "use a timestamptz, timestamp or date column, or unix seconds; \
                           cast a text column in a view"
                    .to_owned(),
            })
        }
    };
    for (key, column) in config.mapping.columns() {
        check_role(key, column, &columns[column])?;
    }
    let id_kind = IdKind::from_typname(&columns[&config.mapping.order_id].base);
    let foreign = client
        .query_typed(
            "select c.relkind = 'f' from pg_class c where c.oid = to_regclass($1::text)",
            &[(&quoted_name, Type::TEXT)],
        )
        .await
        .map_err(DbError::query("cannot look up the source table"))?
        .first()
        .is_some_and(|row| row.get::<_, bool>(0));
    Ok(SourceTable {
        quoted_name,
        foreign,
        columns,
        watermark_kind,
        event_time_kind,
        server_encoding,
        id_kind,
    })
}

/// Looks a table up by its configured name: its quoted name, the database's
/// `server_encoding`, and its columns with their base types (domains followed).
///
/// # Errors
/// [`SourceError::TableNotFound`] when PostgreSQL finds no such relation.
pub(super) async fn lookup(
    client: &Client,
    table: &str,
) -> Result<(String, String, HashMap<String, Column>), SourceError> {
    // Unnamed statements (`query_typed`): a transaction-mode pooler may run a named statement's
    // parse and its execution on two different server sessions.
    let found = client
        .query_typed(
            "select n.nspname::text, c.relname::text, current_setting('server_encoding')
             from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             where c.oid = to_regclass($1::text)",
            &[(&table, Type::TEXT)],
        )
        .await
        .map_err(|error| lookup_error(table, error))?;
    let found = found.first().ok_or_else(|| SourceError::TableNotFound {
        table: table.to_owned(),
    })?;
    let text = |i: usize| {
        found
            .try_get::<_, String>(i)
            .map_err(DbError::query("cannot read the source table's name"))
    };
    let (schema, name, server_encoding) = (text(0)?, text(1)?, text(2)?);
    // Domains over domains are followed down to their base type.
    let rows = client
        .query_typed(
            "with recursive t(attname, declared, oid, depth) as (
                 select a.attname::text, format_type(a.atttypid, a.atttypmod), a.atttypid, 0
                 from pg_attribute a
                 where a.attrelid = to_regclass($1::text) and a.attnum > 0 and not a.attisdropped
                 union all
                 select t.attname, t.declared, y.typbasetype, t.depth + 1
                 from t join pg_type y on y.oid = t.oid
                 where y.typtype = 'd' and t.depth < 16
             )
             select distinct on (t.attname) t.attname, t.declared, y.typname::text
             from t join pg_type y on y.oid = t.oid
             order by t.attname, t.depth desc",
            &[(&table, Type::TEXT)],
        )
        .await
        .map_err(DbError::query("cannot read the source table's columns"))?;
    let columns = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<_, String>(0)?,
                Column {
                    declared: row.try_get(1)?,
                    base: row.try_get(2)?,
                },
            ))
        })
        .collect::<Result<HashMap<String, Column>, tokio_postgres::Error>>()
        .map_err(DbError::query("cannot read the source table's columns"))?;
    Ok((
        format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
        server_encoding,
        columns,
    ))
}

/// What a failed lookup of `source.table` means: a name PostgreSQL cannot parse (class 42,
/// e.g. `42601` "improper qualified name") is the config's fault; anything else (a lost
/// connection, a pooler's error, a timeout) is a database error, exit 1, never "not found".
fn lookup_error(table: &str, error: tokio_postgres::Error) -> SourceError {
    match error.code() {
        Some(code) if code.code().starts_with("42") => SourceError::TableNotFound {
            table: table.to_owned(),
        },
        _ => DbError::query("cannot look up the source table")(error).into(),
    }
}

/// The watermark kind of `column` (named `name`, configured by `key`).
///
/// # Errors
/// [`SourceError::ColumnType`] when it is not a time or an integer.
pub(super) fn watermark_kind(
    column: &Column,
    key: &str,
    name: &str,
) -> Result<WatermarkKind, SourceError> {
    WatermarkKind::from_typname(&column.base).ok_or_else(|| SourceError::ColumnType {
        key: key.to_owned(),
        column: name.to_owned(),
        found: column.declared.clone(),
        expected: "use a timestamptz, timestamp, date or integer column".to_owned(),
    })
}

/// Checks that a mapped column's base type can be read for its role (`ocapi init` proposes
/// only what this accepts).
pub(crate) fn check_role(key: &str, column: &str, found: &Column) -> Result<(), SourceError> {
    // An array column holds several values of a customer field (or the processing options).
    let array_ok =
        CustomerField::from_mapping_key(key).is_some() || key == "data_processing_options";
    let base = match found.base.strip_prefix('_') {
        Some(element) if array_ok => element,
        _ => found.base.as_str(),
    };
    let is = |set: &[&str]| set.contains(&base);
    let (ok, expected) = match key {
        "order_id" | "item_line" => (
            is(types::TEXT) || is(types::INTEGER) || base == "numeric" || is(types::ID),
            "use a text, integer, numeric or uuid column",
        ),
        "event_time" => (true, ""),
        "value" | "item_price" | "item_quantity" => (
            is(types::NUMBER) || is(types::TEXT),
            "use a numeric, money, integer or floating-point column (or text holding a number)",
        ),
        "date_of_birth" => (
            is(types::TEXT) || is(types::TIME) || is(types::INTEGER),
            "use a date, timestamp or text column",
        ),
        "phone" | "zip" | "external_id" | "item_id" | "store_id" => (
            is(types::TEXT) || is(types::NUMBER) || is(types::ID),
            "use a text or number column",
        ),
        "data_processing_options" => (
            is(types::TEXT) || base == "bool",
            "use a text column holding LDU or nothing, a boolean, or a text array",
        ),
        "data_processing_options_country" | "data_processing_options_state" => (
            is(types::INTEGER) || is(types::TEXT),
            "use an integer column",
        ),
        "opt_out" => (base == "bool" || is(types::TEXT), "use a boolean column"),
        _ => (is(types::TEXT), "use a text column (cast it in a view)"),
    };
    if ok {
        return Ok(());
    }
    Err(SourceError::ColumnType {
        key: format!("mapping.{key}"),
        column: column.to_owned(),
        found: found.declared.clone(),
        expected: expected.to_owned(),
    })
}

/// Fails with a helpful message when a configured column is missing.
pub(super) fn check_column_exists(
    columns: &HashMap<String, Column>,
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

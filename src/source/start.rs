//! Where a read starts: a watermark's text checked against its column's type, the stored
//! watermark minus the lookback, and the first watermark of a connector without state, each
//! computed by PostgreSQL in the column's own type.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use super::{text_value, watermark_text, SourceError, Watermark, WatermarkKind};
use crate::db::DbError;

/// Casts a watermark's text form (`source.start`, as configured) to the column's type and back
/// (canonical text), or says it does not fit; `column` names the column in that error (see
/// [`SourceError::BadStart`]).
///
/// # Errors
/// [`SourceError::BadStart`] when PostgreSQL cannot read the value as the column's type;
/// [`SourceError::Db`] for any other failure (a lost connection is not a configuration error).
pub async fn check_watermark(
    client: &Client,
    kind: WatermarkKind,
    value: &str,
    column: &str,
) -> Result<Watermark, SourceError> {
    let sql = format!(
        "select {}",
        watermark_text(&format!("$1::text::{}", kind.sql_type()), kind)
    );
    let bad = || SourceError::BadStart {
        start: value.to_owned(),
        kind: kind.sql_type(),
        column: column.to_owned(),
    };
    match text_value(client, &sql, &[(&value, Type::TEXT)]).await {
        Ok(text) => text.map(|text| Watermark::new(kind, text)).ok_or_else(bad),
        // Class 22 is "data exception": the value does not fit the type.
        Err(error) if error.code().is_some_and(|c| c.code().starts_with("22")) => Err(bad()),
        Err(error) => Err(DbError::query("cannot check the watermark value")(error).into()),
    }
}

/// The watermark minus the lookback window, computed by PostgreSQL in the column's own type:
/// `amount` is a number of the column's units for an integer watermark, else seconds
/// ([`crate::config::Lookback::check`]).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn minus_lookback(
    client: &Client,
    watermark: &Watermark,
    amount: i64,
) -> Result<Watermark, SourceError> {
    let seconds = amount;
    let kind = watermark.kind();
    let t = kind.sql_type();
    let expr = match kind {
        WatermarkKind::Integer => format!("($1::text::{t} - $2::bigint)"),
        _ => format!("($1::text::{t} - make_interval(secs => $2::bigint))::{t}"),
    };
    let sql = format!("select {}", watermark_text(&expr, kind));
    text_value(
        client,
        &sql,
        &[(&watermark.as_str(), Type::TEXT), (&seconds, Type::INT8)],
    )
    .await
    .map_err(DbError::query(
        "cannot apply the lookback window to the watermark",
    ))?
    .map_or_else(
        || Ok(watermark.clone()),
        |text| Ok(Watermark::new(kind, text)),
    )
}

/// The first watermark of a connector without state and without `source.start`: 62 days
/// before the source database's clock (older store events cannot be sent), in the column's
/// type; `None` for an integer watermark (the whole table is read).
///
/// # Errors
/// [`SourceError::Db`] when the statement fails.
pub async fn default_start(
    client: &Client,
    kind: WatermarkKind,
    timezone: &str,
) -> Result<Option<Watermark>, SourceError> {
    let days = crate::config::MAX_EVENT_AGE_SECS / 86_400;
    let expr = match kind {
        WatermarkKind::Integer => return Ok(None),
        WatermarkKind::Timestamptz => format!("now() - interval '{days} days'"),
        WatermarkKind::Timestamp => {
            format!("(now() at time zone $1::text) - interval '{days} days'")
        }
        WatermarkKind::Date => {
            format!("((now() at time zone $1::text) - interval '{days} days')::date")
        }
    };
    let sql = format!("select {}", watermark_text(&expr, kind));
    let params: Vec<(&(dyn ToSql + Sync), Type)> = if kind == WatermarkKind::Timestamptz {
        Vec::new()
    } else {
        vec![(&timezone, Type::TEXT)]
    };
    match text_value(client, &sql, &params).await {
        Ok(text) => Ok(text.map(|text| Watermark::new(kind, text))),
        Err(error) => Err(DbError::query("cannot compute the first watermark")(error).into()),
    }
}

/// What runs read of a table whose largest integer watermark is behind the stored one
/// (`stored`), reading from `from` (the stored watermark minus the lookback, both as text):
/// without a lookback none of its rows until they pass the stored watermark; with one, its rows
/// from `from` on, which a lookback that covers the restarted values reads and sends. Rows
/// before `from` are never read: the stored watermark does not go back.
pub fn behind_reads(stored: &str, from: &str) -> String {
    if stored == from {
        "its rows are not read until they pass it (those at or before it never are)".to_owned()
    } else {
        format!(
            "runs read only its rows from {from} on (the stored watermark minus the lookback), \
             and never those before {from}"
        )
    }
}

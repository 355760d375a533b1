//! The watermark (the `state` table): where the connector's source stands, read when a run
//! starts and moved forward in the transaction that records the orders it covers.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use crate::db::DbError;
use crate::source::{Watermark, WatermarkKind};

use super::Ledger;

/// The watermark the `state` table holds: its text, and its type when the row records one
/// (rows written before the type was recorded have none, and one this build does not know
/// reads as none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWatermark {
    /// PostgreSQL's text form of the value.
    pub value: String,
    /// `state.watermark_type`.
    pub kind: Option<WatermarkKind>,
}

impl StoredWatermark {
    /// The stored value as a watermark of a column of `kind` now (a row without a type is
    /// taken to be of it).
    ///
    /// # Errors
    /// The stored value as a watermark of its stored kind, when that is another (the config
    /// no longer fits the ledger).
    pub fn of_kind(self, kind: WatermarkKind) -> Result<Watermark, Watermark> {
        match self.kind {
            Some(stored) if stored != kind => Err(Watermark::new(stored, self.value)),
            _ => Ok(Watermark::new(kind, self.value)),
        }
    }
}

impl Ledger {
    /// The stored watermark and its type, if any.
    pub async fn watermark(&self, client: &Client) -> Result<Option<StoredWatermark>, DbError> {
        let sql = format!(
            "select watermark, watermark_type from {} where connector = $1",
            self.state
        );
        let row = client
            .query_opt(&sql, &[&self.connector])
            .await
            .map_err(DbError::query("cannot read the watermark"))?;
        Ok(row.and_then(|row| {
            let watermark: Option<String> = row.get(0);
            let kind: Option<String> = row.get(1);
            watermark.map(|value| StoredWatermark {
                value,
                kind: kind.as_deref().and_then(WatermarkKind::from_sql_type),
            })
        }))
    }

    /// Moves the watermark forward (never back: the comparison is done by PostgreSQL in the
    /// column's type), in the caller's transaction.
    pub(crate) async fn advance_watermark(
        &self,
        tx: &Transaction<'_>,
        watermark: &Watermark,
        run_id: i64,
    ) -> Result<(), DbError> {
        let t = watermark.kind().sql_type();
        let sql = format!(
            "insert into {state} as s (connector, watermark, watermark_type, run_id, updated_at)
             values ($1, $2, $3, $4, now())
             on conflict (connector) do update
               set watermark = excluded.watermark, watermark_type = excluded.watermark_type,
                   run_id = excluded.run_id, updated_at = now()
             where s.watermark is null or s.watermark_type is distinct from excluded.watermark_type
                or excluded.watermark::{t} > s.watermark::{t}",
            state = self.state
        );
        tx.execute_typed(
            &sql,
            &[
                (&self.connector, Type::TEXT),
                (&watermark.as_str(), Type::TEXT),
                (&t, Type::TEXT),
                (&run_id, Type::INT8),
            ],
        )
        .await
        .map_err(DbError::query("cannot advance the watermark"))?;
        Ok(())
    }
}

impl Ledger {
    /// The statement that clears the connector's stored watermark (keeping its history
    /// floor), so that the next run starts as a first one: the reset a run that found the
    /// source behind it names.
    pub fn reset_watermark_sql(&self) -> String {
        format!(
            "update {} set watermark = null, watermark_type = null where connector = {}",
            self.state,
            crate::db::quote_literal(&self.connector)
        )
    }

    /// The event-time floor a first run applied (unix seconds), if one is in force: orders
    /// dated before it are left by incremental runs until `--initial-sync` clears it.
    pub async fn history_floor(&self, client: &Client) -> Result<Option<i64>, DbError> {
        let sql = format!(
            "select extract(epoch from history_floor)::bigint from {} where connector = $1",
            self.state
        );
        let row = client
            .query_opt(&sql, &[&self.connector])
            .await
            .map_err(DbError::query("cannot read the history floor"))?;
        Ok(row.and_then(|row| row.get::<_, Option<i64>>(0)))
    }

    /// Records (`Some`, unix seconds) or clears (`None`) the history floor; creates the
    /// connector's state row (with no watermark) when there is none.
    pub async fn set_history_floor(
        &self,
        client: &Client,
        floor: Option<i64>,
    ) -> Result<(), DbError> {
        let sql = format!(
            "insert into {state} as s (connector, history_floor, updated_at)
             values ($1, to_timestamp($2::bigint), now())
             on conflict (connector) do update
               set history_floor = excluded.history_floor, updated_at = now()",
            state = self.state
        );
        client
            .execute(&sql, &[&self.connector, &floor])
            .await
            .map_err(DbError::query("cannot record the history floor"))?;
        Ok(())
    }
}

//! The `change_watermarks` table (sql/0018_change_watermarks.sql): one watermark per
//! `[[source.changes]]` table, read when a run starts and moved forward in the transaction that
//! records the orders its changed rows touched.

use std::collections::HashMap;

use tokio_postgres::{Client, Transaction};

use crate::db::DbError;
use crate::source::{Watermark, WatermarkKind};

use super::Ledger;

/// A stored watermark of one changes table: its canonical text and its column's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeWatermark {
    /// The canonical text (PostgreSQL's ISO form, or the integer).
    pub value: String,
    /// The column's kind when it was stored (`None` when the stored type is not one ocapi
    /// knows any more).
    pub kind: Option<WatermarkKind>,
}

impl Ledger {
    /// The stored watermark of each `[[source.changes]]` table of this connector, by the table
    /// as configured.
    ///
    /// # Errors
    /// [`DbError`] when the read fails.
    pub async fn change_watermarks(
        &self,
        client: &Client,
    ) -> Result<HashMap<String, ChangeWatermark>, DbError> {
        let sql = format!(
            "select source_table, watermark, watermark_type from {} where connector = $1",
            self.change_watermarks
        );
        let rows = client
            .query(&sql, &[&self.connector])
            .await
            .map_err(DbError::query("cannot read the changes tables' watermarks"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let kind: String = row.get(2);
                (
                    row.get::<_, String>(0),
                    ChangeWatermark {
                        value: row.get(1),
                        kind: WatermarkKind::from_sql_type(&kind),
                    },
                )
            })
            .collect())
    }

    /// Moves the watermark of the changes table `table` forward (never back: PostgreSQL compares
    /// in the column's type; a changed type replaces it), in the caller's transaction.
    ///
    /// # Errors
    /// [`DbError`] when the write fails.
    pub(crate) async fn advance_change_watermark(
        &self,
        tx: &Transaction<'_>,
        table: &str,
        watermark: &Watermark,
        run_id: i64,
    ) -> Result<(), DbError> {
        let t = watermark.kind().sql_type();
        let sql = format!(
            "insert into {cw} as s (connector, source_table, watermark, watermark_type, run_id,
                                    updated_at)
             values ($1, $2, $3, $4, $5, now())
             on conflict (connector, source_table) do update
               set watermark = excluded.watermark, watermark_type = excluded.watermark_type,
                   run_id = excluded.run_id, updated_at = now()
             where s.watermark_type is distinct from excluded.watermark_type
                or excluded.watermark::{t} > s.watermark::{t}",
            cw = self.change_watermarks
        );
        tx.execute(
            &sql,
            &[&self.connector, &table, &watermark.as_str(), &t, &run_id],
        )
        .await
        .map_err(DbError::query("cannot advance a changes table's watermark"))?;
        Ok(())
    }

    /// Forgets the stored watermark of the changes table `table` (the reset a restarted
    /// sequence needs); returns whether there was one.
    ///
    /// # Errors
    /// [`DbError`] when the write fails.
    pub async fn reset_change_watermark(
        &self,
        client: &Client,
        table: &str,
    ) -> Result<bool, DbError> {
        let sql = format!(
            "delete from {} where connector = $1 and source_table = $2",
            self.change_watermarks
        );
        let deleted = client
            .execute(&sql, &[&self.connector, &table])
            .await
            .map_err(DbError::query("cannot reset a changes table's watermark"))?;
        Ok(deleted > 0)
    }

    /// The SQL statement that resets the watermark of changes table `table` by hand (named in
    /// the degraded run's reason when that table's values went back).
    pub fn reset_change_watermark_sql(&self, table: &str) -> String {
        format!(
            "delete from {} where connector = {} and source_table = {}",
            self.change_watermarks,
            crate::db::quote_literal(&self.connector),
            crate::db::quote_literal(table)
        )
    }
}

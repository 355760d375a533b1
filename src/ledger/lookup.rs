//! The ledger's reads during a run: the rows of a page's orders (which decide what is sent),
//! and the held orders whose time has come. The watermark a run starts from is read in
//! `watermark.rs`.

use std::collections::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::db::DbError;
use crate::event::PURCHASE;
use crate::source::{Watermark, WatermarkKind};

use super::{Existing, Ledger, Status};

impl Ledger {
    /// The ledger rows of these orders.
    ///
    /// One primary-key probe per order id, whatever the table's statistics say. The key leads
    /// with order_id, so `order_id = any($3)` is an index condition: PostgreSQL sorts the ids
    /// and descends the key once for each (measured against one `lateral ... limit 1` subquery
    /// per id: 20-45% less time in psql, hits and misses alike). Sequential and bitmap scans
    /// are off for this one transaction: left to itself, PostgreSQL once planned this as a
    /// filter over every row of a dataset whose statistics still described a small ledger (a
    /// first sync grows it faster than autovacuum analyzes it), 440 ms per page at 1M rows.
    ///
    /// The recorded watermarks are read as values of a column of `kind` (the column's now).
    pub(crate) async fn lookup(
        &self,
        client: &mut Client,
        order_ids: &[&str],
        kind: WatermarkKind,
    ) -> Result<HashMap<String, Existing>, DbError> {
        if order_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "select l.order_id, l.status, extract(epoch from l.event_time)::int8, l.value,
                    l.source_watermark, l.run_id, l.reason, l.changed_watermark,
                    l.event_digest, l.changed_digest
             from {} as l
             where l.order_id = any($3) and l.dataset_id = $1 and l.event_name = $2",
            self.ledger
        );
        let tx = client
            .transaction()
            .await
            .map_err(DbError::query("cannot start a transaction"))?;
        // Sent together (tokio-postgres pipelines requests polled together, in the order
        // polled): the settings apply before the lookup is planned, one round trip for both.
        let settings = async {
            tx.batch_execute("set local enable_seqscan = off; set local enable_bitmapscan = off")
                .await
                .map_err(DbError::query("cannot set up the ledger lookup"))
        };
        let lookup = async {
            tx.query_typed(
                &sql,
                &[
                    (&self.dataset_id, Type::TEXT),
                    (&PURCHASE, Type::TEXT),
                    (&order_ids, Type::TEXT_ARRAY),
                ],
            )
            .await
            .map_err(DbError::query("cannot look up orders in the ledger"))
        };
        let ((), rows) = tokio::try_join!(settings, lookup)?;
        tx.commit()
            .await
            .map_err(DbError::query("cannot end the ledger lookup"))?;
        let watermark = |text: Option<String>| text.map(|text| Watermark::new(kind, text));
        Ok(rows
            .iter()
            .filter_map(|row| {
                let status = Status::parse(row.get(1))?;
                Some((
                    row.get(0),
                    Existing {
                        status,
                        event_time: row.get(2),
                        value: row.get(3),
                        source_watermark: watermark(row.get(4)),
                        run_id: row.get(5),
                        reason: row.get(6),
                        changed_watermark: watermark(row.get(7)),
                        event_digest: row.get(8),
                        changed_digest: row.get(9),
                    },
                ))
            })
            .collect())
    }

    /// The held orders of this dataset whose time has come (event time at or before
    /// `until`, unix seconds).
    pub(crate) async fn due_held(
        &self,
        client: &Client,
        until: i64,
    ) -> Result<Vec<String>, DbError> {
        let sql = format!(
            "select order_id from {} where dataset_id = $1 and event_name = $2
               and status = 'held' and event_time <= to_timestamp($3::int8)
             order by order_id",
            self.ledger
        );
        let rows = client
            .query(&sql, &[&self.dataset_id, &PURCHASE, &until])
            .await
            .map_err(DbError::query("cannot read the held orders"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}

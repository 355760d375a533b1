//! The ledger: one row per (dataset_id, event_name, order_id) with its status (`pending`,
//! `sent`, `invalid`, `rejected`), the runs table and the watermark. Writes are bulk (arrays
//! through `unnest`, never one INSERT per row) and every status change that the watermark
//! depends on commits in the same transaction as the watermark.

use std::collections::HashMap;

use rust_decimal::Decimal;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::db::{quote_ident, DbError};
use crate::event::{Event, PURCHASE};
use crate::source::WatermarkKind;
use crate::stats::RunStats;
use crate::transform::Invalid;

/// A ledger row's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Written before the request leaves; `sent` once the destination accepts.
    Pending,
    /// Accepted by the destination.
    Sent,
    /// Could not become a valid event; `reason` says why.
    Invalid,
    /// Rejected by the destination for its data; `reason` holds the destination's message.
    Rejected,
}

impl Status {
    /// Reads the stored text.
    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "invalid" => Some(Self::Invalid),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// What the ledger already holds for an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// Its status.
    pub status: Status,
    /// Its event time (unix seconds), when known.
    pub event_time: Option<i64>,
    /// Its value, when known.
    pub value: Option<Decimal>,
    /// The source watermark when it was last handled.
    pub source_watermark: Option<String>,
    /// The run that last wrote it.
    pub run_id: Option<i64>,
}

/// One accepted order, for `mark_sent`.
#[derive(Debug, Clone)]
pub struct SentRow {
    /// The order.
    pub order_id: String,
    /// Meta's trace id of the request that carried it.
    pub fbtrace_id: Option<String>,
    /// `events_received` of that request.
    pub events_received: i32,
}

/// One rejected order, for `mark_rejected`.
#[derive(Debug, Clone)]
pub struct RejectedRow {
    /// The order.
    pub order_id: String,
    /// The destination's message.
    pub message: String,
}

/// The ledger of one connector and dataset, with its table names quoted once.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// `"schema".ledger`.
    ledger: String,
    /// `"schema".runs`.
    runs: String,
    /// `"schema".state`.
    state: String,
    /// `connector.name`.
    connector: String,
    /// `destination.dataset_id`.
    dataset_id: String,
}

impl Ledger {
    /// A ledger in `schema` for one connector and dataset.
    pub fn new(schema: &str, connector: &str, dataset_id: &str) -> Self {
        let schema = quote_ident(schema);
        Self {
            ledger: format!("{schema}.ledger"),
            runs: format!("{schema}.runs"),
            state: format!("{schema}.state"),
            connector: connector.to_owned(),
            dataset_id: dataset_id.to_owned(),
        }
    }

    /// Records a new run and returns its id.
    pub async fn start_run(&self, client: &Client, mode: &str) -> Result<i64, DbError> {
        let sql = format!(
            "insert into {} (connector, mode) values ($1, $2) returning run_id",
            self.runs
        );
        let row = client
            .query_one(&sql, &[&self.connector, &mode])
            .await
            .map_err(DbError::query("cannot record the run"))?;
        Ok(row.get(0))
    }

    /// Stores a run's final stats.
    pub async fn finish_run(&self, client: &Client, stats: &RunStats) -> Result<(), DbError> {
        let sql = format!(
            "update {} set status = $2, finished_at = now(), rows_read = $3, events = $4,
                 sent = $5, skipped_duplicate = $6, changed_after_send = $7, invalid = $8,
                 rejected = $9, retries = $10, batches = $11, watermark_start = $12,
                 watermark_end = $13, duration_ms = $14, match_keys = $15, dropped = $16,
                 error = $17
             where run_id = $1",
            self.runs
        );
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let json = |m| serde_json::to_value(m).unwrap_or_default();
        client
            .execute(
                &sql,
                &[
                    &stats.run_id,
                    &stats.status.as_str(),
                    &n(stats.rows_read),
                    &n(stats.events),
                    &n(stats.sent),
                    &n(stats.skipped_duplicate),
                    &n(stats.changed_after_send),
                    &n(stats.invalid),
                    &n(stats.rejected),
                    &n(stats.retries),
                    &n(stats.batches),
                    &stats.watermark_start,
                    &stats.watermark_end,
                    &n(stats.duration_ms),
                    &json(&stats.match_keys),
                    &json(&stats.dropped),
                    &stats.error,
                ],
            )
            .await
            .map_err(DbError::query("cannot record the run's stats"))?;
        Ok(())
    }

    /// The stored watermark and its type, if any.
    pub async fn watermark(
        &self,
        client: &Client,
    ) -> Result<Option<(String, Option<WatermarkKind>)>, DbError> {
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
            watermark.map(|w| (w, kind.as_deref().and_then(WatermarkKind::from_sql_type)))
        }))
    }

    /// Moves the watermark forward (never back: the comparison is done by PostgreSQL in the
    /// column's type), in the caller's transaction.
    pub async fn advance_watermark(
        &self,
        tx: &Transaction<'_>,
        watermark: &str,
        kind: WatermarkKind,
        run_id: i64,
    ) -> Result<(), DbError> {
        let t = kind.sql_type();
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
        tx.execute(&sql, &[&self.connector, &watermark, &t, &run_id])
            .await
            .map_err(DbError::query("cannot advance the watermark"))?;
        Ok(())
    }

    /// The ledger rows of these orders.
    pub async fn lookup(
        &self,
        client: &impl GenericClient,
        order_ids: &[&str],
    ) -> Result<HashMap<String, Existing>, DbError> {
        if order_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "select order_id, status, extract(epoch from event_time)::int8, value,
                    source_watermark, run_id
             from {} where dataset_id = $1 and event_name = $2 and order_id = any($3)",
            self.ledger
        );
        let rows = client
            .query(&sql, &[&self.dataset_id, &PURCHASE, &order_ids])
            .await
            .map_err(DbError::query("cannot look up orders in the ledger"))?;
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
                        source_watermark: row.get(4),
                        run_id: row.get(5),
                    },
                ))
            })
            .collect())
    }

    /// Records invalid orders (never downgrading a `sent` one).
    pub async fn record_invalid(
        &self,
        tx: &Transaction<'_>,
        rows: &[&Invalid],
        run_id: i64,
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let order_ids: Vec<&str> = rows.iter().filter_map(|r| r.order_id.as_deref()).collect();
        let event_times: Vec<Option<i64>> = rows.iter().map(|r| r.event_time).collect();
        let values: Vec<Option<Decimal>> = rows.iter().map(|r| r.value).collect();
        let currencies: Vec<Option<&str>> = rows.iter().map(|r| r.currency.as_deref()).collect();
        let reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
        let watermarks: Vec<&str> = rows.iter().map(|r| r.watermark.as_str()).collect();
        let stores: Vec<Option<&str>> = rows.iter().map(|r| r.store_id.as_deref()).collect();
        let sql = format!(
            "insert into {ledger} as l (connector, dataset_id, event_name, order_id, event_time,
                 value, currency, status, reason, run_id, source_watermark, store_id)
             select $1, $2, $3, u.order_id, to_timestamp(u.event_time), u.value, u.currency,
                    'invalid', u.reason, $4, u.watermark, u.store_id
             from unnest($5::text[], $6::int8[], $7::numeric[], $8::text[], $9::text[], $10::text[],
                         $11::text[])
                  as u(order_id, event_time, value, currency, reason, watermark, store_id)
             on conflict (dataset_id, event_name, order_id) do update
               set status = 'invalid', reason = excluded.reason, run_id = excluded.run_id,
                   event_time = excluded.event_time, value = excluded.value,
                   currency = excluded.currency, source_watermark = excluded.source_watermark,
                   store_id = excluded.store_id,
                   connector = excluded.connector, payload = null, updated_at = now()
               where l.status <> 'sent'",
            ledger = self.ledger
        );
        tx.execute(
            &sql,
            &[
                &self.connector,
                &self.dataset_id,
                &PURCHASE,
                &run_id,
                &order_ids,
                &event_times,
                &values,
                &currencies,
                &reasons,
                &watermarks,
                &stores,
            ],
        )
        .await
        .map_err(DbError::query("cannot record invalid orders in the ledger"))?;
        Ok(())
    }

    /// Records orders as `pending` with their hashed payload, before their request leaves.
    pub async fn record_pending(
        &self,
        tx: &Transaction<'_>,
        events: &[(&Event, &str, &str, Option<&str>)],
        run_id: i64,
    ) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        let order_ids: Vec<&str> = events
            .iter()
            .map(|(e, _, _, _)| e.custom_data.order_id.as_str())
            .collect();
        let event_times: Vec<i64> = events.iter().map(|(e, _, _, _)| e.event_time).collect();
        let values: Vec<Decimal> = events
            .iter()
            .map(|(e, _, _, _)| e.custom_data.value)
            .collect();
        let currencies: Vec<&str> = events
            .iter()
            .map(|(e, _, _, _)| e.custom_data.currency.as_str())
            .collect();
        let watermarks: Vec<&str> = events.iter().map(|(_, w, _, _)| *w).collect();
        let keys: Vec<String> = events
            .iter()
            .map(|(e, _, _, _)| e.user_data.present_keys().collect::<Vec<_>>().join(","))
            .collect();
        let payloads: Vec<&str> = events.iter().map(|(_, _, p, _)| *p).collect();
        let stores: Vec<Option<&str>> = events.iter().map(|(_, _, _, s)| *s).collect();
        let sql = format!(
            "insert into {ledger} as l (connector, dataset_id, event_name, order_id, event_time,
                 value, currency, status, reason, run_id, source_watermark, attempts, match_keys,
                 payload, store_id)
             select $1, $2, $3, u.order_id, to_timestamp(u.event_time), u.value, u.currency,
                    'pending', null, $4, u.watermark, 1, string_to_array(u.keys, ','),
                    u.payload, u.store_id
             from unnest($5::text[], $6::int8[], $7::numeric[], $8::text[], $9::text[],
                         $10::text[], $11::text[], $12::text[])
                  as u(order_id, event_time, value, currency, watermark, keys, payload, store_id)
             on conflict (dataset_id, event_name, order_id) do update
               set status = 'pending', reason = null, run_id = excluded.run_id,
                   event_time = excluded.event_time, value = excluded.value,
                   currency = excluded.currency, source_watermark = excluded.source_watermark,
                   match_keys = excluded.match_keys, payload = excluded.payload,
                   store_id = excluded.store_id, connector = excluded.connector, attempts = l.attempts + 1, updated_at = now()
               where l.status <> 'sent'",
            ledger = self.ledger
        );
        tx.execute(
            &sql,
            &[
                &self.connector,
                &self.dataset_id,
                &PURCHASE,
                &run_id,
                &order_ids,
                &event_times,
                &values,
                &currencies,
                &watermarks,
                &keys,
                &payloads,
                &stores,
            ],
        )
        .await
        .map_err(DbError::query("cannot record pending orders in the ledger"))?;
        Ok(())
    }

    /// Marks accepted orders `sent` (and drops their payload).
    pub async fn mark_sent(
        &self,
        tx: &Transaction<'_>,
        rows: &[SentRow],
        run_id: i64,
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let order_ids: Vec<&str> = rows.iter().map(|r| r.order_id.as_str()).collect();
        let traces: Vec<Option<&str>> = rows.iter().map(|r| r.fbtrace_id.as_deref()).collect();
        let received: Vec<i32> = rows.iter().map(|r| r.events_received).collect();
        let sql = format!(
            "update {} as l set status = 'sent', sent_at = now(), fbtrace_id = u.fbtrace_id,
                 events_received = u.received, run_id = $3, reason = null, payload = null,
                 updated_at = now()
             from unnest($4::text[], $5::text[], $6::int4[]) as u(order_id, fbtrace_id, received)
             where l.dataset_id = $1 and l.event_name = $2 and l.order_id = u.order_id",
            self.ledger
        );
        tx.execute(
            &sql,
            &[
                &self.dataset_id,
                &PURCHASE,
                &run_id,
                &order_ids,
                &traces,
                &received,
            ],
        )
        .await
        .map_err(DbError::query("cannot mark orders sent in the ledger"))?;
        Ok(())
    }

    /// Marks orders `rejected` with the destination's message.
    pub async fn mark_rejected(
        &self,
        tx: &Transaction<'_>,
        rows: &[RejectedRow],
        run_id: i64,
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let order_ids: Vec<&str> = rows.iter().map(|r| r.order_id.as_str()).collect();
        let messages: Vec<&str> = rows.iter().map(|r| r.message.as_str()).collect();
        let sql = format!(
            "update {} as l set status = 'rejected', reason = u.message, run_id = $3,
                 payload = null, updated_at = now()
             from unnest($4::text[], $5::text[]) as u(order_id, message)
             where l.dataset_id = $1 and l.event_name = $2 and l.order_id = u.order_id
               and l.status <> 'sent'",
            self.ledger
        );
        tx.execute(
            &sql,
            &[&self.dataset_id, &PURCHASE, &run_id, &order_ids, &messages],
        )
        .await
        .map_err(DbError::query("cannot mark orders rejected in the ledger"))?;
        Ok(())
    }

    /// Up to `limit` orders left `pending` by runs other than `run_id`, with their payloads.
    pub async fn pending_from_other_runs(
        &self,
        client: &Client,
        run_id: i64,
        limit: i64,
    ) -> Result<Vec<Event>, DbError> {
        let sql = format!(
            "select payload from {}
             where connector = $1 and dataset_id = $2 and status = 'pending'
               and run_id is distinct from $3 and payload is not null
             order by order_id limit $4",
            self.ledger
        );
        let rows = client
            .query(&sql, &[&self.connector, &self.dataset_id, &run_id, &limit])
            .await
            .map_err(DbError::query("cannot read pending orders from the ledger"))?;
        Ok(rows
            .iter()
            .filter_map(|row| serde_json::from_str::<Event>(row.get::<_, &str>(0)).ok())
            .collect())
    }
}

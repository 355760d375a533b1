//! The ledger's reads of orders for the subcommands: one order's row and the runs that touched
//! it (`ocapi explain`), where an order's watermark stands against the connector's (`explain`
//! of an order no run has handled), and the rows of an event-time window (`ocapi reconcile`).

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::db::DbError;
use crate::event::PURCHASE;
use crate::source::{EventTimeWindow, Watermark, WatermarkKind};

use super::reader::LedgerReader;
use super::Status;

/// One order's ledger row as `explain` shows it. Times are PostgreSQL's text of the
/// `timestamptz` (in the session's zone), values its text of the `numeric`, so that they are
/// shown exactly as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderRecord {
    /// Its status.
    pub(crate) status: Status,
    /// Why it is invalid or rejected (the transform's reason or the destination's message).
    pub(crate) reason: Option<String>,
    /// `event_time` as text.
    pub(crate) event_time_text: Option<String>,
    /// `event_time` in unix seconds.
    pub(crate) event_time: Option<i64>,
    /// `value` as text.
    pub(crate) value_text: Option<String>,
    /// `value`.
    pub(crate) value: Option<Decimal>,
    /// ISO 4217 code.
    pub(crate) currency: Option<String>,
    /// The run that last wrote the row.
    pub(crate) run_id: Option<i64>,
    /// When a run first recorded the order.
    pub(crate) first_seen_at: Option<String>,
    /// When the row last changed.
    pub(crate) updated_at: Option<String>,
    /// When Meta accepted it.
    pub(crate) sent_at: Option<String>,
    /// Meta's trace id of the request that carried it.
    pub(crate) fbtrace_id: Option<String>,
    /// Requests that carried it.
    pub(crate) attempts: i32,
    /// The `user_data` keys it carried, comma-separated.
    pub(crate) match_keys: Option<String>,
    /// The source watermark of the version recorded.
    pub(crate) source_watermark: Option<String>,
    /// Its store.
    pub(crate) store_id: Option<String>,
    /// When a run noticed that a row of the sent order was added or changed, as text.
    pub(crate) changed_after_send_at: Option<String>,
}

/// A run that touched one order, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderRun {
    /// The run.
    pub(crate) run_id: i64,
    /// `run` or `backfill`.
    pub(crate) mode: String,
    /// `running`, `completed`, `degraded`, `failed` or `stopped`.
    pub(crate) status: String,
    /// When it started (PostgreSQL's text of the `timestamptz`).
    pub(crate) started_at: String,
    /// It first recorded the order (it was running at the row's `first_seen_at`).
    pub(crate) first_seen: bool,
    /// It sent the order (it was running at the row's `sent_at`).
    pub(crate) sent: bool,
    /// It is the run that last wrote the row.
    pub(crate) last_wrote: bool,
}

/// Where an order's watermark stands against the connector's stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// No run has completed a page: the connector has no state row.
    NoRunYet,
    /// The state row holds no watermark.
    NoWatermark,
    /// The stored watermark's type is not one this build knows, so they cannot be compared.
    Incomparable {
        /// The stored watermark.
        stored: String,
    },
    /// Behind the stored watermark: incremental runs have passed it (a row written late).
    Behind {
        /// The stored watermark.
        stored: String,
    },
    /// At or ahead of the stored watermark: the next incremental run reads it.
    Ahead {
        /// The stored watermark.
        stored: String,
    },
}

/// One order of a reconciliation window as the ledger holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowOrder {
    /// Its status.
    pub(crate) status: Status,
    /// Why it is invalid or rejected.
    pub(crate) reason: Option<String>,
    /// Unix seconds.
    pub(crate) event_time: Option<i64>,
    /// The value.
    pub(crate) value: Option<Decimal>,
    /// The store.
    pub(crate) store_id: Option<String>,
    /// The currency.
    pub(crate) currency: Option<String>,
    /// A row was added or changed in the source after the order was sent.
    pub(crate) changed: bool,
    /// Sent with Limited Data Use.
    pub(crate) ldu: Option<bool>,
}

impl LedgerReader {
    /// The ledger row of one order (its id trimmed as runs trim it), `None` when no run has
    /// recorded it.
    pub(crate) async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, DbError> {
        let sql = format!(
            "select status, reason, event_time::text, value::text, currency, run_id,
                    first_seen_at::text, updated_at::text, sent_at::text, fbtrace_id,
                    attempts, array_to_string(match_keys, ','), source_watermark,
                    store_id, extract(epoch from event_time)::int8, value,
                    changed_after_send_at::text
             from {}
             where dataset_id = $1 and event_name = $2 and order_id = $3",
            self.ledger.ledger
        );
        let row = self
            .client
            .query_opt(&sql, &[&self.ledger.dataset_id, &PURCHASE, &order_id])
            .await
            .map_err(DbError::query("cannot read the order's ledger row"))?;
        // The schema's check constraint admits only the statuses `Status` knows.
        Ok(row.and_then(|row| {
            Some(OrderRecord {
                status: Status::parse(row.get(0))?,
                reason: row.get(1),
                event_time_text: row.get(2),
                value_text: row.get(3),
                currency: row.get(4),
                run_id: row.get(5),
                first_seen_at: row.get(6),
                updated_at: row.get(7),
                sent_at: row.get(8),
                fbtrace_id: row.get(9),
                attempts: row.get(10),
                match_keys: row.get(11),
                source_watermark: row.get(12),
                store_id: row.get(13),
                event_time: row.get(14),
                value: row.get(15),
                changed_after_send_at: row.get(16),
            })
        }))
    }

    /// The runs of the connector that touched one order, oldest first: the run that last wrote
    /// its row and those running when it was first seen or sent.
    pub(crate) async fn order_runs(&self, order_id: &str) -> Result<Vec<OrderRun>, DbError> {
        let sql = format!(
            "select r.run_id, r.mode, r.status, r.started_at::text,
                    r.run_id = l.run_id, r.started_at <= l.first_seen_at
                      and coalesce(r.finished_at, now()) >= l.first_seen_at,
                    l.sent_at is not null and r.started_at <= l.sent_at
                      and coalesce(r.finished_at, now()) >= l.sent_at
             from {runs} r
             join {ledger} l
               on l.dataset_id = $1 and l.event_name = $2 and l.order_id = $3
             where r.connector = l.connector
               and (r.run_id = l.run_id
                    or (r.started_at <= l.first_seen_at
                        and coalesce(r.finished_at, now()) >= l.first_seen_at)
                    or (l.sent_at is not null and r.started_at <= l.sent_at
                        and coalesce(r.finished_at, now()) >= l.sent_at))
             order by r.run_id",
            runs = self.ledger.runs,
            ledger = self.ledger.ledger
        );
        let rows = self
            .client
            .query(&sql, &[&self.ledger.dataset_id, &PURCHASE, &order_id])
            .await
            .map_err(DbError::query("cannot read the order's runs"))?;
        let yes = |flag: Option<bool>| flag == Some(true);
        Ok(rows
            .iter()
            .map(|run| OrderRun {
                run_id: run.get(0),
                mode: run.get(1),
                status: run.get(2),
                started_at: run.get(3),
                last_wrote: yes(run.get(4)),
                first_seen: yes(run.get(5)),
                sent: yes(run.get(6)),
            })
            .collect())
    }

    /// Where `watermark` (an order's, as the source read gives it) stands against the
    /// connector's stored watermark, compared by PostgreSQL in the stored type. A value that
    /// PostgreSQL cannot compare counts as ahead.
    pub(crate) async fn position(&self, watermark: &Watermark) -> Result<Position, DbError> {
        let sql = format!(
            "select watermark, watermark_type from {} where connector = $1",
            self.ledger.state
        );
        let state = self
            .client
            .query_opt(&sql, &[&self.ledger.connector])
            .await
            .map_err(DbError::query("cannot read the watermark"))?;
        let Some(state) = state else {
            return Ok(Position::NoRunYet);
        };
        let stored: Option<String> = state.get(0);
        let kind: Option<String> = state.get(1);
        let (Some(stored), Some(kind)) = (stored, kind) else {
            return Ok(Position::NoWatermark);
        };
        let Some(kind) = WatermarkKind::from_sql_type(&kind) else {
            return Ok(Position::Incomparable { stored });
        };
        let t = kind.sql_type();
        let behind = self
            .client
            .query_one(
                &format!("select $1::text::{t} < $2::text::{t}"),
                &[&watermark.as_str(), &stored],
            )
            .await
            .is_ok_and(|r| r.get(0));
        Ok(if behind {
            Position::Behind { stored }
        } else {
            Position::Ahead { stored }
        })
    }

    /// The ledger rows whose event time is in `window` or unknown, and those of `order_ids`
    /// (whose ledger event time may lie outside it), by order id.
    pub(crate) async fn window_orders(
        &self,
        window: &EventTimeWindow,
        order_ids: &[&str],
    ) -> Result<HashMap<String, WindowOrder>, DbError> {
        let sql = format!(
            "select order_id, status, reason, extract(epoch from event_time)::int8, value,
                    store_id, currency, changed_after_send_at is not null, ldu
             from {}
             where dataset_id = $1 and event_name = $2
               and ((event_time >= to_timestamp($3::float8)
                     and event_time < to_timestamp($4::float8))
                    or event_time is null or order_id = any($5))",
            self.ledger.ledger
        );
        let rows = self
            .client
            .query(
                &sql,
                &[
                    &self.ledger.dataset_id,
                    &PURCHASE,
                    &window.from,
                    &window.to,
                    &order_ids,
                ],
            )
            .await
            .map_err(DbError::query("cannot read the ledger"))?;
        // The schema's check constraint admits only the statuses `Status` knows.
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get(0),
                    WindowOrder {
                        status: Status::parse(r.get(1))?,
                        reason: r.get(2),
                        event_time: r.get(3),
                        value: r.get(4),
                        store_id: r.get(5),
                        currency: r.get(6),
                        changed: r.get(7),
                        ldu: r.get(8),
                    },
                ))
            })
            .collect())
    }
}

//! The orders a run has an outcome for, written to the `ledger` table: what the destination
//! said about each order it was sent ([`Verdict`], [`Outcome`], from the facts kept of the order,
//! [`OrderFacts`]), the orders recorded without being sent (`invalid`, `held`), and the sent
//! orders whose source rows changed since. Every write is one statement over arrays (`unnest`),
//! in the caller's transaction, so that it commits with the watermark that covers it.

use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

use crate::db::DbError;
use crate::event::{Event, PURCHASE};
use crate::source::Watermark;
use crate::transform::{Built, Invalid};
use crate::Text;

use super::Ledger;

/// What the ledger keeps of an order that was sent (or tried): the facts reconciliation
/// compares with the source, not the hashed event.
#[derive(Debug, Clone)]
pub struct OrderFacts {
    /// The order.
    pub order_id: Text,
    /// Its event time (unix seconds).
    pub event_time: i64,
    /// Its value.
    pub value: Decimal,
    /// Its currency.
    pub currency: Text,
    /// The source watermark of the version sent.
    pub watermark: Watermark,
    /// Its store, when mapped.
    pub store_id: Option<String>,
    /// The `user_data` keys it carried, comma-separated (one static text per set of keys).
    pub match_keys: &'static str,
    /// Sent with Limited Data Use; `None` when no data processing options are sent.
    pub ldu: Option<bool>,
    /// The event's digest ([`Event::digest`]), to tell a later change from a touch.
    pub digest: Option<String>,
}

impl OrderFacts {
    /// The facts of an event that has come back from the destination (its ids and currency
    /// copied: inline text for all but the longest, so the event is read where it lies, not
    /// moved). `digest`: the event's digest when the destination took it from the request body
    /// (see [`crate::destination::Delivery::digests`]); else it is computed here.
    pub(crate) fn from_event(
        event: &Event,
        watermark: Watermark,
        store_id: Option<String>,
        digest: Option<u128>,
    ) -> Self {
        let match_keys = event.user_data.match_keys();
        let ldu = event
            .data_processing_options
            .map(|options| !options.is_empty());
        let digest = Some(match digest {
            Some(digest) => crate::event::version_text(digest),
            None => event.digest(),
        });
        Self {
            ldu,
            digest,
            order_id: event.custom_data.order_id.clone(),
            event_time: event.event_time,
            value: event.custom_data.value,
            currency: event.custom_data.currency.clone(),
            watermark,
            store_id,
            match_keys,
        }
    }
}

/// A sent order whose source changed since: what a run records of the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The order.
    pub order_id: String,
    /// Its watermark now.
    pub watermark: Watermark,
    /// Its event's digest now; `None` when it no longer becomes an event.
    pub digest: Option<String>,
}

/// What the destination said about one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Sent {
        /// Meta's trace id of the request that carried it (one per request, copied to each of
        /// its orders: inline, no allocation per order).
        fbtrace_id: Option<Text>,
        /// `events_received` of that request.
        events_received: i32,
    },
    /// Rejected for its data.
    Rejected {
        /// The destination's message with its trace id (the ledger's `reason`).
        message: String,
        /// Meta's error code (`error_code`).
        code: Option<i64>,
        /// Meta's error subcode (`error_subcode`).
        error_subcode: Option<i64>,
    },
}

impl From<crate::destination::Rejected> for Verdict {
    fn from(rejected: crate::destination::Rejected) -> Self {
        Self::Rejected {
            message: rejected.message,
            code: rejected.code,
            error_subcode: rejected.error_subcode,
        }
    }
}

impl Verdict {
    /// The ledger status.
    fn status(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// The ledger reason: the destination's message for a rejection.
    fn reason(&self) -> Option<&str> {
        match self {
            Self::Sent { .. } => None,
            Self::Rejected { message, .. } => Some(message),
        }
    }

    /// Meta's trace id, for an accepted order.
    fn fbtrace_id(&self) -> Option<&str> {
        match self {
            Self::Sent { fbtrace_id, .. } => fbtrace_id.as_deref(),
            Self::Rejected { .. } => None,
        }
    }

    /// `events_received`, for an accepted order.
    fn received(&self) -> Option<i32> {
        match self {
            Self::Sent {
                events_received, ..
            } => Some(*events_received),
            Self::Rejected { .. } => None,
        }
    }

    /// Meta's error code and subcode, for a rejected order.
    fn error_codes(&self) -> (Option<i64>, Option<i64>) {
        match self {
            Self::Sent { .. } => (None, None),
            Self::Rejected {
                code,
                error_subcode,
                ..
            } => (*code, *error_subcode),
        }
    }
}

/// One order whose request came back, for `record_outcomes`.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The order.
    pub order: OrderFacts,
    /// What the destination said.
    pub verdict: Verdict,
    /// The ledger held no row for the order when its page was read.
    pub new: bool,
}

/// An order recorded without being sent (`invalid` or `held`).
struct Unsent<'a> {
    /// The trimmed order id.
    order_id: &'a str,
    /// Unix seconds, when known.
    event_time: Option<i64>,
    /// The value, when known.
    value: Option<Decimal>,
    /// The currency, when known.
    currency: Option<&'a str>,
    /// Why it is invalid.
    reason: Option<&'a str>,
    /// The order's source watermark.
    watermark: &'a str,
    /// The store.
    store_id: Option<&'a str>,
    /// An invalid or walk-in order's [`crate::transform::content_digest`], kept in
    /// `event_digest` so a touch does not count it again; `None` for held orders.
    digest: Option<&'a str>,
}

/// The ledger rows of orders that cannot be sent (those with an order id).
fn unsent_of<'a>(rows: &[&'a Invalid]) -> Vec<Unsent<'a>> {
    rows.iter()
        .filter_map(|r| {
            Some(Unsent {
                order_id: r.order_id.as_deref()?,
                event_time: r.event_time,
                value: r.value,
                currency: r.currency.as_deref(),
                reason: Some(r.reason.as_str()),
                watermark: r.watermark.as_str(),
                store_id: r.store_id.as_deref(),
                digest: r.digest.as_deref(),
            })
        })
        .collect()
}

impl Ledger {
    /// Records invalid orders, and walk-in sales as `anonymous` (never downgrading a `sent`
    /// one).
    pub(crate) async fn record_invalid(
        &self,
        tx: &Transaction<'_>,
        rows: &[&Invalid],
        run_id: i64,
    ) -> Result<(), DbError> {
        let (anonymous, invalid): (Vec<&Invalid>, Vec<&Invalid>) =
            rows.iter().partition(|r| r.reason.is_anonymous());
        self.record_unsent(tx, "invalid", &unsent_of(&invalid), run_id)
            .await?;
        self.record_unsent(tx, "anonymous", &unsent_of(&anonymous), run_id)
            .await
    }

    /// Records held orders (never downgrading a `sent` one).
    pub(crate) async fn record_held(
        &self,
        tx: &Transaction<'_>,
        rows: &[&Built],
        run_id: i64,
    ) -> Result<(), DbError> {
        let unsent: Vec<Unsent<'_>> = rows
            .iter()
            .map(|b| Unsent {
                order_id: &b.event.custom_data.order_id,
                event_time: Some(b.event.event_time),
                value: Some(b.event.custom_data.value),
                currency: Some(&b.event.custom_data.currency),
                reason: None,
                watermark: b.watermark.as_str(),
                store_id: b.store_id.as_deref(),
                digest: None,
            })
            .collect();
        self.record_unsent(tx, "held", &unsent, run_id).await
    }

    /// The parameters of both order writes: `$1` to `$8` the connector, the dataset, the event
    /// name, the run, then `orders`' order ids, event times, values and currencies (arrays);
    /// then `rest`, each write's own.
    fn order_write_params<'a>(
        &'a self,
        run_id: &'a i64,
        orders: [&'a (dyn ToSql + Sync); 4],
        rest: impl IntoIterator<Item = (&'a (dyn ToSql + Sync), Type)>,
    ) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
        let [order_ids, event_times, values, currencies] = orders;
        [
            (&self.connector as &(dyn ToSql + Sync), Type::TEXT),
            (&self.dataset_id, Type::TEXT),
            (&PURCHASE, Type::TEXT),
            (run_id, Type::INT8),
            (order_ids, Type::TEXT_ARRAY),
            (event_times, Type::INT8_ARRAY),
            (values, Type::NUMERIC_ARRAY),
            (currencies, Type::TEXT_ARRAY),
        ]
        .into_iter()
        .chain(rest)
        .collect()
    }

    /// Writes `invalid` or `held` rows with one upsert.
    async fn record_unsent(
        &self,
        tx: &Transaction<'_>,
        status: &str,
        rows: &[Unsent<'_>],
        run_id: i64,
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let order_ids: Vec<&str> = rows.iter().map(|r| r.order_id).collect();
        let event_times: Vec<Option<i64>> = rows.iter().map(|r| r.event_time).collect();
        let values: Vec<Option<Decimal>> = rows.iter().map(|r| r.value).collect();
        let currencies: Vec<Option<&str>> = rows.iter().map(|r| r.currency).collect();
        let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.reason).collect();
        let watermarks: Vec<&str> = rows.iter().map(|r| r.watermark).collect();
        let stores: Vec<Option<&str>> = rows.iter().map(|r| r.store_id).collect();
        let digests: Vec<Option<&str>> = rows.iter().map(|r| r.digest).collect();
        let sql = format!(
            "insert into {ledger} as l (connector, dataset_id, event_name, order_id, event_time,
                 value, currency, status, reason, run_id, source_watermark, store_id, attempts,
                 event_digest)
             select $1, $2, $3, u.order_id, to_timestamp(u.event_time), u.value, u.currency,
                    $12, u.reason, $4, u.watermark, u.store_id, 1, u.digest
             from unnest($5::text[], $6::int8[], $7::numeric[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $13::text[])
                  as u(order_id, event_time, value, currency, reason, watermark, store_id, digest)
             on conflict (dataset_id, event_name, order_id) do update
               set status = excluded.status, reason = excluded.reason, run_id = excluded.run_id,
                   event_time = coalesce(excluded.event_time, l.event_time),
                   value = coalesce(excluded.value, l.value),
                   currency = coalesce(excluded.currency, l.currency),
                   source_watermark = coalesce(nullif(excluded.source_watermark, ''),
                                               l.source_watermark),
                   store_id = excluded.store_id, error_code = null, error_subcode = null,
                   connector = excluded.connector, attempts = l.attempts + 1,
                   event_digest = excluded.event_digest, updated_at = now()
               where l.status <> 'sent'",
            ledger = self.ledger
        );
        let params = self.order_write_params(
            &run_id,
            [&order_ids, &event_times, &values, &currencies],
            [
                (&reasons as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
                (&watermarks, Type::TEXT_ARRAY),
                (&stores, Type::TEXT_ARRAY),
                (&status, Type::TEXT),
                (&digests, Type::TEXT_ARRAY),
            ],
        );
        tx.execute_typed(&sql, &params)
            .await
            .map_err(DbError::query(format!(
                "cannot record {status} orders in the ledger"
            )))?;
        Ok(())
    }

    /// Marks sent orders whose source rows changed after they were sent (a line added, a value
    /// changed), with the order's watermark and its event's digest (when it still becomes an
    /// event) at the change.
    pub(crate) async fn mark_changed(
        &self,
        tx: &Transaction<'_>,
        changed: &[Changed],
    ) -> Result<(), DbError> {
        if changed.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = changed.iter().map(|c| c.order_id.as_str()).collect();
        let watermarks: Vec<&str> = changed.iter().map(|c| c.watermark.as_str()).collect();
        let digests: Vec<Option<&str>> = changed.iter().map(|c| c.digest.as_deref()).collect();
        let sql = format!(
            "update {ledger} as l
             set changed_after_send_at = coalesce(l.changed_after_send_at, now()),
                 changed_watermark = u.watermark, changed_digest = u.digest
             from unnest($3::text[], $4::text[], $5::text[]) as u(order_id, watermark, digest)
             where l.order_id = u.order_id and l.dataset_id = $1 and l.event_name = $2
               and l.status = 'sent'",
            ledger = self.ledger
        );
        tx.execute_typed(
            &sql,
            &[
                (&self.dataset_id, Type::TEXT),
                (&PURCHASE, Type::TEXT),
                (&ids, Type::TEXT_ARRAY),
                (&watermarks, Type::TEXT_ARRAY),
                (&digests, Type::TEXT_ARRAY),
            ],
        )
        .await
        .map_err(DbError::query(
            "cannot record orders changed after they were sent",
        ))?;
        Ok(())
    }

    /// Records the orders whose requests came back, `sent` or `rejected`. A `sent` row is
    /// final: a later rejection of the same order never replaces it.
    ///
    /// Orders the ledger did not hold when their page was read (nearly all, in a sync) are
    /// written with a plain INSERT, which costs PostgreSQL less than half of an upsert's
    /// speculative insertion; the rest are upserted. Should a plain insert meet a row written
    /// meanwhile (another connector on the same dataset), it is rolled back to its savepoint and
    /// its orders are upserted too.
    pub async fn record_outcomes(
        &self,
        tx: &mut Transaction<'_>,
        rows: &[Outcome],
        run_id: i64,
    ) -> Result<(), DbError> {
        let context = "cannot record sent and rejected orders in the ledger";
        let (new, mut known): (Vec<&Outcome>, Vec<&Outcome>) = rows.iter().partition(|r| r.new);
        if !new.is_empty() {
            let savepoint = tx
                .savepoint("new_orders")
                .await
                .map_err(DbError::query("cannot start a savepoint"))?;
            match self.write_outcomes(&savepoint, &new, run_id, false).await {
                Ok(()) => savepoint
                    .commit()
                    .await
                    .map_err(DbError::query("cannot release a savepoint"))?,
                Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    savepoint
                        .rollback()
                        .await
                        .map_err(DbError::query("cannot roll back to a savepoint"))?;
                    known.extend(new);
                }
                Err(error) => return Err(DbError::query(context)(error)),
            }
        }
        self.write_outcomes(tx, &known, run_id, true)
            .await
            .map_err(DbError::query(context))
    }

    /// Writes outcome rows with one INSERT, an upsert when `upsert`.
    async fn write_outcomes(
        &self,
        tx: &Transaction<'_>,
        rows: &[&Outcome],
        run_id: i64,
        upsert: bool,
    ) -> Result<(), tokio_postgres::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let orders = || rows.iter().map(|r| &r.order);
        let order_ids: Vec<&str> = orders().map(|o| o.order_id.as_str()).collect();
        let event_times: Vec<i64> = orders().map(|o| o.event_time).collect();
        let values: Vec<Decimal> = orders().map(|o| o.value).collect();
        let currencies: Vec<&str> = orders().map(|o| o.currency.as_str()).collect();
        let watermarks: Vec<&str> = orders().map(|o| o.watermark.as_str()).collect();
        let keys: Vec<&str> = orders().map(|o| o.match_keys).collect();
        let stores: Vec<Option<&str>> = orders().map(|o| o.store_id.as_deref()).collect();
        let statuses: Vec<&str> = rows.iter().map(|r| r.verdict.status()).collect();
        let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.verdict.reason()).collect();
        let traces: Vec<Option<&str>> = rows.iter().map(|r| r.verdict.fbtrace_id()).collect();
        let received: Vec<Option<i32>> = rows.iter().map(|r| r.verdict.received()).collect();
        let ldu: Vec<Option<bool>> = orders().map(|o| o.ldu).collect();
        let codes: Vec<Option<i64>> = rows.iter().map(|r| r.verdict.error_codes().0).collect();
        let subcodes: Vec<Option<i64>> = rows.iter().map(|r| r.verdict.error_codes().1).collect();
        let digests: Vec<Option<&str>> = orders().map(|o| o.digest.as_deref()).collect();
        let on_conflict = if upsert {
            "on conflict (dataset_id, event_name, order_id) do update
               set status = excluded.status, reason = excluded.reason, run_id = excluded.run_id,
                   event_time = excluded.event_time, value = excluded.value,
                   currency = excluded.currency, source_watermark = excluded.source_watermark,
                   match_keys = excluded.match_keys, store_id = excluded.store_id,
                   sent_at = excluded.sent_at, fbtrace_id = excluded.fbtrace_id,
                   events_received = excluded.events_received, connector = excluded.connector,
                   ldu = excluded.ldu, error_code = excluded.error_code,
                   error_subcode = excluded.error_subcode, event_digest = excluded.event_digest,
                   attempts = l.attempts + 1, updated_at = now()
               where l.status <> 'sent' or excluded.status = 'sent'"
        } else {
            ""
        };
        let sql = format!(
            "insert into {ledger} as l (connector, dataset_id, event_name, order_id, event_time,
                 value, currency, status, reason, run_id, source_watermark, attempts, match_keys,
                 store_id, sent_at, fbtrace_id, events_received, ldu, error_code, error_subcode,
                 event_digest)
             select $1, $2, $3, u.order_id, to_timestamp(u.event_time), u.value, u.currency,
                    u.status, u.reason, $4, u.watermark, 1, string_to_array(u.keys, ','),
                    u.store_id, case when u.status = 'sent' then now() end, u.fbtrace_id,
                    u.received, u.ldu, u.error_code, u.error_subcode, u.digest
             from unnest($5::text[], $6::int8[], $7::numeric[], $8::text[], $9::text[],
                         $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                         $15::int4[], $16::bool[], $17::int8[], $18::int8[], $19::text[])
                  as u(order_id, event_time, value, currency, watermark, keys, store_id, status,
                       reason, fbtrace_id, received, ldu, error_code, error_subcode, digest)
             {on_conflict}",
            ledger = self.ledger
        );
        let params = self.order_write_params(
            &run_id,
            [&order_ids, &event_times, &values, &currencies],
            [
                (&watermarks as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
                (&keys, Type::TEXT_ARRAY),
                (&stores, Type::TEXT_ARRAY),
                (&statuses, Type::TEXT_ARRAY),
                (&reasons, Type::TEXT_ARRAY),
                (&traces, Type::TEXT_ARRAY),
                (&received, Type::INT4_ARRAY),
                (&ldu, Type::BOOL_ARRAY),
                (&codes, Type::INT8_ARRAY),
                (&subcodes, Type::INT8_ARRAY),
                (&digests, Type::TEXT_ARRAY),
            ],
        );
        tx.execute_typed(&sql, &params).await?;
        Ok(())
    }
}

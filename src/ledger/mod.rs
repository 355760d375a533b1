//! The ledger: one row per (dataset_id, event_name, order_id) with its status (`sent`,
//! `invalid`, `rejected`, `held`, `anonymous`), the runs table and the watermark. An order is written once, when its
//! outcome is known, in bulk (arrays through `unnest`, never one INSERT per row) and in the same
//! transaction as the watermark that covers it.
//!
//! This module is the only one that names or queries the ledger's tables. It holds the row's
//! status, the table names and the schema gate; the rest is by table and stage:
//! - `outcomes.rs`: the orders a run has an outcome for (sent, rejected, invalid, held, changed
//!   after send), written to `ledger`;
//! - `watermark.rs`: the `state` table, read when a run starts and advanced with its orders;
//! - `runs.rs`: the `runs` table, a run's start, end and interruption, and its reads;
//! - `keys.rs`: converting a connector's keys when the rule for its id column changes;
//! - `lookup.rs`: a run's reads of `ledger` (a page's orders, the held ones now due);
//! - `meta_alerts.rs`: the `meta_alerts` table, the alerts about Meta's side already sent;
//! - `writable.rs`: whether `ledger` can be written now (a row inserted and rolled back), which
//!   a run proves before it sends anything and `check` reports;
//! - the subcommands' reads go through a [`LedgerReader`] (`reader.rs`) to `orders.rs` (one
//!   order, a reconciliation window) and `runs.rs` (recent runs, lag, match keys, the previous
//!   run).

use rust_decimal::Decimal;
use tokio_postgres::Client;

use crate::db::quote_ident;
use crate::source::Watermark;

mod change_watermarks;
mod keys;
mod lookup;
mod meta_alerts;
mod orders;
mod outcomes;
mod reader;
mod runs;
mod watermark;
mod writable;

pub use change_watermarks::ChangeWatermark;
pub use keys::KeyConversion;
pub(crate) use meta_alerts::claim as claim_meta_alerts;
pub(crate) use orders::{Position, WindowOrder};
pub use outcomes::{Changed, OrderFacts, Outcome, Verdict};
pub(crate) use reader::LedgerReader;
pub(crate) use runs::MatchKeyTotals;
pub use runs::{RunLag, RunRecord};
pub use watermark::StoredWatermark;

/// A ledger row's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Accepted by the destination.
    Sent,
    /// Could not become a valid event; `reason` says why.
    Invalid,
    /// Rejected by the destination for its data; `reason` holds the destination's message.
    Rejected,
    /// Dated ahead of now (a till clock running fast): sent by the first run after its time.
    Held,
    /// A walk-in sale: no customer value in its rows, so Meta cannot attribute it; not sent,
    /// and not invalid. Sent once, by the run that reads it with customer data added
    /// (sql/0012_anonymous_orders.sql).
    Anonymous,
}

impl Status {
    /// Reads the stored text (`None` for a status the schema's check constraint forbids).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "sent" => Some(Self::Sent),
            "invalid" => Some(Self::Invalid),
            "rejected" => Some(Self::Rejected),
            "held" => Some(Self::Held),
            "anonymous" => Some(Self::Anonymous),
            _ => None,
        }
    }

    /// The stored text.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Invalid => "invalid",
            Self::Rejected => "rejected",
            Self::Held => "held",
            Self::Anonymous => "anonymous",
        }
    }
}

/// What the ledger already holds for an order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Existing {
    /// Its status.
    pub status: Status,
    /// Its event time (unix seconds), when known.
    pub event_time: Option<i64>,
    /// Its value, when known.
    pub value: Option<Decimal>,
    /// The source watermark when it was last handled.
    pub source_watermark: Option<Watermark>,
    /// The run that last wrote it.
    pub run_id: Option<i64>,
    /// Why it is invalid or rejected.
    pub reason: Option<String>,
    /// For a sent order changed since: the order's watermark when the change was recorded.
    pub changed_watermark: Option<Watermark>,
    /// The digest of the event recorded ([`crate::event::Event::digest`]); `None` for rows
    /// written before sql/0014, which compare by watermark.
    pub event_digest: Option<String>,
    /// For a sent order changed since: its event's digest when the change was recorded.
    pub changed_digest: Option<String>,
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
    /// `"schema".change_watermarks`: one watermark per `[[source.changes]]` table.
    change_watermarks: String,
    /// `"schema".run_summary`, the view of sql/0003_operations.sql.
    run_summary: String,
    /// `"schema".key_rules` (sql/0013_key_rules.sql).
    key_rules: String,
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
            change_watermarks: format!("{schema}.change_watermarks"),
            run_summary: format!("{schema}.run_summary"),
            key_rules: format!("{schema}.key_rules"),
            connector: connector.to_owned(),
            dataset_id: dataset_id.to_owned(),
        }
    }
}

/// Fails with [`crate::error::Error::SchemaNotReady`] unless the ledger schema is at this
/// build's version (`ocapi migrate` brings it there); database errors pass through as they are.
pub(crate) async fn ensure_schema(
    client: &Client,
    schema: &str,
) -> Result<(), crate::error::Error> {
    use crate::db::{latest_migration, schema_version};
    use crate::error::Error;
    match schema_version(client, schema).await? {
        Some(version) if version >= latest_migration() => Ok(()),
        Some(version) => Err(Error::SchemaNotReady {
            schema: schema.to_owned(),
            found: format!(
                "at version {version}, older than this build's {}",
                latest_migration()
            ),
        }),
        None => Err(Error::SchemaNotReady {
            schema: schema.to_owned(),
            found: "missing".to_owned(),
        }),
    }
}

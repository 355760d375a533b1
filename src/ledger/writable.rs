//! Whether the ledger table can be written now (issue 23): a run proves it before it sends
//! anything, and `check` reports it, so that a ledger that is read-only
//! (`default_transaction_read_only`, a standby), full (a disk out of space) or closed to the
//! run's role (a revoked `INSERT`) costs no event sent to the destination and never recorded.

use tokio_postgres::Client;

use crate::db::DbError;

use super::Ledger;

/// The `event_name` of the probe row: no event has it, so it never meets a real order's key.
const PROBE_EVENT: &str = "ocapi-write-check";

impl Ledger {
    /// Inserts one row into the ledger table, as a page's commit does, inside a transaction
    /// that it then rolls back: nothing stays, and the row's triggers, privileges, constraints
    /// and the disk are exercised.
    ///
    /// # Errors
    /// [`DbError::Query`] saying the ledger cannot be written, with PostgreSQL's reason
    /// (`cannot execute INSERT in a read-only transaction`, `permission denied for table
    /// ledger`, `could not extend file …: No space left on device`, a trigger's message).
    pub(crate) async fn check_writable(&self, client: &Client) -> Result<(), DbError> {
        let context = format!(
            "the ledger table {} cannot be written, so nothing was sent (an event sent now \
             could not be recorded, and every later run would send it again): make it \
             writable (disk space, `default_transaction_read_only`, a primary rather than a \
             standby, `grant insert, update on` it to the run's role)",
            self.ledger
        );
        let sql = format!(
            "begin; insert into {} (connector, dataset_id, event_name, order_id, status, reason) \
             values ({}, {}, '{PROBE_EVENT}', '{PROBE_EVENT}', 'invalid', 'a write check, \
             rolled back'); rollback",
            self.ledger,
            crate::db::quote_literal(&self.connector),
            crate::db::quote_literal(&self.dataset_id),
        );
        let result = client.batch_execute(&sql).await;
        if result.is_err() {
            // The failed statement left the transaction open and aborted.
            let _ = client.batch_execute("rollback").await;
        }
        result.map_err(DbError::query(context))
    }
}

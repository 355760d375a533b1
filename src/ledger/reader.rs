//! A connection to one connector's ledger for the subcommands that report on it (`runs`,
//! `explain`, `reconcile`, `quality`, `report`) and for the alerts' memory of the previous
//! run. The queries themselves are in [`super::orders`] and [`super::runs`]: no subcommand
//! writes SQL against the ledger's tables.

use crate::config::Config;
use crate::db;
use crate::error::Error;

use super::Ledger;

/// The ledger of `config`'s connector and dataset with one connection to its database.
pub(crate) struct LedgerReader {
    /// The table names, the connector and the dataset.
    pub(super) ledger: Ledger,
    /// One pooled connection to the ledger's database (the pool holds just this one).
    pub(super) client: deadpool_postgres::Object,
}

impl LedgerReader {
    /// Connects to the ledger and checks that its schema is at this build's version.
    ///
    /// Errors: the ledger URL cannot be resolved (configuration), no connection, or
    /// [`Error::SchemaNotReady`] when `ocapi migrate` has not been run for this build.
    pub(crate) async fn open(config: &Config) -> Result<Self, Error> {
        let reader = Self::connect(config).await?;
        crate::ledger::ensure_schema(&reader.client, &config.ledger.schema).await?;
        Ok(reader)
    }

    /// Connects to the ledger without checking its schema: for reads that are best effort
    /// (the alerts' previous run) or follow a checked one.
    pub(crate) async fn connect(config: &Config) -> Result<Self, Error> {
        let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
        let client = db::connect(&pool, "ledger").await?;
        Ok(Self {
            ledger: Ledger::new(
                &config.ledger.schema,
                &config.connector.name,
                &config.destination.dataset_id,
            ),
            client,
        })
    }
}

//! `ocapi migrate`: creates or upgrades the ledger schema (idempotent, forward-only), and
//! converts the connector's ledger keys when the rule for its id column's type asks for it.

use crate::config::Config;
use crate::db;
use crate::error::{Error, ExitStatus};
use crate::ledger::{KeyConversion, Ledger};
use crate::lock::RunLock;
use crate::source;

/// Creates or upgrades the ledger schema; returns the migrations applied now.
pub async fn migrate(config: &Config) -> Result<Vec<i32>, Error> {
    let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let mut client = db::connect(&pool, "ledger").await?;
    Ok(db::migrate(&mut client, &config.ledger.schema).await?)
}

/// Converts the connector's ledger keys to the rule of its source id column's type (the
/// source is described for it), under the connector's run lock.
///
/// # Errors
/// The source cannot be described, the lock is held by a run, or a statement fails.
pub async fn convert_keys(config: &Config) -> Result<KeyConversion, Error> {
    let source_pool = db::pool(&config.source_url()?, "source", 1)?;
    let source_client = db::connect(&source_pool, "source").await?;
    let table = source::describe(&source_client, config).await?;
    drop(source_client);
    let pool = db::pool(&config.ledger_url()?, "ledger", 2)?;
    let _lock = RunLock::acquire(&pool, config).await?;
    let mut client = db::connect(&pool, "ledger").await?;
    let ledger = Ledger::new(
        &config.ledger.schema,
        &config.connector.name,
        &config.destination.dataset_id,
    );
    Ok(ledger.convert_keys(&mut client, table.id_kind).await?)
}

/// `ocapi migrate`: applies what is missing and says so, and what it changed in the keys.
pub(crate) async fn command(config: &Config) -> Result<ExitStatus, Error> {
    let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let mut client = db::connect(&pool, "ledger").await?;
    let migrated = db::migrate_reporting(&mut client, &config.ledger.schema).await?;
    let (applied, schema) = (migrated.applied, &config.ledger.schema);
    if migrated.carried_over {
        println!(
            "ledger schema {schema:?}: carried the migrations table of an earlier ocapi over              (renamed schema_migrations to {}, so that it cannot be taken for another tool's)",
            db::MIGRATIONS_TABLE
        );
    }
    if applied.is_empty() {
        println!("ledger schema {schema:?} is up to date");
    } else {
        println!("ledger schema {schema:?}: applied migrations {applied:?}");
    }
    match convert_keys(config).await {
        Ok(conversion) => println!("{}", conversion.summary()),
        // The next run converts them (it describes the source anyway).
        Err(error) => println!(
            "ledger keys not checked ({}); the next run converts them to the rule of the \
             order id column's type",
            crate::error::chain(&error)
        ),
    }
    Ok(ExitStatus::Success)
}

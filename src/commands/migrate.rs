//! `ocapi migrate`: creates or upgrades the ledger schema (idempotent, forward-only).

use crate::config::Config;
use crate::db;
use crate::error::{Error, ExitStatus};

/// Creates or upgrades the ledger schema; returns the migrations applied now.
pub async fn migrate(config: &Config) -> Result<Vec<i32>, Error> {
    let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let mut client = db::connect(&pool, "ledger").await?;
    Ok(db::migrate(&mut client, &config.ledger.schema).await?)
}

/// `ocapi migrate`: applies what is missing and says so.
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
    Ok(ExitStatus::Success)
}

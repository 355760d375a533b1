//! The `meta_alerts` table (sql/0016): which alerts about Meta's side (a token about to expire,
//! Meta counting fewer events than were sent on a settled day) the connector already sent, so
//! that each is sent once, whichever process (`run`, `watch`, `reconcile --meta`) sees it.

use tokio_postgres::Client;

use crate::config::Config;
use crate::db::{self, quote_ident, DbError};
use crate::error::Error;

/// Records the alerts whose `keys` are new for `connector` in `schema` and returns those keys
/// (the ones to send now); keys already recorded are left out.
///
/// # Errors
/// [`DbError::Query`] when the table cannot be written.
async fn claim_alerts(
    client: &Client,
    schema: &str,
    connector: &str,
    keys: &[String],
) -> Result<Vec<String>, DbError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "insert into {}.meta_alerts (connector, alert_key) select $1, k from unnest($2::text[]) k \
         on conflict do nothing returning alert_key",
        quote_ident(schema)
    );
    let rows = client
        .query(&sql, &[&connector, &keys])
        .await
        .map_err(DbError::query("cannot record the alerts about Meta's side"))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// [`claim_alerts`] over a fresh connection to `config`'s ledger.
pub(crate) async fn claim(config: &Config, keys: &[String]) -> Result<Vec<String>, Error> {
    let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let client = db::connect(&pool, "ledger").await?;
    Ok(claim_alerts(&client, &config.ledger.schema, &config.connector.name, keys).await?)
}

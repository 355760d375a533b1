//! The small commands around a run: `migrate`, `check` and `hash`.

use std::fmt::Write as _;

use crate::config::Config;
use crate::db;
use crate::destination::Destination;
use crate::error::Error;
use crate::source;
use crate::transform::hash::sha256;
use crate::transform::normalize::{normalize, Context, Field, Outcome};

/// Creates or upgrades the ledger schema; returns the migrations applied now.
pub async fn migrate(config: &Config) -> Result<Vec<i32>, Error> {
    let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let mut client = db::connect(&pool, "ledger").await?;
    Ok(db::migrate(&mut client, &config.ledger.schema).await?)
}

/// What `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// A line per thing checked.
    pub text: String,
    /// Whether everything is ready for a run.
    pub ok: bool,
    /// The exit code when not ok: 2 for configuration problems, 1 for failures to connect.
    pub exit_code: u8,
}

impl CheckReport {
    /// Adds a passed check.
    fn pass(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.text, "ok    {}", line.as_ref());
    }

    /// Adds a failed check; the first failure decides the exit code.
    fn fail(&mut self, error: &Error) {
        let _ = writeln!(self.text, "FAIL  {}", crate::run::error_chain(error));
        if self.ok {
            self.exit_code = if error.is_config() { 2 } else { 1 };
        }
        self.ok = false;
    }
}

/// Validates the config against the source, the ledger and the destination.
pub async fn check(config: &Config) -> CheckReport {
    let mut report = CheckReport {
        ok: true,
        ..CheckReport::default()
    };
    report.pass(format!("config: connector {:?}", config.connector.name));
    match crate::alerts::Alerter::from_config(&config.alerts) {
        Ok(Some(_)) => report.pass(format!(
            "alerts: webhook set (quiet period {})",
            humantime::format_duration(config.alerts.quiet_period)
        )),
        Ok(None) => {}
        Err(error) => report.fail(&error.into()),
    }
    if let Err(error) = check_source(config, &mut report).await {
        report.fail(&error);
    }
    match check_ledger(config).await {
        Ok(line) => report.pass(line),
        Err(error) => report.fail(&error),
    }
    let destination = Destination::from_config(config).map_err(Error::from);
    let checked = match destination {
        Ok(destination) => destination.check().await.map_err(Error::from),
        Err(error) => Err(error),
    };
    match checked {
        Ok(line) => report.pass(line),
        Err(error) => report.fail(&error),
    }
    report
}

/// Connects to the source and checks the table and every mapped column.
async fn check_source(config: &Config, report: &mut CheckReport) -> Result<(), Error> {
    let pool = db::pool(&config.source_url()?, "source", 1)?;
    let client = db::connect(&pool, "source").await?;
    let table = source::describe(&client, config).await?;
    report.pass(format!(
        "source: {} (watermark {:?} as {}, event time {:?})",
        table.quoted_name,
        config.source.watermark_column,
        table.watermark_kind.sql_type(),
        config.mapping.event_time
    ));
    let columns: Vec<String> = config
        .mapping
        .columns()
        .iter()
        .map(|(key, column)| format!("{key}={column}:{}", table.columns[*column]))
        .collect();
    report.pass(format!("mapping: {}", columns.join(", ")));
    let sql = format!(
        "select count(*) from {} where {} is null",
        table.quoted_name,
        db::quote_ident(&config.source.watermark_column)
    );
    let unsyncable: i64 = client
        .query_one(&sql, &[])
        .await
        .map_err(db::DbError::query("cannot count rows without a watermark"))?
        .get(0);
    if unsyncable > 0 {
        let _ = writeln!(
            report.text,
            "warn  {unsyncable} rows have a NULL {:?} and are never read: give them a value",
            config.source.watermark_column
        );
    }
    Ok(())
}

/// Checks the ledger schema's version.
async fn check_ledger(config: &Config) -> Result<String, Error> {
    let pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let client = db::connect(&pool, "ledger").await?;
    crate::run::ensure_schema(&client, &config.ledger.schema).await?;
    Ok(format!(
        "ledger: schema {:?} at version {}",
        config.ledger.schema,
        db::latest_migration()
    ))
}

/// `ocapi hash FIELD VALUE [--country CC]`: the normalized value and its hash.
pub fn hash(field: &str, value: &str, country: Option<&str>) -> Result<String, Error> {
    let field = Field::from_key(field).ok_or_else(|| {
        let keys: Vec<&str> = Field::ALL.iter().map(|f| f.key()).collect();
        Error::Usage(format!(
            "unknown field {field:?}; use one of {}",
            keys.join(", ")
        ))
    })?;
    let ctx = Context { country };
    Ok(match normalize(field, value, &ctx) {
        Outcome::Normalized(normalized) => {
            format!(
                "normalized: {normalized}\nsha256:     {}\n",
                sha256(&normalized)
            )
        }
        Outcome::AlreadyHashed(digest) => {
            format!("normalized: (already a SHA-256 digest, sent as is)\nsha256:     {digest}\n")
        }
        Outcome::Empty => "normalized: (empty: nothing is sent)\n".to_owned(),
        Outcome::Dropped => format!("normalized: (dropped: not a valid {} value)\n", field.key()),
    })
}

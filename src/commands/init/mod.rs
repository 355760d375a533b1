//! `ocapi init`: a first `connector.toml` from the source itself. It reads a table's or view's
//! columns and types ([`crate::source::catalog`]), proposes the mapping, the watermark and, for a
//! view over several tables, `[[source.changes]]` entries ([`propose`]), takes `[defaults]` from
//! the data (the most common currency and country), and writes a commented file ([`render`])
//! that `ocapi check` accepts. On a terminal it asks for what no flag gave; with
//! `--source-url` and `--table` it asks nothing. `--example` writes the repository's fully
//! commented example instead. It never overwrites a file without `--force`.

mod ask;
mod names;
mod propose;
mod render;

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use chrono::{Duration, Utc};

use crate::cli::{Cli, InitArgs};
use crate::config;
use crate::db;
use crate::error::{Error, ExitStatus};
use crate::secret::Secret;
use crate::source::catalog::{self, Relation, RelationKind};
use crate::source::{SourceError, WatermarkKind};
use crate::transform::normalize::country_code;
use ask::Prompter;
use propose::{propose, Proposal};
use render::{render, Choices, URL_ENV};

/// The repository's commented example (`connector.toml`), as `ocapi init --example` writes it.
pub const EXAMPLE: &str = include_str!("../../../connector.toml");

/// Days back `source.start` is written: Meta takes store events up to 62 days old
/// (docs/meta-capi.md §2); a day less keeps the first run clear of the edge.
const START_DAYS: i64 = 61;

/// Runs `ocapi init`.
///
/// # Errors
/// [`Error::Usage`] (exit 2) when the file exists without `--force`, a flag is missing off a
/// terminal, or a required key found no column (naming `--map KEY=COLUMN`);
/// [`Error::Source`] when the table is not found; [`Error::Db`] when the database fails;
/// [`Error::Write`] when the file cannot be written.
pub async fn command(cli: &Cli, args: &InitArgs) -> Result<ExitStatus, Error> {
    let path = config::resolve_path(cli.config.as_deref());
    if path.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} exists; pass --force to overwrite it (or --config PATH to write another file)",
            path.display()
        )));
    }
    if args.example {
        write(&path, EXAMPLE, args.force)?;
        println!(
            "wrote {}: the commented example (it reads the demo's table; `ocapi init \
             --source-url URL --table NAME` writes one for your own)",
            path.display()
        );
        return Ok(ExitStatus::Success);
    }
    // With both flags it asks nothing, terminal or not (the dataset id is then left to set).
    let terminal = std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
        && (args.source_url.is_none() || args.table.is_none());
    let mut ask = Prompter::new(terminal);
    let url = match &args.source_url {
        Some(url) => url.clone(),
        None => ask.source_url()?,
    };
    let pool = db::pool(&Secret::new(url), "source", 1).map_err(|error| match error {
        db::DbError::Url { reason, .. } => Error::Usage(format!(
            "--source-url (or ${URL_ENV}) is not a usable PostgreSQL URL: {reason}"
        )),
        other => other.into(),
    })?;
    let client = db::connect(&pool, "source").await?;
    let table = match &args.table {
        Some(table) => table.clone(),
        None => ask.table(&catalog::readable_relations(&client).await?)?,
    };
    let relation = catalog::relation(&client, &table)
        .await
        .map_err(|error| match error {
            SourceError::TableNotFound { table } => Error::Usage(format!(
                "no table or view {table} (--table): check the name (schema.name) and that the \
                 role may read it"
            )),
            other => other.into(),
        })?;
    let base_tables = match relation.kind {
        RelationKind::View | RelationKind::MaterializedView => {
            catalog::base_tables(&client, &relation).await?
        }
        RelationKind::Table | RelationKind::Foreign => Vec::new(),
    };
    let mut overrides = parse_overrides(&args.map)?;
    check_overrides(&relation, &overrides)?;
    let mut proposal = propose(&relation, &base_tables, &overrides);
    // What a run cannot do without: asked for on a terminal, else named with the flag.
    for key in missing(&proposal) {
        let column = ask.column(key, &proposal.unplaced)?;
        overrides.push((key.to_owned(), column));
        check_overrides(&relation, &overrides)?;
        proposal = propose(&relation, &base_tables, &overrides);
    }
    let dataset_id = match &args.dataset_id {
        Some(id) => Some(id.clone()),
        None => ask.dataset_id()?,
    };
    let choices = choices(&client, &relation, &proposal, dataset_id).await?;
    let text = render(&relation, &proposal, &choices);
    write(&path, &text, args.force)?;
    summary(&path, &relation, &proposal, &choices);
    Ok(ExitStatus::Success)
}

/// `--map KEY=COLUMN` pairs.
fn parse_overrides(pairs: &[String]) -> Result<Vec<(String, String)>, Error> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, c)| (k.trim().to_owned(), c.trim().to_owned()))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--map {pair:?}: give KEY=COLUMN (order_id=receipt_no)"
                    ))
                })
        })
        .collect()
}

/// Each override names a column of the table.
fn check_overrides(relation: &Relation, overrides: &[(String, String)]) -> Result<(), Error> {
    for (key, column) in overrides {
        if !names::NAMES.iter().any(|(known, _)| known == key) {
            let known: Vec<&str> = names::NAMES.iter().map(|(known, _)| *known).collect();
            return Err(Error::Usage(format!(
                "--map {key}={column}: `mapping.{key}` is not a mapping key (the keys: {})",
                known.join(", ")
            )));
        }
        if !relation.columns.iter().any(|c| &c.name == column) {
            return Err(Error::Usage(format!(
                "`mapping.{key}` = {column:?}: {} has no such column (names are case-sensitive)",
                relation.qualified()
            )));
        }
    }
    Ok(())
}

/// The keys a run needs that no column took: the order id, the event time, and the value
/// unless line items give it.
fn missing(proposal: &Proposal) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for key in ["order_id", "event_time"] {
        if proposal.column(key).is_none() {
            keys.push(key);
        }
    }
    let lines =
        proposal.column("item_quantity").is_some() && proposal.column("item_price").is_some();
    if proposal.column("value").is_none() && !lines {
        keys.push("value");
    }
    keys
}

/// The connector's name, `source.start` and `[defaults]`, from the data.
async fn choices(
    client: &tokio_postgres::Client,
    relation: &Relation,
    proposal: &Proposal,
    dataset_id: Option<String>,
) -> Result<Choices, Error> {
    let now = catalog::database_now(client).await?;
    let integer = matches!(&proposal.watermark, Some((_, _, WatermarkKind::Integer)));
    let (start, start_why) = if integer {
        (
            "0".to_owned(),
            "the first watermark: the whole table is read once; orders older than 62 days are \
             recorded, not sent"
                .to_owned(),
        )
    } else {
        let day = (now - Duration::days(START_DAYS)).date_naive();
        (
            format!("\"{day}T00:00:00Z\""),
            "the first watermark: 61 days back, the history Meta still accepts (62 days)"
                .to_owned(),
        )
    };
    // The rows actually sampled: a 999-row view is not "10000 rows" (trial finding 14).
    let sampled = if proposal.column("currency").is_some() || proposal.column("country").is_some() {
        catalog::sampled_rows(client, relation).await?
    } else {
        0
    };
    let sample = format!("the most common among {sampled} rows");
    let currency = match proposal.column("currency") {
        Some(column) => catalog::most_common(client, relation, column, 1)
            .await?
            .into_iter()
            .next()
            .map(|(code, _)| {
                (
                    code.to_uppercase(),
                    format!("{sample}; where `{column}` is empty"),
                )
            }),
        None => Some((
            "USD".to_owned(),
            "CHECK: no currency column was found; every order is in this currency".to_owned(),
        )),
    };
    let country = match proposal.column("country") {
        Some(column) => catalog::most_common(client, relation, column, 5)
            .await?
            .into_iter()
            .find_map(|(value, _)| country_code(&value))
            .map(|code| {
                (
                    code.to_uppercase(),
                    format!("{sample}; also the region of national phone numbers"),
                )
            }),
        None => None,
    };
    let connector: String = relation
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    Ok(Choices {
        connector,
        start,
        start_why,
        currency,
        country,
        dataset_id,
        today: Utc::now().date_naive().to_string(),
    })
}

/// Writes `text` to `path`: a new file, or over an existing one with `force`.
fn write(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                "{} exists; pass --force to overwrite it",
                path.display()
            )),
            _ => Error::Write {
                path: path.to_path_buf(),
                source,
            },
        })
}

/// What was written and what to do next, on stdout.
fn summary(path: &Path, relation: &Relation, proposal: &Proposal, choices: &Choices) {
    let placed: Vec<String> = proposal
        .placed
        .iter()
        .map(|p| format!("{} = {}", p.key, p.column))
        .collect();
    println!(
        "wrote {} for the {} {}",
        path.display(),
        relation.kind.noun(),
        relation.qualified()
    );
    println!("  mapped: {}", placed.join(", "));
    match &proposal.watermark {
        Some((column, declared, _)) => println!("  watermark: {column} ({declared})"),
        None => println!("  watermark: none found (see the file)"),
    }
    let entries = proposal
        .changes
        .iter()
        .filter(|c| matches!(c, propose::Change::Entry { .. }))
        .count();
    if !proposal.changes.is_empty() {
        println!(
            "  [[source.changes]]: {entries} of the {} tables the view reads",
            proposal.changes.len()
        );
    }
    if let Some((code, _)) = &choices.currency {
        println!("  defaults.currency: {code}");
    }
    if let Some((code, _)) = &choices.country {
        println!("  defaults.country: {code}");
    }
    if !proposal.unplaced.is_empty() {
        let names: Vec<&str> = proposal.unplaced.iter().map(|u| u.0.as_str()).collect();
        println!("  not placed: {}", names.join(", "));
    }
    if choices.dataset_id.is_none() {
        println!("  destination.dataset_id: SET IT (your dataset's id, from Events Manager)");
    }
    println!(
        "next: export {URL_ENV}=… and META_ACCESS_TOKEN=…, then `ocapi migrate` and `ocapi check`"
    );
}

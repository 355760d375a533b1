//! The command line: which file and which mode, never what to sync (that is the config's).

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

/// Sends in-store purchases from a PostgreSQL table to Meta's Conversions API.
#[derive(Debug, Parser)]
#[command(name = "ocapi", version, about)]
pub struct Cli {
    /// The connector config (else $OCAPI_CONFIG, else ./connector.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Write each run's stats here in the Prometheus text format (run, watch, backfill).
    #[arg(long, global = true, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented connector.toml for a table or view (or, with --example, the example).
    Init(InitArgs),
    /// Create or upgrade the ledger schema (idempotent).
    Migrate,
    /// Validate the config, the source columns, the ledger schema and the destination.
    Check,
    /// Run one sync pass.
    Run(RunArgs),
    /// Run a sync every interval until SIGTERM or Ctrl-C.
    Watch(WatchArgs),
    /// Re-read an event-time window regardless of the watermark (which stays where it is).
    Backfill(BackfillArgs),
    /// Show recent runs with their stats and status.
    Runs(RunsArgs),
    /// Compare the source with the ledger: sent, invalid, rejected, never seen.
    Reconcile(ReconcileArgs),
    /// Write a self-contained HTML report with charts: per day, per store, runs, lag, reasons.
    Report(ReportArgs),
    /// Follow one order: source (masked), event (hashed), ledger history, and why.
    Explain(ExplainArgs),
    /// Read Meta's Dataset Quality API for the dataset's offline events.
    Quality(QualityArgs),
    /// Print a customer value normalized and hashed, to debug one customer's match.
    Hash(HashArgs),
    /// Serve a local stand-in for the Graph API's Conversions API endpoint.
    #[cfg(feature = "sandbox")]
    Sandbox(Box<crate::sandbox::SandboxArgs>),
    /// Load demo data into a local PostgreSQL and sync it through the local stand-in, twice.
    #[cfg(feature = "sandbox")]
    Demo(DemoArgs),
}

/// `ocapi init`: writes the config file (`--config`, else `$OCAPI_CONFIG`, else
/// `./connector.toml`).
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The source database's URL (else $OCAPI_SOURCE_URL, else asked on a terminal); it is
    /// never written to the file, which names OCAPI_SOURCE_URL instead.
    #[arg(long, value_name = "URL")]
    pub source_url: Option<String>,
    /// The table or view to sync (else chosen on a terminal).
    #[arg(long, value_name = "SCHEMA.NAME")]
    pub table: Option<String>,
    /// The Meta dataset (pixel) id (else asked on a terminal, or left to set in the file).
    #[arg(long, value_name = "ID")]
    pub dataset_id: Option<String>,
    /// Place a mapping key on a column, over what the names suggest (repeatable).
    #[arg(long, value_name = "KEY=COLUMN")]
    pub map: Vec<String>,
    /// Write the fully commented example instead (no database is read).
    #[arg(long, conflicts_with_all = ["source_url", "table", "dataset_id", "map"])]
    pub example: bool,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `ocapi run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Print the events as NDJSON on stdout; write nothing anywhere.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the run's stats as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Stop after about N source rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Exit 3 (completed, degraded) when more than this share of orders is invalid or rejected.
    #[arg(long, value_name = "RATIO", value_parser = ratio)]
    pub max_invalid_ratio: Option<f64>,
    /// With no ledger state for the connector (a first install, or a dropped ledger) and no
    /// `source.start`: send the history older than 7 days too (up to 62 days, the most Meta
    /// accepts). Without it such a run sends the last 7 days and says what it left.
    #[arg(long)]
    pub initial_sync: bool,
}

/// `ocapi watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Time between runs, e.g. 30s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = interval)]
    pub interval: Duration,
    /// Log a run at error level when more than this share of orders is invalid or rejected.
    #[arg(long, value_name = "RATIO", value_parser = ratio)]
    pub max_invalid_ratio: Option<f64>,
    /// Serve /metrics, /healthz and /readyz over HTTP on this address, e.g. 10.1.2.3:9877
    /// (the pod's or host's own address, not 0.0.0.0 on a public interface).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// --listen: connections served at once; more wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub listen_max_connections: u16,
    /// --listen: a connection that sends no complete request within this time (new, or idle
    /// after an answer) is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = interval)]
    pub listen_timeout: Duration,
    /// As `run --initial-sync`, for a tick that finds no ledger state for the connector.
    #[arg(long)]
    pub initial_sync: bool,
}

/// `ocapi backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// Start of the event-time window, inclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// End of the event-time window, exclusive like every `--to` (RFC 3339 or YYYY-MM-DD,
    /// UTC): `--from 2026-11-01 --to 2026-12-01` is November.
    #[arg(long, value_name = "TIME")]
    pub to: String,
    /// Exit 3 (completed, degraded) when more than this share of orders is invalid or rejected.
    #[arg(long, value_name = "RATIO", value_parser = ratio)]
    pub max_invalid_ratio: Option<f64>,
    /// Print the run's stats as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ocapi runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub last: i64,
    /// One JSON array on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ocapi reconcile`.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// First event-time day, inclusive (UTC; default: 62 days ago, Meta's limit for store
    /// events).
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// The day after the last, exclusive like every `--to` (UTC; default: tomorrow, so today
    /// counts): `--from 2026-11-01 --to 2026-12-01` is November.
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Group lines by event day or by store (`mapping.store_id`).
    #[arg(long, value_enum, default_value_t = GroupBy::Day)]
    pub by: GroupBy,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Add Meta's own count of `Purchase` events per UTC day (`GET /{dataset_id}/stats`) beside
    /// the ledger's sent orders (with `--by day`).
    #[arg(long)]
    pub meta: bool,
}

/// `ocapi report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// First event-time day, inclusive (UTC; default: 62 days ago, Meta's limit for store
    /// events).
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// The day after the last, exclusive like every `--to` (UTC; default: tomorrow, so today
    /// counts): `--from 2026-11-01 --to 2026-12-01` is November.
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
}

/// `ocapi explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The order (receipt) id.
    pub order_id: String,
}

/// `ocapi quality`.
#[derive(Debug, clap::Args)]
pub struct QualityArgs {
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Parses `watch --interval`: a duration of at least a second (`0s` would start runs back to
/// back, thousands a minute).
fn interval(text: &str) -> Result<Duration, String> {
    let interval = crate::config::parse_duration(text)?;
    if interval < Duration::from_secs(1) {
        return Err(format!(
            "{text:?} is shorter than a second; use e.g. \"30s\" or \"5m\""
        ));
    }
    Ok(interval)
}

/// Parses a ratio between 0 and 1.
fn ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{text:?} is not a ratio between 0 and 1, e.g. 0.05"
        )),
    }
}

/// `ocapi hash`.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// The user_data key (em, ph, fn, ln, ge, db, ct, st, zp, country, external_id) or the
    /// config's [mapping] name for it (email, phone, first_name, last_name, gender,
    /// date_of_birth, city, state, zip). With `--jsonl`, the field of lines that name none.
    #[arg(required_unless_present = "jsonl")]
    pub field: Option<String>,
    /// The raw value, as the source holds it; several values (a customer's two emails) are
    /// each normalized and hashed, and duplicates after normalization are sent once.
    #[arg(required_unless_present = "jsonl", conflicts_with = "jsonl", num_args = 1..)]
    pub value: Vec<String>,
    /// Batch mode: read one JSON object per line on stdin, `{"field": "ph", "value": "(55)
    /// 99555-1234", "country": "BR"}` (`field` else FIELD, `country` else the country as
    /// without `--jsonl`), and write one JSON object per line on stdout, in order:
    /// `{"outcome": "normalized", "normalized": "5555995551234", "sha256": "…"}`, or `outcome`
    /// `already_hashed`, `empty` or `dropped` (`normalized` and `sha256` null when nothing is
    /// sent). A line that is not such an object gets `{"error": "…"}`.
    #[arg(long)]
    pub jsonl: bool,
    /// The row's country (gives phone numbers their calling code); else the config's
    /// `defaults.country` when a config is found, as a run uses it.
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
}

/// `ocapi demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Demo transactions to create.
    #[arg(long, default_value_t = 3000)]
    pub rows: u32,
}

/// How lines are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The event time's UTC day.
    Day,
    /// `mapping.store_id` (the ledger's `store_id`); `-` when unmapped.
    Store,
}

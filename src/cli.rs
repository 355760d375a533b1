//! The command line: which file and which mode, never what to sync (that is the config's).

use std::path::PathBuf;

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
    /// Create or upgrade the ledger schema (idempotent).
    Migrate,
    /// Validate the config, the source columns, the ledger schema and the destination.
    Check,
    /// Run one sync pass.
    Run(RunArgs),
    /// Print a customer value normalized and hashed, to debug one customer's match.
    Hash(HashArgs),
    /// Serve a local stand-in for the Graph API's Conversions API endpoint.
    Sandbox(crate::sandbox::SandboxArgs),
    /// Load demo data into a local PostgreSQL and sync it through the local stand-in, twice.
    Demo(DemoArgs),
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
}

/// `ocapi hash`.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// The user_data key: em, ph, fn, ln, ge, db, ct, st, zp, country, external_id.
    pub field: String,
    /// The raw value, as the source holds it.
    pub value: String,
    /// The row's country (gives phone numbers their calling code).
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

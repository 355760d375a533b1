//! The subcommands, one file each, named after the command. Each turns the command line and the
//! config into calls of the library (`run`, `ledger`, `destination`) and renders what they return;
//! none writes SQL. [`dispatch`] runs one and returns the [`ExitStatus`] of the README's table.

pub mod backfill;
pub mod check;
mod check_behind;
mod check_changes;
mod check_env;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod explain;
pub mod hash;
pub mod init;
mod meta_side;
pub mod migrate;
mod observe;
pub mod progress;
pub mod quality;
pub mod reconcile;
pub mod reconcile_meta;
pub mod report;
pub mod run;
pub mod runs;
pub mod watch;

use chrono::NaiveDate;

use crate::cli::{Cli, Command};
use crate::config::{self, Config};
use crate::error::{Error, ExitStatus};
use crate::stats::{RunStats, RunStatus};

/// Days before `--to` where `reconcile` and `report` start by default: Meta takes store events
/// up to 62 days old (docs/meta-capi.md §2), so older days can no longer change.
pub(crate) const DEFAULT_WINDOW_DAYS: i64 = 62;

/// Runs the command `cli` names; `Ok` carries 0 or 3, an `Err` maps to 1 or 2 through
/// [`Error::exit_status`].
pub async fn dispatch(cli: &Cli) -> Result<ExitStatus, Error> {
    match &cli.command {
        Command::Init(args) => init::command(cli, args).await,
        Command::Migrate => migrate::command(&load_config(cli)?).await,
        Command::Check => check::command(&load_config(cli)?).await,
        Command::Run(args) => run::command(cli, &load_config(cli)?, args).await,
        Command::Watch(args) => watch::command(cli, &load_config(cli)?, args).await,
        Command::Backfill(args) => backfill::command(cli, &load_config(cli)?, args).await,
        Command::Runs(args) => runs::command(&load_config(cli)?, args).await,
        Command::Reconcile(args) => reconcile::command(&load_config(cli)?, args).await,
        Command::Report(args) => report::command(&load_config(cli)?, args).await,
        Command::Explain(args) => explain::command(&load_config(cli)?, args).await,
        Command::Quality(args) => quality::command(&load_config(cli)?, args).await,
        Command::Hash(args) => hash::command(cli, args),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => {
            crate::sandbox::run_cli((**args).clone()).await?;
            Ok(ExitStatus::Success)
        }
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => {
            demo::run(args.rows).await?;
            Ok(ExitStatus::Success)
        }
    }
}

/// Loads the config named by `--config`, `OCAPI_CONFIG` or the default path; its errors name the
/// file.
fn load_config(cli: &Cli) -> Result<Config, Error> {
    let path = config::resolve_path(cli.config.as_deref());
    Config::load(&path).map_err(|source| Error::ConfigFile { path, source })
}

/// The `[from, to)` days of `reconcile` and `report`: `--to` is exclusive like `backfill`'s
/// (default: tomorrow, so that today counts), `--from` inclusive (default: 62 days before
/// today).
///
/// # Errors
/// [`Error::Usage`] when `--to` is not after `--from`.
pub(crate) fn day_window(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(NaiveDate, NaiveDate), Error> {
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today + chrono::Duration::days(1);
    if let (Some(from), None) = (from, to) {
        if from >= tomorrow {
            return Err(Error::Usage(format!(
                "`--from` ({from}) is after today ({today}, UTC): nothing has happened there yet"
            )));
        }
    }
    let to = to.unwrap_or(tomorrow);
    let from = from.unwrap_or(to - chrono::Duration::days(DEFAULT_WINDOW_DAYS + 1));
    if to <= from {
        return Err(Error::Usage(format!(
            "`--to` ({to}) must be after `--from` ({from}): `--from` is inclusive, `--to` exclusive"
        )));
    }
    Ok((from, to))
}

/// Prints `value` as one JSON line on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    println!("{text}");
    Ok(())
}

/// A finished run's stats; a failed run's are empty but for its status and error.
fn finished(config: &Config, result: &Result<RunStats, Error>) -> RunStats {
    match result {
        Ok(stats) => stats.clone(),
        Err(error) => {
            let mut stats = RunStats::new(&config.connector.name);
            stats.status = RunStatus::Failed;
            stats.error = Some(crate::error::chain(error));
            // The version's gauge stays present when the run failed before reading Meta's side.
            if config.destination.kind == config::DestinationKind::Meta {
                stats.meta_life = Some(crate::destination::meta::life::MetaLife::of_version(
                    &config.destination.api_version,
                    chrono::Utc::now(),
                ));
            }
            stats
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! `ocapi run`: one sync pass, with a progress display on a terminal, the metrics file and the
//! chat alerts around it.

use super::observe::RunObserver;
use crate::alerts::Alerter;
use crate::cli::{Cli, RunArgs};
use crate::commands::progress::RunDisplay;
use crate::config::Config;
use crate::error::{Error, ExitStatus};
use crate::run::RunOptions;
use crate::stats::RunStatus;

/// Runs one pass and prints its stats (stdout; stderr for a dry run, whose stdout is the events).
pub(crate) async fn command(
    cli: &Cli,
    config: &Config,
    args: &RunArgs,
) -> Result<ExitStatus, Error> {
    let display = RunDisplay::new();
    let options = RunOptions {
        dry_run: args.dry_run,
        limit: args.limit,
        max_invalid_ratio: args.max_invalid_ratio,
        initial_sync: args.initial_sync,
        progress: Some(display.callback()),
        ..RunOptions::default()
    };
    let alerts = Alerter::from_config(&config.alerts)?;
    let mut observer = RunObserver::once(cli.metrics_file.clone(), alerts);
    if !args.dry_run {
        observer.recall(config).await;
    }
    let result = crate::run::run(config, options, super::shutdown_signal()).await;
    display.finish();
    // A skipped run (another holds the lock) leaves the metrics file to the run that holds it.
    let skipped = matches!(&result, Ok(stats) if stats.status == RunStatus::Skipped);
    if !args.dry_run && !skipped {
        observer
            .finished(config, &super::finished(config, &result))
            .await?;
    }
    let stats = result?;
    if args.dry_run {
        eprint!("{stats}");
    } else if args.json {
        super::print_json(&stats)?;
    } else {
        print!("{stats}");
    }
    Ok(ExitStatus::of_run(&stats))
}

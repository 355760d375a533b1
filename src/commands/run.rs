//! `ocapi run`: one sync pass, with a progress display on a terminal, the metrics file and the
//! chat alerts around it.

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
    let mut alerts = Alerter::from_config(&config.alerts)?;
    if let (Some(alerts), false) = (alerts.as_mut(), args.dry_run) {
        alerts.recall_previous_run(config).await;
    }
    let result = crate::run::run(config, options, super::shutdown_signal()).await;
    display.finish();
    // A skipped run (another holds the lock) leaves the metrics file to the run that holds it.
    let skipped = matches!(&result, Ok(stats) if stats.status == RunStatus::Skipped);
    if !args.dry_run && !skipped {
        super::record_metrics(cli.metrics_file.as_deref(), config, &result)?;
        if let Some(mut alerts) = alerts {
            let stats = super::finished(config, &result);
            alerts.observe(&stats).await;
            alerts.notify_once(config, &stats.meta_alerts).await;
        }
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

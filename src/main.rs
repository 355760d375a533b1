//! The `ocapi` binary: parse the command line, set up logging, call the library, map the
//! outcome to an exit code (0 completed, 1 failed, 2 configuration or usage, 3 degraded) and
//! print any error once, with its causes.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use ocapi::cli::{Cli, Command, LogFormat};
use ocapi::config::{self, Config};
use ocapi::metrics::{MetricsFile, Telemetry};
use ocapi::stats::{RunStats, RunStatus};

/// mimalloc instead of glibc's malloc: a run allocates a few small strings per field of every
/// row, and glibc's free-list upkeep (`malloc_consolidate`, `unlink_chunk`) was a third of the
/// connector's CPU in `perf` (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code of a run that completed but passed `--max-invalid-ratio`.
const EXIT_DEGRADED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let json = matches!(cli.log_format, LogFormat::Json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            // With `--log-format json` every stderr line is JSON, the final error included.
            if json {
                tracing::error!(error = %format!("{error:#}"), "command failed");
            } else {
                eprintln!("error: {error:#}");
            }
            let config_error = error
                .chain()
                .find_map(|e| e.downcast_ref::<ocapi::Error>())
                .is_some_and(ocapi::Error::is_config);
            ExitCode::from(if config_error { 2 } else { 1 })
        }
    }
}

/// Logs go to stderr (around `run`'s progress bar), so stdout carries only data (NDJSON, JSON
/// stats).
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OCAPI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ocapi::progress::Stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        // Colours only on a terminal: redirected logs stay plain text.
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// Loads the config named by the flag, `OCAPI_CONFIG` or the default path.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let path = config::resolve_path(cli.config.as_deref());
    Config::load(&path)
        .map_err(ocapi::Error::from)
        .with_context(|| format!("reading config {}", path.display()))
}

/// Runs the command.
async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Migrate => {
            let config = load_config(&cli)?;
            let applied = ocapi::commands::migrate(&config).await?;
            if applied.is_empty() {
                println!("ledger schema {:?} is up to date", config.ledger.schema);
            } else {
                println!(
                    "ledger schema {:?}: applied migrations {applied:?}",
                    config.ledger.schema
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let config = load_config(&cli)?;
            let report = ocapi::commands::check(&config).await;
            print!("{}", report.text);
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(report.exit_code)
            })
        }
        Command::Run(args) => {
            let config = load_config(&cli)?;
            let display = ocapi::progress::RunDisplay::new();
            let options = ocapi::run::RunOptions {
                dry_run: args.dry_run,
                limit: args.limit,
                max_invalid_ratio: args.max_invalid_ratio,
                progress: Some(display.callback()),
                ..ocapi::run::RunOptions::default()
            };
            let mut alerts =
                ocapi::alerts::Alerter::from_config(&config.alerts).map_err(ocapi::Error::from)?;
            if let (Some(alerts), false) = (alerts.as_mut(), args.dry_run) {
                alerts.recall_previous_run(&config).await;
            }
            let result = ocapi::run::run(&config, options, shutdown_signal()).await;
            display.finish();
            if !args.dry_run {
                record_metrics(&cli, &config, &result)?;
                if let Some(mut alerts) = alerts {
                    alerts.observe(&finished(&config, &result)).await;
                }
            }
            let stats = result?;
            if args.dry_run {
                eprint!("{stats}");
            } else if args.json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                print!("{stats}");
            }
            Ok(exit_for(&stats))
        }
        Command::Watch(args) => {
            let config = load_config(&cli)?;
            let telemetry = Arc::new(Telemetry::new(&config.connector.name));
            let health = Arc::new(ocapi::health::Health::new(args.interval));
            let alerts =
                ocapi::alerts::Alerter::from_config(&config.alerts).map_err(ocapi::Error::from)?;
            let options = ocapi::schedule::WatchOptions {
                interval: args.interval,
                run: ocapi::run::RunOptions {
                    max_invalid_ratio: args.max_invalid_ratio,
                    ..ocapi::run::RunOptions::default()
                },
                metrics: cli
                    .metrics_file
                    .clone()
                    .map(|path| MetricsFile::with_telemetry(path, Arc::clone(&telemetry))),
                telemetry: Some(Arc::clone(&telemetry)),
                health: Some(Arc::clone(&health)),
                alerts,
            };
            if let Some(addr) = args.listen {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--listen)"))?;
                tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
                let service = Arc::new(ocapi::listen::Service {
                    config: config.clone(),
                    telemetry,
                    health,
                });
                tokio::spawn(async move {
                    if let Err(error) =
                        ocapi::listen::serve(listener, service, shutdown_signal()).await
                    {
                        tracing::error!(error = %error, "the --listen server stopped");
                    }
                });
            }
            ocapi::schedule::watch(&config, options, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill(args) => {
            let config = load_config(&cli)?;
            let from = ocapi::backfill::parse_time(&args.from)?;
            let to = ocapi::backfill::parse_time(&args.to)?;
            let window = ocapi::backfill::window(from, to)?;
            let options = ocapi::run::RunOptions {
                max_invalid_ratio: args.max_invalid_ratio,
                ..ocapi::run::RunOptions::default()
            };
            let mut alerts =
                ocapi::alerts::Alerter::from_config(&config.alerts).map_err(ocapi::Error::from)?;
            if let Some(alerts) = alerts.as_mut() {
                alerts.recall_previous_run(&config).await;
            }
            let result =
                ocapi::backfill::backfill(&config, window, options, shutdown_signal()).await;
            record_metrics(&cli, &config, &result)?;
            if let Some(mut alerts) = alerts {
                alerts.observe(&finished(&config, &result)).await;
            }
            let stats = result?;
            if args.json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                print!("{stats}");
            }
            Ok(exit_for(&stats))
        }
        Command::Runs(args) => {
            let config = load_config(&cli)?;
            let runs = ocapi::history::recent(&config, args.last).await?;
            if args.json {
                println!("{}", serde_json::to_string(&runs)?);
            } else {
                print!("{}", ocapi::history::render(&runs));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile(args) => {
            let config = load_config(&cli)?;
            let today = chrono::Utc::now().date_naive();
            let to = args.to.unwrap_or(today);
            let from = args.from.unwrap_or(to - chrono::Duration::days(62));
            let report = ocapi::reconcile::reconcile(&config, from, to, args.by).await?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", ocapi::reconcile::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            let config = load_config(&cli)?;
            let to = args.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let from = args.from.unwrap_or(to - chrono::Duration::days(62));
            let data = ocapi::report::gather(&config, from, to).await?;
            let html = ocapi::report::render_html(&data);
            std::fs::write(&args.html, html)
                .with_context(|| format!("cannot write the report to {}", args.html.display()))?;
            eprintln!("wrote {}", args.html.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain(args) => {
            let config = load_config(&cli)?;
            print!(
                "{}",
                ocapi::explain::explain(&config, &args.order_id).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Quality(args) => {
            let config = load_config(&cli)?;
            let report = ocapi::quality::report(&config).await?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", ocapi::quality::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Hash(args) => {
            let country =
                ocapi::commands::hash_country(args.country.as_deref(), cli.config.as_deref())?;
            let text = ocapi::commands::hash(&args.field, &args.value, &country)?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox(args) => {
            ocapi::sandbox::run_cli(args.clone()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            ocapi::demo::run(args.rows).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// 3 for a degraded run, else 0.
fn exit_for(stats: &RunStats) -> ExitCode {
    if stats.status == RunStatus::Degraded {
        ExitCode::from(EXIT_DEGRADED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes `--metrics-file` for a finished run; a failed run is written as `failed`.
fn record_metrics(
    cli: &Cli,
    config: &Config,
    result: &Result<RunStats, ocapi::Error>,
) -> anyhow::Result<()> {
    let Some(path) = &cli.metrics_file else {
        return Ok(());
    };
    MetricsFile::new(path.clone(), &config.connector.name)
        .record(&finished(config, result))
        .map_err(ocapi::Error::from)
        .with_context(|| format!("writing metrics to {}", path.display()))
}

/// A finished run's stats; a failed run's are empty but for its status and error.
fn finished(config: &Config, result: &Result<RunStats, ocapi::Error>) -> RunStats {
    match result {
        Ok(stats) => stats.clone(),
        Err(error) => {
            let mut stats = RunStats::new(&config.connector.name);
            stats.status = RunStatus::Failed;
            stats.error = Some(ocapi::error::chain(error));
            stats
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

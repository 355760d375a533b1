//! The `ocapi` binary: parse the command line, set up logging, call the library, map the
//! outcome to an exit code (0 completed, 1 failed, 2 configuration or usage, 3 degraded) and
//! print any error once, with its causes.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use ocapi::cli::{Cli, Command, LogFormat};
use ocapi::config::{self, Config};
use ocapi::stats::RunStatus;

/// Exit code of a run that completed but passed `--max-invalid-ratio`.
const EXIT_DEGRADED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
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
            eprintln!("error: {error:#}");
            let config_error = error
                .chain()
                .find_map(|e| e.downcast_ref::<ocapi::Error>())
                .is_some_and(ocapi::Error::is_config);
            ExitCode::from(if config_error { 2 } else { 1 })
        }
    }
}

/// Logs go to stderr, so stdout carries only data (NDJSON, JSON stats).
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OCAPI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
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
            let options = ocapi::run::RunOptions {
                dry_run: args.dry_run,
                limit: args.limit,
                ..ocapi::run::RunOptions::default()
            };
            let stats = ocapi::run::run(&config, options, shutdown_signal()).await?;
            if args.dry_run {
                eprint!("{stats}");
            } else if args.json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                print!("{stats}");
            }
            Ok(if stats.status == RunStatus::Degraded {
                ExitCode::from(EXIT_DEGRADED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Hash(args) => {
            let text = ocapi::commands::hash(&args.field, &args.value, args.country.as_deref())?;
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

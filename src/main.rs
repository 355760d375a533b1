//! The `ocapi` binary: parse the command line, set up logging, run the command, and print any
//! error once with its causes. The exit code comes from [`ocapi::error::ExitStatus`].

use std::process::ExitCode;

use clap::Parser;
use ocapi::cli::{Cli, LogFormat};
use ocapi::error::ExitStatus;

/// mimalloc instead of glibc's malloc: a run allocates a few small strings per field of every
/// row, and glibc's free-list upkeep (`malloc_consolidate`, `unlink_chunk`) was a third of the
/// connector's CPU in `perf` (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    init_tracing(cli.log_format);
    let runtime = match runtime_builder(&cli.command).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitStatus::Failed.into();
        }
    };
    match runtime.block_on(ocapi::commands::dispatch(&cli)) {
        Ok(status) => status.into(),
        Err(error) => {
            let text = ocapi::error::chain(&error);
            // With `--log-format json` every stderr line is JSON, the final error included.
            match cli.log_format {
                LogFormat::Json => tracing::error!(error = %text, "command failed"),
                // The chain may quote the endpoint or the source: no raw control character.
                // toml's message alone spans lines (the file's line and a caret under the
                // column): its line breaks are kept, every line escaped.
                LogFormat::Text if is_toml_message(&error) => {
                    let lines: Vec<_> = text.lines().map(ocapi::escape::terminal).collect();
                    eprintln!("error: {}", lines.join("\n"));
                }
                LogFormat::Text => eprintln!("error: {}", ocapi::escape::terminal(&text)),
            }
            error.exit_status().into()
        }
    }
}

/// The async runtime a command runs on: one thread for every command but the stand-in.
///
/// A run is paced by the source database and the endpoint, not by its own CPU (a few µs per
/// row, against PostgreSQL's 15-25 µs serving the same run: docs/benchmarks.md), and its stages
/// (reader, sender, committer) hand pages, batches and outcomes to each other thousands of
/// times a run. On a runtime with a thread per core each hand-off to another thread woke a
/// sleeping one (a futex or eventfd write, an inter-processor interrupt on a virtual machine)
/// and freed memory on a thread other than the one that allocated it; on one thread a hand-off
/// is a queue push. A run on fully populated rows took 6-9% less CPU (a quarter less kernel
/// time, a fifth of the context switches), its wall time within the rounds' spread, and
/// `watch` answered `/healthz` as fast during a run (docs/benchmarks.md, "tenth pass").
/// Blocking work (pages read whole, DNS lookups) still goes to tokio's blocking threads. The
/// stand-in (`sandbox`) serves many clients at once and keeps a thread per core.
fn runtime_builder(command: &ocapi::cli::Command) -> tokio::runtime::Builder {
    match command {
        ocapi::cli::Command::Sandbox(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
}

/// Whether the error is the config file's TOML that did not parse (a message of several lines).
fn is_toml_message(error: &ocapi::error::Error) -> bool {
    matches!(
        error,
        ocapi::error::Error::ConfigFile {
            source: ocapi::config::ConfigError::Parse { .. },
            ..
        }
    )
}

/// A command line clap refused: `--help` and `--version` print and exit 0; a usage error exits
/// 2, as one JSON line when `--log-format json` was asked for (every stderr line is JSON then).
fn usage_error(error: &clap::Error) -> ExitCode {
    let json = {
        let args: Vec<String> = std::env::args().collect();
        args.windows(2)
            .any(|pair| pair[0] == "--log-format" && pair[1] == "json")
            || args.iter().any(|arg| arg == "--log-format=json")
    };
    if !error.use_stderr() || !json {
        error.exit();
    }
    init_tracing(LogFormat::Json);
    let text = error.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    tracing::error!(error = %first.trim_start_matches("error: "), usage = %text, "command failed");
    ExitStatus::Config.into()
}

/// Logs go to stderr (around `run`'s progress bar), so stdout carries only data (NDJSON, JSON
/// stats).
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OCAPI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ocapi::commands::progress::Stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        // Colours only on a terminal: redirected logs stay plain text.
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

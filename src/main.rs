//! The `tidings` binary: parses the command line, loads the config, calls into the library and maps results to
//! exit codes (0 success, 1 invalid content found by `check`, 2 config or runtime failure).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tidings::config::Config;

#[derive(Parser)]
#[command(
    name = "tidings",
    version,
    about = "Feeds and email digests from a blog's article store"
)]
struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "TIDINGS_CONFIG",
        default_value = "config.toml"
    )]
    config: PathBuf,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the store and write every feed.
    Build,
    /// Validate config and store; print every problem; exit 1 if there is any.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config =
        Config::load(&cli.config).with_context(|| format!("loading {}", cli.config.display()))?;
    let now = chrono::Local::now().fixed_offset();
    match cli.command {
        Command::Build => {
            let spinner = progress("reading articles and writing feeds");
            let report = tidings::app::build(&config, now)?;
            spinner.finish_and_clear();
            for e in &report.errors {
                eprintln!("{e}");
            }
            tracing::info!(
                published = report.published,
                feeds = report.feeds,
                written = report.written.len(),
                unchanged = report.unchanged,
                skipped = report.errors.len(),
                "build finished"
            );
            for path in &report.written {
                tracing::debug!(path = %path.display(), "wrote");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let problems = tidings::app::check(&config);
            for e in &problems {
                println!("{e}");
            }
            if problems.is_empty() {
                tracing::info!("no problems found");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{} problem(s) found", problems.len());
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// A spinner on a terminal; nothing in a pipe or under cron.
fn progress(message: &'static str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIDINGS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("tidings={level},{level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

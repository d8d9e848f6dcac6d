//! The `tidings` binary: parses the command line, loads the config, calls into the library and maps results to
//! exit codes (0 success, 1 invalid content found by `check`, 2 config or runtime failure).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
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
    /// Pretend it is this time (RFC 3339), for trying things and for tests: every command that depends on
    /// "now" (what is published, which tick is due) reads it from here instead of the clock.
    #[arg(long, global = true, value_parser = parse_time)]
    now: Option<DateTime<FixedOffset>>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the store and write every feed.
    Build,
    /// Validate config and store; print every problem; exit 1 if there is any.
    Check,
    /// One round of the service's work: build, then send every digest's latest tick that has no run yet.
    Run {
        /// Do one round and exit, for system cron. (Required: the long-running daemon with its own schedule
        /// and web server is not part of this release.)
        #[arg(long, required = true)]
        once: bool,
    },
    /// Print an article's related reading with the scores and the reasons behind them.
    Related {
        /// The article's slug (as in its URL and in related.json).
        slug: String,
    },
    /// Manage the subscriber list.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },
    /// Preview and send digest newsletters.
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config =
        Config::load(&cli.config).with_context(|| format!("loading {}", cli.config.display()))?;
    let now = cli
        .now
        .unwrap_or_else(|| chrono::Local::now().fixed_offset());
    match &cli.command {
        Command::Build => {
            let spinner = progress("reading articles and writing feeds");
            let report = tidings::app::build(&config, now)?;
            spinner.finish_and_clear();
            print_build(&report);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { once: _ } => {
            let spinner = progress("building feeds and sending digests");
            let round = tidings::app::run_once(&config, now, env_secret().as_deref()).await?;
            spinner.finish_and_clear();
            print_build(&round.build);
            // Print every digest's report before deciding the exit code.
            let sent: Vec<bool> = round.digests.iter().map(print_send).collect();
            let all_sent = sent.iter().all(|&ok| ok);
            Ok(if all_sent {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Related { slug } => {
            let report = tidings::app::related(&config, slug, now)?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Subscribers { command } => subscribers_command(&config, command, now).await,
        Command::Digest { command } => digest_command(&config, command, now).await,
        Command::Check => {
            let report = tidings::app::check(&config, now);
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            for problem in &report.problems {
                println!("{problem}");
            }
            if report.problems.is_empty() {
                tracing::info!("no problems found");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{} problem(s) found", report.problems.len());
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Reports a build: skipped articles on stderr, counts in the log.
fn print_build(report: &tidings::app::BuildReport) {
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
}

/// Reports a digest send: each written message on stdout, failures on stderr. Returns whether the run is closed
/// (false: deferred messages wait for the next send of this tick).
fn print_send(report: &tidings::app::SendReport) -> bool {
    if report.outcome == tidings::app::SendOutcome::Superseded {
        eprintln!(
            "digest \"{}\": a newer tick than {} already has a run; an older tick is never sent after it",
            report.digest,
            report.tick.to_rfc3339()
        );
    }
    if report.outcome == tidings::app::SendOutcome::AlreadySent {
        eprintln!(
            "digest \"{}\" was already sent for its tick {}; nothing sent again",
            report.digest,
            report.tick.to_rfc3339()
        );
    }
    for location in &report.sent {
        println!("{location}");
    }
    for (email, reply) in &report.deferred {
        eprintln!("{email}: deferred, retried on the next send of this tick: {reply}");
    }
    for (email, reply) in &report.failed {
        eprintln!("{email}: refused for good, not retried: {reply}");
    }
    tracing::info!(
        digest = %report.digest,
        tick = %report.tick.to_rfc3339(),
        outcome = ?report.outcome,
        sent = report.sent.len(),
        deferred = report.deferred.len(),
        failed = report.failed.len(),
        cancelled = report.cancelled,
        nothing_new = report.nothing_new,
        not_confirmed = report.not_confirmed,
        "digest send finished"
    );
    report.progress == tidings::state::RunProgress::Finished
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

#[derive(Subcommand)]
enum SubscribersCommand {
    /// Add (or update) a confirmed subscriber: for an owner importing people who already asked for the digest.
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// A digest they take (repeatable; default: every configured digest).
        #[arg(long = "digest", value_name = "NAME")]
        digests: Vec<String>,
        /// Only articles of this category (repeatable; default: all).
        #[arg(long = "category", value_name = "C")]
        categories: Vec<String>,
    },
    /// Import a CSV list (email,name,digests,categories[,subscribed_at]); bad rows are reported by line.
    Import { file: PathBuf },
    /// Print the subscribers.
    List {
        #[arg(long, value_name = "NAME")]
        digest: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: tidings::app::ListFormat,
    },
    /// Remove a subscriber and their delivery history.
    Remove { email: String },
}

#[derive(Subcommand)]
enum DigestCommand {
    /// Send the run for the latest tick of NAME's schedule at or before now (a tick is sent once).
    Send { name: String },
    /// Show what one subscriber would get at the next tick, and why; sends and records nothing.
    Preview {
        name: String,
        /// The subscriber (default: the first confirmed one of the digest).
        #[arg(long)]
        to: Option<String>,
        /// Write the whole message (.eml) here instead of printing its text part.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_time(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{e}; use RFC 3339 like 2026-11-30T08:00:00+01:00"))
}

/// The link-token secret, from the environment only.
fn env_secret() -> Option<String> {
    std::env::var("TIDINGS_SECRET").ok()
}

async fn subscribers_command(
    config: &Config,
    command: &SubscribersCommand,
    now: DateTime<FixedOffset>,
) -> anyhow::Result<ExitCode> {
    use tidings::app;
    match command {
        SubscribersCommand::Add {
            email,
            name,
            digests,
            categories,
        } => {
            let outcome =
                app::subscribers_add(config, email, name.as_deref(), digests, categories, now)
                    .await?;
            let what = match outcome {
                tidings::state::UpsertOutcome::Added => "added",
                tidings::state::UpsertOutcome::Updated => "updated",
                tidings::state::UpsertOutcome::Unchanged => "already subscribed, unchanged",
                tidings::state::UpsertOutcome::KeptUnsubscribed => {
                    "unsubscribed or bounced earlier; left as is"
                }
            };
            eprintln!("{email}: {what}");
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Import { file } => {
            let report = app::subscribers_import(config, file, now).await?;
            for problem in &report.problems {
                eprintln!("{problem}");
            }
            for email in &report.kept_unsubscribed {
                eprintln!("{email}: unsubscribed or bounced earlier; left as is");
            }
            eprintln!(
                "imported {}: {} added, {} updated, {} unchanged, {} kept unsubscribed, {} bad row(s)",
                file.display(),
                report.added,
                report.updated,
                report.unchanged,
                report.kept_unsubscribed.len(),
                report.problems.len()
            );
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SubscribersCommand::List { digest, format } => {
            print!(
                "{}",
                app::subscribers_list(config, digest.as_deref(), *format).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Remove { email } => {
            match app::subscribers_remove(config, email).await? {
                tidings::state::RemoveOutcome::Removed => eprintln!("{email}: removed"),
                tidings::state::RemoveOutcome::NotFound => eprintln!("{email}: not a subscriber"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn digest_command(
    config: &Config,
    command: &DigestCommand,
    now: DateTime<FixedOffset>,
) -> anyhow::Result<ExitCode> {
    use tidings::app;
    let secret = env_secret();
    match command {
        DigestCommand::Send { name } => {
            let report = app::digest_send(config, name, now, secret.as_deref()).await?;
            Ok(if print_send(&report) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        DigestCommand::Preview { name, to, out } => {
            let preview =
                app::digest_preview(config, name, to.as_deref(), now, secret.as_deref()).await?;
            print!("{}", preview.explanation);
            match (&preview.message, out) {
                (Some(message), Some(path)) => {
                    app::write_preview(path, message)?;
                    println!("  message:    {}", path.display());
                }
                (Some(_), None) => {
                    println!("\n{}", preview.text.as_deref().unwrap_or_default());
                }
                (None, _) => {}
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

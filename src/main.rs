//! The `tidings` binary: parses the command line, loads the config, calls into the library and maps results to
//! exit codes (0 success, 1 invalid content found by `check`, 2 config or runtime failure).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use clap::{Parser, Subcommand};
use tidings::app::{self, ListFormat, SendOptions, SendOutcome, SendReport};
use tidings::config::Config;
use tidings::delivery::MessageOutcome;
use tidings::domain::EmailAddress;
use tidings::state::{RemoveOutcome, Resubscribe, UpsertOutcome};

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
    /// Log lines as text, or as one JSON object each (for a log collector).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Pretend it is this time (RFC 3339), for trying things and for tests: every command that depends on
    /// "now" (what is published, which tick is due) reads it from here instead of the clock.
    #[arg(long, global = true, value_parser = parse_time)]
    now: Option<DateTime<FixedOffset>>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Read the store and write every feed.
    Build {
        /// Publish even if the store has under half the articles of the last build (removed on purpose).
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Validate config and store; print every problem; exit 1 if there is any.
    Check,
    /// The service: the web pages, and feed builds and digests on their schedules, until SIGTERM or Ctrl-C.
    /// With --once: one round (build, then every digest's latest tick that has no run yet) and exit, for cron.
    Run {
        /// Do one round and exit, for system cron.
        #[arg(long)]
        once: bool,
        /// Publish even if the store has under half the articles of the last build (removed on purpose).
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Serve the subscribe, confirm, unsubscribe and preferences pages, the feeds, /healthz and /metrics on
    /// [server] listen (TIDINGS_SERVER_LISTEN) until SIGTERM or Ctrl-C.
    Serve,
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
    /// The state database: migrate its schema, or move it to another backend (export, then import).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// Bring the schema of [state] database to this tidings' version (every command also does it on open).
    Migrate {
        /// Say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write everything the state holds (subscribers, suppressions, runs, deliveries, the link secret) as JSON.
    /// Stop every sender first: claims are not exported.
    Export {
        /// The file to write (created readable by its owner only); standard output when left out.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read an export into [state] database, which must be empty (all or nothing). To move SQLite to
    /// PostgreSQL: `tidings state export -o s.json`, then `TIDINGS_STATE_DATABASE=postgres://… tidings state
    /// import s.json`.
    Import { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet, cli.log_format);
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
    let clock = chrono::Local::now().fixed_offset();
    let now = cli.now.unwrap_or(clock);
    if cli
        .now
        .is_some_and(|at| at > clock + chrono::Duration::minutes(1))
        && cli.command.records()
    {
        eprintln!(
            "warning: --now {} is later than the clock ({}); what this records (runs, join times) stays in the \
             future, and a tick recorded now is never sent again when its time comes. Use --dry-run or \
             `digest preview` to try a future time.",
            now.to_rfc3339(),
            clock.to_rfc3339()
        );
    }
    let reporter = Reporter { quiet: cli.quiet };
    match &cli.command {
        Command::Build { allow_shrink } => {
            let spinner = progress("reading articles and writing feeds");
            let report = tidings::app::build(&config, now, shrink(*allow_shrink))?;
            spinner.finish_and_clear();
            print_build(&report);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            once: false,
            allow_shrink: _,
        } => daemon(config, now).await,
        Command::Run {
            once: true,
            allow_shrink,
        } => {
            let spinner = progress("building feeds and sending digests");
            let transport = tidings::app::transport(&config, mail_password().as_deref())?;
            let secret = env_secret();
            let options = SendOptions {
                secret: secret.as_deref(),
                dry_run: false,
                progress: &|email, outcome| {
                    spinner.tick();
                    reporter.sent_line(&spinner, email, outcome);
                },
                stop: None,
                wait_for_others: false,
            };
            let round = tidings::app::run_once(
                &config,
                now,
                shrink(*allow_shrink),
                &options,
                transport.as_ref(),
            )
            .await?;
            spinner.finish_and_clear();
            print_build(&round.build);
            // Print every digest's report before deciding the exit code.
            let sent: Vec<bool> = round.digests.iter().map(|r| reporter.send(r)).collect();
            let all_sent = sent.iter().all(|&ok| ok);
            Ok(if all_sent {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Serve => serve(config, cli.now).await,
        Command::Related { slug } => {
            let report = tidings::app::related(&config, slug, now)?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Subscribers { command } => {
            subscribers_command(&config, command, now, &reporter).await
        }
        Command::Digest { command } => digest_command(&config, command, now, &reporter).await,
        Command::State { command } => {
            let said = match command {
                StateCommand::Migrate { dry_run } => app::state_migrate(&config, *dry_run).await?,
                StateCommand::Export { output } => {
                    app::state_export(&config, output.as_deref()).await?
                }
                StateCommand::Import { file } => app::state_import(&config, file).await?,
            };
            if !cli.quiet {
                eprint!("{said}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let report = tidings::app::check(&config, now);
            if !cli.quiet {
                for note in &report.notes {
                    println!("{note}");
                }
            }
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

/// `serve`: the web side alone, until SIGTERM or Ctrl-C. Under `--now` every page acts at that instant.
async fn serve(config: Config, now: Option<DateTime<FixedOffset>>) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use tidings::web;
    let config = Arc::new(config);
    let state = app::open_state(&config).await?;
    let transport = Arc::from(app::transport(&config, mail_password().as_deref())?);
    let clock = match now {
        Some(at) => web::fixed_clock(at.to_utc()),
        None => web::system_clock(),
    };
    let metrics = Arc::new(tidings::metrics::Metrics::new());
    let secret = env_secret();
    let ctx = web::Context::new(
        Arc::clone(&config),
        state,
        transport,
        metrics,
        secret.as_deref(),
        clock,
    )
    .await?;
    let listener = web::bind(&config).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    web::serve(listener, ctx, stop_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// How long a stopping daemon waits for the messages in flight (each has `[mail] timeout_seconds` at most) before
/// it exits anyway (what was not recorded is sent again by the next run: the duplicates bound).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// `run`: the daemon until SIGTERM or Ctrl-C, then a graceful stop. It starts at `--now` when given (and its clock
/// runs on from there).
async fn daemon(config: Config, now: DateTime<FixedOffset>) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    let config = Arc::new(config);
    let transport = Arc::from(app::transport(&config, mail_password().as_deref())?);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    // A task of its own: a send blocks its thread for a while, and the signal must still be heard meanwhile.
    let mut daemon = tokio::spawn(app::daemon(
        app::Daemon {
            config,
            transport,
            secret: env_secret(),
            clock: tidings::schedule::Clock::starting_at(now),
        },
        shutdown,
    ));
    tokio::select! {
        result = &mut daemon => {
            result??;
            return Ok(ExitCode::SUCCESS);
        }
        () = stop_signal() => {}
    }
    tracing::info!("stopping: no new work; waiting for the messages in flight");
    let _ = stop.send(true);
    match tokio::time::timeout(STOP_GRACE, daemon).await {
        Ok(result) => result??,
        Err(_) => tracing::warn!(
            "stopped after waiting {STOP_GRACE:?}; messages still in flight are sent again by the next run"
        ),
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (systemd, docker stop) or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Reports a build: skipped articles on stderr, counts in the log; files that are no articles under `-v`.
fn print_build(report: &tidings::app::BuildReport) {
    for e in &report.errors {
        if e.is_error() {
            eprintln!("{e}");
        } else {
            tracing::debug!("{e}");
        }
    }
    tracing::info!(
        published = report.published,
        feeds = report.feeds,
        written = report.written.len(),
        unchanged = report.unchanged,
        skipped = report.left_out().count(),
        parsed = report.parsed,
        reused = report.reused,
        "build finished"
    );
    for path in &report.written {
        tracing::debug!(path = %path.display(), "wrote");
    }
}

/// Prints command results, quietly under `-q` when all went well (cron mails any output).
struct Reporter {
    quiet: bool,
}

impl Reporter {
    /// Where a sent message went (the outbox file, the server's reply), one line each, as it goes.
    fn sent_line(
        &self,
        bar: &indicatif::ProgressBar,
        email: &EmailAddress,
        outcome: &MessageOutcome,
    ) {
        if let MessageOutcome::Sent { reply } = outcome
            && !self.quiet
        {
            bar.suspend(|| println!("{reply}"));
            tracing::debug!(%email, "sent");
        }
    }

    /// Reports a digest send: each sent message on stdout, each one that was not on stderr, then the summary line.
    /// Returns whether the run is closed (false: deferred messages wait for the next send of this tick).
    fn send(&self, report: &SendReport) -> bool {
        let closed = report.is_complete();
        for (email, outcome) in &report.delivered.not_sent {
            match outcome {
                MessageOutcome::Sent { .. } | MessageOutcome::NotTried => {}
                MessageOutcome::Deferred { reply } => {
                    eprintln!(
                        "{email}: deferred, tried again on the next send of this tick: {reply}"
                    )
                }
                MessageOutcome::Failed { reply, bounced } => eprintln!(
                    "{email}: refused for good, not retried: {reply}{}",
                    if *bounced { "; now marked bounced" } else { "" }
                ),
                MessageOutcome::Cancelled { reason } if !self.quiet => {
                    eprintln!("{email}: not sent: {reason}")
                }
                MessageOutcome::Cancelled { .. } => {}
                MessageOutcome::Unprepared { error } => eprintln!("{email}: not sent: {error}"),
            }
        }
        if report.outcome == SendOutcome::DryRun {
            for (email, articles) in &report.would_send {
                println!("{email}: {}", articles.join(", "));
            }
        }
        if !(self.quiet && closed) {
            eprintln!("{}", report.summary());
        }
        closed
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

fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // -v and TIDINGS_LOG=debug are about tidings: a bare level leaves the libraries at warn (their debug output is
    // a parser's inner state, one line per HTML token). A full filter (`debug,tidings=trace`) is taken as written.
    let filter = std::env::var("TIDINGS_LOG")
        .ok()
        .and_then(|asked| {
            let asked = if asked.contains(['=', ',']) {
                asked
            } else {
                format!("tidings={asked},warn")
            };
            tracing_subscriber::EnvFilter::try_new(asked).ok()
        })
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::new(format!(
                "tidings={level},{}",
                if quiet { "error" } else { "warn" }
            ))
        });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
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
        /// Subscribe them again even if they unsubscribed, bounced or were forgotten (you have new consent).
        #[arg(long)]
        resubscribe: bool,
    },
    /// Import a CSV list (email,name,digests,categories[,subscribed_at]); bad rows are reported by line.
    /// Addresses that unsubscribed, bounced or were forgotten are left out unless --resubscribe.
    Import {
        file: PathBuf,
        /// Subscribe again the listed addresses that had left (you have new consent from each).
        #[arg(long)]
        resubscribe: bool,
    },
    /// Print the subscribers.
    List {
        #[arg(long, value_name = "NAME")]
        digest: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Unsubscribe an address; it is remembered, so no import or resumed run mails it again.
    Remove {
        email: String,
        /// Erase the person and their delivery history instead, keeping only a keyed hash of the address so
        /// that it is still never subscribed again (a data-erasure request).
        #[arg(long)]
        forget: bool,
    },
}

#[derive(Subcommand)]
enum DigestCommand {
    /// Send the run for the latest tick of NAME's schedule at or before now (a tick is sent once).
    Send {
        name: String,
        /// Plan and print who would get what; record and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what one subscriber would get from the next send, and why; sends and records nothing.
    Preview {
        name: String,
        /// The subscriber (default: the first confirmed one of the digest).
        #[arg(long)]
        to: Option<String>,
        /// Write the whole message (.eml) here instead of printing its text part.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the runs (of NAME) with how their deliveries stand.
    Runs {
        name: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
}

impl Command {
    /// Whether the command writes to the state database (so a future `--now` would be recorded).
    fn records(&self) -> bool {
        match self {
            Command::Run { .. } => true,
            Command::Digest { command } => {
                matches!(command, DigestCommand::Send { dry_run: false, .. })
            }
            Command::Subscribers { command } => !matches!(command, SubscribersCommand::List { .. }),
            Command::Serve => true,
            Command::Build { .. }
            | Command::State { .. }
            | Command::Check
            | Command::Related { .. } => false,
        }
    }
}

fn parse_time(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{e}; use RFC 3339 like 2026-11-30T08:00:00+01:00"))
}

/// The link-token secret, from the environment only.
fn env_secret() -> Option<String> {
    std::env::var("TIDINGS_SECRET").ok()
}

fn shrink(allow: bool) -> app::Shrink {
    if allow {
        app::Shrink::Allow
    } else {
        app::Shrink::Refuse
    }
}

/// The SMTP password, from the environment only.
fn mail_password() -> Option<String> {
    std::env::var("TIDINGS_MAIL_PASSWORD").ok()
}

async fn subscribers_command(
    config: &Config,
    command: &SubscribersCommand,
    now: DateTime<FixedOffset>,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let secret = env_secret();
    let secret = secret.as_deref();
    let resubscribe = |yes: bool| {
        if yes {
            Resubscribe::Yes
        } else {
            Resubscribe::Never
        }
    };
    match command {
        SubscribersCommand::Add {
            email,
            name,
            digests,
            categories,
            resubscribe: again,
        } => {
            let outcome = app::subscribers_add(
                config,
                email,
                name.as_deref(),
                digests,
                categories,
                now,
                secret,
                resubscribe(*again),
            )
            .await?;
            let what = match outcome {
                UpsertOutcome::Added => "added",
                UpsertOutcome::Updated => "updated",
                UpsertOutcome::Unchanged => "already subscribed, unchanged",
                UpsertOutcome::Resubscribed => "subscribed again",
                UpsertOutcome::KeptUnsubscribed => {
                    "unsubscribed or bounced earlier; left as is (--resubscribe with new consent)"
                }
                UpsertOutcome::Suppressed => {
                    "forgotten on request earlier; not added (--resubscribe with new consent)"
                }
            };
            eprintln!("{email}: {what}");
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Import {
            file,
            resubscribe: again,
        } => {
            let report =
                app::subscribers_import(config, file, now, secret, resubscribe(*again)).await?;
            for problem in &report.problems {
                eprintln!("{problem}");
            }
            for email in &report.kept_out {
                eprintln!("{email}: unsubscribed, bounced or forgotten earlier; left out");
            }
            if reporter.quiet && report.problems.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "imported {}: {} added, {} updated, {} unchanged, {} subscribed again, {} left out, {} bad row(s)",
                file.display(),
                report.added,
                report.updated,
                report.unchanged,
                report.resubscribed,
                report.kept_out.len(),
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
        SubscribersCommand::Remove { email, forget } => {
            let what = match app::subscribers_remove(config, email, *forget, now, secret).await? {
                RemoveOutcome::Unsubscribed => {
                    "unsubscribed; remembered so nothing mails them again"
                }
                RemoveOutcome::AlreadyLeft => "had already unsubscribed or bounced",
                RemoveOutcome::Forgotten => {
                    "erased; only a keyed hash of the address is kept so it is never subscribed again"
                }
                RemoveOutcome::NotFound => "not a subscriber",
            };
            eprintln!("{email}: {what}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn digest_command(
    config: &Config,
    command: &DigestCommand,
    now: DateTime<FixedOffset>,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let secret = env_secret();
    match command {
        DigestCommand::Send { name, dry_run } => {
            let transport = app::transport(config, mail_password().as_deref())?;
            let bar = progress("sending");
            let options = SendOptions {
                secret: secret.as_deref(),
                dry_run: *dry_run,
                progress: &|email, outcome| {
                    bar.inc(1);
                    reporter.sent_line(&bar, email, outcome);
                },
                stop: None,
                wait_for_others: false,
            };
            let report = app::digest_send(config, name, now, &options, transport.as_ref()).await?;
            bar.finish_and_clear();
            Ok(if reporter.send(&report) {
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
        DigestCommand::Runs { name, format } => {
            print!(
                "{}",
                app::digest_runs(config, name.as_deref(), *format).await?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

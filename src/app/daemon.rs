//! `tidings run`: the daemon. It serves the web side, builds the feeds at start and on `[schedule] build`, sends
//! each digest on its own schedule through the same ledger as `digest send`, and on the shutdown signal stops
//! starting work, lets the messages in flight finish and be recorded, and returns. When a job runs is the
//! `schedule` module's business; what each job does is wired here.
//!
//! At start, each digest's latest tick is looked at once (catch-up): sent if it was missed less than
//! `[schedule] catch_up` ago or its run was left open, recorded as skipped (with the reason) if older.
//!
//! Several daemons (replicas) can share one state (PostgreSQL): every replica runs each digest's ticks, and they
//! share the tick's run through the ledger (one plan, claims, the rate budget); the feed build is done by one
//! replica at a time, the holder of the build lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, FixedOffset};
use tokio::sync::watch;

use super::{NewsletterError, open_state};
use crate::config::Config;
use crate::mail::Transport;
use crate::metrics::{BuildStats, Metrics};
use crate::schedule::{self, CatchUp, Clock, Finished, Job, JobFuture, TickRun};
use crate::state::State;
use crate::web;

/// What the daemon needs besides its config: the transport, `TIDINGS_SECRET`, and the clock it starts on.
pub struct Daemon {
    pub config: Arc<Config>,
    pub transport: Arc<dyn Transport>,
    pub secret: Option<String>,
    pub clock: Clock,
}

/// Why the daemon could not start (once it runs, a failing job is logged and retried at its next tick).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Newsletter(#[from] NewsletterError),
    #[error(transparent)]
    Web(#[from] web::WebError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// Runs the daemon until `shutdown` turns true (see the module docs).
pub async fn daemon(d: Daemon, shutdown: watch::Receiver<bool>) -> Result<(), DaemonError> {
    let Daemon {
        config,
        transport,
        secret,
        clock,
    } = d;
    let state = open_state(&config).await?;
    let metrics = Arc::new(Metrics::new());
    let web_clock: web::Clock = Arc::new(move || clock.now().to_utc());
    let site = web::Context::new(
        Arc::clone(&config),
        Arc::clone(&state),
        Arc::clone(&transport),
        Arc::clone(&metrics),
        secret.as_deref(),
        web_clock,
    )
    .await?;
    let listener = web::bind(&config).await?;
    if let Ok(address) = listener.local_addr() {
        tracing::info!("listening on http://{address}");
    }
    let server = tokio::spawn(web::serve(
        listener,
        site.clone(),
        turned_true(shutdown.clone()),
    ));

    // Sends look at this flag between messages; it follows the shutdown signal.
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let stop = Arc::clone(&stop);
        let shutdown = shutdown.clone();
        async move {
            turned_true(shutdown).await;
            stop.store(true, Ordering::SeqCst);
        }
    });

    // One replica builds the feeds at a time: the holder of the build lease (see `lead_builds`).
    let leading = Arc::new(AtomicBool::new(false));
    let mut build = build_job(&config, &metrics, &site, &leading);
    let nudge = Arc::new(tokio::sync::Notify::new());
    build.nudge = Some(Arc::clone(&nudge));
    let leader = lead_builds(&state, &leading, &nudge, shutdown.clone()).await;
    // Kept for as long as the daemon runs: dropping it stops the watching.
    let _watching = if config.schedule.watch {
        watch_store(&config, &nudge)
    } else {
        None
    };
    report(
        &metrics,
        "build",
        clock.now(),
        (build.run)(clock.now()).await,
    );
    let mut jobs = vec![build];
    for digest in &config.digest {
        let job = digest_job(&config, &transport, secret.clone(), &stop, digest);
        catch_up(&config, state.as_ref(), &metrics, &job, &digest.name, clock).await;
        jobs.push(job);
    }
    let finished: Arc<dyn Fn(Finished) + Send + Sync> = {
        let metrics = Arc::clone(&metrics);
        Arc::new(move |f: Finished| {
            if f.ok {
                metrics.record_job_success(&f.job, f.at.to_utc());
            }
        })
    };
    if !*shutdown.borrow() {
        schedule::run_jobs(jobs, clock, config.timezone(), shutdown, finished).await;
    }
    // The build lease is given up before the process ends, so a standby takes over at once.
    if let Err(e) = leader.await {
        tracing::error!("the build lease task failed: {e}");
    }
    match server.await {
        Ok(result) => result?,
        Err(e) => tracing::error!("the web server task failed: {e}"),
    }
    Ok(())
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn turned_true(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

fn report(metrics: &Metrics, job: &str, at: DateTime<FixedOffset>, result: Result<String, String>) {
    match result {
        Ok(summary) => {
            tracing::info!(job, "{summary}");
            metrics.record_job_success(job, at.to_utc());
        }
        Err(error) => tracing::error!(job, "failed: {error}; tried again at its next tick"),
    }
}

/// Reads the store and publishes the feeds (a build with nothing changed writes nothing); the web side then
/// offers the store's categories as they are now.
fn build_job(
    config: &Arc<Config>,
    metrics: &Arc<Metrics>,
    site: &web::Context,
    leading: &Arc<AtomicBool>,
) -> Job {
    let config = Arc::clone(config);
    let metrics = Arc::clone(metrics);
    let site = site.clone();
    let leading = Arc::clone(leading);
    Job {
        name: "build".into(),
        schedule: config.schedule.build.clone(),
        run: Arc::new(move |now| -> JobFuture {
            let config = Arc::clone(&config);
            let metrics = Arc::clone(&metrics);
            let site = site.clone();
            let leading = leading.load(Ordering::SeqCst);
            Box::pin(async move {
                if !leading {
                    return Ok("left to the replica that holds the build lease".into());
                }
                let built = tokio::task::spawn_blocking(move || {
                    let report = super::build(&config, now, super::Shrink::Refuse);
                    if matches!(&report, Ok(r) if !r.written.is_empty()) {
                        site.set_categories(&crate::store::load(&config).0);
                    }
                    (report, crate::metrics::output_bytes(&config.feeds.output))
                })
                .await
                .map_err(|e| format!("the build task failed: {e}"))?;
                match built {
                    (Ok(report), feed_bytes) => {
                        for e in &report.errors {
                            if e.is_error() {
                                tracing::warn!("{e}");
                            } else {
                                tracing::debug!("{e}");
                            }
                        }
                        metrics.record_build(BuildStats {
                            articles: report.published,
                            feed_bytes,
                        });
                        Ok(format!(
                            "built: {} articles, {} files written, {} unchanged, {} article(s) left out",
                            report.published,
                            report.written.len(),
                            report.unchanged,
                            report.left_out().count()
                        ))
                    }
                    (Err(e), _) => {
                        metrics.record_build_failure();
                        Err(e.to_string())
                    }
                }
            })
        }),
        nudge: None,
    }
}

/// The build lease: how long it holds without being renewed, and how often its holder renews it.
const BUILD_LEASE: std::time::Duration = std::time::Duration::from_secs(60);
const BUILD_LEASE_RENEWAL: std::time::Duration = std::time::Duration::from_secs(20);

/// Takes the build lease if it is free (returning once the first try is made, so the first build knows whether
/// it is this replica's), then keeps it, or keeps trying for it, in the background: `leading` says whether this
/// replica holds it. Several replicas on one state thus build the feeds one at a time, and a standby takes over
/// within a minute when the builder dies (at once when it stops: it gives the lease up), building right away.
/// Leases use the real clock, as claims do: they are about live processes.
async fn lead_builds(
    state: &Arc<dyn State>,
    leading: &Arc<AtomicBool>,
    nudge: &Arc<tokio::sync::Notify>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let owner = crate::delivery::Owner::this_process();
    let hold = {
        let (state, owner) = (Arc::clone(state), owner.clone());
        move || {
            let (state, owner) = (Arc::clone(&state), owner.clone());
            async move {
                let now = chrono::Utc::now();
                let until = now + chrono::Duration::from_std(BUILD_LEASE).expect("a minute");
                match state.hold_lease("build", owner.as_str(), now, until).await {
                    Ok(held) => held,
                    Err(e) => {
                        tracing::error!(
                            "cannot renew the build lease ({e}); not building until it can"
                        );
                        false
                    }
                }
            }
        }
    };
    leading.store(hold().await, Ordering::SeqCst);
    let (state, leading, nudge) = (Arc::clone(state), Arc::clone(leading), Arc::clone(nudge));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(BUILD_LEASE_RENEWAL) => {}
                _ = turned_true(shutdown.clone()) => break,
            }
            let held = hold().await;
            if held && !leading.swap(true, Ordering::SeqCst) {
                tracing::info!("this replica holds the build lease now: it builds the feeds");
                nudge.notify_one();
            } else if !held && leading.swap(false, Ordering::SeqCst) {
                tracing::warn!("another replica holds the build lease now");
            }
        }
        if leading.load(Ordering::SeqCst)
            && let Err(e) = state.release_lease("build", owner.as_str()).await
        {
            tracing::warn!(
                "cannot give up the build lease ({e}); another replica takes it when it ends"
            );
        }
    })
}

/// Watches the article store and nudges the build when it changes (`[schedule] watch`); a burst of saves makes
/// one nudge, two seconds after the last. A store that cannot be watched is logged; the schedule still builds.
fn watch_store(
    config: &Config,
    nudge: &Arc<tokio::sync::Notify>,
) -> Option<notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>> {
    use notify_debouncer_mini::notify::RecursiveMode;
    let nudge = Arc::clone(nudge);
    let heard = move |events: notify_debouncer_mini::DebounceEventResult| {
        if matches!(&events, Ok(events) if !events.is_empty()) {
            nudge.notify_one();
        }
    };
    let store = &config.site.articles;
    let watched = notify_debouncer_mini::new_debouncer(std::time::Duration::from_secs(2), heard)
        .and_then(|mut debouncer| {
            debouncer
                .watcher()
                .watch(store, RecursiveMode::Recursive)
                .map(|()| debouncer)
        });
    match watched {
        Ok(debouncer) => {
            tracing::info!(store = %store.display(), "rebuilding when the store changes");
            Some(debouncer)
        }
        Err(e) => {
            tracing::error!(store = %store.display(), "cannot watch the store ({e}); rebuilding on the schedule only");
            None
        }
    }
}

/// Sends the digest's latest tick at or before the time it runs (planning it, or resuming its run).
fn digest_job(
    config: &Arc<Config>,
    transport: &Arc<dyn Transport>,
    secret: Option<String>,
    stop: &Arc<AtomicBool>,
    digest: &crate::config::DigestConfig,
) -> Job {
    let (config, transport, stop, name) = (
        Arc::clone(config),
        Arc::clone(transport),
        Arc::clone(stop),
        digest.name.clone(),
    );
    Job {
        name: format!("digest:{name}"),
        schedule: digest.schedule.clone(),
        run: Arc::new(move |now| -> JobFuture {
            let (config, transport, stop, name, secret) = (
                Arc::clone(&config),
                Arc::clone(&transport),
                Arc::clone(&stop),
                name.clone(),
                secret.clone(),
            );
            Box::pin(async move {
                let options = super::SendOptions {
                    secret: secret.as_deref(),
                    dry_run: false,
                    progress: &|_, _| {},
                    stop: Some(&stop),
                    wait_for_others: true,
                };
                let report = super::digest_send(&config, &name, now, &options, transport.as_ref())
                    .await
                    .map_err(|e| e.to_string())?;
                for (email, outcome) in &report.delivered.not_sent {
                    tracing::warn!(%email, ?outcome, "not sent");
                }
                if report.is_complete() || stop.load(Ordering::SeqCst) {
                    Ok(report.summary())
                } else {
                    Err(report.summary())
                }
            })
        }),
        nudge: None,
    }
}

/// The start-up look at one digest's latest tick (see [`schedule::catch_up`]).
async fn catch_up(
    config: &Config,
    state: &dyn State,
    metrics: &Metrics,
    job: &Job,
    digest: &str,
    clock: Clock,
) {
    let now = clock.now();
    let decided = async {
        let tick = job.schedule.latest_at_or_before(now, config.timezone());
        let Some(at) = tick else {
            return Ok::<_, NewsletterError>(CatchUp::Nothing);
        };
        let run = match state.run(digest, at.to_utc()).await? {
            None => TickRun::None,
            Some(run) if run.finished.is_some() => TickRun::Finished,
            Some(_) => TickRun::Open,
        };
        let superseded = state
            .latest_tick(digest)
            .await?
            .is_some_and(|latest| latest > at.to_utc());
        let decision = schedule::catch_up(tick, run, superseded, now, config.schedule.catch_up);
        if let CatchUp::Skip { reason } = &decision {
            state
                .skip_run(digest, at.to_utc(), now.to_utc(), reason)
                .await?;
            tracing::warn!(job = %job.name, tick = %at.to_rfc3339(), "skipped: {reason}");
        }
        Ok(decision)
    };
    match decided.await {
        Ok(CatchUp::Send) => {
            tracing::info!(job = %job.name, "catching up a tick missed while tidings was not running");
            report(metrics, &job.name, now, (job.run)(now).await);
        }
        Ok(_) => {}
        Err(e) => tracing::error!(job = %job.name, "catch-up failed: {e}"),
    }
}

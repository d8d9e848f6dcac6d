//! The daemon's timetable: each job (a feed build, a digest) runs at every tick of its cron schedule, one run at a
//! time, until shutdown. What a job does is the caller's (the app wires builds and sends in); this module knows
//! only when, so it is tested on tokio's paused clock with jobs that count their calls.
//!
//! - **One run at a time per job.** A job's next tick is looked for only after its run ends, so a slow send is
//!   never overlapped by the next one; ticks that passed meanwhile are coalesced into one run, right away (a
//!   digest's run carries everything since the subscriber's last digest, so nothing is lost by coalescing).
//! - **A failing run is logged and retried at the job's next tick**, never ending the daemon.
//! - **Catch-up** ([`catch_up`]): at start, a digest tick missed while the daemon was down is sent once if it is
//!   younger than `[schedule] catch_up`; an older one is recorded as skipped with the reason, and its articles go
//!   out in the next digest.
//! - **Shutdown**: when the shutdown signal comes, no job starts again; a run in progress is told through its own
//!   stop flag (the delivery worker lets in-flight messages finish and records them) and awaited.
//!
//! The [`Clock`] starts at the real time or at `--now` and advances with tokio's clock, so tests can start the
//! daemon at a chosen moment and, in unit tests, move time without waiting.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use tokio::sync::watch;

use crate::digest::Schedule;

/// The daemon's idea of now: a starting time that advances with tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: DateTime<FixedOffset>,
    started: tokio::time::Instant,
}

impl Clock {
    pub fn starting_at(origin: DateTime<FixedOffset>) -> Clock {
        Clock {
            origin,
            started: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<FixedOffset> {
        let elapsed =
            chrono::Duration::from_std(self.started.elapsed()).unwrap_or(chrono::Duration::zero());
        self.origin + elapsed
    }
}

/// What a job's run gives: a line for the log, or why it failed.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// A job: its name (in logs and metrics), its schedule, and what it does at a tick (given the time it runs).
#[derive(Clone)]
pub struct Job {
    pub name: String,
    pub schedule: Schedule,
    pub run: Arc<dyn Fn(DateTime<FixedOffset>) -> JobFuture + Send + Sync>,
    /// Runs it now, between ticks (the store changed on disk); still one run at a time.
    pub nudge: Option<Arc<tokio::sync::Notify>>,
}

/// A job's run that ended, for whoever keeps count (metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub job: String,
    pub at: DateTime<FixedOffset>,
    pub ok: bool,
}

/// Runs every job at its ticks (in `tz`) until `shutdown` turns true, then waits for the runs in progress.
/// `finished` hears of every run.
pub async fn run_jobs(
    jobs: Vec<Job>,
    clock: Clock,
    tz: Tz,
    shutdown: watch::Receiver<bool>,
    finished: Arc<dyn Fn(Finished) + Send + Sync>,
) {
    let mut loops = tokio::task::JoinSet::new();
    for job in jobs {
        let shutdown = shutdown.clone();
        let finished = Arc::clone(&finished);
        loops.spawn(job_loop(job, clock, tz, shutdown, finished));
    }
    while loops.join_next().await.is_some() {}
}

async fn job_loop(
    job: Job,
    clock: Clock,
    tz: Tz,
    mut shutdown: watch::Receiver<bool>,
    finished: Arc<dyn Fn(Finished) + Send + Sync>,
) {
    let mut after = clock.now();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let Some(next) = job.schedule.next_after(after, tz) else {
            tracing::info!(job = %job.name, "the schedule has no more ticks");
            return;
        };
        let wait = (next - clock.now()).to_std().unwrap_or(Duration::ZERO);
        let nudged = async {
            match &job.nudge {
                Some(nudge) => nudge.notified().await,
                None => std::future::pending().await,
            }
        };
        let ticked = tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = nudged => false,
            _ = shutdown.changed() => return,
        };
        let at = clock.now();
        let result = (job.run)(at).await;
        match &result {
            Ok(summary) => tracing::info!(job = %job.name, "{summary}"),
            Err(error) => tracing::error!(
                job = %job.name,
                "failed: {error}; tried again at its next tick"
            ),
        }
        finished(Finished {
            job: job.name.clone(),
            at,
            ok: result.is_ok(),
        });
        // Ticks that passed during the run are coalesced into one, due at once: the next is after its start (and
        // after the tick it ran for, whatever the timer's rounding). A nudged run leaves the next tick as it was.
        after = if ticked { at.max(next) } else { at };
    }
}

/// What to do at start about a digest's latest tick at or before now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchUp {
    /// Send it now (it was missed recently, or its run was left open).
    Send,
    /// Record it as skipped, with why.
    Skip { reason: String },
    /// It has a finished run, or the schedule has not fired yet.
    Nothing,
}

/// Where a tick's run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickRun {
    None,
    /// Begun but with messages still to send (a crash, deferred messages): resumed whatever its age.
    Open,
    Finished,
}

/// The catch-up decision for a digest whose latest tick is `tick` (see the module docs). A tick that has no run
/// but is older than the newest tick with one (`superseded`) is left alone: that newer run carried its articles.
pub fn catch_up(
    tick: Option<DateTime<FixedOffset>>,
    run: TickRun,
    superseded: bool,
    now: DateTime<FixedOffset>,
    limit: Duration,
) -> CatchUp {
    let Some(tick) = tick else {
        return CatchUp::Nothing;
    };
    match run {
        TickRun::Finished => CatchUp::Nothing,
        TickRun::Open => CatchUp::Send,
        TickRun::None if superseded => CatchUp::Nothing,
        TickRun::None => {
            let missed_by = (now - tick).to_std().unwrap_or(Duration::ZERO);
            if missed_by <= limit {
                CatchUp::Send
            } else {
                CatchUp::Skip {
                    reason: format!(
                        "missed by {} while tidings was not running, more than [schedule] catch_up ({}); its \
                         articles go out with the next digest",
                        humantime::format_duration(Duration::from_secs(missed_by.as_secs())),
                        humantime::format_duration(limit)
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

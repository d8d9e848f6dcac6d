use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

const START: &str = "2026-11-30T08:00:00+00:00";

/// A job every ten seconds that notes when it ran, takes `takes` (tokio time), and fails when `fails` says.
fn job(
    runs: &Arc<Mutex<Vec<DateTime<FixedOffset>>>>,
    takes: Duration,
    fails: impl Fn(usize) -> bool + Send + Sync + 'static,
    running: &Arc<AtomicUsize>,
    most: &Arc<AtomicUsize>,
) -> Job {
    let runs = Arc::clone(runs);
    let running = Arc::clone(running);
    let most = Arc::clone(most);
    let fails = Arc::new(fails);
    Job {
        name: "every-ten".into(),
        schedule: Schedule::parse("*/10 * * * * *").unwrap(),
        run: Arc::new(move |now| {
            let runs = Arc::clone(&runs);
            let running = Arc::clone(&running);
            let most = Arc::clone(&most);
            let fails = Arc::clone(&fails);
            Box::pin(async move {
                let n = {
                    let mut runs = runs.lock().unwrap();
                    runs.push(now);
                    runs.len()
                };
                let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now_running, Ordering::SeqCst);
                tokio::time::sleep(takes).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if fails(n) {
                    Err("the store is missing".into())
                } else {
                    Ok("done".into())
                }
            })
        }),
        nudge: None,
    }
}

struct World {
    runs: Arc<Mutex<Vec<DateTime<FixedOffset>>>>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    finished: Arc<Mutex<Vec<Finished>>>,
    stop: watch::Sender<bool>,
    daemon: tokio::task::JoinHandle<()>,
}

fn start(takes: Duration, fails: impl Fn(usize) -> bool + Send + Sync + 'static) -> World {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Mutex::new(Vec::new()));
    let (stop, shutdown) = watch::channel(false);
    let job = job(&runs, takes, fails, &running, &most);
    let heard = Arc::clone(&finished);
    let daemon = tokio::spawn(run_jobs(
        vec![job],
        Clock::starting_at(at(START)),
        Tz::UTC,
        shutdown,
        Arc::new(move |f| heard.lock().unwrap().push(f)),
    ));
    World {
        runs,
        running,
        most,
        finished,
        stop,
        daemon,
    }
}

fn seconds_after_start(runs: &Mutex<Vec<DateTime<FixedOffset>>>) -> Vec<i64> {
    runs.lock()
        .unwrap()
        .iter()
        .map(|t| (*t - at(START)).num_seconds())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_job_runs_at_each_tick_of_its_schedule() {
    let w = start(Duration::from_secs(1), |_| false);
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(seconds_after_start(&w.runs), [10, 20, 30]);
    w.stop.send(true).unwrap();
    w.daemon.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_slow_run_is_never_overlapped_and_the_ticks_it_spans_are_coalesced() {
    let w = start(Duration::from_secs(25), |_| false);
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(w.most.load(Ordering::SeqCst), 1, "never two at once");
    // 10 → 35; 20 and 30 passed meanwhile: one run for both at once, 35 → 60; and so on.
    assert_eq!(seconds_after_start(&w.runs), [10, 35, 60, 85]);
    w.stop.send(true).unwrap();
    w.daemon.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_nudge_runs_the_job_between_ticks_and_the_schedule_goes_on() {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let nudge = Arc::new(tokio::sync::Notify::new());
    let job = Job {
        nudge: Some(Arc::clone(&nudge)),
        ..job(&runs, Duration::from_secs(1), |_| false, &running, &most)
    };
    let (stop, shutdown) = watch::channel(false);
    let daemon = tokio::spawn(run_jobs(
        vec![job],
        Clock::starting_at(at(START)),
        Tz::UTC,
        shutdown,
        Arc::new(|_| {}),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    nudge.notify_one();
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(seconds_after_start(&runs), [3, 10]);
    stop.send(true).unwrap();
    daemon.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failing_run_is_retried_at_the_next_tick() {
    let w = start(Duration::from_secs(1), |n| n == 1);
    tokio::time::sleep(Duration::from_secs(25)).await;
    let finished = w.finished.lock().unwrap().clone();
    assert_eq!(
        finished.iter().map(|f| f.ok).collect::<Vec<_>>(),
        [false, true],
        "{finished:?}"
    );
    w.stop.send(true).unwrap();
    w.daemon.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_run_in_progress_and_starts_no_other() {
    let w = start(Duration::from_secs(8), |_| false);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        w.running.load(Ordering::SeqCst),
        1,
        "the run of 10 s is going"
    );
    w.stop.send(true).unwrap();
    w.daemon.await.unwrap();
    assert_eq!(w.running.load(Ordering::SeqCst), 0, "it was awaited");
    assert_eq!(
        w.finished.lock().unwrap().len(),
        1,
        "and it was the only one"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(seconds_after_start(&w.runs), [10]);
}

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn a_tick_missed_recently_is_sent_at_start() {
    let tick = at("2026-11-30T08:00:00+01:00");
    let now = at("2026-11-30T20:00:00+01:00");
    assert_eq!(
        catch_up(Some(tick), TickRun::None, false, now, DAY),
        CatchUp::Send
    );
}

#[test]
fn a_tick_missed_longer_than_catch_up_is_skipped_with_the_reason() {
    let tick = at("2026-11-30T08:00:00+01:00");
    let now = at("2026-12-02T09:30:00+01:00");
    let CatchUp::Skip { reason } = catch_up(Some(tick), TickRun::None, false, now, DAY) else {
        panic!("skipped")
    };
    assert!(reason.contains("missed by 2days 1h 30m"), "{reason}");
    assert!(reason.contains("catch_up (1day)"), "{reason}");
}

#[test]
fn an_open_run_is_resumed_whatever_its_age_and_a_finished_one_left_alone() {
    let tick = at("2026-11-01T08:00:00+01:00");
    let now = at("2026-12-02T09:30:00+01:00");
    assert_eq!(
        catch_up(Some(tick), TickRun::Open, false, now, DAY),
        CatchUp::Send
    );
    assert_eq!(
        catch_up(Some(tick), TickRun::Finished, false, now, DAY),
        CatchUp::Nothing
    );
    assert_eq!(
        catch_up(Some(tick), TickRun::None, true, now, DAY),
        CatchUp::Nothing,
        "a newer run carried it"
    );
    assert_eq!(
        catch_up(None, TickRun::None, false, now, DAY),
        CatchUp::Nothing
    );
}

//! The worker against a real (in-memory SQLite) ledger and a scripted transport: each outcome the transport can
//! give, two workers on one run, and a sender that died holding claims.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::TimeZone;

use super::*;
use crate::domain::{DeliveryStatus, NewSubscriber, SuppressionKey};
use crate::state::{NewDelivery, Resubscribe, SqliteState};

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 8, 0, 0).unwrap()
}

fn settings() -> DeliverySettings {
    DeliverySettings {
        concurrency: 3,
        max_attempts: 3,
        backoff: Duration::ZERO,
        bounce_threshold: 1,
        rate_per_second: None,
        lease: Duration::from_secs(600),
        wait_for_others: false,
    }
}

/// A transport that answers from a script per address (then accepts), and logs every attempt.
#[derive(Default)]
struct Scripted {
    script: Mutex<std::collections::HashMap<String, VecDeque<DeliveryOutcome>>>,
    attempts: Mutex<Vec<String>>,
}

impl Scripted {
    fn answer(self, email: &str, outcomes: &[DeliveryOutcome]) -> Scripted {
        self.script
            .lock()
            .unwrap()
            .insert(email.into(), outcomes.iter().cloned().collect());
        self
    }

    fn attempts(&self) -> Vec<String> {
        let mut a = self.attempts.lock().unwrap().clone();
        a.sort();
        a
    }
}

#[async_trait::async_trait]
impl Transport for Scripted {
    async fn send(&self, message: &Message, _message_id: &str) -> DeliveryOutcome {
        let to = message.envelope().to()[0].to_string();
        self.attempts.lock().unwrap().push(to.clone());
        let scripted = self
            .script
            .lock()
            .unwrap()
            .get_mut(&to)
            .and_then(|q| q.pop_front());
        scripted.unwrap_or(DeliveryOutcome::Sent {
            reply: "250 ok".into(),
        })
    }
}

/// Makes a minimal message for each delivery; cancels deliveries to anyone who left.
struct Plain;

impl MessageSource for Plain {
    fn prepare(&self, claimed: &Claimed) -> Result<Prepared, String> {
        if !claimed.subscriber.wants("weekly") {
            return Ok(Prepared::Cancel("left".into()));
        }
        let message = Message::builder()
            .from("news@example.com".parse().unwrap())
            .to(claimed.delivery.email.as_str().parse().unwrap())
            .subject("digest")
            .body(String::from("hello"))
            .map_err(|e| e.to_string())?;
        Ok(Prepared::Message(message))
    }
}

async fn world(n: usize) -> (Arc<dyn State>, RunId) {
    let state: Arc<dyn State> = Arc::new(SqliteState::in_memory().unwrap());
    let mut planned = Vec::new();
    for i in 0..n {
        let email = EmailAddress::parse(&format!("s{i:02}@example.com")).unwrap();
        let new = NewSubscriber {
            email: email.clone(),
            name: String::new(),
            digests: vec!["weekly".into()],
            categories: Vec::new(),
            subscribed_at: t(1),
            changed_at: t(1),
        };
        state
            .upsert_subscriber(&new, &SuppressionKey(email.to_string()), Resubscribe::Never)
            .await
            .unwrap();
        planned.push(NewDelivery {
            email,
            message_id: format!("<m{i}@example.com>"),
            articles: vec!["x".into()],
            related: Vec::new(),
            over_limit: 0,
            window_after: t(1),
        });
    }
    let run = state
        .plan_run("weekly", t(9), t(9), &planned)
        .await
        .unwrap();
    (state, run)
}

async fn send(state: &Arc<dyn State>, run: RunId, transport: &dyn Transport) -> DeliveryReport {
    send_until(state, run, transport, &AtomicBool::new(false)).await
}

async fn send_until(
    state: &Arc<dyn State>,
    run: RunId,
    transport: &dyn Transport,
    shutdown: &AtomicBool,
) -> DeliveryReport {
    send_with(state, run, transport, shutdown, &settings()).await
}

async fn send_with(
    state: &Arc<dyn State>,
    run: RunId,
    transport: &dyn Transport,
    shutdown: &AtomicBool,
    settings: &DeliverySettings,
) -> DeliveryReport {
    deliver(
        state.as_ref(),
        transport,
        &Plain,
        run,
        settings,
        t(9),
        &|_, _| {},
        shutdown,
    )
    .await
    .unwrap()
}

/// Accepts everything, and asks the process to stop when the `after`th message is handed over.
struct StopsAfter<'a> {
    after: usize,
    handed: std::sync::atomic::AtomicUsize,
    shutdown: &'a AtomicBool,
}

#[async_trait::async_trait]
impl Transport for StopsAfter<'_> {
    async fn send(&self, _message: &Message, _message_id: &str) -> DeliveryOutcome {
        if self.handed.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.shutdown.store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        DeliveryOutcome::Sent {
            reply: "250 ok".into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_lets_the_messages_in_flight_finish_and_starts_no_other() {
    let (state, run) = world(200).await;
    let shutdown = AtomicBool::new(false);
    let transport = StopsAfter {
        after: 20,
        handed: Default::default(),
        shutdown: &shutdown,
    };
    let report = send_until(&state, run, &transport, &shutdown).await;
    let handed = transport.handed.load(Ordering::SeqCst);
    assert!(
        (20..20 + settings().in_flight()).contains(&handed),
        "{handed} handed over: those in flight at the stop, no more"
    );
    assert_eq!(
        report.sent, handed,
        "every message handed over was recorded"
    );
    let open = statuses(&state, run)
        .await
        .iter()
        .filter(|(s, _)| *s == DeliveryStatus::Pending)
        .count();
    assert_eq!(
        open,
        200 - handed,
        "the rest wait, untried, for the next send"
    );
    assert_eq!(
        state.claimants(run, Utc::now()).await.unwrap(),
        Vec::<String>::new(),
        "and nobody holds them"
    );
}

async fn statuses(state: &Arc<dyn State>, run: RunId) -> Vec<(DeliveryStatus, u32)> {
    state
        .deliveries(run)
        .await
        .unwrap()
        .iter()
        .map(|d| (d.status, d.attempts))
        .collect()
}

fn deferred() -> DeliveryOutcome {
    DeliveryOutcome::Deferred {
        reply: "451 4.3.0 later".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_is_recorded_sent_and_the_run_can_close() {
    let (state, run) = world(40).await;
    let transport = Scripted::default();
    let report = send(&state, run, &transport).await;
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Sent { .. })),
        40
    );
    assert_eq!(transport.attempts().len(), 40, "each message once");
    assert!(
        statuses(&state, run)
            .await
            .iter()
            .all(|s| *s == (DeliveryStatus::Sent, 1))
    );
    assert_eq!(
        state.finish_run(run, t(9)).await.unwrap(),
        crate::state::RunProgress::Finished
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_within_the_send_and_each_attempt_recorded() {
    let (state, run) = world(2).await;
    let transport = Scripted::default().answer("s00@example.com", &[deferred(), deferred()]);
    let report = send(&state, run, &transport).await;
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Sent { .. })),
        2
    );
    assert_eq!(
        statuses(&state, run).await,
        [(DeliveryStatus::Sent, 3), (DeliveryStatus::Sent, 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_still_refused_after_max_attempts_is_left_deferred_for_the_next_send() {
    let (state, run) = world(2).await;
    let transport =
        Scripted::default().answer("s00@example.com", &[deferred(), deferred(), deferred()]);
    let report = send(&state, run, &transport).await;
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Deferred { .. })),
        1
    );
    assert_eq!(
        statuses(&state, run).await[0],
        (DeliveryStatus::Deferred, 3)
    );
    assert_eq!(
        state.claimants(run, Utc::now()).await.unwrap(),
        Vec::<String>::new(),
        "claims are released at the end of a send"
    );
    let next = send(&state, run, &transport).await;
    assert_eq!(next.handled(), 1, "only the deferred one is sent again");
    assert_eq!(statuses(&state, run).await[0], (DeliveryStatus::Sent, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_final_and_bounces_at_the_threshold() {
    let (state, run) = world(2).await;
    let transport = Scripted::default().answer(
        "s01@example.com",
        &[DeliveryOutcome::Failed {
            reply: "550 5.1.1 no such user".into(),
        }],
    );
    let report = send(&state, run, &transport).await;
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Failed { bounced: true, .. })),
        1
    );
    assert_eq!(statuses(&state, run).await[1], (DeliveryStatus::Failed, 1));
    let bob = state
        .subscriber(&EmailAddress::parse("s01@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.status, SubscriberStatus::Bounced);
    assert!(
        send(&state, run, &transport).await.handled() == 0,
        "never retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_transport_stops_the_send_without_counting_an_attempt() {
    let (state, run) = world(30).await;
    let down = DeliveryOutcome::Unavailable {
        reason: "connection refused".into(),
    };
    // The first messages in flight find the server down; it is back for the next send.
    let mut transport = Scripted::default();
    for i in 0..settings().concurrency {
        transport = transport.answer(&format!("s{i:02}@example.com"), std::slice::from_ref(&down));
    }
    let report = send(&state, run, &transport).await;
    assert_eq!(report.unavailable.as_deref(), Some("connection refused"));
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Sent { .. })),
        0
    );
    assert!(
        transport.attempts().len() <= settings().concurrency,
        "at most the messages already in flight were tried: {}",
        transport.attempts().len()
    );
    assert!(
        statuses(&state, run)
            .await
            .iter()
            .all(|s| *s == (DeliveryStatus::Pending, 0))
    );
    let later = send(&state, run, &Scripted::default()).await;
    assert_eq!(
        later.count(|o| matches!(o, MessageOutcome::Sent { .. })),
        30,
        "a later send delivers everything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_on_one_run_send_each_message_once() {
    let (state, run) = world(200).await;
    let transport = Scripted::default();
    let (a, b) = tokio::join!(send(&state, run, &transport), send(&state, run, &transport));
    assert_eq!(a.handled() + b.handled(), 200);
    let attempts = transport.attempts();
    let mut unique = attempts.clone();
    unique.dedup();
    assert_eq!((attempts.len(), unique.len()), (200, 200), "nobody twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_of_a_sender_that_died_are_taken_over_at_once() {
    let (state, run) = world(5).await;
    // A process that claimed three deliveries and died (a pid that has exited, on this host).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let dead = format!("{}/{pid}/1/abc", host.trim());
    let claimed = state
        .claim(
            run,
            &dead,
            3,
            Utc::now(),
            Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let transport = Scripted::default();
    let report = send(&state, run, &transport).await;
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Sent { .. })),
        5,
        "its lease was not waited for"
    );
}

/// A replica (waiting for others) with nothing left to claim while a live sender on this host holds the rest:
/// it waits, and when that sender dies it takes the rest over and the run is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_replica_takes_over_when_the_sender_it_waits_for_dies() {
    let (state, run) = world(5).await;
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let owner = Owner::for_process(other.id());
    let lease = Utc::now() + chrono::Duration::hours(1);
    let held = state
        .claim(run, owner.as_str(), 2, Utc::now(), lease)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        other.kill().unwrap();
        other.wait().unwrap();
    });
    let transport = Scripted::default();
    let waiting = DeliverySettings {
        wait_for_others: true,
        ..settings()
    };
    let report = send_with(&state, run, &transport, &AtomicBool::new(false), &waiting).await;
    killer.join().unwrap();
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Sent { .. })),
        5,
        "the dead sender's two were taken over"
    );
}

/// The same for a sender on another host, which cannot be seen dying: its rows come back when its lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_replica_takes_over_another_hosts_rows_when_their_lease_ends() {
    let (state, run) = world(5).await;
    let lease = Utc::now() + chrono::Duration::seconds(2);
    let held = state
        .claim(run, "elsewhere.example/7/1/abc", 2, Utc::now(), lease)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    let transport = Scripted::default();
    let waiting = DeliverySettings {
        wait_for_others: true,
        ..settings()
    };
    let report = send_with(&state, run, &transport, &AtomicBool::new(false), &waiting).await;
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Sent { .. })),
        5
    );
    assert!(Utc::now() >= lease, "taken only once the lease had ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_senders_claims_are_left_to_it() {
    let (state, run) = world(5).await;
    let other = Owner::this_process();
    state
        .claim(
            run,
            other.as_str(),
            2,
            Utc::now(),
            Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    let transport = Scripted::default();
    let report = send(&state, run, &transport).await;
    assert_eq!(report.handled(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_who_left_is_cancelled_not_sent() {
    let (state, run) = world(2).await;
    state
        .set_subscriber_status(
            &EmailAddress::parse("s00@example.com").unwrap(),
            SubscriberStatus::Unsubscribed,
            t(9),
        )
        .await
        .unwrap();
    let transport = Scripted::default();
    let report = send(&state, run, &transport).await;
    assert_eq!(
        report.count(|o| matches!(o, MessageOutcome::Cancelled { .. })),
        1
    );
    assert_eq!(transport.attempts(), ["s01@example.com"]);
    assert_eq!(
        statuses(&state, run).await[0],
        (DeliveryStatus::Cancelled, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_outcomes_share_commits_and_each_is_recorded() {
    use super::group_commit::GroupCommit;
    let (state, run) = world(200).await;
    let ids: Vec<_> = state
        .deliveries(run)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    let commits = GroupCommit::new(state.as_ref());
    let transitions: Vec<_> = futures_util::stream::iter(ids)
        .map(|id| commits.record(id, DeliveryEvent::Sent { at: t(9) }))
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(transitions.len(), 200);
    let commits = commits.commits();
    assert!(
        (1..200).contains(&commits),
        "{commits} commits for 200 outcomes"
    );
    assert!(transitions.iter().all(|t| matches!(
        t,
        Ok(crate::domain::Transition::Applied(DeliveryStatus::Sent))
    )));
    let deliveries = state.deliveries(run).await.unwrap();
    assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Sent));
}

/// A transport that notes the second (of the Unix clock, as the send budget's windows are) of every send.
#[derive(Default)]
struct Clocked {
    seconds: Mutex<Vec<i64>>,
}

#[async_trait::async_trait]
impl Transport for Clocked {
    async fn send(&self, _message: &Message, _message_id: &str) -> DeliveryOutcome {
        self.seconds.lock().unwrap().push(Utc::now().timestamp());
        DeliveryOutcome::Sent {
            reply: "250 ok".into(),
        }
    }
}

/// Two senders on one state (as two replicas on one database) share `[mail] rate_per_second`: together they
/// go no faster than the rate, and everyone still gets their message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_share_one_rate_between_them() {
    let (state, run) = world(25).await;
    let transport = Clocked::default();
    let limited = DeliverySettings {
        rate_per_second: Some(10.0),
        ..settings()
    };
    let never = AtomicBool::new(false);
    let (a, b) = tokio::join!(
        send_with(&state, run, &transport, &never, &limited),
        send_with(&state, run, &transport, &never, &limited)
    );
    assert_eq!(a.sent + b.sent, 25);
    // Ten per one-second window between them: 25 need three windows. (With a budget each, 20 a window, two
    // would do.) Counted by the second each send began, which can only be later than its window.
    let seconds = transport.seconds.lock().unwrap().clone();
    let (first, last) = (seconds.iter().min().unwrap(), seconds.iter().max().unwrap());
    assert!(
        last - first >= 2,
        "25 at 10/s span three seconds: {seconds:?}"
    );
}

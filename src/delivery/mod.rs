//! The delivery worker: takes a planned run's open deliveries from the ledger in claimed batches, turns each into
//! a message, hands it to the transport (retrying transient failures with backoff, within the rate limit), and
//! records every answer, so that nothing is lost and nothing is sent twice:
//!
//! - a delivery is claimed before it is sent and marked only after the transport answered, so a crash can repeat
//!   at most the messages in flight at that instant (at most twice `concurrency`: see
//!   [`DeliverySettings::in_flight`]), never lose one; answers are committed in shared transactions
//!   (`group_commit`), and a message counts only once its answer is committed;
//! - claiming and making messages (CPU work, on every core) runs on one thread and sending and recording on
//!   another, so neither waits for the other;
//! - a 4xx, a dropped connection or a timeout is retried up to `max_attempts` times in this send, each attempt
//!   recorded, then left `deferred` for the next send of the tick;
//! - a 5xx is recorded `failed` with the reply and never retried; `bounce_threshold` of those in a row mark the
//!   subscriber bounced;
//! - a transport that cannot take anything (server down, TLS or login refused) stops the send: the message is
//!   not counted as an attempt, the claims are released, and the next send picks up where this one stopped.
//!
//! The worker knows nothing of digests or templates: a [`MessageSource`] makes each message. Every step returns a
//! named [`MessageOutcome`], so tests drive it with any transport and no network.

mod budget;
mod group_commit;
mod owner;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lettre::Message;

pub use owner::Owner;

use crate::domain::{DeliveryEvent, EmailAddress, SubscriberStatus};
use crate::mail::{DeliveryOutcome, Transport};
use crate::state::{Claimed, RunId, State, StateError};
use budget::SendBudget;
use group_commit::GroupCommit;

/// How the worker sends (from `[mail]`).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub concurrency: usize,
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    pub bounce_threshold: usize,
    pub rate_per_second: Option<f64>,
    /// How long a claim holds when its sender cannot be seen dying (another host).
    pub lease: Duration,
    /// Stay until the run is done: when nothing is left to claim but other senders (replicas) still hold unsent
    /// deliveries, wait for them, and take over what one leaves when it dies. The daemon does; a `digest send`
    /// from the command line reports what is being sent elsewhere and returns.
    pub wait_for_others: bool,
}

/// How often a sender with nothing left to claim looks again while other senders hold the rest of the run.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(1);

impl DeliverySettings {
    pub fn from_config(mail: &crate::config::MailConfig) -> DeliverySettings {
        let backoff = Duration::from_millis(mail.retry_backoff_ms);
        let timeout = Duration::from_secs(mail.timeout_seconds);
        // Long enough for a whole batch of messages to go through every retry at the slowest.
        let worst =
            (timeout + backoff * 2u32.saturating_pow(mail.max_attempts)) * mail.max_attempts;
        DeliverySettings {
            concurrency: mail.concurrency.max(1),
            max_attempts: mail.max_attempts.max(1),
            backoff,
            bounce_threshold: mail.bounce_threshold.max(1),
            rate_per_second: mail.rate_per_second,
            lease: (worst * 4).max(Duration::from_secs(120)),
            wait_for_others: false,
        }
    }

    /// Messages between the transport and the ledger at once: each connection can send its next message while
    /// the last one's outcome is being committed. This is the most a crash can send twice.
    pub fn in_flight(&self) -> usize {
        self.concurrency * 2
    }

    /// Deliveries claimed at once: a few per connection, so memory stays flat whatever the run's size.
    fn batch(&self) -> usize {
        (self.concurrency * 8).max(16)
    }
}

/// What the worker sends for one claimed delivery.
#[allow(clippy::large_enum_variant)] // one at a time per connection; boxing buys nothing
pub enum Prepared {
    Message(Message),
    /// Not to be sent, and why (the subscriber left; the articles are gone).
    Cancel(String),
}

/// Makes the message of a claimed delivery (the digest's composer, in the app).
pub trait MessageSource: Sync + Send {
    fn prepare(&self, claimed: &Claimed) -> Result<Prepared, String>;
}

/// What became of one delivery in this send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    Sent {
        reply: String,
    },
    /// Still refused after this send's attempts: left for the next send of the tick.
    Deferred {
        reply: String,
    },
    Failed {
        reply: String,
        bounced: bool,
    },
    Cancelled {
        reason: String,
    },
    /// The message could not be made (a template failed on it): left open, reported.
    Unprepared {
        error: String,
    },
    /// The transport was unavailable before it could be tried (not an attempt).
    NotTried,
}

/// What one send did: how many went, and each message that did not (kept small whatever the run's size; each
/// sent message is seen through the progress callback).
#[derive(Debug, Default)]
pub struct DeliveryReport {
    pub sent: usize,
    /// Every message of this send that was not sent, with what became of it.
    pub not_sent: Vec<(EmailAddress, MessageOutcome)>,
    /// Why the send stopped early, when the transport was unavailable.
    pub unavailable: Option<String>,
}

impl DeliveryReport {
    pub fn count(&self, matches: impl Fn(&MessageOutcome) -> bool) -> usize {
        let sent = MessageOutcome::Sent {
            reply: String::new(),
        };
        let sent = if matches(&sent) { self.sent } else { 0 };
        sent + self.not_sent.iter().filter(|(_, o)| matches(o)).count()
    }

    /// Messages this send handled.
    pub fn handled(&self) -> usize {
        self.sent + self.not_sent.len()
    }
}

/// Sends every open delivery of `run` it can claim. `sent_at` is the time recorded for accepted messages (the
/// caller's `now`); leases use the real clock, since they are about live processes. Needs tokio's
/// multi-threaded runtime (the worker runs its two stages on threads of their own).
#[allow(clippy::too_many_arguments)] // the parts of one send, each from a different owner
pub async fn deliver(
    state: &dyn State,
    transport: &dyn Transport,
    source: &dyn MessageSource,
    run: RunId,
    settings: &DeliverySettings,
    sent_at: DateTime<Utc>,
    progress: &(dyn Fn(&EmailAddress, &MessageOutcome) + Sync),
    shutdown: &AtomicBool,
) -> Result<DeliveryReport, StateError> {
    let owner = Owner::this_process();
    for claimant in state.claimants(run, Utc::now()).await? {
        if Owner::is_known_dead(&claimant) {
            let taken = state.release_claims(&claimant).await?;
            tracing::info!(
                claimant,
                taken,
                "took over the claims of a sender that died"
            );
        }
    }
    let limit = SendBudget::new(state, settings.rate_per_second);
    let stop = AtomicBool::new(false);
    let unavailable = Mutex::new(None);
    let ledger = GroupCommit::new(state);
    let worker = Worker {
        state,
        ledger: &ledger,
        transport,
        source,
        settings,
        limit: limit.as_ref(),
        stop: &stop,
        shutdown,
        unavailable: &unavailable,
        sent_at,
    };
    let mut report = DeliveryReport::default();
    // The worker blocks its threads on the runtime (see `Worker::run`): this thread is handed over meanwhile.
    let result = tokio::task::block_in_place(|| worker.run(run, &owner, &mut report, progress));
    // Whatever happened, this send's claims go back: a deferred message is for the next send, an untried one
    // for whoever comes next. (A crash skips this; the claims are then taken over as above.)
    let released = state.release_claims(owner.as_str()).await;
    result?;
    released?;
    report.unavailable = unavailable
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(report)
}

struct Worker<'a> {
    state: &'a dyn State,
    /// Where outcomes are recorded (in shared transactions).
    ledger: &'a GroupCommit<'a>,
    transport: &'a dyn Transport,
    source: &'a dyn MessageSource,
    settings: &'a DeliverySettings,
    limit: Option<&'a SendBudget<'a>>,
    stop: &'a AtomicBool,
    /// The process is stopping (SIGTERM): nothing more starts.
    shutdown: &'a AtomicBool,
    /// Why the transport stopped the send.
    unavailable: &'a Mutex<Option<String>>,
    sent_at: DateTime<Utc>,
}

/// A claimed delivery with its message made.
type Ready = (Claimed, Result<Prepared, String>);

impl Worker<'_> {
    /// Two stages on two threads, so that neither waits for the other: one claims batches and makes their
    /// messages (CPU work, on every core), the other sends and records them (waiting on the network and the
    /// ledger). Between them, at most two batches of claimed, made and unsent messages.
    fn run(
        &self,
        run: RunId,
        owner: &Owner,
        report: &mut DeliveryReport,
        progress: &(dyn Fn(&EmailAddress, &MessageOutcome) + Sync),
    ) -> Result<(), StateError> {
        let runtime = tokio::runtime::Handle::current();
        let (ready, made) = tokio::sync::mpsc::channel::<Ready>(self.settings.batch() * 2);
        // Both stages on threads of their own: the calling thread only waits for them. (Driving a stage with
        // `block_on` on the calling thread could take the wake-ups of whatever else that thread is running.)
        std::thread::scope(|scope| {
            let claiming = scope.spawn(|| runtime.block_on(self.claim_and_make(run, owner, ready)));
            let sending =
                scope.spawn(|| runtime.block_on(self.send_and_record(made, report, progress)));
            let sent = sending
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            let claimed = claiming
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            sent.and(claimed)
        })
    }

    async fn claim_and_make(
        &self,
        run: RunId,
        owner: &Owner,
        ready: tokio::sync::mpsc::Sender<Ready>,
    ) -> Result<(), StateError> {
        while !self.stopping() {
            let now = Utc::now();
            let lease_until = now
                + chrono::Duration::from_std(self.settings.lease)
                    .unwrap_or(chrono::Duration::minutes(10));
            let batch = self
                .state
                .claim(run, owner.as_str(), self.settings.batch(), now, lease_until)
                .await?;
            if batch.is_empty() {
                if self.settings.wait_for_others && self.others_are_sending(run, owner).await? {
                    tokio::time::sleep(WAIT_FOR_OTHERS).await;
                    continue;
                }
                break;
            }
            for item in self.make_all(batch) {
                if ready.send(item).await.is_err() {
                    // The sender stopped (an error): what is claimed here is released by `deliver`.
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Whether other senders (replicas) still hold unsent deliveries of the run: then this one waits for them
    /// rather than leave the run unfinished, and takes over what one leaves behind when it dies: at once when it
    /// is known dead (this host), else when its lease expires and the rows become claimable again.
    async fn others_are_sending(&self, run: RunId, owner: &Owner) -> Result<bool, StateError> {
        let mut waiting = false;
        for sender in self.state.senders_with_unsent(run, Utc::now()).await? {
            if sender == owner.as_str() {
                continue;
            }
            if Owner::is_known_dead(&sender) {
                let taken = self.state.release_claims(&sender).await?;
                tracing::info!(sender, taken, "took over the claims of a sender that died");
            }
            waiting = true;
        }
        Ok(waiting)
    }

    async fn send_and_record(
        &self,
        made: tokio::sync::mpsc::Receiver<Ready>,
        report: &mut DeliveryReport,
        progress: &(dyn Fn(&EmailAddress, &MessageOutcome) + Sync),
    ) -> Result<(), StateError> {
        let made = futures_util::stream::unfold(made, |mut made| async move {
            made.recv().await.map(|item| (item, made))
        });
        let sends = made
            .map(|(claimed, prepared)| async move {
                let outcome = self.deliver_one(&claimed, prepared).await;
                (claimed.delivery.email, outcome)
            })
            .buffer_unordered(self.settings.in_flight());
        let mut sends = std::pin::pin!(sends);
        while let Some((email, outcome)) = sends.next().await {
            let outcome = outcome?;
            progress(&email, &outcome);
            match outcome {
                MessageOutcome::Sent { .. } => report.sent += 1,
                other => report.not_sent.push((email, other)),
            }
        }
        Ok(())
    }

    /// Makes the messages of a claimed batch on every core.
    fn make_all(&self, batch: Vec<Claimed>) -> Vec<Ready> {
        use rayon::prelude::*;
        batch
            .into_par_iter()
            .map(|claimed| {
                let prepared = self.source.prepare(&claimed);
                (claimed, prepared)
            })
            .collect()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.shutdown.load(Ordering::SeqCst)
    }

    /// One delivery: send with retries, record.
    async fn deliver_one(
        &self,
        claimed: &Claimed,
        prepared: Result<Prepared, String>,
    ) -> Result<MessageOutcome, StateError> {
        let delivery = &claimed.delivery;
        if self.stopping() {
            return Ok(MessageOutcome::NotTried);
        }
        let message = match prepared {
            Ok(Prepared::Message(message)) => message,
            Ok(Prepared::Cancel(reason)) => {
                self.ledger
                    .record(
                        delivery.id,
                        DeliveryEvent::Cancelled {
                            reason: reason.clone(),
                        },
                    )
                    .await?;
                return Ok(MessageOutcome::Cancelled { reason });
            }
            Err(error) => return Ok(MessageOutcome::Unprepared { error }),
        };
        let mut attempt = 0;
        loop {
            if self.stopping() {
                return Ok(MessageOutcome::NotTried);
            }
            attempt += 1;
            if let Some(limit) = self.limit {
                limit.acquire().await?;
            }
            match self.transport.send(&message, &delivery.message_id).await {
                DeliveryOutcome::Sent { reply } => {
                    self.ledger
                        .record(delivery.id, DeliveryEvent::Sent { at: self.sent_at })
                        .await?;
                    return Ok(MessageOutcome::Sent { reply });
                }
                DeliveryOutcome::Deferred { reply } => {
                    self.ledger
                        .record(
                            delivery.id,
                            DeliveryEvent::Deferred {
                                reply: reply.clone(),
                            },
                        )
                        .await?;
                    if attempt >= self.settings.max_attempts {
                        return Ok(MessageOutcome::Deferred { reply });
                    }
                    tokio::time::sleep(self.settings.backoff * 2u32.saturating_pow(attempt - 1))
                        .await;
                }
                DeliveryOutcome::Failed { reply } => {
                    self.ledger
                        .record(
                            delivery.id,
                            DeliveryEvent::Rejected {
                                reply: reply.clone(),
                            },
                        )
                        .await?;
                    let bounced = self.bounce_if_due(&delivery.email).await?;
                    return Ok(MessageOutcome::Failed { reply, bounced });
                }
                DeliveryOutcome::Unavailable { reason } => {
                    if !self.stop.swap(true, Ordering::SeqCst) {
                        tracing::error!(
                            "the mail transport is unavailable, stopping this send: {reason}"
                        );
                        *self
                            .unavailable
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
                    }
                    return Ok(MessageOutcome::NotTried);
                }
            }
        }
    }

    async fn bounce_if_due(&self, email: &EmailAddress) -> Result<bool, StateError> {
        if self.state.failures_in_a_row(email).await? < self.settings.bounce_threshold {
            return Ok(false);
        }
        self.state
            .set_subscriber_status(email, SubscriberStatus::Bounced, self.sent_at)
            .await
    }
}

#[cfg(test)]
mod tests;

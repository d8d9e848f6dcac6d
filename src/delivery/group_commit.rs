//! Recording outcomes in group commits. Each message's outcome must be in the ledger before the worker counts it
//! (that is what bounds the duplicates after a crash), but a transaction per message costs more than the message
//! itself. So an outcome joins a queue and waits for its commit: whoever finds the writer free takes everything
//! queued into one transaction, and the outcomes that arrive meanwhile go in the next. No outcome waits for a
//! batch to fill, and with `concurrency` messages in flight a commit carries up to that many.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;

use crate::domain::{DeliveryEvent, Transition};
use crate::state::{DeliveryId, State, StateError};

type Waiting = (
    DeliveryId,
    DeliveryEvent,
    oneshot::Sender<Result<Transition, String>>,
);

pub(super) struct GroupCommit<'a> {
    state: &'a dyn State,
    queued: Mutex<Vec<Waiting>>,
    /// Held while a transaction is written: one at a time, in queue order.
    writer: tokio::sync::Mutex<()>,
    /// Transactions written so far.
    commits: AtomicUsize,
}

impl<'a> GroupCommit<'a> {
    pub(super) fn new(state: &'a dyn State) -> GroupCommit<'a> {
        GroupCommit {
            state,
            queued: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
            commits: AtomicUsize::new(0),
        }
    }

    /// Records `event`, returning once the transaction that carries it has committed.
    pub(super) async fn record(
        &self,
        delivery: DeliveryId,
        event: DeliveryEvent,
    ) -> Result<Transition, StateError> {
        let (done, result) = oneshot::channel();
        self.queue().push((delivery, event, done));
        {
            let _writing = self.writer.lock().await;
            let batch = std::mem::take(&mut *self.queue());
            if !batch.is_empty() {
                let (events, waiting): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .map(|(id, e, done)| ((id, e), done))
                    .unzip();
                self.commits.fetch_add(1, Ordering::Relaxed);
                match self.state.record_all(&events).await {
                    Ok(transitions) => {
                        for (done, transition) in waiting.into_iter().zip(transitions) {
                            let _ = done.send(Ok(transition));
                        }
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        for done in waiting {
                            let _ = done.send(Err(reason.clone()));
                        }
                    }
                }
            }
        }
        match result.await {
            Ok(Ok(transition)) => Ok(transition),
            Ok(Err(reason)) => Err(StateError::Failed {
                operation: "record a delivery",
                reason,
            }),
            Err(_) => Err(StateError::Failed {
                operation: "record a delivery",
                reason: "the transaction carrying it was abandoned".into(),
            }),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::StreamExt;

    use super::*;
    use crate::domain::{DeliveryStatus, EmailAddress, NewSubscriber};
    use crate::state::{NewDelivery, Resubscribe, SqliteState};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_outcomes_share_commits_and_each_is_recorded() {
        let state: Arc<dyn State> = Arc::new(SqliteState::in_memory().unwrap());
        let now = chrono::Utc::now();
        let mut planned = Vec::new();
        for i in 0..200 {
            let email = EmailAddress::parse(&format!("s{i}@example.com")).unwrap();
            let s = NewSubscriber {
                email: email.clone(),
                name: String::new(),
                digests: vec!["weekly".into()],
                categories: vec![],
                subscribed_at: now,
                changed_at: now,
            };
            state
                .upsert_subscriber(
                    &s,
                    &crate::domain::SuppressionKey(format!("k{i}")),
                    Resubscribe::Never,
                )
                .await
                .unwrap();
            planned.push(NewDelivery {
                email,
                message_id: format!("<{i}@example.com>"),
                articles: vec!["a".into()],
                related: vec![],
                over_limit: 0,
                window_after: now,
            });
        }
        let run = state.plan_run("weekly", now, now, &planned).await.unwrap();
        let ids: Vec<_> = state
            .deliveries(run)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        let commits = GroupCommit::new(state.as_ref());
        let transitions: Vec<_> = futures_util::stream::iter(ids)
            .map(|id| commits.record(id, DeliveryEvent::Sent { at: now }))
            .buffer_unordered(16)
            .collect()
            .await;
        assert_eq!(transitions.len(), 200);
        let commits = commits.commits.load(Ordering::Relaxed);
        assert!(
            (1..200).contains(&commits),
            "{commits} commits for 200 outcomes"
        );
        assert!(
            transitions
                .iter()
                .all(|t| matches!(t, Ok(Transition::Applied(DeliveryStatus::Sent))))
        );
        let deliveries = state.deliveries(run).await.unwrap();
        assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Sent));
    }
}

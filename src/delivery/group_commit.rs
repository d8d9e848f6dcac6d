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
impl GroupCommit<'_> {
    /// Transactions written so far.
    pub(super) fn commits(&self) -> usize {
        self.commits.load(Ordering::Relaxed)
    }
}

//! The life of one delivery (one subscriber's message of one digest run) in the ledger: its statuses, the events
//! that move it, and which moves are allowed. Every backend applies exactly this table, so a status can never
//! move backwards.
//!
//! | from \ event | `Sent`  | `Deferred` (4xx, dropped connection, timeout) | `Rejected` (5xx) | `Cancelled` |
//! |--------------|---------|------------------------------------------------|------------------|-------------|
//! | `pending`    | sent    | deferred                                       | failed           | cancelled   |
//! | `deferred`   | sent    | deferred                                       | failed           | cancelled   |
//! | `sent`       | refused | refused                                        | refused          | refused     |
//! | `failed`     | refused | refused                                        | refused          | refused     |
//! | `cancelled`  | refused | refused                                        | refused          | refused     |
//!
//! `sent`, `failed` and `cancelled` are final: a sender only ever takes `pending` and `deferred` deliveries, so a
//! cancelled message stays unsent whatever the subscriber does later, and a permanent rejection is never retried.
//! Every event but `Cancelled` counts one attempt.

use chrono::{DateTime, Utc};

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Planned and written down; not tried yet.
    Pending,
    /// Tried and refused for now (a 4xx reply, a dropped connection, a timeout): to be tried again.
    Deferred,
    /// The server accepted it. Final.
    Sent,
    /// Refused for good (a 5xx reply): the reply is kept. Final.
    Failed,
    /// Never to be sent: the subscriber left, or its articles went, before it went out. Final.
    Cancelled,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Deferred,
        DeliveryStatus::Sent,
        DeliveryStatus::Failed,
        DeliveryStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Deferred => "deferred",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    /// The inverse of [`DeliveryStatus::as_str`].
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// No event moves it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::Cancelled
        )
    }

    /// What `event` does to a delivery in this status (the table in the module docs).
    pub fn apply(self, event: &DeliveryEvent) -> Transition {
        if self.is_final() {
            Transition::Refused(self)
        } else {
            Transition::Applied(event.target())
        }
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a delivery: the transport's answer, or the sender's decision not to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryEvent {
    /// The server accepted the message at `at`.
    Sent { at: DateTime<Utc> },
    /// A transient failure, with the server's reply or the error.
    Deferred { reply: String },
    /// A permanent refusal, with the server's reply.
    Rejected { reply: String },
    /// It will not be sent, and why.
    Cancelled { reason: String },
}

impl DeliveryEvent {
    /// The status it leads to from a status that is not final.
    pub fn target(&self) -> DeliveryStatus {
        match self {
            DeliveryEvent::Sent { .. } => DeliveryStatus::Sent,
            DeliveryEvent::Deferred { .. } => DeliveryStatus::Deferred,
            DeliveryEvent::Rejected { .. } => DeliveryStatus::Failed,
            DeliveryEvent::Cancelled { .. } => DeliveryStatus::Cancelled,
        }
    }

    /// Whether it was an attempt to send (everything but a cancellation).
    pub fn is_attempt(&self) -> bool {
        !matches!(self, DeliveryEvent::Cancelled { .. })
    }

    /// The reply or reason kept with the delivery (none once sent).
    pub fn note(&self) -> Option<&str> {
        match self {
            DeliveryEvent::Sent { .. } => None,
            DeliveryEvent::Deferred { reply } | DeliveryEvent::Rejected { reply } => Some(reply),
            DeliveryEvent::Cancelled { reason } => Some(reason),
        }
    }

    /// When it was sent, for `Sent`.
    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        match self {
            DeliveryEvent::Sent { at } => Some(*at),
            _ => None,
        }
    }
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The delivery moved to this status.
    Applied(DeliveryStatus),
    /// The delivery was already final (this status) and was left as it was.
    Refused(DeliveryStatus),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> [DeliveryEvent; 4] {
        [
            DeliveryEvent::Sent {
                at: DateTime::UNIX_EPOCH,
            },
            DeliveryEvent::Deferred {
                reply: "451 later".into(),
            },
            DeliveryEvent::Rejected {
                reply: "550 no such user".into(),
            },
            DeliveryEvent::Cancelled {
                reason: "unsubscribed".into(),
            },
        ]
    }

    #[test]
    fn open_deliveries_move_to_the_events_status() {
        for from in [DeliveryStatus::Pending, DeliveryStatus::Deferred] {
            for event in events() {
                assert_eq!(
                    from.apply(&event),
                    Transition::Applied(event.target()),
                    "{from} + {event:?}"
                );
            }
        }
    }

    #[test]
    fn final_statuses_refuse_every_event() {
        for from in [
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ] {
            for event in events() {
                assert_eq!(
                    from.apply(&event),
                    Transition::Refused(from),
                    "{from} + {event:?}"
                );
            }
        }
    }

    #[test]
    fn a_permanent_rejection_is_failed_and_a_transient_one_deferred() {
        assert_eq!(events()[1].target(), DeliveryStatus::Deferred);
        assert_eq!(events()[2].target(), DeliveryStatus::Failed);
        assert!(DeliveryStatus::Failed.is_final());
        assert!(!DeliveryStatus::Deferred.is_final());
    }

    #[test]
    fn every_status_reads_back_from_its_text() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }
}

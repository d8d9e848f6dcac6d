//! Subscribers, digest runs and deliveries: everything tidings must remember between runs.
//!
//! Callers see one small interface, the [`State`] trait, so a PostgreSQL backend can be added later as a new
//! module without touching them; [`SqliteState`] is the embedded default (`[state] database`).
//!
//! Delivery semantics, written down once here:
//! - a run is identified by its digest and tick and is unique: planning the same tick twice is refused, so a
//!   re-run of a tick sends nothing again;
//! - a run and all of its deliveries (status `pending`) are written in one transaction *before* any message is
//!   handed to a transport;
//! - a delivery is marked `sent` only after the transport accepted the message. A crash between acceptance and
//!   that write can duplicate one in-flight message on resume; it can never lose one.
//!
//! Times are stored as RFC 3339 UTC text (sortable); lists (digests, categories, article slugs) as JSON arrays.
//! This module does not decide what anyone gets (that is `digest`) nor send anything (that is `mail`).

use std::collections::BTreeMap;
mod email;
mod import;
mod sqlite;

use chrono::{DateTime, Utc};

pub use email::{EmailAddress, InvalidEmail};
pub use import::{ImportProblem, parse_subscribers_csv};
pub use sqlite::SqliteState;

/// Every way the state store can fail, naming the database and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "{path}: cannot open the state database: {source}; check [state] database in config.toml"
    )]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{path}: migration to schema version {version} failed: {source}")]
    Migrate {
        path: String,
        version: usize,
        source: rusqlite::Error,
    },
    #[error(
        "{path}: schema version {found} is newer than this tidings understands ({known}); upgrade tidings"
    )]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "state database holds a value it cannot read back ({what}: {value}); was it edited by hand?"
    )]
    Corrupt { what: &'static str, value: String },
    #[error("digest \"{digest}\" already has a run for tick {tick}")]
    RunExists { digest: String, tick: String },
}

/// Where a subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    /// Signed up, not yet confirmed (double opt-in): gets nothing.
    Pending,
    Confirmed,
    Unsubscribed,
    Bounced,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Pending => "pending",
            SubscriberStatus::Confirmed => "confirmed",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
        }
    }

    fn parse(s: &str) -> Result<SubscriberStatus, StateError> {
        Ok(match s {
            "pending" => SubscriberStatus::Pending,
            "confirmed" => SubscriberStatus::Confirmed,
            "unsubscribed" => SubscriberStatus::Unsubscribed,
            "bounced" => SubscriberStatus::Bounced,
            _ => {
                return Err(StateError::Corrupt {
                    what: "subscriber status",
                    value: s.into(),
                });
            }
        })
    }
}

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub email: EmailAddress,
    pub name: String,
    pub status: SubscriberStatus,
    /// Names of the `[[digest]]`s they take.
    pub digests: Vec<String>,
    /// Only articles of these categories (empty: all).
    pub categories: Vec<String>,
    pub created: DateTime<Utc>,
    pub confirmed: Option<DateTime<Utc>>,
    /// When they joined each digest (a digest added after subscribing starts then).
    pub joined: BTreeMap<String, DateTime<Utc>>,
}

impl Subscriber {
    pub fn takes(&self, digest: &str) -> bool {
        self.digests.iter().any(|d| d == digest)
    }

    /// When they joined `digest`: where a new subscriber's first window starts.
    pub fn joined_at(&self, digest: &str) -> DateTime<Utc> {
        self.joined.get(digest).copied().unwrap_or(self.created)
    }
}

/// A subscriber to add or update (`subscribers add` / `import`): confirmed, since the owner already has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub name: String,
    pub digests: Vec<String>,
    pub categories: Vec<String>,
    /// When they subscribed (a migrated list keeps its original time).
    pub subscribed_at: DateTime<Utc>,
    /// When this add or import happens: a digest added to an existing subscriber is joined then.
    pub changed_at: DateTime<Utc>,
}

/// What an add or import did to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Added,
    Updated,
    Unchanged,
    /// They unsubscribed or bounced: an import must not subscribe them again; name, digests and categories were
    /// left alone too.
    KeptUnsubscribed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    Removed,
    NotFound,
}

/// Whether the link-token secret was already stored or has just been generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    Stored,
    Generated,
}

pub type RunId = i64;
pub type DeliveryId = i64;

/// A planned run: one digest at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    pub digest: String,
    pub tick: DateTime<Utc>,
    /// Every new article of the run (union over its deliveries), slugs sorted.
    pub articles: Vec<String>,
    pub created: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Failed,
    /// Not sent and never to be: the subscriber left (or the articles went) before it went out.
    Cancelled,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<DeliveryStatus, StateError> {
        Ok(match s {
            "pending" => DeliveryStatus::Pending,
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            "cancelled" => DeliveryStatus::Cancelled,
            _ => {
                return Err(StateError::Corrupt {
                    what: "delivery status",
                    value: s.into(),
                });
            }
        })
    }
}

/// One subscriber's message of a run, to be written before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub email: EmailAddress,
    pub message_id: String,
    /// The new articles in this message (slugs, in digest order).
    pub articles: Vec<String>,
    /// The related-reading picks in this message (slugs, in order).
    pub related: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub run: RunId,
    pub email: EmailAddress,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub message_id: String,
    pub articles: Vec<String>,
    pub related: Vec<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One digest a subscriber received (a sent delivery), for windows and "not in your last few digests".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub tick: DateTime<Utc>,
    pub articles: Vec<String>,
    pub related: Vec<String>,
}

/// The state store. Every method is one transaction; implementations must keep the delivery semantics above.
pub trait State {
    /// Adds a confirmed subscriber or updates one (never re-subscribing an unsubscribed or bounced one).
    fn upsert_subscriber(&mut self, new: &NewSubscriber) -> Result<UpsertOutcome, StateError>;
    /// Deletes a subscriber and their delivery history (their personal data).
    fn remove_subscriber(&mut self, email: &EmailAddress) -> Result<RemoveOutcome, StateError>;
    /// Every subscriber (of `digest`, when given), by address.
    fn subscribers(&self, digest: Option<&str>) -> Result<Vec<Subscriber>, StateError>;
    fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, StateError>;
    /// The link-token secret, generated with `generate` and stored on first use.
    fn secret(
        &mut self,
        generate: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<(Vec<u8>, SecretOrigin), StateError>;
    /// The `last` digests of `digest` that `email` was sent for ticks before `before`, newest first.
    fn received(
        &self,
        digest: &str,
        email: &EmailAddress,
        before: DateTime<Utc>,
        last: usize,
    ) -> Result<Vec<Received>, StateError>;
    /// The newest tick of `digest` that has a run.
    fn latest_tick(&self, digest: &str) -> Result<Option<DateTime<Utc>>, StateError>;
    fn run(&self, digest: &str, tick: DateTime<Utc>) -> Result<Option<Run>, StateError>;
    /// Records a run and its pending deliveries in one transaction; [`StateError::RunExists`] if the tick has one.
    fn plan_run(
        &mut self,
        digest: &str,
        tick: DateTime<Utc>,
        created: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<RunId, StateError>;
    fn deliveries(&self, run: RunId) -> Result<Vec<Delivery>, StateError>;
    /// The transport accepted it.
    fn mark_sent(&mut self, delivery: DeliveryId, at: DateTime<Utc>) -> Result<(), StateError>;
    /// The transport refused it or failed; counts an attempt and keeps the error.
    fn mark_failed(&mut self, delivery: DeliveryId, error: &str) -> Result<(), StateError>;
    /// It will never be sent (the subscriber left, or its articles are gone); the run can finish without it.
    fn mark_cancelled(&mut self, delivery: DeliveryId, reason: &str) -> Result<(), StateError>;
    fn finish_run(&mut self, run: RunId, at: DateTime<Utc>) -> Result<(), StateError>;
}

#[cfg(test)]
mod tests;

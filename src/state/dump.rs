//! [`StateDump`]: everything a state holds, as one JSON document, to move a state from one backend to another
//! (`tidings state export` from SQLite, `tidings state import` into PostgreSQL) without losing a subscriber, a
//! delivery, a suppression or the link-token secret.
//!
//! What is written is what the backends keep, by value: subscribers with their handles (so links already sent
//! keep working), statuses and join times; the suppression list's keyed hashes; runs and their deliveries with
//! their ids, attempts, replies and sent times; first sightings. Claims are not written: they belong to the
//! senders of the old state, which must be stopped before an export (a delivery claimed then is open again
//! after the import, so a message in flight at that moment may go twice; none is lost).
//!
//! The whole dump is built in memory (about 1 KB per subscriber plus their deliveries): fine for the lists an
//! SQLite state holds.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Delivery, Run, RunId, State, StateError};
use crate::domain::{Subscriber, SubscriberHandle, SubscriberStatus};

/// What the `format` field of a dump says.
pub const DUMP_FORMAT: &str = "tidings-state";
/// The version of the dump's layout this tidings writes and reads.
pub const DUMP_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDump {
    pub format: String,
    pub version: u32,
    /// The link-token secret (hex), if one was ever stored.
    pub secret: Option<String>,
    pub subscribers: Vec<DumpSubscriber>,
    pub suppressions: Vec<DumpSuppression>,
    pub articles_seen: BTreeMap<String, DateTime<Utc>>,
    pub runs: Vec<DumpRun>,
    pub deliveries: Vec<DumpDelivery>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpSubscriber {
    pub email: String,
    pub handle: String,
    pub name: String,
    pub status: String,
    pub digests: Vec<String>,
    pub categories: Vec<String>,
    pub created: DateTime<Utc>,
    pub confirmed: Option<DateTime<Utc>>,
    pub joined: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpSuppression {
    pub key: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpRun {
    pub id: RunId,
    pub digest: String,
    pub tick: DateTime<Utc>,
    pub articles: Vec<String>,
    pub created: DateTime<Utc>,
    pub planned: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpDelivery {
    pub id: i64,
    pub run: RunId,
    pub email: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub message_id: String,
    pub articles: Vec<String>,
    pub related: Vec<String>,
    pub because: Vec<String>,
    pub over_limit: usize,
    /// `None` for a delivery from before windows were kept ("since the beginning").
    pub window_after: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl DumpSubscriber {
    fn from(s: &Subscriber) -> DumpSubscriber {
        DumpSubscriber {
            email: s.email.as_str().into(),
            handle: s.handle.to_hex(),
            name: s.name.clone(),
            status: s.status.as_str().into(),
            digests: s.digests.clone(),
            categories: s.categories.clone(),
            created: s.created,
            confirmed: s.confirmed,
            joined: s.joined.clone(),
        }
    }

    /// Checks the values a backend will store, so a hand-edited dump is refused before anything is written.
    pub fn check(&self) -> Result<(), String> {
        crate::domain::EmailAddress::parse(&self.email)
            .map_err(|e| format!("subscriber {:?}: {e}", self.email))?;
        SubscriberHandle::parse_hex(&self.handle).ok_or_else(|| {
            format!(
                "subscriber {}: handle {:?} is not 32 hex digits",
                self.email, self.handle
            )
        })?;
        SubscriberStatus::parse(&self.status).ok_or_else(|| {
            format!(
                "subscriber {}: unknown status {:?}",
                self.email, self.status
            )
        })?;
        Ok(())
    }
}

impl DumpRun {
    fn from(r: &Run) -> DumpRun {
        DumpRun {
            id: r.id,
            digest: r.digest.clone(),
            tick: r.tick,
            articles: r.articles.clone(),
            created: r.created,
            planned: r.planned,
            finished: r.finished,
            skipped: r.skipped.clone(),
        }
    }
}

impl DumpDelivery {
    fn from(d: &Delivery) -> DumpDelivery {
        DumpDelivery {
            id: d.id,
            run: d.run,
            email: d.email.as_str().into(),
            status: d.status.as_str().into(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            message_id: d.message_id.clone(),
            articles: d.articles.clone(),
            related: d.related.iter().map(|p| p.slug.clone()).collect(),
            because: d.related.iter().map(|p| p.because.clone()).collect(),
            over_limit: d.over_limit,
            window_after: (d.window_after != DateTime::<Utc>::MIN_UTC).then_some(d.window_after),
            sent_at: d.sent_at,
        }
    }
}

/// Reads everything `state` holds.
pub async fn export(state: &dyn State) -> Result<StateDump, StateError> {
    let subscribers = state.subscribers(None).await?;
    let runs = state.runs(None).await?;
    let mut deliveries = Vec::new();
    for summary in &runs {
        deliveries.extend(
            state
                .deliveries(summary.run.id)
                .await?
                .iter()
                .map(DumpDelivery::from),
        );
    }
    deliveries.sort_by_key(|d| d.id);
    let mut runs: Vec<DumpRun> = runs.iter().map(|s| DumpRun::from(&s.run)).collect();
    runs.sort_by_key(|r| r.id);
    Ok(StateDump {
        format: DUMP_FORMAT.into(),
        version: DUMP_VERSION,
        secret: state.stored_secret().await?.map(hex::encode),
        subscribers: subscribers.iter().map(DumpSubscriber::from).collect(),
        suppressions: state.suppressions().await?,
        articles_seen: state.first_seen().await?,
        runs,
        deliveries,
    })
}

impl StateDump {
    /// Checks a dump read from a file before anything of it is written.
    pub fn check(&self) -> Result<(), String> {
        if self.format != DUMP_FORMAT {
            return Err(format!(
                "format is {:?}, not {DUMP_FORMAT:?}: not a tidings state export",
                self.format
            ));
        }
        if self.version != DUMP_VERSION {
            return Err(format!(
                "layout version {} is not the one this tidings reads ({DUMP_VERSION}); export with the same version",
                self.version
            ));
        }
        if let Some(secret) = &self.secret {
            hex::decode(secret).map_err(|_| "secret is not hex".to_string())?;
        }
        for s in &self.subscribers {
            s.check()?;
        }
        let emails: std::collections::BTreeSet<&str> =
            self.subscribers.iter().map(|s| s.email.as_str()).collect();
        let runs: std::collections::BTreeSet<RunId> = self.runs.iter().map(|r| r.id).collect();
        for d in &self.deliveries {
            if !emails.contains(d.email.as_str()) {
                return Err(format!("delivery {}: no subscriber {}", d.id, d.email));
            }
            if !runs.contains(&d.run) {
                return Err(format!("delivery {}: no run {}", d.id, d.run));
            }
            crate::domain::DeliveryStatus::parse(&d.status)
                .ok_or_else(|| format!("delivery {}: unknown status {:?}", d.id, d.status))?;
        }
        Ok(())
    }
}

//! Subscribers, digest runs and deliveries: everything tidings must remember between runs.
//!
//! Callers see one small interface, the [`State`] trait: async, `Send + Sync` and object-safe, so one
//! `Arc<dyn State>` serves a command, the daemon's jobs and the web handlers alike. Backends are modules behind
//! it ([`sqlite`] is the embedded default); [`open`] picks one from the configured [`StateLocation`]. Its
//! contract is written once as a conformance suite (`conformance.rs`) that every backend runs. Errors name the
//! operation that failed, never the driver's types.
//!
//! Delivery semantics, written down once here:
//! - a run is identified by its digest and tick and is unique: planning the same tick twice is refused
//!   ([`StateError::RunExists`]), so a re-run of a tick never plans it again;
//! - a run and all of its deliveries (status `pending`) are written in one transaction *before* any message is
//!   handed to a transport;
//! - a delivery moves only as the table in [`crate::domain::DeliveryStatus`]'s module says: `sent`, `failed`
//!   (a permanent refusal) and `cancelled` are final, and only `pending` and `deferred` deliveries are ever sent;
//! - a delivery is marked `sent` only after the transport accepted the message. A crash between acceptance and
//!   that write can duplicate that one in-flight message on resume; it can never lose one;
//! - a run is finished only when none of its deliveries is `pending` or `deferred` any more;
//! - a sender *claims* open deliveries in batches under its owner name and a lease ([`State::claim`]) before
//!   sending them; a claim held by another live sender is never taken, so two senders on one database (two cron
//!   jobs, one database reached through a symlink, later several replicas) share a run instead of sending it
//!   twice. A sender releases its claims when it stops; a dead sender's claims are taken over when its lease
//!   expires, or at once when it is known dead ([`State::release_claims`]);
//! - an address that left (unsubscribed, bounced) keeps its row, and a forgotten one leaves a keyed hash in the
//!   suppression list: neither is subscribed again by an add or an import unless the owner says to resubscribe.
//!
//! This module does not decide what anyone gets (that is `digest`) nor send anything (that is `mail`).

pub mod dump;
mod postgres;
mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(test)]
pub(crate) mod postgres_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::{
    DeliveryEvent, DeliveryStatus, EmailAddress, NewSubscriber, Subscriber, SubscriberHandle,
    SubscriberStatus, SuppressionKey, Transition,
};

pub use postgres::PostgresState;
pub use sqlite::SqliteState;

/// Every way the state store can fail, naming the database or the operation, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "{location}: cannot open the state database: {reason}; check [state] database in config.toml"
    )]
    Unavailable { location: String, reason: String },
    #[error("{location}: migration to schema version {version} failed: {reason}")]
    Migrate {
        location: String,
        version: usize,
        reason: String,
    },
    #[error(
        "{location}: schema version {found} is newer than this tidings understands ({known}); upgrade tidings"
    )]
    TooNew {
        location: String,
        found: usize,
        known: usize,
    },
    #[error("state database: cannot {operation}: {reason}")]
    Failed {
        operation: &'static str,
        reason: String,
    },
    #[error(
        "state database holds a value it cannot read back ({what}: {value}); was it edited by hand?"
    )]
    Corrupt { what: &'static str, value: String },
    #[error("digest \"{digest}\" already has a run for tick {tick}")]
    RunExists { digest: String, tick: String },
    /// Another sender ended the run's planning while this one was still planning it: its deliveries are fixed.
    #[error("run {0} is already planned; its deliveries are fixed")]
    AlreadyPlanned(RunId),
    #[error(
        "the state to import into is not empty (it holds {0}); import into a new database, so nothing is mixed or overwritten"
    )]
    NotEmpty(String),
    #[error("state database: no delivery {0}")]
    NoDelivery(DeliveryId),
    #[error("state database: no run {0}")]
    NoRun(RunId),
}

/// Where the state lives: `[state] database`, a file path (SQLite) or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// An SQLite file, created with its folder on first use (`data/tidings.db`, or `sqlite:///srv/t.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user@host/db`), which several replicas can share.
    Postgres(String),
}

impl StateLocation {
    /// Reads `[state] database`: `postgres://` / `postgresql://` URLs, `sqlite://PATH` / `sqlite:PATH`, else a
    /// path. Relative paths are left relative; the config resolves them against its own folder.
    pub fn parse(value: &str) -> Result<StateLocation, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is empty; use a file path like \"data/tidings.db\"".into());
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(StateLocation::Postgres(value.into()));
        }
        if let Some(path) = value
            .strip_prefix("sqlite://")
            .or_else(|| value.strip_prefix("sqlite:"))
        {
            return match path {
                "" => {
                    Err("names no file; use sqlite:///srv/blog/tidings.db or a plain path".into())
                }
                path => Ok(StateLocation::Sqlite(path.into())),
            };
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(format!(
                "\"{scheme}://\" is not a state backend; use a file path (SQLite) or a postgres:// URL"
            ));
        }
        Ok(StateLocation::Sqlite(value.into()))
    }

    /// Shown in messages: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            StateLocation::Sqlite(path) => path.display().to_string(),
            StateLocation::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let _ = parsed.set_password(Some("***"));
                    parsed.to_string()
                }
                _ => url.clone(),
            },
        }
    }
}

/// Opens (creating and migrating as needed) the state at `location`.
pub async fn open(location: &StateLocation) -> Result<Arc<dyn State>, StateError> {
    match location {
        StateLocation::Sqlite(path) => Ok(Arc::new(SqliteState::open(path)?)),
        StateLocation::Postgres(url) => Ok(Arc::new(
            PostgresState::connect(url, &location.display()).await?,
        )),
    }
}

/// Where a state's schema stands: its version and the latest this tidings knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    pub current: usize,
    pub latest: usize,
}

/// The schema status of the state at `location`, changing nothing (no file is created, nothing migrated).
pub async fn schema_status(location: &StateLocation) -> Result<SchemaStatus, StateError> {
    let (current, latest) = match location {
        StateLocation::Sqlite(path) => (SqliteState::version_at(path)?, sqlite::MIGRATIONS.len()),
        StateLocation::Postgres(url) => (
            PostgresState::version_at(url, &location.display()).await?,
            postgres::MIGRATIONS.len(),
        ),
    };
    Ok(SchemaStatus { current, latest })
}

/// A time as both backends write it in text: RFC 3339, UTC, whole seconds.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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
    /// The address was forgotten on request and is in the suppression list: not added.
    Suppressed,
    /// They had left (or were suppressed) and the owner asked to resubscribe them: confirmed again.
    Resubscribed,
}

/// What an add or import writes for one address, as [`plan_upsert`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpsertWrite {
    Nothing,
    /// A new confirmed row, joined to each digest at these times; the address leaves the suppression list.
    Insert(BTreeMap<String, DateTime<Utc>>),
    /// The row's name, digests, categories and join times replaced, status confirmed (the confirmation time kept
    /// if it had one); the address leaves the suppression list.
    Update(BTreeMap<String, DateTime<Utc>>),
}

/// The rule of [`State::upsert_subscribers`] for one row, the same for every backend: what it does to `new` given
/// the row already stored for the address (if any) and whether its key is in the suppression list.
pub(crate) fn plan_upsert(
    new: &NewSubscriber,
    existing: Option<&Subscriber>,
    suppressed: bool,
    resubscribe: Resubscribe,
) -> (UpsertOutcome, UpsertWrite) {
    let comes_back = resubscribe == Resubscribe::Yes;
    match existing {
        None if suppressed && !comes_back => (UpsertOutcome::Suppressed, UpsertWrite::Nothing),
        None => {
            let joined = new
                .digests
                .iter()
                .map(|d| (d.clone(), new.subscribed_at))
                .collect();
            let outcome = if suppressed {
                UpsertOutcome::Resubscribed
            } else {
                UpsertOutcome::Added
            };
            (outcome, UpsertWrite::Insert(joined))
        }
        Some(old) if old.status.has_left() && !comes_back => {
            (UpsertOutcome::KeptUnsubscribed, UpsertWrite::Nothing)
        }
        Some(old) => {
            let same = old.name == new.name
                && old.digests == new.digests
                && old.categories == new.categories
                && old.status == SubscriberStatus::Confirmed;
            if same {
                return (UpsertOutcome::Unchanged, UpsertWrite::Nothing);
            }
            // Keep the original subscription time and each digest's join time: they bound what a new subscriber
            // gets. A digest added now (or a subscriber who comes back) starts now, never with the archive.
            let joined = new
                .digests
                .iter()
                .map(|d| {
                    let kept = old
                        .joined
                        .get(d)
                        .copied()
                        .filter(|_| !old.status.has_left());
                    (d.clone(), kept.unwrap_or(new.changed_at))
                })
                .collect();
            let outcome = if old.status.has_left() {
                UpsertOutcome::Resubscribed
            } else {
                UpsertOutcome::Updated
            };
            (outcome, UpsertWrite::Update(joined))
        }
    }
}

/// Whether an add or import may bring back an address that left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resubscribe {
    /// Never (the default): an unsubscribe or bounce is remembered whatever a later import says.
    #[default]
    Never,
    /// The owner has new consent (`subscribers import --resubscribe`).
    Yes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Now unsubscribed (kept, so nothing mails them again).
    Unsubscribed,
    /// Already unsubscribed or bounced.
    AlreadyLeft,
    /// Erased, with only the keyed hash of the address kept in the suppression list.
    Forgotten,
    NotFound,
}

/// What a sign-up from the subscribe form did. The form answers the same whatever this says (no address
/// enumeration); it decides only which message the address gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A new subscriber (stored pending), a pending one (their choices replaced), or one who had left (their
    /// choices replaced, still left): nothing is sent to them until they confirm with this handle's token.
    AwaitingConfirmation(SubscriberHandle),
    /// Already confirmed: nothing changed (their choices are changed through their preferences link).
    AlreadyConfirmed(SubscriberHandle),
    /// Forgotten on request (in the suppression list): nothing stored.
    Suppressed,
}

/// What a confirmation link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Pending (or left and signed up again): now confirmed.
    Confirmed,
    AlreadyConfirmed,
    NotFound,
}

/// What an unsubscribe link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// Left that one digest; still takes others.
    LeftDigest,
    /// Left the list (kept, so it is never mailed again).
    Unsubscribed,
    /// Had already left (the list, or that digest).
    AlreadyLeft,
    NotFound,
}

/// What a preferences change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferencesOutcome {
    Saved,
    /// They unsubscribed or bounced: nothing changed (signing up again is how to come back).
    HasLeft,
    NotFound,
}

/// Whether the link-token secret was already stored or has just been stored.
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
    /// When every delivery was written; `None` while planning (nothing of it is sent before).
    pub planned: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// Why the tick was let pass instead of sent (the daemon was down too long), if it was.
    pub skipped: Option<String>,
}

/// A run with how many of its deliveries stand in each status (`digest runs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub run: Run,
    pub counts: BTreeMap<DeliveryStatus, usize>,
}

/// A delivery claimed for sending, with its subscriber as they are now (they may have left since planning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub delivery: Delivery,
    pub subscriber: Subscriber,
}

/// Whether a run could be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunProgress {
    /// Every delivery is final; the run is (now, or already) finished.
    Finished,
    /// This many deliveries are still pending or deferred: the run stays open to be resumed.
    Open { remaining: usize },
}

/// A related-reading pick as recorded with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPick {
    /// The article suggested.
    pub slug: String,
    /// The new article it was suggested for ("because you read …").
    pub because: String,
}

/// One subscriber's message of a run, to be written before sending: enough to render the same message again
/// when a run is resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub email: EmailAddress,
    pub message_id: String,
    /// The new articles in this message (slugs, in digest order).
    pub articles: Vec<String>,
    /// The related-reading picks in this message, in order.
    pub related: Vec<RecordedPick>,
    /// New articles left out by `max_articles` (the message says so).
    pub over_limit: usize,
    /// Where the subscriber's window started ("new since …").
    pub window_after: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub run: RunId,
    pub email: EmailAddress,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The last server reply of a deferred or failed delivery, or why it was cancelled.
    pub last_error: Option<String>,
    pub message_id: String,
    pub articles: Vec<String>,
    pub related: Vec<RecordedPick>,
    pub over_limit: usize,
    pub window_after: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One digest a subscriber received (a sent delivery), for windows and "not in your last few digests".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub tick: DateTime<Utc>,
    pub articles: Vec<String>,
    pub related: Vec<String>,
}

/// The state store. Every method is one transaction; implementations keep the delivery semantics above, and the
/// conformance suite checks that they do.
#[async_trait::async_trait]
pub trait State: Send + Sync {
    /// Adds a confirmed subscriber or updates one (never re-subscribing an unsubscribed, bounced or suppressed
    /// one unless `resubscribe` says so). `key` is the address's suppression key.
    async fn upsert_subscriber(
        &self,
        new: &NewSubscriber,
        key: &SuppressionKey,
        resubscribe: Resubscribe,
    ) -> Result<UpsertOutcome, StateError> {
        let mut outcomes = self
            .upsert_subscribers(&[(new.clone(), key.clone())], resubscribe)
            .await?;
        Ok(outcomes.pop().expect("one outcome per subscriber"))
    }
    /// [`State::upsert_subscriber`] for a whole list, in one transaction (an import of 100,000 rows).
    async fn upsert_subscribers(
        &self,
        batch: &[(NewSubscriber, SuppressionKey)],
        resubscribe: Resubscribe,
    ) -> Result<Vec<UpsertOutcome>, StateError>;
    /// Sets where a subscriber stands (an unsubscribe, a bounce, a confirmation); `false` if there is no such
    /// subscriber. Confirming sets the confirmation time once.
    async fn set_subscriber_status(
        &self,
        email: &EmailAddress,
        status: SubscriberStatus,
        at: DateTime<Utc>,
    ) -> Result<bool, StateError>;
    /// Unsubscribes an address (kept, so it is never mailed again).
    async fn unsubscribe(
        &self,
        email: &EmailAddress,
        at: DateTime<Utc>,
    ) -> Result<RemoveOutcome, StateError>;
    /// Erases a subscriber and their delivery history (their personal data), keeping only `key` in the
    /// suppression list.
    async fn forget(
        &self,
        email: &EmailAddress,
        key: &SuppressionKey,
        at: DateTime<Utc>,
    ) -> Result<RemoveOutcome, StateError>;
    /// Every subscriber (of `digest`, when given), by address.
    async fn subscribers(&self, digest: Option<&str>) -> Result<Vec<Subscriber>, StateError>;
    async fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, StateError>;
    /// The link-token secret: the stored one, or `candidate` stored now (first use).
    async fn secret(&self, candidate: &[u8]) -> Result<(Vec<u8>, SecretOrigin), StateError>;
    /// A page of `digest`'s subscribers in address order: at most `limit`, those after `after` (from the first
    /// when `None`). Planning goes page by page, so memory does not grow with the list.
    async fn subscribers_page(
        &self,
        digest: &str,
        after: Option<&EmailAddress>,
        limit: usize,
    ) -> Result<Vec<Subscriber>, StateError>;
    /// For every subscriber of `digest` who received one (only those from `among.0` to `among.1` in address
    /// order, when given), their `last` digests sent for ticks before `before`, newest first, in one query.
    async fn received(
        &self,
        digest: &str,
        before: DateTime<Utc>,
        last: usize,
        among: Option<(&EmailAddress, &EmailAddress)>,
    ) -> Result<BTreeMap<EmailAddress, Vec<Received>>, StateError>;
    /// The newest tick of `digest` that has a run.
    async fn latest_tick(&self, digest: &str) -> Result<Option<DateTime<Utc>>, StateError>;
    async fn run(&self, digest: &str, tick: DateTime<Utc>) -> Result<Option<Run>, StateError>;
    /// Starts the run of a tick, planning and with no deliveries yet; [`StateError::RunExists`] if the tick has
    /// one.
    async fn begin_run(
        &self,
        digest: &str,
        tick: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> Result<RunId, StateError>;
    /// Adds pending deliveries to a run that is still planning (a page of subscribers at a time, so memory stays
    /// flat). One per subscriber: a subscriber added again keeps the first (so planning can be resumed, and
    /// several replicas can plan one tick together); [`StateError::AlreadyPlanned`] once planning has ended.
    async fn add_deliveries(
        &self,
        run: RunId,
        deliveries: &[NewDelivery],
    ) -> Result<(), StateError>;
    /// Records that a tick was let pass (`reason`: the daemon was down longer than `[schedule] catch_up`): a run
    /// with no deliveries, finished at `at`, so the tick is never sent later; [`StateError::RunExists`] if it has
    /// a run.
    async fn skip_run(
        &self,
        digest: &str,
        tick: DateTime<Utc>,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<RunId, StateError>;
    /// Ends a run's planning: its deliveries are fixed, and only now can they be claimed.
    async fn end_planning(&self, run: RunId, at: DateTime<Utc>) -> Result<(), StateError>;
    /// Begins, fills and ends a run at once (for tests and small runs).
    async fn plan_run(
        &self,
        digest: &str,
        tick: DateTime<Utc>,
        created: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<RunId, StateError> {
        let run = self.begin_run(digest, tick, created).await?;
        self.add_deliveries(run, deliveries).await?;
        self.end_planning(run, created).await?;
        Ok(run)
    }
    /// A run's deliveries, by address.
    async fn deliveries(&self, run: RunId) -> Result<Vec<Delivery>, StateError>;
    /// Claims up to `limit` open (pending or deferred) deliveries of `run` for `owner` until `lease_until`, in id
    /// order: those nobody holds or whose lease expired before `now` (not those `owner` holds: a message it gave up
    /// on stays with it until it releases its claims). Atomic: two senders never get the same delivery.
    async fn claim(
        &self,
        run: RunId,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StateError>;
    /// Gives up every claim `owner` holds (it stopped, or it is known dead); returns how many.
    async fn release_claims(&self, owner: &str) -> Result<usize, StateError>;
    /// Who holds claims on open deliveries of `run` whose lease has not expired at `now`.
    async fn claimants(&self, run: RunId, now: DateTime<Utc>) -> Result<Vec<String>, StateError>;
    /// Who holds live claims (at `now`) on deliveries of `run` still `pending`: the senders a replica that has
    /// nothing left to claim waits for, since one of them may die and leave those to be taken over. (A sender's
    /// `deferred` claims are messages it has given up on for this send: nobody waits for those.)
    async fn senders_with_unsent(
        &self,
        run: RunId,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError>;
    /// How many of the subscriber's latest deliveries failed for good since the last one that was sent.
    async fn failures_in_a_row(&self, email: &EmailAddress) -> Result<usize, StateError>;
    /// Runs (of `digest`, when given), newest tick first, with their delivery counts.
    async fn runs(&self, digest: Option<&str>) -> Result<Vec<RunSummary>, StateError>;
    /// When tidings first saw each article published (slug → time), as recorded by [`State::record_first_seen`].
    async fn first_seen(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StateError>;
    /// Records first-seen times for articles not seen before (an existing record is never moved).
    async fn record_first_seen(&self, seen: &[(String, DateTime<Utc>)]) -> Result<(), StateError>;
    /// Records what happened to a delivery, moving it as [`DeliveryStatus::apply`] says (atomically: of two
    /// concurrent events on an open delivery, one applies and the other finds it final).
    async fn record(
        &self,
        delivery: DeliveryId,
        event: &DeliveryEvent,
    ) -> Result<Transition, StateError> {
        let mut transitions = self.record_all(&[(delivery, event.clone())]).await?;
        transitions.pop().ok_or(StateError::NoDelivery(delivery))
    }
    /// Records several events in one transaction (all or none), each as [`State::record`] would, in order; the
    /// transitions in the same order. One commit for many messages is what lets a send keep up with its relay.
    async fn record_all(
        &self,
        events: &[(DeliveryId, DeliveryEvent)],
    ) -> Result<Vec<Transition>, StateError>;
    /// Closes the run at `at` if its planning has ended and none of its deliveries is open any more.
    async fn finish_run(&self, run: RunId, at: DateTime<Utc>) -> Result<RunProgress, StateError>;
    /// Records a sign-up from the subscribe form as [`SignupOutcome`] says: never confirms anyone, never
    /// changes a confirmed subscriber, never stores a suppressed address. Each digest is joined at
    /// `new.changed_at`.
    async fn sign_up(
        &self,
        new: &NewSubscriber,
        key: &SuppressionKey,
    ) -> Result<SignupOutcome, StateError>;
    /// The subscriber a link token names.
    async fn subscriber_by_handle(
        &self,
        handle: &SubscriberHandle,
    ) -> Result<Option<Subscriber>, StateError>;
    /// Confirms a subscription (the double opt-in link): pending or left → confirmed, the confirmation time
    /// set once.
    async fn confirm(
        &self,
        handle: &SubscriberHandle,
        at: DateTime<Utc>,
    ) -> Result<ConfirmOutcome, StateError>;
    /// Leaves `digest` (when they take others too) or the whole list (`None`, or their only digest).
    async fn leave(
        &self,
        handle: &SubscriberHandle,
        digest: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<LeaveOutcome, StateError>;
    /// Replaces a pending or confirmed subscriber's digests and categories; a digest new to them is joined at
    /// `at`, one they keep keeps its join time.
    async fn set_preferences(
        &self,
        handle: &SubscriberHandle,
        digests: &[String],
        categories: &[String],
        at: DateTime<Utc>,
    ) -> Result<PreferencesOutcome, StateError>;
    /// Takes or keeps the lease `name` (a job one replica at a time does, such as the feed build) for `owner`
    /// until `until`: granted when nobody holds it, `owner` already does, or the holder's lease ended before
    /// `now`. Returns whether `owner` holds it now.
    async fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StateError>;
    /// Gives up the lease `name` if `owner` holds it (a replica stopping hands the job over at once).
    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StateError>;
    /// Takes up to `want` sends from the budget of rate window `window` (a number every sender computes alike
    /// from the clock), which allows `limit` in all: the relay's rate shared by every replica. Returns how many
    /// were granted (0 when the window's budget is spent).
    async fn take_send_budget(&self, window: i64, want: u32, limit: u32)
    -> Result<u32, StateError>;
    /// The link-token secret, if one is stored (unlike [`State::secret`], never stores one).
    async fn stored_secret(&self) -> Result<Option<Vec<u8>>, StateError>;
    /// The suppression list (keyed hashes of forgotten addresses), by key.
    async fn suppressions(&self) -> Result<Vec<dump::DumpSuppression>, StateError>;
    /// Writes a whole exported state into this one, which must be empty (no subscriber, run or suppression), in
    /// one transaction: ids, handles, statuses and times as they were.
    async fn load(&self, dump: &dump::StateDump) -> Result<(), StateError>;
    /// Answers when the store is reachable and readable (`/healthz`).
    async fn ping(&self) -> Result<(), StateError>;
}

//! [`SqliteState`]: the embedded [`State`] backend, one SQLite file with versioned migrations.
//!
//! rusqlite is synchronous, so every operation runs on tokio's blocking pool ([`SqliteState::call`]) with the one
//! connection behind a mutex: async callers never stall the runtime, and SQLite sees one writer per process.
//! Times are stored as RFC 3339 UTC text (fixed width, so text order is time order); lists (digests,
//! categories, article slugs) as JSON arrays.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::dump::{DumpSuppression, StateDump};
use super::{
    Claimed, ConfirmOutcome, Delivery, DeliveryId, LeaveOutcome, NewDelivery, PreferencesOutcome,
    Received, RecordedPick, RemoveOutcome, Resubscribe, Run, RunId, RunProgress, RunSummary,
    SecretOrigin, SignupOutcome, State, StateError, UpsertOutcome, UpsertWrite, plan_upsert,
};
use crate::domain::{
    DeliveryEvent, DeliveryStatus, EmailAddress, NewSubscriber, Subscriber, SubscriberHandle,
    SubscriberStatus, SuppressionKey, Transition,
};

/// Schema versions in order; version N is `MIGRATIONS[N - 1]`, recorded in `PRAGMA user_version`.
/// Never edit one that has shipped: add the next.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: subscribers, runs, deliveries, settings.
    "CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced')),
        digests TEXT NOT NULL DEFAULT '[]',
        categories TEXT NOT NULL DEFAULT '[]',
        created TEXT NOT NULL,
        confirmed TEXT,
        -- digest name -> when they joined it (RFC 3339): a digest added later starts its window then.
        joined TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL,
        tick TEXT NOT NULL,
        articles TEXT NOT NULL DEFAULT '[]',
        created TEXT NOT NULL,
        finished TEXT,
        UNIQUE (digest, tick)
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        subscriber INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT NOT NULL,
        articles TEXT NOT NULL DEFAULT '[]',
        related TEXT NOT NULL DEFAULT '[]',
        sent_at TEXT,
        UNIQUE (run, subscriber)
    );
    CREATE INDEX deliveries_subscriber ON deliveries (subscriber, status);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
    // 2: deliveries gain `deferred` (a transient failure, retried) apart from `failed` (permanent, final);
    // version 1 used `failed` for both and retried it, so its failed rows become deferred. They also keep what a
    // resumed message needs to read as planned: the article each related pick was for (`because`, a JSON list
    // beside `related`) and how many articles `max_articles` left out.
    "CREATE TABLE deliveries_v2 (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        subscriber INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('pending', 'deferred', 'sent', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT NOT NULL,
        articles TEXT NOT NULL DEFAULT '[]',
        related TEXT NOT NULL DEFAULT '[]',
        because TEXT NOT NULL DEFAULT '[]',
        over_limit INTEGER NOT NULL DEFAULT 0,
        window_after TEXT,
        sent_at TEXT,
        -- a sender's claim: who, and until when (see State::claim)
        claimed_by TEXT,
        lease_until TEXT,
        UNIQUE (run, subscriber)
    );
    INSERT INTO deliveries_v2 (id, run, subscriber, status, attempts, last_error, message_id, articles, related,
                               sent_at)
        SELECT id, run, subscriber, CASE status WHEN 'failed' THEN 'deferred' ELSE status END, attempts,
               last_error, message_id, articles, related, sent_at
        FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v2 RENAME TO deliveries;
    CREATE INDEX deliveries_subscriber ON deliveries (subscriber, status);
    CREATE INDEX deliveries_open ON deliveries (run, status, id);
    -- when tidings first saw each article published: a back-dated post still goes out once
    CREATE TABLE articles_seen (slug TEXT PRIMARY KEY, first_seen TEXT NOT NULL);
    -- forgotten addresses, as keyed hashes only: never subscribed again
    CREATE TABLE suppressions (key TEXT PRIMARY KEY, created TEXT NOT NULL);",
    // 3: every subscriber gets a random handle, the name link tokens give them instead of their address.
    // Rows are only ever inserted with one (`NEW_HANDLE`); the index keeps them unique.
    "ALTER TABLE subscribers ADD COLUMN handle TEXT;
    UPDATE subscribers SET handle = lower(hex(randomblob(16)));
    CREATE UNIQUE INDEX subscribers_handle ON subscribers (handle);",
    // 4: a run is planned page by page (`planned` stays NULL until every delivery is written, and nothing of it
    // is claimed before), and a tick the scheduler let pass is kept as a run with the reason (`skipped`).
    "ALTER TABLE runs ADD COLUMN planned TEXT;
    UPDATE runs SET planned = created;
    ALTER TABLE runs ADD COLUMN skipped TEXT;",
    // 5: leases for jobs one replica does at a time (the feed build), and the send budget of each rate window
    // that every sender shares.
    "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until TEXT NOT NULL);
    CREATE TABLE send_budget (window INTEGER PRIMARY KEY, used INTEGER NOT NULL);",
];

/// The SQL expression for a new subscriber's handle: 16 bytes from SQLite's generator (ChaCha20 seeded by the
/// OS). A handle need not be secret (tokens are signed), only unique and never reused.
const NEW_HANDLE: &str = "lower(hex(randomblob(16)))";

const SECRET_KEY: &str = "link_token_secret";

/// Inserts a tick's run: one being planned, or (with the reason) a skipped one, planned and finished at once;
/// [`StateError::RunExists`] if the tick has one.
fn insert_run(
    conn: &Connection,
    digest: String,
    tick: DateTime<Utc>,
    created: DateTime<Utc>,
    skipped: Option<String>,
) -> Result<RunId, Fault> {
    let closed = skipped.as_ref().map(|_| ts(created));
    let inserted = conn.execute(
        "INSERT INTO runs (digest, tick, created, planned, finished, skipped)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)
         ON CONFLICT (digest, tick) DO NOTHING",
        params![digest, ts(tick), ts(created), closed, skipped],
    )?;
    if inserted == 0 {
        return Err(Fault::State(StateError::RunExists {
            digest,
            tick: ts(tick),
        }));
    }
    Ok(conn.last_insert_rowid())
}

/// The columns of a run, in the order [`read_run`] reads them.
const RUN_COLUMNS: &str = "runs.id, runs.digest, runs.tick, runs.articles, runs.created, runs.planned, runs.finished, runs.skipped";
const RUN_COLUMN_COUNT: usize = 8;

type RunRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn read_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn to_run(
    (id, digest, tick, articles, created, planned, finished, skipped): RunRow,
) -> Result<Run, Fault> {
    Ok(Run {
        id,
        digest,
        tick: parse_ts(&tick)?,
        articles: parse_list(&articles)?,
        created: parse_ts(&created)?,
        planned: planned.as_deref().map(parse_ts).transpose()?,
        finished: finished.as_deref().map(parse_ts).transpose()?,
        skipped,
    })
}

/// Moves one delivery as `event` says. The guard on the current status is in the UPDATE itself, so the move is
/// atomic; a final status is only read back to say what refused the event. Claims are left to `release_claims`.
fn record_one(
    conn: &Connection,
    delivery: DeliveryId,
    event: &DeliveryEvent,
) -> Result<Transition, Fault> {
    let target = event.target();
    let n = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?2, attempts = attempts + ?3, last_error = ?4,
                    sent_at = COALESCE(?5, sent_at)
             WHERE id = ?1 AND status IN ('pending', 'deferred')",
        )?
        .execute(params![
            delivery,
            target.as_str(),
            i64::from(event.is_attempt()),
            event.note(),
            event.sent_at().map(ts)
        ])?;
    if n == 1 {
        return Ok(Transition::Applied(target));
    }
    let current: Option<String> = conn
        .query_row(
            "SELECT status FROM deliveries WHERE id = ?1",
            [delivery],
            |r| r.get(0),
        )
        .optional()?;
    let current = current.ok_or(Fault::State(StateError::NoDelivery(delivery)))?;
    let status =
        DeliveryStatus::parse(&current).ok_or_else(|| corrupt("delivery status", &current))?;
    Ok(status.apply(event))
}

/// The embedded backend: one SQLite file (or a private in-memory database for tests and previews).
pub struct SqliteState {
    conn: Arc<Mutex<Connection>>,
}

/// What an operation's closure can fail with: the driver's error (named by the operation in [`SqliteState::call`])
/// or one of ours.
enum Fault {
    Sql(rusqlite::Error),
    State(StateError),
}

impl From<rusqlite::Error> for Fault {
    fn from(e: rusqlite::Error) -> Fault {
        Fault::Sql(e)
    }
}

impl From<StateError> for Fault {
    fn from(e: StateError) -> Fault {
        Fault::State(e)
    }
}

type Outcome<T> = Result<T, Fault>;

fn ts(t: DateTime<Utc>) -> String {
    super::rfc3339(t)
}

fn corrupt(what: &'static str, value: &str) -> Fault {
    Fault::State(StateError::Corrupt {
        what,
        value: value.into(),
    })
}

fn parse_ts(s: &str) -> Outcome<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt("timestamp", s))
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

fn parse_list(s: &str) -> Outcome<Vec<String>> {
    serde_json::from_str(s).map_err(|_| corrupt("list", s))
}

fn parse_email(s: &str) -> Outcome<EmailAddress> {
    EmailAddress::parse(s).map_err(|_| corrupt("email address", s))
}

fn parse_joined(s: &str) -> Outcome<BTreeMap<String, DateTime<Utc>>> {
    let raw: BTreeMap<String, String> =
        serde_json::from_str(s).map_err(|_| corrupt("joined times", s))?;
    raw.into_iter()
        .map(|(d, t)| Ok((d, parse_ts(&t)?)))
        .collect()
}

fn json_joined(joined: &BTreeMap<String, DateTime<Utc>>) -> String {
    let raw: BTreeMap<&str, String> = joined.iter().map(|(d, t)| (d.as_str(), ts(*t))).collect();
    serde_json::to_string(&raw).expect("a map of strings serializes")
}

/// Related picks from their two stored lists. A version 1 row has no `because`: its picks are then for the
/// first article, as version 1 rendered them.
fn picks(related: Vec<String>, because: Vec<String>) -> Vec<RecordedPick> {
    related
        .into_iter()
        .enumerate()
        .map(|(i, slug)| RecordedPick {
            because: because.get(i).cloned().unwrap_or_default(),
            slug,
        })
        .collect()
}

const SUBSCRIBER_COLUMNS: &str =
    "email, name, status, digests, categories, created, confirmed, joined, handle";

/// [`SUBSCRIBER_COLUMNS`] of the `subscribers` table in a join.
const SUBSCRIBER_JOINED_COLUMNS: &str = "subscribers.email, subscribers.name, subscribers.status, \
     subscribers.digests, subscribers.categories, subscribers.created, subscribers.confirmed, subscribers.joined, \
     subscribers.handle";

/// A subscriber row in [`SUBSCRIBER_COLUMNS`] order, read as text first so a bad value is reported as corrupt.
fn read_subscriber(row: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; 9]> {
    read_subscriber_at(row, 0)
}

/// [`read_subscriber`] from column `first` on (after a delivery's columns in a join).
fn read_subscriber_at(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<[Option<String>; 9]> {
    let mut cols: [Option<String>; 9] = Default::default();
    for (i, col) in cols.iter_mut().enumerate() {
        *col = row.get(first + i)?;
    }
    Ok(cols)
}

/// A delivery joined with its subscriber's address, in the order [`read_delivery`] reads.
const DELIVERY_COLUMNS: &str = "deliveries.id, deliveries.run, subscribers.email, deliveries.status, \
     deliveries.attempts, deliveries.last_error, deliveries.message_id, deliveries.articles, deliveries.related, \
     deliveries.sent_at, deliveries.because, deliveries.over_limit, deliveries.window_after";
const DELIVERY_COLUMN_COUNT: usize = 13;

/// A delivery row as read, before its values are checked.
struct DeliveryRow {
    id: i64,
    run: i64,
    email: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    message_id: String,
    articles: String,
    related: String,
    sent_at: Option<String>,
    because: String,
    over_limit: i64,
    window_after: Option<String>,
}

fn read_delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        run: r.get(1)?,
        email: r.get(2)?,
        status: r.get(3)?,
        attempts: r.get(4)?,
        last_error: r.get(5)?,
        message_id: r.get(6)?,
        articles: r.get(7)?,
        related: r.get(8)?,
        sent_at: r.get(9)?,
        because: r.get(10)?,
        over_limit: r.get(11)?,
        window_after: r.get(12)?,
    })
}

fn to_delivery(row: DeliveryRow) -> Outcome<Delivery> {
    Ok(Delivery {
        id: row.id,
        run: row.run,
        email: parse_email(&row.email)?,
        status: DeliveryStatus::parse(&row.status)
            .ok_or_else(|| corrupt("delivery status", &row.status))?,
        attempts: row.attempts.max(0) as u32,
        last_error: row.last_error,
        message_id: row.message_id,
        articles: parse_list(&row.articles)?,
        related: picks(parse_list(&row.related)?, parse_list(&row.because)?),
        over_limit: row.over_limit.max(0) as usize,
        // Version 1 rows kept no window: they read as "since the beginning".
        window_after: match row.window_after {
            Some(t) => parse_ts(&t)?,
            None => DateTime::<Utc>::MIN_UTC,
        },
        sent_at: row.sent_at.as_deref().map(parse_ts).transpose()?,
    })
}

fn to_subscriber(cols: [Option<String>; 9]) -> Outcome<Subscriber> {
    let [
        email,
        name,
        status,
        digests,
        categories,
        created,
        confirmed,
        joined,
        handle,
    ] = cols;
    let text = |v: Option<String>| v.unwrap_or_default();
    let status = text(status);
    let handle = text(handle);
    Ok(Subscriber {
        email: parse_email(&text(email))?,
        handle: SubscriberHandle::parse_hex(&handle)
            .ok_or_else(|| corrupt("subscriber handle", &handle))?,
        name: text(name),
        status: SubscriberStatus::parse(&status)
            .ok_or_else(|| corrupt("subscriber status", &status))?,
        digests: parse_list(&text(digests))?,
        categories: parse_list(&text(categories))?,
        created: parse_ts(&text(created))?,
        confirmed: confirmed.as_deref().map(parse_ts).transpose()?,
        joined: parse_joined(&text(joined))?,
    })
}

fn subscriber_by_handle(
    conn: &Connection,
    handle: &SubscriberHandle,
) -> Outcome<Option<Subscriber>> {
    conn.query_row(
        &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE handle = ?1"),
        [handle.to_hex()],
        read_subscriber,
    )
    .optional()?
    .map(to_subscriber)
    .transpose()
}

fn subscriber_by_email(conn: &Connection, email: &str) -> Outcome<Option<Subscriber>> {
    conn.query_row(
        &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?1"),
        [email],
        read_subscriber,
    )
    .optional()?
    .map(to_subscriber)
    .transpose()
}

impl SqliteState {
    /// Opens (creating it and its folder if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteState, StateError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            // A failure here surfaces as the open error below, which names the path.
            let _ = std::fs::create_dir_all(dir);
        }
        // One database, one name: through a symlink or another relative path SQLite would keep a second
        // write-ahead log beside the other name, so two processes would not see each other's writes.
        let path = &canonical(path);
        prepare_file(path).map_err(|reason| StateError::Unavailable {
            location: name.clone(),
            reason,
        })?;
        let conn = Connection::open(path).map_err(|e| StateError::Unavailable {
            location: name.clone(),
            reason: e.to_string(),
        })?;
        SqliteState::init(conn, &name)
    }

    /// The schema version of the database at `path`, changing nothing: 0 when there is no file yet.
    pub fn version_at(path: &Path) -> Result<usize, StateError> {
        if !path.exists() {
            return Ok(0);
        }
        let unavailable = |e: rusqlite::Error| StateError::Unavailable {
            location: path.display().to_string(),
            reason: e.to_string(),
        };
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(unavailable)?;
        user_version(&conn).map_err(unavailable)
    }

    /// A private in-memory database (tests, previews).
    pub fn in_memory() -> Result<SqliteState, StateError> {
        let conn = Connection::open_in_memory().map_err(|e| StateError::Unavailable {
            location: ":memory:".into(),
            reason: e.to_string(),
        })?;
        SqliteState::init(conn, ":memory:")
    }

    fn init(mut conn: Connection, name: &str) -> Result<SqliteState, StateError> {
        let open_err = |e: rusqlite::Error| StateError::Unavailable {
            location: name.into(),
            reason: e.to_string(),
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // Deleted rows are overwritten, not left in free pages: `subscribers remove --forget` must erase.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(open_err)?;
        // WAL lets `digest preview` and `subscribers list` read while a send writes. In-memory databases ignore it.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        // In WAL mode NORMAL syncs at checkpoints instead of at every commit: a killed process loses nothing (the
        // log is in the OS's cache), and only a power cut can roll back the last commits, which for the ledger means
        // re-sending the messages recorded in them. FULL would cost an fsync per recorded message (tens of
        // messages per second instead of thousands).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        let version = user_version(&conn).map_err(open_err)?;
        if version > MIGRATIONS.len() {
            return Err(StateError::TooNew {
                location: name.into(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let target = i + 1;
            let migrate = |e: rusqlite::Error| StateError::Migrate {
                location: name.into(),
                version: target,
                reason: e.to_string(),
            };
            let tx = conn.transaction().map_err(migrate)?;
            tx.execute_batch(sql).map_err(migrate)?;
            tx.pragma_update(None, "user_version", target as i64)
                .map_err(migrate)?;
            tx.commit().map_err(migrate)?;
        }
        Ok(SqliteState {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on tokio's blocking pool; a driver error is reported as `operation` failing.
    async fn call<T, F>(&self, operation: &'static str, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Outcome<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let joined = tokio::task::spawn_blocking(move || {
            // A panic in another operation cannot leave SQLite half-written (transactions roll back on drop),
            // so a poisoned lock is still a usable connection.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await;
        match joined {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Fault::State(e))) => Err(e),
            Ok(Err(Fault::Sql(e))) => Err(StateError::Failed {
                operation,
                reason: e.to_string(),
            }),
            Err(e) => Err(StateError::Failed {
                operation,
                reason: e.to_string(),
            }),
        }
    }

    /// The schema version after migrations.
    pub async fn schema_version(&self) -> Result<usize, StateError> {
        self.call("read the schema version", |conn| Ok(user_version(conn)?))
            .await
    }
}

/// Creates a new database file readable by its owner only (it holds addresses and the link-token secret; SQLite
/// gives its journal files the same mode), and refuses an existing empty file, which SQLite would silently take
/// for a new database (a truncated copy, a failed restore).
fn prepare_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => Err(
            "the file is empty, not a tidings database (a failed copy or restore?); restore it, or delete it to \
             start a new one"
                .into(),
        ),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(_) => Ok(()),
                // Another process created it a moment ago: it is theirs to fill.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `path` with its folder's symlinks and relative parts resolved (the file itself may not exist yet); as given
/// when the folder cannot be resolved (the open then reports why).
fn canonical(path: &Path) -> std::path::PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(file)) => dir.join(file),
        _ => path.to_owned(),
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map(|v| v as usize)
}

#[async_trait::async_trait]
impl State for SqliteState {
    async fn upsert_subscribers(
        &self,
        batch: &[(NewSubscriber, SuppressionKey)],
        resubscribe: Resubscribe,
    ) -> Result<Vec<UpsertOutcome>, StateError> {
        let batch = batch.to_vec();
        self.call("add or update subscribers", move |conn| {
            let tx = conn.transaction()?;
            let mut outcomes = Vec::with_capacity(batch.len());
            {
                let mut find = tx.prepare_cached(&format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?1"
                ))?;
                let mut suppressed = tx.prepare_cached("SELECT 1 FROM suppressions WHERE key = ?1")?;
                let mut unsuppress = tx.prepare_cached("DELETE FROM suppressions WHERE key = ?1")?;
                let mut insert = tx.prepare_cached(
                    &format!(
                        "INSERT INTO subscribers (email, name, status, digests, categories, created, confirmed,
                                                  joined, handle)
                         VALUES (?1, ?2, 'confirmed', ?3, ?4, ?5, ?5, ?6, {NEW_HANDLE})"
                    ),
                )?;
                let mut update = tx.prepare_cached(
                    "UPDATE subscribers SET name = ?2, digests = ?3, categories = ?4, status = 'confirmed',
                     confirmed = COALESCE(confirmed, ?5), joined = ?6 WHERE email = ?1",
                )?;
                for (new, key) in &batch {
                    let existing = find
                        .query_row([new.email.as_str()], read_subscriber)
                        .optional()?
                        .map(to_subscriber)
                        .transpose()?;
                    let is_suppressed = suppressed.exists([&key.0])?;
                    // The values both the INSERT and the UPDATE write, in their parameter order.
                    let row = |joined: &BTreeMap<String, DateTime<Utc>>| {
                        (
                            new.email.as_str(),
                            new.name.as_str(),
                            json_list(&new.digests),
                            json_list(&new.categories),
                            ts(new.subscribed_at),
                            json_joined(joined),
                        )
                    };
                    let (outcome, write) =
                        plan_upsert(new, existing.as_ref(), is_suppressed, resubscribe);
                    match &write {
                        UpsertWrite::Nothing => {}
                        UpsertWrite::Insert(joined) => {
                            insert.execute(row(joined))?;
                            unsuppress.execute([&key.0])?;
                        }
                        UpsertWrite::Update(joined) => {
                            update.execute(row(joined))?;
                            unsuppress.execute([&key.0])?;
                        }
                    }
                    outcomes.push(outcome);
                }
            }
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    async fn set_subscriber_status(
        &self,
        email: &EmailAddress,
        status: SubscriberStatus,
        at: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let email = email.clone();
        self.call("change a subscriber's status", move |conn| {
            let confirmed = (status == SubscriberStatus::Confirmed).then(|| ts(at));
            let n = conn.execute(
                "UPDATE subscribers SET status = ?2, confirmed = COALESCE(confirmed, ?3) WHERE email = ?1",
                params![email.as_str(), status.as_str(), confirmed],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn unsubscribe(
        &self,
        email: &EmailAddress,
        _at: DateTime<Utc>,
    ) -> Result<RemoveOutcome, StateError> {
        let email = email.clone();
        self.call("unsubscribe", move |conn| {
            let tx = conn.transaction()?;
            let Some(old) = subscriber_by_email(&tx, email.as_str())? else {
                return Ok(RemoveOutcome::NotFound);
            };
            if old.status.has_left() {
                return Ok(RemoveOutcome::AlreadyLeft);
            }
            tx.execute(
                "UPDATE subscribers SET status = 'unsubscribed' WHERE email = ?1",
                [email.as_str()],
            )?;
            tx.commit()?;
            Ok(RemoveOutcome::Unsubscribed)
        })
        .await
    }

    async fn forget(
        &self,
        email: &EmailAddress,
        key: &SuppressionKey,
        at: DateTime<Utc>,
    ) -> Result<RemoveOutcome, StateError> {
        let email = email.clone();
        let key = key.clone();
        self.call("forget a subscriber", move |conn| {
            let tx = conn.transaction()?;
            let n = tx.execute("DELETE FROM subscribers WHERE email = ?1", [email.as_str()])?;
            tx.execute(
                "INSERT INTO suppressions (key, created) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key.0, ts(at)],
            )?;
            tx.commit()?;
            // The old pages may still sit in the write-ahead log: fold it into the (securely overwritten)
            // database and empty it, so no copy of the address is left on disk.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(if n == 0 {
                RemoveOutcome::NotFound
            } else {
                RemoveOutcome::Forgotten
            })
        })
        .await
    }

    async fn subscribers(&self, digest: Option<&str>) -> Result<Vec<Subscriber>, StateError> {
        let digest = digest.map(String::from);
        self.call("list subscribers", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
                 WHERE ?1 IS NULL OR EXISTS (SELECT 1 FROM json_each(subscribers.digests) WHERE value = ?1)
                 ORDER BY email"
            ))?;
            let rows = stmt.query_map([digest], read_subscriber)?;
            rows.map(|r| to_subscriber(r?)).collect()
        })
        .await
    }

    async fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, StateError> {
        let email = email.clone();
        self.call("read a subscriber", move |conn| {
            subscriber_by_email(conn, email.as_str())
        })
        .await
    }

    async fn secret(&self, candidate: &[u8]) -> Result<(Vec<u8>, SecretOrigin), StateError> {
        let candidate = candidate.to_vec();
        self.call("read the link-token secret", move |conn| {
            let tx = conn.transaction()?;
            let stored: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT value FROM settings WHERE key = ?1",
                    [SECRET_KEY],
                    |r| r.get(0),
                )
                .optional()?;
            let result = match stored {
                Some(secret) => (secret, SecretOrigin::Stored),
                None => {
                    tx.execute(
                        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                        params![SECRET_KEY, candidate],
                    )?;
                    (candidate, SecretOrigin::Generated)
                }
            };
            tx.commit()?;
            Ok(result)
        })
        .await
    }

    async fn subscribers_page(
        &self,
        digest: &str,
        after: Option<&EmailAddress>,
        limit: usize,
    ) -> Result<Vec<Subscriber>, StateError> {
        let digest = digest.to_string();
        let after = after.map(|e| e.as_str().to_string());
        self.call("list subscribers", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
                 WHERE (?2 IS NULL OR email > ?2)
                   AND EXISTS (SELECT 1 FROM json_each(subscribers.digests) WHERE value = ?1)
                 ORDER BY email LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![digest, after, limit as i64], read_subscriber)?;
            rows.map(|r| to_subscriber(r?)).collect()
        })
        .await
    }

    async fn received(
        &self,
        digest: &str,
        before: DateTime<Utc>,
        last: usize,
        among: Option<(&EmailAddress, &EmailAddress)>,
    ) -> Result<BTreeMap<EmailAddress, Vec<Received>>, StateError> {
        let digest = digest.to_string();
        let (from, to) = match among {
            Some((from, to)) => (
                Some(from.as_str().to_string()),
                Some(to.as_str().to_string()),
            ),
            None => (None, None),
        };
        self.call("read what subscribers received", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT email, tick, articles, related FROM (
                    SELECT subscribers.email AS email, runs.tick AS tick, deliveries.articles AS articles,
                           deliveries.related AS related,
                           ROW_NUMBER() OVER (PARTITION BY deliveries.subscriber ORDER BY runs.tick DESC) AS n
                    FROM deliveries JOIN runs ON runs.id = deliveries.run
                    JOIN subscribers ON subscribers.id = deliveries.subscriber
                    WHERE runs.digest = ?1 AND deliveries.status = 'sent' AND runs.tick < ?2
                      AND (?4 IS NULL OR subscribers.email BETWEEN ?4 AND ?5)
                 ) WHERE n <= ?3
                 ORDER BY email, tick DESC",
            )?;
            let rows = stmt.query_map(params![digest, ts(before), last as i64, from, to], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut by_email: BTreeMap<EmailAddress, Vec<Received>> = BTreeMap::new();
            for row in rows {
                let (email, tick, articles, related) = row?;
                by_email
                    .entry(parse_email(&email)?)
                    .or_default()
                    .push(Received {
                        tick: parse_ts(&tick)?,
                        articles: parse_list(&articles)?,
                        related: parse_list(&related)?,
                    });
            }
            Ok(by_email)
        })
        .await
    }

    async fn latest_tick(&self, digest: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let digest = digest.to_string();
        self.call("read the latest tick", move |conn| {
            let latest: Option<String> = conn.query_row(
                "SELECT MAX(tick) FROM runs WHERE digest = ?1",
                [digest],
                |r| r.get(0),
            )?;
            latest.as_deref().map(parse_ts).transpose()
        })
        .await
    }

    async fn run(&self, digest: &str, tick: DateTime<Utc>) -> Result<Option<Run>, StateError> {
        let digest = digest.to_string();
        self.call("read a run", move |conn| {
            let row = conn
                .query_row(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE digest = ?1 AND tick = ?2"),
                    params![digest, ts(tick)],
                    read_run,
                )
                .optional()?;
            row.map(to_run).transpose()
        })
        .await
    }

    async fn begin_run(
        &self,
        digest: &str,
        tick: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> Result<RunId, StateError> {
        let digest = digest.to_string();
        self.call("plan a run", move |conn| {
            insert_run(conn, digest, tick, created, None)
        })
        .await
    }

    async fn add_deliveries(
        &self,
        run: RunId,
        deliveries: &[NewDelivery],
    ) -> Result<(), StateError> {
        let deliveries = deliveries.to_vec();
        self.call("plan a run", move |conn| {
            let tx = conn.transaction()?;
            let (planned, known): (Option<String>, String) = tx
                .query_row(
                    "SELECT planned, articles FROM runs WHERE id = ?1",
                    [run],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| Fault::State(StateError::NoRun(run)))?;
            if planned.is_some() {
                return Err(Fault::State(StateError::AlreadyPlanned(run)));
            }
            let mut all: BTreeSet<String> = parse_list(&known)?.into_iter().collect();
            all.extend(deliveries.iter().flat_map(|d| d.articles.iter().cloned()));
            tx.execute(
                "UPDATE runs SET articles = ?2 WHERE id = ?1",
                params![run, serde_json::to_string(&all).expect("a list of strings serializes")],
            )?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO deliveries (run, subscriber, status, message_id, articles, related, because,
                                             over_limit, window_after)
                     SELECT ?1, id, 'pending', ?3, ?4, ?5, ?6, ?7, ?8 FROM subscribers WHERE email = ?2
                     ON CONFLICT (run, subscriber) DO NOTHING",
                )?;
                for d in &deliveries {
                    let (related, because): (Vec<String>, Vec<String>) = d
                        .related
                        .iter()
                        .map(|p| (p.slug.clone(), p.because.clone()))
                        .unzip();
                    insert.execute(params![
                        run,
                        d.email.as_str(),
                        d.message_id,
                        json_list(&d.articles),
                        json_list(&related),
                        json_list(&because),
                        d.over_limit as i64,
                        ts(d.window_after)
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn skip_run(
        &self,
        digest: &str,
        tick: DateTime<Utc>,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<RunId, StateError> {
        let (digest, reason) = (digest.to_string(), reason.to_string());
        self.call("record a skipped tick", move |conn| {
            insert_run(conn, digest, tick, at, Some(reason))
        })
        .await
    }

    async fn end_planning(&self, run: RunId, at: DateTime<Utc>) -> Result<(), StateError> {
        self.call("plan a run", move |conn| {
            let n = conn.execute(
                "UPDATE runs SET planned = COALESCE(planned, ?2) WHERE id = ?1",
                params![run, ts(at)],
            )?;
            if n == 0 {
                return Err(Fault::State(StateError::NoRun(run)));
            }
            Ok(())
        })
        .await
    }

    async fn deliveries(&self, run: RunId) -> Result<Vec<Delivery>, StateError> {
        self.call("read a run's deliveries", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries JOIN subscribers ON subscribers.id = deliveries.subscriber
                 WHERE deliveries.run = ?1 ORDER BY subscribers.email"
            ))?;
            let rows = stmt.query_map([run], read_delivery)?;
            rows.map(|r| to_delivery(r?)).collect()
        })
        .await
    }

    async fn claim(
        &self,
        run: RunId,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StateError> {
        let owner = owner.to_string();
        self.call("claim deliveries", move |conn| {
            // IMMEDIATE takes the write lock first, so two senders' claims are serialized, never interleaved.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ids: Vec<i64> = {
                let mut take = tx.prepare_cached(
                    "UPDATE deliveries SET claimed_by = ?2, lease_until = ?5
                     WHERE id IN (
                        SELECT id FROM deliveries
                        WHERE run = ?1 AND status IN ('pending', 'deferred')
                          AND (claimed_by IS NULL OR lease_until < ?3)
                          AND EXISTS (SELECT 1 FROM runs WHERE runs.id = ?1 AND runs.planned IS NOT NULL)
                        ORDER BY id LIMIT ?4)
                     RETURNING id",
                )?;
                let rows = take.query_map(
                    params![run, owner, ts(now), limit as i64, ts(lease_until)],
                    |r| r.get(0),
                )?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut claimed = Vec::with_capacity(ids.len());
            {
                let mut read = tx.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS}, {SUBSCRIBER_JOINED_COLUMNS}
                     FROM deliveries JOIN subscribers ON subscribers.id = deliveries.subscriber
                     WHERE deliveries.id = ?1"
                ))?;
                let mut sorted = ids;
                sorted.sort_unstable();
                for id in sorted {
                    let (delivery, subscriber) = read.query_row([id], |r| {
                        Ok((
                            read_delivery(r)?,
                            read_subscriber_at(r, DELIVERY_COLUMN_COUNT)?,
                        ))
                    })?;
                    claimed.push(Claimed {
                        delivery: to_delivery(delivery)?,
                        subscriber: to_subscriber(subscriber)?,
                    });
                }
            }
            tx.commit()?;
            Ok(claimed)
        })
        .await
    }

    async fn release_claims(&self, owner: &str) -> Result<usize, StateError> {
        let owner = owner.to_string();
        self.call("release claims", move |conn| {
            Ok(conn.execute(
                "UPDATE deliveries SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?1",
                [owner],
            )?)
        })
        .await
    }

    async fn claimants(&self, run: RunId, now: DateTime<Utc>) -> Result<Vec<String>, StateError> {
        self.call("list claimants", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT claimed_by FROM deliveries
                 WHERE run = ?1 AND status IN ('pending', 'deferred') AND claimed_by IS NOT NULL
                   AND lease_until >= ?2
                 ORDER BY claimed_by",
            )?;
            let rows = stmt.query_map(params![run, ts(now)], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn senders_with_unsent(
        &self,
        run: RunId,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        self.call("list senders", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT claimed_by FROM deliveries
                 WHERE run = ?1 AND status = 'pending' AND claimed_by IS NOT NULL AND lease_until >= ?2
                 ORDER BY claimed_by",
            )?;
            let rows = stmt.query_map(params![run, ts(now)], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn failures_in_a_row(&self, email: &EmailAddress) -> Result<usize, StateError> {
        let email = email.clone();
        self.call("count failures in a row", move |conn| {
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM deliveries
                 WHERE subscriber = (SELECT id FROM subscribers WHERE email = ?1) AND status = 'failed'
                   AND id > COALESCE((SELECT MAX(d.id) FROM deliveries d
                                      WHERE d.subscriber = deliveries.subscriber AND d.status = 'sent'), 0)",
                [email.as_str()],
                |r| r.get(0),
            )?;
            Ok(n as usize)
        })
        .await
    }

    async fn runs(&self, digest: Option<&str>) -> Result<Vec<RunSummary>, StateError> {
        let digest = digest.map(String::from);
        self.call("list runs", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS}, deliveries.status, COUNT(deliveries.id)
                 FROM runs LEFT JOIN deliveries ON deliveries.run = runs.id
                 WHERE ?1 IS NULL OR runs.digest = ?1
                 GROUP BY runs.id, deliveries.status
                 ORDER BY runs.tick DESC, runs.digest, runs.id"
            ))?;
            let rows = stmt.query_map([digest], |r| {
                Ok((
                    read_run(r)?,
                    r.get::<_, Option<String>>(RUN_COLUMN_COUNT)?,
                    r.get::<_, i64>(RUN_COLUMN_COUNT + 1)?,
                ))
            })?;
            let mut summaries: Vec<RunSummary> = Vec::new();
            for row in rows {
                let (run, status, count) = row?;
                if summaries.last().is_none_or(|s| s.run.id != run.0) {
                    summaries.push(RunSummary {
                        run: to_run(run)?,
                        counts: BTreeMap::new(),
                    });
                }
                if let Some(status) = status {
                    let status = DeliveryStatus::parse(&status)
                        .ok_or_else(|| corrupt("delivery status", &status))?;
                    let summary = summaries.last_mut().expect("pushed above");
                    summary.counts.insert(status, count as usize);
                }
            }
            Ok(summaries)
        })
        .await
    }

    async fn first_seen(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StateError> {
        self.call("read when articles were first seen", |conn| {
            let mut stmt = conn.prepare("SELECT slug, first_seen FROM articles_seen")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            rows.map(|r| {
                let (slug, at) = r?;
                Ok((slug, parse_ts(&at)?))
            })
            .collect()
        })
        .await
    }

    async fn record_first_seen(&self, seen: &[(String, DateTime<Utc>)]) -> Result<(), StateError> {
        let seen = seen.to_vec();
        self.call("record when articles were first seen", move |conn| {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare(
                    "INSERT INTO articles_seen (slug, first_seen) VALUES (?1, ?2) ON CONFLICT (slug) DO NOTHING",
                )?;
                for (slug, at) in &seen {
                    insert.execute(params![slug, ts(*at)])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn record_all(
        &self,
        events: &[(DeliveryId, DeliveryEvent)],
    ) -> Result<Vec<Transition>, StateError> {
        let events = events.to_vec();
        self.call("record a delivery", move |conn| {
            let tx = conn.transaction()?;
            let transitions = events
                .iter()
                .map(|(delivery, event)| record_one(&tx, *delivery, event))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(transitions)
        })
        .await
    }

    async fn finish_run(&self, run: RunId, at: DateTime<Utc>) -> Result<RunProgress, StateError> {
        self.call("finish a run", move |conn| {
            let tx = conn.transaction()?;
            let (remaining, planned): (i64, bool) = tx.query_row(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE run = ?1 AND status IN ('pending', 'deferred')),
                        EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND planned IS NOT NULL)",
                [run],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            // A run still being planned (by another replica) is not finished, however few rows it has yet.
            let progress = if remaining == 0 && planned {
                tx.execute(
                    "UPDATE runs SET finished = ?2 WHERE id = ?1 AND finished IS NULL",
                    params![run, ts(at)],
                )?;
                RunProgress::Finished
            } else {
                RunProgress::Open {
                    remaining: remaining as usize,
                }
            };
            tx.commit()?;
            Ok(progress)
        })
        .await
    }

    async fn sign_up(
        &self,
        new: &NewSubscriber,
        key: &SuppressionKey,
    ) -> Result<SignupOutcome, StateError> {
        let new = new.clone();
        let key = key.clone();
        self.call("record a sign-up", move |conn| {
            let tx = conn.transaction()?;
            let at = new.changed_at;
            let joined: BTreeMap<String, DateTime<Utc>> =
                new.digests.iter().map(|d| (d.clone(), at)).collect();
            let outcome = match subscriber_by_email(&tx, new.email.as_str())? {
                Some(old) if old.status == SubscriberStatus::Confirmed => {
                    SignupOutcome::AlreadyConfirmed(old.handle)
                }
                Some(old) => {
                    tx.execute(
                        "UPDATE subscribers SET name = ?2, digests = ?3, categories = ?4, joined = ?5
                         WHERE email = ?1",
                        params![
                            new.email.as_str(),
                            new.name,
                            json_list(&new.digests),
                            json_list(&new.categories),
                            json_joined(&joined)
                        ],
                    )?;
                    SignupOutcome::AwaitingConfirmation(old.handle)
                }
                None if tx
                    .prepare_cached("SELECT 1 FROM suppressions WHERE key = ?1")?
                    .exists([&key.0])? =>
                {
                    SignupOutcome::Suppressed
                }
                None => {
                    let handle: String = tx.query_row(
                        &format!(
                            "INSERT INTO subscribers (email, name, status, digests, categories, created, joined,
                                                      handle)
                             VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, {NEW_HANDLE}) RETURNING handle"
                        ),
                        params![
                            new.email.as_str(),
                            new.name,
                            json_list(&new.digests),
                            json_list(&new.categories),
                            ts(new.subscribed_at),
                            json_joined(&joined)
                        ],
                        |r| r.get(0),
                    )?;
                    SignupOutcome::AwaitingConfirmation(
                        SubscriberHandle::parse_hex(&handle)
                            .ok_or_else(|| corrupt("subscriber handle", &handle))?,
                    )
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn subscriber_by_handle(
        &self,
        handle: &SubscriberHandle,
    ) -> Result<Option<Subscriber>, StateError> {
        let handle = handle.clone();
        self.call("read a subscriber", move |conn| {
            subscriber_by_handle(conn, &handle)
        })
        .await
    }

    async fn confirm(
        &self,
        handle: &SubscriberHandle,
        at: DateTime<Utc>,
    ) -> Result<ConfirmOutcome, StateError> {
        let handle = handle.clone();
        self.call("confirm a subscriber", move |conn| {
            let tx = conn.transaction()?;
            let outcome = match subscriber_by_handle(&tx, &handle)? {
                None => ConfirmOutcome::NotFound,
                Some(old) if old.status == SubscriberStatus::Confirmed => {
                    ConfirmOutcome::AlreadyConfirmed
                }
                Some(_) => {
                    tx.execute(
                        "UPDATE subscribers SET status = 'confirmed', confirmed = COALESCE(confirmed, ?2)
                         WHERE handle = ?1",
                        params![handle.to_hex(), ts(at)],
                    )?;
                    ConfirmOutcome::Confirmed
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn leave(
        &self,
        handle: &SubscriberHandle,
        digest: Option<&str>,
        _at: DateTime<Utc>,
    ) -> Result<LeaveOutcome, StateError> {
        let handle = handle.clone();
        let digest = digest.map(String::from);
        self.call("unsubscribe", move |conn| {
            let tx = conn.transaction()?;
            let Some(mut old) = subscriber_by_handle(&tx, &handle)? else {
                return Ok(LeaveOutcome::NotFound);
            };
            if old.status.has_left() {
                return Ok(LeaveOutcome::AlreadyLeft);
            }
            let outcome = match digest {
                Some(d) if !old.takes(&d) => LeaveOutcome::AlreadyLeft,
                Some(d) if old.digests.len() > 1 => {
                    old.digests.retain(|x| *x != d);
                    old.joined.remove(&d);
                    tx.execute(
                        "UPDATE subscribers SET digests = ?2, joined = ?3 WHERE handle = ?1",
                        params![
                            handle.to_hex(),
                            json_list(&old.digests),
                            json_joined(&old.joined)
                        ],
                    )?;
                    LeaveOutcome::LeftDigest
                }
                _ => {
                    tx.execute(
                        "UPDATE subscribers SET status = 'unsubscribed' WHERE handle = ?1",
                        [handle.to_hex()],
                    )?;
                    LeaveOutcome::Unsubscribed
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn set_preferences(
        &self,
        handle: &SubscriberHandle,
        digests: &[String],
        categories: &[String],
        at: DateTime<Utc>,
    ) -> Result<PreferencesOutcome, StateError> {
        let handle = handle.clone();
        let digests = digests.to_vec();
        let categories = categories.to_vec();
        self.call("change a subscriber's preferences", move |conn| {
            let tx = conn.transaction()?;
            let Some(old) = subscriber_by_handle(&tx, &handle)? else {
                return Ok(PreferencesOutcome::NotFound);
            };
            if old.status.has_left() {
                return Ok(PreferencesOutcome::HasLeft);
            }
            let joined: BTreeMap<String, DateTime<Utc>> = digests
                .iter()
                .map(|d| (d.clone(), old.joined.get(d).copied().unwrap_or(at)))
                .collect();
            tx.execute(
                "UPDATE subscribers SET digests = ?2, categories = ?3, joined = ?4 WHERE handle = ?1",
                params![
                    handle.to_hex(),
                    json_list(&digests),
                    json_list(&categories),
                    json_joined(&joined)
                ],
            )?;
            tx.commit()?;
            Ok(PreferencesOutcome::Saved)
        })
        .await
    }

    async fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.call("hold a lease", move |conn| {
            let n = conn.execute(
                "INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?4)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
                 WHERE leases.owner = excluded.owner OR leases.until < ?3",
                params![name, owner, ts(now), ts(until)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StateError> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.call("release a lease", move |conn| {
            conn.execute(
                "DELETE FROM leases WHERE name = ?1 AND owner = ?2",
                params![name, owner],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_send_budget(
        &self,
        window: i64,
        want: u32,
        limit: u32,
    ) -> Result<u32, StateError> {
        self.call("take from the send budget", move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let used: i64 = tx
                .query_row(
                    "SELECT used FROM send_budget WHERE window = ?1",
                    [window],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            let granted = (i64::from(limit) - used).clamp(0, i64::from(want));
            if granted > 0 {
                tx.execute(
                    "INSERT INTO send_budget (window, used) VALUES (?1, ?2)
                     ON CONFLICT (window) DO UPDATE SET used = used + ?2",
                    params![window, granted],
                )?;
                // Old windows are of no use to anyone.
                tx.execute("DELETE FROM send_budget WHERE window < ?1 - 60", [window])?;
            }
            tx.commit()?;
            Ok(granted as u32)
        })
        .await
    }

    async fn stored_secret(&self) -> Result<Option<Vec<u8>>, StateError> {
        self.call("read the link-token secret", |conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM settings WHERE key = ?1",
                    [SECRET_KEY],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn suppressions(&self) -> Result<Vec<DumpSuppression>, StateError> {
        self.call("read the suppression list", |conn| {
            let mut stmt = conn.prepare("SELECT key, created FROM suppressions ORDER BY key")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            rows.map(|r| {
                let (key, created) = r?;
                Ok(DumpSuppression {
                    key,
                    created: parse_ts(&created)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn load(&self, dump: &StateDump) -> Result<(), StateError> {
        let dump = dump.clone();
        self.call("import a state", move |conn| {
            let tx = conn.transaction()?;
            let held: (i64, i64, i64) = tx.query_row(
                "SELECT (SELECT COUNT(*) FROM subscribers), (SELECT COUNT(*) FROM runs),
                        (SELECT COUNT(*) FROM suppressions)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if held != (0, 0, 0) {
                return Err(Fault::State(StateError::NotEmpty(format!(
                    "{} subscribers, {} runs, {} suppressions",
                    held.0, held.1, held.2
                ))));
            }
            if let Some(secret) = &dump.secret {
                let secret = hex::decode(secret).map_err(|_| corrupt("secret", secret))?;
                tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![SECRET_KEY, secret],
                )?;
            }
            {
                let mut insert = tx.prepare(
                    "INSERT INTO subscribers (email, handle, name, status, digests, categories, created, confirmed,
                                              joined)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for s in &dump.subscribers {
                    insert.execute(params![
                        s.email,
                        s.handle,
                        s.name,
                        s.status,
                        json_list(&s.digests),
                        json_list(&s.categories),
                        ts(s.created),
                        s.confirmed.map(ts),
                        json_joined(&s.joined)
                    ])?;
                }
                let mut insert = tx.prepare("INSERT INTO suppressions (key, created) VALUES (?1, ?2)")?;
                for s in &dump.suppressions {
                    insert.execute(params![s.key, ts(s.created)])?;
                }
                let mut insert =
                    tx.prepare("INSERT INTO articles_seen (slug, first_seen) VALUES (?1, ?2)")?;
                for (slug, at) in &dump.articles_seen {
                    insert.execute(params![slug, ts(*at)])?;
                }
                let mut insert = tx.prepare(
                    "INSERT INTO runs (id, digest, tick, articles, created, planned, finished, skipped)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for r in &dump.runs {
                    insert.execute(params![
                        r.id,
                        r.digest,
                        ts(r.tick),
                        json_list(&r.articles),
                        ts(r.created),
                        r.planned.map(ts),
                        r.finished.map(ts),
                        r.skipped
                    ])?;
                }
                let mut insert = tx.prepare(
                    "INSERT INTO deliveries (id, run, subscriber, status, attempts, last_error, message_id, articles,
                                             related, because, over_limit, window_after, sent_at)
                     SELECT ?1, ?2, id, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
                     FROM subscribers WHERE email = ?3",
                )?;
                for d in &dump.deliveries {
                    insert.execute(params![
                        d.id,
                        d.run,
                        d.email,
                        d.status,
                        d.attempts,
                        d.last_error,
                        d.message_id,
                        json_list(&d.articles),
                        json_list(&d.related),
                        json_list(&d.because),
                        d.over_limit as i64,
                        d.window_after.map(ts),
                        d.sent_at.map(ts)
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StateError> {
        self.call("answer a health check", |conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM settings", [], |_| Ok(()))?)
        })
        .await
    }
}

#[cfg(test)]
impl SqliteState {
    /// Runs raw SQL, for the tests of this backend's own storage (migrations, tables); behaviour tests go through
    /// the [`State`] interface.
    pub(crate) async fn query_strings(&self, sql: &'static str) -> Vec<String> {
        self.call("run a test query", move |conn| {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .expect("the test query runs")
    }

    /// Runs raw SQL statements (setting up an old schema in a migration test).
    pub(crate) fn execute_batch_for_tests(path: &Path, sql: &str) {
        Connection::open(path)
            .and_then(|c| c.execute_batch(sql))
            .expect("the test SQL runs");
    }
}

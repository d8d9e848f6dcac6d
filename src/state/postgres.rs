//! [`PostgresState`]: the [`State`] backend for a PostgreSQL server, which several `tidings run` replicas share.
//!
//! One pool of connections (deadpool over tokio-postgres) per process. The contract is the same as SQLite's and
//! the conformance suite checks it; what differs is how it holds with several processes writing at once:
//! - deliveries are claimed with `SELECT … FOR UPDATE SKIP LOCKED`, so replicas claiming together take disjoint
//!   batches without waiting on each other, and a dead replica's rows come back when its lease expires;
//! - a tick's run row is unique (`ON CONFLICT DO NOTHING`): whoever loses the race to plan it is told
//!   [`StateError::RunExists`] and joins the run instead;
//! - writes that read a subscriber first (sign-ups, imports, preference changes) take one transaction-level
//!   advisory lock, so they are serialized as they are in SQLite; migrations take another, so replicas that
//!   start together migrate once.
//!
//! Times are `timestamptz` cut to whole seconds (as SQLite keeps them, so a state moved between the two reads the
//! same); lists are `text[]`, join times `jsonb`. Text that is ordered or compared (addresses, digest names,
//! slugs) is `COLLATE "C"`: byte order, as Rust orders it, whatever the database's locale.
//!
//! A URL to another host needs TLS (`sslmode=require`, verified against the webpki roots, or the certificates in
//! `PGSSLROOTCERT`) unless it says `sslmode=disable`; the password may come from `PGPASSWORD` instead of the URL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::dump::{DumpSubscriber, DumpSuppression, StateDump};
use super::{
    Claimed, ConfirmOutcome, Delivery, DeliveryId, LeaveOutcome, NewDelivery, PreferencesOutcome,
    Received, RecordedPick, RemoveOutcome, Resubscribe, Run, RunId, RunProgress, RunSummary,
    SecretOrigin, SignupOutcome, State, StateError, UpsertOutcome, UpsertWrite, plan_upsert,
};
use crate::domain::{
    DeliveryEvent, DeliveryStatus, EmailAddress, NewSubscriber, Subscriber, SubscriberHandle,
    SubscriberStatus, SuppressionKey, Transition,
};

/// Schema versions in order; version N is `MIGRATIONS[N - 1]`, recorded in `tidings_schema`. Never edit one that
/// has shipped: add the next.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the schema SQLite reached at its version 4.
    "CREATE TABLE subscribers (
        id BIGSERIAL PRIMARY KEY,
        email TEXT COLLATE \"C\" NOT NULL UNIQUE,
        handle TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced')),
        digests TEXT[] COLLATE \"C\" NOT NULL DEFAULT '{}',
        categories TEXT[] COLLATE \"C\" NOT NULL DEFAULT '{}',
        created TIMESTAMPTZ NOT NULL,
        confirmed TIMESTAMPTZ,
        -- digest name -> when they joined it (RFC 3339): a digest added later starts its window then.
        joined JSONB NOT NULL DEFAULT '{}'
    );
    CREATE INDEX subscribers_digests ON subscribers USING GIN (digests);
    CREATE TABLE runs (
        id BIGSERIAL PRIMARY KEY,
        digest TEXT COLLATE \"C\" NOT NULL,
        tick TIMESTAMPTZ NOT NULL,
        articles TEXT[] COLLATE \"C\" NOT NULL DEFAULT '{}',
        created TIMESTAMPTZ NOT NULL,
        planned TIMESTAMPTZ,
        finished TIMESTAMPTZ,
        skipped TEXT,
        UNIQUE (digest, tick)
    );
    CREATE TABLE deliveries (
        id BIGSERIAL PRIMARY KEY,
        run BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        subscriber BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('pending', 'deferred', 'sent', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT NOT NULL,
        articles TEXT[] NOT NULL DEFAULT '{}',
        related TEXT[] NOT NULL DEFAULT '{}',
        because TEXT[] NOT NULL DEFAULT '{}',
        over_limit INTEGER NOT NULL DEFAULT 0,
        window_after TIMESTAMPTZ,
        sent_at TIMESTAMPTZ,
        -- a sender's claim: who, and until when (see State::claim)
        claimed_by TEXT COLLATE \"C\",
        lease_until TIMESTAMPTZ,
        UNIQUE (run, subscriber)
    );
    CREATE INDEX deliveries_subscriber ON deliveries (subscriber, status);
    CREATE INDEX deliveries_open ON deliveries (run, id) WHERE status IN ('pending', 'deferred');
    CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
    CREATE TABLE articles_seen (slug TEXT COLLATE \"C\" PRIMARY KEY, first_seen TIMESTAMPTZ NOT NULL);
    CREATE TABLE suppressions (key TEXT PRIMARY KEY, created TIMESTAMPTZ NOT NULL);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value BYTEA NOT NULL);",
    // 2: leases for jobs one replica does at a time (the feed build), and the send budget of each rate window
    // that every replica shares.
    "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until TIMESTAMPTZ NOT NULL);
    CREATE TABLE send_budget (window_id BIGINT PRIMARY KEY, used INTEGER NOT NULL);",
];

/// Advisory lock keys (any constants unique to tidings): schema migrations, and writes that read a subscriber
/// before they write one.
const MIGRATION_LOCK: i64 = 0x7469_6469_6e67_0001;
const SUBSCRIBERS_LOCK: i64 = 0x7469_6469_6e67_0002;

const SECRET_KEY: &str = "link_token_secret";

/// Rows sent in one statement by [`State::load`].
const LOAD_PAGE: usize = 5000;
/// Rows of an import read and written together by [`State::upsert_subscribers`].
const UPSERT_PAGE: usize = 5000;

/// The PostgreSQL backend: a pool of connections to one database.
pub struct PostgresState {
    pool: Pool,
}

/// A driver error, reported as `operation` failing.
fn failed(operation: &'static str) -> impl Fn(tokio_postgres::Error) -> StateError {
    move |e| StateError::Failed {
        operation,
        reason: describe(&e),
    }
}

/// The server's message when there is one (tokio-postgres's own Display says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        // With its cause: "error performing TLS handshake" alone does not say that the certificate was refused.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

fn corrupt(what: &'static str, value: &str) -> StateError {
    StateError::Corrupt {
        what,
        value: value.into(),
    }
}

/// Times are kept to the second, as SQLite keeps them.
fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

fn parse_email(s: &str) -> Result<EmailAddress, StateError> {
    EmailAddress::parse(s).map_err(|_| corrupt("email address", s))
}

fn json_joined(joined: &BTreeMap<String, DateTime<Utc>>) -> serde_json::Value {
    joined
        .iter()
        .map(|(d, t)| {
            (
                d.clone(),
                serde_json::Value::String(super::rfc3339(secs(*t))),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn parse_joined(value: &serde_json::Value) -> Result<BTreeMap<String, DateTime<Utc>>, StateError> {
    let bad = || corrupt("joined times", &value.to_string());
    let map = value.as_object().ok_or_else(bad)?;
    map.iter()
        .map(|(d, t)| {
            let t = t.as_str().ok_or_else(bad)?;
            let t = DateTime::parse_from_rfc3339(t).map_err(|_| bad())?;
            Ok((d.clone(), t.with_timezone(&Utc)))
        })
        .collect()
}

fn new_handle() -> SubscriberHandle {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    SubscriberHandle::from_bytes(bytes)
}

const SUBSCRIBER_COLUMNS: &str = "subscribers.email, subscribers.name, subscribers.status, \
     subscribers.digests, subscribers.categories, subscribers.created, subscribers.confirmed, subscribers.joined, \
     subscribers.handle";

/// A subscriber from [`SUBSCRIBER_COLUMNS`] starting at column `first`.
fn to_subscriber(row: &Row, first: usize) -> Result<Subscriber, StateError> {
    let status: String = row.get(first + 2);
    let handle: String = row.get(first + 8);
    Ok(Subscriber {
        email: parse_email(row.get(first))?,
        name: row.get(first + 1),
        status: SubscriberStatus::parse(&status)
            .ok_or_else(|| corrupt("subscriber status", &status))?,
        digests: row.get(first + 3),
        categories: row.get(first + 4),
        created: row.get(first + 5),
        confirmed: row.get(first + 6),
        joined: parse_joined(&row.get(first + 7))?,
        handle: SubscriberHandle::parse_hex(&handle)
            .ok_or_else(|| corrupt("subscriber handle", &handle))?,
    })
}

const RUN_COLUMNS: &str = "runs.id, runs.digest, runs.tick, runs.articles, runs.created, runs.planned, \
     runs.finished, runs.skipped";
const RUN_COLUMN_COUNT: usize = 8;

fn to_run(row: &Row) -> Run {
    Run {
        id: row.get(0),
        digest: row.get(1),
        tick: row.get(2),
        articles: row.get(3),
        created: row.get(4),
        planned: row.get(5),
        finished: row.get(6),
        skipped: row.get(7),
    }
}

/// A delivery joined with its subscriber's address, in the order [`to_delivery`] reads.
const DELIVERY_COLUMNS: &str = "deliveries.id, deliveries.run, subscribers.email, deliveries.status, \
     deliveries.attempts, deliveries.last_error, deliveries.message_id, deliveries.articles, deliveries.related, \
     deliveries.sent_at, deliveries.because, deliveries.over_limit, deliveries.window_after";
const DELIVERY_COLUMN_COUNT: usize = 13;

fn to_delivery(row: &Row) -> Result<Delivery, StateError> {
    let status: String = row.get(3);
    let related: Vec<String> = row.get(8);
    let because: Vec<String> = row.get(10);
    Ok(Delivery {
        id: row.get(0),
        run: row.get(1),
        email: parse_email(row.get(2))?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt("delivery status", &status))?,
        attempts: row.get::<_, i32>(4).max(0) as u32,
        last_error: row.get(5),
        message_id: row.get(6),
        articles: row.get(7),
        related: related
            .into_iter()
            .enumerate()
            .map(|(i, slug)| RecordedPick {
                because: because.get(i).cloned().unwrap_or_default(),
                slug,
            })
            .collect(),
        sent_at: row.get(9),
        over_limit: row.get::<_, i32>(11).max(0) as usize,
        window_after: row
            .get::<_, Option<DateTime<Utc>>>(12)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    })
}

/// Reads a URL's `sslmode`, if it names one.
fn ssl_mode(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "sslmode")
        .map(|(_, v)| v.into_owned())
}

/// Whether every host the config names is this machine (or a Unix socket).
pub(super) fn only_local_hosts(config: &tokio_postgres::Config) -> bool {
    config.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        tokio_postgres::config::Host::Unix(_) => true,
    })
}

impl PostgresState {
    /// Connects to the database at `url` and migrates it to the latest schema version.
    pub async fn connect(url: &str, shown: &str) -> Result<PostgresState, StateError> {
        let state = PostgresState::connect_only(url, shown).await?;
        let client = state
            .pool
            .get()
            .await
            .map_err(|e| StateError::Unavailable {
                location: shown.into(),
                reason: pool_reason(&e),
            })?;
        migrate(client, shown).await?;
        Ok(state)
    }

    /// The schema version the database at `url` is at, changing nothing (`state migrate --dry-run`).
    pub async fn version_at(url: &str, shown: &str) -> Result<usize, StateError> {
        let state = PostgresState::connect_only(url, shown).await?;
        let client = state.client("read the schema version").await?;
        schema_version(&client)
            .await
            .map_err(failed("read the schema version"))
    }

    async fn connect_only(url: &str, shown: &str) -> Result<PostgresState, StateError> {
        let unavailable = |reason: String| StateError::Unavailable {
            location: shown.into(),
            reason,
        };
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            unavailable(format!(
                "not a PostgreSQL URL ({e}); use postgres://user@host/database"
            ))
        })?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        let mode = ssl_mode(url);
        if !only_local_hosts(&config) && mode.is_none() {
            // TLS unless told otherwise: a database on another host is reached over the network.
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        let tls = tls_connector().map_err(unavailable)?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            // Commits do not wait for the disk, as SQLite's (synchronous = NORMAL) do not: only a crash of the
            // database server itself can lose its last fraction of a second of commits. For the ledger that means
            // re-sending the messages recorded in them (none is lost); for a claim or a lease, taking it again.
            // Waiting for a flush per commit would cap a send at the disk's flush rate.
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute("SET synchronous_commit = off")
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| unavailable(e.to_string()))?;
        let state = PostgresState { pool };
        // Reach it now, so a wrong URL or a server that is down is said at once, naming the database.
        drop(
            state
                .pool
                .get()
                .await
                .map_err(|e| unavailable(pool_reason(&e)))?,
        );
        Ok(state)
    }

    /// A pooled connection whose statements are prepared once per connection and then reused (a statement
    /// given as text is otherwise parsed again, in a round trip of its own, every time).
    async fn cached(&self, operation: &'static str) -> Result<Cached, StateError> {
        Ok(Cached(self.client(operation).await?))
    }

    async fn client(&self, operation: &'static str) -> Result<Object, StateError> {
        self.pool.get().await.map_err(|e| StateError::Failed {
            operation,
            reason: pool_reason(&e),
        })
    }

    /// The schema version after migrations.
    pub async fn schema_version(&self) -> Result<usize, StateError> {
        let client = self.client("read the schema version").await?;
        schema_version(&client)
            .await
            .map_err(failed("read the schema version"))
    }
}

/// See [`PostgresState::cached`].
struct Cached(Object);

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Cached {
    async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.query(&statement, params).await
    }

    async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.query_one(&statement, params).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.query_opt(&statement, params).await
    }

    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.execute(&statement, params).await
    }
}

fn pool_reason(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        e => e.to_string(),
    }
}

/// rustls for `sslmode=require` or `prefer`: the server's certificate is verified against the certificates in
/// `PGSSLROOTCERT` (libpq's variable: a PEM file, for a server with a private CA) when it is set, else against
/// the public webpki roots (as the SMTP side is).
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    match std::env::var_os("PGSSLROOTCERT") {
        Some(file) => {
            let unreadable = |e: &dyn std::fmt::Display| {
                format!("PGSSLROOTCERT {}: {e}", file.to_string_lossy())
            };
            let certs = CertificateDer::pem_file_iter(&file)
                .map_err(|e| unreadable(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(&e))?;
            if certs.is_empty() {
                return Err(unreadable(&"holds no PEM certificate"));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| unreadable(&e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

async fn schema_version(client: &impl GenericClient) -> Result<usize, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('tidings_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: Option<i32> = client
        .query_one("SELECT MAX(version) FROM tidings_schema", &[])
        .await?
        .get(0);
    Ok(version.unwrap_or(0).max(0) as usize)
}

/// The migrations `client`'s database still needs: (version, SQL) in order; [`StateError::TooNew`] when it is
/// ahead of this tidings.
pub(super) async fn pending_migrations(
    client: &impl GenericClient,
    shown: &str,
) -> Result<Vec<(usize, &'static str)>, StateError> {
    let version = schema_version(client)
        .await
        .map_err(failed("read the schema version"))?;
    if version > MIGRATIONS.len() {
        return Err(StateError::TooNew {
            location: shown.into(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    Ok(MIGRATIONS
        .iter()
        .enumerate()
        .skip(version)
        .map(|(i, sql)| (i + 1, *sql))
        .collect())
}

/// Brings the schema to the latest version, each version in its own transaction, under an advisory lock so that
/// replicas starting together migrate once.
async fn migrate(mut client: Object, shown: &str) -> Result<(), StateError> {
    let migrate_err = |version: usize| {
        move |e: tokio_postgres::Error| StateError::Migrate {
            location: shown.into(),
            version,
            reason: describe(&e),
        }
    };
    if pending_migrations(&client, shown).await?.is_empty() {
        return Ok(());
    }
    let tx = client.transaction().await.map_err(migrate_err(0))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(migrate_err(0))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tidings_schema (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL)",
    )
    .await
    .map_err(migrate_err(0))?;
    // Read again under the lock: another replica may have migrated while this one waited.
    for (version, sql) in pending_migrations(&tx, shown).await? {
        tx.batch_execute(sql).await.map_err(migrate_err(version))?;
        tx.execute(
            "INSERT INTO tidings_schema (version, applied) VALUES ($1, now())",
            &[&(version as i32)],
        )
        .await
        .map_err(migrate_err(version))?;
    }
    tx.commit().await.map_err(migrate_err(0))
}

async fn subscriber_where(
    client: &impl GenericClient,
    condition: &str,
    value: &(dyn ToSql + Sync),
) -> Result<Option<Subscriber>, StateError> {
    let row = client
        .query_opt(
            &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE {condition}"),
            &[value],
        )
        .await
        .map_err(failed("read a subscriber"))?;
    row.map(|r| to_subscriber(&r, 0)).transpose()
}

async fn lock_subscribers(
    tx: &deadpool_postgres::Transaction<'_>,
    operation: &'static str,
) -> Result<(), StateError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SUBSCRIBERS_LOCK])
        .await
        .map_err(failed(operation))?;
    Ok(())
}

/// Inserts a tick's run: one being planned, or (with the reason) a skipped one, planned and finished at once;
/// [`StateError::RunExists`] if the tick has one (another replica planned it first).
async fn insert_run(
    client: &Object,
    digest: &str,
    tick: DateTime<Utc>,
    created: DateTime<Utc>,
    skipped: Option<&str>,
) -> Result<RunId, StateError> {
    let operation = "plan a run";
    let closed = skipped.map(|_| secs(created));
    let row = client
        .query_opt(
            "INSERT INTO runs (digest, tick, created, planned, finished, skipped)
             VALUES ($1, $2, $3, $4, $4, $5)
             ON CONFLICT (digest, tick) DO NOTHING RETURNING id",
            &[&digest, &secs(tick), &secs(created), &closed, &skipped],
        )
        .await
        .map_err(failed(operation))?;
    match row {
        Some(row) => Ok(row.get(0)),
        None => Err(StateError::RunExists {
            digest: digest.into(),
            tick: super::rfc3339(tick),
        }),
    }
}

#[async_trait::async_trait]
impl State for PostgresState {
    async fn upsert_subscribers(
        &self,
        batch: &[(NewSubscriber, SuppressionKey)],
        resubscribe: Resubscribe,
    ) -> Result<Vec<UpsertOutcome>, StateError> {
        let operation = "add or update subscribers";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        lock_subscribers(&tx, operation).await?;
        let insert = tx
            .prepare(
                "INSERT INTO subscribers (email, name, status, digests, categories, created, confirmed, joined,
                                          handle)
                 VALUES ($1, $2, 'confirmed', $3, $4, $5, $5, $6, $7)",
            )
            .await
            .map_err(failed(operation))?;
        let update = tx
            .prepare(
                "UPDATE subscribers SET name = $2, digests = $3, categories = $4, status = 'confirmed',
                        confirmed = COALESCE(confirmed, $5), joined = $6
                 WHERE email = $1",
            )
            .await
            .map_err(failed(operation))?;
        let unsuppress = tx
            .prepare("DELETE FROM suppressions WHERE key = $1")
            .await
            .map_err(failed(operation))?;
        let mut outcomes = Vec::with_capacity(batch.len());
        // Rows as this import leaves them, so an address twice in one import is decided on its first row.
        let mut decided: HashMap<String, Subscriber> = HashMap::new();
        let mut unsuppressed: BTreeSet<String> = BTreeSet::new();
        // A page at a time, in the one transaction: what is stored for the page's addresses and keys is read in
        // one query each, and its writes are sent together (tokio-postgres pipelines them on the connection).
        for page in batch.chunks(UPSERT_PAGE) {
            let emails: Vec<&str> = page.iter().map(|(n, _)| n.email.as_str()).collect();
            let keys: Vec<&str> = page.iter().map(|(_, k)| k.0.as_str()).collect();
            let mut stored: HashMap<String, Subscriber> = HashMap::new();
            for row in tx
                .query(
                    &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ANY($1)"),
                    &[&emails],
                )
                .await
                .map_err(failed(operation))?
            {
                let subscriber = to_subscriber(&row, 0)?;
                stored.insert(subscriber.email.as_str().to_string(), subscriber);
            }
            let suppressed: BTreeSet<String> = tx
                .query("SELECT key FROM suppressions WHERE key = ANY($1)", &[&keys])
                .await
                .map_err(failed(operation))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut writes = Vec::new();
            for (new, key) in page {
                let is_suppressed = suppressed.contains(&key.0) && !unsuppressed.contains(&key.0);
                let email = new.email.as_str();
                let old = decided.get(email).or_else(|| stored.get(email));
                let (outcome, write) = plan_upsert(new, old, is_suppressed, resubscribe);
                outcomes.push(outcome);
                let (joined, handle) = match write {
                    UpsertWrite::Nothing => continue,
                    UpsertWrite::Insert(joined) => (joined, new_handle()),
                    UpsertWrite::Update(joined) => {
                        (joined, old.expect("an update has a row").handle.clone())
                    }
                };
                let inserting = old.is_none();
                if is_suppressed {
                    unsuppressed.insert(key.0.clone());
                }
                decided.insert(
                    email.to_string(),
                    Subscriber {
                        email: new.email.clone(),
                        handle: handle.clone(),
                        name: new.name.clone(),
                        status: SubscriberStatus::Confirmed,
                        digests: new.digests.clone(),
                        categories: new.categories.clone(),
                        created: new.subscribed_at,
                        confirmed: Some(new.subscribed_at),
                        joined: joined.clone(),
                    },
                );
                writes.push((
                    email,
                    new.name.as_str(),
                    &new.digests,
                    &new.categories,
                    secs(new.subscribed_at),
                    json_joined(&joined),
                    handle.to_hex(),
                    is_suppressed.then_some(key.0.as_str()),
                    inserting,
                ));
            }
            let mut pending = Vec::with_capacity(writes.len());
            for (email, name, digests, categories, at, joined, handle, key, inserting) in &writes {
                let mut values: Vec<&(dyn ToSql + Sync)> =
                    vec![email, name, *digests, *categories, at, joined];
                let statement = if *inserting {
                    values.push(handle);
                    &insert
                } else {
                    &update
                };
                pending.push(tx.execute_raw(statement, values));
                if let Some(key) = key {
                    pending.push(tx.execute_raw(&unsuppress, vec![key as &(dyn ToSql + Sync)]));
                }
            }
            futures_util::future::try_join_all(pending)
                .await
                .map_err(failed(operation))?;
        }
        tx.commit().await.map_err(failed(operation))?;
        Ok(outcomes)
    }

    async fn set_subscriber_status(
        &self,
        email: &EmailAddress,
        status: SubscriberStatus,
        at: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let operation = "change a subscriber's status";
        let confirmed = (status == SubscriberStatus::Confirmed).then(|| secs(at));
        let n = self
            .cached(operation)
            .await?
            .execute(
                "UPDATE subscribers SET status = $2, confirmed = COALESCE(confirmed, $3) WHERE email = $1",
                &[&email.as_str(), &status.as_str(), &confirmed],
            )
            .await
            .map_err(failed(operation))?;
        Ok(n > 0)
    }

    async fn unsubscribe(
        &self,
        email: &EmailAddress,
        _at: DateTime<Utc>,
    ) -> Result<RemoveOutcome, StateError> {
        let operation = "unsubscribe";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        lock_subscribers(&tx, operation).await?;
        let Some(old) = subscriber_where(&tx, "email = $1", &email.as_str()).await? else {
            return Ok(RemoveOutcome::NotFound);
        };
        if old.status.has_left() {
            return Ok(RemoveOutcome::AlreadyLeft);
        }
        tx.execute(
            "UPDATE subscribers SET status = 'unsubscribed' WHERE email = $1",
            &[&email.as_str()],
        )
        .await
        .map_err(failed(operation))?;
        tx.commit().await.map_err(failed(operation))?;
        Ok(RemoveOutcome::Unsubscribed)
    }

    async fn forget(
        &self,
        email: &EmailAddress,
        key: &SuppressionKey,
        at: DateTime<Utc>,
    ) -> Result<RemoveOutcome, StateError> {
        let operation = "forget a subscriber";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        let n = tx
            .execute(
                "DELETE FROM subscribers WHERE email = $1",
                &[&email.as_str()],
            )
            .await
            .map_err(failed(operation))?;
        tx.execute(
            "INSERT INTO suppressions (key, created) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key.0, &secs(at)],
        )
        .await
        .map_err(failed(operation))?;
        tx.commit().await.map_err(failed(operation))?;
        Ok(if n == 0 {
            RemoveOutcome::NotFound
        } else {
            RemoveOutcome::Forgotten
        })
    }

    async fn subscribers(&self, digest: Option<&str>) -> Result<Vec<Subscriber>, StateError> {
        let operation = "list subscribers";
        let rows = self
            .cached(operation)
            .await?
            .query(
                &format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
                     WHERE $1::text IS NULL OR $1 = ANY(digests)
                     ORDER BY email"
                ),
                &[&digest],
            )
            .await
            .map_err(failed(operation))?;
        rows.iter().map(|r| to_subscriber(r, 0)).collect()
    }

    async fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, StateError> {
        let client = self.client("read a subscriber").await?;
        subscriber_where(&client, "email = $1", &email.as_str()).await
    }

    async fn secret(&self, candidate: &[u8]) -> Result<(Vec<u8>, SecretOrigin), StateError> {
        let operation = "read the link-token secret";
        let client = self.client(operation).await?;
        // Of two replicas storing theirs at once, one insert wins and both read the winner back.
        let inserted = client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&SECRET_KEY, &candidate],
            )
            .await
            .map_err(failed(operation))?;
        let stored: Vec<u8> = client
            .query_one("SELECT value FROM settings WHERE key = $1", &[&SECRET_KEY])
            .await
            .map_err(failed(operation))?
            .get(0);
        let origin = if inserted == 1 {
            SecretOrigin::Generated
        } else {
            SecretOrigin::Stored
        };
        Ok((stored, origin))
    }

    async fn subscribers_page(
        &self,
        digest: &str,
        after: Option<&EmailAddress>,
        limit: usize,
    ) -> Result<Vec<Subscriber>, StateError> {
        let operation = "list subscribers";
        let after = after.map(|e| e.as_str());
        let rows = self
            .cached(operation)
            .await?
            .query(
                &format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
                     WHERE ($2::text IS NULL OR email > $2) AND $1 = ANY(digests)
                     ORDER BY email LIMIT $3"
                ),
                &[&digest, &after, &(limit as i64)],
            )
            .await
            .map_err(failed(operation))?;
        rows.iter().map(|r| to_subscriber(r, 0)).collect()
    }

    async fn received(
        &self,
        digest: &str,
        before: DateTime<Utc>,
        last: usize,
        among: Option<(&EmailAddress, &EmailAddress)>,
    ) -> Result<BTreeMap<EmailAddress, Vec<Received>>, StateError> {
        let operation = "read what subscribers received";
        let (from, to) = match among {
            Some((from, to)) => (Some(from.as_str()), Some(to.as_str())),
            None => (None, None),
        };
        let rows = self
            .cached(operation)
            .await?
            .query(
                "SELECT email, tick, articles, related FROM (
                    SELECT subscribers.email AS email, runs.tick AS tick, deliveries.articles AS articles,
                           deliveries.related AS related,
                           ROW_NUMBER() OVER (PARTITION BY deliveries.subscriber ORDER BY runs.tick DESC) AS n
                    FROM deliveries JOIN runs ON runs.id = deliveries.run
                    JOIN subscribers ON subscribers.id = deliveries.subscriber
                    WHERE runs.digest = $1 AND deliveries.status = 'sent' AND runs.tick < $2
                      AND ($4::text IS NULL OR subscribers.email BETWEEN $4 AND $5)
                 ) AS recent WHERE n <= $3
                 ORDER BY email, tick DESC",
                &[&digest, &before, &(last as i64), &from, &to],
            )
            .await
            .map_err(failed(operation))?;
        let mut by_email: BTreeMap<EmailAddress, Vec<Received>> = BTreeMap::new();
        for row in rows {
            by_email
                .entry(parse_email(row.get(0))?)
                .or_default()
                .push(Received {
                    tick: row.get(1),
                    articles: row.get(2),
                    related: row.get(3),
                });
        }
        Ok(by_email)
    }

    async fn latest_tick(&self, digest: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let operation = "read the latest tick";
        Ok(self
            .cached(operation)
            .await?
            .query_one("SELECT MAX(tick) FROM runs WHERE digest = $1", &[&digest])
            .await
            .map_err(failed(operation))?
            .get(0))
    }

    async fn run(&self, digest: &str, tick: DateTime<Utc>) -> Result<Option<Run>, StateError> {
        let operation = "read a run";
        let row = self
            .cached(operation)
            .await?
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE digest = $1 AND tick = $2"),
                &[&digest, &secs(tick)],
            )
            .await
            .map_err(failed(operation))?;
        Ok(row.as_ref().map(to_run))
    }

    async fn begin_run(
        &self,
        digest: &str,
        tick: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> Result<RunId, StateError> {
        let client = self.client("plan a run").await?;
        insert_run(&client, digest, tick, created, None).await
    }

    async fn add_deliveries(
        &self,
        run: RunId,
        deliveries: &[NewDelivery],
    ) -> Result<(), StateError> {
        let operation = "plan a run";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        let row = tx
            .query_opt(
                "SELECT planned, articles FROM runs WHERE id = $1 FOR UPDATE",
                &[&run],
            )
            .await
            .map_err(failed(operation))?
            .ok_or(StateError::NoRun(run))?;
        let planned: Option<DateTime<Utc>> = row.get(0);
        if planned.is_some() {
            return Err(StateError::AlreadyPlanned(run));
        }
        let mut all: BTreeSet<String> = row.get::<_, Vec<String>>(1).into_iter().collect();
        all.extend(deliveries.iter().flat_map(|d| d.articles.iter().cloned()));
        let all: Vec<String> = all.into_iter().collect();
        tx.execute("UPDATE runs SET articles = $2 WHERE id = $1", &[&run, &all])
            .await
            .map_err(failed(operation))?;
        // One statement for the page: its columns as arrays, unnested into rows.
        let mut emails = Vec::with_capacity(deliveries.len());
        let mut message_ids = Vec::with_capacity(deliveries.len());
        let mut articles = Vec::with_capacity(deliveries.len());
        let mut related = Vec::with_capacity(deliveries.len());
        let mut because = Vec::with_capacity(deliveries.len());
        let mut over_limit = Vec::with_capacity(deliveries.len());
        let mut window_after = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            emails.push(d.email.as_str());
            message_ids.push(d.message_id.as_str());
            // Arrays of arrays must be rectangular in PostgreSQL, so each list travels as one JSON text.
            articles.push(serde_json::to_string(&d.articles).expect("strings serialize"));
            let (slugs, fors): (Vec<&str>, Vec<&str>) = d
                .related
                .iter()
                .map(|p| (p.slug.as_str(), p.because.as_str()))
                .unzip();
            related.push(serde_json::to_string(&slugs).expect("strings serialize"));
            because.push(serde_json::to_string(&fors).expect("strings serialize"));
            over_limit.push(d.over_limit as i32);
            window_after.push(secs(d.window_after));
        }
        tx.execute(
            "INSERT INTO deliveries (run, subscriber, status, message_id, articles, related, because, over_limit,
                                     window_after)
             SELECT $1, subscribers.id, 'pending', page.message_id,
                    ARRAY(SELECT jsonb_array_elements_text(page.articles::jsonb)),
                    ARRAY(SELECT jsonb_array_elements_text(page.related::jsonb)),
                    ARRAY(SELECT jsonb_array_elements_text(page.because::jsonb)),
                    page.over_limit, page.window_after
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
                         $8::timestamptz[])
                  AS page (email, message_id, articles, related, because, over_limit, window_after)
             JOIN subscribers ON subscribers.email = page.email
             ON CONFLICT (run, subscriber) DO NOTHING",
            &[
                &run,
                &emails,
                &message_ids,
                &articles,
                &related,
                &because,
                &over_limit,
                &window_after,
            ],
        )
        .await
        .map_err(failed(operation))?;
        tx.commit().await.map_err(failed(operation))
    }

    async fn skip_run(
        &self,
        digest: &str,
        tick: DateTime<Utc>,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<RunId, StateError> {
        let client = self.client("record a skipped tick").await?;
        insert_run(&client, digest, tick, at, Some(reason)).await
    }

    async fn end_planning(&self, run: RunId, at: DateTime<Utc>) -> Result<(), StateError> {
        let operation = "plan a run";
        let n = self
            .cached(operation)
            .await?
            .execute(
                "UPDATE runs SET planned = COALESCE(planned, $2) WHERE id = $1",
                &[&run, &secs(at)],
            )
            .await
            .map_err(failed(operation))?;
        if n == 0 {
            return Err(StateError::NoRun(run));
        }
        Ok(())
    }

    async fn deliveries(&self, run: RunId) -> Result<Vec<Delivery>, StateError> {
        let operation = "read a run's deliveries";
        let rows = self
            .cached(operation)
            .await?
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries
                     JOIN subscribers ON subscribers.id = deliveries.subscriber
                     WHERE deliveries.run = $1 ORDER BY subscribers.email"
                ),
                &[&run],
            )
            .await
            .map_err(failed(operation))?;
        rows.iter().map(to_delivery).collect()
    }

    async fn claim(
        &self,
        run: RunId,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StateError> {
        let operation = "claim deliveries";
        // SKIP LOCKED: replicas claiming at once each take rows the others have not locked, without waiting.
        let rows = self
            .cached(operation)
            .await?
            .query(
                &format!(
                    "WITH taken AS (
                        UPDATE deliveries SET claimed_by = $2, lease_until = $5
                        WHERE id IN (
                            SELECT deliveries.id FROM deliveries JOIN runs ON runs.id = deliveries.run
                            WHERE deliveries.run = $1 AND deliveries.status IN ('pending', 'deferred')
                              AND (deliveries.claimed_by IS NULL OR deliveries.lease_until < $3)
                              AND runs.planned IS NOT NULL
                            ORDER BY deliveries.id LIMIT $4
                            FOR UPDATE OF deliveries SKIP LOCKED)
                        RETURNING *)
                     SELECT {}, {SUBSCRIBER_COLUMNS}
                     FROM taken AS deliveries JOIN subscribers ON subscribers.id = deliveries.subscriber
                     ORDER BY deliveries.id",
                    DELIVERY_COLUMNS
                ),
                &[&run, &owner, &now, &(limit as i64), &secs(lease_until)],
            )
            .await
            .map_err(failed(operation))?;
        rows.iter()
            .map(|row| {
                Ok(Claimed {
                    delivery: to_delivery(row)?,
                    subscriber: to_subscriber(row, DELIVERY_COLUMN_COUNT)?,
                })
            })
            .collect()
    }

    async fn release_claims(&self, owner: &str) -> Result<usize, StateError> {
        let operation = "release claims";
        let n = self
            .cached(operation)
            .await?
            .execute(
                "UPDATE deliveries SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = $1",
                &[&owner],
            )
            .await
            .map_err(failed(operation))?;
        Ok(n as usize)
    }

    async fn claimants(&self, run: RunId, now: DateTime<Utc>) -> Result<Vec<String>, StateError> {
        let operation = "list claimants";
        let rows = self
            .cached(operation)
            .await?
            .query(
                "SELECT DISTINCT claimed_by FROM deliveries
                 WHERE run = $1 AND status IN ('pending', 'deferred') AND claimed_by IS NOT NULL
                   AND lease_until >= $2
                 ORDER BY claimed_by",
                &[&run, &now],
            )
            .await
            .map_err(failed(operation))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn senders_with_unsent(
        &self,
        run: RunId,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        let operation = "list senders";
        let rows = self
            .cached(operation)
            .await?
            .query(
                "SELECT DISTINCT claimed_by FROM deliveries
                 WHERE run = $1 AND status = 'pending' AND claimed_by IS NOT NULL AND lease_until >= $2
                 ORDER BY claimed_by",
                &[&run, &now],
            )
            .await
            .map_err(failed(operation))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn failures_in_a_row(&self, email: &EmailAddress) -> Result<usize, StateError> {
        let operation = "count failures in a row";
        let n: i64 = self
            .cached(operation)
            .await?
            .query_one(
                "SELECT COUNT(*) FROM deliveries
                 WHERE subscriber = (SELECT id FROM subscribers WHERE email = $1) AND status = 'failed'
                   AND id > COALESCE((SELECT MAX(d.id) FROM deliveries d
                                      WHERE d.subscriber = deliveries.subscriber AND d.status = 'sent'), 0)",
                &[&email.as_str()],
            )
            .await
            .map_err(failed(operation))?
            .get(0);
        Ok(n as usize)
    }

    async fn runs(&self, digest: Option<&str>) -> Result<Vec<RunSummary>, StateError> {
        let operation = "list runs";
        let rows = self
            .cached(operation)
            .await?
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS}, counts.status, counts.n
                     FROM runs LEFT JOIN (SELECT run, status, COUNT(*) AS n FROM deliveries GROUP BY run, status)
                          AS counts ON counts.run = runs.id
                     WHERE $1::text IS NULL OR runs.digest = $1
                     ORDER BY runs.tick DESC, runs.digest, runs.id"
                ),
                &[&digest],
            )
            .await
            .map_err(failed(operation))?;
        let mut summaries: Vec<RunSummary> = Vec::new();
        for row in &rows {
            let id: RunId = row.get(0);
            if summaries.last().is_none_or(|s| s.run.id != id) {
                summaries.push(RunSummary {
                    run: to_run(row),
                    counts: BTreeMap::new(),
                });
            }
            if let Some(status) = row.get::<_, Option<String>>(RUN_COLUMN_COUNT) {
                let status = DeliveryStatus::parse(&status)
                    .ok_or_else(|| corrupt("delivery status", &status))?;
                let count: i64 = row.get(RUN_COLUMN_COUNT + 1);
                let summary = summaries.last_mut().expect("pushed above");
                summary.counts.insert(status, count as usize);
            }
        }
        Ok(summaries)
    }

    async fn first_seen(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StateError> {
        let operation = "read when articles were first seen";
        let rows = self
            .cached(operation)
            .await?
            .query("SELECT slug, first_seen FROM articles_seen", &[])
            .await
            .map_err(failed(operation))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn record_first_seen(&self, seen: &[(String, DateTime<Utc>)]) -> Result<(), StateError> {
        let operation = "record when articles were first seen";
        let (slugs, times): (Vec<&str>, Vec<DateTime<Utc>>) =
            seen.iter().map(|(s, t)| (s.as_str(), secs(*t))).unzip();
        self.cached(operation)
            .await?
            .execute(
                "INSERT INTO articles_seen (slug, first_seen)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[])
                 ON CONFLICT (slug) DO NOTHING",
                &[&slugs, &times],
            )
            .await
            .map_err(failed(operation))?;
        Ok(())
    }

    async fn record_all(
        &self,
        events: &[(DeliveryId, DeliveryEvent)],
    ) -> Result<Vec<Transition>, StateError> {
        let operation = "record a delivery";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        let update = tx
            .prepare_cached(
                "UPDATE deliveries SET status = $2, attempts = attempts + $3, last_error = $4,
                        sent_at = COALESCE($5, sent_at)
                 WHERE id = $1 AND status IN ('pending', 'deferred')",
            )
            .await
            .map_err(failed(operation))?;
        let params: Vec<_> = events
            .iter()
            .map(|(id, event)| {
                (
                    *id,
                    event.target().as_str(),
                    i32::from(event.is_attempt()),
                    event.note(),
                    event.sent_at().map(secs),
                )
            })
            .collect();
        // Sent together and applied in order (one connection runs its statements in the order they came).
        let applied = futures_util::future::try_join_all(params.iter().map(
            |(id, status, attempt, note, sent_at)| {
                let values: [&(dyn ToSql + Sync); 5] = [id, status, attempt, note, sent_at];
                tx.execute_raw(&update, values)
            },
        ))
        .await
        .map_err(failed(operation))?;
        let mut transitions = Vec::with_capacity(events.len());
        for ((id, event), n) in events.iter().zip(applied) {
            let id: DeliveryId = *id;
            if n == 1 {
                transitions.push(Transition::Applied(event.target()));
                continue;
            }
            let row = tx
                .query_opt("SELECT status FROM deliveries WHERE id = $1", &[&id])
                .await
                .map_err(failed(operation))?
                .ok_or(StateError::NoDelivery(id))?;
            let current: String = row.get(0);
            let status = DeliveryStatus::parse(&current)
                .ok_or_else(|| corrupt("delivery status", &current))?;
            transitions.push(status.apply(event));
        }
        tx.commit().await.map_err(failed(operation))?;
        Ok(transitions)
    }

    async fn finish_run(&self, run: RunId, at: DateTime<Utc>) -> Result<RunProgress, StateError> {
        let operation = "finish a run";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        let row = tx
            .query_one(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE run = $1 AND status IN ('pending', 'deferred')),
                        EXISTS (SELECT 1 FROM runs WHERE id = $1 AND planned IS NOT NULL)",
                &[&run],
            )
            .await
            .map_err(failed(operation))?;
        let (remaining, planned): (i64, bool) = (row.get(0), row.get(1));
        // A run still being planned (by another replica) is not finished, however few rows it has yet.
        let progress = if remaining == 0 && planned {
            tx.execute(
                "UPDATE runs SET finished = $2 WHERE id = $1 AND finished IS NULL",
                &[&run, &secs(at)],
            )
            .await
            .map_err(failed(operation))?;
            RunProgress::Finished
        } else {
            RunProgress::Open {
                remaining: remaining as usize,
            }
        };
        tx.commit().await.map_err(failed(operation))?;
        Ok(progress)
    }

    async fn sign_up(
        &self,
        new: &NewSubscriber,
        key: &SuppressionKey,
    ) -> Result<SignupOutcome, StateError> {
        let operation = "record a sign-up";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        lock_subscribers(&tx, operation).await?;
        let at = new.changed_at;
        let joined: BTreeMap<String, DateTime<Utc>> =
            new.digests.iter().map(|d| (d.clone(), at)).collect();
        let outcome = match subscriber_where(&tx, "email = $1", &new.email.as_str()).await? {
            Some(old) if old.status == SubscriberStatus::Confirmed => {
                SignupOutcome::AlreadyConfirmed(old.handle)
            }
            Some(old) => {
                tx.execute(
                    "UPDATE subscribers SET name = $2, digests = $3, categories = $4, joined = $5
                     WHERE email = $1",
                    &[
                        &new.email.as_str(),
                        &new.name,
                        &new.digests,
                        &new.categories,
                        &json_joined(&joined),
                    ],
                )
                .await
                .map_err(failed(operation))?;
                SignupOutcome::AwaitingConfirmation(old.handle)
            }
            None => {
                let suppressed = tx
                    .query_opt("SELECT 1 FROM suppressions WHERE key = $1", &[&key.0])
                    .await
                    .map_err(failed(operation))?
                    .is_some();
                if suppressed {
                    SignupOutcome::Suppressed
                } else {
                    let handle = new_handle();
                    tx.execute(
                        "INSERT INTO subscribers (email, name, status, digests, categories, created, joined,
                                                  handle)
                         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7)",
                        &[
                            &new.email.as_str(),
                            &new.name,
                            &new.digests,
                            &new.categories,
                            &secs(new.subscribed_at),
                            &json_joined(&joined),
                            &handle.to_hex(),
                        ],
                    )
                    .await
                    .map_err(failed(operation))?;
                    SignupOutcome::AwaitingConfirmation(handle)
                }
            }
        };
        tx.commit().await.map_err(failed(operation))?;
        Ok(outcome)
    }

    async fn subscriber_by_handle(
        &self,
        handle: &SubscriberHandle,
    ) -> Result<Option<Subscriber>, StateError> {
        let client = self.client("read a subscriber").await?;
        subscriber_where(&client, "handle = $1", &handle.to_hex()).await
    }

    async fn confirm(
        &self,
        handle: &SubscriberHandle,
        at: DateTime<Utc>,
    ) -> Result<ConfirmOutcome, StateError> {
        let operation = "confirm a subscriber";
        let client = self.client(operation).await?;
        // One statement: it reads the status it changes, so no lock is needed.
        let row = client
            .query_opt(
                "UPDATE subscribers AS s SET status = 'confirmed', confirmed = COALESCE(s.confirmed, $2)
                 FROM (SELECT id, status FROM subscribers WHERE handle = $1 FOR UPDATE) AS old
                 WHERE s.id = old.id
                 RETURNING old.status",
                &[&handle.to_hex(), &secs(at)],
            )
            .await
            .map_err(failed(operation))?;
        Ok(match row {
            None => ConfirmOutcome::NotFound,
            Some(row) if row.get::<_, &str>(0) == SubscriberStatus::Confirmed.as_str() => {
                ConfirmOutcome::AlreadyConfirmed
            }
            Some(_) => ConfirmOutcome::Confirmed,
        })
    }

    async fn leave(
        &self,
        handle: &SubscriberHandle,
        digest: Option<&str>,
        _at: DateTime<Utc>,
    ) -> Result<LeaveOutcome, StateError> {
        let operation = "unsubscribe";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        lock_subscribers(&tx, operation).await?;
        let Some(mut old) = subscriber_where(&tx, "handle = $1", &handle.to_hex()).await? else {
            return Ok(LeaveOutcome::NotFound);
        };
        if old.status.has_left() {
            return Ok(LeaveOutcome::AlreadyLeft);
        }
        let outcome = match digest {
            Some(d) if !old.takes(d) => LeaveOutcome::AlreadyLeft,
            Some(d) if old.digests.len() > 1 => {
                old.digests.retain(|x| x != d);
                old.joined.remove(d);
                tx.execute(
                    "UPDATE subscribers SET digests = $2, joined = $3 WHERE handle = $1",
                    &[&handle.to_hex(), &old.digests, &json_joined(&old.joined)],
                )
                .await
                .map_err(failed(operation))?;
                LeaveOutcome::LeftDigest
            }
            _ => {
                tx.execute(
                    "UPDATE subscribers SET status = 'unsubscribed' WHERE handle = $1",
                    &[&handle.to_hex()],
                )
                .await
                .map_err(failed(operation))?;
                LeaveOutcome::Unsubscribed
            }
        };
        tx.commit().await.map_err(failed(operation))?;
        Ok(outcome)
    }

    async fn set_preferences(
        &self,
        handle: &SubscriberHandle,
        digests: &[String],
        categories: &[String],
        at: DateTime<Utc>,
    ) -> Result<PreferencesOutcome, StateError> {
        let operation = "change a subscriber's preferences";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        lock_subscribers(&tx, operation).await?;
        let Some(old) = subscriber_where(&tx, "handle = $1", &handle.to_hex()).await? else {
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
            "UPDATE subscribers SET digests = $2, categories = $3, joined = $4 WHERE handle = $1",
            &[
                &handle.to_hex(),
                &digests,
                &categories,
                &json_joined(&joined),
            ],
        )
        .await
        .map_err(failed(operation))?;
        tx.commit().await.map_err(failed(operation))?;
        Ok(PreferencesOutcome::Saved)
    }

    async fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let operation = "hold a lease";
        let row = self
            .cached(operation)
            .await?
            .query_opt(
                "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $4)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
                 WHERE leases.owner = excluded.owner OR leases.until < $3
                 RETURNING owner",
                &[&name, &owner, &now, &until],
            )
            .await
            .map_err(failed(operation))?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StateError> {
        let operation = "release a lease";
        self.cached(operation)
            .await?
            .execute(
                "DELETE FROM leases WHERE name = $1 AND owner = $2",
                &[&name, &owner],
            )
            .await
            .map_err(failed(operation))?;
        Ok(())
    }

    async fn take_send_budget(
        &self,
        window: i64,
        want: u32,
        limit: u32,
    ) -> Result<u32, StateError> {
        let operation = "take from the send budget";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        // The window's row is created once and then locked by each taker in turn: grants never exceed `limit`.
        let inserted = tx
            .execute(
                "INSERT INTO send_budget (window_id, used) VALUES ($1, 0) ON CONFLICT (window_id) DO NOTHING",
                &[&window],
            )
            .await
            .map_err(failed(operation))?;
        if inserted == 1 {
            tx.execute(
                "DELETE FROM send_budget WHERE window_id < $1::bigint - 60",
                &[&window],
            )
            .await
            .map_err(failed(operation))?;
        }
        // FOR UPDATE reads the newest committed count and holds the row until this grant is written.
        let used: i32 = tx
            .query_one(
                "SELECT used FROM send_budget WHERE window_id = $1 FOR UPDATE",
                &[&window],
            )
            .await
            .map_err(failed(operation))?
            .get(0);
        let granted = (i64::from(limit) - i64::from(used)).clamp(0, i64::from(want)) as i32;
        if granted > 0 {
            tx.execute(
                "UPDATE send_budget SET used = used + $2 WHERE window_id = $1",
                &[&window, &granted],
            )
            .await
            .map_err(failed(operation))?;
        }
        tx.commit().await.map_err(failed(operation))?;
        Ok(granted as u32)
    }

    async fn stored_secret(&self) -> Result<Option<Vec<u8>>, StateError> {
        let operation = "read the link-token secret";
        let row = self
            .cached(operation)
            .await?
            .query_opt("SELECT value FROM settings WHERE key = $1", &[&SECRET_KEY])
            .await
            .map_err(failed(operation))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn suppressions(&self) -> Result<Vec<DumpSuppression>, StateError> {
        let operation = "read the suppression list";
        let rows = self
            .cached(operation)
            .await?
            .query(
                "SELECT key, created FROM suppressions ORDER BY key COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(failed(operation))?;
        Ok(rows
            .iter()
            .map(|r| DumpSuppression {
                key: r.get(0),
                created: r.get(1),
            })
            .collect())
    }

    async fn load(&self, dump: &StateDump) -> Result<(), StateError> {
        let operation = "import a state";
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(failed(operation))?;
        lock_subscribers(&tx, operation).await?;
        let row = tx
            .query_one(
                "SELECT (SELECT COUNT(*) FROM subscribers), (SELECT COUNT(*) FROM runs),
                        (SELECT COUNT(*) FROM suppressions)",
                &[],
            )
            .await
            .map_err(failed(operation))?;
        let held: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if held != (0, 0, 0) {
            return Err(StateError::NotEmpty(format!(
                "{} subscribers, {} runs, {} suppressions",
                held.0, held.1, held.2
            )));
        }
        if let Some(secret) = &dump.secret {
            let secret = hex::decode(secret).map_err(|_| corrupt("secret", secret))?;
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&SECRET_KEY, &secret],
            )
            .await
            .map_err(failed(operation))?;
        }
        let json = |list: &[String]| serde_json::to_string(list).expect("strings serialize");
        // Rows go in pages of columns unnested by the server: one statement per page, not one per row.
        for page in dump.subscribers.chunks(LOAD_PAGE) {
            let column = |f: fn(&DumpSubscriber) -> String| page.iter().map(f).collect::<Vec<_>>();
            let created: Vec<DateTime<Utc>> = page.iter().map(|s| secs(s.created)).collect();
            let confirmed: Vec<Option<DateTime<Utc>>> =
                page.iter().map(|s| s.confirmed.map(secs)).collect();
            tx.execute(
                "INSERT INTO subscribers (email, handle, name, status, digests, categories, created, confirmed,
                                          joined)
                 SELECT email, handle, name, status,
                        ARRAY(SELECT jsonb_array_elements_text(digests::jsonb)),
                        ARRAY(SELECT jsonb_array_elements_text(categories::jsonb)),
                        created, confirmed, joined::jsonb
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::timestamptz[], $8::timestamptz[], $9::text[])
                      AS page (email, handle, name, status, digests, categories, created, confirmed, joined)",
                &[
                    &column(|s| s.email.clone()),
                    &column(|s| s.handle.clone()),
                    &column(|s| s.name.clone()),
                    &column(|s| s.status.clone()),
                    &page.iter().map(|s| json(&s.digests)).collect::<Vec<_>>(),
                    &page.iter().map(|s| json(&s.categories)).collect::<Vec<_>>(),
                    &created,
                    &confirmed,
                    &page
                        .iter()
                        .map(|s| json_joined(&s.joined).to_string())
                        .collect::<Vec<_>>(),
                ],
            )
            .await
            .map_err(failed(operation))?;
        }
        let keys: Vec<&str> = dump.suppressions.iter().map(|s| s.key.as_str()).collect();
        let created: Vec<DateTime<Utc>> =
            dump.suppressions.iter().map(|s| secs(s.created)).collect();
        let slugs: Vec<&str> = dump.articles_seen.keys().map(String::as_str).collect();
        let seen: Vec<DateTime<Utc>> = dump.articles_seen.values().map(|t| secs(*t)).collect();
        let run_ids: Vec<RunId> = dump.runs.iter().map(|r| r.id).collect();
        let digests: Vec<&str> = dump.runs.iter().map(|r| r.digest.as_str()).collect();
        let ticks: Vec<DateTime<Utc>> = dump.runs.iter().map(|r| secs(r.tick)).collect();
        let articles: Vec<String> = dump.runs.iter().map(|r| json(&r.articles)).collect();
        let run_created: Vec<DateTime<Utc>> = dump.runs.iter().map(|r| secs(r.created)).collect();
        let planned: Vec<Option<DateTime<Utc>>> =
            dump.runs.iter().map(|r| r.planned.map(secs)).collect();
        let finished: Vec<Option<DateTime<Utc>>> =
            dump.runs.iter().map(|r| r.finished.map(secs)).collect();
        let skipped: Vec<Option<&str>> = dump.runs.iter().map(|r| r.skipped.as_deref()).collect();
        for statement in [
            (
                "INSERT INTO suppressions (key, created) SELECT * FROM UNNEST($1::text[], $2::timestamptz[])",
                vec![&keys as &(dyn ToSql + Sync), &created],
            ),
            (
                "INSERT INTO articles_seen (slug, first_seen) SELECT * FROM UNNEST($1::text[], $2::timestamptz[])",
                vec![&slugs as &(dyn ToSql + Sync), &seen],
            ),
            (
                "INSERT INTO runs (id, digest, tick, articles, created, planned, finished, skipped)
                 SELECT id, digest, tick, ARRAY(SELECT jsonb_array_elements_text(articles::jsonb)), created,
                        planned, finished, skipped
                 FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[],
                             $6::timestamptz[], $7::timestamptz[], $8::text[])
                      AS page (id, digest, tick, articles, created, planned, finished, skipped)",
                vec![
                    &run_ids as &(dyn ToSql + Sync),
                    &digests,
                    &ticks,
                    &articles,
                    &run_created,
                    &planned,
                    &finished,
                    &skipped,
                ],
            ),
        ] {
            tx.execute_raw(statement.0, statement.1)
                .await
                .map_err(failed(operation))?;
        }
        for page in dump.deliveries.chunks(LOAD_PAGE) {
            let ids: Vec<i64> = page.iter().map(|d| d.id).collect();
            let runs: Vec<RunId> = page.iter().map(|d| d.run).collect();
            let emails: Vec<&str> = page.iter().map(|d| d.email.as_str()).collect();
            let statuses: Vec<&str> = page.iter().map(|d| d.status.as_str()).collect();
            let attempts: Vec<i32> = page.iter().map(|d| d.attempts as i32).collect();
            let errors: Vec<Option<&str>> = page.iter().map(|d| d.last_error.as_deref()).collect();
            let message_ids: Vec<&str> = page.iter().map(|d| d.message_id.as_str()).collect();
            let articles: Vec<String> = page.iter().map(|d| json(&d.articles)).collect();
            let related: Vec<String> = page.iter().map(|d| json(&d.related)).collect();
            let because: Vec<String> = page.iter().map(|d| json(&d.because)).collect();
            let over: Vec<i32> = page.iter().map(|d| d.over_limit as i32).collect();
            let windows: Vec<Option<DateTime<Utc>>> =
                page.iter().map(|d| d.window_after.map(secs)).collect();
            let sent: Vec<Option<DateTime<Utc>>> =
                page.iter().map(|d| d.sent_at.map(secs)).collect();
            tx.execute(
                "INSERT INTO deliveries (id, run, subscriber, status, attempts, last_error, message_id, articles,
                                         related, because, over_limit, window_after, sent_at)
                 SELECT page.id, page.run, subscribers.id, page.status, page.attempts, page.last_error,
                        page.message_id, ARRAY(SELECT jsonb_array_elements_text(page.articles::jsonb)),
                        ARRAY(SELECT jsonb_array_elements_text(page.related::jsonb)),
                        ARRAY(SELECT jsonb_array_elements_text(page.because::jsonb)),
                        page.over_limit, page.window_after, page.sent_at
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[],
                             $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::timestamptz[],
                             $13::timestamptz[])
                      AS page (id, run, email, status, attempts, last_error, message_id, articles, related,
                               because, over_limit, window_after, sent_at)
                 JOIN subscribers ON subscribers.email = page.email",
                &[
                    &ids,
                    &runs,
                    &emails,
                    &statuses,
                    &attempts,
                    &errors,
                    &message_ids,
                    &articles,
                    &related,
                    &because,
                    &over,
                    &windows,
                    &sent,
                ],
            )
            .await
            .map_err(failed(operation))?;
        }
        // Ids were given: the sequences go on after them.
        tx.batch_execute(
            "SELECT setval(pg_get_serial_sequence('runs', 'id'), COALESCE((SELECT MAX(id) FROM runs), 0) + 1, false);
             SELECT setval(pg_get_serial_sequence('deliveries', 'id'),
                           COALESCE((SELECT MAX(id) FROM deliveries), 0) + 1, false);",
        )
        .await
        .map_err(failed(operation))?;
        tx.commit().await.map_err(failed(operation))
    }

    async fn ping(&self) -> Result<(), StateError> {
        let operation = "answer a health check";
        self.cached(operation)
            .await?
            .query_one("SELECT COUNT(*) FROM settings", &[])
            .await
            .map_err(failed(operation))?;
        Ok(())
    }
}

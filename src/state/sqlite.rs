//! [`SqliteState`]: the embedded [`State`] backend, one SQLite file with versioned migrations.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Delivery, DeliveryId, DeliveryStatus, EmailAddress, NewDelivery, NewSubscriber, Received,
    RemoveOutcome, Run, RunId, SecretOrigin, State, StateError, Subscriber, SubscriberStatus,
    UpsertOutcome,
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
];

const SECRET_KEY: &str = "link_token_secret";

pub struct SqliteState {
    conn: Connection,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StateError::Corrupt {
            what: "timestamp",
            value: s.into(),
        })
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

fn parse_list(s: &str) -> Result<Vec<String>, StateError> {
    serde_json::from_str(s).map_err(|_| StateError::Corrupt {
        what: "list",
        value: s.into(),
    })
}

fn parse_email(s: &str) -> Result<EmailAddress, StateError> {
    EmailAddress::parse(s).map_err(|_| StateError::Corrupt {
        what: "email address",
        value: s.into(),
    })
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
        let conn = Connection::open(path).map_err(|source| StateError::Open {
            path: name.clone(),
            source,
        })?;
        SqliteState::init(conn, &name)
    }

    /// A private in-memory database (tests, previews).
    pub fn in_memory() -> Result<SqliteState, StateError> {
        let conn = Connection::open_in_memory().map_err(|source| StateError::Open {
            path: ":memory:".into(),
            source,
        })?;
        SqliteState::init(conn, ":memory:")
    }

    fn init(mut conn: Connection, name: &str) -> Result<SqliteState, StateError> {
        let open_err = |source| StateError::Open {
            path: name.into(),
            source,
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // WAL lets `digest preview` and `subscribers list` read while a send writes. In-memory databases ignore it.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(open_err)? as usize;
        if version > MIGRATIONS.len() {
            return Err(StateError::TooNew {
                path: name.into(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let target = i + 1;
            let migrate = |source| StateError::Migrate {
                path: name.into(),
                version: target,
                source,
            };
            let tx = conn.transaction().map_err(migrate)?;
            tx.execute_batch(sql).map_err(migrate)?;
            tx.pragma_update(None, "user_version", target as i64)
                .map_err(migrate)?;
            tx.commit().map_err(migrate)?;
        }
        Ok(SqliteState { conn })
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<usize, StateError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize)
    }

    fn row_subscriber(row: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; 8]> {
        Ok([
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
        ])
    }

    fn to_subscriber(cols: [Option<String>; 8]) -> Result<Subscriber, StateError> {
        let [
            email,
            name,
            status,
            digests,
            categories,
            created,
            confirmed,
            joined,
        ] = cols;
        let text = |v: Option<String>| v.unwrap_or_default();
        Ok(Subscriber {
            email: parse_email(&text(email))?,
            name: text(name),
            status: SubscriberStatus::parse(&text(status))?,
            digests: parse_list(&text(digests))?,
            categories: parse_list(&text(categories))?,
            created: parse_ts(&text(created))?,
            confirmed: confirmed.as_deref().map(parse_ts).transpose()?,
            joined: parse_joined(&text(joined))?,
        })
    }
}

fn parse_joined(s: &str) -> Result<BTreeMap<String, DateTime<Utc>>, StateError> {
    let raw: BTreeMap<String, String> =
        serde_json::from_str(s).map_err(|_| StateError::Corrupt {
            what: "joined times",
            value: s.into(),
        })?;
    raw.into_iter()
        .map(|(d, t)| Ok((d, parse_ts(&t)?)))
        .collect()
}

fn json_joined(joined: &BTreeMap<String, DateTime<Utc>>) -> String {
    let raw: BTreeMap<&str, String> = joined.iter().map(|(d, t)| (d.as_str(), ts(*t))).collect();
    serde_json::to_string(&raw).expect("a map of strings serializes")
}

const SUBSCRIBER_COLUMNS: &str =
    "email, name, status, digests, categories, created, confirmed, joined";

impl State for SqliteState {
    fn upsert_subscriber(&mut self, new: &NewSubscriber) -> Result<UpsertOutcome, StateError> {
        let tx = self.conn.transaction()?;
        let existing = tx
            .query_row(
                &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?1"),
                [new.email.as_str()],
                SqliteState::row_subscriber,
            )
            .optional()?
            .map(SqliteState::to_subscriber)
            .transpose()?;
        let at = ts(new.subscribed_at);
        let outcome = match existing {
            None => {
                tx.execute(
                    "INSERT INTO subscribers (email, name, status, digests, categories, created, confirmed, joined)
                     VALUES (?1, ?2, 'confirmed', ?3, ?4, ?5, ?5, ?6)",
                    params![
                        new.email.as_str(),
                        new.name,
                        json_list(&new.digests),
                        json_list(&new.categories),
                        at,
                        json_joined(&new.digests.iter().map(|d| (d.clone(), new.subscribed_at)).collect())
                    ],
                )?;
                UpsertOutcome::Added
            }
            Some(old)
                if matches!(
                    old.status,
                    SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced
                ) =>
            {
                UpsertOutcome::KeptUnsubscribed
            }
            Some(old) => {
                let same = old.name == new.name
                    && old.digests == new.digests
                    && old.categories == new.categories
                    && old.status == SubscriberStatus::Confirmed;
                if same {
                    UpsertOutcome::Unchanged
                } else {
                    // Keep the original subscription time and each digest's join time: they bound what a
                    // new subscriber gets. A digest added now starts now, never with its archive.
                    let joined: BTreeMap<String, DateTime<Utc>> = new
                        .digests
                        .iter()
                        .map(|d| {
                            (
                                d.clone(),
                                old.joined.get(d).copied().unwrap_or(new.changed_at),
                            )
                        })
                        .collect();
                    tx.execute(
                        "UPDATE subscribers SET name = ?2, digests = ?3, categories = ?4, status = 'confirmed',
                         confirmed = COALESCE(confirmed, ?5), joined = ?6 WHERE email = ?1",
                        params![
                            new.email.as_str(),
                            new.name,
                            json_list(&new.digests),
                            json_list(&new.categories),
                            at,
                            json_joined(&joined)
                        ],
                    )?;
                    UpsertOutcome::Updated
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn remove_subscriber(&mut self, email: &EmailAddress) -> Result<RemoveOutcome, StateError> {
        let n = self
            .conn
            .execute("DELETE FROM subscribers WHERE email = ?1", [email.as_str()])?;
        Ok(if n == 0 {
            RemoveOutcome::NotFound
        } else {
            RemoveOutcome::Removed
        })
    }

    fn subscribers(&self, digest: Option<&str>) -> Result<Vec<Subscriber>, StateError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
             WHERE ?1 IS NULL OR EXISTS (SELECT 1 FROM json_each(subscribers.digests) WHERE value = ?1)
             ORDER BY email"
        ))?;
        let rows = stmt.query_map([digest], SqliteState::row_subscriber)?;
        rows.map(|r| SqliteState::to_subscriber(r?)).collect()
    }

    fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?1"),
                [email.as_str()],
                SqliteState::row_subscriber,
            )
            .optional()?
            .map(SqliteState::to_subscriber)
            .transpose()
    }

    fn secret(
        &mut self,
        generate: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<(Vec<u8>, SecretOrigin), StateError> {
        let tx = self.conn.transaction()?;
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
                let secret = generate();
                tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                    params![SECRET_KEY, secret],
                )?;
                (secret, SecretOrigin::Generated)
            }
        };
        tx.commit()?;
        Ok(result)
    }

    fn received(
        &self,
        digest: &str,
        email: &EmailAddress,
        before: DateTime<Utc>,
        last: usize,
    ) -> Result<Vec<Received>, StateError> {
        // Ticks are stored as fixed-width RFC 3339 UTC text, so text order is time order.
        let mut stmt = self.conn.prepare(
            "SELECT runs.tick, deliveries.articles, deliveries.related
             FROM deliveries JOIN runs ON runs.id = deliveries.run
             JOIN subscribers ON subscribers.id = deliveries.subscriber
             WHERE runs.digest = ?1 AND subscribers.email = ?2 AND deliveries.status = 'sent'
               AND runs.tick < ?3
             ORDER BY runs.tick DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![digest, email.as_str(), ts(before), last as i64],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        rows.map(|r| {
            let (tick, articles, related) = r?;
            Ok(Received {
                tick: parse_ts(&tick)?,
                articles: parse_list(&articles)?,
                related: parse_list(&related)?,
            })
        })
        .collect()
    }

    fn run(&self, digest: &str, tick: DateTime<Utc>) -> Result<Option<Run>, StateError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, digest, tick, articles, created, finished FROM runs WHERE digest = ?1 AND tick = ?2",
                params![digest, ts(tick)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, digest, tick, articles, created, finished)| {
            Ok(Run {
                id,
                digest,
                tick: parse_ts(&tick)?,
                articles: parse_list(&articles)?,
                created: parse_ts(&created)?,
                finished: finished.as_deref().map(parse_ts).transpose()?,
            })
        })
        .transpose()
    }

    fn plan_run(
        &mut self,
        digest: &str,
        tick: DateTime<Utc>,
        created: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<RunId, StateError> {
        let mut all: Vec<String> = deliveries
            .iter()
            .flat_map(|d| d.articles.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        let tx = self.conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO runs (digest, tick, articles, created) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (digest, tick) DO NOTHING",
            params![digest, ts(tick), json_list(&all), ts(created)],
        )?;
        if inserted == 0 {
            return Err(StateError::RunExists {
                digest: digest.into(),
                tick: ts(tick),
            });
        }
        let run = tx.last_insert_rowid();
        for d in deliveries {
            tx.execute(
                "INSERT INTO deliveries (run, subscriber, status, message_id, articles, related)
                 SELECT ?1, id, 'pending', ?3, ?4, ?5 FROM subscribers WHERE email = ?2",
                params![
                    run,
                    d.email.as_str(),
                    d.message_id,
                    json_list(&d.articles),
                    json_list(&d.related)
                ],
            )?;
        }
        tx.commit()?;
        Ok(run)
    }

    fn deliveries(&self, run: RunId) -> Result<Vec<Delivery>, StateError> {
        let mut stmt = self.conn.prepare(
            "SELECT deliveries.id, deliveries.run, subscribers.email, deliveries.status, deliveries.attempts,
                    deliveries.last_error, deliveries.message_id, deliveries.articles, deliveries.related,
                    deliveries.sent_at
             FROM deliveries JOIN subscribers ON subscribers.id = deliveries.subscriber
             WHERE deliveries.run = ?1 ORDER BY subscribers.email",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        rows.map(|r| {
            let (
                id,
                run,
                email,
                status,
                attempts,
                last_error,
                message_id,
                articles,
                related,
                sent_at,
            ) = r?;
            Ok(Delivery {
                id,
                run,
                email: parse_email(&email)?,
                status: DeliveryStatus::parse(&status)?,
                attempts: attempts as u32,
                last_error,
                message_id,
                articles: parse_list(&articles)?,
                related: parse_list(&related)?,
                sent_at: sent_at.as_deref().map(parse_ts).transpose()?,
            })
        })
        .collect()
    }

    fn mark_sent(&mut self, delivery: DeliveryId, at: DateTime<Utc>) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE deliveries SET status = ?2, attempts = attempts + 1, sent_at = ?3, last_error = NULL
             WHERE id = ?1",
            params![delivery, DeliveryStatus::Sent.as_str(), ts(at)],
        )?;
        Ok(())
    }

    fn mark_failed(&mut self, delivery: DeliveryId, error: &str) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE deliveries SET status = ?2, attempts = attempts + 1, last_error = ?3 WHERE id = ?1",
            params![delivery, DeliveryStatus::Failed.as_str(), error],
        )?;
        Ok(())
    }

    fn mark_cancelled(&mut self, delivery: DeliveryId, reason: &str) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE deliveries SET status = ?2, last_error = ?3 WHERE id = ?1",
            params![delivery, DeliveryStatus::Cancelled.as_str(), reason],
        )?;
        Ok(())
    }

    fn latest_tick(&self, digest: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let latest: Option<String> = self.conn.query_row(
            "SELECT MAX(tick) FROM runs WHERE digest = ?1",
            [digest],
            |r| r.get(0),
        )?;
        latest.as_deref().map(parse_ts).transpose()
    }

    fn finish_run(&mut self, run: RunId, at: DateTime<Utc>) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE runs SET finished = ?2 WHERE id = ?1",
            params![run, ts(at)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
impl SqliteState {
    /// Raw access for tests that need a state no public method produces (an unsubscribed row).
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }
}

//! The SQLite backend: the shared conformance suite, plus what only this backend has (files, migrations).

use std::sync::Arc;

use super::conformance::conformance_suite;
use super::sqlite::MIGRATIONS;
use super::*;
use crate::domain::{NewSubscriber, SuppressionKey};

conformance_suite!(async { Arc::new(SqliteState::in_memory().unwrap()) as Arc<dyn State> });

fn ada() -> NewSubscriber {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .to_utc();
    NewSubscriber {
        email: EmailAddress::parse("ada@example.com").unwrap(),
        name: "Ada".into(),
        digests: vec!["weekly".into()],
        categories: Vec::new(),
        subscribed_at: at,
        changed_at: at,
    }
}

#[tokio::test]
async fn a_fresh_database_is_migrated_to_the_latest_version() {
    let state = SqliteState::in_memory().unwrap();
    assert_eq!(state.schema_version().await.unwrap(), MIGRATIONS.len());
    let tables = state
        .query_strings("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .await;
    assert_eq!(
        tables,
        [
            "articles_seen",
            "deliveries",
            "leases",
            "runs",
            "send_budget",
            "settings",
            "subscribers",
            "suppressions"
        ]
    );
}

#[tokio::test]
async fn reopening_a_file_database_keeps_its_data_and_does_not_migrate_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/tidings.db");
    let state = SqliteState::open(&path).unwrap();
    let key = SuppressionKey("k".into());
    state
        .upsert_subscriber(&ada(), &key, Resubscribe::Never)
        .await
        .unwrap();
    drop(state);
    let state = SqliteState::open(&path).unwrap();
    assert_eq!(state.subscribers(None).await.unwrap().len(), 1);
    assert_eq!(state.schema_version().await.unwrap(), MIGRATIONS.len());
}

#[tokio::test]
async fn version_1_failed_deliveries_become_deferred_since_version_1_retried_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    SqliteState::execute_batch_for_tests(
        &path,
        &format!(
            "{}
             PRAGMA user_version = 1;
             INSERT INTO subscribers (id, email, status, created) VALUES (1, 'ada@example.com', 'confirmed',
                 '2026-11-01T00:00:00Z');
             INSERT INTO runs (id, digest, tick, created) VALUES (1, 'weekly', '2026-11-02T08:00:00Z',
                 '2026-11-02T08:00:00Z');
             INSERT INTO deliveries (run, subscriber, status, attempts, last_error, message_id)
                 VALUES (1, 1, 'failed', 1, '451 later', '<m@example.com>');",
            MIGRATIONS[0]
        ),
    );
    let state = SqliteState::open(&path).unwrap();
    let deliveries = state.deliveries(1).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].status, deliveries[0].attempts),
        (DeliveryStatus::Deferred, 1)
    );
    assert_eq!(deliveries[0].last_error.as_deref(), Some("451 later"));
}

#[tokio::test]
async fn a_database_from_a_newer_tidings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    SqliteState::execute_batch_for_tests(&path, "PRAGMA user_version = 99;");
    let err = SqliteState::open(&path).err().expect("refused");
    assert!(
        err.to_string().contains("schema version 99 is newer"),
        "{err}"
    );
}

#[test]
fn state_locations_are_paths_or_urls() {
    assert_eq!(
        StateLocation::parse("data/tidings.db"),
        Ok(StateLocation::Sqlite("data/tidings.db".into()))
    );
    assert_eq!(
        StateLocation::parse("sqlite:///srv/t.db"),
        Ok(StateLocation::Sqlite("/srv/t.db".into()))
    );
    assert_eq!(
        StateLocation::parse("sqlite:t.db"),
        Ok(StateLocation::Sqlite("t.db".into()))
    );
    assert_eq!(
        StateLocation::parse("postgres://u:pw@db/tidings"),
        Ok(StateLocation::Postgres("postgres://u:pw@db/tidings".into()))
    );
    assert!(
        StateLocation::parse("mysql://db/x")
            .unwrap_err()
            .contains("mysql://")
    );
    assert!(StateLocation::parse("").is_err());
    assert_eq!(
        StateLocation::Postgres("postgres://u:secret@db/tidings".into()).display(),
        "postgres://u:***@db/tidings"
    );
}

#[tokio::test]
async fn a_new_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    SqliteState::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn an_empty_database_file_is_refused_not_taken_for_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    std::fs::write(&path, b"").unwrap();
    let err = SqliteState::open(&path).err().expect("refused").to_string();
    assert!(
        err.contains("t.db") && err.contains("the file is empty"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
}

#[tokio::test]
async fn one_database_reached_through_a_symlink_is_one_database_with_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    let a = SqliteState::open(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("alias.db")).unwrap();
    let b = SqliteState::open(&dir.path().join("./alias.db")).unwrap();
    a.upsert_subscriber(&ada(), &SuppressionKey("k".into()), Resubscribe::Never)
        .await
        .unwrap();
    assert_eq!(b.subscribers(None).await.unwrap().len(), 1);
    assert!(
        !dir.path().join("alias.db-wal").exists(),
        "a second write-ahead log beside the alias would split the database"
    );
}

#[tokio::test]
async fn version_2_subscribers_each_get_their_own_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    SqliteState::execute_batch_for_tests(
        &path,
        &format!(
            "{}
             {}
             PRAGMA user_version = 2;
             INSERT INTO subscribers (email, status, created) VALUES ('ada@example.com', 'confirmed',
                 '2026-11-01T00:00:00Z'), ('bob@example.com', 'confirmed', '2026-11-01T00:00:00Z');",
            MIGRATIONS[0], MIGRATIONS[1]
        ),
    );
    let state = SqliteState::open(&path).unwrap();
    let all = state.subscribers(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_ne!(all[0].handle, all[1].handle);
    let found = state.subscriber_by_handle(&all[1].handle).await.unwrap();
    assert_eq!(found.unwrap().email.as_str(), "bob@example.com");
}

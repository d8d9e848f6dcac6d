//! The PostgreSQL backend: the shared conformance suite, plus what only a shared server has (migrations raced by
//! replicas, claims taken at once by several senders).
//!
//! These tests need a server: `TEST_POSTGRES_URL` names one (`scripts/test` starts a throwaway cluster with
//! `scripts/postgres` and sets it). Without it they fail, saying so: they never skip. Each test works in a schema
//! of its own, so they run in parallel on one database.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use super::conformance::conformance_suite;
use super::postgres::MIGRATIONS;
use super::*;
use crate::domain::{NewSubscriber, SuppressionKey};

conformance_suite!(async { Arc::new(fresh_postgres().await) as Arc<dyn State> });

/// The test server's URL.
pub(crate) fn test_server() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL \
         cluster (or start one with `scripts/postgres start DIR` and export the URL it prints)",
    )
}

/// A URL to a new, empty schema of the test server.
pub(crate) async fn fresh_schema_url() -> String {
    let server = test_server();
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {server}: {e}"));
    tokio::spawn(connection);
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let schema = format!("t_{}", hex::encode(bytes));
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-csearch_path%3D{schema}")
}

async fn fresh_postgres() -> PostgresState {
    let url = fresh_schema_url().await;
    PostgresState::connect(&url, "test").await.unwrap()
}

fn at(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 8, 0, 0).unwrap()
}

fn subscriber(i: usize) -> (NewSubscriber, SuppressionKey) {
    (
        NewSubscriber {
            email: EmailAddress::parse(&format!("reader{i:05}@example.com")).unwrap(),
            name: format!("Reader {i}"),
            digests: vec!["weekly".into()],
            categories: Vec::new(),
            subscribed_at: at(1),
            changed_at: at(1),
        },
        SuppressionKey(format!("key{i}")),
    )
}

fn delivery(new: &NewSubscriber) -> NewDelivery {
    NewDelivery {
        email: new.email.clone(),
        message_id: format!("<{}@test>", new.email.as_str()),
        articles: vec!["hello".into()],
        related: Vec::new(),
        over_limit: 0,
        window_after: at(1),
    }
}

#[tokio::test]
async fn a_fresh_database_is_migrated_to_the_latest_version() {
    let state = fresh_postgres().await;
    assert_eq!(state.schema_version().await.unwrap(), MIGRATIONS.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let url = fresh_schema_url().await;
    let connects = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PostgresState::connect(&url, "test").await })
    });
    for joined in futures_util::future::join_all(connects).await {
        let state = joined.unwrap().expect("every replica connects");
        assert_eq!(state.schema_version().await.unwrap(), MIGRATIONS.len());
    }
}

#[tokio::test]
async fn a_database_from_a_newer_tidings_is_refused() {
    let url = fresh_schema_url().await;
    PostgresState::connect(&url, "test").await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO tidings_schema (version, applied) VALUES ($1, now())",
            &[&(MIGRATIONS.len() as i32 + 1)],
        )
        .await
        .unwrap();
    let err = PostgresState::connect(&url, "test").await.err().unwrap();
    assert!(matches!(err, StateError::TooNew { .. }), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_naming_it() {
    // Port 1 on loopback: nothing listens there.
    let location = StateLocation::parse("postgres://tidings@127.0.0.1:1/tidings").unwrap();
    let err = open(&location).await.err().expect("refused");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(
        message.contains("cannot open the state database"),
        "{message}"
    );
}

/// Three senders claim batches of one run at the same time until nothing is left: every delivery is claimed
/// exactly once (SKIP LOCKED hands each its own rows; none waits for another's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_claiming_at_once_get_disjoint_batches_covering_the_run() {
    let url = fresh_schema_url().await;
    let first = PostgresState::connect(&url, "test").await.unwrap();
    let batch: Vec<_> = (0..600).map(subscriber).collect();
    first
        .upsert_subscribers(&batch, Resubscribe::Never)
        .await
        .unwrap();
    let deliveries: Vec<_> = batch.iter().map(|(n, _)| delivery(n)).collect();
    let run = first
        .plan_run("weekly", at(2), at(2), &deliveries)
        .await
        .unwrap();
    let senders = (0..3).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            let state = PostgresState::connect(&url, "test").await.unwrap();
            let owner = format!("replica-{i}");
            let mut mine = Vec::new();
            loop {
                let claimed = state
                    .claim(run, &owner, 25, at(2), at(2) + Duration::minutes(5))
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|c| c.delivery.id));
            }
        })
    });
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for joined in futures_util::future::join_all(senders).await {
        let mine = joined.unwrap();
        total += mine.len();
        seen.extend(mine);
    }
    assert_eq!(total, 600, "a delivery was claimed twice");
    assert_eq!(seen.len(), 600, "a delivery was never claimed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_planning_one_tick_at_once_make_one_run() {
    let url = fresh_schema_url().await;
    PostgresState::connect(&url, "test").await.unwrap();
    let planners = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let state = PostgresState::connect(&url, "test").await.unwrap();
            state.begin_run("weekly", at(3), at(3)).await
        })
    });
    let outcomes: Vec<_> = futures_util::future::join_all(planners)
        .await
        .into_iter()
        .map(|j| j.unwrap())
        .collect();
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let lost = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StateError::RunExists { .. })))
        .count();
    assert_eq!((won, lost), (1, 3), "{outcomes:?}");
}

#[test]
fn only_loopback_and_socket_hosts_count_as_local() {
    use super::postgres::only_local_hosts;
    let local = |url: &str| only_local_hosts(&url.parse().unwrap());
    assert!(local("postgres://u@127.0.0.1:5432/db"));
    assert!(local("postgres://u@localhost/db"));
    assert!(local("postgres://u@[::1]/db"));
    assert!(local("postgresql://u@%2Frun%2Fpostgresql/db"));
    assert!(!local("postgres://u@db.example.com/db"));
    assert!(!local("postgres://u@10.0.0.5/db"));
}

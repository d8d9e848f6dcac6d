use chrono::{TimeZone, Utc};

use super::*;

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 8, 0, 0).unwrap()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn new(addr: &str, digests: &[&str], categories: &[&str]) -> NewSubscriber {
    NewSubscriber {
        email: email(addr),
        name: "Ada".into(),
        digests: digests.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        subscribed_at: t(1),
        changed_at: t(1),
    }
}

fn delivery(addr: &str, articles: &[&str]) -> NewDelivery {
    NewDelivery {
        email: email(addr),
        message_id: format!("<{addr}.x@example.com>"),
        articles: articles.iter().map(|s| s.to_string()).collect(),
        related: vec!["old".into()],
    }
}

#[test]
fn a_fresh_database_is_migrated_to_the_latest_version() {
    let state = SqliteState::in_memory().unwrap();
    assert_eq!(state.schema_version().unwrap(), sqlite::MIGRATIONS.len());
    let tables: Vec<String> = state
        .conn_for_tests()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tables, ["deliveries", "runs", "settings", "subscribers"]);
}

#[test]
fn reopening_a_file_database_keeps_its_data_and_does_not_migrate_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/tidings.db");
    let mut state = SqliteState::open(&path).unwrap();
    state
        .upsert_subscriber(&new("ada@example.com", &["weekly"], &[]))
        .unwrap();
    drop(state);
    let state = SqliteState::open(&path).unwrap();
    assert_eq!(state.subscribers(None).unwrap().len(), 1);
}

#[test]
fn upsert_is_idempotent_and_reports_what_it_did() {
    let mut state = SqliteState::in_memory().unwrap();
    let ada = new("ada@example.com", &["weekly"], &["Tools"]);
    assert_eq!(state.upsert_subscriber(&ada).unwrap(), UpsertOutcome::Added);
    assert_eq!(
        state.upsert_subscriber(&ada).unwrap(),
        UpsertOutcome::Unchanged
    );
    let mut renamed = ada.clone();
    renamed.name = "Ada Park".into();
    renamed.subscribed_at = t(20);
    assert_eq!(
        state.upsert_subscriber(&renamed).unwrap(),
        UpsertOutcome::Updated
    );
    let stored = state.subscriber(&ada.email).unwrap().unwrap();
    assert_eq!(stored.name, "Ada Park");
    assert_eq!(
        stored.created,
        t(1),
        "an update keeps the original subscription time"
    );
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert_eq!(stored.categories, vec!["Tools".to_string()]);
}

#[test]
fn a_digest_added_later_is_joined_when_it_is_added_not_at_subscription() {
    let mut state = SqliteState::in_memory().unwrap();
    let ada = new("ada@example.com", &["weekly"], &[]);
    state.upsert_subscriber(&ada).unwrap();
    let mut more = ada.clone();
    more.digests = vec!["weekly".into(), "daily".into()];
    more.changed_at = t(20);
    assert_eq!(
        state.upsert_subscriber(&more).unwrap(),
        UpsertOutcome::Updated
    );
    let stored = state.subscriber(&ada.email).unwrap().unwrap();
    assert_eq!(
        stored.joined_at("weekly"),
        t(1),
        "the first digest keeps its join time"
    );
    assert_eq!(
        stored.joined_at("daily"),
        t(20),
        "the added digest starts now, without its archive"
    );
}

#[test]
fn an_unsubscribed_address_is_not_subscribed_again_by_an_import() {
    let mut state = SqliteState::in_memory().unwrap();
    let ada = new("ada@example.com", &["weekly"], &[]);
    state.upsert_subscriber(&ada).unwrap();
    state
        .conn_for_tests()
        .execute("UPDATE subscribers SET status = 'unsubscribed'", [])
        .unwrap();
    assert_eq!(
        state.upsert_subscriber(&ada).unwrap(),
        UpsertOutcome::KeptUnsubscribed
    );
    assert_eq!(
        state.subscriber(&ada.email).unwrap().unwrap().status,
        SubscriberStatus::Unsubscribed
    );
}

#[test]
fn subscribers_can_be_listed_by_digest_and_removed() {
    let mut state = SqliteState::in_memory().unwrap();
    state
        .upsert_subscriber(&new("b@example.com", &["weekly"], &[]))
        .unwrap();
    state
        .upsert_subscriber(&new("a@example.com", &["daily", "weekly"], &[]))
        .unwrap();
    state
        .upsert_subscriber(&new("c@example.com", &["daily"], &[]))
        .unwrap();
    let weekly: Vec<String> = state
        .subscribers(Some("weekly"))
        .unwrap()
        .into_iter()
        .map(|s| s.email.to_string())
        .collect();
    assert_eq!(weekly, ["a@example.com", "b@example.com"]);
    assert_eq!(
        state.remove_subscriber(&email("a@example.com")).unwrap(),
        RemoveOutcome::Removed
    );
    assert_eq!(
        state.remove_subscriber(&email("a@example.com")).unwrap(),
        RemoveOutcome::NotFound
    );
    assert_eq!(state.subscribers(None).unwrap().len(), 2);
}

#[test]
fn a_tick_can_be_planned_only_once() {
    let mut state = SqliteState::in_memory().unwrap();
    state
        .upsert_subscriber(&new("a@example.com", &["weekly"], &[]))
        .unwrap();
    let deliveries = [delivery("a@example.com", &["x"])];
    state.plan_run("weekly", t(9), t(9), &deliveries).unwrap();
    let again = state
        .plan_run("weekly", t(9), t(9), &deliveries)
        .unwrap_err();
    assert!(matches!(again, StateError::RunExists { .. }), "{again}");
    assert!(
        state.plan_run("daily", t(9), t(9), &deliveries).is_ok(),
        "unique per digest and tick"
    );
}

#[test]
fn deliveries_are_pending_until_marked_and_only_sent_ones_count_as_received() {
    let mut state = SqliteState::in_memory().unwrap();
    let a = email("a@example.com");
    state
        .upsert_subscriber(&new("a@example.com", &["weekly"], &[]))
        .unwrap();
    let run = state
        .plan_run(
            "weekly",
            t(9),
            t(9),
            &[delivery("a@example.com", &["x", "y"])],
        )
        .unwrap();
    let pending = state.deliveries(run).unwrap();
    assert_eq!(pending[0].status, DeliveryStatus::Pending);
    assert!(
        state
            .received("weekly", &a, far_future(), 3)
            .unwrap()
            .is_empty()
    );

    state
        .mark_failed(pending[0].id, "connection refused")
        .unwrap();
    let failed = &state.deliveries(run).unwrap()[0];
    assert_eq!(
        (failed.status, failed.attempts),
        (DeliveryStatus::Failed, 1)
    );
    assert_eq!(failed.last_error.as_deref(), Some("connection refused"));

    state.mark_sent(pending[0].id, t(9)).unwrap();
    state.finish_run(run, t(9)).unwrap();
    let got = state.received("weekly", &a, far_future(), 3).unwrap();
    assert_eq!(got[0].tick, t(9));
    assert_eq!(got[0].articles, ["x", "y"]);
    let stored = state.run("weekly", t(9)).unwrap().unwrap();
    assert_eq!(stored.articles, ["x", "y"]);
    assert_eq!(stored.finished, Some(t(9)));
}

#[test]
fn received_lists_the_newest_digests_first() {
    let mut state = SqliteState::in_memory().unwrap();
    let a = email("a@example.com");
    state
        .upsert_subscriber(&new("a@example.com", &["weekly"], &[]))
        .unwrap();
    for day in [2, 9, 16] {
        let run = state
            .plan_run(
                "weekly",
                t(day),
                t(day),
                &[delivery("a@example.com", &[&format!("d{day}")])],
            )
            .unwrap();
        let id = state.deliveries(run).unwrap()[0].id;
        state.mark_sent(id, t(day)).unwrap();
    }
    let ticks: Vec<_> = state
        .received("weekly", &a, far_future(), 2)
        .unwrap()
        .into_iter()
        .map(|r| r.tick)
        .collect();
    assert_eq!(ticks, [t(16), t(9)]);
}

#[test]
fn the_secret_is_generated_once_and_then_read_back() {
    let mut state = SqliteState::in_memory().unwrap();
    let mut calls = 0;
    let mut generate = || {
        calls += 1;
        vec![7u8; 32]
    };
    let (first, origin) = state.secret(&mut generate).unwrap();
    assert_eq!(origin, SecretOrigin::Generated);
    let (second, origin) = state.secret(&mut generate).unwrap();
    assert_eq!(origin, SecretOrigin::Stored);
    assert_eq!(first, second);
    assert_eq!(calls, 1);
}

fn far_future() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

//! The [`State`] contract, written once against the interface: every backend runs every case here through
//! [`conformance_suite!`] with a factory for a fresh, empty state (see `tests.rs` for SQLite). A second backend
//! adds one invocation, not a second copy of these tests.
//!
//! The ledger cases are one per transition of the table in `domain::delivery`, final states included.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::{
    ConfirmOutcome, LeaveOutcome, NewDelivery, PreferencesOutcome, RecordedPick, RemoveOutcome,
    Resubscribe, RunProgress, SecretOrigin, SignupOutcome, State, StateError, UpsertOutcome,
};
use crate::domain::{
    DeliveryEvent, DeliveryStatus, EmailAddress, NewSubscriber, SubscriberHandle, SubscriberStatus,
    SuppressionKey, Transition,
};

/// Expands to one `#[tokio::test]` per case, each on a fresh state made by `$make` (an async block giving an
/// `Arc<dyn State>`). Every case of this file is listed here.
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::state::conformance::conformance_suite!(@cases $make;
            upsert_is_idempotent_and_reports_what_it_did,
            a_digest_added_later_is_joined_when_it_is_added_not_at_subscription,
            an_unsubscribed_address_is_not_subscribed_again_by_an_import,
            a_bounced_address_is_not_subscribed_again_by_an_import,
            confirming_sets_the_confirmation_time_once,
            a_status_change_for_an_unknown_address_changes_nothing,
            subscribers_can_be_listed_by_digest_and_removed,
            forgetting_a_subscriber_removes_their_delivery_history,
            unsubscribing_keeps_the_address_and_says_when_it_had_left,
            a_forgotten_address_is_never_added_again_unless_resubscribed,
            resubscribing_brings_back_a_left_address_with_a_new_join_time,
            an_import_is_one_batch_with_an_outcome_per_row,
            a_claim_is_exclusive_to_its_owner,
            an_expired_lease_is_claimed_by_the_next_sender,
            released_claims_are_claimed_again,
            claimants_are_the_owners_of_live_claims,
            senders_with_unsent_hold_live_claims_on_pending_deliveries,
            final_deliveries_are_never_claimed,
            a_claim_carries_the_subscriber_as_they_are_now,
            failures_in_a_row_count_since_the_last_sent_message,
            runs_are_listed_newest_first_with_their_counts,
            first_sightings_are_recorded_once_and_never_move,
            the_secret_is_stored_once_and_then_read_back,
            a_tick_can_be_planned_only_once,
            a_run_and_its_deliveries_are_written_pending_before_anything_is_sent,
            only_sent_deliveries_count_as_received,
            received_lists_each_subscribers_newest_digests_first_in_one_query,
            received_ignores_ticks_at_or_after_before,
            latest_tick_is_the_newest_planned_tick_of_the_digest,
            pending_moves_to_every_events_status,
            deferred_is_retried_and_counts_each_attempt,
            deferred_moves_to_sent_failed_or_cancelled,
            sent_is_final,
            rejected_is_final,
            cancelled_stays_cancelled_even_when_the_subscriber_confirms_again,
            a_cancellation_is_not_an_attempt,
            recording_an_unknown_delivery_is_an_error,
            events_recorded_together_apply_in_order_all_or_none,
            a_run_being_planned_has_nothing_to_claim,
            planning_again_keeps_the_first_delivery_of_each_subscriber,
            a_planned_run_takes_no_more_deliveries,
            a_skipped_tick_is_a_finished_run_with_its_reason,
            subscribers_come_in_pages_in_address_order,
            received_can_be_read_for_a_range_of_addresses,
            a_run_finishes_only_when_no_delivery_is_open,
            a_run_being_planned_is_not_finished,
            a_sign_up_is_stored_pending_under_a_new_handle,
            a_sign_up_never_changes_a_confirmed_subscriber,
            a_sign_up_of_a_forgotten_address_stores_nothing,
            a_sign_up_of_an_address_that_left_keeps_it_left_until_it_confirms,
            confirming_by_handle_confirms_once,
            a_handle_names_one_subscriber_and_no_other,
            leaving_a_digest_keeps_the_others_and_leaving_the_last_unsubscribes,
            preferences_replace_choices_and_keep_each_kept_digests_join_time,
            preferences_of_someone_who_left_change_nothing,
            a_reachable_state_answers_a_ping,
            a_lease_is_held_by_one_owner_until_it_ends_or_is_released,
            a_windows_send_budget_is_shared_and_never_exceeded,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let state: std::sync::Arc<dyn $crate::state::State> = $make.await;
                $crate::state::conformance::$case(state).await;
            }
        )*
    };
}
pub(crate) use conformance_suite;

type Shared = Arc<dyn State>;

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 8, 0, 0).unwrap()
}

fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap()
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

/// The suppression key a state would be given for this subscriber (any stable per-address value will do here).
fn keyed(new: &NewSubscriber) -> SuppressionKey {
    SuppressionKey(format!("key:{}", new.email))
}

fn delivery(addr: &str, articles: &[&str]) -> NewDelivery {
    NewDelivery {
        email: email(addr),
        message_id: format!("<{addr}.x@example.com>"),
        articles: articles.iter().map(|s| s.to_string()).collect(),
        related: articles
            .first()
            .map(|first| RecordedPick {
                slug: "old".into(),
                because: first.to_string(),
            })
            .into_iter()
            .collect(),
        over_limit: articles.len(),
        window_after: t(1),
    }
}

fn sent(day: u32) -> DeliveryEvent {
    DeliveryEvent::Sent { at: t(day) }
}

fn deferred() -> DeliveryEvent {
    DeliveryEvent::Deferred {
        reply: "451 4.3.0 try again later".into(),
    }
}

fn rejected() -> DeliveryEvent {
    DeliveryEvent::Rejected {
        reply: "550 5.1.1 no such user".into(),
    }
}

fn cancelled() -> DeliveryEvent {
    DeliveryEvent::Cancelled {
        reason: "unsubscribed".into(),
    }
}

/// A state with one weekly subscriber and one planned run for them; returns the run's one delivery id.
async fn one_delivery(state: &Shared) -> i64 {
    state
        .upsert_subscriber(
            &new("a@example.com", &["weekly"], &[]),
            &keyed(&new("a@example.com", &["weekly"], &[])),
            Resubscribe::Never,
        )
        .await
        .unwrap();
    let run = state
        .plan_run("weekly", t(9), t(9), &[delivery("a@example.com", &["x"])])
        .await
        .unwrap();
    let deliveries = state.deliveries(run).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    deliveries[0].id
}

async fn status_of(state: &Shared, id: i64) -> (DeliveryStatus, u32, Option<String>) {
    let run = state.run("weekly", t(9)).await.unwrap().unwrap();
    let d = state
        .deliveries(run.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id == id)
        .expect("the delivery is still there");
    (d.status, d.attempts, d.last_error)
}

pub(crate) async fn upsert_is_idempotent_and_reports_what_it_did(state: Shared) {
    let ada = new("ada@example.com", &["weekly"], &["Tools"]);
    assert_eq!(
        state
            .upsert_subscriber(&ada, &keyed(&ada), Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::Added
    );
    assert_eq!(
        state
            .upsert_subscriber(&ada, &keyed(&ada), Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::Unchanged
    );
    let mut renamed = ada.clone();
    renamed.name = "Ada Park".into();
    renamed.subscribed_at = t(20);
    assert_eq!(
        state
            .upsert_subscriber(&renamed, &keyed(&renamed), Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::Updated
    );
    let stored = state.subscriber(&ada.email).await.unwrap().unwrap();
    assert_eq!(stored.name, "Ada Park");
    assert_eq!(
        stored.created,
        t(1),
        "an update keeps the original subscription time"
    );
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert_eq!(stored.confirmed, Some(t(1)));
    assert_eq!(stored.categories, ["Tools"]);
}

pub(crate) async fn a_digest_added_later_is_joined_when_it_is_added_not_at_subscription(
    state: Shared,
) {
    let ada = new("ada@example.com", &["weekly"], &[]);
    state
        .upsert_subscriber(&ada, &keyed(&ada), Resubscribe::Never)
        .await
        .unwrap();
    let mut more = ada.clone();
    more.digests = vec!["weekly".into(), "daily".into()];
    more.changed_at = t(20);
    assert_eq!(
        state
            .upsert_subscriber(&more, &keyed(&more), Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::Updated
    );
    let stored = state.subscriber(&ada.email).await.unwrap().unwrap();
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

async fn left_is_kept(state: Shared, status: SubscriberStatus) {
    let ada = new("ada@example.com", &["weekly"], &[]);
    state
        .upsert_subscriber(&ada, &keyed(&ada), Resubscribe::Never)
        .await
        .unwrap();
    assert!(
        state
            .set_subscriber_status(&ada.email, status, t(5))
            .await
            .unwrap()
    );
    let mut again = ada.clone();
    again.name = "Someone Else".into();
    assert_eq!(
        state
            .upsert_subscriber(&again, &keyed(&again), Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::KeptUnsubscribed
    );
    let stored = state.subscriber(&ada.email).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.name.as_str()), (status, "Ada"));
}

pub(crate) async fn an_unsubscribed_address_is_not_subscribed_again_by_an_import(state: Shared) {
    left_is_kept(state, SubscriberStatus::Unsubscribed).await;
}

pub(crate) async fn a_bounced_address_is_not_subscribed_again_by_an_import(state: Shared) {
    left_is_kept(state, SubscriberStatus::Bounced).await;
}

pub(crate) async fn confirming_sets_the_confirmation_time_once(state: Shared) {
    let ada = email("ada@example.com");
    state
        .upsert_subscriber(
            &new("ada@example.com", &["weekly"], &[]),
            &keyed(&new("ada@example.com", &["weekly"], &[])),
            Resubscribe::Never,
        )
        .await
        .unwrap();
    state
        .set_subscriber_status(&ada, SubscriberStatus::Pending, t(2))
        .await
        .unwrap();
    state
        .set_subscriber_status(&ada, SubscriberStatus::Confirmed, t(3))
        .await
        .unwrap();
    let stored = state.subscriber(&ada).await.unwrap().unwrap();
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert_eq!(
        stored.confirmed,
        Some(t(1)),
        "the first confirmation is kept"
    );
}

pub(crate) async fn a_status_change_for_an_unknown_address_changes_nothing(state: Shared) {
    let changed = state
        .set_subscriber_status(
            &email("nobody@example.com"),
            SubscriberStatus::Unsubscribed,
            t(2),
        )
        .await
        .unwrap();
    assert!(!changed);
    assert!(state.subscribers(None).await.unwrap().is_empty());
}

pub(crate) async fn subscribers_can_be_listed_by_digest_and_removed(state: Shared) {
    for (addr, digests) in [
        ("b@example.com", &["weekly"][..]),
        ("a@example.com", &["daily", "weekly"][..]),
        ("c@example.com", &["daily"][..]),
    ] {
        state
            .upsert_subscriber(
                &new(addr, digests, &[]),
                &keyed(&new(addr, digests, &[])),
                Resubscribe::Never,
            )
            .await
            .unwrap();
    }
    let weekly: Vec<String> = state
        .subscribers(Some("weekly"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.email.to_string())
        .collect();
    assert_eq!(weekly, ["a@example.com", "b@example.com"]);
    assert_eq!(
        state
            .forget(&email("a@example.com"), &SuppressionKey("k".into()), t(2))
            .await
            .unwrap(),
        RemoveOutcome::Forgotten
    );
    assert_eq!(
        state
            .forget(&email("a@example.com"), &SuppressionKey("k".into()), t(2))
            .await
            .unwrap(),
        RemoveOutcome::NotFound
    );
    let left: Vec<String> = state
        .subscribers(None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.email.to_string())
        .collect();
    assert_eq!(left, ["b@example.com", "c@example.com"]);
}

pub(crate) async fn forgetting_a_subscriber_removes_their_delivery_history(state: Shared) {
    let id = one_delivery(&state).await;
    state.record(id, &sent(9)).await.unwrap();
    state
        .forget(&email("a@example.com"), &SuppressionKey("k".into()), t(10))
        .await
        .unwrap();
    let run = state.run("weekly", t(9)).await.unwrap().unwrap();
    assert!(state.deliveries(run.id).await.unwrap().is_empty());
    assert!(
        state
            .received("weekly", far_future(), 3, None)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn the_secret_is_stored_once_and_then_read_back(state: Shared) {
    let (first, origin) = state.secret(&[7u8; 32]).await.unwrap();
    assert_eq!(
        (first.as_slice(), origin),
        (&[7u8; 32][..], SecretOrigin::Generated)
    );
    let (second, origin) = state.secret(&[9u8; 32]).await.unwrap();
    assert_eq!(origin, SecretOrigin::Stored);
    assert_eq!(
        second, first,
        "a later candidate never replaces the stored secret"
    );
}

pub(crate) async fn a_tick_can_be_planned_only_once(state: Shared) {
    state
        .upsert_subscriber(
            &new("a@example.com", &["weekly"], &[]),
            &keyed(&new("a@example.com", &["weekly"], &[])),
            Resubscribe::Never,
        )
        .await
        .unwrap();
    let deliveries = [delivery("a@example.com", &["x"])];
    let first = state
        .plan_run("weekly", t(9), t(9), &deliveries)
        .await
        .unwrap();
    let again = state
        .plan_run("weekly", t(9), t(10), &deliveries)
        .await
        .unwrap_err();
    assert!(matches!(again, StateError::RunExists { .. }), "{again}");
    assert_eq!(
        state.deliveries(first).await.unwrap().len(),
        1,
        "the refused plan added no delivery"
    );
    assert!(
        state
            .plan_run("daily", t(9), t(9), &deliveries)
            .await
            .is_ok(),
        "unique per digest and tick"
    );
}

pub(crate) async fn a_run_and_its_deliveries_are_written_pending_before_anything_is_sent(
    state: Shared,
) {
    for addr in ["a@example.com", "b@example.com"] {
        state
            .upsert_subscriber(
                &new(addr, &["weekly"], &[]),
                &keyed(&new(addr, &["weekly"], &[])),
                Resubscribe::Never,
            )
            .await
            .unwrap();
    }
    let run = state
        .plan_run(
            "weekly",
            t(9),
            t(8),
            &[
                delivery("b@example.com", &["y", "x"]),
                delivery("a@example.com", &["x"]),
            ],
        )
        .await
        .unwrap();
    let stored = state.run("weekly", t(9)).await.unwrap().unwrap();
    assert_eq!(
        (stored.id, stored.created, stored.finished),
        (run, t(8), None)
    );
    assert_eq!(
        stored.articles,
        ["x", "y"],
        "the union of the run's articles, sorted"
    );
    let deliveries = state.deliveries(run).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].email.as_str(), "a@example.com");
    assert_eq!(deliveries[1].articles, ["y", "x"], "digest order kept");
    assert_eq!(
        deliveries[1].related,
        [RecordedPick {
            slug: "old".into(),
            because: "y".into()
        }],
        "each pick with the article it was for"
    );
    assert_eq!(deliveries[1].over_limit, 2);
    assert_eq!(deliveries[1].message_id, "<b@example.com.x@example.com>");
    for d in &deliveries {
        assert_eq!(
            (d.status, d.attempts, d.sent_at),
            (DeliveryStatus::Pending, 0, None)
        );
    }
}

pub(crate) async fn only_sent_deliveries_count_as_received(state: Shared) {
    let id = one_delivery(&state).await;
    assert!(
        state
            .received("weekly", far_future(), 3, None)
            .await
            .unwrap()
            .is_empty()
    );
    state.record(id, &deferred()).await.unwrap();
    assert!(
        state
            .received("weekly", far_future(), 3, None)
            .await
            .unwrap()
            .is_empty(),
        "a deferred message was not received"
    );
    state.record(id, &sent(9)).await.unwrap();
    let got = state
        .received("weekly", far_future(), 3, None)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let received = &got[&email("a@example.com")];
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].tick, received[0].articles.as_slice()),
        (t(9), &["x".to_string()][..])
    );
}

pub(crate) async fn received_lists_each_subscribers_newest_digests_first_in_one_query(
    state: Shared,
) {
    for addr in ["a@example.com", "b@example.com"] {
        state
            .upsert_subscriber(
                &new(addr, &["weekly"], &[]),
                &keyed(&new(addr, &["weekly"], &[])),
                Resubscribe::Never,
            )
            .await
            .unwrap();
    }
    for day in [2, 9, 16] {
        let mut planned = vec![delivery("a@example.com", &[&format!("d{day}")])];
        if day == 9 {
            planned.push(delivery("b@example.com", &["b9"]));
        }
        let run = state
            .plan_run("weekly", t(day), t(day), &planned)
            .await
            .unwrap();
        for d in state.deliveries(run).await.unwrap() {
            state.record(d.id, &sent(day)).await.unwrap();
        }
    }
    let got = state
        .received("weekly", far_future(), 2, None)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let ticks = |addr: &str| got[&email(addr)].iter().map(|r| r.tick).collect::<Vec<_>>();
    assert_eq!(
        ticks("a@example.com"),
        [t(16), t(9)],
        "newest first, at most 2"
    );
    assert_eq!(ticks("b@example.com"), [t(9)]);
    assert!(
        state
            .received("daily", far_future(), 2, None)
            .await
            .unwrap()
            .is_empty(),
        "per digest"
    );
}

pub(crate) async fn received_ignores_ticks_at_or_after_before(state: Shared) {
    let id = one_delivery(&state).await;
    state.record(id, &sent(9)).await.unwrap();
    assert!(
        state
            .received("weekly", t(9), 3, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        state
            .received("weekly", t(10), 3, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub(crate) async fn latest_tick_is_the_newest_planned_tick_of_the_digest(state: Shared) {
    assert_eq!(state.latest_tick("weekly").await.unwrap(), None);
    state.plan_run("weekly", t(16), t(16), &[]).await.unwrap();
    state.plan_run("weekly", t(9), t(9), &[]).await.unwrap();
    state.plan_run("daily", t(20), t(20), &[]).await.unwrap();
    assert_eq!(state.latest_tick("weekly").await.unwrap(), Some(t(16)));
}

pub(crate) async fn pending_moves_to_every_events_status(state: Shared) {
    // One subscriber per event, all pending in one run.
    let events = [sent(9), deferred(), rejected(), cancelled()];
    let addrs = [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ];
    for addr in addrs {
        state
            .upsert_subscriber(
                &new(addr, &["weekly"], &[]),
                &keyed(&new(addr, &["weekly"], &[])),
                Resubscribe::Never,
            )
            .await
            .unwrap();
    }
    let planned: Vec<_> = addrs.iter().map(|a| delivery(a, &["x"])).collect();
    let run = state
        .plan_run("weekly", t(9), t(9), &planned)
        .await
        .unwrap();
    let deliveries = state.deliveries(run).await.unwrap();
    assert_eq!(deliveries.len(), 4);
    for (d, event) in deliveries.iter().zip(&events) {
        assert_eq!(
            state.record(d.id, event).await.unwrap(),
            Transition::Applied(event.target())
        );
    }
    let after = state.deliveries(run).await.unwrap();
    let got: Vec<_> = after.iter().map(|d| (d.status, d.attempts)).collect();
    assert_eq!(
        got,
        [
            (DeliveryStatus::Sent, 1),
            (DeliveryStatus::Deferred, 1),
            (DeliveryStatus::Failed, 1),
            (DeliveryStatus::Cancelled, 0),
        ]
    );
    assert_eq!(after[0].sent_at, Some(t(9)));
    assert_eq!(after[0].last_error, None);
    assert_eq!(
        after[1].last_error.as_deref(),
        Some("451 4.3.0 try again later")
    );
    assert_eq!(
        after[2].last_error.as_deref(),
        Some("550 5.1.1 no such user")
    );
    assert_eq!(after[3].last_error.as_deref(), Some("unsubscribed"));
}

pub(crate) async fn deferred_is_retried_and_counts_each_attempt(state: Shared) {
    let id = one_delivery(&state).await;
    for _ in 0..3 {
        assert_eq!(
            state.record(id, &deferred()).await.unwrap(),
            Transition::Applied(DeliveryStatus::Deferred)
        );
    }
    assert_eq!(status_of(&state, id).await.0, DeliveryStatus::Deferred);
    assert_eq!(status_of(&state, id).await.1, 3);
}

pub(crate) async fn deferred_moves_to_sent_failed_or_cancelled(state: Shared) {
    for (i, event) in [sent(9), rejected(), cancelled()].into_iter().enumerate() {
        let addr = format!("s{i}@example.com");
        state
            .upsert_subscriber(
                &new(&addr, &["weekly"], &[]),
                &keyed(&new(&addr, &["weekly"], &[])),
                Resubscribe::Never,
            )
            .await
            .unwrap();
        let run = state
            .plan_run("weekly", t(10 + i as u32), t(9), &[delivery(&addr, &["x"])])
            .await
            .unwrap();
        let id = state.deliveries(run).await.unwrap()[0].id;
        state.record(id, &deferred()).await.unwrap();
        assert_eq!(
            state.record(id, &event).await.unwrap(),
            Transition::Applied(event.target())
        );
        assert_eq!(
            state.deliveries(run).await.unwrap()[0].status,
            event.target()
        );
    }
}

async fn is_final(state: Shared, reach: DeliveryEvent) {
    let id = one_delivery(&state).await;
    let target = reach.target();
    state.record(id, &reach).await.unwrap();
    let before = status_of(&state, id).await;
    for event in [sent(10), deferred(), rejected(), cancelled()] {
        assert_eq!(
            state.record(id, &event).await.unwrap(),
            Transition::Refused(target),
            "{target} + {event:?}"
        );
    }
    assert_eq!(
        status_of(&state, id).await,
        before,
        "nothing changed, not even the attempts"
    );
}

pub(crate) async fn sent_is_final(state: Shared) {
    is_final(state, sent(9)).await;
}

pub(crate) async fn rejected_is_final(state: Shared) {
    is_final(state, rejected()).await;
}

pub(crate) async fn cancelled_stays_cancelled_even_when_the_subscriber_confirms_again(
    state: Shared,
) {
    let id = one_delivery(&state).await;
    let a = email("a@example.com");
    state
        .set_subscriber_status(&a, SubscriberStatus::Unsubscribed, t(9))
        .await
        .unwrap();
    state.record(id, &cancelled()).await.unwrap();
    state
        .set_subscriber_status(&a, SubscriberStatus::Confirmed, t(10))
        .await
        .unwrap();
    assert_eq!(
        state.record(id, &sent(10)).await.unwrap(),
        Transition::Refused(DeliveryStatus::Cancelled)
    );
    for event in [deferred(), rejected(), cancelled()] {
        assert_eq!(
            state.record(id, &event).await.unwrap(),
            Transition::Refused(DeliveryStatus::Cancelled)
        );
    }
    assert_eq!(status_of(&state, id).await.0, DeliveryStatus::Cancelled);
}

pub(crate) async fn a_cancellation_is_not_an_attempt(state: Shared) {
    let id = one_delivery(&state).await;
    state.record(id, &deferred()).await.unwrap();
    state.record(id, &cancelled()).await.unwrap();
    assert_eq!(
        status_of(&state, id).await,
        (DeliveryStatus::Cancelled, 1, Some("unsubscribed".into()))
    );
}

pub(crate) async fn recording_an_unknown_delivery_is_an_error(state: Shared) {
    let err = state.record(4242, &sent(9)).await.unwrap_err();
    assert!(matches!(err, StateError::NoDelivery(4242)), "{err}");
}

pub(crate) async fn events_recorded_together_apply_in_order_all_or_none(state: Shared) {
    let run = run_of(&state, 3).await;
    let ids: Vec<i64> = state
        .deliveries(run)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    let transitions = state
        .record_all(&[
            (ids[0], sent(9)),
            (ids[1], cancelled()),
            (ids[0], cancelled()),
        ])
        .await
        .unwrap();
    assert_eq!(
        transitions,
        vec![
            Transition::Applied(DeliveryStatus::Sent),
            Transition::Applied(DeliveryStatus::Cancelled),
            DeliveryStatus::Sent.apply(&cancelled()),
        ],
        "each event sees the ones before it"
    );
    let err = state
        .record_all(&[(ids[2], sent(9)), (4242, sent(9))])
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::NoDelivery(4242)), "{err}");
    let third = state
        .deliveries(run)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id == ids[2])
        .unwrap();
    assert_eq!(
        third.status,
        DeliveryStatus::Pending,
        "a failed batch records none of its events"
    );
}

async fn subscribe_all(state: &Shared, addresses: &[&str]) {
    for a in addresses {
        let s = new(a, &["weekly"], &[]);
        state
            .upsert_subscriber(&s, &keyed(&s), Resubscribe::Never)
            .await
            .unwrap();
    }
}

pub(crate) async fn a_run_being_planned_has_nothing_to_claim(state: Shared) {
    subscribe_all(&state, &["a@example.com", "b@example.com"]).await;
    let run = state.begin_run("weekly", t(9), t(9)).await.unwrap();
    state
        .add_deliveries(run, &[delivery("a@example.com", &["x"])])
        .await
        .unwrap();
    let lease = t(9) + chrono::Duration::minutes(10);
    assert!(
        state
            .claim(run, "s", 10, t(9), lease)
            .await
            .unwrap()
            .is_empty()
    );
    let planning = state.run("weekly", t(9)).await.unwrap().unwrap();
    assert_eq!(planning.planned, None);
    state
        .add_deliveries(run, &[delivery("b@example.com", &["y"])])
        .await
        .unwrap();
    state.end_planning(run, t(9)).await.unwrap();
    let planned = state.run("weekly", t(9)).await.unwrap().unwrap();
    assert_eq!(planned.planned, Some(t(9)));
    assert_eq!(planned.articles, ["x", "y"], "every page's articles");
    assert_eq!(
        ids(&state.claim(run, "s", 10, t(9), lease).await.unwrap()).len(),
        2
    );
}

pub(crate) async fn planning_again_keeps_the_first_delivery_of_each_subscriber(state: Shared) {
    subscribe_all(&state, &["a@example.com"]).await;
    let run = state.begin_run("weekly", t(9), t(9)).await.unwrap();
    state
        .add_deliveries(run, &[delivery("a@example.com", &["x"])])
        .await
        .unwrap();
    state
        .add_deliveries(run, &[delivery("a@example.com", &["y"])])
        .await
        .unwrap();
    let deliveries = state.deliveries(run).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].articles, ["x"]);
    let again = state.begin_run("weekly", t(9), t(9)).await.unwrap_err();
    assert!(matches!(again, StateError::RunExists { .. }), "{again}");
}

pub(crate) async fn a_planned_run_takes_no_more_deliveries(state: Shared) {
    subscribe_all(&state, &["a@example.com", "b@example.com"]).await;
    let run = state
        .plan_run("weekly", t(9), t(9), &[delivery("a@example.com", &["x"])])
        .await
        .unwrap();
    assert!(matches!(
        state
            .add_deliveries(run, &[delivery("b@example.com", &["x"])])
            .await,
        Err(StateError::AlreadyPlanned(r)) if r == run
    ));
    assert_eq!(state.deliveries(run).await.unwrap().len(), 1);
    assert!(matches!(
        state.end_planning(4242, t(9)).await,
        Err(StateError::NoRun(4242))
    ));
}

pub(crate) async fn a_skipped_tick_is_a_finished_run_with_its_reason(state: Shared) {
    state
        .skip_run("weekly", t(9), t(11), "missed by 2days")
        .await
        .unwrap();
    let run = state.run("weekly", t(9)).await.unwrap().unwrap();
    assert_eq!(run.skipped.as_deref(), Some("missed by 2days"));
    assert_eq!((run.planned, run.finished), (Some(t(11)), Some(t(11))));
    assert!(state.deliveries(run.id).await.unwrap().is_empty());
    assert_eq!(state.latest_tick("weekly").await.unwrap(), Some(t(9)));
    let again = state
        .skip_run("weekly", t(9), t(11), "again")
        .await
        .unwrap_err();
    assert!(matches!(again, StateError::RunExists { .. }), "{again}");
    let summaries = state.runs(Some("weekly")).await.unwrap();
    assert_eq!(summaries[0].run.skipped.as_deref(), Some("missed by 2days"));
}

pub(crate) async fn subscribers_come_in_pages_in_address_order(state: Shared) {
    subscribe_all(
        &state,
        &[
            "d@example.com",
            "b@example.com",
            "a@example.com",
            "c@example.com",
        ],
    )
    .await;
    let other = new("e@example.com", &["daily"], &[]);
    state
        .upsert_subscriber(&other, &keyed(&other), Resubscribe::Never)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after: Option<EmailAddress> = None;
    loop {
        let page = state
            .subscribers_page("weekly", after.as_ref(), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.email.clone());
        seen.extend(page.into_iter().map(|s| s.email.to_string()));
    }
    assert_eq!(
        seen,
        [
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "d@example.com"
        ],
        "every weekly subscriber once, in order; not the daily one"
    );
}

pub(crate) async fn received_can_be_read_for_a_range_of_addresses(state: Shared) {
    let all = ["a@example.com", "b@example.com", "c@example.com"];
    subscribe_all(&state, &all).await;
    let planned: Vec<_> = all.iter().map(|a| delivery(a, &["x"])).collect();
    let run = state
        .plan_run("weekly", t(9), t(9), &planned)
        .await
        .unwrap();
    for d in state.deliveries(run).await.unwrap() {
        state.record(d.id, &sent(9)).await.unwrap();
    }
    let b = EmailAddress::parse("b@example.com").unwrap();
    let c = EmailAddress::parse("c@example.com").unwrap();
    let got = state
        .received("weekly", far_future(), 3, Some((&b, &c)))
        .await
        .unwrap();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), [b, c]);
}

pub(crate) async fn a_run_being_planned_is_not_finished(state: Shared) {
    subscribe_all(&state, &["a@example.com"]).await;
    let run = state.begin_run("weekly", t(9), t(9)).await.unwrap();
    assert_eq!(
        state.finish_run(run, t(9)).await.unwrap(),
        RunProgress::Open { remaining: 0 }
    );
    state
        .add_deliveries(run, &[delivery("a@example.com", &["x"])])
        .await
        .unwrap();
    state.end_planning(run, t(9)).await.unwrap();
    assert_eq!(
        state.finish_run(run, t(9)).await.unwrap(),
        RunProgress::Open { remaining: 1 }
    );
    assert_eq!(
        state.run("weekly", t(9)).await.unwrap().unwrap().finished,
        None
    );
}

pub(crate) async fn a_run_finishes_only_when_no_delivery_is_open(state: Shared) {
    for addr in ["a@example.com", "b@example.com", "c@example.com"] {
        state
            .upsert_subscriber(
                &new(addr, &["weekly"], &[]),
                &keyed(&new(addr, &["weekly"], &[])),
                Resubscribe::Never,
            )
            .await
            .unwrap();
    }
    let planned: Vec<_> = ["a@example.com", "b@example.com", "c@example.com"]
        .iter()
        .map(|a| delivery(a, &["x"]))
        .collect();
    let run = state
        .plan_run("weekly", t(9), t(9), &planned)
        .await
        .unwrap();
    let ids: Vec<i64> = state
        .deliveries(run)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        state.finish_run(run, t(9)).await.unwrap(),
        RunProgress::Open { remaining: 3 }
    );
    state.record(ids[0], &sent(9)).await.unwrap();
    state.record(ids[1], &rejected()).await.unwrap();
    state.record(ids[2], &deferred()).await.unwrap();
    assert_eq!(
        state.finish_run(run, t(9)).await.unwrap(),
        RunProgress::Open { remaining: 1 },
        "a deferred delivery keeps the run open"
    );
    assert_eq!(
        state.run("weekly", t(9)).await.unwrap().unwrap().finished,
        None
    );
    state.record(ids[2], &cancelled()).await.unwrap();
    assert_eq!(
        state.finish_run(run, t(10)).await.unwrap(),
        RunProgress::Finished
    );
    assert_eq!(
        state.finish_run(run, t(11)).await.unwrap(),
        RunProgress::Finished
    );
    assert_eq!(
        state.run("weekly", t(9)).await.unwrap().unwrap().finished,
        Some(t(10)),
        "finished once, at the first close"
    );
}

pub(crate) async fn unsubscribing_keeps_the_address_and_says_when_it_had_left(state: Shared) {
    let a = email("a@example.com");
    let ada = new("a@example.com", &["weekly"], &[]);
    state
        .upsert_subscriber(&ada, &keyed(&ada), Resubscribe::Never)
        .await
        .unwrap();
    assert_eq!(
        state.unsubscribe(&a, t(2)).await.unwrap(),
        RemoveOutcome::Unsubscribed
    );
    assert_eq!(
        state.unsubscribe(&a, t(3)).await.unwrap(),
        RemoveOutcome::AlreadyLeft
    );
    assert_eq!(
        state
            .unsubscribe(&email("x@example.com"), t(3))
            .await
            .unwrap(),
        RemoveOutcome::NotFound
    );
    let kept = state.subscriber(&a).await.unwrap().expect("remembered");
    assert_eq!(kept.status, SubscriberStatus::Unsubscribed);
}

pub(crate) async fn a_forgotten_address_is_never_added_again_unless_resubscribed(state: Shared) {
    let ada = new("a@example.com", &["weekly"], &[]);
    let key = keyed(&ada);
    state
        .upsert_subscriber(&ada, &key, Resubscribe::Never)
        .await
        .unwrap();
    state.forget(&ada.email, &key, t(2)).await.unwrap();
    assert!(
        state.subscriber(&ada.email).await.unwrap().is_none(),
        "no personal data left"
    );
    assert_eq!(
        state
            .upsert_subscriber(&ada, &key, Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::Suppressed
    );
    assert!(state.subscriber(&ada.email).await.unwrap().is_none());
    assert_eq!(
        state
            .upsert_subscriber(&ada, &key, Resubscribe::Yes)
            .await
            .unwrap(),
        UpsertOutcome::Resubscribed
    );
    state.unsubscribe(&ada.email, t(3)).await.unwrap();
    state.forget(&ada.email, &key, t(4)).await.unwrap();
    assert_eq!(
        state
            .upsert_subscriber(&ada, &key, Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::Suppressed,
        "forgotten again after coming back"
    );
}

pub(crate) async fn resubscribing_brings_back_a_left_address_with_a_new_join_time(state: Shared) {
    let ada = new("a@example.com", &["weekly"], &[]);
    state
        .upsert_subscriber(&ada, &keyed(&ada), Resubscribe::Never)
        .await
        .unwrap();
    state
        .set_subscriber_status(&ada.email, SubscriberStatus::Bounced, t(5))
        .await
        .unwrap();
    let mut back = ada.clone();
    back.changed_at = t(20);
    assert_eq!(
        state
            .upsert_subscriber(&back, &keyed(&back), Resubscribe::Yes)
            .await
            .unwrap(),
        UpsertOutcome::Resubscribed
    );
    let stored = state.subscriber(&ada.email).await.unwrap().unwrap();
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert_eq!(
        stored.joined_at("weekly"),
        t(20),
        "what they missed while away is not sent"
    );
}

pub(crate) async fn an_import_is_one_batch_with_an_outcome_per_row(state: Shared) {
    let left = new("left@example.com", &["weekly"], &[]);
    state
        .upsert_subscriber(&left, &keyed(&left), Resubscribe::Never)
        .await
        .unwrap();
    state.unsubscribe(&left.email, t(2)).await.unwrap();
    let rows: Vec<(NewSubscriber, SuppressionKey)> = (0..500)
        .map(|i| new(&format!("s{i:03}@example.com"), &["weekly"], &[]))
        .chain([
            left.clone(),
            new("s000@example.com", &["weekly"], &["Tools"]),
        ])
        .map(|n| {
            let key = keyed(&n);
            (n, key)
        })
        .collect();
    let outcomes = state
        .upsert_subscribers(&rows, Resubscribe::Never)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 502);
    assert!(outcomes[..500].iter().all(|o| *o == UpsertOutcome::Added));
    assert_eq!(outcomes[500], UpsertOutcome::KeptUnsubscribed);
    assert_eq!(
        outcomes[501],
        UpsertOutcome::Updated,
        "a row repeated later in the batch updates"
    );
    assert_eq!(state.subscribers(Some("weekly")).await.unwrap().len(), 501);
}

/// A run of `n` deliveries to `s0@…`, `s1@…` …; returns the run id.
async fn run_of(state: &Shared, n: usize) -> i64 {
    let mut planned = Vec::new();
    for i in 0..n {
        let s = new(&format!("s{i}@example.com"), &["weekly"], &[]);
        state
            .upsert_subscriber(&s, &keyed(&s), Resubscribe::Never)
            .await
            .unwrap();
        planned.push(delivery(&format!("s{i}@example.com"), &["x"]));
    }
    state
        .plan_run("weekly", t(9), t(9), &planned)
        .await
        .unwrap()
}

fn ids(claimed: &[super::Claimed]) -> Vec<i64> {
    claimed.iter().map(|c| c.delivery.id).collect()
}

pub(crate) async fn a_claim_is_exclusive_to_its_owner(state: Shared) {
    let run = run_of(&state, 5).await;
    let lease = t(9) + chrono::Duration::minutes(10);
    let a = state.claim(run, "a", 3, t(9), lease).await.unwrap();
    let b = state.claim(run, "b", 3, t(9), lease).await.unwrap();
    assert_eq!((a.len(), b.len()), (3, 2));
    assert!(
        ids(&a).iter().all(|id| !ids(&b).contains(id)),
        "no delivery claimed twice"
    );
    assert!(ids(&a).windows(2).all(|w| w[0] < w[1]), "in id order");
    assert!(
        state
            .claim(run, "c", 3, t(9), lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        state
            .claim(run, "a", 3, t(9), lease)
            .await
            .unwrap()
            .is_empty(),
        "an owner does not take its own claims twice"
    );
}

pub(crate) async fn an_expired_lease_is_claimed_by_the_next_sender(state: Shared) {
    let run = run_of(&state, 2).await;
    let short = t(9) + chrono::Duration::minutes(1);
    let dead = state.claim(run, "dead", 2, t(9), short).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        state
            .claim(run, "next", 2, short, t(10))
            .await
            .unwrap()
            .is_empty(),
        "not before it expires"
    );
    let later = short + chrono::Duration::seconds(1);
    let taken = state.claim(run, "next", 2, later, t(10)).await.unwrap();
    assert_eq!(ids(&taken), ids(&dead));
}

pub(crate) async fn released_claims_are_claimed_again(state: Shared) {
    let run = run_of(&state, 3).await;
    let lease = t(10);
    let first = state.claim(run, "a", 3, t(9), lease).await.unwrap();
    assert_eq!(state.release_claims("a").await.unwrap(), 3);
    assert_eq!(state.release_claims("a").await.unwrap(), 0);
    let again = state.claim(run, "b", 3, t(9), lease).await.unwrap();
    assert_eq!(ids(&again), ids(&first));
}

pub(crate) async fn claimants_are_the_owners_of_live_claims(state: Shared) {
    let run = run_of(&state, 3).await;
    state
        .claim(run, "old", 1, t(9), t(9) + chrono::Duration::minutes(1))
        .await
        .unwrap();
    state.claim(run, "live", 1, t(9), t(20)).await.unwrap();
    let later = t(9) + chrono::Duration::minutes(5);
    assert_eq!(state.claimants(run, later).await.unwrap(), ["live"]);
    assert_eq!(state.claimants(run, t(9)).await.unwrap(), ["live", "old"]);
}

pub(crate) async fn senders_with_unsent_hold_live_claims_on_pending_deliveries(state: Shared) {
    let run = run_of(&state, 3).await;
    let gave_up = state.claim(run, "gave-up", 1, t(9), t(20)).await.unwrap();
    state
        .record(gave_up[0].delivery.id, &deferred())
        .await
        .unwrap();
    state.claim(run, "sending", 1, t(9), t(20)).await.unwrap();
    state
        .claim(run, "expired", 1, t(9), t(9) + chrono::Duration::minutes(1))
        .await
        .unwrap();
    let later = t(9) + chrono::Duration::minutes(5);
    assert_eq!(
        state.senders_with_unsent(run, later).await.unwrap(),
        ["sending"]
    );
    assert_eq!(
        state.claimants(run, later).await.unwrap(),
        ["gave-up", "sending"]
    );
}

pub(crate) async fn final_deliveries_are_never_claimed(state: Shared) {
    let run = run_of(&state, 4).await;
    let all = state.deliveries(run).await.unwrap();
    state.record(all[0].id, &sent(9)).await.unwrap();
    state.record(all[1].id, &rejected()).await.unwrap();
    state.record(all[2].id, &cancelled()).await.unwrap();
    state.record(all[3].id, &deferred()).await.unwrap();
    let claimed = state.claim(run, "a", 10, t(9), t(10)).await.unwrap();
    assert_eq!(ids(&claimed), [all[3].id], "only the deferred one is open");
}

pub(crate) async fn a_claim_carries_the_subscriber_as_they_are_now(state: Shared) {
    let run = run_of(&state, 1).await;
    state
        .set_subscriber_status(
            &email("s0@example.com"),
            SubscriberStatus::Unsubscribed,
            t(9),
        )
        .await
        .unwrap();
    let claimed = state.claim(run, "a", 1, t(9), t(10)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].subscriber.status, SubscriberStatus::Unsubscribed);
    assert_eq!(claimed[0].delivery.email.as_str(), "s0@example.com");
    assert_eq!(claimed[0].delivery.window_after, t(1));
}

pub(crate) async fn failures_in_a_row_count_since_the_last_sent_message(state: Shared) {
    let a = email("a@example.com");
    let ada = new("a@example.com", &["weekly"], &[]);
    state
        .upsert_subscriber(&ada, &keyed(&ada), Resubscribe::Never)
        .await
        .unwrap();
    let events = [rejected(), sent(10), rejected(), rejected()];
    let mut counts = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let run = state
            .plan_run(
                "weekly",
                t(10 + i as u32),
                t(9),
                &[delivery("a@example.com", &["x"])],
            )
            .await
            .unwrap();
        let id = state.deliveries(run).await.unwrap()[0].id;
        state.record(id, event).await.unwrap();
        counts.push(state.failures_in_a_row(&a).await.unwrap());
    }
    assert_eq!(counts, [1, 0, 1, 2]);
}

pub(crate) async fn runs_are_listed_newest_first_with_their_counts(state: Shared) {
    let run = run_of(&state, 3).await;
    let all = state.deliveries(run).await.unwrap();
    state.record(all[0].id, &sent(9)).await.unwrap();
    state.record(all[1].id, &deferred()).await.unwrap();
    state.plan_run("weekly", t(16), t(16), &[]).await.unwrap();
    state.plan_run("daily", t(20), t(20), &[]).await.unwrap();
    let runs = state.runs(Some("weekly")).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].run.tick, runs[0].counts.len()), (t(16), 0));
    assert_eq!(runs[1].run.tick, t(9));
    let counts: Vec<_> = runs[1].counts.iter().map(|(s, n)| (*s, *n)).collect();
    assert_eq!(
        counts,
        [
            (DeliveryStatus::Pending, 1),
            (DeliveryStatus::Deferred, 1),
            (DeliveryStatus::Sent, 1)
        ]
    );
    assert_eq!(state.runs(None).await.unwrap().len(), 3);
}

pub(crate) async fn first_sightings_are_recorded_once_and_never_move(state: Shared) {
    assert!(state.first_seen().await.unwrap().is_empty());
    state
        .record_first_seen(&[("a".into(), t(2)), ("b".into(), t(3))])
        .await
        .unwrap();
    state
        .record_first_seen(&[("a".into(), t(9)), ("c".into(), t(9))])
        .await
        .unwrap();
    let seen = state.first_seen().await.unwrap();
    let got: Vec<_> = seen.iter().map(|(s, t)| (s.as_str(), *t)).collect();
    assert_eq!(got, [("a", t(2)), ("b", t(3)), ("c", t(9))]);
}

/// A form sign-up at `day` (a pending subscriber, or the outcome for an existing one).
async fn sign_up(state: &Shared, addr: &str, digests: &[&str], day: u32) -> SignupOutcome {
    let mut n = new(addr, digests, &["Career"]);
    n.name = "Form".into();
    n.subscribed_at = t(day);
    n.changed_at = t(day);
    state.sign_up(&n, &keyed(&n)).await.unwrap()
}

fn awaiting(outcome: SignupOutcome) -> SubscriberHandle {
    match outcome {
        SignupOutcome::AwaitingConfirmation(handle) => handle,
        other => panic!("expected awaiting confirmation, got {other:?}"),
    }
}

/// A confirmed subscriber added by the owner; returns their handle.
async fn confirmed(state: &Shared, addr: &str, digests: &[&str]) -> SubscriberHandle {
    let n = new(addr, digests, &[]);
    state
        .upsert_subscriber(&n, &keyed(&n), Resubscribe::Never)
        .await
        .unwrap();
    state
        .subscriber(&email(addr))
        .await
        .unwrap()
        .unwrap()
        .handle
}

pub(crate) async fn a_sign_up_is_stored_pending_under_a_new_handle(state: Shared) {
    let handle = awaiting(sign_up(&state, "ada@example.com", &["weekly"], 2).await);
    let stored = state
        .subscriber(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, SubscriberStatus::Pending);
    assert_eq!(stored.handle, handle);
    assert_eq!((stored.name.as_str(), stored.confirmed), ("Form", None));
    assert_eq!(stored.categories, ["Career"]);
    assert_eq!(stored.joined_at("weekly"), t(2));
    assert!(!stored.wants("weekly"), "pending gets nothing");
    // Signing up again while pending replaces the choices and keeps the handle (its links stay valid).
    let again = awaiting(sign_up(&state, "ada@example.com", &["daily"], 3).await);
    assert_eq!(again, handle);
    let stored = state
        .subscriber(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.digests.clone()),
        (SubscriberStatus::Pending, vec!["daily".to_string()])
    );
}

pub(crate) async fn a_sign_up_never_changes_a_confirmed_subscriber(state: Shared) {
    let handle = confirmed(&state, "ada@example.com", &["weekly"]).await;
    let before = state.subscriber(&email("ada@example.com")).await.unwrap();
    assert_eq!(
        sign_up(&state, "ada@example.com", &["daily"], 5).await,
        SignupOutcome::AlreadyConfirmed(handle)
    );
    assert_eq!(
        state.subscriber(&email("ada@example.com")).await.unwrap(),
        before
    );
}

pub(crate) async fn a_sign_up_of_a_forgotten_address_stores_nothing(state: Shared) {
    let n = new("ada@example.com", &["weekly"], &[]);
    state.forget(&n.email, &keyed(&n), t(1)).await.unwrap();
    assert_eq!(
        sign_up(&state, "ada@example.com", &["weekly"], 2).await,
        SignupOutcome::Suppressed
    );
    assert!(state.subscribers(None).await.unwrap().is_empty());
}

pub(crate) async fn a_sign_up_of_an_address_that_left_keeps_it_left_until_it_confirms(
    state: Shared,
) {
    let handle = confirmed(&state, "ada@example.com", &["weekly"]).await;
    state
        .unsubscribe(&email("ada@example.com"), t(2))
        .await
        .unwrap();
    assert_eq!(
        awaiting(sign_up(&state, "ada@example.com", &["weekly"], 5).await),
        handle
    );
    let stored = state
        .subscriber(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.status,
        SubscriberStatus::Unsubscribed,
        "not mailed yet"
    );
    // An import without new consent still keeps them out.
    let n = new("ada@example.com", &["weekly"], &[]);
    assert_eq!(
        state
            .upsert_subscriber(&n, &keyed(&n), Resubscribe::Never)
            .await
            .unwrap(),
        UpsertOutcome::KeptUnsubscribed
    );
    assert_eq!(
        state.confirm(&handle, t(6)).await.unwrap(),
        ConfirmOutcome::Confirmed
    );
    let stored = state
        .subscriber(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert_eq!(
        stored.joined_at("weekly"),
        t(5),
        "a returning subscriber starts at their sign-up, not with the archive"
    );
}

pub(crate) async fn confirming_by_handle_confirms_once(state: Shared) {
    let handle = awaiting(sign_up(&state, "ada@example.com", &["weekly"], 2).await);
    assert_eq!(
        state.confirm(&handle, t(3)).await.unwrap(),
        ConfirmOutcome::Confirmed
    );
    assert_eq!(
        state.confirm(&handle, t(4)).await.unwrap(),
        ConfirmOutcome::AlreadyConfirmed
    );
    let stored = state
        .subscriber(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.confirmed),
        (SubscriberStatus::Confirmed, Some(t(3)))
    );
    assert!(stored.wants("weekly"));
    let nobody = SubscriberHandle::from_bytes([9; 16]);
    assert_eq!(
        state.confirm(&nobody, t(4)).await.unwrap(),
        ConfirmOutcome::NotFound
    );
}

pub(crate) async fn a_handle_names_one_subscriber_and_no_other(state: Shared) {
    let ada = confirmed(&state, "ada@example.com", &["weekly"]).await;
    let bob = awaiting(sign_up(&state, "bob@example.com", &["weekly"], 2).await);
    assert_ne!(ada, bob);
    let found = state.subscriber_by_handle(&ada).await.unwrap().unwrap();
    assert_eq!(found.email, email("ada@example.com"));
    let found = state.subscriber_by_handle(&bob).await.unwrap().unwrap();
    assert_eq!(found.email, email("bob@example.com"));
    assert_eq!(
        state
            .subscriber_by_handle(&SubscriberHandle::from_bytes([9; 16]))
            .await
            .unwrap(),
        None
    );
    // Forgotten and back: a new handle, so links from before name nobody.
    let n = new("ada@example.com", &["weekly"], &[]);
    state.forget(&n.email, &keyed(&n), t(3)).await.unwrap();
    let back = confirmed_again(&state, &n).await;
    assert_ne!(back, ada);
    assert_eq!(state.subscriber_by_handle(&ada).await.unwrap(), None);
}

async fn confirmed_again(state: &Shared, n: &NewSubscriber) -> SubscriberHandle {
    state
        .upsert_subscriber(n, &keyed(n), Resubscribe::Yes)
        .await
        .unwrap();
    state.subscriber(&n.email).await.unwrap().unwrap().handle
}

pub(crate) async fn leaving_a_digest_keeps_the_others_and_leaving_the_last_unsubscribes(
    state: Shared,
) {
    let ada = confirmed(&state, "ada@example.com", &["daily", "weekly"]).await;
    assert_eq!(
        state.leave(&ada, Some("weekly"), t(2)).await.unwrap(),
        LeaveOutcome::LeftDigest
    );
    let stored = state.subscriber_by_handle(&ada).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.digests.clone()),
        (SubscriberStatus::Confirmed, vec!["daily".to_string()])
    );
    assert!(!stored.joined.contains_key("weekly"));
    assert_eq!(
        state.leave(&ada, Some("weekly"), t(2)).await.unwrap(),
        LeaveOutcome::AlreadyLeft,
        "a second click on an old weekly link"
    );
    assert_eq!(
        state.leave(&ada, Some("daily"), t(3)).await.unwrap(),
        LeaveOutcome::Unsubscribed
    );
    let stored = state.subscriber_by_handle(&ada).await.unwrap().unwrap();
    assert_eq!(stored.status, SubscriberStatus::Unsubscribed);
    assert_eq!(
        state.leave(&ada, None, t(4)).await.unwrap(),
        LeaveOutcome::AlreadyLeft
    );
    // Leaving the whole list at once, a pending sign-up included ("this was not me").
    let bob = awaiting(sign_up(&state, "bob@example.com", &["daily", "weekly"], 2).await);
    assert_eq!(
        state.leave(&bob, None, t(3)).await.unwrap(),
        LeaveOutcome::Unsubscribed
    );
    let stored = state.subscriber_by_handle(&bob).await.unwrap().unwrap();
    assert_eq!(stored.status, SubscriberStatus::Unsubscribed);
    assert_eq!(
        state
            .leave(&SubscriberHandle::from_bytes([9; 16]), None, t(3))
            .await
            .unwrap(),
        LeaveOutcome::NotFound
    );
}

pub(crate) async fn preferences_replace_choices_and_keep_each_kept_digests_join_time(
    state: Shared,
) {
    let ada = confirmed(&state, "ada@example.com", &["weekly"]).await;
    let digests = vec!["daily".to_string(), "weekly".to_string()];
    assert_eq!(
        state
            .set_preferences(&ada, &digests, &["Career".to_string()], t(5))
            .await
            .unwrap(),
        PreferencesOutcome::Saved
    );
    let stored = state.subscriber_by_handle(&ada).await.unwrap().unwrap();
    assert_eq!(stored.digests, digests);
    assert_eq!(stored.categories, ["Career"]);
    assert_eq!(stored.joined_at("weekly"), t(1), "kept");
    assert_eq!(stored.joined_at("daily"), t(5), "new: joined now");
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
}

pub(crate) async fn preferences_of_someone_who_left_change_nothing(state: Shared) {
    let ada = confirmed(&state, "ada@example.com", &["weekly"]).await;
    state
        .unsubscribe(&email("ada@example.com"), t(2))
        .await
        .unwrap();
    let before = state.subscriber_by_handle(&ada).await.unwrap();
    assert_eq!(
        state
            .set_preferences(&ada, &["daily".to_string()], &[], t(3))
            .await
            .unwrap(),
        PreferencesOutcome::HasLeft
    );
    assert_eq!(state.subscriber_by_handle(&ada).await.unwrap(), before);
    assert_eq!(
        state
            .set_preferences(&SubscriberHandle::from_bytes([9; 16]), &[], &[], t(3))
            .await
            .unwrap(),
        PreferencesOutcome::NotFound
    );
}

pub(crate) async fn a_reachable_state_answers_a_ping(state: Shared) {
    state.ping().await.unwrap();
}

pub(crate) async fn a_lease_is_held_by_one_owner_until_it_ends_or_is_released(state: Shared) {
    let (now, until) = (t(9), t(9) + chrono::Duration::minutes(1));
    assert!(state.hold_lease("build", "a", now, until).await.unwrap());
    assert!(
        !state.hold_lease("build", "b", now, until).await.unwrap(),
        "a holds it"
    );
    assert!(
        state.hold_lease("other", "b", now, until).await.unwrap(),
        "leases are by name"
    );
    let later = until + chrono::Duration::seconds(1);
    assert!(
        state.hold_lease("build", "a", now, later).await.unwrap(),
        "a renews it"
    );
    assert!(!state.hold_lease("build", "b", until, later).await.unwrap());
    let after = later + chrono::Duration::seconds(1);
    assert!(
        state
            .hold_lease("build", "b", after, after + chrono::Duration::minutes(1))
            .await
            .unwrap(),
        "ended: b takes it"
    );
    state.release_lease("build", "a").await.unwrap();
    assert!(
        !state.hold_lease("build", "a", after, after).await.unwrap(),
        "a no longer holds it to give up"
    );
    state.release_lease("build", "b").await.unwrap();
    assert!(
        state.hold_lease("build", "a", after, after).await.unwrap(),
        "released: free at once"
    );
}

pub(crate) async fn a_windows_send_budget_is_shared_and_never_exceeded(state: Shared) {
    assert_eq!(state.take_send_budget(100, 4, 10).await.unwrap(), 4);
    assert_eq!(state.take_send_budget(100, 4, 10).await.unwrap(), 4);
    assert_eq!(
        state.take_send_budget(100, 4, 10).await.unwrap(),
        2,
        "only what is left"
    );
    assert_eq!(
        state.take_send_budget(100, 4, 10).await.unwrap(),
        0,
        "spent"
    );
    assert_eq!(
        state.take_send_budget(101, 4, 10).await.unwrap(),
        4,
        "the next window is new"
    );
}

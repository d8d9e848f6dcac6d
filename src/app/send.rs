//! `digest send`: plans (or resumes) the run of one digest tick and hands its messages to the transport, moving
//! each delivery through the ledger as `state` documents: written before anything leaves, marked once the
//! transport answers, final states never sent again.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, Utc};

use super::composer::{DigestComposer, link_tokens};
use super::{NewsletterError, digest_config, open_state, related_source, views};
use crate::config::{Config, MailTransport};
use crate::digest::{self, DigestPlan, PlanOutcome, RelatedPick, Skip, SubscriberView};
use crate::domain::{DeliveryEvent, EmailAddress, Transition};
use crate::mail::{DeliveryOutcome, FileOutbox, Transport};
use crate::state::{Delivery, NewDelivery, RecordedPick, RunProgress, StateLocation};
use crate::store::{self, Catalog};

/// An exclusive lock on `<database>.lock`, held while a digest is sent (released when dropped, or when the
/// process dies), so an overlapping cron job waits instead of sending the same pending deliveries again.
struct SendLock {
    _file: Option<std::fs::File>,
}

impl SendLock {
    fn acquire(location: &StateLocation) -> Result<SendLock, NewsletterError> {
        let StateLocation::Sqlite(database) = location else {
            return Ok(SendLock { _file: None });
        };
        let mut path = database.clone().into_os_string();
        path.push(".lock");
        let path = PathBuf::from(path);
        let fail = |source| NewsletterError::Lock {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(SendLock { _file: Some(file) })
    }
}

/// How a `digest send` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The tick was planned now and its messages handed to the transport.
    Planned,
    /// The tick had a run with messages still to send; those were sent.
    Resumed,
    /// The tick's run is complete: nothing was sent again.
    AlreadySent,
    /// A newer tick already has a run: an older tick is never sent after it (its articles went out then).
    Superseded,
}

/// What `digest send` did.
#[derive(Debug)]
pub struct SendReport {
    pub digest: String,
    pub tick: DateTime<FixedOffset>,
    pub outcome: SendOutcome,
    /// Where each accepted message went (outbox files, server replies).
    pub sent: Vec<String>,
    /// Messages refused for now, with the reply: retried on the next send of this tick.
    pub deferred: Vec<(EmailAddress, String)>,
    /// Messages refused for good, with the reply: recorded and never retried.
    pub failed: Vec<(EmailAddress, String)>,
    /// Planned messages not sent because their subscriber left or their articles went.
    pub cancelled: usize,
    /// Confirmed subscribers with nothing new (no mail, never an empty digest).
    pub nothing_new: usize,
    /// Subscribers of the digest who are pending, unsubscribed or bounced.
    pub not_confirmed: usize,
    /// Whether the run is closed (every delivery final) or stays open to be resumed.
    pub progress: RunProgress,
}

impl SendReport {
    fn new(digest: &str, tick: DateTime<FixedOffset>, outcome: SendOutcome) -> SendReport {
        SendReport {
            digest: digest.into(),
            tick,
            outcome,
            sent: Vec::new(),
            deferred: Vec::new(),
            failed: Vec::new(),
            cancelled: 0,
            nothing_new: 0,
            not_confirmed: 0,
            progress: RunProgress::Finished,
        }
    }
}

/// The transport `[mail] transport` names.
pub(super) fn transport(config: &Config) -> Box<dyn Transport> {
    match config.mail.transport {
        MailTransport::File => Box::new(FileOutbox::new(&config.mail.outbox)),
    }
}

/// `digest send NAME`: plans (or resumes) the run for the latest tick of NAME's schedule at or before `now` and
/// hands its messages to the configured transport. Runs are unique per tick, so sending a tick again sends
/// nothing; deliveries are recorded before anything is sent and marked once the transport answers.
pub async fn digest_send(
    config: &Config,
    name: &str,
    now: DateTime<FixedOffset>,
    env_secret: Option<&str>,
) -> Result<SendReport, NewsletterError> {
    let (catalog, errors) = store::load(config);
    for e in &errors {
        tracing::warn!("{e}");
    }
    let mut transport = transport(config);
    digest_send_with(config, &catalog, name, now, env_secret, transport.as_mut()).await
}

/// [`digest_send`] from a loaded store, with a given transport (tests pass one that fails).
pub async fn digest_send_with(
    config: &Config,
    catalog: &Catalog,
    name: &str,
    now: DateTime<FixedOffset>,
    env_secret: Option<&str>,
    transport: &mut dyn Transport,
) -> Result<SendReport, NewsletterError> {
    let digest = digest_config(config, name)?;
    let tick = digest
        .schedule
        .latest_at_or_before(now, config.timezone())
        .ok_or_else(|| NewsletterError::NoTick {
            digest: name.into(),
            schedule: digest.schedule.as_str().into(),
            when: "at or before",
            now,
        })?;
    let tick_utc = tick.with_timezone(&Utc);
    let now_utc = now.with_timezone(&Utc);
    let state = open_state(config)?;
    let _lock = SendLock::acquire(&config.state.database)?;
    let existing = state.run(name, tick_utc).await?;
    if existing.as_ref().is_some_and(|r| r.finished.is_some()) {
        return Ok(SendReport::new(name, tick, SendOutcome::AlreadySent));
    }
    if existing.is_none()
        && state
            .latest_tick(name)
            .await?
            .is_some_and(|latest| latest > tick_utc)
    {
        return Ok(SendReport::new(name, tick, SendOutcome::Superseded));
    }
    let tokens = link_tokens(state.as_ref(), env_secret).await?;
    let composer = DigestComposer::new(config, digest, tokens)?;
    let subscribers = state.subscribers(Some(name)).await?;
    let views = views(state.as_ref(), name, subscribers, tick_utc).await?;

    let mut report = SendReport::new(name, tick, SendOutcome::Resumed);
    let mut rendered = HashMap::new();
    let run = match existing {
        Some(run) => run.id,
        None => {
            report.outcome = SendOutcome::Planned;
            let related = related_source(config, catalog, tick);
            let outcomes = digest::plan(digest, catalog, &views, tick, &related);
            let mut planned = Vec::new();
            for outcome in &outcomes {
                match outcome {
                    PlanOutcome::Send(plan) => {
                        // Rendered before anything is recorded: a template error must not leave a half run.
                        // The parts are kept for the send below, so nothing is rendered twice.
                        rendered.insert(plan.subscriber.email.clone(), composer.render(plan)?);
                        planned.push(NewDelivery {
                            email: plan.subscriber.email.clone(),
                            message_id: composer.message_id(tick, &plan.subscriber.email),
                            articles: plan.articles.iter().map(|a| a.slug.clone()).collect(),
                            related: plan
                                .related
                                .iter()
                                .map(|r| RecordedPick {
                                    slug: r.article.slug.clone(),
                                    because: r.because.slug.clone(),
                                })
                                .collect(),
                            over_limit: plan.over_limit,
                        });
                    }
                    PlanOutcome::Skip {
                        reason: Skip::NothingNew,
                        ..
                    } => report.nothing_new += 1,
                    PlanOutcome::Skip {
                        reason: Skip::NotConfirmed(_),
                        ..
                    } => report.not_confirmed += 1,
                }
            }
            state.plan_run(name, tick_utc, now_utc, &planned).await?
        }
    };

    let views_by_email: HashMap<&EmailAddress, &SubscriberView> =
        views.iter().map(|v| (&v.subscriber.email, v)).collect();
    for delivery in state.deliveries(run).await? {
        // Only pending and deferred deliveries are ever sent: sent, failed and cancelled are final.
        if delivery.status.is_final() {
            continue;
        }
        // A resumed delivery goes out only to someone who still wants it: an unsubscribe between planning
        // and sending takes effect.
        let Some(view) = views_by_email
            .get(&delivery.email)
            .filter(|v| v.subscriber.wants(name))
        else {
            cancel(
                state.as_ref(),
                &delivery,
                "no longer a confirmed subscriber of this digest",
            )
            .await?;
            report.cancelled += 1;
            continue;
        };
        let plan = replan(catalog, view, tick, &delivery);
        if plan.articles.is_empty() {
            cancel(
                state.as_ref(),
                &delivery,
                "none of the planned articles is in the store any more",
            )
            .await?;
            report.cancelled += 1;
            continue;
        }
        let parts = match rendered.remove(&delivery.email) {
            Some(parts) => parts,
            None => composer.render(&plan)?,
        };
        let message = composer.compose(&plan, &parts, &delivery.message_id, now)?;
        let (event, outcome) = match transport.send(&message, &delivery.message_id) {
            DeliveryOutcome::Sent { location } => {
                report.sent.push(location);
                (DeliveryEvent::Sent { at: now_utc }, "sent")
            }
            DeliveryOutcome::RetryLater(reply) => {
                report
                    .deferred
                    .push((delivery.email.clone(), reply.clone()));
                (DeliveryEvent::Deferred { reply }, "deferred")
            }
            DeliveryOutcome::Rejected(reply) => {
                report.failed.push((delivery.email.clone(), reply.clone()));
                (DeliveryEvent::Rejected { reply }, "failed")
            }
        };
        if let Transition::Refused(current) = state.record(delivery.id, &event).await? {
            tracing::warn!(
                email = %delivery.email,
                "delivery was already {current} when it was {outcome}; left {current}"
            );
        }
    }
    report.progress = state.finish_run(run, now_utc).await?;
    Ok(report)
}

async fn cancel(
    state: &dyn crate::state::State,
    delivery: &Delivery,
    reason: &str,
) -> Result<(), NewsletterError> {
    state
        .record(
            delivery.id,
            &DeliveryEvent::Cancelled {
                reason: reason.into(),
            },
        )
        .await?;
    Ok(())
}

/// The plan a delivery recorded, rebuilt from the store, so a resumed message says what the first attempt
/// said: the same articles, each related pick with the article it was for, and the over-limit line.
fn replan<'a>(
    catalog: &'a Catalog,
    view: &SubscriberView,
    tick: DateTime<FixedOffset>,
    delivery: &Delivery,
) -> DigestPlan<'a> {
    let articles: Vec<_> = delivery
        .articles
        .iter()
        .filter_map(|s| catalog.by_slug(s))
        .collect();
    let related = delivery
        .related
        .iter()
        .filter_map(|pick| {
            let article = catalog.by_slug(&pick.slug)?;
            // A pick whose article left the digest (or a version 1 row, which kept none) goes with the first.
            let because = articles
                .iter()
                .find(|a| a.slug == pick.because)
                .or(articles.first())?;
            Some(RelatedPick { article, because })
        })
        .collect();
    DigestPlan {
        subscriber: view.subscriber.clone(),
        window: digest::window(view, tick),
        articles,
        over_limit: delivery.over_limit,
        related,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use lettre::Message;

    use super::*;
    use crate::domain::{DeliveryStatus, NewSubscriber, SubscriberStatus};

    /// A transport that refuses mail to one address (for now, or for good) and records what it accepted.
    struct Flaky {
        refuse: Option<String>,
        accepted: Vec<String>,
        /// The text part of each accepted message.
        texts: Vec<String>,
    }

    const PERMANENTLY: &str = "550 5.1.1 no such user";

    impl Flaky {
        fn healthy() -> Flaky {
            Flaky {
                refuse: None,
                accepted: Vec::new(),
                texts: Vec::new(),
            }
        }

        fn refusing(email: &str) -> Flaky {
            Flaky {
                refuse: Some(email.into()),
                accepted: Vec::new(),
                texts: Vec::new(),
            }
        }
    }

    impl Transport for Flaky {
        fn send(&mut self, message: &Message, message_id: &str) -> DeliveryOutcome {
            let to = message.envelope().to()[0].to_string();
            if let Some(refused) = &self.refuse
                && refused.trim_start_matches("forever:") == to
            {
                return if refused.starts_with("forever:") {
                    DeliveryOutcome::Rejected(PERMANENTLY.into())
                } else {
                    DeliveryOutcome::RetryLater("451 try again later".into())
                };
            }
            self.accepted.push(to);
            let raw = message.formatted();
            let parsed = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("a message tidings built parses");
            self.texts
                .push(parsed.body_text(0).unwrap_or_default().into_owned());
            DeliveryOutcome::Sent {
                location: message_id.into(),
            }
        }
    }

    async fn world() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let articles = dir.path().join("articles");
        std::fs::create_dir_all(&articles).unwrap();
        std::fs::write(
            articles.join("fresh.md"),
            "---\ntitle: Fresh\ndate: 2026-11-26T09:00:00+01:00\ncategory: Tools\n---\nBody.\n",
        )
        .unwrap();
        let text = "[site]\ntitle = \"T\"\nbase_url = \"https://example.com/\"\narticles = \"articles\"\n\
                    [newsletter]\nfrom = \"news@example.com\"\npostal_address = \"1 Street\"\n\
                    [[digest]]\nname = \"weekly\"\nschedule = \"0 8 * * MON\"\n\
                    [state]\ndatabase = \"state.db\"\n";
        let config = Config::parse(Path::new("config.toml"), text, Vec::new(), dir.path()).unwrap();
        let state = open_state(&config).unwrap();
        for email in ["ada@example.com", "bob@example.com"] {
            state
                .upsert_subscriber(&NewSubscriber {
                    email: EmailAddress::parse(email).unwrap(),
                    name: String::new(),
                    digests: vec!["weekly".into()],
                    categories: Vec::new(),
                    subscribed_at: DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                        .unwrap()
                        .to_utc(),
                    changed_at: DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                        .unwrap()
                        .to_utc(),
                })
                .await
                .unwrap();
        }
        (dir, config)
    }

    #[tokio::test]
    async fn a_deferred_delivery_is_retried_on_the_next_send_of_the_tick_and_sent_ones_are_not() {
        let (_dir, config) = world().await;
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let mut flaky = Flaky::refusing("bob@example.com");
        let first = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut flaky,
        )
        .await
        .unwrap();
        assert_eq!(first.outcome, SendOutcome::Planned);
        assert_eq!(flaky.accepted, ["ada@example.com"]);
        assert_eq!(first.deferred.len(), 1);
        assert_eq!(first.deferred[0].1, "451 try again later");
        assert_eq!(first.progress, RunProgress::Open { remaining: 1 });

        let mut healthy = Flaky::healthy();
        let second = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut healthy,
        )
        .await
        .unwrap();
        assert_eq!(second.outcome, SendOutcome::Resumed);
        assert_eq!(
            healthy.accepted,
            ["bob@example.com"],
            "only the failed one is sent again"
        );

        let third = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut healthy,
        )
        .await
        .unwrap();
        assert_eq!(third.outcome, SendOutcome::AlreadySent);
        assert_eq!(healthy.accepted.len(), 1);

        let state = open_state(&config).unwrap();
        let run = state
            .run("weekly", second.tick.to_utc())
            .await
            .unwrap()
            .unwrap();
        let deliveries = state.deliveries(run.id).await.unwrap();
        let bob = deliveries
            .iter()
            .find(|d| d.email.as_str() == "bob@example.com")
            .unwrap();
        assert_eq!((bob.status, bob.attempts), (DeliveryStatus::Sent, 2));
    }

    #[tokio::test]
    async fn a_subscriber_who_leaves_before_a_resumed_send_gets_nothing() {
        let (_dir, config) = world().await;
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let mut flaky = Flaky::refusing("bob@example.com");
        digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut flaky,
        )
        .await
        .unwrap();
        let state = open_state(&config).unwrap();
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        let left = now.to_utc();
        state
            .set_subscriber_status(&bob, SubscriberStatus::Unsubscribed, left)
            .await
            .unwrap();

        let mut healthy = Flaky::healthy();
        let resumed = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut healthy,
        )
        .await
        .unwrap();
        assert_eq!(resumed.outcome, SendOutcome::Resumed);
        assert!(
            healthy.accepted.is_empty(),
            "bob unsubscribed: {:?}",
            healthy.accepted
        );
        let run = state
            .run("weekly", resumed.tick.to_utc())
            .await
            .unwrap()
            .unwrap();
        assert!(
            run.finished.is_some(),
            "a cancelled delivery does not keep the run open"
        );
        let bob = state
            .deliveries(run.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.email.as_str() == "bob@example.com")
            .unwrap();
        assert_eq!(bob.status, DeliveryStatus::Cancelled);
    }

    #[tokio::test]
    async fn an_older_tick_is_never_sent_after_a_newer_one() {
        let (_dir, config) = world().await;
        let mut t = Flaky::healthy();
        let later = DateTime::parse_from_rfc3339("2026-12-07T09:00:00+01:00").unwrap();
        let sent = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            later,
            Some("s"),
            &mut t,
        )
        .await
        .unwrap();
        assert_eq!((sent.outcome, t.accepted.len()), (SendOutcome::Planned, 2));
        let earlier = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let old = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            earlier,
            Some("s"),
            &mut t,
        )
        .await
        .unwrap();
        assert_eq!(old.outcome, SendOutcome::Superseded);
        assert_eq!(t.accepted.len(), 2, "nothing sent for the older tick");
        let state = open_state(&config).unwrap();
        assert!(
            state
                .run("weekly", old.tick.to_utc())
                .await
                .unwrap()
                .is_none(),
            "and nothing recorded"
        );
    }

    #[tokio::test]
    async fn a_template_error_leaves_no_run_behind() {
        let (dir, mut config) = world().await;
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/digest.txt.hbs"), "{{missing}}\n").unwrap();
        config.newsletter.templates = dir.path().join("templates");
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let mut t = Flaky::healthy();
        let err = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut t,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("digest.txt.hbs:1:"), "{err}");
        let tick = DateTime::parse_from_rfc3339("2026-11-30T08:00:00+01:00").unwrap();
        assert!(
            open_state(&config)
                .unwrap()
                .run("weekly", tick.to_utc())
                .await
                .unwrap()
                .is_none()
        );
        assert!(t.accepted.is_empty());
    }

    #[tokio::test]
    async fn a_permanent_rejection_is_recorded_failed_never_retried_and_closes_the_run() {
        let (_dir, config) = world().await;
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let catalog = store::load(&config).0;
        let mut refusing = Flaky::refusing("forever:bob@example.com");
        let first = digest_send_with(&config, &catalog, "weekly", now, Some("s"), &mut refusing)
            .await
            .unwrap();
        assert_eq!(refusing.accepted, ["ada@example.com"]);
        assert_eq!(first.failed.len(), 1);
        assert_eq!(first.failed[0].1, PERMANENTLY);
        assert!(first.deferred.is_empty());
        assert_eq!(
            first.progress,
            RunProgress::Finished,
            "a 550 does not keep the run open"
        );

        let mut healthy = Flaky::healthy();
        let again = digest_send_with(&config, &catalog, "weekly", now, Some("s"), &mut healthy)
            .await
            .unwrap();
        assert_eq!(again.outcome, SendOutcome::AlreadySent);
        assert!(
            healthy.accepted.is_empty(),
            "a rejected message is never sent again"
        );
        let state = open_state(&config).unwrap();
        let run = state
            .run("weekly", first.tick.to_utc())
            .await
            .unwrap()
            .unwrap();
        let deliveries = state.deliveries(run.id).await.unwrap();
        let bob = deliveries
            .iter()
            .find(|d| d.email.as_str() == "bob@example.com")
            .unwrap();
        assert_eq!(
            (bob.status, bob.attempts, bob.last_error.as_deref()),
            (DeliveryStatus::Failed, 1, Some(PERMANENTLY))
        );
    }

    #[tokio::test]
    async fn a_cancelled_delivery_is_not_sent_when_the_subscriber_confirms_again() {
        let (_dir, config) = world().await;
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let catalog = store::load(&config).0;
        let state = open_state(&config).unwrap();
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        let mut flaky = Flaky::refusing("bob@example.com");
        digest_send_with(&config, &catalog, "weekly", now, Some("s"), &mut flaky)
            .await
            .unwrap();
        state
            .set_subscriber_status(&bob, SubscriberStatus::Unsubscribed, now.to_utc())
            .await
            .unwrap();
        let mut healthy = Flaky::healthy();
        let resumed = digest_send_with(&config, &catalog, "weekly", now, Some("s"), &mut healthy)
            .await
            .unwrap();
        assert_eq!((resumed.cancelled, healthy.accepted.len()), (1, 0));
        state
            .set_subscriber_status(&bob, SubscriberStatus::Confirmed, now.to_utc())
            .await
            .unwrap();
        let after = digest_send_with(&config, &catalog, "weekly", now, Some("s"), &mut healthy)
            .await
            .unwrap();
        assert_eq!(after.outcome, SendOutcome::AlreadySent);
        assert!(healthy.accepted.is_empty(), "cancelled stays cancelled");
    }

    #[tokio::test]
    async fn a_resumed_message_says_what_the_first_attempt_said() {
        let (dir, mut config) = world().await;
        for (slug, date, title) in [
            ("second", "2026-11-27T09:00:00+01:00", "Second Rust tools"),
            ("old-tools", "2026-01-10T09:00:00+01:00", "Old Rust tools"),
        ] {
            std::fs::write(
                dir.path().join(format!("articles/{slug}.md")),
                format!(
                    "---\ntitle: {title}\ndate: {date}\ncategory: Tools\ntags: [rust, cargo, tooling]\n---\n\
                     Cargo tooling for Rust crates: build, test and lint tools.\n"
                ),
            )
            .unwrap();
        }
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&templates).unwrap();
        std::fs::write(
            templates.join("digest.txt.hbs"),
            "{{#each articles}}new: {{title}}\n{{/each}}left out: {{left_out}}\n\
             {{#each related}}related: {{title}} for {{because}}\n{{/each}}",
        )
        .unwrap();
        config.newsletter.templates = templates;
        config.digest[0].max_articles = 1;
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let catalog = store::load(&config).0;
        let mut flaky = Flaky::refusing("bob@example.com");
        digest_send_with(&config, &catalog, "weekly", now, Some("s"), &mut flaky)
            .await
            .unwrap();
        let mut healthy = Flaky::healthy();
        digest_send_with(&config, &catalog, "weekly", now, Some("s"), &mut healthy)
            .await
            .unwrap();
        assert_eq!((flaky.texts.len(), healthy.texts.len()), (1, 1));
        let first = &flaky.texts[0];
        assert!(first.contains("new: Second Rust tools"), "{first}");
        assert!(first.contains("left out: 1"), "{first}");
        assert!(
            first.contains("related: Old Rust tools for Second Rust tools"),
            "{first}"
        );
        assert_eq!(
            &healthy.texts[0], first,
            "bob's resumed message reads as ada's first"
        );
    }
}

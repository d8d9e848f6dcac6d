//! `digest send`: plans (or joins) the run of one digest tick, then lets the delivery worker send it. Planning
//! writes every delivery before anything leaves; sending claims, sends and records (see `delivery` and the
//! `state` module docs). A dry run plans and reports and records nothing.

use chrono::{DateTime, FixedOffset, Utc};

use super::composer::{DigestComposer, link_tokens};
use super::{NewsletterError, digest_config, open_state, related_source, views};
use crate::config::{Config, DigestConfig, MailTransport};
use crate::delivery::{
    self, DeliveryReport, DeliverySettings, MessageOutcome, MessageSource, Prepared,
};
use crate::digest::{
    self, DigestPlan, LatePublications, PlanOutcome, RelatedPick, Skip, Window, WindowStart,
};
use crate::domain::EmailAddress;
use crate::mail::{FileOutbox, MailError, Sendmail, SmtpRelay, SmtpSettings, Transport};
use crate::state::{Claimed, NewDelivery, RecordedPick, RunId, RunProgress, State, StateError};
use crate::store::{self, Catalog};

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
    /// `--dry-run`: planned and reported, nothing recorded or sent.
    DryRun,
}

/// What `digest send` did.
#[derive(Debug)]
pub struct SendReport {
    pub digest: String,
    pub tick: DateTime<FixedOffset>,
    pub outcome: SendOutcome,
    /// What the delivery worker did with this send's messages.
    pub delivered: DeliveryReport,
    /// Confirmed subscribers with nothing new (no mail, never an empty digest).
    pub nothing_new: usize,
    /// Subscribers of the digest who are pending, unsubscribed or bounced.
    pub not_confirmed: usize,
    /// A dry run's plan: each subscriber who would get mail, with the articles.
    pub would_send: Vec<(EmailAddress, Vec<String>)>,
    /// Whether the run is closed (every delivery final) or stays open to be resumed.
    pub progress: RunProgress,
    /// Other senders still holding claims on the open run (a concurrent cron job, another replica).
    pub sending_elsewhere: usize,
}

impl SendReport {
    fn new(digest: &str, tick: DateTime<FixedOffset>, outcome: SendOutcome) -> SendReport {
        SendReport {
            digest: digest.into(),
            tick,
            outcome,
            delivered: DeliveryReport::default(),
            nothing_new: 0,
            not_confirmed: 0,
            would_send: Vec::new(),
            progress: RunProgress::Finished,
            sending_elsewhere: 0,
        }
    }

    /// Whether this send did all it could: the run is closed, or what is left is in another live sender's hands
    /// and nothing here was deferred or stopped by an unavailable server.
    pub fn is_complete(&self) -> bool {
        match self.progress {
            RunProgress::Finished => self.delivered.unavailable.is_none(),
            RunProgress::Open { .. } => {
                self.sending_elsewhere > 0
                    && self.delivered.unavailable.is_none()
                    && self.count(|o| {
                        matches!(
                            o,
                            MessageOutcome::Deferred { .. } | MessageOutcome::Unprepared { .. }
                        )
                    }) == 0
            }
        }
    }

    /// How many messages of this send ended as `matches` says.
    pub fn count(&self, matches: impl Fn(&MessageOutcome) -> bool) -> usize {
        self.delivered.count(matches)
    }

    /// One line for the operator: what went, what waits, what failed and why nothing more.
    pub fn summary(&self) -> String {
        let tick = self.tick.to_rfc3339();
        match self.outcome {
            SendOutcome::AlreadySent => {
                return format!(
                    "digest \"{}\" {tick}: already sent; nothing sent again",
                    self.digest
                );
            }
            SendOutcome::Superseded => {
                return format!(
                    "digest \"{}\" {tick}: a newer tick already has a run; an older tick is never sent after it",
                    self.digest
                );
            }
            SendOutcome::DryRun => {
                return format!(
                    "digest \"{}\" {tick}: dry run: would send {}, nothing new for {}, {} not confirmed; nothing recorded",
                    self.digest,
                    self.would_send.len(),
                    self.nothing_new,
                    self.not_confirmed
                );
            }
            SendOutcome::Planned | SendOutcome::Resumed => {}
        }
        let mut line = format!(
            "digest \"{}\" {tick}: {} sent, {} deferred, {} failed, {} cancelled",
            self.digest,
            self.count(|o| matches!(o, MessageOutcome::Sent { .. })),
            self.count(|o| matches!(o, MessageOutcome::Deferred { .. })),
            self.count(|o| matches!(o, MessageOutcome::Failed { .. })),
            self.count(|o| matches!(o, MessageOutcome::Cancelled { .. })),
        );
        if self.outcome == SendOutcome::Planned {
            line.push_str(&format!(
                "; skipped {} with nothing new, {} not confirmed",
                self.nothing_new, self.not_confirmed
            ));
        }
        if let Some(reason) = &self.delivered.unavailable {
            line.push_str(&format!(
                "; stopped: the mail transport is unavailable ({reason})"
            ));
        }
        match self.progress {
            RunProgress::Open { remaining } if self.sending_elsewhere > 0 => {
                line.push_str(&format!(
                    "; {remaining} still open, being sent by {} other sender(s)",
                    self.sending_elsewhere
                ))
            }
            RunProgress::Open { remaining } => line.push_str(&format!(
                "; {remaining} still to send: run `tidings digest send {}` again",
                self.digest
            )),
            RunProgress::Finished => {}
        }
        line
    }
}

/// The transport `[mail] transport` names; `password` is `TIDINGS_MAIL_PASSWORD`.
pub fn transport(config: &Config, password: Option<&str>) -> Result<Box<dyn Transport>, MailError> {
    let mail = &config.mail;
    Ok(match mail.transport {
        MailTransport::File => Box::new(FileOutbox::new(&mail.outbox)),
        MailTransport::Sendmail => Box::new(Sendmail::new(&mail.sendmail_command)),
        MailTransport::Smtp => {
            let url = mail.smtp_url.clone().ok_or(MailError::Transport {
                what: "[mail] smtp_url",
                reason: "is not set; transport = \"smtp\" needs it".into(),
            })?;
            Box::new(SmtpRelay::new(
                &SmtpSettings {
                    url,
                    allow_plaintext: mail.allow_plaintext,
                    concurrency: mail.concurrency,
                    timeout: std::time::Duration::from_secs(mail.timeout_seconds),
                },
                password,
            )?)
        }
    })
}

/// What a send needs besides the config: secrets from the environment, and how to report progress.
pub struct SendOptions<'a> {
    /// `TIDINGS_SECRET`.
    pub secret: Option<&'a str>,
    pub dry_run: bool,
    /// Called after each message (a progress bar on a terminal, a line per sent message).
    pub progress: &'a (dyn Fn(&EmailAddress, &MessageOutcome) + Sync),
    /// Set when the process is asked to stop: no further message starts, those in flight finish and are
    /// recorded, and the run stays open for the next send.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// Stay until the run is done, waiting for other senders (replicas) and taking over what a dead one leaves
    /// (the daemon); else return, saying what is being sent elsewhere.
    pub wait_for_others: bool,
}

/// `digest send NAME`: plans (or resumes) the run for the latest tick of NAME's schedule at or before `now` and
/// hands its messages to the configured transport.
pub async fn digest_send(
    config: &Config,
    name: &str,
    now: DateTime<FixedOffset>,
    options: &SendOptions<'_>,
    transport: &dyn Transport,
) -> Result<SendReport, NewsletterError> {
    // A missing store is an error, not an empty one: planning from it would use up the tick for nothing.
    let (catalog, errors) = store::load_required(config)?;
    for e in errors.iter().filter(|e| e.is_error()) {
        tracing::warn!("{e}");
    }
    digest_send_with(config, &catalog, name, now, options, transport).await
}

/// [`digest_send`] from a loaded store.
pub async fn digest_send_with(
    config: &Config,
    catalog: &Catalog,
    name: &str,
    now: DateTime<FixedOffset>,
    options: &SendOptions<'_>,
    transport: &dyn Transport,
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
    let state = open_state(config).await?;
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
    let tokens = link_tokens(state.as_ref(), options.secret).await?;
    let composer = DigestComposer::new(config, digest, tokens)?;
    let mut report = SendReport::new(name, tick, SendOutcome::Resumed);
    let planned = existing.as_ref().filter(|r| r.planned.is_some());
    if options.dry_run && planned.is_some() {
        report.outcome = SendOutcome::DryRun;
        report.progress = open_progress(state.as_ref(), planned.map(|r| r.id)).await?;
        return Ok(report);
    }
    let run = match planned {
        Some(run) => run.id,
        // Not planned yet, or its planning was cut short: (re)planned here; what is written stays.
        None => {
            let tick_plan = TickPlan {
                config,
                catalog,
                digest,
                composer: &composer,
                state: state.as_ref(),
                tick,
                now,
            };
            let begun = existing.as_ref().map(|r| r.id);
            if begun.is_none() {
                // Unless another sender begins the run first (then `plan` says Resumed).
                report.outcome = SendOutcome::Planned;
            }
            let run = tick_plan.plan(begun, options.dry_run, &mut report).await?;
            let Some(run) = run else {
                report.outcome = SendOutcome::DryRun;
                return Ok(report);
            };
            run
        }
    };
    let source = RunMessages {
        composer: &composer,
        catalog,
        digest: &digest.name,
        tick,
        now,
    };
    let settings = DeliverySettings {
        wait_for_others: options.wait_for_others,
        ..DeliverySettings::from_config(&config.mail)
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    let delivered = delivery::deliver(
        state.as_ref(),
        transport,
        &source,
        run,
        &settings,
        now.to_utc(),
        options.progress,
        options.stop.unwrap_or(&never),
    )
    .await?;
    report.delivered = delivered;
    report.progress = state.finish_run(run, now.to_utc()).await?;
    if report.progress != RunProgress::Finished {
        report.sending_elsewhere = state.claimants(run, Utc::now()).await?.len();
    }
    Ok(report)
}

async fn open_progress(
    state: &dyn State,
    run: Option<RunId>,
) -> Result<RunProgress, NewsletterError> {
    let Some(run) = run else {
        return Ok(RunProgress::Finished);
    };
    let remaining = state
        .deliveries(run)
        .await?
        .iter()
        .filter(|d| !d.status.is_final())
        .count();
    Ok(if remaining == 0 {
        RunProgress::Finished
    } else {
        RunProgress::Open { remaining }
    })
}

/// Subscribers planned at once: memory stays flat whatever the list's size.
const PLAN_PAGE: usize = 1000;

/// The parts of planning one tick.
struct TickPlan<'a> {
    config: &'a Config,
    catalog: &'a Catalog,
    digest: &'a DigestConfig,
    composer: &'a DigestComposer<'a>,
    state: &'a dyn State,
    tick: DateTime<FixedOffset>,
    now: DateTime<FixedOffset>,
}

impl TickPlan<'_> {
    /// Decides the tick's deliveries a page of subscribers at a time and writes them into the run (begun here
    /// unless `begun`), then records when articles were first seen and ends the planning: only then can the
    /// run's messages be claimed. The first message is rendered before anything is written, as a canary, so a
    /// template error stops the send with nothing recorded. A dry run writes nothing and gives no run.
    async fn plan(
        &self,
        begun: Option<RunId>,
        dry_run: bool,
        report: &mut SendReport,
    ) -> Result<Option<RunId>, NewsletterError> {
        let started = std::time::Instant::now();
        let mut written = 0;
        let first_seen = self.state.first_seen().await?;
        let (late, sightings) = LatePublications::observe(self.catalog, &first_seen, self.tick);
        let related = related_source(self.config, self.catalog, self.tick);
        let mut run = begun;
        let mut after: Option<EmailAddress> = None;
        let mut rendered_one = false;
        loop {
            let page = self
                .state
                .subscribers_page(&self.digest.name, after.as_ref(), PLAN_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.email.clone());
            let views = views(self.state, &self.digest.name, page, self.tick.to_utc()).await?;
            let outcomes = digest::plan(
                self.digest,
                self.catalog,
                &views,
                self.tick,
                &late,
                &related,
            );
            let mut planned = Vec::new();
            for outcome in &outcomes {
                match outcome {
                    PlanOutcome::Send(plan) => {
                        if !rendered_one {
                            self.composer.render(plan)?;
                            rendered_one = true;
                        }
                        if dry_run {
                            report.would_send.push((
                                plan.subscriber.email.clone(),
                                plan.articles.iter().map(|a| a.slug.clone()).collect(),
                            ));
                        }
                        planned.push(self.delivery(plan));
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
            if dry_run || planned.is_empty() {
                continue;
            }
            let id = match run {
                Some(id) => id,
                None => self.begin(report).await?,
            };
            run = Some(id);
            match self.state.add_deliveries(id, &planned).await {
                Ok(()) => written += planned.len(),
                // Another replica planned the tick meanwhile: its plan stands, and this one joins the sending.
                Err(StateError::AlreadyPlanned(_)) => {
                    report.outcome = SendOutcome::Resumed;
                    return Ok(Some(id));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if dry_run {
            return Ok(None);
        }
        // A tick with nothing for anyone is still recorded: it was decided.
        let run = match run {
            Some(id) => id,
            None => self.begin(report).await?,
        };
        if !sightings.is_empty() {
            self.state.record_first_seen(&sightings).await?;
        }
        self.state.end_planning(run, self.now.to_utc()).await?;
        tracing::info!(
            digest = %self.digest.name,
            run,
            "planned: {written} deliveries written in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Some(run))
    }

    /// Begins the tick's run, or joins the one another sender began a moment ago.
    async fn begin(&self, report: &mut SendReport) -> Result<RunId, NewsletterError> {
        let tick = self.tick.to_utc();
        match self
            .state
            .begin_run(&self.digest.name, tick, self.now.to_utc())
            .await
        {
            Ok(id) => Ok(id),
            Err(StateError::RunExists { .. }) => {
                report.outcome = SendOutcome::Resumed;
                let run = self.state.run(&self.digest.name, tick).await?;
                Ok(run
                    .ok_or_else(|| StateError::Failed {
                        operation: "read a run",
                        reason: "the run another sender began is not there".into(),
                    })?
                    .id)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn delivery(&self, plan: &DigestPlan<'_>) -> NewDelivery {
        NewDelivery {
            email: plan.subscriber.email.clone(),
            message_id: self.composer.message_id(self.tick, &plan.subscriber.email),
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
            window_after: plan.window.after,
        }
    }
}

/// Makes each claimed delivery's message from what was recorded when the run was planned, so a resumed message
/// says what the first attempt said.
struct RunMessages<'a> {
    composer: &'a DigestComposer<'a>,
    catalog: &'a Catalog,
    digest: &'a str,
    tick: DateTime<FixedOffset>,
    now: DateTime<FixedOffset>,
}

impl MessageSource for RunMessages<'_> {
    fn prepare(&self, claimed: &Claimed) -> Result<Prepared, String> {
        let delivery = &claimed.delivery;
        // An unsubscribe between planning and sending takes effect.
        if !claimed.subscriber.wants(self.digest) {
            return Ok(Prepared::Cancel(
                "no longer a confirmed subscriber of this digest".into(),
            ));
        }
        let plan = replan(self.catalog, claimed, self.digest, self.tick);
        if plan.articles.is_empty() {
            return Ok(Prepared::Cancel(
                "none of the planned articles is in the store any more".into(),
            ));
        }
        let message = self
            .composer
            .render(&plan)
            .and_then(|parts| {
                self.composer
                    .compose(&plan, &parts, &delivery.message_id, self.now)
            })
            .map_err(|e| e.to_string())?;
        Ok(Prepared::Message(message))
    }
}

/// The plan a delivery recorded, rebuilt from the store: the same articles, each related pick with the article it
/// was for, the left-out count and the window start.
fn replan<'a>(
    catalog: &'a Catalog,
    claimed: &Claimed,
    digest: &str,
    tick: DateTime<FixedOffset>,
) -> DigestPlan<'a> {
    let delivery = &claimed.delivery;
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
    let subscriber = claimed.subscriber.clone();
    let start = if delivery.window_after == subscriber.joined_at(digest) {
        WindowStart::Subscribed
    } else {
        WindowStart::LastDigest
    };
    DigestPlan {
        subscriber,
        window: Window {
            after: delivery.window_after,
            until: tick,
            start,
        },
        articles,
        over_limit: delivery.over_limit,
        related,
    }
}
#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;

    use lettre::Message;

    use super::*;
    use crate::domain::{DeliveryStatus, NewSubscriber, SubscriberStatus, SuppressionKey};
    use crate::mail::DeliveryOutcome;
    use crate::state::Resubscribe;

    const PERMANENTLY: &str = "550 5.1.1 no such user";

    /// A transport that refuses one address (for now, or for good) and keeps the text of what it accepted.
    #[derive(Default)]
    struct Scripted {
        refuse: Option<String>,
        permanently: bool,
        accepted: Mutex<Vec<String>>,
        texts: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn refusing(email: &str) -> Scripted {
            Scripted {
                refuse: Some(email.into()),
                ..Scripted::default()
            }
        }

        fn rejecting(email: &str) -> Scripted {
            Scripted {
                permanently: true,
                ..Scripted::refusing(email)
            }
        }

        fn accepted(&self) -> Vec<String> {
            self.accepted.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl Transport for Scripted {
        async fn send(&self, message: &Message, _message_id: &str) -> DeliveryOutcome {
            let to = message.envelope().to()[0].to_string();
            if self.refuse.as_deref() == Some(to.as_str()) {
                return if self.permanently {
                    DeliveryOutcome::Failed {
                        reply: PERMANENTLY.into(),
                    }
                } else {
                    DeliveryOutcome::Deferred {
                        reply: "451 try again later".into(),
                    }
                };
            }
            let raw = message.formatted();
            let parsed = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("a message tidings built parses");
            self.texts
                .lock()
                .unwrap()
                .push(parsed.body_text(0).unwrap_or_default().into_owned());
            self.accepted.lock().unwrap().push(to);
            DeliveryOutcome::Sent {
                reply: "250 ok".into(),
            }
        }
    }

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    const MONDAY_SEND: &str = "2026-11-30T09:00:00+01:00";

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
                    [mail]\nmax_attempts = 1\nretry_backoff_ms = 0\nbounce_threshold = 2\n\
                    [state]\ndatabase = \"state.db\"\n";
        let config = Config::parse(Path::new("config.toml"), text, Vec::new(), dir.path()).unwrap();
        let state = open_state(&config).await.unwrap();
        for email in ["ada@example.com", "bob@example.com"] {
            let new = NewSubscriber {
                email: EmailAddress::parse(email).unwrap(),
                name: String::new(),
                digests: vec!["weekly".into()],
                categories: Vec::new(),
                subscribed_at: at("2026-11-01T00:00:00Z").to_utc(),
                changed_at: at("2026-11-01T00:00:00Z").to_utc(),
            };
            let key = SuppressionKey(email.into());
            state
                .upsert_subscriber(&new, &key, Resubscribe::Never)
                .await
                .unwrap();
        }
        (dir, config)
    }

    async fn send_at(config: &Config, now: &str, transport: &Scripted) -> SendReport {
        send_with(config, now, transport, false).await
    }

    async fn send_with(
        config: &Config,
        now: &str,
        transport: &Scripted,
        dry_run: bool,
    ) -> SendReport {
        let options = SendOptions {
            secret: Some("s"),
            dry_run,
            progress: &|_, _| {},
            stop: None,
            wait_for_others: false,
        };
        digest_send(config, "weekly", at(now), &options, transport)
            .await
            .unwrap()
    }

    async fn delivery_of(
        config: &Config,
        tick: DateTime<FixedOffset>,
        email: &str,
    ) -> crate::state::Delivery {
        let state = open_state(config).await.unwrap();
        let run = state.run("weekly", tick.to_utc()).await.unwrap().unwrap();
        let deliveries = state.deliveries(run.id).await.unwrap();
        assert_eq!(deliveries.len(), 2, "{deliveries:?}");
        deliveries
            .into_iter()
            .find(|d| d.email.as_str() == email)
            .unwrap()
    }

    fn sent(report: &SendReport) -> usize {
        report.count(|o| matches!(o, MessageOutcome::Sent { .. }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deferred_delivery_is_retried_on_the_next_send_of_the_tick_and_sent_ones_are_not() {
        let (_dir, config) = world().await;
        let flaky = Scripted::refusing("bob@example.com");
        let first = send_at(&config, MONDAY_SEND, &flaky).await;
        assert_eq!(first.outcome, SendOutcome::Planned);
        assert_eq!(flaky.accepted(), ["ada@example.com"]);
        assert_eq!(
            first.count(|o| matches!(o, MessageOutcome::Deferred { .. })),
            1
        );
        assert_eq!(first.progress, RunProgress::Open { remaining: 1 });
        assert!(
            first.summary().contains("1 sent, 1 deferred"),
            "{}",
            first.summary()
        );

        let healthy = Scripted::default();
        let second = send_at(&config, MONDAY_SEND, &healthy).await;
        assert_eq!(second.outcome, SendOutcome::Resumed);
        assert_eq!(
            healthy.accepted(),
            ["bob@example.com"],
            "only the deferred one again"
        );
        assert_eq!(second.progress, RunProgress::Finished);

        let third = send_at(&config, MONDAY_SEND, &healthy).await;
        assert_eq!(third.outcome, SendOutcome::AlreadySent);
        assert_eq!(healthy.accepted().len(), 1);
        let bob = delivery_of(&config, second.tick, "bob@example.com").await;
        assert_eq!((bob.status, bob.attempts), (DeliveryStatus::Sent, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_who_leaves_before_a_resumed_send_gets_nothing() {
        let (_dir, config) = world().await;
        let first = send_at(&config, MONDAY_SEND, &Scripted::refusing("bob@example.com")).await;
        let state = open_state(&config).await.unwrap();
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        state
            .set_subscriber_status(&bob, SubscriberStatus::Unsubscribed, first.tick.to_utc())
            .await
            .unwrap();
        let healthy = Scripted::default();
        let resumed = send_at(&config, MONDAY_SEND, &healthy).await;
        assert_eq!(resumed.outcome, SendOutcome::Resumed);
        assert!(healthy.accepted().is_empty(), "bob unsubscribed");
        assert_eq!(
            resumed.progress,
            RunProgress::Finished,
            "a cancelled delivery does not keep the run open"
        );
        let bob = delivery_of(&config, resumed.tick, "bob@example.com").await;
        assert_eq!(bob.status, DeliveryStatus::Cancelled);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_permanent_rejection_is_recorded_failed_never_retried_and_closes_the_run() {
        let (_dir, config) = world().await;
        let rejecting = Scripted::rejecting("bob@example.com");
        let first = send_at(&config, MONDAY_SEND, &rejecting).await;
        assert_eq!(rejecting.accepted(), ["ada@example.com"]);
        assert_eq!(
            first.count(|o| matches!(o, MessageOutcome::Failed { reply, bounced: false } if reply == PERMANENTLY)),
            1
        );
        assert_eq!(
            first.progress,
            RunProgress::Finished,
            "a 550 does not keep the run open"
        );
        let healthy = Scripted::default();
        let again = send_at(&config, MONDAY_SEND, &healthy).await;
        assert_eq!(again.outcome, SendOutcome::AlreadySent);
        assert!(
            healthy.accepted().is_empty(),
            "a rejected message is never sent again"
        );
        let bob = delivery_of(&config, first.tick, "bob@example.com").await;
        assert_eq!(
            (bob.status, bob.attempts, bob.last_error.as_deref()),
            (DeliveryStatus::Failed, 1, Some(PERMANENTLY))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permanent_failures_in_a_row_mark_the_subscriber_bounced() {
        let (dir, config) = world().await;
        let rejecting = Scripted::rejecting("bob@example.com");
        send_at(&config, MONDAY_SEND, &rejecting).await;
        std::fs::write(
            dir.path().join("articles/later.md"),
            "---\ntitle: Later\ndate: 2026-12-03T09:00:00+01:00\n---\nBody.\n",
        )
        .unwrap();
        let second = send_at(&config, "2026-12-07T09:00:00+01:00", &rejecting).await;
        assert_eq!(
            second.count(|o| matches!(o, MessageOutcome::Failed { bounced: true, .. })),
            1,
            "the second failure in a row reaches bounce_threshold = 2"
        );
        let state = open_state(&config).await.unwrap();
        let bob = state
            .subscriber(&EmailAddress::parse("bob@example.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob.status, SubscriberStatus::Bounced);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_delivery_is_not_sent_when_the_subscriber_confirms_again() {
        let (_dir, config) = world().await;
        send_at(&config, MONDAY_SEND, &Scripted::refusing("bob@example.com")).await;
        let state = open_state(&config).await.unwrap();
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        let when = at(MONDAY_SEND).to_utc();
        state
            .set_subscriber_status(&bob, SubscriberStatus::Unsubscribed, when)
            .await
            .unwrap();
        let healthy = Scripted::default();
        let resumed = send_at(&config, MONDAY_SEND, &healthy).await;
        assert_eq!(
            resumed.count(|o| matches!(o, MessageOutcome::Cancelled { .. })),
            1
        );
        state
            .set_subscriber_status(&bob, SubscriberStatus::Confirmed, when)
            .await
            .unwrap();
        let after = send_at(&config, MONDAY_SEND, &healthy).await;
        assert_eq!(after.outcome, SendOutcome::AlreadySent);
        assert!(healthy.accepted().is_empty(), "cancelled stays cancelled");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        let flaky = Scripted::refusing("bob@example.com");
        send_at(&config, MONDAY_SEND, &flaky).await;
        let healthy = Scripted::default();
        send_at(&config, MONDAY_SEND, &healthy).await;
        let (first, resumed) = (flaky.texts.lock().unwrap(), healthy.texts.lock().unwrap());
        assert_eq!((first.len(), resumed.len()), (1, 1));
        assert!(first[0].contains("new: Second Rust tools"), "{}", first[0]);
        assert!(first[0].contains("left out: 1"), "{}", first[0]);
        assert!(
            first[0].contains("related: Old Rust tools for Second Rust tools"),
            "{}",
            first[0]
        );
        assert_eq!(
            resumed[0], first[0],
            "bob's resumed message reads as ada's first"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_tick_is_never_sent_after_a_newer_one() {
        let (_dir, config) = world().await;
        let t = Scripted::default();
        let later = send_at(&config, "2026-12-07T09:00:00+01:00", &t).await;
        assert_eq!(
            (later.outcome, t.accepted().len()),
            (SendOutcome::Planned, 2)
        );
        let old = send_at(&config, MONDAY_SEND, &t).await;
        assert_eq!(old.outcome, SendOutcome::Superseded);
        assert_eq!(t.accepted().len(), 2, "nothing sent for the older tick");
        let state = open_state(&config).await.unwrap();
        assert!(
            state
                .run("weekly", old.tick.to_utc())
                .await
                .unwrap()
                .is_none(),
            "and nothing recorded"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_template_error_leaves_no_run_behind() {
        let (dir, mut config) = world().await;
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/digest.txt.hbs"), "{{missing}}\n").unwrap();
        config.newsletter.templates = dir.path().join("templates");
        let t = Scripted::default();
        let options = SendOptions {
            secret: Some("s"),
            dry_run: false,
            progress: &|_, _| {},
            stop: None,
            wait_for_others: false,
        };
        let err = digest_send(&config, "weekly", at(MONDAY_SEND), &options, &t)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("digest.txt.hbs:1:"), "{err}");
        let state = open_state(&config).await.unwrap();
        assert!(
            state.runs(None).await.unwrap().is_empty(),
            "no run, not even one being planned"
        );
        assert!(t.accepted().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn planning_cut_short_is_finished_by_the_next_send_and_nothing_leaves_before() {
        let (_dir, config) = world().await;
        let state = open_state(&config).await.unwrap();
        let tick = send_with(&config, MONDAY_SEND, &Scripted::default(), true)
            .await
            .tick
            .to_utc();
        // A send killed while planning: the run begun, ada's delivery written, bob's not yet.
        let run = state.begin_run("weekly", tick, tick).await.unwrap();
        let ada = NewDelivery {
            email: EmailAddress::parse("ada@example.com").unwrap(),
            message_id: "<first@example.com>".into(),
            articles: vec!["fresh".into()],
            related: Vec::new(),
            over_limit: 0,
            window_after: at("2026-11-01T00:00:00Z").to_utc(),
        };
        state.add_deliveries(run, &[ada]).await.unwrap();
        let lease = tick + chrono::Duration::minutes(5);
        assert!(
            state
                .claim(run, "other", 10, tick, lease)
                .await
                .unwrap()
                .is_empty(),
            "a run still planning has nothing to send"
        );
        let t = Scripted::default();
        let report = send_at(&config, MONDAY_SEND, &t).await;
        assert_eq!((report.outcome, sent(&report)), (SendOutcome::Resumed, 2));
        assert_eq!(
            delivery_of(&config, tick.fixed_offset(), "ada@example.com")
                .await
                .message_id,
            "<first@example.com>",
            "what was written before the cut stays"
        );
        assert_eq!(report.progress, RunProgress::Finished);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_list_longer_than_a_page_is_planned_whole() {
        let (_dir, config) = world().await;
        let state = open_state(&config).await.unwrap();
        let joined = at("2026-11-01T00:00:00Z").to_utc();
        let many: Vec<NewSubscriber> = (0..PLAN_PAGE + 150)
            .map(|i| NewSubscriber {
                email: EmailAddress::parse(&format!("r{i:05}@example.com")).unwrap(),
                name: String::new(),
                digests: vec!["weekly".into()],
                categories: Vec::new(),
                subscribed_at: joined,
                changed_at: joined,
            })
            .collect();
        let keyed: Vec<_> = many
            .iter()
            .map(|n| (n.clone(), SuppressionKey(n.email.to_string())))
            .collect();
        state
            .upsert_subscribers(&keyed, Resubscribe::Never)
            .await
            .unwrap();
        let t = Scripted::default();
        let report = send_at(&config, MONDAY_SEND, &t).await;
        assert_eq!(sent(&report), PLAN_PAGE + 152, "ada, bob and every reader");
        let mut accepted = t.accepted();
        accepted.sort();
        accepted.dedup();
        assert_eq!(accepted.len(), PLAN_PAGE + 152, "each once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dry_run_plans_and_records_nothing() {
        let (_dir, config) = world().await;
        let t = Scripted::default();
        let dry = send_with(&config, MONDAY_SEND, &t, true).await;
        assert_eq!(dry.outcome, SendOutcome::DryRun);
        assert_eq!(dry.would_send.len(), 2);
        assert_eq!(dry.would_send[0].1, ["fresh"]);
        assert!(t.accepted().is_empty());
        let state = open_state(&config).await.unwrap();
        assert!(
            state
                .run("weekly", dry.tick.to_utc())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            state.first_seen().await.unwrap().is_empty(),
            "not even the sightings"
        );
        let real = send_at(&config, MONDAY_SEND, &t).await;
        assert_eq!((real.outcome, sent(&real)), (SendOutcome::Planned, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_back_dated_article_added_after_a_tick_goes_out_in_the_next_digest_once() {
        let (dir, config) = world().await;
        let t = Scripted::default();
        let first = send_at(&config, MONDAY_SEND, &t).await;
        assert_eq!(sent(&first), 2);
        // Written after the first tick, dated before it.
        std::fs::write(
            dir.path().join("articles/backdated.md"),
            "---\ntitle: Backdated\ndate: 2026-11-20T09:00:00+01:00\n---\nBody.\n",
        )
        .unwrap();
        let next = send_at(&config, "2026-12-07T09:00:00+01:00", &t).await;
        assert_eq!(sent(&next), 2, "{}", next.summary());
        let ada = delivery_of(&config, next.tick, "ada@example.com").await;
        assert_eq!(ada.articles, ["backdated"]);
        let after = send_at(&config, "2026-12-14T09:00:00+01:00", &t).await;
        assert_eq!(sent(&after), 0, "never twice: {}", after.summary());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_archive_is_not_news_on_the_first_send() {
        let (dir, config) = world().await;
        std::fs::write(
            dir.path().join("articles/archive.md"),
            "---\ntitle: Archive\ndate: 2025-01-01T09:00:00+01:00\n---\nBody.\n",
        )
        .unwrap();
        let t = Scripted::default();
        let first = send_at(&config, MONDAY_SEND, &t).await;
        let ada = delivery_of(&config, first.tick, "ada@example.com").await;
        assert_eq!(
            ada.articles,
            ["fresh"],
            "dated before they subscribed, seen on the first look"
        );
    }
}

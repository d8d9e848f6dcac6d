//! The digest and subscriber commands: wires the config, the article store, the state database, the templates,
//! the transport and the caller's `now` around the pure `digest` and `mail` modules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};
use lettre::Message;

use crate::config::{Config, DigestConfig, MailTransport};
use crate::digest::{
    self, DigestError, DigestPlan, GMAIL_CLIP_BYTES, PlanOutcome, RECENT_DIGESTS, RelatedPick,
    RelatedSource, RenderSettings, RenderedDigest, Schedule, Skip, SubscriberView, Templates,
    Window, WindowStart,
};
use crate::mail::{
    self, DeliveryOutcome, DkimSigner, Envelope, FileOutbox, LinkTokens, MailError, Transport,
};
use crate::related::RelatedIndex;
use crate::state::{
    DeliveryStatus, EmailAddress, ImportProblem, InvalidEmail, NewDelivery, NewSubscriber,
    RemoveOutcome, SecretOrigin, SqliteState, State, StateError, Subscriber, SubscriberStatus,
    UpsertOutcome, parse_subscribers_csv,
};
use crate::store::{self, Catalog};

/// Everything a digest or subscriber command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NewsletterError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Email(#[from] InvalidEmail),
    #[error("no [[digest]] named \"{name}\" in config.toml; configured: {known}")]
    UnknownDigest { name: String, known: String },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("digest \"{digest}\": schedule \"{schedule}\" has no tick {when} {now}")]
    NoTick {
        digest: String,
        schedule: String,
        when: &'static str,
        now: DateTime<FixedOffset>,
    },
    #[error("{0} is not a subscriber of this digest; add them with `tidings subscribers add`")]
    NotSubscribed(EmailAddress),
    #[error("digest \"{0}\" has no confirmed subscriber to preview; pass --to EMAIL or add one")]
    NobodyToPreview(String),
    #[error("cannot generate a random secret: {0}")]
    Random(String),
    #[error("{path}: cannot lock for sending: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An exclusive lock on `<database>.lock`, held while a digest is sent (released when dropped, or when the
/// process dies). The state database has one sender at a time; a PostgreSQL backend would claim rows instead.
struct SendLock {
    _file: std::fs::File,
}

impl SendLock {
    fn acquire(config: &Config) -> Result<SendLock, NewsletterError> {
        let mut path = config.state.database.clone().into_os_string();
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
        Ok(SendLock { _file: file })
    }
}

fn digest_config<'a>(config: &'a Config, name: &str) -> Result<&'a DigestConfig, NewsletterError> {
    config
        .digest(name)
        .ok_or_else(|| NewsletterError::UnknownDigest {
            name: name.into(),
            known: if config.digest.is_empty() {
                "none (add a [[digest]] table)".into()
            } else {
                config
                    .digest
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

fn digest_names(config: &Config) -> Vec<String> {
    config.digest.iter().map(|d| d.name.clone()).collect()
}

/// Opens (and migrates) the state database named in `[state] database`.
pub fn open_state(config: &Config) -> Result<SqliteState, StateError> {
    SqliteState::open(&config.state.database)
}

// ---------------------------------------------------------------------------------------------------------------
// Subscribers

/// `subscribers add`: one confirmed subscriber (an owner adding someone who already asked for the digest).
pub fn subscribers_add(
    config: &Config,
    email: &str,
    name: Option<&str>,
    digests: &[String],
    categories: &[String],
    now: DateTime<FixedOffset>,
) -> Result<UpsertOutcome, NewsletterError> {
    let email = EmailAddress::parse(email)?;
    for d in digests {
        digest_config(config, d)?;
    }
    let digests = if digests.is_empty() {
        digest_names(config)
    } else {
        digests.to_vec()
    };
    let mut state = open_state(config)?;
    Ok(state.upsert_subscriber(&NewSubscriber {
        email,
        name: store::single_line(name.unwrap_or("")),
        digests,
        categories: categories.to_vec(),
        subscribed_at: now.with_timezone(&Utc),
        changed_at: now.with_timezone(&Utc),
    })?)
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Addresses that unsubscribed or bounced and were left so.
    pub kept_unsubscribed: Vec<EmailAddress>,
    /// Rows not imported, with their line.
    pub problems: Vec<ImportProblem>,
}

/// `subscribers import FILE.csv`: every good row is imported (idempotently), every bad row reported by line.
pub fn subscribers_import(
    config: &Config,
    path: &Path,
    now: DateTime<FixedOffset>,
) -> Result<ImportReport, NewsletterError> {
    let text = std::fs::read_to_string(path).map_err(|source| NewsletterError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (subscribers, problems) = parse_subscribers_csv(
        &path.display().to_string(),
        &text,
        &digest_names(config),
        now.with_timezone(&Utc),
    );
    let mut state = open_state(config)?;
    let mut report = ImportReport {
        problems,
        ..Default::default()
    };
    for s in &subscribers {
        match state.upsert_subscriber(s)? {
            UpsertOutcome::Added => report.added += 1,
            UpsertOutcome::Updated => report.updated += 1,
            UpsertOutcome::Unchanged => report.unchanged += 1,
            UpsertOutcome::KeptUnsubscribed => report.kept_unsubscribed.push(s.email.clone()),
        }
    }
    Ok(report)
}

/// `subscribers list --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `subscribers list`: the list rendered in `format` (by address).
pub fn subscribers_list(
    config: &Config,
    digest: Option<&str>,
    format: ListFormat,
) -> Result<String, NewsletterError> {
    if let Some(d) = digest {
        digest_config(config, d)?;
    }
    let subscribers = open_state(config)?.subscribers(digest)?;
    Ok(render_subscribers(&subscribers, format))
}

fn render_subscribers(subscribers: &[Subscriber], format: ListFormat) -> String {
    match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = subscribers
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "email": s.email.as_str(),
                        "name": s.name,
                        "status": s.status,
                        "digests": s.digests,
                        "categories": s.categories,
                        "created": ts(s.created),
                        "confirmed": s.confirmed.map(ts),
                    })
                })
                .collect();
            let mut out = serde_json::to_string_pretty(&rows).expect("JSON values serialize");
            out.push('\n');
            out
        }
        ListFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record([
                "email",
                "name",
                "status",
                "digests",
                "categories",
                "subscribed_at",
            ]);
            for s in subscribers {
                let _ = w.write_record([
                    s.email.as_str(),
                    &s.name,
                    s.status.as_str(),
                    &s.digests.join(";"),
                    &s.categories.join(";"),
                    &ts(s.created),
                ]);
            }
            String::from_utf8(w.into_inner().expect("writing to memory cannot fail"))
                .expect("CSV of UTF-8 is UTF-8")
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = subscribers
                .iter()
                .map(|s| {
                    [
                        s.email.to_string(),
                        s.name.clone(),
                        s.status.as_str().into(),
                        s.digests.join(";"),
                        if s.categories.is_empty() {
                            "(all)".into()
                        } else {
                            s.categories.join(";")
                        },
                        ts(s.created),
                    ]
                })
                .collect();
            let header = [
                "EMAIL",
                "NAME",
                "STATUS",
                "DIGESTS",
                "CATEGORIES",
                "SUBSCRIBED",
            ]
            .map(String::from);
            let mut widths = header.clone().map(|h| h.chars().count());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let mut out = String::new();
            for row in std::iter::once(&header).chain(&rows) {
                let cells: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                    .collect();
                out.push_str(cells.join("  ").trim_end());
                out.push('\n');
            }
            out.push_str(&format!("{} subscriber(s)\n", rows.len()));
            out
        }
    }
}

/// `subscribers remove`: deletes the subscriber and their delivery history.
pub fn subscribers_remove(config: &Config, email: &str) -> Result<RemoveOutcome, NewsletterError> {
    let email = EmailAddress::parse(email)?;
    Ok(open_state(config)?.remove_subscriber(&email)?)
}

// ---------------------------------------------------------------------------------------------------------------
// Digests

/// The link-token secret: `TIDINGS_SECRET` (passed in by the caller) or one generated once and kept in the state
/// database, so links in sent mail stay valid.
fn link_tokens(
    state: &mut dyn State,
    env_secret: Option<&str>,
) -> Result<LinkTokens, NewsletterError> {
    if let Some(secret) = env_secret.filter(|s| !s.is_empty()) {
        return Ok(LinkTokens::new(secret.as_bytes().to_vec()));
    }
    // Drawn before the state is asked, so a failing random source can never store a weak secret.
    let mut candidate = vec![0u8; 32];
    getrandom::fill(&mut candidate).map_err(|e| NewsletterError::Random(e.to_string()))?;
    let (secret, origin) = state.secret(&mut || candidate.clone())?;
    if origin == SecretOrigin::Generated {
        tracing::warn!(
            "TIDINGS_SECRET is not set: generated a random link-token secret and stored it in the state database; \
             set TIDINGS_SECRET to manage it yourself"
        );
    }
    Ok(LinkTokens::new(secret))
}

/// Everything shared by the messages of one digest.
struct Sender<'a> {
    config: &'a Config,
    digest: &'a DigestConfig,
    templates: Templates,
    tokens: LinkTokens,
    dkim: Option<DkimSigner>,
    from_domain: String,
    from_address: String,
}

impl<'a> Sender<'a> {
    fn new(
        config: &'a Config,
        digest: &'a DigestConfig,
        tokens: LinkTokens,
    ) -> Result<Sender<'a>, NewsletterError> {
        let templates = Templates::load(Some(&config.newsletter.templates), &config.digest)?;
        let from = config.newsletter.from.clone().unwrap_or_default();
        let mailbox = from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| MailError::Mailbox {
                field: "[newsletter] from",
                value: from.clone(),
                reason: e.to_string(),
            })?;
        let dkim = config
            .mail
            .dkim
            .as_ref()
            .map(DkimSigner::load)
            .transpose()?;
        Ok(Sender {
            config,
            digest,
            templates,
            tokens,
            dkim,
            from_domain: mailbox.email.domain().to_string(),
            from_address: mailbox.email.to_string(),
        })
    }

    fn unsubscribe_url(&self, email: &EmailAddress) -> String {
        let mut url = self
            .config
            .public_url()
            .join("unsubscribe")
            .expect("a relative path joins onto an http URL");
        url.query_pairs_mut()
            .append_pair("list", &self.digest.name)
            .append_pair("email", email.as_str())
            .append_pair("token", &self.tokens.unsubscribe(email, &self.digest.name));
        url.to_string()
    }

    fn render(&self, plan: &DigestPlan<'_>) -> Result<RenderedDigest, NewsletterError> {
        let unsubscribe = self.unsubscribe_url(&plan.subscriber.email);
        let settings = RenderSettings {
            site_title: &self.config.site.title,
            site_url: self.config.site.base_url.as_str(),
            language: &self.config.site.language,
            digest: &self.digest.name,
            timezone: self.config.timezone(),
            unsubscribe_url: &unsubscribe,
            postal_address: &self.config.newsletter.postal_address,
        };
        Ok(self.templates.render(plan, &settings)?)
    }

    fn compose(
        &self,
        plan: &DigestPlan<'_>,
        parts: &RenderedDigest,
        message_id: &str,
        date: DateTime<FixedOffset>,
    ) -> Result<Message, NewsletterError> {
        let email = &plan.subscriber.email;
        let list_domain = self
            .config
            .newsletter
            .list_id
            .clone()
            .unwrap_or_else(|| self.from_domain.clone());
        let phrase: String = format!("{} {}", self.config.site.title, self.digest.name)
            .chars()
            .filter(|c| *c != '"' && *c != '\\')
            .collect();
        let envelope = Envelope {
            from: self.config.newsletter.from.clone().unwrap_or_default(),
            reply_to: self.config.newsletter.reply_to.clone(),
            to: email.clone(),
            to_name: plan.subscriber.name.clone(),
            date,
            message_id: message_id.into(),
            list_id: format!("\"{phrase}\" <{}.{list_domain}>", self.digest.name),
            unsubscribe_url: self.unsubscribe_url(email),
            unsubscribe_mailto: format!(
                "mailto:{}?subject=unsubscribe%20{}%20{}",
                self.from_address,
                self.digest.name,
                self.tokens.unsubscribe(email, &self.digest.name)
            ),
        };
        let mut message = mail::compose(parts, &envelope)?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        Ok(message)
    }

    fn message_id(&self, tick: DateTime<FixedOffset>, email: &EmailAddress) -> String {
        mail::message_id(&self.digest.name, tick, email, &self.from_domain)
    }
}

/// What each subscriber's last digests say: their window start and what not to offer again.
fn views(
    state: &dyn State,
    digest: &str,
    subscribers: Vec<Subscriber>,
    before: DateTime<Utc>,
) -> Result<Vec<SubscriberView>, NewsletterError> {
    subscribers
        .into_iter()
        .map(|subscriber| {
            let received = state.received(digest, &subscriber.email, before, RECENT_DIGESTS)?;
            Ok(SubscriberView {
                joined: subscriber.joined_at(digest),
                last_delivered: received.first().map(|r| r.tick),
                recently_received: received
                    .iter()
                    .flat_map(|r| r.articles.iter().chain(&r.related).cloned())
                    .collect(),
                subscriber,
            })
        })
        .collect()
}

/// The related-reading index as of `tick`, so only articles published by then can be suggested.
fn related_source(
    config: &Config,
    catalog: &Catalog,
    tick: DateTime<FixedOffset>,
) -> impl RelatedSource {
    RelatedIndex::build(catalog, tick, &config.related, &config.site.language)
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
    /// Where each accepted message went (outbox files).
    pub sent: Vec<String>,
    /// Subscribers whose message failed, with the error (retried on the next send of this tick).
    pub failed: Vec<(EmailAddress, String)>,
    /// Confirmed subscribers with nothing new (no mail, never an empty digest).
    pub nothing_new: usize,
    /// Subscribers of the digest who are pending, unsubscribed or bounced.
    pub not_confirmed: usize,
}

/// The transport `[mail] transport` names.
pub(super) fn transport(config: &Config) -> Box<dyn Transport> {
    match config.mail.transport {
        MailTransport::File => Box::new(FileOutbox::new(&config.mail.outbox)),
    }
}

/// `digest send NAME`: plans (or resumes) the run for the latest tick of NAME's schedule at or before `now` and
/// hands its messages to the configured transport. Runs are unique per tick, so sending a tick again sends
/// nothing; deliveries are recorded before anything is sent and marked sent once the transport accepts.
pub fn digest_send(
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
    digest_send_with(config, &catalog, name, now, env_secret, transport.as_mut())
}

/// [`digest_send`] from a loaded store, with a given transport (tests pass one that fails).
pub fn digest_send_with(
    config: &Config,
    catalog: &Catalog,
    name: &str,
    now: DateTime<FixedOffset>,
    env_secret: Option<&str>,
    transport: &mut dyn Transport,
) -> Result<SendReport, NewsletterError> {
    let digest = digest_config(config, name)?;
    let schedule = Schedule::parse(&digest.schedule).expect("schedules are validated at load");
    let tick = schedule
        .latest_at_or_before(now, config.timezone())
        .ok_or_else(|| NewsletterError::NoTick {
            digest: name.into(),
            schedule: digest.schedule.clone(),
            when: "at or before",
            now,
        })?;
    let tick_utc = tick.with_timezone(&Utc);
    let mut state = open_state(config)?;
    let mut report = SendReport {
        digest: name.into(),
        tick,
        outcome: SendOutcome::Planned,
        sent: Vec::new(),
        failed: Vec::new(),
        nothing_new: 0,
        not_confirmed: 0,
    };
    // One sender per state database at a time: a second `digest send` or `run --once` (an overlapping cron
    // job) waits here instead of sending the same pending deliveries again.
    let _lock = SendLock::acquire(config)?;
    let existing = state.run(name, tick_utc)?;
    if existing.as_ref().is_some_and(|r| r.finished.is_some()) {
        report.outcome = SendOutcome::AlreadySent;
        return Ok(report);
    }
    if existing.is_none()
        && state
            .latest_tick(name)?
            .is_some_and(|latest| latest > tick_utc)
    {
        report.outcome = SendOutcome::Superseded;
        return Ok(report);
    }
    let tokens = link_tokens(&mut state, env_secret)?;
    let sender = Sender::new(config, digest, tokens)?;
    let subscribers = state.subscribers(Some(name))?;
    let views = views(&state, name, subscribers, tick_utc)?;

    let mut rendered = std::collections::HashMap::new();
    let run = match existing {
        Some(run) => {
            report.outcome = SendOutcome::Resumed;
            run.id
        }
        None => {
            let related = related_source(config, catalog, tick);
            let outcomes = digest::plan(digest, catalog, &views, tick, &related);
            let mut planned = Vec::new();
            for outcome in &outcomes {
                match outcome {
                    PlanOutcome::Send(plan) => planned.push(NewDelivery {
                        email: plan.subscriber.email.clone(),
                        message_id: sender.message_id(tick, &plan.subscriber.email),
                        articles: plan.articles.iter().map(|a| a.slug.clone()).collect(),
                        related: plan
                            .related
                            .iter()
                            .map(|r| r.article.slug.clone())
                            .collect(),
                    }),
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
            // Render every message before recording anything: a template error must not leave a half run.
            // The parts are kept for the send below, so nothing is rendered twice.
            for outcome in &outcomes {
                if let PlanOutcome::Send(plan) = outcome {
                    rendered.insert(plan.subscriber.email.clone(), sender.render(plan)?);
                }
            }
            state.plan_run(name, tick_utc, now.with_timezone(&Utc), &planned)?
        }
    };

    let views_by_email: std::collections::HashMap<&EmailAddress, &SubscriberView> =
        views.iter().map(|v| (&v.subscriber.email, v)).collect();
    for delivery in state.deliveries(run)? {
        if delivery.status == DeliveryStatus::Sent {
            continue;
        }
        // A resumed delivery goes out only to someone who still wants it: an unsubscribe between planning
        // and sending takes effect.
        let view = views_by_email.get(&delivery.email).filter(|v| {
            v.subscriber.status == SubscriberStatus::Confirmed && v.subscriber.takes(name)
        });
        let Some(view) = view else {
            state.mark_cancelled(
                delivery.id,
                "no longer a confirmed subscriber of this digest",
            )?;
            continue;
        };
        let plan = replan(catalog, view, tick, &delivery.articles, &delivery.related);
        if plan.articles.is_empty() {
            state.mark_cancelled(
                delivery.id,
                "none of the planned articles is in the store any more",
            )?;
            continue;
        }
        let parts = match rendered.remove(&delivery.email) {
            Some(parts) => parts,
            None => sender.render(&plan)?,
        };
        let message = sender.compose(&plan, &parts, &delivery.message_id, now)?;
        match transport.send(&message, &delivery.message_id) {
            DeliveryOutcome::Sent { location } => {
                state.mark_sent(delivery.id, now.with_timezone(&Utc))?;
                report.sent.push(location);
            }
            DeliveryOutcome::RetryLater(error) | DeliveryOutcome::Rejected(error) => {
                state.mark_failed(delivery.id, &error)?;
                report.failed.push((delivery.email.clone(), error));
            }
        }
    }
    if report.failed.is_empty() {
        state.finish_run(run, now.with_timezone(&Utc))?;
    }
    Ok(report)
}

/// A plan rebuilt from what a delivery recorded (so a resumed run sends exactly what was planned).
fn replan<'a>(
    catalog: &'a Catalog,
    view: &SubscriberView,
    tick: DateTime<FixedOffset>,
    articles: &[String],
    related: &[String],
) -> DigestPlan<'a> {
    let articles: Vec<_> = articles.iter().filter_map(|s| catalog.by_slug(s)).collect();
    let related = match articles.first() {
        Some(first) => related
            .iter()
            .filter_map(|s| catalog.by_slug(s))
            .map(|article| RelatedPick {
                article,
                because: first,
            })
            .collect(),
        None => Vec::new(),
    };
    DigestPlan {
        subscriber: view.subscriber.clone(),
        window: digest::window(view, tick),
        articles,
        over_limit: 0,
        related,
    }
}

/// What `digest preview` shows.
#[derive(Debug)]
pub struct Preview {
    /// Who, which tick, their window and filters, the articles and related picks, and whether mail would go.
    pub explanation: String,
    /// The message that would be sent (None when nothing would be).
    pub message: Option<Vec<u8>>,
    /// Its plain-text part.
    pub text: Option<String>,
}

fn fmt_time(t: DateTime<Utc>, config: &Config) -> String {
    t.with_timezone(&config.timezone())
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn explain_window(window: &Window, config: &Config) -> String {
    let start = match window.start {
        WindowStart::LastDigest => "their last digest",
        WindowStart::Subscribed => "they subscribed; no digest yet",
    };
    format!(
        "articles dated after {} ({start}) up to {}",
        fmt_time(window.after, config),
        fmt_time(window.until.with_timezone(&Utc), config)
    )
}

fn filter_text(filter: &[String]) -> String {
    if filter.is_empty() {
        "all categories".into()
    } else {
        filter.join(", ")
    }
}

/// `digest preview NAME`: what one subscriber would get at the next tick after `now`, and why. Sends nothing and
/// records no run or delivery.
pub fn digest_preview(
    config: &Config,
    name: &str,
    to: Option<&str>,
    now: DateTime<FixedOffset>,
    env_secret: Option<&str>,
) -> Result<Preview, NewsletterError> {
    let digest = digest_config(config, name)?;
    let schedule = Schedule::parse(&digest.schedule).expect("schedules are validated at load");
    let tick =
        schedule
            .next_after(now, config.timezone())
            .ok_or_else(|| NewsletterError::NoTick {
                digest: name.into(),
                schedule: digest.schedule.clone(),
                when: "after",
                now,
            })?;
    let mut state = open_state(config)?;
    let subscriber = match to {
        Some(email) => {
            let email = EmailAddress::parse(email)?;
            state
                .subscriber(&email)?
                .filter(|s| s.takes(name))
                .ok_or(NewsletterError::NotSubscribed(email))?
        }
        None => state
            .subscribers(Some(name))?
            .into_iter()
            .find(|s| s.status == SubscriberStatus::Confirmed)
            .ok_or_else(|| NewsletterError::NobodyToPreview(name.into()))?,
    };
    let tokens = link_tokens(&mut state, env_secret)?;
    let sender = Sender::new(config, digest, tokens)?;
    let (catalog, _) = store::load(config);
    let views = views(&state, name, vec![subscriber], tick.with_timezone(&Utc))?;
    let related = related_source(config, &catalog, tick);
    let outcome = digest::plan(digest, &catalog, &views, tick, &related)
        .pop()
        .expect("one view gives one outcome");
    let view = &views[0];
    let s = &view.subscriber;
    let mut out = format!(
        "digest \"{name}\" for {}{} at the next tick, {}\n",
        s.email,
        if s.name.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.name)
        },
        fmt_time(tick.with_timezone(&Utc), config)
    );
    out.push_str(&format!("  status:     {}\n", s.status.as_str()));
    out.push_str(&format!(
        "  window:     {}\n",
        explain_window(&digest::window(view, tick), config)
    ));
    out.push_str(&format!(
        "  filters:    digest: {}; subscriber: {}\n",
        filter_text(&digest.categories),
        filter_text(&s.categories)
    ));
    if !view.recently_received.is_empty() {
        let recent: Vec<&str> = view.recently_received.iter().map(String::as_str).collect();
        out.push_str(&format!(
            "  not again:  {} (in their last digests)\n",
            recent.join(", ")
        ));
    }
    match outcome {
        PlanOutcome::Skip { reason, .. } => {
            let why = match reason {
                Skip::NothingNew => {
                    "nothing new for them in the window: no mail would be sent".to_string()
                }
                Skip::NotConfirmed(status) => {
                    format!("they are {}: no mail would be sent", status.as_str())
                }
            };
            out.push_str(&format!("  result:     {why}\n"));
            Ok(Preview {
                explanation: out,
                message: None,
                text: None,
            })
        }
        PlanOutcome::Send(plan) => {
            out.push_str(&format!("  articles ({}):\n", plan.articles.len()));
            for a in &plan.articles {
                out.push_str(&format!(
                    "    {}  {:<12}  {}\n",
                    fmt_time(a.date.with_timezone(&Utc), config),
                    a.category.as_deref().unwrap_or("-"),
                    a.slug
                ));
            }
            if plan.over_limit > 0 {
                out.push_str(&format!(
                    "    (+{} older left out by max_articles)\n",
                    plan.over_limit
                ));
            }
            out.push_str(&format!("  related ({}):\n", plan.related.len()));
            for r in &plan.related {
                out.push_str(&format!(
                    "    {}  (for {})\n",
                    r.article.slug, r.because.slug
                ));
            }
            let parts = sender.render(&plan)?;
            out.push_str(&format!("  subject:    {}\n", parts.subject));
            out.push_str(&format!(
                "  html size:  {} bytes (Gmail clips above {GMAIL_CLIP_BYTES})\n",
                parts.html.len()
            ));
            let message = sender.compose(&plan, &parts, &sender.message_id(tick, &s.email), now)?;
            Ok(Preview {
                explanation: out,
                message: Some(message.formatted()),
                text: Some(parts.text),
            })
        }
    }
}

/// Writes a preview's message to `path`.
pub fn write_preview(path: &Path, bytes: &[u8]) -> Result<(), NewsletterError> {
    crate::output::write_if_changed(path, bytes).map_err(|source| NewsletterError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(())
}

/// What `check` finds about digests: template errors (problems) and HTML over Gmail's clipping size (warnings).
#[derive(Debug, Default)]
pub struct DigestCheck {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// Compiles the templates and renders each digest at its fullest on the current store (the newest
/// `max_articles` published articles with their related picks) to measure the HTML against Gmail's limit.
pub(super) fn check_digests(
    config: &Config,
    catalog: &Catalog,
    now: DateTime<FixedOffset>,
) -> DigestCheck {
    let mut check = DigestCheck::default();
    if config.digest.is_empty() {
        return check;
    }
    let related = related_source(config, catalog, now);
    for digest in &config.digest {
        let sender = match Sender::new(config, digest, LinkTokens::new(b"check".to_vec())) {
            Ok(s) => s,
            Err(e) => {
                check.problems.push(e.to_string());
                break;
            }
        };
        let reader = Subscriber {
            email: EmailAddress::parse("reader@example.com").expect("a valid literal address"),
            name: "Reader".into(),
            status: SubscriberStatus::Confirmed,
            digests: vec![digest.name.clone()],
            categories: Vec::new(),
            created: DateTime::<Utc>::MIN_UTC,
            confirmed: None,
            joined: Default::default(),
        };
        let view = SubscriberView {
            joined: reader.created,
            subscriber: reader,
            last_delivered: None,
            recently_received: BTreeSet::new(),
        };
        let Some(PlanOutcome::Send(plan)) =
            digest::plan(digest, catalog, &[view], now, &related).pop()
        else {
            continue;
        };
        match sender.render(&plan) {
            Ok(parts) if parts.html.len() > GMAIL_CLIP_BYTES => check.warnings.push(format!(
                "digest \"{}\": the HTML part of a full digest ({} articles) is {} bytes, over Gmail's clipping \
                 limit of {GMAIL_CLIP_BYTES}; lower max_articles or trim the templates",
                digest.name,
                plan.articles.len(),
                parts.html.len()
            )),
            Ok(_) => {}
            Err(e) => check.problems.push(e.to_string()),
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that refuses mail to one address and records what it accepted.
    struct Flaky {
        refuse: Option<String>,
        accepted: Vec<String>,
    }

    impl Transport for Flaky {
        fn send(&mut self, message: &Message, message_id: &str) -> DeliveryOutcome {
            let to = message.envelope().to()[0].to_string();
            if self.refuse.as_deref() == Some(to.as_str()) {
                return DeliveryOutcome::RetryLater("451 try again later".into());
            }
            self.accepted.push(to);
            DeliveryOutcome::Sent {
                location: message_id.into(),
            }
        }
    }

    fn world() -> (tempfile::TempDir, Config) {
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
        let mut state = open_state(&config).unwrap();
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
                .unwrap();
        }
        (dir, config)
    }

    #[test]
    fn a_failed_delivery_is_retried_on_the_next_send_of_the_tick_and_sent_ones_are_not() {
        let (_dir, config) = world();
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let mut flaky = Flaky {
            refuse: Some("bob@example.com".into()),
            accepted: Vec::new(),
        };
        let first = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut flaky,
        )
        .unwrap();
        assert_eq!(first.outcome, SendOutcome::Planned);
        assert_eq!(flaky.accepted, ["ada@example.com"]);
        assert_eq!(first.failed.len(), 1);
        assert_eq!(first.failed[0].1, "451 try again later");

        let mut healthy = Flaky {
            refuse: None,
            accepted: Vec::new(),
        };
        let second = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut healthy,
        )
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
        .unwrap();
        assert_eq!(third.outcome, SendOutcome::AlreadySent);
        assert_eq!(healthy.accepted.len(), 1);

        let state = open_state(&config).unwrap();
        let run = state.run("weekly", second.tick.to_utc()).unwrap().unwrap();
        let deliveries = state.deliveries(run.id).unwrap();
        let bob = deliveries
            .iter()
            .find(|d| d.email.as_str() == "bob@example.com")
            .unwrap();
        assert_eq!((bob.status, bob.attempts), (DeliveryStatus::Sent, 2));
    }

    #[test]
    fn a_subscriber_who_leaves_before_a_resumed_send_gets_nothing() {
        let (_dir, config) = world();
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let mut flaky = Flaky {
            refuse: Some("bob@example.com".into()),
            accepted: Vec::new(),
        };
        digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut flaky,
        )
        .unwrap();
        let state = open_state(&config).unwrap();
        state
            .conn_for_tests()
            .execute(
                "UPDATE subscribers SET status = 'unsubscribed' WHERE email = 'bob@example.com'",
                [],
            )
            .unwrap();

        let mut healthy = Flaky {
            refuse: None,
            accepted: Vec::new(),
        };
        let resumed = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut healthy,
        )
        .unwrap();
        assert_eq!(resumed.outcome, SendOutcome::Resumed);
        assert!(
            healthy.accepted.is_empty(),
            "bob unsubscribed: {:?}",
            healthy.accepted
        );
        let run = state.run("weekly", resumed.tick.to_utc()).unwrap().unwrap();
        assert!(
            run.finished.is_some(),
            "a cancelled delivery does not keep the run open"
        );
        let bob = state
            .deliveries(run.id)
            .unwrap()
            .into_iter()
            .find(|d| d.email.as_str() == "bob@example.com")
            .unwrap();
        assert_eq!(bob.status, DeliveryStatus::Cancelled);
    }

    #[test]
    fn an_older_tick_is_never_sent_after_a_newer_one() {
        let (_dir, config) = world();
        let mut t = Flaky {
            refuse: None,
            accepted: Vec::new(),
        };
        let later = DateTime::parse_from_rfc3339("2026-12-07T09:00:00+01:00").unwrap();
        let sent = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            later,
            Some("s"),
            &mut t,
        )
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
        .unwrap();
        assert_eq!(old.outcome, SendOutcome::Superseded);
        assert_eq!(t.accepted.len(), 2, "nothing sent for the older tick");
        let state = open_state(&config).unwrap();
        assert!(
            state.run("weekly", old.tick.to_utc()).unwrap().is_none(),
            "and nothing recorded"
        );
    }

    #[test]
    fn a_template_error_leaves_no_run_behind() {
        let (dir, mut config) = world();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/digest.txt.hbs"), "{{missing}}\n").unwrap();
        config.newsletter.templates = dir.path().join("templates");
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00+01:00").unwrap();
        let mut t = Flaky {
            refuse: None,
            accepted: Vec::new(),
        };
        let err = digest_send_with(
            &config,
            &store::load(&config).0,
            "weekly",
            now,
            Some("s"),
            &mut t,
        )
        .unwrap_err();
        assert!(err.to_string().contains("digest.txt.hbs:1:"), "{err}");
        let tick = DateTime::parse_from_rfc3339("2026-11-30T08:00:00+01:00").unwrap();
        assert!(
            open_state(&config)
                .unwrap()
                .run("weekly", tick.to_utc())
                .unwrap()
                .is_none()
        );
        assert!(t.accepted.is_empty());
    }

    #[test]
    fn subscriber_table_aligns_columns_and_counts() {
        let s = Subscriber {
            email: EmailAddress::parse("ada@example.com").unwrap(),
            name: "Ada".into(),
            status: SubscriberStatus::Confirmed,
            digests: vec!["weekly".into()],
            categories: vec![],
            created: DateTime::parse_from_rfc3339("2026-08-15T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            confirmed: None,
            joined: Default::default(),
        };
        let table = render_subscribers(&[s], ListFormat::Table);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("EMAIL            NAME"), "{table}");
        assert!(lines[1].starts_with("ada@example.com  Ada "), "{table}");
        assert_eq!(lines[2], "1 subscriber(s)");
    }
}

//! `GET /subscribe` (the form) and `POST /subscribe` (a sign-up), and the message a sign-up sends.
//!
//! A valid sign-up always answers the same "check your inbox" page with status 200, whatever the address's
//! standing; what differs is only what the address gets, in the background: a confirmation link (new, pending,
//! or had left), a note with a preferences link (already confirmed), or nothing (forgotten on request, over the
//! per-address limit, or the honeypot field was filled in).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use super::pages::choices;
use super::{Context, Shared, client_ip};
use crate::digest::{Part, RenderedDigest};
use crate::domain::{EmailAddress, NewSubscriber, SubscriberHandle};
use crate::mail::{self, CONFIRM_VALID_FOR, DeliveryOutcome, Envelope};
use crate::state::SignupOutcome;

/// At most this many characters of a name.
const NAME_CHARS: usize = 100;

/// What the form posted, as typed (digests and categories repeat).
#[derive(Debug, Default)]
pub(super) struct Posted {
    pub email: String,
    pub name: String,
    pub digests: Vec<String>,
    pub categories: Vec<String>,
    /// The honeypot: hidden from people, filled in by bots.
    pub website: String,
}

impl Posted {
    pub(super) fn from_pairs(pairs: Vec<(String, String)>) -> Posted {
        let mut posted = Posted::default();
        for (key, value) in pairs {
            match key.as_str() {
                "email" => posted.email = value,
                "name" => posted.name = value,
                "digest" => posted.digests.push(value),
                "category" => posted.categories.push(value),
                "website" => posted.website = value,
                _ => {}
            }
        }
        posted
    }
}

/// The digests and categories a subscriber chose, checked against the config and the store.
pub(super) fn check_choices(
    ctx: &Shared,
    digests: &[String],
    categories: &[String],
) -> Result<(Vec<String>, Vec<String>), Vec<String>> {
    let mut errors = Vec::new();
    let known = ctx.digest_names();
    let mut chosen: Vec<String> = known
        .iter()
        .filter(|d| digests.contains(d))
        .cloned()
        .collect();
    if digests.iter().any(|d| !known.contains(d)) {
        errors.push("Choose newsletters from the list.".to_string());
    } else if chosen.is_empty() {
        errors.push("Choose at least one newsletter.".to_string());
    }
    chosen.dedup();
    let categories = match crate::app::check_categories(categories, &ctx.categories()) {
        Ok(found) => found,
        Err(_) => {
            errors.push("Choose topics from the list.".to_string());
            Vec::new()
        }
    };
    if errors.is_empty() {
        Ok((chosen, categories))
    } else {
        Err(errors)
    }
}

fn form_page(ctx: &Shared, status: StatusCode, posted: &Posted, errors: &[String]) -> Response {
    let digests = ctx.digest_names();
    // A fresh form ticks every digest; a returned one keeps what was ticked.
    let ticked = if errors.is_empty() {
        digests.clone()
    } else {
        posted.digests.clone()
    };
    ctx.page(
        status,
        "subscribe",
        "Subscribe",
        serde_json::json!({
            "form": { "email": posted.email, "name": posted.name },
            "errors": errors,
            "choose_digests": digests.len() > 1,
            "digests": choices(&digests, &ticked),
            "categories": choices(&ctx.categories(), &posted.categories),
        }),
    )
}

fn no_newsletter(ctx: &Shared) -> Response {
    ctx.message(
        StatusCode::NOT_FOUND,
        "No newsletter here",
        "This site has no newsletter to subscribe to.",
    )
}

pub(super) async fn form(Extract(ctx): Extract<Context>) -> Response {
    let ctx = &ctx.0;
    if ctx.config.digest.is_empty() {
        return no_newsletter(ctx);
    }
    form_page(ctx, StatusCode::OK, &Posted::default(), &[])
}

pub(super) async fn submit(
    Extract(ctx): Extract<Context>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let shared = &ctx.0;
    if shared.config.digest.is_empty() {
        return no_newsletter(shared);
    }
    if !shared
        .per_ip
        .allow(client_ip(&shared.config, peer, &headers))
    {
        shared.metrics.record_signup("rate_limited");
        return shared.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ups",
            "Too many sign-ups came from your network in the last hour. Please try again later.",
        );
    }
    let posted = Posted::from_pairs(pairs);
    let check_inbox = || {
        shared.page(
            StatusCode::OK,
            "check-inbox",
            "Check your inbox",
            serde_json::json!({ "valid_days": CONFIRM_VALID_FOR.num_days() }),
        )
    };
    if !posted.website.is_empty() {
        shared.metrics.record_signup("honeypot");
        return check_inbox();
    }
    let mut errors = Vec::new();
    let email = EmailAddress::parse(&posted.email)
        .map_err(|_| errors.push("Enter an email address like name@example.com.".to_string()))
        .ok();
    let choices = check_choices(shared, &posted.digests, &posted.categories)
        .map_err(|e| errors.extend(e))
        .ok();
    let (Some(email), Some((digests, categories))) = (email, choices) else {
        shared.metrics.record_signup("invalid");
        return form_page(shared, StatusCode::BAD_REQUEST, &posted, &errors);
    };
    if !shared.per_address.allow(email.as_str().to_string()) {
        shared.metrics.record_signup("address_limited");
        return check_inbox();
    }
    let now = shared.now();
    let name: String = crate::store::single_line(&posted.name)
        .chars()
        .take(NAME_CHARS)
        .collect();
    let new = NewSubscriber {
        email: email.clone(),
        name: name.clone(),
        digests: digests.clone(),
        categories: categories.clone(),
        subscribed_at: now,
        changed_at: now,
    };
    let key = shared.tokens.suppression_key(&email);
    let outcome = match shared.state.sign_up(&new, &key).await {
        Ok(outcome) => outcome,
        Err(e) => return shared.failed(e),
    };
    shared.metrics.record_signup("accepted");
    let kind = match outcome {
        SignupOutcome::AwaitingConfirmation(handle) => Some((Kind::Confirm, handle)),
        SignupOutcome::AlreadyConfirmed(handle) => Some((Kind::AlreadySubscribed, handle)),
        SignupOutcome::Suppressed => None,
    };
    if let Some((kind, handle)) = kind {
        let ctx = Arc::clone(&ctx.0);
        let Ok(slot) = Arc::clone(&ctx.mail_slots).acquire_owned().await else {
            return check_inbox();
        };
        tokio::spawn(async move {
            send(&ctx, kind, new, handle, now).await;
            drop(slot);
        });
    }
    check_inbox()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Confirm,
    AlreadySubscribed,
}

/// Composes and sends one sign-up message; the outcome is logged and counted (the visitor already has their
/// page; a lost confirmation is one they ask for again).
async fn send(
    ctx: &Shared,
    kind: Kind,
    to: NewSubscriber,
    handle: SubscriberHandle,
    now: DateTime<Utc>,
) {
    let label = match kind {
        Kind::Confirm => "confirmation",
        Kind::AlreadySubscribed => "already_subscribed",
    };
    let message = match compose(ctx, kind, &to, &handle, now) {
        Ok(message) => message,
        Err(e) => {
            tracing::error!("cannot compose the {label} message: {e}");
            ctx.metrics.record_web_message(label, "failed");
            return;
        }
    };
    let (message, id) = message;
    let outcome = match ctx.transport.send(&message, &id).await {
        DeliveryOutcome::Sent { .. } => "sent",
        DeliveryOutcome::Deferred { reply } | DeliveryOutcome::Failed { reply } => {
            tracing::warn!("the {label} message was not accepted: {reply}");
            "failed"
        }
        DeliveryOutcome::Unavailable { reason } => {
            tracing::warn!("the {label} message could not be sent: {reason}");
            "failed"
        }
    };
    ctx.metrics.record_web_message(label, outcome);
}

fn compose(
    ctx: &Shared,
    kind: Kind,
    to: &NewSubscriber,
    handle: &SubscriberHandle,
    now: DateTime<Utc>,
) -> Result<(lettre::Message, String), super::WebError> {
    let config = &ctx.config;
    let from: Mailbox = config
        .newsletter
        .from
        .clone()
        .ok_or_else(|| mail::MailError::Mailbox {
            field: "[newsletter] from",
            value: String::new(),
            reason: "it is not set".into(),
        })?;
    let (template, subject) = match kind {
        Kind::Confirm => (
            "confirm",
            format!("Confirm your subscription to {}", config.site.title),
        ),
        Kind::AlreadySubscribed => (
            "subscribed",
            format!("You are already subscribed to {}", config.site.title),
        ),
    };
    let data = serde_json::json!({
        "site": ctx.site,
        "subject": subject,
        // Whoever posted the form typed the name: a note to a confirmed subscriber does not repeat it.
        "name": if matches!(kind, Kind::Confirm) { to.name.as_str() } else { "" },
        "digests": to.digests,
        "categories": to.categories,
        "confirm_url": ctx.link("confirm", &ctx.tokens.confirm(handle, now)),
        "preferences_url": ctx.link("preferences", &ctx.tokens.preferences(handle)),
        "valid_days": CONFIRM_VALID_FOR.num_days(),
    });
    let (text, html) = ctx.pages.message(template, &data)?;
    let domain = from.email.domain().to_string();
    let list_domain = config.newsletter.list_id.clone().unwrap_or(domain.clone());
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| mail::MailError::Build {
        to: to.email.to_string(),
        reason: format!("no random Message-ID: {e}"),
    })?;
    let message_id = format!(
        "<{template}.{}.{}@{domain}>",
        now.format("%Y%m%dT%H%M%SZ"),
        hex::encode(random)
    );
    let phrase: String = config
        .site
        .title
        .chars()
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let envelope = Envelope {
        from,
        reply_to: config.newsletter.reply_to.clone(),
        to: to.email.clone(),
        to_name: to.name.clone(),
        date: now.fixed_offset(),
        message_id: message_id.clone(),
        list_id: format!(
            "\"{}\" <signup.{list_domain}>",
            mail::shortened(&phrase, mail::NAME_CHARS)
        ),
        // "This was not me": leaves the whole list, so nothing is sent to the address again.
        unsubscribe_url: ctx.link("unsubscribe", &ctx.tokens.unsubscribe(handle, None)),
    };
    let parts = RenderedDigest {
        subject,
        text: Part::whole(text),
        html: Part::whole(html),
    };
    let mut message = mail::compose(&parts, &envelope)?;
    if let Some(dkim) = &ctx.dkim {
        dkim.sign(&mut message);
    }
    Ok((message, message_id))
}

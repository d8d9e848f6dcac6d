//! [`DigestComposer`]: turns one subscriber's digest plan into a finished, signed MIME message (templates, link
//! tokens, list headers, DKIM). It sends nothing: `send` hands what it makes to a transport, `preview` shows it.

use chrono::{DateTime, FixedOffset};
use lettre::Message;
use lettre::message::Mailbox;

use super::NewsletterError;
use crate::config::{Config, DigestConfig};
use crate::digest::{DigestPlan, RenderSettings, RenderedDigest, Templates};
use crate::domain::{EmailAddress, Subscriber};
use crate::mail::{self, DkimSigner, Envelope, LinkTokens, MailError};
use crate::state::{SecretOrigin, State};

/// The link-token secret: `TIDINGS_SECRET` (passed in by the caller) or one generated once and kept in the state
/// database, so links in sent mail stay valid.
pub async fn link_tokens(
    state: &dyn State,
    env_secret: Option<&str>,
) -> Result<LinkTokens, NewsletterError> {
    if let Some(secret) = env_secret.filter(|s| !s.is_empty()) {
        return Ok(LinkTokens::new(secret.as_bytes().to_vec()));
    }
    // Drawn before the state is asked, so a failing random source can never store a weak secret.
    let mut candidate = vec![0u8; 32];
    getrandom::fill(&mut candidate).map_err(|e| NewsletterError::Random(e.to_string()))?;
    let (secret, origin) = state.secret(&candidate).await?;
    if origin == SecretOrigin::Generated {
        tracing::warn!(
            "TIDINGS_SECRET is not set: generated a random link-token secret and stored it in the state database; \
             set TIDINGS_SECRET to manage it yourself"
        );
    }
    Ok(LinkTokens::new(secret))
}

/// `<public_url>/<page>?token=<token>`: a link to one of the subscriber pages (`web`).
pub fn link_url(config: &Config, page: &str, token: &str) -> String {
    let mut url = config
        .public_url()
        .join(page)
        .expect("a relative path joins onto an http URL");
    url.query_pairs_mut().append_pair("token", token);
    url.to_string()
}

/// Everything shared by the messages of one digest.
pub(super) struct DigestComposer<'a> {
    config: &'a Config,
    digest: &'a DigestConfig,
    templates: Templates,
    tokens: LinkTokens,
    dkim: Option<DkimSigner>,
    /// `[newsletter] from`, which the config requires once a digest exists.
    sender: Mailbox,
}

impl<'a> DigestComposer<'a> {
    pub(super) fn new(
        config: &'a Config,
        digest: &'a DigestConfig,
        tokens: LinkTokens,
    ) -> Result<DigestComposer<'a>, NewsletterError> {
        let templates = Templates::load(Some(&config.newsletter.templates), &config.digest)?;
        let dkim = config
            .mail
            .dkim
            .as_ref()
            .map(DkimSigner::load)
            .transpose()?;
        let sender = config.newsletter.from.clone().ok_or(MailError::Mailbox {
            field: "[newsletter] from",
            value: String::new(),
            reason: "it is not set".into(),
        })?;
        Ok(DigestComposer {
            config,
            digest,
            templates,
            tokens,
            dkim,
            sender,
        })
    }

    /// The one-click unsubscribe page for this digest: an opaque token, never the address.
    fn unsubscribe_url(&self, subscriber: &Subscriber) -> String {
        link_url(
            self.config,
            "unsubscribe",
            &self
                .tokens
                .unsubscribe(&subscriber.handle, Some(&self.digest.name)),
        )
    }

    /// The digest's text, HTML and subject for one plan.
    pub(super) fn render(&self, plan: &DigestPlan<'_>) -> Result<RenderedDigest, NewsletterError> {
        let unsubscribe = self.unsubscribe_url(&plan.subscriber);
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

    /// The whole message (headers, both parts, DKIM signature) from rendered parts.
    pub(super) fn compose(
        &self,
        plan: &DigestPlan<'_>,
        parts: &RenderedDigest,
        message_id: &str,
        date: DateTime<FixedOffset>,
    ) -> Result<Message, NewsletterError> {
        let email = &plan.subscriber.email;
        let list_domain = match &self.config.newsletter.list_id {
            Some(id) => id.as_str(),
            None => self.sender.email.domain(),
        };
        let phrase: String = format!("{} {}", self.config.site.title, self.digest.name)
            .chars()
            .filter(|c| *c != '"' && *c != '\\')
            .collect();
        let phrase = mail::shortened(&phrase, mail::NAME_CHARS);
        let envelope = Envelope {
            from: self.sender.clone(),
            reply_to: self.config.newsletter.reply_to.clone(),
            to: email.clone(),
            to_name: plan.subscriber.name.clone(),
            date,
            message_id: message_id.into(),
            list_id: format!("\"{phrase}\" <{}.{list_domain}>", self.digest.name),
            unsubscribe_url: self.unsubscribe_url(&plan.subscriber),
        };
        let mut message = mail::compose(parts, &envelope)?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        Ok(message)
    }

    /// The Message-ID of this digest's message to `email` at `tick` (stable, so a resumed send reuses it).
    pub(super) fn message_id(&self, tick: DateTime<FixedOffset>, email: &EmailAddress) -> String {
        mail::message_id(&self.digest.name, tick, email, self.sender.email.domain())
    }
}

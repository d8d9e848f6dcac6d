//! `digest preview`: what one subscriber would get from the next `digest send`, and why. Sends and records nothing, and
//! plans exactly as `digest send` does (the same views, related index and plan).

use std::path::Path;

use chrono::{DateTime, FixedOffset, Utc};

use super::composer::{DigestComposer, link_tokens};
use super::{NewsletterError, digest_config, open_state, related_source, views};
use crate::config::Config;
use crate::digest::{
    self, GMAIL_CLIP_BYTES, LatePublications, PlanOutcome, Skip, Window, WindowStart,
};
use crate::domain::{EmailAddress, SubscriberStatus};
use crate::store;

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

/// `digest preview NAME`: what one subscriber would get from the next send of NAME at `now` (the tick that is due,
/// else the next one), and why. Sends nothing and
/// records no run or delivery.
pub async fn digest_preview(
    config: &Config,
    name: &str,
    to: Option<&str>,
    now: DateTime<FixedOffset>,
    env_secret: Option<&str>,
) -> Result<Preview, NewsletterError> {
    let digest = digest_config(config, name)?;
    let state = open_state(config).await?;
    // The tick the next `digest send` would send: one that is due and has no run yet, else the first one after
    // both now and the newest recorded tick (an older tick is never sent after a newer one).
    let tz = config.timezone();
    let recorded = state.latest_tick(name).await?;
    let due = digest
        .schedule
        .latest_at_or_before(now, tz)
        .filter(|due| recorded.is_none_or(|r| r < due.to_utc()));
    let (tick, when) = match due {
        Some(due) => (Some(due), "the tick due now"),
        None => {
            let after = recorded.map_or(now, |r| r.fixed_offset().max(now));
            (digest.schedule.next_after(after, tz), "the next tick")
        }
    };
    let tick = tick.ok_or_else(|| NewsletterError::NoTick {
        digest: name.into(),
        schedule: digest.schedule.as_str().into(),
        when: "after",
        now,
    })?;
    let subscriber = match to {
        Some(email) => {
            let email = EmailAddress::parse(email)?;
            state
                .subscriber(&email)
                .await?
                .filter(|s| s.takes(name))
                .ok_or(NewsletterError::NotSubscribed(email))?
        }
        None => state
            .subscribers(Some(name))
            .await?
            .into_iter()
            .find(|s| s.status == SubscriberStatus::Confirmed)
            .ok_or_else(|| NewsletterError::NobodyToPreview(name.into()))?,
    };
    let tokens = link_tokens(state.as_ref(), env_secret).await?;
    let composer = DigestComposer::new(config, digest, tokens)?;
    let (catalog, _) = store::load_required(config)?;
    let views = views(
        state.as_ref(),
        name,
        vec![subscriber],
        tick.with_timezone(&Utc),
    )
    .await?;
    let (late, _) = LatePublications::observe(&catalog, &state.first_seen().await?, tick);
    let related = related_source(config, &catalog, tick);
    let outcome = digest::plan(digest, &catalog, &views, tick, &late, &related)
        .pop()
        .expect("one view gives one outcome");
    let view = &views[0];
    let s = &view.subscriber;
    let mut out = format!(
        "digest \"{name}\" for {}{} at {when}, {}\n",
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
            let parts = composer.render(&plan)?;
            out.push_str(&format!("  subject:    {}\n", parts.subject));
            out.push_str(&format!(
                "  html size:  {} bytes (Gmail clips above {GMAIL_CLIP_BYTES})\n",
                parts.html.len()
            ));
            let message =
                composer.compose(&plan, &parts, &composer.message_id(tick, &s.email), now)?;
            Ok(Preview {
                explanation: out,
                message: Some(message.formatted()),
                text: Some(parts.text.to_string()),
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

//! `check`: every problem with the store and the digests, from one reading of the store, without writing or
//! sending anything.

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, Utc};

use super::composer::DigestComposer;
use super::{related_source, unknown_picks};
use crate::config::Config;
use crate::digest::{self, GMAIL_CLIP_BYTES, PlanOutcome, SubscriberView};
use crate::domain::{EmailAddress, Subscriber, SubscriberHandle, SubscriberStatus};
use crate::mail::LinkTokens;
use crate::store::{self, Catalog};

/// What `check` found: invalid content (problems, in path order), things worth a look (warnings) and store files
/// that are no articles (notes, in path order: a README in `_posts`, an undated page).
#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// `check`: the store's problems (bad articles, unknown editor's picks), the digests' (templates, Gmail
/// clipping) and the web pages' templates, from one reading of the store.
pub fn check(config: &Config, now: DateTime<FixedOffset>) -> CheckReport {
    let (catalog, mut errors) = store::load(config);
    errors.extend(unknown_picks(&catalog));
    errors.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    let digests = check_digests(config, &catalog, now);
    let (errors, notes): (Vec<_>, Vec<_>) = errors.into_iter().partition(|e| e.is_error());
    let mut problems: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    problems.extend(digests.problems);
    // The web pages' templates (an override with a syntax error would only show when `serve` starts).
    if let Err(e) = crate::web::Pages::load(&config.newsletter.templates) {
        problems.push(e.to_string());
    }
    CheckReport {
        problems,
        warnings: digests.warnings,
        notes: notes.iter().map(|e| e.to_string()).collect(),
    }
}

/// What `check` finds about digests: template errors (problems) and HTML over Gmail's clipping size (warnings).
#[derive(Debug, Default)]
struct DigestCheck {
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// Compiles the templates and renders each digest at its fullest on the current store (the newest
/// `max_articles` published articles with their related picks) to measure the HTML against Gmail's limit.
fn check_digests(config: &Config, catalog: &Catalog, now: DateTime<FixedOffset>) -> DigestCheck {
    let mut check = DigestCheck::default();
    if config.digest.is_empty() {
        return check;
    }
    let related = related_source(config, catalog, now);
    for digest in &config.digest {
        let composer = match DigestComposer::new(config, digest, LinkTokens::new(b"check".to_vec()))
        {
            Ok(s) => s,
            Err(e) => {
                check.problems.push(e.to_string());
                break;
            }
        };
        let reader = Subscriber {
            handle: SubscriberHandle::from_bytes([0; 16]),
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
            digest::plan(digest, catalog, &[view], now, &Default::default(), &related).pop()
        else {
            continue;
        };
        match composer.render(&plan) {
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

//! Deciding what each subscriber gets at one tick. Pure: the catalog, what each subscriber already received and
//! the tick go in; one [`PlanOutcome`] per subscriber comes out.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Utc};

use super::related::RelatedSource;
use crate::config::DigestConfig;
use crate::domain::{EmailAddress, Subscriber, SubscriberStatus};
use crate::store::{Article, Catalog};

/// How many of a subscriber's last digests are remembered so their related picks are not offered again.
pub const RECENT_DIGESTS: usize = 3;

/// What the plan needs to know about one subscriber of the digest.
#[derive(Debug, Clone)]
pub struct SubscriberView {
    pub subscriber: Subscriber,
    /// When they joined this digest: the start of their first window.
    pub joined: DateTime<Utc>,
    /// The tick of the last run of this digest they were sent, if any.
    pub last_delivered: Option<DateTime<Utc>>,
    /// Slugs (new and related) of their last [`RECENT_DIGESTS`] digests.
    pub recently_received: BTreeSet<String>,
}

/// Where a window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowStart {
    /// The tick of their last digest.
    LastDigest,
    /// When they subscribed: a new subscriber never gets the archive.
    Subscribed,
}

/// Articles dated in `(after, until]` are new to the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub after: DateTime<Utc>,
    pub until: DateTime<FixedOffset>,
    pub start: WindowStart,
}

/// Articles that went live later than their `date` says (a back-dated post, a draft published late), with when
/// tidings first saw them live. Such an article is new in the first window after that time, whatever its date,
/// so it still goes out once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatePublications(BTreeMap<String, DateTime<Utc>>);

impl LatePublications {
    /// What `first_seen` (slug → first time seen live, from the state) says at `tick`, and the first sightings to
    /// record: each article published at `tick` and never seen before is seen at `tick`, except on the very first
    /// look (nothing seen yet), where the archive is taken at its dates so that it is not news.
    pub fn observe(
        catalog: &Catalog,
        first_seen: &BTreeMap<String, DateTime<Utc>>,
        tick: DateTime<FixedOffset>,
    ) -> (LatePublications, Vec<(String, DateTime<Utc>)>) {
        let first_look = first_seen.is_empty();
        let mut late = BTreeMap::new();
        let mut sightings = Vec::new();
        for article in catalog.published(tick) {
            let date = article.date.to_utc();
            let seen = match first_seen.get(&article.slug) {
                Some(seen) => *seen,
                None => {
                    let seen = if first_look { date } else { tick.to_utc() };
                    sightings.push((article.slug.clone(), seen));
                    seen
                }
            };
            if seen > date {
                late.insert(article.slug.clone(), seen);
            }
        }
        (LatePublications(late), sightings)
    }

    /// Late articles first seen in `(after, until]`.
    fn seen_in(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(_, seen)| **seen > after && **seen <= until)
            .map(|(slug, _)| slug.as_str())
    }
}

/// A related-reading pick and the new article it was chosen for.
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedPick<'a> {
    pub article: &'a Article,
    pub because: &'a Article,
}

/// One subscriber's digest, decided.
#[derive(Debug, Clone)]
pub struct DigestPlan<'a> {
    pub subscriber: Subscriber,
    pub window: Window,
    /// New articles, newest first, at most `max_articles`.
    pub articles: Vec<&'a Article>,
    /// New articles left out by `max_articles` (the oldest ones).
    pub over_limit: usize,
    pub related: Vec<RelatedPick<'a>>,
}

/// Why a subscriber of the digest gets nothing this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Pending, unsubscribed or bounced.
    NotConfirmed(SubscriberStatus),
    /// Nothing new in their window after their filters: no mail (never an empty digest).
    NothingNew,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a handful per subscriber, consumed at once; boxing buys nothing
pub enum PlanOutcome<'a> {
    Send(DigestPlan<'a>),
    Skip {
        email: EmailAddress,
        window: Option<Window>,
        reason: Skip,
    },
}

fn category_matches(filter: &[String], article: &Article) -> bool {
    filter.is_empty()
        || article
            .category
            .as_deref()
            .is_some_and(|c| filter.iter().any(|f| crate::store::same_category(f, c)))
}

/// The window of one subscriber at `tick`.
pub fn window(view: &SubscriberView, tick: DateTime<FixedOffset>) -> Window {
    match view.last_delivered {
        Some(last) => Window {
            after: last,
            until: tick,
            start: WindowStart::LastDigest,
        },
        None => Window {
            after: view.joined,
            until: tick,
            start: WindowStart::Subscribed,
        },
    }
}

/// Plans `digest` at `tick` for each view (subscribers of this digest). An article is new to a subscriber when it
/// is published at the tick and its `date` (not `updated`: an edit is not news) falls in their window, or when it
/// went live late (`late`) within their window; a future-dated article therefore waits for the first tick after
/// its date. An article in one of their recent digests is never sent to them again.
pub fn plan<'a>(
    digest: &DigestConfig,
    catalog: &'a Catalog,
    views: &[SubscriberView],
    tick: DateTime<FixedOffset>,
    late: &LatePublications,
    related: &dyn RelatedSource,
) -> Vec<PlanOutcome<'a>> {
    views
        .iter()
        .map(|view| plan_one(digest, catalog, view, tick, late, related))
        .collect()
}

fn plan_one<'a>(
    digest: &DigestConfig,
    catalog: &'a Catalog,
    view: &SubscriberView,
    tick: DateTime<FixedOffset>,
    late: &LatePublications,
    related: &dyn RelatedSource,
) -> PlanOutcome<'a> {
    let email = view.subscriber.email.clone();
    if view.subscriber.status != SubscriberStatus::Confirmed {
        return PlanOutcome::Skip {
            email,
            window: None,
            reason: Skip::NotConfirmed(view.subscriber.status),
        };
    }
    let window = window(view, tick);
    // The catalog is newest first, so the window's articles by date are a prefix: stop at the first older one.
    // Late publications dated before the window are added from their (short) list.
    let mut new: Vec<&Article> = catalog
        .published(tick)
        .take_while(|a| a.date > window.after)
        .collect();
    new.extend(
        late.seen_in(window.after, tick.to_utc())
            .filter_map(|slug| catalog.by_slug(slug))
            .filter(|a| a.is_published(tick) && a.date <= window.after),
    );
    new.retain(|a| {
        category_matches(&digest.categories, a)
            && category_matches(&view.subscriber.categories, a)
            && !view.recently_received.contains(&a.slug)
    });
    new.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.slug.cmp(&b.slug)));
    if new.is_empty() {
        return PlanOutcome::Skip {
            email,
            window: Some(window),
            reason: Skip::NothingNew,
        };
    }
    let over_limit = new.len().saturating_sub(digest.max_articles);
    let articles: Vec<&Article> = new.into_iter().take(digest.max_articles).collect();
    let related = pick_related(
        digest.related,
        catalog,
        &articles,
        view,
        &window,
        tick,
        related,
    );
    PlanOutcome::Send(DigestPlan {
        subscriber: view.subscriber.clone(),
        window,
        articles,
        over_limit,
        related,
    })
}

/// Up to `per_article` picks for each new article: older articles only (published by the window's start), never
/// one in this digest, none twice, none the subscriber got in their recent digests.
fn pick_related<'a>(
    per_article: usize,
    catalog: &'a Catalog,
    articles: &[&'a Article],
    view: &SubscriberView,
    window: &Window,
    tick: DateTime<FixedOffset>,
    source: &dyn RelatedSource,
) -> Vec<RelatedPick<'a>> {
    if per_article == 0 {
        return Vec::new();
    }
    let mut exclude: BTreeSet<String> = catalog
        .all()
        .iter()
        .filter(|a| !a.is_published(tick) || a.date > window.after)
        .map(|a| a.slug.clone())
        .collect();
    exclude.extend(articles.iter().map(|a| a.slug.clone()));
    exclude.extend(view.recently_received.iter().cloned());
    let mut picks = Vec::new();
    for because in articles {
        for slug in source.related(&because.slug, per_article, &exclude) {
            // A source that ignores `exclude` must not break the rules.
            if exclude.contains(&slug) {
                continue;
            }
            if let Some(article) = catalog.by_slug(&slug) {
                exclude.insert(slug);
                picks.push(RelatedPick { article, because });
            }
        }
    }
    picks
}

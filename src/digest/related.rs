//! Related-reading picks for a digest.
//!
//! [`RelatedSource`] is what the digest needs from a related-reading index: up to k articles related to one
//! article, none from an excluded set. FALLBACK: until the `related` module (text similarity blended with
//! category and tags) lands, [`SharedTopics`] ranks by editor's picks, shared category and shared tags only.
//! Replace its use in `app.rs` with the real index when it exists; the digest rules (older articles only, none
//! already in the digest, none repeated, none recently received) stay in `plan.rs` and do not change.

use std::collections::BTreeSet;

use crate::store::{Article, Catalog};

/// Up to `k` slugs related to `slug`, best first, none of them in `exclude` and never `slug` itself.
pub trait RelatedSource {
    fn related(&self, slug: &str, k: usize, exclude: &BTreeSet<String>) -> Vec<String>;
}

/// FALLBACK related reading: editor's picks first, then by shared category (2 points) and shared tags (1 point
/// each); articles sharing nothing are never related. Ties: newer first, then slug. Deterministic.
pub struct SharedTopics<'a> {
    catalog: &'a Catalog,
}

impl<'a> SharedTopics<'a> {
    pub fn new(catalog: &'a Catalog) -> Self {
        SharedTopics { catalog }
    }
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn score(of: &Article, candidate: &Article) -> u32 {
    if let Some(pos) = of.related.iter().position(|s| s == &candidate.slug) {
        return 1000 - pos as u32;
    }
    let category = match (&of.category, &candidate.category) {
        (Some(a), Some(b)) if same(a, b) => 2,
        _ => 0,
    };
    let tags = of
        .tags
        .iter()
        .filter(|t| candidate.tags.iter().any(|u| same(t, u)))
        .count() as u32;
    category + tags
}

impl RelatedSource for SharedTopics<'_> {
    fn related(&self, slug: &str, k: usize, exclude: &BTreeSet<String>) -> Vec<String> {
        let Some(of) = self.catalog.by_slug(slug) else {
            return Vec::new();
        };
        let mut scored: Vec<(u32, &Article)> = self
            .catalog
            .all()
            .iter()
            .filter(|a| a.slug != slug && !exclude.contains(&a.slug))
            .map(|a| (score(of, a), a))
            .filter(|(s, _)| *s > 0)
            .collect();
        scored.sort_by(|(sa, a), (sb, b)| {
            sb.cmp(sa)
                .then(b.date.cmp(&a.date))
                .then(a.slug.cmp(&b.slug))
        });
        scored
            .into_iter()
            .take(k)
            .map(|(_, a)| a.slug.clone())
            .collect()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Article;

    fn article(slug: &str, day: u32, category: &str, tags: &[&str]) -> Article {
        let date =
            chrono::DateTime::parse_from_rfc3339(&format!("2026-10-{day:02}T09:00:00Z")).unwrap();
        Article {
            source: format!("{slug}.md").into(),
            slug: slug.into(),
            id: slug.into(),
            title: slug.into(),
            date,
            updated: date,
            summary: String::new(),
            category: Some(category.into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            author: None,
            html: String::new(),
            text: String::new(),
            reading_minutes: 1,
            draft: false,
            related: Vec::new(),
            url: format!("https://example.com/{slug}/"),
        }
    }

    #[test]
    fn editors_picks_come_first_then_shared_topics_and_never_the_article_or_an_excluded_one() {
        let mut seed = article("seed", 20, "Tools", &["git", "rust"]);
        seed.related = vec!["pick".into()];
        let catalog = Catalog::new(vec![
            seed,
            article("pick", 1, "Career", &[]),
            article("same-category-and-tag", 2, "Tools", &["git"]),
            article("same-tag", 3, "Writing", &["rust"]),
            article("excluded", 4, "Tools", &["git", "rust"]),
            article("unrelated", 5, "Operations", &["on-call"]),
        ]);
        let exclude: BTreeSet<String> = ["excluded".to_string()].into();
        let got = SharedTopics::new(&catalog).related("seed", 10, &exclude);
        assert_eq!(got, ["pick", "same-category-and-tag", "same-tag"]);
        assert_eq!(
            SharedTopics::new(&catalog).related("seed", 1, &exclude),
            ["pick"]
        );
    }
}

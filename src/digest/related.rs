//! Related-reading picks for a digest: what the digest needs from a related-reading index.
//!
//! [`RelatedSource`] is that need: up to k articles related to one article, none from an excluded set. The
//! `related` module's `RelatedIndex` (text similarity blended with category and tags, editor's picks first)
//! implements it. The digest's own rules (older articles only, none already in the digest, none repeated, none
//! recently received) live in `plan.rs` and reach the index through `exclude`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Up to `k` slugs related to `slug`, best first, none of them in `exclude` and never `slug` itself.
pub trait RelatedSource {
    fn related(&self, slug: &str, k: usize, exclude: &BTreeSet<String>) -> Vec<String>;
}

/// A [`RelatedSource`] that remembers its answers: planning asks the same question for most subscribers of a
/// tick (the same new articles, the same recent digests to leave out), and each answer is a ranking.
pub struct Remembered<S> {
    source: S,
    answers: Mutex<HashMap<Question, Vec<String>>>,
}

/// What [`RelatedSource::related`] is asked: the article, how many, and what to leave out.
type Question = (String, usize, BTreeSet<String>);

/// Answers kept at once; past this the memory starts again (a tick rarely asks more than a few hundred).
const REMEMBERED: usize = 65_536;

impl<S: RelatedSource> Remembered<S> {
    pub fn new(source: S) -> Remembered<S> {
        Remembered {
            source,
            answers: Mutex::new(HashMap::new()),
        }
    }
}

impl<S: RelatedSource> RelatedSource for Remembered<S> {
    fn related(&self, slug: &str, k: usize, exclude: &BTreeSet<String>) -> Vec<String> {
        let key = (slug.to_string(), k, exclude.clone());
        let answers = || {
            self.answers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(known) = answers().get(&key) {
            return known.clone();
        }
        let answer = self.source.related(slug, k, exclude);
        let mut answers = answers();
        if answers.len() >= REMEMBERED {
            answers.clear();
        }
        answers.insert(key, answer.clone());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RelatedConfig;
    use crate::related::RelatedIndex;
    use crate::store::{Article, Catalog};

    fn article(slug: &str, day: u32, category: &str, tags: &[&str], text: &str) -> Article {
        let date =
            chrono::DateTime::parse_from_rfc3339(&format!("2026-10-{day:02}T09:00:00Z")).unwrap();
        Article {
            source: format!("{slug}.md").into(),
            slug: slug.into(),
            id: slug.into(),
            title: text.into(),
            date,
            updated: date,
            expires: None,
            summary: text.into(),
            summary_markdown: None,
            category: Some(category.into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            author: None,
            body: None,
            terms: crate::related::Terms::of("en", text, text, text),
            reading_minutes: 1,
            draft: false,
            related: Vec::new(),
            url: format!("https://example.com/{slug}/"),
        }
    }

    #[test]
    fn the_related_index_serves_digests_and_honours_exclusions() {
        let catalog = Catalog::new(vec![
            article(
                "seed",
                20,
                "Tools",
                &["git"],
                "git rebase and git bisect workflows",
            ),
            article(
                "close",
                2,
                "Tools",
                &["git"],
                "git bisect finds the commit that broke it",
            ),
            article(
                "also-close",
                3,
                "Tools",
                &["git"],
                "rebase workflows in git for small teams",
            ),
            article(
                "far",
                4,
                "Career",
                &["mentoring"],
                "mentoring a new lead through their first year",
            ),
        ]);
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap();
        let index = RelatedIndex::build(&catalog, now, &RelatedConfig::default());
        let all = RelatedSource::related(&index, "seed", 5, &BTreeSet::new());
        assert!(
            all.contains(&"close".to_string()) && all.contains(&"also-close".to_string()),
            "{all:?}"
        );
        assert!(
            !all.contains(&"seed".to_string()),
            "never the article itself"
        );
        let exclude: BTreeSet<String> = ["close".to_string()].into();
        let some = RelatedSource::related(&index, "seed", 5, &exclude);
        assert!(!some.contains(&"close".to_string()), "{some:?}");
        assert_eq!(
            RelatedSource::related(&index, "seed", 1, &BTreeSet::new()).len(),
            1
        );
        let remembered = Remembered::new(index);
        for _ in 0..2 {
            assert_eq!(remembered.related("seed", 5, &exclude), some);
            assert_eq!(remembered.related("seed", 5, &BTreeSet::new()), all);
        }
    }
}

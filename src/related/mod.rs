//! Related reading: for each published article, the few other articles a reader of it would want next.
//!
//! This module owns the similarity index, the top-k choice, the bytes of `related.json` ([`render_json`]), the
//! reasons behind a list ([`RelatedIndex::explain`], for `tidings related`) and the check of editor's picks
//! ([`check_picks`]). It does not read files, write `related.json` to disk or decide which articles a digest
//! contains (`app` and `digest` do).
//!
//! **The score.** Each article becomes a TF-IDF vector over its title (each word counted `title_boost` times),
//! summary and body, after lowercasing, dropping the stop words of `site.language` and Snowball-stemming; the
//! terms are counted once, when the store parses an article ([`terms`]: the text itself is not kept), and
//! weighted here (`analyze.rs`). Terms in more than half of a large store are dropped (they relate everything to
//! everything), and each vector keeps only its strongest terms. Two articles' score is a blend, between 0 and
//! 1, of the cosine of their text vectors, the cosine of their IDF-weighted tag sets and whether they share a
//! category, weighted by `[related] text_weight`, `tags_weight` and `category_weight`; tags and categories
//! compare by slug ([`crate::store::taxonomy_slug`]), as their feed folders do. Below `[related] min_score`
//! nothing is suggested, so an article with no real neighbour gets a short list, not noise.
//!
//! **Scale.** No all-pairs comparison: an inverted index maps each term (and tag) to the articles where it
//! weighs most, at most `MAX_POSTINGS` of them. An article's candidates are the articles reached through its
//! `QUERY_TERMS` strongest terms and its tags; the best `CANDIDATES` of those are scored exactly. Work per
//! article is bounded by `query terms × posting cap`, so a build is linear in the store, and so is memory (a
//! fixed number of index entries per article). Articles are scored in parallel (rayon). On a generated store
//! of 10,000 articles the index and every list take about 0.23 s on two cores, at 100,000 about 4–5 s, where
//! each query's posting lists and scattered adds into a 100,000-slot accumulator miss the cache (BENCHMARKS.md).
//!
//! **Which articles.** Only articles published at the index's `now` are ever suggested: never a draft, never
//! one dated in the future, never the article itself. For an article page (`related.json`, `tidings related`)
//! any other published article may be suggested, newer ones included: a reader arriving from a search engine on
//! an old post is well served by a newer one on the same subject, and the page is rebuilt anyway. A digest asks
//! through [`crate::digest::RelatedSource`], implemented here: one new article at a time, with the slugs it must
//! not get (`exclude`: newer than the subscriber's window, already in the digest, received recently), so it
//! gets older articles only.
//!
//! **Editor's picks** (`related: [slug, …]` in front matter) come first, in the editor's order, then computed
//! suggestions fill the list up to `[related] count`. A pick that names no article is a `check` error
//! ([`check_picks`]); a pick that is a draft or not yet published is skipped until it is published.
//!
//! **Determinism.** Term ids come from the sorted vocabulary and every score is summed in a fixed order, so the
//! same store gives the same lists and scores whatever the thread count. Equal scores are ordered by date (newer
//! first), then slug.

mod analyze;
pub mod terms;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::RelatedConfig;
use crate::store::{ArticleError, Catalog, Severity, taxonomy_slug};
use analyze::{Rows, dot};
pub use terms::Terms;

/// Terms kept per article vector (its strongest by TF-IDF weight).
const TERMS_PER_ARTICLE: usize = 64;
/// Articles kept per term (and per tag) in the inverted index: those where it weighs most.
const MAX_POSTINGS: usize = 256;
/// An article's strongest terms that look for candidates in the index (all its kept terms score them).
const QUERY_TERMS: usize = 24;
/// Candidates per article that are scored exactly, at least; more when `count` is large.
const CANDIDATES: usize = 32;

/// Errors of the `related` command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelatedError {
    #[error("no article has the slug \"{slug}\"{}", did_you_mean(.suggestion))]
    UnknownArticle {
        slug: String,
        suggestion: Option<String>,
    },
    #[error(
        "article \"{slug}\" is not published (a draft, or dated in the future), so nothing is related to it yet"
    )]
    NotPublished { slug: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!("; did you mean \"{s}\"?"))
        .unwrap_or_default()
}

/// What the index keeps of a published article: what a "Related Articles" block shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub slug: String,
    pub title: String,
    pub url: String,
    pub date: DateTime<FixedOffset>,
    pub reading_minutes: u32,
    pub category: Option<String>,
    pub tags: Vec<String>,
}

/// One suggested article with its score and the parts the score was made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion<'i> {
    pub entry: &'i Entry,
    /// The blended score, 0 to 1.
    pub score: f64,
    /// Cosine of the text vectors, 0 to 1.
    pub text: f64,
    /// Cosine of the IDF-weighted tag sets, 0 to 1.
    pub tags: f64,
    pub same_category: bool,
    pub editors_pick: bool,
}

/// Why one article is related to another, for people: what `tidings related SLUG` prints per line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub slug: String,
    pub title: String,
    pub date: String,
    pub reading_minutes: u32,
    pub score: f64,
    pub text: f64,
    /// The stems that contribute most to the text score, strongest first.
    pub shared_terms: Vec<String>,
    pub tags: f64,
    pub shared_tags: Vec<String>,
    pub shared_category: Option<String>,
    pub editors_pick: bool,
}

/// An article's related list, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub slug: String,
    pub title: String,
    pub count: usize,
    pub min_score: f64,
    pub related: Vec<Explanation>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "related reading for \"{}\" ({}): {} of at most {}, min score {:.2}",
            self.title,
            self.slug,
            self.related.len(),
            self.count,
            self.min_score
        )?;
        if self.related.is_empty() {
            writeln!(
                f,
                "  nothing scores {:.2} or more; lower [related] min_score or add tags",
                self.min_score
            )?;
        }
        for (i, e) in self.related.iter().enumerate() {
            writeln!(
                f,
                "{:>2}. {:.3}  {}  \"{}\" ({}, {} min read)",
                i + 1,
                e.score,
                e.slug,
                e.title,
                e.date,
                e.reading_minutes
            )?;
            let mut why = Vec::new();
            if e.editors_pick {
                why.push("editor's pick".to_string());
            }
            if e.shared_terms.is_empty() {
                why.push(format!("text {:.3}", e.text));
            } else {
                why.push(format!(
                    "text {:.3} ({})",
                    e.text,
                    e.shared_terms.join(", ")
                ));
            }
            if !e.shared_tags.is_empty() {
                why.push(format!("tags {:.3} ({})", e.tags, e.shared_tags.join(", ")));
            }
            if let Some(c) = &e.shared_category {
                why.push(format!("category \"{c}\""));
            }
            writeln!(f, "      {}", why.join("; "))?;
        }
        Ok(())
    }
}

/// Blend weights, normalized so scores run from 0 to 1.
#[derive(Debug, Clone, Copy)]
struct Weights {
    text: f32,
    tags: f32,
    category: f32,
}

/// The parts of one pair's score.
#[derive(Debug, Clone, Copy)]
struct Scored {
    doc: u32,
    score: f32,
    text: f32,
    tags: f32,
    same_category: bool,
    pick: bool,
}

/// The similarity index of a store's published articles; built once, queried many times (a build asks it for
/// every article, a digest for each new article of each subscriber's digest).
pub struct RelatedIndex {
    entries: Vec<Entry>,
    by_slug: HashMap<String, u32>,
    text: Rows,
    vocabulary: Vec<&'static str>,
    tags: Rows,
    tag_names: Vec<String>,
    category: Vec<Option<u32>>,
    category_names: Vec<String>,
    picks: Vec<Vec<u32>>,
    text_postings: Vec<Vec<(u32, f32)>>,
    tag_postings: Vec<Vec<(u32, f32)>>,
    weights: Weights,
    count: usize,
    min_score: f32,
}

impl fmt::Debug for RelatedIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelatedIndex")
            .field("articles", &self.entries.len())
            .field("terms", &self.vocabulary.len())
            .field("tags", &self.tag_names.len())
            .field("categories", &self.category_names.len())
            .finish_non_exhaustive()
    }
}

/// Per-thread scratch space of a query: a score accumulator over all articles, which of them it reached (a flag
/// per article and the list of them, in the order first reached), and the query's text vector spread over the
/// whole vocabulary (zero elsewhere) for exact scoring. Everything is back to zero between queries.
struct Scratch {
    slots: Vec<Slot>,
    /// `first[..n]` are the `n` articles reached; one slot more, written before it is known to be needed.
    first: Vec<u32>,
    /// `reached[..m]`: the reached articles with a positive score, as [`rank_key`]s; one slot more, as `first`.
    reached: Vec<u64>,
    dense: Vec<f32>,
}

/// One article's accumulated approximate score in a query and whether the query reached it: side by side, so
/// the posting walk touches one place (and checks one bound) per posting.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    acc: f32,
    seen: bool,
}

impl Scratch {
    fn new(index: &RelatedIndex) -> Scratch {
        let n = index.entries.len();
        Scratch {
            slots: vec![Slot::default(); n],
            first: vec![0; n + 1],
            reached: vec![0; n + 1],
            dense: vec![0.0; index.vocabulary.len()],
        }
    }
}

/// Article `d` reached with approximate score `score` (positive), as one integer that sorts best first: the
/// score's bits inverted in the high half (a positive float orders as its bits do), the article in the low half
/// (on equal scores, the lower article first). Integers select many times faster than pairs with a comparator.
fn rank_key(d: u32, score: f32) -> u64 {
    (u64::from(!score.to_bits()) << 32) | u64::from(d)
}

/// Sorted unique keys of `values` and each value's id in them.
fn intern<'a>(
    values: impl Iterator<Item = &'a str> + Clone,
) -> (Vec<String>, HashMap<String, u32>) {
    let mut names: Vec<String> = values.map(str::to_owned).collect();
    names.sort_unstable();
    names.dedup();
    let ids = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as u32))
        .collect();
    (names, ids)
}

/// The `n` entries of a row with the largest weights (ties: lower term id), in term order.
fn strongest((terms, weights): (&[u32], &[f32]), n: usize) -> Vec<(u32, f32)> {
    let mut row: Vec<(u32, f32)> = terms.iter().copied().zip(weights.iter().copied()).collect();
    if row.len() > n {
        row.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        row.truncate(n);
        row.sort_unstable_by_key(|e| e.0);
    }
    row
}

fn postings(rows: &Rows, vocabulary_len: usize, cap: usize) -> Vec<Vec<(u32, f32)>> {
    let mut sizes = vec![0usize; vocabulary_len];
    for &t in &rows.terms {
        sizes[t as usize] += 1;
    }
    let mut lists: Vec<Vec<(u32, f32)>> = sizes.into_iter().map(Vec::with_capacity).collect();
    for doc in 0..rows.len() {
        let (terms, weights) = rows.row(doc);
        for (&t, &w) in terms.iter().zip(weights) {
            lists[t as usize].push((doc as u32, w));
        }
    }
    lists.par_iter_mut().for_each(|list| {
        if list.len() > cap {
            // Keep the articles where the term weighs most; equal weights by article order.
            list.select_nth_unstable_by(cap - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            list.truncate(cap);
            list.sort_unstable_by_key(|e| e.0);
        }
        list.shrink_to_fit();
    });
    lists
}

impl RelatedIndex {
    /// Indexes the articles of `catalog` published at `now` (their terms were counted with `site.language`'s
    /// stemmer and stop words when they were parsed).
    pub fn build(
        catalog: &Catalog,
        now: DateTime<FixedOffset>,
        config: &RelatedConfig,
    ) -> RelatedIndex {
        let published: Vec<_> = catalog.published(now).collect();
        let entries: Vec<Entry> = published
            .iter()
            .map(|a| Entry {
                slug: a.slug.clone(),
                title: a.title.clone(),
                url: a.url.clone(),
                date: a.date,
                reading_minutes: a.reading_minutes,
                category: a.category.clone(),
                tags: a.tags.clone(),
            })
            .collect();
        let by_slug: HashMap<String, u32> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.slug.clone(), i as u32))
            .collect();

        let docs: Vec<&Terms> = published.iter().map(|a| &a.terms).collect();
        let text = analyze::text_vectors(&docs, config.title_boost as f32, TERMS_PER_ARTICLE);

        let tag_keys: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                e.tags
                    .iter()
                    .map(|t| taxonomy_slug(t))
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .collect();
        let (tag_names, tag_ids) = intern(tag_keys.iter().flatten().map(String::as_str));
        let tag_rows: Vec<Vec<u32>> = tag_keys
            .iter()
            .map(|ts| ts.iter().map(|t| tag_ids[t]).collect())
            .collect();
        let tags = analyze::label_vectors(&tag_rows, tag_names.len());

        let category_keys: Vec<Option<String>> = entries
            .iter()
            .map(|e| {
                e.category
                    .as_deref()
                    .map(taxonomy_slug)
                    .filter(|c| !c.is_empty())
            })
            .collect();
        let (category_names, category_ids) =
            intern(category_keys.iter().flatten().map(String::as_str));
        let category = category_keys
            .iter()
            .map(|c| c.as_ref().map(|c| category_ids[c]))
            .collect();

        let picks = published
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut seen = HashSet::new();
                a.related
                    .iter()
                    .filter_map(|slug| by_slug.get(slug.trim()).copied())
                    .filter(|&j| j as usize != i && seen.insert(j))
                    .collect()
            })
            .collect();

        let text_postings = postings(&text.rows, text.vocabulary.len(), MAX_POSTINGS);
        let tag_postings = postings(&tags, tag_names.len(), MAX_POSTINGS);
        let sum = (config.text_weight + config.tags_weight + config.category_weight)
            .max(f64::MIN_POSITIVE);
        RelatedIndex {
            entries,
            by_slug,
            text: text.rows,
            vocabulary: text.vocabulary,
            tags,
            tag_names,
            category,
            category_names,
            picks,
            text_postings,
            tag_postings,
            weights: Weights {
                text: (config.text_weight / sum) as f32,
                tags: (config.tags_weight / sum) as f32,
                category: (config.category_weight / sum) as f32,
            },
            count: config.count,
            min_score: config.min_score as f32,
        }
    }

    /// The number of indexed (published) articles.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `[related] count`: the length of a full list.
    pub fn count(&self) -> usize {
        self.count
    }

    /// A published article by slug.
    pub fn entry(&self, slug: &str) -> Option<&Entry> {
        self.by_slug.get(slug).map(|&i| &self.entries[i as usize])
    }

    /// Every published article, newest first (the catalog's order).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn score_pair(&self, a: u32, b: u32, pick: bool) -> Scored {
        let text = dot(self.text.row(a as usize), self.text.row(b as usize)).min(1.0);
        self.blend(a, b, text, pick)
    }

    fn blend(&self, a: u32, b: u32, text: f32, pick: bool) -> Scored {
        let tags = dot(self.tags.row(a as usize), self.tags.row(b as usize)).min(1.0);
        let same_category = matches!(
            (self.category[a as usize], self.category[b as usize]),
            (Some(x), Some(y)) if x == y
        );
        let w = self.weights;
        let score = w.text * text + w.tags * tags + if same_category { w.category } else { 0.0 };
        Scored {
            doc: b,
            score,
            text,
            tags,
            same_category,
            pick,
        }
    }

    /// [`RelatedIndex::score_pair`] of a computed suggestion, the text cosine summed from `dense` (article `a`'s
    /// text vector over the whole vocabulary): the same terms multiplied and added in the same (term) order, so
    /// the same bits, without a merge's branches.
    fn score_dense(&self, dense: &[f32], a: u32, b: u32) -> Scored {
        let (terms, weights) = self.text.row(b as usize);
        let mut text = 0.0f32;
        for (&t, &w) in terms.iter().zip(weights) {
            // A term `a` lacks adds +0.0, which leaves the (non-negative) sum's bits as they are.
            text += dense[t as usize] * w;
        }
        self.blend(a, b, text.min(1.0), false)
    }

    /// The best computed (not picked) suggestions for article `q`, at most `limit`, each allowed by `allow`,
    /// scoring at least `min_score`, best first.
    fn computed(
        &self,
        q: u32,
        limit: usize,
        scratch: &mut Scratch,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<Scored> {
        let Scratch {
            slots,
            first,
            reached,
            dense,
        } = scratch;
        let w = self.weights;
        let mut n_reached = 0;
        for (rows, postings, weight) in [
            (&self.text, &self.text_postings, w.text),
            (&self.tags, &self.tag_postings, w.tags),
        ] {
            if weight <= 0.0 {
                continue;
            }
            for (t, wq) in strongest(rows.row(q as usize), QUERY_TERMS) {
                for &(d, wd) in &postings[t as usize] {
                    let slot = &mut slots[d as usize];
                    slot.acc += weight * wq * wd;
                    // Noted the first time without a branch ("first time?" mispredicts half the time): always
                    // written, kept only when new. At most every article once, so `first` has room.
                    first[n_reached] = d;
                    n_reached += usize::from(!slot.seen);
                    slot.seen = true;
                }
            }
        }
        // Each reached article once, with a positive score (an article is never its own suggestion); kept
        // without a branch, as above.
        let mut n_positive = 0;
        for &d in &first[..n_reached] {
            let slot = &mut slots[d as usize];
            reached[n_positive] = rank_key(d, slot.acc);
            n_positive += usize::from(slot.acc > 0.0 && d != q);
            *slot = Slot::default();
        }
        let reached = &mut reached[..n_positive];

        // The best reached articles by their approximate score; `allow` is asked only about those, unless it
        // turns too many of them down (a digest's "older than" filter), then about every reached article.
        let wanted = CANDIDATES.max(limit * 4);
        let allowed = |key: &u64| allow(*key as u32);
        let mut candidates: Vec<u64> = if reached.len() > 2 * wanted {
            reached.select_nth_unstable(2 * wanted - 1);
            let mut top: Vec<u64> = reached[..2 * wanted].to_vec();
            top.retain(allowed);
            if top.len() >= wanted {
                top
            } else {
                reached.iter().copied().filter(allowed).collect()
            }
        } else {
            reached.iter().copied().filter(allowed).collect()
        };
        if candidates.len() > wanted {
            candidates.select_nth_unstable(wanted - 1);
            candidates.truncate(wanted);
        }
        let (terms, weights) = self.text.row(q as usize);
        for (&t, &w) in terms.iter().zip(weights) {
            dense[t as usize] = w;
        }
        let mut scored: Vec<Scored> = candidates
            .into_iter()
            .map(|key| self.score_dense(dense, q, key as u32))
            .filter(|s| s.score >= self.min_score && s.score > 0.0)
            .collect();
        for &t in terms {
            dense[t as usize] = 0.0;
        }
        self.sort(&mut scored);
        scored.truncate(limit);
        scored
    }

    /// Best first; equal scores by date (newer first), then slug.
    fn sort(&self, list: &mut [Scored]) {
        list.sort_by(|a, b| {
            b.score.total_cmp(&a.score).then_with(|| {
                let (ea, eb) = (&self.entries[a.doc as usize], &self.entries[b.doc as usize]);
                eb.date.cmp(&ea.date).then_with(|| ea.slug.cmp(&eb.slug))
            })
        });
    }

    /// Article `q`'s list: its published picks first, then computed suggestions, `count` in all.
    fn list(&self, q: u32, scratch: &mut Scratch) -> Vec<Scored> {
        let mut list: Vec<Scored> = self.picks[q as usize]
            .iter()
            .take(self.count)
            .map(|&p| self.score_pair(q, p, true))
            .collect();
        if list.len() < self.count {
            let picked: Vec<u32> = list.iter().map(|s| s.doc).collect();
            let rest = self.count - list.len();
            list.extend(self.computed(q, rest, scratch, &|d| !picked.contains(&d)));
        }
        list
    }

    fn suggestion(&self, s: Scored) -> Suggestion<'_> {
        Suggestion {
            entry: &self.entries[s.doc as usize],
            score: f64::from(s.score),
            text: f64::from(s.text),
            tags: f64::from(s.tags),
            same_category: s.same_category,
            editors_pick: s.pick,
        }
    }

    /// The related list of one published article (picks first), or `None` for a slug that is not published.
    pub fn related(&self, slug: &str) -> Option<Vec<Suggestion<'_>>> {
        let &q = self.by_slug.get(slug)?;
        let mut scratch = Scratch::new(self);
        Some(
            self.list(q, &mut scratch)
                .into_iter()
                .map(|s| self.suggestion(s))
                .collect(),
        )
    }

    /// Every published article's related list, in the catalog's order; computed in parallel.
    pub fn all(&self) -> Vec<(&Entry, Vec<Suggestion<'_>>)> {
        self.all_scored()
            .into_iter()
            .zip(&self.entries)
            .map(|(list, entry)| {
                (
                    entry,
                    list.into_iter().map(|s| self.suggestion(s)).collect(),
                )
            })
            .collect()
    }

    /// [`RelatedIndex::all`] by article number.
    fn all_scored(&self) -> Vec<Vec<Scored>> {
        let n = self.entries.len();
        (0..n as u32)
            .into_par_iter()
            .with_min_len(256)
            .map_init(|| Scratch::new(self), |scratch, q| self.list(q, scratch))
            .collect()
    }

    /// One article's related list with the reasons behind each score.
    pub fn explain(&self, slug: &str) -> Option<Report> {
        let &q = self.by_slug.get(slug)?;
        let list = self.related(slug)?;
        let from = &self.entries[q as usize];
        let related = list
            .iter()
            .map(|s| {
                let d = self.by_slug[&s.entry.slug];
                Explanation {
                    slug: s.entry.slug.clone(),
                    title: s.entry.title.clone(),
                    date: s.entry.date.format("%Y-%m-%d").to_string(),
                    reading_minutes: s.entry.reading_minutes,
                    score: round(s.score),
                    text: round(s.text),
                    shared_terms: self.shared_terms(q, d, 5),
                    tags: round(s.tags),
                    shared_tags: self.shared(&self.tags, &self.tag_names, q, d),
                    shared_category: from.category.clone().filter(|_| s.same_category),
                    editors_pick: s.editors_pick,
                }
            })
            .collect();
        Some(Report {
            slug: from.slug.clone(),
            title: from.title.clone(),
            count: self.count,
            min_score: f64::from(self.min_score),
            related,
        })
    }

    /// The `limit` stems contributing most to the text score of `a` and `b`.
    fn shared_terms(&self, a: u32, b: u32, limit: usize) -> Vec<String> {
        let (ta, wa) = self.text.row(a as usize);
        let (tb, wb) = self.text.row(b as usize);
        let mut shared: Vec<(u32, f32)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < ta.len() && j < tb.len() {
            match ta[i].cmp(&tb[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared.push((ta[i], wa[i] * wb[j]));
                    i += 1;
                    j += 1;
                }
            }
        }
        shared.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        shared
            .into_iter()
            .take(limit)
            .map(|(t, _)| self.vocabulary[t as usize].to_owned())
            .collect()
    }

    fn shared(&self, rows: &Rows, names: &[String], a: u32, b: u32) -> Vec<String> {
        let (ta, _) = rows.row(a as usize);
        let (tb, _) = rows.row(b as usize);
        ta.iter()
            .filter(|t| tb.contains(t))
            .map(|&t| names[t as usize].clone())
            .collect()
    }

    /// An error for a slug that has no related list: unknown (with the closest known slug), or not published.
    pub fn missing(&self, catalog: &Catalog, slug: &str) -> RelatedError {
        if catalog.by_slug(slug).is_some() {
            return RelatedError::NotPublished { slug: slug.into() };
        }
        let suggestion = catalog
            .all()
            .iter()
            .map(|a| (edit_distance(slug, &a.slug), &a.slug))
            .filter(|(d, _)| *d <= slug.chars().count().max(3) / 3)
            .min()
            .map(|(_, s)| s.clone());
        RelatedError::UnknownArticle {
            slug: slug.into(),
            suggestion,
        }
    }
}

/// The digest's path to related reading: up to `k` articles for one new article, its editor's picks first (in the
/// editor's order), then computed suggestions, best first; never the article itself nor one in `exclude`. The
/// digest's rules arrive as `exclude` (articles newer than the subscriber's window, already in the digest or
/// received recently). With nothing excluded and `k` = `[related] count` this is the article's own list.
impl crate::digest::RelatedSource for RelatedIndex {
    fn related(&self, slug: &str, k: usize, exclude: &BTreeSet<String>) -> Vec<String> {
        let Some(&q) = self.by_slug.get(slug) else {
            return Vec::new();
        };
        let allowed = |d: u32| d != q && !exclude.contains(&self.entries[d as usize].slug);
        // Picks are unique and never the article itself (see `build`).
        let mut chosen: Vec<u32> = self.picks[q as usize]
            .iter()
            .copied()
            .filter(|&p| allowed(p))
            .take(k)
            .collect();
        if chosen.len() < k {
            let rest = k - chosen.len();
            let mut scratch = Scratch::new(self);
            let computed = self.computed(q, rest, &mut scratch, &|d| {
                allowed(d) && !chosen.contains(&d)
            });
            chosen.extend(computed.into_iter().map(|s| s.doc));
        }
        chosen
            .into_iter()
            .map(|d| self.entries[d as usize].slug.clone())
            .collect()
    }
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// One item of `related.json` but its score: what the file says of an article wherever it is suggested.
#[derive(Serialize)]
struct JsonItem<'a> {
    slug: &'a str,
    title: &'a str,
    url: &'a str,
    date: String,
    reading_minutes: u32,
}

/// `related.json`: an object from every published article's slug (sorted) to its list of
/// `{slug, title, url, date, reading_minutes, score}`, best first; one article per line so a diff of two builds
/// reads well. The same index gives the same bytes.
pub fn render_json(index: &RelatedIndex) -> Vec<u8> {
    // Each article's item up to its score (`{"slug":…,"reading_minutes":6,"score":`) is written once, however
    // many lists suggest it.
    let heads: Vec<Vec<u8>> = index
        .entries
        .par_iter()
        .map(|e| {
            let mut head = serde_json::to_vec(&JsonItem {
                slug: &e.slug,
                title: &e.title,
                url: &e.url,
                date: e.date.to_rfc3339_opts(SecondsFormat::Secs, true),
                reading_minutes: e.reading_minutes,
            })
            .expect("writing JSON to a Vec cannot fail");
            head.pop(); // its closing brace
            head.extend_from_slice(b",\"score\":");
            head
        })
        .collect();
    let mut lists: Vec<(u32, Vec<Scored>)> = (0..).zip(index.all_scored()).collect();
    lists.par_sort_unstable_by(|a, b| {
        index.entries[a.0 as usize]
            .slug
            .cmp(&index.entries[b.0 as usize].slug)
    });
    // Each article's line on its own (in parallel: at 10,000 articles the file is about 11 MB), then joined.
    let lines: Vec<Vec<u8>> = lists
        .par_iter()
        .map(|(q, list)| {
            let mut line = Vec::with_capacity(1200);
            serde_json::to_writer(&mut line, &index.entries[*q as usize].slug)
                .expect("writing JSON to a Vec cannot fail");
            line.extend_from_slice(b": [");
            for (i, s) in list.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(&heads[s.doc as usize]);
                serde_json::to_writer(&mut line, &round(f64::from(s.score)))
                    .expect("writing JSON to a Vec cannot fail");
                line.push(b'}');
            }
            line.push(b']');
            line
        })
        .collect();
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 2).sum::<usize>() + 4);
    out.extend_from_slice(b"{");
    for (i, line) in lines.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"\n}\n");
    out
}

/// Editor's picks that name no article of the store, as `path:line:col: error:` problems. `read` gives a file's
/// text (to find the line of the pick); it is only called for files with a bad pick.
pub fn check_picks(catalog: &Catalog, read: impl Fn(&Path) -> Option<String>) -> Vec<ArticleError> {
    let mut errors = Vec::new();
    for article in catalog.all() {
        let unknown: Vec<&String> = article
            .related
            .iter()
            .filter(|slug| catalog.by_slug(slug.trim()).is_none())
            .collect();
        if unknown.is_empty() {
            continue;
        }
        let text = read(&article.source);
        for slug in unknown {
            let (line, col) = text.as_deref().map_or((1, 1), |t| locate_pick(t, slug));
            errors.push(ArticleError {
                path: article.source.clone(),
                severity: Severity::Error,
                line,
                col,
                message: format!(
                    "editor's pick \"{slug}\" in `related:` is not the slug of any article; fix the slug or remove it"
                ),
            });
        }
    }
    errors.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    errors
}

/// Line and column (1-based) of `slug` in the `related:` entry of a file's front matter; the `related:` key
/// itself when the slug is not found verbatim, 1:1 when neither is.
fn locate_pick(text: &str, slug: &str) -> (usize, usize) {
    let mut key_at = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if key_at.is_none() {
            if trimmed.starts_with("related")
                && trimmed["related".len()..]
                    .trim_start()
                    .starts_with([':', '='])
            {
                key_at = Some((i + 1, line.len() - trimmed.len() + 1));
            } else {
                continue;
            }
        }
        if let Some(byte) = find_word(line, slug) {
            return (i + 1, line[..byte].chars().count() + 1);
        }
        if i + 1 > key_at.map_or(0, |k| k.0) && (trimmed == "---" || trimmed == "+++") {
            break;
        }
    }
    key_at.unwrap_or((1, 1))
}

/// The byte offset of `word` in `line` where it is not part of a longer slug.
fn find_word(line: &str, word: &str) -> Option<usize> {
    let is_slug_char = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    line.match_indices(word).map(|(i, _)| i).find(|&i| {
        !line[..i].chars().next_back().is_some_and(is_slug_char)
            && !line[i + word.len()..]
                .chars()
                .next()
                .is_some_and(is_slug_char)
    })
}

#[cfg(test)]
mod tests;

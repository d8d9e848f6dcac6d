//! Text → weighted term vectors: tokenizing, stop words and stemming (used when an article is parsed, by
//! [`super::terms`]), then TF-IDF weighting and pruning of the counted terms.
//!
//! Term ids of the vectors are ranks in the sorted list of the store's stems, so they depend only on the store,
//! never on the number of threads or on the order stems were met: the floating-point sums that follow run in
//! the same order on every machine.

use std::borrow::Cow;

use rayon::prelude::*;
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashSet;

use super::terms::Terms;

/// A term found in more than this share of the articles says little about any pair of them (the cap on overly
/// common terms). Only applied once the store has more than [`MIN_DOCS_FOR_DF_CAP`] articles: in a store of
/// five, "half of them" is no evidence of anything.
const MAX_DF_RATIO: f64 = 0.5;
const MIN_DOCS_FOR_DF_CAP: usize = 20;

/// Lowercase → stem, with the site language's stop words dropped.
pub struct Analyzer {
    stemmer: Option<Stemmer>,
    stop_words: FxHashSet<&'static str>,
}

impl Analyzer {
    /// The analyzer for a `site.language` tag (`en`, `en-US`, `pt_BR`). A language without a Snowball stemmer
    /// is not stemmed; one without a stop-word list keeps every word (IDF and the common-term cap still apply).
    pub fn for_language(language: &str) -> Analyzer {
        let primary = language
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let algorithm = match primary.as_str() {
            "ar" => Some(Algorithm::Arabic),
            "da" => Some(Algorithm::Danish),
            "nl" => Some(Algorithm::Dutch),
            "en" => Some(Algorithm::English),
            "fi" => Some(Algorithm::Finnish),
            "fr" => Some(Algorithm::French),
            "de" => Some(Algorithm::German),
            "el" => Some(Algorithm::Greek),
            "hu" => Some(Algorithm::Hungarian),
            "it" => Some(Algorithm::Italian),
            "no" | "nb" | "nn" => Some(Algorithm::Norwegian),
            "pt" => Some(Algorithm::Portuguese),
            "ro" => Some(Algorithm::Romanian),
            "ru" => Some(Algorithm::Russian),
            "es" => Some(Algorithm::Spanish),
            "sv" => Some(Algorithm::Swedish),
            "ta" => Some(Algorithm::Tamil),
            "tr" => Some(Algorithm::Turkish),
            _ => None,
        };
        let stop_key = match primary.as_str() {
            "nb" | "nn" => "no",
            other => other,
        };
        Analyzer {
            stemmer: algorithm.map(Stemmer::create),
            stop_words: stop_words::lookup(stop_key)
                .unwrap_or_default()
                .iter()
                .copied()
                .collect(),
        }
    }

    pub fn is_stop_word(&self, lower: &str) -> bool {
        self.stop_words.contains(lower)
    }

    /// The term (stem) of a lowercase word.
    pub fn stem<'a>(&self, lower: &'a str) -> Cow<'a, str> {
        match &self.stemmer {
            Some(stemmer) => stemmer.stem(lower),
            None => Cow::Borrowed(lower),
        }
    }

    /// The terms of `text` in order.
    #[cfg(test)]
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_word(text, |word| {
            if !self.is_stop_word(word) {
                out.push(self.stem(word).into_owned());
            }
        });
        out
    }
}

/// Calls `f` with every word of `text`, lowercased: runs of letters and digits, at least two characters long,
/// not a plain number. Punctuation, Markdown leftovers and URLs' separators split words. ASCII is scanned a byte
/// at a time (most text of most blogs); other characters go through Unicode's rules.
pub fn for_each_word(text: &str, mut f: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut word = String::new();
    let mut chars = 0usize;
    let mut digits_only = true;
    let mut emit = |word: &mut String, chars: &mut usize, digits_only: &mut bool| {
        if *chars >= 2 && !*digits_only {
            f(word);
        }
        word.clear();
        *chars = 0;
        *digits_only = true;
    };
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b.is_ascii_alphanumeric() {
                word.push(b.to_ascii_lowercase() as char);
                chars += 1;
                digits_only &= b.is_ascii_digit();
            } else if chars > 0 {
                emit(&mut word, &mut chars, &mut digits_only);
            }
            i += 1;
        } else {
            let c = text[i..].chars().next().expect("i is at a char boundary");
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
                chars += 1;
                digits_only &= c.is_numeric();
            } else if chars > 0 {
                emit(&mut word, &mut chars, &mut digits_only);
            }
            i += c.len_utf8();
        }
    }
    if chars > 0 {
        emit(&mut word, &mut chars, &mut digits_only);
    }
}

/// Sparse vectors in one flat store (compressed rows): row `i` is `terms[offsets[i]..offsets[i + 1]]`, sorted
/// by term id, with the matching `weights`.
#[derive(Debug, Default)]
pub(super) struct Rows {
    pub offsets: Vec<u32>,
    pub terms: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Rows {
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        (&self.terms[a..b], &self.weights[a..b])
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn from_rows(rows: Vec<Vec<(u32, f32)>>) -> Rows {
        let total: usize = rows.iter().map(Vec::len).sum();
        let mut out = Rows {
            offsets: Vec::with_capacity(rows.len() + 1),
            terms: Vec::with_capacity(total),
            weights: Vec::with_capacity(total),
        };
        out.offsets.push(0);
        for row in rows {
            for (t, w) in row {
                out.terms.push(t);
                out.weights.push(w);
            }
            out.offsets
                .push(u32::try_from(out.terms.len()).expect("fewer than 4 billion index entries"));
        }
        out
    }
}

/// Dot product of two rows sorted by term id.
pub(super) fn dot(a: (&[u32], &[f32]), b: (&[u32], &[f32])) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0f32);
    while i < a.0.len() && j < b.0.len() {
        match a.0[i].cmp(&b.0[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a.1[i] * b.1[j];
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// The analyzed text of a store: one unit-length TF-IDF vector per article (pruned to its strongest terms) and
/// the sorted vocabulary of the terms the vectors hold, which their term ids index.
pub(super) struct TextVectors {
    pub rows: Rows,
    pub vocabulary: Vec<&'static str>,
}

/// Weights every article's terms (counted at parse time, [`super::terms`]): `tf = title_boost · title count +
/// other count`, weight `(1 + ln tf) · idf`, with `idf = ln((n + 1) / (df + 1)) + 1` (the smoothed form
/// scikit-learn uses), normalized to unit length over all the article's terms, then pruned to its `keep`
/// strongest terms found in at least two articles (a term in one article relates it to nothing). Pruning bounds
/// the index at `keep` entries per article, so memory grows linearly with the store; the counts are read twice
/// (document frequencies, then weights) rather than unpacked for every article at once.
///
/// Term ids are ranks in the sorted stems of the store (then renumbered, in the same order, to the terms the
/// vectors keep), so they, and every floating-point sum in id order, depend only on the store.
pub(super) fn text_vectors(docs: &[&Terms], title_boost: f32, keep: usize) -> TextVectors {
    let boost = title_boost.max(0.0);
    let tf = move |title: u32, other: u32| boost * title as f32 + other as f32;
    let width = docs
        .par_iter()
        .filter_map(|t| t.iter().last().map(|e| e.0 as usize + 1))
        .max()
        .unwrap_or(0);
    let n = docs.len();
    let df: Vec<u32> = docs
        .par_chunks(2048)
        .map(|chunk| {
            let mut df = vec![0u32; width];
            for terms in chunk {
                for (t, title, other) in terms.iter() {
                    if tf(title, other) > 0.0 {
                        df[t as usize] += 1;
                    }
                }
            }
            df
        })
        .reduce(
            || vec![0u32; width],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    // Ranks of the stems in use, in stem order.
    let used: Vec<u32> = (0..width as u32).filter(|&t| df[t as usize] > 0).collect();
    let mut named: Vec<(&'static str, u32)> = super::terms::names(used.iter().copied())
        .into_iter()
        .zip(used)
        .collect();
    named.par_sort_unstable();
    let mut rank = vec![u32::MAX; width];
    for (r, &(_, t)) in named.iter().enumerate() {
        rank[t as usize] = r as u32;
    }
    let df_ranked: Vec<u32> = named.iter().map(|&(_, t)| df[t as usize]).collect();
    drop(df);
    let max_df = if n > MIN_DOCS_FOR_DF_CAP {
        (n as f64 * MAX_DF_RATIO) as u32
    } else {
        u32::MAX
    };
    let idf: Vec<f32> = df_ranked
        .iter()
        .map(|&d| (((n as f64 + 1.0) / (d as f64 + 1.0)).ln() + 1.0) as f32)
        .collect();

    let mut rows: Vec<Vec<(u32, f32)>> = docs
        .par_iter()
        .with_min_len(64)
        .map(|terms| {
            let mut weighted: Vec<(u32, f32)> = terms
                .iter()
                .map(|(t, title, other)| (rank[t as usize], tf(title, other)))
                .filter(|&(t, tf)| tf > 0.0 && df_ranked[t as usize] <= max_df)
                .map(|(t, tf)| (t, sublinear(tf) * idf[t as usize]))
                .collect();
            weighted.sort_unstable_by_key(|e| e.0);
            let norm = weighted.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
            weighted.retain(|&(t, _)| df_ranked[t as usize] >= 2);
            if weighted.len() > keep {
                weighted.select_nth_unstable_by(keep - 1, |a, b| {
                    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                });
                weighted.truncate(keep);
            }
            weighted.sort_unstable_by_key(|e| e.0);
            if norm > 0.0 {
                for e in &mut weighted {
                    e.1 /= norm;
                }
            }
            // Every article's row is alive at once: none may keep the room of all its terms.
            weighted.shrink_to_fit();
            weighted
        })
        .collect();

    // Only the terms some vector keeps, renumbered in the same order (so sums and ties are unchanged).
    let mut kept = vec![u32::MAX; named.len()];
    for row in &rows {
        for &(t, _) in row {
            kept[t as usize] = 0;
        }
    }
    let mut vocabulary = Vec::new();
    for (r, id) in kept.iter_mut().enumerate() {
        if *id == 0 {
            *id = vocabulary.len() as u32;
            vocabulary.push(named[r].0);
        }
    }
    rows.par_iter_mut().for_each(|row| {
        for e in row {
            e.0 = kept[e.0 as usize];
        }
    });
    TextVectors {
        rows: Rows::from_rows(rows),
        vocabulary,
    }
}

/// `1 + ln tf` for a term seen at least once; a fraction of one (a title word with `title_boost` < 1) counts
/// as itself, so a weight never turns negative.
fn sublinear(tf: f32) -> f32 {
    if tf >= 1.0 { 1.0 + tf.ln() } else { tf }
}

/// Unit-length IDF-weighted vectors of a set of labels per article (tags): two articles' similarity is then
/// the cosine of their tag sets, where a rare shared tag counts for more than a common one.
pub(super) fn label_vectors(labels: &[Vec<u32>], vocabulary_len: usize) -> Rows {
    let n = labels.len();
    let mut df = vec![0u32; vocabulary_len];
    for row in labels {
        for &t in row {
            df[t as usize] += 1;
        }
    }
    let rows = labels
        .iter()
        .map(|row| {
            let mut weighted: Vec<(u32, f32)> = row
                .iter()
                .map(|&t| {
                    (
                        t,
                        (((n as f64 + 1.0) / (df[t as usize] as f64 + 1.0)).ln() + 1.0) as f32,
                    )
                })
                .collect();
            weighted.sort_unstable_by_key(|e| e.0);
            weighted.dedup_by_key(|e| e.0);
            let norm = weighted.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
            if norm > 0.0 {
                for e in &mut weighted {
                    e.1 /= norm;
                }
            }
            weighted
        })
        .collect();
    Rows::from_rows(rows)
}

//! Text → weighted term vectors: tokenizing, stop words, stemming, TF-IDF weighting and pruning.
//!
//! Articles are analyzed in parallel in chunks, each with its own small vocabulary of words (so no lock is
//! shared between threads); the chunk vocabularies are then merged, each distinct word is stemmed once, and
//! term ids are ranks in the sorted list of stems, so they depend only on the store, never on the number of
//! threads or on how the work was split: the floating-point sums that follow run in the same order on every
//! machine.

use std::borrow::Cow;

use rayon::prelude::*;
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::{FxHashMap, FxHashSet};

/// A term found in more than this share of the articles says little about any pair of them (the cap on overly
/// common terms). Only applied once the store has more than [`MIN_DOCS_FOR_DF_CAP`] articles: in a store of
/// five, "half of them" is no evidence of anything.
const MAX_DF_RATIO: f64 = 0.5;
const MIN_DOCS_FOR_DF_CAP: usize = 20;

/// The text of one article as the analyzer sees it.
pub(super) struct DocText<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub body: &'a str,
}

/// Lowercase → stem, with the site language's stop words dropped.
pub(super) struct Analyzer {
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
pub(super) fn for_each_word(text: &str, mut f: impl FnMut(&str)) {
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
/// the sorted vocabulary its term ids index.
pub(super) struct TextVectors {
    pub rows: Rows,
    pub vocabulary: Vec<String>,
}

/// Word counts of one chunk of articles, with chunk-local word ids.
struct Chunk {
    /// Lowercase words, unique within the chunk; stop words are left out.
    words: Vec<String>,
    docs: Vec<Vec<(u32, f32)>>,
}

const STOP: u32 = u32::MAX;

/// Articles per analysis chunk: a function of the store's size only, never of the thread count, so the work
/// (and every floating-point sum) is the same on every machine. Large enough that each distinct word is
/// looked up in few chunks, small enough to spread over the cores.
fn chunk_size(n: usize) -> usize {
    (n / 64).clamp(1024, 8192)
}

fn analyze_chunk(analyzer: &Analyzer, docs: &[DocText<'_>], title_boost: f32) -> Chunk {
    // Lowercase word → local word id (or STOP), so each word is checked against the stop words once per chunk.
    let mut ids: FxHashMap<String, u32> = FxHashMap::default();
    let mut words: Vec<String> = Vec::new();
    let mut counts: FxHashMap<u32, f32> = FxHashMap::default();
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        counts.clear();
        for (text, weight) in [
            (doc.title, title_boost),
            (doc.summary, 1.0),
            (doc.body, 1.0),
        ] {
            if weight <= 0.0 {
                continue;
            }
            for_each_word(text, |word| {
                let id = match ids.get(word) {
                    Some(&id) => id,
                    None => {
                        let id = if analyzer.is_stop_word(word) {
                            STOP
                        } else {
                            words.push(word.to_owned());
                            u32::try_from(words.len() - 1)
                                .expect("fewer than 4 billion words in a chunk")
                        };
                        ids.insert(word.to_owned(), id);
                        id
                    }
                };
                if id != STOP {
                    *counts.entry(id).or_default() += weight;
                }
            });
        }
        let mut row: Vec<(u32, f32)> = counts.iter().map(|(&t, &c)| (t, c)).collect();
        row.sort_unstable_by_key(|e| e.0);
        out.push(row);
    }
    Chunk { words, docs: out }
}

/// Analyzes every article and weights its terms: `(1 + ln tf) · idf`, with `idf = ln((n + 1) / (df + 1)) + 1`
/// (the smoothed form scikit-learn uses), normalized to unit length over all the article's terms, then pruned to
/// its `keep` strongest terms found in at least two articles (a term in one article relates it to nothing).
/// Pruning bounds the index at `keep` entries per article, so memory grows linearly with the store.
pub(super) fn text_vectors(
    analyzer: &Analyzer,
    docs: &[DocText<'_>],
    title_boost: f32,
    keep: usize,
) -> TextVectors {
    let chunks: Vec<Chunk> = docs
        .par_chunks(chunk_size(docs.len()))
        .map(|c| analyze_chunk(analyzer, c, title_boost))
        .collect();

    // Every distinct word once, stemmed once (in parallel); term ids are ranks in the sorted stems.
    let mut word_ids: FxHashMap<&str, u32> = FxHashMap::default();
    let mut words: Vec<&str> = Vec::new();
    for chunk in &chunks {
        for w in &chunk.words {
            word_ids.entry(w.as_str()).or_insert_with(|| {
                words.push(w.as_str());
                (words.len() - 1) as u32
            });
        }
    }
    let stems: Vec<Cow<'_, str>> = words.par_iter().map(|w| analyzer.stem(w)).collect();
    let mut vocabulary: Vec<&str> = stems.iter().map(|s| s.as_ref()).collect();
    vocabulary.par_sort_unstable();
    vocabulary.dedup();
    let word_term: Vec<u32> = stems
        .par_iter()
        .map(|s| {
            vocabulary
                .binary_search(&s.as_ref())
                .expect("every stem is in the vocabulary") as u32
        })
        .collect();

    let counted: Vec<Vec<(u32, f32)>> = chunks
        .par_iter()
        .flat_map_iter(|chunk| {
            let remap: Vec<u32> = chunk
                .words
                .iter()
                .map(|w| word_term[word_ids[w.as_str()] as usize])
                .collect();
            chunk.docs.iter().map(move |row| {
                let mut row: Vec<(u32, f32)> =
                    row.iter().map(|&(w, c)| (remap[w as usize], c)).collect();
                // Words with one stem ("test", "tests") add up; a total order keeps the sum's order fixed.
                row.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                row.dedup_by(|next, kept| {
                    if next.0 == kept.0 {
                        kept.1 += next.1;
                        true
                    } else {
                        false
                    }
                });
                row
            })
        })
        .collect();

    let n = docs.len();
    let mut df = vec![0u32; vocabulary.len()];
    for row in &counted {
        for &(t, _) in row {
            df[t as usize] += 1;
        }
    }
    let max_df = if n > MIN_DOCS_FOR_DF_CAP {
        (n as f64 * MAX_DF_RATIO) as u32
    } else {
        u32::MAX
    };
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| (((n as f64 + 1.0) / (d as f64 + 1.0)).ln() + 1.0) as f32)
        .collect();

    let rows: Vec<Vec<(u32, f32)>> = counted
        .into_par_iter()
        .map(|row| {
            let mut weighted: Vec<(u32, f32)> = row
                .into_iter()
                .filter(|&(t, _)| df[t as usize] <= max_df)
                .map(|(t, tf)| (t, sublinear(tf) * idf[t as usize]))
                .collect();
            let norm = weighted.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
            weighted.retain(|&(t, _)| df[t as usize] >= 2);
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
            weighted
        })
        .collect();

    TextVectors {
        rows: Rows::from_rows(rows),
        vocabulary: vocabulary.into_iter().map(str::to_owned).collect(),
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

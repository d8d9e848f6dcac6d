//! Text → weighted term vectors: tokenizing, stop words and stemming (used when an article is parsed, by
//! [`super::terms`]), then TF-IDF weighting and pruning of the counted terms.
//!
//! Term ids of the vectors are ranks in the sorted list of the store's stems, so they depend only on the store,
//! never on the number of threads or on the order stems were met: the floating-point sums that follow run in
//! the same order on every machine. The one sum taken before terms are ranked, an article's length, is summed
//! so that no order can change its bits ([`SquareSum`]), which spares sorting every article's terms.

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
            word.with_str(|word| {
                if !self.is_stop_word(word) {
                    out.push(self.stem(word).into_owned());
                }
            });
        });
        out
    }
}

/// A word as [`for_each_word`] gives it, lowercased: an ASCII word of up to 16 bytes (most words of most blogs)
/// packed into an integer, little-endian and zero-padded (no allocation; one comparison), or any other spelled
/// out. A word has one form whichever way it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word<'a> {
    Packed(u128),
    Spelled(&'a str),
}

impl Word<'_> {
    /// `f` of the word as text (a packed word unpacked on the stack: words hold no NUL byte, so the padding is
    /// where it ends).
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match *self {
            Word::Packed(key) => {
                let bytes = key.to_le_bytes();
                let len = 16 - (key.leading_zeros() / 8) as usize;
                f(std::str::from_utf8(&bytes[..len]).expect("packed words are ASCII"))
            }
            Word::Spelled(word) => f(word),
        }
    }
}

/// `KEEP[len]`: all ones in the low `len` bytes (a table: shifts of a `u128` by a variable amount take several
/// instructions, and every word needs one).
const KEEP: [u128; 17] = {
    let mut keep = [0u128; 17];
    let mut len = 1;
    while len <= 16 {
        keep[len] = u128::MAX >> (8 * (16 - len));
        len += 1;
    }
    keep
};

/// `0x20` in every byte: OR-ed onto ASCII letters and digits it lowercases the letters and leaves the digits
/// (which have that bit already).
const LOWERCASE_BITS: u128 = u128::from_le_bytes([0x20; 16]);

/// Set in a lowercased ASCII letter's byte, never in a digit's: a word with none of them is a plain number.
const LETTER_BITS: u128 = u128::from_le_bytes([0x40; 16]);

/// `bytes[start..end]`, ASCII letters and digits only, at most 16 of them, packed and lowercased.
fn pack(bytes: &[u8], start: usize, end: usize) -> u128 {
    let len = end - start;
    let raw = match bytes.get(start..start + 16) {
        Some(sixteen) => u128::from_le_bytes(sixteen.try_into().expect("16 bytes")),
        None => {
            let mut key = [0u8; 16];
            key[..len].copy_from_slice(&bytes[start..end]);
            u128::from_le_bytes(key)
        }
    };
    (raw | LOWERCASE_BITS) & KEEP[len]
}

/// Calls `f` with every word of `text`, lowercased: runs of letters and digits, at least two characters long,
/// not a plain number. Punctuation, Markdown leftovers and URLs' separators split words. A run of ASCII letters
/// and digits ending at ASCII (most words) is packed straight from the text; other words go through Unicode's
/// rules a character at a time.
pub fn for_each_word(text: &str, mut f: impl FnMut(Word<'_>)) {
    let bytes = text.as_bytes();
    let mut spelled = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            let start = i;
            i = ascii_alphanumeric_end(bytes, i);
            if i == bytes.len() || bytes[i].is_ascii() {
                let len = i - start;
                if (2..=16).contains(&len) {
                    let key = pack(bytes, start, i);
                    if key & LETTER_BITS != 0 {
                        f(Word::Packed(key));
                    }
                } else if len > 16 && bytes[start..i].iter().any(u8::is_ascii_alphabetic) {
                    spelled.clear();
                    spelled.extend(
                        bytes[start..i]
                            .iter()
                            .map(|b| b.to_ascii_lowercase() as char),
                    );
                    f(Word::Spelled(&spelled));
                }
            } else {
                // Goes on past ASCII: the whole word the slow way.
                i = unicode_word(text, start, &mut spelled, &mut f);
            }
        } else if b.is_ascii() {
            i += 1;
        } else {
            let c = text[i..].chars().next().expect("i is at a char boundary");
            if c.is_alphanumeric() {
                i = unicode_word(text, i, &mut spelled, &mut f);
            } else {
                i += c.len_utf8();
            }
        }
    }
}

/// Where the run of ASCII letters and digits at `bytes[from..]` ends: eight bytes at a time while eight are
/// left, then one at a time.
fn ascii_alphanumeric_end(bytes: &[u8], mut from: usize) -> usize {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let others = !ascii_alphanumeric_bytes(v) & HIGH_BITS;
        if others != 0 {
            return from + (others.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < bytes.len() && bytes[from].is_ascii_alphanumeric() {
        from += 1;
    }
    from
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// `0x80` in each byte of `v` that is an ASCII letter or digit. Computed on the low seven bits of each byte (so
/// no sum carries into the next byte), then bytes with the high bit (not ASCII) are dropped.
fn ascii_alphanumeric_bytes(v: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let each = |b: u8| u64::from_le_bytes([b; 8]);
    // The high bit of `x + (0x80 - lo)` in a byte below 0x80: whether it is `lo` or more.
    let at_least = |x: u64, lo: u8| x + each(0x80 - lo);
    let ascii = v & LOW;
    let digit = at_least(ascii, b'0') & !at_least(ascii, b'9' + 1);
    let folded = ascii | each(0x20); // 'A'..='Z' onto 'a'..='z'; nothing else lands there
    let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    (digit | letter) & !v & HIGH_BITS
}

/// The word of `text` that starts at `start` (a letter or digit), a character at a time: calls `f` with it when
/// it is one ([`for_each_word`]'s rules) and returns where it ends.
fn unicode_word(
    text: &str,
    start: usize,
    spelled: &mut String,
    f: &mut impl FnMut(Word<'_>),
) -> usize {
    spelled.clear();
    let (mut chars, mut digits_only, mut end) = (0usize, true, text.len());
    for (at, c) in text[start..].char_indices() {
        if !c.is_alphanumeric() {
            end = start + at;
            break;
        }
        if c.is_ascii() {
            spelled.push(c.to_ascii_lowercase());
        } else {
            spelled.extend(c.to_lowercase());
        }
        chars += 1;
        digits_only &= c.is_numeric();
    }
    if chars >= 2 && !digits_only {
        if spelled.len() <= 16 && spelled.bytes().all(|b| b.is_ascii_alphanumeric()) {
            f(Word::Packed(pack(spelled.as_bytes(), 0, spelled.len())));
        } else {
            f(Word::Spelled(spelled));
        }
    }
    end
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
/// (document frequencies, then weights) rather than unpacked for every article at once. Only the kept terms
/// are sorted.
///
/// Term ids are ranks in the sorted stems of the store (then renumbered, in the same order, to the terms the
/// vectors keep), so they, and every floating-point sum in id order, depend only on the store.
pub(super) fn text_vectors(docs: &[&Terms], title_boost: f32, keep: usize) -> TextVectors {
    let boost = title_boost.max(0.0);
    let tf = move |title: u32, other: u32| boost * title as f32 + other as f32;
    let n = docs.len();
    // Document frequencies by stem number, in one pass over the counts.
    let df: Vec<u32> = docs
        .par_chunks(1024)
        .map(|chunk| {
            let mut df = Vec::new();
            for terms in chunk {
                for (t, title, other) in terms.iter() {
                    if tf(title, other) > 0.0 {
                        let t = t as usize;
                        if t >= df.len() {
                            df.resize(t + 1, 0);
                        }
                        df[t] += 1;
                    }
                }
            }
            df
        })
        .reduce(Vec::new, |a, b| {
            let (mut long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
            long.iter_mut().zip(short).for_each(|(x, y)| *x += y);
            long
        });
    let width = df.len();
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

    // `sublinear` of the small whole term frequencies (most), looked up rather than a logarithm each.
    let sublinear_small: Vec<f32> = (0..256).map(|tf| sublinear(tf as f32)).collect();
    let weight = |tf: f32, rank: u32| {
        // (`fract` would be a call to the C library's `truncf`.)
        let whole = tf as usize;
        let s = if whole < 256 && whole as f32 == tf {
            sublinear_small[whole]
        } else {
            sublinear(tf)
        };
        s * idf[rank as usize]
    };
    let mut rows: Vec<Vec<(u32, f32)>> = docs
        .par_iter()
        .with_min_len(64)
        .map_init(Vec::new, |weighted: &mut Vec<(u32, f32)>, terms| {
            // The counts come in stem-number order, which depends on the process: the length is summed in a
            // way that does not depend on order, and only the kept terms are sorted (by rank).
            let mut squares = SquareSum::default();
            weighted.clear();
            for (t, title, other) in terms.iter() {
                let tf = tf(title, other);
                let r = rank[t as usize];
                if tf > 0.0 && df_ranked[r as usize] <= max_df {
                    let w = weight(tf, r);
                    squares.add(w);
                    if df_ranked[r as usize] >= 2 {
                        weighted.push((r, w));
                    }
                }
            }
            let norm = squares.sqrt();
            // Every article's row is alive at once: each gets a vector of its own length.
            if weighted.len() > keep {
                weighted.select_nth_unstable_by(keep - 1, |a, b| {
                    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                });
            }
            let mut row = weighted[..weighted.len().min(keep)].to_vec();
            row.sort_unstable_by_key(|e| e.0);
            if norm > 0.0 {
                for e in &mut row {
                    e.1 /= norm;
                }
            }
            row
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

/// A sum of squares that is the same to the bit in whatever order the values come: each square is exact in
/// `f64` (a product of two `f32`), cut to a multiple of 2⁻⁶⁴ and added as an integer, which no order can round
/// differently. Weights run from about 0.1 to a few hundred, far inside what this holds exactly enough.
#[derive(Default)]
struct SquareSum(u128);

impl SquareSum {
    const SCALE: f64 = 18_446_744_073_709_551_616.0; // 2^64

    fn add(&mut self, w: f32) {
        let square = f64::from(w) * f64::from(w);
        // In two 64-bit halves (a float-to-`u128` conversion is a slow library call); `as` saturates, so an
        // absurd weight cannot wrap.
        let whole = square as u64;
        // Exact: `whole` is the square cut to an integer (below 2^53 unless absurd, then saturated).
        let fraction = ((square - whole as f64) * Self::SCALE) as u64;
        self.0 = self
            .0
            .saturating_add((u128::from(whole) << 64) | u128::from(fraction));
    }

    fn sqrt(&self) -> f32 {
        ((self.0 as f64) / Self::SCALE).sqrt() as f32
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_told_letter_or_digit_as_std_tells_it_whatever_its_neighbours() {
        for b in 0..=255u8 {
            for neighbour in [b'a', b' ', 0x80, 0xff, b'Z', b'9'] {
                for at in 0..8 {
                    let mut chunk = [neighbour; 8];
                    chunk[at] = b;
                    let mask = ascii_alphanumeric_bytes(u64::from_le_bytes(chunk));
                    let found = mask >> (8 * at + 7) & 1 == 1;
                    assert_eq!(
                        found,
                        b.is_ascii_alphanumeric(),
                        "byte {b:#x} at {at} beside {neighbour:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_run_ends_at_the_first_byte_that_is_no_ascii_letter_or_digit() {
        let text = b"abcdefghijKLMNOP0123456789 tail";
        assert_eq!(ascii_alphanumeric_end(text, 0), 26);
        assert_eq!(ascii_alphanumeric_end(text, 27), text.len());
        assert_eq!(ascii_alphanumeric_end("caf\u{e9}s".as_bytes(), 0), 3);
        assert_eq!(ascii_alphanumeric_end(b"ab", 2), 2);
    }
}

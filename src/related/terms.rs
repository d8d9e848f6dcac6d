//! An article's text as related reading needs it: how often each term (stem) occurs in its title and in the rest
//! (summary and body), counted once when the article is parsed, so neither the text nor the body has to be kept
//! (or cached) for the index. [`Terms`] is compact (about four bytes a term) and exact: the index weights terms
//! from these counts alone, so a catalog loaded from the build cache gives the lists a cold build does.
//!
//! Terms are numbered by one process-wide table of stems ([`stems`]): each distinct stem is stored once however
//! many articles and builds use it, and an article's terms are a short run of numbers. The numbers follow the
//! order in which stems were first met (which depends on threads), so nothing may depend on them but identity:
//! the index ranks terms by their stems ([`names`]). The table only grows, by the distinct stems of the stores a
//! process reads (a long-running daemon keeps the stems of deleted articles, a few bytes each).

use std::sync::{Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::analyze::{Analyzer, Word, for_each_word};

/// The process-wide stems, numbered in the order met.
#[derive(Default)]
struct Table {
    ids: FxHashMap<&'static str, u32>,
    names: Vec<&'static str>,
}

impl Table {
    fn intern(&mut self, stem: &str) -> u32 {
        if let Some(&id) = self.ids.get(stem) {
            return id;
        }
        // Leaked on purpose: a stem lives as long as the table, which lives as long as the process.
        let name: &'static str = Box::leak(stem.to_owned().into_boxed_str());
        let id = u32::try_from(self.names.len()).expect("fewer than 4 billion distinct stems");
        self.names.push(name);
        self.ids.insert(name, id);
        id
    }
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<Table>> {
    // A panic while the lock was held cannot leave the table inconsistent (each insert is whole).
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stems of `ids`.
pub fn names(ids: impl IntoIterator<Item = u32>) -> Vec<&'static str> {
    let guard = table();
    let t = guard.as_ref();
    ids.into_iter()
        .map(|id| {
            t.and_then(|t| t.names.get(id as usize).copied())
                .unwrap_or("")
        })
        .collect()
}

/// Every stem met so far, in number order (what the build cache keeps with the terms it stores).
pub fn stems() -> Vec<String> {
    table()
        .as_ref()
        .map(|t| t.names.iter().map(|s| (*s).to_owned()).collect())
        .unwrap_or_default()
}

/// The numbers of `stems` in this process: when the table is empty or starts with them (a build cache read by a
/// fresh process), the same numbers; otherwise each is looked up or added.
pub fn intern_all(stems: &[String]) -> Vec<u32> {
    let mut guard = table();
    let t = guard.get_or_insert_with(Table::default);
    stems.iter().map(|s| t.intern(s)).collect()
}

/// How often each term occurs in one article: in its title and in the rest (summary and body). Encoded as
/// varints: (term number − previous term number, title count, other count), terms in ascending number order.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms(#[serde(with = "serde_bytes")] Box<[u8]>);

impl std::fmt::Debug for Terms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Terms({} bytes)", self.0.len())
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn read_varint(bytes: &[u8], at: &mut usize) -> u32 {
    // One byte (most counts, most gaps between term numbers) without the loop.
    if let Some(&b) = bytes.get(*at)
        && b < 0x80
    {
        *at += 1;
        return u32::from(b);
    }
    let mut v = 0u32;
    let mut shift = 0;
    while let Some(&b) = bytes.get(*at) {
        *at += 1;
        v |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    v
}

impl Terms {
    /// From `(term, title count, other count)`, sorted by term, each term once.
    fn encode(counts: &[(u32, u32, u32)]) -> Terms {
        let mut out = Vec::with_capacity(counts.len() * 4);
        let mut last = 0;
        for &(t, title, other) in counts {
            push_varint(&mut out, t - last);
            push_varint(&mut out, title);
            push_varint(&mut out, other);
            last = t;
        }
        Terms(out.into_boxed_slice())
    }

    /// `(term, title count, other count)` in ascending term order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        let mut at = 0;
        let mut last = 0;
        std::iter::from_fn(move || {
            if at >= self.0.len() {
                return None;
            }
            let t = last + read_varint(&self.0, &mut at);
            last = t;
            let title = read_varint(&self.0, &mut at);
            let other = read_varint(&self.0, &mut at);
            Some((t, title, other))
        })
    }

    /// The same terms under other numbers (`map[old]`).
    pub fn renumbered(&self, map: &[u32]) -> Terms {
        let mut counts: Vec<(u32, u32, u32)> = self
            .iter()
            .map(|(t, a, b)| (map[t as usize], a, b))
            .collect();
        counts.sort_unstable_by_key(|e| e.0);
        Terms::encode(&counts)
    }

    /// The terms of one article's title, summary and body, with a counter of its own (see [`Counter`] to count
    /// many).
    pub fn of(language: &str, title: &str, summary: &str, body: &str) -> Terms {
        Counter::new(language).count(title, summary, body)
    }
}

/// Counts terms for many articles, remembering each word's term (or that it is a stop word), so each distinct
/// word is stemmed and looked up in the shared table once per thread, not once per occurrence. What it
/// remembers stays with its thread for the next counter of the same language (the stem numbers live as long as
/// the process).
pub struct Counter(Option<Memory>);

/// What a counter remembers.
struct Memory {
    language: String,
    analyzer: Analyzer,
    /// Words of up to 16 ASCII bytes (most), packed in an integer as the tokenizer gives them
    /// ([`Word::Packed`]): hashed and compared without a string.
    short: FxHashMap<u128, u32>,
    words: FxHashMap<Box<str>, u32>,
    /// The counts of the article being counted, by term number (title, rest), and which terms it touched (a
    /// bit per term number, read back in ascending order: sorting the touched numbers cost more).
    counts: Vec<(u32, u32)>,
    touched: Vec<u64>,
}

const STOP: u32 = u32::MAX;

thread_local! {
    /// What the last counter on this thread remembered, for the next one.
    static LAST: std::cell::RefCell<Option<Memory>> = const { std::cell::RefCell::new(None) };
}

impl Counter {
    pub fn new(language: &str) -> Counter {
        let memory = match LAST.with_borrow_mut(Option::take) {
            Some(last) if last.language == language => last,
            _ => Memory {
                language: language.to_owned(),
                analyzer: Analyzer::for_language(language),
                short: FxHashMap::default(),
                words: FxHashMap::default(),
                counts: Vec::new(),
                touched: Vec::new(),
            },
        };
        Counter(Some(memory))
    }

    /// The terms of one article.
    pub fn count(&mut self, title: &str, summary: &str, body: &str) -> Terms {
        let Memory {
            analyzer,
            short,
            words,
            counts,
            touched,
            ..
        } = self
            .0
            .as_mut()
            .expect("a counter has its memory until dropped");
        let term = |word: &str| {
            if analyzer.is_stop_word(word) {
                STOP
            } else {
                let stem = analyzer.stem(word);
                table().get_or_insert_with(Table::default).intern(&stem)
            }
        };
        for (text, in_title) in [(title, true), (summary, false), (body, false)] {
            for_each_word(text, |word| {
                let id = match word {
                    Word::Packed(key) => *short.entry(key).or_insert_with(|| word.with_str(term)),
                    Word::Spelled(word) => match words.get(word) {
                        Some(&id) => id,
                        None => {
                            let id = term(word);
                            words.insert(word.into(), id);
                            id
                        }
                    },
                };
                if id != STOP {
                    if id as usize >= counts.len() {
                        counts.resize(id as usize + 1024, (0, 0));
                        touched.resize(counts.len().div_ceil(64), 0);
                    }
                    let c = &mut counts[id as usize];
                    touched[id as usize / 64] |= 1 << (id % 64);
                    if in_title {
                        c.0 += 1;
                    } else {
                        c.1 += 1;
                    }
                }
            });
        }
        let mut rows: Vec<(u32, u32, u32)> = Vec::new();
        for (word, bits) in touched.iter_mut().enumerate() {
            while *bits != 0 {
                let t = word as u32 * 64 + bits.trailing_zeros();
                *bits &= *bits - 1;
                let (a, b) = std::mem::take(&mut counts[t as usize]);
                rows.push((t, a, b));
            }
        }
        Terms::encode(&rows)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let memory = self.0.take();
        // While the thread ends, or when another counter's memory is already kept, this one is let go.
        let _ = LAST.try_with(|last| {
            if let Ok(mut last) = last.try_borrow_mut()
                && last.is_none()
            {
                *last = memory;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_count_stems_in_title_and_rest_and_round_trip_through_numbers() {
        let t = Terms::of(
            "en",
            "Parsing parsers",
            "A parser.",
            "The parsed parsers; and 300 parsers.",
        );
        let mut named: Vec<(&str, u32, u32)> = names(t.iter().map(|e| e.0))
            .into_iter()
            .zip(t.iter())
            .map(|(n, (_, a, b))| (n, a, b))
            .collect();
        named.sort();
        assert_eq!(named, vec![("pars", 1, 1), ("parser", 1, 3)]);
        let ids: Vec<u32> = t.iter().map(|e| e.0).collect();
        let stems: Vec<String> = names(ids.iter().copied())
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(intern_all(&stems), ids);
    }

    #[test]
    fn renumbering_keeps_the_counts_and_sorts_by_the_new_numbers() {
        let t = Terms::encode(&[(1, 0, 1), (5, 2, 0), (200, 0, 300)]);
        let mut map = vec![0; 201];
        map[1] = 9;
        map[5] = 3;
        map[200] = 1000;
        let r: Vec<_> = t.renumbered(&map).iter().collect();
        assert_eq!(r, vec![(3, 2, 0), (9, 0, 1), (1000, 0, 300)]);
    }
}

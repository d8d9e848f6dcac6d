//! Loading the store with what the last build parsed: an article is parsed again only when its file changed or
//! when a link in its body would now resolve differently.
//!
//! Each file's parse ([`Entry`]) is kept with what it depended on: the file (its size and mtime, and a hash of
//! its bytes) and the names its body looked up among the other articles with the answers it got
//! ([`super::links::recording`]). Everything else a parse reads is the site's config, which is part of the cache
//! file's key (`crate::cache`), so a config change starts from nothing. A file whose size and mtime are those
//! of its entry is not read at all, unless its mtime is within [`SETTLE`] of when the entry was made (it could
//! have changed again within the file system's timestamp granularity): then it is read and its hash compared.
//! What follows the parse of every file (duplicate permalinks, shared slugs, taxonomy folders) is cheap and
//! done again on every load from the parsed articles, so a cached load gives the catalog a cold one does.
//!
//! Articles are loaded (and kept) without their bodies: a file is parsed to the end as soon as it is read, its
//! terms counted for related reading ([`crate::related::terms`]) and its text dropped, so neither memory nor the
//! cache grows with the store's text. Only a body that may look up other articles (`@/`, `{%`, `{{`) waits,
//! parsed up to its head, until every permalink is known. The few bodies a feed carries are read again
//! ([`read_bodies`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::links::{LinkIndex, Lookup, recording};
use super::{
    ArticleError, Catalog, Head, ParseContext, Parsed, body_only, collect_articles, finish,
    parse_head, read_source,
};
use crate::config::Config;
use crate::related::terms::{self, Counter};

/// How long after its last change a file's size and mtime are trusted to tell whether it changed since: file
/// systems keep mtimes with a granularity (a few milliseconds here, two seconds on FAT), so a file written twice
/// within one tick keeps its mtime.
pub const SETTLE: Duration = Duration::from_secs(2);

/// A file's size and modification time, as one `stat` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub secs: i64,
    pub nanos: u32,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        let since = meta
            .modified()
            .ok()?
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?;
        Some(Stamp {
            size: meta.len(),
            secs: i64::try_from(since.as_secs()).ok()?,
            nanos: since.subsec_nanos(),
        })
    }

    pub fn read(path: &std::path::Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().as_ref().and_then(Stamp::of)
    }

    /// Whether the file was last changed [`SETTLE`] or more before `at`, so an equal stamp later means an
    /// unchanged file.
    pub fn settled_before(&self, at: SystemTime) -> bool {
        let mtime = SystemTime::UNIX_EPOCH
            + Duration::new(u64::try_from(self.secs).unwrap_or(0), self.nanos);
        mtime + SETTLE <= at
    }
}

/// What one file parsed to, with what that depended on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    pub stamp: Option<Stamp>,
    /// xxh3 of the file's bytes; `None` when it was not read (too big).
    hash: Option<u64>,
    /// The article without its body (its terms counted), or why the file is no article.
    parsed: Result<Parsed, ArticleError>,
    lookups: Vec<Lookup>,
}

/// Every file's last parse, in path order; [`ArticleCache::made`] is when the build that made them started.
/// Term numbers in the entries are positions in `stems` ([`crate::related::terms`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleCache {
    made: SystemTime,
    stems: Vec<String>,
    pub entries: Vec<Entry>,
}

impl Default for ArticleCache {
    fn default() -> Self {
        ArticleCache {
            made: SystemTime::UNIX_EPOCH,
            stems: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl ArticleCache {
    /// The entries with their terms under this process's stem numbers (the same numbers, untouched, in a
    /// process that read no other store first).
    fn into_entries(self) -> Vec<Entry> {
        let map = terms::intern_all(&self.stems);
        let mut entries = self.entries;
        if map.iter().enumerate().any(|(i, &id)| i as u32 != id) {
            entries.par_iter_mut().for_each(|e| {
                if let Ok(p) = &mut e.parsed {
                    p.article.terms = p.article.terms.renumbered(&map);
                }
            });
        }
        entries
    }
}

/// A loaded store and what loading it took.
#[derive(Debug)]
pub struct Loaded {
    /// The articles, without their bodies ([`read_bodies`] reads those a feed carries).
    pub catalog: Catalog,
    pub errors: Vec<ArticleError>,
    /// Every store file in path order, with its stamp when read (`None`: it could not be stat'ed).
    pub sources: Vec<(PathBuf, Option<Stamp>)>,
    /// Every article's source path and permalink, as the bodies were parsed against.
    pub links: LinkIndex,
    /// Files parsed (their text read and parsed).
    pub parsed: usize,
    /// Files whose last parse was used.
    pub reused: usize,
}

/// One file on its way to an entry.
enum Work {
    Done(Entry),
    /// Parsed up to its body, which may look up other articles: finished once every permalink is known.
    Head {
        path: PathBuf,
        stamp: Option<Stamp>,
        hash: Option<u64>,
        head: Result<Head, ArticleError>,
    },
    /// Parsed again from its file once every permalink is known (a kept entry whose links now resolve
    /// elsewhere).
    Again {
        path: PathBuf,
        stamp: Option<Stamp>,
    },
}

fn hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// Reads and parses one file from scratch: to the end when its body cannot look up other articles (so its text
/// is dropped at once), else up to its head.
fn read(
    path: PathBuf,
    stamp: Option<Stamp>,
    ctx: &ParseContext<'_>,
    max: u64,
    counter: &mut Counter,
) -> Work {
    let source = match read_source(path.clone(), max) {
        Ok(source) => source,
        Err(e) => {
            return Work::Done(Entry {
                path,
                stamp,
                hash: None,
                parsed: Err(e),
                lookups: Vec::new(),
            });
        }
    };
    let hash = Some(hash(&source.text));
    match parse_head(source.path, source.text, ctx) {
        Ok(h) if !h.may_link() => {
            let (parsed, lookups) = recording(|| finish(h, ctx, &LinkIndex::default(), counter));
            if lookups.is_empty() {
                Work::Done(Entry {
                    path,
                    stamp,
                    hash,
                    parsed: Ok(parsed),
                    lookups,
                })
            } else {
                Work::Again { path, stamp }
            }
        }
        head => Work::Head {
            path,
            stamp,
            hash,
            head,
        },
    }
}

/// Reads and parses the store of `config` like [`super::load`], reusing `previous` (the last build's parses,
/// made with this config) where the files and the links they looked up are unchanged. `listing` is the store's
/// files and the folders that could not be read, as [`find_sources`] gives them. Articles come without
/// their bodies. `started` is when this build started (before anything was read), the time the new entries are
/// good from. When anything differs from `previous`, `save` is given the new entries before they become the
/// catalog (so they are never held twice), to be kept for the next build.
pub fn load_cached(
    config: &Config,
    listing: (Vec<PathBuf>, Vec<ArticleError>),
    previous: ArticleCache,
    started: SystemTime,
    save: impl FnOnce(&ArticleCache),
) -> Loaded {
    let (paths, mut errors) = listing;
    let ctx = ParseContext {
        keep_bodies: false,
        ..ParseContext::from_config(config)
    };
    let max = config.site.max_article_bytes;
    let made = previous.made;
    let mut old: HashMap<PathBuf, Entry> = previous
        .into_entries()
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect();
    let pairs: Vec<(PathBuf, Option<Entry>)> = paths
        .into_iter()
        .map(|p| {
            let entry = old.remove(&p);
            (p, entry)
        })
        .collect();
    let mut dirty = !old.is_empty();
    drop(old);

    // Each file: its entry kept on an equal settled stamp, or on equal bytes; else read (and parsed to the end
    // unless its body may link).
    // (work, changed since `previous`, the previous parse kept)
    let mut work: Vec<(Work, bool, bool)> = pairs
        .into_par_iter()
        .with_min_len(16)
        .map_init(
            || Counter::new(ctx.language),
            |counter, (path, entry)| {
                let stamp = Stamp::read(&path);
                match (entry, stamp) {
                    (Some(e), Some(s)) if e.stamp == Some(s) && s.settled_before(made) => {
                        (Work::Done(e), false, true)
                    }
                    (Some(e), _) if unchanged(&path, &e, max) => {
                        (Work::Done(Entry { stamp, ..e }), true, true)
                    }
                    (_, _) => (read(path, stamp, &ctx, max, counter), true, false),
                }
            },
        )
        .collect();
    dirty |= work.iter().any(|(_, changed, _)| *changed);

    let links = LinkIndex::new(work.iter().filter_map(|(w, _, _)| match w {
        Work::Done(Entry {
            parsed: Ok(p),
            path,
            ..
        }) => Some((path.as_path(), p.article.url.as_str())),
        Work::Head { head: Ok(h), .. } => {
            Some((h.article.source.as_path(), h.article.url.as_str()))
        }
        _ => None,
    }));
    // A kept body whose links now resolve elsewhere (a target added, renamed, deleted) is parsed again. Its own
    // permalink is unchanged (its file and the config are), so the index above stays right.
    work.par_iter_mut().for_each(|(w, changed, kept)| {
        if let Work::Done(e) = w
            && !e.lookups.is_empty()
            && !links.answers(&e.lookups)
        {
            *w = Work::Again {
                path: e.path.clone(),
                stamp: e.stamp,
            };
            *changed = true;
            *kept = false;
        }
    });
    dirty |= work.iter().any(|(_, changed, _)| *changed);

    let reused = work.iter().filter(|(_, _, kept)| *kept).count();
    let parsed = work.len() - reused;
    let finish_body = |head: Result<Head, ArticleError>, counter: &mut Counter| match head {
        Ok(h) => {
            let (parsed, lookups) = recording(|| finish(h, &ctx, &links, counter));
            (Ok(parsed), lookups)
        }
        Err(e) => (Err(e), Vec::new()),
    };
    let entries: Vec<Entry> = work
        .into_par_iter()
        .map_init(
            || Counter::new(ctx.language),
            |counter, (w, _, _)| match w {
                Work::Done(e) => e,
                Work::Head {
                    path,
                    stamp,
                    hash,
                    head,
                } => {
                    let (parsed, lookups) = finish_body(head, counter);
                    Entry {
                        path,
                        stamp,
                        hash,
                        parsed,
                        lookups,
                    }
                }
                Work::Again { path, stamp } => {
                    let (hash, head) = match read_source(path.clone(), max) {
                        Ok(source) => (
                            Some(hash(&source.text)),
                            parse_head(source.path, source.text, &ctx),
                        ),
                        Err(e) => (None, Err(e)),
                    };
                    let (parsed, lookups) = finish_body(head, counter);
                    Entry {
                        path,
                        stamp,
                        hash,
                        parsed,
                        lookups,
                    }
                }
            },
        )
        .collect();
    let cache = ArticleCache {
        made: started,
        stems: terms::stems(),
        entries,
    };
    if dirty {
        save(&cache);
    }
    let mut sources = Vec::with_capacity(cache.entries.len());
    let results: Vec<Result<Parsed, ArticleError>> = cache
        .entries
        .into_iter()
        .map(|e| {
            sources.push((e.path, e.stamp));
            e.parsed
        })
        .collect();
    let (catalog, parse_errors) = collect_articles(results);
    let modified = std::fs::metadata(&config.site.articles)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).fixed_offset());
    errors.extend(parse_errors);
    errors.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    Loaded {
        catalog: catalog.with_modified(modified),
        errors,
        sources,
        links,
        parsed,
        reused,
    }
}

/// Whether the file at `path` still holds the bytes `entry` was parsed from (its stamp changed, or is too recent
/// to vouch for it).
fn unchanged(path: &std::path::Path, entry: &Entry, max: u64) -> bool {
    entry.hash.is_some()
        && read_source(path.to_owned(), max).is_ok_and(|s| Some(hash(&s.text)) == entry.hash)
}

/// The Markdown bodies of `articles` (loaded without them), read and parsed again against `links` (the
/// [`Loaded::links`] they were first parsed against), by permalink. A feed carries a few dozen articles of a
/// store of thousands: reading those again costs less than keeping every body. An article whose file changed
/// since it was loaded gets the body it has now (the next build sees the change).
pub fn read_bodies(
    config: &Config,
    links: &LinkIndex,
    articles: &[&super::Article],
) -> HashMap<String, String> {
    let ctx = ParseContext::from_config(config);
    let max = config.site.max_article_bytes;
    articles
        .par_iter()
        .filter_map(|a| {
            let source = read_source(a.source.clone(), max).ok()?;
            let head = parse_head(source.path, source.text, &ctx).ok()?;
            Some((a.url.clone(), body_only(head, links)))
        })
        .collect()
}

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

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::links::{LinkIndex, Lookup, recording};
use super::{
    ArticleError, Catalog, Head, ParseContext, Parsed, collect_articles, find_sources, finish,
    parse_head, read_source,
};
use crate::config::Config;

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
    parsed: Result<Parsed, ArticleError>,
    lookups: Vec<Lookup>,
}

/// Every file's last parse, in path order; [`ArticleCache::made`] is when the build that made them started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleCache {
    made: SystemTime,
    pub entries: Vec<Entry>,
}

impl Default for ArticleCache {
    fn default() -> Self {
        ArticleCache {
            made: SystemTime::UNIX_EPOCH,
            entries: Vec::new(),
        }
    }
}

/// A loaded store and what loading it took.
#[derive(Debug)]
pub struct Loaded {
    pub catalog: Catalog,
    pub errors: Vec<ArticleError>,
    /// Every store file in path order, with its stamp when read (`None`: it could not be stat'ed).
    pub sources: Vec<(PathBuf, Option<Stamp>)>,
    /// Files parsed (their text read and parsed).
    pub parsed: usize,
    /// Files whose last parse was used.
    pub reused: usize,
}

/// One file on its way to an entry.
enum Work {
    Done(Entry),
    Head {
        path: PathBuf,
        stamp: Option<Stamp>,
        hash: Option<u64>,
        head: Result<Head, ArticleError>,
    },
}

fn hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// Reads and parses one file from scratch, up to its head.
fn read_head(path: PathBuf, stamp: Option<Stamp>, ctx: &ParseContext<'_>, max: u64) -> Work {
    match read_source(path.clone(), max) {
        Ok(source) => {
            let hash = Some(hash(&source.text));
            Work::Head {
                head: parse_head(source.path, source.text, ctx),
                path,
                stamp,
                hash,
            }
        }
        Err(e) => Work::Head {
            path,
            stamp,
            hash: None,
            head: Err(e),
        },
    }
}

/// Reads and parses the store of `config` like [`super::load`], reusing `previous` (the last build's parses,
/// made with this config) where the files and the links they looked up are unchanged. `started` is when this
/// build started (before anything was read), the time the new entries are good from. When anything differs
/// from `previous`, `save` is given the new entries before they become the catalog (so they are never held
/// twice), to be kept for the next build.
pub fn load_cached(
    config: &Config,
    previous: ArticleCache,
    started: SystemTime,
    save: impl FnOnce(&ArticleCache),
) -> Loaded {
    let (paths, mut errors) = find_sources(&config.site.articles);
    let ctx = ParseContext::from_config(config);
    let max = config.site.max_article_bytes;
    let made = previous.made;
    let mut old: HashMap<PathBuf, Entry> = previous
        .entries
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

    // Each file: its entry kept on an equal settled stamp, or on equal bytes; else read up to its head.
    let mut work: Vec<(Work, bool)> = pairs
        .into_par_iter()
        .map(|(path, entry)| {
            let stamp = Stamp::read(&path);
            match (entry, stamp) {
                (Some(e), Some(s)) if e.stamp == Some(s) && s.settled_before(made) => {
                    (Work::Done(e), false)
                }
                (entry, _) => {
                    let fresh = read_head(path, stamp, &ctx, max);
                    match (entry, fresh) {
                        (Some(e), Work::Head { stamp, hash, .. })
                            if hash.is_some() && e.hash == hash =>
                        {
                            (Work::Done(Entry { stamp, ..e }), true)
                        }
                        (_, fresh) => (fresh, true),
                    }
                }
            }
        })
        .collect();
    dirty |= work.iter().any(|(_, changed)| *changed);

    let links = LinkIndex::new(work.iter().filter_map(|(w, _)| match w {
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
    work.par_iter_mut().for_each(|(w, changed)| {
        if let Work::Done(e) = w
            && !links.answers(&e.lookups)
        {
            *w = read_head(e.path.clone(), e.stamp, &ctx, max);
            *changed = true;
        }
    });
    dirty |= work.iter().any(|(_, changed)| *changed);

    let parsed = work
        .iter()
        .filter(|(w, _)| matches!(w, Work::Head { .. }))
        .count();
    let reused = work.len() - parsed;
    let entries: Vec<Entry> = work
        .into_par_iter()
        .map(|(w, _)| match w {
            Work::Done(e) => e,
            Work::Head {
                path,
                stamp,
                hash,
                head,
            } => {
                let (parsed, lookups) = match head {
                    Ok(h) => {
                        let (parsed, lookups) = recording(|| finish(h, &ctx, &links));
                        (Ok(parsed), lookups)
                    }
                    Err(e) => (Err(e), Vec::new()),
                };
                Entry {
                    path,
                    stamp,
                    hash,
                    parsed,
                    lookups,
                }
            }
        })
        .collect();
    let cache = ArticleCache {
        made: started,
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
        parsed,
        reused,
    }
}

//! The composition root: the one place that wires disk, the state database, mail and the caller's `now` together
//! around the pure modules, one submodule per command family. Functions here take `now` from the caller (only
//! `main` reads the clock) and return reports; printing is the caller's job.

mod check;
mod composer;
mod daemon;
mod preview;
mod runs;
mod send;
mod state_ops;
mod subscribers;

pub use check::{CheckReport, check};
pub use composer::{link_tokens, link_url};
pub use daemon::{Daemon, DaemonError, daemon};
pub use preview::{Preview, digest_preview, write_preview};
pub use runs::digest_runs;
pub use send::{SendOptions, SendOutcome, SendReport, digest_send, digest_send_with, transport};
pub use state_ops::{state_export, state_import, state_migrate};
pub use subscribers::{
    ImportReport, subscribers_add, subscribers_import, subscribers_list, subscribers_remove,
};

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};

use crate::cache;
use crate::config::{Config, DigestConfig};
use crate::digest::{DigestError, RECENT_DIGESTS, RelatedSource, Remembered, SubscriberView};
use crate::domain::{EmailAddress, InvalidEmail, Subscriber};
use crate::feed;
use crate::mail::{MailError, Transport};
use crate::output::{Staged, WriteOutcome};
use crate::related::{self, RelatedError, RelatedIndex};
use crate::state::{self, State, StateError};
use crate::store::{self, ArticleError, Catalog};

/// Everything a digest or subscriber command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NewsletterError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Email(#[from] InvalidEmail),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("no [[digest]] named \"{name}\" in config.toml; configured: {known}")]
    UnknownDigest { name: String, known: String },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a tidings state export: {reason}")]
    BadExport { path: PathBuf, reason: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("digest \"{digest}\": schedule \"{schedule}\" has no tick {when} {now}")]
    NoTick {
        digest: String,
        schedule: String,
        when: &'static str,
        now: DateTime<FixedOffset>,
    },
    #[error("{0} is not a subscriber of this digest; add them with `tidings subscribers add`")]
    NotSubscribed(EmailAddress),
    #[error("digest \"{0}\" has no confirmed subscriber to preview; pass --to EMAIL or add one")]
    NobodyToPreview(String),
    #[error(
        "unknown {} {names}; known categories: {known} (a category is known once an article has it, or when \
         [feeds] categories names it)",
        if names.contains(',') { "categories" } else { "category" }
    )]
    UnknownCategory { names: String, known: String },
    #[error("cannot generate a random secret: {0}")]
    Random(String),
    #[error("{path}: cannot lock for sending: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The output formats of `subscribers list` and `digest runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

/// Lays rows out in columns under `header`, two spaces apart (the `table` format).
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Opens (and migrates) the state named in `[state] database`.
pub async fn open_state(config: &Config) -> Result<Arc<dyn State>, StateError> {
    state::open(&config.state.database).await
}

fn digest_config<'a>(config: &'a Config, name: &str) -> Result<&'a DigestConfig, NewsletterError> {
    config
        .digest(name)
        .ok_or_else(|| NewsletterError::UnknownDigest {
            name: name.into(),
            known: if config.digest.is_empty() {
                "none (add a [[digest]] table)".into()
            } else {
                config
                    .digest
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// A `[NAME]` filter of a listing command, checked against the configured digests.
fn known_digest(config: &Config, digest: Option<&str>) -> Result<(), NewsletterError> {
    digest.map_or(Ok(()), |d| digest_config(config, d).map(|_| ()))
}

/// Every category a subscriber may choose: those of the store's articles, `[feeds] categories` and the digests'
/// `categories`, one spelling per category (the first met, articles first), sorted.
pub fn known_categories(config: &Config, catalog: &Catalog) -> Vec<String> {
    let mut by_slug = std::collections::BTreeMap::new();
    let names = catalog
        .all()
        .iter()
        .filter(|a| !a.draft)
        .filter_map(|a| a.category.clone())
        .chain(config.feeds.categories.iter().cloned())
        .chain(
            config
                .digest
                .iter()
                .flat_map(|d| d.categories.iter().cloned()),
        );
    for name in names {
        let slug = store::taxonomy_slug(&name);
        if !slug.is_empty() {
            by_slug.entry(slug).or_insert(name);
        }
    }
    let mut known: Vec<String> = by_slug.into_values().collect();
    known.sort_by_key(|n| n.to_lowercase());
    known
}

/// `requested` in their known spelling, or [`NewsletterError::UnknownCategory`] naming every unknown one.
pub fn check_categories(
    requested: &[String],
    known: &[String],
) -> Result<Vec<String>, NewsletterError> {
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for name in requested {
        match known.iter().find(|k| store::same_category(k, name)) {
            Some(k) if !found.contains(k) => found.push(k.clone()),
            Some(_) => {}
            None => unknown.push(format!("\"{name}\"")),
        }
    }
    if unknown.is_empty() {
        Ok(found)
    } else {
        Err(NewsletterError::UnknownCategory {
            names: unknown.join(", "),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        })
    }
}

fn digest_names(config: &Config) -> Vec<String> {
    config.digest.iter().map(|d| d.name.clone()).collect()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What each subscriber's last digests say: their window start and what not to offer again (one query for the
/// lot, which is in address order: a page of the list).
async fn views(
    state: &dyn State,
    digest: &str,
    subscribers: Vec<Subscriber>,
    before: DateTime<Utc>,
) -> Result<Vec<SubscriberView>, NewsletterError> {
    let (Some(first), Some(last)) = (subscribers.first(), subscribers.last()) else {
        return Ok(Vec::new());
    };
    debug_assert!(subscribers.is_sorted_by(|a, b| a.email <= b.email));
    let among = Some((&first.email, &last.email));
    let mut received = state
        .received(digest, before, RECENT_DIGESTS, among)
        .await?;
    Ok(subscribers
        .into_iter()
        .map(|subscriber| {
            let received = received.remove(&subscriber.email).unwrap_or_default();
            SubscriberView {
                joined: subscriber.joined_at(digest),
                last_delivered: received.first().map(|r| r.tick),
                recently_received: received
                    .iter()
                    .flat_map(|r| r.articles.iter().chain(&r.related).cloned())
                    .collect(),
                subscriber,
            }
        })
        .collect())
}

/// The related-reading index as of `tick`, so only articles published by then can be suggested; its answers
/// remembered for the planning of the tick.
fn related_source(
    config: &Config,
    catalog: &Catalog,
    tick: DateTime<FixedOffset>,
) -> impl RelatedSource {
    Remembered::new(RelatedIndex::build(catalog, tick, &config.related))
}

/// What a build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub published: usize,
    pub feeds: usize,
    pub written: Vec<PathBuf>,
    pub unchanged: usize,
    /// Every file the build published (written or unchanged).
    pub files: Vec<PathBuf>,
    /// Store files parsed, and those whose last parse (the build cache's) was used.
    pub parsed: usize,
    pub reused: usize,
    /// Articles left out, each with its position and fix; and, as notes, files that are no articles.
    pub errors: Vec<ArticleError>,
}

impl BuildReport {
    /// The articles left out for something to fix (not the notes about files that are no articles).
    pub fn left_out(&self) -> impl Iterator<Item = &ArticleError> {
        self.errors.iter().filter(|e| e.is_error())
    }

    /// Writes one output file into the build (only when its bytes changed) and counts it.
    fn write(&mut self, out: &mut Staged, rel: &str, bytes: &[u8]) -> Result<(), BuildError> {
        let path = out.published_path(rel);
        self.files.push(path.clone());
        match out.write(rel, bytes) {
            Ok(WriteOutcome::Written) => self.written.push(path),
            Ok(WriteOutcome::Unchanged) => self.unchanged += 1,
            Err(source) => return Err(BuildError::Write { path, source }),
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the store now has {now} published articles, under half of the {before} the last build published (is the \
         right folder mounted? check [site] articles / TIDINGS_SITE_ARTICLES); nothing was written. If articles \
         were removed on purpose, build with --allow-shrink"
    )]
    Shrunk { before: usize, now: usize },
}

/// Whether a build may publish far fewer articles than the last one (`--allow-shrink`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shrink {
    /// Refuse a store with under half the articles of the last build (an unmounted disk, a wrong path).
    #[default]
    Refuse,
    Allow,
}

/// Reads the store and writes every feed (only files whose bytes changed). The build cache (`crate::cache`)
/// makes it incremental: when nothing a build reads has changed since the last one, it stats the files and
/// returns the last report, writing nothing; otherwise only changed articles are parsed again.
pub fn build(
    config: &Config,
    now: DateTime<FixedOffset>,
    shrink: Shrink,
) -> Result<BuildReport, BuildError> {
    store::require_store(&config.site.articles)?;
    let started = std::time::SystemTime::now();
    let key = cache::key(config);
    let manifest = cache::dir(config).join(cache::MANIFEST);
    let last = cache::read::<cache::Manifest>(&manifest, key);
    let listing = store::find_sources(&config.site.articles);
    if let Some(last) = last
        .as_ref()
        .filter(|last| last.still_holds(config, now, &listing))
    {
        return Ok(BuildReport {
            published: last.published,
            feeds: last.feeds,
            written: Vec::new(),
            unchanged: last.outputs.len(),
            files: last.outputs.iter().map(|(path, _)| path.clone()).collect(),
            parsed: 0,
            reused: last.sources.len(),
            errors: last.errors.clone(),
        });
    }
    let clock = std::time::Instant::now();
    let loaded = load_cached(config, listing, started);
    tracing::debug!(
        parsed = loaded.parsed,
        reused = loaded.reused,
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "store loaded"
    );
    publish_loaded(config, loaded, started, now, shrink, last.as_ref()).map(|(report, _)| report)
}

/// Publishes a loaded store ([`publish`]) and writes the build's manifest ([`remember`]); gives the catalog back
/// for what follows (a round's digests). `last` is the last build's manifest, when there is one.
fn publish_loaded(
    config: &Config,
    loaded: store::cache::Loaded,
    started: std::time::SystemTime,
    now: DateTime<FixedOffset>,
    shrink: Shrink,
    last: Option<&cache::Manifest>,
) -> Result<(BuildReport, Catalog), BuildError> {
    let window = cache::Window::of(&loaded.catalog, now);
    let mut report = publish(
        config,
        &loaded.catalog,
        &loaded.links,
        loaded.errors,
        now,
        shrink,
        last,
    )?;
    report.parsed = loaded.parsed;
    report.reused = loaded.reused;
    remember(config, started, loaded.sources, window, &report);
    Ok((report, loaded.catalog))
}

/// Loads the store (`listing`: its files, as [`store::find_sources`] gives them) through the build cache's
/// parses, and keeps the new ones for the next build.
fn load_cached(
    config: &Config,
    listing: (Vec<PathBuf>, Vec<store::ArticleError>),
    started: std::time::SystemTime,
) -> store::cache::Loaded {
    let key = cache::key(config);
    let path = cache::dir(config).join(cache::ARTICLES);
    let previous = cache::read(&path, key).unwrap_or_default();
    store::cache::load_cached(config, listing, previous, started, |entries| {
        cache::write_logged(&path, key, entries)
    })
}

/// Writes the build's manifest, so the next build can tell that nothing changed (when every store file could be
/// stat'ed, and the store's published articles are not empty: an empty store's feeds are dated by `now`).
fn remember(
    config: &Config,
    started: std::time::SystemTime,
    sources: Vec<(PathBuf, Option<store::cache::Stamp>)>,
    window: cache::Window,
    report: &BuildReport,
) {
    let path = cache::dir(config).join(cache::MANIFEST);
    let sources: Option<Vec<_>> = sources
        .into_iter()
        .map(|(p, stamp)| stamp.map(|s| (p, s)))
        .collect();
    let outputs: Option<Vec<_>> = report
        .files
        .iter()
        .map(|p| store::cache::Stamp::read(p).map(|s| (p.clone(), s)))
        .collect();
    let (Some(sources), Some(outputs)) = (sources, outputs) else {
        let _ = std::fs::remove_file(&path);
        return;
    };
    let manifest = cache::Manifest {
        started,
        store: store::cache::Stamp::read(&config.site.articles),
        sources,
        outputs,
        window,
        published: report.published,
        feeds: report.feeds,
        errors: report.errors.clone(),
    };
    cache::write_logged(&path, cache::key(config), &manifest);
}

/// How many articles the last build published: from its manifest (`last`) while the `related.json` it wrote is
/// still there untouched, else the entries of `related.json` counted (at 100k articles, 110 MB of JSON), without
/// building them.
fn last_published(config: &Config, last: Option<&cache::Manifest>) -> Option<usize> {
    if let Some(known) = std::fs::canonicalize(&config.feeds.output)
        .ok()
        .and_then(|output| last?.published_if_current(&output.join("related.json")))
    {
        return Some(known);
    }
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    let bytes = std::fs::read(config.feeds.output.join("related.json")).ok()?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    let n = json.deserialize_map(Entries).ok()?;
    json.end().ok()?;
    Some(n)
}

/// Writes every feed and `related.json` from a loaded store; `errors` are the store's, reported with the build;
/// `last` is the last build's manifest, when there is one.
fn publish(
    config: &Config,
    catalog: &Catalog,
    links: &store::LinkIndex,
    mut errors: Vec<ArticleError>,
    now: DateTime<FixedOffset>,
    shrink: Shrink,
    last: Option<&cache::Manifest>,
) -> Result<BuildReport, BuildError> {
    let published = catalog.published(now).count();
    if let Some(before) = last_published(config, last)
        && shrink == Shrink::Refuse
        && before >= 4
        && published * 2 < before
    {
        return Err(BuildError::Shrunk {
            before,
            now: published,
        });
    }
    // Every file of the build is published at once (a staging folder switched in), or none is.
    let output = &config.feeds.output;
    let write_error = |source| BuildError::Write {
        path: output.clone(),
        source,
    };
    let mut live = vec![
        config.site.articles.as_path(),
        config.mail.outbox.as_path(),
        config.newsletter.templates.as_path(),
    ];
    if let state::StateLocation::Sqlite(db) = &config.state.database {
        live.push(db);
    }
    let cache_dir = cache::dir(config);
    live.push(&cache_dir);
    let mut out = Staged::begin(output, &live).map_err(write_error)?;
    let mut report = write_feeds(config, catalog, links, now, &mut out)?;
    write_related(config, catalog, now, &mut report, &mut out)?;
    out.commit().map_err(write_error)?;
    errors.extend(unknown_picks(catalog));
    report.errors = errors;
    Ok(report)
}

/// Writes `related.json` (every published article's related list) beside the feeds.
fn write_related(
    config: &Config,
    catalog: &Catalog,
    now: DateTime<FixedOffset>,
    report: &mut BuildReport,
    out: &mut Staged,
) -> Result<(), BuildError> {
    let started = std::time::Instant::now();
    let index = RelatedIndex::build(catalog, now, &config.related);
    let bytes = related::render_json(&index);
    tracing::debug!(
        articles = index.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "related reading computed"
    );
    report.write(out, "related.json", &bytes)
}

/// Editor's picks naming no article, located in their files.
pub(crate) fn unknown_picks(catalog: &Catalog) -> Vec<ArticleError> {
    related::check_picks(catalog, |path| std::fs::read_to_string(path).ok())
}

/// The related list of one published article with the reasons behind each score (`tidings related SLUG`).
pub fn related(
    config: &Config,
    slug: &str,
    now: DateTime<FixedOffset>,
) -> Result<related::Report, RelatedError> {
    let (catalog, _) = store::load(config);
    let index = RelatedIndex::build(&catalog, now, &config.related);
    index
        .explain(slug)
        .ok_or_else(|| index.missing(&catalog, slug))
}

fn write_feeds(
    config: &Config,
    catalog: &Catalog,
    links: &store::LinkIndex,
    now: DateTime<FixedOffset>,
    out: &mut Staged,
) -> Result<BuildReport, BuildError> {
    let clock = std::time::Instant::now();
    let plans = feed::plan_feeds(config, catalog, now);
    let wanted = feed::needs_bodies(config, &plans);
    let bodies = if wanted.is_empty() {
        Default::default()
    } else {
        store::cache::read_bodies(config, links, &wanted)
    };
    let files = feed::render_all(config, &plans, &bodies);
    tracing::debug!(
        bodies = bodies.len(),
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "feeds rendered"
    );
    let mut report = BuildReport {
        published: catalog.published(now).count(),
        feeds: plans.len(),
        ..Default::default()
    };
    for file in files {
        report.write(out, &file.path, &file.bytes)?;
    }
    Ok(report)
}

/// What one round of `run --once` did: the build, then each configured digest's latest tick.
#[derive(Debug)]
pub struct RoundReport {
    pub build: BuildReport,
    pub digests: Vec<SendReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Digest(#[from] NewsletterError),
}

/// `run --once`: one build, then every digest's latest tick at or before `now`, all from one reading of the
/// store. A tick that already has a run sends nothing again, so this is safe to call from cron as often as one
/// likes.
pub async fn run_once(
    config: &Config,
    now: DateTime<FixedOffset>,
    shrink: Shrink,
    options: &SendOptions<'_>,
    transport: &dyn Transport,
) -> Result<RoundReport, RoundError> {
    store::require_store(&config.site.articles).map_err(BuildError::from)?;
    let started = std::time::SystemTime::now();
    let loaded = load_cached(config, store::find_sources(&config.site.articles), started);
    let last = cache::read::<cache::Manifest>(
        &cache::dir(config).join(cache::MANIFEST),
        cache::key(config),
    );
    let (build, catalog) = publish_loaded(config, loaded, started, now, shrink, last.as_ref())?;
    let mut digests = Vec::new();
    for d in &config.digest {
        digests.push(digest_send_with(config, &catalog, &d.name, now, options, transport).await?);
    }
    Ok(RoundReport { build, digests })
}

//! The article store: finding the `*.md` (and Jekyll's `*.markdown`) files under `[site] articles`, reading them
//! and parsing each into a validated [`Article`], collected in a [`Catalog`] (newest first, ties by permalink;
//! looked up by slug).
//!
//! Reading ([`find_sources`], [`read_source`]) and parsing ([`parse_store`], [`parse_article`]) are separate, so
//! the parser is pure and testable on strings; [`load`] reads every file, then parses in two steps, each on
//! every core: front matter first (which gives every permalink: Zola's `path`, Jekyll's `permalink` and dated
//! file names, Hugo's `url`, else the site's pattern), then bodies, whose generator markup is evaluated before
//! Markdown (`body`: Jekyll's Liquid and kramdown attribute lists, Hugo's shortcodes, Zola's `@/` links, the
//! links resolved to the other articles' permalinks).
//!
//! A file that cannot become an article (too big, binary, not UTF-8, bad front matter, a permalink an earlier
//! file has: [`collect_articles`]) is reported as an [`ArticleError`] (`path:line:col: error: message`) and left
//! out; it never takes the others down. What is wrong inside an article that can still be published (a Liquid
//! tag or shortcode tidings cannot evaluate, a link to a missing article, a bad author URL) is left out of it and
//! reported the same way ([`Parsed::problems`]), so `check` fails on it. A file with no date anywhere (a README in
//! `_posts`, a Hugo page) is no article by its generator's rules: it is left out with a [`Severity::Note`], which
//! `check` lists without failing ([`page_note`]). [`load_required`] is for the commands
//! that publish: a store folder that does not exist is a [`StoreError`], not an empty store.
//!
//! An article keeps its Markdown body; its HTML is rendered on demand ([`Article::html`]), as most articles never
//! reach a feed's content. Text is cleaned here for every consumer: [`single_line`] for titles, names and
//! summaries (no line breaks can reach a mail header), [`xml_safe`] for bodies. [`taxonomy_slug`] and
//! [`same_category`] are the one rule for when two category (or tag) names are the same: equal slugs, as the
//! feed folders are named; an article's tags are kept once per slug.
//!
//! Drafts stay in the catalog (their categories still get feeds) but are never published; future-dated articles
//! are published once `now` reaches their date, so the catalog is filtered with [`Catalog::published`] at the
//! time of use. This module renders no feed, writes no file and reads no clock.

mod body;
pub mod cache;
mod flat_yaml;
mod front_matter;
mod kramdown;
mod links;
mod liquid;
pub mod markdown;
mod shortcodes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use crate::config::{AuthorConfig, Config, Generator};
use crate::related::terms::{Counter, Terms};
use front_matter::{AuthorRef, FrontMatterError, OneOrMany, key_position};
pub use links::LinkIndex;

/// The longest generated summary, in characters, when front matter gives none.
const SUMMARY_MAX_CHARS: usize = 280;

/// One article, validated. Strings are free of control characters that XML forbids; the body is Markdown
/// ([`Article::html`] renders it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Article {
    /// The file it came from (as found under the store path).
    pub source: PathBuf,
    pub slug: String,
    /// The stable feed id: front matter `id`, else the permalink.
    pub id: String,
    pub title: String,
    pub date: DateTime<FixedOffset>,
    pub updated: DateTime<FixedOffset>,
    /// When it stops being published (Hugo's `expiryDate`), if ever.
    pub expires: Option<DateTime<FixedOffset>>,
    /// The summary as plain text (for digests' text, JSON Feed's `summary`, related reading).
    pub summary: String,
    /// The summary as front matter wrote it, when that is Markdown with markup (`Using **Rust** and
    /// [serde](https://serde.rs)`): feeds render it ([`markdown::inline_markup`]) where they carry HTML.
    pub summary_markdown: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub author: Option<Author>,
    /// The Markdown body (its HTML is rendered on demand by [`Article::html`]: most articles never need it).
    /// Kept only when parsing with [`ParseContext::keep_bodies`] ([`parse_store`]); [`load`] and the build drop it
    /// once its terms are counted, and a feed reads the few it carries again ([`cache::read_bodies`]), so memory
    /// and the build cache grow with the store's metadata, not its text.
    pub body: Option<String>,
    /// How often each term occurs in the title and the rest (related reading's input), counted at parse time.
    pub terms: Terms,
    pub reading_minutes: u32,
    pub draft: bool,
    /// Editor's picks (slugs), in order.
    pub related: Vec<String>,
    /// The absolute permalink.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Author {
    /// The `[authors]` key, when the author came from config.
    pub key: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub url: Option<String>,
    pub bio: Option<String>,
}

impl Article {
    /// Whether readers may see it at `now`: not a draft, its date has come and its expiry has not.
    pub fn is_published(&self, now: DateTime<FixedOffset>) -> bool {
        !self.draft && self.date <= now && self.expires.is_none_or(|expires| now < expires)
    }

    /// The body as HTML, URLs as written. XML-safe: a character reference like `&#8;` in the Markdown cannot
    /// bring back a forbidden character.
    /// Empty when the body was not kept.
    pub fn html(&self) -> String {
        body_html(self.body.as_deref().unwrap_or_default())
    }

    /// [`Article::html`] of at most `max_bytes`, cut after the last whole top-level block that fits; `true`
    /// when something was cut.
    pub fn html_capped(&self, max_bytes: usize) -> (String, bool) {
        body_html_capped(self.body.as_deref().unwrap_or_default(), max_bytes)
    }
}

/// A Markdown body as XML-safe HTML ([`Article::html`]).
pub fn body_html(markdown: &str) -> String {
    xml_safe(&markdown::to_html(markdown))
}

/// [`body_html`] of at most `max_bytes`, cut after the last whole top-level block that fits; `true` when
/// something was cut.
pub fn body_html_capped(markdown: &str, max_bytes: usize) -> (String, bool) {
    let (html, cut) = markdown::to_html_capped(markdown, max_bytes);
    (xml_safe(&html), cut)
}

/// An article and the problems that did not keep it from being published (an author URL that is not http(s),
/// say): each is left out of the published article and reported, so `check` still fails on it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Parsed {
    pub article: Article,
    pub problems: Vec<ArticleError>,
}

/// A file that could not become an article, with where and what to fix; or, as a [`Severity::Note`], a file that
/// is no article by its generator's rules ([`page_note`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{}:{line}:{col}: {severity}: {message}", path.display())]
pub struct ArticleError {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub severity: Severity,
}

impl ArticleError {
    /// Whether it is something to fix (`check` fails on it), not a note about a file that is no article.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// What an [`ArticleError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Severity {
    /// Something to fix: `check` fails on it, `build` prints it.
    Error,
    /// A file its generator would not publish as a post either (a README in `_posts`, an undated page): left
    /// out, listed by `check` and `build -v`, never a failure.
    Note,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Note => "note",
        })
    }
}

/// Every valid article of the store (drafts and future ones included), newest first, ties broken by permalink.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    articles: Vec<Article>,
    /// Slug → position in `articles`: digests and editor's picks look articles up by slug many times.
    by_slug: HashMap<String, usize>,
    /// When the store folder last changed, if known: the `updated` of feeds when no article is published.
    modified: Option<DateTime<FixedOffset>>,
}

impl Catalog {
    /// Sorts `articles` into the catalog's order: date descending, then permalink.
    pub fn new(mut articles: Vec<Article>) -> Catalog {
        articles.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.url.cmp(&b.url)));
        let mut by_slug = HashMap::with_capacity(articles.len());
        for (i, a) in articles.iter().enumerate() {
            // Slugs are unique after `collect_articles`; should a caller pass duplicates, the newest wins.
            by_slug.entry(a.slug.clone()).or_insert(i);
        }
        Catalog {
            articles,
            by_slug,
            modified: None,
        }
    }

    /// The catalog, noting when its store folder last changed.
    pub fn with_modified(mut self, modified: Option<DateTime<FixedOffset>>) -> Catalog {
        self.modified = modified;
        self
    }

    /// When the store folder last changed (files added or removed at its top), if known.
    pub fn modified(&self) -> Option<DateTime<FixedOffset>> {
        self.modified
    }

    /// Every article, drafts and future ones included.
    pub fn all(&self) -> &[Article] {
        &self.articles
    }

    /// The articles readers may see at `now`, newest first.
    pub fn published(&self, now: DateTime<FixedOffset>) -> impl Iterator<Item = &Article> {
        self.articles.iter().filter(move |a| a.is_published(now))
    }

    pub fn by_slug(&self, slug: &str) -> Option<&Article> {
        self.by_slug.get(slug).map(|&i| &self.articles[i])
    }
}

/// A file read from the store.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// Finds every `*.md` under `root`, sorted by path. Hugo/Zola section pages (`_index.md`) are not articles.
pub fn find_sources(root: &Path) -> (Vec<PathBuf>, Vec<ArticleError>) {
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    if !root.is_dir() {
        errors.push(ArticleError {
            path: root.to_owned(),
            severity: Severity::Error,
            line: 1,
            col: 1,
            message: "the article store is not a folder; set [site] articles in config.toml".into(),
        });
        return (paths, errors);
    }
    // Sorted once at the end: walkdir's own sort takes each name apart again at every comparison. Hidden files
    // and folders (`.template.md`, `.git/`) are skipped, as Jekyll, Hugo and Zola skip them.
    let hidden =
        |e: &walkdir::DirEntry| e.depth() > 0 && e.file_name().as_encoded_bytes().starts_with(b".");
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| !hidden(e))
    {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                let path = e.path();
                // `.markdown` is Jekyll's other spelling (its older `jekyll new` sites use it).
                let markdown = path
                    .extension()
                    .is_some_and(|x| x == "md" || x == "markdown");
                if markdown && e.file_name() != "_index.md" && e.file_name() != "_index.markdown" {
                    paths.push(e.into_path());
                }
            }
            Ok(_) => {}
            Err(e) => errors.push(ArticleError {
                path: e.path().unwrap_or(root).to_owned(),
                severity: Severity::Error,
                line: 1,
                col: 1,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    paths.sort_unstable_by(|a, b| path_order(a, b));
    errors.sort_by(|a, b| path_order(&a.path, &b.path));
    (paths, errors)
}

/// Paths in the order of a walk that visits each folder's entries by name: component by component, which for
/// the paths a walk yields is their bytes with the separator below every other byte. Only the first byte where
/// they differ is mapped; the shared prefix (the store folder, at least) is skipped eight bytes at a time.
fn path_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    let (a, b) = (
        a.as_os_str().as_encoded_bytes(),
        b.as_os_str().as_encoded_bytes(),
    );
    let shared = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= shared && a[i..i + 8] == b[i..i + 8] {
        i += 8;
    }
    while i < shared && a[i] == b[i] {
        i += 1;
    }
    let sep = std::path::MAIN_SEPARATOR as u8;
    // A path that ends here comes first.
    let at = |s: &[u8]| s.get(i).map(|&c| if c == sep { 0 } else { c });
    at(a).cmp(&at(b))
}

/// Reads one file. Files over `max_bytes` are refused before reading; binary files and invalid UTF-8 are
/// reported with the position of the first bad byte.
pub fn read_source(path: PathBuf, max_bytes: u64) -> Result<Source, ArticleError> {
    let fail = |line, col, message: String| ArticleError {
        path: path.clone(),
        severity: Severity::Error,
        line,
        col,
        message,
    };
    // One open: the size from the open file, then its bytes (`fs::metadata` and `fs::read` would look the
    // path up twice).
    let cannot_read = |e: std::io::Error| fail(1, 1, format!("cannot read: {e}"));
    let mut file = std::fs::File::open(&path).map_err(cannot_read)?;
    let len = file.metadata().map_err(cannot_read)?.len();
    if len > max_bytes {
        return Err(fail(
            1,
            1,
            format!(
                "file is {len} bytes, over the limit of {max_bytes}; shorten it or raise [site] max_article_bytes"
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(cannot_read)?;
    if let Some(nul) = memchr::memchr(0, &bytes) {
        let (line, col) = byte_line_col(&bytes, nul);
        return Err(fail(
            line,
            col,
            "binary file (it contains NUL bytes); articles are UTF-8 Markdown".into(),
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source { path, text }),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let (line, col) = byte_line_col(e.as_bytes(), at);
            Err(fail(
                line,
                col,
                "invalid UTF-8; save the file as UTF-8".into(),
            ))
        }
    }
}

fn byte_line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}

/// What parsing needs to know about the site.
#[derive(Debug, Clone)]
pub struct ParseContext<'a> {
    /// The site's title (Liquid's `site.title`).
    pub title: &'a str,
    pub base_url: &'a url::Url,
    pub permalink: &'a str,
    /// The store's folder: an article's folders below it are the `{section}` / `{sections}` of its permalink.
    pub store: &'a Path,
    pub timezone: chrono_tz::Tz,
    pub reading_wpm: u32,
    pub authors: &'a std::collections::BTreeMap<String, AuthorConfig>,
    pub default_author: Option<&'a str>,
    /// `site.language`: the stop words and stemmer of related reading's term counts.
    pub language: &'a str,
    /// Whether articles keep their Markdown body ([`Article::body`]).
    pub keep_bodies: bool,
    /// Whose conventions the store follows (`Auto`: each file's own signs decide).
    pub generator: Generator,
    /// Whether a Hugo file name's `YYYY-MM-DD-` prefix is a date rather than part of its slug.
    pub hugo_name_dates: bool,
    /// A Jekyll site's `_config.yml` values (Liquid's other `site.*`).
    pub jekyll_config: &'a std::sync::Arc<BTreeMap<String, String>>,
}

impl<'a> ParseContext<'a> {
    pub fn from_config(config: &'a Config) -> Self {
        ParseContext {
            title: &config.site.title,
            base_url: &config.site.base_url,
            permalink: &config.site.permalink,
            store: &config.site.articles,
            timezone: config.timezone(),
            reading_wpm: config.site.reading_wpm,
            authors: &config.authors,
            default_author: config.site.default_author.as_deref(),
            language: &config.site.language,
            keep_bodies: true,
            generator: config.site.generator,
            hugo_name_dates: config.site.hugo_name_dates,
            jekyll_config: &config.site.jekyll_config,
        }
    }
}

/// Collects parsed articles (in path order) into a catalog. Two articles published at one permalink are an
/// error: the later file by path is left out, and its error names the earlier one. Two articles that share a
/// slug but not a permalink (`/2019/hello/`, `/2024/hello/`) are both published; the catalog needs one name for
/// each (related reading, digests, `tidings related SLUG`), so the oldest keeps the slug and each later one is
/// known by its date and slug (`2024-03-01-hello`).
pub fn collect_articles(
    results: Vec<Result<Parsed, ArticleError>>,
) -> (Catalog, Vec<ArticleError>) {
    let mut errors = Vec::new();
    let mut articles = Vec::with_capacity(results.len());
    // URL → the article (in `articles`) that has it.
    let mut by_url: FxHashMap<String, usize> = FxHashMap::default();
    for result in results {
        match result {
            Ok(Parsed { article, problems }) => {
                errors.extend(problems);
                if let Some(&first) = by_url.get(&article.url) {
                    let first: &Article = &articles[first];
                    let what = if first.slug == article.slug {
                        format!("slug \"{}\"", article.slug)
                    } else {
                        format!("permalink {}", article.url)
                    };
                    errors.push(ArticleError {
                        path: article.source.clone(),
                        severity: Severity::Error,
                        line: 1,
                        col: 1,
                        message: format!(
                            "{what} is already used by {} (both would be published at {}); give one of them another \
                             `slug:` in its front matter",
                            first.source.display(),
                            article.url
                        ),
                    });
                } else {
                    by_url.insert(article.url.clone(), articles.len());
                    articles.push(article);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    articles.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.source.cmp(&b.source)));
    errors.extend(separate_taxonomies(&mut articles));
    let mut slugs: FxHashSet<String> = FxHashSet::default();
    for article in &mut articles {
        if !slugs.insert(article.slug.clone()) {
            let dated = format!("{}-{}", article.date.format("%Y-%m-%d"), article.slug);
            let mut unique = dated.clone();
            let mut n = 2;
            while !slugs.insert(unique.clone()) {
                unique = format!("{dated}-{n}");
                n += 1;
            }
            article.slug = unique;
        }
    }
    (Catalog::new(articles), errors)
}

/// Category (and tag) names that share a slug, and so a feed folder, but are not spellings of one name ("C++"
/// and "C" are both `c`): the oldest article's name keeps the folder; a later article's other name is reported,
/// naming both, and left out of it, so no feed mixes two subjects. Spellings that differ only in case, spaces,
/// hyphens or underscores ("Dev Ops", "dev-ops") are one name. `articles` are oldest first.
fn separate_taxonomies(articles: &mut [Article]) -> Vec<ArticleError> {
    fn spelling(name: &str) -> String {
        name.chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    }
    let mut errors = Vec::new();
    // (kind, slug) → (spelling, name, file) of the first article that used it.
    let mut owners: FxHashMap<(&'static str, String), (String, String, PathBuf)> =
        FxHashMap::default();
    // Whether a name is left out, decided where it is first used: the slug and spelling of a name are worked
    // out once, not at each of its (thousands of) uses. Categories, then tags.
    let mut decided: [FxHashMap<String, bool>; 2] = Default::default();
    let mut conflict = |kind: &'static str, name: &str, source: &Path| -> bool {
        let decided = &mut decided[usize::from(kind == "tag")];
        let clash = match decided.get(name) {
            Some(&clash) => clash,
            None => {
                let spelled = spelling(name);
                let owner = owners
                    .entry((kind, taxonomy_slug(name)))
                    .or_insert_with(|| (spelled.clone(), name.to_string(), source.to_owned()));
                let clash = owner.0 != spelled;
                decided.insert(name.to_owned(), clash);
                clash
            }
        };
        if clash {
            let slug = taxonomy_slug(name);
            let owner = &owners[&(kind, slug.clone())];
            errors.push(ArticleError {
                path: source.to_owned(),
                severity: Severity::Error,
                line: 1,
                col: 1,
                message: format!(
                    "{kind} \"{name}\" and {kind} \"{}\" (in {}) would share the feed folder {kind}/{slug}/; rename \
                     one of them (\"{name}\" is left out of it)",
                    owner.1,
                    owner.2.display()
                ),
            });
        }
        clash
    };
    for a in articles.iter_mut() {
        let Article {
            category,
            tags,
            source,
            ..
        } = a;
        if category
            .as_deref()
            .is_some_and(|c| conflict("category", c, source))
        {
            *category = None;
        }
        tags.retain(|t| !conflict("tag", t, source));
    }
    errors
}

/// The store as a whole cannot be read: nothing may be published from it (empty feeds would replace the real
/// ones, and a digest tick would be used up).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{}: the article store does not exist; check [site] articles in config.toml (or TIDINGS_SITE_ARTICLES) \
         and that its disk is mounted",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("{}: the article store is not a folder; set [site] articles to the folder of the articles", path.display())]
    NotAFolder { path: PathBuf },
    #[error("{}: cannot read the article store: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Checks that the store folder exists and can be listed.
pub fn require_store(root: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(root)
                .map(|_| ())
                .map_err(|error| StoreError::Unreadable {
                    path: root.to_owned(),
                    error,
                })
        }
        Ok(_) => Err(StoreError::NotAFolder {
            path: root.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::Missing {
            path: root.to_owned(),
        }),
        Err(error) => Err(StoreError::Unreadable {
            path: root.to_owned(),
            error,
        }),
    }
}

/// [`load`] for commands that publish (`build`, `run --once`): a store folder that is missing or unreadable is
/// an error rather than an empty store.
pub fn load_required(config: &Config) -> Result<(Catalog, Vec<ArticleError>), StoreError> {
    require_store(&config.site.articles)?;
    Ok(load(config))
}

/// Reads and parses the whole store of `config`, both cores at once. A store folder that cannot be read is
/// reported as an [`ArticleError`] (`check` lists it); commands that publish use [`load_required`]. `build`
/// loads through [`cache::load_cached`], which is this with the last build's parses reused.
pub fn load(config: &Config) -> (Catalog, Vec<ArticleError>) {
    let loaded = cache::load_cached(
        config,
        find_sources(&config.site.articles),
        cache::ArticleCache::default(),
        std::time::SystemTime::now(),
        |_| {},
    );
    (loaded.catalog, loaded.errors)
}

/// Parses every source into a catalog: first each file's front matter (which gives every permalink), then each
/// body, whose links to other articles (`@/post.md`, `{% post_url %}`, `{{< ref >}}`) need those permalinks.
/// Pure; both steps on every core.
pub fn parse_store(
    sources: Vec<Result<Source, ArticleError>>,
    ctx: &ParseContext<'_>,
) -> (Catalog, Vec<ArticleError>) {
    let heads: Vec<Result<Head, ArticleError>> = sources
        .into_par_iter()
        .map(|source| source.and_then(|s| parse_head(s.path, s.text, ctx)))
        .collect();
    let links = LinkIndex::new(
        heads
            .iter()
            .flatten()
            .map(|h| (h.article.source.as_path(), h.article.url.as_str())),
    );
    let results: Vec<Result<Parsed, ArticleError>> = heads
        .into_par_iter()
        .map_init(
            || Counter::new(ctx.language),
            |counter, head| head.map(|h| finish(h, ctx, &links, counter)),
        )
        .collect();
    collect_articles(results)
}

/// Parses one article from its text. `path` gives the slug and date a file name carries, the generator's
/// conventions (`body::Dialect`) and the position of errors. Links to other articles cannot be resolved
/// here (use [`parse_store`]): they are reported as missing.
pub fn parse_article(
    path: &Path,
    text: &str,
    ctx: &ParseContext<'_>,
) -> Result<Parsed, ArticleError> {
    let head = parse_head(path.to_owned(), text.to_string(), ctx)?;
    let links = LinkIndex::new([(head.article.source.as_path(), head.article.url.as_str())]);
    Ok(finish(head, ctx, &links, &mut Counter::new(ctx.language)))
}

/// An article read up to its body: everything but what the body gives (its Markdown, text, summary, reading
/// time), which may need the other articles' permalinks.
struct Head {
    article: Article,
    /// The summary front matter gives, if any.
    summary: Option<String>,
    /// What ends a summary written at the top of the body: front matter's `excerpt_separator` (Jekyll), else
    /// (`None`) Hugo's `<!--more-->` or Zola's `<!-- more -->` ([`more_comment`]).
    summary_divider: Option<String>,
    problems: Vec<ArticleError>,
    /// The whole file and where its body starts.
    text: String,
    body_start: usize,
    dialect: body::Dialect,
    liquid: liquid::Variables,
}

impl Head {
    /// Whether the body may look up other articles (a Zola `@/` link, a Liquid tag, a Hugo shortcode): if not,
    /// it can be finished before every permalink is known.
    fn may_link(&self) -> bool {
        let body = &self.text.as_bytes()[self.body_start..];
        memchr::memchr2_iter(b'@', b'{', body).any(|i| {
            matches!(
                (body[i], body.get(i + 1)),
                (b'@', Some(b'/')) | (b'{', Some(b'%' | b'{'))
            )
        })
    }
}

fn parse_head(path: PathBuf, text: String, ctx: &ParseContext<'_>) -> Result<Head, ArticleError> {
    let fail = |line: usize, col: usize, message: String| ArticleError {
        path: path.clone(),
        severity: Severity::Error,
        line,
        col,
        message,
    };
    let mut problems = Vec::new();
    let from_fm = |e: FrontMatterError| fail(e.line, e.col, e.message);
    // Hugo keeps a dated file name whole in the slug, unless its config reads dates from file names.
    let name_date_in_slug = ctx.generator == Generator::Hugo && !ctx.hugo_name_dates;
    let (file_stem, file_date) = file_slug_and_date(&path, name_date_in_slug);
    let split = match front_matter::split(&text) {
        Ok(split) => split,
        Err(_) if file_date.is_none() && front_matter::opening(&text).is_none() => {
            return Err(page_note(&path, 1, None));
        }
        Err(e) => return Err(from_fm(e)),
    };
    let fm = front_matter::parse(&split).map_err(from_fm)?;
    let toml = split.format == front_matter::Format::Toml;
    let dialect = body::Dialect::of(&path, split.format, ctx.generator);
    // Position of a front matter key's value in the file, for errors about that key.
    let at_key = |key: &str| {
        key_position(split.front, key).map_or((split.front_line, 1), |(l, c)| {
            (l + split.front_line - 1, c)
        })
    };
    // The same for the first of a field's spellings that is written.
    let at_first_key = |keys: &[&str]| {
        keys.iter()
            .find(|k| key_position(split.front, k).is_some())
            .map_or((split.front_line, 1), |k| at_key(k))
    };

    // Zola keeps a page's URL in `path` ("2024/01/05/slug"), which then gives its date and slug too.
    let zola_path = fm
        .path
        .as_deref()
        .map(|p| p.trim().trim_matches('/'))
        .filter(|p| !p.is_empty());
    let (path_slug, path_date) = zola_path.map_or((None, None), slug_and_date_of_url_path);
    // No date anywhere (a `date:` written empty is a date left out: an error below, as a bad one is).
    let undated = fm.date.is_none()
        && fm.publish_date.is_none()
        && key_position(split.front, "date").is_none()
        && path_date.is_none()
        && file_date.is_none();
    if undated {
        return Err(page_note(&path, split.front_line, Some(split.format)));
    }

    let title = match &fm.title {
        Some(Value::String(s)) => single_line(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            let (l, c) = at_key("title");
            return Err(fail(l, c, "title must be text".into()));
        }
        None => String::new(),
    };
    // Jekyll titles a dated post without one after its file name (`2015-02-26-introducing-jekyll-talk`:
    // "Introducing Jekyll Talk"),
    // and prints titles through `smartify`: curly quotes, dashes, character references decoded.
    let title = match (title.is_empty(), dialect, file_date) {
        (true, body::Dialect::Jekyll, Some(_)) => titleize_slug(&file_stem),
        (false, body::Dialect::Jekyll, _) => single_line(&markdown::smartify(&title)),
        _ => title,
    };
    if title.is_empty() {
        let (l, c) = fm
            .title
            .as_ref()
            .map_or((split.front_line, 1), |_| at_key("title"));
        let example = if toml {
            "title = \"...\""
        } else {
            "title: ..."
        };
        return Err(fail(
            l,
            c,
            format!("missing title; add `{example}` to the front matter"),
        ));
    }

    // A date field's value, if written; a bad one is an error at the first of `keys` (its spellings) written.
    let date_of = |value: &Option<Value>, keys: &[&str]| {
        value
            .as_ref()
            .map(|v| {
                parse_date_value(v, ctx.timezone).map_err(|message| {
                    let (l, c) = at_first_key(keys);
                    fail(l, c, message)
                })
            })
            .transpose()
    };
    // Hugo's `publishDate`: not published before it; when later than `date` (or without one), it is the date.
    let publish_date = date_of(
        &fm.publish_date,
        &["publishDate", "publishdate", "pubdate", "published"],
    )?;
    let date = match (date_of(&fm.date, &["date"])?, publish_date) {
        (Some(date), Some(publish)) => date.max(publish),
        (Some(date), None) | (None, Some(date)) => date,
        (None, None) => match path_date.or(file_date) {
            Some(d) => check_year(local_midnight(d, ctx.timezone)).map_err(|m| fail(1, 1, m))?,
            None => {
                let fix = if toml {
                    "missing date; add `date = 2024-01-31` (or an RFC 3339 date-time like 2024-01-31T09:00:00+01:00) \
                     to the front matter, or a `path = \"2024/01/31/slug\"`"
                } else {
                    "missing date; add `date: YYYY-MM-DD` (or RFC 3339) to the front matter, or name the file \
                     YYYY-MM-DD-slug.md"
                };
                return Err(fail(split.front_line, 1, fix.into()));
            }
        },
    };
    let updated = date_of(&fm.updated, &["updated", "lastmod", "last_modified_at"])?
        .unwrap_or(date)
        .max(date);
    let expires = date_of(
        &fm.expiry_date,
        &["expiryDate", "expirydate", "unpublishdate"],
    )?;

    // Zola slugifies a slug and a file name (`bevy-0.16` → `bevy-0-16`: its default `slugify.paths = "on"`).
    let zola = ctx.generator == Generator::Zola;
    let slug = match (&fm.slug, path_slug) {
        (Some(s), _) => {
            let s = if zola {
                zola_slug(s.trim())
            } else {
                url_safe_slug(s.trim())
            };
            check_slug(&s).map_err(|m| {
                let (l, c) = at_key("slug");
                fail(l, c, m)
            })?;
            s
        }
        (None, Some(s)) => {
            check_slug(&s).map_err(|m| {
                let (l, c) = at_key("path");
                fail(l, c, format!("path gives {m}"))
            })?;
            s
        }
        (None, None) => {
            let file_stem = if zola {
                zola_slug(&file_stem)
            } else {
                url_safe_slug(&file_stem)
            };
            check_slug(&file_stem).map_err(|m| {
                fail(
                    1,
                    1,
                    format!(
                        "the file name gives {m}; rename the file, or set the slug in front matter ({})",
                        if toml { "slug = \"...\"" } else { "slug: ..." }
                    ),
                )
            })?;
            file_stem
        }
    };

    // `author`, else the first of `authors` (Zola, Hugo) or of Zola's `taxonomies.authors`.
    let author_ref = fm.author.or_else(|| {
        fm.authors
            .or_else(|| fm.taxonomies.as_ref().and_then(|t| t.authors.clone()))
            .and_then(|a| a.into_vec().into_iter().next())
            .map(AuthorRef::Key)
    });
    let author = match author_ref {
        // A key of [authors]; else, as Jekyll and Hugo stores write it, the author's name itself.
        Some(AuthorRef::Key(key)) => Some(match ctx.authors.get(&key) {
            Some(a) => author_from_config(&key, a),
            None => match ctx.authors.iter().find(|(_, a)| a.name == key) {
                Some((k, a)) => author_from_config(k, a),
                None => Author {
                    key: None,
                    name: single_line(&key),
                    email: None,
                    url: None,
                    bio: None,
                },
            },
        }),
        Some(AuthorRef::Inline {
            name,
            email,
            url,
            bio,
        }) => {
            // A bad address or link is left out of the feeds (where it would break the XML or run as script) and
            // reported; the article itself is fine.
            let mut problem = |key: &str, message: String| {
                let (l, c) = at_key("author");
                problems.push(fail(l, c, format!("author {key}: {message}")));
            };
            let email = email.filter(|e| match check_author_email(e) {
                Ok(()) => true,
                Err(m) => {
                    problem("email", m);
                    false
                }
            });
            let url = url.filter(|u| match check_author_url(u) {
                Ok(()) => true,
                Err(m) => {
                    problem("url", m);
                    false
                }
            });
            Some(Author {
                key: None,
                name: single_line(&name),
                email,
                url,
                bio: bio.map(|b| single_line(&b)),
            })
        }
        None => ctx
            .default_author
            .and_then(|key| ctx.authors.get(key).map(|a| author_from_config(key, a))),
    };

    // Jekyll reads `categories: jekyll update` as two categories; Hugo and Zola write lists (or commas).
    let names = |list: OneOrMany| match (list, dialect) {
        (OneOrMany::One(s), body::Dialect::Jekyll) => {
            s.split_whitespace().map(str::to_string).collect()
        }
        (list, _) => list.into_vec(),
    };
    let categories: Vec<String> = fm
        .categories
        .map(names)
        .or_else(|| {
            fm.taxonomies
                .as_ref()
                .and_then(|t| t.categories.clone())
                .map(|c| match c {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                })
        })
        .unwrap_or_default();
    let category = fm
        .category
        .clone()
        .or_else(|| categories.first().cloned())
        .map(|c| single_line(&c))
        .filter(|c| !c.is_empty());
    let mut tags: Vec<String> = fm
        .tags
        .or_else(|| fm.taxonomies.and_then(|t| t.tags))
        .map(names)
        .unwrap_or_default()
        .iter()
        .map(|t| single_line(t))
        .filter(|t| !t.is_empty())
        .collect();
    // `[rust, Rust]` is one tag (one `tag/rust/` feed): keep the first spelling of each slug.
    let mut seen = HashSet::new();
    tags.retain(|t| seen.insert(taxonomy_slug(t)));
    // A name of only punctuation ("!!!") has no slug to name a feed folder: reported, and left out.
    let mut nameless = |kind: &str, name: &str, keys: &[&str]| {
        let (l, c) = keys
            .iter()
            .find(|k| key_position(split.front, k).is_some())
            .map_or((split.front_line, 1), |k| at_key(k));
        problems.push(fail(
            l,
            c,
            format!(
                "{kind} \"{name}\" has no letter or digit to name its feed folder ({kind}/<name>/); rename it"
            ),
        ));
    };
    let category = category.filter(|c| {
        let named = !taxonomy_slug(c).is_empty();
        if !named {
            nameless("category", c, &["category", "categories", "taxonomies"]);
        }
        named
    });
    tags.retain(|t| {
        let named = !taxonomy_slug(t).is_empty();
        if !named {
            nameless("tag", t, &["tags", "taxonomies"]);
        }
        named
    });

    // Where the article is published: Zola's `path`, Jekyll's `permalink`, Hugo's `url`, else the site's pattern.
    // Jekyll's `:categories` (and `{categories}`) is every category, as folders: `category: x` is the list [x].
    // Jekyll: the names lowercased and escaped (`Post Formats` → `post%20formats`), and the date in the site's
    // zone, as Jekyll makes its URLs; elsewhere the names' slugs, and the date as written.
    let jekyll = dialect == body::Dialect::Jekyll;
    let categories_path = category_path(
        if categories.is_empty() {
            category.as_slice()
        } else {
            &categories
        },
        jekyll,
    );
    let url_date = if jekyll {
        date.with_timezone(&ctx.timezone).fixed_offset()
    } else {
        date
    };
    // Zola's `path` always ends in a slash, whatever its last part looks like (`1.94.1-release`).
    let own_url = zola_path.map(|p| format!("{p}/")).or_else(|| {
        fm.permalink
            .as_deref()
            .or(fm.url.as_deref())
            .map(|p| expand_jekyll_permalink(p, &slug, url_date, &categories_path))
    });
    let url = match own_url {
        Some(p) => page_url(ctx.base_url, &p),
        None => permalink(
            ctx.base_url,
            ctx.permalink,
            &Placeholders {
                slug: &slug,
                slug_written: fm.slug.is_some() || zola_path.is_some(),
                title: &title,
                date: url_date,
                category: category.as_deref(),
                categories: &categories_path,
                sections: &if ctx.permalink.contains("{section") {
                    sections(&path, ctx.store, zola)
                } else {
                    Vec::new()
                },
            },
        ),
    };
    let id = match &fm.id {
        Some(id) => {
            let (l, c) = at_key("id");
            check_id(id).map_err(|m| fail(l, c, m))?;
            id.trim().to_string()
        }
        None => url.clone(),
    };
    let written_summary = fm
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(single_line);
    // A summary in Markdown (Hugo renders one: `Using **Rust**`) is its plain text here; the feeds render the
    // Markdown, kept beside it, for their HTML fields. One that is only markup (an image) is no summary.
    let (summary, summary_markdown) = match written_summary
        .as_deref()
        .map(|s| (s, markdown::inline_markup(s)))
    {
        Some((written, Some(markup))) => {
            let text = single_line(&markup.text);
            if text.is_empty() {
                (None, None)
            } else {
                (Some(text), Some(written.to_owned()))
            }
        }
        Some((written, None)) => (Some(written.to_owned()), None),
        None => (None, None),
    };
    let liquid = match dialect {
        body::Dialect::Jekyll => liquid_variables(
            ctx,
            &fm.extra,
            &title,
            &url,
            date,
            &slug,
            &categories,
            &tags,
            written_summary.as_deref(),
            author.as_ref(),
        ),
        body::Dialect::Hugo | body::Dialect::Zola => liquid::Variables::default(),
    };
    let body_start = split.body.as_ptr() as usize - text.as_ptr() as usize;
    let article = Article {
        source: path,
        id,
        slug,
        title,
        date,
        updated,
        expires,
        summary: String::new(),
        summary_markdown,
        category,
        tags,
        author,
        body: None,
        terms: Terms::default(),
        reading_minutes: 1,
        draft: fm.draft.unwrap_or(false),
        related: fm.related.map(|r| r.into_vec()).unwrap_or_default(),
        url,
    };
    let summary_divider = match fm.extra.get("excerpt_separator") {
        Some(Value::String(divider)) if !divider.trim().is_empty() => Some(divider.clone()),
        _ => None,
    };
    Ok(Head {
        article,
        summary,
        summary_divider,
        problems,
        text,
        body_start,
        dialect,
        liquid,
    })
}

/// The body's part of an article: generator markup evaluated ([`body::prepare`]), then text, summary and reading
/// time from the Markdown. What could not be evaluated is reported at its place in the file.
fn finish(head: Head, ctx: &ParseContext<'_>, links: &LinkIndex, counter: &mut Counter) -> Parsed {
    let (mut article, summary, markdown, problems) = prepared(head, links);
    let rendered = markdown::analyze(&markdown);
    article.summary =
        summary.unwrap_or_else(|| markdown::summary(&rendered.first_paragraph, SUMMARY_MAX_CHARS));
    article.terms = counter.count(&article.title, &article.summary, &xml_clean(&rendered.text));
    article.reading_minutes = markdown::reading_minutes(rendered.words, ctx.reading_wpm);
    article.body = ctx.keep_bodies.then(|| xml_safe(&markdown));
    Parsed { article, problems }
}

/// An article's body as [`finish`] keeps it, without the analysis (what a feed needs of an article loaded
/// without its body).
fn body_only(head: Head, links: &LinkIndex) -> String {
    xml_safe(&prepared(head, links).2)
}

/// The article of `head`, its summary from front matter, its body's Markdown with generator markup evaluated,
/// and the problems found so far (what could not be evaluated at its place in the file).
fn prepared(head: Head, links: &LinkIndex) -> (Article, Option<String>, String, Vec<ArticleError>) {
    let Head {
        article,
        summary,
        summary_divider,
        mut problems,
        text,
        body_start,
        dialect,
        liquid,
    } = head;
    // Characters XML forbids go first: dropped later, they could join what the passes saw apart (a link
    // definition that only became one without them).
    let written = &text[body_start..];
    let raw = xml_clean(written);
    let (markdown, found) = body::prepare(
        &raw,
        &body::BodyContext {
            dialect,
            links,
            liquid: &liquid,
        },
    );
    for p in found {
        let offset = offset_in_written(written, &raw, p.offset);
        let (line, col) = crate::config::line_col(&text, body_start + offset);
        problems.push(ArticleError {
            path: article.source.clone(),
            severity: Severity::Error,
            line,
            col,
            message: p.message,
        });
    }
    // Else the body up to its summary divider, when it has one, as one line (Hugo's manual summary, Jekyll's
    // excerpt); else [`finish`] takes the first paragraph.
    let summary = summary.or_else(|| {
        let at = match &summary_divider {
            Some(divider) => markdown.find(divider.as_str())?,
            None => more_comment(&markdown)?,
        };
        Some(single_line(&markdown::plain_text(&markdown[..at]))).filter(|s| !s.is_empty())
    });
    (article, summary, markdown, problems)
}

/// Where the first `<!--more-->` of `markdown` starts, spaces inside allowed: Hugo writes `<!--more-->`, Zola's
/// documentation `<!-- more -->`.
fn more_comment(markdown: &str) -> Option<usize> {
    markdown
        .match_indices("<!--")
        .map(|(at, _)| at)
        .find(|&at| {
            let inside = markdown[at + 4..].trim_start();
            inside
                .strip_prefix("more")
                .is_some_and(|rest| rest.trim_start().starts_with("-->"))
        })
}

/// The offset in `written` of byte `offset` of `cleaned` (`written` without the characters XML forbids).
fn offset_in_written(written: &str, cleaned: &str, offset: usize) -> usize {
    if written.len() == cleaned.len() {
        return offset;
    }
    let mut kept = 0;
    for (i, c) in written.char_indices() {
        if kept >= offset {
            return i;
        }
        if !is_xml_forbidden(&c) {
            kept += c.len_utf8();
        }
    }
    written.len()
}

/// Liquid's `site.*` and `page.*` for a Jekyll post.
#[allow(clippy::too_many_arguments)]
fn liquid_variables(
    ctx: &ParseContext<'_>,
    extra: &serde_json::Map<String, Value>,
    title: &str,
    url: &str,
    date: DateTime<FixedOffset>,
    slug: &str,
    categories: &[String],
    tags: &[String],
    summary: Option<&str>,
    author: Option<&Author>,
) -> liquid::Variables {
    let base = ctx.base_url;
    let mut vars = liquid::Variables {
        site_config: ctx.jekyll_config.clone(),
        ..Default::default()
    };
    let origin = base.origin().ascii_serialization();
    let baseurl = base.path().trim_end_matches('/').to_string();
    vars.site.insert("url".into(), origin);
    vars.site.insert("title".into(), ctx.title.to_string());
    // Jekyll's page.url is the path below the site's baseurl.
    let page_path = url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let page_path = page_path
        .strip_prefix(&baseurl)
        .unwrap_or(&page_path)
        .to_string();
    vars.site.insert("baseurl".into(), baseurl);
    for (key, value) in extra {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<String>(),
            _ => continue,
        };
        vars.page.insert(key.clone(), text);
    }
    for (key, value) in [
        ("title", title.to_string()),
        ("url", page_path),
        ("date", date.format("%Y-%m-%d %H:%M:%S %z").to_string()),
        ("slug", slug.to_string()),
        ("categories", categories.concat()),
        ("tags", tags.concat()),
    ] {
        vars.page.insert(key.into(), value);
    }
    if let Some(s) = summary {
        for key in ["excerpt", "description", "summary"] {
            vars.page.insert(key.into(), s.to_string());
        }
    }
    if let Some(a) = author {
        vars.page.insert("author".into(), a.name.clone());
    }
    vars
}

/// A slug must be one URL path segment: not empty, without `/ \ ? #`, whitespace or control characters.
/// `slug` as written when it can be part of a URL; else slugified as Zola and Hugo do ("My Zola Post" →
/// `my-zola-post`, "Hello World!" → `hello-world`), so a file name with spaces is no reason to drop an article.
/// What has no letter or digit at all stays as written, for [`check_slug`] to report.
fn url_safe_slug(slug: &str) -> String {
    if check_slug(slug).is_ok() {
        return slug.to_owned();
    }
    match taxonomy_slug(slug) {
        slugified if !slugified.is_empty() => slugified,
        _ => slug.to_owned(),
    }
}

fn check_slug(slug: &str) -> Result<(), String> {
    if slug.is_empty()
        || slug.contains(['/', '\\', '?', '#', '%'])
        || slug.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "slug \"{}\", which cannot be part of a URL; use letters, digits and hyphens",
            slug.escape_debug()
        ));
    }
    Ok(())
}

/// The slug (last segment, without `.html`) and the date (a `YYYY/MM/DD` before the last segment, after any
/// section: `inside-rust/2024/01/05/my-post`) of a URL path like Zola's `path = "2024/01/05/my-post"`.
fn slug_and_date_of_url_path(path: &str) -> (Option<String>, Option<NaiveDate>) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let slug = segments.last().map(|s| {
        s.strip_suffix(".html")
            .or_else(|| s.strip_suffix(".htm"))
            .unwrap_or(s)
            .to_string()
    });
    let date = segments.windows(4).find_map(|w| match w {
        [y, m, d, _] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            NaiveDate::parse_from_str(&format!("{y}-{m}-{d}"), "%Y-%m-%d").ok()
        }
        _ => None,
    });
    (slug, date)
}

/// Categories as URL folders (`jekyll/update`), in order: each one's slug (nameless ones left out), or for
/// Jekyll (`jekyll`) each one lowercased and escaped as Jekyll's `:categories` has them (`post%20formats`).
fn category_path(categories: &[String], jekyll: bool) -> String {
    let mut seen = HashSet::new();
    categories
        .iter()
        .map(|c| {
            if jekyll {
                jekyll_escape_path(&c.to_lowercase())
            } else {
                taxonomy_slug(c)
            }
        })
        .filter(|c| !c.is_empty() && (!jekyll || seen.insert(c.clone())))
        .collect::<Vec<_>>()
        .join("/")
}

/// Characters Jekyll's `URL.escape_path` leaves as they are (RFC 3986's unreserved and sub-delimiters, `:`, `@`);
/// every other byte is percent-encoded.
const JEKYLL_PATH_KEEPS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

fn jekyll_escape_path(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment.trim(), JEKYLL_PATH_KEEPS).to_string()
}

/// Jekyll's `Utils.titleize_slug`: each hyphen-separated word capitalised.
fn titleize_slug(slug: &str) -> String {
    slug.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Zola's slug of a name (`slugify.paths = "on"`, its default): the `slug` crate's, as Zola uses it.
fn zola_slug(name: &str) -> String {
    match slug::slugify(name) {
        slugged if !slugged.is_empty() => slugged,
        _ => name.to_owned(),
    }
}

/// Jekyll's front-matter `permalink` with its placeholders (`:year`, `:short_year`, `:month`, `:i_month`,
/// `:day`, `:i_day`, `:title`, `:slug`, `:categories`, `:output_ext`) filled in, an empty `:categories` leaving
/// no empty folder; a Hugo `url` has none and stays as written.
fn expand_jekyll_permalink(
    pattern: &str,
    slug: &str,
    date: DateTime<FixedOffset>,
    categories: &str,
) -> String {
    // Longer names first: `:i_month` before `:month` would be no matter, `:short_year` before `:year` is.
    pattern
        .replace(":short_year", &date.format("%y").to_string())
        .replace(":year", &date.format("%Y").to_string())
        .replace(":i_month", &date.format("%-m").to_string())
        .replace(":month", &date.format("%m").to_string())
        .replace(":i_day", &date.format("%-d").to_string())
        .replace(":day", &date.format("%d").to_string())
        .replace(":title", slug)
        .replace(":slug", slug)
        .replace(":categories", categories)
        .replace(":output_ext", ".html")
        .replace("//", "/")
}

/// The absolute URL of a page published at `path` (below the site's base URL). A path without an extension is
/// a folder, so it ends with `/`, as the generators publish it.
fn page_url(base: &url::Url, path: &str) -> String {
    let path = path.trim().trim_start_matches('/');
    let last = path.rsplit('/').next().unwrap_or("");
    let path = if path.is_empty() || path.ends_with('/') || last.contains('.') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    base.join(&path)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("{base}{path}"))
}

/// An `id:` from front matter becomes the feed item's id forever (Atom `id`, RSS `guid`): it must be one line
/// and an absolute URI (RFC 4287 4.2.6), like `tag:example.com,2024:post-1` or a URL.
fn check_id(id: &str) -> Result<(), String> {
    let shown = id.escape_debug();
    if id.chars().any(char::is_control) {
        return Err(format!(
            "id \"{shown}\" contains control characters; write it on one line, without them"
        ));
    }
    let id = id.trim();
    if id.is_empty() || id.contains(char::is_whitespace) || url::Url::parse(id).is_err() {
        return Err(format!(
            "id \"{shown}\" is not an absolute URI; use a tag URI like \"tag:example.com,2024:my-post\" or a URL, \
             or remove it (the permalink is the default)"
        ));
    }
    Ok(())
}

/// An author's e-mail address as a feed carries it (Atom `<email>`).
pub fn check_author_email(email: &str) -> Result<(), String> {
    crate::domain::EmailAddress::parse(email)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// An author's link: an absolute http(s) URL, never `javascript:` or `data:`.
pub fn check_author_url(link: &str) -> Result<(), String> {
    match url::Url::parse(link.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && !link.chars().any(char::is_control) => {
            Ok(())
        }
        _ => Err(format!(
            "\"{}\" is not an http(s) URL; use one like \"https://example.com/about/\"",
            link.escape_debug()
        )),
    }
}

fn author_from_config(key: &str, a: &AuthorConfig) -> Author {
    Author {
        key: Some(key.to_string()),
        name: single_line(&a.name),
        email: a.email.clone(),
        url: a.url.clone(),
        bio: a.bio.as_deref().map(single_line),
    }
}

/// The folders an article sits in below the store, as Hugo's `:sections` (and Zola's section path) are:
/// lowercased, as Hugo puts them in URLs (slugified for Zola, as its `slugify.paths` does); without a page bundle's own folder (`posts/hello/index.md` is in
/// `posts`) or a folder whose name starts with `_` (Jekyll's `_posts`, which no URL shows).
fn sections(path: &Path, store: &Path, zola: bool) -> Vec<String> {
    let Ok(within) = path.strip_prefix(store) else {
        return Vec::new();
    };
    let mut folders: Vec<&std::ffi::OsStr> = within
        .parent()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    if within.file_stem().is_some_and(|s| s == "index") {
        folders.pop();
    }
    folders
        .into_iter()
        .filter_map(|f| f.to_str())
        .filter(|f| !f.starts_with('_') && *f != ".")
        .map(|f| if zola { zola_slug(f) } else { f.to_lowercase() })
        .collect()
}

/// The slug a file name gives (`2024-01-05-hello.md` → `hello`, or the whole name with `keep_date`, as Hugo
/// has it; `post/index.md` → `post`) and the date in a Jekyll file-name prefix.
fn file_slug_and_date(path: &Path, keep_date: bool) -> (String, Option<NaiveDate>) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("article");
    let stem = if stem == "index" {
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
            .unwrap_or(stem)
    } else {
        stem
    };
    match name_date(stem) {
        Some((date, _, _)) if keep_date => (stem.to_string(), Some(date)),
        Some((date, _, rest)) => (rest.to_string(), Some(date)),
        None => (stem.to_string(), None),
    }
}

/// The date a file name starts with, the character after it and the rest (never empty): Jekyll's
/// `2024-01-05-title` (whose month and day may have one digit: `2024-1-5-title`), Zola's `2024-01-05_title`.
pub(crate) fn name_date(name: &str) -> Option<(NaiveDate, char, &str)> {
    let bytes = name.as_bytes();
    // The number of `min` to `max` digits at `from`, and where it ends.
    let number = |from: usize, min: usize, max: usize| -> Option<(u32, usize)> {
        let n = bytes
            .get(from..)?
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let value = name[from..from + n].parse().ok().filter(|_| n >= min)?;
        Some((value, from + n))
    };
    let (year, at) = number(0, 4, 4)?;
    let (month, at) = number(at + 1, 1, 2).filter(|_| bytes.get(at) == Some(&b'-'))?;
    let (day, at) = number(at + 1, 1, 2).filter(|_| bytes.get(at) == Some(&b'-'))?;
    let sep = match bytes.get(at) {
        Some(b'-') => '-',
        Some(b'_') => '_',
        _ => return None,
    };
    let rest = &name[at + 1..];
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    (!rest.is_empty()).then_some((date, sep, rest))
}

/// Why a file without a date (`front`: its front matter's format, `None` when it has none) is no article, as a
/// [`Severity::Note`] at `line`. Jekyll publishes from `_posts` only files named `YYYY-MM-DD-title`, and copies a
/// file without front matter as it is; Hugo and Zola make undated content a page, never a post of a feed. So a
/// `README.md` in `_posts` or a Hugo `content/about.md` is left out without failing `check`; a date that is
/// written but wrong (or empty) is still an error.
fn page_note(path: &Path, line: usize, front: Option<front_matter::Format>) -> ArticleError {
    let in_posts = path.components().any(|c| c.as_os_str() == "_posts");
    let message = match front {
        _ if in_posts => {
            "not a post: neither its name nor its front matter has a date (Jekyll publishes only \
                          `_posts/YYYY-MM-DD-title.md`); it is left out of the feeds and digests; to publish it, name \
                          it YYYY-MM-DD-title.md"
        }
        None => {
            "not an article: no front matter and no date in its name (Jekyll copies such a file as it is, Hugo \
                 makes it a page); it is left out of the feeds and digests; to publish it, start it with front \
                 matter holding a title and a date"
        }
        Some(front_matter::Format::Toml) => {
            "not an article: no date, so it is a page (as Hugo and Zola publish \
                                             undated content); it is left out of the feeds and digests; to publish \
                                             it, add `date = 2024-01-31` to its front matter"
        }
        Some(front_matter::Format::Yaml) => {
            "not an article: no date, so it is a page (as Hugo and Zola publish \
                                             undated content); it is left out of the feeds and digests; to publish \
                                             it, add `date: YYYY-MM-DD` to its front matter"
        }
    };
    ArticleError {
        path: path.to_owned(),
        severity: Severity::Note,
        line,
        col: 1,
        message: message.into(),
    }
}

fn local_midnight(date: NaiveDate, tz: chrono_tz::Tz) -> DateTime<FixedOffset> {
    localize(date.and_hms_opt(0, 0, 0).expect("midnight exists"), tz)
}

/// A naive time read in `tz`. In a fold (clocks turned back) the earlier instant; in a gap (clocks turned
/// forward, or a whole skipped day such as `Pacific/Apia` 2011-12-30) the next valid instant, the end of the gap.
fn localize(naive: NaiveDateTime, tz: chrono_tz::Tz) -> DateTime<FixedOffset> {
    if let Some(local) = tz.from_local_datetime(&naive).earliest() {
        return local.fixed_offset();
    }
    // In a gap: the first instant whose local time is at or after `naive`. Local time grows with the instant
    // (bar folds, which need a second transition within a day of the first), and every zone's offset lies
    // within ±26 hours, so the answer is between these bounds; bisect to the second.
    let local_at = |secs: i64| {
        let utc = DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc());
        utc.map(|u| tz.from_utc_datetime(&u).naive_local())
    };
    let target = naive.and_utc().timestamp();
    let (mut lo, mut hi) = (target - 26 * 3600, target + 26 * 3600);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match local_at(mid) {
            Some(local) if local >= naive => hi = mid,
            Some(_) => lo = mid,
            // Out of chrono's range: only for years no article can carry (parse_date refuses them first).
            None => hi = mid,
        }
    }
    DateTime::from_timestamp(hi, 0)
        .map(|d| tz.from_utc_datetime(&d.naive_utc()).fixed_offset())
        .unwrap_or_else(|| naive.and_utc().fixed_offset())
}

fn parse_date_value(value: &Value, tz: chrono_tz::Tz) -> Result<DateTime<FixedOffset>, String> {
    match value {
        Value::String(s) => parse_date(s, tz),
        other => Err(format!(
            "date {other} is not a date; use YYYY-MM-DD or RFC 3339 (2024-01-31T09:00:00+01:00)"
        )),
    }
}

/// Reads the date forms found in Jekyll, Hugo and Zola front matter. A time without a zone is in `tz`.
pub fn parse_date(s: &str, tz: chrono_tz::Tz) -> Result<DateTime<FixedOffset>, String> {
    let s = s.trim();
    check_year(parse_date_unchecked(s, tz)?)
}

/// The years a feed can carry: four digits (RFC 822 and RFC 3339 write four; readers reject year 0000).
const FEED_YEARS: std::ops::RangeInclusive<i32> = 1000..=9999;

fn check_year(date: DateTime<FixedOffset>) -> Result<DateTime<FixedOffset>, String> {
    use chrono::Datelike;
    if FEED_YEARS.contains(&date.year()) {
        Ok(date)
    } else {
        Err(format!(
            "date {} is out of range; feeds need a year from {} to {}",
            date.format("%Y-%m-%d"),
            FEED_YEARS.start(),
            FEED_YEARS.end()
        ))
    }
}

/// Zone names Ruby's `Time.parse` (so Jekyll) reads after a time, `2013-06-27 11:00:00 UTC`, as offsets in
/// hours.
const ZONE_NAMES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("EST", -5),
    ("EDT", -4),
    ("CST", -6),
    ("CDT", -5),
    ("MST", -7),
    ("MDT", -6),
    ("PST", -8),
    ("PDT", -7),
];

fn parse_date_unchecked(s: &str, tz: chrono_tz::Tz) -> Result<DateTime<FixedOffset>, String> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d);
    }
    if let Some((time, zone)) = s.rsplit_once(' ')
        && let Some(&(_, hours)) = ZONE_NAMES.iter().find(|(name, _)| zone == *name)
    {
        let offset = FixedOffset::east_opt(hours * 3600).expect("a whole hour is an offset");
        for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(time.trim_end(), format) {
                return naive
                    .and_local_timezone(offset)
                    .single()
                    .ok_or_else(|| format!("date \"{s}\" is not a time"));
            }
        }
    }
    for format in [
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%d %H:%M %z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, format) {
            return Ok(d);
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(localize(naive, tz));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(local_midnight(date, tz));
    }
    Err(format!(
        "date \"{s}\" is not a date; use YYYY-MM-DD or RFC 3339 (2024-01-31T09:00:00+01:00)"
    ))
}

/// What an article gives `[site] permalink`'s placeholders.
struct Placeholders<'a> {
    /// `slug:` as written, else the file name's.
    slug: &'a str,
    /// Whether `slug` was written (in `slug:` or Zola's `path`) rather than taken from the file name.
    slug_written: bool,
    title: &'a str,
    date: DateTime<FixedOffset>,
    category: Option<&'a str>,
    /// Every category, as folders ([`category_path`]).
    categories: &'a str,
    sections: &'a [String],
}

/// `pattern` with the article's values in its placeholders, joined to `base`: `{slug}`, `{title}` (the title's
/// slug, Hugo's `:title`), `{slug_or_title}` (a written slug, else the title's: Hugo's `:slug`), `{year}`,
/// `{month}`, `{day}`, `{category}`, `{categories}`, `{section}`, `{sections}`.
fn permalink(base: &url::Url, pattern: &str, values: &Placeholders<'_>) -> String {
    let Placeholders {
        slug,
        slug_written,
        title,
        date,
        category,
        categories,
        sections,
    } = *values;
    // Each placeholder's value is made only when the pattern has it (this runs for every article).
    let mut path = pattern.replace("{slug}", slug);
    if path.contains("{title}") || path.contains("{slug_or_title}") {
        let title = match taxonomy_slug(title) {
            t if t.is_empty() => slug.to_owned(),
            t => t,
        };
        let slug_or_title = if slug_written { slug } else { &title };
        path = path
            .replace("{slug_or_title}", slug_or_title)
            .replace("{title}", &title);
    }
    // No category (no section): no folder for them (Jekyll's default permalink), rather than an empty one.
    if path.contains("{categories}") {
        path = path.replace("{categories}", categories).replace("//", "/");
    }
    if path.contains("{section") {
        let first = sections.first().map_or("", String::as_str);
        path = path
            .replace("{sections}", &sections.join("/"))
            .replace("{section}", first)
            .replace("//", "/");
    }
    for (placeholder, format) in [("{year}", "%Y"), ("{month}", "%m"), ("{day}", "%d")] {
        if path.contains(placeholder) {
            path = path.replace(placeholder, &date.format(format).to_string());
        }
    }
    if path.contains("{category}") {
        let category = category.map(taxonomy_slug);
        path = path.replace("{category}", category.as_deref().unwrap_or("uncategorized"));
    }
    base.join(path.trim_start_matches('/'))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("{base}{}", path.trim_start_matches('/')))
}

/// The slug of a category or tag name: the one rule for when two names are the same category (or tag). It is
/// what names the group's feed folder (`category/<slug>/`, `tag/<slug>/`) and the `{category}` of a permalink, so
/// "Dev Ops", "dev-ops" and "DEV OPS" are one category everywhere: in the feeds, in related reading's "same
/// category" and in a digest's or subscriber's category filter. A name of only punctuation has no slug (`""`).
pub fn taxonomy_slug(name: &str) -> String {
    slug::slugify(name)
}

/// Whether two category names are the same category: their [`taxonomy_slug`]s are equal and not empty.
pub fn same_category(a: &str, b: &str) -> bool {
    let a = taxonomy_slug(a);
    !a.is_empty() && a == taxonomy_slug(b)
}

/// Text for one line (titles, names): every control character dropped, whitespace collapsed. A CR/LF in a
/// title can then never reach a mail header or break a feed.
pub fn single_line(s: &str) -> String {
    markdown::first_words(s, usize::MAX)
}

/// Drops the characters XML 1.0 forbids (C0 controls other than tab, LF, CR; U+FFFE, U+FFFF). The `rss` and
/// `atom_syndication` crates let them through, which makes a feed ill-formed.
pub fn xml_safe(s: &str) -> String {
    xml_clean(s).into_owned()
}

/// [`xml_safe`], borrowing `s` when it is clean already (most text).
fn xml_clean(s: &str) -> std::borrow::Cow<'_, str> {
    // Fast path on bytes, one pass: every forbidden character is an ASCII control or U+FFFE/U+FFFF (UTF-8
    // EF BF BE / EF BF BF).
    let bytes = s.as_bytes();
    // Without an early exit per byte, so the compiler can check many bytes at once.
    let control = bytes.chunks(256).any(|chunk| {
        chunk.iter().fold(false, |found, &b| {
            found | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r'))
        })
    });
    let forbidden = control
        || memchr::memchr_iter(0xEF, bytes)
            .any(|i| matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])));
    if !forbidden {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars().filter(|c| !is_xml_forbidden(c)).collect()
}

fn is_xml_forbidden(c: &char) -> bool {
    matches!(*c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

#[cfg(test)]
mod tests;

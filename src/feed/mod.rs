//! Feeds: the site feed and per-category, per-tag and per-author feeds in the configured formats (RSS 2.0,
//! Atom 1.0, JSON Feed 1.1), rendered as bytes, plus (when enabled) the `feed.xsl` stylesheet that shows a feed
//! opened in a browser as a readable page. Pure: [`plan_feeds`] chooses each feed's items from the catalog at
//! `now` (each kind of group in one pass over the store), [`render_all`] turns the plans into `(path, bytes)`;
//! writing is `output`'s job and reading the clock the caller's.
//!
//! A group's feed lives under `<kind>/<slug>/`. Category and tag names compare by slug
//! ([`crate::store::taxonomy_slug`]): "Rust" and "rust" are one feed, holding an article once. Every group
//! named by config (`[feeds] categories`, `[authors]`) or by any article, drafts and future ones included, gets
//! a feed, empty if need be, never a 404. An article's HTML is rendered once however many feeds carry it.
//!
//! The rules readers depend on live here: item ids are the article's `id` (its permalink unless front matter
//! pins one) and never change; content is sanitised (no script, handler, `javascript:` URL or foreign iframe:
//! `content`) and capped at [`MAX_ITEM_CONTENT_BYTES`]; every URL inside content is absolute ([`urls`]); dates carry a zone; feed-level
//! timestamps come from the newest article, never the clock, so an unchanged store renders identical bytes;
//! strings are stripped of characters XML forbids before they reach the `rss` and `atom_syndication` builders.

mod atom;
mod content;
mod json;
mod rss;
pub mod urls;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, FixedOffset};
use rayon::prelude::*;

use crate::config::{Config, FeedFormat};
use crate::store::{Article, Catalog, taxonomy_slug, xml_safe};

/// The stylesheet that turns a feed opened in a browser into a readable page.
pub const STYLESHEET: &str = include_str!("feed.xsl");
pub const STYLESHEET_FILE: &str = "feed.xsl";

/// One rendered file, its path relative to the output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// What a feed is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Site,
    Category(String),
    Tag(String),
    Author { key: String, name: String },
}

/// A feed before rendering: its scope, where it lives, and its items, newest first.
#[derive(Debug, Clone)]
pub struct FeedPlan<'a> {
    pub scope: Scope,
    /// The folder under the output folder, `""` for the site feed, else like `category/career/`.
    pub dir: String,
    pub items: Vec<&'a Article>,
    /// The feed's `updated` / `lastBuildDate`: its newest item's, else the site's newest article's, else (an
    /// empty store) when the store last changed. Never the clock, so an unchanged store renders the same bytes.
    pub updated: DateTime<FixedOffset>,
}

/// The most content an item carries, in bytes of HTML; a longer article is cut at a block boundary and ends with
/// a link to the rest. Readers and aggregators drop feeds of many megabytes.
pub const MAX_ITEM_CONTENT_BYTES: usize = 512 * 1024;

/// Site-level values every format needs, already XML-safe.
#[derive(Debug, Clone)]
pub(crate) struct FeedMeta {
    pub title: String,
    pub description: String,
    pub language: String,
    pub home: String,
    pub self_url: String,
    pub id: String,
    pub updated: DateTime<FixedOffset>,
    pub stylesheet_href: Option<String>,
}

/// An item's content as it goes into every format.
pub(crate) struct ItemContent<'a> {
    pub article: &'a Article,
    pub title: String,
    /// The summary as plain text.
    pub summary: String,
    /// The summary as HTML, when front matter wrote it with Markdown markup (links, emphasis); the formats put
    /// it where they carry HTML, `summary` where they carry text.
    pub summary_html: Option<String>,
    /// The body with absolute URLs, when the feed carries full content.
    pub html: Option<String>,
}

/// Plans every configured feed from the articles published at `now`.
pub fn plan_feeds<'a>(
    config: &Config,
    catalog: &'a Catalog,
    now: DateTime<FixedOffset>,
) -> Vec<FeedPlan<'a>> {
    let limit = config.feeds.limit;
    let published: Vec<&Article> = catalog.published(now).collect();
    let site_updated = published
        .iter()
        .map(|a| a.updated)
        .max()
        .or_else(|| catalog.modified().map(|m| m.min(now)))
        .unwrap_or(DateTime::UNIX_EPOCH.fixed_offset());
    let mut plans = vec![FeedPlan {
        scope: Scope::Site,
        dir: String::new(),
        items: published.iter().copied().take(limit).collect(),
        updated: site_updated,
    }];
    let groups = Groups {
        catalog,
        published: &published,
        limit,
        updated: site_updated,
    };
    if config.feeds.per_category {
        let configured = config
            .feeds
            .categories
            .iter()
            .map(|c| (taxonomy_slug(c), c.clone()));
        plans.extend(
            groups.feeds("category", configured, category_of, |_, name| {
                Scope::Category(name)
            }),
        );
    }
    if config.feeds.per_tag {
        plans.extend(groups.feeds("tag", [], tags_of, |_, name| Scope::Tag(name)));
    }
    if config.feeds.per_author {
        let configured = config
            .authors
            .iter()
            .map(|(key, a)| (slug::slugify(key), a.name.clone()));
        plans.extend(
            groups.feeds("author", configured, author_of, |key, name| Scope::Author {
                key,
                name,
            }),
        );
    }
    for plan in &mut plans {
        if let Some(newest) = plan.items.iter().map(|a| a.updated).max() {
            plan.updated = newest;
        }
    }
    plans
}

/// A group an article belongs to: its URL slug and its display name.
type Group = (String, String);

fn category_of(a: &Article) -> Vec<Group> {
    a.category
        .iter()
        .map(|c| (taxonomy_slug(c), c.clone()))
        .collect()
}

fn tags_of(a: &Article) -> Vec<Group> {
    a.tags
        .iter()
        .map(|t| (taxonomy_slug(t), t.clone()))
        .collect()
}

fn author_of(a: &Article) -> Vec<Group> {
    a.author
        .iter()
        .map(|au| {
            (
                slug::slugify(au.key.as_deref().unwrap_or(&au.name)),
                au.name.clone(),
            )
        })
        .collect()
}

/// Per-group feeds (categories, tags, authors), grouped in one pass over the store.
struct Groups<'a, 'p> {
    catalog: &'a Catalog,
    /// Published articles, newest first.
    published: &'p [&'a Article],
    limit: usize,
    updated: DateTime<FixedOffset>,
}

impl<'a> Groups<'a, '_> {
    /// One feed under `<kind>/<slug>/` for every group named by a configured entry or by any article (drafts
    /// and future ones included, so a reader who subscribes early sees a valid empty feed, not a 404), holding
    /// the group's newest `limit` published articles.
    fn feeds(
        &self,
        kind: &str,
        configured: impl IntoIterator<Item = Group>,
        groups_of: fn(&Article) -> Vec<Group>,
        scope: impl Fn(String, String) -> Scope,
    ) -> Vec<FeedPlan<'a>> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (slug, name) in configured
            .into_iter()
            .chain(self.catalog.all().iter().flat_map(groups_of))
        {
            // A name without a slug ("!!!") cannot name a folder; the store reports it.
            if !slug.is_empty() {
                names.entry(slug).or_insert(name);
            }
        }
        let mut items: HashMap<String, Vec<&'a Article>> = HashMap::new();
        for &a in self.published {
            for (slug, _) in groups_of(a) {
                let group = items.entry(slug).or_default();
                // Two names of one article may share a slug ("Rust", "rust"): it is in the group once. Articles
                // come one at a time, so a repeat can only be the last item.
                let repeat = group.last().is_some_and(|last| std::ptr::eq(*last, a));
                if !repeat && group.len() < self.limit {
                    group.push(a);
                }
            }
        }
        names
            .into_iter()
            .map(|(slug, name)| FeedPlan {
                items: items.remove(&slug).unwrap_or_default(),
                dir: format!("{kind}/{slug}/"),
                scope: scope(slug, name),
                // The site's; `plan_feeds` sets each group's own from its items.
                updated: self.updated,
            })
            .collect()
    }
}

/// The articles whose Markdown body the plans need (their content), each once: what a caller that loaded the
/// store without bodies reads again before [`render_all`].
pub fn needs_bodies<'a>(config: &Config, plans: &[FeedPlan<'a>]) -> Vec<&'a Article> {
    if !config.feeds.full_content {
        return Vec::new();
    }
    let mut seen = std::collections::HashSet::new();
    plans
        .iter()
        .flat_map(|p| p.items.iter().copied())
        .filter(|a| a.body.is_none() && seen.insert(a.url.as_str()))
        .collect()
}

/// Renders every planned feed in every configured format, plus the stylesheet when enabled. An item's content
/// comes from its article's body, else from `bodies` (Markdown by permalink, for articles loaded without it).
pub fn render_all(
    config: &Config,
    plans: &[FeedPlan<'_>],
    bodies: &HashMap<String, String>,
) -> Vec<RenderedFile> {
    let mut files = Vec::new();
    if config.feeds.stylesheet {
        files.push(RenderedFile {
            path: STYLESHEET_FILE.into(),
            bytes: STYLESHEET.as_bytes().to_vec(),
        });
    }
    // An article sits in several feeds (site, category, author): its content is rendered once, the articles
    // in parallel (sanitising is most of a feed's cost).
    let mut contents: HashMap<&str, String> = HashMap::new();
    if config.feeds.full_content {
        let mut seen = HashSet::new();
        let articles: Vec<&Article> = plans
            .iter()
            .flat_map(|p| p.items.iter().copied())
            .filter(|a| seen.insert(a.url.as_str()))
            .collect();
        contents = articles
            .into_par_iter()
            .map(|a| {
                let body = a.body.as_ref().or_else(|| bodies.get(&a.url));
                let html = item_html(a, body.map_or("", String::as_str), &config.site.base_url);
                (a.url.as_str(), html)
            })
            .collect();
    }
    let feeds: Vec<Vec<RenderedFile>> = plans
        .par_iter()
        .map(|plan| {
            let items: Vec<ItemContent<'_>> = plan
                .items
                .iter()
                .map(|a| {
                    let html = contents.get(a.url.as_str()).cloned();
                    item_content(a, html, &config.site.base_url)
                })
                .collect();
            let updated = plan.updated;
            config
                .feeds
                .formats
                .iter()
                .map(|format| {
                    let file = match format {
                        FeedFormat::Rss => "rss.xml",
                        FeedFormat::Atom => "atom.xml",
                        FeedFormat::Json => "feed.json",
                    };
                    let path = format!("{}{file}", plan.dir);
                    let meta = feed_meta(config, plan, &path, updated);
                    let bytes = match format {
                        FeedFormat::Rss => rss::render(&meta, &items),
                        FeedFormat::Atom => atom::render(&meta, &items),
                        FeedFormat::Json => json::render(&meta, &items),
                    };
                    RenderedFile { path, bytes }
                })
                .collect()
        })
        .collect();
    files.extend(feeds.into_iter().flatten());
    files
}

/// An article's content as a feed carries it: sanitised, URLs absolute ([`content`]), at most
/// [`MAX_ITEM_CONTENT_BYTES`] (a longer one ends with a link to the rest on the site).
fn item_html(a: &Article, markdown: &str, site: &url::Url) -> String {
    let (html, cut) = crate::store::body_html_capped(markdown, MAX_ITEM_CONTENT_BYTES);
    let mut html = content::feed_html(&html, &a.url, site);
    if cut {
        html.push_str(&format!(
            "<p><a href=\"{}\">Read the rest of \u{201c}{}\u{201d} on the site</a></p>\n",
            escape_html(&a.url),
            escape_html(&a.title)
        ));
    }
    html
}

/// Text for HTML content or a quoted attribute.
fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn item_content<'a>(
    article: &'a Article,
    html: Option<String>,
    site: &url::Url,
) -> ItemContent<'a> {
    ItemContent {
        article,
        title: xml_safe(&article.title),
        summary: xml_safe(&article.summary),
        summary_html: summary_html(article, site),
        html,
    }
}

/// A summary that front matter wrote in Markdown, as HTML: sanitised and its URLs made absolute as the content's
/// are. `None` for a plain-text summary.
fn summary_html(article: &Article, site: &url::Url) -> Option<String> {
    let markup = crate::store::markdown::inline_markup(article.summary_markdown.as_deref()?)?;
    Some(content::feed_html(&markup.html, &article.url, site))
}

fn feed_meta(
    config: &Config,
    plan: &FeedPlan<'_>,
    path: &str,
    updated: DateTime<FixedOffset>,
) -> FeedMeta {
    let site = &config.site;
    let base = &site.base_url;
    let self_url = base
        .join(path)
        .map_or_else(|_| format!("{base}{path}"), |u| u.to_string());
    let title = match &plan.scope {
        Scope::Site => site.title.clone(),
        Scope::Category(name) => format!("{} — {name}", site.title),
        Scope::Tag(name) => format!("{} — #{name}", site.title),
        Scope::Author { name, .. } => format!("{} — {name}", site.title),
    };
    let description = match &plan.scope {
        Scope::Site => site.description.clone(),
        Scope::Category(name) => format!("Articles in {name} from {}", site.title),
        Scope::Tag(name) => format!("Articles tagged {name} from {}", site.title),
        Scope::Author { name, .. } => format!("Articles by {name} on {}", site.title),
    };
    let stylesheet_href = config.feeds.stylesheet.then(|| {
        base.join(STYLESHEET_FILE)
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    });
    FeedMeta {
        title: xml_safe(&crate::store::single_line(&title)),
        description: xml_safe(&crate::store::single_line(&description)),
        language: xml_safe(&site.language),
        home: base.to_string(),
        id: self_url.clone(),
        self_url,
        updated,
        stylesheet_href,
    }
}

/// Inserts `<?xml-stylesheet?>` after the XML declaration.
pub(crate) fn with_stylesheet(xml: Vec<u8>, href: Option<&str>) -> Vec<u8> {
    let Some(href) = href else { return xml };
    let pi = format!("<?xml-stylesheet href=\"{href}\" type=\"text/xsl\"?>\n");
    let decl_end = if xml.starts_with(b"<?xml ") {
        xml.windows(2).position(|w| w == b"?>").map_or(0, |i| i + 2)
    } else {
        0
    };
    let rest = &xml[decl_end..];
    let rest = rest.strip_prefix(b"\n").unwrap_or(rest);
    let mut out = Vec::with_capacity(xml.len() + pi.len() + 1);
    out.extend_from_slice(&xml[..decl_end]);
    if decl_end > 0 {
        out.push(b'\n');
    }
    out.extend_from_slice(pi.as_bytes());
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests;

//! Feeds: the site feed and per-category / per-tag / per-author feeds, each in RSS 2.0, Atom 1.0 and JSON Feed
//! 1.1, rendered as bytes. Pure: articles and the site config in, `(path, bytes)` out; writing is `output`'s job.
//!
//! The rules readers depend on live here: item ids are the article's `id` (its permalink unless front matter
//! pins one) and never change; every URL inside content is absolute ([`urls`]); dates carry a zone; feed-level
//! timestamps come from the newest article, never the clock, so an unchanged store renders identical bytes;
//! strings are stripped of characters XML forbids before they reach the `rss` and `atom_syndication` builders.

mod atom;
mod json;
mod rss;
pub mod urls;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};

use crate::config::{Config, FeedFormat};
use crate::store::{Article, Catalog, xml_safe};

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
}

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
    pub summary: String,
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
    let take = |pred: &dyn Fn(&Article) -> bool| -> Vec<&'a Article> {
        published
            .iter()
            .copied()
            .filter(|a| pred(a))
            .take(limit)
            .collect()
    };
    let mut plans = vec![FeedPlan {
        scope: Scope::Site,
        dir: String::new(),
        items: take(&|_| true),
    }];
    if config.feeds.per_category {
        // Every category named anywhere (drafts and future articles included, plus configured ones) gets a
        // feed, so a reader who subscribes early sees a valid empty feed, not a 404.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let named = catalog.all().iter().filter_map(|a| a.category.clone());
        for name in config.feeds.categories.iter().cloned().chain(named) {
            names.entry(slug::slugify(&name)).or_insert(name);
        }
        for (slug, name) in names {
            plans.push(FeedPlan {
                items: take(&|a| {
                    a.category
                        .as_deref()
                        .is_some_and(|c| slug::slugify(c) == slug)
                }),
                scope: Scope::Category(name),
                dir: format!("category/{slug}/"),
            });
        }
    }
    if config.feeds.per_tag {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for tag in catalog.all().iter().flat_map(|a| a.tags.iter()) {
            names
                .entry(slug::slugify(tag))
                .or_insert_with(|| tag.clone());
        }
        for (slug, name) in names {
            plans.push(FeedPlan {
                items: take(&|a| a.tags.iter().any(|t| slug::slugify(t) == slug)),
                scope: Scope::Tag(name),
                dir: format!("tag/{slug}/"),
            });
        }
    }
    if config.feeds.per_author {
        let mut authors: BTreeMap<String, String> = BTreeMap::new();
        for (key, author) in &config.authors {
            authors.insert(slug::slugify(key), author.name.clone());
        }
        for author in catalog.all().iter().filter_map(|a| a.author.as_ref()) {
            let key = slug::slugify(author.key.as_deref().unwrap_or(&author.name));
            authors.entry(key).or_insert_with(|| author.name.clone());
        }
        for (key, name) in authors {
            plans.push(FeedPlan {
                items: take(&|a| {
                    a.author.as_ref().is_some_and(|au| {
                        slug::slugify(au.key.as_deref().unwrap_or(&au.name)) == key
                    })
                }),
                dir: format!("author/{key}/"),
                scope: Scope::Author { key, name },
            });
        }
    }
    plans
}

/// Renders every planned feed in every configured format, plus the stylesheet when enabled.
pub fn render_all(
    config: &Config,
    plans: &[FeedPlan<'_>],
    newest: Option<&Article>,
) -> Vec<RenderedFile> {
    let mut files = Vec::new();
    if config.feeds.stylesheet {
        files.push(RenderedFile {
            path: STYLESHEET_FILE.into(),
            bytes: STYLESHEET.as_bytes().to_vec(),
        });
    }
    // An empty feed still needs an `updated`: the site's newest article, or the epoch for an empty site.
    let site_updated = newest.map_or_else(epoch, |a| a.updated);
    // An article sits in several feeds (site, category, author): render its content once.
    let mut contents: HashMap<&str, String> = HashMap::new();
    if config.feeds.full_content {
        for a in plans.iter().flat_map(|p| p.items.iter()) {
            contents
                .entry(a.url.as_str())
                .or_insert_with(|| urls::absolutize_html(&a.html(), &a.url));
        }
    }
    for plan in plans {
        let items: Vec<ItemContent<'_>> = plan
            .items
            .iter()
            .map(|a| item_content(a, contents.get(a.url.as_str()).cloned()))
            .collect();
        let updated = plan
            .items
            .iter()
            .map(|a| a.updated)
            .max()
            .unwrap_or(site_updated);
        for format in &config.feeds.formats {
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
            files.push(RenderedFile { path, bytes });
        }
    }
    files
}

fn epoch() -> DateTime<FixedOffset> {
    DateTime::UNIX_EPOCH.fixed_offset()
}

fn item_content(article: &Article, html: Option<String>) -> ItemContent<'_> {
    ItemContent {
        article,
        title: xml_safe(&article.title),
        summary: xml_safe(&article.summary),
        html,
    }
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

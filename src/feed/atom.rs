//! Atom 1.0 (RFC 4287) with `atom_syndication`: feed id is the feed's own URL, entry ids are the articles' stable
//! ids, `updated` and `published` in RFC 3339, summary as text (as HTML when front matter wrote it in Markdown)
//! and full content as escaped HTML.

use atom_syndication::{
    Category, Content, Entry, Feed, Generator, Link, Person, Text, WriteConfig,
};

use super::{FeedMeta, ItemContent, with_stylesheet};
use crate::store::{Author, xml_safe};

pub(crate) fn render(meta: &FeedMeta, items: &[ItemContent<'_>]) -> Vec<u8> {
    let mut feed = Feed::default();
    feed.set_title(Text::plain(meta.title.clone()));
    if !meta.description.is_empty() {
        feed.set_subtitle(Some(Text::plain(meta.description.clone())));
    }
    feed.set_id(meta.id.clone());
    feed.set_updated(meta.updated);
    feed.set_lang(Some(meta.language.clone()));
    feed.set_links(vec![
        link(&meta.self_url, "self", Some("application/atom+xml")),
        link(&meta.home, "alternate", Some("text/html")),
    ]);
    // RFC 4287 4.1.1: a feed needs an author unless every entry has one; the site stands in.
    feed.set_authors(vec![person_named(&meta.title)]);
    let mut generator = Generator::default();
    generator.set_value("tidings");
    generator.set_version(Some(env!("CARGO_PKG_VERSION").to_string()));
    feed.set_generator(Some(generator));
    feed.set_entries(items.iter().map(entry).collect::<Vec<_>>());
    let xml = feed
        .write_with_config(
            Vec::new(),
            WriteConfig {
                write_document_declaration: true,
                indent_size: Some(2),
            },
        )
        .expect("writing Atom to memory cannot fail");
    with_stylesheet(xml, meta.stylesheet_href.as_deref())
}

fn entry(content: &ItemContent<'_>) -> Entry {
    let a = content.article;
    let mut entry = Entry::default();
    entry.set_id(a.id.clone());
    entry.set_title(Text::plain(content.title.clone()));
    // Posts dated by day only (`date: 2024-01-05`, a Jekyll file name) that share a day share this value, and the
    // W3C feed validator warns "Two entries with the same value for atom:updated" (`DuplicateUpdated`: it compares
    // the text of every entry's `updated` in the feed). Its own advice is that no action is needed when the entries
    // were updated at the same time. All we know is the day: distinct times (seconds apart, the build's clock, file
    // mtimes that a checkout resets) would be invented, telling readers of an order and an edit that never
    // happened, and writing one instant in two zones would only hide the warning. So the warning stays, as it does
    // for jekyll-feed (whose tests silence it) and Hugo, which write the same midnight. A time written in front
    // matter (`date`, `updated` / `lastmod`) is used whenever there is one.
    entry.set_updated(a.updated);
    entry.set_published(Some(a.date));
    entry.set_links(vec![link(&a.url, "alternate", Some("text/html"))]);
    if let Some(html) = &content.summary_html {
        entry.set_summary(Some(Text::html(html.clone())));
    } else if !content.summary.is_empty() {
        entry.set_summary(Some(Text::plain(content.summary.clone())));
    }
    if let Some(html) = &content.html {
        let mut c = Content::default();
        c.set_content_type(Some("html".to_string()));
        c.set_value(Some(html.clone()));
        entry.set_content(Some(c));
    }
    if let Some(author) = &a.author {
        entry.set_authors(vec![person(author)]);
    }
    let categories: Vec<Category> = a
        .category
        .iter()
        .chain(a.tags.iter())
        .map(|name| {
            let mut c = Category::default();
            c.set_term(xml_safe(name));
            c
        })
        .collect();
    entry.set_categories(categories);
    entry
}

fn link(href: &str, rel: &str, mime: Option<&str>) -> Link {
    let mut l = Link::default();
    l.set_href(href);
    l.set_rel(rel);
    l.set_mime_type(mime.map(str::to_string));
    l
}

fn person_named(name: &str) -> Person {
    let mut p = Person::default();
    p.set_name(name);
    p
}

fn person(author: &Author) -> Person {
    let mut p = person_named(&xml_safe(&author.name));
    p.set_email(author.email.as_deref().map(xml_safe));
    p.set_uri(author.url.as_deref().map(xml_safe));
    p
}

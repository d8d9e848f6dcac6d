//! RSS 2.0 with the `rss` crate: `atom:link rel="self"`, `content:encoded` for full content, `dc:creator` for
//! authors (RSS's own `author` must be an email address), RFC 822 dates with a four-digit year and numeric zone.
//!
//! An RSS `<description>` is HTML to readers (RSS 2.0 allows entity-encoded HTML in an item's; feedparser, for one,
//! reads the channel's as HTML too), while tidings' summaries and site descriptions are plain text (Atom
//! says `type="text"`, JSON Feed `summary`). So a description is the text HTML-escaped ([`description_html`]):
//! readers then show `Vec<String> & co` as written instead of dropping `<String>` as an unknown tag; a summary
//! front matter wrote in Markdown is its rendered HTML (links and emphasis, sanitised like content). The `rss`
//! crate adds only XML's layer on top (CDATA for an item's, escaped text for the channel's); `feed.xsl` decodes
//! the escaping again to show it. `content:encoded` is HTML already and goes in as it is.

use chrono::{DateTime, FixedOffset};
use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::{Category, Channel, Guid, Item};

use super::{FeedMeta, ItemContent, with_stylesheet};
use crate::store::xml_safe;

pub(crate) fn render(meta: &FeedMeta, items: &[ItemContent<'_>]) -> Vec<u8> {
    let mut channel = Channel {
        title: meta.title.clone(),
        link: meta.home.clone(),
        description: description_html(&meta.description),
        language: Some(meta.language.clone()),
        generator: Some(format!("tidings {}", env!("CARGO_PKG_VERSION"))),
        last_build_date: Some(rfc822(meta.updated)),
        pub_date: items.first().map(|i| rfc822(i.article.date)),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        ..Default::default()
    };
    let mut self_link = Link::default();
    self_link.set_href(meta.self_url.clone());
    self_link.set_rel("self");
    self_link.set_mime_type(Some("application/rss+xml".to_string()));
    channel.set_atom_ext(AtomExtension {
        links: vec![self_link],
    });
    channel.items = items.iter().map(item).collect();
    let xml = channel
        .pretty_write_to(Vec::new(), b' ', 2)
        .expect("writing RSS to memory cannot fail");
    with_stylesheet(xml, meta.stylesheet_href.as_deref())
}

fn item(content: &ItemContent<'_>) -> Item {
    let a = content.article;
    let mut categories: Vec<Category> = Vec::new();
    for name in a.category.iter().chain(a.tags.iter()) {
        categories.push(Category {
            name: xml_safe(name),
            domain: None,
        });
    }
    Item {
        title: Some(content.title.clone()),
        link: Some(a.url.clone()),
        description: Some(
            content
                .summary_html
                .clone()
                .unwrap_or_else(|| description_html(&content.summary)),
        ),
        content: content.html.clone(),
        guid: Some(Guid {
            value: a.id.clone(),
            permalink: a.id == a.url,
        }),
        pub_date: Some(rfc822(a.date)),
        categories,
        dublin_core_ext: a.author.as_ref().map(|au| DublinCoreExtension {
            creators: vec![xml_safe(&au.name)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Plain `text` as the HTML an RSS description holds, showing exactly that text.
fn description_html(text: &str) -> String {
    super::escape_html(text)
}

/// RFC 822 as RFC 2822 writes it: `Tue, 01 Jul 2003 10:52:37 +0200` (four-digit year, numeric zone).
pub(crate) fn rfc822(date: DateTime<FixedOffset>) -> String {
    date.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc822_has_four_digit_year_and_numeric_zone() {
        let d = DateTime::parse_from_rfc3339("2024-07-01T08:05:09+02:00").unwrap();
        assert_eq!(rfc822(d), "Mon, 01 Jul 2024 08:05:09 +0200");
    }
}

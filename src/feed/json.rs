//! JSON Feed 1.1 (<https://www.jsonfeed.org/version/1.1/>) with serde. Fields are declared in the order the
//! spec lists them, so output is stable and reads naturally.

use serde::Serialize;

use super::{FeedMeta, ItemContent};

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    language: &'a str,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    summary: &'a str,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<JsonAuthor<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonAuthor<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

pub(crate) fn render(meta: &FeedMeta, items: &[ItemContent<'_>]) -> Vec<u8> {
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &meta.title,
        home_page_url: &meta.home,
        feed_url: &meta.self_url,
        description: &meta.description,
        language: &meta.language,
        items: items.iter().map(item).collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&feed).expect("a JSON feed serializes");
    bytes.push(b'\n');
    bytes
}

fn item<'a>(content: &'a ItemContent<'a>) -> JsonItem<'a> {
    let a = content.article;
    JsonItem {
        id: &a.id,
        url: &a.url,
        title: &content.title,
        // JSON Feed requires content_html or content_text: a summary-only feed carries the summary, as HTML when
        // front matter wrote it in Markdown, else as text. `summary` is plain text by the spec.
        content_html: content.html.as_deref().or(content.summary_html.as_deref()),
        content_text: (content.html.is_none() && content.summary_html.is_none())
            .then_some(content.summary.as_str()),
        summary: &content.summary,
        date_published: a.date.to_rfc3339(),
        date_modified: a.updated.to_rfc3339(),
        authors: a
            .author
            .iter()
            .map(|au| JsonAuthor {
                name: &au.name,
                url: au.url.as_deref(),
            })
            .collect(),
        tags: {
            // A name that is both the category and a tag is listed once.
            let mut tags: Vec<&str> = Vec::with_capacity(a.tags.len() + 1);
            for t in a.category.iter().chain(&a.tags) {
                if !tags.contains(&t.as_str()) {
                    tags.push(t);
                }
            }
            tags
        },
    }
}

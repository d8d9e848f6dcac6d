//! An article's HTML as a feed item carries it: safe in any reader and complete without the site.
//!
//! 1. `<noscript>` is unwrapped: scripts never run in a feed, so what a page shows without them (the real
//!    `<img>` of a lazy-loading pattern) is what the item shows; its URLs are then rewritten like any other.
//! 2. The HTML is sanitised with ammonia: no `<script>` or `<style>` (with their content), no event-handler
//!    attribute, no `style` attribute (bar a table cell's `text-align`), no URL but http(s), mailto and tel or a
//!    relative one (so no `javascript:` or `data:`; each `srcset` candidate is read as a browser reads it, by
//!    [`super::urls::parse_srcset`], the function the URL rewriting uses), no comments.
//! 3. Every URL is made absolute ([`super::urls`]) and an `<iframe>` from another site than this one becomes a
//!    link to what it embedded.
//!
//! The result is XML-safe (a character reference such as `&#8;` decoded by the sanitiser is dropped).

use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, element, rewrite_str};
use url::Url;

use crate::store::xml_safe;

/// `html` (an article rendered from Markdown, its inline HTML as written) made safe for a feed, with every URL
/// resolved against `page` (the article's permalink) and iframes kept only from `site`'s host.
pub fn feed_html(html: &str, page: &str, site: &Url) -> String {
    let unwrapped = unwrap_noscript(html);
    let clean = sanitizer().clean(&unwrapped).to_string();
    let absolute = super::urls::absolutize_html(&clean, page);
    xml_safe(&keep_own_iframes(&absolute, site))
}

fn sanitizer() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    b.add_tags([
        "picture", "source", "video", "audio", "track", "iframe", "input", "section", "main",
    ]);
    b.add_generic_attributes(["id", "class", "dir"]);
    // Added to ammonia's own list (which keeps `blockquote cite`, `time datetime`, `abbr title`…).
    let tag_attributes: [(&str, &[&str]); 12] = [
        ("a", &["href", "hreflang", "name"]),
        (
            "img",
            &[
                "src", "srcset", "sizes", "alt", "width", "height", "loading",
            ],
        ),
        ("source", &["src", "srcset", "sizes", "type", "media"]),
        (
            "video",
            &[
                "src",
                "poster",
                "controls",
                "width",
                "height",
                "loop",
                "muted",
                "playsinline",
            ],
        ),
        ("audio", &["src", "controls", "loop", "muted"]),
        ("track", &["src", "kind", "srclang", "label", "default"]),
        (
            "iframe",
            &[
                "src",
                "width",
                "height",
                "title",
                "allowfullscreen",
                "loading",
            ],
        ),
        ("input", &["type", "checked", "disabled"]),
        ("ol", &["start", "reversed", "type"]),
        ("li", &["value"]),
        ("th", &["colspan", "rowspan", "scope", "style", "align"]),
        ("td", &["colspan", "rowspan", "style", "align"]),
    ];
    for (tag, attributes) in tag_attributes {
        b.add_tag_attributes(tag, attributes.iter().copied());
    }
    b.url_schemes(["http", "https", "mailto", "tel"].into_iter().collect());
    // Readers set their own link behaviour; an added rel on every link would only change the bytes.
    b.link_rel(None);
    b.attribute_filter(|element, attribute, value| match attribute {
        // Markdown tables align cells with `style="text-align: …"`; nothing else of a style survives.
        "style" => {
            let v = value.trim().trim_end_matches(';').trim();
            [
                "text-align: left",
                "text-align: right",
                "text-align: center",
            ]
            .contains(&v)
            .then(|| v.to_string().into())
        }
        "type" if element == "input" => (value == "checkbox").then(|| value.into()),
        // URLs ammonia does not check itself: only relative or http(s) ones stay.
        "cite" => web_url(value).then(|| value.into()),
        "srcset" => super::urls::parse_srcset(value)
            .iter()
            .all(|candidate| web_url(candidate.url))
            .then(|| value.into()),
        _ => Some(value.into()),
    });
    b
}

/// A relative URL, or an absolute one with an http(s) scheme.
fn web_url(value: &str) -> bool {
    match Url::parse(value.trim()) {
        Ok(u) => matches!(u.scheme(), "http" | "https"),
        Err(url::ParseError::RelativeUrlWithoutBase) => true,
        Err(_) => false,
    }
}

/// `<noscript>`'s content as ordinary HTML: an HTML parser reads it as text (scripting on), lol_html and the
/// sanitiser included, so its URLs would stay relative and its markup would show as text.
fn unwrap_noscript(html: &str) -> String {
    if !html.contains("<noscript") && !html.contains("<NOSCRIPT") {
        return html.to_string();
    }
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!("noscript", |el| {
            el.remove_and_keep_content();
            Ok(())
        })],
        ..RewriteStrSettings::new()
    };
    rewrite_str(html, settings).unwrap_or_else(|_| html.to_string())
}

/// Keeps an `<iframe>` whose (absolute) `src` is on `site`'s host; any other becomes a link to what it showed.
fn keep_own_iframes(html: &str, site: &Url) -> String {
    if !html.contains("<iframe") {
        return html.to_string();
    }
    let host = site.host_str().map(str::to_string);
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!("iframe", move |el| {
            let src = el.get_attribute("src").unwrap_or_default();
            let own = Url::parse(&src)
                .ok()
                .is_some_and(|u| u.host_str().map(str::to_string) == host && host.is_some());
            if !own {
                if src.is_empty() {
                    el.remove();
                } else {
                    let shown = super::escape_html(&src);
                    el.replace(
                        &format!("<a href=\"{shown}\">{shown}</a>"),
                        ContentType::Html,
                    );
                }
            }
            Ok(())
        })],
        ..RewriteStrSettings::new()
    };
    rewrite_str(html, settings).unwrap_or_else(|_| html.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "https://example.com/blog/posts/hello/";

    fn clean(html: &str) -> String {
        feed_html(
            html,
            PAGE,
            &Url::parse("https://example.com/blog/").unwrap(),
        )
    }

    #[test]
    fn scripts_handlers_styles_and_dangerous_urls_are_removed() {
        let out = clean(
            "<p onclick=\"steal()\" style=\"color:red\">Hi<script>alert(1)</script><style>p{}</style></p>\
             <a href=\"javascript:alert(1)\">j</a><img src=\"data:image/png;base64,AAAA\" onerror=\"x()\">\
             <a href=\"JaVaScRiPt:alert(1)\">k</a><!-- secret --><form action=\"/x\"><button>b</button></form>",
        );
        assert_eq!(out, "<p>Hi</p><a>j</a><img><a>k</a>b");
    }

    #[test]
    fn noscript_content_is_unwrapped_and_its_urls_made_absolute() {
        let out = clean(
            "<img data-src=\"lazy.png\"><noscript><img src=\"img/real.png\" alt=\"real\"></noscript>",
        );
        assert_eq!(
            out,
            "<img><img src=\"https://example.com/blog/posts/hello/img/real.png\" alt=\"real\">"
        );
    }

    #[test]
    fn foreign_iframes_become_links_and_own_ones_stay() {
        let out = clean(
            "<iframe src=\"https://evil.example.net/x\" onload=\"x()\"></iframe>\
             <iframe src=\"/blog/embed/chart.html\" width=\"600\"></iframe>",
        );
        assert_eq!(
            out,
            "<a href=\"https://evil.example.net/x\">https://evil.example.net/x</a>\
             <iframe src=\"https://example.com/blog/embed/chart.html\" width=\"600\"></iframe>"
        );
    }

    #[test]
    fn what_markdown_makes_is_kept() {
        let html = crate::store::markdown::to_html(
            "# T\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\nnote[^1] ~~x~~\n\n- [x] done\n\n```rust\nfn x() {}\n```\n\n\
             <figure><img src=\"a.png\" srcset=\"a.png 1x, b.png 2x\" alt=\"a\"><figcaption>c</figcaption></figure>\n\n[^1]: f\n",
        );
        let out = clean(&html);
        for kept in [
            "<h1>T</h1>",
            "<th style=\"text-align: left\">a</th>",
            "<td style=\"text-align: right\">2</td>",
            "<del>x</del>",
            "<input disabled=\"\" type=\"checkbox\" checked=\"\">",
            "<code class=\"language-rust\">",
            "srcset=\"https://example.com/blog/posts/hello/a.png 1x, https://example.com/blog/posts/hello/b.png 2x\"",
            "<figcaption>c</figcaption>",
            "class=\"footnote-definition\" id=\"1\"",
        ] {
            assert!(out.contains(kept), "{kept} missing from {out}");
        }
    }

    #[test]
    fn citations_keep_their_source_made_absolute() {
        assert_eq!(
            clean(
                "<blockquote cite=\"../quoted/\"><p>q</p></blockquote><q cite=\"javascript:x\">q</q>"
            ),
            "<blockquote cite=\"https://example.com/blog/posts/quoted/\"><p>q</p></blockquote><q>q</q>"
        );
        assert_eq!(
            clean("<img srcset=\"a.png 1x, data:image/png;base64,AA 2x\" alt=\"x\">"),
            "<img alt=\"x\">"
        );
    }

    /// Regression: the sanitiser split `srcset` at every comma, unlike a browser (and unlike the URL rewriting).
    #[test]
    fn srcset_candidates_are_checked_whole_however_many_commas_their_urls_hold() {
        let cdn = "<picture><source srcset=\"https://res.cloudinary.com/demo/image/upload/c_scale,w_300/sample.webp 300w, \
                   https://res.cloudinary.com/demo/image/upload/c_scale,w_600/sample.webp 600w\"><img src=\"a.png\" alt=\"x\"></picture>";
        assert_eq!(
            clean(cdn),
            "<picture><source srcset=\"https://res.cloudinary.com/demo/image/upload/c_scale,w_300/sample.webp 300w, \
             https://res.cloudinary.com/demo/image/upload/c_scale,w_600/sample.webp 600w\">\
             <img src=\"https://example.com/blog/posts/hello/a.png\" alt=\"x\"></picture>"
        );
        for hidden in [
            "a.png 1x,data:image/png;base64,AA 2x",
            "a.png,, javascript:alert(1)",
            "a.png 1x (a, b), data:image/png,AA",
        ] {
            assert_eq!(
                clean(&format!("<img srcset=\"{hidden}\" alt=\"x\">")),
                "<img alt=\"x\">",
                "{hidden}"
            );
        }
    }

    #[test]
    fn a_decoded_control_character_is_dropped() {
        assert_eq!(clean("<p>a&#8;b</p>"), "<p>ab</p>");
    }
}

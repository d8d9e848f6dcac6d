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
    xml_safe(&quotes_in_text_as_references(&keep_own_iframes(
        &absolute, site,
    )))
}

/// `html` (as the sanitiser serialises it: every attribute value in double quotes, a `"` inside one written
/// `&quot;`) with the double quotes of its text written `&quot;` too: the same page to a browser, but a code
/// sample that shows markup (`<a href="/about">`) no longer reads, to a checker that scans the escaped HTML for
/// `href="…"`, as a relative link of the feed's own.
fn quotes_in_text_as_references(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let (mut in_tag, mut in_value) = (false, false);
    let mut copied = 0;
    for (i, b) in html.bytes().enumerate() {
        match b {
            b'<' if !in_tag => in_tag = true,
            b'>' if in_tag && !in_value => in_tag = false,
            b'"' if in_tag => in_value = !in_value,
            b'"' => {
                out.push_str(&html[copied..i]);
                out.push_str("&quot;");
                copied = i + 1;
            }
            _ => {}
        }
    }
    out.push_str(&html[copied..]);
    out
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
        "style" => cell_alignment(value).map(Into::into),
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

/// The one declaration a table cell's `style` keeps, `text-align` with `left`, `right` or `center`, read as CSS
/// reads a declaration list: whitespace and case do not matter (`TEXT-ALIGN:Center`), other declarations are
/// dropped, and the last valid one wins. Written back in one form (`text-align: center`), so nothing of the
/// author's text reaches the feed; a value with anything more (`!important`, a comment, an escape) is dropped.
fn cell_alignment(style: &str) -> Option<String> {
    let mut kept = None;
    for declaration in css_declarations(style) {
        let Some((property, value)) = declaration.split_once(':') else {
            continue;
        };
        if !css_trim(property).eq_ignore_ascii_case("text-align") {
            continue;
        }
        let value = css_trim(value).to_ascii_lowercase();
        if matches!(value.as_str(), "left" | "right" | "center") {
            kept = Some(format!("text-align: {value}"));
        }
    }
    kept
}

/// The declarations of a `style` attribute: split at each `;` outside quotes and brackets, as CSS does
/// (`content: "a;b"` is one declaration).
fn css_declarations(style: &str) -> Vec<&str> {
    let mut declarations = Vec::new();
    let (mut start, mut depth, mut quote) = (0, 0usize, None);
    let mut chars = style.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\\') => {
                chars.next();
            }
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            (None, ';') if depth == 0 => {
                declarations.push(&style[start..i]);
                start = i + 1;
            }
            (None, _) => {}
        }
    }
    declarations.push(&style[start..]);
    declarations
}

/// `s` without CSS whitespace (space, tab, line feed, carriage return, form feed) at either end.
fn css_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\u{c}'])
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
    fn quotes_in_text_are_references_so_markup_shown_in_code_is_no_link() {
        let out = clean(
            "<p title='say \"hi\" > there'>He said \"hi\".</p><pre><code>&lt;a href=\"/about\"&gt;</code></pre>",
        );
        assert_eq!(
            out,
            "<p title=\"say &quot;hi&quot; &gt; there\">He said &quot;hi&quot;.</p><pre><code>&lt;a href=&quot;/about&quot;&gt;</code></pre>"
        );
        let out = clean("<a href=\"/x\" title=\"a &quot;b&quot; > c\">\"t\"</a>");
        assert_eq!(
            out,
            "<a href=\"https://example.com/x\" title=\"a &quot;b&quot; &gt; c\">&quot;t&quot;</a>",
            "attribute values are left as they are"
        );
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

    /// Regression: `style="text-align:center"` (no space, as hand-written HTML and many Markdown tools write it)
    /// lost its alignment while `text-align: center` kept it.
    #[test]
    fn a_cells_alignment_is_read_as_css_reads_it_and_nothing_else_of_the_style_stays() {
        for (style, kept) in [
            ("text-align: center", Some("text-align: center")),
            ("text-align:center", Some("text-align: center")),
            ("text-align:center;", Some("text-align: center")),
            ("  TEXT-ALIGN :\tRight ; ", Some("text-align: right")),
            ("Text-Align:LEFT", Some("text-align: left")),
            ("color: red; text-align:center", Some("text-align: center")),
            (
                "text-align: left; text-align: right",
                Some("text-align: right"),
            ),
            (
                "text-align: right; text-align: sideways",
                Some("text-align: right"),
            ),
            ("content: \"; text-align: center\"", None),
            ("background: url(x;text-align:center)", None),
            ("text-align: center !important", None),
            ("text-align: justify", None),
            (
                "text-align: center; background: url(javascript:x)",
                Some("text-align: center"),
            ),
            ("text-align: \\63 enter", None),
            ("text-align: /* x */ center", None),
            ("color: red", None),
            ("", None),
        ] {
            assert_eq!(cell_alignment(style).as_deref(), kept, "{style:?}");
        }
        assert_eq!(
            clean(
                "<table><tr><th style=\"text-align:center\">a</th><td style=\"COLOR:red;Text-Align: Right\">b</td>\
                 <td style=\"color: red\">c</td></tr></table>"
            ),
            "<table><tbody><tr><th style=\"text-align: center\">a</th><td style=\"text-align: right\">b</td>\
             <td>c</td></tr></tbody></table>"
        );
        assert_eq!(
            clean("<p style=\"text-align:center\">p</p>"),
            "<p>p</p>",
            "only a table cell keeps a style"
        );
    }

    #[test]
    fn a_decoded_control_character_is_dropped() {
        assert_eq!(clean("<p>a&#8;b</p>"), "<p>ab</p>");
    }
}

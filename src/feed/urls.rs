//! Making every URL inside article HTML absolute (`href`, `src`, `srcset`, `poster`, `cite`), resolved against the
//! article's permalink. Many feed readers and every RSS-to-email service ignore `xml:base`, so the content itself
//! must carry absolute URLs. lol_html parses the HTML for real; a URL that does not parse is left as written.
//!
//! A `srcset` is read as browsers read it ([`parse_srcset`]), not split at commas: a URL may hold commas (image
//! CDNs put transforms in the path, `c_scale,w_300`). The sanitiser ([`super::content`]) checks each candidate's
//! scheme with the same function, so both see the same URLs.

use lol_html::{RewriteStrSettings, element, rewrite_str};
use url::Url;

/// `html` with every relative URL resolved against `base` (an absolute URL).
pub fn absolutize_html(html: &str, base: &str) -> String {
    let Ok(base) = Url::parse(base) else {
        return html.to_string();
    };
    let single = |attr: &'static str| {
        let base = base.clone();
        move |el: &mut lol_html::html_content::Element<'_, '_>| {
            if let Some(value) = el.get_attribute(attr) {
                let absolute = absolutize(&value, &base);
                if absolute != value {
                    el.set_attribute(attr, &absolute)?;
                }
            }
            Ok(())
        }
    };
    let srcset = {
        let base = base.clone();
        move |el: &mut lol_html::html_content::Element<'_, '_>| {
            if let Some(value) = el.get_attribute("srcset") {
                el.set_attribute("srcset", &absolutize_srcset(&value, &base))?;
            }
            Ok(())
        }
    };
    let settings = RewriteStrSettings {
        element_content_handlers: vec![
            element!("[href]", single("href")),
            element!("[src]", single("src")),
            element!("[poster]", single("poster")),
            element!("[cite]", single("cite")),
            element!("[srcset]", srcset),
        ],
        ..RewriteStrSettings::new()
    };
    // Rewriting a string cannot hit the memory limits lol_html enforces on streams; fall back to the input if
    // it ever does, rather than dropping the article.
    rewrite_str(html, settings).unwrap_or_else(|_| html.to_string())
}

/// One URL resolved against `base`; left as written when it does not parse.
pub fn absolutize(value: &str, base: &Url) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return value.to_string();
    }
    base.join(trimmed)
        .map_or_else(|_| value.to_string(), |u| u.to_string())
}

/// One image candidate of a `srcset`: its URL and its descriptors (`300w`, `2x`), each as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SrcsetCandidate<'a> {
    pub url: &'a str,
    pub descriptors: Vec<&'a str>,
}

/// A `srcset`'s candidates as a browser reads them (HTML's "parse a srcset attribute", up to the descriptor
/// checks): a URL runs to the next whitespace, so a comma inside it is part of it (CDN transforms such as
/// `c_scale,w_300`); commas ending it separate it from the next candidate; descriptors run to a comma outside
/// parentheses. Descriptors are kept as written, not validated: what a browser makes of them is its business.
pub(crate) fn parse_srcset(value: &str) -> Vec<SrcsetCandidate<'_>> {
    let mut candidates = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return candidates;
        }
        let url_end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (url, after) = rest.split_at(url_end);
        rest = after;
        let descriptors = if url.ends_with(',') {
            Vec::new()
        } else {
            let (descriptors, after) = split_descriptors(rest);
            rest = after;
            descriptors
        };
        candidates.push(SrcsetCandidate {
            url: url.trim_end_matches(','),
            descriptors,
        });
    }
}

/// The descriptors at the start of `text` (whitespace-separated, up to a comma outside parentheses or the end)
/// and what follows that comma.
fn split_descriptors(text: &str) -> (Vec<&str>, &str) {
    let mut descriptors = Vec::new();
    let mut start = None;
    let mut in_parens = false;
    for (i, c) in text.char_indices() {
        match c {
            ')' if in_parens => in_parens = false,
            _ if in_parens => {}
            '(' => {
                in_parens = true;
                start.get_or_insert(i);
            }
            ',' => {
                descriptors.extend(start.map(|s| &text[s..i]));
                return (descriptors, &text[i + 1..]);
            }
            c if c.is_ascii_whitespace() => {
                descriptors.extend(start.take().map(|s| &text[s..i]));
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    descriptors.extend(start.map(|s| &text[s..]));
    (descriptors, "")
}

/// `value` (a `srcset`) with each candidate's URL resolved against `base`, its descriptors as written.
fn absolutize_srcset(value: &str, base: &Url) -> String {
    parse_srcset(value)
        .iter()
        .map(|candidate| {
            let url = absolutize(candidate.url, base);
            std::iter::once(url.as_str())
                .chain(candidate.descriptors.iter().copied())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://example.com/blog/posts/hello/";

    #[test]
    fn relative_links_and_images_become_absolute() {
        let html = r##"<p><a href="../other/">o</a> <img src="img/a.png" alt="a"> <a href="/root">r</a> <a href="#fn1">f</a></p>"##;
        let out = absolutize_html(html, BASE);
        assert!(
            out.contains(r#"href="https://example.com/blog/posts/other/""#),
            "{out}"
        );
        assert!(
            out.contains(r#"src="https://example.com/blog/posts/hello/img/a.png""#),
            "{out}"
        );
        assert!(out.contains(r#"href="https://example.com/root""#), "{out}");
        assert!(
            out.contains(r#"href="https://example.com/blog/posts/hello/#fn1""#),
            "{out}"
        );
    }

    #[test]
    fn srcset_candidates_are_each_resolved() {
        let out = absolutize_html(r#"<img srcset="a.png 1x, /b.png 2x">"#, BASE);
        assert!(
            out.contains(r#"srcset="https://example.com/blog/posts/hello/a.png 1x, https://example.com/b.png 2x""#),
            "{out}"
        );
    }

    /// Regression: `srcset` was split at every comma, so a CDN URL with a transform such as `c_scale,w_300` in
    /// its path became two broken candidates.
    #[test]
    fn commas_inside_srcset_urls_are_part_of_the_url() {
        let html = r#"<source srcset="https://res.cloudinary.com/demo/image/upload/c_scale,w_300/sample.webp 300w, https://res.cloudinary.com/demo/image/upload/c_scale,w_600/sample.webp 600w">"#;
        assert_eq!(absolutize_html(html, BASE), html);
        let out = absolutize_html(r#"<img srcset="img/c_scale,w_300/a.webp 300w">"#, BASE);
        assert!(
            out.contains(
                r#"srcset="https://example.com/blog/posts/hello/img/c_scale,w_300/a.webp 300w""#
            ),
            "{out}"
        );
    }

    /// A candidate as a case below writes it: its URL and its descriptors.
    type Candidate = (&'static str, &'static [&'static str]);

    #[test]
    fn srcset_is_read_as_the_html_spec_reads_it() {
        let cases: [(&str, &[Candidate]); 12] = [
            ("", &[]),
            (" ,, \t\n", &[]),
            ("a.png", &[("a.png", &[])]),
            (
                "a.png 1x, b.png 2x",
                &[("a.png", &["1x"]), ("b.png", &["2x"])],
            ),
            (
                "a.png 1x , b.png 2x",
                &[("a.png", &["1x"]), ("b.png", &["2x"])],
            ),
            (
                "a.png 1x,b.png 2x",
                &[("a.png", &["1x"]), ("b.png", &["2x"])],
            ),
            // A URL runs to whitespace: the comma between two names belongs to one URL.
            ("a.png,b.png 2x", &[("a.png,b.png", &["2x"])]),
            // Commas ending a URL end the candidate (it has no descriptor).
            ("a.png, b.png 2x", &[("a.png", &[]), ("b.png", &["2x"])]),
            ("a.png,,, b.png", &[("a.png", &[]), ("b.png", &[])]),
            (",a.png", &[("a.png", &[])]),
            (
                "a.png\t100w\n 1x,\tb.png",
                &[("a.png", &["100w", "1x"]), ("b.png", &[])],
            ),
            // A comma inside parentheses does not end the descriptors.
            (
                "a.png 1x (x, y), b.png",
                &[("a.png", &["1x", "(x, y)"]), ("b.png", &[])],
            ),
        ];
        for (srcset, expected) in cases {
            let expected: Vec<SrcsetCandidate<'_>> = expected
                .iter()
                .map(|(url, descriptors)| SrcsetCandidate {
                    url,
                    descriptors: descriptors.to_vec(),
                })
                .collect();
            assert_eq!(parse_srcset(srcset), expected, "{srcset:?}");
        }
    }

    #[test]
    fn srcset_descriptors_are_kept_and_candidates_rejoined() {
        let out = absolutize_html(r#"<img srcset="a.png  1x ,b.png,c.png 2x,, d.png,">"#, BASE);
        assert!(
            out.contains(
                r#"srcset="https://example.com/blog/posts/hello/a.png 1x, https://example.com/blog/posts/hello/b.png,c.png 2x, https://example.com/blog/posts/hello/d.png""#
            ),
            "{out}"
        );
        assert!(
            absolutize_html(r#"<img srcset="">"#, BASE).contains(r#"srcset="""#),
            "an empty srcset stays empty"
        );
    }

    #[test]
    fn absolute_and_mailto_urls_are_kept() {
        let html = r#"<a href="https://rust-lang.org/">x</a><a href="mailto:a@b.c">m</a>"#;
        assert_eq!(absolutize_html(html, BASE), html);
    }

    #[test]
    fn text_that_looks_like_an_attribute_is_not_touched() {
        let html = "<pre><code>&lt;a href=\"x\"&gt;</code></pre>";
        assert_eq!(absolutize_html(html, BASE), html);
    }
}

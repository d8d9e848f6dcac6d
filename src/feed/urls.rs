//! Making every URL inside article HTML absolute (`href`, `src`, `srcset`, `poster`, `cite`), resolved against the
//! article's permalink. Many feed readers and every RSS-to-email service ignore `xml:base`, so the content itself
//! must carry absolute URLs. lol_html parses the HTML for real; a URL that does not parse is left as written.

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

/// `srcset` is a comma-separated list of `URL [descriptor]`.
fn absolutize_srcset(value: &str, base: &Url) -> String {
    value
        .split(',')
        .map(|candidate| {
            let candidate = candidate.trim();
            match candidate.split_once(char::is_whitespace) {
                Some((url, descriptor)) => {
                    format!("{} {}", absolutize(url, base), descriptor.trim())
                }
                None => absolutize(candidate, base),
            }
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

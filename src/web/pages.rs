//! [`Pages`]: the Handlebars templates of the web pages (`templates/pages/*.hbs`, each page's body wrapped in
//! `layout.hbs`) and of the messages the pages send (`templates/mail/*.{txt,html}.hbs`). Each built-in template
//! is overridden by a file of the same path under `[newsletter] templates`, as the digest templates are.
//!
//! Two registries in strict mode (a misspelt variable is an error at render time, caught by the tests): pages
//! and HTML mail escape everything (a name typed into the form is text, never markup); text mail does not
//! (an escaped `&` would show as `&amp;`), and its values are never HTML.

use std::path::Path;

use handlebars::Handlebars;
use serde::Serialize;

use super::WebError;

/// Built-in templates: (path under the templates folder, text).
const BUILTIN: &[(&str, &str)] = &[
    (
        "pages/layout.hbs",
        include_str!("../../templates/pages/layout.hbs"),
    ),
    (
        "pages/subscribe.hbs",
        include_str!("../../templates/pages/subscribe.hbs"),
    ),
    (
        "pages/check-inbox.hbs",
        include_str!("../../templates/pages/check-inbox.hbs"),
    ),
    (
        "pages/confirmed.hbs",
        include_str!("../../templates/pages/confirmed.hbs"),
    ),
    (
        "pages/invalid-link.hbs",
        include_str!("../../templates/pages/invalid-link.hbs"),
    ),
    (
        "pages/unsubscribe.hbs",
        include_str!("../../templates/pages/unsubscribe.hbs"),
    ),
    (
        "pages/unsubscribed.hbs",
        include_str!("../../templates/pages/unsubscribed.hbs"),
    ),
    (
        "pages/preferences.hbs",
        include_str!("../../templates/pages/preferences.hbs"),
    ),
    (
        "pages/message.hbs",
        include_str!("../../templates/pages/message.hbs"),
    ),
    (
        "mail/confirm.txt.hbs",
        include_str!("../../templates/mail/confirm.txt.hbs"),
    ),
    (
        "mail/confirm.html.hbs",
        include_str!("../../templates/mail/confirm.html.hbs"),
    ),
    (
        "mail/subscribed.txt.hbs",
        include_str!("../../templates/mail/subscribed.txt.hbs"),
    ),
    (
        "mail/subscribed.html.hbs",
        include_str!("../../templates/mail/subscribed.html.hbs"),
    ),
];

/// The compiled page and mail templates.
pub struct Pages {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

/// The site as every page and message shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    pub title: String,
    pub url: String,
    pub language: String,
    pub postal_address: String,
}

impl Pages {
    /// The built-in templates, each overridden by `<dir>/<path>` when that file exists; every problem is
    /// collected and reported with its file.
    pub fn load(dir: &Path) -> Result<Pages, WebError> {
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        text.register_escape_fn(handlebars::no_escape);
        let mut problems = Vec::new();
        for hb in [&mut html, &mut text] {
            hb.set_strict_mode(true);
            hb.set_prevent_indent(true);
        }
        for (rel, builtin) in BUILTIN {
            let file = dir.join(rel);
            let (origin, source) = match std::fs::read_to_string(&file) {
                Ok(source) => (file.display().to_string(), source),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    (format!("templates/{rel} (built-in)"), builtin.to_string())
                }
                Err(e) => {
                    problems.push(format!("{}: cannot read: {e}", file.display()));
                    continue;
                }
            };
            let hb = if rel.ends_with(".txt.hbs") {
                &mut text
            } else {
                &mut html
            };
            if let Err(e) = hb.register_template_string(rel, source) {
                let (line, col) = e.pos().unwrap_or((1, 1));
                problems.push(format!("{origin}:{line}:{col}: error: {}", e.reason()));
            }
        }
        if problems.is_empty() {
            Ok(Pages { html, text })
        } else {
            Err(WebError::Templates(problems.join("\n")))
        }
    }

    /// A whole page: `pages/<name>.hbs` rendered with `data`, inside `layout.hbs` with `title`.
    pub fn page(
        &self,
        name: &str,
        site: &SiteView,
        title: &str,
        data: &serde_json::Value,
    ) -> Result<String, WebError> {
        let mut data = data.clone();
        if let Some(map) = data.as_object_mut() {
            map.insert(
                "site".into(),
                serde_json::to_value(site).expect("serializable"),
            );
            map.insert("title".into(), title.into());
        }
        let content = self.render_html(&format!("pages/{name}.hbs"), &data)?;
        self.render_html(
            "pages/layout.hbs",
            &serde_json::json!({ "site": site, "title": title, "content": content }),
        )
    }

    /// A message's text and HTML parts: `mail/<name>.txt.hbs` and `mail/<name>.html.hbs` with `data`.
    pub fn message(
        &self,
        name: &str,
        data: &serde_json::Value,
    ) -> Result<(String, String), WebError> {
        let text = self
            .text
            .render(&format!("mail/{name}.txt.hbs"), data)
            .map_err(|e| WebError::Render(format!("mail/{name}.txt.hbs: {e}")))?;
        let html = self.render_html(&format!("mail/{name}.html.hbs"), data)?;
        Ok((text, html))
    }

    fn render_html(&self, template: &str, data: &serde_json::Value) -> Result<String, WebError> {
        self.html
            .render(template, data)
            .map_err(|e| WebError::Render(format!("{template}: {e}")))
    }
}

/// A choice in a checkbox list (`name`, ticked or not).
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub name: String,
    pub checked: bool,
}

/// `all` as choices, those in `ticked` checked.
pub fn choices(all: &[String], ticked: &[String]) -> Vec<Choice> {
    all.iter()
        .map(|name| Choice {
            name: name.clone(),
            checked: ticked.contains(name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteView {
        SiteView {
            title: "Blog <b>".into(),
            url: "https://example.com/".into(),
            language: "en".into(),
            postal_address: "1 Street".into(),
        }
    }

    #[test]
    fn every_built_in_template_compiles_and_an_override_replaces_its_built_in() {
        let dir = tempfile::tempdir().unwrap();
        Pages::load(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("pages")).unwrap();
        std::fs::write(
            dir.path().join("pages/message.hbs"),
            "<h1>Custom: {{title}}</h1>",
        )
        .unwrap();
        let pages = Pages::load(dir.path()).unwrap();
        let html = pages
            .page(
                "message",
                &site(),
                "Hi",
                &serde_json::json!({ "text": "x" }),
            )
            .unwrap();
        assert!(html.contains("<h1>Custom: Hi</h1>"), "{html}");
    }

    #[test]
    fn a_broken_override_is_reported_with_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pages")).unwrap();
        std::fs::write(dir.path().join("pages/subscribe.hbs"), "ok\n{{#if x}}\n").unwrap();
        let Err(err) = Pages::load(dir.path()) else {
            panic!("a broken template must be refused")
        };
        let err = err.to_string();
        assert!(err.contains("pages/subscribe.hbs:"), "{err}");
        assert!(!err.contains("built-in"), "{err}");
    }

    #[test]
    fn what_a_user_typed_is_escaped_in_pages_and_html_mail_but_not_in_text_mail() {
        let dir = tempfile::tempdir().unwrap();
        let pages = Pages::load(dir.path()).unwrap();
        let html = pages
            .page(
                "message",
                &site(),
                "<script>alert(1)</script>",
                &serde_json::json!({ "text": "<img src=x onerror=alert(1)>" }),
            )
            .unwrap();
        assert!(
            !html.contains("<script>alert") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;") && html.contains("Blog &lt;b&gt;"));
        let data = serde_json::json!({
            "site": site(), "name": "<b>Ada</b> & co", "digests": ["weekly"], "categories": [],
            "confirm_url": "https://example.com/confirm?token=a=b", "valid_days": 7, "subject": "s",
        });
        let (text, html) = pages.message("confirm", &data).unwrap();
        assert!(text.contains("Hello <b>Ada</b> & co,"), "{text}");
        assert!(
            text.contains("https://example.com/confirm?token=a=b"),
            "{text}"
        );
        assert!(html.contains("&lt;b&gt;Ada&lt;/b&gt; &amp; co"), "{html}");
    }
}

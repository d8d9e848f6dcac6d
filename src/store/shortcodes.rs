//! Hugo shortcodes (`{{< name params >}}`, `{{% name params %}}`, paired with `{{< /name >}}`), evaluated
//! before Markdown as Hugo does: `figure` (a `<figure>`), `highlight` (a fenced code block), `ref` / `relref`
//! (the target's permalink), `youtube` / `vimeo` / `gist` (a link: feeds carry no players). Any other shortcode
//! needs the site's templates: its tags are removed (a paired one keeps its content) and it is reported as a
//! [`Problem`]. `{{</* x */>}}` is Hugo's escape and prints `{{< x >}}`.

use super::body::{Problem, escape_html, push_fenced_code};
use super::links::LinkIndex;
use super::liquid::gist_link;

/// One shortcode tag in the source.
#[derive(Debug, Clone)]
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    /// Positional parameters, in order.
    positional: Vec<String>,
    /// Named parameters (`key="value"`).
    named: Vec<(String, String)>,
    start: usize,
    end: usize,
}

impl Tag<'_> {
    fn get(&self, key: &str, position: usize) -> Option<&str> {
        self.named
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.positional.get(position).map(String::as_str))
    }

    fn named(&self, key: &str) -> Option<&str> {
        self.named
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

enum Piece<'a> {
    Text(&'a str),
    /// An escaped shortcode, printed as Hugo would show it.
    Literal(String),
    Tag(Tag<'a>),
    /// `{{<` without its `>}}`.
    Unclosed(usize),
}

fn pieces(src: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = find_open(src, pos) {
        out.push(Piece::Text(&src[pos..i]));
        let percent = src[i..].starts_with("{{%");
        let close = if percent { "%}}" } else { ">}}" };
        // Unclosed: no closing delimiter, or another shortcode opens before it.
        let len = src[i + 3..]
            .find(close)
            .filter(|&len| find_open(&src[..i + 3 + len], i + 3).is_none());
        let Some(len) = len else {
            out.push(Piece::Unclosed(i));
            pos = src[i..].find('\n').map_or(src.len(), |n| i + n);
            continue;
        };
        let inner = &src[i + 3..i + 3 + len];
        let end = i + 3 + len + 3;
        if let Some(escaped) = inner.strip_prefix("/*").and_then(|s| s.strip_suffix("*/")) {
            let open = if percent { "{{%" } else { "{{<" };
            out.push(Piece::Literal(format!("{open}{escaped}{close}")));
        } else {
            out.push(parse_tag(inner, i, end));
        }
        pos = end;
    }
    out.push(Piece::Text(&src[pos..]));
    out
}

fn find_open(src: &str, from: usize) -> Option<usize> {
    let mut pos = from;
    loop {
        let i = pos + memchr::memmem::find(&src.as_bytes()[pos..], b"{{")?;
        if src[i + 2..].starts_with(['<', '%']) {
            return Some(i);
        }
        // `{{{<`: the shortcode starts at the next brace.
        pos = i + 1;
    }
}

fn parse_tag(inner: &str, start: usize, end: usize) -> Piece<'_> {
    let inner = inner.trim();
    let (closing, inner) = match inner.strip_prefix('/') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, inner),
    };
    let inner = inner.strip_suffix('/').unwrap_or(inner).trim_end();
    let name_len = inner.find(char::is_whitespace).unwrap_or(inner.len());
    let name = &inner[..name_len];
    let mut positional = Vec::new();
    let mut named = Vec::new();
    for word in words(&inner[name_len..]) {
        match word.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
            {
                named.push((k.to_string(), unquote(v)))
            }
            _ => positional.push(unquote(&word)),
        }
    }
    Piece::Tag(Tag {
        name,
        closing,
        positional,
        named,
        start,
        end,
    })
}

/// Whitespace-separated words, where `"…"` and `` `…` `` may hold spaces.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut escaped = false;
    for c in s.chars() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                current.push(c);
                continue;
            }
            (None, '"' | '`') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), c) if c == q && !escaped => {
                quote = None;
                current.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
        escaped = false;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn unquote(s: &str) -> String {
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return inner.replace("\\\"", "\"").replace("\\\\", "\\");
    }
    if let Some(inner) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return inner.to_string();
    }
    s.to_string()
}

/// Evaluates the shortcodes in `src`; returns the text and what could not be evaluated.
pub fn render(src: &str, links: &LinkIndex) -> (String, Vec<Problem>) {
    if find_open(src, 0).is_none() {
        return (src.to_string(), Vec::new());
    }
    let pieces = pieces(src);
    let mut out = String::with_capacity(src.len());
    let mut problems = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        match &pieces[i] {
            Piece::Text(t) => out.push_str(t),
            Piece::Literal(l) => out.push_str(l),
            Piece::Unclosed(at) => problems.push(Problem::new(
                *at,
                "shortcode is never closed; end it with >}} (or %}})",
            )),
            Piece::Tag(tag) if tag.closing => problems.push(Problem::new(
                tag.start,
                format!(
                    "{{{{< /{} >}}}} closes a shortcode that was never opened; remove it",
                    tag.name
                ),
            )),
            Piece::Tag(tag) => {
                let close = pieces[i + 1..]
                    .iter()
                    .position(|p| matches!(p, Piece::Tag(t) if t.closing && t.name == tag.name));
                match tag.name {
                    "highlight" => {
                        let Some(close) = close else {
                            problems.push(Problem::new(
                                tag.start,
                                "{{< highlight >}} is never closed; add {{< /highlight >}}",
                            ));
                            i += 1;
                            continue;
                        };
                        // Hugo evaluates shortcodes inside one (a literal one is written escaped).
                        let Piece::Tag(end_tag) = &pieces[i + 1 + close] else {
                            unreachable!("`close` indexes a closing tag")
                        };
                        let (inner, nested) = render(&src[tag.end..end_tag.start], links);
                        problems.extend(
                            nested
                                .into_iter()
                                .map(|p| Problem::new(p.offset + tag.end, p.message)),
                        );
                        let lang = tag.get("lang", 0).unwrap_or("");
                        push_fenced_code(&mut out, lang, &inner);
                        i += close + 2;
                        continue;
                    }
                    "figure" => out.push_str(&figure(tag)),
                    "ref" | "relref" => {
                        let target = tag.get("path", 0).unwrap_or("");
                        match links.resolve(target) {
                            Some(url) => out.push_str(&url),
                            None => problems.push(Problem::new(
                                tag.start,
                                format!(
                                    "{{{{< {} \"{target}\" >}}}}: no article of the store is at that path; give its \
                                     path from the content folder, like posts/my-post.md",
                                    tag.name
                                ),
                            )),
                        }
                    }
                    "youtube" | "vimeo" => match tag.get("id", 0) {
                        Some(id) if !id.is_empty() => {
                            let (site, url) = if tag.name == "youtube" {
                                ("YouTube", format!("https://www.youtube.com/watch?v={id}"))
                            } else {
                                ("Vimeo", format!("https://vimeo.com/{id}"))
                            };
                            let text = tag
                                .named("title")
                                .map_or_else(|| format!("Watch the video on {site}"), str::to_string);
                            out.push_str(&format!("[{}]({url})", escape_link_text(&text)));
                        }
                        _ => problems.push(Problem::new(
                            tag.start,
                            format!("{{{{< {} >}}}} needs the video's id", tag.name),
                        )),
                    },
                    "gist" => match (tag.get("user", 0), tag.get("id", 1)) {
                        (Some(user), Some(id)) => {
                            let file = tag.get("file", 2);
                            out.push_str(&gist_link(&format!("{user}/{id}"), file));
                        }
                        _ => problems.push(Problem::new(
                            tag.start,
                            "{{< gist >}} needs a user and an id, like {{< gist spf13 7896402 >}}",
                        )),
                    },
                    name => problems.push(Problem::new(
                        tag.start,
                        format!(
                            "shortcode \"{}\" needs the site's Hugo templates; it is left out of the feeds{}",
                            shown(&src[tag.start..tag.end]),
                            if close.is_some() {
                                // Closed as it was opened: `{{% /note %}}` after `{{% note %}}`.
                                let (open, end) = if src[tag.start..].starts_with("{{%") {
                                    ("{{%", "%}}")
                                } else {
                                    ("{{<", ">}}")
                                };
                                format!(" (what it encloses is kept, up to {open} /{name} {end})")
                            } else {
                                String::new()
                            }
                        ),
                    )),
                }
                if let Some(close) = close.filter(|_| !matches!(tag.name, "highlight")) {
                    // A paired shortcode we do not know: its content stays, its closing tag goes.
                    if let Piece::Tag(_) = &pieces[i + 1 + close] {
                        let mut j = i + 1;
                        while j < i + 1 + close {
                            if let Piece::Text(t) = &pieces[j] {
                                out.push_str(t);
                            } else if let Piece::Literal(l) = &pieces[j] {
                                out.push_str(l);
                            }
                            j += 1;
                        }
                        i += close + 2;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    (out, problems)
}

/// A shortcode as written, on one line and not too long for a message.
fn shown(s: &str) -> String {
    let s: String = s.chars().take(80).collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape_link_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace(']', "\\]")
}

/// Hugo's `figure`: an image with an optional link, title, caption and attribution.
fn figure(tag: &Tag<'_>) -> String {
    let attr = |k: &str| tag.named(k).filter(|v| !v.is_empty());
    let mut html = String::from("<figure");
    if let Some(class) = attr("class") {
        html.push_str(&format!(" class=\"{}\"", escape_html(class)));
    }
    html.push('>');
    let link = attr("link");
    if let Some(link) = link {
        html.push_str(&format!("<a href=\"{}\">", escape_html(link)));
    }
    html.push_str(&format!(
        "<img src=\"{}\" alt=\"{}\"",
        escape_html(attr("src").unwrap_or("")),
        escape_html(attr("alt").or(attr("caption")).unwrap_or(""))
    ));
    for k in ["width", "height"] {
        if let Some(v) = attr(k) {
            html.push_str(&format!(" {k}=\"{}\"", escape_html(v)));
        }
    }
    html.push('>');
    if link.is_some() {
        html.push_str("</a>");
    }
    let (title, caption, attribution) = (attr("title"), attr("caption"), attr("attr"));
    if title.is_some() || caption.is_some() || attribution.is_some() {
        html.push_str("<figcaption>");
        if let Some(t) = title {
            html.push_str(&format!("<h4>{}</h4>", escape_html(t)));
        }
        if caption.is_some() || attribution.is_some() {
            html.push_str("<p>");
            if let Some(c) = caption {
                html.push_str(&escape_html(c));
            }
            if let Some(a) = attribution {
                if caption.is_some() {
                    html.push(' ');
                }
                match attr("attrlink") {
                    Some(href) => html.push_str(&format!(
                        "<a href=\"{}\">{}</a>",
                        escape_html(href),
                        escape_html(a)
                    )),
                    None => html.push_str(&escape_html(a)),
                }
            }
            html.push_str("</p>");
        }
        html.push_str("</figcaption>");
    }
    html.push_str("</figure>");
    html
}

/// Zola's shortcodes: `{{ name(key=value, …) }}` and `{% name(…) %}…{% end %}`, evaluated like Hugo's:
/// the built-in `youtube(id=…)`, `vimeo(id=…)` and `gist(url=…)` become links; any other is reported and removed
/// (a body shortcode keeps its body). `{{/* … */}}` and `{%/* … */%}` are Zola's escapes. Markup that is not a
/// call (`{{ x }}`) is not a shortcode and stays as written.
pub fn render_zola(src: &str) -> (String, Vec<Problem>) {
    if !src.contains("{{") && !src.contains("{%") {
        return (src.to_string(), Vec::new());
    }
    let mut out = String::with_capacity(src.len());
    let mut problems = Vec::new();
    let mut pos = 0;
    let mut open_bodies: Vec<usize> = Vec::new();
    while let Some(found) = next_zola(src, pos) {
        out.push_str(&src[pos..found.start]);
        pos = found.end;
        match found.kind {
            ZolaKind::Escaped(text) => out.push_str(&text),
            ZolaKind::End => {
                if open_bodies.pop().is_none() {
                    out.push_str(&src[found.start..found.end]);
                }
            }
            ZolaKind::Call { name, args, body } => {
                let arg = |key: &str| {
                    args.iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.as_str())
                        .filter(|v| !v.is_empty())
                };
                let link = match (name, body) {
                    ("youtube", false) => arg("id").map(|id| {
                        format!(
                            "[Watch the video on YouTube](https://www.youtube.com/watch?v={id})"
                        )
                    }),
                    ("vimeo", false) => arg("id")
                        .map(|id| format!("[Watch the video on Vimeo](https://vimeo.com/{id})")),
                    ("gist", false) => {
                        arg("url").map(|url| format!("[View the gist on GitHub]({url})"))
                    }
                    _ => None,
                };
                match link {
                    Some(link) => out.push_str(&link),
                    None => {
                        if body {
                            open_bodies.push(found.start);
                        }
                        problems.push(Problem::new(
                            found.start,
                            format!(
                                "shortcode \"{}\" needs the site's Zola templates; it is left out of the feeds{}",
                                shown(&src[found.start..found.end]),
                                if body { " (its body is kept)" } else { "" }
                            ),
                        ));
                    }
                }
            }
        }
    }
    out.push_str(&src[pos..]);
    (out, problems)
}

enum ZolaKind<'a> {
    Escaped(String),
    Call {
        name: &'a str,
        args: Vec<(String, String)>,
        body: bool,
    },
    End,
}

struct ZolaMarkup<'a> {
    kind: ZolaKind<'a>,
    start: usize,
    end: usize,
}

/// The next Zola shortcode, escape or `{% end %}` at or after `from`.
fn next_zola(src: &str, from: usize) -> Option<ZolaMarkup<'_>> {
    let mut i = from;
    loop {
        i += src[i..].find('{')?;
        let (body, close) = match src.as_bytes().get(i + 1) {
            Some(b'{') => (false, "}}"),
            Some(b'%') => (true, "%}"),
            _ => {
                i += 1;
                continue;
            }
        };
        let inner_start = i + 2;
        let Some(len) = src[inner_start..].find(close) else {
            i += 2;
            continue;
        };
        let inner = &src[inner_start..inner_start + len];
        let end = inner_start + len + 2;
        if let Some(escaped) = inner.strip_prefix("/*").and_then(|r| r.strip_suffix("*/")) {
            let open = &src[i..i + 2];
            return Some(ZolaMarkup {
                kind: ZolaKind::Escaped(format!("{open}{escaped}{close}")),
                start: i,
                end,
            });
        }
        let trimmed = inner.trim();
        if body && trimmed == "end" {
            return Some(ZolaMarkup {
                kind: ZolaKind::End,
                start: i,
                end,
            });
        }
        let name_len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        let (name, rest) = trimmed.split_at(name_len);
        match rest
            .strip_prefix('(')
            .and_then(|r| r.trim_end().strip_suffix(')'))
        {
            Some(args) if !name.is_empty() => {
                return Some(ZolaMarkup {
                    kind: ZolaKind::Call {
                        name,
                        args: zola_args(args),
                        body,
                    },
                    start: i,
                    end,
                });
            }
            _ => i += 2,
        }
    }
}

/// `key="value", n=1, flag=true` as (key, value) pairs.
fn zola_args(args: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut quote = None;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in args.char_indices() {
        match (quote, c) {
            (None, '"' | '\'' | '`') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                parts.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&args[start..]);
    for part in parts {
        if let Some((k, v)) = part.split_once('=') {
            let v = v.trim();
            let v = ['"', '\'', '`']
                .into_iter()
                .find_map(|q| v.strip_prefix(q)?.strip_suffix(q))
                .unwrap_or(v);
            out.push((k.trim().to_string(), v.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn links() -> LinkIndex {
        let articles = [(
            PathBuf::from("/s/content/posts/other.md"),
            "https://e.com/posts/other/".to_string(),
        )];
        LinkIndex::new(articles.iter().map(|(p, u)| (p.as_path(), u.as_str())))
    }

    #[test]
    fn known_shortcodes_become_markdown_or_html() {
        let src = "{{< figure src=\"img/a.png\" alt=\"An \\\"A\\\"\" caption=\"It's here\" link=\"/big.png\" >}}\n\n\
                   See [other]({{< ref \"posts/other.md\" >}}) and [o2]({{< relref \"other\" >}}#x).\n\n\
                   {{< youtube dQw4w9WgXcQ >}} {{< vimeo id=\"146022717\" title=\"A talk\" >}} {{< gist spf13 7896402 \"img.html\" >}}\n\n\
                   {{< highlight go \"linenos=table\" >}}\n// a comment\nfunc main() {}\n{{< /highlight >}}\n";
        let (out, problems) = render(src, &links());
        assert_eq!(problems, vec![]);
        assert_eq!(
            out,
            "<figure><a href=\"/big.png\"><img src=\"img/a.png\" alt=\"An &quot;A&quot;\"></a><figcaption><p>It&#39;s here</p></figcaption></figure>\n\n\
             See [other](https://e.com/posts/other/) and [o2](https://e.com/posts/other/#x).\n\n\
             [Watch the video on YouTube](https://www.youtube.com/watch?v=dQw4w9WgXcQ) [A talk](https://vimeo.com/146022717) \
             [View the gist on GitHub](https://gist.github.com/spf13/7896402#file-img-html)\n\n\
             ```go\n// a comment\nfunc main() {}\n```\n\n"
        );
    }

    #[test]
    fn unknown_shortcodes_are_removed_and_reported_keeping_what_they_enclose() {
        let src = "a {{< tweet user=\"x\" id=\"1\" >}} b {{% notice warning %}}Careful{{% /notice %}} c {{< ref \"gone.md\" >}}";
        let (out, problems) = render(src, &links());
        assert_eq!(out, "a  b Careful c ");
        let offsets: Vec<usize> = problems.iter().map(|p| p.offset).collect();
        assert_eq!(
            offsets,
            [
                2,
                src.find("{{% notice").unwrap(),
                src.find("{{< ref").unwrap()
            ]
        );
        assert!(problems[0].message.contains(
            "shortcode \"{{< tweet user=\"x\" id=\"1\" >}}\" needs the site's Hugo templates"
        ));
        assert!(
            problems[1].message.contains("what it encloses is kept"),
            "{problems:?}"
        );
        assert!(problems[2].message.contains("\"gone.md\""), "{problems:?}");
    }

    /// Found by fuzzing: the `{{<` of `{{{<` was skipped and printed.
    #[test]
    fn a_shortcode_after_a_brace_is_found() {
        let (out, problems) = render("{{{< youtube x >}} {{{<div>", &links());
        assert_eq!(
            out,
            "{[Watch the video on YouTube](https://www.youtube.com/watch?v=x) {"
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].offset, 20);
    }

    /// Found by fuzzing: an unclosed `{{<div>` took everything up to the next shortcode's `>}}` with it.
    #[test]
    fn an_unclosed_shortcode_ends_where_the_next_one_opens() {
        let (out, problems) = render("{{<div>\n{{< youtube x >}}\n", &links());
        assert_eq!(
            out,
            "\n[Watch the video on YouTube](https://www.youtube.com/watch?v=x)\n"
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].offset, 0);
    }

    #[test]
    fn zola_shortcodes_become_links_or_are_reported() {
        let src = "{{ youtube(id=\"dQw4w9WgXcQ\", autoplay=true) }} {{ gist(url=\"https://gist.github.com/a/1\") }}\n\
                   {% note(kind='tip') %}Body *kept*{% end %} {{ custom() }} {{ not_a_call }} {{/* youtube(id=\"x\") */}}";
        let (out, problems) = render_zola(src);
        assert_eq!(
            out,
            "[Watch the video on YouTube](https://www.youtube.com/watch?v=dQw4w9WgXcQ) \
             [View the gist on GitHub](https://gist.github.com/a/1)\nBody *kept*  {{ not_a_call }} {{ youtube(id=\"x\") }}"
        );
        let offsets: Vec<usize> = problems.iter().map(|p| p.offset).collect();
        assert_eq!(
            offsets,
            [src.find("{% note").unwrap(), src.find("{{ custom").unwrap()]
        );
        assert!(
            problems[0].message.contains("(its body is kept)"),
            "{problems:?}"
        );
    }

    #[test]
    fn escaped_shortcodes_are_printed() {
        let (out, problems) = render("Write {{</* figure src=\"x\" */>}} to show one.", &links());
        assert_eq!(out, "Write {{< figure src=\"x\" >}} to show one.");
        assert_eq!(problems, vec![]);
    }
}

//! The part of Jekyll's Liquid that a blog post's body uses, evaluated before Markdown as Jekyll does:
//! `{% highlight lang %}…{% endhighlight %}` (a fenced code block), `{% link path %}` and `{% post_url name %}`
//! (the target's permalink), `{% raw %}…{% endraw %}` (kept verbatim), `{% comment %}` (dropped), `{% assign %}`
//! of a value, `{% gist user/id %}` (a link), and `{{ … }}` outputs of `site.url`, `site.baseurl`, `site.title`,
//! `page.*` and assigned names, with a few filters (`relative_url`, `absolute_url`, `escape`, `append`, …).
//! Whitespace control (`{%-`, `-%}`) is honoured.
//!
//! Anything else (`{% include %}`, `{% if %}`, `{{ site.data.x }}`, an unknown filter) cannot be evaluated
//! without the site's templates and data: it is removed from the output and reported as a [`Problem`] at its
//! offset, never printed raw into a feed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::body::{Problem, escape_html, push_fenced_code};
use super::links::LinkIndex;

/// The values `{{ site.* }}` and `{{ page.* }}` read.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    /// `site.url` (scheme and host, no trailing slash), `site.baseurl` (the path, no trailing slash), `site.title`…
    pub site: BTreeMap<String, String>,
    /// Every other `site.*`: the values of the Jekyll site's `_config.yml` (`site.repository`,
    /// `site.author.name`), shared by all its posts.
    pub site_config: Arc<BTreeMap<String, String>>,
    /// `page.title`, `page.url`, `page.date`, and every scalar of the front matter.
    pub page: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tag,
    Output,
}

/// One `{% … %}` or `{{ … }}` in the source.
#[derive(Debug, Clone)]
struct Markup<'a> {
    kind: Kind,
    /// Between the delimiters (and the `-` of whitespace control), trimmed.
    inner: &'a str,
    start: usize,
    end: usize,
    trim_before: bool,
    trim_after: bool,
}

impl Markup<'_> {
    fn name(&self) -> &str {
        self.inner.split_whitespace().next().unwrap_or("")
    }

    fn args(&self) -> &str {
        self.inner[self.name().len()..].trim()
    }

    fn shown(&self, src: &str) -> String {
        let text: String = src[self.start..self.end].chars().take(80).collect();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The next `{%`/`{{` at or after `from`, with its closing delimiter; `None` past the last one. An opening
/// without a closing is returned with `end == src.len()` and reported by the caller.
fn next_markup(src: &str, from: usize) -> Option<Result<Markup<'_>, usize>> {
    let mut i = from + src[from..].find('{')?;
    loop {
        // Bytes, not `&str` slices: the character after a `{` may be several bytes long.
        let (kind, close) = match src.as_bytes().get(i + 1) {
            Some(b'%') => (Kind::Tag, "%}"),
            Some(b'{') => (Kind::Output, "}}"),
            _ => {
                i += 1 + src[i + 1..].find('{')?;
                continue;
            }
        };
        let body_start = i + 2;
        let Some(len) = src[body_start..].find(close) else {
            return Some(Err(i));
        };
        let mut inner = &src[body_start..body_start + len];
        let trim_before = inner.starts_with('-');
        let trim_after = inner.ends_with('-');
        if trim_before {
            inner = &inner[1..];
        }
        if trim_after && !inner.is_empty() {
            inner = &inner[..inner.len() - 1];
        }
        return Some(Ok(Markup {
            kind,
            inner: inner.trim(),
            start: i,
            end: body_start + len + 2,
            trim_before,
            trim_after,
        }));
    }
}

struct Renderer<'a> {
    src: &'a str,
    vars: &'a Variables,
    links: &'a LinkIndex,
    locals: HashMap<String, String>,
    problems: Vec<Problem>,
}

/// Evaluates the Liquid in `src`; returns the text and what could not be evaluated.
/// After a value that could not be given (`out` ends where it would have gone, `src[pos..]` follows it): when
/// it was part of a Markdown link's destination (`[text](https://github.com/{{ site.data.repo }}/pull/1)`), the
/// whole destination goes (`[text]()`: the link keeps its text), rather than a live link to the wrong place; when
/// it was all of an autolink (`<{{ release.url }}>`), the brackets go. Returns where copying `src` resumes.
fn drop_unfinished_link(out: &mut String, src: &str, pos: usize) -> usize {
    let in_destination = |s: &str| !s.contains(|c: char| c.is_whitespace() || c == ')' || c == '(');
    if let Some(open) = out.rfind("](")
        && in_destination(&out[open + 2..])
    {
        let rest = &src[pos..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ')')
            .unwrap_or(rest.len());
        if rest[end..].starts_with(')') {
            out.truncate(open + 2);
            return pos + end;
        }
    }
    if out.ends_with('<') && src[pos..].starts_with('>') {
        out.pop();
        return pos + 1;
    }
    pos
}

pub fn render(src: &str, vars: &Variables, links: &LinkIndex) -> (String, Vec<Problem>) {
    let has = |pattern: &[u8]| memchr::memmem::find(src.as_bytes(), pattern).is_some();
    if !has(b"{%") && !has(b"{{") {
        return (src.to_string(), Vec::new());
    }
    let mut r = Renderer {
        src,
        vars,
        links,
        locals: HashMap::new(),
        problems: Vec::new(),
    };
    let mut out = String::with_capacity(src.len());
    r.render_until(0, None, &mut out);
    (out, r.problems)
}

impl<'a> Renderer<'a> {
    /// Renders from `pos` until the end tag `until` (returning the offset after it) or the end of the source.
    fn render_until(
        &mut self,
        mut pos: usize,
        until: Option<&str>,
        out: &mut String,
    ) -> Option<usize> {
        let src = self.src;
        let mut trim_next = false;
        loop {
            let next = next_markup(src, pos);
            let text_end = match &next {
                Some(Ok(m)) => m.start,
                Some(Err(at)) => *at,
                None => src.len(),
            };
            let mut text = &src[pos..text_end];
            if trim_next {
                text = text.trim_start();
                trim_next = false;
            }
            out.push_str(text);
            let m = match next {
                None => return None,
                Some(Err(at)) => {
                    self.problem(
                        at,
                        "Liquid markup is never closed; add the closing %} or }}, or remove it",
                    );
                    // Drop the rest of the line, where the markup was meant to end.
                    pos = src[at..].find('\n').map_or(src.len(), |n| at + n);
                    continue;
                }
                Some(Ok(m)) => m,
            };
            if m.trim_before {
                let kept = out.trim_end().len();
                out.truncate(kept);
            }
            trim_next = m.trim_after;
            pos = m.end;
            if m.kind == Kind::Output {
                match self.output(&m) {
                    Some(value) => out.push_str(&value),
                    None => pos = drop_unfinished_link(out, src, pos),
                }
                continue;
            }
            let name = m.name();
            if Some(name) == until {
                return Some(m.end);
            }
            match name {
                "raw" => pos = self.verbatim(&m, "endraw", out),
                "comment" => {
                    let mut ignored = String::new();
                    pos = self.verbatim(&m, "endcomment", &mut ignored);
                }
                "highlight" => pos = self.highlight(&m, out),
                "link" => {
                    let target = m.args();
                    match self.links.resolve(target) {
                        Some(url) => self.push_permalink(out, &url),
                        None => {
                            pos = drop_unfinished_link(out, src, pos);
                            self.problem(
                            m.start,
                            format!(
                                "{{% link {target} %}}: no article of the store is at that path; give the path from \
                                 the site's root, like _posts/2024-01-05-title.md"
                            ),
                            )
                        }
                    }
                }
                "post_url" => {
                    let target = m.args();
                    match self.links.resolve_post(target) {
                        Some(url) => self.push_permalink(out, &url),
                        None => {
                            pos = drop_unfinished_link(out, src, pos);
                            self.problem(
                            m.start,
                            format!(
                                "{{% post_url {target} %}}: no post of the store has that file name; write it like \
                                 2024-01-05-title, without the extension"
                            ),
                            )
                        }
                    }
                }
                "assign" => self.assign(&m),
                "capture" => {
                    let mut captured = String::new();
                    match self.render_until(m.end, Some("endcapture"), &mut captured) {
                        Some(end) => {
                            let value = if m.trim_after {
                                captured.trim_start().to_string()
                            } else {
                                captured
                            };
                            self.locals.insert(m.args().trim().to_string(), value);
                            pos = end;
                        }
                        None => {
                            self.problem(
                                m.start,
                                "{% capture %} is never closed; add {% endcapture %}",
                            );
                            pos = src.len();
                        }
                    }
                }
                "gist" => {
                    let mut args = m.args().split_whitespace();
                    match args.next().filter(|a| a.contains('/')) {
                        Some(id) => out.push_str(&gist_link(id, args.next())),
                        None => self.problem(m.start, "{% gist %} needs user/id, like {% gist octocat/6cad326 %}"),
                    }
                }
                _ => self.problem(
                    m.start,
                    format!(
                        "Liquid tag \"{}\" cannot be evaluated outside Jekyll; it is left out of the feeds",
                        m.shown(src)
                    ),
                ),
            }
        }
    }

    /// The text up to `{% end %}` as written (`raw`), or dropped (`comment`); returns the offset after the end tag.
    fn verbatim(&mut self, open: &Markup<'_>, end: &str, out: &mut String) -> usize {
        let src = self.src;
        let mut pos = open.end;
        while let Some(next) = next_markup(src, pos) {
            match next {
                Ok(m) if m.kind == Kind::Tag && m.name() == end => {
                    let mut text = &src[open.end..m.start];
                    if open.trim_after {
                        text = text.trim_start();
                    }
                    if m.trim_before {
                        text = text.trim_end();
                    }
                    out.push_str(text);
                    return m.end;
                }
                Ok(m) => pos = m.end.min(src.len()).max(m.start + 2),
                Err(at) => pos = at + 2,
            }
        }
        self.problem(
            open.start,
            format!("{{% {} %}} is never closed; add {{% {end} %}}", open.name()),
        );
        out.push_str(&src[open.end..]);
        src.len()
    }

    /// `{% highlight lang [linenos] %}code{% endhighlight %}` → a fenced code block; Liquid inside is evaluated,
    /// as Jekyll does.
    fn highlight(&mut self, open: &Markup<'_>, out: &mut String) -> usize {
        let lang = open.args().split_whitespace().next().unwrap_or("");
        let mut code = String::new();
        let end = self.render_until(open.end, Some("endhighlight"), &mut code);
        if end.is_none() {
            self.problem(
                open.start,
                "{% highlight %} is never closed; add {% endhighlight %}",
            );
        }
        push_fenced_code(out, lang, &code);
        end.unwrap_or(self.src.len())
    }

    fn assign(&mut self, m: &Markup<'_>) {
        let Some((name, expr)) = m.args().split_once('=') else {
            self.problem(
                m.start,
                "{% assign %} needs a name and a value, like {% assign version = \"1.2\" %}",
            );
            return;
        };
        if let Some(value) = self.evaluate(expr, m) {
            self.locals.insert(name.trim().to_string(), value);
        }
    }

    fn output(&mut self, m: &Markup<'_>) -> Option<String> {
        self.evaluate(m.inner, m)
    }

    /// `value | filter: arg | …`; `None` (and a problem) when any part is unknown.
    fn evaluate(&mut self, expr: &str, m: &Markup<'_>) -> Option<String> {
        let mut parts = split_outside_quotes(expr, '|').into_iter();
        let head = parts.next().unwrap_or_default();
        let Some(mut value) = self.value(head.trim()) else {
            self.problem(
                m.start,
                format!(
                    "Liquid \"{}\" names a value tidings does not have (it knows site.url, site.baseurl, site.title, \
                     the values of _config.yml, page.* and assigned names); it is left out of the feeds",
                    m.shown(self.src)
                ),
            );
            return None;
        };
        for filter in parts {
            let (name, args) = match filter.split_once(':') {
                Some((n, a)) => (n.trim(), a.trim()),
                None => (filter.trim(), ""),
            };
            let arg_at = |n: usize| {
                let nth = split_outside_quotes(args, ',')
                    .into_iter()
                    .nth(n)
                    .unwrap_or_default();
                self.value(nth.trim())
            };
            let arg = || arg_at(0);
            value = match name {
                "relative_url" => self.relative_url(&value),
                "absolute_url" => self.absolute_url(&value),
                "escape" | "xml_escape" | "escape_once" => escape_html(&value),
                "downcase" => value.to_lowercase(),
                "upcase" => value.to_uppercase(),
                "strip" => value.trim().to_string(),
                "slugify" => slug::slugify(&value),
                "append" => value + &arg().unwrap_or_default(),
                "prepend" => arg().unwrap_or_default() + &value,
                "default" if value.is_empty() => arg().unwrap_or_default(),
                "default" => value,
                "markdownify" => super::markdown::to_html(&value),
                "remove" => value.replace(&arg().unwrap_or_default(), ""),
                "replace" => {
                    value.replace(&arg().unwrap_or_default(), &arg_at(1).unwrap_or_default())
                }
                "strip_html" => super::markdown::strip_tags(&value),
                _ => {
                    self.problem(
                        m.start,
                        format!(
                            "Liquid filter \"{name}\" in \"{}\" cannot be evaluated outside Jekyll; the output is left \
                             out of the feeds",
                            m.shown(self.src)
                        ),
                    );
                    return None;
                }
            };
        }
        Some(value)
    }

    /// A literal or a known name.
    fn value(&self, expr: &str) -> Option<String> {
        if let Some(s) = unquote(expr) {
            return Some(s.to_string());
        }
        if !expr.is_empty() && expr.parse::<f64>().is_ok() {
            return Some(expr.to_string());
        }
        if let Some(key) = expr.strip_prefix("site.") {
            return self
                .vars
                .site
                .get(key)
                .or_else(|| self.vars.site_config.get(key))
                .cloned();
        }
        if let Some(key) = expr.strip_prefix("page.") {
            return self.vars.page.get(key).cloned();
        }
        self.locals.get(expr).cloned()
    }

    /// Writes a `link` / `post_url` target's permalink (absolute). Jekyll 3's documentation has these tags written
    /// after `{{ site.baseurl }}` (or `{{ site.url }}{{ site.baseurl }}`), since there they give a path from the
    /// site's root: such a prefix just before is dropped, so the link is not the base written twice.
    fn push_permalink(&self, out: &mut String, permalink: &str) {
        let site = |key: &str| self.vars.site.get(key).map_or("", String::as_str);
        let (url, base) = (site("url"), site("baseurl"));
        let prefixes = [format!("{url}{base}"), base.to_owned(), url.to_owned()];
        if let Some(prefix) = prefixes
            .iter()
            .find(|p| !p.is_empty() && out.ends_with(p.as_str()))
        {
            out.truncate(out.len() - prefix.len());
        }
        out.push_str(permalink);
    }

    fn relative_url(&self, path: &str) -> String {
        if path.contains("://") {
            return path.to_string();
        }
        let base = self.vars.site.get("baseurl").map_or("", String::as_str);
        format!("{base}/{}", path.trim_start_matches('/'))
    }

    fn absolute_url(&self, path: &str) -> String {
        if path.contains("://") {
            return path.to_string();
        }
        let site = self.vars.site.get("url").map_or("", String::as_str);
        format!("{site}{}", self.relative_url(path))
    }

    fn problem(&mut self, offset: usize, message: impl Into<String>) {
        self.problems.push(Problem::new(offset, message));
    }
}

/// A Markdown link to a gist (`user/id`, optionally one file of it).
pub fn gist_link(id: &str, file: Option<&str>) -> String {
    let anchor = file
        .map(|f| {
            format!(
                "#file-{}",
                f.trim_matches(['"', '\'']).replace('.', "-").to_lowercase()
            )
        })
        .unwrap_or_default();
    format!(
        "[View the gist on GitHub](https://gist.github.com/{}{anchor})",
        id.trim_matches('/')
    )
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    ['"', '\'']
        .into_iter()
        .find_map(|q| s.strip_prefix(q)?.strip_suffix(q))
}

/// `s` split at `sep` outside single or double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c == sep => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn vars() -> Variables {
        let mut v = Variables::default();
        v.site.insert("url".into(), "https://example.com".into());
        v.site.insert("baseurl".into(), "/blog".into());
        v.page.insert("title".into(), "Hello \"world\"".into());
        v
    }

    fn links() -> LinkIndex {
        let articles = [(
            PathBuf::from("/s/_posts/2024-01-05-first.md"),
            "https://example.com/blog/2024/01/05/first.html".to_string(),
        )];
        LinkIndex::new(articles.iter().map(|(p, u)| (p.as_path(), u.as_str())))
    }

    fn run(src: &str) -> (String, Vec<Problem>) {
        render(src, &vars(), &links())
    }

    #[test]
    fn highlight_becomes_a_fenced_block_and_hashes_stay_code() {
        let (out, problems) = run(
            "Intro\n\n{% highlight ruby linenos %}\n# a comment\nputs \"<!DOCTYPE x [\"\n{% endhighlight %}\n\nAfter\n",
        );
        assert_eq!(
            out,
            "Intro\n\n```ruby\n# a comment\nputs \"<!DOCTYPE x [\"\n```\n\n\nAfter\n"
        );
        assert_eq!(problems, vec![]);
    }

    #[test]
    fn a_link_whose_destination_cannot_be_given_keeps_only_its_text() {
        let (out, problems) = run(
            "[PR](https://github.com/{{ site.data.repo }}/pull/7224) and [b]({% post_url 2020-01-01-gone %}#part) \
             <{{ release.url }}> [ok]({{ site.url }}/x) {{ unknown }} (aside)",
        );
        assert_eq!(
            out,
            "[PR]() and [b]()  [ok](https://example.com/x)  (aside)"
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        let mut vars = vars();
        vars.site_config = Arc::new(BTreeMap::from([(
            "repository".to_string(),
            "octo/blog".to_string(),
        )]));
        let (out, _) = render(
            "[PR](https://github.com/{{ site.repository }}/pull/7)",
            &vars,
            &links(),
        );
        assert_eq!(out, "[PR](https://github.com/octo/blog/pull/7)");
    }

    #[test]
    fn a_capture_is_rendered_once_and_read_back_through_filters() {
        let (out, problems) = run(
            "{%- capture fig -%}\n![a]({{ site.baseurl }}/a.png)\n{%- endcapture -%}\n<figure>{{ fig | markdownify | remove: \"<p>\" | remove: \"</p>\" | strip }}</figure> \
             {{ \"<b>x</b> y\" | strip_html | replace: \"y\", \"z\" }}",
        );
        assert_eq!(
            out,
            "<figure><img src=\"/blog/a.png\" alt=\"a\" /></figure> x z"
        );
        assert_eq!(problems, vec![]);
    }

    #[test]
    fn links_and_site_values_are_evaluated() {
        let (out, problems) = run(
            "[a]({% post_url 2024-01-05-first %}) [b]({% link _posts/2024-01-05-first.md %}) \
             ![c]({{ site.url }}{{ site.baseurl }}/img.png) {{ \"/x.css\" | relative_url }} {{ 'y' | absolute_url }} \
             {{ page.title | escape }}",
        );
        assert_eq!(
            out,
            "[a](https://example.com/blog/2024/01/05/first.html) [b](https://example.com/blog/2024/01/05/first.html) \
             ![c](https://example.com/blog/img.png) /blog/x.css https://example.com/blog/y Hello &quot;world&quot;"
        );
        assert_eq!(problems, vec![]);
    }

    #[test]
    fn a_base_written_before_a_link_tag_is_not_doubled() {
        let (out, problems) = run("[a]({{ site.baseurl }}{% post_url 2024-01-05-first %}) \
             [b]({{ site.url }}{{ site.baseurl }}{% post_url 2024-01-05-first %}) \
             [c]({{ site.url }}{% link _posts/2024-01-05-first.md %}) \
             [d](/blog{% link _posts/2024-01-05-first.md %})");
        let url = "https://example.com/blog/2024/01/05/first.html";
        assert_eq!(out, format!("[a]({url}) [b]({url}) [c]({url}) [d]({url})"));
        assert_eq!(problems, vec![]);
    }

    #[test]
    fn raw_is_verbatim_and_comments_vanish() {
        let (out, problems) = run(
            "{% raw %}{{ site.url }} {% if x %}{% endraw %}|{% comment %}secret {{ x }}{% endcomment %}|",
        );
        assert_eq!(out, "{{ site.url }} {% if x %}||");
        assert_eq!(problems, vec![]);
    }

    #[test]
    fn assigned_values_are_read_back() {
        let (out, problems) =
            run("{% assign version = \"1.2\" %}v{{ version }} {{ version | append: '.3' }}");
        assert_eq!(out, "v1.2 1.2.3");
        assert_eq!(problems, vec![]);
    }

    #[test]
    fn what_cannot_be_evaluated_is_removed_and_reported_at_its_offset() {
        let src = "a {% include note.html %} b {{ release.version }} c {{ page.title | sort }} d {% post_url nope %}";
        let (out, problems) = run(src);
        assert_eq!(out, "a  b  c  d ");
        let offsets: Vec<usize> = problems.iter().map(|p| p.offset).collect();
        assert_eq!(
            offsets,
            [
                src.find("{% include").unwrap(),
                src.find("{{ release").unwrap(),
                src.find("{{ page").unwrap(),
                src.find("{% post_url").unwrap()
            ]
        );
        assert!(
            problems[0]
                .message
                .contains("\"{% include note.html %}\" cannot be evaluated"),
            "{problems:?}"
        );
        assert!(
            problems[1]
                .message
                .contains("\"{{ release.version }}\" names a value"),
            "{problems:?}"
        );
        assert!(
            problems[2].message.contains("filter \"sort\""),
            "{problems:?}"
        );
        assert!(
            problems[3].message.contains("post_url nope"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_highlight_after_trimmed_whitespace_still_starts_its_own_line() {
        let (out, _) = run(
            "text.\n\n{%- comment -%} x {%- endcomment -%}\n\n{% highlight sh -%}\n$ ls\n{% endhighlight -%}\nnext\n",
        );
        assert_eq!(out, "text.\n\n```sh\n$ ls\n```\nnext\n");
    }

    /// Found by fuzzing: a `{` before a character of several bytes hid every tag after it.
    #[test]
    fn a_brace_before_a_multibyte_character_hides_nothing() {
        let (out, problems) = run("{\u{ae}{{ site.url }} {\u{e9}");
        assert_eq!(out, "{\u{ae}https://example.com {\u{e9}");
        assert_eq!(problems, vec![]);
    }

    #[test]
    fn whitespace_control_trims_around_tags() {
        let (out, _) = run("a  \n{%- assign x = 1 -%}\n  b");
        assert_eq!(out, "ab");
    }

    #[test]
    fn unclosed_markup_is_reported_and_dropped_to_the_end_of_its_line() {
        let (out, problems) = run("a {{ site.url\nnext line\n");
        assert_eq!(out, "a \nnext line\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].offset, 2);
    }
}

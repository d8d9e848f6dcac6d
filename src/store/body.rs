//! An article body as its generator wrote it → plain Markdown, before the Markdown parser sees it: Jekyll's
//! Liquid ([`liquid`](super::liquid)) and kramdown attribute lists ([`kramdown`](super::kramdown)), Hugo's
//! shortcodes ([`shortcodes`](super::shortcodes)) and Zola's `@/` links ([`links`](super::links)).
//!
//! Which passes run is decided by the site's generator, when it is known, else per file ([`Dialect::of`]):
//! Liquid only where Jekyll would run it (YAML front matter in a `_posts`-like folder or a dated file name), so a Hugo or plain article that shows `{{ x }}` in a
//! code sample keeps it. What a pass cannot evaluate is removed from the output and reported as a [`Problem`]
//! at its byte offset in the body; nothing is printed raw into a feed.

use std::path::Path;

use super::front_matter::Format;
use super::links::{LinkIndex, resolve_internal_links};
use crate::config::Generator;

/// Something in a body that could not be evaluated, at a byte offset of the body as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub offset: usize,
    pub message: String,
}

impl Problem {
    pub fn new(offset: usize, message: impl Into<String>) -> Problem {
        Problem {
            offset,
            message: message.into(),
        }
    }
}

/// The generator conventions a body follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Liquid and kramdown.
    Jekyll,
    /// Hugo shortcodes (harmless elsewhere: `{{<` and `{{%` are Hugo's own).
    Hugo,
    /// TOML front matter (`+++`), as Zola and some Hugo sites write it: Zola's shortcodes too (a Tera or Jinja
    /// sample in a YAML article keeps its `{{ f() }}`).
    Zola,
}

impl Dialect {
    /// The site's generator's, when it is known (a Hugo site's dated `2020-01-01-post.md` holds shortcodes, not
    /// Liquid). Else per file: Jekyll for YAML front matter in a folder whose name starts with `_` (`_posts`,
    /// `_drafts`, a collection) or in a file named `YYYY-MM-DD-title.md`; Zola for TOML front matter; otherwise
    /// Hugo (whose shortcodes no other format uses).
    pub fn of(path: &Path, format: Format, generator: Generator) -> Dialect {
        match generator {
            Generator::Jekyll => return Dialect::Jekyll,
            Generator::Hugo => return Dialect::Hugo,
            Generator::Zola => return Dialect::Zola,
            Generator::Auto => {}
        }
        if format == Format::Toml {
            return Dialect::Zola;
        }
        let in_underscore_folder = path.parent().is_some_and(|p| {
            p.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('_'))
        });
        let dated = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(super::name_date)
            .is_some_and(|(_, sep, _)| sep == '-');
        if in_underscore_folder || dated {
            Dialect::Jekyll
        } else {
            Dialect::Hugo
        }
    }
}

/// What the passes may use: the site, the page's own values (Liquid's `page.*`) and the other articles.
pub struct BodyContext<'a> {
    pub dialect: Dialect,
    pub links: &'a LinkIndex,
    pub liquid: &'a super::liquid::Variables,
}

/// The body as plain Markdown, and what could not be evaluated (offsets in `raw`).
pub fn prepare(raw: &str, ctx: &BodyContext<'_>) -> (String, Vec<Problem>) {
    let (first, mut problems) = match ctx.dialect {
        Dialect::Jekyll => {
            let (out, problems) = super::liquid::render(raw, ctx.liquid, ctx.links);
            let kramdown = super::kramdown::remove_attribute_lists(&out);
            // With `kramdown: {parse_block_html: true}` in `_config.yml`, the content of block HTML is Markdown,
            // much as CommonMark reads it after a blank line; by default it is raw to its closing tag.
            let parse_block_html = ctx
                .liquid
                .site_config
                .get("kramdown.parse_block_html")
                .is_some_and(|v| v == "true");
            let whole = if parse_block_html {
                kramdown
            } else {
                super::kramdown::html_blocks_whole(&kramdown)
            };
            (super::kramdown::markdown_in_html(&whole), problems)
        }
        Dialect::Hugo => super::shortcodes::render(raw, ctx.links),
        Dialect::Zola => {
            let (hugo, mut problems) = super::shortcodes::render(raw, ctx.links);
            let (zola, later) = super::shortcodes::render_zola(&hugo);
            problems.extend(later.into_iter().map(|p| Problem {
                offset: relocate(raw, &hugo, p.offset),
                ..p
            }));
            (zola, problems)
        }
    };
    let (out, later) = resolve_internal_links(&first, ctx.links);
    problems.extend(later.into_iter().map(|p| Problem {
        offset: relocate(raw, &first, p.offset),
        ..p
    }));
    problems.sort_by_key(|p| p.offset);
    (out, problems)
}

/// The offset in `raw` of what a later pass found at `offset` of `passed` (an earlier pass's output): the same
/// offset when that pass changed nothing, else where the text found there appears in `raw`, the n-th time when
/// it is the n-th time in `passed` (else the first).
fn relocate(raw: &str, passed: &str, offset: usize) -> usize {
    if raw == passed {
        return offset;
    }
    let snippet: String = passed[offset..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ')' | '}'))
        .collect();
    if snippet.is_empty() {
        return 0;
    }
    let nth = passed[..offset].matches(snippet.as_str()).count();
    raw.match_indices(snippet.as_str())
        .nth(nth)
        .or_else(|| raw.match_indices(snippet.as_str()).next())
        .map_or(0, |(i, _)| i)
}

/// A fenced code block holding `code`, its fences indented like the tag it replaces. The fence is longer than
/// any backtick run in the code, so the code cannot close it.
pub fn fenced_code(lang: &str, code: &str, indent: &str) -> String {
    let code = code
        .strip_prefix("\r\n")
        .or_else(|| code.strip_prefix('\n'))
        .unwrap_or(code);
    let code = code.trim_end_matches([' ', '\t']);
    let code = code.strip_suffix('\n').unwrap_or(code);
    let code = code.strip_suffix('\r').unwrap_or(code);
    let longest_run = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let lang: String = lang
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '`')
        .collect();
    format!("{fence}{lang}\n{code}\n{indent}{fence}")
}

/// Escapes text for HTML content or a double-quoted attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Appends a fenced code block to `out`, starting on a line of its own (a new one when `out` ends inside a line
/// of text) with the fences indented like that line, and ending with a line break.
pub fn push_fenced_code(out: &mut String, lang: &str, code: &str) {
    let line_start = out.rfind('\n').map_or(0, |i| i + 1);
    let indent = &out[line_start..];
    let indent = if indent.chars().all(|c| c == ' ' || c == '\t') {
        indent.to_string()
    } else {
        out.push_str("\n\n");
        String::new()
    };
    out.push_str(&fenced_code(lang, code, &indent));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_longer_than_any_backtick_run_in_the_code() {
        assert_eq!(
            fenced_code("rust", "\nlet x = 1;\n", ""),
            "```rust\nlet x = 1;\n```"
        );
        assert_eq!(
            fenced_code("md", "\n```\ninner\n```\n", "  "),
            "````md\n```\ninner\n```\n  ````"
        );
    }

    #[test]
    fn jekyll_is_recognised_by_folder_or_dated_name_with_yaml() {
        for (path, format, dialect) in [
            ("site/_posts/2024-01-05-x.md", Format::Yaml, Dialect::Jekyll),
            ("site/_drafts/x.md", Format::Yaml, Dialect::Jekyll),
            ("blog/2024-01-05-x.md", Format::Yaml, Dialect::Jekyll),
            ("content/posts/x.md", Format::Yaml, Dialect::Hugo),
            ("site/_posts/2024-01-05-x.md", Format::Toml, Dialect::Zola),
        ] {
            assert_eq!(
                Dialect::of(Path::new(path), format, Generator::Auto),
                dialect,
                "{path}"
            );
        }
    }
}

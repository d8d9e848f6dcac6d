//! kramdown's extensions to Markdown that Jekyll posts carry and CommonMark prints as text: inline attribute
//! lists (`{: #id .class}`, `{:.note}`, `*x*{: title="t"}`), attribute list definitions (`{:ref: .c}`),
//! extensions (`{::options … /}`, `{::comment}…{:/comment}`, `{::nomarkdown}…{:/nomarkdown}`). Attribute lists
//! only style the page, so they are removed; comments are removed with their content; `nomarkdown` keeps its
//! content; a `* TOC` item marked `{:toc}` (where kramdown puts the table of contents) is removed with its marker.
//! Block HTML marked `markdown="1"` has its content read as Markdown ([`markdown_in_html`]). An abbreviation
//! definition (`*[HTML]: HyperText Markup Language`) is removed: kramdown prints none, it only titles the word
//! (which a feed item goes without). A block HTML element runs to its closing tag, as kramdown reads it, not to
//! the next blank line as CommonMark does ([`html_blocks_whole`]). Code (fenced blocks and backtick spans) is
//! left as written.

/// `markdown` without kramdown attribute lists and extensions.
pub fn remove_attribute_lists(markdown: &str) -> String {
    if memchr::memmem::find(markdown.as_bytes(), b"{:").is_none()
        && memchr::memmem::find(markdown.as_bytes(), b"*[").is_none()
    {
        return markdown.to_string();
    }
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if in_fence(&mut fence, trimmed) {
            out.push_str(line);
            continue;
        }
        // `* TOC` then `{:toc}`: kramdown puts the page's table of contents in that list's place. A feed item has
        // no use for one (readers show their own outline), so the placeholder item goes with the marker.
        if !in_comment && is_toc_marker(trimmed) {
            // The item right above the marker (no blank line between).
            let above = out.strip_suffix('\n').unwrap_or(&out);
            if let Some(last) = above.rsplit('\n').next()
                && is_list_item(last)
            {
                out.truncate(above.len() - last.len());
            }
            continue;
        }
        if !in_comment && is_abbreviation(line) {
            continue;
        }
        let (cleaned, comment) = clean_line(line, in_comment);
        in_comment = comment;
        // A line that held only attribute lists goes entirely (it would otherwise end a paragraph or a list).
        if cleaned.trim().is_empty() && !line.trim().is_empty() {
            continue;
        }
        out.push_str(&cleaned);
    }
    out
}

/// Whether a line (`trimmed` of its indentation) belongs to a fenced code block: opens one, is inside the one
/// `fence` holds (its character and length), or closes it. Updates `fence`.
fn in_fence(fence: &mut Option<(char, usize)>, trimmed: &str) -> bool {
    if let Some((c, n)) = *fence {
        if trimmed.starts_with(&c.to_string().repeat(n))
            && trimmed.trim_start_matches(c).trim().is_empty()
        {
            *fence = None;
        }
        return true;
    }
    if let Some(c) = ['`', '~']
        .into_iter()
        .find(|c| trimmed.starts_with(&c.to_string().repeat(3)))
    {
        *fence = Some((c, trimmed.chars().take_while(|&x| x == c).count()));
        return true;
    }
    false
}

/// The HTML elements CommonMark starts an HTML block with (its type 6) that kramdown users mark
/// `markdown="1"`: their content is raw HTML to CommonMark up to the next blank line.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "header",
    "li",
    "main",
    "nav",
    "section",
    "summary",
    "td",
    "th",
];

/// Elements whose raw HTML block kramdown runs to the closing tag: [`BLOCK_TAGS`] and the others CommonMark
/// starts an HTML block with (its type 6) that posts write raw. (`pre`, `script` and `style` already run to
/// their closing tag in CommonMark.)
const RAW_BLOCK_TAGS: &[&str] = &[
    "table", "ul", "ol", "p", "h1", "h2", "h3", "h4", "h5", "h6", "iframe", "video", "audio",
    "form", "noscript",
];

/// Block HTML as kramdown reads it: an element opened at the start of a line (not marked `markdown="1"`, see
/// [`markdown_in_html`]) is raw HTML up to its closing tag, blank lines and whitespace-only lines inside
/// included, where CommonMark ends the HTML block at the first of them and reads the rest as Markdown (a table
/// whose rows are set apart by a blank line became code blocks of escaped `<td>`s). A blank line inside becomes
/// an empty comment, which keeps the block whole and prints nothing; after the closing tag a blank line ends
/// the block (`<p id="x"></p>` then `---` is a rule, not text). An element that is never closed (within
/// [`MAX_BLOCK_LINES`]) is left to CommonMark.
pub fn html_blocks_whole(markdown: &str) -> String {
    if memchr::memchr(b'<', markdown.as_bytes()).is_none() {
        return markdown.to_string();
    }
    let lines: Vec<&str> = markdown.split_inclusive('\n').collect();
    let mut out = String::with_capacity(markdown.len() + 64);
    let mut fence = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        i += 1;
        if in_fence(&mut fence, trimmed) {
            out.push_str(line);
            continue;
        }
        let Some(name) = raw_block_start(line) else {
            out.push_str(line);
            continue;
        };
        // The line where the element closes, if it does within `MAX_BLOCK_LINES` (a bound on the look-ahead, so
        // a file of unclosed tags is not read to its end from each of them).
        let mut depth = 0isize;
        let end = (i - 1..lines.len().min(i - 1 + MAX_BLOCK_LINES)).find(|&j| {
            depth += element_balance(lines[j], name);
            depth <= 0
        });
        let Some(end) = end else {
            out.push_str(line);
            continue;
        };
        for &inner in &lines[i - 1..=end] {
            if inner.trim().is_empty() {
                out.push_str("<!-- -->\n");
            } else {
                out.push_str(inner);
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        i = end + 1;
        if lines.get(i).is_some_and(|next| !next.trim().is_empty()) {
            out.push('\n');
        }
    }
    out
}

/// The most lines a raw block element may span to be kept whole; a longer one is left to CommonMark.
const MAX_BLOCK_LINES: usize = 2000;

/// The name of the raw block element a line opens (indented at most three spaces, as CommonMark starts an HTML
/// block), unless it is marked `markdown=`.
fn raw_block_start(line: &str) -> Option<&'static str> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 || MarkedTag::parse(trimmed).is_some() {
        return None;
    }
    let after = trimmed.strip_prefix('<')?;
    let name_len = after.find(|c: char| !c.is_ascii_alphanumeric())?;
    let name = after[..name_len].to_ascii_lowercase();
    if !after[name_len..].starts_with(['>', ' ', '\t', '\n', '\r', '/']) {
        return None;
    }
    BLOCK_TAGS
        .iter()
        .chain(RAW_BLOCK_TAGS)
        .copied()
        .find(|t| *t == name)
}

/// Opening minus closing tags of element `name` in `line` (`<name>` or `<name …>`, and `</name>`).
fn element_balance(line: &str, name: &str) -> isize {
    let lower = line.to_ascii_lowercase();
    let opens = lower
        .match_indices(&format!("<{name}"))
        .filter(|(i, m)| {
            lower[i + m.len()..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace())
        })
        .count();
    let closes = lower.matches(&format!("</{name}>")).count();
    opens as isize - closes as isize
}

/// Block HTML marked `markdown="1"` (or `"block"`), whose content kramdown reads as Markdown while CommonMark
/// prints it raw (an HTML block runs to the next blank line): the opening tag loses the attribute and is set
/// apart from the content by a blank line, and so is its closing tag, so the content between is Markdown again.
/// Elsewhere (`markdown="0"`, `"span"`, an inline element, whose content CommonMark reads as Markdown anyway) the
/// attribute is only dropped. Fenced code is left as written.
pub fn markdown_in_html(markdown: &str) -> String {
    if memchr::memmem::find(markdown.as_bytes(), b"markdown=").is_none() {
        return markdown.to_string();
    }
    let mut out = String::with_capacity(markdown.len() + 32);
    let mut fence = None;
    // The marked elements open around the line: their tag name and how many elements of that name are open
    // inside them.
    let mut open: Vec<(&str, usize)> = Vec::new();
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if in_fence(&mut fence, trimmed) {
            out.push_str(line);
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        if let Some(tag) = MarkedTag::parse(trimmed) {
            let opened = format!("{indent}{}", tag.without_attribute(trimmed));
            if !(tag.block && BLOCK_TAGS.contains(&tag.name)) {
                out.push_str(&opened);
                out.push_str(&trimmed[tag.end..]);
                continue;
            }
            out.push_str(&opened);
            out.push_str("\n\n");
            open.push((tag.name, 0));
            let rest = trimmed[tag.end..].trim_start();
            if !rest.trim().is_empty() {
                close_or_copy(&mut out, &mut open, "", rest);
            }
            continue;
        }
        close_or_copy(&mut out, &mut open, indent, trimmed);
    }
    out
}

/// Copies a line (`indent`, then `text`), setting the closing tag of the innermost marked element apart when
/// the line ends with it.
fn close_or_copy(out: &mut String, open: &mut Vec<(&str, usize)>, indent: &str, text: &str) {
    let Some((name, depth)) = open.last_mut() else {
        out.push_str(indent);
        out.push_str(text);
        return;
    };
    let closing = format!("</{name}>");
    let opens = text
        .match_indices(&format!("<{name}"))
        .filter(|(i, m)| {
            text[i + m.len()..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace())
        })
        .count();
    let closes = text.matches(&closing).count();
    let body = text.trim_end();
    if *depth == 0 && closes > opens && body.ends_with(&closing) {
        let before = &body[..body.len() - closing.len()];
        if !before.trim().is_empty() {
            out.push_str(indent);
            out.push_str(before.trim_end());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(indent);
        out.push_str(&closing);
        out.push_str("\n\n");
        open.pop();
        return;
    }
    *depth = (*depth + opens).saturating_sub(closes);
    out.push_str(indent);
    out.push_str(text);
}

/// An opening tag at the start of a line that carries kramdown's `markdown` attribute.
struct MarkedTag<'a> {
    name: &'a str,
    /// Whether its content is to be read as block Markdown (`"1"`, `"block"`).
    block: bool,
    /// The attribute with the whitespace before it, as a byte range of the line.
    attribute: std::ops::Range<usize>,
    /// Just past the tag's `>`.
    end: usize,
}

impl<'a> MarkedTag<'a> {
    fn parse(line: &'a str) -> Option<MarkedTag<'a>> {
        let after = line.strip_prefix('<')?;
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .filter(|&n| n > 0)?;
        let name = &after[..name_len];
        let end = line.find('>')? + 1;
        let tag = &line[..end];
        let at = tag.find(" markdown=").or_else(|| tag.find("\tmarkdown="))?;
        let value_start = at + " markdown=".len();
        let value = &tag[value_start..];
        let (value, value_len) = match value.chars().next()? {
            q @ ('"' | '\'') => {
                let close = value[1..].find(q)?;
                (&value[1..=close], close + 2)
            }
            _ => {
                let len = value
                    .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
                    .unwrap_or(value.len());
                (&value[..len], len)
            }
        };
        Some(MarkedTag {
            name,
            block: matches!(value, "1" | "block"),
            attribute: at..value_start + value_len,
            end,
        })
    }

    /// The tag as written without the `markdown` attribute.
    fn without_attribute(&self, line: &str) -> String {
        format!(
            "{}{}",
            &line[..self.attribute.start],
            &line[self.attribute.end..self.end]
        )
    }
}

/// `{:toc}` (or `{: toc}`, `{:.toc}`): kramdown's table-of-contents marker, alone on its line.
fn is_toc_marker(line: &str) -> bool {
    let inner = line
        .trim()
        .strip_prefix("{:")
        .and_then(|l| l.strip_suffix('}'));
    inner.is_some_and(|i| i.trim().trim_start_matches('.') == "toc")
}

/// kramdown's abbreviation definition, `*[HTML]: HyperText Markup Language` (indented by at most three spaces).
fn is_abbreviation(line: &str) -> bool {
    let indent = line.len() - line.trim_start_matches(' ').len();
    indent <= 3
        && line[indent..]
            .strip_prefix("*[")
            .and_then(|rest| rest.split_once("]:"))
            .is_some_and(|(name, _)| !name.is_empty() && !name.contains(']'))
}

/// A Markdown list item's line: `* x`, `- x`, `+ x`, `1. x`.
fn is_list_item(line: &str) -> bool {
    let line = line.trim_start();
    let after_marker = match line.strip_prefix(['*', '-', '+']) {
        Some(rest) => rest,
        None => line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .strip_prefix(['.', ')'])
            .unwrap_or(line),
    };
    after_marker.len() < line.len() && after_marker.starts_with([' ', '\t'])
}

/// One line without its `{:…}` markup (outside backtick spans); whether a `{::comment}` is still open after it.
fn clean_line(line: &str, mut in_comment: bool) -> (String, bool) {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        if in_comment {
            match rest.find("{:/") {
                Some(i) => {
                    let after = &rest[i..];
                    let close = after.find('}').map_or(after.len(), |j| j + 1);
                    rest = &after[close..];
                    in_comment = false;
                }
                None => {
                    // Keep the line break so the lines around the comment stay apart.
                    if rest.ends_with('\n') {
                        out.push('\n');
                    }
                    rest = "";
                }
            }
            continue;
        }
        let Some(i) = rest.find(['`', '{']) else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..i]);
        let at = &rest[i..];
        if at.starts_with('`') {
            // A code span: copied as is, up to the same number of backticks.
            let ticks = at.chars().take_while(|&c| c == '`').count();
            let fence = &at[..ticks];
            let end = at[ticks..]
                .find(fence)
                .map_or(at.len(), |j| ticks + j + ticks);
            out.push_str(&at[..end]);
            rest = &at[end..];
            continue;
        }
        if !at.starts_with("{:") {
            out.push('{');
            rest = &at[1..];
            continue;
        }
        let Some(close) = closing_brace(at) else {
            out.push_str(at);
            break;
        };
        let markup = &at[..=close];
        if markup.starts_with("{::comment") && !markup.ends_with("/}") {
            in_comment = true;
        }
        rest = &at[close + 1..];
    }
    (out, in_comment)
}

/// The index of the `}` that closes the `{` at 0, skipping quoted values.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '}') => return Some(i),
            (None, '\n') => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_html_element_runs_to_its_closing_tag_as_kramdown_reads_it() {
        let table =
            "<table>\n  <tr>\n    \n    <td>a</td>\n\n    <td>b</td>\n  </tr>\n</table>\nAfter.\n";
        assert_eq!(
            html_blocks_whole(table),
            "<table>\n  <tr>\n<!-- -->\n    <td>a</td>\n<!-- -->\n    <td>b</td>\n  </tr>\n</table>\n\nAfter.\n"
        );
        let html = crate::store::markdown::to_html(&html_blocks_whole(table));
        assert!(
            !html.contains("<pre>") && !html.contains("&lt;td"),
            "{html}"
        );
        assert!(html.ends_with("<p>After.</p>\n"), "{html}");
        // A one-line element ends where it closes.
        assert_eq!(
            html_blocks_whole("<p id = \"build\"></p>\n---\n"),
            "<p id = \"build\"></p>\n\n---\n"
        );
        // Never closed, marked markdown="1", or in a code fence: as written.
        for kept in [
            "<div>\nopen\n\nstill\n",
            "<div markdown=\"1\">\n*a*\n\n</div>\n",
            "```\n<div>\n\n</div>\n```\n",
            "    <div>\n\n    </div>\n",
        ] {
            assert_eq!(html_blocks_whole(kept), kept);
        }
    }

    #[test]
    fn attribute_lists_are_removed_and_code_is_kept() {
        let md = "## Setup {#setup}\n{: .lead}\nA paragraph with *style*{: .x title=\"a } b\"} and [a link](u){:target=\"_blank\"}.\n\
                  {: #para-id .note}\n\n`{: kept}` in code\n\n```\n{: kept too}\n```\n{::options parse_block_html=\"true\" /}\n\
                  {:refdef: .c}\nEnd.\n";
        assert_eq!(
            remove_attribute_lists(md),
            "## Setup {#setup}\nA paragraph with *style* and [a link](u).\n\n`{: kept}` in code\n\n```\n{: kept too}\n```\nEnd.\n"
        );
    }

    #[test]
    fn abbreviation_definitions_print_nothing_outside_code() {
        let md = "HTML and CSS.\n\n*[HTML]: HyperText Markup Language\n   *[CSS]: Cascading Style Sheets\n\n```\n*[kept]: in code\n```\n*emphasis* [x]: y\n";
        assert_eq!(
            remove_attribute_lists(md),
            "HTML and CSS.\n\n\n```\n*[kept]: in code\n```\n*emphasis* [x]: y\n"
        );
    }

    #[test]
    fn comments_go_with_their_content_and_nomarkdown_keeps_it() {
        let md = "a {::comment}hidden\nstill hidden{:/comment} b\n{::nomarkdown}<b>kept</b>{:/nomarkdown}\n";
        assert_eq!(remove_attribute_lists(md), "a \n b\n<b>kept</b>\n");
    }

    /// Regression: `<div markdown="1">` printed its Markdown raw (`**Note:**`), as CommonMark reads the lines up
    /// to a blank one as HTML.
    #[test]
    fn block_html_marked_markdown_has_its_content_read_as_markdown() {
        for (md, expected) in [
            (
                "<div class=\"note\" markdown=\"1\">\n**Note:** see [docs](/d/).\n</div>\nAfter.\n",
                "<div class=\"note\">\n\n**Note:** see [docs](/d/).\n\n</div>\n\nAfter.\n",
            ),
            (
                "  <section markdown='block' id=x>\n  *a*\n  <div>\n  inner\n  </div>\n  </section>\n",
                "  <section id=x>\n\n  *a*\n  <div>\n  inner\n  </div>\n\n  </section>\n\n",
            ),
            (
                "<div markdown=1>*one line*</div>\n",
                "<div>\n\n*one line*\n\n</div>\n\n",
            ),
            (
                "<div markdown=\"1\">\n<div markdown=\"1\">\n*in*\n</div>\n*out*\n</div>\n",
                "<div>\n\n<div>\n\n*in*\n\n</div>\n\n*out*\n\n</div>\n\n",
            ),
            // Not block Markdown: the attribute goes, nothing else changes.
            (
                "<div markdown=\"0\">\n*raw*\n</div>\n<span markdown=\"1\">*x*</span>\n",
                "<div>\n*raw*\n</div>\n<span>*x*</span>\n",
            ),
            (
                "```html\n<div markdown=\"1\">\n```\n",
                "```html\n<div markdown=\"1\">\n```\n",
            ),
            ("No markup here.\n", "No markup here.\n"),
        ] {
            assert_eq!(markdown_in_html(md), expected, "{md:?}");
        }
        let html = crate::store::markdown::to_html(&markdown_in_html(
            "<div class=\"note\" markdown=\"1\">\n**Note:** read *this*.\n</div>\n",
        ));
        assert_eq!(
            html,
            "<div class=\"note\">\n<p><strong>Note:</strong> read <em>this</em>.</p>\n</div>\n"
        );
    }

    #[test]
    fn a_table_of_contents_placeholder_goes_with_its_marker() {
        let md = "Intro.\n\n* TOC\n{:toc}\n\n## One\n\n1. Contents\n{: .toc}\n\n- kept\n\n{:toc}\n";
        assert_eq!(
            remove_attribute_lists(md),
            "Intro.\n\n\n## One\n\n\n- kept\n\n"
        );
    }
}

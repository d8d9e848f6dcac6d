//! kramdown's extensions to Markdown that Jekyll posts carry and CommonMark prints as text: inline attribute
//! lists (`{: #id .class}`, `{:.note}`, `*x*{: title="t"}`), attribute list definitions (`{:ref: .c}`),
//! extensions (`{::options … /}`, `{::comment}…{:/comment}`, `{::nomarkdown}…{:/nomarkdown}`). Attribute lists
//! only style the page, so they are removed; comments are removed with their content; `nomarkdown` keeps its
//! content; a `* TOC` item marked `{:toc}` (where kramdown puts the table of contents) is removed with its marker.
//! Code (fenced blocks and backtick spans) is left as written.

/// `markdown` without kramdown attribute lists and extensions.
pub fn remove_attribute_lists(markdown: &str) -> String {
    if memchr::memmem::find(markdown.as_bytes(), b"{:").is_none() {
        return markdown.to_string();
    }
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some((c, n)) = fence {
            out.push_str(line);
            if trimmed.starts_with(&c.to_string().repeat(n))
                && trimmed.trim_start_matches(c).trim().is_empty()
            {
                fence = None;
            }
            continue;
        }
        if let Some(c) = ['`', '~']
            .into_iter()
            .find(|c| trimmed.starts_with(&c.to_string().repeat(3)))
        {
            let n = trimmed.chars().take_while(|&x| x == c).count();
            fence = Some((c, n));
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

/// `{:toc}` (or `{: toc}`, `{:.toc}`): kramdown's table-of-contents marker, alone on its line.
fn is_toc_marker(line: &str) -> bool {
    let inner = line
        .trim()
        .strip_prefix("{:")
        .and_then(|l| l.strip_suffix('}'));
    inner.is_some_and(|i| i.trim().trim_start_matches('.') == "toc")
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
    fn comments_go_with_their_content_and_nomarkdown_keeps_it() {
        let md = "a {::comment}hidden\nstill hidden{:/comment} b\n{::nomarkdown}<b>kept</b>{:/nomarkdown}\n";
        assert_eq!(remove_attribute_lists(md), "a \n b\n<b>kept</b>\n");
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

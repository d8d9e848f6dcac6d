//! Markdown bodies → plain text, first-paragraph summary and word count in one pass of pulldown-cmark
//! ([`analyze`], for every article at load), and → HTML ([`to_html`], on demand, for the articles a feed
//! carries). Also the summary cut ([`truncate_at_word`]) and the reading time ([`reading_minutes`]).
//!
//! The HTML keeps URLs as the author wrote them; making them absolute is the feeds' job (`feed::urls`), since
//! it depends on where the article is published.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// What the store keeps from a body's text; the HTML is rendered only for the articles a feed carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// The body as plain text (words separated by spaces), for related reading and word counts.
    pub text: String,
    /// The first paragraph as plain text, its whitespace as the parser gave it ([`summary`] makes it one line).
    pub first_paragraph: String,
    pub words: usize,
}

pub(crate) fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_HEADING_ATTRIBUTES
        // `term` then `: definition`: kramdown (Jekyll) and goldmark (Hugo, on by default) both read it so.
        | Options::ENABLE_DEFINITION_LIST
        // TeX between dollars is kept as written ([`math_as_written`]), not read as Markdown.
        | Options::ENABLE_MATH
}

/// `markdown`'s events, math as written.
fn events(markdown: &str, options: Options) -> impl Iterator<Item = Event<'_>> {
    Parser::new_ext(markdown, options).map(math_as_written)
}

/// Math (`$…$`, `$$…$$`) back to its text with its dollars, as the author wrote it: a feed reader runs no
/// MathJax, and TeX read as Markdown is garbled (`$W_t$ and $W_{t-1}$` turned into emphasis, `\\` line breaks
/// halved, quotes made curly). A single dollar is often money (`$5-$10`): as text it reads as written either way.
fn math_as_written(event: Event<'_>) -> Event<'_> {
    match event {
        Event::InlineMath(tex) => Event::Text(format!("${tex}$").into()),
        Event::DisplayMath(tex) => Event::Text(format!("$${tex}$$").into()),
        other => other,
    }
}

/// The body's plain text, first paragraph and word count, in one pass of the parser.
pub fn analyze(markdown: &str) -> Analysis {
    let mut text = String::with_capacity(markdown.len());
    let mut first_paragraph = String::new();
    let mut in_paragraph = false;
    let mut first_done = false;
    for event in events(markdown, options()) {
        match event {
            Event::Start(Tag::Paragraph) => in_paragraph = true,
            Event::End(TagEnd::Paragraph) => {
                in_paragraph = false;
                if !first_paragraph.trim().is_empty() {
                    first_done = true;
                }
            }
            Event::Text(t) | Event::Code(t) => {
                text.push_str(&t);
                if in_paragraph && !first_done {
                    first_paragraph.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                text.push(' ');
                if in_paragraph && !first_done {
                    first_paragraph.push(' ');
                }
            }
            Event::End(_) => text.push(' '),
            _ => {}
        }
    }
    let words = reading_words(&text);
    Analysis {
        text,
        first_paragraph,
        words,
    }
}

/// A Jekyll title as jekyll-feed prints it (`smartify | strip_html`): tags removed, HTML character references
/// decoded (`Special&nbsp;---&nbsp;Characters`), quotes curled and `--`, `---`, `...` made dashes and an ellipsis
/// (kramdown's SmartyPants). Nothing else of Markdown applies: every other punctuation mark stays as written.
pub fn smartify(title: &str) -> String {
    if !title.contains(['\'', '"', '-', '.', '&', '<']) {
        return title.to_owned();
    }
    let mut escaped = String::with_capacity(title.len() + 16);
    // A paragraph whatever the title starts with (`# of`, `1. Intro`); the two characters go again below.
    escaped.push_str("a ");
    for c in strip_tags(title).chars() {
        match c {
            '\'' | '"' | '-' | '.' | '&' | '#' | ';' => escaped.push(c),
            c if c.is_ascii_punctuation() => {
                escaped.push('\\');
                escaped.push(c);
            }
            c => escaped.push(c),
        }
    }
    let mut text = String::with_capacity(escaped.len());
    for event in Parser::new_ext(&escaped, Options::ENABLE_SMART_PUNCTUATION) {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            _ => {}
        }
    }
    text.strip_prefix("a ").unwrap_or(&text).trim().to_owned()
}

/// `html` without its tags (Liquid's `strip_html`, jekyll-feed's on titles).
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The text of a Markdown fragment as a reader sees it: inline markup gone without a trace (`**bold**,` is
/// `bold,`), blocks apart by a space. What a summary written at the top of the body reads as.
pub fn plain_text(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    for event in events(markdown, options()) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(
                TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Link
                | TagEnd::Image
                | TagEnd::Superscript
                | TagEnd::Subscript,
            ) => {}
            Event::End(_) => text.push(' '),
            _ => {}
        }
    }
    text
}

/// A summary written in front matter, read as Hugo reads one: as inline Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineMarkup {
    /// What a reader sees, as plain text (`Using Rust and serde`).
    pub text: String,
    /// The same as HTML (`Using <strong>Rust</strong> and <a href="https://serde.rs">serde</a>`), URLs as written.
    pub html: String,
}

/// `summary` (one line) as inline Markdown, when it has any markup: emphasis, code, links. HTML written in it
/// is shown as text, never passed on as markup (`Vec<String>` stays readable), an image is its alt text, and a
/// link without a destination its text. `None` when there is no markup, or when Markdown would read the line as
/// anything but one paragraph (`1. Introduction` as a list, `# of users` as a heading): then the summary is text
/// as written, backslashes and character references included. Smart punctuation is off, so a summary without
/// markup reads exactly as before.
pub fn inline_markup(summary: &str) -> Option<InlineMarkup> {
    // Emphasis, code, strikethrough, links and images all need one of these: a summary without any (most) is
    // not parsed (this runs for every article at every cold build).
    if !summary.contains(['*', '_', '`', '~', '[', '<']) {
        return None;
    }
    let options = options() - Options::ENABLE_SMART_PUNCTUATION;
    let events: Vec<Event<'_>> = events(summary, options).collect();
    let (Some(Event::Start(Tag::Paragraph)), Some(Event::End(TagEnd::Paragraph))) =
        (events.first(), events.last())
    else {
        return None;
    };
    let inner = &events[1..events.len() - 1];
    if inner.iter().any(|e| {
        matches!(
            e,
            Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph)
        )
    }) {
        return None;
    }
    // Markup is an inline element or a code span. A backslash escape or a character reference alone is not:
    // `&lt;` in a plain summary is shown as written.
    if !inner
        .iter()
        .any(|e| matches!(e, Event::Start(_) | Event::Code(_)))
    {
        return None;
    }
    let mut text = String::with_capacity(summary.len());
    let mut kept = Vec::with_capacity(inner.len());
    let mut in_empty_link = false;
    for event in inner.iter().cloned() {
        let event = match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::SoftBreak | Event::HardBreak => Event::Text(" ".into()),
            Event::Start(Tag::Link { ref dest_url, .. }) if dest_url.trim().is_empty() => {
                in_empty_link = true;
                continue;
            }
            Event::End(TagEnd::Link) if in_empty_link => {
                in_empty_link = false;
                continue;
            }
            Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => continue,
            Event::FootnoteReference(_) | Event::TaskListMarker(_) => continue,
            other => other,
        };
        if let Event::Text(t) | Event::Code(t) = &event {
            text.push_str(t);
        }
        kept.push(event);
    }
    let mut html = String::with_capacity(summary.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, kept.into_iter());
    Some(InlineMarkup { text, html })
}

/// `text.split_whitespace().count()`, and the Chinese and Japanese characters among them (scripts written
/// without spaces between words): eight ASCII bytes at a time where they are ASCII (most text), other characters
/// one at a time.
fn count_words(text: &str) -> (usize, usize) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bytes = text.as_bytes();
    let (mut words, mut in_word, mut i, mut unspaced) = (0, false, 0, 0);
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if v & HIGH == 0 {
                let space = ascii_space_bytes(v);
                let word = !space & HIGH;
                // A word starts at a non-space byte whose previous byte (the last chunk's, for the first) is space.
                let after_space = (space << 8) | if in_word { 0 } else { 0x80 };
                words += (word & after_space).count_ones() as usize;
                in_word = word >> 63 == 1;
                i += 8;
                continue;
            }
        }
        let (space, len) = if bytes[i].is_ascii() {
            (bytes[i].is_ascii_whitespace() || bytes[i] == 0x0b, 1)
        } else {
            let c = text[i..].chars().next().expect("i is at a char boundary");
            unspaced += usize::from(is_written_unspaced(c));
            (c.is_whitespace(), c.len_utf8())
        };
        words += usize::from(!space && !in_word);
        in_word = !space;
        i += len;
    }
    (words, unspaced)
}

/// A Han ideograph, hiragana or katakana: Chinese and Japanese put no space between words, so such text is
/// counted by its characters. (Korean spaces its words.)
fn is_written_unspaced(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}' // hiragana, katakana
        | '\u{3400}'..='\u{4dbf}' // CJK extension A
        | '\u{4e00}'..='\u{9fff}' // CJK unified ideographs
        | '\u{f900}'..='\u{faff}' // CJK compatibility ideographs
        | '\u{20000}'..='\u{2fa1f}') // CJK extensions B and on
}

/// Words for the reading time: words between spaces, and two Chinese or Japanese characters for one more (Hugo
/// reads those at 500 characters a minute where other text goes at about 230 words).
fn reading_words(text: &str) -> usize {
    let (words, unspaced) = count_words(text);
    words + unspaced / 2
}

/// `0x80` in each byte of `v` (eight ASCII bytes) that is whitespace: a space, or `\t`, `\n`, `\x0b`, `\x0c`, `\r`
/// (0x09 to 0x0d). Each byte is below 0x80, so adding to it never carries into the next.
fn ascii_space_bytes(v: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let zero_bytes = |x: u64| !(((x & LOW) + LOW) | x | LOW);
    let blank = zero_bytes(v ^ 0x2020_2020_2020_2020);
    let at_least_9 = v + 0x7777_7777_7777_7777;
    let at_least_14 = v + 0x7272_7272_7272_7272;
    blank | (at_least_9 & !at_least_14 & HIGH)
}

/// The body as HTML (CommonMark with tables, footnotes, strikethrough, task lists, smart punctuation). A link
/// with no destination (`[text]()`, what a `ref`, `post_url` or `@/` to a missing article leaves) is its text:
/// `href=""` would only lead back to the page.
pub fn to_html(markdown: &str) -> String {
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    let mut in_empty_link = false; // links do not nest
    let events = events(markdown, options())
        .filter(|event| match event {
            Event::Start(Tag::Link { dest_url, .. }) if dest_url.trim().is_empty() => {
                in_empty_link = true;
                false
            }
            Event::End(TagEnd::Link) if in_empty_link => {
                in_empty_link = false;
                false
            }
            _ => true,
        })
        .map(|event| match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(
                    fence_language(&info).to_owned().into(),
                )))
            }
            other => other,
        });
    if memchr::memmem::find(markdown.as_bytes(), b"[^").is_none() {
        pulldown_cmark::html::push_html(&mut html, events);
        return html;
    }
    // Footnotes at the end, as kramdown, goldmark and Zola put them, wherever their definitions were written
    // (often right below the paragraph that cites them).
    let mut notes = Vec::new();
    let mut in_note = false;
    let body: Vec<Event<'_>> = events
        .filter(|event| {
            in_note |= matches!(event, Event::Start(Tag::FootnoteDefinition(_)));
            let keep = !in_note;
            if !keep {
                notes.push(event.clone());
            }
            in_note &= !matches!(event, Event::End(TagEnd::FootnoteDefinition));
            keep
        })
        .collect();
    pulldown_cmark::html::push_html(&mut html, body.into_iter());
    if !notes.is_empty() {
        html.push_str("<div class=\"footnotes\">\n<hr />\n");
        pulldown_cmark::html::push_html(&mut html, notes.into_iter());
        html.push_str("</div>\n");
    }
    html
}

/// The language of a code fence's info string, without the attributes Hugo and Pandoc write beside it:
/// `go {linenos=true}` and `go{hl_lines=[2]}` are `go`, `{.python .numberLines}` is `python`, and
/// `{filename=".env"}` none.
fn fence_language(info: &str) -> &str {
    let info = info.trim();
    if let Some(attributes) = info.strip_prefix('{') {
        let attributes = attributes.split('}').next().unwrap_or_default();
        return attributes
            .split_whitespace()
            .find_map(|a| a.strip_prefix('.'))
            .unwrap_or_default();
    }
    let word = info.split_whitespace().next().unwrap_or_default();
    word.split('{').next().unwrap_or_default()
}

/// [`to_html`] of at most `max_bytes`: when the whole is longer, the HTML of the longest run of whole top-level
/// blocks that fits (reference definitions and footnotes after the cut are lost with the rest); `true` when
/// something was cut.
pub fn to_html_capped(markdown: &str, max_bytes: usize) -> (String, bool) {
    let html = to_html(markdown);
    if html.len() <= max_bytes {
        return (html, false);
    }
    // Source offsets where a top-level block ends: the only places a cut keeps the HTML well-formed.
    let mut ends = Vec::new();
    let mut depth = 0usize;
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    ends.push(range.end);
                }
            }
            _ if depth == 0 => ends.push(range.end),
            _ => {}
        }
    }
    // HTML grows roughly in proportion to its source: guess the cut, then move back until it fits.
    let mut budget = markdown.len() * max_bytes / html.len();
    loop {
        let cut = ends
            .iter()
            .rev()
            .find(|&&e| e <= budget)
            .copied()
            .unwrap_or(0);
        let html = to_html(&markdown[..cut]);
        if html.len() <= max_bytes || cut == 0 {
            return (html, true);
        }
        budget = (cut * max_bytes / html.len()).min(cut - 1);
    }
}

/// An article's summary from its first paragraph: [`crate::store::single_line`] of it, cut by
/// [`truncate_at_word`] to at most `max` characters. Only as much of the paragraph is joined as the cut can keep
/// (a first paragraph may run to thousands of characters).
pub fn summary(first_paragraph: &str, max: usize) -> String {
    truncate_at_word(&first_words(first_paragraph, max.saturating_add(1)), max)
}

/// The words of `text` (split at whitespace and control characters) joined by one space, up to the first word
/// that makes it longer than `limit` characters: all of `single_line(text)` when that has `limit` characters or
/// fewer, else a longer prefix of it.
pub(super) fn first_words(text: &str, limit: usize) -> String {
    let mut out = String::new();
    let mut chars = 0usize;
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        out.push_str(word);
        chars += if word.is_ascii() {
            word.len()
        } else {
            word.chars().count()
        };
        if chars > limit {
            break;
        }
    }
    out
}

/// Cuts `text` to at most `max` characters at a word boundary, adding "…" when something was cut.
pub fn truncate_at_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > 0 => &cut[..i],
        _ => &cut[..],
    };
    format!(
        "{}…",
        cut.trim_end_matches(|c: char| c.is_whitespace() || ",;:-".contains(c))
    )
}

/// Whole minutes at `wpm`, rounded to the nearest minute and at least 1.
pub fn reading_minutes(words: usize, wpm: u32) -> u32 {
    let wpm = wpm.max(1) as usize;
    (((words + wpm / 2) / wpm) as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jekyll_title_is_smartified_as_jekyll_feed_prints_it() {
        for (written, shown) in [
            (
                "Markup: Title with Special&nbsp;---&nbsp;Characters",
                "Markup: Title with Special\u{a0}\u{2014}\u{a0}Characters",
            ),
            (
                "\"Quoted\" -- it's <em>fine</em>...",
                "\u{201c}Quoted\u{201d} \u{2013} it\u{2019}s fine\u{2026}",
            ),
            (
                "# of users: 1. *not* _emphasis_ [x](y)",
                "# of users: 1. *not* _emphasis_ [x](y)",
            ),
            ("C++ & Rust", "C++ & Rust"),
            ("1. Intro", "1. Intro"),
        ] {
            assert_eq!(smartify(written), shown, "{written}");
        }
    }

    #[test]
    fn footnotes_come_at_the_end_wherever_they_are_defined() {
        let html = to_html("One[^a] two.\n\n[^a]: The note.\n\nThree.\n");
        assert!(
            html.starts_with("<p>One<sup class=\"footnote-reference\"><a href=\"#a\">1</a></sup> two.</p>\n<p>Three.</p>\n<div class=\"footnotes\">\n<hr />\n<div class=\"footnote-definition\" id=\"a\">"),
            "{html}"
        );
        assert!(html.ends_with("The note.</p>\n</div>\n</div>\n"), "{html}");
    }

    #[test]
    fn tex_between_dollars_is_kept_as_written() {
        assert_eq!(
            to_html("Let $W'_t$ and $$W_{t-1}$$ be *it*.\n\n$$\na \\\\ b < c\n$$\n"),
            "<p>Let $W'_t$ and $$W_{t-1}$$ be <em>it</em>.</p>\n<p>$$\na \\\\ b &lt; c\n$$</p>\n"
        );
        assert_eq!(
            to_html("From $5-$10, or US$5 and US$6 \"each\".\n"),
            "<p>From $5-$10, or US$5 and US$6 \u{201c}each\u{201d}.</p>\n"
        );
        assert_eq!(plain_text("Let $W_t$ be"), "Let $W_t$ be ");
    }

    #[test]
    fn a_code_fence_keeps_its_language_without_hugo_or_pandoc_attributes() {
        for (fence, class) in [
            ("```go {linenos=true}", Some("language-go")),
            ("```go{hl_lines=[2]}", Some("language-go")),
            ("```{.python .numberLines}", Some("language-python")),
            ("``` {filename=\".env\"}", None),
            ("```rust", Some("language-rust")),
        ] {
            let html = to_html(&format!("{fence}\nx = 1\n```\n"));
            match class {
                Some(class) => assert!(
                    html.starts_with(&format!("<pre><code class=\"{class}\">")),
                    "{fence}: {html}"
                ),
                None => assert!(html.starts_with("<pre><code>x = 1"), "{fence}: {html}"),
            }
        }
    }

    #[test]
    fn a_summary_with_markdown_is_read_as_inline_markdown() {
        for (summary, text, html) in [
            (
                "Using **Rust** and [serde](https://serde.rs)",
                "Using Rust and serde",
                "Using <strong>Rust</strong> and <a href=\"https://serde.rs\">serde</a>",
            ),
            ("*one* `two`", "one two", "<em>one</em> <code>two</code>"),
            ("~~old~~ new", "old new", "<del>old</del> new"),
            // HTML written in a summary is text, never markup.
            (
                "**Why** <script>alert(1)</script> & Vec<String>",
                "Why <script>alert(1)</script> & Vec<String>",
                "<strong>Why</strong> &lt;script&gt;alert(1)&lt;/script&gt; &amp; Vec&lt;String&gt;",
            ),
            (
                "![a chart](chart.png) of **sales**",
                "a chart of sales",
                "a chart of <strong>sales</strong>",
            ),
            (
                "[gone]() but **here**",
                "gone but here",
                "gone but <strong>here</strong>",
            ),
            (
                "**5** \\* 3 &amp; 2",
                "5 * 3 & 2",
                "<strong>5</strong> * 3 &amp; 2",
            ),
        ] {
            let m = inline_markup(summary).unwrap_or_else(|| panic!("{summary}"));
            assert_eq!(
                (m.text.as_str(), m.html.as_str()),
                (text, html),
                "{summary}"
            );
        }
    }

    #[test]
    fn a_summary_without_markup_or_that_is_no_paragraph_stays_text_as_written() {
        for summary in [
            "One line for feeds and digests.",
            "It's \"done\" -- and... 5 * 3 = 15",
            "snake_case_names & Vec<String>",
            "5 \\* 3 and \"&lt;\"",
            "1. Introduction to lists",
            "# of users grew",
            "- not a list, a dash",
            "> not a quote",
            "",
        ] {
            assert_eq!(inline_markup(summary), None, "{summary:?}");
        }
    }

    #[test]
    fn words_are_counted_as_split_whitespace_counts_them() {
        for text in [
            "",
            " ",
            "one",
            " two  words ",
            "a\u{a0}b\u{2003}c\td\u{b}e\u{85}f",
            "été  déjà\n\nvu",
        ] {
            assert_eq!(
                count_words(text).0,
                text.split_whitespace().count(),
                "{text:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn words_and_whitespace_are_what_split_whitespace_says(
            text in "([a-z]{0,12}|[ \\t\\n\\r\\x0b\\x0c]|\u{a0}|\u{2003}|\u{85}|é|’|[\\x00-\\x7f])*"
        ) {
            proptest::prop_assert_eq!(count_words(&text).0, text.split_whitespace().count());
        }

        #[test]
        fn a_summary_is_the_cut_of_the_whole_paragraph_on_one_line(
            text in "([a-z]{0,12}|[ \\t\\n\\r\\x0b\\x0c\\x01]|\u{a0}|\u{85}|é|日本|[,;:\\-])*",
            max in 0usize..40,
        ) {
            proptest::prop_assert_eq!(
                summary(&text, max),
                truncate_at_word(&one_line_by_the_rules(&text), max)
            );
        }
    }

    /// `single_line` spelled plainly, for the property tests to compare against.
    fn one_line_by_the_rules(text: &str) -> String {
        text.split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    proptest::proptest! {
        #[test]
        fn single_line_joins_the_words_by_one_space(
            text in "([a-z]{0,12}|[ \t\n\r\x0b\x0c\x01]|\u{a0}|\u{85}|é|日本)*",
        ) {
            proptest::prop_assert_eq!(crate::store::single_line(&text), one_line_by_the_rules(&text));
        }
    }

    #[test]
    fn first_paragraph_skips_headings_and_is_plain_text() {
        let md = "# Title\n\nHello *world* and `code`.\n\nSecond.";
        assert_eq!(analyze(md).first_paragraph, "Hello world and code.");
        assert!(to_html(md).contains("<em>world</em>"));
    }

    #[test]
    fn extensions_are_enabled() {
        let html = to_html(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~x~~ \"q\" note[^1]\n\n[^1]: f\n\n- [x] done\n",
        );
        assert!(html.contains("<table>"));
        assert!(html.contains("<del>x</del>"));
        assert!(html.contains("\u{201c}q\u{201d}"));
        assert!(html.contains("footnote-definition"));
        assert!(html.contains("checkbox"));
    }

    #[test]
    fn a_link_to_nowhere_is_its_text() {
        assert_eq!(
            to_html("See [the missing post]() and [this](https://x/)."),
            "<p>See the missing post and <a href=\"https://x/\">this</a>.</p>\n"
        );
    }

    #[test]
    fn words_are_counted_from_text_not_markup() {
        assert_eq!(
            analyze("## Head\n\none two [three](http://x) **four**").words,
            5
        );
    }

    #[test]
    fn capped_html_keeps_whole_blocks_that_fit() {
        let md = (1..=100)
            .map(|i| format!("Paragraph {i} with *some* words.\n\n```\ncode {i}\n```\n"))
            .collect::<Vec<_>>()
            .join("\n");
        let (whole, cut) = to_html_capped(&md, 1 << 20);
        assert!(!cut);
        assert_eq!(whole, to_html(&md));
        let (capped, cut) = to_html_capped(&md, 2000);
        assert!(cut);
        assert!(
            capped.len() <= 2000 && capped.len() > 1500,
            "{}",
            capped.len()
        );
        assert!(whole.starts_with(&capped), "a prefix of whole blocks");
        assert!(capped.ends_with("</code></pre>\n"), "{capped}");
    }

    #[test]
    fn a_first_block_larger_than_the_cap_gives_no_content() {
        let md = format!("```\n{}\n```\n", "x".repeat(10_000));
        assert_eq!(to_html_capped(&md, 1000), (String::new(), true));
    }

    #[test]
    fn truncation_happens_at_a_word_boundary() {
        assert_eq!(truncate_at_word("alpha beta gamma", 12), "alpha beta…");
        assert_eq!(truncate_at_word("short", 12), "short");
    }

    #[test]
    fn chinese_and_japanese_are_read_by_the_character() {
        // 8,400 characters without a space, 7,700 of them ideographs (the full stop is none).
        let chinese = "这是一个很长的中文句子。".repeat(700);
        assert_eq!(analyze(&chinese).words, 1 + 3850);
        assert_eq!(reading_minutes(analyze(&chinese).words, 230), 17);
        assert_eq!(
            analyze("한국어는 단어 사이에 띄어 씁니다").words,
            5,
            "Korean spaces its words"
        );
    }

    #[test]
    fn reading_time_is_at_least_one_minute() {
        assert_eq!(reading_minutes(0, 230), 1);
        assert_eq!(reading_minutes(460, 230), 2);
        assert_eq!(reading_minutes(580, 230), 3);
    }
}

//! Links between articles as the generators write them, resolved to the target's permalink: Zola's
//! `[text](@/blog/post.md)`, Jekyll's `{% link _posts/2024-01-05-post.md %}` and `{% post_url 2024-01-05-post %}`,
//! Hugo's `{{< ref "post.md" >}}`. Each names a source file, relative to a root tidings does not know (the
//! site, its `content/` folder): a name matches the store file whose path ends with it, component by component,
//! and the shortest such path wins, so the result does not depend on where the store starts.
//!
//! Also the Zola pass over a Markdown body ([`resolve_internal_links`]), which finds `@/` destinations with the
//! Markdown parser (never inside code) and rewrites them in place.
//!
//! An article's body depends on the other articles only through [`LinkIndex::resolve`], so [`recording`] notes
//! every name one body looked up and what it resolved to: the build cache keeps a parsed body as long as each of
//! its lookups still gives the same answer.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Component, Path};

use pulldown_cmark::{Event, Parser, Tag};

use super::body::Problem;

/// Every article's source path and permalink, for looking targets up by the names authors write.
#[derive(Debug, Clone, Default)]
pub struct LinkIndex {
    /// Lowercased file name → (path components, permalink) of each article with that file name.
    by_name: HashMap<String, Vec<(Vec<String>, String)>>,
}

impl LinkIndex {
    /// An index of `(source path, permalink)` pairs.
    pub fn new<'a>(articles: impl IntoIterator<Item = (&'a Path, &'a str)>) -> LinkIndex {
        let mut by_name: HashMap<String, Vec<(Vec<String>, String)>> = HashMap::new();
        for (path, url) in articles {
            let parts = components(path);
            if let Some(name) = parts.last() {
                by_name
                    .entry(name.to_lowercase())
                    .or_default()
                    .push((parts, url.to_string()));
            }
        }
        for candidates in by_name.values_mut() {
            candidates.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
        }
        LinkIndex { by_name }
    }

    /// The permalink of the article whose source path ends with `name` (`blog/post.md`, `/posts/post.md`;
    /// without an extension also `post.md`, `post.markdown` and the bundle `post/index.md`). An `#anchor` is kept.
    pub fn resolve(&self, name: &str) -> Option<String> {
        let found = self.lookup(name);
        LOOKUPS.with_borrow_mut(|seen| {
            if let Some(seen) = seen {
                seen.push((name.to_string(), found.clone()));
            }
        });
        found
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let (name, anchor) = match name.split_once('#') {
            Some((n, a)) => (n, Some(a)),
            None => (name, None),
        };
        let name = name.trim().trim_start_matches('@').trim_matches('/');
        if name.is_empty() {
            return None;
        }
        let mut wanted: Vec<String> = name
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(str::to_string)
            .collect();
        let has_extension = wanted
            .last()
            .is_some_and(|last| last.ends_with(".md") || last.ends_with(".markdown"));
        let mut tries = vec![wanted.clone()];
        if !has_extension {
            let last = wanted.pop().unwrap_or_default();
            for candidate in [format!("{last}.md"), format!("{last}.markdown")] {
                let mut t = wanted.clone();
                t.push(candidate);
                tries.push(t);
            }
            let mut bundle = wanted.clone();
            bundle.push(last);
            bundle.push("index.md".into());
            tries.push(bundle);
        }
        let url = tries.iter().find_map(|t| self.find(t))?;
        Some(match anchor {
            Some(a) if !a.is_empty() => format!("{url}#{a}"),
            _ => url.to_string(),
        })
    }

    /// Jekyll's `{% post_url 2024-01-05-post %}` (or `sub/2024-01-05-post`): a post by its file name without the
    /// extension.
    pub fn resolve_post(&self, name: &str) -> Option<String> {
        let name = name.trim().trim_matches('/');
        if name.is_empty() {
            return None;
        }
        ["md", "markdown"]
            .iter()
            .find_map(|ext| self.resolve(&format!("{name}.{ext}")))
    }

    fn find(&self, wanted: &[String]) -> Option<&str> {
        let name = wanted.last()?.to_lowercase();
        self.by_name.get(&name)?.iter().find_map(|(parts, url)| {
            (parts.len() >= wanted.len()
                && parts[parts.len() - wanted.len()..]
                    .iter()
                    .zip(wanted)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b)))
            .then_some(url.as_str())
        })
    }
}

/// A name a body looked up ([`LinkIndex::resolve`]) and the permalink it got.
pub type Lookup = (String, Option<String>);

thread_local! {
    /// The lookups of the body being parsed on this thread, while [`recording`].
    static LOOKUPS: RefCell<Option<Vec<Lookup>>> = const { RefCell::new(None) };
}

/// Runs `f` (one article's body passes, on this thread) and returns what it returned with every lookup it made.
pub fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<Lookup>) {
    let outer = LOOKUPS.replace(Some(Vec::new()));
    let out = f();
    let seen = LOOKUPS.replace(outer).unwrap_or_default();
    (out, seen)
}

impl LinkIndex {
    /// Whether every lookup gives the same answer in this index (a body parsed against another index is then the
    /// same against this one).
    pub fn answers(&self, lookups: &[Lookup]) -> bool {
        lookups
            .iter()
            .all(|(name, found)| self.lookup(name) == *found)
    }
}

fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// Zola's internal links: every Markdown link destination starting with `@/` becomes the target's permalink.
/// A target that is not in the store is reported (at the destination) and its link dropped, keeping the text.
///
/// Passes are repeated until one changes nothing: a label defined twice uses its first definition, and the
/// parser hides the later ones, but once an unresolved first definition is dropped a later one takes effect,
/// with its `@/` destination still as written (found by fuzzing).
pub fn resolve_internal_links(markdown: &str, links: &LinkIndex) -> (String, Vec<Problem>) {
    if memchr::memmem::find(markdown.as_bytes(), b"@/").is_none() {
        return (markdown.to_string(), Vec::new());
    }
    let mut out = markdown.to_string();
    let mut problems = Vec::new();
    // Each pass's edits as (start in its output, length written, length replaced), to map offsets back.
    let mut passes: Vec<Vec<(usize, usize, usize)>> = Vec::new();
    // Every pass with edits removes at least one `@/` destination, so this bound is never the one that stops.
    for _ in 0..=markdown.matches("@/").count() {
        let (next, edits, found) = resolve_pass(&out, links);
        problems.extend(found.into_iter().map(|p| {
            Problem {
                offset: passes
                    .iter()
                    .rev()
                    .fold(p.offset, |at, edits| offset_before(edits, at)),
                ..p
            }
        }));
        if edits.is_empty() {
            break;
        }
        passes.push(edits);
        out = next;
    }
    problems.sort_by_key(|p| p.offset);
    (out, problems)
}

/// The offset in a pass's input of `at` in its output (`at` outside every edit).
fn offset_before(edits: &[(usize, usize, usize)], at: usize) -> usize {
    let mut before = at;
    for &(start, written, replaced) in edits {
        if start + written > at {
            break;
        }
        before = before + replaced - written;
    }
    before
}

/// One pass of [`resolve_internal_links`]: the rewritten text, its edits (start in the output, length written,
/// length replaced), and the targets not found.
fn resolve_pass(
    markdown: &str,
    links: &LinkIndex,
) -> (String, Vec<(usize, usize, usize)>, Vec<Problem>) {
    if memchr::memmem::find(markdown.as_bytes(), b"@/").is_none() {
        return (markdown.to_string(), Vec::new(), Vec::new());
    }
    // (range in `markdown` to replace, replacement)
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut problems = Vec::new();
    let mut resolve = |dest: &str, at: usize| -> Option<String> {
        let url = links.resolve(dest);
        if url.is_none() {
            problems.push(Problem::new(
                at,
                format!(
                    "link target \"{dest}\" is not an article of the store; give its path from the content folder, \
                     like @/blog/post.md"
                ),
            ));
        }
        url
    };
    let parser = Parser::new_ext(markdown, super::markdown::options());
    for (_, def) in parser.reference_definitions().iter() {
        let dest = def.dest.as_ref();
        if !dest.starts_with("@/") {
            continue;
        }
        let span = def.span.clone();
        let Some(at) = markdown[span.clone()].find(dest).map(|i| span.start + i) else {
            continue;
        };
        let replacement = resolve(dest, at).unwrap_or_default();
        edits.push((at..at + dest.len(), replacement));
    }
    for (event, range) in parser.into_offset_iter() {
        let Event::Start(Tag::Link { dest_url, .. }) = event else {
            continue;
        };
        let dest = dest_url.as_ref();
        let text = &markdown[range.clone()];
        // A reference link's destination is in its definition (handled above), not in its own text.
        let Some(i) = text.rfind(dest).filter(|_| dest.starts_with("@/")) else {
            continue;
        };
        let at = range.start + i;
        match resolve(dest, at) {
            Some(url) => edits.push((at..at + dest.len(), url)),
            None => {
                // Keep the link text: drop the `[` and the `](dest …)`.
                let close = text.rfind("](").map_or(range.end, |c| range.start + c);
                edits.push((range.start..range.start + 1, String::new()));
                edits.push((close..range.end, String::new()));
            }
        }
    }
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(markdown.len());
    let mut done = Vec::with_capacity(edits.len());
    let mut last = 0;
    for (range, replacement) in edits {
        if range.start < last {
            continue;
        }
        out.push_str(&markdown[last..range.start]);
        done.push((out.len(), replacement.len(), range.len()));
        out.push_str(&replacement);
        last = range.end;
    }
    out.push_str(&markdown[last..]);
    (out, done, problems)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn index() -> LinkIndex {
        let articles: Vec<(PathBuf, String)> = [
            (
                "/site/content/blog/first.md",
                "https://e.com/2024/01/05/first/",
            ),
            (
                "/site/content/blog/bundle/index.md",
                "https://e.com/bundle/",
            ),
            ("/site/content/other/first.md", "https://e.com/other-first/"),
            (
                "/site/_posts/2024-01-05-hello.md",
                "https://e.com/2024/01/05/hello.html",
            ),
            (
                "/site/_posts/2023-02-01-old.markdown",
                "https://e.com/2023/02/01/old.html",
            ),
        ]
        .iter()
        .map(|(p, u)| (PathBuf::from(p), u.to_string()))
        .collect();
        LinkIndex::new(articles.iter().map(|(p, u)| (p.as_path(), u.as_str())))
    }

    #[test]
    fn targets_are_found_by_the_end_of_their_path() {
        let links = index();
        for (name, url) in [
            ("@/blog/first.md", Some("https://e.com/2024/01/05/first/")),
            ("@/other/first.md", Some("https://e.com/other-first/")),
            ("/posts/../blog/first.md", None),
            ("blog/first", Some("https://e.com/2024/01/05/first/")),
            ("bundle", Some("https://e.com/bundle/")),
            ("@/blog/bundle/index.md", Some("https://e.com/bundle/")),
            (
                "_posts/2024-01-05-hello.md",
                Some("https://e.com/2024/01/05/hello.html"),
            ),
            (
                "@/blog/first.md#usage",
                Some("https://e.com/2024/01/05/first/#usage"),
            ),
            ("@/blog/missing.md", None),
        ] {
            assert_eq!(links.resolve(name).as_deref(), url, "{name}");
        }
        assert_eq!(
            links.resolve_post("2023-02-01-old").as_deref(),
            Some("https://e.com/2023/02/01/old.html")
        );
        assert_eq!(links.resolve_post("2023-02-01-nope"), None);
    }

    #[test]
    fn zola_links_are_resolved_outside_code_and_a_missing_one_keeps_its_text() {
        let md = "See [the first](@/blog/first.md) and [gone](@/blog/gone.md \"t\").\n\n\
                  `[code](@/blog/first.md)`\n\n[ref]: @/bundle/index.md\n\nA [reference][ref].\n";
        let (out, problems) = resolve_internal_links(md, &index());
        assert_eq!(
            out,
            "See [the first](https://e.com/2024/01/05/first/) and gone.\n\n\
             `[code](@/blog/first.md)`\n\n[ref]: https://e.com/bundle/\n\nA [reference][ref].\n"
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].offset, md.find("@/blog/gone.md").unwrap());
        assert!(
            problems[0]
                .message
                .contains("\"@/blog/gone.md\" is not an article")
        );
    }

    #[test]
    fn a_later_definition_of_a_label_whose_first_is_dropped_is_resolved_too() {
        // The first `[r]` definition hides the second until its unresolved target empties it.
        let md =
            "[r]: @/gone.md\n\n[r]: @/gone.md\n\n[s]: @/x.md\n\n[s]: @/blog/first.md\n\nSee [s].\n";
        let (out, problems) = resolve_internal_links(md, &index());
        assert_eq!(
            out,
            "[r]: \n\n[r]: \n\n[s]: \n\n[s]: https://e.com/2024/01/05/first/\n\nSee [s].\n"
        );
        let offsets: Vec<usize> = problems.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, vec![5, 21, 37]);
        let html = super::super::markdown::to_html(&out);
        assert!(!html.contains("@/"), "{html}");
        assert!(
            html.contains("<a href=\"https://e.com/2024/01/05/first/\">s</a>"),
            "{html}"
        );
    }
}

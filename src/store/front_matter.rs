//! Splitting a source file into front matter and body, and reading the front matter in the conventions of
//! Jekyll, Hugo and Zola (YAML between `---`, TOML between `+++`) into one [`FrontMatter`] shape.
//!
//! Both formats are first read into a `serde_json::Value` (TOML datetimes become strings; flat YAML, the common
//! case, by [`super::flat_yaml`] without the full parser, anything else by serde_yaml_ng), then into
//! [`FrontMatter`], whose fields accept every spelling the three generators use (`summary` / `description` /
//! `excerpt`, `updated` / `lastmod`, `categories` or `taxonomies.categories` …). Positions in errors are
//! relative to the whole file.

use serde::Deserialize;
use serde_json::Value;

use crate::config::line_col;

/// A problem in the front matter, with a 1-based position in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatterError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

/// A source split at its front matter delimiters.
#[derive(Debug)]
pub struct Split<'a> {
    pub format: Format,
    pub front: &'a str,
    /// 1-based line of the first front matter line in the file.
    pub front_line: usize,
    pub body: &'a str,
}

/// The longest front matter read, in bytes. The YAML parser's time grows with the square of nesting (400 KB of
/// nested front matter took 77 s), so one file could stall a cron run; real front matter is a few hundred bytes.
pub const MAX_FRONT_MATTER_BYTES: usize = 64 * 1024;

/// Splits `text` into front matter and body. A file without front matter is an error: every article needs at
/// least a title and a date.
pub fn split(text: &str) -> Result<Split<'_>, FrontMatterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some((format, delimiter)) = opening(text) else {
        return Err(FrontMatterError {
            line: 1,
            col: 1,
            message: "no front matter; start the file with a line \"---\" (YAML) or \"+++\" (TOML), then title and date".into(),
        });
    };
    let first_line_end = text.find('\n').map_or(text.len(), |i| i + 1);
    if text[..first_line_end].trim_end() != delimiter {
        return Err(FrontMatterError {
            line: 1,
            col: 4,
            message: format!("the opening \"{delimiter}\" must be alone on its line"),
        });
    }
    let mut offset = first_line_end;
    for (i, line) in text[first_line_end..].split_inclusive('\n').enumerate() {
        if offset - first_line_end > MAX_FRONT_MATTER_BYTES {
            return Err(FrontMatterError {
                line: i + 2,
                col: 1,
                message: format!(
                    "front matter is longer than {MAX_FRONT_MATTER_BYTES} bytes; move the data out of it \
                     (or close it with a line \"{delimiter}\" if it was never closed)"
                ),
            });
        }
        if line.trim_end() == delimiter {
            let front = &text[first_line_end..offset];
            let body = &text[offset + line.len()..];
            return Ok(Split {
                format,
                front,
                front_line: 2,
                body,
            });
        }
        offset += line.len();
    }
    Err(FrontMatterError {
        line: 1,
        col: 1,
        message: format!("front matter is never closed; add a line \"{delimiter}\" after it"),
    })
}

/// The front matter format `text` opens with (after a byte-order mark), and its delimiter; `None` for a file
/// without front matter (a README, say), however its front matter might be broken further on.
pub fn opening(text: &str) -> Option<(Format, &'static str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.starts_with("---") {
        Some((Format::Yaml, "---"))
    } else if text.starts_with("+++") {
        Some((Format::Toml, "+++"))
    } else {
        None
    }
}

/// Front matter as written, before validation. Every field is optional here; `store::parse_article` decides
/// what is required.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FrontMatter {
    pub title: Option<Value>,
    pub date: Option<Value>,
    /// Also `lastmod` (Hugo) and `last_modified_at` (Jekyll), folded in by [`fold_spellings`].
    pub updated: Option<Value>,
    /// Hugo's `publishDate`: the article is not published before it.
    pub publish_date: Option<Value>,
    /// Hugo's `expiryDate`: the article is not published from then on. (Named so that no front matter writes
    /// it by this name: a key of a site's own called `expires` is left alone.)
    pub expiry_date: Option<Value>,
    pub slug: Option<String>,
    /// A stable id for feeds; defaults to the permalink.
    pub id: Option<String>,
    /// Also `description` and `excerpt`, folded in by [`fold_spellings`].
    pub summary: Option<String>,
    pub category: Option<String>,
    pub categories: Option<OneOrMany>,
    pub tags: Option<OneOrMany>,
    pub taxonomies: Option<Taxonomies>,
    pub author: Option<AuthorRef>,
    /// Zola and Hugo: a list of names (or `[authors]` keys); the first is the article's author.
    pub authors: Option<OneOrMany>,
    pub draft: Option<bool>,
    pub related: Option<OneOrMany>,
    /// Zola: the page's URL path (`2024/01/05/slug`), which also gives its date and slug.
    pub path: Option<String>,
    /// Jekyll: the page's URL path, with placeholders like `:year` and `:title`.
    pub permalink: Option<String>,
    /// Hugo: the page's URL path.
    pub url: Option<String>,
    /// Every other key (Zola's `[extra]`, Jekyll's `layout`…): ignored, except as Liquid's `page.*`.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Taxonomies {
    pub categories: Option<OneOrMany>,
    pub tags: Option<OneOrMany>,
    /// Zola sites often keep authors as a taxonomy.
    pub authors: Option<OneOrMany>,
}

/// `tags: rust` and `tags: [rust, feeds]` both appear in the wild.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            OneOrMany::Many(v) => v,
        }
    }
}

/// `author: maya` (a key of `[authors]`) or an inline table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AuthorRef {
    Key(String),
    Inline {
        name: String,
        email: Option<String>,
        url: Option<String>,
        bio: Option<String>,
    },
}

/// Parses front matter text. Positions in errors are relative to the file (`split.front_line`).
pub fn parse(split: &Split<'_>) -> Result<FrontMatter, FrontMatterError> {
    let at = |line: usize, col: usize, message: String| FrontMatterError {
        line: line + split.front_line - 1,
        col,
        message,
    };
    let value: Value = match split.format {
        Format::Yaml => {
            if split.front.trim().is_empty() {
                Value::Object(Default::default())
            } else if let Some(flat) = super::flat_yaml::read(split.front) {
                flat
            } else if let Some((line, col)) = too_deep(split.front) {
                // The YAML scanner's time grows with the square of unclosed flow nesting (60 KB of `[` took 13 s)
                // before it reaches its own recursion limit; no real front matter nests this deep.
                return Err(at(
                    line,
                    col,
                    format!("front matter nests more than {MAX_FLOW_DEPTH} brackets deep"),
                ));
            } else {
                serde_yaml_ng::from_str(split.front).map_err(|e| {
                    // From the byte offset, not the parser's line and column: YAML also ends a line at a CR,
                    // NEL, U+2028 or U+2029, which editors (and our line numbers) do not.
                    let (line, col) = e
                        .location()
                        .map_or((1, 1), |l| line_col(split.front, l.index()));
                    at(
                        line,
                        col,
                        format!(
                            "front matter is not valid YAML: {}",
                            strip_position(&e.to_string())
                        ),
                    )
                })?
            }
        }
        Format::Toml => {
            let table: toml::Table = toml::from_str(split.front).map_err(|e| {
                let (line, col) = e.span().map_or((1, 1), |s| line_col(split.front, s.start));
                at(
                    line,
                    col,
                    format!("front matter is not valid TOML: {}", one_line(e.message())),
                )
            })?;
            toml_to_json(toml::Value::Table(table))
        }
    };
    let Value::Object(mut map) = value else {
        return Err(at(
            1,
            1,
            "front matter must be a mapping of keys to values, like \"title: ...\"".into(),
        ));
    };
    fold_spellings(&mut map);
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        let message = e.to_string();
        let (line, col) = [
            "tags",
            "categories",
            "category",
            "authors",
            "author",
            "path",
            "permalink",
            "url",
            "draft",
            "related",
            "slug",
            "summary",
        ]
        .iter()
        .find(|k| message.contains(*k))
        .and_then(|k| key_position(split.front, k))
        .unwrap_or((1, 1));
        at(
            line,
            col,
            format!("front matter has a wrong type: {message}"),
        )
    })
}

/// The keys [`FrontMatter`] reads (and Jekyll's `published`), also found capitalised.
const FIELDS: &[&str] = &[
    "title",
    "date",
    "updated",
    "slug",
    "id",
    "summary",
    "category",
    "categories",
    "tags",
    "taxonomies",
    "author",
    "authors",
    "draft",
    "published",
    "related",
    "path",
    "permalink",
    "url",
    "excerpt_separator",
];

/// Other keys that mean a field, in order of precedence after the field's own: the first one written is
/// taken. Matched without regard to case, as Hugo does (`publishDate`, `publishdate`). `description` comes before
/// `excerpt` as in jekyll-feed; `published` is Hugo's spelling of `publishDate` when it holds a date (Jekyll's
/// `published: false` is a draft, see [`fold_spellings`]).
const SPELLINGS: &[(&str, &[&str])] = &[
    ("summary", &["description", "excerpt"]),
    ("updated", &["lastmod", "last_modified_at"]),
    ("publish_date", &["publishdate", "pubdate", "published"]),
    ("expiry_date", &["expirydate", "unpublishdate"]),
];

/// Front matter as real sites write it, brought to the one shape [`FrontMatter`] reads, so that a common way of
/// writing a key never costs the article:
/// - a field written with capitals (`Title:`) is read as the field, as Hugo reads it;
/// - another spelling of a field ([`SPELLINGS`]) is copied to it when the field itself is not written (the
///   original stays, for Liquid's `page.*`), so `description` beside `summary` is no "duplicate field";
/// - Jekyll's `published: false` makes a draft;
/// - a number or a yes/no where text is meant (`slug: 2024`, `tags: [python, 3.8]`) is taken as its text;
/// - a list under `category` or `author` (the singular keys) is the list of `categories` or `authors` when those
///   are not written, else its first entry.
fn fold_spellings(map: &mut serde_json::Map<String, Value>) {
    // `Title:`, `Date:`, `Tags = […]`: Hugo reads keys without regard to case, and sites exported from other
    // tools write them capitalised.
    for field in FIELDS {
        if map.contains_key(*field) {
            continue;
        }
        let found = map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v.clone());
        if let Some(value) = found {
            map.insert((*field).to_owned(), value);
        }
    }
    // A yes/no `published` is Jekyll's (and beats `draft`); a date there is Hugo's publishDate, folded below.
    if let Some(&Value::Bool(published)) = map.get("published") {
        map.remove("published");
        if !published {
            map.insert("draft".to_owned(), Value::Bool(true));
        }
    }
    for (field, others) in SPELLINGS {
        if map.contains_key(*field) {
            continue;
        }
        let found = others.iter().find_map(|other| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(other))
                .map(|(_, v)| v.clone())
        });
        if let Some(value) = found {
            map.insert((*field).to_owned(), value);
        }
    }
    for (single, plural) in [("category", "categories"), ("author", "authors")] {
        if let Some(Value::Array(list)) = map.get(single) {
            let list = list.clone();
            if map.contains_key(plural) {
                match list.into_iter().next() {
                    Some(first) => map.insert(single.to_owned(), first),
                    None => map.remove(single),
                };
            } else {
                map.remove(single);
                map.insert(plural.to_owned(), Value::Array(list));
            }
        }
    }
    for key in ["slug", "id", "category"] {
        if let Some(value) = map.get_mut(key) {
            as_text(value);
        }
    }
    let lists = ["tags", "categories", "authors", "related"];
    for key in lists {
        if let Some(value) = map.get_mut(key) {
            as_texts(value);
        }
    }
    if let Some(Value::Object(taxonomies)) = map.get_mut("taxonomies") {
        for key in lists {
            if let Some(value) = taxonomies.get_mut(key) {
                as_texts(value);
            }
        }
    }
}

/// A number or a yes/no as the text it was written as; anything else as it is.
fn as_text(value: &mut Value) {
    if matches!(value, Value::Number(_) | Value::Bool(_)) {
        *value = Value::String(value.to_string());
    }
}

/// [`as_text`] of a value and of each entry of a list.
fn as_texts(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(as_text),
        other => as_text(other),
    }
}

/// Deeper than serde_yaml_ng's own recursion limit, so nothing it could read is refused.
const MAX_FLOW_DEPTH: usize = 128;

/// Where `[` / `{` nesting first passes [`MAX_FLOW_DEPTH`] (counting every bracket, quoted or not, so it can only
/// over-count), as a 1-based line and column.
fn too_deep(front: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    for (i, line) in front.lines().enumerate() {
        for (col, c) in line.chars().enumerate() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_FLOW_DEPTH {
                return Some((i + 1, col + 1));
            }
        }
    }
    None
}

/// Parser messages can span lines; an error report is one line per problem.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// serde_yaml_ng appends " at line X column Y" to its messages; we print the position ourselves.
fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// 1-based line and column (relative to the front matter) of the top-level key `key`, for errors that serde
/// reports without a position (a bad date, a wrong type).
pub fn key_position(front: &str, key: &str) -> Option<(usize, usize)> {
    front.lines().enumerate().find_map(|(i, line)| {
        let rest = line.strip_prefix(key)?;
        let rest = rest.trim_start();
        (rest.starts_with(':') || rest.starts_with('=')).then(|| {
            let value_col = line.len() - rest.len() + 2;
            let value_col = value_col + rest[1..].len() - rest[1..].trim_start().len();
            (i + 1, value_col)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_front_matter_is_split_from_body() {
        let s = split("---\ntitle: A\n---\nbody\n").unwrap();
        assert_eq!(s.format, Format::Yaml);
        assert_eq!(s.front, "title: A\n");
        assert_eq!(s.body, "body\n");
    }

    #[test]
    fn toml_front_matter_with_taxonomies_and_datetime() {
        let s =
            split("+++\ntitle = \"A\"\ndate = 2024-01-02\n[taxonomies]\ntags = [\"x\"]\n+++\nbody")
                .unwrap();
        let fm = parse(&s).unwrap();
        assert_eq!(fm.date, Some(Value::String("2024-01-02".into())));
        assert_eq!(fm.taxonomies.unwrap().tags.unwrap().into_vec(), vec!["x"]);
    }

    #[test]
    fn unclosed_front_matter_is_reported() {
        let err = split("---\ntitle: A\nbody").unwrap_err();
        assert!(err.message.contains("never closed"));
    }

    #[test]
    fn missing_front_matter_is_reported_at_line_one() {
        let err = split("# Just markdown").unwrap_err();
        assert_eq!((err.line, err.col), (1, 1));
    }

    #[test]
    fn yaml_syntax_error_position_is_relative_to_the_file() {
        let s = split("---\ntitle: A\ntags: [a, b\n---\n").unwrap();
        let err = parse(&s).unwrap_err();
        assert!(err.line >= 3, "{err:?}");
        assert!(
            err.message.starts_with("front matter is not valid YAML"),
            "{err:?}"
        );
    }

    #[test]
    fn hugo_and_jekyll_aliases_are_read() {
        let s =
            split("---\ntitle: A\ndescription: D\nlastmod: 2024-02-02\ncategories: [x, y]\n---\n")
                .unwrap();
        let fm = parse(&s).unwrap();
        assert_eq!(fm.summary.as_deref(), Some("D"));
        assert!(fm.updated.is_some());
        assert_eq!(fm.categories.unwrap().into_vec(), vec!["x", "y"]);
    }

    #[test]
    fn deeply_nested_flow_yaml_is_refused_before_parsing() {
        let front = format!(
            "title: T\nx: {}{}\n",
            "[".repeat(30_000),
            "]".repeat(30_000)
        );
        let text = format!("---\n{front}---\n");
        let err = parse(&split(&text).unwrap()).unwrap_err();
        assert_eq!((err.line, err.col), (3, 132), "{err:?}");
        assert!(
            err.message.contains("nests more than 128 brackets deep"),
            "{err:?}"
        );
    }

    #[test]
    fn key_position_points_at_the_value() {
        assert_eq!(
            key_position("title: A\ndate:  2024\n", "date"),
            Some((2, 8))
        );
        assert_eq!(key_position("date = 1\n", "date"), Some((1, 8)));
    }
}

//! YAML front matter in the flat shape nearly every blog writes, read without the full YAML parser.
//!
//! A generated store's front matter is a handful of `key: value` lines: quoted or plain text, a date, a number,
//! a `[a, b]` list or a block list of `- item` lines. serde_yaml_ng takes about 90,000 instructions to read one,
//! 9 % of a cold build; this reads the same lines in a few thousand. It is an optimisation only: [`read`] answers
//! `None` for anything outside that shape (escapes, anchors, tags, block scalars, nested mappings, comments after
//! a value, tabs, CR line ends, numbers other than plain decimals …) and the caller then asks serde_yaml_ng, so
//! whatever it accepts it reads exactly as serde_yaml_ng would, value for value (a property test checks this
//! against serde_yaml_ng on generated front matter full of YAML's traps).

use serde_json::{Map, Value};

/// The front matter as serde_yaml_ng would read it into a `Value`, when it is flat and simple enough to be sure.
pub fn read(front: &str) -> Option<Value> {
    if !printable_without_tabs_or_cr(front) {
        return None;
    }
    let mut map = Map::new();
    // The key whose value is a block list (`key:` alone on its line, then `- item` lines), and their indent.
    let mut open: Option<(String, Option<usize>)> = None;
    for line in front.split('\n') {
        let text = line.trim_end_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let indent = text.len() - text.trim_start_matches(' ').len();
        if let Some(item) = text[indent..].strip_prefix("- ") {
            let (key, list_indent) = open.as_mut()?;
            if *list_indent.get_or_insert(indent) != indent {
                return None;
            }
            let item = scalar(item.trim_start_matches(' '))?;
            match map.get_mut(key.as_str()) {
                Some(Value::Array(items)) => items.push(item),
                _ => {
                    map.insert(key.clone(), Value::Array(vec![item]));
                }
            }
            continue;
        }
        if indent > 0 {
            return None;
        }
        let (key, value) = text.split_once(':')?;
        if !plain_key(key) || map.contains_key(key) {
            return None;
        }
        let value = if value.is_empty() {
            open = Some((key.to_owned(), None));
            Value::Null
        } else {
            open = None;
            let value = value.strip_prefix(' ')?.trim_start_matches(' ');
            match value.strip_prefix('[') {
                Some(rest) => flow_list(rest)?,
                None => scalar(value)?,
            }
        };
        map.insert(key.to_owned(), value);
    }
    // No key at all (only comments) is no mapping: serde_yaml_ng reads it as null.
    (!map.is_empty()).then_some(Value::Object(map))
}

/// Whether `text` has only characters YAML prints, and no tab or CR (whose rules this reader leaves to
/// serde_yaml_ng): no C0 or C1 control but LF, no DEL, no U+2028/U+2029 (YAML line breaks), no U+FEFF, U+FFFE
/// or U+FFFF.
fn printable_without_tabs_or_cr(text: &str) -> bool {
    text.chars().all(|c| match c {
        '\n' => true,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => false,
        '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => false,
        _ => true,
    })
}

/// A key written as a plain word (`title`, `last_modified_at`, `publish-date`), not one YAML reads as null or a
/// boolean.
fn plain_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    key.len() <= 128
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && special_word(key).is_none()
}

/// One value in block context, the whole rest of its line (trailing spaces trimmed).
fn scalar(text: &str) -> Option<Value> {
    let (value, rest) = quoted(text).unwrap_or_else(|| (plain(text, false), ""));
    (rest.trim_start_matches(' ').is_empty()).then_some(value?)
}

/// A quoted string at the start of `text` with no escape in it, and what follows its closing quote; `None` when
/// `text` does not start with a quote. A string it cannot read for sure is `Some((None, _))`.
fn quoted(text: &str) -> Option<(Option<Value>, &str)> {
    let quote = text.chars().next().filter(|&c| c == '"' || c == '\'')?;
    let inside = &text[1..];
    let Some(end) = inside.find(quote) else {
        return Some((None, ""));
    };
    // In double quotes a backslash starts an escape; in single quotes `''` is one quote.
    if (quote == '"' && inside[..end].contains('\\')) || inside[end + 1..].starts_with('\'') {
        return Some((None, ""));
    }
    Some((
        Some(Value::String(inside[..end].to_owned())),
        &inside[end + 1..],
    ))
}

/// A plain (unquoted) scalar, typed as serde_yaml_ng types it, when it is sure to be one: it starts with a letter
/// or a `/` (no YAML indicator, no number), holds no `: ` or ` #` (a mapping, a comment) and does not end with `:`; in a flow list it
/// holds none of `,[]{}:#` either. Starting with a digit, only a plain decimal integer or a date-time is read.
fn plain(text: &str, in_flow: bool) -> Option<Value> {
    let first = text.chars().next()?;
    if text.contains(": ") || text.contains(" #") || text.ends_with(':') {
        return None;
    }
    if in_flow && text.contains([',', '[', ']', '{', '}', ':', '#']) {
        return None;
    }
    if first.is_alphabetic() || first == '/' {
        return Some(special_word(text).unwrap_or_else(|| Value::String(text.to_owned())));
    }
    if !first.is_ascii_digit() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // A leading zero makes text in YAML 1.2 (`007`); too large for u64 is left to serde_yaml_ng.
        return if text.len() > 1 && first == '0' {
            Some(Value::String(text.to_owned()))
        } else {
            text.parse::<u64>().ok().map(Value::from)
        };
    }
    date_time(text).then(|| Value::String(text.to_owned()))
}

/// `2024-01-05`, `2024-01-05T10:00:00+01:00`, `2024-01-05 10:00:00 +0100`: text to YAML (serde_yaml_ng has no
/// timestamp type), and no number either, since a `-` follows four digits.
fn date_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && b[10..]
            .iter()
            .all(|&c| c.is_ascii_digit() || b"T:+-.Z ".contains(&c))
}

/// The words serde_yaml_ng reads as null or a boolean.
fn special_word(text: &str) -> Option<Value> {
    match text {
        "null" | "Null" | "NULL" => Some(Value::Null),
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// A one-line flow list after its `[`: quoted or plain items separated by commas, then `]` and nothing else.
fn flow_list(mut rest: &str) -> Option<Value> {
    let mut items = Vec::new();
    rest = rest.trim_start_matches(' ');
    if let Some(after) = rest.strip_prefix(']') {
        return after.is_empty().then_some(Value::Array(items));
    }
    loop {
        let (item, after) = match quoted(rest) {
            Some((item, after)) => (item?, after),
            None => {
                let end = rest.find([',', ']'])?;
                (
                    plain(rest[..end].trim_end_matches(' '), true)?,
                    &rest[end..],
                )
            }
        };
        items.push(item);
        let after = after.trim_start_matches(' ');
        if let Some(after) = after.strip_prefix(']') {
            return after.is_empty().then_some(Value::Array(items));
        }
        rest = after.strip_prefix(',')?.trim_start_matches(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn yaml(front: &str) -> Option<Value> {
        serde_yaml_ng::from_str(front).ok()
    }

    #[test]
    fn reads_the_front_matter_blogs_write() {
        let front = "title: \"10 lessons from besi kragiosha\"\ndate: 2011-03-06T14:21:51+00:00\n\
                     category: rust\ntags: [\"heawa\", truhea, 'tri cat']\nauthor: \"Jonas Müller\"\n\
                     draft: false\nweight: 10\nslug: 007\n# a comment\n\nsummary: Don't panic, it's C#\n\
                     categories:\n- one\n- \"two\"\naliases:\n  - /old/\n  - /older/\nempty:\nlist: []\n";
        let fast = read(front).expect("flat front matter");
        assert_eq!(Some(&fast), yaml(front).as_ref());
        assert_eq!(fast["slug"], "007");
        assert_eq!(fast["weight"], 10);
        assert_eq!(fast["tags"][2], "tri cat");
        assert_eq!(fast["aliases"][1], "/older/");
    }

    /// The fixture blogs' front matter (Jekyll, Hugo, Zola, fuzzing finds) as serde_yaml_ng reads it, wherever
    /// the fast path reads it at all.
    #[test]
    fn reads_the_fixture_blogs_as_serde_yaml_ng_does() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut read_fast = 0;
        for entry in walkdir::WalkDir::new(fixtures) {
            let path = entry.unwrap().into_path();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            use super::super::front_matter::{Format, split};
            let Ok(split) = split(&text).map_err(drop).and_then(|s| {
                if s.format == Format::Yaml {
                    Ok(s)
                } else {
                    Err(())
                }
            }) else {
                continue;
            };
            if let Some(fast) = read(split.front) {
                read_fast += 1;
                assert_eq!(Some(fast), yaml(split.front), "{}", path.display());
            }
        }
        assert!(
            read_fast >= 30,
            "only {read_fast} fixtures read by the fast path"
        );
    }

    #[test]
    fn leaves_what_it_cannot_be_sure_of_to_the_full_parser() {
        for front in [
            "title: \"a \\\"quoted\\\" word\"\n",
            "title: 'it''s'\n",
            "title: a # comment\n",
            "title: >\n  folded\n",
            "title: &a x\nother: *a\n",
            "tags: [python, 3.8]\n",
            "title: x\n  continued\n",
            "author:\n  name: x\n",
            "title: x\r\ndate: 2024-01-01\r\n",
            "title:\tx\n",
            "title: x\ntitle: y\n",
            "version: 1.0\n",
            "id: 0x1F\n",
            "n: 99999999999999999999999\n",
            "title: [unclosed\n",
            "- a\n",
            "title: \"unclosed\n",
        ] {
            assert_eq!(read(front), None, "{front:?}");
        }
    }

    /// Pieces of front matter lines, many of them YAML traps: special words, numbers, indicators, quotes, colons.
    fn trap() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "null",
            "Null",
            "NULL",
            "nUll",
            "true",
            "True",
            "TRUE",
            "tRue",
            "false",
            "FALSE",
            "yes",
            "no",
            "on",
            "~",
            "0",
            "00",
            "007",
            "12",
            "-3",
            "+4",
            "1.5",
            "1e3",
            ".inf",
            ".nan",
            "inf",
            "nan",
            "0x1f",
            "0o7",
            "2024-01-05",
            "2024-01-05T10:00:00+01:00",
            "2024-01-05 10:00:00 +0100",
            "2024-13-45",
            "18446744073709551616",
            ":",
            ": ",
            " :",
            "#",
            " #",
            "C#",
            "/",
            "/a/",
            "-",
            "- ",
            "?",
            ",",
            "[",
            "]",
            "{",
            "}",
            "\"",
            "'",
            "''",
            "\\",
            "\\n",
            "&",
            "*",
            "!",
            "|",
            ">",
            "%",
            "@",
            "`",
            " ",
            "  ",
            "\t",
            "\r",
            "é",
            "Über",
            "日本",
            "\u{85}",
            "\u{2028}",
            "http://x",
        ])
        .prop_map(str::to_owned)
    }

    /// Mostly what front matter holds (words, spaces, quotes), sometimes a [`trap`].
    fn piece() -> impl Strategy<Value = String> {
        let word =
            prop::sample::select(vec!["title", "a", "Über", "x y", " ", "'", "\"", "/", "12"]);
        prop_oneof![3 => word.prop_map(str::to_owned), 1 => trap()]
    }

    fn value() -> impl Strategy<Value = String> {
        let text = || prop::collection::vec(piece(), 1..5).prop_map(|p| p.concat());
        prop_oneof![
            2 => text(),
            1 => text().prop_map(|t| format!("\"{t}\"")),
            1 => text().prop_map(|t| format!("'{t}'")),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec!["title", "tags", "date", "draft", "x_y", "a-b"]);
        prop_oneof![4 => word.prop_map(str::to_owned), 1 => trap()]
    }

    /// Lines shaped like front matter (`key: value`, lists, block items, comments), built from [`piece`]s.
    fn front() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            4 => (key(), value()).prop_map(|(k, v)| format!("{k}: {v}")),
            2 => (key(), prop::collection::vec(value(), 0..4))
                .prop_map(|(k, items)| format!("{k}: [{}]", items.join(", "))),
            2 => (key(), prop::collection::vec(value(), 0..3), 0..3usize).prop_map(|(k, items, ind)| {
                let pad = " ".repeat(ind);
                let items: String = items.iter().map(|i| format!("\n{pad}- {i}")).collect();
                format!("{k}:{items}")
            }),
            1 => prop::collection::vec(piece(), 0..4).prop_map(|p| p.concat()),
            1 => value().prop_map(|v| format!("# {v}")),
        ];
        prop::collection::vec(line, 1..6).prop_map(|lines| lines.join("\n") + "\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn whatever_it_reads_it_reads_as_serde_yaml_ng_does(front in front()) {
            if let Some(fast) = read(&front) {
                prop_assert_eq!(Some(fast), yaml(&front), "{:?}", front);
            }
        }
    }
}

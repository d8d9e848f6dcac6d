use std::collections::BTreeMap;

use super::*;

fn authors() -> BTreeMap<String, AuthorConfig> {
    let mut m = BTreeMap::new();
    m.insert(
        "maya".to_string(),
        AuthorConfig {
            name: "Maya Okafor".into(),
            email: None,
            url: None,
            bio: Some("Writes about teams.".into()),
        },
    );
    m
}

fn parse(path: &str, text: &str) -> Result<Article, ArticleError> {
    parse_full(path, text).map(|p| {
        assert_eq!(p.problems, vec![], "{path}: unexpected problems");
        p.article
    })
}

/// Parses with the site in `Europe/Berlin`, returning the article's problems as well.
fn parse_full(path: &str, text: &str) -> Result<Parsed, ArticleError> {
    parse_in(path, text, chrono_tz::Europe::Berlin)
}

fn parse_in(path: &str, text: &str, timezone: chrono_tz::Tz) -> Result<Parsed, ArticleError> {
    let base = url::Url::parse("https://example.com/blog/").unwrap();
    let authors = authors();
    let ctx = ParseContext {
        title: "Blog",
        base_url: &base,
        permalink: "/posts/{slug}/",
        store: Path::new(""),
        timezone,
        reading_wpm: 200,
        authors: &authors,
        default_author: None,
        language: "en",
        keep_bodies: true,
        generator: Generator::Auto,
        hugo_name_dates: false,
        jekyll_config: &Default::default(),
    };
    parse_article(Path::new(path), text, &ctx)
}

#[test]
fn complete_article_is_parsed() {
    let a = parse(
        "a/hello.md",
        "---\ntitle: Hello\ndate: 2024-03-01T10:00:00+01:00\ncategory: Career\ntags: [x, y]\nauthor: maya\n---\nFirst *para*.\n\nSecond.\n",
    )
    .unwrap();
    assert_eq!(a.slug, "hello");
    assert_eq!(a.url, "https://example.com/blog/posts/hello/");
    assert_eq!(a.id, a.url);
    assert_eq!(a.summary, "First para.");
    assert_eq!(a.category.as_deref(), Some("Career"));
    assert_eq!(a.tags, vec!["x", "y"]);
    assert_eq!(a.author.unwrap().name, "Maya Okafor");
    assert_eq!(a.reading_minutes, 1);
    assert_eq!(a.updated, a.date);
}

#[test]
fn naive_date_is_read_in_the_site_time_zone() {
    let a = parse("x.md", "---\ntitle: T\ndate: 2024-07-01 08:00:00\n---\n").unwrap();
    assert_eq!(a.date.to_rfc3339(), "2024-07-01T08:00:00+02:00");
    let b = parse("x.md", "---\ntitle: T\ndate: 2024-01-01\n---\n").unwrap();
    assert_eq!(b.date.to_rfc3339(), "2024-01-01T00:00:00+01:00");
}

#[test]
fn jekyll_file_name_gives_slug_and_date() {
    let a = parse("_posts/2023-05-06-my-post.md", "---\ntitle: T\n---\nbody").unwrap();
    assert_eq!(a.slug, "my-post");
    assert_eq!(a.date.date_naive().to_string(), "2023-05-06");
}

/// Jekyll's file-name pattern (`\d{2,4}-\d{1,2}-\d{1,2}-title`) takes a month and a day of one digit; tidings
/// reads four-digit years.
#[test]
fn a_file_name_date_may_write_its_month_and_day_with_one_digit() {
    let a = parse("_posts/2023-5-6-my-post.md", "---\ntitle: T\n---\nbody").unwrap();
    assert_eq!(a.slug, "my-post");
    assert_eq!(a.date.date_naive().to_string(), "2023-05-06");
    for (name, date, rest) in [
        ("2023-05-06-a", Some("2023-05-06"), "a"),
        ("2023-5-16_a-b", Some("2023-05-16"), "a-b"),
        ("2023-12-1-x", Some("2023-12-01"), "x"),
        ("2023-05-06-", None, ""),
        ("2023-05-06", None, ""),
        ("2023-13-01-a", None, ""),
        ("2023-02-30-a", None, ""),
        ("2023-005-06-a", None, ""),
        ("23-05-06-a", None, ""),
        ("2023-05-06x-a", None, ""),
        ("2023--06-a", None, ""),
        ("20230506-a", None, ""),
    ] {
        let got = super::name_date(name);
        assert_eq!(
            got.map(|(d, _, r)| (d.to_string(), r.to_string())),
            date.map(|d| (d.to_string(), rest.to_string())),
            "{name}"
        );
    }
}

#[test]
fn hugo_page_bundle_takes_its_folders_name() {
    let a = parse(
        "content/posts/bundle/index.md",
        "---\ntitle: T\ndate: 2024-01-01\n---\n",
    )
    .unwrap();
    assert_eq!(a.slug, "bundle");
}

#[test]
fn zola_toml_front_matter_with_taxonomies() {
    let a = parse(
        "content/z.md",
        "+++\ntitle = \"Z\"\ndate = 2024-02-03\nupdated = 2024-02-05\ndescription = \"D\"\n[taxonomies]\ncategories = [\"Ops\"]\ntags = [\"k8s\"]\n[extra]\nfoo = 1\n+++\nbody",
    )
    .unwrap();
    assert_eq!(a.category.as_deref(), Some("Ops"));
    assert_eq!(a.tags, vec!["k8s"]);
    assert_eq!(a.summary, "D");
    assert!(a.updated > a.date);
}

#[test]
fn article_without_title_is_rejected() {
    let e = parse("x.md", "---\ndate: 2024-01-01\n---\nbody").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.md:2:1: error: missing title; add `title: ...` to the front matter"
    );
}

#[test]
fn unparseable_date_names_its_line_and_column() {
    let e = parse("x.md", "---\ntitle: T\ndate: 2024-13-01\n---\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.col, 7);
    assert!(
        e.message
            .contains("\"2024-13-01\" is not a date; use YYYY-MM-DD or RFC 3339"),
        "{e}"
    );
}

/// Found by fuzzing: YAML ends a line at U+2028 too, so the parser's own line and column pointed past the end of
/// the line an editor shows; the position comes from the byte offset instead.
#[test]
fn a_yaml_error_after_a_line_separator_is_placed_on_the_line_an_editor_shows() {
    let text = "---\n0\u{2028}\u{ffd2} \u{20d0}\u{3a3}:\n---\n";
    let e = parse("x.md", text).unwrap_err();
    let line = text.split('\n').nth(e.line - 1).unwrap();
    assert_eq!(e.line, 2, "{e}");
    assert!(e.col >= 1 && e.col <= line.chars().count() + 1, "{e}");
}

#[test]
fn a_summary_written_in_markdown_is_plain_text_with_its_markdown_kept_for_the_feeds() {
    let a = parse(
        "_posts/2024-01-05-serde.md",
        "---\ntitle: Serde\nsummary: \"Using **Rust** and\n  [serde](https://serde.rs)\"\n---\n{{ page.summary }}\n",
    )
    .unwrap();
    assert_eq!(a.summary, "Using Rust and serde");
    assert_eq!(
        a.summary_markdown.as_deref(),
        Some("Using **Rust** and [serde](https://serde.rs)")
    );
    // Liquid's page.summary is the front matter as written, as in Jekyll.
    assert!(
        a.body
            .unwrap()
            .contains("Using **Rust** and [serde](https://serde.rs)"),
        "page.summary"
    );
    for (summary, expected) in [
        ("One line for feeds.", "One line for feeds."),
        ("Vec<String> & 1. not a list", "Vec<String> & 1. not a list"),
        ("1. Introduction", "1. Introduction"),
    ] {
        let a = parse(
            "x.md",
            &format!("---\ntitle: T\ndate: 2024-01-05\nsummary: \"{summary}\"\n---\nBody.\n"),
        )
        .unwrap();
        assert_eq!((a.summary.as_str(), a.summary_markdown), (expected, None));
    }
    // Only markup, no text: no summary; the first paragraph stands in.
    let a = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-05\nsummary: \"![](chart.png)\"\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!((a.summary.as_str(), a.summary_markdown), ("Body.", None));
}

#[test]
fn a_date_written_empty_is_rejected() {
    let e = parse("x.md", "---\ntitle: T\ndate:\n---\n").unwrap_err();
    assert!(e.is_error(), "{e}");
    assert!(e.message.starts_with("missing date"), "{e}");
}

/// Regression: a README in Jekyll's `_posts` and a Hugo `content/about.md` made `check` fail; neither generator
/// publishes them as posts.
#[test]
fn a_file_without_any_date_is_noted_as_no_article_not_an_error() {
    for (path, text, says) in [
        (
            "site/_posts/README.md",
            "# Posts\n\nOne file a post.\n",
            "not a post: neither its name nor its front matter has a date (Jekyll publishes only \
             `_posts/YYYY-MM-DD-title.md`)",
        ),
        (
            "site/_posts/notes.md",
            "---\ntitle: Notes\n---\nbody\n",
            "name it YYYY-MM-DD-title.md",
        ),
        (
            "content/about.md",
            "---\ntitle: About\nmenu: main\n---\nWho we are.\n",
            "not an article: no date, so it is a page (as Hugo and Zola publish undated content)",
        ),
        (
            "content/search.md",
            "---\nlayout: search\n---\n",
            "add `date: YYYY-MM-DD` to its front matter",
        ),
        (
            "content/about.md",
            "+++\ntitle = \"About\"\npath = \"about\"\n+++\n",
            "add `date = 2024-01-31` to its front matter",
        ),
        (
            "content/README.md",
            "\u{feff}Read me.\n",
            "not an article: no front matter and no date in its name",
        ),
    ] {
        let e = parse(path, text).unwrap_err();
        assert_eq!(e.severity, Severity::Note, "{path}: {e}");
        assert!(!e.is_error(), "{path}: {e}");
        assert!(e.message.contains(says), "{path}: {e}");
        assert!(e.to_string().starts_with(&format!("{path}:")), "{e}");
        assert!(e.to_string().contains(": note: "), "{e}");
    }
}

#[test]
fn a_file_dated_anywhere_is_still_an_article_or_an_error() {
    // Dated by its name, by Zola's path, by Hugo's publishDate: articles.
    for (path, text) in [
        (
            "site/_posts/2024-01-05-hello.md",
            "---\ntitle: Hello\n---\n",
        ),
        (
            "content/x.md",
            "+++\ntitle = \"X\"\npath = \"2024/01/05/x\"\n+++\n",
        ),
        (
            "content/x.md",
            "---\ntitle: X\npublishDate: 2024-01-05\n---\n",
        ),
        // As sites with a plugin for undated post names write it: the date is in the front matter.
        (
            "site/_posts/hello.md",
            "---\ntitle: Hello\ndate: 2024-01-05\n---\n",
        ),
    ] {
        assert!(parse(path, text).is_ok(), "{path}");
    }
    // A date that is there but wrong, a dated file without front matter or title: errors naming the fix.
    for (path, text, line, says) in [
        (
            "content/x.md",
            "---\ntitle: X\ndate: 2024-13-01\n---\n",
            3,
            "\"2024-13-01\" is not a date; use YYYY-MM-DD or RFC 3339",
        ),
        (
            "content/x.md",
            "---\ntitle: X\npublishDate: last tuesday\n---\n",
            3,
            "is not a date",
        ),
        ("site/_posts/2024-01-05-x.md", "# X\n", 1, "no front matter"),
        (
            "content/posts/2024-01-05-x.md",
            "+++\ndraft = false\n+++\n",
            2,
            "missing title",
        ),
        ("content/x.md", "---\ntitle: [X\n---\n", 3, "not valid YAML"),
        ("content/x.md", "---\ntitle: X\n", 1, "never closed"),
    ] {
        let e = parse(path, text).unwrap_err();
        assert!(e.is_error(), "{path}: {e}");
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains(says), "{e}");
    }
}

#[test]
fn author_that_is_not_a_key_is_taken_as_a_name() {
    let a = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\nauthor: Grace Hopper\n---\n",
    )
    .unwrap();
    let author = a.author.unwrap();
    assert_eq!((author.key, author.name.as_str()), (None, "Grace Hopper"));
    let b = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\nauthor: Maya Okafor\n---\n",
    )
    .unwrap();
    assert_eq!(
        b.author.unwrap().key.as_deref(),
        Some("maya"),
        "a configured author's name finds its key"
    );
}

#[test]
fn single_line_removes_line_breaks_and_controls() {
    assert_eq!(
        single_line("Evil\r\nBcc: x@y.z\t\u{7}end"),
        "Evil Bcc: x@y.z end"
    );
}

#[test]
fn title_control_characters_and_newlines_are_removed() {
    let a = parse(
        "x.md",
        "---\ntitle: \"A\\r\\nBcc: x\\u0008 <b>]]>\"\ndate: 2024-01-01\n---\n",
    )
    .unwrap();
    assert_eq!(a.title, "A Bcc: x <b>]]>");
}

#[test]
fn forbidden_xml_characters_are_dropped_from_the_body() {
    let a = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\n---\nbell\u{7} form\u{c}feed",
    )
    .unwrap();
    assert!(!a.html().contains('\u{7}') && !a.html().contains('\u{c}'));
    let b = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\n---\nref &#8; here",
    )
    .unwrap();
    assert!(
        !b.html().contains('\u{8}'),
        "a character reference cannot bring one back"
    );
}

#[test]
fn long_first_paragraph_is_cut_at_a_word() {
    let body = "word ".repeat(200);
    let a = parse(
        "x.md",
        &format!("---\ntitle: T\ndate: 2024-01-01\n---\n{body}"),
    )
    .unwrap();
    assert!(a.summary.chars().count() <= SUMMARY_MAX_CHARS + 1);
    assert!(a.summary.ends_with("word…"));
}

#[test]
fn updated_before_date_is_clamped_to_date() {
    let a = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-02-01\nlastmod: 2024-01-01\n---\n",
    )
    .unwrap();
    assert_eq!(a.updated, a.date);
}

#[test]
fn duplicate_slugs_name_both_files() {
    let base = url::Url::parse("https://example.com/").unwrap();
    let authors = BTreeMap::new();
    let ctx = ParseContext {
        title: "Blog",
        base_url: &base,
        permalink: "/{slug}/",
        store: Path::new(""),
        timezone: chrono_tz::UTC,
        reading_wpm: 200,
        authors: &authors,
        default_author: None,
        language: "en",
        keep_bodies: true,
        generator: Generator::Auto,
        hugo_name_dates: false,
        jekyll_config: &Default::default(),
    };
    let results = vec![
        parse_article(
            Path::new("a/one.md"),
            "---\ntitle: A\ndate: 2024-01-01\nslug: same\n---\n",
            &ctx,
        ),
        parse_article(
            Path::new("b/two.md"),
            "---\ntitle: B\ndate: 2024-01-02\nslug: same\n---\n",
            &ctx,
        ),
    ];
    let (catalog, errors) = collect_articles(results);
    assert_eq!(catalog.all().len(), 1);
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    assert!(
        message.starts_with("b/two.md:1:1: error: slug \"same\""),
        "{message}"
    );
    assert!(message.contains("a/one.md"), "{message}");
}

#[test]
fn catalog_is_newest_first_with_ties_by_permalink() {
    let mk = |slug: &str, date: &str| {
        parse(
            &format!("{slug}.md"),
            &format!("---\ntitle: {slug}\ndate: {date}\n---\n"),
        )
        .unwrap()
    };
    let catalog = Catalog::new(vec![
        mk("b", "2024-01-01"),
        mk("a", "2024-01-01"),
        mk("c", "2024-02-01"),
    ]);
    let slugs: Vec<_> = catalog.all().iter().map(|a| a.slug.as_str()).collect();
    assert_eq!(slugs, vec!["c", "a", "b"]);
}

#[test]
fn drafts_and_future_articles_are_not_published() {
    let now = DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z").unwrap();
    let draft = parse(
        "d.md",
        "---\ntitle: D\ndate: 2024-01-01\ndraft: true\n---\n",
    )
    .unwrap();
    let future = parse("f.md", "---\ntitle: F\ndate: 2024-07-01\n---\n").unwrap();
    let past = parse("p.md", "---\ntitle: P\ndate: 2024-05-01\n---\n").unwrap();
    let catalog = Catalog::new(vec![draft, future, past]);
    let published: Vec<_> = catalog.published(now).map(|a| a.slug.as_str()).collect();
    assert_eq!(published, vec!["p"]);
}

#[test]
fn invalid_utf8_and_binary_files_are_reported_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.md"), b"---\ntitle: caf\xe9\n---\n").unwrap();
    std::fs::write(dir.path().join("bin.md"), b"---\n\x00\x01\x02").unwrap();
    std::fs::write(dir.path().join("big.md"), vec![b'a'; 2000]).unwrap();
    let (paths, errors) = find_sources(dir.path());
    assert!(errors.is_empty());
    let messages: Vec<String> = paths
        .into_iter()
        .map(|p| read_source(p, 1000).unwrap_err().to_string())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("bad.md:2:11: error: invalid UTF-8")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("bin.md:2:1: error: binary file")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("big.md:1:1: error: file is 2000 bytes")),
        "{messages:?}"
    );
}

#[test]
fn tags_that_share_a_slug_are_kept_once_in_their_first_spelling() {
    let a = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\ntags: [rust, Rust, rust, Dev Ops, feeds, dev-ops, \"RUST \"]\n---\n",
    )
    .unwrap();
    assert_eq!(a.tags, vec!["rust", "Dev Ops", "feeds"]);
}

#[test]
fn category_names_are_the_same_when_their_slugs_are() {
    for (a, b, same) in [
        ("Career", "career", true),
        ("Dev Ops", "dev-ops", true),
        ("Économie", "économie", true),
        ("Career Advice", "career-advice", true),
        ("Operations", "operations ", true),
        ("Career", "Careers", false),
        ("!!!", "???", false),
        ("", "", false),
    ] {
        assert_eq!(same_category(a, b), same, "{a:?} vs {b:?}");
        assert_eq!(same_category(b, a), same, "{b:?} vs {a:?}");
    }
    assert_eq!(taxonomy_slug("Dev Ops"), "dev-ops");
}

#[test]
fn a_date_in_a_skipped_day_is_read_as_the_next_valid_instant() {
    // Samoa skipped 2011-12-30 entirely, moving from UTC-10 to UTC+14.
    let a = parse_in(
        "apia.md",
        "---\ntitle: T\ndate: 2011-12-30\n---\n",
        chrono_tz::Pacific::Apia,
    )
    .unwrap()
    .article;
    assert_eq!(a.date.to_rfc3339(), "2011-12-31T00:00:00+14:00");
    let b = parse_in(
        "apia.md",
        "---\ntitle: T\ndate: 2011-12-30 15:45\n---\n",
        chrono_tz::Pacific::Apia,
    )
    .unwrap()
    .article;
    assert_eq!(b.date.to_rfc3339(), "2011-12-31T00:00:00+14:00");
}

#[test]
fn a_date_in_a_two_hour_gap_is_read_as_the_end_of_the_gap() {
    // Troll station jumps from UTC+0 to UTC+2 at 01:00 on the last Sunday of March.
    for (written, expected) in [
        ("2024-03-31 01:30", "2024-03-31T03:00:00+02:00"),
        ("2024-03-31 02:59", "2024-03-31T03:00:00+02:00"),
        ("2024-03-31 00:59", "2024-03-31T00:59:00+00:00"),
        ("2024-03-31 03:00", "2024-03-31T03:00:00+02:00"),
    ] {
        let a = parse_in(
            "troll.md",
            &format!("---\ntitle: T\ndate: {written}\n---\n"),
            chrono_tz::Antarctica::Troll,
        )
        .unwrap()
        .article;
        assert_eq!(a.date.to_rfc3339(), expected, "{written}");
    }
    // Every minute of a gap day resolves without a panic.
    let day = NaiveDate::from_ymd_opt(2011, 12, 30).unwrap();
    for minute in 0..24 * 60 {
        let t = day.and_hms_opt(minute / 60, minute % 60, 0).unwrap();
        let d = localize(t, chrono_tz::Pacific::Apia);
        assert!(d.naive_local() >= t, "{t} became {d}");
    }
}

#[test]
fn a_fold_keeps_the_earlier_instant() {
    let a = parse("x.md", "---\ntitle: T\ndate: 2024-10-27 02:30\n---\n").unwrap();
    assert_eq!(a.date.to_rfc3339(), "2024-10-27T02:30:00+02:00");
}

#[test]
fn year_0000_is_refused_with_the_range() {
    for (text, at) in [
        ("---\ntitle: T\ndate: 0000-01-01\n---\n", (3, 7)),
        (
            "---\ntitle: T\ndate: 2024-01-01\nupdated: 0000-01-01T00:00:00Z\n---\n",
            (4, 10),
        ),
        ("+++\ntitle = \"T\"\ndate = 0000-01-01\n+++\n", (3, 8)),
    ] {
        let e = parse("x.md", text).unwrap_err();
        assert_eq!((e.line, e.col), at, "{e}");
        assert!(
            e.message
                .contains("0000-01-01 is out of range; feeds need a year from 1000 to 9999"),
            "{e}"
        );
    }
    let e = parse("_posts/0000-01-01-ancient.md", "---\ntitle: T\n---\n").unwrap_err();
    assert!(e.message.contains("out of range"), "{e}");
}

#[test]
fn an_id_with_control_characters_is_refused() {
    let e = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\nid: \"tag:example.com,2024:a\\u0008b\"\n---\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.col), (4, 5), "{e}");
    assert!(e.message.contains("contains control characters"), "{e}");
    let e = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\nid: \"line\\none\"\n---\n",
    )
    .unwrap_err();
    assert!(e.message.contains("contains control characters"), "{e}");
}

#[test]
fn an_id_that_is_not_a_uri_is_refused_and_a_tag_uri_is_kept() {
    let e = parse("x.md", "---\ntitle: T\ndate: 2024-01-01\nid: post 1\n---\n").unwrap_err();
    assert!(e.message.contains("is not an absolute URI"), "{e}");
    let a = parse(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\nid: tag:example.com,2024:post-1\n---\n",
    )
    .unwrap();
    assert_eq!(a.id, "tag:example.com,2024:post-1");
}

#[test]
fn a_bad_author_email_or_url_is_reported_and_left_out() {
    let p = parse_full(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\nauthor:\n  name: Eve\n  email: \"eve@example.com\\u0007\"\n  url: \"javascript:alert(1)\"\n---\n",
    )
    .unwrap();
    let author = p.article.author.unwrap();
    assert_eq!((author.email, author.url), (None, None));
    let messages: Vec<String> = p.problems.iter().map(|e| e.to_string()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("x.md:4:8: error: author email:"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with(
            "x.md:4:8: error: author url: \"javascript:alert(1)\" is not an http(s) URL"
        ),
        "{messages:?}"
    );
}

#[test]
fn front_matter_over_the_limit_is_refused_without_parsing_it() {
    let nested = "a:\n".to_string() + &"  - [[[[[[[[[[1]]]]]]]]]]\n".repeat(10_000);
    let e = parse("big.md", &format!("---\ntitle: T\n{nested}---\nbody")).unwrap_err();
    assert!(
        e.message
            .starts_with("front matter is longer than 65536 bytes"),
        "{e}"
    );
    assert!(e.line > 2, "{e}");
}

/// Parses several files as one store (links between them resolved), in the site of [`parse_full`].
fn parse_many(files: &[(&str, &str)], permalink: &str) -> (Catalog, Vec<ArticleError>) {
    let base = url::Url::parse("https://example.com/blog/").unwrap();
    let authors = authors();
    let ctx = ParseContext {
        title: "Blog",
        base_url: &base,
        permalink,
        store: Path::new(""),
        timezone: chrono_tz::UTC,
        reading_wpm: 200,
        authors: &authors,
        default_author: None,
        language: "en",
        keep_bodies: true,
        generator: Generator::Auto,
        hugo_name_dates: false,
        jekyll_config: &Default::default(),
    };
    let sources = files
        .iter()
        .map(|(p, t)| {
            Ok(Source {
                path: PathBuf::from(p),
                text: t.to_string(),
            })
        })
        .collect();
    parse_store(sources, &ctx)
}

#[test]
fn zola_path_gives_date_slug_and_url() {
    let a = parse(
        "content/blog/whatever.md",
        "+++\ntitle = \"Z\"\npath = \"2019/07/04/independent-slug\"\nauthors = [\"Maya Okafor\", \"Bo\"]\n[extra]\nmath = true\n+++\nText.\n",
    )
    .unwrap();
    assert_eq!(a.slug, "independent-slug");
    assert_eq!(a.date.to_rfc3339(), "2019-07-04T00:00:00+02:00");
    assert_eq!(
        a.url,
        "https://example.com/blog/2019/07/04/independent-slug/"
    );
    let author = a.author.unwrap();
    assert_eq!(
        (author.key.as_deref(), author.name.as_str()),
        (Some("maya"), "Maya Okafor")
    );
}

#[test]
fn a_toml_article_without_a_date_is_told_the_toml_fix() {
    // Under `[extra]`, where Zola does not read it.
    let e = parse(
        "content/x.md",
        "+++\ntitle = \"T\"\n[extra]\ndate = 2024-01-31\n+++\n",
    )
    .unwrap_err();
    assert!(
        e.message
            .starts_with("missing date; add `date = 2024-01-31`"),
        "{e}"
    );
    assert!(e.message.contains("path = \"2024/01/31/slug\""), "{e}");
    assert!(!e.message.contains("date:"), "no YAML syntax for TOML: {e}");
    let e = parse("x.md", "---\ntitle: T\ndate:\n---\n").unwrap_err();
    assert!(
        e.message
            .starts_with("missing date; add `date: YYYY-MM-DD`"),
        "{e}"
    );
}

#[test]
fn zola_internal_links_resolve_to_permalinks_and_a_missing_one_is_located() {
    let (catalog, errors) = parse_many(
        &[
            (
                "site/content/blog/a.md",
                "+++\ntitle = \"A\"\ndate = 2024-01-01\n+++\nSee [B](@/blog/b.md#part) and\n[gone](@/blog/gone.md).\n",
            ),
            (
                "site/content/blog/b.md",
                "+++\ntitle = \"B\"\npath = \"2024/02/02/bee\"\n+++\nB.\n",
            ),
        ],
        "/{slug}/",
    );
    assert_eq!(catalog.all().len(), 2);
    let a = catalog.by_slug("a").unwrap();
    let body = a.body.as_deref().unwrap();
    assert!(
        body.contains("[B](https://example.com/blog/2024/02/02/bee/#part)"),
        "{body}"
    );
    assert!(!body.contains("@/"), "{body}");
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        [
            "site/content/blog/a.md:6:8: error: link target \"@/blog/gone.md\" is not an article of the store; give its path from the content folder, like @/blog/post.md"
        ]
    );
}

#[test]
fn jekyll_liquid_links_and_problems_are_located_in_the_file() {
    let (catalog, errors) = parse_many(
        &[
            (
                "_posts/2024-01-01-one.md",
                "---\ntitle: One\n---\nSee [two]({% post_url 2024-02-02-two %}).\n\n{% include card.html %}\n",
            ),
            ("_posts/2024-02-02-two.md", "---\ntitle: Two\n---\nTwo.\n"),
        ],
        "/{year}/{month}/{day}/{slug}.html",
    );
    let one = catalog.by_slug("one").unwrap();
    assert_eq!(
        one.body.as_deref().unwrap(),
        "See [two](https://example.com/blog/2024/02/02/two.html).\n\n\n"
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].line, errors[0].col), (6, 1));
}

/// Regression: a Hugo site's second section (`content/notes/`) was published under the one `[site] permalink`
/// of the first; `{section}` / `{sections}` are the file's folders, as Hugo's `:section` / `:sections` are.
#[test]
fn hugo_sections_are_the_folders_below_the_store() {
    let files = [
        (
            "posts/hello.md",
            "---\ntitle: Hello\ndate: 2024-01-01\n---\nx\n",
        ),
        (
            "Notes/til.md",
            "---\ntitle: TIL\ndate: 2024-01-02\n---\nx\n",
        ),
        (
            "notes/rust/bundle/index.md",
            "---\ntitle: B\ndate: 2024-01-03\n---\nx\n",
        ),
        ("top.md", "---\ntitle: Top\ndate: 2024-01-04\n---\nx\n"),
        ("_posts/2024-01-05-jekyll.md", "---\ntitle: J\n---\nx\n"),
    ];
    let urls = |permalink| {
        let (catalog, errors) = parse_many(&files, permalink);
        assert!(errors.is_empty(), "{errors:?}");
        ["hello", "til", "bundle", "top", "jekyll"].map(|s| catalog.by_slug(s).unwrap().url.clone())
    };
    assert_eq!(
        urls("/{section}/{slug}/"),
        [
            "https://example.com/blog/posts/hello/",
            "https://example.com/blog/notes/til/",
            "https://example.com/blog/notes/bundle/",
            "https://example.com/blog/top/",
            "https://example.com/blog/jekyll/",
        ]
    );
    assert_eq!(
        urls("/{sections}/{slug}/")[2],
        "https://example.com/blog/notes/rust/bundle/"
    );
}

#[test]
fn slugs_shared_by_different_permalinks_are_both_published() {
    let (catalog, errors) = parse_many(
        &[
            (
                "_posts/2024-03-01-hello.md",
                "---\ntitle: New hello\n---\nx\n",
            ),
            (
                "_posts/2019-05-01-hello.md",
                "---\ntitle: Old hello\n---\nx\n",
            ),
        ],
        "/{year}/{slug}/",
    );
    assert_eq!(errors, vec![]);
    let slugs: Vec<(&str, &str)> = catalog
        .all()
        .iter()
        .map(|a| (a.slug.as_str(), a.url.as_str()))
        .collect();
    assert_eq!(
        slugs,
        [
            ("2024-03-01-hello", "https://example.com/blog/2024/hello/"),
            ("hello", "https://example.com/blog/2019/hello/"),
        ],
        "the oldest keeps the plain slug"
    );
}

#[test]
fn a_slug_that_cannot_be_part_of_a_url_is_slugified_as_zola_and_hugo_do() {
    let a = parse(
        "content/blog/My Zola Post.md",
        "+++\ntitle = \"T\"\ndate = 2024-01-01\n+++\n",
    )
    .unwrap();
    assert_eq!(a.slug, "my-zola-post");
    let a = parse(
        "_posts/2024-01-01-x.md",
        "---\ntitle: T\nslug: Hello World!\n---\n",
    )
    .unwrap();
    assert_eq!(a.slug, "hello-world");
    let a = parse("_posts/2024-01-01-My-Post_2.md", "---\ntitle: T\n---\n").unwrap();
    assert_eq!(
        a.slug, "My-Post_2",
        "a slug that is fine as written is kept as written"
    );
}

#[test]
fn a_file_name_without_letters_or_digits_is_refused() {
    let e = parse("_posts/2024-01-01-%%.md", "---\ntitle: T\n---\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "_posts/2024-01-01-%%.md:1:1: error: the file name gives slug \"%%\", which cannot be part of a URL; use letters, digits and hyphens; rename the file, or set the slug in front matter (slug: ...)"
    );
    let a = parse(
        "_posts/2024-01-01-%%.md",
        "---\ntitle: T\nslug: my-post\n---\n",
    )
    .unwrap();
    assert_eq!(a.slug, "my-post");
}

#[test]
fn own_permalinks_from_front_matter_are_used() {
    let jekyll = parse(
        "_posts/2024-01-05-x.md",
        "---\ntitle: T\npermalink: /:year/:month/:title.html\n---\n",
    )
    .unwrap();
    assert_eq!(jekyll.url, "https://example.com/blog/2024/01/x.html");
    let hugo = parse(
        "content/posts/x.md",
        "---\ntitle: T\ndate: 2024-01-05\nurl: /custom/place\n---\n",
    )
    .unwrap();
    assert_eq!(hugo.url, "https://example.com/blog/custom/place/");
}

#[test]
fn a_liquid_looking_sample_in_a_hugo_or_plain_article_is_kept() {
    let a = parse(
        "content/posts/templates.md",
        "---\ntitle: T\ndate: 2024-01-05\n---\n```\n{{ .Title }} {% if x %}\n```\n",
    )
    .unwrap();
    let body = a.body.as_deref().unwrap();
    assert!(body.contains("{{ .Title }} {% if x %}"), "{body}");
}

#[test]
fn a_category_or_tag_without_a_slug_is_reported_and_left_out() {
    let p = parse_full(
        "x.md",
        "---\ntitle: T\ndate: 2024-01-01\ncategory: \"!!!\"\ntags: [ok, \"???\"]\n---\n",
    )
    .unwrap();
    assert_eq!(p.article.category, None);
    assert_eq!(p.article.tags, ["ok"]);
    let messages: Vec<String> = p.problems.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        [
            "x.md:4:11: error: category \"!!!\" has no letter or digit to name its feed folder (category/<name>/); rename it",
            "x.md:5:7: error: tag \"???\" has no letter or digit to name its feed folder (tag/<name>/); rename it",
        ]
    );
}

#[test]
fn names_that_share_a_folder_but_not_a_spelling_are_reported_naming_both() {
    let (catalog, errors) = parse_many(
        &[
            (
                "c.md",
                "---\ntitle: C\ndate: 2024-01-01\ncategory: C\ntags: [Dev Ops]\n---\n",
            ),
            (
                "cpp.md",
                "---\ntitle: Cpp\ndate: 2024-02-01\ncategory: C++\ntags: [dev-ops, C#]\n---\n",
            ),
            (
                "c-again.md",
                "---\ntitle: C again\ndate: 2024-03-01\ncategory: c\ntags: [c]\n---\n",
            ),
        ],
        "/{slug}/",
    );
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        [
            "cpp.md:1:1: error: category \"C++\" and category \"C\" (in c.md) would share the feed folder category/c/; rename one of them (\"C++\" is left out of it)",
            "c-again.md:1:1: error: tag \"c\" and tag \"C#\" (in cpp.md) would share the feed folder tag/c/; rename one of them (\"c\" is left out of it)",
        ]
    );
    let cpp = catalog.by_slug("cpp").unwrap();
    assert_eq!(
        (cpp.category.as_deref(), cpp.tags.clone()),
        (None, vec!["dev-ops".to_string(), "C#".to_string()])
    );
    let again = catalog.by_slug("c-again").unwrap();
    assert_eq!(
        again.category.as_deref(),
        Some("c"),
        "same spelling as \"C\""
    );
}

#[test]
fn xml_safe_drops_exactly_the_characters_xml_forbids() {
    assert_eq!(xml_safe("a\tb\nc\rd"), "a\tb\nc\rd");
    assert_eq!(xml_safe("a\u{8}b\u{c}c\u{1f}"), "abc");
    assert_eq!(xml_safe("x\u{fffe}y\u{ffff}z"), "xyz");
    // Neighbours of U+FFFE/U+FFFF in UTF-8 (EF BF BD, EF BE BF) are kept.
    assert_eq!(xml_safe("\u{fffd}\u{ffbf}é"), "\u{fffd}\u{ffbf}é");
}

#[test]
fn sources_come_in_the_order_of_a_walk_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "a/y.md", "a-b/x.md", "a.md", "a b/z.md", "A/q.md", "a/b/c.md", "a/b.md", "ä/e.md",
        "a/ba.md",
    ] {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "x").unwrap();
    }
    let walked: Vec<PathBuf> = walkdir::WalkDir::new(dir.path())
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect();
    let (found, errors) = find_sources(dir.path());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found.len(), 9);
    assert_eq!(found, walked);
}

fn at(rfc3339: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap()
}

#[test]
fn jekylls_published_false_is_a_draft() {
    let a = parse(
        "_posts/2024-01-01-wip.md",
        "---\ntitle: WIP\npublished: false\n---\nx\n",
    )
    .unwrap();
    assert!(a.draft && !a.is_published(at("2030-01-01T00:00:00Z")));
    let a = parse(
        "_posts/2024-01-01-ok.md",
        "---\ntitle: OK\npublished: true\n---\nx\n",
    )
    .unwrap();
    assert!(!a.draft);
}

#[test]
fn hugos_publish_date_holds_an_article_back_and_its_expiry_date_takes_it_down() {
    let a = parse(
        "content/posts/later.md",
        "+++\ntitle = \"Later\"\ndate = 2024-01-06\npublishDate = 2099-01-01\n+++\nx\n",
    )
    .unwrap();
    assert_eq!(
        a.date,
        at("2099-01-01T00:00:00+01:00"),
        "published from its publishDate"
    );
    assert!(!a.is_published(at("2030-01-01T00:00:00Z")));
    let a = parse(
        "content/posts/only.md",
        "---\ntitle: Only\npublishdate: 2024-02-01\n---\nx\n",
    )
    .unwrap();
    assert_eq!(
        a.date,
        at("2024-02-01T00:00:00+01:00"),
        "the date when there is no other"
    );
    let a = parse(
        "content/posts/gone.md",
        "+++\ntitle = \"Gone\"\ndate = 2024-01-06\nexpiryDate = 2024-02-01\n+++\nx\n",
    )
    .unwrap();
    assert!(a.is_published(at("2024-01-31T00:00:00Z")));
    assert!(!a.is_published(at("2024-02-01T00:00:00Z")));
    let e = parse(
        "content/posts/bad.md",
        "---\ntitle: Bad\ndate: 2024-01-06\nexpiryDate: soon\n---\nx\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.col), (4, 13), "{e}");
}

#[test]
fn every_spelling_of_a_field_is_read_and_two_of_them_are_no_error() {
    let a = parse(
        "content/posts/a.md",
        "+++\ntitle = \"A\"\ndate = 2024-01-06\ndescription = \"SEO\"\nsummary = \"Feed\"\nupdated = 2024-02-01\nlastmod = 2024-03-01\n+++\nx\n",
    )
    .unwrap();
    assert_eq!(a.summary, "Feed");
    assert_eq!(a.updated, at("2024-02-01T00:00:00+01:00"));
    let a = parse(
        "_posts/2024-01-06-b.md",
        "---\ntitle: B\ndescription: From SEO\nexcerpt: From the excerpt\nlast_modified_at: 2024-02-01\n---\nx\n",
    )
    .unwrap();
    assert_eq!(
        a.summary, "From SEO",
        "description first, as jekyll-feed reads it"
    );
    assert_eq!(a.updated, at("2024-02-01T00:00:00+01:00"));
}

#[test]
fn numbers_and_lists_where_text_is_meant_are_taken_as_written() {
    let a = parse(
        "_posts/2024-01-06-c.md",
        "---\ntitle: C\nslug: 2024\ntags: [python, 2020, 3.8, true]\ncategory: [Web, CSS]\nauthor: [Alice, Bob]\n---\nx\n",
    )
    .unwrap();
    assert_eq!(a.slug, "2024");
    assert_eq!(a.tags, ["python", "2020", "3.8", "true"]);
    assert_eq!(a.category.as_deref(), Some("Web"));
    assert_eq!(a.author.unwrap().name, "Alice");
}

#[test]
fn hidden_files_and_folders_are_no_articles() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(".blog");
    for path in [
        "_posts/2024-01-01-a.md",
        "_posts/.template.md",
        ".git/x.md",
        "_posts/.drafts/b.md",
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "---\ntitle: T\n---\n").unwrap();
    }
    let (paths, errors) = find_sources(&root);
    assert_eq!(errors, vec![]);
    assert_eq!(
        paths,
        [root.join("_posts/2024-01-01-a.md")],
        "a hidden store folder itself is read"
    );
}

#[test]
fn a_summary_divider_in_the_body_ends_the_summary() {
    let a = parse(
        "content/posts/more.md",
        "---\ntitle: More\ndate: 2024-01-01\n---\nFirst part **bold** and [link](/x).\n\nSecond part.\n\n<!--more-->\n\nThe rest.\n",
    )
    .unwrap();
    assert_eq!(a.summary, "First part bold and link. Second part.");
    let a = parse(
        "_posts/2024-01-01-sep.md",
        "---\ntitle: Sep\nexcerpt_separator: <!-- excerpt -->\n---\nIntro one.\n\nIntro two.\n<!-- excerpt -->\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.summary, "Intro one. Intro two.");
    let a = parse(
        "_posts/2024-01-01-front.md",
        "---\ntitle: Front\nsummary: Given.\n---\nIntro.\n<!--more-->\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.summary, "Given.", "front matter's summary first");
    let a = parse(
        "_posts/2024-01-01-none.md",
        "---\ntitle: None\n---\nOnly.\n\nMore.\n",
    )
    .unwrap();
    assert_eq!(a.summary, "Only.", "else the first paragraph");
    let a = parse(
        "content/blog/zola.md",
        "+++\ntitle = \"Zola\"\ndate = 2024-01-01\n+++\nIntro.\n\n- one\n- two\n\n<!-- more -->\n\nBody.\n",
    )
    .unwrap();
    assert_eq!(
        a.summary, "Intro. one two",
        "Zola's <!-- more --> with spaces"
    );
}

#[test]
fn jekylls_categories_are_folders_of_the_permalink() {
    let a = parse(
        "_posts/2019-03-04-welcome.md",
        "---\ntitle: T\ncategories: jekyll update\npermalink: /:categories/:year/:i_month/:title:output_ext\n---\n",
    )
    .unwrap();
    assert_eq!(
        a.url,
        "https://example.com/blog/jekyll/update/2019/3/welcome.html"
    );
    let a = parse(
        "_posts/2019-03-04-none.md",
        "---\ntitle: T\npermalink: /:categories/:year/:title:output_ext\n---\n",
    )
    .unwrap();
    assert_eq!(
        a.url, "https://example.com/blog/2019/none.html",
        "no empty folder"
    );

    let base = url::Url::parse("https://example.com/").unwrap();
    let date = DateTime::parse_from_rfc3339("2019-03-04T10:00:00+01:00").unwrap();
    let jekyll_default = "/{categories}/{year}/{month}/{day}/{slug}.html";
    let welcome = Placeholders {
        slug: "welcome",
        slug_written: false,
        title: "Welcome to Jekyll!",
        date,
        category: Some("Jekyll"),
        categories: "jekyll/update",
        sections: &[],
    };
    assert_eq!(
        permalink(&base, jekyll_default, &welcome),
        "https://example.com/jekyll/update/2019/03/04/welcome.html"
    );
    let nocat = Placeholders {
        slug: "nocat",
        category: None,
        categories: "",
        ..welcome
    };
    assert_eq!(
        permalink(&base, jekyll_default, &nocat),
        "https://example.com/2019/03/04/nocat.html"
    );
    // Hugo's `:slug` is the written slug, else the title's; `:title` always the title's.
    assert_eq!(
        permalink(&base, "/posts/{slug_or_title}/{title}/", &welcome),
        "https://example.com/posts/welcome-to-jekyll/welcome-to-jekyll/"
    );
    let written = Placeholders {
        slug_written: true,
        ..welcome
    };
    assert_eq!(
        permalink(&base, "/posts/{slug_or_title}/", &written),
        "https://example.com/posts/welcome/"
    );
}

#[test]
fn a_link_to_a_missing_article_keeps_its_text() {
    let p = parse_full(
        "content/posts/x.md",
        "---\ntitle: X\ndate: 2024-01-01\n---\nSee [the other post]({{< relref \"nope.md\" >}}).\n",
    )
    .unwrap();
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert_eq!(p.article.html(), "<p>See the other post.</p>\n");
}

#[test]
fn published_is_jekylls_yes_or_no_or_hugos_publish_date() {
    let a = parse(
        "_posts/2024-01-01-both.md",
        "---\ntitle: Both\ndraft: false\npublished: false\n---\nx\n",
    )
    .unwrap();
    assert!(a.draft, "published: false wins");
    let a = parse(
        "content/posts/hugo.md",
        "---\ntitle: Hugo\ndate: 2024-01-01\npublished: 2099-01-01\n---\nx\n",
    )
    .unwrap();
    assert!(!a.draft);
    assert_eq!(
        a.date,
        at("2099-01-01T00:00:00+01:00"),
        "Hugo's published is its publishDate"
    );
}

#[test]
fn a_key_of_the_sites_own_named_expires_is_left_alone() {
    let a = parse(
        "content/posts/own.md",
        "---\ntitle: Own\ndate: 2024-01-01\nexpires: never\n---\nx\n",
    )
    .unwrap();
    assert_eq!(a.expires, None);
}

proptest::proptest! {
    /// The store is read in the order of a walk that visits each folder's entries by name: `Path`'s own order,
    /// component by component (the sort compares bytes instead, which is many times faster).
    #[test]
    fn sources_sort_as_paths_compare(
        // A long shared start (the store folder), then names as a walk gives them: never `.` or `..`.
        shared in "/store(/[a-z\\-_ é][a-z.\\-_ é]{0,12}){0,2}",
        a in "[a-z.\\-_ é]{0,3}(/[a-z\\-_ é][a-z.\\-_ é]{0,5}){0,3}",
        b in "[a-z.\\-_ é]{0,3}(/[a-z\\-_ é][a-z.\\-_ é]{0,5}){0,3}",
    ) {
        let (a, b) = (format!("{shared}{a}"), format!("{shared}{b}"));
        let (a, b) = (Path::new(&a), Path::new(&b));
        proptest::prop_assert_eq!(super::path_order(a, b), a.components().cmp(b.components()));
    }
}

#[test]
fn front_matter_keys_written_with_capitals_are_read_as_hugo_reads_them() {
    let a = parse(
        "content/entry/2014/02/28/232846.md",
        "+++\nTitle = \"Capitals\"\nDate = \"2014-02-28T23:28:46+09:00\"\nCategories = [\"Apps\"]\nTags = [\"tech\"]\n+++\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.title, "Capitals");
    assert_eq!(a.category.as_deref(), Some("Apps"));
    assert_eq!(a.tags, ["tech"]);
    assert_eq!(a.date.to_rfc3339(), "2014-02-28T23:28:46+09:00");
    let a = parse(
        "content/posts/eks.md",
        "---\nTitle: Yaml capitals\nDate: 2025-05-09\ntitle: lower wins\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.title, "lower wins", "the field's own spelling first");
}

#[test]
fn a_jekyll_post_without_a_title_is_titled_after_its_file_name_as_jekyll_titles_it() {
    let a = parse(
        "site/_posts/2015-02-26-introducing-jekyll-talk.markdown",
        "---\nlayout: post\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.title, "Introducing Jekyll Talk");
    let a = parse(
        "site/_posts/2012-11-18-hello.md",
        "---\ntitle:\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.title, "Hello", "an empty title too");
}

#[test]
fn jekyll_reads_a_zone_name_after_the_time() {
    for (written, rfc3339) in [
        ("2013-06-27 11:00:00 UTC", "2013-06-27T11:00:00+00:00"),
        ("2013-12-21 2:00:00 GMT", "2013-12-21T02:00:00+00:00"),
        ("2013-12-21 09:30 PST", "2013-12-21T09:30:00-08:00"),
    ] {
        let a = parse(
            "site/_posts/2013-06-27-zone.md",
            &format!("---\ntitle: Zone\ndate: {written}\n---\nBody.\n"),
        )
        .unwrap();
        assert_eq!(a.date.to_rfc3339(), rfc3339, "{written}");
    }
}

#[test]
fn jekyll_urls_take_the_date_in_the_site_zone_and_categories_lowercased_and_escaped() {
    // Europe/Berlin (parse's zone): 23:30 at -07:00 is 08:30 the next day there.
    let a = parse(
        "site/_posts/2013-05-06-released.md",
        "---\ntitle: R\ndate: 2013-05-06 23:30:00 -0700\npermalink: /news/:year/:month/:day/:title/\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.url, "https://example.com/blog/news/2013/05/07/released/");
    let a = parse(
        "site/_posts/2013-05-06-notice.md",
        "---\ntitle: N\ndate: 2013-05-06\ncategories: [Post Formats, Ünïcode]\npermalink: /:categories/:title/\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(
        a.url,
        "https://example.com/blog/post%20formats/%C3%BCn%C3%AFcode/notice/"
    );
    let a = parse(
        "content/posts/notice.md",
        "---\ntitle: N\ndate: 2013-05-06T23:30:00-07:00\ncategories: [Post Formats]\nurl: /x/:year/:month/:day/:categories/\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(
        a.url, "https://example.com/blog/x/2013/05/06/post-formats/",
        "elsewhere slugs and the date as written"
    );
}

#[test]
fn zola_paths_end_in_a_slash_and_may_start_with_a_section() {
    let a = parse(
        "content/1.94.1-release.md",
        "+++\ntitle = \"Rust 1.94.1\"\npath = \"2026/03/26/1.94.1-release\"\n+++\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.url, "https://example.com/blog/2026/03/26/1.94.1-release/");
    let a = parse(
        "content/inside-rust/retro/index.md",
        "+++\ntitle = \"Retro\"\npath = \"inside-rust/2026/01/05/retro\"\n+++\nBody.\n",
    )
    .unwrap();
    assert_eq!(a.date.format("%Y-%m-%d").to_string(), "2026-01-05");
    assert_eq!(
        a.url,
        "https://example.com/blog/inside-rust/2026/01/05/retro/"
    );
}

/// `parse` with the site's generator known.
fn parse_as(path: &str, text: &str, generator: Generator, hugo_name_dates: bool) -> Article {
    let base = url::Url::parse("https://example.com/").unwrap();
    let authors = authors();
    let ctx = ParseContext {
        title: "Blog",
        base_url: &base,
        permalink: "/{sections}/{slug}/",
        store: Path::new("content"),
        timezone: chrono_tz::UTC,
        reading_wpm: 200,
        authors: &authors,
        default_author: None,
        language: "en",
        keep_bodies: true,
        generator,
        hugo_name_dates,
        jekyll_config: &Default::default(),
    };
    let parsed = parse_article(Path::new(path), text, &ctx).unwrap();
    assert_eq!(parsed.problems, vec![], "{path}: unexpected problems");
    parsed.article
}

#[test]
fn a_hugo_site_keeps_a_dated_file_name_whole_and_reads_its_shortcodes() {
    let text =
        "---\ntitle: Dated\ndate: 2020-01-01\n---\n{{< figure src=\"a.png\" caption=\"A\" >}}\n";
    let a = parse_as(
        "content/posts/2020-01-01-dated.md",
        text,
        Generator::Hugo,
        false,
    );
    assert_eq!(a.url, "https://example.com/posts/2020-01-01-dated/");
    let body = a.body.unwrap();
    assert!(body.contains("<figure"), "{body}");
    let a = parse_as(
        "content/posts/2020-01-01-dated.md",
        text,
        Generator::Hugo,
        true,
    );
    assert_eq!(
        a.url, "https://example.com/posts/dated/",
        "[frontmatter] date = [\":filename\", …] drops it"
    );
}

#[test]
fn a_zola_site_slugifies_file_and_folder_names() {
    let a = parse_as(
        "content/News Items/2025-04-24-bevy-0.16/index.md",
        "+++\ntitle = \"Bevy 0.16\"\n+++\nBody.\n",
        Generator::Zola,
        false,
    );
    assert_eq!(a.url, "https://example.com/news-items/bevy-0-16/");
}

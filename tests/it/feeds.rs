//! `tidings build` and `tidings check` on fixture stores, with the output read back by independent parsers
//! (feed-rs, Python feedparser) and checked by the strict validators in ../shared/validators (expat, jing with
//! the RFC 4287 RELAX NG grammar, the absolute-URL policy, JSON Feed 1.1 structure).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::{TestEnv, age_files, project_root, rewritten_files, run_checker, shared};

/// Every feed file under `public/`.
pub(crate) fn feed_files(env: &TestEnv) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(env.path().join("public"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            matches!(name, "rss.xml" | "atom.xml" | "feed.json")
        })
        .collect();
    files.sort();
    files
}

fn paths_as_args(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Runs Python feedparser over the files; returns its reading per path.
pub(crate) fn feedparser(paths: &[PathBuf]) -> BTreeMap<String, Value> {
    let script = project_root().join("tests/tools/feedparser_dump.py");
    let mut args = vec![script.display().to_string()];
    args.extend(paths_as_args(paths));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_checker("/usr/bin/python3", &args);
    let parsed: Vec<Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("feedparser output: {e}: {out}"));
    parsed
        .into_iter()
        .map(|v| (v["path"].as_str().unwrap().to_string(), v))
        .collect()
}

/// Every check that any feed must pass, whatever the store.
pub(crate) fn assert_every_feed_valid(env: &TestEnv) {
    let files = feed_files(env);
    assert!(!files.is_empty(), "no feeds were written");
    // ../shared/validators/validate-feed: expat, jing, feedparser, abs-urls, JSON Feed 1.1.
    let validator = shared().join("validators/validate-feed");
    let mut args = vec!["--quiet".to_string()];
    args.extend(paths_as_args(&files));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_checker(validator.to_str().unwrap(), &args);
    // jing directly, so a missing jing fails here rather than being reported as "could not run".
    let rnc = shared().join("validators/atom.rnc");
    for atom in files.iter().filter(|p| p.ends_with("atom.xml")) {
        run_checker(
            "jing",
            &["-c", rnc.to_str().unwrap(), atom.to_str().unwrap()],
        );
    }
    // feedparser: bozo 0 on every XML feed.
    let xml: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.extension().unwrap() == "xml")
        .cloned()
        .collect();
    let readings = feedparser(&xml);
    assert_eq!(readings.len(), xml.len(), "feedparser read every XML feed");
    for (path, reading) in readings {
        assert_eq!(reading["bozo"], 0, "{path}: {}", reading["bozo_exception"]);
    }
    // feed-rs: every feed parses, every entry has a title, an absolute link and a date.
    for path in &files {
        let feed = feed_rs::parser::parse(std::fs::read(path).unwrap().as_slice())
            .unwrap_or_else(|e| panic!("feed-rs cannot parse {}: {e}", path.display()));
        for entry in &feed.entries {
            assert!(
                entry.title.is_some(),
                "{}: entry without title",
                path.display()
            );
            assert!(
                entry.links.iter().all(|l| l.href.starts_with("https://")),
                "{}",
                path.display()
            );
            assert!(
                entry.published.is_some(),
                "{}: entry {} without date",
                path.display(),
                entry.id
            );
        }
    }
}

fn titles_in(reading: &Value) -> Vec<String> {
    reading["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sample_site_builds_valid_feeds_everywhere() {
    let env = TestEnv::sample();
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let site = feedparser(&[env.public("rss.xml"), env.public("atom.xml")]);
    assert_eq!(site.len(), 2);
    for reading in site.values() {
        let titles = titles_in(reading);
        assert_eq!(titles.len(), 14, "14 published sample articles: {titles:?}");
        assert!(
            titles.contains(&"Feeds & Email: Why <pre> Tags Break Digests".to_string()),
            "{titles:?}"
        );
        assert!(
            !titles.iter().any(|t| t.contains("Estimates")),
            "the draft is not published"
        );
    }
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 14);
    // Per-category feeds, including the configured category that has no article yet.
    for category in [
        "career",
        "engineering",
        "operations",
        "tools",
        "writing",
        "announcements",
    ] {
        assert!(
            env.public(&format!("category/{category}/atom.xml"))
                .is_file(),
            "{category}"
        );
    }
    assert!(env.public("feed.xsl").is_file());
}

/// The project's live sample (config.toml and data/ as a user may have changed them) builds, passes `check` and
/// every feed it writes validates. Nothing here counts articles or names one: that is the frozen sample's job
/// (tests/fixtures/sample), so adding an article to data/ to try tidings breaks no test.
#[test]
fn the_live_sample_site_builds_checks_clean_and_every_feed_validates() {
    let env = TestEnv::live_sample();
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let out = env.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "check on the live sample:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn relative_urls_in_content_become_absolute() {
    let env = TestEnv::sample();
    env.run_ok(&["build"]);
    let atom =
        feed_rs::parser::parse(std::fs::read(env.public("atom.xml")).unwrap().as_slice()).unwrap();
    let entry = atom
        .entries
        .iter()
        .find(|e| {
            e.title
                .as_ref()
                .unwrap()
                .content
                .starts_with("Feeds & Email")
        })
        .unwrap();
    let content = entry.content.as_ref().unwrap().body.as_ref().unwrap();
    assert!(
        content.contains("srcset=\"https://blog.example.com/images/digest-layout.svg 1x"),
        "{content}"
    );
    assert!(!content.contains("src=\"/"), "{content}");
    let keeping = std::fs::read_to_string(env.public("rss.xml")).unwrap();
    assert!(
        keeping.contains(
            "href=\"https://blog.example.com/posts/shell-aliases-that-earn-their-keep/\""
        )
    );
}

#[test]
fn second_build_with_no_change_rewrites_nothing() {
    let env = TestEnv::sample();
    env.run_ok(&["build"]);
    let public = env.path().join("public");
    let files = age_files(&public);
    for expected in [
        "rss.xml",
        "atom.xml",
        "feed.json",
        "feed.xsl",
        "related.json",
    ] {
        assert!(files.iter().any(|f| f == expected), "{expected}: {files:?}");
    }
    let bytes_before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(public.join(f)).unwrap())
        .collect();
    env.run_ok(&["build"]);
    assert_eq!(
        rewritten_files(&public),
        Vec::<String>::new(),
        "no file was touched"
    );
    let bytes_after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(public.join(f)).unwrap())
        .collect();
    assert_eq!(bytes_before, bytes_after);
}

#[test]
fn a_changed_article_rewrites_only_the_feeds_it_is_in() {
    let env = TestEnv::new("zola", "[feeds]\nformats = [\"atom\"]\n");
    env.write_article(
        "content/blog/elsewhere.md",
        "+++\ntitle = \"Elsewhere\"\ndate = 2024-04-01\n[taxonomies]\ncategories = [\"Tools\"]\n+++\nOther.\n",
    );
    env.run_ok(&["build"]);
    let public = env.path().join("public");
    let files = age_files(&public);
    for feed in [
        "atom.xml",
        "category/engineering/atom.xml",
        "category/tools/atom.xml",
    ] {
        assert!(files.iter().any(|f| f == feed), "{feed}: {files:?}");
    }
    let path = env.path().join("articles/content/blog/second-zola.md");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("A post with"));
    std::fs::write(&path, text.replace("A post with", "An edited post with")).unwrap();
    env.run_ok(&["build"]);
    let feeds: Vec<String> = rewritten_files(&public)
        .into_iter()
        .filter(|f| f.ends_with("atom.xml"))
        .collect();
    assert_eq!(
        feeds,
        ["atom.xml", "category/engineering/atom.xml"],
        "the site feed and its category's, no other feed"
    );
}

#[test]
fn jekyll_store_publishes_with_dates_and_slugs_from_file_names() {
    let env = TestEnv::new("jekyll", "");
    let config = std::fs::read_to_string(env.path().join("config.toml"))
        .unwrap()
        .replace(
            "articles = \"articles\"",
            "articles = \"articles\"\npermalink = \"/{year}/{month}/{day}/{slug}.html\"",
        );
    std::fs::write(env.path().join("config.toml"), config).unwrap();
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "the draft is left out");
    assert_eq!(
        items[0]["url"],
        "https://example.com/blog/2024/02/10/second-post.html"
    );
    assert_eq!(items[0]["date_published"], "2024-02-10T14:30:00+01:00");
    assert_eq!(items[0]["authors"][0]["name"], "Ann Author");
    assert_eq!(
        items[1]["url"],
        "https://example.com/blog/2024/01/05/hello-jekyll.html"
    );
    assert_eq!(items[1]["date_published"], "2024-01-05T00:00:00+01:00");
    assert_eq!(items[1]["summary"], "A Jekyll post keeps its excerpt.");
    assert!(
        env.public("category/announcements/rss.xml").is_file(),
        "first of `categories`"
    );
    let content = items[1]["content_html"].as_str().unwrap();
    assert!(
        content.contains("src=\"https://example.com/blog/2024/01/05/chart.png\""),
        "{content}"
    );
}

#[test]
fn hugo_store_publishes_bundles_and_skips_section_pages_and_drafts() {
    let env = TestEnv::new("hugo", "");
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let items = json["items"].as_array().unwrap();
    let urls: Vec<&str> = items.iter().map(|i| i["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        vec![
            "https://example.com/blog/posts/bundle-post/",
            "https://example.com/blog/posts/plain-post/"
        ]
    );
    assert_eq!(
        items[1]["date_modified"], "2024-04-20T12:00:00+02:00",
        "lastmod"
    );
    assert_eq!(items[1]["summary"], "Hugo calls the summary a description.");
    let bundle = items[0]["content_html"].as_str().unwrap();
    assert!(
        bundle.contains("https://example.com/blog/posts/bundle-post/images/diagram@2x.png 2x"),
        "{bundle}"
    );
    let tools: Value = serde_json::from_str(&env.read_public("category/tools/feed.json")).unwrap();
    assert_eq!(tools["items"].as_array().unwrap().len(), 2);
}

#[test]
fn zola_store_publishes_toml_front_matter_and_taxonomies() {
    let env = TestEnv::new("zola", "");
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["url"],
        "https://example.com/blog/posts/custom-slug/"
    );
    assert_eq!(items[1]["date_modified"], "2024-05-03T10:00:00+00:00");
    assert_eq!(
        items[1]["tags"],
        serde_json::json!(["Engineering", "zola", "rust"])
    );
    assert!(
        items[1]["content_html"]
            .as_str()
            .unwrap()
            .contains("<table>")
    );
    assert!(env.public("category/engineering/atom.xml").is_file());
}

/// The bad-input cases: (file, contents, expected message fragment with position).
fn bad_inputs() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "broken-yaml.md",
            b"---\ntitle: Fine\ntags: [a, b\ndate: 2024-01-01\n---\nbody".to_vec(),
            "broken-yaml.md:4:",
        ),
        (
            "no-title.md",
            b"---\ndate: 2024-01-01\n---\nbody".to_vec(),
            "no-title.md:2:1: error: missing title",
        ),
        (
            "bad-date.md",
            b"---\ntitle: T\ndate: 2024-13-45\n---\n".to_vec(),
            "bad-date.md:3:7: error: date \"2024-13-45\" is not a date",
        ),
        (
            "latin1.md",
            b"---\ntitle: Caf\xe9\ndate: 2024-01-01\n---\n".to_vec(),
            "latin1.md:2:11: error: invalid UTF-8",
        ),
        (
            "binary.md",
            vec![0x89, b'P', b'N', b'G', 0, 0, 0, 13],
            "binary.md:1:5: error: binary file",
        ),
        (
            "unclosed.md",
            b"---\ntitle: T\ndate: 2024-01-01\nbody".to_vec(),
            "unclosed.md:1:1: error: front matter is never closed",
        ),
        (
            // Dated by its name, so meant as a post (undated, it would be no article: a note).
            "2024-01-03-no-front-matter.md",
            b"# Just a heading\n".to_vec(),
            "2024-01-03-no-front-matter.md:1:1: error: no front matter",
        ),
        (
            "bad-toml.md",
            b"+++\ntitle = \"T\"\ndate = \n+++\n".to_vec(),
            "bad-toml.md:3:",
        ),
    ]
}

fn write_good_articles(env: &TestEnv) {
    env.write_article(
        "good-one.md",
        "---\ntitle: Good one\ndate: 2024-01-01\ncategory: Ops\n---\nFine.",
    );
    env.write_article(
        "good-two.md",
        "---\ntitle: Good two\ndate: 2024-01-02\n---\nFine too.",
    );
}

#[test]
fn bad_input_is_reported_with_position_and_the_rest_is_published() {
    let env = TestEnv::empty();
    env.write_config("");
    write_good_articles(&env);
    for (name, bytes, _) in bad_inputs() {
        env.write_article(name, bytes);
    }
    // A 50 MB file is refused by size without being read.
    let big = std::fs::File::create(env.path().join("articles/huge.md")).unwrap();
    big.set_len(50 * 1024 * 1024).unwrap();

    // (How fast the build refuses it is a benchmark's question, not a test's.)
    let stderr = env.run_ok(&["build"]);
    for (_, _, expected) in bad_inputs() {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("huge.md:1:1: error: file is 52428800 bytes, over the limit"),
        "{stderr}"
    );
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let titles: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["Good two", "Good one"]);
    assert_every_feed_valid(&env);

    // `check` lists every problem, on stdout, and exits 1.
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), bad_inputs().len() + 1, "{stdout}");
    for line in stdout.lines() {
        assert!(line.contains(": error: "), "{line}");
    }
}

#[test]
fn duplicate_slugs_are_reported_naming_both_files() {
    let env = TestEnv::empty();
    env.write_config("");
    env.write_article("a/post.md", "---\ntitle: A\ndate: 2024-01-01\n---\n");
    env.write_article("b/post.md", "---\ntitle: B\ndate: 2024-01-02\n---\n");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("b/post.md:1:1: error: slug \"post\" is already used by"),
        "{stdout}"
    );
    assert!(stdout.contains("a/post.md"), "{stdout}");
}

#[test]
fn hostile_but_valid_input_is_published_safely() {
    let env = TestEnv::empty();
    env.write_config("");
    env.write_article(
        "hostile.md",
        "---\ntitle: \"<script>alert('x')</script> & ]]> \\u0008bell\\r\\nBcc: victim@example.com\"\n\
         summary: \"<b>bold</b> ]]> \\u000c\"\ndate: 2024-01-01\ncategory: \"<i>Cat</i>\"\n---\n\
         <script>evil()</script> ]]> text\u{b} with a vertical tab\n",
    );
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let readings = feedparser(&[env.public("rss.xml"), env.public("atom.xml")]);
    assert_eq!(readings.len(), 2);
    for (path, reading) in &readings {
        assert_eq!(
            titles_in(reading),
            vec!["<script>alert('x')</script> & ]]> bell Bcc: victim@example.com".to_string()]
        );
        assert_eq!(
            reading["entries"][0]["summary_shown"], "<b>bold</b> ]]>",
            "{path}: a plain-text summary is shown as written, in RSS too"
        );
    }
    let rss = env.read_public("rss.xml");
    assert!(
        !rss.contains("<script>alert"),
        "titles are escaped, never raw markup:\n{rss}"
    );
}

/// Regression: RSS descriptions carried the plain-text summary unescaped, so feedparser (reading them as HTML,
/// as readers do) showed `Use Vec or Option<&str> — not  & friends.`: what looked like tags was gone.
#[test]
fn summaries_and_the_site_description_read_back_as_written_in_every_format() {
    const SUMMARY: &str =
        "Use Vec<String> or Option<&str> \u{2014} not <script>alert(1)</script> & friends.";
    const DESCRIPTION: &str = "Notes on Vec<T> & ]]> \"quotes\"";
    let env = TestEnv::empty();
    env.write_config("");
    let config = env.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "description = \"A test\"",
        r#"description = "Notes on Vec<T> & ]]> \"quotes\"""#,
    );
    std::fs::write(&config, text).unwrap();
    env.write_article(
        "generics.md",
        "---\ntitle: Rust generics\ndate: 2024-01-01\n---\n\
         Use `Vec<String>` or `Option<&str>` &mdash; not `<script>alert(1)</script>` &amp; friends.\n",
    );
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let readings = feedparser(&[env.public("rss.xml"), env.public("atom.xml")]);
    assert_eq!(readings.len(), 2);
    for (path, reading) in &readings {
        assert_eq!(reading["subtitle_shown"], DESCRIPTION, "{path}");
        let entries = reading["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{path}");
        assert_eq!(entries[0]["summary_shown"], SUMMARY, "{path}");
    }
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    assert_eq!(json["description"], DESCRIPTION);
    assert_eq!(json["items"][0]["summary"], SUMMARY);
}

/// Regression: a front-matter summary written in Markdown (Hugo renders one) showed its `**` and `[..](..)` as
/// text in every format. HTML fields now carry its HTML (sanitised, links absolute), text fields its text, in a
/// full-content feed and a summary-only one alike; HTML written in it is still shown as text, never run.
#[test]
fn a_summary_written_in_markdown_reads_as_formatted_text_in_every_format() {
    for full_content in [true, false] {
        let env = TestEnv::empty();
        env.write_config(&format!("[feeds]\nfull_content = {full_content}\n"));
        env.write_article(
            "serde.md",
            "---\ntitle: Serde\ndate: 2024-01-01\nsummary: \"Using **Rust** and [serde](https://serde.rs), \
             [the guide](../guide/) & <script>alert(1)</script> [x](javascript:alert(2))\"\n---\nBody.\n",
        );
        env.run_ok(&["build"]);
        assert_every_feed_valid(&env);
        const SHOWN: &str = "Using Rust and serde, the guide & <script>alert(1)</script> x";
        let readings = feedparser(&[env.public("rss.xml"), env.public("atom.xml")]);
        assert_eq!(readings.len(), 2);
        for (path, reading) in &readings {
            let entries = reading["entries"].as_array().unwrap();
            assert_eq!(entries.len(), 1, "{path}");
            assert_eq!(entries[0]["summary_shown"], SHOWN, "{path}");
            let html = entries[0]["summary"].as_str().unwrap();
            for part in [
                "<strong>Rust</strong>",
                "<a href=\"https://serde.rs/\">serde</a>",
                "<a href=\"https://example.com/blog/posts/guide/\">the guide</a>",
                "&lt;script&gt;",
            ] {
                assert!(html.contains(part), "{path}: {part} missing from {html}");
            }
            assert!(!html.contains("javascript"), "{path}: {html}");
        }
        let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
        let item = &json["items"][0];
        assert_eq!(item["summary"], SHOWN, "JSON Feed's summary is plain text");
        if full_content {
            assert!(item["content_html"].as_str().unwrap().contains("Body."));
        } else {
            let html = item["content_html"].as_str().unwrap();
            assert!(html.contains("<strong>Rust</strong>"), "{html}");
            assert!(item.get("content_text").is_none(), "{item}");
        }
        let atom = env.read_public("atom.xml");
        assert!(atom.contains("<summary type=\"html\">"), "{atom}");
        assert!(!atom.contains("**Rust**"), "{atom}");
    }
}

/// Regression: `tags: [rust, Rust, rust]` put the article three times in `tag/rust/`, and its JSON Feed failed
/// validation (one id three times).
#[test]
fn tags_spelled_three_ways_give_one_tag_feed_with_the_article_once() {
    let env = TestEnv::empty();
    env.write_config("[feeds]\nper_tag = true\n");
    env.write_article(
        "rusty.md",
        "---\ntitle: Rusty\ndate: 2024-01-01\ntags: [rust, Rust, rust]\n---\nText.",
    );
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    let tags: Vec<String> = std::fs::read_dir(env.public("tag"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(tags, ["rust"]);
    let json: Value = serde_json::from_str(&env.read_public("tag/rust/feed.json")).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 1);
    assert_eq!(json["items"][0]["tags"], serde_json::json!(["rust"]));
}

/// An empty store's feeds are valid and dated when the store last changed, not 1970 and not the clock (so a
/// rebuild gives the same bytes).
#[test]
fn empty_store_still_writes_valid_empty_feeds() {
    let env = TestEnv::empty();
    env.write_config("[feeds]\ncategories = [\"News\"]\n");
    let changed = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_323_045);
    std::fs::File::open(env.path().join("articles"))
        .unwrap()
        .set_modified(changed)
        .unwrap();
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    for feed in ["atom.xml", "category/news/atom.xml"] {
        let atom = env.read_public(feed);
        assert!(
            atom.contains("<updated>2026-01-02T03:04:05+00:00</updated>"),
            "{feed}: {atom}"
        );
    }
}

#[test]
fn environment_overrides_config_keys() {
    let env = TestEnv::new("zola", "");
    let out = env.run_with_env(
        &["build"],
        &[
            ("TIDINGS_FEEDS_LIMIT", "1"),
            ("TIDINGS_FEEDS_OUTPUT", "elsewhere"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(env.path().join("elsewhere/feed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 1);
}

#[test]
fn a_config_error_names_the_key_and_exits_2() {
    let env = TestEnv::empty();
    env.write_config("[feeds]\nlimit = \"lots\"\n");
    let out = env.run(&["build"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("feeds.limit"), "{stderr}");
    assert!(!env.path().join("public").exists(), "nothing is written");
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let env = TestEnv::empty();
    let out = env.run(&["build"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config.toml: no such config file; pass --config PATH"),
        "{stderr}"
    );
    assert_eq!(
        stderr.to_lowercase().matches("no such").count(),
        1,
        "said once: {stderr}"
    );
}

#[test]
fn item_ids_are_stable_across_rebuilds_and_edits() {
    let env = TestEnv::new("hugo", "");
    env.run_ok(&["build"]);
    let ids = |env: &TestEnv| -> Vec<String> {
        let reading = feedparser(&[env.public("atom.xml")]);
        reading.values().next().unwrap()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = ids(&env);
    assert_eq!(first.len(), 2, "{first:?}");
    let path = env.path().join("articles/content/posts/plain-post.md");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("A Hugo post"));
    std::fs::write(&path, text.replace("A Hugo post", "A Hugo post, retitled")).unwrap();
    env.run_ok(&["build"]);
    assert_eq!(ids(&env), first);
}

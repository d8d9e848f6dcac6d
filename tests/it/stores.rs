//! Real blogs' content folders and the bad input found in them: each case builds the store with the real binary,
//! asserts the message (with its position) and that every other article is still published, and validates every
//! feed written.

use serde_json::Value;

use crate::browser::serve;
use crate::feeds::{assert_every_feed_valid, feed_files};
use crate::support::{TestEnv, age_files, chromium, elements, rewritten_files};

/// The site feed's items as (title, date_published, url).
fn items(env: &TestEnv) -> Vec<(String, String, String)> {
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap().to_string(),
                i["date_published"].as_str().unwrap().to_string(),
                i["url"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn titles(env: &TestEnv) -> Vec<String> {
    items(env).into_iter().map(|(t, _, _)| t).collect()
}

/// Runs `check`; asserts it exits 1 and returns its stdout lines.
fn check_problems(env: &TestEnv) -> Vec<String> {
    let out = env.run(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "check: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

fn good_article(env: &TestEnv) {
    env.write_article(
        "good.md",
        "---\ntitle: Good\ndate: 2024-01-02\n---\nFine.\n",
    );
}

/// Regression: an article dated in a day Samoa skipped panicked every command.
#[test]
fn a_date_inside_a_time_zone_gap_is_published_at_the_next_valid_instant() {
    for (zone, written, expected) in [
        ("Pacific/Apia", "2011-12-30", "2011-12-31T00:00:00+14:00"),
        (
            "Antarctica/Troll",
            "2024-03-31 01:30",
            "2024-03-31T03:00:00+02:00",
        ),
    ] {
        let env = TestEnv::empty();
        env.write_config("");
        good_article(&env);
        env.write_article(
            "gap.md",
            format!("---\ntitle: In the gap\ndate: {written}\n---\nText.\n"),
        );
        let out = env.run_with_env(&["build"], &[("TIDINGS_SITE_TIMEZONE", zone)]);
        assert!(
            out.status.success(),
            "{zone}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let items = items(&env);
        assert_eq!(items.len(), 2, "{zone}: {items:?}");
        assert!(items.iter().any(|i| i.0 == "Good"), "{items:?}");
        let gap = items.iter().find(|i| i.0 == "In the gap").unwrap();
        assert_eq!(gap.1, expected, "{zone}");
        assert_every_feed_valid(&env);
    }
}

/// Regression: 400 KB of nested YAML front matter took 77 s to parse.
#[test]
fn front_matter_over_the_limit_is_refused_and_the_rest_publish() {
    let env = TestEnv::empty();
    env.write_config("");
    good_article(&env);
    let nested = "  - [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]\n".repeat(12_000);
    env.write_article(
        "nested.md",
        format!("---\ntitle: Nested\ndate: 2024-01-01\nx:\n{nested}---\nbody\n"),
    );
    // Under the size limit, but nested so deep that the YAML scanner would take seconds.
    env.write_article(
        "deep.md",
        format!(
            "---\ntitle: Deep\ndate: 2024-01-01\nx: {}{}\n---\nbody\n",
            "[".repeat(30_000),
            "]".repeat(30_000)
        ),
    );
    let stderr = env.run_ok(&["build"]);
    assert!(
        stderr.contains("nested.md:1729:1: error: front matter is longer than 65536 bytes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("deep.md:4:132: error: front matter nests more than 128 brackets deep"),
        "{stderr}"
    );
    assert_eq!(titles(&env), ["Good"]);
    assert_every_feed_valid(&env);
}

/// Regression: year 0000 and control characters in an `id:` made feeds that readers reject.
#[test]
fn what_would_make_a_feed_invalid_is_refused_by_check_and_the_rest_publish() {
    let env = TestEnv::empty();
    env.write_config("");
    good_article(&env);
    env.write_article(
        "year-zero.md",
        "---\ntitle: Year zero\ndate: 0000-01-01\n---\nx\n",
    );
    env.write_article(
        "control-id.md",
        "---\ntitle: Control id\ndate: 2024-01-01\nid: \"tag:example.com,2024:\\u0008\"\n---\nx\n",
    );
    env.write_article(
        "bad-author.md",
        "---\ntitle: Bad author\ndate: 2024-01-01\nauthor:\n  name: Eve\n  email: \"eve@exa\\u0007mple.com\"\n  url: \"javascript:alert(1)\"\n---\nx\n",
    );
    let stderr = env.run_ok(&["build"]);
    let expected = [
        "bad-author.md:4:8: error: author email: \"eve@exa\u{7}mple.com\" is not an email address",
        "bad-author.md:4:8: error: author url: \"javascript:alert(1)\" is not an http(s) URL",
        "control-id.md:4:5: error: id \"tag:example.com,2024:\\u{8}\" contains control characters",
        "year-zero.md:3:7: error: date 0000-01-01 is out of range; feeds need a year from 1000 to 9999",
    ];
    for e in expected {
        assert!(stderr.contains(e), "{e} missing from:\n{stderr}");
    }
    // The bad author's article is published without the bad address and link; the others are left out.
    assert_eq!(titles(&env), ["Good", "Bad author"]);
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    assert_eq!(
        json["items"][1]["authors"],
        serde_json::json!([{"name": "Eve"}])
    );
    assert_every_feed_valid(&env);
    let problems = check_problems(&env);
    assert_eq!(problems.len(), expected.len(), "{problems:?}");
    for (line, e) in problems.iter().zip(expected) {
        assert!(
            line.ends_with(e.split_once(".md").unwrap().1) || line.contains(e),
            "{line} vs {e}"
        );
    }
}

/// Regression: a typo in TIDINGS_SITE_ARTICLES (or an unmounted disk) published empty feeds over the real ones and
/// used up the digest tick, with exit 0.
#[test]
fn a_missing_store_fails_build_and_run_once_with_exit_2_and_touches_nothing() {
    let env = TestEnv::sample();
    env.run_ok(&["subscribers", "import", "data/subscribers.csv"]);
    env.run_ok(&["build"]);
    let public = env.path().join("public");
    let files = age_files(&public);
    assert!(files.len() > 10, "{files:?}");
    let missing = env.path().join("data/artciles");
    let vars = [("TIDINGS_SITE_ARTICLES", missing.to_str().unwrap())];
    for args in [
        &["build"][..],
        &["run", "--once", "--now", "2026-11-30T09:00:00+01:00"][..],
    ] {
        let out = env.run_with_env(args, &vars);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}: the article store does not exist; check [site] articles",
                missing.display()
            )),
            "{stderr}"
        );
        assert_eq!(rewritten_files(&public), Vec::<String>::new(), "{args:?}");
    }
    assert!(
        !env.path().join("outbox").exists(),
        "no digest was sent from an empty store"
    );
    // The tick was not used up: with the store back, it is sent.
    let out = env.run(&["run", "--once", "--now", "2026-11-30T09:00:00+01:00"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(env.path().join("outbox"))
            .unwrap()
            .count(),
        6
    );
}

/// A build killed half-way must not leave a mix of old and new files nor its temporary files: the next build
/// publishes whole and removes them.
#[test]
fn a_build_is_published_in_one_switch_and_leftovers_of_a_killed_one_are_removed() {
    let env = TestEnv::sample();
    env.run_ok(&["build"]);
    let public = env.path().join("public");
    // What a build killed before this release's staging left: temporary files beside the feeds.
    std::fs::write(public.join(".tidings-Xy12ab"), "<rss><chan").unwrap();
    std::fs::write(public.join("category/career/.tidings-Q9"), "{").unwrap();
    // And what a killed staged build leaves: its staging folder (pid 0 never runs a build).
    let stage = env.path().join(".public.tidings-stage-0");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::write(stage.join("rss.xml"), "half").unwrap();
    std::fs::write(
        env.path().join("data/articles/a-new-one.md"),
        "---\ntitle: A new one\ndate: 2026-11-20\ncategory: Career\n---\nNew.\n",
    )
    .unwrap();
    env.run_ok(&["build"]);
    let leftovers: Vec<String> = walkdir::WalkDir::new(env.path())
        .into_iter()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tidings-") || n.contains("tidings-stage"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
    assert!(env.read_public("rss.xml").contains("A new one"));
    assert!(
        env.read_public("category/career/rss.xml")
            .contains("A new one")
    );
    assert_every_feed_valid(&env);
}

/// Regression: a category with no article yet had `updated` 1970, and its page in a browser was blank.
#[test]
fn an_empty_feed_is_dated_by_the_newest_article_and_its_page_says_no_articles_yet() {
    let env = TestEnv::empty();
    env.write_config("[feeds]\ncategories = [\"News\"]\n");
    good_article(&env);
    env.write_article(
        "older.md",
        "---\ntitle: Older\ndate: 2023-05-06T07:08:09Z\n---\nOld.\n",
    );
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    assert_eq!(titles(&env), ["Good", "Older"]);
    let atom = env.read_public("category/news/atom.xml");
    assert!(
        atom.contains("<updated>2024-01-02T00:00:00+01:00</updated>") && !atom.contains("<entry>"),
        "{atom}"
    );
    let rss = env.read_public("category/news/rss.xml");
    assert!(
        rss.contains("<lastBuildDate>Tue, 02 Jan 2024 00:00:00 +0100</lastBuildDate>"),
        "{rss}"
    );
    // The site lives under /blog/ (its base URL), and so does the stylesheet the feeds point to.
    let site = env.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::os::unix::fs::symlink(env.path().join("public"), site.join("blog")).unwrap();
    let base = format!("{}/blog", serve(site));
    for feed in ["category/news/rss.xml", "category/news/atom.xml"] {
        let dom = chromium(&["--dump-dom", &format!("{base}/{feed}")]);
        let paragraphs: Vec<String> = elements(&dom, "p").into_iter().map(|p| p.text).collect();
        assert!(
            paragraphs.iter().any(|p| p.starts_with("No articles yet.")),
            "{feed}: {paragraphs:?}"
        );
        assert_eq!(elements(&dom, "article").len(), 0, "{feed}");
    }
    // A feed with articles does not say so.
    let dom = chromium(&["--dump-dom", &format!("{base}/atom.xml")]);
    assert_eq!(elements(&dom, "article").len(), 2);
    assert!(!dom.contains("No articles yet"));
}

/// Regression: a 9 MB article made a feed of 9 MB that readers refuse.
#[test]
fn a_huge_article_is_cut_in_feeds_and_links_to_the_rest() {
    let env = TestEnv::empty();
    env.write_config("");
    good_article(&env);
    let paragraph = "All work and no play makes a very long article. ".repeat(40);
    let body: String = (0..4500)
        .map(|i| format!("## Part {i}\n\n{paragraph}\n\n"))
        .collect();
    assert!(body.len() > 8_000_000);
    env.write_article(
        "huge.md",
        format!("---\ntitle: Huge\ndate: 2024-01-03\n---\n{body}"),
    );
    env.run_ok(&["build"]);
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let content = items[0]["content_html"].as_str().unwrap();
    assert!(content.len() <= 512 * 1024 + 300, "{}", content.len());
    assert!(content.len() > 400 * 1024, "{}", content.len());
    assert!(
        content.ends_with(
            "<p><a href=\"https://example.com/blog/posts/huge/\">Read the rest of \u{201c}Huge\u{201d} on the site</a></p>\n"
        ),
        "{}",
        &content[content.len() - 300..]
    );
    assert_eq!(items[1]["title"], "Good");
    for feed in ["rss.xml", "atom.xml", "feed.json"] {
        let size = std::fs::metadata(env.public(feed)).unwrap().len();
        assert!(size < 1_200_000, "{feed}: {size} bytes");
    }
    assert_every_feed_valid(&env);
}

/// Inline HTML in an article reaches every reader: nothing in it may run, load from elsewhere or restyle.
#[test]
fn feed_content_is_sanitised_and_noscript_urls_are_absolute() {
    let env = TestEnv::empty();
    env.write_config("");
    good_article(&env);
    env.write_article(
        "hostile-html.md",
        "---\ntitle: Hostile HTML\ndate: 2024-01-03\n---\nText <span style=\"position:fixed\" onmouseover=\"steal()\">hover</span>.\n\n\
         <script>document.cookie</script>\n\n<a href=\"javascript:alert(1)\">click</a> <a href=\"data:text/html,<b>x</b>\">data</a>\n\n\
         <iframe src=\"https://tracker.example.net/embed\"></iframe>\n\n<img src=\"x.png\" onerror=\"alert(1)\">\n\n\
         <img data-src=\"lazy.png\"><noscript><img src=\"images/real.png\" alt=\"real\"></noscript>\n",
    );
    env.run_ok(&["build"]);
    assert_every_feed_valid(&env);
    assert_eq!(titles(&env), ["Hostile HTML", "Good"]);
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let content = json["items"][0]["content_html"].as_str().unwrap();
    for gone in [
        "<script",
        "document.cookie",
        "onmouseover",
        "onerror",
        "javascript:",
        "data:",
        "style=",
        "<iframe",
        "noscript",
    ] {
        assert!(!content.contains(gone), "{gone} in {content}");
    }
    for kept in [
        "<span>hover</span>",
        "<a href=\"https://tracker.example.net/embed\">https://tracker.example.net/embed</a>",
        "<img src=\"https://example.com/blog/posts/hostile-html/x.png\">",
        "<img src=\"https://example.com/blog/posts/hostile-html/images/real.png\" alt=\"real\">",
    ] {
        assert!(content.contains(kept), "{kept} missing from {content}");
    }
    for feed in ["rss.xml", "atom.xml"] {
        let xml = env.read_public(feed);
        assert!(
            !xml.contains("javascript:") && !xml.contains("&lt;script"),
            "{feed}"
        );
    }
}

/// Regression: "C++" and "C" were merged into one feed `category/c/`, and "!!!" got the folder `category//`.
#[test]
fn categories_that_would_share_a_feed_folder_are_reported_naming_both() {
    let env = TestEnv::empty();
    env.write_config("[feeds]\nper_tag = true\n");
    env.write_article(
        "c.md",
        "---\ntitle: On C\ndate: 2024-01-01\ncategory: C\n---\nx\n",
    );
    env.write_article(
        "cpp.md",
        "---\ntitle: On C++\ndate: 2024-01-02\ncategory: C++\ntags: [\"!!!\", templates]\n---\nx\n",
    );
    let stderr = env.run_ok(&["build"]);
    assert!(
        stderr.contains("cpp.md:1:1: error: category \"C++\" and category \"C\" (in ")
            && stderr.contains("would share the feed folder category/c/; rename one of them"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "cpp.md:5:7: error: tag \"!!!\" has no letter or digit to name its feed folder"
        ),
        "{stderr}"
    );
    assert_eq!(titles(&env), ["On C++", "On C"], "both are published");
    let c: Value = serde_json::from_str(&env.read_public("category/c/feed.json")).unwrap();
    let in_c: Vec<&str> = c["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(in_c, ["On C"], "no merged feed");
    let tags: Vec<String> = std::fs::read_dir(env.public("tag"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(tags, ["templates"], "no unnamed folder");
    assert_every_feed_valid(&env);
    assert_eq!(check_problems(&env).len(), 2);
}

/// A copy of a fixture modelled on a real site, with the store pointed at its content folder (as a user points
/// tidings at an existing site) and tag and author feeds on.
fn real_blog(fixture: &str, content: &str, permalink: &str) -> TestEnv {
    let env = TestEnv::new(fixture, "[feeds]\nper_tag = true\nper_author = true\n");
    let path = env.path().join("config.toml");
    let config = std::fs::read_to_string(&path).unwrap().replace(
        "articles = \"articles\"",
        &format!("articles = \"articles/{content}\"\npermalink = \"{permalink}\""),
    );
    std::fs::write(path, config).unwrap();
    env
}

/// The site feed's items as (title, date, URL, first author), newest first, against `expected`.
fn assert_published(env: &TestEnv, expected: &[(&str, &str, &str, Option<&str>)]) {
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), expected.len(), "{items:#?}");
    for (item, (title, date, url, author)) in items.iter().zip(expected) {
        assert_eq!(item["title"], *title);
        assert_eq!(item["date_published"], *date, "{title}");
        assert_eq!(item["url"], *url, "{title}");
        assert_eq!(item["authors"][0]["name"].as_str(), *author, "{title}");
    }
}

/// `text` without what code elements hold (escaped in XML, raw in JSON): a post may show Liquid in a code block.
fn without_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let open = [("<code", "</code>"), ("&lt;code", "&lt;/code&gt;")]
            .into_iter()
            .filter_map(|(o, c)| rest.find(o).map(|i| (i, c)))
            .min();
        let Some((i, close)) = open else { break };
        out.push_str(&rest[..i]);
        rest = rest[i..]
            .find(close)
            .map_or("", |j| &rest[i + j + close.len()..]);
    }
    out.push_str(rest);
    out
}

/// No Liquid, shortcode, kramdown attribute list or Zola link reached any feed (outside code samples).
fn assert_no_generator_markup(env: &TestEnv) {
    let files = feed_files(env);
    assert!(files.len() >= 6, "{files:?}");
    for path in files {
        let text = without_code(&std::fs::read_to_string(&path).unwrap());
        for marker in ["{%", "{{", "{:", "@/"] {
            assert!(
                !text.contains(marker),
                "{marker} in {}:\n{text}",
                path.display()
            );
        }
    }
}

/// `check`'s problems with each path from the store folder on.
fn store_problems(env: &TestEnv, store: &str) -> Vec<String> {
    let prefix = format!("{}/", env.path().join("articles").join(store).display());
    check_problems(env)
        .into_iter()
        .map(|l| l.strip_prefix(&prefix).map_or(l.clone(), str::to_string))
        .collect()
}

/// The content of the item titled `title` in the site's JSON feed.
fn content_of(env: &TestEnv, title: &str) -> String {
    let json: Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| panic!("no item {title}"))["content_html"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_jekyll_blog_publishes_every_post_with_liquid_and_kramdown_evaluated() {
    let env = real_blog("jekyll-blog", "_posts", "/{year}/{month}/{day}/{slug}.html");
    env.run_ok(&["build"]);
    let b = "https://example.com/blog";
    assert_published(
        &env,
        &[
            (
                "Hello again (2024)",
                "2024-05-01T00:00:00+02:00",
                &format!("{b}/2024/05/01/hello.html"),
                None,
            ),
            (
                "A page with its own permalink",
                "2023-08-20T09:00:00+02:00",
                &format!("{b}/notes/a-page-with-its-own-permalink/"),
                None,
            ),
            (
                "Gists and links between posts",
                "2023-07-04T00:00:00+02:00",
                &format!("{b}/2023/07/04/gists-and-links.html"),
                Some("Guest Writer"),
            ),
            (
                "What only Jekyll can render",
                "2023-06-01T00:00:00+02:00",
                &format!("{b}/2023/06/01/what-only-jekyll-can-render.html"),
                None,
            ),
            (
                "Release notes for 2.1",
                "2023-03-10T00:00:00+01:00",
                &format!("{b}/2023/03/10/release-notes.html"),
                Some("Ann Author"),
            ),
            (
                "Configuring with XML",
                "2023-02-01T00:00:00+01:00",
                &format!("{b}/2023/02/01/configuring-with-xml.html"),
                Some("Ann Author"),
            ),
            (
                "Welcome to Jekyll!",
                "2023-01-15T10:31:52+01:00",
                &format!("{b}/2023/01/15/welcome-to-jekyll.html"),
                Some("Ann Author"),
            ),
            (
                "Hello (2019)",
                "2019-05-01T00:00:00+02:00",
                &format!("{b}/2019/05/01/hello.html"),
                None,
            ),
        ],
    );
    assert_no_generator_markup(&env);
    assert_every_feed_valid(&env);

    let gists = content_of(&env, "Gists and links between posts");
    assert!(
        gists.contains(
            "<a href=\"https://github.com/octo/test-blog\">on GitHub</a>, kept by Ann Author."
        ),
        "_config.yml's values are site.*: {gists}"
    );
    let welcome = content_of(&env, "Welcome to Jekyll!");
    assert!(
        welcome.contains("<pre><code class=\"language-ruby\"># Prints 'Hi, Tom' to STDOUT."),
        "{welcome}"
    );
    assert!(
        !welcome.contains("<h1>"),
        "a Ruby comment is not a heading: {welcome}"
    );
    assert!(
        welcome.contains("href=\"https://example.com/blog/feed.xml\""),
        "{welcome}"
    );
    let xml = content_of(&env, "Configuring with XML");
    assert!(
        xml.contains("&lt;!DOCTYPE note ["),
        "the declaration is code, not markup: {xml}"
    );
    assert!(
        xml.contains("{{ page.title }} was written by {{ page.author }}"),
        "raw is verbatim: {xml}"
    );
    assert!(
        xml.contains("href=\"https://example.com/blog/2023/01/15/welcome-to-jekyll.html\""),
        "{xml}"
    );
    let notes = content_of(&env, "Release notes for 2.1");
    for part in [
        "Version 2.1 is out. This page is \u{201c}Release notes for 2.1\u{201d}.",
        "src=\"https://example.com/blog/assets/logo.png\"",
        "href=\"https://example.com/blog/releases/\"",
        "<table>",
        "{% assign version = &quot;2.1&quot; %}",
        // kramdown's `markdown="1"`: the div's content is Markdown.
        "<div class=\"upgrade\">\n<p><strong>Upgrading from 2.0?</strong> Read <a href=\"https://example.com/blog/upgrading/\">the notes</a> first.</p>\n</div>",
        // A definition list, as kramdown renders it; the abbreviation's definition prints nothing.
        "<dl>\n<dt>LTS</dt>\n<dd>A release supported for two years.</dd>\n</dl>",
    ] {
        assert!(notes.contains(part), "{part} missing from {notes}");
    }
    assert!(!notes.contains("*[LTS]"), "{notes}");
    assert!(
        !notes.contains("TODO"),
        "kramdown comments are dropped: {notes}"
    );
    let gists = content_of(&env, "Gists and links between posts");
    for part in [
        "href=\"https://gist.github.com/octocat/6cad326836d38bd3a7ae\"",
        "href=\"https://example.com/blog/2023/02/01/configuring-with-xml.html\"",
        "href=\"https://example.com/blog/2023/03/10/release-notes.html\"",
        "<code class=\"language-shell\">$ bundle exec jekyll serve",
    ] {
        assert!(gists.contains(part), "{part} missing from {gists}");
    }
    assert!(!gists.contains("never shows"), "{gists}");
    let own = content_of(&env, "A page with its own permalink");
    assert!(
        own.contains("lives at /notes/a-page-with-its-own-permalink/."),
        "{own}"
    );
    let only = content_of(&env, "What only Jekyll can render");
    assert!(only.contains("\u{201c}quotes\u{201d}"), "{only}");
    assert!(
        !only.contains("Don\u{2019}t") && !only.contains("Don't"),
        "the include's arguments are gone: {only}"
    );
    // Categories as Jekyll reads them: `categories: jekyll update` is two.
    assert!(env.public("category/jekyll/rss.xml").is_file());
    assert!(env.public("author/ann/atom.xml").is_file());

    assert_eq!(
        store_problems(&env, "_posts"),
        [
            "README.md:1:1: note: not a post: neither its name nor its front matter has a date (Jekyll publishes only `_posts/YYYY-MM-DD-title.md`); it is left out of the feeds and digests; to publish it, name it YYYY-MM-DD-title.md",
            "2023-06-01-what-only-jekyll-can-render.md:7:1: error: Liquid tag \"{% include note.html content=\"Don't panic\" %}\" cannot be evaluated outside Jekyll; it is left out of the feeds",
            "2023-06-01-what-only-jekyll-can-render.md:9:23: error: Liquid \"{{ site.data.releases.latest }}\" names a value tidings does not have (it knows site.url, site.baseurl, site.title, the values of _config.yml, page.* and assigned names); it is left out of the feeds",
            "2023-06-01-what-only-jekyll-can-render.md:11:1: error: Liquid tag \"{% if page.comments %}\" cannot be evaluated outside Jekyll; it is left out of the feeds",
            "2023-06-01-what-only-jekyll-can-render.md:11:41: error: Liquid tag \"{% endif %}\" cannot be evaluated outside Jekyll; it is left out of the feeds",
        ]
    );
}

#[test]
fn a_hugo_blog_publishes_every_post_with_shortcodes_evaluated() {
    let env = real_blog("hugo-blog", "content", "/posts/{slug}/");
    env.run_ok(&["build"]);
    let b = "https://example.com/blog";
    assert_published(
        &env,
        &[
            (
                "An announcement with its own URL",
                "2024-04-01T12:00:00+02:00",
                &format!("{b}/announcements/custom/"),
                None,
            ),
            (
                "Shortcodes everywhere",
                "2024-03-05T00:00:00+01:00",
                &format!("{b}/posts/shortcodes/"),
                Some("Ann Author"),
            ),
            (
                "A page bundle",
                "2024-02-01T08:00:00+00:00",
                &format!("{b}/posts/bundle/"),
                Some("Ann Author"),
            ),
            (
                "Moved from Jekyll",
                "2024-01-20T10:00:00+01:00",
                &format!("{b}/posts/2024-01-20-moved-from-jekyll/"),
                None,
            ),
            (
                "First steps with Hugo",
                "2024-01-10T09:00:00+01:00",
                &format!("{b}/posts/first-steps/"),
                Some("Ann Author"),
            ),
        ],
    );
    assert_no_generator_markup(&env);
    assert_every_feed_valid(&env);

    // hugo.toml beside the store makes it a Hugo site: a dated name is no Jekyll post.
    let moved = content_of(&env, "Moved from Jekyll");
    for part in [
        "href=\"https://www.youtube.com/watch?v=eIu4fP4fOHE\"",
        "$e^{i\\pi} + 1 = 0$",
    ] {
        assert!(moved.contains(part), "{part} missing from {moved}");
    }
    let note = moved.find("Written right below").unwrap();
    assert!(
        moved.find("The last paragraph.").unwrap() < note,
        "the footnote at the end: {moved}"
    );

    let first = content_of(&env, "First steps with Hugo");
    for part in [
        "<figure><img src=\"https://example.com/images/hugo-logo.png\" alt=\"Hugo logo\"><figcaption><p>The logo, &quot;as is&quot;</p></figcaption></figure>",
        "<code class=\"language-go\">// main prints a greeting.",
    ] {
        assert!(first.contains(part), "{part} missing from {first}");
    }
    let bundle = content_of(&env, "A page bundle");
    for part in [
        "<a href=\"https://example.com/blog/posts/bundle/diagram-large.png\"><img src=\"https://example.com/blog/posts/bundle/diagram.png\" alt=\"\"></a>",
        "<h4>How bundles work</h4>",
        "href=\"https://example.com/blog/posts/first-steps/\"",
        "href=\"https://example.com/blog/posts/shortcodes/\"",
        "href=\"https://www.youtube.com/watch?v=w7Ft2ymGmfc\"",
    ] {
        assert!(bundle.contains(part), "{part} missing from {bundle}");
    }
    let shortcodes = content_of(&env, "Shortcodes everywhere");
    for part in [
        "href=\"https://vimeo.com/146022717\"",
        "href=\"https://gist.github.com/spf13/7896402\"",
        "Shortcodes with Markdown inside use the percent form.",
        "<a href=\"https://janedoe.example.org/\">Jane Doe</a>",
        "<code class=\"language-python\"># not a heading",
    ] {
        assert!(
            shortcodes.contains(part),
            "{part} missing from {shortcodes}"
        );
    }
    assert!(!shortcodes.contains("GoHugoIO"), "{shortcodes}");
    let custom = content_of(&env, "An announcement with its own URL");
    assert!(custom.contains(">Hugo in five minutes</a>"), "{custom}");
    assert!(
        custom.contains("href=\"https://example.com/blog/posts/bundle/\""),
        "{custom}"
    );

    assert_eq!(
        store_problems(&env, "content"),
        [
            "about.md:2:1: note: not an article: no date, so it is a page (as Hugo and Zola publish undated content); it is left out of the feeds and digests; to publish it, add `date: YYYY-MM-DD` to its front matter",
            "posts/shortcodes.md:11:1: error: shortcode \"{{< tweet user=\"GoHugoIO\" id=\"1315233626070503424\" >}}\" needs the site's Hugo templates; it is left out of the feeds",
            "posts/shortcodes.md:13:1: error: shortcode \"{{% notice tip %}}\" needs the site's Hugo templates; it is left out of the feeds (what it encloses is kept, up to {{% /notice %}})",
        ]
    );
}

#[test]
fn a_zola_blog_publishes_every_post_with_paths_authors_and_internal_links() {
    let env = real_blog("zola-blog", "content", "/{slug}/");
    env.run_ok(&["build"]);
    let b = "https://example.com/blog";
    assert_published(
        &env,
        &[
            (
                "Dated and slugged",
                "2023-01-01T12:00:00+00:00",
                &format!("{b}/with-a-slug/"),
                None,
            ),
            (
                "A page bundle",
                "2022-05-05T00:00:00+02:00",
                &format!("{b}/bundle/"),
                Some("Ann Author"),
            ),
            (
                "Dated by its file name",
                "2022-03-04T00:00:00+01:00",
                &format!("{b}/underscored/"),
                None,
            ),
            (
                "A second post",
                "2021-07-01T00:00:00+02:00",
                &format!("{b}/2021/07/01/a-different-slug/"),
                Some("Grace Hopper"),
            ),
            (
                "My first post",
                "2021-06-14T00:00:00+02:00",
                &format!("{b}/2021/06/14/first-post/"),
                Some("Ann Author"),
            ),
        ],
    );
    assert_no_generator_markup(&env);
    assert_every_feed_valid(&env);
    for (title, links) in [
        (
            "My first post",
            &[format!("{b}/2021/07/01/a-different-slug/")][..],
        ),
        (
            "A second post",
            &[
                format!("{b}/2021/06/14/first-post/#welcome"),
                format!("{b}/underscored/"),
            ][..],
        ),
        ("Dated by its file name", &[format!("{b}/bundle/")][..]),
        (
            "A page bundle",
            &[format!("{b}/2021/06/14/first-post/")][..],
        ),
        (
            "Dated and slugged",
            &[format!("{b}/2021/07/01/a-different-slug/")][..],
        ),
    ] {
        let content = content_of(&env, title);
        for link in links {
            assert!(
                content.contains(&format!("href=\"{link}\"")),
                "{title}: {link} missing from {content}"
            );
        }
    }
    let bundle = content_of(&env, "A page bundle");
    assert!(
        bundle.contains("src=\"https://example.com/blog/bundle/cover.jpg\""),
        "{bundle}"
    );
    assert!(
        bundle.contains("and this one is gone."),
        "the missing link keeps its text: {bundle}"
    );
    assert!(
        bundle.contains("A quotation the site"),
        "a body shortcode keeps its body: {bundle}"
    );
    let dated = content_of(&env, "Dated and slugged");
    assert!(dated.contains("<code>@/not-a-link.md</code>"), "{dated}");
    for link in [
        "https://gist.github.com/Keats/e5fb6aad409f28721c0ba14161644c57",
        "https://vimeo.com/124313553",
    ] {
        assert!(
            dated.contains(&format!("href=\"{link}\"")),
            "{link} missing from {dated}"
        );
    }
    let first = content_of(&env, "My first post");
    assert!(
        first.contains("href=\"https://www.youtube.com/watch?v=w7Ft2ymGmfc\""),
        "{first}"
    );
    for author in ["ann", "grace-hopper"] {
        assert!(
            env.public(&format!("author/{author}/feed.json")).is_file(),
            "{author}"
        );
    }

    assert_eq!(
        store_problems(&env, "content"),
        [
            "blog/bundle/index.md:13:76: error: link target \"@/blog/deleted.md\" is not an article of the store; give its path from the content folder, like @/blog/post.md",
            "blog/bundle/index.md:15:1: error: shortcode \"{% quote(author=\"Someone famous\") %}\" needs the site's Zola templates; it is left out of the feeds (its body is kept)",
        ]
    );
}

/// A store that suddenly holds under half the articles of the last build (a half-synced folder, the wrong
/// checkout) is refused, the published feeds left as they were, until the owner says the removal is meant.
/// Regression: a README in Jekyll's `_posts` and an undated Hugo page made `check` exit 1 as article errors.
/// Neither generator publishes them as posts: they are notes (`check` lists them, `build -v` logs them), never
/// published nor mailed, and `check` passes; a post whose date is there but wrong still fails it.
#[test]
fn files_their_generator_would_not_publish_are_noted_and_left_out_without_failing_check() {
    let env = TestEnv::empty();
    env.write_config(
        "[newsletter]\nfrom = \"Blog <news@example.com>\"\npostal_address = \"1 Test Street\"\n\n\
         [[digest]]\nname = \"weekly\"\nschedule = \"0 8 * * MON\"\n\n[state]\ndatabase = \"state.db\"\n",
    );
    env.write_article(
        "_posts/2024-01-05-hello.md",
        "---\ntitle: Hello\n---\nHi.\n",
    );
    env.write_article("_posts/README.md", "# Posts\n\nOne file a post.\n");
    env.write_article(
        "content/about.md",
        "---\ntitle: About\nmenu: main\n---\nUs.\n",
    );
    env.write_article("content/scratch.md", "Scratch notes, no front matter.\n");

    let out = env.run(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notes: Vec<&str> = stdout.lines().collect();
    assert_eq!(notes.len(), 3, "{stdout}");
    for (line, at) in notes.iter().zip([
        "_posts/README.md:1:1: note: not a post: ",
        "content/about.md:2:1: note: not an article: no date",
        "content/scratch.md:1:1: note: not an article: no front matter",
    ]) {
        assert!(line.contains(at), "{line}");
        assert!(
            line.contains("left out of the feeds and digests; to publish it"),
            "{line}"
        );
    }
    assert!(
        env.run(&["-q", "check"]).stdout.is_empty(),
        "-q prints no notes"
    );

    let stderr = env.run_ok(&["build"]);
    assert!(!stderr.contains("note:"), "notes only under -v: {stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    assert_eq!(titles(&env), ["Hello"]);
    assert_every_feed_valid(&env);
    let verbose = env.run_ok(&["-v", "build"]);
    assert!(
        verbose.contains("README.md:1:1: note: not a post"),
        "{verbose}"
    );

    // Never in a digest: the next digest of a subscriber who joined before the post holds the post alone.
    env.run_ok(&[
        "--now",
        "2024-01-01T00:00:00+01:00",
        "subscribers",
        "add",
        "reader@example.com",
    ]);
    let preview = env.run(&[
        "--now",
        "2024-01-08T09:00:00+01:00",
        "digest",
        "preview",
        "weekly",
    ]);
    let shown = String::from_utf8_lossy(&preview.stdout);
    assert!(
        preview.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&preview.stderr)
    );
    assert!(shown.contains("hello"), "{shown}");
    assert!(
        !shown.contains("about") && !shown.contains("README") && !shown.contains("scratch"),
        "{shown}"
    );

    // A date that is written but wrong is still an error naming the file, line and fix.
    env.write_article(
        "content/post.md",
        "---\ntitle: Post\ndate: 2024-02-30\n---\n",
    );
    let problems = check_problems(&env);
    let errors: Vec<&String> = problems
        .iter()
        .filter(|l| l.contains(": error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{problems:?}");
    assert!(
        errors[0].ends_with(
            "content/post.md:3:7: error: date \"2024-02-30\" is not a date; use YYYY-MM-DD or RFC 3339 \
             (2024-01-31T09:00:00+01:00)"
        ),
        "{}",
        errors[0]
    );
}

#[test]
fn a_store_that_shrank_under_half_is_refused_unless_allow_shrink() {
    let env = TestEnv::sample();
    env.run_ok(&["build"]);
    let public = env.path().join("public");
    let files = age_files(&public);
    assert!(files.len() > 10, "{files:?}");
    let articles = env.path().join("data/articles");
    let mut names: Vec<_> = std::fs::read_dir(&articles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for path in &names[..names.len() - 3] {
        std::fs::remove_file(path).unwrap();
    }
    let out = env.run(&["build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("under half of the") && stderr.contains("--allow-shrink"),
        "{stderr}"
    );
    assert_eq!(
        rewritten_files(&public),
        Vec::<String>::new(),
        "nothing written"
    );
    env.run_ok(&["build", "--allow-shrink"]);
    let related = std::fs::read_to_string(public.join("related.json")).unwrap();
    let published: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&related).unwrap();
    assert!(published.len() <= 3, "{}", published.len());
    // From now on the smaller store is the reference: the next build needs no flag.
    env.run_ok(&["build"]);
}

/// `digest send` from a store that is not there fails and records nothing, so the tick is still sent once the
/// store is back.
#[test]
fn a_digest_send_from_a_missing_store_fails_and_leaves_the_tick_unsent() {
    let env = TestEnv::sample();
    env.run_ok(&["subscribers", "import", "data/subscribers.csv"]);
    let missing = env.path().join("data/artciles");
    let vars = [("TIDINGS_SITE_ARTICLES", missing.to_str().unwrap())];
    let out = env.run_with_env(
        &[
            "digest",
            "send",
            "weekly",
            "--now",
            "2026-11-30T09:00:00+01:00",
        ],
        &vars,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the article store does not exist"),
        "{stderr}"
    );
    let runs = env.run_ok(&["digest", "runs", "--format", "json"]);
    let out = env.run(&["digest", "runs", "--format", "json"]);
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed.is_empty(), "no run recorded: {runs}");
    env.run_ok(&[
        "digest",
        "send",
        "weekly",
        "--now",
        "2026-11-30T09:00:00+01:00",
    ]);
    assert!(env.path().join("outbox").read_dir().unwrap().count() > 0);
}

//! A real browser on the feeds: headless Chromium opens `rss.xml` and `atom.xml` served over HTTP and must show
//! the readable page `feed.xsl` makes (the subscribe hint with the feed's URL, and the articles), not raw XML.
//! What the page shows is asserted on the DOM Chromium built (`--dump-dom`); screenshots are kept in
//! `target/test-artifacts/` for a reviewer to look at.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use crate::support::{TestEnv, artifacts, assert_png_written, chromium, elements};

/// Serves `root` over HTTP on 127.0.0.1 (a thread that lives as long as the test process); returns the base URL.
pub(crate) fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            if BufReader::new(&stream)
                .read_line(&mut request_line)
                .is_err()
            {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            let file = root.join(path);
            let (status, body) = match std::fs::read(&file) {
                Ok(body) if file.starts_with(&root) => ("200 OK", body),
                _ => ("404 Not Found", b"not found".to_vec()),
            };
            let content_type = match file.extension().and_then(|e| e.to_str()) {
                Some("xml") => "application/xml",
                Some("xsl") => "text/xsl",
                Some("json") => "application/feed+json",
                _ => "text/plain",
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|_| stream.write_all(&body));
        }
    });
    base
}

/// The titles of a feed's entries in its own order, read by feed-rs (not by the stylesheet under test).
fn feed_titles(path: &std::path::Path) -> Vec<String> {
    let feed = feed_rs::parser::parse(std::fs::read(path).unwrap().as_slice()).unwrap();
    feed.entries
        .into_iter()
        .map(|e| e.title.unwrap().content)
        .collect()
}

#[test]
fn a_feed_opened_in_a_browser_is_a_readable_page() {
    let env = TestEnv::sample();
    env.run_ok(&["build"]);
    let base = serve(env.path().join("public"));
    for feed in ["rss.xml", "atom.xml"] {
        let dom = chromium(&["--dump-dom", &format!("{base}/{feed}")]);
        let hint: Vec<String> = elements(&dom, "p")
            .into_iter()
            .map(|p| p.text)
            .filter(|t| t.starts_with("This is a web feed."))
            .collect();
        assert_eq!(
            hint.len(),
            1,
            "{feed}: the XSL page was not applied:\n{dom}"
        );
        let code: Vec<String> = elements(&dom, "code").into_iter().map(|e| e.text).collect();
        assert_eq!(
            code,
            [format!("https://blog.example.com/{feed}")],
            "{feed}: the URL to copy"
        );
        let h1: Vec<String> = elements(&dom, "h1").into_iter().map(|e| e.text).collect();
        assert_eq!(h1, ["Field Notes on Software"], "{feed}");

        // One block per article, titled as in the feed and in its order (14 in the frozen sample).
        let expected = feed_titles(&env.public(feed));
        assert_eq!(expected.len(), 14, "{feed}: {expected:?}");
        let articles = elements(&dom, "article");
        assert_eq!(articles.len(), 14, "{feed}: one block per article");
        let headings: Vec<String> = elements(&dom, "h2").into_iter().map(|e| e.text).collect();
        assert_eq!(headings, expected, "{feed}");
        assert_eq!(
            headings[0], "Runbooks Worth Opening at 3 a.m.",
            "{feed}: newest first"
        );
        assert!(
            headings.contains(&"Feeds & Email: Why <pre> Tags Break Digests".to_string()),
            "{feed}: a title with markup is shown as text, not parsed as markup"
        );
    }
    let shot = artifacts().join("feed-in-browser.png");
    std::fs::remove_file(&shot).ok();
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=900,1200",
        &format!("{base}/atom.xml"),
    ]);
    assert_png_written(&shot);
}

/// Regression (with RSS descriptions now HTML-escaped text, as readers need): both pages show a summary and the
/// site description as written, characters that look like markup or references included.
#[test]
fn summaries_and_the_description_show_as_written_in_the_browser() {
    const SUMMARY: &str = "Use Vec<String> & Option<&str>, not ]]> or \"&lt;\".";
    const DESCRIPTION: &str = "Notes on <T> & 'quotes'";
    let env = TestEnv::empty();
    // At the site's root, so the stylesheet's path is where `serve` finds it.
    std::fs::write(
        env.path().join("config.toml"),
        "[site]\ntitle = \"T\"\nbase_url = \"https://example.com/\"\narticles = \"articles\"\n\
         description = \"Notes on <T> & 'quotes'\"\n",
    )
    .unwrap();
    env.write_article(
        "a.md",
        format!("---\ntitle: A\ndate: 2024-01-01\nsummary: '{SUMMARY}'\n---\nBody.\n"),
    );
    env.run_ok(&["build"]);
    let base = serve(env.path().join("public"));
    for feed in ["rss.xml", "atom.xml"] {
        let dom = chromium(&["--dump-dom", &format!("{base}/{feed}")]);
        let paragraphs: Vec<String> = elements(&dom, "p").into_iter().map(|p| p.text).collect();
        assert_eq!(elements(&dom, "article").len(), 1, "{feed}:\n{dom}");
        for shown in [DESCRIPTION, SUMMARY] {
            assert!(
                paragraphs.iter().any(|p| p == shown),
                "{feed}: {shown:?} not in {paragraphs:?}"
            );
        }
    }
}

/// A summary written in Markdown is HTML in both feeds (an RSS description, an Atom summary of type html): the
/// page shows its text, not its tags, and still shows HTML written in it as text.
#[test]
fn a_summary_written_in_markdown_shows_as_its_text_in_the_browser() {
    let env = TestEnv::empty();
    std::fs::write(
        env.path().join("config.toml"),
        "[site]\ntitle = \"T\"\nbase_url = \"https://example.com/\"\narticles = \"articles\"\n",
    )
    .unwrap();
    env.write_article(
        "a.md",
        "---\ntitle: A\ndate: 2024-01-01\nsummary: 'Using **Rust** and [serde](https://serde.rs) & <b>Vec<T></b>'\n---\nBody.\n",
    );
    env.run_ok(&["build"]);
    let base = serve(env.path().join("public"));
    for feed in ["rss.xml", "atom.xml"] {
        let dom = chromium(&["--dump-dom", &format!("{base}/{feed}")]);
        let paragraphs: Vec<String> = elements(&dom, "p").into_iter().map(|p| p.text).collect();
        assert!(
            paragraphs
                .iter()
                .any(|p| p == "Using Rust and serde & <b>Vec<T></b>"),
            "{feed}: {paragraphs:?}"
        );
    }
}

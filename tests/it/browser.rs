//! A real browser on the feeds: headless Chromium opens `rss.xml` and `atom.xml` served over HTTP and must show
//! the readable page `feed.xsl` makes (the subscribe hint with the feed's URL, and the articles), not raw XML.
//! Screenshots are kept in `target/test-artifacts/` for a reviewer to look at.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use crate::support::{TestEnv, artifacts, assert_screenshot, chromium};

/// Serves `root` over HTTP on 127.0.0.1 (a thread that lives as long as the test process); returns the base URL.
fn serve(root: PathBuf) -> String {
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

#[test]
fn a_feed_opened_in_a_browser_is_a_readable_page() {
    let env = TestEnv::sample();
    env.run_ok(&["build"]);
    let base = serve(env.path().join("public"));
    for feed in ["rss.xml", "atom.xml"] {
        let dom = chromium(&["--dump-dom", &format!("{base}/{feed}")]);
        assert!(
            dom.contains("This is a web feed."),
            "{feed}: the XSL page was not applied:\n{dom}"
        );
        assert!(
            dom.contains(&format!("https://blog.example.com/{feed}")),
            "{feed}: the URL to copy"
        );
        assert!(
            dom.contains("From Individual Contributor to Tech Lead: What Nobody Tells You"),
            "{feed}"
        );
        assert!(
            dom.contains("Feeds &amp; Email: Why &lt;pre&gt; Tags Break Digests"),
            "{feed}: escaped title"
        );
        assert_eq!(
            dom.matches("<article>").count(),
            14,
            "{feed}: one block per article"
        );
    }
    let shot = artifacts().join("feed-in-browser.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=900,1200",
        &format!("{base}/atom.xml"),
    ]);
    assert_screenshot(&shot, 10_000);
}

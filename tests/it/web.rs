//! The web side end to end: the real binary (`tidings serve`) on a loopback port, a real HTTP client, and the
//! real SMTP server (`smtp-sink`) receiving the confirmation messages and digests whose links the tests follow.
//! Every command pins `--now`, so the server's "now" is fixed too (tokens are issued and checked at it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use tidings::mail::{LinkTokens, Purpose};

use crate::delivery::{SmtpSink, free_port};
use crate::support::{NOW, TestEnv};

pub(crate) const SECRET: &str = "web-test-secret";

/// A blog with two digests and the SMTP transport pointed at `smtp_port`; `extra` is appended.
pub(crate) fn config(smtp_port: u16, extra: &str) -> String {
    format!(
        r#"
[newsletter]
from = "Test Blog <news@example.com>"
postal_address = "1 Test Street, 12345 Testville"

[[digest]]
name = "weekly"
schedule = "0 8 * * MON"

[[digest]]
name = "daily"
schedule = "0 7 * * *"

[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:{smtp_port}"
timeout_seconds = 10

[state]
database = "state.db"

{extra}
"#
    )
}

/// A world: the digest-basic store, the config above, the SMTP sink, and `tidings serve` running on a free
/// port with `[newsletter] public_url` pointing at it (so links in mail open this server).
pub(crate) struct Web {
    pub env: TestEnv,
    pub sink: SmtpSink,
    _sink_dir: tempfile::TempDir,
    server: Child,
    pub base: String,
    pub client: Client,
}

impl Web {
    pub(crate) fn start(extra: &str) -> Web {
        let sink_dir = tempfile::tempdir().unwrap();
        let sink = SmtpSink::start(sink_dir.path(), &[]);
        let env = TestEnv::new("digest-basic", &config(sink.port, extra));
        env.run_ok(&["build"]);
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(env.path().join("serve.log")).unwrap();
        let server = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("--config")
            .arg(env.path().join("config.toml"))
            .args(["--now", NOW, "serve"])
            .current_dir(env.path())
            .env_remove("TIDINGS_CONFIG")
            .envs(web_env(port))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the tidings binary runs");
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let web = Web {
            env,
            sink,
            _sink_dir: sink_dir,
            server,
            base,
            client,
        };
        web.wait_until_up();
        web
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.client.get(self.url("/healthz")).send()
                && r.status() == StatusCode::OK
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tidings serve did not come up:\n{}", self.log());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.env.path().join("serve.log")).unwrap_or_default()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn get(&self, url: &str) -> Response {
        self.client.get(url).send().unwrap()
    }

    pub(crate) fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Response {
        self.client.post(url).form(form).send().unwrap()
    }

    pub(crate) fn subscribe(&self, form: &[(&str, &str)]) -> Response {
        self.post_form(&self.url("/subscribe"), form)
    }

    /// The messages `rcpt` got, waiting (up to 20 s) until there are `n`.
    pub(crate) fn mail_for(&self, rcpt: &str, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.sink.received().remove(rcpt).unwrap_or_default();
            if got.len() >= n {
                return got.iter().map(|p| std::fs::read(p).unwrap()).collect();
            }
            assert!(
                Instant::now() < deadline,
                "{rcpt} got {} of {n} messages\n{}",
                got.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The subscribers as `subscribers list --format json` prints them.
    pub(crate) fn subscribers(&self) -> Vec<serde_json::Value> {
        let out = self.env.run(&["subscribers", "list", "--format", "json"]);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub(crate) fn subscriber(&self, email: &str) -> serde_json::Value {
        self.subscribers()
            .into_iter()
            .find(|s| s["email"] == email)
            .unwrap_or_else(|| panic!("{email} is not stored"))
    }

    /// A metric's value in `/metrics` (the line `name{labels} value`).
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get(&self.url("/metrics")).text().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The variables a server for this world runs with.
pub(crate) fn web_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("TIDINGS_SERVER_LISTEN".into(), format!("127.0.0.1:{port}")),
        (
            "TIDINGS_NEWSLETTER_PUBLIC_URL".into(),
            format!("http://127.0.0.1:{port}/"),
        ),
        ("TIDINGS_SECRET".into(), SECRET.into()),
    ]
}

/// The first `http://…` URL in `text` that contains `path`.
pub(crate) fn link(text: &str, path: &str) -> String {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c| c == '<' || c == '>' || c == '"'))
        .find(|w| w.starts_with("http://") && w.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in\n{text}"))
        .to_string()
}

/// The `href` of the page's first link whose URL contains `path`, entities decoded.
pub(crate) fn href(page: &str, path: &str) -> String {
    let page = page.replace("&#x3D;", "=").replace("&amp;", "&");
    let at = page
        .find(path)
        .unwrap_or_else(|| panic!("no {path} link in\n{page}"));
    let start = page[..at].rfind('"').unwrap() + 1;
    let end = at + page[at..].find('"').unwrap();
    page[start..end].to_string()
}

/// A link's `token=` value.
fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap().to_string()
}

/// A message's text part and one header.
pub(crate) fn text_and_header(raw: &[u8], header: &str) -> (String, String) {
    let message = MessageParser::default().parse(raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let value = message
        .header_raw(header)
        .unwrap_or_else(|| panic!("no {header} header"))
        .trim()
        .to_string();
    (text, value)
}

fn body(r: Response) -> (StatusCode, String) {
    let status = r.status();
    (status, r.text().unwrap())
}

#[test]
fn a_reader_subscribes_confirms_changes_preferences_and_unsubscribes() {
    let web = Web::start("");
    let (status, page) = body(web.subscribe(&[
        ("email", "Ada@Example.com"),
        ("name", "Ada"),
        ("digest", "weekly"),
        ("category", "career"),
        ("website", ""),
    ]));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Check your inbox"), "{page}");
    assert_eq!(web.subscriber("ada@example.com")["status"], "pending");

    // The confirmation: a link to /confirm, and the list headers every message carries.
    let mail = web.mail_for("ada@example.com", 1);
    let (text, unsubscribe) = text_and_header(&mail[0], "List-Unsubscribe");
    assert!(
        unsubscribe.starts_with(&format!("<{}/unsubscribe?token=", web.base)),
        "{unsubscribe}"
    );
    assert!(!unsubscribe.contains("ada") && !unsubscribe.contains("mailto"));
    let (_, post) = text_and_header(&mail[0], "List-Unsubscribe-Post");
    assert_eq!(post, "List-Unsubscribe=One-Click");
    let confirm = link(&text, "/confirm?token=");
    assert!(!confirm.contains("ada"), "no address in a link: {confirm}");

    let (status, page) = body(web.get(&confirm));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("You are subscribed"), "{page}");
    let ada = web.subscriber("ada@example.com");
    assert_eq!(ada["status"], "confirmed");
    assert_eq!(ada["digests"], serde_json::json!(["weekly"]));
    assert_eq!(
        ada["categories"],
        serde_json::json!(["Career"]),
        "stored in its known spelling"
    );

    // Preferences: both digests, another category; an unknown category is refused and changes nothing.
    let preferences = href(&page, "/preferences?token=");
    let (status, page) = body(web.get(&preferences));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("value=\"Career\" checked"), "{page}");
    let (status, page) = body(web.post_form(
        &preferences,
        &[("digest", "weekly"), ("category", "Gardening")],
    ));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("Choose topics from the list."), "{page}");
    assert_eq!(
        web.subscriber("ada@example.com")["categories"],
        serde_json::json!(["Career"])
    );
    let (status, page) = body(web.post_form(
        &preferences,
        &[
            ("digest", "weekly"),
            ("digest", "daily"),
            ("category", "Tools"),
        ],
    ));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Saved."), "{page}");
    let ada = web.subscriber("ada@example.com");
    assert_eq!(ada["digests"], serde_json::json!(["weekly", "daily"]));
    assert_eq!(ada["categories"], serde_json::json!(["Tools"]));

    // Unsubscribe from everything, from the preferences page's link: a page with one button, then done.
    let leave = href(&page, "/unsubscribe?token=");
    let (status, page) = body(web.get(&leave));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("<button type=\"submit\">Unsubscribe</button>"),
        "{page}"
    );
    assert_eq!(
        web.subscriber("ada@example.com")["status"],
        "confirmed",
        "a GET changes nothing"
    );
    let (status, page) = body(web.post_form(&leave, &[("List-Unsubscribe", "One-Click")]));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("You are unsubscribed"), "{page}");
    assert_eq!(web.subscriber("ada@example.com")["status"], "unsubscribed");
}

/// Adds `subscribers` (to both digests, before the fixture's new articles) and sends them the weekly digest at
/// its 2026-11-30 tick; returns each one's message.
pub(crate) fn send_weekly(web: &Web, subscribers: &[&str]) -> Vec<Vec<u8>> {
    for email in subscribers {
        web.env.run_ok(&[
            "--now",
            "2026-11-20T00:00:00+01:00",
            "subscribers",
            "add",
            email,
            "--digest",
            "weekly",
            "--digest",
            "daily",
        ]);
    }
    send_weekly_at(web, "2026-11-30T09:00:00+01:00");
    subscribers
        .iter()
        .map(|email| web.mail_for(email, 1).remove(0))
        .collect()
}

/// `digest send weekly --now NOW` as the server runs (its secret and public URL, so the links open it).
pub(crate) fn send_weekly_at(web: &Web, now: &str) {
    // As the server runs: the same secret and public URL, so the digest's links open it.
    let port = web.base.rsplit(':').next().unwrap().parse().unwrap();
    let vars = web_env(port);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = web
        .env
        .run_with_env(&["digest", "send", "weekly", "--now", now], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_one_click_post_to_a_received_digests_list_unsubscribe_url_unsubscribes() {
    let web = Web::start("");
    let digests = send_weekly(&web, &["dee@example.com", "eve@example.com"]);
    // RFC 8058 as mail providers send it: a form-encoded body, and (Dee's second message) multipart.
    let (_, header) = text_and_header(&digests[0], "List-Unsubscribe");
    let url = header.trim_matches(['<', '>']).to_string();
    assert!(
        url.starts_with(&format!("{}/unsubscribe?token=", web.base)),
        "{url}"
    );
    let r = web
        .client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let dee = web.subscriber("dee@example.com");
    assert_eq!(
        (dee["status"].as_str(), dee["digests"].clone()),
        (Some("confirmed"), serde_json::json!(["daily"])),
        "left the weekly digest the message came from, kept the daily one"
    );

    let (_, header) = text_and_header(&digests[1], "List-Unsubscribe");
    let url = header.trim_matches(['<', '>']).to_string();
    let boundary = "tidingsTestBoundary";
    let r = web
        .client
        .post(&url)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        web.subscriber("eve@example.com")["digests"],
        serde_json::json!(["daily"])
    );
    // A second click is harmless.
    let r = web.post_form(&url, &[("List-Unsubscribe", "One-Click")]);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().unwrap().contains("You are unsubscribed"));
}

#[test]
fn forged_tampered_expired_and_cross_purpose_tokens_are_refused_and_change_nothing() {
    let web = Web::start("");
    web.subscribe(&[("email", "ada@example.com"), ("digest", "weekly")]);
    let (text, _) = text_and_header(&web.mail_for("ada@example.com", 1)[0], "List-Unsubscribe");
    let real = token_of(&link(&text, "/confirm?token="));
    let tokens = LinkTokens::new(SECRET.as_bytes().to_vec());
    let now = chrono::DateTime::parse_from_rfc3339(NOW).unwrap().to_utc();
    let handle = tokens.verify(&real, Purpose::Confirm, now).unwrap().handle;

    let mut tampered = real.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let forged = LinkTokens::new(b"not-the-secret".to_vec()).confirm(&handle, now);
    let expired = tokens.confirm(&handle, now - chrono::TimeDelta::days(8));
    let unsubscribe = tokens.unsubscribe(&handle, None);
    let preferences = tokens.preferences(&handle);

    let before = web.subscribers();
    let cases: Vec<(&str, &str, String)> = vec![
        ("GET", "/confirm", tampered.clone()),
        ("GET", "/confirm", forged.clone()),
        ("GET", "/confirm", expired.clone()),
        ("GET", "/confirm", unsubscribe.clone()),
        ("GET", "/confirm", preferences.clone()),
        ("GET", "/confirm", String::new()),
        (
            "GET",
            "/confirm",
            "%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
        ),
        ("POST", "/unsubscribe", real.clone()),
        ("POST", "/unsubscribe", preferences.clone()),
        ("POST", "/unsubscribe", forged.clone()),
        ("GET", "/preferences", unsubscribe.clone()),
        ("POST", "/preferences", real.clone()),
        ("POST", "/preferences", tampered.clone()),
    ];
    for (method, path, token) in &cases {
        let url = web.url(&format!("{path}?token={token}"));
        let r = match *method {
            "GET" => web.get(&url),
            _ => web.post_form(
                &url,
                &[("List-Unsubscribe", "One-Click"), ("digest", "daily")],
            ),
        };
        let (status, page) = body(r);
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {token}: {page}"
        );
        if token == &expired {
            assert!(page.contains("This link has expired"), "{page}");
        } else {
            assert!(
                page.contains("This link is not valid"),
                "{method} {path}: {page}"
            );
        }
        assert!(!page.contains("<script>alert"), "{page}");
        assert_eq!(
            web.subscribers(),
            before,
            "{method} {path} changed something"
        );
    }
    assert_eq!(before[0]["status"], "pending");
    // The real one still works after all that.
    let r = web.get(&web.url(&format!("/confirm?token={real}")));
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(web.subscriber("ada@example.com")["status"], "confirmed");
}

#[test]
fn the_sign_up_limits_hold_per_client_and_per_address() {
    let web =
        Web::start("[server]\nsignups_per_hour_per_ip = 4\nsignups_per_hour_per_address = 2\n");
    // Per address: four sign-ups of one address answer alike, and only two messages go out.
    for _ in 0..4 {
        let r = web.subscribe(&[("email", "ada@example.com"), ("digest", "weekly")]);
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().unwrap().contains("Check your inbox"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while web.metric("tidings_web_messages_total{kind=\"confirmation\",outcome=\"sent\"}")
        != Some(2.0)
    {
        assert!(Instant::now() < deadline, "{}", web.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        web.metric("tidings_signups_total{outcome=\"address_limited\"}"),
        Some(2.0)
    );
    assert_eq!(web.mail_for("ada@example.com", 2).len(), 2);
    // Per client: the fifth post from this IP within the hour is refused, whatever the address.
    let r = web.subscribe(&[("email", "bob@example.com"), ("digest", "weekly")]);
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().unwrap().contains("Too many sign-ups"));
    assert!(
        !web.subscribers()
            .iter()
            .any(|s| s["email"] == "bob@example.com")
    );
}

#[test]
fn every_page_escapes_what_was_typed() {
    let web = Web::start("");
    let script = "<script>alert(1)</script>";
    // A refused form shows what was typed, as text.
    let (status, page) = body(web.subscribe(&[
        ("email", &format!("\"{script}\"@x")),
        ("name", script),
        ("digest", "weekly"),
    ]));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!page.contains(script), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("Enter an email address"), "{page}");
    // An accepted one stores the name as typed and mails it escaped in the HTML part.
    web.subscribe(&[
        ("email", "ada@example.com"),
        ("name", script),
        ("digest", "weekly"),
    ]);
    let raw = web.mail_for("ada@example.com", 1).remove(0);
    let message = MessageParser::default().parse(&raw).unwrap();
    let html = message.body_html(0).unwrap();
    assert!(
        !html.contains(script) && html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert_eq!(web.subscriber("ada@example.com")["name"], script);
    // Pages echo nothing from the URL.
    let page = web
        .get(&web.url("/nothing%3Cscript%3E.xml"))
        .text()
        .unwrap();
    assert!(!page.contains("<script"), "{page}");
}

#[test]
fn no_answer_says_whether_an_address_is_subscribed() {
    let web = Web::start("");
    web.env
        .run_ok(&["subscribers", "add", "confirmed@example.com"]);
    web.env.run_ok(&["subscribers", "add", "left@example.com"]);
    web.env
        .run_ok(&["subscribers", "remove", "left@example.com"]);
    web.env
        .run_ok(&["subscribers", "add", "erased@example.com"]);
    let out = web.env.run_with_env(
        &["subscribers", "remove", "erased@example.com", "--forget"],
        &[("TIDINGS_SECRET", SECRET)],
    );
    assert!(out.status.success());
    web.subscribe(&[("email", "pending@example.com"), ("digest", "weekly")]);

    // Status, headers but Date, body.
    type Answer = (StatusCode, Vec<(String, String)>, String);
    let answers: Vec<Answer> = [
        "new@example.com",
        "pending@example.com",
        "confirmed@example.com",
        "left@example.com",
        "erased@example.com",
    ]
    .iter()
    .map(|email| {
        let r = web.subscribe(&[("email", email), ("name", "X"), ("digest", "weekly")]);
        let mut headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        headers.sort();
        (r.status(), headers, r.text().unwrap())
    })
    .collect();
    assert_eq!(answers[0].0, StatusCode::OK);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(
            answer, &answers[0],
            "answer {i} differs from the one for a new address"
        );
    }
    // What differs is only the mail: a confirmed address is told so (with its preferences link), the erased
    // one gets nothing.
    let (text, _) = text_and_header(
        &web.mail_for("confirmed@example.com", 1)[0],
        "List-Unsubscribe",
    );
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("It is already subscribed"), "{text}");
    link(&text, "/preferences?token=");
    web.mail_for("left@example.com", 1);
    web.mail_for("new@example.com", 1);
    assert!(!web.sink.received().contains_key("erased@example.com"));
}

#[test]
fn feeds_are_served_with_etags_and_answer_304_until_they_change() {
    let web = Web::start("");
    let r = web.get(&web.url("/rss.xml"));
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    assert_eq!(
        r.bytes().unwrap().as_ref(),
        std::fs::read(web.env.public("rss.xml")).unwrap()
    );

    let again = web
        .client
        .get(web.url("/rss.xml"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().unwrap().is_empty());
    let since = web
        .client
        .get(web.url("/rss.xml"))
        .header("If-Modified-Since", &modified)
        .send()
        .unwrap();
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);

    for (path, kind) in [
        ("/related.json", "application/json"),
        ("/feed.json", "application/feed+json"),
        ("/category/career/atom.xml", "application/xml"),
    ] {
        let r = web.get(&web.url(path));
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
    }
    for path in [
        "/state.db",
        "/config.toml",
        "/../config.toml",
        "/%2e%2e/config.toml",
        "/.x.json",
    ] {
        assert_eq!(
            web.get(&web.url(path)).status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // A new article: the rebuilt feed has a new ETag, and the old one gets the whole feed again.
    web.env.write_article(
        "brand-new.md",
        "---\ntitle: Brand New\ndate: 2026-11-30T10:00:00+01:00\ncategory: Career\n---\nText.\n",
    );
    web.env.run_ok(&["build"]);
    let r = web
        .client
        .get(web.url("/rss.xml"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.text().unwrap().contains("Brand New"));
}

#[test]
fn health_and_metrics_report_the_state_and_the_ledger() {
    let web = Web::start("");
    let r = web.get(&web.url("/healthz"));
    assert_eq!(
        (r.status(), r.text().unwrap()),
        (StatusCode::OK, "ok\n".to_string())
    );
    send_weekly(&web, &["dee@example.com"]);
    let r = web.get(&web.url("/metrics"));
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().unwrap();
    for line in [
        "tidings_state_up 1",
        "tidings_digest_runs{digest=\"weekly\",outcome=\"finished\"} 1",
        "tidings_messages{digest=\"weekly\",status=\"sent\"} 1",
        "tidings_messages{digest=\"weekly\",status=\"failed\"} 0",
        "tidings_builds_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    // The database gone bad under the server: /healthz says so.
    let db = web.env.path().join("state.db");
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        if path.exists() {
            std::fs::write(
                &path,
                b"not a database at all, not even close to one.........",
            )
            .unwrap();
        }
    }
    let r = web.get(&web.url("/healthz"));
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        r.text().unwrap()
    );
    assert!(
        web.get(&web.url("/metrics"))
            .text()
            .unwrap()
            .contains("tidings_state_up 0")
    );
}

#[test]
fn a_broken_page_template_is_reported_by_check_and_stops_serve_from_starting() {
    let env = TestEnv::new("digest-basic", &config(25, ""));
    let pages = env.path().join("templates/pages");
    std::fs::create_dir_all(&pages).unwrap();
    std::fs::write(
        pages.join("confirmed.hbs"),
        "<h1>Yes</h1>\n{{#each digests}}\n",
    )
    .unwrap();
    let out = env.run(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let file = pages.join("confirmed.hbs").display().to_string();
    assert!(stdout.contains(&format!("{file}:")), "{stdout}");
    let out = env.run_with_env(&["serve"], &[("TIDINGS_SERVER_LISTEN", "127.0.0.1:0")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&file));
}

#[test]
fn a_filled_in_honeypot_gets_the_usual_page_and_nothing_is_stored_or_sent() {
    let web = Web::start("");
    let (status, page) = body(web.subscribe(&[
        ("email", "bot@example.com"),
        ("digest", "weekly"),
        ("website", "https://spam.example.net"),
    ]));
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Check your inbox"), "{page}");
    assert!(web.subscribers().is_empty());
    assert_eq!(
        web.metric("tidings_signups_total{outcome=\"honeypot\"}"),
        Some(1.0)
    );
    assert!(web.sink.received().is_empty());
}

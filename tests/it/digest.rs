//! Digests end to end: the real binary imports subscribers, sends digests at pinned ticks into the file
//! outbox, and every message is checked by `check-eml` (DKIM verified against a key made here with openssl),
//! parsed back with mail-parser part by part, and compared with golden files (`UPDATE_GOLDEN=1` rewrites them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mail_parser::{MessageParser, MimeHeaders};

use crate::support::{
    TestEnv, artifacts, assert_png_written, chromium, elements, project_root, run_checker, shared,
};

const SECRET: &str = "test-secret-for-golden-files";

const CONFIG: &str = r#"
[newsletter]
from = "Test Blog <news@example.com>"
reply_to = "editor@example.com"
public_url = "https://example.com/newsletter/"
postal_address = "1 Test Street, 12345 Testville"

[[digest]]
name = "weekly"
schedule = "0 8 * * MON"
subject = "{{site.title}}: {{first.title}}{{#if more}} and {{more}} more{{/if}}"
max_articles = 10
related = 2

[mail]
outbox = "outbox"

[mail.dkim]
selector = "test"
domain = "example.com"
key_file = "dkim.pem"

[state]
database = "state.db"
"#;

const SUBSCRIBERS: &str = "email,name,digests,categories,subscribed_at
ada@example.com,Ada Park,weekly,,2026-08-01T00:00:00Z
bob@example.com,Bob Stone,weekly,Career,2026-11-24T00:00:00Z
cat@example.com,Cat Lee,weekly,Operations,2026-08-01T00:00:00Z
not-an-address,Bad Row,weekly,,
";

/// Monday ticks (08:00 Berlin) and a time just after each.
const TICK_1: &str = "2026-11-23T09:00:00+01:00";
const TICK_2: &str = "2026-11-30T09:00:00+01:00";
const TICK_3: &str = "2026-12-07T09:00:00+01:00";

/// Runs the binary with a fixed link-token secret.
fn tidings(env: &TestEnv, args: &[&str]) -> Output {
    env.run_with_env(args, &[("TIDINGS_SECRET", SECRET)])
}

fn ok(env: &TestEnv, args: &[&str]) -> String {
    let out = tidings(env, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tidings {args:?} failed:\n{text}");
    text
}

/// Makes an RSA key (PKCS#1, what lettre reads) at `dir/dkim.pem`; returns the DNS TXT record for it.
pub(crate) fn make_dkim_key(dir: &Path) -> String {
    let pem = dir.join("dkim.pem");
    run_checker(
        "openssl",
        &[
            "genrsa",
            "-traditional",
            "-out",
            pem.to_str().unwrap(),
            "2048",
        ],
    );
    let out = Command::new("openssl")
        .args([
            "rsa",
            "-in",
            pem.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
        ])
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    format!("v=DKIM1; k=rsa; p={}", base64(&out.stdout))
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fixture world with the digest config, a DKIM key and the subscriber list imported.
fn digest_env() -> (TestEnv, String) {
    let env = TestEnv::new("digest-basic", CONFIG);
    let txt = make_dkim_key(env.path());
    std::fs::write(env.path().join("subscribers.csv"), SUBSCRIBERS).unwrap();
    let out = tidings(&env, &["subscribers", "import", "subscribers.csv"]);
    assert_eq!(out.status.code(), Some(1), "a bad row makes import exit 1");
    (env, txt)
}

/// The outbox's messages, by recipient.
fn outbox(env: &TestEnv) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let dir = env.path().join("outbox");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let message = MessageParser::default()
            .parse(&raw)
            .expect("mail-parser reads it");
        let to = message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap()
            .to_string();
        assert!(
            found.insert(to.clone(), path).is_none(),
            "two messages to {to}"
        );
    }
    found
}

/// Sends the weekly digest at `now` into a fresh outbox; returns the messages, checked against what the command
/// reported (one line per message on stdout), so an outbox that cannot be read never looks like "nothing sent".
fn send(env: &TestEnv, now: &str) -> BTreeMap<String, PathBuf> {
    std::fs::remove_dir_all(env.path().join("outbox")).ok();
    let out = tidings(env, &["digest", "send", "weekly", "--now", now]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "digest send at {now} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = outbox(env);
    assert_eq!(
        sent.len(),
        stdout.lines().count(),
        "the outbox holds what the command reported:\n{stdout}"
    );
    sent
}

/// Titles of the new articles in a message (its text part's article headings, in order).
fn titles(path: &Path) -> Vec<String> {
    let raw = std::fs::read(path).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let lines: Vec<&str> = text.lines().collect();
    // Each article block: an optional "[CATEGORY]" line, then the title, then "date · N min read".
    lines
        .windows(2)
        .filter(|w| {
            w[1].contains(" min read") && !w[0].starts_with("* ") && !w[0].starts_with("  ")
        })
        .map(|w| w[0].to_string())
        .collect()
}

#[test]
fn each_subscriber_gets_the_articles_new_to_them_tick_after_tick() {
    let (env, _) = digest_env();

    // Tick 1: Ada (subscribed in August) gets what appeared since then; Bob subscribed after the tick; Cat
    // follows a category with no articles: no mail for either.
    let first = send(&env, TICK_1);
    assert_eq!(first.keys().collect::<Vec<_>>(), ["ada@example.com"]);
    assert_eq!(
        titles(&first["ada@example.com"]),
        ["Edited Old Piece", "Old Career Piece", "Old Tools Piece"]
    );

    // Tick 2: only what is new since tick 1; the edited article is not new, the draft and the future one wait.
    let second = send(&env, TICK_2);
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        ["ada@example.com", "bob@example.com"]
    );
    let ada = titles(&second["ada@example.com"]);
    assert_eq!(ada.len(), 3, "{ada:?}");
    assert!(ada[0].starts_with("Release <b>notes</b> & more"), "{ada:?}");
    assert_eq!(ada[1..], ["New Career Piece", "New Tools Piece"]);
    // Bob: new subscriber with a Career filter.
    assert_eq!(titles(&second["bob@example.com"]), ["New Career Piece"]);

    // Tick 3: the future article, now that its date has come.
    let third = send(&env, TICK_3);
    assert_eq!(third.keys().collect::<Vec<_>>(), ["ada@example.com"]);
    assert_eq!(titles(&third["ada@example.com"]), ["Future Piece"]);
}

#[test]
fn sending_the_same_tick_again_sends_nothing() {
    let (env, _) = digest_env();
    assert_eq!(send(&env, TICK_2).len(), 2);
    let again = send(&env, "2026-11-30T20:00:00+01:00");
    assert!(again.is_empty(), "the tick's run is recorded: {again:?}");
}

#[test]
fn every_message_passes_check_eml_with_a_verified_dkim_signature() {
    let (env, txt) = digest_env();
    let mut checked = 0;
    for (tick, expected) in [(TICK_1, 1), (TICK_2, 2), (TICK_3, 1)] {
        let sent = send(&env, tick);
        assert_eq!(sent.len(), expected, "{tick}: {sent:?}");
        for path in sent.values() {
            checked += 1;
            let report = run_checker(
                &shared().join("validators/check-eml").display().to_string(),
                &["--dkim-txt", &txt, path.to_str().unwrap()],
            );
            assert!(report.contains("dkim          PASS"), "{report}");
        }
    }
    assert_eq!(checked, 4);
}

#[test]
fn messages_parse_back_part_by_part() {
    let (env, _) = digest_env();
    let sent = send(&env, TICK_2);
    let raw = std::fs::read(&sent["bob@example.com"]).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();

    // Structure: multipart/alternative with text/plain first, then text/html (asserted on the parts
    // themselves: mail-parser would invent a text body for HTML-only mail).
    let root = &message.parts[0];
    let ct = root.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let kinds: Vec<String> = message.parts[1..]
        .iter()
        .map(|p| {
            let ct = p.content_type().unwrap();
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
        })
        .collect();
    assert_eq!(kinds, ["text/plain", "text/html"]);

    // Headers.
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("news@example.com"));
    assert_eq!(message.subject(), Some("Test Blog: New Career Piece"));
    let id = message.message_id().unwrap();
    assert!(
        id.starts_with("weekly.20261130T070000Z.") && id.ends_with("@example.com"),
        "{id}"
    );
    // One https URL with an opaque token: no address in it, and no mailto: (nothing reads such mail).
    let unsubscribe = message.header_raw("List-Unsubscribe").unwrap().trim();
    assert!(
        unsubscribe.starts_with("<https://example.com/newsletter/unsubscribe?token=")
            && unsubscribe.ends_with('>')
            && unsubscribe.matches('<').count() == 1,
        "{unsubscribe}"
    );
    assert!(!unsubscribe.contains("bob") && !unsubscribe.contains("mailto"));
    assert_eq!(
        message.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        message
            .header_raw("List-Id")
            .unwrap()
            .contains("<weekly.example.com>")
    );
    assert_eq!(
        message.date().unwrap().to_rfc3339(),
        "2026-11-30T08:00:00Z",
        "the Date header is the pinned now"
    );

    // Parts: the text part is a real plain-text digest with the related reading; the HTML is inlined.
    let text = message.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        text.contains("New Career Piece\n26 Nov 2026 · 1 min read"),
        "{text}"
    );
    assert!(
        text.contains("RELATED READING\n\n* Old Career Piece"),
        "{text}"
    );
    assert!(
        !text.contains("&#x3D;") && !text.contains("<p"),
        "plain text is neither escaped nor HTML"
    );
    let html = message.body_html(0).unwrap();
    assert!(!html.contains("<style"), "CSS is inlined");
    assert!(html.contains("style=\""), "CSS is inlined");
    assert!(
        html.contains("href=\"https://example.com/blog/posts/new-career/\""),
        "{html}"
    );
}

#[test]
fn a_hostile_title_cannot_inject_a_header_and_is_escaped_in_html() {
    let (env, _) = digest_env();
    let sent = send(&env, TICK_2);
    let raw = std::fs::read(&sent["ada@example.com"]).unwrap();
    let head = String::from_utf8_lossy(&raw);
    let head = head.split("\r\n\r\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{head}"
    );
    let message = MessageParser::default().parse(&raw).unwrap();
    let subject = message.subject().unwrap();
    assert!(
        !subject.contains('\r') && !subject.contains('\n'),
        "{subject:?}"
    );
    assert!(
        subject.starts_with("Test Blog: Release <b>notes</b> & more Bcc: victim@example.net"),
        "{subject}"
    );
    let html = message.body_html(0).unwrap();
    assert!(
        html.contains("Release &lt;b&gt;notes&lt;/b&gt; &amp; more"),
        "{html}"
    );
    assert!(
        !html.contains("<b>notes") && !html.contains("<script>"),
        "{html}"
    );
}

/// `text` with every link token's value replaced by `TOKEN`: a token names the subscriber by a random handle
/// given when they were stored, so it differs from run to run (the token tests are in `mail::token` and `web`).
fn without_tokens(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("token=") {
        out.push_str(&rest[..at + "token=".len()]);
        out.push_str("TOKEN");
        rest = rest[at + "token=".len()..]
            .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    }
    out.push_str(rest);
    out
}

/// Compares `actual` (its link tokens masked) with `tests/golden/<name>`, or rewrites it when UPDATE_GOLDEN=1.
fn golden(name: &str, actual: &str) {
    let actual = without_tokens(actual);
    let path = project_root().join("tests/golden").join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the output; review and run with UPDATE_GOLDEN=1 to accept.\n--- actual ---\n{actual}",
        path.display()
    );
}

#[test]
fn rendered_parts_match_the_golden_files() {
    let (env, _) = digest_env();
    assert_eq!(send(&env, TICK_1).len(), 1);
    let sent = send(&env, TICK_2);
    assert_eq!(
        sent.keys().collect::<Vec<_>>(),
        ["ada@example.com", "bob@example.com"]
    );
    for (who, file) in [("ada", "ada@example.com"), ("bob", "bob@example.com")] {
        let raw = std::fs::read(&sent[file]).unwrap();
        let message = MessageParser::default().parse(&raw).unwrap();
        golden(&format!("digest-{who}.txt"), &message.body_text(0).unwrap());
        golden(
            &format!("digest-{who}.html"),
            &message.body_html(0).unwrap(),
        );
    }
}

#[test]
fn related_reading_skips_what_the_subscriber_just_got() {
    let (env, _) = digest_env();
    let first = send(&env, TICK_1);
    assert_eq!(titles(&first["ada@example.com"]).len(), 3);
    let sent = send(&env, TICK_2);
    assert_eq!(
        sent.keys().collect::<Vec<_>>(),
        ["ada@example.com", "bob@example.com"]
    );
    // A real digest with her three new articles, and no related reading.
    assert_eq!(titles(&sent["ada@example.com"]).len(), 3);
    let raw = std::fs::read(&sent["ada@example.com"]).unwrap();
    let text = MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    // Ada got every older article in her first digest; none is offered again.
    assert!(!text.contains("RELATED READING"), "{text}");
    let raw = std::fs::read(&sent["bob@example.com"]).unwrap();
    let text = MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(text.contains("* Old Career Piece"), "{text}");
    assert!(
        !text.contains("* New Career Piece"),
        "never an article already in the digest"
    );
}

/// A subscriber's category filter matches an article's category by slug, the rule that names the category's
/// feed folder: "career-advice" (as in `category/career-advice/`) and "Économie" match "Career Advice" and
/// "économie" (ASCII-only case folding missed the É).
#[test]
fn a_category_filter_matches_categories_by_their_slug() {
    let env = TestEnv::new("digest-basic", CONFIG);
    make_dkim_key(env.path());
    for (slug, category) in [("advice", "Career Advice"), ("economy", "économie")] {
        env.write_article(
            &format!("{slug}.md"),
            format!(
                "---\ntitle: \"{category} Piece\"\ndate: 2026-11-28T09:00:00+01:00\ncategory: \"{category}\"\n---\nText.\n"
            ),
        );
    }
    for (email, category) in [
        ("dee@example.com", "career-advice"),
        ("eve@example.com", "Économie"),
    ] {
        // `--now` before the subcommand: they subscribed before the articles appeared.
        ok(
            &env,
            &[
                "--now",
                "2026-11-24T00:00:00+01:00",
                "subscribers",
                "add",
                email,
                "--category",
                category,
            ],
        );
    }
    let sent = send(&env, TICK_2);
    assert_eq!(
        sent.keys().collect::<Vec<_>>(),
        ["dee@example.com", "eve@example.com"]
    );
    assert_eq!(titles(&sent["dee@example.com"]), ["Career Advice Piece"]);
    assert_eq!(titles(&sent["eve@example.com"]), ["économie Piece"]);
}

#[test]
fn import_reports_bad_rows_by_line_and_keeps_the_good_ones() {
    let env = TestEnv::new("digest-basic", CONFIG);
    std::fs::write(env.path().join("subscribers.csv"), SUBSCRIBERS).unwrap();
    let out = tidings(&env, &["subscribers", "import", "subscribers.csv"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("subscribers.csv:5: error: \"not-an-address\" is not an email address"),
        "{stderr}"
    );
    assert!(stderr.contains("3 added"), "{stderr}");
    // Importing again changes nothing.
    let again = tidings(&env, &["subscribers", "import", "subscribers.csv"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 added, 0 updated, 3 unchanged"));

    let out = tidings(&env, &["subscribers", "list", "--format", "json"]);
    assert!(out.status.success());
    let list: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("list --format json is JSON");
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["email"], "bob@example.com");
    assert_eq!(rows[1]["status"], "confirmed");
    assert_eq!(rows[1]["categories"], serde_json::json!(["Career"]));
    assert_eq!(
        rows[1]["created"], "2026-11-24T00:00:00Z",
        "subscribed_at is kept"
    );
}

#[test]
fn subscribers_can_be_added_listed_by_digest_and_removed() {
    let env = TestEnv::new("digest-basic", CONFIG);
    ok(
        &env,
        &[
            "subscribers",
            "add",
            "Dee@Example.com",
            "--name",
            "Dee",
            "--category",
            "Tools",
        ],
    );
    let csv = ok(
        &env,
        &[
            "subscribers",
            "list",
            "--digest",
            "weekly",
            "--format",
            "csv",
        ],
    );
    assert!(
        csv.contains("dee@example.com,Dee,confirmed,weekly,Tools,"),
        "{csv}"
    );
    let bad = tidings(
        &env,
        &["subscribers", "add", "x@example.com", "--digest", "monthly"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no [[digest]] named \"monthly\""));
    // A category no article has (a typo) is refused, naming the known ones; nothing is stored.
    let bad = tidings(
        &env,
        &["subscribers", "add", "x@example.com", "--category", "Toolz"],
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("unknown category \"Toolz\"; known categories: ")
            && stderr.contains("Tools"),
        "{stderr}"
    );
    assert!(!ok(&env, &["subscribers", "list"]).contains("x@example.com"));
    // Removing unsubscribes and remembers; an add cannot bring them back without --resubscribe.
    ok(&env, &["subscribers", "remove", "dee@example.com"]);
    let table = ok(&env, &["subscribers", "list"]);
    assert!(
        table.contains("dee@example.com") && table.contains("unsubscribed"),
        "{table}"
    );
    let again = ok(&env, &["subscribers", "add", "dee@example.com"]);
    assert!(again.contains("left as is"), "{again}");
    // --forget erases the person; only a keyed hash stays, which still keeps them out.
    ok(
        &env,
        &["subscribers", "remove", "dee@example.com", "--forget"],
    );
    let table = ok(&env, &["subscribers", "list"]);
    assert!(table.contains("0 subscriber(s)"), "{table}");
    for file in ["state.db", "state.db-wal"] {
        let bytes = std::fs::read(env.path().join(file)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("dee@example.com"),
            "the address is not left in {file}"
        );
    }
    let again = ok(&env, &["subscribers", "add", "dee@example.com"]);
    assert!(
        again.contains("forgotten on request earlier; not added"),
        "{again}"
    );
    let back = ok(
        &env,
        &["subscribers", "add", "dee@example.com", "--resubscribe"],
    );
    assert!(back.contains("subscribed again"), "{back}");
}

#[test]
fn a_template_error_names_its_file_and_line() {
    let env = TestEnv::new("digest-basic", CONFIG);
    make_dkim_key(env.path());
    let templates = env.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("digest.txt.hbs"),
        "{{site.title}}\n\n{{no_such_variable}}\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("digest.html.hbs"),
        "<p>\n{{#each articles}}\n{{title}\n</p>\n",
    )
    .unwrap();
    let out = tidings(&env, &["check"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    let html = templates.join("digest.html.hbs").display().to_string();
    assert!(
        all.contains(&format!("{html}:3:")),
        "the syntax error is located: {all}"
    );

    // With the HTML fixed, the strict-mode error in the text template is found at render time.
    std::fs::write(templates.join("digest.html.hbs"), "<p>{{site.title}}</p>\n").unwrap();
    let out = tidings(&env, &["check"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = templates.join("digest.txt.hbs").display().to_string();
    assert!(
        all.contains(&format!("{text}:3:")) && all.contains("no_such_variable"),
        "{all}"
    );
}

#[test]
fn preview_explains_the_next_digest_without_sending_or_recording() {
    let (env, _) = digest_env();
    // The tick of 23 November was never sent: it is what the next send would send, so the preview shows it.
    let due = ok(
        &env,
        &[
            "digest",
            "preview",
            "weekly",
            "--to",
            "ada@example.com",
            "--now",
            "2026-11-29T12:00:00+01:00",
        ],
    );
    assert!(
        due.contains("at the tick due now, 2026-11-23 08:00 CET"),
        "{due}"
    );
    assert_eq!(send(&env, TICK_1).len(), 1);
    std::fs::remove_dir_all(env.path().join("outbox")).unwrap();
    let out = ok(
        &env,
        &[
            "digest",
            "preview",
            "weekly",
            "--to",
            "bob@example.com",
            "--now",
            "2026-11-29T12:00:00+01:00",
            "--out",
            "preview.eml",
        ],
    );
    assert!(
        out.contains("at the next tick, 2026-11-30 08:00 CET"),
        "{out}"
    );
    assert!(out.contains("they subscribed; no digest yet"), "{out}");
    assert!(out.contains("subscriber: Career"), "{out}");
    assert!(
        out.contains("new-career") && out.contains("old-career  (for new-career)"),
        "{out}"
    );
    assert!(env.path().join("preview.eml").is_file());
    assert!(outbox(&env).is_empty(), "a preview sends nothing");
    // Nothing was recorded: the real send of that tick still goes out.
    assert_eq!(send(&env, TICK_2).len(), 2);

    let quiet = ok(
        &env,
        &[
            "digest",
            "preview",
            "weekly",
            "--to",
            "cat@example.com",
            "--now",
            TICK_2,
        ],
    );
    assert!(
        quiet.contains("nothing new for them in the window: no mail would be sent"),
        "{quiet}"
    );
}

/// The sample site's digest as a browser shows it: headless Chromium loads one subscriber's HTML part, and the DOM
/// it builds holds the subject as its title, the new articles' titles in order (the text part's, too) and one
/// unsubscribe link, the List-Unsubscribe URL. The screenshot is kept for a reviewer at
/// `target/test-artifacts/digest.png` (the HTML beside it); it is an artifact, not the assertion.
#[test]
fn sample_digest_in_headless_chromium_shows_subject_articles_and_unsubscribe_link() {
    let env = TestEnv::sample();
    let txt = make_dkim_key(env.path());
    let mut config = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
    config.push_str("\n[mail.dkim]\nselector = \"tidings\"\ndomain = \"blog.example.com\"\nkey_file = \"dkim.pem\"\n");
    std::fs::write(env.path().join("config.toml"), config).unwrap();
    ok(&env, &["subscribers", "import", "data/subscribers.csv"]);
    let sent = send(&env, "2026-11-30T09:00:00+01:00");
    assert_eq!(
        sent.len(),
        6,
        "every sample subscriber has something new: {sent:?}"
    );
    for path in sent.values() {
        run_checker(
            &shared().join("validators/check-eml").display().to_string(),
            &["--dkim-txt", &txt, path.to_str().unwrap()],
        );
    }
    // Linus follows Operations and Tools, subscribed 2026-09-20.
    let expected = [
        "Runbooks Worth Opening at 3 a.m.",
        "Keeping a Work Log: Five Minutes a Day, Compounding",
        "A Config File You Can Reason About",
        "Blameless Postmortems That Actually Change Things",
    ];
    let path = &sent["linus@example.com"];
    assert_eq!(titles(path), expected, "the text part");
    let raw = std::fs::read(path).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let subject = message.subject().unwrap().to_string();
    assert_eq!(
        subject,
        "Field Notes on Software: Runbooks Worth Opening at 3 a.m. and 3 more"
    );
    let header = message.header_raw("List-Unsubscribe").unwrap();
    let unsubscribe = header
        .split(['<', '>'])
        .find(|part| part.starts_with("https://"))
        .unwrap_or_else(|| panic!("no https URL in List-Unsubscribe: {header}"));
    assert!(
        unsubscribe.starts_with("https://blog.example.com/newsletter/unsubscribe?token=")
            && !unsubscribe.contains("linus"),
        "{unsubscribe}"
    );

    let page = artifacts().join("digest.html");
    std::fs::write(&page, message.body_html(0).unwrap().as_bytes()).unwrap();
    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url]);

    let title: Vec<String> = elements(&dom, "title")
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(title, [subject.as_str()], "the page title is the subject");
    let headings: Vec<String> = elements(&dom, "h2").into_iter().map(|e| e.text).collect();
    assert_eq!(
        headings, expected,
        "one heading per new article, newest first"
    );
    let links = elements(&dom, "a");
    for title in expected {
        let link = links
            .iter()
            .find(|a| a.text == title)
            .unwrap_or_else(|| panic!("no link titled {title:?}"));
        assert!(
            link.attr("href")
                .is_some_and(|h| h.starts_with("https://blog.example.com/posts/")),
            "{title}: {link:?}"
        );
    }
    let unsubscribe_links: Vec<String> = links
        .iter()
        .filter(|a| a.text == "Unsubscribe")
        .map(|a| a.attr("href").unwrap_or_default())
        .collect();
    assert_eq!(
        unsubscribe_links,
        [unsubscribe],
        "one unsubscribe link, the List-Unsubscribe URL"
    );

    let png = artifacts().join("digest.png");
    std::fs::remove_file(&png).ok();
    chromium(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=760,1700",
        &url,
    ]);
    assert_png_written(&png);
}

#[test]
fn check_warns_when_a_full_digest_would_be_clipped_by_gmail() {
    let env = TestEnv::new("digest-basic", CONFIG);
    make_dkim_key(env.path());
    let out = tidings(&env, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && !stderr.contains("clipping"),
        "{stderr}"
    );

    let templates = env.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let padding = "<p>A long and wordy introduction that nobody reads.</p>\n".repeat(2_000);
    std::fs::write(
        templates.join("digest.html.hbs"),
        format!("<html><body>{padding}{{{{#each articles}}}}<p>{{{{title}}}}</p>{{{{/each}}}}</body></html>\n"),
    )
    .unwrap();
    let out = tidings(&env, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: digest \"weekly\": the HTML part of a full digest"),
        "{stderr}"
    );
    assert!(
        stderr.contains("over Gmail's clipping limit of 104448"),
        "{stderr}"
    );
}

/// The README's first command on the sample site: import the sample subscribers, then one round of the service.
#[test]
fn run_once_builds_feeds_and_sends_each_digest_tick_once() {
    let env = TestEnv::sample();
    ok(&env, &["subscribers", "import", "data/subscribers.csv"]);
    let first = ok(
        &env,
        &["run", "--once", "--now", "2026-11-30T09:00:00+01:00"],
    );
    assert!(
        env.public("atom.xml").is_file() && env.public("related.json").is_file(),
        "{first}"
    );
    let sent = outbox(&env);
    assert_eq!(sent.len(), 6, "one digest per sample subscriber: {sent:?}");
    let again = ok(
        &env,
        &["run", "--once", "--now", "2026-11-30T10:00:00+01:00"],
    );
    assert!(
        again.contains("already sent; nothing sent again"),
        "{again}"
    );
    assert_eq!(outbox(&env).len(), 6, "the same tick is never sent twice");
}

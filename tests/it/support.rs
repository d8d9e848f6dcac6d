//! `TestEnv`: an isolated world for one test — a temp folder with a copy of a fixture store, a config written
//! for it, and the real `tidings` binary to run against it. Also the external checkers the tests call; a checker
//! that is missing fails the test loudly (scripts/test installs them).
//!
//! No test reads the wall clock: every run of the binary gets `--now` ([`NOW`] unless the test passes its own),
//! so the suite gives the same answers on any day (`faketime -f '+5y'` included).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// The instant every command runs at unless a test passes its own `--now`: after the newest published article of
/// the fixtures (the frozen sample's is dated 2026-11-17; its future one, 2027-03-01, stays unpublished).
pub const NOW: &str = "2026-12-01T12:00:00+01:00";

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

/// The project root (where Cargo.toml is).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project, where the validators live (in CI as on a developer's machine).
pub fn shared() -> PathBuf {
    let shared = project_root().join("../shared");
    assert!(
        shared.join("validators").is_dir(),
        "../shared/validators is missing: {}",
        shared.display()
    );
    shared
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl TestEnv {
    /// A world whose store is `tests/fixtures/<fixture>` (copied to `articles/`) and whose config is the
    /// minimal one below plus `extra_config` (TOML appended to it).
    pub fn new(fixture: &str, extra_config: &str) -> TestEnv {
        let env = TestEnv::empty();
        copy_dir(
            &project_root().join("tests/fixtures").join(fixture),
            &env.path().join("articles"),
        );
        env.write_config(extra_config);
        env
    }

    /// A world with an empty `articles/` folder and no config yet.
    pub fn empty() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("articles")).unwrap();
        TestEnv { dir }
    }

    /// A world with the frozen sample site `tests/fixtures/sample/` (a copy of the project's config.toml,
    /// data/articles and data/subscribers.csv): tests that assert its counts and titles use it, so an article a
    /// user adds to data/ breaks none of them. The digest templates are the built-in ones.
    pub fn sample() -> TestEnv {
        let env = TestEnv::empty();
        copy_dir(&project_root().join("tests/fixtures/sample"), env.path());
        env
    }

    /// A world with a copy of the project's live sample site (config.toml, data/ and templates/ as they are now).
    /// Only for tests that assert what holds for any valid sample: it is the user's to change.
    pub fn live_sample() -> TestEnv {
        let env = TestEnv::empty();
        // The sample's sources only: never a developer's local state database or outbox.
        for part in ["articles", "static"] {
            let from = project_root().join("data").join(part);
            if from.is_dir() {
                copy_dir(&from, &env.path().join("data").join(part));
            }
        }
        std::fs::copy(
            project_root().join("data/subscribers.csv"),
            env.path().join("data/subscribers.csv"),
        )
        .unwrap();
        std::fs::copy(
            project_root().join("config.toml"),
            env.path().join("config.toml"),
        )
        .unwrap();
        let templates = project_root().join("templates");
        if templates.is_dir() {
            copy_dir(&templates, &env.path().join("templates"));
        }
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, extra: &str) {
        let config = format!(
            "[site]\ntitle = \"Test Blog\"\nbase_url = \"https://example.com/blog/\"\ndescription = \"A test\"\n\
             timezone = \"Europe/Berlin\"\narticles = \"articles\"\n\n[authors.ann]\nname = \"Ann Author\"\n\n{extra}\n"
        );
        std::fs::write(self.path().join("config.toml"), config).unwrap();
    }

    pub fn write_article(&self, rel: &str, text: impl AsRef<[u8]>) {
        let path = self.path().join("articles").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Runs `tidings --config <env>/config.toml [--now NOW] ARGS` in the env's folder: `--now` is [`NOW`] unless
    /// `args` give one (clap refuses it twice).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_env(args, &[])
    }

    /// [`TestEnv::run`] with extra environment variables (`TIDINGS_*` overrides, secrets, thread counts).
    pub fn run_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let pinned = args
            .iter()
            .any(|a| *a == "--now" || a.starts_with("--now="));
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
        command.arg("--config").arg(self.path().join("config.toml"));
        if !pinned {
            command.args(["--now", NOW]);
        }
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("TIDINGS_CONFIG")
            .envs(vars.iter().copied())
            .output()
            .expect("the tidings binary runs")
    }

    /// Runs and asserts success; returns stderr.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "tidings {args:?} failed: {stderr}{}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    pub fn public(&self, rel: &str) -> PathBuf {
        self.path().join("public").join(rel)
    }

    pub fn read_public(&self, rel: &str) -> String {
        std::fs::read_to_string(self.public(rel))
            .unwrap_or_else(|e| panic!("reading public/{rel}: {e}"))
    }
}

/// An mtime long past (2001-09-09). A file set to it still has it if nothing rewrote it; a rewrite gives it the
/// time of writing. Tests compare against it instead of sleeping until the clock moves on.
/// Imports `n` weekly subscribers since August, `Reader i` at `address(i)`, from a CSV file written in `env`:
/// `tidings [before…] subscribers import` with `secret` as `TIDINGS_SECRET`; panics with tidings' errors if
/// the import fails.
pub fn import_readers(
    env: &TestEnv,
    n: usize,
    address: impl Fn(usize) -> String,
    before: &[&str],
    secret: &str,
) {
    let mut csv = String::from("email,name,digests,categories,subscribed_at\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{},Reader {i},weekly,,2026-08-01T00:00:00Z\n",
            address(i)
        ));
    }
    std::fs::write(env.path().join("subscribers.csv"), csv).unwrap();
    let args: Vec<&str> = before
        .iter()
        .copied()
        .chain(["subscribers", "import", "subscribers.csv"])
        .collect();
    let out = env.run_with_env(&args, &[("TIDINGS_SECRET", secret)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn long_ago() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)
}

/// Sets the mtime of `path` to `time` (the file is opened for writing, never truncated).
pub fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(time))
        .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

/// Sets every file under `dir` to [`long_ago`]; returns their paths relative to `dir`, sorted.
pub fn age_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            set_mtime(entry.path(), long_ago());
            files.push(rel(dir, entry.path()));
        }
    }
    files
}

/// The files under `dir` (relative paths, sorted) whose mtime is no longer [`long_ago`]: those written since
/// [`age_files`], new ones included.
pub fn rewritten_files(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.metadata().unwrap().modified().unwrap() != long_ago())
        .map(|e| rel(dir, e.path()))
        .collect()
}

fn rel(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap().display().to_string()
}

/// Runs an external checker; panics with its output when it cannot run (missing tool) or fails.
pub fn run_checker(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); run scripts/test, which installs it")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// Runs headless Chromium with the flags this machine needs (no network beyond loopback, a fresh profile);
/// returns its stdout (the DOM with `--dump-dom`).
pub fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}); run scripts/test, which installs it")
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `target/test-artifacts/`: screenshots and pages kept for a reviewer.
pub fn artifacts() -> PathBuf {
    let dir = project_root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts a screenshot was written to `path` (a PNG). Only that: a screenshot is an artifact for a reviewer, what
/// the page shows is asserted on the DOM ([`elements`]).
pub fn assert_png_written(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        path.display()
    );
}

/// One element of a DOM that Chromium serialized with `--dump-dom`.
#[derive(Debug)]
pub struct Element {
    /// The start tag's attributes as serialized (` href="…" class="…"`).
    attributes: String,
    /// Its text: markup removed, entities decoded, whitespace collapsed.
    pub text: String,
}

impl Element {
    /// An attribute's value, entities decoded.
    pub fn attr(&self, name: &str) -> Option<String> {
        let key = format!(" {name}=\"");
        let start = self.attributes.find(&key)? + key.len();
        let len = self.attributes[start..].find('"')?;
        Some(decode_entities(&self.attributes[start..start + len]))
    }
}

/// Every `<tag …>…</tag>` of `dom` in document order. Chromium's serializer is regular (lowercase names,
/// double-quoted attributes, `&amp;` `&lt;` `&gt;` `&quot;` `&nbsp;` as the only entities), which is what makes
/// this small reader enough; it does not handle an element nested inside one of the same name.
pub fn elements(dom: &str, tag: &str) -> Vec<Element> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = dom;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        if !after.starts_with([' ', '>']) {
            rest = after;
            continue;
        }
        // The start tag ends at the first `>` outside a quoted attribute value.
        let mut quoted = false;
        let Some(gt) = after.find(|c: char| {
            if c == '"' {
                quoted = !quoted;
            }
            c == '>' && !quoted
        }) else {
            break;
        };
        let inner = &after[gt + 1..];
        let Some(end) = inner.find(&close) else { break };
        found.push(Element {
            attributes: after[..gt].to_string(),
            text: text_of(&inner[..end]),
        });
        rest = &inner[end + close.len()..];
    }
    found
}

fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    decode_entities(&text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// A URL to a new, empty schema (`<name>_<random>`) of the test PostgreSQL server (`TEST_POSTGRES_URL`, which
/// `scripts/test` sets after starting a throwaway cluster): the URL's `search_path` option makes every connection
/// of the binary work in that schema, so tests share the server without seeing each other's tables. Fails, saying
/// how to get a server, when none is named: these tests never skip. (Not a `TIDINGS_` variable: the binary reads
/// those as config overrides.)
pub fn fresh_postgres_schema(name: &str) -> String {
    let server = std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL \
         cluster (or `scripts/postgres start DIR` and export the URL it prints)",
    );
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let schema = format!("{name}_{}", hex::encode(bytes));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {server}: {e}"));
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap_or_else(|e| panic!("creating schema {schema} at {server}: {e}"));
    });
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-csearch_path%3D{schema}")
}

//! The build cache: a build that starts from the last build's cache publishes byte for byte what a build from
//! nothing publishes, after every kind of change, and a build after no change writes nothing.
//!
//! Two copies of one store take the same changes: `warm` keeps its cache from build to build, `cold` loses its
//! cache and its output before each build. After each change both build and their published folders, and the
//! errors they report, must be equal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{NOW, TestEnv, age_files, rewritten_files};

/// A Zola blog whose posts link to each other (`@/blog/second-post.md`), one link to a post that is not there
/// (`@/blog/deleted.md`), and one article with a bad date (reported, the rest published).
fn blog() -> TestEnv {
    let env = TestEnv::new("zola-blog", "[feeds]\nper_tag = true\nper_author = true\n");
    let path = env.path().join("config.toml");
    let config = std::fs::read_to_string(&path).unwrap().replace(
        "articles = \"articles\"",
        "articles = \"articles/content\"\npermalink = \"/blog/{slug}/\"",
    );
    std::fs::write(path, config).unwrap();
    env.write_article(
        "content/blog/broken.md",
        "+++\ntitle = \"Broken\"\ndate = 2024-13-01\n+++\nA date that is not one.\n",
    );
    env
}

struct Pair {
    warm: TestEnv,
    cold: TestEnv,
}

/// What one build published and reported, paths made relative to its env.
#[derive(Debug, PartialEq)]
struct Build {
    files: BTreeMap<String, Vec<u8>>,
    errors: Vec<String>,
}

/// The `parsed=N reused=M` of a build's log line.
fn counts(stderr: &str) -> (usize, usize) {
    let field = |name: &str| -> usize {
        let at = stderr
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name}= in {stderr}"));
        stderr[at + name.len() + 1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("parsed"), field("reused"))
}

fn published(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn cache_dir(env: &TestEnv) -> PathBuf {
    env.path().join("data/tidings-cache")
}

impl Pair {
    fn new() -> Pair {
        Pair {
            warm: blog(),
            cold: blog(),
        }
    }

    fn change(&self, f: impl Fn(&TestEnv)) {
        f(&self.warm);
        f(&self.cold);
    }

    /// Builds both at `now`; returns the warm build's `(parsed, reused)` after checking that it equals the cold one.
    fn build(&self, now: &str, what: &str) -> (usize, usize) {
        let warm_log = self.warm.run_ok(&["--now", now, "build"]);
        for dir in [cache_dir(&self.cold)] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).unwrap();
            }
        }
        let cold_log = self.cold.run_ok(&["--now", now, "build"]);
        let (parsed, reused) = counts(&cold_log);
        assert_eq!(reused, 0, "the cold build parses everything: {cold_log}");
        assert!(parsed >= 6, "{cold_log}");
        let result = |env: &TestEnv, log: &str| Build {
            files: published(&env.path().join("public")),
            errors: log
                .lines()
                .filter(|l| l.contains(": error: "))
                .map(|l| l.replace(&env.path().display().to_string(), "<env>"))
                .collect(),
        };
        let (warm, cold) = (result(&self.warm, &warm_log), result(&self.cold, &cold_log));
        assert!(warm.files.len() > 10, "{:?}", warm.files.keys());
        assert!(
            warm.errors.iter().any(|e| e.contains("broken.md")),
            "the bad date is reported: {warm_log}"
        );
        assert!(
            warm.files == cold.files,
            "after {what}, the cached build differs from a cold one in {:?}",
            warm.files
                .keys()
                .chain(cold.files.keys())
                .filter(|k| warm.files.get(*k) != cold.files.get(*k))
                .collect::<std::collections::BTreeSet<_>>()
        );
        assert_eq!(warm.errors, cold.errors, "after {what}");
        counts(&warm_log)
    }
}

fn edit(env: &TestEnv, rel: &str, f: impl Fn(String) -> String) {
    let path = env.path().join("articles/content").join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, f(text)).unwrap();
}

#[test]
fn a_cached_build_publishes_what_a_cold_build_does_after_every_kind_of_change() {
    let pair = Pair::new();
    let total = pair.build(NOW, "the first build");
    assert_eq!(total.1, 0, "nothing to reuse yet");
    let files = total.0;

    // Settled files (their mtimes long past) are trusted by their stamps: nothing is read or parsed.
    age_files(&pair.warm.path().join("articles"));
    let (parsed, _) = pair.build(NOW, "no change");
    assert_eq!(parsed, 0);

    pair.change(|env| {
        edit(env, "blog/first-post.md", |t| {
            t.replace("Welcome", "Hello again")
        })
    });
    let (parsed, reused) = pair.build(NOW, "an edit");
    assert!(parsed >= 1 && reused >= files - 3, "{parsed} {reused}");

    // The bundle links to @/blog/deleted.md, which now exists: its body changes although its file did not.
    pair.change(|env| {
        env.write_article(
            "content/blog/deleted.md",
            "+++\ntitle = \"Back again\"\ndate = 2024-02-02\n+++\nIt was [missing](@/blog/dated.md).\n",
        )
    });
    let (parsed, _) = pair.build(NOW, "adding a linked article");
    assert!(
        parsed >= 2,
        "the new article and the one linking to it: {parsed}"
    );

    pair.change(|env| {
        std::fs::remove_file(env.path().join("articles/content/blog/second-post.md")).unwrap()
    });
    pair.build(NOW, "deleting a linked article");

    pair.change(|env| {
        let blog = env.path().join("articles/content/blog");
        std::fs::rename(blog.join("first-post.md"), blog.join("renamed-post.md")).unwrap();
    });
    pair.build(NOW, "a rename");

    pair.change(|env| {
        let path = env.path().join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(path, config.replace("Test Blog", "Renamed Blog")).unwrap();
    });
    let (_, reused) = pair.build(NOW, "a config change");
    assert_eq!(reused, 0, "a config change starts from nothing");

    pair.change(|env| {
        std::fs::create_dir_all(env.path().join("templates")).unwrap();
        std::fs::write(
            env.path().join("templates/digest.txt.hbs"),
            "{{#each articles}}{{title}}\n{{/each}}",
        )
        .unwrap();
    });
    pair.build(NOW, "a template change");

    // A future article: unpublished at NOW, published once the clock passes its date (no file changes then).
    pair.change(|env| {
        env.write_article(
            "content/blog/future.md",
            "+++\ntitle = \"From the future\"\ndate = 2027-06-01\n+++\nNot yet.\n",
        )
    });
    pair.build(NOW, "adding a future article");
    age_files(&pair.warm.path().join("articles"));
    pair.build(NOW, "no change");
    let (parsed, _) = pair.build(
        "2027-06-02T00:00:00Z",
        "the clock passing a future article's date",
    );
    assert_eq!(parsed, 0, "nothing is parsed again, the feeds change");
    assert!(
        pair.warm.read_public("rss.xml").contains("From the future"),
        "published once its date came"
    );
    pair.build(NOW, "the clock set back");

    // An article with an expiry (Hugo's expiryDate): published at NOW, taken down once the clock passes it, which
    // is before the future article's date.
    pair.change(|env| {
        env.write_article(
            "content/blog/expiring.md",
            "+++\ntitle = \"Offer ends soon\"\ndate = 2024-03-01\nexpiryDate = 2027-03-01\n+++\nHurry.\n",
        )
    });
    pair.build(NOW, "adding an article that expires");
    assert!(pair.warm.read_public("rss.xml").contains("Offer ends soon"));
    age_files(&pair.warm.path().join("articles"));
    pair.build(NOW, "no change");
    let (parsed, _) = pair.build("2027-03-02T00:00:00Z", "the clock passing an expiry");
    assert_eq!(parsed, 0, "nothing is parsed again, the feeds change");
    assert!(
        !pair.warm.read_public("rss.xml").contains("Offer ends soon"),
        "taken down once it expired"
    );
    pair.build(NOW, "the clock set back before the expiry");
}

/// The tidings version and format are in each cache file's header; corrupt and truncated files are ignored with a
/// warning and rebuilt.
#[test]
fn a_cache_from_another_version_or_corrupt_or_truncated_is_ignored_and_rebuilt() {
    let pair = Pair::new();
    pair.build(NOW, "the first build");
    let articles = cache_dir(&pair.warm).join("articles.cache");
    let manifest = cache_dir(&pair.warm).join("build.manifest");
    let version = env!("CARGO_PKG_VERSION").as_bytes();

    // Another version: its version string swapped for one of the same length, the checksum made right again.
    for path in [&articles, &manifest] {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes
            .windows(version.len())
            .position(|w| w == version)
            .expect("the header holds the version");
        bytes[at..at + version.len()].copy_from_slice(&vec![b'9'; version.len()]);
        let body = bytes.len() - 8;
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes[..body]).to_le_bytes();
        bytes[body..].copy_from_slice(&sum);
        std::fs::write(path, bytes).unwrap();
    }
    pair.change(|env| edit(env, "blog/dated.md", |t| t + "\nOne more line.\n"));
    let (_, reused) = pair.build(NOW, "a tidings version change");
    assert_eq!(reused, 0, "another version's cache is not used");

    // A byte flipped in the middle of the parses, the manifest cut short.
    let mut bytes = std::fs::read(&articles).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&articles, bytes).unwrap();
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() / 3]).unwrap();
    pair.change(|env| edit(env, "blog/dated.md", |t| t + "\nAnd another.\n"));
    let warm_log = pair.warm.run_ok(&["--now", NOW, "build"]);
    assert!(
        warm_log.contains("the build cache is corrupt"),
        "a corrupt cache is reported: {warm_log}"
    );
    let (_, reused) = pair.build(NOW, "a corrupt and a truncated cache");
    assert!(
        reused > 0,
        "the cache was rebuilt by the build that found it corrupt"
    );
    std::fs::write(&articles, b"").unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let (_, reused) = pair.build(NOW, "an empty cache file");
    assert_eq!(reused, 0);
}

#[test]
fn a_build_after_no_change_reads_only_metadata_and_writes_nothing() {
    let env = blog();
    env.run_ok(&["build"]);
    age_files(&env.path().join("articles"));
    let public = age_files(&env.path().join("public"));
    // The first build after the files settled (and were aged) writes the manifest that vouches for them.
    env.run_ok(&["build"]);
    let cache = age_files(&cache_dir(&env));
    assert!(
        public.len() > 10 && cache.len() == 2,
        "{public:?} {cache:?}"
    );
    let log = env.run_ok(&["build"]);
    assert_eq!(counts(&log).0, 0, "nothing parsed: {log}");
    assert!(
        log.contains(": error: "),
        "the bad article is still reported: {log}"
    );
    assert_eq!(
        rewritten_files(&env.path().join("public")),
        Vec::<String>::new()
    );
    assert_eq!(rewritten_files(&cache_dir(&env)), Vec::<String>::new());
    // The articles are not read: their bytes could be anything of the same size and mtime. (A real edit changes
    // the mtime; this shows that only the stamp was looked at.)
    let post = env.path().join("articles/content/blog/dated.md");
    let text = std::fs::read_to_string(&post).unwrap();
    std::fs::write(&post, text.replace("One more", "Two more")).unwrap();
    crate::support::set_mtime(&post, crate::support::long_ago());
    env.run_ok(&["build"]);
    assert_eq!(
        rewritten_files(&env.path().join("public")),
        Vec::<String>::new(),
        "an article with the same stamp was not read"
    );
    // A deleted output file is noticed from its stamp and written again.
    std::fs::remove_file(env.public("rss.xml")).unwrap();
    env.run_ok(&["build"]);
    assert!(env.public("rss.xml").exists());
}

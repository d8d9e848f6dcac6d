//! Related reading through the real binary: `build` writes `public/related.json`, `related SLUG` explains one
//! article's list, `check` reports an editor's pick that names no article.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{TestEnv, long_ago, set_mtime};

fn related_json(env: &TestEnv) -> serde_json::Map<String, Value> {
    let text = env.read_public("related.json");
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        other => panic!("related.json is not an object: {other:?}\n{text}"),
    }
}

fn slugs_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["slug"].as_str().unwrap())
        .collect()
}

#[test]
fn build_writes_related_json_for_every_published_article() {
    let env = TestEnv::new("related-basic", "");
    env.run_ok(&["build"]);
    let map = related_json(&env);
    let keys: BTreeSet<&str> = map.keys().map(String::as_str).collect();
    let published = BTreeSet::from([
        "balcony-tomatoes",
        "chess-openings",
        "rust-async",
        "rust-lifetimes",
        "rust-ownership",
        "sourdough-starter",
    ]);
    assert_eq!(keys, published, "drafts and future articles get no list");

    let ownership = slugs_of(&map["rust-ownership"]);
    assert_eq!(ownership.first(), Some(&"rust-lifetimes"), "{ownership:?}");
    assert!(!ownership.contains(&"sourdough-starter") && !ownership.contains(&"chess-openings"));

    for (slug, list) in &map {
        let related = slugs_of(list);
        assert!(
            related.len() <= 3,
            "{slug}: more than [related] count: {related:?}"
        );
        assert!(
            !related.contains(&slug.as_str()),
            "{slug} is related to itself"
        );
        for r in &related {
            assert!(published.contains(r), "{slug} suggests unpublished {r}");
        }
        for item in list.as_array().unwrap() {
            let item = item.as_object().unwrap();
            let keys: Vec<&str> = item.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["date", "reading_minutes", "score", "slug", "title", "url"]
            );
            assert!(
                item["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://example.com/blog/posts/")
            );
            assert!(
                item["date"].as_str().unwrap().len() >= 20,
                "RFC 3339: {:?}",
                item["date"]
            );
            let score = item["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score), "{score}");
        }
    }
    let picks = slugs_of(&map["rust-async"]);
    assert_eq!(
        picks[0], "sourdough-starter",
        "the editor's pick comes first, however unrelated"
    );
    assert!(picks[1..].contains(&"rust-ownership"), "{picks:?}");
}

#[test]
fn an_unchanged_store_leaves_related_json_untouched() {
    let env = TestEnv::new("related-basic", "");
    env.run_ok(&["build"]);
    let path = env.public("related.json");
    set_mtime(&path, long_ago());
    env.run_ok(&["build"]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        long_ago(),
        "related.json was rewritten"
    );
    // A change that moves the lists does rewrite it.
    let ownership = env.path().join("articles/rust-ownership.md");
    std::fs::remove_file(&ownership).unwrap();
    env.run_ok(&["build"]);
    assert_ne!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        long_ago()
    );
    assert!(!related_json(&env).contains_key("rust-ownership"));
}

#[test]
fn related_json_is_identical_whatever_the_thread_count() {
    let env = TestEnv::new("related-basic", "[related]\nmin_score = 0.0\ncount = 5\n");
    let mut outputs = Vec::new();
    for threads in ["1", "2", "4"] {
        std::fs::remove_dir_all(env.path().join("public")).ok();
        let out = env.run_with_env(&["build"], &[("RAYON_NUM_THREADS", threads)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(env.read_public("related.json"));
    }
    assert!(outputs[0].contains("\"score\""));
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn config_count_and_min_score_shape_the_lists() {
    let env = TestEnv::new("related-basic", "[related]\ncount = 1\nmin_score = 0.0\n");
    env.run_ok(&["build"]);
    let map = related_json(&env);
    assert_eq!(map.len(), 6, "one list per published article");
    for (slug, list) in map {
        let len = slugs_of(&list).len();
        // Articles sharing no word, tag or category with any other are related to nothing, even at 0.
        let expected = if slug.starts_with("rust-") {
            1
        } else {
            len.min(1)
        };
        assert_eq!(len, expected, "{slug}");
    }
    let env = TestEnv::new("related-basic", "[related]\nmin_score = 1.0\n");
    env.run_ok(&["build"]);
    assert_eq!(
        slugs_of(&related_json(&env)["rust-ownership"]),
        Vec::<&str>::new()
    );
}

#[test]
fn related_command_prints_scores_and_reasons() {
    let env = TestEnv::new("related-basic", "");
    let out = env.run(&["related", "rust-ownership"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = stdout.lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with(" 1. 0.") && first.contains("rust-lifetimes"),
        "{stdout}"
    );
    let why = stdout.lines().nth(2).unwrap_or_default();
    for part in [
        "text 0.",
        "borrow",
        "tags 0.",
        "(rust)",
        "category \"Programming\"",
    ] {
        assert!(
            why.contains(part),
            "{part:?} missing from {why:?}\n{stdout}"
        );
    }

    let out = env.run(&["related", "rust-async"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().nth(1).unwrap().contains("sourdough-starter"),
        "{stdout}"
    );
    assert!(
        stdout.lines().nth(2).unwrap().contains("editor's pick"),
        "{stdout}"
    );
}

#[test]
fn related_command_rejects_unknown_and_unpublished_slugs() {
    let env = TestEnv::new("related-basic", "");
    let out = env.run(&["related", "rust-lifetime"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "no article has the slug \"rust-lifetime\"; did you mean \"rust-lifetimes\"?"
        ),
        "{stderr}"
    );

    let out = env.run(&["related", "rust-unsafe-draft"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not published"));
}

#[test]
fn check_reports_an_unknown_editors_pick_with_its_file_and_line() {
    let env = TestEnv::new("related-bad-pick", "");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = "articles/picks.md:7:5: error: editor's pick \"no-such-article\" in `related:` is not the slug of \
                    any article; fix the slug or remove it";
    assert!(stdout.lines().any(|l| l.ends_with(expected)), "{stdout}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "the known pick is fine: {stdout}"
    );

    // build still publishes everything and reports the bad pick.
    let out = env.run(&["build"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-article"));
    assert_eq!(slugs_of(&related_json(&env)["picks"]), ["chess-openings"]);
}

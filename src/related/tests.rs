use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, Duration, FixedOffset};
use proptest::prelude::*;

use super::*;
use crate::store::Article;

fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2025-06-01T12:00:00+02:00").unwrap()
}

fn config() -> RelatedConfig {
    RelatedConfig::default()
}

/// An article `days` days before `now()`.
fn article(slug: &str, title: &str, body: &str, days: i64) -> Article {
    let date = now() - Duration::days(days);
    Article {
        source: PathBuf::from(format!("articles/{slug}.md")),
        slug: slug.into(),
        id: format!("https://example.com/posts/{slug}/"),
        title: title.into(),
        date,
        updated: date,
        expires: None,
        summary: String::new(),
        summary_markdown: None,
        category: None,
        tags: Vec::new(),
        author: None,
        body: None,
        terms: crate::related::Terms::of("en", title, "", body),
        reading_minutes: 2,
        draft: false,
        related: Vec::new(),
        url: format!("https://example.com/posts/{slug}/"),
    }
}

fn with_tags(mut a: Article, tags: &[&str]) -> Article {
    a.tags = tags.iter().map(|t| t.to_string()).collect();
    a
}

/// Unrelated articles on distinct subjects, so that document frequencies mean something.
fn filler() -> Vec<Article> {
    [
        (
            "sourdough",
            "Baking sourdough bread",
            "flour water starter dough oven crust loaf fermentation",
        ),
        (
            "marathon",
            "Training for a marathon",
            "running miles pace shoes stretching race endurance",
        ),
        (
            "tomatoes",
            "Growing tomatoes on a balcony",
            "soil pots watering sunlight seedlings harvest compost",
        ),
        (
            "chess",
            "Opening theory in chess",
            "pawn bishop knight gambit castle endgame tempo",
        ),
        (
            "watercolor",
            "Watercolor for beginners",
            "brush pigment paper wash palette blending layers",
        ),
        (
            "sailing",
            "Learning to sail",
            "wind boat keel tack harbor knots rigging anchor",
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (slug, title, body))| article(slug, title, body, 100 + i as i64))
    .collect()
}

fn index_of(articles: Vec<Article>) -> RelatedIndex {
    RelatedIndex::build(&Catalog::new(articles), now(), &config())
}

fn slugs(list: &[Suggestion<'_>]) -> Vec<String> {
    list.iter().map(|s| s.entry.slug.clone()).collect()
}

#[test]
fn two_articles_on_the_same_subject_beat_an_unrelated_one() {
    let mut articles = filler();
    articles.push(article(
        "borrow-checker",
        "Taming the borrow checker",
        "lifetimes borrowing ownership references mutable aliasing compiler errors",
        3,
    ));
    articles.push(article(
        "lifetimes",
        "Lifetimes explained",
        "the borrow checker reasons about lifetimes of references and ownership of values",
        2,
    ));
    let index = index_of(articles);
    let list = index.related("borrow-checker").unwrap();
    assert_eq!(
        slugs(&list),
        ["lifetimes"],
        "only the article on the same subject scores above min_score"
    );
    assert!(list[0].text > 0.2, "{list:?}");
}

#[test]
fn stemming_matches_inflected_forms_and_stop_words_do_not_count() {
    let analyzer = analyze::Analyzer::for_language("en-GB");
    assert_eq!(analyzer.terms("Testing the tests"), ["test", "test"]);
    assert!(analyzer.terms("the and of which").is_empty());
    let german = analyze::Analyzer::for_language("de");
    assert_eq!(
        german.terms("Häuser und Häusern"),
        german.terms("Häuser Häusern")
    );
}

/// The words of `text` by the rules alone, a character at a time: what the tokenizer's fast paths must give.
fn words_by_the_rules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut chars, mut digits_only) = (0, true);
    for c in text.chars().chain([' ']) {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
            chars += 1;
            digits_only &= c.is_numeric();
        } else {
            if chars >= 2 && !digits_only {
                out.push(word.clone());
            }
            word.clear();
            (chars, digits_only) = (0, true);
        }
    }
    out
}

fn words_found(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    analyze::for_each_word(text, |w| {
        if let analyze::Word::Spelled(s) = w {
            // Only what cannot be packed is spelled out: one word, one form.
            assert!(s.len() > 16 || !s.is_ascii(), "{s:?} should be packed");
        }
        out.push(w.with_str(str::to_owned));
    });
    out
}

#[test]
fn words_are_runs_of_letters_and_digits_lowercased_and_not_plain_numbers() {
    assert_eq!(
        words_found("Rust's 2024 edition: async-fn, K8s & x, Émile's CAFÉ naïve 3D"),
        [
            "rust", "edition", "async", "fn", "k8s", "émile", "café", "naïve", "3d"
        ]
    );
    // Exactly 16 and 17 bytes, at the very end of the text (no room to read 16 bytes past the start).
    assert_eq!(
        words_found("abcdefghijklmnop ABCDEFGHIJKLMNOPQ"),
        ["abcdefghijklmnop", "abcdefghijklmnopq"]
    );
    // Kelvin sign: non-ASCII, lowercases to ASCII "k", so the word is packed like "ok".
    assert_eq!(words_found("O\u{212A}"), ["ok"]);
}

proptest! {
    #[test]
    fn the_tokenizer_finds_the_words_the_rules_say(
        text in "([a-zA-Z0-9]{0,20}|[ .,'\\-]|é|É|ß|\u{212A}|—|日本|٣|[\\x00-\\x7f])*"
    ) {
        prop_assert_eq!(words_found(&text), words_by_the_rules(&text));
    }
}

#[test]
fn a_language_without_stemmer_keeps_words_as_written() {
    let analyzer = analyze::Analyzer::for_language("xx");
    assert_eq!(analyzer.terms("Testing Tests 2024 a"), ["testing", "tests"]);
}

#[test]
fn shared_tags_lift_a_score() {
    let body = "postgres vacuum autovacuum bloat indexes";
    let mut articles = filler();
    articles.push(with_tags(
        article("origin", "Postgres vacuum", body, 5),
        &["postgres", "ops"],
    ));
    articles.push(with_tags(
        article("tagged", "Postgres vacuum", body, 4),
        &["Postgres"],
    ));
    articles.push(article("untagged", "Postgres vacuum", body, 3));
    let index = index_of(articles);
    let list = index.related("origin").unwrap();
    assert_eq!(slugs(&list)[..2], ["tagged", "untagged"]);
    assert!(list[0].score > list[1].score, "{list:?}");
    assert!(list[0].tags > 0.0 && list[1].tags == 0.0);
    assert!(
        (list[0].text - list[1].text).abs() < 1e-6,
        "same text, so only tags differ"
    );
}

#[test]
fn shared_category_lifts_a_score() {
    let body = "kubernetes pods deployments helm charts";
    let mut articles = filler();
    let mut origin = article("origin", "Kubernetes deployments", body, 5);
    origin.category = Some("DevOps".into());
    let mut same = article("same", "Kubernetes deployments", body, 4);
    same.category = Some("devops".into());
    articles.extend([
        origin,
        same,
        article("other", "Kubernetes deployments", body, 3),
    ]);
    let index = index_of(articles);
    let list = index.related("origin").unwrap();
    assert_eq!(slugs(&list)[..2], ["same", "other"]);
    assert!(list[0].same_category && !list[1].same_category);
}

#[test]
fn categories_whose_slugs_match_are_the_same_category() {
    let body = "kubernetes pods deployments helm charts";
    let mut articles = filler();
    let mut origin = article("origin", "Kubernetes deployments", body, 5);
    origin.category = Some("Dev Ops".into());
    let mut same = article("same", "Kubernetes deployments", body, 4);
    same.category = Some("dev-ops".into());
    let mut other = article("other", "Kubernetes deployments", body, 3);
    other.category = Some("Devops".into());
    articles.extend([origin, same, other]);
    let index = index_of(articles);
    let list = index.related("origin").unwrap();
    assert_eq!(slugs(&list)[..2], ["same", "other"]);
    assert!(
        list[0].same_category,
        "\"Dev Ops\" and \"dev-ops\" share category/dev-ops/"
    );
    assert!(!list[1].same_category, "\"Devops\" is category/devops/");
}

#[test]
fn editors_picks_come_first_in_the_editors_order() {
    let mut articles = filler();
    let mut origin = article(
        "origin",
        "Taming the borrow checker",
        "lifetimes borrowing ownership",
        3,
    );
    origin.related = vec![
        "sailing".into(),
        "chess".into(),
        "sailing".into(),
        "origin".into(),
    ];
    articles.push(origin);
    articles.push(article(
        "lifetimes",
        "Lifetimes",
        "borrowing ownership lifetimes",
        2,
    ));
    let index = index_of(articles);
    let list = index.related("origin").unwrap();
    assert_eq!(slugs(&list), ["sailing", "chess", "lifetimes"]);
    assert!(list[0].editors_pick && list[1].editors_pick && !list[2].editors_pick);
}

#[test]
fn picks_beyond_count_are_dropped() {
    let mut articles = filler();
    let mut origin = article("origin", "Everything", "misc", 3);
    origin.related = ["sailing", "chess", "marathon", "tomatoes"]
        .map(String::from)
        .to_vec();
    articles.push(origin);
    let index = index_of(articles);
    assert_eq!(
        slugs(&index.related("origin").unwrap()),
        ["sailing", "chess", "marathon"]
    );
}

#[test]
fn drafts_and_future_articles_are_never_suggested() {
    let body = "lifetimes borrowing ownership references aliasing";
    let mut articles = filler();
    let mut origin = article("origin", "Borrow checker", body, 3);
    origin.related = vec!["draft".into(), "future".into()];
    let mut draft = article("draft", "Borrow checker", body, 2);
    draft.draft = true;
    let future = article("future", "Borrow checker", body, -2);
    articles.extend([
        origin,
        draft,
        future,
        article("published", "Borrow checker", body, 1),
    ]);
    let index = index_of(articles);
    assert_eq!(slugs(&index.related("origin").unwrap()), ["published"]);
    assert!(index.related("draft").is_none() && index.related("future").is_none());
    assert!(index.entry("future").is_none());
}

#[test]
fn an_article_with_no_neighbour_gets_an_empty_list() {
    let index = index_of(filler());
    for entry in index.entries() {
        assert!(
            index.related(&entry.slug).unwrap().is_empty(),
            "{}",
            entry.slug
        );
    }
}

#[test]
fn equal_scores_are_ordered_by_date_then_slug() {
    let body = "terraform modules state backends providers";
    let mut articles = filler();
    articles.push(article("origin", "Terraform", body, 10));
    articles.push(article("b-older", "Terraform", body, 5));
    articles.push(article("a-newer", "Terraform", body, 1));
    articles.push(article("c-newer", "Terraform", body, 1));
    let index = index_of(articles);
    assert_eq!(
        slugs(&index.related("origin").unwrap()),
        ["a-newer", "c-newer", "b-older"]
    );
}

fn varied_store() -> Vec<Article> {
    let subjects = [
        "rust borrow lifetimes ownership traits generics",
        "postgres vacuum indexes queries planner bloat",
        "kubernetes pods helm deployments ingress nodes",
        "career promotion manager feedback mentoring growth",
    ];
    (0..60)
        .map(|i| {
            let subject = subjects[i % subjects.len()];
            let body = format!(
                "{subject} {} note{}",
                subjects[(i / 7) % subjects.len()],
                i % 5
            );
            let mut a = article(
                &format!("post-{i:02}"),
                &format!("Post {i}"),
                &body,
                i as i64,
            );
            a.tags = vec![format!("t{}", i % 3)];
            a.category = Some(format!("c{}", i % 2));
            a
        })
        .collect()
}

#[test]
fn output_is_identical_across_runs_and_thread_counts() {
    let catalog = Catalog::new(varied_store());
    let render = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| render_json(&RelatedIndex::build(&catalog, now(), &config())))
    };
    let one = render(1);
    assert!(String::from_utf8_lossy(&one).contains("\"score\""));
    assert_eq!(one, render(2));
    assert_eq!(one, render(3));
    assert_eq!(one, render(1));
}

#[test]
fn related_json_maps_every_published_slug_to_its_list() {
    let index = RelatedIndex::build(&Catalog::new(varied_store()), now(), &config());
    let json: serde_json::Value = serde_json::from_slice(&render_json(&index)).unwrap();
    let map = json.as_object().unwrap();
    assert_eq!(map.len(), 60);
    let list = map["post-00"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    let first = list[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["date", "reading_minutes", "score", "slug", "title", "url"]
    );
    assert!(
        first["url"]
            .as_str()
            .unwrap()
            .starts_with("https://example.com/posts/")
    );
}

/// What the digest asks: one article's related reading, through its `RelatedSource` trait.
fn for_digest(index: &RelatedIndex, slug: &str, k: usize, exclude: &[&str]) -> Vec<String> {
    let exclude: std::collections::BTreeSet<String> =
        exclude.iter().map(|s| s.to_string()).collect();
    crate::digest::RelatedSource::related(index, slug, k, &exclude)
}

#[test]
fn the_digest_gets_older_articles_only_when_it_excludes_the_newer_ones() {
    let index = RelatedIndex::build(&Catalog::new(varied_store()), now(), &config());
    let unrestricted = for_digest(&index, "post-00", 5, &[]);
    assert_eq!(unrestricted.len(), 5, "{unrestricted:?}");
    // As a digest does: everything newer than its window, plus one article the subscriber got recently.
    let cutoff = now() - Duration::days(30);
    let mut exclude: Vec<&str> = index
        .entries()
        .iter()
        .filter(|e| e.date >= cutoff)
        .map(|e| e.slug.as_str())
        .collect();
    exclude.push(&unrestricted[0]);
    let got = for_digest(&index, "post-00", 5, &exclude);
    assert_eq!(got.len(), 5, "{got:?}");
    for slug in &got {
        assert!(
            slug != "post-00" && !exclude.contains(&slug.as_str()),
            "{slug}"
        );
        assert!(
            index.entry(slug).unwrap().date < cutoff,
            "{slug} is too new"
        );
    }
}

#[test]
fn the_digest_gets_the_articles_picks_first_unless_excluded() {
    let mut articles = varied_store();
    articles[0].related = vec!["post-59".into(), "post-58".into()];
    let index = RelatedIndex::build(&Catalog::new(articles), now(), &config());
    let got = for_digest(&index, "post-00", 3, &[]);
    assert_eq!(got.len(), 3);
    assert_eq!(got[..2], ["post-59", "post-58"]);
    let got = for_digest(&index, "post-00", 3, &["post-59"]);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], "post-58");
    assert!(!got.contains(&"post-59".to_string()));
    assert_eq!(for_digest(&index, "post-00", 1, &[]), ["post-59"]);
    assert!(for_digest(&index, "no-such-slug", 3, &[]).is_empty());
}

#[test]
fn with_nothing_excluded_the_digest_gets_the_articles_own_list() {
    let mut articles = varied_store();
    articles[0].related = vec!["post-30".into()];
    let index = RelatedIndex::build(&Catalog::new(articles), now(), &config());
    for slug in ["post-00", "post-01", "post-17"] {
        let page = slugs(&index.related(slug).unwrap());
        assert_eq!(page.len(), 3, "{slug}: {page:?}");
        assert_eq!(for_digest(&index, slug, index.count(), &[]), page, "{slug}");
    }
}

#[test]
fn explain_names_shared_terms_tags_category_and_picks() {
    let mut articles = filler();
    let mut origin = article(
        "origin",
        "Postgres vacuum",
        "postgres vacuum autovacuum bloat",
        5,
    );
    origin.tags = vec!["databases".into()];
    origin.category = Some("Ops".into());
    origin.related = vec!["chess".into()];
    let mut other = article("other", "Vacuuming postgres", "vacuum bloat autovacuum", 4);
    other.tags = vec!["Databases".into()];
    other.category = Some("ops".into());
    articles.extend([origin, other]);
    let index = index_of(articles);
    let report = index.explain("origin").unwrap();
    assert_eq!(report.related.len(), 2);
    assert!(report.related[0].editors_pick && report.related[0].slug == "chess");
    let other = &report.related[1];
    assert!(
        other.shared_terms.contains(&"vacuum".to_string()),
        "{other:?}"
    );
    assert_eq!(other.shared_tags, ["databases"]);
    assert_eq!(other.shared_category.as_deref(), Some("Ops"));
    let text = report.to_string();
    assert!(
        text.contains("editor's pick") && text.contains("category \"Ops\""),
        "{text}"
    );
}

#[test]
fn missing_slug_errors_tell_unknown_from_unpublished() {
    let mut articles = filler();
    let mut draft = article("draft-post", "Draft", "x", 1);
    draft.draft = true;
    articles.push(draft);
    let catalog = Catalog::new(articles);
    let index = RelatedIndex::build(&catalog, now(), &config());
    assert_eq!(
        index.missing(&catalog, "draft-post"),
        RelatedError::NotPublished {
            slug: "draft-post".into()
        }
    );
    let err = index.missing(&catalog, "sailng");
    assert_eq!(
        err.to_string(),
        "no article has the slug \"sailng\"; did you mean \"sailing\"?"
    );
}

#[test]
fn unknown_pick_is_reported_at_its_line() {
    let mut articles = filler();
    let mut origin = article("origin", "Origin", "x", 1);
    origin.related = vec!["chess".into(), "no-such-post".into()];
    articles.push(origin);
    let catalog = Catalog::new(articles);
    let text = "---\ntitle: Origin\nrelated:\n  - chess\n  - no-such-post\n---\nbody\n";
    let errors = check_picks(&catalog, |_| Some(text.to_string()));
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "articles/origin.md:5:5: error: editor's pick \"no-such-post\" in `related:` is not the slug of any article; \
         fix the slug or remove it"
    );
}

#[test]
fn locate_pick_handles_inline_lists_and_prefixes() {
    let text = "---\ntitle: x\nrelated: [post-10, post-1]\n---\npost-1 in the body\n";
    assert_eq!(locate_pick(text, "post-1"), (3, 20));
    assert_eq!(locate_pick(text, "gone"), (3, 1));
    assert_eq!(locate_pick("---\ntitle: x\n---\n", "gone"), (1, 1));
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima",
];

fn arb_store() -> impl Strategy<Value = Vec<Article>> {
    prop::collection::vec(
        (
            prop::collection::vec(0..WORDS.len(), 1..12),
            prop::collection::vec(0..4usize, 0..3),
            prop::option::of(0..3usize),
            0..20i64,
            any::<bool>(),
            prop::collection::vec(0..30usize, 0..3),
        ),
        1..30,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (words, tags, category, days, draft, picks))| {
                let body: Vec<&str> = words.iter().map(|&w| WORDS[w]).collect();
                let mut a = article(&format!("a{i}"), WORDS[words[0]], &body.join(" "), days - 3);
                a.tags = tags.iter().map(|t| format!("tag{t}")).collect();
                a.category = category.map(|c| format!("cat{c}"));
                a.draft = draft && i % 3 == 0;
                a.related = picks.iter().map(|p| format!("a{p}")).collect();
                a
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn lists_never_hold_the_article_itself_nor_exceed_count_nor_unpublished(
        articles in arb_store(),
        count in 1..6usize,
    ) {
        let catalog = Catalog::new(articles);
        let config = RelatedConfig { count, min_score: 0.0, ..config() };
        let index = RelatedIndex::build(&catalog, now(), &config);
        let all = index.all();
        prop_assert_eq!(all.len(), catalog.published(now()).count(), "one list per published article");
        for (entry, list) in all {
            prop_assert!(list.len() <= count);
            let mut seen = HashSet::new();
            for s in &list {
                prop_assert_ne!(&s.entry.slug, &entry.slug);
                prop_assert!(seen.insert(&s.entry.slug), "duplicate {}", s.entry.slug);
                let article = catalog.by_slug(&s.entry.slug).unwrap();
                prop_assert!(article.is_published(now()));
                prop_assert!((0.0..=1.0 + 1e-6).contains(&s.score));
            }
            let computed: Vec<f64> = list.iter().filter(|s| !s.editors_pick).map(|s| s.score).collect();
            prop_assert!(computed.windows(2).all(|w| w[0] >= w[1]));
            prop_assert!(list.iter().skip_while(|s| s.editors_pick).all(|s| !s.editors_pick));
        }
        let again = RelatedIndex::build(&catalog, now(), &config);
        prop_assert_eq!(render_json(&index), render_json(&again));
    }

    #[test]
    fn the_digest_path_respects_k_and_exclusions(articles in arb_store(), k in 0..5usize) {
        let catalog = Catalog::new(articles);
        let index = RelatedIndex::build(&catalog, now(), &config());
        prop_assume!(!index.is_empty());
        for (i, entry) in index.entries().iter().enumerate() {
            // Exclude the next article, as a digest excludes what is newer than its window.
            let exclude: Vec<&str> = index.entries().iter().skip(i + 1).take(1).map(|e| e.slug.as_str()).collect();
            let got = for_digest(&index, &entry.slug, k, &exclude);
            prop_assert!(got.len() <= k);
            let unique: HashSet<&String> = got.iter().collect();
            prop_assert_eq!(unique.len(), got.len(), "duplicates in {:?}", got);
            for slug in &got {
                prop_assert!(slug != &entry.slug && !exclude.contains(&slug.as_str()), "{}", slug);
                prop_assert!(catalog.by_slug(slug).unwrap().is_published(now()), "{}", slug);
            }
        }
    }
}

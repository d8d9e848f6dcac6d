//! Selection and related-reading rules on a small hand-built catalog with a pinned tick.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, Utc};

use super::*;
use crate::config::DigestConfig;
use crate::domain::{EmailAddress, Subscriber, SubscriberStatus};
use crate::store::{Article, Catalog};

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    at(s).with_timezone(&Utc)
}

fn article(slug: &str, date: &str, category: &str, tags: &[&str]) -> Article {
    Article {
        source: PathBuf::from(format!("{slug}.md")),
        slug: slug.into(),
        id: format!("https://example.com/posts/{slug}/"),
        title: format!("Title of {slug}"),
        date: at(date),
        updated: at(date),
        expires: None,
        summary: format!("Summary of {slug}."),
        summary_markdown: None,
        category: Some(category.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        author: None,
        body: None,
        terms: Default::default(),
        reading_minutes: 3,
        draft: false,
        related: Vec::new(),
        url: format!("https://example.com/posts/{slug}/"),
    }
}

/// A simple, predictable related source for these tests (the real index scores by TF-IDF, which would make the
/// expectations below depend on its tuning): editor's picks first, then shared category (2 points) and shared
/// tags (1 point each); articles sharing nothing are never related. Ties: newer first, then slug.
pub struct SharedTopics<'a> {
    catalog: &'a Catalog,
}

impl<'a> SharedTopics<'a> {
    pub fn new(catalog: &'a Catalog) -> Self {
        SharedTopics { catalog }
    }
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn score(of: &Article, candidate: &Article) -> u32 {
    if let Some(pos) = of.related.iter().position(|s| s == &candidate.slug) {
        return 1000 - pos as u32;
    }
    let category = match (&of.category, &candidate.category) {
        (Some(a), Some(b)) if same(a, b) => 2,
        _ => 0,
    };
    let tags = of
        .tags
        .iter()
        .filter(|t| candidate.tags.iter().any(|u| same(t, u)))
        .count() as u32;
    category + tags
}

impl RelatedSource for SharedTopics<'_> {
    fn related(&self, slug: &str, k: usize, exclude: &BTreeSet<String>) -> Vec<String> {
        let Some(of) = self.catalog.by_slug(slug) else {
            return Vec::new();
        };
        let mut scored: Vec<(u32, &Article)> = self
            .catalog
            .all()
            .iter()
            .filter(|a| a.slug != slug && !exclude.contains(&a.slug))
            .map(|a| (score(of, a), a))
            .filter(|(s, _)| *s > 0)
            .collect();
        scored.sort_by(|(sa, a), (sb, b)| {
            sb.cmp(sa)
                .then(b.date.cmp(&a.date))
                .then(a.slug.cmp(&b.slug))
        });
        scored
            .into_iter()
            .take(k)
            .map(|(_, a)| a.slug.clone())
            .collect()
    }
}

/// Tick: Monday 2026-11-30 08:00 Berlin. Last week's tick: 2026-11-23 08:00.
const TICK: &str = "2026-11-30T08:00:00+01:00";
const LAST_TICK: &str = "2026-11-23T08:00:00+01:00";

fn catalog() -> Catalog {
    let mut edited = article("edited-old", "2026-11-02T09:00:00+01:00", "Tools", &["git"]);
    edited.updated = at("2026-11-27T09:00:00+01:00");
    let mut draft = article("draft", "2026-11-26T09:00:00+01:00", "Tools", &["git"]);
    draft.draft = true;
    Catalog::new(vec![
        article(
            "new-tools",
            "2026-11-25T09:00:00+01:00",
            "Tools",
            &["git", "rust"],
        ),
        article(
            "new-career",
            "2026-11-27T09:00:00+01:00",
            "Career",
            &["mentoring"],
        ),
        article("future", "2026-12-01T09:00:00+01:00", "Tools", &["git"]),
        article("at-tick", TICK, "Career", &["mentoring"]),
        article("last-week", "2026-11-20T09:00:00+01:00", "Tools", &["git"]),
        article("old-tools", "2026-10-01T09:00:00+02:00", "Tools", &["rust"]),
        article(
            "old-career",
            "2026-09-01T09:00:00+02:00",
            "Career",
            &["mentoring"],
        ),
        article(
            "old-unrelated",
            "2026-09-02T09:00:00+02:00",
            "Operations",
            &["on-call"],
        ),
        edited,
        draft,
    ])
}

fn digest() -> DigestConfig {
    DigestConfig {
        name: "weekly".into(),
        schedule: crate::digest::Schedule::parse("0 8 * * MON").unwrap(),
        subject: "{{site.title}}".into(),
        max_articles: 10,
        related: 2,
        categories: Vec::new(),
    }
}

fn view(email: &str, created: &str, last: Option<&str>, categories: &[&str]) -> SubscriberView {
    SubscriberView {
        subscriber: Subscriber {
            email: EmailAddress::parse(email).unwrap(),
            handle: crate::domain::SubscriberHandle::from_bytes([1; 16]),
            name: "Reader".into(),
            status: SubscriberStatus::Confirmed,
            digests: vec!["weekly".into()],
            categories: categories.iter().map(|c| c.to_string()).collect(),
            created: utc(created),
            confirmed: Some(utc(created)),
            joined: Default::default(),
        },
        joined: utc(created),
        last_delivered: last.map(utc),
        recently_received: BTreeSet::new(),
    }
}

fn plan_for(views: &[SubscriberView]) -> Vec<(String, Vec<String>)> {
    let catalog = catalog();
    plan(
        &digest(),
        &catalog,
        views,
        at(TICK),
        &LatePublications::default(),
        &SharedTopics::new(&catalog),
    )
    .into_iter()
    .filter_map(|o| match o {
        PlanOutcome::Send(p) => Some((
            p.subscriber.email.to_string(),
            p.articles.iter().map(|a| a.slug.clone()).collect(),
        )),
        PlanOutcome::Skip { .. } => None,
    })
    .collect()
}

fn slugs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_returning_subscriber_gets_what_was_published_since_their_last_digest_up_to_the_tick() {
    let got = plan_for(&[view(
        "a@example.com",
        "2026-01-01T00:00:00Z",
        Some(LAST_TICK),
        &[],
    )]);
    // Newest first; the article dated exactly at the tick is in, the future one and last week's are not.
    assert_eq!(
        got,
        [(
            "a@example.com".into(),
            slugs(&["at-tick", "new-career", "new-tools"])
        )]
    );
}

#[test]
fn an_edited_article_is_not_new() {
    let got = plan_for(&[view(
        "a@example.com",
        "2026-01-01T00:00:00Z",
        Some(LAST_TICK),
        &[],
    )]);
    assert!(!got[0].1.contains(&"edited-old".to_string()));
}

#[test]
fn a_future_article_waits_for_the_first_tick_after_its_date() {
    let catalog = catalog();
    let next_tick = at("2026-12-07T08:00:00+01:00");
    let v = view("a@example.com", "2026-01-01T00:00:00Z", Some(TICK), &[]);
    let outcomes = plan(
        &digest(),
        &catalog,
        &[v],
        next_tick,
        &LatePublications::default(),
        &SharedTopics::new(&catalog),
    );
    let PlanOutcome::Send(p) = &outcomes[0] else {
        panic!("expected a digest")
    };
    assert_eq!(
        p.articles
            .iter()
            .map(|a| a.slug.as_str())
            .collect::<Vec<_>>(),
        ["future"]
    );
}

#[test]
fn a_new_subscriber_gets_only_what_was_published_after_they_subscribed() {
    let got = plan_for(&[view("new@example.com", "2026-11-26T12:00:00Z", None, &[])]);
    assert_eq!(got[0].1, slugs(&["at-tick", "new-career"]));
}

#[test]
fn category_filters_narrow_the_digest() {
    let got = plan_for(&[view(
        "a@example.com",
        "2026-01-01T00:00:00Z",
        Some(LAST_TICK),
        &["tools"],
    )]);
    assert_eq!(
        got[0].1,
        slugs(&["new-tools"]),
        "filters compare categories case-insensitively"
    );
    let catalog = catalog();
    let mut only_career = digest();
    only_career.categories = vec!["Career".into()];
    let outcomes = plan(
        &only_career,
        &catalog,
        &[view(
            "a@example.com",
            "2026-01-01T00:00:00Z",
            Some(LAST_TICK),
            &["Tools"],
        )],
        at(TICK),
        &LatePublications::default(),
        &SharedTopics::new(&catalog),
    );
    assert!(
        matches!(
            &outcomes[0],
            PlanOutcome::Skip {
                reason: Skip::NothingNew,
                ..
            }
        ),
        "the digest's filter and the subscriber's both apply"
    );
}

#[test]
fn nobody_gets_an_empty_digest() {
    let catalog = catalog();
    let views = [
        view(
            "ops@example.com",
            "2026-01-01T00:00:00Z",
            Some(LAST_TICK),
            &["Operations"],
        ),
        view("late@example.com", "2026-11-30T07:30:00Z", None, &[]),
    ];
    let outcomes = plan(
        &digest(),
        &catalog,
        &views,
        at(TICK),
        &LatePublications::default(),
        &SharedTopics::new(&catalog),
    );
    assert_eq!(outcomes.len(), 2);
    for o in outcomes {
        assert!(
            matches!(
                o,
                PlanOutcome::Skip {
                    reason: Skip::NothingNew,
                    ..
                }
            ),
            "{o:?}"
        );
    }
}

#[test]
fn unconfirmed_subscribers_get_nothing() {
    let catalog = catalog();
    let mut v = view("a@example.com", "2026-01-01T00:00:00Z", None, &[]);
    v.subscriber.status = SubscriberStatus::Pending;
    let outcomes = plan(
        &digest(),
        &catalog,
        &[v],
        at(TICK),
        &LatePublications::default(),
        &SharedTopics::new(&catalog),
    );
    assert!(matches!(
        outcomes[0],
        PlanOutcome::Skip {
            reason: Skip::NotConfirmed(SubscriberStatus::Pending),
            ..
        }
    ));
}

#[test]
fn max_articles_keeps_the_newest() {
    let catalog = catalog();
    let mut d = digest();
    d.max_articles = 2;
    let v = view(
        "a@example.com",
        "2026-01-01T00:00:00Z",
        Some(LAST_TICK),
        &[],
    );
    let outcomes = plan(
        &d,
        &catalog,
        &[v],
        at(TICK),
        &LatePublications::default(),
        &SharedTopics::new(&catalog),
    );
    let PlanOutcome::Send(p) = &outcomes[0] else {
        panic!()
    };
    assert_eq!(
        p.articles
            .iter()
            .map(|a| a.slug.as_str())
            .collect::<Vec<_>>(),
        ["at-tick", "new-career"]
    );
    assert_eq!(p.over_limit, 1);
}

fn related_of(v: SubscriberView) -> Vec<String> {
    let catalog = catalog();
    let outcomes = plan(
        &digest(),
        &catalog,
        &[v],
        at(TICK),
        &LatePublications::default(),
        &SharedTopics::new(&catalog),
    );
    let PlanOutcome::Send(p) = &outcomes[0] else {
        panic!("expected a digest")
    };
    p.related.iter().map(|r| r.article.slug.clone()).collect()
}

#[test]
fn related_picks_are_older_relevant_and_never_repeated_or_in_the_digest() {
    let v = view(
        "a@example.com",
        "2026-01-01T00:00:00Z",
        Some(LAST_TICK),
        &[],
    );
    let related = related_of(v);
    let in_digest = ["at-tick", "new-career", "new-tools"];
    let unique: BTreeSet<_> = related.iter().collect();
    assert_eq!(unique.len(), related.len(), "no pick twice: {related:?}");
    for slug in &related {
        assert!(
            !in_digest.contains(&slug.as_str()),
            "{slug} is already in the digest"
        );
        assert!(
            !["future", "draft"].contains(&slug.as_str()),
            "{slug} is not published"
        );
        assert_ne!(
            slug, "old-unrelated",
            "an article sharing nothing is not related"
        );
    }
    // new-tools (Tools; git, rust) relates most to last-week (Tools, git) and the edited/old Tools articles.
    assert!(related.contains(&"last-week".to_string()), "{related:?}");
    assert!(related.contains(&"old-career".to_string()), "{related:?}");
}

#[test]
fn related_picks_skip_what_the_subscriber_got_recently() {
    let mut v = view(
        "a@example.com",
        "2026-01-01T00:00:00Z",
        Some(LAST_TICK),
        &[],
    );
    let before = related_of(v.clone());
    v.recently_received = before.iter().cloned().collect();
    let after = related_of(v);
    for slug in &after {
        assert!(!before.contains(slug), "{slug} was in a recent digest");
    }
}

#[test]
fn related_picks_are_never_newer_than_the_window() {
    // A Career-only subscriber: new-tools is in nobody's digest here, but it is new, so not "older reading".
    let v = view(
        "a@example.com",
        "2026-01-01T00:00:00Z",
        Some(LAST_TICK),
        &["Career"],
    );
    let related = related_of(v);
    assert!(!related.contains(&"new-tools".to_string()), "{related:?}");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const CATEGORIES: &[&str] = &["Tools", "Career", "Writing"];
    const TAGS: &[&str] = &["git", "rust", "mentoring", "on-call"];

    fn arb_catalog() -> impl Strategy<Value = Catalog> {
        prop::collection::vec(
            (
                0u32..120,
                0usize..3,
                prop::collection::vec(0usize..4, 0..3),
                any::<bool>(),
            ),
            1..25,
        )
        .prop_map(|specs| {
            let articles = specs
                .into_iter()
                .enumerate()
                .map(|(i, (day, cat, tags, draft))| {
                    let date = (at("2026-09-01T00:00:00Z")
                        + chrono::Duration::days(i64::from(day)))
                    .to_rfc3339();
                    let tags: Vec<&str> = tags.into_iter().map(|t| TAGS[t]).collect();
                    let mut a = article(&format!("a{i}"), &date, CATEGORIES[cat], &tags);
                    a.draft = draft;
                    a
                })
                .collect();
            Catalog::new(articles)
        })
    }

    proptest! {
        #[test]
        fn plans_respect_windows_filters_and_related_rules(
            catalog in arb_catalog(),
            created_day in 0i64..120,
            last_day in prop::option::of(0i64..120),
            filter in prop::collection::vec(0usize..3, 0..2),
            max_articles in 1usize..5,
            related in 0usize..3,
        ) {
            let tick = at("2026-12-28T08:00:00+01:00");
            let base = at("2026-09-01T00:00:00Z");
            let mut v = view(
                "a@example.com",
                &(base + chrono::Duration::days(created_day)).to_rfc3339(),
                None,
                &filter.iter().map(|c| CATEGORIES[*c]).collect::<Vec<_>>(),
            );
            v.last_delivered = last_day.map(|d| (base + chrono::Duration::days(d)).with_timezone(&Utc));
            let mut d = digest();
            d.max_articles = max_articles;
            d.related = related;
            let outcomes = plan(&d, &catalog, &[v.clone()], tick, &LatePublications::default(), &SharedTopics::new(&catalog));
            // The window, stated independently of `window()`: from the last delivered tick, else from joining.
            let after = v.last_delivered.unwrap_or(v.joined);
            prop_assert_eq!(window(&v, tick).after, after);
            let new_count = catalog
                .published(tick)
                .filter(|a| a.date > after)
                .filter(|a| v.subscriber.categories.is_empty()
                    || a.category.as_ref().is_some_and(|c| v.subscriber.categories.contains(c)))
                .count();
            match &outcomes[0] {
                PlanOutcome::Skip { reason, .. } => {
                    prop_assert_eq!(reason, &Skip::NothingNew);
                    prop_assert_eq!(new_count, 0);
                }
                PlanOutcome::Send(p) => {
                    prop_assert!(!p.articles.is_empty(), "never an empty digest");
                    prop_assert!(p.articles.len() <= max_articles);
                    prop_assert_eq!(p.articles.len() + p.over_limit, new_count);
                    for a in &p.articles {
                        prop_assert!(a.is_published(tick) && a.date > after);
                    }
                    let mut seen = BTreeSet::new();
                    for r in &p.related {
                        prop_assert!(seen.insert(r.article.slug.clone()), "no related pick twice");
                        prop_assert!(!p.articles.iter().any(|a| a.slug == r.article.slug));
                        prop_assert!(r.article.is_published(tick) && r.article.date <= after);
                    }
                    prop_assert!(p.related.len() <= related * p.articles.len());
                }
            }
        }
    }
}

mod merged_html {
    use super::*;

    fn settings(unsubscribe: &str) -> RenderSettings<'_> {
        RenderSettings {
            site_title: "Blog",
            site_url: "https://example.com/",
            language: "en",
            digest: "weekly",
            timezone: chrono_tz::Europe::Berlin,
            unsubscribe_url: unsubscribe,
            postal_address: "1 Street",
        }
    }

    /// `email`'s plan: the same content for everyone (one window, the sample articles).
    fn plan_of<'a>(catalog: &'a Catalog, email: &str, name: &str) -> DigestPlan<'a> {
        let mut v = view(email, "2026-11-01T00:00:00Z", None, &[]);
        v.subscriber.name = name.into();
        let outcome = plan(
            &digest(),
            catalog,
            &[v],
            at(TICK),
            &LatePublications::default(),
            &SharedTopics::new(catalog),
        )
        .pop()
        .unwrap();
        let PlanOutcome::Send(p) = outcome else {
            panic!("a digest is planned")
        };
        p
    }

    /// `email`'s digest, made by `templates` (which may have merged it from a shared one).
    fn rendered(templates: &Templates, email: &str, name: &str) -> RenderedDigest {
        let catalog = catalog();
        let p = plan_of(&catalog, email, name);
        let url = format!("https://example.com/unsubscribe?token=t{email}");
        templates.render(&p, &settings(&url)).unwrap()
    }

    fn html(templates: &Templates, email: &str, name: &str) -> String {
        rendered(templates, email, name).html.to_string()
    }

    fn fresh() -> Templates {
        Templates::load(None, &[digest()]).unwrap()
    }

    #[test]
    fn a_merged_digest_is_the_one_a_full_render_gives() {
        let shared = fresh();
        let people = [
            ("ada@example.com", "Ada"),
            ("bob@example.com", "Bob <b>&</b> \"Co\""),
            ("cat@example.com", ""),
            ("dee@example.com", "Dee"),
            (
                "a.much.longer.address.that.wraps.differently@example.com",
                "Eve",
            ),
        ];
        let merged: Vec<RenderedDigest> = people
            .iter()
            .map(|(e, n)| rendered(&shared, e, n))
            .collect();
        for ((email, name), merged) in people.iter().zip(&merged) {
            // A fresh registry has nothing cached: this is the full render. (A name with `<`, `>` or `"` is
            // always rendered in full: the serializer escapes those differently in text and attributes.)
            let full = rendered(&fresh(), email, name);
            assert_eq!(merged.subject, full.subject, "{email}");
            assert!(
                merged.text == full.text,
                "{email}: the merged text differs:\n{}\n---\n{}",
                merged.text,
                full.text
            );
            assert!(
                merged.html == full.html,
                "{email}: the merged part differs from the full render"
            );
            assert!(
                merged.html.contains(email) && merged.text.contains(email),
                "{email}"
            );
        }
        assert!(
            merged[1].html.contains("Bob &lt;b&gt;&amp;&lt;/b&gt;"),
            "escaped"
        );
        assert_eq!(
            shared.merged_len(),
            2,
            "one shared digest with a name, one without"
        );
    }

    #[test]
    fn a_merged_part_encodes_piece_by_piece_to_its_text() {
        use crate::mail::{SOFT_BREAK, quoted_printable};
        let shared = fresh();
        rendered(&shared, "ada@example.com", "Ada");
        let bob = rendered(&shared, "bob.with.a.long.address@example.com", "Bob & José");
        assert_eq!(shared.merged_len(), 1, "bob's digest was merged");
        for part in [&bob.text, &bob.html] {
            let encoded = part.encoded(quoted_printable, SOFT_BREAK);
            assert!(
                encoded.split("\r\n").all(|line| line.len() <= 76),
                "a quoted-printable line over 76 characters"
            );
            let decoded =
                ::quoted_printable::decode(&encoded, ::quoted_printable::ParseMode::Strict)
                    .unwrap();
            assert_eq!(
                String::from_utf8(decoded).unwrap(),
                part.to_text().replace('\n', "\r\n")
            );
        }
    }

    #[test]
    fn only_slots_differ_between_subscribers_of_one_content() {
        let catalog = catalog();
        let ada = plan_of(&catalog, "ada@example.com", "Ada");
        let mut bob = ada.clone();
        bob.subscriber.email = EmailAddress::parse("bob@example.org").unwrap();
        bob.subscriber.name = "Bob".into();
        bob.subscriber.created = utc("2020-01-01T00:00:00Z");
        bob.subscriber.categories = vec!["rust".into()];
        assert_eq!(
            Templates::marked_context(&ada, &settings("https://example.com/u?token=ada")),
            Templates::marked_context(&bob, &settings("https://example.com/u?token=bob")),
            "a value that differs between subscribers is not a slot: it would be merged into everyone's digest"
        );
    }

    #[test]
    fn a_template_that_looks_at_personal_values_is_rendered_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let original = include_str!("../../templates/digest.html.hbs");
        let custom = original.replace(
            "<body>",
            "<body>{{#if (eq subscriber.email \"ada@example.com\")}}<p>VIP</p>{{/if}}",
        );
        assert_ne!(custom, original, "the template has a <body> to change");
        std::fs::write(dir.path().join("digest.html.hbs"), custom).unwrap();
        let templates = Templates::load(Some(dir.path()), &[digest()]).unwrap();
        let ada = html(&templates, "ada@example.com", "Ada");
        let bob = html(&templates, "bob@example.com", "Ada");
        assert!(ada.contains("VIP"));
        assert!(
            !bob.contains("VIP"),
            "bob is not ada, whatever was merged before"
        );
    }
}

#[test]
fn a_template_syntax_error_is_reported_once_not_also_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("digest.txt.hbs"), "{{#if}}\n").unwrap();
    let err = match Templates::load(Some(dir.path()), &[digest()]) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a syntax error is an error"),
    };
    assert!(
        err.contains("digest.txt.hbs:") && err.contains("invalid handlebars syntax"),
        "{err}"
    );
    assert!(!err.contains("is missing"), "{err}");
}

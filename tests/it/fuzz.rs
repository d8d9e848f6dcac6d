//! Property tests over the inputs users hand tidings, with large generated inputs: front matter (YAML and TOML),
//! Markdown bodies mixing Liquid, Hugo shortcodes, kramdown attribute lists and Zola links (well-formed and
//! broken), config files with environment overrides, subscriber CSV files and e-mail addresses. None may panic;
//! every problem carries a position inside its input; what the generator passes could not evaluate never
//! reaches the published body. A bug these found is kept as a named case in `found_by_fuzzing`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use tidings::config::Config;
use tidings::domain::{EmailAddress, parse_subscribers_csv};
use tidings::store::{ArticleError, Catalog, ParseContext, Source, parse_store};

fn config() -> Config {
    Config::parse(
        Path::new("config.toml"),
        "[site]\ntitle = \"Blog\"\nbase_url = \"https://example.com/blog/\"\ntimezone = \"Europe/Berlin\"\n\
         [authors.ann]\nname = \"Ann\"\n",
        Vec::new(),
        Path::new("/srv"),
    )
    .unwrap()
}

/// Parses `files` (path, text) as one store.
fn parse(files: &[(String, String)]) -> (Catalog, Vec<ArticleError>) {
    let config = config();
    let ctx = ParseContext::from_config(&config);
    let sources = files
        .iter()
        .map(|(p, t)| {
            Ok(Source {
                path: PathBuf::from(p),
                text: t.clone(),
            })
        })
        .collect();
    parse_store(sources, &ctx)
}

/// Every error points inside its file: a line that exists, a column within it (or just past its end).
fn assert_positions(
    files: &[(String, String)],
    errors: &[ArticleError],
) -> Result<(), TestCaseError> {
    for e in errors {
        let (_, text) = files
            .iter()
            .find(|(p, _)| Path::new(p) == e.path)
            .ok_or_else(|| TestCaseError::fail(format!("error for an unknown file: {e}")))?;
        let lines: Vec<&str> = text.split('\n').collect();
        prop_assert!(
            e.line >= 1 && e.line <= lines.len(),
            "line out of range: {e}"
        );
        let width = lines[e.line - 1].chars().count();
        prop_assert!(
            e.col >= 1 && e.col <= width + 1,
            "column out of range ({width}): {e}"
        );
        prop_assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e}");
    }
    Ok(())
}

/// Pieces of a body: plain text and every construct the passes know, well-formed or broken.
fn fragment() -> impl Strategy<Value = String> {
    let word = "[a-zA-Z0-9 ]{0,12}";
    prop_oneof![
        word.prop_map(String::from),
        Just("\n".to_string()),
        Just("\n\n".to_string()),
        // Any text but the characters markup is made of (those come whole, below: two fragments joined by a
        // removal, like `{` + `{% post_url %}`, would be markup no author wrote).
        "[^{}%<>@`\\[\\]]{0,8}".prop_map(String::from),
        // Liquid.
        Just("{% highlight ruby %}\n# comment\n{% endhighlight %}".to_string()),
        Just("{% highlight %}".to_string()),
        Just("{% endhighlight %}".to_string()),
        Just("{% raw %}".to_string()),
        Just("{% endraw %}".to_string()),
        Just("{% comment %}x{% endcomment %}".to_string()),
        Just("{%- assign v = \"1\" -%}{{ v }}".to_string()),
        Just("{{ site.url }}{{ site.baseurl }}".to_string()),
        Just("{{ page.title | escape | append: '!' }}".to_string()),
        Just("{% post_url 2024-01-01-a %}".to_string()),
        Just("{% link _posts/2024-01-01-a.md %}".to_string()),
        Just("{% include x.html %}".to_string()),
        Just("{{ site.data.x | nope }}".to_string()),
        Just("}}".to_string()),
        Just("%}".to_string()),
        // Hugo.
        Just("{{< figure src=\"a.png\" caption=\"c\" >}}".to_string()),
        Just("{{< highlight go >}}\n// c\n{{< /highlight >}}".to_string()),
        Just("{{< highlight go >}}".to_string()),
        Just("{{< /highlight >}}".to_string()),
        Just("{{< ref \"a.md\" >}}".to_string()),
        Just("{{< youtube \"x\" >}}".to_string()),
        Just("{{% notice %}}in{{% /notice %}}".to_string()),
        Just("{{< tweet 1 >}}".to_string()),
        Just("{{<".to_string()),
        Just("{{< \"unterminated >}}".to_string()),
        // Zola.
        Just("{{ youtube(id=\"x\") }}".to_string()),
        Just("{% note(kind='tip') %}body{% end %}".to_string()),
        Just("{{ custom(a=1, b=\"c, d\") }}".to_string()),
        Just("{% end %}".to_string()),
        Just("{{/* gist(url=\"u\") */}}".to_string()),
        // kramdown and Zola links.
        Just("{: .class #id}".to_string()),
        Just("*x*{:title=\"a } b\"}".to_string()),
        Just("{::comment}".to_string()),
        Just("{:/comment}".to_string()),
        Just("[l](@/a.md)".to_string()),
        Just("[l](@/missing.md)".to_string()),
        Just("[r]: @/a.md".to_string()),
        // Markdown that changes how the rest is read.
        Just("```".to_string()),
        Just("`".to_string()),
        Just("    indented\n".to_string()),
        Just("- item\n".to_string()),
        Just("<div>".to_string()),
        Just("<!-- ".to_string()),
    ]
}

/// A Jekyll body may also hold a bare `{{` or `{%` (Liquid drops it to the end of its line). In a Hugo body they
/// are text, and one next to a removed shortcode would join what follows into markup no author wrote.
fn jekyll_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => fragment(),
        1 => Just("{{".to_string()),
        1 => Just("{%".to_string()),
    ]
}

fn jekyll_body() -> impl Strategy<Value = String> {
    prop::collection::vec(jekyll_fragment(), 0..200).prop_map(|parts| parts.concat())
}

fn body() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..200).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_front_matter_gives_an_article_or_a_positioned_error(
        yaml in "[\\PC\n]{0,400}",
        toml in "[\\PC\n]{0,400}",
        body in "[\\PC\n]{0,200}",
    ) {
        let files = vec![
            ("_posts/2024-01-01-a.md".to_string(), format!("---\n{yaml}\n---\n{body}")),
            ("content/b.md".to_string(), format!("+++\n{toml}\n+++\n{body}")),
            ("content/c.md".to_string(), format!("---\ntitle: T\ndate: 2024-01-01\n{yaml}\n---\n{body}")),
        ];
        let (_, errors) = parse(&files);
        assert_positions(&files, &errors)?;
    }

    #[test]
    fn liquid_shortcodes_and_links_never_reach_the_body_and_problems_are_positioned(
        jekyll in jekyll_body(),
        hugo in body(),
        zola in body(),
    ) {
        let files = vec![
            ("site/_posts/2024-01-01-a.md".to_string(), format!("---\ntitle: A\n---\n{jekyll}")),
            ("site/content/posts/b.md".to_string(), format!("---\ntitle: B\ndate: 2024-01-02\n---\n{hugo}")),
            ("site/content/blog/c.md".to_string(), format!("+++\ntitle = \"C\"\ndate = 2024-01-03\n+++\n{zola}")),
        ];
        let (catalog, errors) = parse(&files);
        assert_positions(&files, &errors)?;
        prop_assert_eq!(catalog.all().len(), 3, "{:?}", errors);
        if !zola.contains("/*") {
            let c = catalog.by_slug("c").unwrap().body.as_deref().unwrap();
            for call in ["youtube(", "note(", "custom(", "gist("] {
                prop_assert!(!c.contains(call), "Zola shortcode left in {}", c);
            }
        }
        let a = catalog.by_slug("a").unwrap();
        if !jekyll.contains("{% raw %}") {
            let html = a.html();
            prop_assert!(!html.contains("{%") && !html.contains("{{"), "Liquid left in {}", html);
        }
        // A shortcode as written starts `{{< name` or `{{< /name` (a `{{` the author typed may still stand
        // before a `<figure>` the pass made); the Markdown body is checked, where no `</p>` can follow a `{{`.
        let b = catalog.by_slug("b").unwrap().body.as_deref().unwrap();
        for left in ["{{< ", "{{% ", "{{</", "{{%/"] {
            prop_assert!(!b.contains(left), "shortcode left in {}", b);
        }
        for article in catalog.all() {
            prop_assert!(!article.html().contains("href=\"@/"), "{}", article.html());
        }
    }

    #[test]
    fn any_config_text_and_overrides_give_a_config_or_an_error(
        text in "[\\PC\n]{0,300}",
        key in "[A-Z_]{0,20}",
        value in "[\\PC]{0,20}",
    ) {
        let full = format!("[site]\ntitle = \"T\"\nbase_url = \"https://e.com/\"\n{text}");
        let env = vec![(format!("TIDINGS_{key}"), value)];
        match Config::parse(Path::new("config.toml"), &full, env, Path::new("/srv")) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_subscriber_csv_gives_rows_or_problems_with_lines(text in "[\\PC\n,;\"]{0,600}") {
        let digests = vec!["weekly".to_string()];
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let csv = format!("email,name,digests,categories,subscribed_at\n{text}");
        let (rows, problems) = parse_subscribers_csv("s.csv", &csv, &digests, now);
        let lines = csv.split('\n').count() as u64;
        for p in &problems {
            prop_assert!(p.line >= 1 && p.line <= lines + 1, "{p}");
        }
        for row in rows {
            prop_assert!(EmailAddress::parse(row.email.as_str()).is_ok());
        }
    }

    #[test]
    fn an_accepted_email_address_is_clean_and_parses_to_itself(
        local in "[\\PC]{0,20}",
        domain in "[\\PC]{0,20}",
        raw in "[\\PC\n]{0,40}",
    ) {
        for input in [format!("{local}@{domain}"), raw] {
            if let Ok(address) = EmailAddress::parse(&input) {
                let text = address.as_str();
                prop_assert!(!text.chars().any(|c| c.is_control() || c.is_whitespace()), "{text:?}");
                prop_assert_eq!(text.matches('@').count(), 1);
                prop_assert_eq!(EmailAddress::parse(text).unwrap(), address.clone());
            }
        }
    }
}

proptest! {
    // Thousands of constructs per body: fewer cases, each a large input.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn huge_bodies_of_markup_are_handled(parts in prop::collection::vec(jekyll_fragment(), 1000..3000)) {
        let text = parts.concat();
        let files = vec![
            ("_posts/2024-01-01-a.md".to_string(), format!("---\ntitle: A\n---\n{text}")),
            ("content/b.md".to_string(), format!("+++\ntitle = \"B\"\ndate = 2024-01-02\n+++\n{text}")),
        ];
        let (catalog, errors) = parse(&files);
        assert_positions(&files, &errors)?;
        prop_assert_eq!(catalog.all().len(), 2);
    }
}

/// Bugs the properties above found, kept as named cases.
#[test]
fn found_by_fuzzing() {
    // `{{{<` hid the shortcode after the first brace, which reached the feed.
    let files = vec![(
        "content/b.md".to_string(),
        "---\ntitle: B\ndate: 2024-01-02\n---\n{{{<div>\n{{{< youtube x >}}\n".to_string(),
    )];
    let (catalog, errors) = parse(&files);
    assert_eq!(catalog.all().len(), 1);
    let html = catalog.all()[0].html();
    assert!(!html.contains("{{<"), "{html}");
    assert!(html.contains("https://www.youtube.com/watch?v=x"), "{html}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].line, errors[0].col), (5, 2), "{errors:?}");

    // A control character after a link definition's destination, dropped only after the passes, made the
    // definition valid again, with its `@/` destination unresolved.
    let files = vec![
        (
            "content/a.md".to_string(),
            "+++\ntitle = \"A\"\ndate = 2024-01-01\n+++\nA.\n".to_string(),
        ),
        (
            "content/b.md".to_string(),
            "+++\ntitle = \"B\"\ndate = 2024-01-02\n+++\n[r]\n\n[r]: @/a.md\u{e}\n".to_string(),
        ),
    ];
    let (catalog, errors) = parse(&files);
    assert_eq!(errors, vec![]);
    let html = catalog.by_slug("b").unwrap().html();
    assert!(
        html.contains("href=\"https://example.com/blog/posts/a/\""),
        "{html}"
    );

    // A label defined twice uses its first definition; once that one's unresolved `@/` target was dropped, the
    // second took effect with its `@/` destination as written.
    let jekyll = "[r]: @/a.md{% endhighlight %}{:/comment}\n\n[r]: @/a.md";
    let files = vec![(
        "site/_posts/2024-01-01-a.md".to_string(),
        format!("---\ntitle: A\n---\n{jekyll}"),
    )];
    let (catalog, errors) = parse(&files);
    assert_eq!(catalog.all().len(), 1, "{errors:?}");
    let html = catalog.all()[0].html();
    assert!(!html.contains("@/"), "{html}");
    let unresolved: Vec<(usize, usize)> = errors
        .iter()
        .filter(|e| e.message.contains("\"@/a.md\" is not an article"))
        .map(|e| (e.line, e.col))
        .collect();
    assert_eq!(unresolved, vec![(4, 6), (6, 6)], "{errors:?}");
}

/// The cases above as a store, built by the binary: every article published, its feeds valid and free of markup.
#[test]
fn the_store_of_fuzzing_finds_builds_clean_feeds() {
    let env = crate::support::TestEnv::new("found-by-fuzzing", "");
    env.run_ok(&["build"]);
    crate::feeds::assert_every_feed_valid(&env);
    let json: serde_json::Value = serde_json::from_str(&env.read_public("feed.json")).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for path in crate::feeds::feed_files(&env) {
        let text = std::fs::read_to_string(&path).unwrap();
        for marker in ["{{<", "{{%", "{{ ", "{%", "@/"] {
            assert!(!text.contains(marker), "{marker} in {}", path.display());
        }
    }
    let refdef = items
        .iter()
        .find(|i| i["title"] == "A control character after a link definition")
        .unwrap();
    assert!(
        refdef["content_html"]
            .as_str()
            .unwrap()
            .contains("href=\"https://example.com/blog/posts/target/\""),
        "{refdef}"
    );
}

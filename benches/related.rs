//! Related-reading speed (and, with a ground truth, quality) on a generated store, through the library.
//!
//!     cargo bench --bench related -- --config CONFIG [--topics TOPICS_JSON] [--runs N]
//!
//! CONFIG is a tidings config whose `[site] articles` is a store made by `gen-corpus.py` (bench/run
//! writes one); TOPICS_JSON is that store's `topics.json` (ground truth for precision@5). Loading the store is timed apart from related reading (index build + every article's
//! list), which is what the budget in BENCHMARKS.md is about. `TIDINGS_RELATED_*` variables override the
//! `[related]` defaults, as they do for the binary. Prints one JSON object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use tidings::config::Config;
use tidings::related::RelatedIndex;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut config_path: Option<PathBuf> = None;
    let mut topics_path: Option<PathBuf> = None;
    let mut runs = 3usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--config" => config_path = args.next().map(PathBuf::from),
            "--topics" => topics_path = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other}"),
        }
    }
    let config_path = config_path.expect(
        "usage: cargo bench --bench related -- --config CONFIG [--topics TOPICS_JSON] [--runs N]",
    );
    let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let now = chrono::Utc::now().fixed_offset();

    let started = Instant::now();
    let (catalog, errors) = tidings::store::load(&config);
    let load_s = started.elapsed().as_secs_f64();
    if let Some(e) = errors.first() {
        panic!("the store has {} errors, the first: {e}", errors.len());
    }

    let rss_loaded_mb = rss_mb("VmRSS");
    let mut timings = Vec::new();
    let mut lists = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let index = RelatedIndex::build(&catalog, now, &config.related);
        let built = started.elapsed().as_secs_f64();
        let all: Vec<(String, Vec<String>)> = index
            .all()
            .into_iter()
            .map(|(e, l)| {
                (
                    e.slug.clone(),
                    l.into_iter().map(|s| s.entry.slug.clone()).collect(),
                )
            })
            .collect();
        timings.push((built, started.elapsed().as_secs_f64()));
        lists = all;
    }
    // The index of the last run is dropped by now; build one more to see what it holds while alive.
    let index = RelatedIndex::build(&catalog, now, &config.related);
    let rss_with_index_mb = rss_mb("VmRSS");
    drop(index);
    timings.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (index_s, related_s) = timings[timings.len() / 2];

    let topics: Option<BTreeMap<String, u64>> = topics_path.map(|p| {
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_slice(&bytes).expect("topics.json is {slug: topic}")
    });
    let precision = topics.map(|topics| {
        // Five suggestions per article; a missing suggestion counts as a miss.
        let hits: usize = lists
            .iter()
            .map(|(slug, list)| list.iter().filter(|s| topics[*s] == topics[slug]).count())
            .sum();
        hits as f64 / (5 * lists.len()) as f64
    });
    let short = lists.iter().filter(|(_, l)| l.len() < 5).count();
    println!(
        "{}",
        serde_json::json!({
            "store": config.site.articles,
            "articles": lists.len(),
            "threads": rayon::current_num_threads(),
            "load_s": round(load_s),
            "index_s": round(index_s),
            "related_s": round(related_s),
            "runs": runs,
            "precision_at_5": precision.map(round),
            "lists_shorter_than_5": short,
            "rss_store_loaded_mb": rss_loaded_mb,
            "rss_with_index_mb": rss_with_index_mb,
            "peak_rss_mb": rss_mb("VmHWM"),
        })
    );
}

/// A memory figure of this process from /proc/self/status, in MB (0 where there is no /proc).
fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    round(kb / 1024.0)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

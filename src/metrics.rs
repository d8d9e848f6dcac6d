//! [`Metrics`]: what `/metrics` reports that the state database does not hold — feed builds, the last success
//! of each scheduled job, sign-ups and the messages the web pages sent — kept in memory by the process that
//! serves (one `Arc<Metrics>` shared by the scheduler and the web handlers), and the Prometheus text that
//! renders them together with the ledger's digest runs and message counts ([`Metrics::render`]).
//!
//! In-memory counters start at zero with the process, as Prometheus counters may; what must survive a restart
//! (runs, deliveries) is read from the state at each scrape instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::domain::DeliveryStatus;
use crate::state::RunSummary;

/// The process's own counters. Every method takes `&self`; share it as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    builds: u64,
    build_failures: u64,
    /// Articles and feed bytes of the last successful build.
    articles: Option<u64>,
    feed_bytes: Option<u64>,
    /// Job name ("build", "digest:weekly", …) → its last success.
    last_success: BTreeMap<String, DateTime<Utc>>,
    /// Sign-up form outcome → count.
    signups: BTreeMap<&'static str, u64>,
    /// (message kind, outcome) → count, for messages the web pages sent.
    web_messages: BTreeMap<(&'static str, &'static str), u64>,
}

/// What one successful build published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildStats {
    /// Published articles.
    pub articles: usize,
    /// Bytes of every file in the output folder (feeds, stylesheet, related.json), see [`output_bytes`].
    pub feed_bytes: u64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        // Counters stay meaningful after a panic elsewhere: every update is a single assignment.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A build that published.
    pub fn record_build(&self, stats: BuildStats) {
        let mut c = self.counters();
        c.builds += 1;
        c.articles = Some(stats.articles as u64);
        c.feed_bytes = Some(stats.feed_bytes);
    }

    /// A build that failed (nothing was published).
    pub fn record_build_failure(&self) {
        let mut c = self.counters();
        c.builds += 1;
        c.build_failures += 1;
    }

    /// A scheduled job (`"build"`, `"digest:weekly"`) finished well at `at`.
    pub fn record_job_success(&self, job: &str, at: DateTime<Utc>) {
        self.counters().last_success.insert(job.to_string(), at);
    }

    /// A sign-up form post and what became of it (`"accepted"`, `"invalid"`, `"rate_limited"`, `"honeypot"`, …).
    pub fn record_signup(&self, outcome: &'static str) {
        *self.counters().signups.entry(outcome).or_default() += 1;
    }

    /// A message the web pages sent (`kind`: `"confirmation"`, `"already_subscribed"`; `outcome`: `"sent"`,
    /// `"deferred"`, `"failed"`).
    pub fn record_web_message(&self, kind: &'static str, outcome: &'static str) {
        *self
            .counters()
            .web_messages
            .entry((kind, outcome))
            .or_default() += 1;
    }

    /// The Prometheus text exposition (version 0.0.4) of these counters and of `runs` from the ledger
    /// (`None`: the state did not answer, reported as `tidings_state_up 0`).
    pub fn render(&self, runs: Option<&[RunSummary]>) -> String {
        let c = self.counters();
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "tidings_builds_total",
            "counter",
            "Feed builds attempted by this process.",
            &[(String::new(), c.builds.to_string())],
        );
        family(
            "tidings_build_failures_total",
            "counter",
            "Feed builds that failed and published nothing.",
            &[(String::new(), c.build_failures.to_string())],
        );
        if let Some(articles) = c.articles {
            family(
                "tidings_articles",
                "gauge",
                "Articles published by the last successful build.",
                &[(String::new(), articles.to_string())],
            );
        }
        if let Some(bytes) = c.feed_bytes {
            family(
                "tidings_feed_bytes",
                "gauge",
                "Bytes in the output folder after the last successful build.",
                &[(String::new(), bytes.to_string())],
            );
        }
        family(
            "tidings_job_last_success_timestamp_seconds",
            "gauge",
            "When each scheduled job last finished well (Unix time).",
            &c.last_success
                .iter()
                .map(|(job, at)| (labels(&[("job", job)]), at.timestamp().to_string()))
                .collect::<Vec<_>>(),
        );
        family(
            "tidings_signups_total",
            "counter",
            "Sign-up form posts by outcome.",
            &c.signups
                .iter()
                .map(|(outcome, n)| (labels(&[("outcome", outcome)]), n.to_string()))
                .collect::<Vec<_>>(),
        );
        family(
            "tidings_web_messages_total",
            "counter",
            "Messages sent by the web pages (confirmations), by kind and outcome.",
            &c.web_messages
                .iter()
                .map(|((kind, outcome), n)| {
                    (
                        labels(&[("kind", kind), ("outcome", outcome)]),
                        n.to_string(),
                    )
                })
                .collect::<Vec<_>>(),
        );
        let up = if runs.is_some() { "1" } else { "0" };
        family(
            "tidings_state_up",
            "gauge",
            "Whether the state database answered this scrape.",
            &[(String::new(), up.into())],
        );
        if let Some(runs) = runs {
            let (by_outcome, messages) = ledger_counts(runs);
            family(
                "tidings_digest_runs",
                "gauge",
                "Digest runs in the ledger, by digest and outcome (finished, open, skipped).",
                &by_outcome
                    .iter()
                    .map(|((digest, outcome), n)| {
                        (
                            labels(&[("digest", digest), ("outcome", outcome)]),
                            n.to_string(),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
            family(
                "tidings_messages",
                "gauge",
                "Digest messages in the ledger, by digest and status (sent, deferred, failed, pending, cancelled).",
                &messages
                    .iter()
                    .map(|((digest, status), n)| {
                        (
                            labels(&[("digest", digest), ("status", status)]),
                            n.to_string(),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
        }
        out
    }
}

type Counted = BTreeMap<(String, &'static str), usize>;

/// Runs by (digest, finished/open/skipped) and deliveries by (digest, status), every status present (zero included).
fn ledger_counts(runs: &[RunSummary]) -> (Counted, Counted) {
    let mut by_outcome = Counted::new();
    let mut messages = Counted::new();
    for summary in runs {
        let digest = summary.run.digest.clone();
        let outcome = match (&summary.run.skipped, summary.run.finished) {
            (Some(_), _) => "skipped",
            (None, Some(_)) => "finished",
            (None, None) => "open",
        };
        *by_outcome.entry((digest.clone(), outcome)).or_default() += 1;
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::Deferred,
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ] {
            *messages
                .entry((digest.clone(), status.as_str()))
                .or_default() += summary.counts.get(&status).copied().unwrap_or(0);
        }
    }
    (by_outcome, messages)
}

/// `{k="v",…}` with values escaped as the exposition format says (backslash, quote, newline).
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The bytes of every file under `dir` (the output folder: feeds, stylesheet, related.json), for
/// [`BuildStats::feed_bytes`]; 0 when it does not exist.
pub fn output_bytes(dir: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::state::Run;

    fn run(digest: &str, finished: bool, counts: &[(DeliveryStatus, usize)]) -> RunSummary {
        skipped_or_not(digest, finished, None, counts)
    }

    fn skipped_or_not(
        digest: &str,
        finished: bool,
        skipped: Option<&str>,
        counts: &[(DeliveryStatus, usize)],
    ) -> RunSummary {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).unwrap();
        RunSummary {
            run: Run {
                id: 1,
                digest: digest.into(),
                tick: at,
                articles: vec![],
                created: at,
                planned: Some(at),
                finished: finished.then_some(at),
                skipped: skipped.map(String::from),
            },
            counts: counts.iter().copied().collect(),
        }
    }

    #[test]
    fn builds_jobs_and_the_ledger_are_rendered_as_prometheus_text() {
        let m = Metrics::new();
        m.record_build(BuildStats {
            articles: 14,
            feed_bytes: 5000,
        });
        m.record_build_failure();
        m.record_job_success(
            "digest:weekly",
            Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
        );
        m.record_signup("accepted");
        m.record_signup("accepted");
        m.record_web_message("confirmation", "sent");
        let runs = [
            run(
                "weekly",
                true,
                &[(DeliveryStatus::Sent, 3), (DeliveryStatus::Failed, 1)],
            ),
            run("weekly", false, &[(DeliveryStatus::Deferred, 2)]),
            skipped_or_not("weekly", true, Some("missed by 2days"), &[]),
        ];
        let text = m.render(Some(&runs));
        for line in [
            "tidings_builds_total 2",
            "tidings_build_failures_total 1",
            "tidings_articles 14",
            "tidings_feed_bytes 5000",
            "tidings_job_last_success_timestamp_seconds{job=\"digest:weekly\"} 1800000000",
            "tidings_signups_total{outcome=\"accepted\"} 2",
            "tidings_web_messages_total{kind=\"confirmation\",outcome=\"sent\"} 1",
            "tidings_state_up 1",
            "tidings_digest_runs{digest=\"weekly\",outcome=\"finished\"} 1",
            "tidings_digest_runs{digest=\"weekly\",outcome=\"open\"} 1",
            "tidings_digest_runs{digest=\"weekly\",outcome=\"skipped\"} 1",
            "tidings_messages{digest=\"weekly\",status=\"sent\"} 3",
            "tidings_messages{digest=\"weekly\",status=\"deferred\"} 2",
            "tidings_messages{digest=\"weekly\",status=\"failed\"} 1",
            "tidings_messages{digest=\"weekly\",status=\"pending\"} 0",
            "# TYPE tidings_builds_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }

    #[test]
    fn a_state_that_does_not_answer_is_reported_down_and_label_values_are_escaped() {
        let m = Metrics::new();
        m.record_job_success("a\"b\\c\nd", Utc.timestamp_opt(0, 0).unwrap());
        let text = m.render(None);
        assert!(text.contains("tidings_state_up 0"), "{text}");
        assert!(!text.contains("tidings_digest_runs{"), "{text}");
        assert!(text.contains("{job=\"a\\\"b\\\\c\\nd\"} 0"), "{text}");
    }
}

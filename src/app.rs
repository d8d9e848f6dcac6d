//! The composition root: the one place that wires disk, clock-derived time and the pure modules together for
//! each command. Functions here take `now` from the caller (only `main` reads the clock) and return reports;
//! printing is the caller's job.

mod digests;

pub use digests::*;

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset};

use crate::config::Config;
use crate::feed;
use crate::output::{WriteOutcome, write_if_changed};
use crate::related::{self, RelatedError, RelatedIndex};
use crate::store::{self, ArticleError, Catalog};

/// What a build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub published: usize,
    pub feeds: usize,
    pub written: Vec<PathBuf>,
    pub unchanged: usize,
    /// Articles left out, each with its position and fix.
    pub errors: Vec<ArticleError>,
}

impl BuildReport {
    /// Writes one output file (only when its bytes changed) and counts it.
    fn write(&mut self, path: PathBuf, bytes: &[u8]) -> Result<(), BuildError> {
        match write_if_changed(&path, bytes) {
            Ok(WriteOutcome::Written) => self.written.push(path),
            Ok(WriteOutcome::Unchanged) => self.unchanged += 1,
            Err(source) => return Err(BuildError::Write { path, source }),
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads the store and writes every feed (only files whose bytes changed).
pub fn build(config: &Config, now: DateTime<FixedOffset>) -> Result<BuildReport, BuildError> {
    let (catalog, errors) = store::load(config);
    publish(config, &catalog, errors, now)
}

/// Writes every feed and `related.json` from a loaded store; `errors` are the store's, reported with the build.
fn publish(
    config: &Config,
    catalog: &Catalog,
    mut errors: Vec<ArticleError>,
    now: DateTime<FixedOffset>,
) -> Result<BuildReport, BuildError> {
    let mut report = write_feeds(config, catalog, now)?;
    write_related(config, catalog, now, &mut report)?;
    errors.extend(unknown_picks(catalog));
    report.errors = errors;
    Ok(report)
}

/// Writes `related.json` (every published article's related list) beside the feeds.
fn write_related(
    config: &Config,
    catalog: &Catalog,
    now: DateTime<FixedOffset>,
    report: &mut BuildReport,
) -> Result<(), BuildError> {
    let started = std::time::Instant::now();
    let index = RelatedIndex::build(catalog, now, &config.related, &config.site.language);
    let bytes = related::render_json(&index);
    tracing::debug!(
        articles = index.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "related reading computed"
    );
    report.write(config.feeds.output.join("related.json"), &bytes)
}

/// Editor's picks naming no article, located in their files.
fn unknown_picks(catalog: &Catalog) -> Vec<ArticleError> {
    related::check_picks(catalog, |path| std::fs::read_to_string(path).ok())
}

/// The related list of one published article with the reasons behind each score (`tidings related SLUG`).
pub fn related(
    config: &Config,
    slug: &str,
    now: DateTime<FixedOffset>,
) -> Result<related::Report, RelatedError> {
    let (catalog, _) = store::load(config);
    let index = RelatedIndex::build(&catalog, now, &config.related, &config.site.language);
    index
        .explain(slug)
        .ok_or_else(|| index.missing(&catalog, slug))
}

fn write_feeds(
    config: &Config,
    catalog: &Catalog,
    now: DateTime<FixedOffset>,
) -> Result<BuildReport, BuildError> {
    let plans = feed::plan_feeds(config, catalog, now);
    let newest = catalog.published(now).max_by_key(|a| a.updated);
    let files = feed::render_all(config, &plans, newest);
    let mut report = BuildReport {
        published: catalog.published(now).count(),
        feeds: plans.len(),
        ..Default::default()
    };
    for file in files {
        report.write(config.feeds.output.join(&file.path), &file.bytes)?;
    }
    Ok(report)
}

/// What one round of `run --once` did: the build, then each configured digest's latest tick.
#[derive(Debug)]
pub struct RoundReport {
    pub build: BuildReport,
    pub digests: Vec<SendReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Digest(#[from] NewsletterError),
}

/// `run --once`: one build, then every digest's latest tick at or before `now`, all from one reading of the
/// store. A tick that already has a run sends nothing again, so this is safe to call from cron as often as one
/// likes.
pub fn run_once(
    config: &Config,
    now: DateTime<FixedOffset>,
    env_secret: Option<&str>,
) -> Result<RoundReport, RoundError> {
    let (catalog, errors) = store::load(config);
    let build = publish(config, &catalog, errors, now)?;
    let digests = config
        .digest
        .iter()
        .map(|d| {
            let mut transport = transport(config);
            digest_send_with(
                config,
                &catalog,
                &d.name,
                now,
                env_secret,
                transport.as_mut(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RoundReport { build, digests })
}

/// What `check` found: invalid content (problems, in path order) and things worth a look (warnings).
#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// `check`: the store's problems (bad articles, unknown editor's picks) and the digests' (templates, Gmail
/// clipping), from one reading of the store.
pub fn check(config: &Config, now: DateTime<FixedOffset>) -> CheckReport {
    let (catalog, mut errors) = store::load(config);
    errors.extend(unknown_picks(&catalog));
    errors.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    let digests = check_digests(config, &catalog, now);
    let mut problems: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    problems.extend(digests.problems);
    CheckReport {
        problems,
        warnings: digests.warnings,
    }
}

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
    let (catalog, mut errors) = store::load(config);
    let mut report = write_feeds(config, &catalog, now)?;
    write_related(config, &catalog, now, &mut report)?;
    errors.extend(unknown_picks(&catalog));
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
    let path = config.feeds.output.join("related.json");
    match write_if_changed(&path, &bytes).map_err(|source| BuildError::Write {
        path: path.clone(),
        source,
    })? {
        WriteOutcome::Written => report.written.push(path),
        WriteOutcome::Unchanged => report.unchanged += 1,
    }
    Ok(())
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
        let path = config.feeds.output.join(&file.path);
        match write_if_changed(&path, &file.bytes).map_err(|source| BuildError::Write {
            path: path.clone(),
            source,
        })? {
            WriteOutcome::Written => report.written.push(path),
            WriteOutcome::Unchanged => report.unchanged += 1,
        }
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

/// `run --once`: one build, then every digest's latest tick at or before `now`. A tick that already has a run
/// sends nothing again, so this is safe to call from cron as often as one likes.
pub fn run_once(
    config: &Config,
    now: DateTime<FixedOffset>,
    env_secret: Option<&str>,
) -> Result<RoundReport, RoundError> {
    let build = build(config, now)?;
    let digests = config
        .digest
        .iter()
        .map(|d| digest_send(config, &d.name, now, env_secret))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RoundReport { build, digests })
}

/// Every problem `check` finds in the store, in path order.
pub fn check(config: &Config) -> Vec<ArticleError> {
    let (catalog, mut errors) = store::load(config);
    errors.extend(unknown_picks(&catalog));
    errors.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    errors
}

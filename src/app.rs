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
    let (catalog, errors) = store::load(config);
    let mut report = write_feeds(config, &catalog, now)?;
    report.errors = errors;
    Ok(report)
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

/// Every problem `check` finds in the store, in path order.
pub fn check(config: &Config) -> Vec<ArticleError> {
    store::load(config).1
}

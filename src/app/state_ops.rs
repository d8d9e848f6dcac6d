//! `tidings state`: bring a state's schema up to date, and move a state between backends (SQLite → PostgreSQL)
//! through an export file. The file's layout and what it keeps are in [`crate::state::dump`].

use std::io::Write;
use std::path::Path;

use super::{NewsletterError, open_state};
use crate::config::Config;
use crate::state::dump::{self, StateDump};
use crate::state::schema_status;

/// `state migrate [--dry-run]`: what the configured state's schema needs, and (unless a dry run) applies it.
pub async fn state_migrate(config: &Config, dry_run: bool) -> Result<String, NewsletterError> {
    let location = &config.state.database;
    let status = schema_status(location).await?;
    let shown = location.display();
    if status.current >= status.latest {
        return Ok(format!(
            "{shown}: schema version {}, up to date\n",
            status.current
        ));
    }
    if dry_run {
        return Ok(format!(
            "{shown}: schema version {}; would migrate to version {} (nothing changed)\n",
            status.current, status.latest
        ));
    }
    open_state(config).await?;
    Ok(format!(
        "{shown}: migrated from schema version {} to {}\n",
        status.current, status.latest
    ))
}

/// `state export [--output FILE]`: everything the configured state holds, as JSON, to `out` (standard output
/// when `None`); returns a one-line summary.
pub async fn state_export(config: &Config, out: Option<&Path>) -> Result<String, NewsletterError> {
    let state = open_state(config).await?;
    let dump = dump::export(state.as_ref()).await?;
    let mut json = serde_json::to_vec(&dump).expect("a dump serializes");
    json.push(b'\n');
    match out {
        Some(path) => {
            // Addresses and the link-token secret: readable by the owner only, like the database.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(path)
                .and_then(|mut f| f.write_all(&json))
                .map_err(|source| NewsletterError::Write {
                    path: path.into(),
                    source,
                })?
        }
        None => std::io::stdout()
            .write_all(&json)
            .map_err(|source| NewsletterError::Write {
                path: "standard output".into(),
                source,
            })?,
    }
    Ok(summary("exported", &config.state.database.display(), &dump))
}

/// `state import FILE`: writes an export into the configured state, which must be empty; all or nothing.
pub async fn state_import(config: &Config, file: &Path) -> Result<String, NewsletterError> {
    let bytes = std::fs::read(file).map_err(|source| NewsletterError::Read {
        path: file.into(),
        source,
    })?;
    let dump: StateDump =
        serde_json::from_slice(&bytes).map_err(|e| NewsletterError::BadExport {
            path: file.into(),
            reason: e.to_string(),
        })?;
    dump.check().map_err(|reason| NewsletterError::BadExport {
        path: file.into(),
        reason,
    })?;
    let state = open_state(config).await?;
    state.load(&dump).await?;
    Ok(summary("imported", &config.state.database.display(), &dump))
}

fn summary(done: &str, location: &str, dump: &StateDump) -> String {
    format!(
        "{done} {} subscribers, {} suppressions, {} runs, {} deliveries ({location})\n",
        dump.subscribers.len(),
        dump.suppressions.len(),
        dump.runs.len(),
        dump.deliveries.len()
    )
}

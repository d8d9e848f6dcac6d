//! The subscriber commands (`subscribers add|import|list|remove`): the owner's view of the list.

use std::path::Path;

use chrono::{DateTime, FixedOffset, Utc};

use super::{NewsletterError, digest_config, digest_names, open_state, ts};
use crate::config::Config;
use crate::domain::{
    EmailAddress, ImportProblem, NewSubscriber, Subscriber, parse_subscribers_csv,
};
use crate::state::{RemoveOutcome, UpsertOutcome};
use crate::store;

/// `subscribers add`: one confirmed subscriber (an owner adding someone who already asked for the digest).
pub async fn subscribers_add(
    config: &Config,
    email: &str,
    name: Option<&str>,
    digests: &[String],
    categories: &[String],
    now: DateTime<FixedOffset>,
) -> Result<UpsertOutcome, NewsletterError> {
    let email = EmailAddress::parse(email)?;
    for d in digests {
        digest_config(config, d)?;
    }
    let digests = if digests.is_empty() {
        digest_names(config)
    } else {
        digests.to_vec()
    };
    let state = open_state(config)?;
    Ok(state
        .upsert_subscriber(&NewSubscriber {
            email,
            name: store::single_line(name.unwrap_or("")),
            digests,
            categories: categories.to_vec(),
            subscribed_at: now.with_timezone(&Utc),
            changed_at: now.with_timezone(&Utc),
        })
        .await?)
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Addresses that unsubscribed or bounced and were left so.
    pub kept_unsubscribed: Vec<EmailAddress>,
    /// Rows not imported, with their line.
    pub problems: Vec<ImportProblem>,
}

/// `subscribers import FILE.csv`: every good row is imported (idempotently), every bad row reported by line.
pub async fn subscribers_import(
    config: &Config,
    path: &Path,
    now: DateTime<FixedOffset>,
) -> Result<ImportReport, NewsletterError> {
    let text = std::fs::read_to_string(path).map_err(|source| NewsletterError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (subscribers, problems) = parse_subscribers_csv(
        &path.display().to_string(),
        &text,
        &digest_names(config),
        now.with_timezone(&Utc),
    );
    let state = open_state(config)?;
    let mut report = ImportReport {
        problems,
        ..Default::default()
    };
    for s in &subscribers {
        match state.upsert_subscriber(s).await? {
            UpsertOutcome::Added => report.added += 1,
            UpsertOutcome::Updated => report.updated += 1,
            UpsertOutcome::Unchanged => report.unchanged += 1,
            UpsertOutcome::KeptUnsubscribed => report.kept_unsubscribed.push(s.email.clone()),
        }
    }
    Ok(report)
}

/// `subscribers list --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

/// `subscribers list`: the list rendered in `format` (by address).
pub async fn subscribers_list(
    config: &Config,
    digest: Option<&str>,
    format: ListFormat,
) -> Result<String, NewsletterError> {
    if let Some(d) = digest {
        digest_config(config, d)?;
    }
    let subscribers = open_state(config)?.subscribers(digest).await?;
    Ok(render_subscribers(&subscribers, format))
}

fn render_subscribers(subscribers: &[Subscriber], format: ListFormat) -> String {
    match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = subscribers
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "email": s.email.as_str(),
                        "name": s.name,
                        "status": s.status,
                        "digests": s.digests,
                        "categories": s.categories,
                        "created": ts(s.created),
                        "confirmed": s.confirmed.map(ts),
                    })
                })
                .collect();
            let mut out = serde_json::to_string_pretty(&rows).expect("JSON values serialize");
            out.push('\n');
            out
        }
        ListFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record([
                "email",
                "name",
                "status",
                "digests",
                "categories",
                "subscribed_at",
            ]);
            for s in subscribers {
                let _ = w.write_record([
                    s.email.as_str(),
                    &s.name,
                    s.status.as_str(),
                    &s.digests.join(";"),
                    &s.categories.join(";"),
                    &ts(s.created),
                ]);
            }
            String::from_utf8(w.into_inner().expect("writing to memory cannot fail"))
                .expect("CSV of UTF-8 is UTF-8")
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = subscribers
                .iter()
                .map(|s| {
                    [
                        s.email.to_string(),
                        s.name.clone(),
                        s.status.as_str().into(),
                        s.digests.join(";"),
                        if s.categories.is_empty() {
                            "(all)".into()
                        } else {
                            s.categories.join(";")
                        },
                        ts(s.created),
                    ]
                })
                .collect();
            let header = [
                "EMAIL",
                "NAME",
                "STATUS",
                "DIGESTS",
                "CATEGORIES",
                "SUBSCRIBED",
            ]
            .map(String::from);
            let mut widths = header.clone().map(|h| h.chars().count());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let mut out = String::new();
            for row in std::iter::once(&header).chain(&rows) {
                let cells: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                    .collect();
                out.push_str(cells.join("  ").trim_end());
                out.push('\n');
            }
            out.push_str(&format!("{} subscriber(s)\n", rows.len()));
            out
        }
    }
}

/// `subscribers remove`: deletes the subscriber and their delivery history.
pub async fn subscribers_remove(
    config: &Config,
    email: &str,
) -> Result<RemoveOutcome, NewsletterError> {
    let email = EmailAddress::parse(email)?;
    Ok(open_state(config)?.remove_subscriber(&email).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubscriberStatus;

    #[test]
    fn subscriber_table_aligns_columns_and_counts() {
        let s = Subscriber {
            email: EmailAddress::parse("ada@example.com").unwrap(),
            name: "Ada".into(),
            status: SubscriberStatus::Confirmed,
            digests: vec!["weekly".into()],
            categories: vec![],
            created: DateTime::parse_from_rfc3339("2026-08-15T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            confirmed: None,
            joined: Default::default(),
        };
        let table = render_subscribers(&[s], ListFormat::Table);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("EMAIL            NAME"), "{table}");
        assert!(lines[1].starts_with("ada@example.com  Ada "), "{table}");
        assert_eq!(lines[2], "1 subscriber(s)");
    }
}

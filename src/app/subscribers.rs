//! The subscriber commands (`subscribers add|import|list|remove`): the owner's view of the list. An address that
//! left is remembered: `remove` unsubscribes it, `remove --forget` erases the person and keeps only a keyed hash
//! of the address, and neither is subscribed again by `add` or `import` unless the owner says `--resubscribe`.

use std::path::Path;

use chrono::{DateTime, FixedOffset, Utc};

use super::composer::link_tokens;
use super::{
    ListFormat, NewsletterError, check_categories, digest_config, digest_names, known_categories,
    known_digest, open_state, table, ts,
};
use crate::config::Config;
use crate::domain::{
    EmailAddress, ImportProblem, NewSubscriber, Subscriber, parse_subscribers_csv,
};
use crate::state::{RemoveOutcome, Resubscribe, UpsertOutcome};
use crate::store;

/// `subscribers add`: one confirmed subscriber (an owner adding someone who already asked for the digest).
#[allow(clippy::too_many_arguments)] // one per command-line option
pub async fn subscribers_add(
    config: &Config,
    email: &str,
    name: Option<&str>,
    digests: &[String],
    categories: &[String],
    now: DateTime<FixedOffset>,
    secret: Option<&str>,
    resubscribe: Resubscribe,
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
    let categories = if categories.is_empty() {
        Vec::new()
    } else {
        let (catalog, _) = store::load(config);
        check_categories(categories, &known_categories(config, &catalog))?
    };
    let state = open_state(config).await?;
    let key = link_tokens(state.as_ref(), secret)
        .await?
        .suppression_key(&email);
    let new = NewSubscriber {
        email,
        name: store::single_line(name.unwrap_or("")),
        digests,
        categories,
        subscribed_at: now.with_timezone(&Utc),
        changed_at: now.with_timezone(&Utc),
    };
    Ok(state.upsert_subscriber(&new, &key, resubscribe).await?)
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Addresses that had left and were brought back (`--resubscribe`).
    pub resubscribed: usize,
    /// Addresses that unsubscribed, bounced or were forgotten, and were left so.
    pub kept_out: Vec<EmailAddress>,
    /// Rows not imported, with their line.
    pub problems: Vec<ImportProblem>,
}

/// `subscribers import FILE.csv`: every good row is imported (idempotently, in one transaction), every bad row
/// reported by line.
pub async fn subscribers_import(
    config: &Config,
    path: &Path,
    now: DateTime<FixedOffset>,
    secret: Option<&str>,
    resubscribe: Resubscribe,
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
    let state = open_state(config).await?;
    let tokens = link_tokens(state.as_ref(), secret).await?;
    let batch: Vec<_> = subscribers
        .into_iter()
        .map(|s| {
            let key = tokens.suppression_key(&s.email);
            (s, key)
        })
        .collect();
    let outcomes = state.upsert_subscribers(&batch, resubscribe).await?;
    let mut report = ImportReport {
        problems,
        ..Default::default()
    };
    for ((s, _), outcome) in batch.iter().zip(outcomes) {
        match outcome {
            UpsertOutcome::Added => report.added += 1,
            UpsertOutcome::Updated => report.updated += 1,
            UpsertOutcome::Unchanged => report.unchanged += 1,
            UpsertOutcome::Resubscribed => report.resubscribed += 1,
            UpsertOutcome::KeptUnsubscribed | UpsertOutcome::Suppressed => {
                report.kept_out.push(s.email.clone())
            }
        }
    }
    Ok(report)
}

/// `subscribers list`: the list rendered in `format` (by address).
pub async fn subscribers_list(
    config: &Config,
    digest: Option<&str>,
    format: ListFormat,
) -> Result<String, NewsletterError> {
    known_digest(config, digest)?;
    let subscribers = open_state(config).await?.subscribers(digest).await?;
    Ok(render_subscribers(&subscribers, format))
}

/// A CSV cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading `'`, as
/// OWASP advises, so an exported name like `=HYPERLINK(…)` stays text.
fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
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
            let header = [
                "email",
                "name",
                "status",
                "digests",
                "categories",
                "subscribed_at",
            ];
            let _ = w.write_record(header);
            for s in subscribers {
                let row = [
                    s.email.to_string(),
                    s.name.clone(),
                    s.status.as_str().into(),
                    s.digests.join(";"),
                    s.categories.join(";"),
                    ts(s.created),
                ];
                let _ = w.write_record(row.iter().map(|c| spreadsheet_safe(c)));
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
            let mut out = table(
                [
                    "EMAIL",
                    "NAME",
                    "STATUS",
                    "DIGESTS",
                    "CATEGORIES",
                    "SUBSCRIBED",
                ],
                &rows,
            );
            out.push_str(&format!("{} subscriber(s)\n", rows.len()));
            out
        }
    }
}

/// `subscribers remove`: unsubscribes the address (remembered, never mailed again); with `forget`, erases the
/// person and their delivery history and keeps only a keyed hash of the address, so an import cannot bring them
/// back either.
pub async fn subscribers_remove(
    config: &Config,
    email: &str,
    forget: bool,
    now: DateTime<FixedOffset>,
    secret: Option<&str>,
) -> Result<RemoveOutcome, NewsletterError> {
    let email = EmailAddress::parse(email)?;
    let state = open_state(config).await?;
    if forget {
        let key = link_tokens(state.as_ref(), secret)
            .await?
            .suppression_key(&email);
        Ok(state.forget(&email, &key, now.to_utc()).await?)
    } else {
        Ok(state.unsubscribe(&email, now.to_utc()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubscriberStatus;

    fn subscriber(name: &str) -> Subscriber {
        Subscriber {
            email: EmailAddress::parse("ada@example.com").unwrap(),
            handle: crate::domain::SubscriberHandle::from_bytes([1; 16]),
            name: name.into(),
            status: SubscriberStatus::Confirmed,
            digests: vec!["weekly".into()],
            categories: vec![],
            created: DateTime::parse_from_rfc3339("2026-08-15T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            confirmed: None,
            joined: Default::default(),
        }
    }

    #[test]
    fn subscriber_table_aligns_columns_and_counts() {
        let table = render_subscribers(&[subscriber("Ada")], ListFormat::Table);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("EMAIL            NAME"), "{table}");
        assert!(lines[1].starts_with("ada@example.com  Ada "), "{table}");
        assert_eq!(lines[2], "1 subscriber(s)");
    }

    #[test]
    fn a_csv_export_never_hands_a_spreadsheet_a_formula() {
        let csv = render_subscribers(
            &[subscriber("=HYPERLINK(\"http://evil.example\",\"x\")")],
            ListFormat::Csv,
        );
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains("\"'=HYPERLINK("), "{row}");
        for cell in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(spreadsheet_safe(cell), format!("'{cell}"));
        }
        assert_eq!(spreadsheet_safe("Ada"), "Ada");
    }
}

//! `digest runs`: every run of a digest tick with how its deliveries stand, for the operator (and for a test to
//! compare two databases).

use super::{ListFormat, NewsletterError, known_digest, open_state, table, ts};
use crate::config::Config;
use crate::domain::DeliveryStatus;
use crate::state::RunSummary;

/// `digest runs [NAME]`: runs newest first, rendered in `format`.
pub async fn digest_runs(
    config: &Config,
    digest: Option<&str>,
    format: ListFormat,
) -> Result<String, NewsletterError> {
    known_digest(config, digest)?;
    let runs = open_state(config).await?.runs(digest).await?;
    Ok(render_runs(&runs, format))
}

fn count(summary: &RunSummary, status: DeliveryStatus) -> usize {
    summary.counts.get(&status).copied().unwrap_or(0)
}

/// The FINISHED column: when, or why it never will be, or what it waits for.
fn finished(r: &RunSummary) -> String {
    match (&r.run.skipped, r.run.planned, r.run.finished) {
        (Some(reason), _, _) => format!("skipped: {reason}"),
        (None, None, _) => "planning".into(),
        (None, Some(_), Some(at)) => ts(at),
        (None, Some(_), None) => "open".into(),
    }
}

fn render_runs(runs: &[RunSummary], format: ListFormat) -> String {
    const STATUSES: [DeliveryStatus; 5] = DeliveryStatus::ALL;
    match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| {
                    let counts: serde_json::Map<String, serde_json::Value> = STATUSES
                        .iter()
                        .map(|s| (s.as_str().to_string(), count(r, *s).into()))
                        .collect();
                    serde_json::json!({
                        "digest": r.run.digest,
                        "tick": ts(r.run.tick),
                        "created": ts(r.run.created),
                        "planned": r.run.planned.map(ts),
                        "finished": r.run.finished.map(ts),
                        "skipped": r.run.skipped,
                        "articles": r.run.articles,
                        "deliveries": counts,
                    })
                })
                .collect();
            let mut out = serde_json::to_string_pretty(&rows).expect("JSON values serialize");
            out.push('\n');
            out
        }
        ListFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header = vec!["digest", "tick", "finished"];
            header.extend(STATUSES.iter().map(|s| s.as_str()));
            let _ = w.write_record(&header);
            for r in runs {
                let mut row = vec![
                    r.run.digest.clone(),
                    ts(r.run.tick),
                    r.run.finished.map(ts).unwrap_or_default(),
                ];
                row.extend(STATUSES.iter().map(|s| count(r, *s).to_string()));
                let _ = w.write_record(&row);
            }
            String::from_utf8(w.into_inner().expect("writing to memory cannot fail"))
                .expect("CSV of UTF-8 is UTF-8")
        }
        ListFormat::Table => {
            let rows: Vec<[String; 8]> = runs
                .iter()
                .map(|r| {
                    [
                        r.run.digest.clone(),
                        ts(r.run.tick),
                        finished(r),
                        count(r, DeliveryStatus::Sent).to_string(),
                        count(r, DeliveryStatus::Deferred).to_string(),
                        count(r, DeliveryStatus::Pending).to_string(),
                        count(r, DeliveryStatus::Failed).to_string(),
                        count(r, DeliveryStatus::Cancelled).to_string(),
                    ]
                })
                .collect();
            let mut out = table(
                [
                    "DIGEST",
                    "TICK",
                    "FINISHED",
                    "SENT",
                    "DEFERRED",
                    "PENDING",
                    "FAILED",
                    "CANCELLED",
                ],
                &rows,
            );
            out.push_str(&format!("{} run(s)\n", rows.len()));
            out
        }
    }
}

//! Parsing a subscriber list (CSV) into [`NewSubscriber`]s. Pure: text in, subscribers and per-line problems out,
//! so one bad row never stops the good ones.
//!
//! Columns (header required, any order): `email` (required), `name`, `digests` and `categories` (lists separated
//! by `;`), `subscribed_at` (RFC 3339; keeps a migrated list's original subscription times). An empty `digests`
//! means every configured digest.

use chrono::{DateTime, Utc};

use super::{EmailAddress, NewSubscriber};

/// A row that was not imported, by its line in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: error: {message}")]
pub struct ImportProblem {
    pub origin: String,
    pub line: u64,
    pub message: String,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Parses `text` (from `origin`, for messages). `digests` are the configured digest names; `now` is the
/// subscription time of rows without `subscribed_at`.
pub fn parse_subscribers_csv(
    origin: &str,
    text: &str,
    digests: &[String],
    now: DateTime<Utc>,
) -> (Vec<NewSubscriber>, Vec<ImportProblem>) {
    let problem = |line: u64, message: String| ImportProblem {
        origin: origin.into(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>(),
        Err(e) => {
            return (
                Vec::new(),
                vec![problem(1, format!("cannot read the header: {e}"))],
            );
        }
    };
    let column = |name: &str| headers.iter().position(|h| h == name);
    let Some(email_col) = column("email") else {
        return (
            Vec::new(),
            vec![problem(
                1,
                "the header has no email column; expected email,name,digests,categories[,subscribed_at]".into(),
            )],
        );
    };
    let (name_col, digests_col, categories_col, at_col) = (
        column("name"),
        column("digests"),
        column("categories"),
        column("subscribed_at"),
    );
    let mut subscribers = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(problem(line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |col: Option<usize>| col.and_then(|c| record.get(c)).unwrap_or("");
        if record.iter().all(str::is_empty) {
            continue;
        }
        let email = match EmailAddress::parse(field(Some(email_col))) {
            Ok(e) => e,
            Err(e) => {
                problems.push(problem(line, e.to_string()));
                continue;
            }
        };
        let mut wanted = list(field(digests_col));
        if wanted.is_empty() {
            wanted = digests.to_vec();
        }
        if let Some(unknown) = wanted.iter().find(|d| !digests.contains(d)) {
            problems.push(problem(
                line,
                format!(
                    "digest \"{unknown}\" is not configured; use one of: {} (or leave digests empty for all)",
                    digests.join(", ")
                ),
            ));
            continue;
        }
        let subscribed_at = match field(at_col) {
            "" => now,
            value => match DateTime::parse_from_rfc3339(value) {
                Ok(t) => t.with_timezone(&Utc),
                Err(_) => {
                    problems.push(problem(
                        line,
                        format!("subscribed_at \"{value}\" is not RFC 3339; use e.g. 2026-08-15T10:00:00Z"),
                    ));
                    continue;
                }
            },
        };
        subscribers.push(NewSubscriber {
            email,
            name: crate::store::single_line(field(name_col)),
            digests: wanted,
            categories: list(field(categories_col)),
            subscribed_at,
            changed_at: now,
        });
    }
    (subscribers, problems)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).unwrap()
    }

    fn parse(text: &str) -> (Vec<NewSubscriber>, Vec<ImportProblem>) {
        parse_subscribers_csv("subs.csv", text, &["weekly".into(), "daily".into()], now())
    }

    #[test]
    fn rows_become_subscribers_with_lists_and_times() {
        let (subs, problems) = parse(
            "email,name,digests,categories,subscribed_at\n\
             Ada@Example.com,Ada Park,weekly,Career; Tools,2026-08-15T10:00:00Z\n\
             bob@example.org,Bob,,,\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(subs[0].email.as_str(), "ada@example.com");
        assert_eq!(subs[0].categories, ["Career", "Tools"]);
        assert_eq!(
            subs[0].subscribed_at,
            Utc.with_ymd_and_hms(2026, 8, 15, 10, 0, 0).unwrap()
        );
        assert_eq!(
            subs[1].digests,
            ["weekly", "daily"],
            "empty digests: all of them"
        );
        assert_eq!(subs[1].subscribed_at, now());
    }

    #[test]
    fn bad_rows_are_reported_by_line_and_good_rows_kept() {
        let (subs, problems) = parse(
            "email,name,digests,categories\n\
             ada@example.com,Ada,weekly,\n\
             not-an-address,Bad,weekly,\n\
             bob@example.com,Bob,monthly,\n\
             carl@example.com,Carl,weekly,\n",
        );
        assert_eq!(
            subs.iter().map(|s| s.email.as_str()).collect::<Vec<_>>(),
            ["ada@example.com", "carl@example.com"]
        );
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4]);
        assert!(
            problems[0]
                .to_string()
                .starts_with("subs.csv:3: error: \"not-an-address\""),
            "{}",
            problems[0]
        );
        assert!(
            problems[1]
                .to_string()
                .contains("\"monthly\" is not configured"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_bad_subscription_time_is_a_problem_not_now() {
        let (subs, problems) = parse("email,subscribed_at\nada@example.com,last tuesday\n");
        assert!(subs.is_empty());
        assert!(problems[0].message.contains("RFC 3339"), "{}", problems[0]);
    }

    #[test]
    fn a_file_without_an_email_column_is_one_problem() {
        let (subs, problems) = parse("mail,name\nada@example.com,Ada\n");
        assert!(subs.is_empty());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("no email column"));
    }
}

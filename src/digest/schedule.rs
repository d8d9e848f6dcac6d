//! [`Schedule`]: a digest's cron expression, read in the site's time zone, and the ticks it yields.

use std::str::FromStr;

use chrono::{DateTime, Duration, FixedOffset, SubsecRound, TimeZone};
use chrono_tz::Tz;

/// A cron expression that does not parse, with the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{expr}\" is not a cron schedule ({reason}); use 5 fields like \"0 8 * * MON\" (minute hour day month weekday) or 6/7 fields with seconds first"
)]
pub struct ScheduleError {
    pub expr: String,
    pub reason: String,
}

/// A parsed schedule. The `cron` crate wants a seconds field; a 5-field crontab line gets `0` seconds prepended.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written in config.toml, for messages.
    expr: String,
    cron: cron::Schedule,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let fields = expr.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {}", expr.trim()),
            6 | 7 => expr.trim().to_string(),
            n => {
                return Err(ScheduleError {
                    expr: expr.into(),
                    reason: format!("it has {n} fields"),
                });
            }
        };
        cron::Schedule::from_str(&full)
            .map(|cron| Schedule {
                expr: expr.trim().to_string(),
                cron,
            })
            .map_err(|e| ScheduleError {
                expr: expr.into(),
                reason: e.to_string(),
            })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The latest tick at or before `now`, in `tz` (None when the schedule never fired before `now`).
    pub fn latest_at_or_before(
        &self,
        now: DateTime<FixedOffset>,
        tz: Tz,
    ) -> Option<DateTime<FixedOffset>> {
        // `after(t).next_back()` is the latest tick strictly before `t`; one second past `now` includes `now`.
        let probe =
            tz.from_utc_datetime(&(now.trunc_subsecs(0) + Duration::seconds(1)).naive_utc());
        self.cron
            .after(&probe)
            .next_back()
            .map(|t| t.fixed_offset())
    }

    /// The first tick strictly after `now`, in `tz`.
    pub fn next_after(&self, now: DateTime<FixedOffset>, tz: Tz) -> Option<DateTime<FixedOffset>> {
        let probe = tz.from_utc_datetime(&now.naive_utc());
        self.cron.after(&probe).next().map(|t| t.fixed_offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn five_six_and_seven_field_forms_are_accepted() {
        for expr in [
            "0 8 * * MON",
            "0 0 8 * * MON",
            "0 0 8 * * MON *",
            "*/15 * * * *",
        ] {
            assert!(Schedule::parse(expr).is_ok(), "{expr}");
        }
    }

    #[test]
    fn malformed_schedules_name_the_expression_and_the_forms() {
        for expr in ["", "0 8 * *", "0 99 * * MON", "every monday"] {
            let err = Schedule::parse(expr).unwrap_err().to_string();
            assert!(
                err.contains(&format!("\"{expr}\"")) && err.contains("5 fields"),
                "{err}"
            );
        }
    }

    #[test]
    fn latest_tick_is_read_in_the_site_time_zone() {
        let weekly = Schedule::parse("0 8 * * MON").unwrap();
        // Monday 2026-11-30 08:00 in Berlin is 07:00 UTC.
        let tick = weekly
            .latest_at_or_before(at("2026-12-02T12:00:00Z"), BERLIN)
            .unwrap();
        assert_eq!(tick, at("2026-11-30T08:00:00+01:00"));
        assert_eq!(tick.offset().local_minus_utc(), 3600);
    }

    #[test]
    fn a_tick_exactly_at_now_is_the_latest() {
        let weekly = Schedule::parse("0 8 * * MON").unwrap();
        let now = at("2026-11-30T08:00:00+01:00");
        assert_eq!(weekly.latest_at_or_before(now, BERLIN).unwrap(), now);
        let just_before = at("2026-11-30T07:59:59+01:00");
        assert_eq!(
            weekly.latest_at_or_before(just_before, BERLIN).unwrap(),
            at("2026-11-23T08:00:00+01:00")
        );
    }

    #[test]
    fn next_tick_is_strictly_after_now() {
        let weekly = Schedule::parse("0 8 * * MON").unwrap();
        let now = at("2026-11-30T08:00:00+01:00");
        assert_eq!(
            weekly.next_after(now, BERLIN).unwrap(),
            at("2026-12-07T08:00:00+01:00")
        );
    }
}

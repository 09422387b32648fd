//! The procedure's measures (SPEC §9, procedure §4.7): periods in local time and the KPI
//! formulas. Counting is the store's; what a period is and what a rate is live here.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::{ClosureCode, Incident};
use super::validation::FieldError;

/// How long a period is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// A calendar month, written `2025-01`.
    Month,
    /// A calendar quarter, written `2025-Q1`.
    Quarter,
    /// A calendar year, written `2025`.
    Year,
}

impl Granularity {
    fn months(self) -> u32 {
        match self {
            Granularity::Month => 1,
            Granularity::Quarter => 3,
            Granularity::Year => 12,
        }
    }

    /// The unit PostgreSQL's `date_trunc` takes for it.
    pub fn trunc_unit(self) -> &'static str {
        match self {
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
            Granularity::Year => "year",
        }
    }
}

/// One calendar period in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    /// Its length.
    pub granularity: Granularity,
    /// The first day, local.
    pub first_day: NaiveDate,
}

/// The most periods one query may span (20 years of months).
pub const MAX_PERIODS: usize = 240;

impl Period {
    /// Reads `2025-01`, `2025-Q1` or `2025` as a period of `granularity`.
    pub fn parse(text: &str, granularity: Granularity, field: &str) -> Result<Period, FieldError> {
        let invalid = || {
            let example = match granularity {
                Granularity::Month => "2025-01",
                Granularity::Quarter => "2025-Q1",
                Granularity::Year => "2025",
            };
            FieldError::new(
                field,
                "invalid",
                format!("must be a period such as {example}"),
            )
        };
        let text = text.trim();
        let (year, month) = match granularity {
            Granularity::Month => {
                let (y, m) = text.split_once('-').ok_or_else(invalid)?;
                (y, m.parse::<u32>().map_err(|_| invalid())?)
            }
            Granularity::Quarter => {
                let (y, q) = text.split_once("-Q").ok_or_else(invalid)?;
                let q = q.parse::<u32>().map_err(|_| invalid())?;
                if !(1..=4).contains(&q) {
                    return Err(invalid());
                }
                (y, (q - 1) * 3 + 1)
            }
            Granularity::Year => (text, 1),
        };
        if year.len() != 4 || (granularity == Granularity::Month && text.len() != 7) {
            return Err(invalid());
        }
        let year = year.parse::<i32>().map_err(|_| invalid())?;
        let first_day = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(invalid)?;
        Ok(Period {
            granularity,
            first_day,
        })
    }

    /// The period of `granularity` that holds the local time `local`.
    pub fn of_local(local: NaiveDateTime, granularity: Granularity) -> Period {
        let date = local.date();
        let month0 = (date.month0() / granularity.months()) * granularity.months();
        Period {
            granularity,
            first_day: NaiveDate::from_ymd_opt(date.year(), month0 + 1, 1).unwrap_or(date),
        }
    }

    /// The period that holds the instant `at`, in `timezone`.
    pub fn containing(at: DateTime<Utc>, timezone: Tz, granularity: Granularity) -> Period {
        Period::of_local(at.with_timezone(&timezone).naive_local(), granularity)
    }

    /// How it is written: `2025-01`, `2025-Q1`, `2025`.
    pub fn label(&self) -> String {
        let year = self.first_day.year();
        match self.granularity {
            Granularity::Month => format!("{year}-{:02}", self.first_day.month()),
            Granularity::Quarter => format!("{year}-Q{}", self.first_day.month0() / 3 + 1),
            Granularity::Year => format!("{year}"),
        }
    }

    /// The next period.
    pub fn next(&self) -> Period {
        Period {
            granularity: self.granularity,
            first_day: self
                .first_day
                .checked_add_months(chrono::Months::new(self.granularity.months()))
                .unwrap_or(self.first_day),
        }
    }

    /// The instant it starts: local midnight of its first day in `timezone`.
    pub fn start(&self, timezone: Tz) -> DateTime<Utc> {
        let midnight = self.first_day.and_hms_opt(0, 0, 0).unwrap_or_default();
        timezone
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.to_utc())
            .unwrap_or_else(|| midnight.and_utc())
    }

    /// The instant it ends (the next period's start, exclusive).
    pub fn end(&self, timezone: Tz) -> DateTime<Utc> {
        self.next().start(timezone)
    }

    /// The periods from `from` to `to`, both included; at most [`MAX_PERIODS`].
    pub fn range(from: Period, to: Period) -> Result<Vec<Period>, FieldError> {
        if to < from {
            return Err(FieldError::new(
                "to",
                "invalid",
                "must not come before from",
            ));
        }
        let mut periods = vec![from];
        while let Some(last) = periods.last().copied().filter(|p| *p < to) {
            if periods.len() >= MAX_PERIODS {
                return Err(FieldError::new(
                    "to",
                    "range",
                    format!("a query spans at most {MAX_PERIODS} periods"),
                ));
            }
            periods.push(last.next());
        }
        Ok(periods)
    }
}

/// What the store counted in one period (SPEC §9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KpiCounts {
    /// |C|: incidents closed in the period, duplicates excluded.
    pub closed: i64,
    /// Of those, closed as `resolved`.
    pub resolved: i64,
    /// Of those, resolved by their deadline (`resolved_at ≤ due_at`).
    pub resolved_on_time: i64,
    /// Incidents followed up in the period (at their first reached follow-up, or their last
    /// owed unreached attempt).
    pub follow_ups: i64,
    /// Of those, followed up on time.
    pub follow_ups_on_time: i64,
    /// Sum of the satisfaction the period's reached follow-ups gave.
    pub satisfaction_sum: i64,
    /// How many reached follow-ups gave one.
    pub satisfaction_count: i64,
}

impl KpiCounts {
    /// What closing `incident` adds to the measures of the month it closed in: the closed set
    /// leaves duplicates out; resolved on time is `resolved_at ≤ due_at`.
    pub fn of_closure(incident: &Incident) -> KpiCounts {
        let code = incident.closure_code;
        let resolved = code == Some(ClosureCode::Resolved);
        KpiCounts {
            closed: i64::from(code.is_some_and(|c| c != ClosureCode::Duplicate)),
            resolved: i64::from(resolved),
            resolved_on_time: i64::from(
                resolved && incident.resolved_at.is_some_and(|at| at <= incident.due_at),
            ),
            ..KpiCounts::default()
        }
    }

    /// What a follow-up adds to the measures of the month it was performed in: the incident,
    /// when it `completes` the incident's follow-up (on time or not), and the satisfaction a
    /// reached user gave.
    pub fn of_follow_up(
        completes: bool,
        on_time: bool,
        reached: bool,
        satisfaction: Option<i16>,
    ) -> KpiCounts {
        let given = satisfaction.filter(|_| reached);
        KpiCounts {
            follow_ups: i64::from(completes),
            follow_ups_on_time: i64::from(completes && on_time),
            satisfaction_sum: given.map_or(0, i64::from),
            satisfaction_count: i64::from(given.is_some()),
            ..KpiCounts::default()
        }
    }
}

/// One period's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KpiRow {
    /// `2025-01`, `2025-Q1` or `2025`.
    #[schema(example = "2025-01")]
    pub period: String,
    /// Incidents closed in the period, duplicates excluded.
    pub closed: i64,
    /// Of those, closed as `resolved`.
    pub resolved: i64,
    /// Of those, resolved by their deadline.
    pub resolved_on_time: i64,
    /// 事件解决率: `resolved / closed`; `null` when nothing was closed.
    #[schema(example = 0.95)]
    pub resolution_rate: Option<f64>,
    /// 事件按时解决率: `resolved_on_time / closed`; `null` when nothing was closed.
    #[schema(example = 0.9)]
    pub on_time_resolution_rate: Option<f64>,
    /// Incidents followed up in the period: at their first reached follow-up, or at their
    /// `FOLLOW_UP_MAX_ATTEMPTS`-th unreached one.
    pub follow_ups: i64,
    /// Of those, followed up by their due time.
    pub follow_ups_on_time: i64,
    /// 事件回访的及时率: `follow_ups_on_time / follow_ups` (按时回访的事件数量 / 已回访的事件总数);
    /// `null` when no incident was followed up.
    #[schema(example = 1.0)]
    pub follow_up_timeliness: Option<f64>,
    /// Mean satisfaction (1–5) over the period's reached follow-ups that gave one; `null` when
    /// none did.
    #[schema(example = 4.5)]
    pub mean_satisfaction: Option<f64>,
}

/// `numerator / denominator`, or `None` for an empty denominator (never 0 or NaN).
pub fn rate(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// One row per period, in order; periods without counts get zeros and `null` rates.
pub fn kpi_rows(periods: &[Period], counts: &HashMap<Period, KpiCounts>) -> Vec<KpiRow> {
    periods
        .iter()
        .map(|period| {
            let c = counts.get(period).copied().unwrap_or_default();
            KpiRow {
                period: period.label(),
                closed: c.closed,
                resolved: c.resolved,
                resolved_on_time: c.resolved_on_time,
                resolution_rate: rate(c.resolved, c.closed),
                on_time_resolution_rate: rate(c.resolved_on_time, c.closed),
                follow_ups: c.follow_ups,
                follow_ups_on_time: c.follow_ups_on_time,
                follow_up_timeliness: rate(c.follow_ups_on_time, c.follow_ups),
                mean_satisfaction: rate(c.satisfaction_sum, c.satisfaction_count),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_closure_counts_by_its_code_and_deadline() {
        let mut incident = crate::domain::incident::fixtures::closed_incident();
        let counts = |i: &Incident| {
            let c = KpiCounts::of_closure(i);
            (c.closed, c.resolved, c.resolved_on_time)
        };
        assert_eq!(counts(&incident), (1, 1, 1));
        // Resolved exactly at the deadline is on time; a second later is not.
        incident.resolved_at = Some(incident.due_at);
        assert_eq!(counts(&incident), (1, 1, 1));
        incident.resolved_at = Some(incident.due_at + chrono::Duration::seconds(1));
        assert_eq!(counts(&incident), (1, 1, 0));
        incident.closure_code = Some(ClosureCode::Unresolved);
        assert_eq!(counts(&incident), (1, 0, 0));
        incident.closure_code = Some(ClosureCode::Duplicate);
        assert_eq!(counts(&incident), (0, 0, 0));
        let follow_up = KpiCounts::of_follow_up(true, false, true, Some(4));
        assert_eq!((follow_up.follow_ups, follow_up.follow_ups_on_time), (1, 0));
        assert_eq!(
            (follow_up.satisfaction_sum, follow_up.satisfaction_count),
            (4, 1)
        );
        // An attempt that reached nobody counts no incident and no satisfaction.
        let attempt = KpiCounts::of_follow_up(false, true, false, Some(5));
        assert_eq!(attempt, KpiCounts::default());
    }

    #[test]
    fn periods_are_read_and_written_alike() {
        for (text, granularity) in [
            ("2025-01", Granularity::Month),
            ("2025-12", Granularity::Month),
            ("2025-Q1", Granularity::Quarter),
            ("2025-Q4", Granularity::Quarter),
            ("2025", Granularity::Year),
        ] {
            assert_eq!(
                Period::parse(text, granularity, "from").unwrap().label(),
                text
            );
        }
        for (text, granularity) in [
            ("2025-13", Granularity::Month),
            ("2025-1", Granularity::Month),
            ("2025-Q5", Granularity::Quarter),
            ("2025-Q0", Granularity::Quarter),
            ("25", Granularity::Year),
            ("2025-01", Granularity::Year),
            ("soon", Granularity::Month),
        ] {
            assert!(Period::parse(text, granularity, "from").is_err(), "{text}");
        }
    }

    #[test]
    fn the_last_second_of_a_month_is_in_it_and_midnight_is_in_the_next_local_month() {
        // 2025-01-31 23:59:59 and 2025-02-01 00:00:00 in Shanghai (UTC+8).
        let last = at("2025-01-31T15:59:59Z");
        let first = at("2025-01-31T16:00:00Z");
        assert_eq!(
            Period::containing(last, SHANGHAI, Granularity::Month).label(),
            "2025-01"
        );
        assert_eq!(
            Period::containing(first, SHANGHAI, Granularity::Month).label(),
            "2025-02"
        );
        let january = Period::parse("2025-01", Granularity::Month, "from").unwrap();
        assert_eq!(january.start(SHANGHAI), at("2024-12-31T16:00:00Z"));
        assert_eq!(january.end(SHANGHAI), first);
    }

    #[test]
    fn quarters_and_years_turn_at_local_midnight() {
        let q1_last = at("2025-03-31T15:59:59Z");
        let q2_first = at("2025-03-31T16:00:00Z");
        assert_eq!(
            Period::containing(q1_last, SHANGHAI, Granularity::Quarter).label(),
            "2025-Q1"
        );
        assert_eq!(
            Period::containing(q2_first, SHANGHAI, Granularity::Quarter).label(),
            "2025-Q2"
        );
        let new_year = at("2024-12-31T16:00:00Z");
        assert_eq!(
            Period::containing(new_year, SHANGHAI, Granularity::Year).label(),
            "2025"
        );
        assert_eq!(
            Period::containing(
                new_year - chrono::Duration::seconds(1),
                SHANGHAI,
                Granularity::Year
            )
            .label(),
            "2024"
        );
        let q4 = Period::parse("2024-Q4", Granularity::Quarter, "from").unwrap();
        assert_eq!(q4.next().label(), "2025-Q1");
    }

    #[test]
    fn ranges_include_both_ends_and_are_bounded() {
        let from = Period::parse("2024-11", Granularity::Month, "from").unwrap();
        let to = Period::parse("2025-02", Granularity::Month, "to").unwrap();
        let labels: Vec<String> = Period::range(from, to)
            .unwrap()
            .iter()
            .map(Period::label)
            .collect();
        assert_eq!(labels, ["2024-11", "2024-12", "2025-01", "2025-02"]);
        assert!(Period::range(to, from).is_err());
        let far = Period::parse("2045-01", Granularity::Month, "to").unwrap();
        assert!(Period::range(from, far).is_err());
    }

    #[test]
    fn rates_follow_the_formulas_and_empty_denominators_are_null() {
        let jan = Period::parse("2025-01", Granularity::Month, "from").unwrap();
        let feb = jan.next();
        let counts = HashMap::from([(
            jan,
            KpiCounts {
                closed: 4,
                resolved: 3,
                resolved_on_time: 2,
                follow_ups: 2,
                follow_ups_on_time: 1,
                satisfaction_sum: 9,
                satisfaction_count: 2,
            },
        )]);
        let rows = kpi_rows(&[jan, feb], &counts);
        assert_eq!(rows[0].resolution_rate, Some(0.75));
        assert_eq!(rows[0].on_time_resolution_rate, Some(0.5));
        assert_eq!(rows[0].follow_up_timeliness, Some(0.5));
        assert_eq!(rows[0].mean_satisfaction, Some(4.5));
        assert_eq!(rows[1].mean_satisfaction, None);
        assert_eq!(rows[1].period, "2025-02");
        assert_eq!((rows[1].closed, rows[1].resolution_rate), (0, None));
    }
}

//! 《事件信息统计表》, the monthly and yearly statistics report (SPEC §9, procedure §4.3.2): what
//! the store counted over the incidents closed in a period, arranged into named tables with the
//! names the paper form uses, once for JSON and once as sheets for CSV and Excel.
//!
//! Every table counts the same incidents, those closed in the period, so their totals agree
//! with each other and with `closed`; escalations are those of these incidents.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::escalation::EscalationKind;
use super::incident::{Channel, ClosureCode, Tier};
use super::kpi::{Granularity, KpiCounts, KpiRow, Period, kpi_rows};
use super::labels::NameZh;
use super::level::Level;
use super::taxonomy::Taxonomy;

mod closure;
mod percentile;
mod sheets;

pub use closure::{
    Dimension, StatisticsRow, breached, closure_rows, first_response_minutes, resolve_minutes,
};
pub use percentile::{BucketRead, duration_bucket, interpolate, locate, percentile_ranks};
pub use sheets::{Cell, MONTHLY_RATES, Sheet};

/// How long a statistics report's period is (月报 or 年报).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportGranularity {
    /// A calendar month, written `2025-01`.
    Month,
    /// A calendar year, written `2025`.
    Year,
}

impl From<ReportGranularity> for Granularity {
    fn from(value: ReportGranularity) -> Self {
        match value {
            ReportGranularity::Month => Granularity::Month,
            ReportGranularity::Year => Granularity::Year,
        }
    }
}

/// A count under a pair of codes (category and subcategory, cause and sub-cause); `None` where
/// the incident had none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairCount {
    /// The outer code.
    pub code: Option<String>,
    /// The inner code.
    pub subcode: Option<String>,
    /// How many incidents.
    pub count: i64,
}

/// What the store counted over the incidents closed in one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatisticsCounts {
    /// Incidents recorded in the period, closed or not.
    pub reported: i64,
    /// Incidents closed in the period, every closure code.
    pub closed: i64,
    /// By category and subcategory.
    pub by_category: Vec<PairCount>,
    /// By cause and sub-cause.
    pub by_cause: Vec<PairCount>,
    /// By level: (level, closed, closed after their deadline).
    pub by_level: Vec<(Level, i64, i64)>,
    /// By channel.
    pub by_channel: Vec<(Channel, i64)>,
    /// By customer: (id, name, count); `None` for monitoring incidents without one.
    pub by_customer: Vec<(Option<i64>, Option<String>, i64)>,
    /// Closed as `resolved`, by the tier that held them.
    pub by_resolving_tier: Vec<(Tier, i64)>,
    /// By closure code.
    pub by_closure_code: Vec<(ClosureCode, i64)>,
    /// Escalations of these incidents, by kind.
    pub escalations: Vec<(EscalationKind, i64)>,
    /// Minutes from recording to resolution by level: (level, resolved, mean, median, p90).
    pub time_to_resolve: Vec<(Level, i64, f64, f64, f64)>,
    /// Minutes from recording to the first response by level: (level, responded, mean,
    /// median, p90).
    pub time_to_first_response: Vec<(Level, i64, f64, f64, f64)>,
    /// The measures of the months of [`rate_months`], by month.
    pub monthly: HashMap<Period, KpiCounts>,
}

/// How many months the report's rates go back, month by month.
pub const RATE_MONTHS: u32 = 12;

/// The months whose rates the report of `period` charts: the [`RATE_MONTHS`] months that end
/// with the period's last month (a year's report: its own months).
pub fn rate_months(period: Period) -> Vec<Period> {
    let last_day = period
        .next()
        .first_day
        .pred_opt()
        .unwrap_or(period.first_day);
    let last = Period::of_local(
        last_day.and_hms_opt(0, 0, 0).unwrap_or_default(),
        Granularity::Month,
    );
    let first = Period {
        granularity: Granularity::Month,
        first_day: last
            .first_day
            .checked_sub_months(chrono::Months::new(RATE_MONTHS - 1))
            .unwrap_or(last.first_day),
    };
    Period::range(first, last).unwrap_or_else(|_| vec![last])
}

/// A native chart a workbook draws from the cells of one of its sheets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// The sheet holding the data, headings in its first row.
    pub sheet: &'static str,
    /// The chart's title.
    pub title: &'static str,
    /// The column of the categories (the x axis).
    pub categories: u16,
    /// The columns of the series, each named by its heading.
    pub series: Vec<u16>,
    /// How many data rows.
    pub rows: u32,
}

/// A count under one code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CodeCount {
    /// The code.
    #[schema(example = "high")]
    pub code: String,
    /// Its name on the form.
    #[schema(example = "高")]
    pub name: String,
    /// Incidents (escalations in `escalations_by_kind`).
    #[schema(example = 42)]
    pub count: i64,
}

/// Incidents of one category and subcategory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CategoryCount {
    /// Category code; `null` for incidents never classified.
    #[schema(example = "software_fault")]
    pub category: Option<String>,
    /// Its name.
    #[schema(example = "软件故障")]
    pub category_name: String,
    /// Subcategory code.
    #[schema(example = "module_input_blocked")]
    pub subcategory: Option<String>,
    /// Its name.
    #[schema(example = "模块无法录入")]
    pub subcategory_name: String,
    /// Incidents.
    pub count: i64,
}

/// Incidents of one cause and sub-cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CauseCount {
    /// Cause code; `null` for incidents closed without a resolution (duplicates, withdrawn).
    #[schema(example = "software")]
    pub cause: Option<String>,
    /// Its name.
    pub cause_name: String,
    /// Sub-cause code.
    pub subcause: Option<String>,
    /// Its name.
    pub subcause_name: String,
    /// Incidents.
    pub count: i64,
}

/// Incidents of one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerCount {
    /// Customer id; `null` for monitoring incidents no customer was given.
    pub customer_id: Option<i64>,
    /// The customer's name.
    pub customer_name: String,
    /// Incidents.
    pub count: i64,
}

/// Deadlines missed at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BreachCount {
    /// Level.
    pub level: Level,
    /// Its name.
    #[schema(example = "高")]
    pub name: String,
    /// Incidents closed.
    pub closed: i64,
    /// Of those, resolved (or, never resolved, closed) after their deadline.
    pub breached: i64,
}

/// How long resolving took at one level, in minutes from recording to resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResolveTimes {
    /// Level.
    pub level: Level,
    /// Its name.
    pub name: String,
    /// Incidents with a resolution (duplicates excluded).
    pub resolved: i64,
    /// Mean minutes; `null` when none were resolved.
    pub mean_minutes: Option<f64>,
    /// Median minutes.
    pub median_minutes: Option<f64>,
    /// 90th percentile minutes.
    pub p90_minutes: Option<f64>,
}

/// How long the first response took at one level, in minutes from recording to the first of
/// accepted, escalated by a person, or resolved (接受率).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FirstResponseTimes {
    /// Level.
    pub level: Level,
    /// Its name.
    pub name: String,
    /// Incidents with a response (duplicates excluded).
    pub responded: i64,
    /// Mean minutes; `null` when none had a response.
    pub mean_minutes: Option<f64>,
    /// Median minutes.
    pub median_minutes: Option<f64>,
    /// 90th percentile minutes.
    pub p90_minutes: Option<f64>,
}

/// 《事件信息统计表》 for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatisticsReport {
    /// The period, `2025-01` or `2025`.
    #[schema(example = "2025-01")]
    pub period: String,
    /// `month` or `year`.
    pub granularity: ReportGranularity,
    /// The time zone the period is reckoned in (`TIMEZONE`).
    #[schema(example = "Asia/Shanghai")]
    pub timezone: String,
    /// The period's first instant.
    pub start: DateTime<Utc>,
    /// The next period's first instant (excluded).
    pub end: DateTime<Utc>,
    /// Incidents recorded in the period, closed or not.
    pub reported: i64,
    /// Incidents closed in the period, every closure code: the incidents every table counts.
    pub closed: i64,
    /// By category and subcategory, in the taxonomy's order, every subcategory listed.
    pub by_category: Vec<CategoryCount>,
    /// By cause and sub-cause, in the taxonomy's order, every sub-cause listed.
    pub by_cause: Vec<CauseCount>,
    /// By level.
    pub by_level: Vec<CodeCount>,
    /// By channel.
    pub by_channel: Vec<CodeCount>,
    /// By customer, most incidents first.
    pub by_customer: Vec<CustomerCount>,
    /// Incidents closed as `resolved`, by the tier that resolved them.
    pub by_resolving_tier: Vec<CodeCount>,
    /// By closure code.
    pub by_closure_code: Vec<CodeCount>,
    /// Deadlines missed, by level.
    pub sla_breaches: Vec<BreachCount>,
    /// Escalations of these incidents, by kind.
    pub escalations_by_kind: Vec<CodeCount>,
    /// Time to resolve, by level.
    pub time_to_resolve: Vec<ResolveTimes>,
    /// Time to the first response, by level.
    pub time_to_first_response: Vec<FirstResponseTimes>,
    /// The measures month by month over the twelve months ending with the period (the
    /// formulas of `GET /kpis`), as the workbook charts them.
    pub monthly_rates: Vec<KpiRow>,
}

const NOT_CLASSIFIED: &str = "未分类";
const NO_CAUSE: &str = "未记录原因";
const NO_CUSTOMER: &str = "未指定客户";

/// One count per value of a small fixed set, zeros included, in declaration order.
fn every<T: NameZh + Copy + PartialEq>(
    all: &[T],
    counted: &[(T, i64)],
    code: impl Fn(T) -> &'static str,
) -> Vec<CodeCount> {
    all.iter()
        .map(|value| CodeCount {
            code: code(*value).to_owned(),
            name: value.name_zh().to_owned(),
            count: counted
                .iter()
                .filter(|(v, _)| v == value)
                .map(|(_, n)| n)
                .sum(),
        })
        .collect()
}

/// A pair of codes with their names and count.
struct NamedPair {
    code: Option<String>,
    name: String,
    subcode: Option<String>,
    subname: String,
    count: i64,
}

/// A code with its name: `(code, name)` rows of the taxonomy's order, every one listed, then
/// codes the taxonomy no longer has (named by their code), then the `None` pair if counted.
fn pairs<'a>(
    known: impl Iterator<Item = ((&'a str, &'a str), (&'a str, &'a str))>,
    counted: &[PairCount],
    none_name: &str,
) -> Vec<NamedPair> {
    let mut left: HashMap<(Option<&str>, Option<&str>), i64> = HashMap::new();
    for pair in counted {
        *left
            .entry((pair.code.as_deref(), pair.subcode.as_deref()))
            .or_default() += pair.count;
    }
    let mut rows = Vec::new();
    for ((code, name), (subcode, subname)) in known {
        let count = left.remove(&(Some(code), Some(subcode))).unwrap_or(0);
        rows.push(NamedPair {
            code: Some(code.to_owned()),
            name: name.to_owned(),
            subcode: Some(subcode.to_owned()),
            subname: subname.to_owned(),
            count,
        });
    }
    let mut rest: Vec<_> = left.into_iter().filter(|(_, n)| *n > 0).collect();
    // Unknown codes first by code, the `None` pair last.
    rest.sort_by(|a, b| (a.0.0.is_none(), a.0).cmp(&(b.0.0.is_none(), b.0)));
    for ((code, subcode), count) in rest {
        let name = code.unwrap_or(none_name);
        rows.push(NamedPair {
            code: code.map(str::to_owned),
            name: name.to_owned(),
            subcode: subcode.map(str::to_owned),
            subname: subcode.unwrap_or(none_name).to_owned(),
            count,
        });
    }
    rows
}

/// Rounds minutes to one decimal, as the form prints them.
fn minutes(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

impl StatisticsReport {
    /// Arranges `counts` for `period` into the form's tables, named from `taxonomy`.
    pub fn build(
        period: Period,
        timezone: chrono_tz::Tz,
        counts: StatisticsCounts,
        taxonomy: &Taxonomy,
    ) -> StatisticsReport {
        let categories = taxonomy.categories.iter().flat_map(|c| {
            c.subcategories.iter().map(move |s| {
                (
                    (c.code.as_str(), c.name_zh.as_str()),
                    (s.code.as_str(), s.name_zh.as_str()),
                )
            })
        });
        let causes = taxonomy.causes.iter().flat_map(|c| {
            c.subcauses.iter().map(move |s| {
                (
                    (c.code.as_str(), c.name_zh.as_str()),
                    (s.code.as_str(), s.name_zh.as_str()),
                )
            })
        });
        let level_counts: Vec<(Level, i64)> =
            counts.by_level.iter().map(|(l, n, _)| (*l, *n)).collect();
        let mut by_customer: Vec<CustomerCount> = counts
            .by_customer
            .into_iter()
            .map(|(customer_id, name, count)| CustomerCount {
                customer_id,
                customer_name: name.unwrap_or_else(|| NO_CUSTOMER.to_owned()),
                count,
            })
            .collect();
        by_customer.sort_by(|a, b| {
            (b.count, a.customer_id.is_none(), a.customer_id).cmp(&(
                a.count,
                b.customer_id.is_none(),
                b.customer_id,
            ))
        });
        StatisticsReport {
            period: period.label(),
            granularity: match period.granularity {
                Granularity::Year => ReportGranularity::Year,
                _ => ReportGranularity::Month,
            },
            timezone: timezone.name().to_owned(),
            start: period.start(timezone),
            end: period.end(timezone),
            reported: counts.reported,
            closed: counts.closed,
            by_category: pairs(categories, &counts.by_category, NOT_CLASSIFIED)
                .into_iter()
                .map(|p| CategoryCount {
                    category: p.code,
                    category_name: p.name,
                    subcategory: p.subcode,
                    subcategory_name: p.subname,
                    count: p.count,
                })
                .collect(),
            by_cause: pairs(causes, &counts.by_cause, NO_CAUSE)
                .into_iter()
                .map(|p| CauseCount {
                    cause: p.code,
                    cause_name: p.name,
                    subcause: p.subcode,
                    subcause_name: p.subname,
                    count: p.count,
                })
                .collect(),
            by_level: every(&Level::ALL, &level_counts, Level::as_str),
            by_channel: every(Channel::ALL, &counts.by_channel, Channel::as_str),
            by_customer,
            by_resolving_tier: every(Tier::ALL, &counts.by_resolving_tier, Tier::as_str),
            by_closure_code: every(
                ClosureCode::ALL,
                &counts.by_closure_code,
                ClosureCode::as_str,
            ),
            sla_breaches: Level::ALL
                .iter()
                .map(|level| {
                    let (closed, breached) = counts
                        .by_level
                        .iter()
                        .filter(|(l, _, _)| l == level)
                        .fold((0, 0), |(c, b), (_, n, late)| (c + n, b + late));
                    BreachCount {
                        level: *level,
                        name: level.name_zh().to_owned(),
                        closed,
                        breached,
                    }
                })
                .collect(),
            escalations_by_kind: every(
                EscalationKind::ALL,
                &counts.escalations,
                EscalationKind::as_str,
            ),
            time_to_resolve: Level::ALL
                .iter()
                .map(|level| {
                    let found = counts.time_to_resolve.iter().find(|t| t.0 == *level);
                    ResolveTimes {
                        level: *level,
                        name: level.name_zh().to_owned(),
                        resolved: found.map_or(0, |t| t.1),
                        mean_minutes: found.map(|t| minutes(t.2)),
                        median_minutes: found.map(|t| minutes(t.3)),
                        p90_minutes: found.map(|t| minutes(t.4)),
                    }
                })
                .collect(),
            monthly_rates: kpi_rows(&rate_months(period), &counts.monthly),
            time_to_first_response: Level::ALL
                .iter()
                .map(|level| {
                    let found = counts.time_to_first_response.iter().find(|t| t.0 == *level);
                    FirstResponseTimes {
                        level: *level,
                        name: level.name_zh().to_owned(),
                        responded: found.map_or(0, |t| t.1),
                        mean_minutes: found.map(|t| minutes(t.2)),
                        median_minutes: found.map(|t| minutes(t.3)),
                        p90_minutes: found.map(|t| minutes(t.4)),
                    }
                })
                .collect(),
        }
    }
}

/// The fixtures the report's tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use chrono::NaiveDate;

    use super::*;

    pub(crate) fn month() -> Period {
        Period {
            granularity: Granularity::Month,
            first_day: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        }
    }

    pub(crate) fn counts() -> StatisticsCounts {
        StatisticsCounts {
            reported: 9,
            closed: 5,
            by_category: vec![
                PairCount {
                    code: Some("upgrade_issue".into()),
                    subcode: Some("unusable_after_upgrade".into()),
                    count: 3,
                },
                PairCount {
                    code: None,
                    subcode: None,
                    count: 1,
                },
                PairCount {
                    code: Some("retired".into()),
                    subcode: Some("gone".into()),
                    count: 1,
                },
            ],
            by_cause: vec![PairCount {
                code: None,
                subcode: None,
                count: 5,
            }],
            by_level: vec![(Level::High, 4, 1), (Level::Low, 1, 0)],
            by_channel: vec![(Channel::Phone, 5)],
            by_customer: vec![(Some(7), Some("甲".into()), 1), (None, None, 4)],
            by_resolving_tier: vec![(Tier::L2, 2)],
            by_closure_code: vec![(ClosureCode::Resolved, 2), (ClosureCode::Duplicate, 3)],
            escalations: vec![(EscalationKind::Functional, 6)],
            time_to_resolve: vec![(Level::High, 2, 90.04, 90.0, 119.96)],
            time_to_first_response: vec![(Level::High, 2, 7.5, 7.5, 9.5)],
            monthly: HashMap::from([(
                month(),
                KpiCounts {
                    closed: 4,
                    resolved: 3,
                    ..KpiCounts::default()
                },
            )]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{counts, month};
    use super::*;
    use crate::domain::taxonomy::tests_support::small_taxonomy;

    #[test]
    fn rates_are_charted_over_the_twelve_months_ending_with_the_period() {
        let labels = |text: &str, granularity| -> Vec<String> {
            let period = Period::parse(text, granularity, "period").unwrap();
            rate_months(period).iter().map(Period::label).collect()
        };
        let march = labels("2025-03", Granularity::Month);
        assert_eq!(march.len(), 12);
        assert_eq!(
            (march[0].as_str(), march[11].as_str()),
            ("2024-04", "2025-03")
        );
        let year = labels("2025", Granularity::Year);
        assert_eq!(
            (year[0].as_str(), year[11].as_str()),
            ("2025-01", "2025-12")
        );
    }

    #[test]
    fn taxonomy_rows_come_first_in_its_order_then_retired_codes_then_unclassified() {
        let report = StatisticsReport::build(
            month(),
            chrono_tz::Asia::Shanghai,
            counts(),
            &small_taxonomy(),
        );
        let rows: Vec<_> = report
            .by_category
            .iter()
            .map(|r| (r.category.as_deref(), r.subcategory_name.as_str(), r.count))
            .collect();
        assert_eq!(rows[0].0, Some("upgrade_issue"));
        assert_eq!(rows[0].2, 3);
        assert_eq!(rows[rows.len() - 2], (Some("retired"), "gone", 1));
        assert_eq!(rows[rows.len() - 1], (None, NOT_CLASSIFIED, 1));
        assert_eq!(report.by_cause.last().unwrap().cause_name, NO_CAUSE);
        // Every subcause of the taxonomy is listed, the one counted row added.
        assert_eq!(
            report.by_cause.len(),
            small_taxonomy()
                .causes
                .iter()
                .map(|c| c.subcauses.len())
                .sum::<usize>()
                + 1
        );
    }

    #[test]
    fn fixed_sets_list_every_value_with_zeros_and_chinese_names() {
        let report = StatisticsReport::build(
            month(),
            chrono_tz::Asia::Shanghai,
            counts(),
            &small_taxonomy(),
        );
        assert_eq!(report.by_level.len(), 3);
        assert_eq!(report.by_level[2].name, "高");
        assert_eq!(report.by_level[2].count, 4);
        assert_eq!(report.by_level[1].count, 0);
        assert_eq!(report.by_channel.len(), Channel::ALL.len());
        assert_eq!(report.by_closure_code[2].count, 3);
        assert_eq!(report.escalations_by_kind[0].count, 6);
        assert_eq!(report.sla_breaches[2].breached, 1);
        assert_eq!(report.sla_breaches[2].closed, 4);
        assert_eq!(report.time_to_resolve[2].mean_minutes, Some(90.0));
        assert_eq!(report.time_to_resolve[2].p90_minutes, Some(120.0));
        assert_eq!(report.time_to_resolve[0].mean_minutes, None);
        assert_eq!(report.time_to_resolve[0].resolved, 0);
        assert_eq!(report.time_to_first_response[2].responded, 2);
        assert_eq!(report.time_to_first_response[2].median_minutes, Some(7.5));
        assert_eq!(report.time_to_first_response[1].mean_minutes, None);
        // Twelve months, ending with the report's own, which is the one with counts.
        assert_eq!(report.monthly_rates.len(), 12);
        assert_eq!(report.monthly_rates[11].period, month().label());
        assert_eq!(report.monthly_rates[11].resolution_rate, Some(0.75));
        assert_eq!(report.monthly_rates[0].resolution_rate, None);
    }

    #[test]
    fn customers_most_incidents_first_and_the_period_in_local_time() {
        let report = StatisticsReport::build(
            month(),
            chrono_tz::Asia::Shanghai,
            counts(),
            &small_taxonomy(),
        );
        assert_eq!(report.by_customer[0].customer_name, NO_CUSTOMER);
        assert_eq!(report.by_customer[1].customer_id, Some(7));
        assert_eq!(report.start.to_rfc3339(), "2024-12-31T16:00:00+00:00");
        assert_eq!(report.end.to_rfc3339(), "2025-01-31T16:00:00+00:00");
        assert_eq!(report.period, "2025-01");
    }
}

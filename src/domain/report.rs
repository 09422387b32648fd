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
use super::incident::{Channel, ClosureCode, Incident, Tier};
use super::kpi::{Granularity, Period};
use super::labels::NameZh;
use super::level::Level;
use super::taxonomy::Taxonomy;

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
}

/// A table of the statistics report, as its maintained monthly rows are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// Category and subcategory.
    Category,
    /// Cause and sub-cause.
    Cause,
    /// Level (with the deadlines missed).
    Level,
    /// Channel.
    Channel,
    /// Customer id.
    Customer,
    /// The tier of an incident closed as `resolved`.
    ResolvingTier,
    /// Closure code.
    ClosureCode,
    /// Escalations by kind.
    Escalation,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 8] = [
        Dimension::Category,
        Dimension::Cause,
        Dimension::Level,
        Dimension::Channel,
        Dimension::Customer,
        Dimension::ResolvingTier,
        Dimension::ClosureCode,
        Dimension::Escalation,
    ];

    /// The stable code stored with the row.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Category => "category",
            Dimension::Cause => "cause",
            Dimension::Level => "level",
            Dimension::Channel => "channel",
            Dimension::Customer => "customer",
            Dimension::ResolvingTier => "resolving_tier",
            Dimension::ClosureCode => "closure_code",
            Dimension::Escalation => "escalation",
        }
    }
}

/// What one closed incident adds to one table of its month.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatisticsRow {
    /// The table.
    pub dimension: Dimension,
    /// The code; `None` where the incident had none.
    pub code: Option<String>,
    /// The inner code of a pair.
    pub subcode: Option<String>,
    /// Incidents (escalations in [`Dimension::Escalation`]).
    pub count: i64,
    /// Of those, closed after their deadline ([`Dimension::Level`] only).
    pub breached: i64,
}

impl StatisticsRow {
    fn one(dimension: Dimension, code: Option<&str>, subcode: Option<&str>) -> Self {
        StatisticsRow {
            dimension,
            code: code.map(str::to_owned),
            subcode: subcode.map(str::to_owned),
            count: 1,
            breached: 0,
        }
    }
}

/// Missed its deadline: resolved, or never resolved and closed, after `due_at` (the rule of the
/// incident list's `sla_breached` for a closed incident).
pub fn breached(incident: &Incident) -> bool {
    incident
        .resolved_at
        .or(incident.closed_at)
        .is_some_and(|at| at > incident.due_at)
}

/// What closing `incident`, with escalations of `escalation_kinds`, adds to the statistics of
/// the month it closed in: one row per table.
pub fn closure_rows(
    incident: &Incident,
    escalation_kinds: &[EscalationKind],
) -> Vec<StatisticsRow> {
    let i = incident;
    let customer = i.customer_id.map(|id| id.to_string());
    let mut rows = vec![
        StatisticsRow::one(
            Dimension::Category,
            i.category.as_deref(),
            i.subcategory.as_deref(),
        ),
        StatisticsRow::one(Dimension::Cause, i.cause.as_deref(), i.subcause.as_deref()),
        StatisticsRow {
            breached: i64::from(breached(i)),
            ..StatisticsRow::one(Dimension::Level, Some(i.level.as_str()), None)
        },
        StatisticsRow::one(Dimension::Channel, Some(i.channel.as_str()), None),
        StatisticsRow::one(Dimension::Customer, customer.as_deref(), None),
        StatisticsRow::one(
            Dimension::ClosureCode,
            i.closure_code.map(ClosureCode::as_str),
            None,
        ),
    ];
    if i.closure_code == Some(ClosureCode::Resolved) {
        rows.push(StatisticsRow::one(
            Dimension::ResolvingTier,
            Some(i.tier.as_str()),
            None,
        ));
    }
    for kind in EscalationKind::ALL {
        let count = escalation_kinds.iter().filter(|k| *k == kind).count() as i64;
        if count > 0 {
            rows.push(StatisticsRow {
                count,
                ..StatisticsRow::one(Dimension::Escalation, Some(kind.as_str()), None)
            });
        }
    }
    rows
}

/// Minutes from recording to resolution, for incidents with a resolution that are not
/// duplicates (the report's time to resolve).
pub fn resolve_minutes(incident: &Incident) -> Option<f64> {
    if incident.closure_code == Some(ClosureCode::Duplicate) {
        return None;
    }
    incident
        .resolved_at
        .map(|at| (at - incident.created_at).num_milliseconds() as f64 / 60_000.0)
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
        }
    }

    /// The report as sheets with Chinese headings, one per table, a summary first.
    pub fn sheets(&self) -> Vec<Sheet> {
        let text = |s: &str| Cell::Text(s.to_owned());
        let code = |c: &Option<String>| Cell::Text(c.clone().unwrap_or_default());
        let code_counts =
            |name: &'static str, code_heading, name_heading, rows: &[CodeCount]| Sheet {
                name,
                headings: vec![code_heading, name_heading, "事件数"],
                rows: rows
                    .iter()
                    .map(|r| vec![text(&r.code), text(&r.name), Cell::Count(r.count)])
                    .collect(),
            };
        vec![
            Sheet {
                name: "概要",
                headings: vec!["项目", "值"],
                rows: vec![
                    vec![text("统计周期"), text(&self.period)],
                    vec![text("时区"), text(&self.timezone)],
                    vec![text("开始时间"), text(&self.start.to_rfc3339())],
                    vec![text("结束时间（不含）"), text(&self.end.to_rfc3339())],
                    vec![text("登记事件数"), Cell::Count(self.reported)],
                    vec![text("关闭事件数"), Cell::Count(self.closed)],
                ],
            },
            Sheet {
                name: "按事件分类",
                headings: vec!["分类代码", "分类", "子类代码", "子类", "事件数"],
                rows: self
                    .by_category
                    .iter()
                    .map(|r| {
                        vec![
                            code(&r.category),
                            text(&r.category_name),
                            code(&r.subcategory),
                            text(&r.subcategory_name),
                            Cell::Count(r.count),
                        ]
                    })
                    .collect(),
            },
            Sheet {
                name: "按事件原因",
                headings: vec!["原因代码", "原因", "子原因代码", "子原因", "事件数"],
                rows: self
                    .by_cause
                    .iter()
                    .map(|r| {
                        vec![
                            code(&r.cause),
                            text(&r.cause_name),
                            code(&r.subcause),
                            text(&r.subcause_name),
                            Cell::Count(r.count),
                        ]
                    })
                    .collect(),
            },
            code_counts("按事件等级", "等级代码", "等级", &self.by_level),
            code_counts("按来源渠道", "渠道代码", "渠道", &self.by_channel),
            Sheet {
                name: "按客户",
                headings: vec!["客户编号", "客户", "事件数"],
                rows: self
                    .by_customer
                    .iter()
                    .map(|r| {
                        vec![
                            r.customer_id.map_or(text(""), Cell::Count),
                            text(&r.customer_name),
                            Cell::Count(r.count),
                        ]
                    })
                    .collect(),
            },
            code_counts(
                "按解决层级",
                "层级代码",
                "解决层级",
                &self.by_resolving_tier,
            ),
            code_counts("按关闭原因", "关闭代码", "关闭原因", &self.by_closure_code),
            Sheet {
                name: "SLA超时",
                headings: vec!["等级代码", "等级", "关闭事件数", "超时事件数"],
                rows: self
                    .sla_breaches
                    .iter()
                    .map(|r| {
                        vec![
                            text(r.level.as_str()),
                            text(&r.name),
                            Cell::Count(r.closed),
                            Cell::Count(r.breached),
                        ]
                    })
                    .collect(),
            },
            Sheet {
                name: "事件升级",
                headings: vec!["升级类型代码", "升级类型", "升级次数"],
                ..code_counts("", "", "", &self.escalations_by_kind)
            },
            Sheet {
                name: "解决时长",
                headings: vec![
                    "等级代码",
                    "等级",
                    "已解决事件数",
                    "平均（分钟）",
                    "中位数（分钟）",
                    "90%分位（分钟）",
                ],
                rows: self
                    .time_to_resolve
                    .iter()
                    .map(|r| {
                        vec![
                            text(r.level.as_str()),
                            text(&r.name),
                            Cell::Count(r.resolved),
                            Cell::Number(r.mean_minutes),
                            Cell::Number(r.median_minutes),
                            Cell::Number(r.p90_minutes),
                        ]
                    })
                    .collect(),
            },
        ]
    }
}

/// One table of the report as a spreadsheet shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    /// Its name (the sheet's tab, the CSV section's title).
    pub name: &'static str,
    /// Column headings.
    pub headings: Vec<&'static str>,
    /// Rows of cells, as many as headings.
    pub rows: Vec<Vec<Cell>>,
}

/// A spreadsheet cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A whole number.
    Count(i64),
    /// A measured number; empty when there was nothing to measure.
    Number(Option<f64>),
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::taxonomy::tests_support::small_taxonomy;

    fn month() -> Period {
        Period {
            granularity: Granularity::Month,
            first_day: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        }
    }

    fn counts() -> StatisticsCounts {
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
        }
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

    #[test]
    fn a_closure_adds_one_row_per_table_and_its_escalations() {
        let mut incident = crate::domain::incident::fixtures::closed_incident();
        let rows = closure_rows(
            &incident,
            &[EscalationKind::Functional, EscalationKind::Functional],
        );
        let find = |d: Dimension| rows.iter().find(|r| r.dimension == d).unwrap();
        assert_eq!(
            find(Dimension::Category).subcode.as_deref(),
            Some("module_input_blocked")
        );
        assert_eq!(find(Dimension::Level).breached, 0);
        assert_eq!(find(Dimension::ResolvingTier).code.as_deref(), Some("l2"));
        assert_eq!(find(Dimension::Customer).code.as_deref(), Some("1"));
        assert_eq!(find(Dimension::Escalation).count, 2);
        assert_eq!(resolve_minutes(&incident), Some(60.0));

        incident.resolved_at = Some(incident.due_at + chrono::Duration::seconds(1));
        incident.closure_code = Some(ClosureCode::Unresolved);
        let rows = closure_rows(&incident, &[]);
        assert!(rows.iter().all(|r| r.dimension != Dimension::ResolvingTier));
        assert!(rows.iter().all(|r| r.dimension != Dimension::Escalation));
        let level = rows
            .iter()
            .find(|r| r.dimension == Dimension::Level)
            .unwrap();
        assert_eq!(level.breached, 1);

        // Never resolved, closed after the deadline: breached; a duplicate has no resolve time.
        incident.resolved_at = None;
        incident.closure_code = Some(ClosureCode::Duplicate);
        assert!(breached(&incident));
        assert_eq!(resolve_minutes(&incident), None);
    }

    #[test]
    fn every_sheet_row_has_a_cell_per_heading() {
        let report = StatisticsReport::build(
            month(),
            chrono_tz::Asia::Shanghai,
            counts(),
            &small_taxonomy(),
        );
        let sheets = report.sheets();
        assert_eq!(sheets.len(), 11);
        for sheet in &sheets {
            assert!(!sheet.name.is_empty());
            for row in &sheet.rows {
                assert_eq!(row.len(), sheet.headings.len(), "{}", sheet.name);
            }
        }
        assert_eq!(sheets[9].name, "事件升级");
        assert_eq!(sheets[9].headings[2], "升级次数");
        assert_eq!(sheets[9].rows[0][2], Cell::Count(6));
    }
}

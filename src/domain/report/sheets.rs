//! The statistics report as sheets with Chinese headings, for the CSV file and the Excel
//! workbook.

use super::{Chart, CodeCount, StatisticsReport};

/// The sheet of the measures month by month, which the workbook's chart reads.
pub const MONTHLY_RATES: &str = "月度指标";

impl StatisticsReport {
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
            Sheet {
                name: "首次响应时长",
                headings: vec![
                    "等级代码",
                    "等级",
                    "已响应事件数",
                    "平均（分钟）",
                    "中位数（分钟）",
                    "90%分位（分钟）",
                ],
                rows: self
                    .time_to_first_response
                    .iter()
                    .map(|r| {
                        vec![
                            text(r.level.as_str()),
                            text(&r.name),
                            Cell::Count(r.responded),
                            Cell::Number(r.mean_minutes),
                            Cell::Number(r.median_minutes),
                            Cell::Number(r.p90_minutes),
                        ]
                    })
                    .collect(),
            },
            Sheet {
                name: MONTHLY_RATES,
                headings: vec![
                    "月份",
                    "关闭事件数",
                    "事件解决率",
                    "事件按时解决率",
                    "事件回访的及时率",
                    "平均满意度",
                ],
                rows: self
                    .monthly_rates
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.period),
                            Cell::Count(r.closed),
                            Cell::Number(r.resolution_rate),
                            Cell::Number(r.on_time_resolution_rate),
                            Cell::Number(r.follow_up_timeliness),
                            Cell::Number(r.mean_satisfaction),
                        ]
                    })
                    .collect(),
            },
        ]
    }

    /// The charts a workbook of the report draws: the three rates month by month, from the
    /// cells of the monthly sheet, so they follow when a manager edits the numbers.
    pub fn charts(&self) -> Vec<Chart> {
        vec![Chart {
            sheet: MONTHLY_RATES,
            title: "月度事件解决率、按时解决率与回访及时率",
            categories: 0,
            series: vec![2, 3, 4],
            rows: u32::try_from(self.monthly_rates.len()).unwrap_or(u32::MAX),
        }]
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
    use super::super::test_support::{counts, month};
    use super::*;
    use crate::domain::taxonomy::tests_support::small_taxonomy;

    #[test]
    fn every_sheet_row_has_a_cell_per_heading() {
        let report = StatisticsReport::build(
            month(),
            chrono_tz::Asia::Shanghai,
            counts(),
            &small_taxonomy(),
        );
        let sheets = report.sheets();
        assert_eq!(sheets.len(), 13);
        let charts = report.charts();
        let monthly = sheets.iter().find(|s| s.name == charts[0].sheet).unwrap();
        assert_eq!(monthly.rows.len() as u32, charts[0].rows);
        assert_eq!(monthly.headings[charts[0].series[0] as usize], "事件解决率");
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

//! 《事件信息统计表》 (SPEC §9) over a known month: every table's figures, the CSV with its BOM
//! and Chinese headings, the workbook read back with a reader, and the refusals.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use serde_json::{Value, json};

use crate::helpers::*;

/// Rows of `table` whose `field` is `value`.
fn row<'a>(report: &'a Value, table: &str, field: &str, value: Value) -> &'a Value {
    report[table]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("{table} has no row with {field} = {value}"))
}

/// January 2025 in Shanghai: two incidents resolved by the desk (one within its 2 h, one 5 h
/// late), one escalated to L2 and resolved there in 30 minutes, one duplicate never classified;
/// one closed at local midnight of 1 February, which belongs to February.
async fn january(app: &TestApp, c: &Cast) {
    closed_history(
        app,
        c,
        "2025-01-10T00:00:00Z",
        "2025-01-10T01:00:00Z",
        "2025-01-10T02:00:00Z",
        "resolved",
    )
    .await;
    let late = closed_history(
        app,
        c,
        "2025-01-11T00:00:00Z",
        "2025-01-11T05:00:00Z",
        "2025-01-11T06:00:00Z",
        "resolved",
    )
    .await;
    closed_history(
        app,
        c,
        "2025-01-31T10:00:00Z",
        "2025-01-31T11:00:00Z",
        "2025-01-31T16:00:00Z",
        "unresolved",
    )
    .await;
    app.clock.set(at("2025-01-12T00:00:00Z"));
    let escalated = app
        .create_incident(
            &c.desk,
            json!({"title": "数据库脚本升级出错", "customer_id": c.customer,
                   "subcategory": "module_input_blocked", "channel": "email"}),
        )
        .await;
    let id = &escalated["id"];
    // The desk's first response is the escalation, twelve minutes in.
    app.clock.set(at("2025-01-12T00:12:00Z"));
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.desk,
        json!({"kind": "functional", "assignee_id": c.l2_id, "diagnosis": "脚本报错"}),
    )
    .created()
    .await;
    app.clock.set(at("2025-01-12T00:30:00Z"));
    app.act_ok(&c.l2, id, "resolve", resolution()).await;
    app.act_ok(&c.desk, id, "confirm", json!({})).await;
    app.act_ok(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .await;
    closed_duplicate(app, c, &late, "2025-01-20T00:00:00Z").await;
}

const JANUARY: &str = "/api/v1/reports/statistics?granularity=month&period=2025-01";

#[tokio::test]
async fn a_months_report_counts_the_incidents_closed_in_it() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    january(&app, &c).await;

    let report = app.get(JANUARY, &c.manager).ok().await;
    assert_eq!(report["period"], "2025-01");
    assert_eq!(report["timezone"], "Asia/Shanghai");
    assert_eq!(report["start"], "2024-12-31T16:00:00Z");
    assert_eq!(report["end"], "2025-01-31T16:00:00Z");
    assert_eq!(report["reported"], 5);
    assert_eq!(report["closed"], 4);
    let rates = report["monthly_rates"].as_array().unwrap();
    assert_eq!(rates.len(), 12);
    assert_eq!(rates[11]["period"], "2025-01");
    assert_eq!(rates[11]["closed"], 3);
    assert_eq!(rates[11]["resolution_rate"], 1.0);
    assert_eq!(rates[0]["period"], "2024-02");
    assert_eq!(rates[0]["resolution_rate"], Value::Null);

    let blocked = row(
        &report,
        "by_category",
        "subcategory",
        json!("module_input_blocked"),
    );
    assert_eq!(blocked["count"], 3);
    assert_eq!(blocked["subcategory_name"], "操作到某个模块无法录入");
    let unclassified = row(&report, "by_category", "category", Value::Null);
    assert_eq!(
        (&unclassified["category_name"], &unclassified["count"]),
        (&json!("未分类"), &json!(1))
    );
    let total: i64 = report["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 4, "every table counts the same incidents");

    let module = row(&report, "by_cause", "subcause", json!("module_unusable"));
    assert_eq!(
        (&module["cause_name"], &module["count"]),
        (&json!("系统问题"), &json!(3))
    );
    assert_eq!(row(&report, "by_cause", "cause", Value::Null)["count"], 1);

    assert_eq!(row(&report, "by_level", "code", json!("high"))["count"], 3);
    assert_eq!(
        row(&report, "by_level", "code", json!("high"))["name"],
        "高"
    );
    assert_eq!(
        row(&report, "by_channel", "code", json!("email"))["count"],
        1
    );
    assert_eq!(row(&report, "by_channel", "code", json!("web"))["count"], 2);
    assert_eq!(report["by_customer"].as_array().unwrap().len(), 1);
    assert_eq!(report["by_customer"][0]["customer_id"], c.customer);
    assert_eq!(report["by_customer"][0]["count"], 4);
    assert_eq!(
        row(&report, "by_resolving_tier", "code", json!("l1"))["count"],
        2
    );
    assert_eq!(
        row(&report, "by_resolving_tier", "code", json!("l2"))["count"],
        1
    );
    assert_eq!(
        row(&report, "by_closure_code", "code", json!("resolved"))["count"],
        3
    );
    assert_eq!(
        row(&report, "by_closure_code", "code", json!("duplicate"))["count"],
        1
    );
    assert_eq!(
        row(&report, "by_closure_code", "code", json!("unresolved"))["count"],
        0
    );

    let high = row(&report, "sla_breaches", "level", json!("high"));
    assert_eq!((&high["closed"], &high["breached"]), (&json!(3), &json!(1)));
    assert_eq!(
        row(&report, "escalations_by_kind", "code", json!("functional"))["count"],
        1
    );
    assert_eq!(
        row(&report, "escalations_by_kind", "code", json!("priority"))["count"],
        0
    );

    // 60, 300 and 30 minutes: mean 130, median 60, p90 = 60 + 0.8 × 240 = 252.
    let times = row(&report, "time_to_resolve", "level", json!("high"));
    assert_eq!(times["resolved"], 3);
    assert_eq!(times["mean_minutes"], 130.0);
    assert_eq!(times["median_minutes"], 60.0);
    assert_eq!(times["p90_minutes"], 252.0);
    let low = row(&report, "time_to_resolve", "level", json!("low"));
    assert_eq!(
        (&low["resolved"], &low["mean_minutes"]),
        (&json!(0), &Value::Null)
    );
    // Accepted at once twice, escalated after 12 minutes once (the duplicate does not count):
    // mean 4, median 0, p90 = 0 + 0.8 × 12 = 9.6.
    let response = row(&report, "time_to_first_response", "level", json!("high"));
    assert_eq!(response["responded"], 3);
    assert_eq!(response["mean_minutes"], 4.0);
    assert_eq!(response["median_minutes"], 0.0);
    assert_eq!(response["p90_minutes"], 9.6);

    let february = app
        .get(
            "/api/v1/reports/statistics?granularity=month&period=2025-02",
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(
        (&february["closed"], &february["reported"]),
        (&json!(1), &json!(0))
    );
    let year = app
        .get(
            "/api/v1/reports/statistics?granularity=year&period=2025",
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(
        (&year["period"], &year["closed"]),
        (&json!("2025"), &json!(5))
    );
}

#[tokio::test]
async fn the_report_comes_as_csv_with_a_bom_and_as_a_workbook() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    january(&app, &c).await;

    let response = app.get_accepting(JANUARY, &c.manager, "text/csv").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("statistics-2025-01.csv")
    );
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 byte-order mark");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(
        text.starts_with("概要\n项目,值\n统计周期,2025-01\n"),
        "{text}"
    );
    assert!(text.contains(
        "\n按事件等级\n等级代码,等级,事件数\nlow,低,1\nmedium,中,0\nhigh,高,3\n\n按来源渠道\n"
    ));
    assert!(text.contains("\nSLA超时\n等级代码,等级,关闭事件数,超时事件数\n"));
    assert!(text.contains("high,高,3,1\n"));

    let response = app
        .get_accepting(
            JANUARY,
            &c.manager,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        .await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let mut workbook: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes.to_vec())).expect("a readable workbook");
    let names = workbook.sheet_names();
    assert_eq!(names.len(), 13);
    assert_eq!(names[0], "概要");
    assert!(names.contains(&"按事件分类".to_owned()));
    let levels = workbook.worksheet_range("按事件等级").unwrap();
    assert_eq!(levels.get((0, 1)), Some(&Data::String("等级".into())));
    assert_eq!(levels.get((3, 1)), Some(&Data::String("高".into())));
    assert_eq!(levels.get((3, 2)), Some(&Data::Float(3.0)));
    let times = workbook.worksheet_range("解决时长").unwrap();
    assert_eq!(times.get((3, 5)), Some(&Data::Float(252.0)));
    // The rates month by month, the report's month last, and a native chart over them.
    let monthly = workbook.worksheet_range("月度指标").unwrap();
    assert_eq!(
        monthly.get((0, 2)),
        Some(&Data::String("事件解决率".into()))
    );
    assert_eq!(monthly.get((12, 0)), Some(&Data::String("2025-01".into())));
    assert_eq!(monthly.get((12, 1)), Some(&Data::Float(3.0)));
    assert_eq!(monthly.get((1, 2)), Some(&Data::Empty));
    let raw = bytes.to_vec();
    let holds = |part: &[u8]| raw.windows(part.len()).any(|w| w == part);
    assert!(holds(b"xl/charts/chart1.xml"), "the workbook has no chart");
    assert!(holds(b"xl/drawings/drawing1.xml"));
    let response = workbook.worksheet_range("首次响应时长").unwrap();
    assert_eq!(response.get((3, 2)), Some(&Data::Float(3.0)));
    assert_eq!(response.get((3, 5)), Some(&Data::Float(9.6)));
}

#[tokio::test]
async fn bad_periods_media_types_and_callers_are_refused() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    for query in [
        "granularity=month&period=2025",
        "granularity=month&period=2025-13",
        "granularity=year&period=2025-01",
        "granularity=quarter&period=2025-Q1",
        "granularity=month",
        "period=2025-01",
    ] {
        app.get(&format!("/api/v1/reports/statistics?{query}"), &c.manager)
            .refused("validation_failed")
            .await;
    }
    app.get_accepting(JANUARY, &c.manager, "image/png")
        .refused("not_acceptable")
        .await;
    app.get(JANUARY, &c.portal).refused("forbidden").await;
    let response = app
        .get_accepting(JANUARY, &c.manager, "text/html, */*;q=0.1")
        .await;
    assert_eq!(response.headers()["content-type"], "application/json");
}

#[derive(diesel::QueryableByName)]
struct Percentiles {
    #[diesel(sql_type = diesel::sql_types::Double)]
    median: f64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    p90: f64,
}

/// A year's median and 90th percentile come from bucket counts and a read of the buckets
/// holding the ranks; they must equal PostgreSQL's `percentile_cont` over every duration, here
/// with durations in many months and ranks falling on either side of a bucket's edge.
#[tokio::test]
async fn a_years_percentiles_equal_percentile_cont_over_every_duration() {
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let minutes = [
        3, 59, 63, 64, 65, 66, 67, 130, 131, 400, 1_500, 2_900, 2_950, 10_000,
    ];
    for (i, duration) in minutes.iter().enumerate() {
        let created = at(&format!("2025-{:02}-10T00:00:00Z", i % 11 + 1));
        let resolved = created + chrono::TimeDelta::minutes(*duration);
        let closed = resolved + chrono::TimeDelta::hours(1);
        closed_history(
            &app,
            &c,
            &created.to_rfc3339(),
            &resolved.to_rfc3339(),
            &closed.to_rfc3339(),
            "resolved",
        )
        .await;
    }

    let year = app
        .get(
            "/api/v1/reports/statistics?granularity=year&period=2025",
            &c.manager,
        )
        .ok()
        .await;
    let times = row(&year, "time_to_resolve", "level", json!("high"));
    assert_eq!(times["resolved"], 14);
    // Sorted, ranks 6 and 7 (67, 130) give the median; 11.7 between 2 900 and 2 950 the p90.
    assert_eq!(times["median_minutes"], 98.5);
    assert_eq!(times["p90_minutes"], 2935.0);
    let mut conn = diesel::PgConnection::establish(&database_url(&app.database)).unwrap();
    let exact: Percentiles = diesel::sql_query(
        "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes)::numeric, 1)::float8 \
                  AS median, \
                round(percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes)::numeric, 1)::float8 \
                  AS p90 \
         FROM resolve_times WHERE measure = 'resolve' AND level = 'high'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(
        (
            times["median_minutes"].as_f64(),
            times["p90_minutes"].as_f64()
        ),
        (Some(exact.median), Some(exact.p90))
    );
    let mean = minutes.iter().sum::<i64>() as f64 / minutes.len() as f64;
    assert_eq!(times["mean_minutes"], (mean * 10.0).round() / 10.0);
}

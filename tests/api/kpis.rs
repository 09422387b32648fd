//! The procedure's measures (SPEC §9) over a known history: closures at a month's last second
//! and the next month's first, a duplicate, a late resolution, follow-ups on time and late,
//! empty periods, quarters and the customer filter.

use diesel::Connection;
use serde_json::{Value, json};

use crate::helpers::*;

async fn follow_up(app: &TestApp, c: &Cast, incident: &Value, when: &str) {
    app.clock.set(at(when));
    let path = format!("/api/v1/incidents/{}/follow-ups", incident["id"]);
    app.post(&path, &c.desk, json!({"channel": "phone", "reached": true}))
        .created()
        .await;
}

#[tokio::test]
async fn measures_follow_the_formulas_at_period_boundaries() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    // 23:59:59 on 31 January in Shanghai: January. Resolved within its 2 h.
    let a = closed_history(
        &app,
        &c,
        "2025-01-31T10:00:00Z",
        "2025-01-31T11:00:00Z",
        "2025-01-31T15:59:59Z",
        "resolved",
    )
    .await;
    // 00:00:00 on 1 February in Shanghai: February; unresolved.
    closed_history(
        &app,
        &c,
        "2025-01-31T10:00:00Z",
        "2025-01-31T11:00:00Z",
        "2025-01-31T16:00:00Z",
        "unresolved",
    )
    .await;
    // Resolved three hours after its deadline, closed in January.
    let late = closed_history(
        &app,
        &c,
        "2025-01-10T00:00:00Z",
        "2025-01-10T05:00:00Z",
        "2025-01-10T06:00:00Z",
        "resolved",
    )
    .await;
    // A duplicate closed in January does not count.
    closed_duplicate(&app, &c, &a, "2025-01-20T00:00:00Z").await;
    follow_up(&app, &c, &a, "2025-02-02T00:00:00Z").await;
    follow_up(&app, &c, &late, "2025-03-02T00:00:00Z").await;

    let months = app
        .get(
            "/api/v1/kpis?granularity=month&from=2025-01&to=2025-04",
            &c.manager,
        )
        .ok()
        .await;
    assert_eq!(
        months["items"],
        json!([
            {"period": "2025-01", "closed": 2, "resolved": 2, "resolved_on_time": 1,
             "resolution_rate": 1.0, "on_time_resolution_rate": 0.5,
             "follow_ups": 0, "follow_ups_on_time": 0, "follow_up_timeliness": null,
             "mean_satisfaction": null},
            {"period": "2025-02", "closed": 1, "resolved": 0, "resolved_on_time": 0,
             "resolution_rate": 0.0, "on_time_resolution_rate": 0.0,
             "follow_ups": 1, "follow_ups_on_time": 1, "follow_up_timeliness": 1.0,
             "mean_satisfaction": null},
            {"period": "2025-03", "closed": 0, "resolved": 0, "resolved_on_time": 0,
             "resolution_rate": null, "on_time_resolution_rate": null,
             "follow_ups": 1, "follow_ups_on_time": 0, "follow_up_timeliness": 0.0,
             "mean_satisfaction": null},
            {"period": "2025-04", "closed": 0, "resolved": 0, "resolved_on_time": 0,
             "resolution_rate": null, "on_time_resolution_rate": null,
             "follow_ups": 0, "follow_ups_on_time": 0, "follow_up_timeliness": null,
             "mean_satisfaction": null}
        ])
    );

    // By engineer: the desk held every one of these incidents when they were closed.
    let by_engineer = |id: i64| {
        format!("/api/v1/kpis?granularity=month&from=2025-01&to=2025-04&assignee_id={id}")
    };
    let desk = app.get(&by_engineer(c.desk_id), &c.manager).ok().await;
    assert_eq!(desk["items"], months["items"]);
    let engineer = app.get(&by_engineer(c.l2_id), &c.manager).ok().await;
    assert_eq!(engineer["items"][0]["closed"], 0);
    assert_eq!(engineer["items"][1]["follow_ups"], 0);

    let quarters = app
        .get(
            "/api/v1/kpis?granularity=quarter&from=2024-Q4&to=2025-Q1",
            &c.desk,
        )
        .ok()
        .await;
    let q1 = &quarters["items"][1];
    assert_eq!(quarters["items"][0]["closed"], 0);
    assert_eq!(
        (
            q1["period"].as_str(),
            &q1["closed"],
            &q1["resolved_on_time"]
        ),
        (Some("2025-Q1"), &json!(3), &json!(1))
    );
    assert_eq!(q1["follow_up_timeliness"], 0.5);
    let year = app
        .get("/api/v1/kpis?granularity=year&from=2025&to=2025", &c.desk)
        .ok()
        .await;
    assert_eq!(year["items"][0]["closed"], 3);

    let other = app.create_customer(&c.admin, "OTHER").await;
    let filtered = app
        .get(
            &format!("/api/v1/kpis?granularity=month&from=2025-01&to=2025-01&customer_id={other}"),
            &c.manager,
        )
        .ok()
        .await;
    assert_eq!(filtered["items"][0]["closed"], 0);
    let high = app
        .get(
            "/api/v1/kpis?granularity=month&from=2025-01&to=2025-01&level=high",
            &c.manager,
        )
        .ok()
        .await;
    assert_eq!(high["items"][0]["closed"], 2);
}

#[tokio::test]
async fn kpi_queries_are_checked_and_for_staff() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    for (query, field) in [
        ("granularity=month&from=2025-13&to=2025-12", "from"),
        ("granularity=quarter&from=2025-Q1&to=2025-05", "to"),
        ("granularity=month&from=2025-06&to=2025-01", "to"),
        ("granularity=week&from=2025-01&to=2025-02", "granularity"),
        ("granularity=month&from=2000-01&to=2030-01", "to"),
    ] {
        let problem = app
            .get(&format!("/api/v1/kpis?{query}"), &c.manager)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
    app.get("/api/v1/kpis?granularity=year&from=2025&to=2025", &c.portal)
        .refused("forbidden")
        .await;
}

/// The summaries each closure and follow-up adds to equal a rebuild from the incidents, and a new
/// `TIMEZONE` rebuilds them in its months at start-up.
#[tokio::test]
async fn maintained_summaries_equal_a_rebuild_and_follow_the_time_zone() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    // 00:00 on 1 February in Shanghai, 16:00 on 31 January in UTC.
    let boundary = closed_history(
        &app,
        &c,
        "2025-01-31T10:00:00Z",
        "2025-01-31T11:00:00Z",
        "2025-01-31T16:00:00Z",
        "resolved",
    )
    .await;
    let late = closed_history(
        &app,
        &c,
        "2025-01-10T00:00:00Z",
        "2025-01-10T05:00:00Z",
        "2025-01-10T06:00:00Z",
        "unresolved",
    )
    .await;
    follow_up(&app, &c, &boundary, "2025-02-01T01:00:00Z").await;
    follow_up(&app, &c, &late, "2025-02-20T00:00:00Z").await;
    let paths = [
        "/api/v1/kpis?granularity=month&from=2025-01&to=2025-02",
        "/api/v1/kpis?granularity=quarter&from=2025-Q1&to=2025-Q1&level=high",
        "/api/v1/reports/statistics?granularity=month&period=2025-01",
        "/api/v1/reports/statistics?granularity=month&period=2025-02",
    ];
    let mut maintained = Vec::new();
    for path in paths {
        maintained.push(app.get(path, &c.manager).ok().await);
    }
    assert_eq!(maintained[0]["items"][1]["closed"], 1);

    let mut conn = diesel::PgConnection::establish(&database_url(&app.database)).unwrap();
    incident_desk::store::report_summaries::rebuild(&mut conn, chrono_tz::Asia::Shanghai).unwrap();
    for (path, before) in paths.iter().zip(&maintained) {
        assert_eq!(&app.get(path, &c.manager).ok().await, before, "{path}");
    }

    let utc = TestApp::spawn_on(app.database.clone(), &[("TIMEZONE", "UTC")]).await;
    let months = utc.get(paths[0], &c.manager).ok().await;
    assert_eq!(pluck(&months["items"], "closed"), [&json!(2), &json!(0)]);
    assert_eq!(
        pluck(&months["items"], "follow_ups"),
        [&json!(0), &json!(2)]
    );
    let january = utc.get(paths[2], &c.manager).ok().await;
    assert_eq!(january["timezone"], "UTC");
    assert_eq!(january["closed"], 2);
}

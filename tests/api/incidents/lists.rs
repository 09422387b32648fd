//! Incident lists (SPEC §10): filters and cursor pagination in every sort order.

use chrono::{DateTime, Duration};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn list_filters_select_the_right_incidents() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "OTHER").await;
    let ci = app.create_ci(&c.admin, c.customer, "gw").await;
    let start = DateTime::parse_from_rfc3339("2025-03-01T00:00:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(start);
    let a = app.create_incident(&c.desk, json!({"title": "打印机卡纸", "customer_id": c.customer, "subcategory": "usage_howto", "ci_id": ci["id"]})).await;
    app.clock.advance(Duration::hours(1));
    let b = app.create_incident(&c.desk, json!({"title": "升级失败", "customer_id": other, "subcategory": "upgrade_error", "description": "版本 2.3"})).await;
    app.clock.advance(Duration::hours(1));
    let d = app
        .create_incident(
            &c.desk,
            json!({"title": "补传数据", "customer_id": c.customer, "affects_data_upload": true}),
        )
        .await;
    app.act_ok(&c.desk, &b["id"], "accept", json!({})).await;
    app.act_ok(
        &c.desk,
        &d["id"],
        "accept",
        json!({"assignee_id": c.desk_id}),
    )
    .await;

    let ids = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let id = |v: &Value| v["id"].as_i64().unwrap();
    let cases: Vec<(String, Vec<i64>)> = vec![
        ("status=new".into(), vec![id(&a)]),
        (
            "status=new&status=in_progress".into(),
            vec![id(&d), id(&b), id(&a)],
        ),
        ("level=high".into(), vec![id(&d)]),
        ("tier=l1".into(), vec![id(&d), id(&b), id(&a)]),
        (format!("customer_id={other}"), vec![id(&b)]),
        (format!("assignee_id={}", c.desk_id), vec![id(&d), id(&b)]),
        ("category=consultation".into(), vec![id(&a)]),
        ("subcategory=upgrade_error".into(), vec![id(&b)]),
        (format!("ci_id={}", ci["id"]), vec![id(&a)]),
        ("q=2.3".into(), vec![id(&b)]),
        ("q=inc-".into(), vec![id(&d), id(&b), id(&a)]),
        (
            "created_from=2025-03-01T01:00:00Z".into(),
            vec![id(&d), id(&b)],
        ),
        ("created_to=2025-03-01T01:00:00Z".into(), vec![id(&a)]),
        ("sort=created_at".into(), vec![id(&a), id(&b), id(&d)]),
        ("sort=-level".into(), vec![id(&d), id(&b), id(&a)]),
        ("sort=due_at".into(), vec![id(&d), id(&b), id(&a)]),
    ];
    for (query, expected) in cases {
        let page = app
            .get(&format!("/api/v1/incidents?{query}"), &c.manager)
            .ok()
            .await;
        assert_eq!(ids(&page), expected, "{query}");
    }
    for (query, field) in [
        ("status=open", "status[0]"),
        ("status=new&status=bogus", "status[1]"),
        ("level=urgent", "level"),
        ("sort=title", "sort"),
        ("created_from=yesterday", "created_from"),
        ("sla_breached=perhaps", "sla_breached"),
        ("limit=500", "limit"),
    ] {
        let problem = app
            .get(&format!("/api/v1/incidents?{query}"), &c.desk)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
}

#[tokio::test]
async fn cursor_walks_cover_every_incident_once_in_every_order() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let start = DateTime::parse_from_rfc3339("2025-03-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let levels = [
        "low", "high", "medium", "high", "low", "medium", "high", "low", "low",
    ];
    for (i, level) in levels.iter().enumerate() {
        // Several incidents share a creation time, so ties must be broken by id.
        app.clock.set(start + Duration::minutes((i / 3) as i64));
        app.create_incident(
            &c.desk,
            json!({"title": format!("incident {i}"), "customer_id": c.customer, "level": level}),
        )
        .await;
    }
    for sort in [
        "-created_at",
        "created_at",
        "due_at",
        "-due_at",
        "level",
        "-level",
        "updated_at",
        "-updated_at",
    ] {
        let full = app
            .get(&format!("/api/v1/incidents?sort={sort}&limit=200"), &c.desk)
            .ok()
            .await;
        let expected: Vec<i64> = full["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect();
        assert_eq!(expected.len(), levels.len());
        let walked = walk_ids(&app, &c.desk, &format!("/api/v1/incidents?sort={sort}"), 2).await;
        assert_eq!(walked, expected, "{sort}");
        let keys: Vec<Value> = full["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| match sort.trim_start_matches('-') {
                "level" => json!(
                    ["low", "medium", "high"]
                        .iter()
                        .position(|l| *l == i["level"])
                        .unwrap()
                ),
                key => i[key].clone(),
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|x, y| {
            let ordering = x.to_string().cmp(&y.to_string());
            if sort.starts_with('-') {
                ordering.reverse()
            } else {
                ordering
            }
        });
        assert_eq!(keys, sorted, "{sort} is not ordered");
    }
    let first = app
        .get("/api/v1/incidents?sort=level&limit=2", &c.desk)
        .ok()
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let problem = app
        .get(
            &format!("/api/v1/incidents?sort=due_at&cursor={cursor}"),
            &c.desk,
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["cursor"]);
}

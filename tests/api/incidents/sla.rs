//! Level and deadline (SPEC §4.1): levels at creation, the upload cut-off, SLA breaches.

use chrono::{DateTime, Duration};
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn level_and_deadline_follow_the_rules_at_creation() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let at = DateTime::parse_from_rfc3339("2025-01-06T02:00:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(at);
    let cases = [
        (json!({}), "low", 8 * 60),
        (json!({"subcategory": "upgrade_error"}), "medium", 4 * 60),
        (
            json!({"subcategory": "unusable_after_upgrade"}),
            "high",
            2 * 60,
        ),
        (
            json!({"subcategory": "unusable_after_upgrade", "level": "low"}),
            "low",
            8 * 60,
        ),
        (json!({"affects_onsite_work": true}), "medium", 4 * 60),
        (
            json!({"level": "medium", "affects_onsite_work": true}),
            "medium",
            4 * 60,
        ),
        (json!({"affects_data_upload": true}), "high", 2 * 60),
        (
            json!({"level": "low", "affects_data_upload": true, "affects_onsite_work": true}),
            "high",
            2 * 60,
        ),
    ];
    for (extra, level, minutes) in cases {
        let mut body = json!({"title": "t", "customer_id": c.customer});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let incident = app.create_incident(&c.desk, body.clone()).await;
        assert_eq!(incident["level"], level, "{body}");
        assert_eq!(time(&incident["created_at"]), at);
        assert_eq!(
            time(&incident["due_at"]),
            at + Duration::minutes(minutes),
            "{body}"
        );
    }
    // Targets come from the SLA policies in force.
    app.send(
        Method::PUT,
        "/api/v1/sla-policies/high",
        Some(&c.admin),
        Some(json!({"resolution_minutes": 60})),
    )
    .ok()
    .await;
    let incident = app
        .create_incident(
            &c.desk,
            json!({"title": "t", "customer_id": c.customer, "level": "high"}),
        )
        .await;
    assert_eq!(time(&incident["due_at"]), at + Duration::minutes(60));
}

#[tokio::test]
async fn the_upload_cutoff_caps_the_deadline_across_midnight() {
    let app =
        TestApp::spawn_with(&[("UPLOAD_CUTOFF", "00:30"), ("TIMEZONE", "Asia/Shanghai")]).await;
    let c = app.cast().await;
    // 23:50 in Shanghai: the high target would be 01:50, the cut-off is 00:30 the next day.
    let at = DateTime::parse_from_rfc3339("2025-01-06T15:50:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(at);
    let upload = app
        .create_incident(
            &c.desk,
            json!({"title": "补传", "customer_id": c.customer, "affects_data_upload": true}),
        )
        .await;
    assert_eq!(upload["level"], "high");
    assert_eq!(upload["due_at"], "2025-01-06T16:30:00Z");
    let other = app
        .create_incident(
            &c.desk,
            json!({"title": "其他", "customer_id": c.customer, "level": "high"}),
        )
        .await;
    assert_eq!(other["due_at"], "2025-01-06T17:50:00Z");
    // 00:40 local, just after the cut-off: the next cut-off is a day away, the target wins.
    app.clock.set(at + Duration::minutes(50));
    let late = app
        .create_incident(
            &c.desk,
            json!({"title": "补传", "customer_id": c.customer, "affects_data_upload": true}),
        )
        .await;
    assert_eq!(late["due_at"], "2025-01-06T18:40:00Z");
}

#[tokio::test]
async fn sla_breaches_are_computed_from_the_clock() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let at = DateTime::parse_from_rfc3339("2025-01-06T02:00:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(at);
    let late = app
        .create_incident(
            &c.desk,
            json!({"title": "late", "customer_id": c.customer, "level": "high"}),
        )
        .await;
    let on_time = app.create_incident(&c.desk, json!({"title": "on time", "customer_id": c.customer, "level": "high", "subcategory": "usage_howto"})).await;
    app.act_ok(&c.desk, &on_time["id"], "accept", json!({}))
        .await;
    app.clock.advance(Duration::minutes(60));
    let resolved = app
        .act_ok(&c.desk, &on_time["id"], "resolve", resolution())
        .await;
    assert_eq!(resolved["sla_breached"], false);
    app.clock.advance(Duration::minutes(61));
    let fetched = app
        .get(&format!("/api/v1/incidents/{}", late["id"]), &c.desk)
        .ok()
        .await;
    assert_eq!(fetched["sla_breached"], true);
    let fetched = app
        .get(&format!("/api/v1/incidents/{}", on_time["id"]), &c.desk)
        .ok()
        .await;
    assert_eq!(fetched["sla_breached"], false);
    let breached = app
        .get("/api/v1/incidents?sla_breached=true", &c.desk)
        .ok()
        .await;
    let ids = pluck(&breached["items"], "id");
    assert_eq!(ids, [&late["id"]]);
    let fine = app
        .get("/api/v1/incidents?sla_breached=false", &c.desk)
        .ok()
        .await;
    let ids = pluck(&fine["items"], "id");
    assert_eq!(ids, [&on_time["id"]]);
}

//! Recurring defects (SPEC §9, procedure §4.9): the same subcategory and system at three or
//! more organisations within the window.

use chrono::Duration;
use incident_desk::domain::clock::Clock;
use serde_json::{Value, json};

use crate::helpers::*;

async fn report(app: &TestApp, desk: &str, customer: i64, system: &str) -> Value {
    app.create_incident(
        desk,
        json!({"title": "收费模块无法录入", "customer_id": customer,
               "subcategory": "module_input_blocked", "source_system": system}),
    )
    .await
}

#[tokio::test]
async fn a_fault_at_three_organisations_is_a_recurring_defect() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let second = app.create_customer(&c.admin, "C2").await;
    let third = app.create_customer(&c.admin, "C3").await;
    // Eight days ago: outside the weekly window.
    let now = app.clock.now();
    app.clock.set(now - Duration::days(8));
    report(&app, &c.desk, third, "HIS").await;
    app.clock.set(now);
    let first = report(&app, &c.desk, c.customer, "HIS").await;
    report(&app, &c.desk, c.customer, "HIS").await;
    report(&app, &c.desk, second, "HIS").await;
    report(&app, &c.desk, third, "LIS").await;

    let weekly = app.get("/api/v1/reports/recurring", &c.manager).ok().await;
    assert_eq!(
        weekly["items"],
        json!([]),
        "two organisations in the window"
    );

    report(&app, &c.desk, third, "HIS").await;
    let weekly = app.get("/api/v1/reports/recurring", &c.manager).ok().await;
    let items = weekly["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["subcategory"], "module_input_blocked");
    assert_eq!(items[0]["source_system"], "HIS");
    assert_eq!(items[0]["customers"], 3);
    let incidents = items[0]["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 4);
    assert_eq!(incidents[0]["id"], first["id"]);
    assert_eq!(incidents[0]["status"], "new");

    let wider = app
        .get(
            "/api/v1/reports/recurring?days=30&min_customers=2",
            &c.manager,
        )
        .ok()
        .await;
    assert_eq!(wider["items"][0]["incidents"].as_array().unwrap().len(), 5);
    assert_eq!(wider["items"].as_array().unwrap().len(), 1);

    for query in ["days=0", "min_customers=0", "days=abc"] {
        app.get(&format!("/api/v1/reports/recurring?{query}"), &c.manager)
            .refused("validation_failed")
            .await;
    }
    app.get("/api/v1/reports/recurring", &c.portal)
        .refused("forbidden")
        .await;
}

//! Human duplicates (SPEC §8): the same customer, system, CI and subcategory as an unresolved
//! incident is refused with `duplicate_of`, or recorded on it, or opened anyway.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn report(c: &Cast, ci: &Value) -> Value {
    json!({
        "title": "收费模块报错",
        "customer_id": c.customer,
        "source_system": "HIS",
        "ci_id": ci["id"],
        "subcategory": "query_inaccurate"
    })
}

#[tokio::test]
async fn a_second_report_of_the_same_fault_is_refused_naming_the_first() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let ci = app.create_ci(&c.admin, c.customer, "his-app-01").await;
    let first = app.create_incident(&c.desk, report(&c, &ci)).await;

    let problem = app
        .post("/api/v1/incidents", &c.desk, report(&c, &ci))
        .refused("duplicate_incident")
        .await;
    assert_eq!(problem["duplicate_of"], first["id"]);
    // The reporter's own organisation is told too.
    let by_portal = app
        .post("/api/v1/incidents", &c.portal, report(&c, &ci))
        .refused("duplicate_incident")
        .await;
    assert_eq!(by_portal["duplicate_of"], first["id"]);

    // Any field unset or different is another fault.
    for (field, value) in [
        ("subcategory", json!("module_input_blocked")),
        ("source_system", json!("LIS")),
        ("source_system", Value::Null),
        ("ci_id", Value::Null),
    ] {
        let mut other = report(&c, &ci);
        other[field] = value;
        app.create_incident(&c.desk, other).await;
    }
}

#[tokio::test]
async fn on_duplicate_append_records_the_report_and_create_opens_anyway() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let ci = app.create_ci(&c.admin, c.customer, "his-app-01").await;
    let first = app.create_incident(&c.desk, report(&c, &ci)).await;

    let mut again = report(&c, &ci);
    again["description"] = json!("二楼收费窗口也报错");
    let response = app
        .post("/api/v1/incidents?on_duplicate=append", &c.portal, again)
        .await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let appended = expect_json(response, StatusCode::OK).await;
    assert_eq!(appended["id"], first["id"]);
    assert_eq!(appended["occurrences"], 2);
    let history = app
        .get(
            &format!("/api/v1/incidents/{}/history", first["id"]),
            &c.desk,
        )
        .ok()
        .await;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "reported_again");
    assert!(
        last["comment"]
            .as_str()
            .unwrap()
            .contains("二楼收费窗口也报错")
    );

    let created = app
        .post(
            "/api/v1/incidents?on_duplicate=create",
            &c.desk,
            report(&c, &ci),
        )
        .created()
        .await;
    assert_ne!(created["id"], first["id"]);

    let problem = app
        .post(
            "/api/v1/incidents?on_duplicate=merge",
            &c.desk,
            report(&c, &ci),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["on_duplicate"]);
}

#[tokio::test]
async fn only_unresolved_incidents_have_duplicates() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let ci = app.create_ci(&c.admin, c.customer, "his-app-01").await;
    let first = app.create_incident(&c.desk, report(&c, &ci)).await;
    app.act_ok(&c.desk, &first["id"], "accept", json!({})).await;
    app.post("/api/v1/incidents", &c.desk, report(&c, &ci))
        .refused("duplicate_incident")
        .await;
    app.act_ok(&c.desk, &first["id"], "resolve", resolution())
        .await;
    let after = app.create_incident(&c.desk, report(&c, &ci)).await;
    assert_ne!(after["id"], first["id"]);
}

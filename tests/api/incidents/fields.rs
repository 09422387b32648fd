//! Recording and editing an incident's fields (SPEC §4): validation at creation, edits with
//! optimistic concurrency (§10).

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn staff_edit_descriptive_fields_with_optimistic_concurrency() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "OTHER").await;
    let ci = app.create_ci(&c.admin, c.customer, "his-db").await;
    let foreign_ci = app.create_ci(&c.admin, other, "x").await;
    let incident = app.create_incident(&c.portal, json!({"title": "t"})).await;
    let path = format!("/api/v1/incidents/{}", incident["id"]);
    let edit = json!({
        "title": "收费模块报错",
        "subcategory": "query_inaccurate",
        "ci_id": ci["id"],
        "source_system": "HIS",
        "kind": "service_request"
    });
    let response = app
        .send_if_match(Method::PATCH, &path, &c.desk, "\"1\"", edit)
        .await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let edited = expect_ok(response).await;
    assert_eq!(edited["title"], "收费模块报错");
    assert_eq!(edited["category"], "usage_issue");
    assert_eq!(edited["ci_id"], ci["id"]);
    assert_eq!(edited["kind"], "service_request");
    // Level changes only through escalations: editing the classification keeps it.
    assert_eq!(edited["level"], incident["level"]);

    app.send_if_match(
        Method::PATCH,
        &path,
        &c.desk,
        "\"1\"",
        json!({"title": "late"}),
    )
    .refused("version_mismatch")
    .await;
    app.send_if_match(
        Method::POST,
        &format!("{path}/accept"),
        &c.desk,
        "\"1\"",
        json!({}),
    )
    .refused("version_mismatch")
    .await;

    for (body, field) in [
        (json!({"ci_id": foreign_ci["id"]}), "ci_id"),
        (
            json!({"category": "training", "subcategory": "upgrade_error"}),
            "subcategory",
        ),
        (json!({"category": "nope"}), "category"),
        (json!({"title": " "}), "title"),
        (
            json!({"reporter": {"name": "x", "email": "not-an-email"}}),
            "reporter.email",
        ),
        (json!({"level": "high"}), "level"),
    ] {
        let problem = app
            .patch(&path, &c.desk, body.clone())
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    let cleared = app
        .patch(&path, &c.desk, json!({"ci_id": null, "category": null}))
        .ok()
        .await;
    assert!(
        cleared["ci_id"].is_null()
            && cleared["category"].is_null()
            && cleared["subcategory"].is_null()
    );

    let history = app.get(&format!("{path}/history"), &c.desk).ok().await;
    let edit = &history[1];
    assert_eq!(edit["action"], "edit");
    let fields: Vec<&str> = edit["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ch| ch["field"].as_str().unwrap())
        .collect();
    for expected in [
        "title",
        "category",
        "subcategory",
        "ci_id",
        "source_system",
        "kind",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }
}

#[tokio::test]
async fn incident_creation_is_validated() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "OTHER").await;
    let foreign_ci = app.create_ci(&c.admin, other, "x").await;
    for (body, field) in [
        (json!({"customer_id": c.customer}), "title"),
        (json!({"title": " ", "customer_id": c.customer}), "title"),
        (
            json!({"title": "x".repeat(201), "customer_id": c.customer}),
            "title",
        ),
        (json!({"title": "t"}), "customer_id"),
        (json!({"title": "t", "customer_id": 424_242}), "customer_id"),
        (
            json!({"title": "t", "customer_id": c.customer, "kind": "complaint"}),
            "kind",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "channel": "fax"}),
            "channel",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "level": "urgent"}),
            "level",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "subcategory": "nope"}),
            "subcategory",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "category": "training", "subcategory": "upgrade_error"}),
            "subcategory",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "ci_id": foreign_ci["id"]}),
            "ci_id",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "reporter": {"phone": "1"}}),
            "reporter.name",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "reporter": {"name": "x", "email": "nope"}}),
            "reporter.email",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "description": "x".repeat(10_001)}),
            "description",
        ),
        (
            json!({"title": "t", "customer_id": c.customer, "status": "closed"}),
            "status",
        ),
    ] {
        let problem = app
            .post("/api/v1/incidents", &c.desk, body.clone())
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    app.patch(
        &format!("/api/v1/customers/{other}"),
        &c.admin,
        json!({"active": false}),
    )
    .ok()
    .await;
    let problem = app
        .post(
            "/api/v1/incidents",
            &c.desk,
            json!({"title": "t", "customer_id": other}),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(problem["errors"][0]["code"], "inactive");
    for path in ["/api/v1/incidents/0", "/api/v1/incidents/abc"] {
        app.get(path, &c.desk).refused("not_found").await;
    }
    app.post("/api/v1/incidents/0/accept", &c.desk, json!({}))
        .refused("not_found")
        .await;
}

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_checked_in_spec_matches_the_served_one() {
    let app = TestApp::spawn().await;
    let served = app
        .send(Method::GET, "/api-docs/openapi.json", None, None)
        .ok()
        .await;
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json exists"),
    )
    .expect("openapi/openapi.json is JSON");
    assert!(
        served == checked_in,
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
    assert_eq!(served["openapi"], "3.1.0");
    let mut unresolved = Vec::new();
    every_reference(&served, &served, &mut unresolved);
    assert!(
        unresolved.is_empty(),
        "references to nothing: {unresolved:?}"
    );
    assert!(served["components"]["securitySchemes"]["bearer"].is_object());
    assert!(
        served["info"]["license"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    );
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let app = TestApp::spawn().await;
    let redirect = app.send(Method::GET, "/swagger-ui", None, None).await;
    assert!(redirect.status().is_redirection());
    assert_eq!(redirect.headers()["location"], "/swagger-ui/");
    let page = app.send(Method::GET, "/swagger-ui/", None, None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let config = app
        .send(
            Method::GET,
            "/swagger-ui/swagger-initializer.js",
            None,
            None,
        )
        .await;
    assert!(
        config
            .text()
            .await
            .unwrap()
            .contains("/api-docs/openapi.json")
    );
}

#[tokio::test]
async fn the_document_says_what_the_server_accepts() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let admin = app.admin_token().await;
    let doc = app
        .send(Method::GET, "/api-docs/openapi.json", None, None)
        .ok()
        .await;
    let schemas = &doc["components"]["schemas"];

    // Every event type the document lists is accepted, and nothing else.
    let events = schemas["WebhookEventType"]["enum"].clone();
    assert!(events.as_array().unwrap().len() >= 8);
    let webhook = |events: Value| {
        serde_json::json!({"url": "https://hooks.example.com/x", "events": events,
                           "secret": "a-secret-of-sixteen+"})
    };
    app.post("/api/v1/webhooks", &admin, webhook(events))
        .created()
        .await;
    app.post(
        "/api/v1/webhooks",
        &admin,
        webhook(serde_json::json!(["incident.deleted"])),
    )
    .refused("validation_failed")
    .await;

    // Causes and sub-causes are the taxonomy's.
    let taxonomy = app.get("/api/v1/taxonomy", &c.desk).ok().await;
    let causes = taxonomy["causes"].as_array().unwrap();
    let cause_codes: Vec<&Value> = causes.iter().map(|c| &c["code"]).collect();
    let subcause_codes: Vec<&Value> = causes
        .iter()
        .flat_map(|c| c["subcauses"].as_array().unwrap())
        .map(|s| &s["code"])
        .collect();
    let listed =
        |name: &str| -> Vec<&Value> { schemas[name]["enum"].as_array().unwrap().iter().collect() };
    assert_eq!(listed("CauseCode"), cause_codes);
    assert_eq!(listed("SubcauseCode"), subcause_codes);
    assert_eq!(
        schemas["ResolveRequest"]["properties"]["cause"]["$ref"],
        "#/components/schemas/CauseCode"
    );

    // Each kind of escalation is a closed object, as the server refuses other fields.
    let branches = schemas["CreateEscalationRequest"]["oneOf"]
        .as_array()
        .unwrap();
    assert_eq!(branches.len(), 3);
    for branch in branches {
        assert_eq!(branch["additionalProperties"], false, "{branch}");
    }
    let incident = app
        .create_incident(
            &c.desk,
            serde_json::json!({"title": "t", "customer_id": c.customer}),
        )
        .await;
    let refused = app
        .post(
            &format!("/api/v1/incidents/{}/escalations", incident["id"]),
            &c.desk,
            serde_json::json!({"kind": "hierarchical", "reason": "r", "level": "high"}),
        )
        .await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
}

/// Collects every `$ref` in `node` that names nothing in `document`.
fn every_reference(document: &Value, node: &Value, unresolved: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let pointer = target.trim_start_matches('#');
                if document.pointer(pointer).is_none() {
                    unresolved.push(target.clone());
                }
            }
            for value in map.values() {
                every_reference(document, value, unresolved);
            }
        }
        Value::Array(items) => {
            for item in items {
                every_reference(document, item, unresolved);
            }
        }
        _ => {}
    }
}

//! Bodies a real Prometheus Alertmanager (0.25) sent, kept as fixtures: its `pagerduty_configs`
//! receiver (as docs/monitoring.md configures it, and with Alertmanager's default templates) posting to
//! `/events`, and its `webhook_configs` receiver posting to `/integrations/alertmanager`. Each
//! alert fired, fired again after `repeat_interval`, then resolved. docs/monitoring.md says how to
//! capture them again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn fixture(name: &str) -> Value {
    let text = match name {
        "pagerduty-firing" => include_str!("../fixtures/alertmanager/pagerduty-firing.json"),
        "pagerduty-repeated" => include_str!("../fixtures/alertmanager/pagerduty-repeated.json"),
        "pagerduty-resolved" => include_str!("../fixtures/alertmanager/pagerduty-resolved.json"),
        "pagerduty-default-template-firing" => {
            include_str!("../fixtures/alertmanager/pagerduty-default-template-firing.json")
        }
        "pagerduty-default-template-resolved" => {
            include_str!("../fixtures/alertmanager/pagerduty-default-template-resolved.json")
        }
        "webhook-firing" => include_str!("../fixtures/alertmanager/webhook-firing.json"),
        "webhook-repeated" => include_str!("../fixtures/alertmanager/webhook-repeated.json"),
        "webhook-resolved" => include_str!("../fixtures/alertmanager/webhook-resolved.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixture JSON")
}

/// The monitoring cast: desk token, integration token, customer id and CI id.
async fn setup(app: &TestApp) -> (String, String, i64, Value) {
    let m = app.monitoring().await;
    (m.desk, m.token, m.customer, m.ci["id"].clone())
}

/// Posts a `pagerduty_configs` body as Alertmanager does: no header, the token as routing key.
async fn post_pagerduty(app: &TestApp, token: &str, name: &str) -> Value {
    let mut body = fixture(name);
    body["routing_key"] = json!(token);
    let response = app
        .send(Method::POST, "/api/v1/events", None, Some(body))
        .await;
    expect_json(response, StatusCode::ACCEPTED).await
}

#[tokio::test]
async fn alertmanager_pagerduty_receiver_opens_deduplicates_and_resolves() {
    let app = TestApp::spawn().await;
    let (desk, token, customer, ci) = setup(&app).await;
    let firing = post_pagerduty(&app, &token, "pagerduty-firing").await;
    assert_eq!(firing["result"], "created");
    let id = firing["incident_id"].clone();
    let path = format!("/api/v1/incidents/{id}");
    let incident = app.get(&path, &desk).ok().await;
    assert_eq!(incident["title"], "Disk almost full on his-db-01");
    assert_eq!(incident["customer_id"], customer);
    assert_eq!(incident["ci_id"], ci);
    assert_eq!(incident["level"], "medium", "severity warning");
    assert_eq!(incident["source_system"], "Alertmanager");

    let repeated = post_pagerduty(&app, &token, "pagerduty-repeated").await;
    assert_eq!(repeated["result"], "deduplicated");
    assert_eq!(repeated["incident_id"], id);
    let resolved = post_pagerduty(&app, &token, "pagerduty-resolved").await;
    assert_eq!(resolved["result"], "resolved");
    let incident = app.get(&path, &desk).ok().await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["occurrences"], 2);
}

#[tokio::test]
async fn alertmanager_default_templates_still_open_and_resolve_without_a_customer() {
    let app = TestApp::spawn().await;
    let (desk, token, _, _) = setup(&app).await;
    let firing = post_pagerduty(&app, &token, "pagerduty-default-template-firing").await;
    assert_eq!(firing["result"], "created");
    let path = format!("/api/v1/incidents/{}", firing["incident_id"]);
    let incident = app.get(&path, &desk).ok().await;
    assert_eq!(incident["customer_id"], Value::Null);
    assert_eq!(incident["level"], "high", "the default severity is error");
    assert!(
        incident["description"]
            .as_str()
            .unwrap()
            .contains("alertname = DiskAlmostFull")
    );
    let resolved = post_pagerduty(&app, &token, "pagerduty-default-template-resolved").await;
    assert_eq!(resolved["result"], "resolved");
    assert_eq!(resolved["incident_id"], firing["incident_id"]);
}

#[tokio::test]
async fn alertmanager_webhook_receiver_answers_one_result_per_alert() {
    let app = TestApp::spawn().await;
    let (desk, token, customer, ci) = setup(&app).await;
    let post = |name: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let response = app
                .post("/api/v1/integrations/alertmanager", &token, fixture(name))
                .await;
            expect_json(response, StatusCode::ACCEPTED).await
        }
    };
    let firing = post("webhook-firing").await;
    assert_eq!(firing["status"], "success");
    let result = &firing["results"][0];
    assert_eq!(result["dedup_key"], "alertmanager:a58e18e568f449a4");
    assert_eq!(result["result"], "created");
    let path = format!("/api/v1/incidents/{}", result["incident_id"]);
    let incident = app.get(&path, &desk).ok().await;
    assert_eq!(incident["title"], "Disk almost full on his-db-01");
    assert_eq!(incident["source_system"], "his-db-01:9100");
    assert_eq!(incident["customer_id"], customer);
    assert_eq!(incident["ci_id"], ci);
    assert_eq!(incident["level"], "medium");

    assert_eq!(
        post("webhook-repeated").await["results"][0]["result"],
        "deduplicated"
    );
    let resolved = post("webhook-resolved").await;
    assert_eq!(resolved["results"][0]["result"], "resolved");
    assert_eq!(resolved["results"][0]["incident_id"], result["incident_id"]);
    assert_eq!(resolved["results"].as_array().unwrap().len(), 1);

    let metrics = app.metrics().await;
    for result in ["created", "deduplicated", "resolved"] {
        let line = format!(
            r#"incident_desk_monitoring_events_total{{result="{result}",source="alertmanager"}} 1"#
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn grafana_alerting_webhooks_are_read_too() {
    let app = TestApp::spawn().await;
    let (desk, token, _, _) = setup(&app).await;
    // The shape Grafana's alerting documents for its webhook contact point: Alertmanager's
    // fields plus its own, with labels that name neither instance nor job.
    let body = json!({
        "receiver": "incident-desk", "status": "firing", "orgId": 1,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighLatency", "grafana_folder": "HIS", "severity": "critical"},
            "annotations": {},
            "startsAt": "2025-01-06T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://grafana/alerting/grafana/abc/view",
            "fingerprint": "57c6d9296de2ad39",
            "silenceURL": "http://grafana/alerting/silence/new",
            "dashboardURL": "", "panelURL": "", "values": {"B": 1.2}, "valueString": "[ var='B' value=1.2 ]"
        }],
        "groupLabels": {"alertname": "HighLatency"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://grafana/", "version": "1", "groupKey": "{}:{alertname=\"HighLatency\"}",
        "truncatedAlerts": 0, "title": "[FIRING:1] HighLatency", "state": "alerting", "message": "…"
    });
    let answer = app
        .post("/api/v1/integrations/alertmanager", &token, body)
        .await;
    let answer = expect_json(answer, StatusCode::ACCEPTED).await;
    let result = &answer["results"][0];
    assert_eq!(result["result"], "created");
    let incident = app
        .get(
            &format!("/api/v1/incidents/{}", result["incident_id"]),
            &desk,
        )
        .ok()
        .await;
    assert_eq!(incident["title"], "HighLatency");
    assert_eq!(incident["level"], "high");
}

#[tokio::test]
async fn the_alertmanager_endpoint_takes_a_bearer_header_only() {
    let app = TestApp::spawn().await;
    let (desk, token, customer, _) = setup(&app).await;
    app.send(
        Method::POST,
        "/api/v1/integrations/alertmanager",
        None,
        Some(fixture("webhook-firing")),
    )
    .refused("unauthorized")
    .await;
    let admin = app.admin_token().await;
    let (_, portal) = app
        .create_user(&admin, "portal", &["customer"], Some(customer))
        .await;
    app.post(
        "/api/v1/integrations/alertmanager",
        &portal,
        fixture("webhook-firing"),
    )
    .refused("forbidden")
    .await;
    let problem = app
        .post(
            "/api/v1/integrations/alertmanager",
            &token,
            json!({"alerts": [{"status": "pending"}]}),
        )
        .refused("invalid_event")
        .await;
    assert_eq!(
        error_fields(&problem),
        [
            "alerts[0].fingerprint",
            "alerts[0].status",
            "alerts[0].labels.alertname"
        ]
    );
    // Nothing was half-done: no incident exists.
    let listed = app.get("/api/v1/incidents", &desk).ok().await;
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn alerts_of_one_key_in_one_body_are_decided_in_order() {
    let app = TestApp::spawn().await;
    let (desk, token, _, _) = setup(&app).await;
    let firing = fixture("webhook-firing")["alerts"][0].clone();
    let mut resolved = firing.clone();
    resolved["status"] = json!("resolved");
    let body = json!({
        "version": "4", "status": "firing",
        "alerts": [firing.clone(), firing.clone(), resolved, firing]
    });
    let answer = app
        .post("/api/v1/integrations/alertmanager", &token, body)
        .await;
    let answer = expect_json(answer, StatusCode::ACCEPTED).await;
    let results: Vec<&Value> = pluck(&answer["results"], "result");
    assert_eq!(
        results,
        [
            &json!("created"),
            &json!("deduplicated"),
            &json!("resolved"),
            &json!("created")
        ]
    );
    let first = &answer["results"][0]["incident_id"];
    assert_eq!(answer["results"][2]["incident_id"], *first);
    assert_ne!(answer["results"][3]["incident_id"], *first);

    let incident = app
        .get(&format!("/api/v1/incidents/{first}"), &desk)
        .ok()
        .await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["occurrences"], 2);
    let history = app
        .get(&format!("/api/v1/incidents/{first}/history"), &desk)
        .ok()
        .await;
    assert_eq!(
        pluck(&history, "action"),
        [
            &json!("created"),
            &json!("event_triggered"),
            &json!("auto-resolve")
        ]
    );
}

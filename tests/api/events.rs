//! Monitoring events (SPEC §8): PagerDuty Events API v2 at `/events`, every result, both ways
//! to authenticate, unreadable events, and deduplication under concurrent senders.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use incident_desk::domain::clock::Clock;

use crate::helpers::*;

impl TestApp {
    /// Posts an event with an optional bearer token.
    async fn event(&self, token: Option<&str>, body: Value) -> Response {
        self.send(Method::POST, "/api/v1/events", token, Some(body))
            .await
    }

    /// Posts an event with the token and expects 202.
    async fn accepted(&self, token: &str, body: Value) -> Value {
        let response = self.event(Some(token), body).await;
        expect_json(response, StatusCode::ACCEPTED).await
    }
}

fn trigger(key: &str) -> Value {
    json!({
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": "Disk almost full on his-db-01",
            "source": "his-db-01",
            "severity": "warning",
            "component": "his-db-01",
            "custom_details": {"customer": "QD-01", "free": "4%"}
        },
        "client": "Prometheus",
        "links": [{"href": "http://prometheus:9090/alerts", "text": "alerts"}]
    })
}

fn action(action: &str, key: &str) -> Value {
    json!({"event_action": action, "dedup_key": key})
}

#[tokio::test]
async fn a_trigger_opens_a_monitoring_incident_and_repeats_count_as_occurrences() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let first = app.accepted(&m.token, trigger("disk/his-db-01")).await;
    assert_eq!(first["status"], "success");
    assert_eq!(first["result"], "created");
    assert_eq!(first["dedup_key"], "disk/his-db-01");
    let id = first["incident_id"].as_i64().unwrap();

    let incident = app
        .get(&format!("/api/v1/incidents/{id}"), &m.desk)
        .ok()
        .await;
    assert_eq!(incident["channel"], "monitoring");
    assert_eq!(incident["kind"], "fault");
    assert_eq!(incident["reporter"], Value::Null);
    assert_eq!(incident["level"], "medium");
    assert_eq!(incident["customer_id"], m.customer);
    assert_eq!(incident["ci_id"], m.ci["id"]);
    assert_eq!(incident["source_system"], "his-db-01");
    assert_eq!(incident["title"], "Disk almost full on his-db-01");
    assert!(
        incident["description"]
            .as_str()
            .unwrap()
            .contains("\"free\": \"4%\"")
    );
    assert_eq!(incident["occurrences"], 1);
    assert_eq!(incident["dedup_key"], "disk/his-db-01");
    assert_eq!(
        time(&incident["due_at"]) - time(&incident["created_at"]),
        chrono::Duration::hours(4)
    );

    let again = app.accepted(&m.token, trigger("disk/his-db-01")).await;
    assert_eq!(again["result"], "deduplicated");
    assert_eq!(again["incident_id"], id);
    let incident = app
        .get(&format!("/api/v1/incidents/{id}"), &m.desk)
        .ok()
        .await;
    assert_eq!(incident["occurrences"], 2);
    assert!(incident["last_occurrence_at"].is_string());

    // The journal names the token's user as the author.
    let history = app
        .get(&format!("/api/v1/incidents/{id}/history"), &m.desk)
        .ok()
        .await;
    let actions = pluck(&history, "action");
    assert_eq!(actions, [&json!("created"), &json!("event_triggered")]);
    let me = app.get("/api/v1/users/me", &m.token).ok().await;
    assert_eq!(history[0]["actor_id"], me["id"]);
}

#[tokio::test]
async fn acknowledge_notes_and_resolve_resolves_a_new_incident_which_the_desk_closes() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let id = app.accepted(&m.token, trigger("k1")).await["incident_id"].clone();

    let acknowledged = app.accepted(&m.token, action("acknowledge", "k1")).await;
    assert_eq!(acknowledged["result"], "noted");
    assert_eq!(acknowledged["incident_id"], id);
    let resolved = app.accepted(&m.token, action("resolve", "k1")).await;
    assert_eq!(resolved["result"], "resolved");

    let path = format!("/api/v1/incidents/{id}");
    let incident = app.get(&path, &m.desk).ok().await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["solution"], "monitoring reported recovery");
    assert_eq!(incident["cause"], "unknown");
    assert_eq!(incident["subcause"], "unclear_direct_fix");
    let history = app.get(&format!("{path}/history"), &m.desk).ok().await;
    assert_eq!(
        pluck(&history, "action"),
        [
            &json!("created"),
            &json!("event_acknowledged"),
            &json!("auto-resolve")
        ]
    );

    // Not user-reported: the desk closes it without a confirmation.
    let closed = app
        .act_ok(&m.desk, &id, "close", json!({"closure_code": "resolved"}))
        .await;
    assert_eq!(closed["status"], "closed");

    // Once resolved or closed, the key opens a new incident, and a late resolve is ignored.
    let late = app.accepted(&m.token, action("resolve", "k1")).await;
    assert_eq!(late["result"], "ignored");
    assert_eq!(late["incident_id"], Value::Null);
    let reopened = app.accepted(&m.token, trigger("k1")).await;
    assert_eq!(reopened["result"], "created");
    assert_ne!(reopened["incident_id"], id);
}

#[tokio::test]
async fn a_resolve_while_someone_works_the_incident_is_only_noted() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let id = app.accepted(&m.token, trigger("k2")).await["incident_id"].clone();
    app.act_ok(&m.desk, &id, "accept", json!({})).await;
    let resolved = app.accepted(&m.token, action("resolve", "k2")).await;
    assert_eq!(resolved["result"], "noted");
    let incident = app
        .get(&format!("/api/v1/incidents/{id}"), &m.desk)
        .ok()
        .await;
    assert_eq!(incident["status"], "in_progress");
    let ignored = app
        .accepted(&m.token, action("acknowledge", "nothing"))
        .await;
    assert_eq!(ignored["result"], "ignored");
}

#[tokio::test]
async fn events_without_a_key_get_one_from_source_and_summary() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let mut body = trigger("unused");
    body.as_object_mut().unwrap().remove("dedup_key");
    let first = app.accepted(&m.token, body.clone()).await;
    let key = first["dedup_key"].as_str().unwrap().to_owned();
    assert!(!key.is_empty());
    let second = app.accepted(&m.token, body).await;
    assert_eq!(second["result"], "deduplicated");
    assert_eq!(second["dedup_key"], key.as_str());
    let resolved = app.accepted(&m.token, action("resolve", &key)).await;
    assert_eq!(resolved["result"], "resolved");
}

#[tokio::test]
async fn incidents_of_no_known_customer_are_staff_only_until_the_desk_sets_it() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let mut body = trigger("k3");
    body["payload"]["custom_details"] = json!({"customer": "NOBODY"});
    let id = app.accepted(&m.token, body).await["incident_id"].clone();
    let path = format!("/api/v1/incidents/{id}");
    let incident = app.get(&path, &m.desk).ok().await;
    assert_eq!(incident["customer_id"], Value::Null);
    assert_eq!(incident["ci_id"], Value::Null, "a CI needs its customer");

    let (_, portal) = app
        .create_user(&m.admin, "portal", &["customer"], Some(m.customer))
        .await;
    app.get(&path, &portal).refused("not_found").await;
    let listed = app.get("/api/v1/incidents", &portal).ok().await;
    assert_eq!(listed["items"], json!([]));

    let edited = app
        .patch(
            &path,
            &m.desk,
            json!({"customer_id": m.customer, "ci_id": m.ci["id"]}),
        )
        .ok()
        .await;
    assert_eq!(edited["customer_id"], m.customer);
    assert_eq!(edited["ci_id"], m.ci["id"]);
    app.get(&path, &portal).ok().await;
    let other = app.create_customer(&m.admin, "OTHER").await;
    let problem = app
        .patch(&path, &m.desk, json!({"customer_id": other}))
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["customer_id"]);
}

#[tokio::test]
async fn the_header_decides_and_routing_key_stands_in_without_it() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    // No header: the routing key is the credential.
    let mut body = trigger("k4");
    body["routing_key"] = json!(m.token);
    let created = expect_json(app.event(None, body.clone()).await, StatusCode::ACCEPTED).await;
    assert_eq!(created["result"], "created");
    // A staff access token in the header is accepted too.
    let by_desk = app.accepted(&m.desk, trigger("k4")).await;
    assert_eq!(by_desk["result"], "deduplicated");

    // With a header, the header alone decides, whatever the routing key.
    app.event(Some("idt_not-a-token"), body.clone())
        .refused("unauthorized")
        .await;
    let (_, portal) = app
        .create_user(&m.admin, "portal", &["customer"], Some(m.customer))
        .await;
    app.event(Some(&portal), body.clone())
        .refused("forbidden")
        .await;
    // Without it, the routing key must be a live integration token.
    for key in [json!("R0UTINGKEY1234567890"), json!(null), json!(m.desk)] {
        let mut body = trigger("k4");
        body["routing_key"] = key;
        app.event(None, body).refused("unauthorized").await;
    }
    let (_, staff_token) = app
        .create_api_token(&m.admin, "desk-script", &["service_desk"])
        .await;
    let mut body = trigger("k4");
    body["routing_key"] = json!(staff_token);
    app.event(None, body.clone()).refused("unauthorized").await;

    let (revoked_id, revoked) = app
        .create_api_token(&m.admin, "old-zabbix", &["integration"])
        .await;
    app.send(
        Method::DELETE,
        &format!("/api/v1/api-tokens/{revoked_id}"),
        Some(&m.admin),
        None,
    )
    .await;
    body["routing_key"] = json!(revoked);
    app.event(None, body.clone()).refused("unauthorized").await;
    app.event(Some(&revoked), trigger("k4"))
        .refused("unauthorized")
        .await;

    // An expired token, in the header or as routing key.
    let expires_at = app.clock.now() + chrono::Duration::minutes(5);
    let expiring = app
        .post(
            "/api/v1/api-tokens",
            &m.admin,
            json!({"name": "expiring", "roles": ["integration"], "expires_at": expires_at}),
        )
        .created()
        .await["token"]
        .clone();
    body["routing_key"] = expiring.clone();
    expect_json(app.event(None, body.clone()).await, StatusCode::ACCEPTED).await;
    app.clock.set(expires_at);
    app.event(None, body).refused("unauthorized").await;
    app.event(Some(expiring.as_str().unwrap()), trigger("k4"))
        .refused("unauthorized")
        .await;
}

#[tokio::test]
async fn unreadable_events_are_400_invalid_event_with_fields() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let cases = [
        (
            json!({"event_action": "explode", "dedup_key": "k"}),
            vec!["event_action"],
        ),
        (
            json!({"event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "fatal"}}),
            vec!["payload.severity"],
        ),
        (
            json!({"event_action": "trigger", "payload": {"source": "h", "severity": "info"}}),
            vec!["payload.summary"],
        ),
        (
            json!({"event_action": "trigger", "payload": {"summary": 5, "source": ["h"], "severity": "info"}}),
            vec!["payload.summary", "payload.source"],
        ),
        (json!({"event_action": "trigger"}), vec!["payload"]),
        (json!({"event_action": "resolve"}), vec!["dedup_key"]),
        (json!(["trigger"]), vec!["."]),
    ];
    for (body, fields) in cases {
        let problem = app
            .event(Some(&m.token), body.clone())
            .refused("invalid_event")
            .await;
        assert_eq!(error_fields(&problem), fields, "{body}");
    }
    let broken = app
        .send_raw(
            Method::POST,
            "/api/v1/events",
            Some(&m.token),
            "{\"event_action\": ",
        )
        .refused("invalid_event")
        .await;
    assert_eq!(error_fields(&broken), ["."]);
    // Without a header, the body is read before the routing key is checked.
    app.send_raw(Method::POST, "/api/v1/events", None, "not json")
        .refused("invalid_event")
        .await;
    let mut huge = trigger("k5");
    huge["payload"]["custom_details"] = json!({"blob": "x".repeat(1_100_000)});
    app.event(Some(&m.token), huge)
        .refused("payload_too_large")
        .await;

    // The oversized body never reaches the event reader: it counts as an HTTP 413 only.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"incident_desk_monitoring_events_total{result="invalid",source="events"} 9"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn fifty_concurrent_triggers_on_two_instances_make_one_incident() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.database.clone(), &[]).await;
    let m = first.monitoring().await;
    let sends = (0..50).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let token = m.token.clone();
        async move {
            let response = app.event(Some(&token), trigger("storm")).await;
            expect_json(response, StatusCode::ACCEPTED).await
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    let created = answers.iter().filter(|a| a["result"] == "created").count();
    let deduplicated = answers
        .iter()
        .filter(|a| a["result"] == "deduplicated")
        .count();
    assert_eq!((created, deduplicated), (1, 49));
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|a| a["incident_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1);
    let listed = first.get("/api/v1/incidents?q=Disk", &m.desk).ok().await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["occurrences"], 50);
}

#[tokio::test]
async fn the_schema_admits_one_open_incident_per_key() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let id = app.accepted(&m.token, trigger("unique")).await["incident_id"].clone();
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url(&app.database)).unwrap();
    let copy = format!(
        "INSERT INTO incidents (kind, channel, title, level, status, due_at, created_by, created_at, updated_at, dedup_key) \
         SELECT kind, channel, title, level, 'new', due_at, created_by, created_at, updated_at, dedup_key \
         FROM incidents WHERE id = {id}"
    );
    let refused = diesel::connection::SimpleConnection::batch_execute(&mut conn, &copy);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("incidents_open_dedup_key_idx")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn events_sent_together_are_answered_each_on_its_own() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let (_, portal) = app
        .create_user(&m.admin, "portal", &["customer"], Some(m.customer))
        .await;
    // Sent at once, these share the intake's batches: refusals stay with their senders.
    let sends = (0..30).map(|i| {
        let (token, body) = match i % 3 {
            0 => (m.token.clone(), trigger(&format!("together-{}", i % 5))),
            1 => (portal.clone(), trigger("together-refused")),
            _ => (
                m.desk.clone(),
                action("acknowledge", &format!("together-{}", i % 5)),
            ),
        };
        let app = &app;
        async move { (i % 3, app.event(Some(&token), body).await.status()) }
    });
    for (kind, status) in futures_util::future::join_all(sends).await {
        let expected = match kind {
            1 => StatusCode::FORBIDDEN,
            _ => StatusCode::ACCEPTED,
        };
        assert_eq!(status, expected, "sender kind {kind}");
    }
    let listed = app.get("/api/v1/incidents?q=Disk", &m.desk).ok().await;
    let occurrences: i64 = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["occurrences"].as_i64().unwrap())
        .sum();
    assert_eq!(occurrences, 10, "every accepted trigger counted once");
}

//! Webhooks: subscriptions, signed deliveries from the outbox, retries, the delivery log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

const SECRET: &str = "a-shared-secret-of-some-length";

/// The receivers of these tests listen on loopback, which webhook targets may reach only when
/// the operator allows it.
const LOCAL_RECEIVERS: (&str, &str) = ("WEBHOOK_ALLOW_PRIVATE", "true");

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    event: String,
    delivery: String,
    body: String,
}

#[derive(Clone)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    failures_left: Arc<AtomicUsize>,
}

/// A local HTTP receiver that records requests and fails the first `fail_first` of them.
struct Receiver {
    url: String,
    state: ReceiverState,
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let state = ReceiverState {
            received: Arc::new(Mutex::new(Vec::new())),
            failures_left: Arc::new(AtomicUsize::new(fail_first)),
        };
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .default_service(web::to(receive))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let seen = self.received();
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {count} requests, got {:?}", self.received());
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    state.received.lock().unwrap().push(Received {
        signature: header("x-incident-desk-signature"),
        event: header("x-incident-desk-event"),
        delivery: header("x-incident-desk-delivery"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    let fail = state
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        HttpResponse::ServiceUnavailable().finish()
    } else {
        HttpResponse::NoContent().finish()
    }
}

/// Checks the signature the way a receiver would.
fn verify(received: &Received, secret: &str) -> bool {
    let mut parts = received.signature.split(',');
    let t = parts
        .next()
        .and_then(|p| p.strip_prefix("t="))
        .unwrap_or_default();
    let v1 = parts
        .next()
        .and_then(|p| p.strip_prefix("v1="))
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap_or(0);
    mac.verify_slice(&hex::decode(v1).unwrap_or_default())
        .is_ok()
        && age.abs() < 300
}

async fn subscribe(app: &TestApp, admin: &str, url: &str, events: Value) -> Value {
    app.post(
        "/api/v1/webhooks",
        admin,
        json!({"url": url, "events": events, "secret": SECRET}),
    )
    .created()
    .await
}

async fn deliveries(app: &TestApp, admin: &str, webhook: &Value) -> Vec<Value> {
    let page = app
        .get(
            &format!("/api/v1/webhooks/{}/deliveries", webhook["id"]),
            admin,
        )
        .ok()
        .await;
    page["items"].as_array().unwrap().clone()
}

async fn wait_until_settled(
    app: &TestApp,
    admin: &str,
    webhook: &Value,
    count: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = deliveries(app, admin, webhook).await;
        if list.len() >= count && list.iter().all(|d| d["status"] != "pending") {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not settle: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admins_manage_webhooks_and_secrets_are_never_shown() {
    let app = TestApp::spawn_with(&[LOCAL_RECEIVERS]).await;
    let admin = app.admin_token().await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let hook = subscribe(
        &app,
        &admin,
        "https://hooks.example.com/x",
        json!(["sla.breached", "incident.resolved", "sla.breached"]),
    )
    .await;
    assert_eq!(hook["events"], json!(["incident.resolved", "sla.breached"]));
    assert!(hook.get("secret").is_none());
    assert_eq!(hook["active"], true);
    let path = format!("/api/v1/webhooks/{}", hook["id"]);
    let fetched = app.get(&path, &admin).ok().await;
    assert!(!fetched.to_string().contains(SECRET));
    let paused = app
        .patch(&path, &admin, json!({"active": false}))
        .ok()
        .await;
    assert_eq!(paused["active"], false);
    let listed = app.get("/api/v1/webhooks", &admin).ok().await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    for (body, field) in [
        (
            json!({"url": "ftp://x", "events": ["incident.created"], "secret": SECRET}),
            "url",
        ),
        (
            json!({"url": "https://x.example", "events": ["incident.exploded"], "secret": SECRET}),
            "events",
        ),
        (
            json!({"url": "https://x.example", "events": [], "secret": SECRET}),
            "events",
        ),
        (
            json!({"url": "https://x.example", "events": ["incident.created"], "secret": "short"}),
            "secret",
        ),
    ] {
        let problem = app
            .post("/api/v1/webhooks", &admin, body)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field]);
    }
    app.get("/api/v1/webhooks", &desk)
        .refused("forbidden")
        .await;
    let deleted = app.send(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    app.get(&path, &admin).refused("not_found").await;
    app.send(Method::DELETE, &path, Some(&admin), None)
        .refused("not_found")
        .await;
}

#[tokio::test]
async fn events_are_delivered_signed_for_the_subscribed_types_only() {
    let app = TestApp::spawn_with(&[LOCAL_RECEIVERS, ("WEBHOOK_POLL_INTERVAL", "50ms")]).await;
    let receiver = Receiver::start(0).await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let hook = subscribe(
        &app,
        &admin,
        &receiver.url,
        json!(["incident.created", "incident.resolved", "incident.closed"]),
    )
    .await;
    let other = subscribe(&app, &admin, &receiver.url, json!(["sla.breached"])).await;

    let incident = app
        .post(
            "/api/v1/incidents",
            &desk,
            json!({"title": "t", "channel": "other", "customer_id": customer, "subcategory": "usage_howto"}),
        )
        .created()
        .await;
    let id = &incident["id"];
    let mut answered = Value::Null;
    for (action, body) in [
        ("accept", json!({})),
        (
            "resolve",
            json!({"solution": "s", "cause": "system_defect", "subcause": "module_unusable"}),
        ),
        ("close", json!({"closure_code": "resolved"})),
    ] {
        answered = app
            .post(&format!("/api/v1/incidents/{id}/{action}"), &desk, body)
            .ok()
            .await;
    }
    let seen = receiver.wait_for(3).await;
    let types: Vec<&str> = seen.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        types,
        ["incident.created", "incident.resolved", "incident.closed"]
    );
    for request in &seen {
        assert!(verify(request, SECRET), "bad signature on {request:?}");
        assert!(!verify(request, "another-secret-of-some-length"));
        let body: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body["type"], request.event);
        assert!(body["id"].is_i64() && body["occurred_at"].is_string());
        assert_eq!(body["data"]["incident"]["id"], *id);
    }
    let closed: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(closed["data"]["incident"]["status"], "closed");
    // Subscribers get the incident object the API answers, less the caller's allowed_actions.
    let mut expected = answered.clone();
    expected.as_object_mut().unwrap().remove("allowed_actions");
    assert_eq!(closed["data"]["incident"], expected);
    // ... and GET /incidents/{id} answers the same object: one shape, written once.
    let mut fetched = app
        .get(&format!("/api/v1/incidents/{id}"), &desk)
        .ok()
        .await;
    assert!(fetched["allowed_actions"].is_array());
    fetched.as_object_mut().unwrap().remove("allowed_actions");
    assert_eq!(closed["data"]["incident"], fetched);

    let log = wait_until_settled(&app, &admin, &hook, 3).await;
    assert!(
        log.iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1)
    );
    assert_eq!(log[0]["attempt_log"][0]["status_code"], 204);
    assert_eq!(log[0]["event_type"], "incident.closed", "newest first");
    assert!(deliveries(&app, &admin, &other).await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3, "each delivery is sent once");
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_back_off_and_logged() {
    let app = TestApp::spawn_with(&[
        LOCAL_RECEIVERS,
        ("WEBHOOK_POLL_INTERVAL", "50ms"),
        ("WEBHOOK_RETRY_BASE", "100ms"),
    ])
    .await;
    let receiver = Receiver::start(2).await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let hook = subscribe(&app, &admin, &receiver.url, json!(["incident.created"])).await;
    app.post(
        "/api/v1/incidents",
        &desk,
        json!({"title": "t", "customer_id": customer}),
    )
    .await;
    let seen = receiver.wait_for(3).await;
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|r| r.delivery == seen[0].delivery),
        "one delivery, three attempts"
    );
    let log = wait_until_settled(&app, &admin, &hook, 1).await;
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 3);
    let codes = pluck(&log[0]["attempt_log"], "status_code");
    assert_eq!(codes, [&json!(503), &json!(503), &json!(204)]);
    let times: Vec<chrono::DateTime<chrono::Utc>> = log[0]["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempted_at"].as_str().unwrap().parse().unwrap())
        .collect();
    // Back-off doubles: at least 100 ms, then at least 200 ms.
    assert!(times[1] - times[0] >= chrono::Duration::milliseconds(100));
    assert!(times[2] - times[1] >= chrono::Duration::milliseconds(200));
}

#[tokio::test]
async fn deliveries_give_up_after_the_last_attempt_and_can_be_redelivered() {
    let app = TestApp::spawn_with(&[
        LOCAL_RECEIVERS,
        ("WEBHOOK_POLL_INTERVAL", "50ms"),
        ("WEBHOOK_RETRY_BASE", "50ms"),
        ("WEBHOOK_MAX_ATTEMPTS", "2"),
    ])
    .await;
    let receiver = Receiver::start(2).await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let hook = subscribe(&app, &admin, &receiver.url, json!(["incident.created"])).await;
    app.post(
        "/api/v1/incidents",
        &desk,
        json!({"title": "t", "customer_id": customer}),
    )
    .await;
    let log = wait_until_settled(&app, &admin, &hook, 1).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["last_status_code"], 503);

    let response = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/webhooks/{}/deliveries/{}/redeliver",
                hook["id"], log[0]["id"]
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(&app, &admin, &hook).await;
        if log[0]["status"] == "delivered" {
            assert_eq!(log[0]["attempt_log"].as_array().unwrap().len(), 3);
            break;
        }
        assert!(Instant::now() < deadline, "not redelivered: {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each attempt is counted by how it left the delivery: retried, given up, delivered.
    let expected = [
        r#"incident_desk_webhook_delivery_attempts_total{outcome="retrying"} 1"#,
        r#"incident_desk_webhook_delivery_attempts_total{outcome="given_up"} 1"#,
        r#"incident_desk_webhook_delivery_attempts_total{outcome="delivered"} 1"#,
    ];
    loop {
        let metrics = app
            .send(Method::GET, "/metrics", None, None)
            .await
            .text()
            .await
            .unwrap();
        if expected.iter().all(|line| metrics.contains(line)) {
            break;
        }
        // The counter follows the stored attempt by a moment.
        assert!(Instant::now() < deadline, "attempt metrics: {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.send(
        Method::POST,
        &format!(
            "/api/v1/webhooks/{}/deliveries/999999/redeliver",
            hook["id"]
        ),
        Some(&admin),
        None,
    )
    .refused("not_found")
    .await;
}

#[tokio::test]
async fn pending_deliveries_go_out_after_a_restart_and_once_with_several_instances() {
    // The first instance polls rarely: its events stay pending, as if it had stopped.
    let first = TestApp::spawn_with(&[LOCAL_RECEIVERS, ("WEBHOOK_POLL_INTERVAL", "60s")]).await;
    let receiver = Receiver::start(0).await;
    let admin = first.admin_token().await;
    let customer = first.create_customer(&admin, "C1").await;
    let (_, desk) = first
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let hook = subscribe(&first, &admin, &receiver.url, json!(["incident.created"])).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..6 {
        first
            .post(
                "/api/v1/incidents",
                &desk,
                json!({"title": format!("t{i}"), "customer_id": customer}),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
    assert!(
        deliveries(&first, &admin, &hook)
            .await
            .iter()
            .all(|d| d["status"] == "pending")
    );

    // Two more instances start on the same database and share the work.
    let second = TestApp::spawn_on(
        first.database.clone(),
        &[LOCAL_RECEIVERS, ("WEBHOOK_POLL_INTERVAL", "50ms")],
    )
    .await;
    let third = TestApp::spawn_on(
        first.database.clone(),
        &[LOCAL_RECEIVERS, ("WEBHOOK_POLL_INTERVAL", "50ms")],
    )
    .await;
    let seen = receiver.wait_for(6).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let seen_after = receiver.received();
    assert_eq!(
        seen_after.len(),
        6,
        "each delivery sent exactly once: {seen_after:?}"
    );
    let mut ids: Vec<&str> = seen.iter().map(|r| r.delivery.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    drop(third);
    drop(second);
}

#[tokio::test]
async fn escalations_and_sla_events_reach_subscribers_and_metrics() {
    let app = TestApp::spawn_with(&[
        LOCAL_RECEIVERS,
        ("WEBHOOK_POLL_INTERVAL", "50ms"),
        ("SLA_SCAN_INTERVAL_SECS", "100ms"),
    ])
    .await;
    let receiver = Receiver::start(0).await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    subscribe(
        &app,
        &admin,
        &receiver.url,
        json!(["escalation.created", "sla.warning", "sla.breached"]),
    )
    .await;
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-06T00:00:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(start);
    let incident = app
        .post(
            "/api/v1/incidents",
            &desk,
            json!({"title": "t", "customer_id": customer, "level": "high"}),
        )
        .created()
        .await;
    app.post(
        &format!("/api/v1/incidents/{}/escalations", incident["id"]),
        &desk,
        json!({"kind": "hierarchical", "reason": "r"}),
    )
    .created()
    .await;
    app.clock.set(start + chrono::Duration::hours(3));
    let seen = receiver.wait_for(5).await;
    let mut types: Vec<&str> = seen.iter().map(|r| r.event.as_str()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "escalation.created",
            "escalation.created",
            "escalation.created",
            "sla.breached",
            "sla.warning"
        ]
    );
    let breach: Value = serde_json::from_str(
        &seen
            .iter()
            .find(|r| r.event == "sla.breached")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(breach["data"]["escalation"]["trigger"], "sla_breach");
    assert_eq!(breach["data"]["incident"]["id"], incident["id"]);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = app
        .send(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    for line in [
        r#"incident_desk_open_incidents{level="high",tier="l1"} 1"#,
        r#"incident_desk_escalations{kind="hierarchical",trigger="none"} 1"#,
        r#"incident_desk_escalations{kind="hierarchical",trigger="sla_breach"} 1"#,
        r#"incident_desk_webhook_deliveries{status="delivered"} 5"#,
        r#"incident_desk_webhook_delivery_attempts_total{outcome="delivered"} 5"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_webhook_limited_to_one_customer_hears_only_its_events() {
    let app = TestApp::spawn_with(&[LOCAL_RECEIVERS]).await;
    let admin = app.admin_token().await;
    let first = app.create_customer(&admin, "C1").await;
    let second = app.create_customer(&admin, "C2").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let url = "http://127.0.0.1:9/hooks";
    let everyone = subscribe(&app, &admin, url, json!(["incident.created"])).await;
    assert_eq!(everyone["customer_id"], Value::Null);
    let only_first = app
        .post(
            "/api/v1/webhooks",
            &admin,
            json!({"url": url, "events": ["incident.created"], "secret": SECRET, "customer_id": first}),
        )
        .created()
        .await;
    assert_eq!(only_first["customer_id"], first);
    let report = |customer: i64| json!({"title": "t", "customer_id": customer});
    app.create_incident(&desk, report(first)).await;
    app.create_incident(&desk, report(second)).await;
    let heard = |deliveries: Vec<Value>| -> Vec<i64> {
        deliveries
            .iter()
            .map(|d| d["event_id"].as_i64().unwrap())
            .collect()
    };
    let mut all = heard(deliveries(&app, &admin, &everyone).await);
    all.sort();
    assert_eq!(all.len(), 2);
    assert_eq!(
        heard(deliveries(&app, &admin, &only_first).await),
        [all[0]],
        "only the first customer's incident"
    );

    // The limit names an existing customer, and `null` lifts it.
    let path = format!("/api/v1/webhooks/{}", only_first["id"]);
    let problem = app
        .patch(&path, &admin, json!({"customer_id": 999_999}))
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["customer_id"]);
    let lifted = app
        .patch(&path, &admin, json!({"customer_id": null}))
        .ok()
        .await;
    assert_eq!(lifted["customer_id"], Value::Null);
    app.create_incident(&desk, report(second)).await;
    assert_eq!(deliveries(&app, &admin, &only_first).await.len(), 2);
}

#[tokio::test]
async fn the_peoples_steps_reach_subscribers_as_their_own_events() {
    let app = TestApp::spawn_with(&[LOCAL_RECEIVERS, ("WEBHOOK_POLL_INTERVAL", "50ms")]).await;
    let receiver = Receiver::start(0).await;
    let c = app.cast().await;
    let admin = app.admin_token().await;
    subscribe(
        &app,
        &admin,
        &receiver.url,
        json!([
            "incident.accepted",
            "incident.updated",
            "note.created",
            "incident.confirmed",
            "incident.resolution_rejected",
            "incident.withdrawn"
        ]),
    )
    .await;
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": "打印机卡纸", "subcategory": "module_input_blocked"}),
        )
        .await;
    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    app.patch(
        &format!("/api/v1/incidents/{id}"),
        &c.desk,
        json!({"title": "门诊打印机卡纸"}),
    )
    .ok()
    .await;
    app.post(
        &format!("/api/v1/incidents/{id}/notes"),
        &c.desk,
        json!({"body": "已派人到现场", "visibility": "public"}),
    )
    .created()
    .await;
    app.act_ok(&c.desk, id, "resolve", resolution()).await;
    app.act_ok(
        &c.portal,
        id,
        "reject-resolution",
        json!({"reason": "还是卡纸"}),
    )
    .await;
    app.act_ok(&c.desk, id, "resolve", resolution()).await;
    app.act_ok(&c.portal, id, "confirm", json!({})).await;

    let seen = receiver.wait_for(5).await;
    let types: Vec<&str> = seen.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        types,
        [
            "incident.accepted",
            "incident.updated",
            "note.created",
            "incident.resolution_rejected",
            "incident.confirmed"
        ]
    );
    let note: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(note["data"]["note"]["body"], "已派人到现场");
    assert_eq!(note["data"]["incident"]["id"], *id);
    let updated: Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(updated["data"]["incident"]["title"], "门诊打印机卡纸");
}

#[tokio::test]
async fn follow_ups_and_published_knowledge_reach_subscribers_in_the_api_shape() {
    let app = TestApp::spawn_with(&[LOCAL_RECEIVERS, ("WEBHOOK_POLL_INTERVAL", "50ms")]).await;
    let receiver = Receiver::start(0).await;
    let c = app.cast().await;
    let admin = app.admin_token().await;
    subscribe(
        &app,
        &admin,
        &receiver.url,
        json!(["follow_up.created", "knowledge.published"]),
    )
    .await;
    let incident = app.resolved_incident(&c).await;
    let id = &incident["id"];
    app.act_ok(&c.portal, id, "confirm", json!({})).await;
    app.act_ok(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .await;
    let path = format!("/api/v1/incidents/{id}/follow-ups");
    app.post(
        &path,
        &c.desk,
        json!({"channel": "phone", "reached": true, "satisfaction": 5, "comment": "用户满意"}),
    )
    .created()
    .await;
    let draft = app
        .post(
            "/api/v1/knowledge",
            &c.desk,
            json!({"title": "打印机卡纸", "symptom": "卡纸", "solution": "清理搓纸轮",
                   "subcategory": "upgrade_error"}),
        )
        .created()
        .await;
    for (token, action) in [(&c.desk, "submit"), (&c.l2, "approve")] {
        app.post(
            &format!("/api/v1/knowledge/{}/{action}", draft["id"]),
            token,
            json!({}),
        )
        .ok()
        .await;
    }

    let seen = receiver.wait_for(2).await;
    let types: Vec<&str> = seen.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(types, ["follow_up.created", "knowledge.published"]);
    let follow_up: Value = serde_json::from_str(&seen[0].body).unwrap();
    let listed = app.get(&path, &c.desk).ok().await;
    assert_eq!(follow_up["data"]["follow_up"], listed[0]);
    let published: Value = serde_json::from_str(&seen[1].body).unwrap();
    let entry = app
        .get(&format!("/api/v1/knowledge/{}", draft["id"]), &c.desk)
        .ok()
        .await;
    assert_eq!(published["data"]["knowledge_entry"], entry);
    assert_eq!(entry["status"], "published");
}

//! `Idempotency-Key` (SPEC §10): the first answer to a creating POST is replayed for 24 hours
//! to the same caller, method and path; another body is refused; concurrent retries never both
//! execute.

use chrono::Duration;
use incident_desk::domain::clock::Clock;
use incident_desk::store::StoreError;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

impl TestApp {
    async fn post_once(&self, path: &str, token: &str, key: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&if path == "/api/v1/incidents" {
                with_default_reporter(token, body)
            } else {
                body
            })
            .send()
            .await
            .expect("request sent")
    }

    async fn incident_count(&self, token: &str) -> usize {
        let listed = self.get("/api/v1/incidents?limit=200", token).ok().await;
        listed["items"].as_array().unwrap().len()
    }
}

fn report(c: &Cast, title: &str) -> Value {
    json!({"title": title, "customer_id": c.customer})
}

#[tokio::test]
async fn a_retry_replays_status_body_etag_and_location_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let first = app
        .post_once(
            "/api/v1/incidents",
            &c.desk,
            "order-1",
            report(&c, "打印机卡纸"),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (etag, location) = (
        first.headers()["etag"].clone(),
        first.headers()["location"].clone(),
    );
    let body = first.text().await.unwrap();

    let again = app
        .post_once(
            "/api/v1/incidents",
            &c.desk,
            "order-1",
            report(&c, "打印机卡纸"),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["etag"], etag);
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.text().await.unwrap(), body);
    assert_eq!(app.incident_count(&c.desk).await, 1);

    // Another body under the same key is refused; another key is another request.
    app.post_once(
        "/api/v1/incidents",
        &c.desk,
        "order-1",
        report(&c, "另一个故障"),
    )
    .refused("idempotency_key_reused")
    .await;
    app.post_once(
        "/api/v1/incidents",
        &c.desk,
        "order-2",
        report(&c, "打印机卡纸"),
    )
    .created()
    .await;
    assert_eq!(app.incident_count(&c.desk).await, 2);
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller_and_the_path() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let a = app.create_incident(&c.desk, report(&c, "a")).await;
    let b = app.create_incident(&c.desk, report(&c, "b")).await;
    let note = json!({"body": "已电话联系", "visibility": "public"});
    for incident in [&a, &b] {
        let path = format!("/api/v1/incidents/{}/notes", incident["id"]);
        app.post_once(&path, &c.desk, "note-1", note.clone())
            .created()
            .await;
    }
    // The same key from another caller is that caller's own.
    let by_manager = app
        .post_once("/api/v1/incidents", &c.manager, "order-1", report(&c, "x"))
        .created()
        .await;
    let by_desk = app
        .post_once("/api/v1/incidents", &c.desk, "order-1", report(&c, "x"))
        .created()
        .await;
    assert_ne!(by_manager["id"], by_desk["id"]);
    let notes = app
        .get(&format!("/api/v1/incidents/{}/notes", a["id"]), &c.desk)
        .ok()
        .await;
    assert_eq!(
        notes["items"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_else(|| notes.as_array().unwrap().len()),
        1
    );
}

#[tokio::test]
async fn concurrent_retries_never_both_execute() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let sends =
        (0..10).map(|_| app.post_once("/api/v1/incidents", &c.desk, "burst", report(&c, "并发")));
    let answers = futures_util::future::join_all(sends).await;
    let mut ids = std::collections::HashSet::new();
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::CREATED);
        let body: Value = answer.json().await.unwrap();
        ids.insert(body["id"].to_string());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.incident_count(&c.desk).await, 1);
}

#[tokio::test]
async fn answers_are_kept_for_24_hours_then_the_key_is_free() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let first = app
        .post_once("/api/v1/incidents", &c.desk, "daily", report(&c, "t"))
        .created()
        .await;
    app.clock.set(app.clock.now() + Duration::hours(23));
    let replayed = app
        .post_once("/api/v1/incidents", &c.desk, "daily", report(&c, "t"))
        .created()
        .await;
    assert_eq!(replayed["id"], first["id"]);
    app.clock.set(app.clock.now() + Duration::hours(2));
    let fresh = app
        .post_once("/api/v1/incidents", &c.desk, "daily", report(&c, "t"))
        .created()
        .await;
    assert_ne!(fresh["id"], first["id"]);

    // The background job deletes what is past its 24 hours.
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url(&app.database)).unwrap();
    let later = app.clock.now() + Duration::hours(25);
    let deleted = incident_desk::store::idempotency::delete_expired(&mut conn, later).unwrap();
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn refusals_are_replayed_too_and_bad_keys_are_422() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let bad = json!({"title": "", "customer_id": c.customer});
    app.post_once("/api/v1/incidents", &c.desk, "bad-1", bad.clone())
        .refused("validation_failed")
        .await;
    let replayed = app
        .post_once("/api/v1/incidents", &c.desk, "bad-1", bad)
        .await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    expect_problem(replayed, "validation_failed").await;

    let problem = app
        .post_once(
            "/api/v1/incidents",
            &c.desk,
            &"k".repeat(256),
            report(&c, "t"),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["Idempotency-Key"]);
    assert_eq!(app.incident_count(&c.desk).await, 0);
}

#[tokio::test]
async fn a_retried_event_is_counted_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, token) = app
        .create_api_token(&admin, "zabbix", &["integration"])
        .await;
    let event = json!({
        "event_action": "trigger", "dedup_key": "k",
        "payload": {"summary": "CPU high", "source": "app-01", "severity": "info"}
    });
    for _ in 0..2 {
        let answer = app
            .post_once("/api/v1/events", &token, "evt-1", event.clone())
            .await;
        let answer = expect_json(answer, StatusCode::ACCEPTED).await;
        assert_eq!(answer["result"], "created");
    }
    let again = app
        .send(Method::POST, "/api/v1/events", Some(&token), Some(event))
        .await;
    let again = expect_json(again, StatusCode::ACCEPTED).await;
    assert_eq!(again["result"], "deduplicated");
    let incident = app
        .get(
            &format!("/api/v1/incidents/{}", again["incident_id"]),
            &token,
        )
        .ok()
        .await;
    assert_eq!(incident["occurrences"], 2);
}

/// How many incidents and kept answers the database holds.
fn stored_counts(database: &str) -> (i64, i64) {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        incidents: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        answers: i64,
    }
    let mut conn = PgConnection::establish(&database_url(database)).unwrap();
    let counts: Counts = diesel::sql_query(
        "SELECT (SELECT count(*) FROM incidents) AS incidents, \
                (SELECT count(*) FROM idempotency_keys WHERE status IS NOT NULL) AS answers",
    )
    .get_result(&mut conn)
    .unwrap();
    (counts.incidents, counts.answers)
}

#[tokio::test]
async fn a_server_killed_between_commit_and_answer_leaves_the_answer_for_the_retry() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let body = with_default_reporter(&c.desk, report(&c, "断电后无法启动"));
    let post = |address: &str| {
        reqwest::Client::new()
            .post(format!("{address}/api/v1/incidents"))
            .bearer_auth(&c.desk)
            .header("idempotency-key", "crash-1")
            .json(&body)
            .send()
    };
    // A server armed to die right after the commit: the client gets no answer.
    let (mut doomed, address) = start_binary(
        &app.database,
        &[(incident_desk::fault::CRASH_AFTER_COMMIT, "1")],
    );
    assert!(post(&address).await.is_err(), "the answer was sent");
    let status = doomed.wait().unwrap();
    assert!(!status.success(), "the server did not die: {status}");
    assert_eq!(stored_counts(&app.database), (1, 1));

    // The client retries on a server that lives: the first answer, at once, and nothing new.
    let (mut server, address) = start_binary(&app.database, &[]);
    let retried = post(&address).await.unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(
        retried.headers()["idempotent-replayed"].to_str().unwrap(),
        "true"
    );
    let location = retried.headers()["location"].to_str().unwrap().to_owned();
    let incident: Value = retried.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/incidents/{}", incident["id"]));
    assert_eq!(incident["title"], "断电后无法启动");
    assert_eq!(stored_counts(&app.database), (1, 1));
    server.kill().unwrap();
    server.wait().unwrap();

    // The same for a note: the answer is committed with the note it describes.
    let note = |address: &str| {
        reqwest::Client::new()
            .post(format!(
                "{address}/api/v1/incidents/{}/notes",
                incident["id"]
            ))
            .bearer_auth(&c.desk)
            .header("idempotency-key", "crash-note")
            .json(&json!({"body": "已联系厂商"}))
            .send()
    };
    let (mut doomed, address) = start_binary(
        &app.database,
        &[(incident_desk::fault::CRASH_AFTER_COMMIT, "1")],
    );
    assert!(note(&address).await.is_err(), "the answer was sent");
    doomed.wait().unwrap();
    let (mut server, address) = start_binary(&app.database, &[]);
    let retried = note(&address).await.unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert!(retried.headers().contains_key("idempotent-replayed"));
    let notes = app
        .get(
            &format!("/api/v1/incidents/{}/notes", incident["id"]),
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(notes.as_array().unwrap().len(), 1);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn a_claim_left_by_a_server_that_died_before_committing_is_taken_over_in_seconds() {
    use diesel::prelude::*;
    use sha2::Digest;
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let body = with_default_reporter(&c.desk, report(&c, "死机后重试"));
    // What a server leaves that claimed the key and died before its commit: a claim in flight.
    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    let hash = sha2::Sha256::digest(serde_json::to_vec(&body).unwrap()).to_vec();
    diesel::sql_query(
        "INSERT INTO idempotency_keys (user_id, method, path, key, request_hash, created_at, claim_token) \
         VALUES ($1, 'POST', '/api/v1/incidents', 'died-1', $2, $3, 7)",
    )
    .bind::<diesel::sql_types::BigInt, _>(c.desk_id)
    .bind::<diesel::sql_types::Bytea, _>(hash)
    .bind::<diesel::sql_types::Timestamptz, _>(app.clock.now())
    .execute(&mut conn)
    .unwrap();
    // While it may still be alive, a retry waits for it.
    let early = app
        .post_once("/api/v1/incidents", &c.desk, "died-1", body.clone())
        .await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    // Fifteen seconds on, the retry takes the claim over and runs the request once.
    app.clock.advance(Duration::seconds(16));
    let taken = app
        .post_once("/api/v1/incidents", &c.desk, "died-1", body.clone())
        .await;
    assert_eq!(taken.status(), StatusCode::CREATED);
    assert!(!taken.headers().contains_key("idempotent-replayed"));
    let again = app
        .post_once("/api/v1/incidents", &c.desk, "died-1", body)
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(again.headers().contains_key("idempotent-replayed"));
    assert_eq!(app.incident_count(&c.desk).await, 1);
}

#[tokio::test]
async fn a_request_whose_claim_was_taken_over_undoes_its_effect() {
    use diesel::prelude::*;
    use incident_desk::store::idempotency::{
        Claim, KeyScope, StoredResponse, TAKEN_OVER_AFTER, answered_with, claim,
    };
    let app = TestApp::spawn().await;
    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    let scope = KeyScope {
        user_id: 1,
        method: "POST".into(),
        path: "/api/v1/customers".into(),
        key: "slow-1".into(),
    };
    let now = app.clock.now();
    let Ok(Claim::Run(slow)) = claim(&mut conn, &scope, b"h", now, TAKEN_OVER_AFTER) else {
        panic!("the first request claims the key");
    };
    let later = now + TAKEN_OVER_AFTER + Duration::seconds(1);
    let Ok(Claim::Run(retry)) = claim(&mut conn, &scope, b"h", later, TAKEN_OVER_AFTER) else {
        panic!("a retry takes the claim over");
    };
    assert_ne!(slow, retry);
    let answer = StoredResponse {
        status: 201,
        content_type: None,
        etag: None,
        location: None,
        body: vec![],
    };
    let write = |code: &'static str| {
        let answer = answer.clone();
        move |conn: &mut PgConnection| {
            diesel::sql_query(format!(
                "INSERT INTO customers (code, name, created_at, updated_at) VALUES ('{code}', '{code}', now(), now())"
            ))
            .execute(conn)
            .map_err(StoreError::from)?;
            Ok::<_, StoreError>(answer)
        }
    };
    // The slow request finishes last: its effect is undone, the retry's stays.
    answered_with(&mut conn, Some((&scope, retry)), write("RETRY")).unwrap();
    let refused = answered_with(&mut conn, Some((&scope, slow)), write("SLOW"));
    assert!(refused.is_err());
    #[derive(QueryableByName)]
    struct Code {
        #[diesel(sql_type = diesel::sql_types::Text)]
        code: String,
    }
    let codes: Vec<String> = diesel::sql_query("SELECT code FROM customers ORDER BY code")
        .load::<Code>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(codes, ["RETRY"]);
}

//! The live stream (SPEC §12), read with a real HTTP client: order, resumption, visibility,
//! several instances, tickets, retention and bad input.

use std::time::Duration as StdDuration;

use chrono::Duration;
use diesel::{Connection, PgConnection};
use incident_desk::domain::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// How long a test waits for an event it expects.
const PATIENCE: StdDuration = StdDuration::from_secs(10);

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub(crate) struct Sse {
    pub(crate) id: i64,
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// An open stream.
pub(crate) struct Stream {
    response: reqwest::Response,
    buffer: String,
    comments: usize,
}

impl Stream {
    /// Opens `/api/v1/stream{query}` with `token`, resuming after `last_id` when given.
    pub(crate) async fn open(
        app: &TestApp,
        token: &str,
        query: &str,
        last_id: Option<i64>,
    ) -> Stream {
        let response = Self::request(app, token, query, last_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        Self::of(response)
    }

    async fn request(
        app: &TestApp,
        token: &str,
        query: &str,
        last_id: Option<i64>,
    ) -> reqwest::Response {
        let mut request = app
            .client
            .get(app.url(&format!("/api/v1/stream{query}")))
            .bearer_auth(token);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        request.send().await.expect("stream request")
    }

    fn of(response: reqwest::Response) -> Stream {
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/event-stream");
        Stream {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event, skipping comments; `None` when the stream ends or nothing comes within
    /// `wait`.
    pub(crate) async fn next_within(&mut self, wait: StdDuration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
                if block.starts_with(':') {
                    self.comments += 1;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("stream readable")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event; fails the test if none comes.
    pub(crate) async fn next(&mut self) -> Sse {
        self.next_within(PATIENCE)
            .await
            .expect("an event within the patience")
    }

    /// Events up to and including the first of `event_type`.
    pub(crate) async fn until(&mut self, event_type: &str) -> Vec<Sse> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let last = event.event == event_type;
            seen.push(event);
            if last {
                return seen;
            }
        }
    }
}

fn parse_block(block: &str) -> Option<Sse> {
    let mut id = None;
    let mut event = None;
    let mut data = None;
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id: ") {
            id = value.parse().ok();
        } else if let Some(value) = line.strip_prefix("event: ") {
            event = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(value).expect("data is JSON"));
        }
    }
    Some(Sse {
        id: id?,
        event: event?,
        data: data?,
    })
}

fn types(events: &[Sse]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

async fn note(app: &TestApp, token: &str, id: &Value, visibility: &str, body: &str) {
    app.post(
        &format!("/api/v1/incidents/{id}/notes"),
        token,
        json!({"body": body, "visibility": visibility}),
    )
    .created()
    .await;
}

#[tokio::test]
async fn events_arrive_in_commit_order_and_a_resumed_stream_loses_nothing() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let mut stream = Stream::open(&app, &c.desk, "", None).await;

    let incident = app
        .create_incident(
            &c.desk,
            json!({"title": "收费系统无法登录", "customer_id": c.customer}),
        )
        .await;
    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    note(&app, &c.desk, id, "internal", "已远程连接").await;
    let seen = stream.until("note.created").await;
    assert_eq!(
        types(&seen),
        ["incident.created", "incident.accepted", "note.created"]
    );
    let created = &seen[0].data;
    assert_eq!(created["type"], "incident.created");
    assert_eq!(created["incident_id"], *id);
    assert_eq!(created["actor_id"], c.desk_id);
    assert_eq!(created["data"]["incident"]["number"], incident["number"]);
    assert!(created["occurred_at"].is_string());
    assert_eq!(seen[1].data["data"]["incident"]["status"], "in_progress");
    assert_eq!(seen[2].data["data"]["note"]["body"], "已远程连接");
    let last_seen = seen[2].id;
    drop(stream);

    // While nobody listens.
    app.act_ok(&c.desk, id, "resolve", resolution_for_desk())
        .await;
    note(&app, &c.desk, id, "public", "请确认").await;

    let mut resumed = Stream::open(&app, &c.desk, "", Some(last_seen)).await;
    let missed = resumed.until("note.created").await;
    assert_eq!(types(&missed), ["incident.resolved", "note.created"]);
    assert!(missed.iter().all(|e| e.id != last_seen));
    // Then live ones, on the same connection.
    note(&app, &c.desk, id, "public", "已电话通知").await;
    let live = resumed.next().await;
    assert_eq!(live.event, "note.created");
    assert_eq!(live.data["data"]["note"]["body"], "已电话通知");

    // A new EventSource cannot send the header: the id may come in the query.
    let query = format!("?last_event_id={last_seen}");
    let mut browser = Stream::open(&app, &c.desk, &query, None).await;
    let again = browser.until("note.created").await;
    assert_eq!(types(&again), ["incident.resolved", "note.created"]);
}

#[tokio::test]
async fn a_burst_of_events_reaches_a_stream_whole_and_once() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.desk,
            json!({"title": "批量备注", "customer_id": c.customer}),
        )
        .await;
    let query = format!("?types=note.created&incident_id={}", incident["id"]);
    let mut stream = Stream::open(&app, &c.desk, &query, None).await;
    // Forty notes at once: the stream's queue holds several when it is next polled, and they
    // go out together.
    let mut writers = Vec::new();
    for n in 0..40 {
        let request = app
            .client
            .post(app.url(&format!("/api/v1/incidents/{}/notes", incident["id"])))
            .bearer_auth(&c.desk)
            .json(&json!({"body": format!("备注 {n}"), "visibility": "internal"}));
        writers.push(tokio::spawn(async move {
            request.send().await.expect("a note").status()
        }));
    }
    for writer in writers {
        assert_eq!(writer.await.unwrap(), StatusCode::CREATED);
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut bodies = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let event = stream.next().await;
        assert_eq!(event.event, "note.created");
        ids.insert(event.id);
        bodies.insert(
            event.data["data"]["note"]["body"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!((ids.len(), bodies.len()), (40, 40), "each note once");
    assert!(
        stream
            .next_within(StdDuration::from_millis(500))
            .await
            .is_none(),
        "nothing twice"
    );
}

fn resolution_for_desk() -> Value {
    json!({"solution": "重新部署补丁", "cause": "system_defect", "subcause": "module_unusable",
           "category": "usage_issue", "subcategory": "module_input_blocked"})
}

#[tokio::test]
async fn a_customer_stream_carries_its_own_incidents_and_public_notes_only() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "CLINIC").await;
    let mut stream = Stream::open(&app, &c.portal, "", None).await;
    // A stream asking for another organisation is not refused, and carries nothing of it.
    let mut asking = Stream::open(&app, &c.portal, &format!("?customer_id={other}"), None).await;

    let theirs = app
        .create_incident(
            &c.desk,
            json!({"title": "别家的事件", "customer_id": other}),
        )
        .await;
    note(&app, &c.desk, &theirs["id"], "public", "别家的备注").await;
    let own = app
        .create_incident(
            &c.desk,
            json!({"title": "本单位事件", "customer_id": c.customer}),
        )
        .await;
    let id = &own["id"];
    note(&app, &c.desk, id, "internal", "内部备注").await;
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.desk,
        json!({"kind": "hierarchical", "reason": "客户投诉"}),
    )
    .created()
    .await;
    note(&app, &c.desk, id, "public", "公开备注").await;

    let seen = stream.until("note.created").await;
    assert_eq!(types(&seen), ["incident.created", "note.created"]);
    assert_eq!(seen[0].data["incident_id"], *id);
    assert_eq!(seen[1].data["data"]["note"]["body"], "公开备注");
    for event in &seen {
        let text = event.data.to_string();
        assert!(
            !text.contains("别家") && !text.contains("内部备注"),
            "{text}"
        );
    }
    assert!(
        asking
            .next_within(StdDuration::from_millis(500))
            .await
            .is_none()
    );

    // Staff see all of it, in the same order.
    let mut desk = Stream::open(&app, &c.desk, "", Some(seen[0].id - 1)).await;
    let all = desk.until("note.created").await;
    assert_eq!(types(&all)[0], "incident.created");
    assert_eq!(all.last().unwrap().data["data"]["note"]["body"], "内部备注");
}

#[tokio::test]
async fn filters_narrow_the_stream_by_type_and_incident() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let first = app
        .create_incident(&c.desk, json!({"title": "一号", "customer_id": c.customer}))
        .await;
    let second = app
        .create_incident(&c.desk, json!({"title": "二号", "customer_id": c.customer}))
        .await;
    let query = format!("?types=note.created&incident_id={}", second["id"]);
    let mut stream = Stream::open(&app, &c.desk, &query, None).await;
    note(&app, &c.desk, &first["id"], "public", "一号的备注").await;
    app.act_ok(&c.desk, &second["id"], "accept", json!({}))
        .await;
    note(&app, &c.desk, &second["id"], "public", "二号的备注").await;
    let event = stream.next().await;
    assert_eq!(event.event, "note.created");
    assert_eq!(event.data["data"]["note"]["body"], "二号的备注");
}

#[tokio::test]
async fn an_event_committed_on_one_instance_reaches_a_client_of_another() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.database.clone(), &[]).await;
    let c = first.cast().await;
    let mut stream = Stream::open(&second, &c.desk, "", None).await;
    let incident = first
        .create_incident(
            &c.desk,
            json!({"title": "甲实例写入", "customer_id": c.customer}),
        )
        .await;
    let event = stream.next().await;
    assert_eq!(event.event, "incident.created");
    assert_eq!(event.data["incident_id"], incident["id"]);
    std::mem::forget(second); // `first` drops the shared database.
}

#[tokio::test]
async fn browsers_open_the_stream_once_with_a_short_lived_ticket() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let ticket = expect_created(
        app.post("/api/v1/stream/tickets", &c.portal, json!({}))
            .await,
    )
    .await;
    let value = ticket["ticket"].as_str().unwrap().to_owned();
    assert!(value.starts_with("ist_"));
    // A mistake in the request does not use the ticket up.
    let mistaken = app.url(&format!(
        "/api/v1/stream?ticket={value}&types=incident.deleted"
    ));
    expect_problem(
        app.client.get(&mistaken).send().await.unwrap(),
        "validation_failed",
    )
    .await;
    let url = app.url(&format!("/api/v1/stream?ticket={value}"));
    let mut stream = Stream::of(app.client.get(&url).send().await.unwrap());
    app.create_incident(&c.portal, json!({"title": "浏览器里看到"}))
        .await;
    assert_eq!(stream.next().await.event, "incident.created");

    // Used once only; a forged one is refused the same way.
    expect_problem(app.client.get(&url).send().await.unwrap(), "unauthorized").await;
    let forged = app.url("/api/v1/stream?ticket=ist_forged");
    expect_problem(
        app.client.get(&forged).send().await.unwrap(),
        "unauthorized",
    )
    .await;
    // Expired after 60 s.
    let late = expect_created(
        app.post("/api/v1/stream/tickets", &c.portal, json!({}))
            .await,
    )
    .await;
    app.clock.advance(Duration::seconds(61));
    let url = app.url(&format!(
        "/api/v1/stream?ticket={}",
        late["ticket"].as_str().unwrap()
    ));
    expect_problem(app.client.get(&url).send().await.unwrap(), "unauthorized").await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_problems() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let unauthenticated = app
        .client
        .get(app.url("/api/v1/stream"))
        .send()
        .await
        .unwrap();
    expect_problem(unauthenticated, "unauthorized").await;
    for malformed in ["abc", "-1", "0", "1.5", "1e3"] {
        let response = app
            .client
            .get(app.url("/api/v1/stream"))
            .bearer_auth(&c.desk)
            .header("Last-Event-ID", malformed)
            .send()
            .await
            .unwrap();
        expect_problem(response, "bad_request").await;
    }
    let unknown_type = Stream::request(
        &app,
        &c.desk,
        "?types=incident.created,incident.deleted",
        None,
    )
    .await;
    let problem = expect_problem(unknown_type, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["types"]);
    let bad_query = Stream::request(&app, &c.desk, "?last_event_id=abc", None).await;
    expect_problem(bad_query, "bad_request").await;
    let bad_id = Stream::request(&app, &c.desk, "?incident_id=abc", None).await;
    expect_problem(bad_id, "validation_failed").await;
    // An id this server never sent.
    let never = Stream::request(&app, &c.desk, "", Some(987_654)).await;
    expect_problem(never, "event_expired").await;
}

#[tokio::test]
async fn events_past_the_retention_answer_410_and_are_pruned() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let mut stream = Stream::open(&app, &c.desk, "", None).await;
    app.create_incident(
        &c.desk,
        json!({"title": "一周前", "customer_id": c.customer}),
    )
    .await;
    let old = stream.next().await;
    // Still kept: resuming after it works.
    Stream::open(&app, &c.desk, "", Some(old.id)).await;

    app.clock.advance(Duration::days(7) + Duration::minutes(1));
    let gone = Stream::request(&app, &c.desk, "", Some(old.id)).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    let problem = expect_problem(gone, "event_expired").await;
    assert!(problem["detail"].as_str().unwrap().contains("reload"));

    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    let cutoff = app.clock.now() - Duration::days(7);
    let pruned = incident_desk::store::stream::prune(&mut conn, cutoff, 100).unwrap();
    assert_eq!(pruned, 1);
    let gone = Stream::request(&app, &c.desk, "", Some(old.id)).await;
    expect_problem(gone, "event_expired").await;
    // Newer events stay.
    app.create_incident(&c.desk, json!({"title": "今天", "customer_id": c.customer}))
        .await;
    let fresh = stream.next().await;
    assert_eq!(
        incident_desk::store::stream::prune(&mut conn, cutoff, 100).unwrap(),
        0
    );
    Stream::open(&app, &c.desk, "", Some(fresh.id)).await;
}

#[tokio::test]
async fn idle_streams_beat_and_end_when_their_user_is_deactivated() {
    let app = TestApp::spawn_with(&[("STREAM_HEARTBEAT", "200ms")]).await;
    let c = app.cast().await;
    let (id, token) = app
        .create_user(&c.admin, "watcher", &["service_desk"], None)
        .await;
    let mut stream = Stream::open(&app, &token, "", None).await;
    assert!(
        stream
            .next_within(StdDuration::from_millis(700))
            .await
            .is_none()
    );
    assert!(stream.comments >= 2, "{} heartbeats", stream.comments);

    app.patch(
        &format!("/api/v1/users/{id}"),
        &c.admin,
        json!({"active": false}),
    )
    .ok()
    .await;
    // The stream ends (the body completes) at the next heartbeat.
    let ended = tokio::time::timeout(PATIENCE, async {
        while stream.response.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream of a deactivated user stayed open"
    );
}

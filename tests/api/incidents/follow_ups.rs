//! Follow-ups (回访, SPEC §9): due when a user-reported incident is closed as resolved or
//! unresolved, recorded by the service desk beside the closed incident, on time or late.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::*;

/// A user-reported incident, confirmed and closed as resolved by the desk.
async fn closed_incident(app: &TestApp, c: &Cast) -> Value {
    let incident = app.resolved_incident(c).await;
    let id = &incident["id"];
    app.act_ok(&c.portal, id, "confirm", json!({})).await;
    app.act_ok(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .await
}

fn call_back() -> Value {
    json!({"channel": "phone", "reached": true, "satisfaction": 5, "comment": "用户满意"})
}

#[tokio::test]
async fn a_follow_up_is_due_after_closing_and_leaves_the_queue_once_recorded() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let closed = closed_incident(&app, &c).await;
    let due = time(&closed["follow_up_due_at"]);
    assert_eq!(due - time(&closed["closed_at"]), Duration::hours(72));

    let queue = app.get("/api/v1/follow-ups/due", &c.desk).ok().await;
    assert_eq!(pluck(&queue["items"], "incident_id"), [&closed["id"]]);
    let before_due = format!(
        "/api/v1/follow-ups/due?before={}",
        (due - Duration::hours(1)).to_rfc3339().replace('+', "%2B")
    );
    let early = app.get(&before_due, &c.desk).ok().await;
    assert_eq!(early["items"], json!([]));

    let path = format!("/api/v1/incidents/{}/follow-ups", closed["id"]);
    let recorded = app.post(&path, &c.desk, call_back()).created().await;
    assert_eq!(recorded["on_time"], true);
    assert_eq!(recorded["performed_by"], c.desk_id);
    assert_eq!(recorded["satisfaction"], 5);
    let listed = app.get(&path, &c.manager).ok().await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let queue = app.get("/api/v1/follow-ups/due", &c.desk).ok().await;
    assert_eq!(queue["items"], json!([]));

    // The closed incident itself did not change.
    let after = app
        .get(&format!("/api/v1/incidents/{}", closed["id"]), &c.desk)
        .ok()
        .await;
    assert_eq!(after["version"], closed["version"]);
}

#[tokio::test]
async fn a_follow_up_after_the_due_time_is_late() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let closed = closed_incident(&app, &c).await;
    app.clock
        .set(time(&closed["follow_up_due_at"]) + Duration::seconds(1));
    let path = format!("/api/v1/incidents/{}/follow-ups", closed["id"]);
    let recorded = app.post(&path, &c.desk, call_back()).created().await;
    assert_eq!(recorded["on_time"], false);
}

#[tokio::test]
async fn only_the_desk_follows_up_and_only_what_is_owed_one() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let closed = closed_incident(&app, &c).await;
    let path = format!("/api/v1/incidents/{}/follow-ups", closed["id"]);
    app.post(&path, &c.manager, call_back())
        .refused("forbidden")
        .await;
    app.post(&path, &c.portal, call_back())
        .refused("forbidden")
        .await;
    for (body, field) in [
        (json!({"channel": "monitoring", "reached": true}), "channel"),
        (
            json!({"channel": "phone", "reached": true, "satisfaction": 6}),
            "satisfaction",
        ),
        (json!({"channel": "phone"}), "reached"),
    ] {
        let problem = app
            .post(&path, &c.desk, body)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field]);
    }

    let open = app
        .create_incident(&c.portal, json!({"title": "还没处理"}))
        .await;
    app.post(
        &format!("/api/v1/incidents/{}/follow-ups", open["id"]),
        &c.desk,
        call_back(),
    )
    .refused("follow_up_not_due")
    .await;
    app.act_ok(
        &c.desk,
        &open["id"],
        "withdraw",
        json!({"channel": "phone", "note": "用户来电撤回"}),
    )
    .await;
    app.act_ok(
        &c.desk,
        &open["id"],
        "close",
        json!({"closure_code": "withdrawn", "note": "用户撤回"}),
    )
    .await;
    app.post(
        &format!("/api/v1/incidents/{}/follow-ups", open["id"]),
        &c.desk,
        call_back(),
    )
    .refused("follow_up_not_due")
    .await;
    app.post("/api/v1/incidents/999999/follow-ups", &c.desk, call_back())
        .refused("not_found")
        .await;
}

#[tokio::test]
async fn the_window_is_configurable() {
    let app = TestApp::spawn_with(&[("FOLLOW_UP_WINDOW", "1d")]).await;
    let c = app.cast().await;
    let closed = closed_incident(&app, &c).await;
    assert_eq!(
        time(&closed["follow_up_due_at"]) - time(&closed["closed_at"]),
        Duration::days(1)
    );
}

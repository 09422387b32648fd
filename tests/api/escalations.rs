//! Escalations (SPEC §5), the SLA watcher and the managers' queue.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::*;

async fn incident(app: &TestApp, s: &Cast, extra: Value) -> Value {
    let mut body = json!({"title": "t", "customer_id": s.customer, "subcategory": "upgrade_error"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.post("/api/v1/incidents", &s.desk, body).created().await
}

async fn escalate(app: &TestApp, token: &str, id: &Value, body: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/incidents/{id}/escalations"), token, body)
        .await
}

#[tokio::test]
async fn functional_escalation_hands_the_incident_to_l2() {
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    let inc = incident(&app, &s, json!({})).await;
    let id = &inc["id"];
    let problem = escalate(
        &app,
        &s.desk,
        id,
        json!({"kind": "functional", "assignee_id": s.l2_id, "diagnosis": "  "}),
    )
    .refused("validation_failed")
    .await;
    assert_eq!(error_fields(&problem), ["diagnosis"]);
    let (ops_id, _) = app
        .create_user(&s.admin, "ops2", &["ops_staff"], None)
        .await;
    let problem = escalate(
        &app,
        &s.desk,
        id,
        json!({"kind": "functional", "assignee_id": ops_id, "diagnosis": "日志显示数据库锁"}),
    )
    .refused("validation_failed")
    .await;
    assert_eq!(error_fields(&problem), ["assignee_id"]);
    escalate(
        &app,
        &s.l2,
        id,
        json!({"kind": "functional", "assignee_id": s.l2_id, "diagnosis": "x"}),
    )
    .refused("forbidden")
    .await;

    let escalation = escalate(
        &app,
        &s.desk,
        id,
        json!({"kind": "functional", "assignee_id": s.l2_id, "diagnosis": "日志显示数据库锁"}),
    )
    .created()
    .await;
    assert_eq!(escalation["kind"], "functional");
    assert_eq!(escalation["from_tier"], "l1");
    assert_eq!(escalation["to_tier"], "l2");
    assert_eq!(escalation["to_assignee_id"], s.l2_id);
    assert_eq!(escalation["reason"], "日志显示数据库锁");
    let now = app
        .get(&format!("/api/v1/incidents/{id}"), &s.desk)
        .ok()
        .await;
    assert_eq!(now["tier"], "l2");
    assert_eq!(now["status"], "in_progress");
    assert_eq!(now["assignee_id"], s.l2_id);

    // From now on L1 cannot resolve it; the L2 engineer can.
    let resolution =
        json!({"solution": "s", "cause": "system_defect", "subcause": "module_unusable"});
    app.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        &s.desk,
        resolution.clone(),
    )
    .refused("forbidden")
    .await;
    let problem = escalate(
        &app,
        &s.manager,
        id,
        json!({"kind": "functional", "assignee_id": s.l2_id, "diagnosis": "again"}),
    )
    .refused("illegal_transition")
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("l2"));
    app.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        &s.l2,
        resolution,
    )
    .ok()
    .await;

    let history = app
        .get(&format!("/api/v1/incidents/{id}/history"), &s.desk)
        .ok()
        .await;
    let escalate_entry = history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["action"] == "escalate")
        .unwrap();
    assert_eq!(escalate_entry["comment"], "日志显示数据库锁");
    let listed = app
        .get(&format!("/api/v1/incidents/{id}/escalations"), &s.desk)
        .ok()
        .await;
    assert_eq!(listed["items"][0]["id"], escalation["id"]);
}

#[tokio::test]
async fn priority_escalations_recompute_the_deadline() {
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    let created_at = DateTime::parse_from_rfc3339("2025-01-06T00:00:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(created_at);
    let inc = incident(&app, &s, json!({"level": "low"})).await;
    let id = &inc["id"];
    assert_eq!(time(&inc["due_at"]), created_at + Duration::hours(8));

    escalate(
        &app,
        &s.ops,
        id,
        json!({"kind": "priority", "level": "high", "reason": "x"}),
    )
    .refused("forbidden")
    .await;
    let problem = escalate(
        &app,
        &s.desk,
        id,
        json!({"kind": "priority", "level": "low", "reason": "x"}),
    )
    .refused("validation_failed")
    .await;
    assert_eq!(error_fields(&problem), ["level"]);

    // Raised to high one hour in: due = min(8 h, 1 h + 2 h) = 3 h after creation.
    app.clock.advance(Duration::hours(1));
    let raised = escalate(&app, &s.l2, id, json!({"kind": "priority", "level": "high", "reason": "全院收费停摆", "trigger": "onsite_urgent"})).created()
    .await;
    assert_eq!(raised["from_level"], "low");
    assert_eq!(raised["to_level"], "high");
    assert_eq!(raised["trigger"], "onsite_urgent");
    let after = app
        .get(&format!("/api/v1/incidents/{id}"), &s.desk)
        .ok()
        .await;
    assert_eq!(after["level"], "high");
    assert_eq!(time(&after["due_at"]), created_at + Duration::hours(3));
    // The record shows the deadline the escalation set.
    assert_eq!(raised["due_at"], after["due_at"]);

    // Lowering is for incident managers, and counts from creation again.
    escalate(
        &app,
        &s.desk,
        id,
        json!({"kind": "priority", "level": "medium", "reason": "x"}),
    )
    .refused("forbidden")
    .await;
    let lowered = escalate(
        &app,
        &s.manager,
        id,
        json!({"kind": "priority", "level": "medium", "reason": "影响范围小"}),
    )
    .created()
    .await;
    assert_eq!(lowered["trigger"], "manual");
    let after = app
        .get(&format!("/api/v1/incidents/{id}"), &s.desk)
        .ok()
        .await;
    assert_eq!(time(&after["due_at"]), created_at + Duration::hours(4));
    assert_eq!(lowered["due_at"], after["due_at"]);
}

#[tokio::test]
async fn flags_set_later_raise_the_level_at_once() {
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    let low = incident(
        &app,
        &s,
        json!({"level": "low", "subcategory": "usage_howto"}),
    )
    .await;
    let path = format!("/api/v1/incidents/{}", low["id"]);
    let onsite = app
        .patch(&path, &s.desk, json!({"affects_onsite_work": true}))
        .ok()
        .await;
    assert_eq!(onsite["level"], "medium");
    let upload = app
        .patch(&path, &s.desk, json!({"affects_data_upload": true}))
        .ok()
        .await;
    assert_eq!(upload["level"], "high");
    let list = app.get(&format!("{path}/escalations"), &s.desk).ok().await;
    let triggers = pluck(&list["items"], "trigger");
    assert_eq!(triggers, [&json!("onsite_urgent"), &json!("data_upload")]);
    // Setting a flag again changes nothing.
    let again = app
        .patch(&path, &s.desk, json!({"affects_data_upload": true}))
        .ok()
        .await;
    assert_eq!(again["version"], upload["version"]);
    // On-site work on a medium incident does not raise it.
    let medium = incident(&app, &s, json!({"level": "medium"})).await;
    let after = app
        .patch(
            &format!("/api/v1/incidents/{}", medium["id"]),
            &s.desk,
            json!({"affects_onsite_work": true}),
        )
        .ok()
        .await;
    assert_eq!(after["level"], "medium");
}

#[tokio::test]
async fn hierarchical_escalations_wait_in_the_managers_queue() {
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    let first = incident(&app, &s, json!({})).await;
    let second = incident(&app, &s, json!({})).await;
    let problem = escalate(&app, &s.ops, &first["id"], json!({"kind": "hierarchical"}))
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["reason"]);
    let a = escalate(
        &app,
        &s.ops,
        &first["id"],
        json!({"kind": "hierarchical", "reason": "需要协调厂商"}),
    )
    .created()
    .await;
    let b = escalate(
        &app,
        &s.desk,
        &second["id"],
        json!({"kind": "hierarchical", "reason": "重大事件"}),
    )
    .created()
    .await;
    escalate(
        &app,
        &s.portal,
        &first["id"],
        json!({"kind": "hierarchical", "reason": "x"}),
    )
    .refused("forbidden")
    .await;
    escalate(
        &app,
        &s.desk,
        &first["id"],
        json!({"kind": "sideways", "reason": "x"}),
    )
    .refused("validation_failed")
    .await;

    let waiting = app
        .get(
            "/api/v1/escalations?acknowledged=false&kind=hierarchical",
            &s.manager,
        )
        .ok()
        .await;
    let ids = pluck(&waiting["items"], "id");
    assert_eq!(ids, [&a["id"], &b["id"]]);
    app.post(
        &format!("/api/v1/escalations/{}/acknowledge", a["id"]),
        &s.desk,
        json!({}),
    )
    .refused("forbidden")
    .await;
    let acked = app
        .post(
            &format!("/api/v1/escalations/{}/acknowledge", a["id"]),
            &s.manager,
            json!({}),
        )
        .ok()
        .await;
    assert!(acked["acknowledged_at"].is_string());
    app.post(
        &format!("/api/v1/escalations/{}/acknowledge", a["id"]),
        &s.manager,
        json!({}),
    )
    .refused("already_acknowledged")
    .await;
    app.post(
        "/api/v1/escalations/999999/acknowledge",
        &s.manager,
        json!({}),
    )
    .refused("not_found")
    .await;
    let waiting = app
        .get("/api/v1/escalations?acknowledged=false", &s.manager)
        .ok()
        .await;
    let ids = pluck(&waiting["items"], "id");
    assert_eq!(ids, [&b["id"]]);
    let one = app
        .get(
            &format!("/api/v1/escalations?incident_id={}", first["id"]),
            &s.manager,
        )
        .ok()
        .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    app.get("/api/v1/escalations", &s.portal)
        .refused("forbidden")
        .await;
}

#[tokio::test]
async fn closed_incidents_are_not_escalated() {
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    let inc = incident(&app, &s, json!({})).await;
    app.act_ok(
        &s.desk,
        &inc["id"],
        "withdraw",
        json!({"channel": "phone", "note": "用户来电撤回"}),
    )
    .await;
    app.post(
        &format!("/api/v1/incidents/{}/close", inc["id"]),
        &s.desk,
        json!({"closure_code": "withdrawn", "note": "撤回"}),
    )
    .ok()
    .await;
    for body in [
        json!({"kind": "hierarchical", "reason": "x"}),
        json!({"kind": "priority", "level": "high", "reason": "x"}),
        json!({"kind": "functional", "assignee_id": s.l2_id, "diagnosis": "x"}),
    ] {
        escalate(&app, &s.manager, &inc["id"], body)
            .refused("incident_closed")
            .await;
    }
}

/// Polls `check` until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: StdDuration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    false
}

async fn sla_triggers(app: &TestApp, token: &str, id: &Value) -> Vec<String> {
    let list = app
        .get(
            &format!("/api/v1/incidents/{id}/escalations?limit=200"),
            token,
        )
        .ok()
        .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["trigger"].as_str().map(str::to_owned))
        .filter(|t| t.starts_with("sla_"))
        .collect()
}

#[tokio::test]
async fn the_sla_watcher_warns_then_reports_the_breach_once() {
    let app = TestApp::spawn_with(&[("SLA_SCAN_INTERVAL_SECS", "100ms")]).await;
    let s = app.cast().await;
    let start = DateTime::parse_from_rfc3339("2025-01-06T00:00:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(start);
    let watched = incident(&app, &s, json!({"level": "high"})).await;
    let resolved = incident(
        &app,
        &s,
        json!({"level": "high", "subcategory": "usage_howto"}),
    )
    .await;
    app.post(
        &format!("/api/v1/incidents/{}/accept", resolved["id"]),
        &s.desk,
        json!({}),
    )
    .ok()
    .await;
    app.post(
        &format!("/api/v1/incidents/{}/resolve", resolved["id"]),
        &s.desk,
        json!({"solution": "s", "cause": "system_defect", "subcause": "module_unusable"}),
    )
    .ok()
    .await;

    // 89 minutes of 120: under 75 %.
    app.clock.set(start + Duration::minutes(89));
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert!(sla_triggers(&app, &s.desk, &watched["id"]).await.is_empty());

    app.clock.set(start + Duration::minutes(91));
    let warned = eventually(StdDuration::from_secs(5), || async {
        sla_triggers(&app, &s.desk, &watched["id"]).await == ["sla_warning"]
    })
    .await;
    assert!(warned, "no sla_warning");

    app.clock.set(start + Duration::minutes(121));
    let breached = eventually(StdDuration::from_secs(5), || async {
        sla_triggers(&app, &s.desk, &watched["id"]).await == ["sla_warning", "sla_breach"]
    })
    .await;
    assert!(breached, "no sla_breach");
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_eq!(
        sla_triggers(&app, &s.desk, &watched["id"]).await,
        ["sla_warning", "sla_breach"]
    );
    assert!(
        sla_triggers(&app, &s.desk, &resolved["id"])
            .await
            .is_empty()
    );

    let queue = app
        .get(
            "/api/v1/escalations?kind=hierarchical&acknowledged=false",
            &s.manager,
        )
        .ok()
        .await;
    let breach = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["trigger"] == "sla_breach")
        .unwrap();
    assert!(breach["created_by"].is_null());
    assert_eq!(breach["due_at"], watched["due_at"]);

    // A new deadline (the level lowered to low: due 8 h after creation) gets its own warning
    // once 75 % of it has passed.
    app.clock.set(start + Duration::minutes(122));
    escalate(
        &app,
        &s.manager,
        &watched["id"],
        json!({"kind": "priority", "level": "low", "reason": "误报"}),
    )
    .created()
    .await;
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_eq!(
        sla_triggers(&app, &s.desk, &watched["id"]).await,
        ["sla_warning", "sla_breach"]
    );
    app.clock.set(start + Duration::minutes(6 * 60 + 1));
    let rewarned = eventually(StdDuration::from_secs(5), || async {
        sla_triggers(&app, &s.desk, &watched["id"]).await
            == ["sla_warning", "sla_breach", "sla_warning"]
    })
    .await;
    assert!(rewarned, "no warning for the new deadline");
}

#[tokio::test]
async fn two_instances_never_escalate_twice() {
    let first = TestApp::spawn_with(&[("SLA_SCAN_INTERVAL_SECS", "100ms")]).await;
    let second = TestApp::spawn_on(
        first.database.clone(),
        &[("SLA_SCAN_INTERVAL_SECS", "100ms")],
    )
    .await;
    let s = first.cast().await;
    let start = DateTime::parse_from_rfc3339("2025-01-06T00:00:00Z")
        .unwrap()
        .to_utc();
    first.clock.set(start);
    second.clock.set(start);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(incident(&first, &s, json!({"level": "high"})).await["id"].clone());
    }
    first.clock.set(start + Duration::hours(3));
    second.clock.set(start + Duration::hours(3));
    let all_done = eventually(StdDuration::from_secs(10), || async {
        let queue = first
            .get("/api/v1/escalations?limit=200", &s.manager)
            .ok()
            .await;
        queue["items"].as_array().unwrap().len() >= 16
    })
    .await;
    assert!(all_done, "the watchers did not escalate every incident");
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    for id in &ids {
        assert_eq!(
            sla_triggers(&second, &s.desk, id).await,
            ["sla_warning", "sla_breach"],
            "incident {id}"
        );
    }
    let queue = first
        .get("/api/v1/escalations?limit=200", &s.manager)
        .ok()
        .await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 16);
}

#[tokio::test]
async fn a_business_calendar_makes_deadlines_count_working_time() {
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    let off = app.get("/api/v1/business-calendar", &s.desk).ok().await;
    assert_eq!(
        off["enabled"], false,
        "off by default: the desk runs around the clock"
    );
    let week: Vec<Value> = (1..=5)
        .map(|d| json!({"weekday": d, "start": "09:00", "end": "18:00"}))
        .collect();
    let body = json!({"enabled": true, "working_hours": week, "holidays": ["2025-01-13"]});
    app.send(
        reqwest::Method::PUT,
        "/api/v1/business-calendar",
        Some(&s.desk),
        Some(body.clone()),
    )
    .refused("forbidden")
    .await;
    let on = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/business-calendar",
            Some(&s.admin),
            Some(body),
        )
        .ok()
        .await;
    assert_eq!(on["enabled"], true);
    assert_eq!(on["working_hours"].as_array().unwrap().len(), 5);

    // Friday 2025-01-10 17:00 in Shanghai, high (2 h): 1 h on Friday; Saturday, Sunday and the
    // holiday on Monday do not count; 1 h on Tuesday → Tuesday 10:00 local (02:00 UTC).
    app.clock.set(
        DateTime::parse_from_rfc3339("2025-01-10T09:00:00Z")
            .unwrap()
            .to_utc(),
    );
    let inc = incident(&app, &s, json!({"level": "high"})).await;
    assert_eq!(inc["due_at"], "2025-01-14T02:00:00Z");

    for (body, field) in [
        (
            json!({"enabled": true, "working_hours": []}),
            "working_hours",
        ),
        (
            json!({"enabled": true, "working_hours": [{"weekday": 8, "start": "09:00", "end": "18:00"}]}),
            "working_hours[0].weekday",
        ),
        (
            json!({"enabled": true, "working_hours": [{"weekday": 1, "start": "18:00", "end": "09:00"}]}),
            "working_hours[0].end",
        ),
        (
            json!({"enabled": true, "working_hours": [{"weekday": 1, "start": "9am", "end": "18:00"}]}),
            "working_hours[0].start",
        ),
        (
            json!({"enabled": true, "working_hours": [{"weekday": 1, "start": "09:00", "end": "18:00"}, {"weekday": 1, "start": "09:00", "end": "12:00"}]}),
            "working_hours[1].weekday",
        ),
        (
            json!({"enabled": false, "working_hours": [], "holidays": ["2025-02-30"]}),
            "holidays[0]",
        ),
    ] {
        let problem = app
            .send(
                reqwest::Method::PUT,
                "/api/v1/business-calendar",
                Some(&s.admin),
                Some(body.clone()),
            )
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }

    // Switched off again: around the clock.
    app.send(
        reqwest::Method::PUT,
        "/api/v1/business-calendar",
        Some(&s.admin),
        Some(json!({"enabled": false, "working_hours": []})),
    )
    .ok()
    .await;
    let inc = incident(&app, &s, json!({"level": "high"})).await;
    assert_eq!(inc["due_at"], "2025-01-10T11:00:00Z");
}

#[tokio::test]
async fn the_schema_admits_one_sla_escalation_per_incident_trigger_and_deadline() {
    use incident_desk::domain::escalation::{
        EscalationKind, EscalationRecord, EscalationTrigger, SlaTrigger,
    };
    use incident_desk::domain::incident::Tier;
    use incident_desk::domain::level::Level;
    use incident_desk::store::escalations::insert_once;
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    let inc = incident(&app, &s, json!({"level": "high"})).await;
    let due = time(&inc["due_at"]);
    let id = inc["id"].as_i64().unwrap();
    let new = |trigger: SlaTrigger, due_at: DateTime<Utc>| EscalationRecord {
        kind: EscalationKind::Hierarchical,
        trigger: Some(EscalationTrigger::Sla(trigger)),
        reason: None,
        from_tier: Tier::L1,
        to_tier: Tier::L1,
        from_level: Level::High,
        to_level: Level::High,
        from_assignee_id: None,
        to_assignee_id: None,
        due_at: Some(due_at),
        created_by: None,
        created_at: Utc::now(),
    };
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url(&app.database)).unwrap();
    assert!(
        insert_once(&mut conn, id, &new(SlaTrigger::SlaBreach, due))
            .unwrap()
            .is_some()
    );
    assert!(
        insert_once(&mut conn, id, &new(SlaTrigger::SlaBreach, due))
            .unwrap()
            .is_none(),
        "a second breach for the same deadline"
    );
    assert!(
        insert_once(&mut conn, id, &new(SlaTrigger::SlaWarning, due))
            .unwrap()
            .is_some()
    );
    assert!(
        insert_once(
            &mut conn,
            id,
            &new(SlaTrigger::SlaBreach, due + Duration::hours(1))
        )
        .unwrap()
        .is_some(),
        "a new deadline"
    );
    // Not only the code: a plain INSERT of a duplicate is refused by the database.
    let duplicate = diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "INSERT INTO escalations (incident_id, kind, trigger, from_tier, to_tier, from_level, to_level, due_at, created_at) \
             SELECT incident_id, kind, trigger, from_tier, to_tier, from_level, to_level, due_at, now() FROM escalations \
             WHERE incident_id = {} AND trigger = 'sla_warning'",
            inc["id"]
        )),
        &mut conn,
    );
    assert!(duplicate.is_err());
}

#[tokio::test]
async fn the_journal_shows_times_as_they_are_stored() {
    let app = TestApp::spawn().await;
    let s = app.cast().await;
    app.clock.set(at("2025-01-06T01:02:03.123456789Z"));
    let created = incident(&app, &s, json!({})).await;
    let id = &created["id"];
    app.clock.advance(Duration::nanoseconds(1_987_654_321));
    app.act_ok(&s.desk, id, "accept", json!({})).await;
    escalate(
        &app,
        &s.desk,
        id,
        json!({"kind": "priority", "level": "high", "reason": "影响现场工作"}),
    )
    .created()
    .await;

    let stored = app
        .get(&format!("/api/v1/incidents/{id}"), &s.desk)
        .ok()
        .await;
    assert_eq!(stored["accepted_at"], "2025-01-06T01:02:05.111111Z");
    let history = app
        .get(&format!("/api/v1/incidents/{id}/history"), &s.desk)
        .ok()
        .await;
    let journal = |field: &str| {
        history
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|h| h["changes"].as_array().unwrap())
            .rfind(|c| c["field"] == field)
            .unwrap()["new"]
            .clone()
    };
    assert_eq!(journal("accepted_at"), stored["accepted_at"]);
    assert_eq!(journal("due_at"), stored["due_at"]);
    assert_eq!(history[0]["created_at"], stored["created_at"]);
}

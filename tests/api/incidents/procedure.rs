//! The procedure's people rules (SPEC §4, §4.2, §4.3, §9): who reported an incident is fixed
//! at creation, withdrawal is the reporter's decision, work is handed on within a tier,
//! customers read only the public journal, and follow-ups count incidents.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many outbox events of `event_type` name incident `id`.
fn events_about(app: &TestApp, event_type: &str, id: &Value) -> i64 {
    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    diesel::sql_query(format!(
        "SELECT count(*) AS count FROM outbox_events \
         WHERE event_type = '{event_type}' AND (data->'incident'->>'id')::bigint = {id}"
    ))
    .get_result::<Count>(&mut conn)
    .unwrap()
    .count
}

/// `POST /api/v1/incidents` exactly as given (no default reporter).
async fn report_raw(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.send(Method::POST, "/api/v1/incidents", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn a_phone_report_names_its_reporter_and_cannot_be_made_anonymous_to_skip_confirmation() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    // The desk records a phone call without saying who called: refused.
    for channel in ["phone", "web", "email", "onsite"] {
        let problem = expect_problem(
            report_raw(
                &app,
                &c.desk,
                json!({"title": "打印机卡纸", "customer_id": c.customer, "channel": channel}),
            )
            .await,
            "validation_failed",
        )
        .await;
        assert_eq!(error_fields(&problem), ["reporter"], "{channel}");
    }
    // Found by staff: no reporter needed, and then no confirmation either.
    let found = expect_created(
        report_raw(
            &app,
            &c.desk,
            json!({"title": "巡检发现磁盘告警", "customer_id": c.customer, "channel": "other"}),
        )
        .await,
    )
    .await;
    assert_eq!(found["user_reported"], false);

    let called = expect_created(
        report_raw(
            &app,
            &c.desk,
            json!({"title": "收费模块无法录入", "customer_id": c.customer,
                   "subcategory": "module_input_blocked", "reporter": {"name": "王医生"}}),
        )
        .await,
    )
    .await;
    assert_eq!(called["user_reported"], true);
    let id = &called["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    app.act_ok(&c.desk, id, "resolve", resolution()).await;
    // The reporter may be corrected, never removed.
    let problem = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &c.desk,
            json!({"reporter": null}),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["reporter"]);
    // `user_reported` is read-only.
    app.patch(
        &format!("/api/v1/incidents/{id}"),
        &c.desk,
        json!({"user_reported": false}),
    )
    .refused("validation_failed")
    .await;
    let corrected = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &c.desk,
            json!({"reporter": {"name": "王医生", "phone": "0532-8888-0000"}, "channel": "other"}),
        )
        .ok()
        .await;
    assert_eq!(corrected["user_reported"], true);
    app.act(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .refused("confirmation_required")
        .await;
    app.act_ok(&c.desk, id, "confirm", json!({"channel": "phone"}))
        .await;
    app.act_ok(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .await;
}

#[tokio::test]
async fn withdrawal_is_the_reporters_decision() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = app
        .create_incident(&c.portal, json!({"title": "网页打不开"}))
        .await;
    let id = &incident["id"];
    let withdraw = json!({"closure_code": "withdrawn", "note": "用户不再需要"});
    app.act(&c.desk, id, "close", withdraw.clone())
        .refused("confirmation_required")
        .await;
    // The desk records a request only with how it came and what was said.
    let problem = app
        .act(&c.desk, id, "withdraw", json!({}))
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["channel", "note"]);
    // Another organisation's user does not learn the incident exists.
    let admin = app.admin_token().await;
    let other = app.create_customer(&admin, "OTHER").await;
    let (_, stranger) = app
        .create_user(&admin, "stranger", &["customer"], Some(other))
        .await;
    app.act(&stranger, id, "withdraw", json!({}))
        .refused("not_found")
        .await;
    app.act(
        &c.l2,
        id,
        "withdraw",
        json!({"channel": "phone", "note": "x"}),
    )
    .refused("forbidden")
    .await;
    // The reporter's own user asks.
    let asked = app
        .act_ok(&c.portal, id, "withdraw", json!({"note": "问题已自行恢复"}))
        .await;
    assert!(asked["withdrawal_requested_at"].is_string());
    assert_eq!(asked["status"], "new");
    let closed = app.act_ok(&c.desk, id, "close", withdraw).await;
    assert_eq!(closed["closure_code"], "withdrawn");
    let journal = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.portal)
        .ok()
        .await;
    let entry = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "withdraw")
        .expect("a withdraw entry");
    assert_eq!(entry["visibility"], "public");
    assert_eq!(entry["comment"], "问题已自行恢复");
}

#[tokio::test]
async fn incidents_are_handed_on_within_their_tier() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let admin = app.admin_token().await;
    let (l2_bis, l2_bis_token) = app
        .create_user(&admin, "engineer2", &["l2_engineer"], None)
        .await;
    let (desk_bis, _) = app
        .create_user(&admin, "desk2", &["service_desk"], None)
        .await;
    // Integrations subscribe to hand-offs; nothing listens here, the delivery is only queued.
    app.post(
        "/api/v1/webhooks",
        &admin,
        json!({"url": "https://hooks.example.com/hand-offs", "events": ["incident.assigned"],
               "secret": "a-secret-of-sixteen-chars"}),
    )
    .created()
    .await;
    let incident = app
        .create_incident(&c.portal, json!({"title": "数据库连接超时"}))
        .await;
    let id = &incident["id"];
    // Unassigned incidents are the desk's queue.
    let unassigned = app
        .get("/api/v1/incidents?assignee_id=none", &c.desk)
        .ok()
        .await;
    assert_eq!(pluck(&unassigned["items"], "id"), [id]);
    app.get("/api/v1/incidents?assignee_id=nobody", &c.desk)
        .refused("validation_failed")
        .await;
    // L1 shift change, by the service desk, to another service-desk user.
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    let handed = app
        .act_ok(
            &c.desk,
            id,
            "assign",
            json!({"assignee_id": desk_bis, "reason": "交接班"}),
        )
        .await;
    assert_eq!(handed["assignee_id"], desk_bis);
    let empty = app
        .get("/api/v1/incidents?assignee_id=none", &c.desk)
        .ok()
        .await;
    assert!(empty["items"].as_array().unwrap().is_empty());
    let mine = app
        .get(
            &format!("/api/v1/incidents?assignee_id={desk_bis}"),
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(pluck(&mine["items"], "id"), [id]);
    // An L2 engineer is not an L1 assignee.
    let problem = app
        .act(
            &c.desk,
            id,
            "assign",
            json!({"assignee_id": c.l2_id, "reason": "x"}),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["assignee_id"]);
    app.act(&c.desk, id, "assign", json!({"assignee_id": desk_bis}))
        .refused("validation_failed")
        .await;

    // L2 → L2 specialist: the engineer hands it on; the desk may not.
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.desk,
        json!({"kind": "functional", "assignee_id": c.l2_id, "diagnosis": "初步判断为数据库锁等待"}),
    )
    .created()
    .await;
    app.act(
        &c.desk,
        id,
        "assign",
        json!({"assignee_id": l2_bis, "reason": "x"}),
    )
    .refused("forbidden")
    .await;
    let specialist = app
        .act_ok(
            &c.l2,
            id,
            "assign",
            json!({"assignee_id": l2_bis, "reason": "数据库专项"}),
        )
        .await;
    assert_eq!(specialist["assignee_id"], l2_bis);
    assert_eq!(specialist["tier"], "l2");
    // The new assignee works it; an incident manager may hand it back.
    app.act_ok(
        &l2_bis_token,
        id,
        "workaround",
        json!({"description": "重启连接池"}),
    )
    .await;
    app.act_ok(
        &c.manager,
        id,
        "assign",
        json!({"assignee_id": c.l2_id, "reason": "专项完成"}),
    )
    .await;
    assert_eq!(events_about(&app, "incident.assigned", id), 3);
    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    let queued = diesel::sql_query(
        "SELECT count(*) AS count FROM webhook_deliveries d \
         JOIN outbox_events e ON e.id = d.event_id WHERE e.event_type = 'incident.assigned'",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .count;
    assert_eq!(queued, 3);
    let journal = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.manager)
        .ok()
        .await;
    let assigns: Vec<&Value> = journal
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "assign")
        .collect();
    assert_eq!(assigns.len(), 3);
    assert!(assigns.iter().all(|e| e["visibility"] == "internal"));
    assert_eq!(assigns[1]["comment"], "数据库专项");
}

#[tokio::test]
async fn a_customer_reads_the_public_journal_without_the_desks_internal_work() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": "查询数据不准确", "subcategory": "query_inaccurate"}),
        )
        .await;
    let id = &incident["id"];
    let secret = "内部判断：疑似厂商补丁缺陷";
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.desk,
        json!({"kind": "functional", "assignee_id": c.l2_id, "diagnosis": secret}),
    )
    .created()
    .await;
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.l2,
        json!({"kind": "hierarchical", "reason": secret}),
    )
    .created()
    .await;
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.l2,
        json!({"kind": "priority", "level": "high", "reason": secret}),
    )
    .created()
    .await;
    app.post(
        &format!("/api/v1/incidents/{id}/notes"),
        &c.l2,
        json!({"visibility": "internal", "body": secret}),
    )
    .created()
    .await;
    app.act_ok(&c.l2, id, "resolve", resolution()).await;

    let staff = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.desk)
        .ok()
        .await;
    assert!(staff.to_string().contains(secret));
    for entry in staff.as_array().unwrap() {
        assert!(["public", "internal"].contains(&entry["visibility"].as_str().unwrap()));
    }
    let seen = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.portal)
        .ok()
        .await;
    assert!(!seen.to_string().contains(secret), "{seen}");
    assert!(!seen.to_string().contains("\"assignee_id\""), "{seen}");
    let actions = pluck(&seen, "action");
    assert_eq!(
        actions,
        ["created", "accept", "escalate", "resolve"],
        "{seen}"
    );
    let level_change = &seen.as_array().unwrap()[2];
    let mut fields = pluck(&level_change["changes"], "field");
    fields.sort_by_key(|f| f.to_string());
    assert_eq!(fields, ["due_at", "level"], "{seen}");
    assert_eq!(level_change["comment"], Value::Null);
    assert!(
        seen.as_array()
            .unwrap()
            .iter()
            .all(|e| e["visibility"] == "public")
    );
}

#[tokio::test]
async fn a_problem_tickets_change_reaches_the_incident_and_closing_cancels_open_tickets() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let manager_id = app.get("/api/v1/users/me", &c.manager).ok().await["id"].clone();
    let ops_id = app.get("/api/v1/users/me", &c.ops).ok().await["id"].clone();
    let incident = app
        .create_incident(&c.portal, json!({"title": "同一问题反复出现"}))
        .await;
    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.desk,
        json!({"kind": "functional", "assignee_id": c.l2_id, "diagnosis": "需要问题管理"}),
    )
    .created()
    .await;
    let problem = app
        .post(
            &format!("/api/v1/incidents/{id}/coordination-tickets"),
            &c.l2,
            json!({"kind": "problem", "assignee_id": manager_id, "summary": "根因分析", "details": "反复出现"}),
        )
        .created()
        .await;
    let ticket =
        |t: &Value, action: &str| format!("/api/v1/coordination-tickets/{}/{action}", t["id"]);
    app.post(&ticket(&problem, "accept"), &c.manager, json!({}))
        .ok()
        .await;
    app.post(
        &ticket(&problem, "resolve"),
        &c.manager,
        json!({"analysis": "索引损坏", "process": "重建索引", "result": "恢复",
               "root_cause": "存储故障", "change_ref": "CHG-2026-042"}),
    )
    .ok()
    .await;
    let read = app
        .get(&format!("/api/v1/incidents/{id}"), &c.desk)
        .ok()
        .await;
    assert_eq!(read["change_ref"], "CHG-2026-042");

    // A ticket still open when the reporter withdraws is cancelled with the closure.
    let open = app
        .post(
            &format!("/api/v1/incidents/{id}/coordination-tickets"),
            &c.l2,
            json!({"kind": "customer_issue", "assignee_id": ops_id, "summary": "现场网络", "details": "检查交换机"}),
        )
        .created()
        .await;
    app.act_ok(&c.portal, id, "withdraw", json!({})).await;
    app.act_ok(
        &c.desk,
        id,
        "close",
        json!({"closure_code": "withdrawn", "note": "用户撤回"}),
    )
    .await;
    let cancelled = app
        .get(
            &format!("/api/v1/coordination-tickets/{}", open["id"]),
            &c.manager,
        )
        .ok()
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        cancelled["cancel_reason"]
            .as_str()
            .unwrap()
            .contains("closed as withdrawn")
    );
    let resolved = app
        .get(
            &format!("/api/v1/coordination-tickets/{}", problem["id"]),
            &c.manager,
        )
        .ok()
        .await;
    assert_eq!(resolved["status"], "resolved");
}

#[tokio::test]
async fn an_unanswered_call_back_is_an_attempt_and_the_measures_count_incidents() {
    let app = TestApp::spawn_with(&[("FOLLOW_UP_MAX_ATTEMPTS", "3")]).await;
    let c = app.cast().await;
    // Closed on 5 March (Shanghai); follow-ups due 72 h later.
    let reached_late = closed_history(
        &app,
        &c,
        "2025-03-05T01:00:00Z",
        "2025-03-05T02:00:00Z",
        "2025-03-05T03:00:00Z",
        "resolved",
    )
    .await;
    let never_reached = closed_history(
        &app,
        &c,
        "2025-03-05T01:00:00Z",
        "2025-03-05T02:00:00Z",
        "2025-03-05T03:00:00Z",
        "unresolved",
    )
    .await;
    let due_ids = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["incident_id"].as_i64().unwrap())
            .collect()
    };
    let call = |incident: &Value, reached: bool, satisfaction: Option<i64>| {
        let mut body = json!({"channel": "phone", "reached": reached});
        if let Some(s) = satisfaction {
            body["satisfaction"] = json!(s);
        }
        (
            format!("/api/v1/incidents/{}/follow-ups", incident["id"]),
            body,
        )
    };
    // Nobody answers, twice, on time: both incidents stay in the queue.
    app.clock.set(at("2025-03-06T00:00:00Z"));
    for incident in [&reached_late, &never_reached] {
        let (path, body) = call(incident, false, None);
        let attempt = app.post(&path, &c.desk, body).created().await;
        assert_eq!(attempt["on_time"], true);
    }
    let (path, body) = call(&never_reached, false, None);
    app.post(&path, &c.desk, body).created().await;
    let queue = app.get("/api/v1/follow-ups/due", &c.desk).ok().await;
    assert_eq!(
        due_ids(&queue),
        [
            reached_late["id"].as_i64().unwrap(),
            never_reached["id"].as_i64().unwrap()
        ]
    );
    // The third unanswered call is the last one owed; the other user answers, late, in April.
    app.clock.set(at("2025-04-02T00:00:00Z"));
    let (path, body) = call(&never_reached, false, None);
    app.post(&path, &c.desk, body).created().await;
    let (path, body) = call(&reached_late, true, Some(4));
    app.post(&path, &c.desk, body).created().await;
    let queue = app.get("/api/v1/follow-ups/due", &c.desk).ok().await;
    assert!(due_ids(&queue).is_empty(), "{queue}");
    // A later call is a record, not another followed-up incident.
    let (path, body) = call(&reached_late, true, Some(2));
    app.post(&path, &c.desk, body).created().await;

    let months = app
        .get(
            "/api/v1/kpis?granularity=month&from=2025-03&to=2025-04",
            &c.manager,
        )
        .ok()
        .await;
    let march = &months["items"][0];
    let april = &months["items"][1];
    assert_eq!(march["follow_ups"], 0, "{months}");
    assert_eq!(march["follow_up_timeliness"], Value::Null);
    assert_eq!(march["mean_satisfaction"], Value::Null);
    // Two incidents followed up in April (six records), neither on time.
    assert_eq!(april["follow_ups"], 2, "{months}");
    assert_eq!(april["follow_ups_on_time"], 0);
    assert_eq!(april["follow_up_timeliness"], 0.0);
    assert_eq!(april["mean_satisfaction"], 3.0);
}

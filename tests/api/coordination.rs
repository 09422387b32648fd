//! Coordination tickets (SPEC §6): the hand-off to operations that blocks resolving, the
//! hand-off to problem management that does not, who may do what, and the refusals.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{Value, json};

use crate::helpers::*;

/// An incident the customer reported, taken by the desk and escalated to the cast's L2 engineer.
pub(crate) async fn at_l2(app: &TestApp, c: &Cast) -> Value {
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": "收费终端无法连接服务器", "subcategory": "module_input_blocked"}),
        )
        .await;
    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    app.post(
        &format!("/api/v1/incidents/{id}/escalations"),
        &c.desk,
        json!({"kind": "functional", "assignee_id": c.l2_id, "diagnosis": "网络不通"}),
    )
    .created()
    .await;
    incident
}

async fn user_id(app: &TestApp, token: &str) -> i64 {
    app.get("/api/v1/users/me", token).ok().await["id"]
        .as_i64()
        .unwrap()
}

fn ticket_path(ticket: &Value, action: &str) -> String {
    format!("/api/v1/coordination-tickets/{}/{action}", ticket["id"])
}

fn resolution() -> Value {
    json!({"analysis": "交换机电源模块损坏", "process": "更换电源模块", "result": "网络恢复"})
}

#[derive(QueryableByName)]
struct EventType {
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = BigInt)]
    ticket: i64,
}

/// The coordination events in the outbox, in order, with their ticket ids.
fn outbox(app: &TestApp) -> Vec<(String, i64)> {
    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    diesel::sql_query(
        "SELECT event_type, (data->'coordination_ticket'->>'id')::bigint AS ticket \
         FROM outbox_events WHERE event_type LIKE 'coordination.%' ORDER BY id",
    )
    .load::<EventType>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|e| (e.event_type, e.ticket))
    .collect()
}

/// Whether incident `id` offers `resolve` to `token`: in its own answer, and in its entry of the
/// in-progress list.
async fn offers_resolve(app: &TestApp, token: &str, id: &Value) -> [bool; 2] {
    let offers = |incident: &Value| {
        incident["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("resolve"))
    };
    let one = app
        .get(&format!("/api/v1/incidents/{id}"), token)
        .ok()
        .await;
    let page = app
        .get("/api/v1/incidents?status=in_progress&limit=100", token)
        .ok()
        .await;
    let listed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|incident| &incident["id"] == id)
        .expect("the incident in the list");
    [offers(&one), offers(listed)]
}

#[tokio::test]
async fn a_customer_issue_blocks_resolving_until_operations_resolve_it() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let ops_id = user_id(&app, &c.ops).await;
    let incident = at_l2(&app, &c).await;
    let id = &incident["id"];

    let response = app
        .post(
            &format!("/api/v1/incidents/{id}/coordination-tickets"),
            &c.l2,
            json!({"kind": "customer_issue", "assignee_id": ops_id,
                   "summary": "医院机房交换机故障", "details": "收费终端 ping 不通网关"}),
        )
        .await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let ticket = expect_created(response).await;
    assert_eq!(
        location,
        format!("/api/v1/coordination-tickets/{}", ticket["id"])
    );
    assert_eq!(
        (&ticket["status"], &ticket["kind"], &ticket["incident_id"]),
        (&json!("open"), &json!("customer_issue"), id)
    );

    // While it is open, resolving the incident is refused, and not offered: neither in the
    // incident nor in the list, while an incident without such a ticket offers it there.
    let unblocked = at_l2(&app, &c).await;
    assert!(
        offers_resolve(&app, &c.l2, id)
            .await
            .iter()
            .all(|&offered| !offered)
    );
    assert_eq!(
        offers_resolve(&app, &c.l2, &unblocked["id"]).await,
        [true, true]
    );
    app.act(&c.l2, id, "resolve", crate::helpers::resolution())
        .refused("open_coordination_ticket")
        .await;

    // The operations queue, accept, resolve.
    let queue = app
        .get(
            &format!("/api/v1/coordination-tickets?assignee_id={ops_id}&status=open"),
            &c.ops,
        )
        .ok()
        .await;
    assert_eq!(pluck(&queue["items"], "id"), [&ticket["id"]]);
    // Accepting needs no body at all.
    let accepted = app
        .send_raw(
            reqwest::Method::POST,
            &ticket_path(&ticket, "accept"),
            Some(&c.ops),
            "",
        )
        .ok()
        .await;
    assert_eq!(
        (&accepted["status"], &accepted["version"]),
        (&json!("accepted"), &json!(2))
    );
    app.act(&c.l2, id, "resolve", crate::helpers::resolution())
        .refused("open_coordination_ticket")
        .await;
    let resolved = app
        .post(&ticket_path(&ticket, "resolve"), &c.ops, resolution())
        .ok()
        .await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["result"], "网络恢复");

    // The reply is in the incident's journal for staff; it is the desk's internal work, so
    // the customer's journal does not have it (SPEC §4.3).
    let customers = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.portal)
        .ok()
        .await;
    assert!(!pluck(&customers, "action").contains(&&json!("coordination_resolved")));
    let journal = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.desk)
        .ok()
        .await;
    let entry = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "coordination_resolved")
        .expect("a coordination_resolved entry");
    assert_eq!(entry["visibility"], "internal");
    let comment = entry["comment"].as_str().unwrap();
    assert!(
        comment.contains("原因分析：交换机电源模块损坏") && comment.contains("处理结果：网络恢复")
    );

    assert_eq!(offers_resolve(&app, &c.l2, id).await, [true, true]);
    app.act_ok(&c.l2, id, "resolve", crate::helpers::resolution())
        .await;

    let history = app
        .get(&ticket_path(&ticket, "history"), &c.manager)
        .ok()
        .await;
    assert_eq!(pluck(&history, "action"), ["created", "accept", "resolve"]);
    let ticket_id = ticket["id"].as_i64().unwrap();
    assert_eq!(
        outbox(&app),
        [
            ("coordination.created".to_owned(), ticket_id),
            ("coordination.resolved".to_owned(), ticket_id)
        ]
    );
}

#[tokio::test]
async fn a_problem_ticket_goes_to_problem_management_and_never_blocks() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let manager_id = user_id(&app, &c.manager).await;
    let incident = at_l2(&app, &c).await;
    let id = &incident["id"];
    let path = format!("/api/v1/incidents/{id}/coordination-tickets");
    let ticket = app
        .post(
            &path,
            &c.l2,
            json!({"kind": "problem", "assignee_id": manager_id, "summary": "收费模块编码需变更"}),
        )
        .created()
        .await;
    app.post(&ticket_path(&ticket, "accept"), &c.manager, json!({}))
        .ok()
        .await;
    let problem = app
        .post(&ticket_path(&ticket, "resolve"), &c.manager, resolution())
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["root_cause"]);
    let mut answer = resolution();
    answer["root_cause"] = json!("编码表缺少新项目");
    answer["change_ref"] = json!("CHG-2025-0042");
    let resolved = app
        .post(&ticket_path(&ticket, "resolve"), &c.manager, answer)
        .ok()
        .await;
    assert_eq!(resolved["change_ref"], "CHG-2025-0042");

    // Another problem ticket, still open, does not block resolving.
    app.post(
        &path,
        &c.l2,
        json!({"kind": "problem", "assignee_id": c.l2_id, "summary": "另一项变更"}),
    )
    .created()
    .await;
    app.act_ok(&c.l2, id, "resolve", crate::helpers::resolution())
        .await;
}

#[tokio::test]
async fn who_may_do_what_and_in_which_state() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let ops_id = user_id(&app, &c.ops).await;
    let incident = at_l2(&app, &c).await;
    let path = format!("/api/v1/incidents/{}/coordination-tickets", incident["id"]);
    let issue = |assignee: i64| json!({"kind": "customer_issue", "assignee_id": assignee, "summary": "现场网络"});

    // Opened by L2 engineers and incident managers; staff only; the assignee fits the kind.
    app.post(&path, &c.desk, issue(ops_id))
        .refused("forbidden")
        .await;
    app.post(&path, &c.portal, issue(ops_id))
        .refused("forbidden")
        .await;
    for (body, field) in [
        (issue(c.l2_id), "assignee_id"),
        (issue(999_999), "assignee_id"),
        (
            json!({"kind": "problem", "assignee_id": ops_id, "summary": "x"}),
            "assignee_id",
        ),
        (
            json!({"kind": "customer_issue", "assignee_id": ops_id, "summary": " "}),
            "summary",
        ),
    ] {
        let problem = app
            .post(&path, &c.l2, body)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field]);
    }
    let unknown_kind = app
        .post(
            &path,
            &c.l2,
            json!({"kind": "complaint", "assignee_id": ops_id, "summary": "x"}),
        )
        .await;
    assert!(unknown_kind.status().is_client_error());
    app.post(
        "/api/v1/incidents/999999/coordination-tickets",
        &c.l2,
        issue(ops_id),
    )
    .refused("not_found")
    .await;

    let ticket = app.post(&path, &c.l2, issue(ops_id)).created().await;
    // Only the assignee accepts; a resolve before accepting is a state conflict.
    app.post(&ticket_path(&ticket, "accept"), &c.l2, json!({}))
        .refused("forbidden")
        .await;
    let conflict = app
        .post(&ticket_path(&ticket, "resolve"), &c.ops, resolution())
        .refused("illegal_transition")
        .await;
    assert_eq!(conflict["state"], "open");
    assert_eq!(conflict["allowed_actions"], json!(["accept", "cancel"]));
    // A stale If-Match is refused.
    app.send_if_match(
        reqwest::Method::POST,
        &ticket_path(&ticket, "accept"),
        &c.ops,
        "\"7\"",
        json!({}),
    )
    .refused("version_mismatch")
    .await;
    // Cancelled by its creator or an incident manager, with a reason.
    let cancel = json!({"reason": "用户已自行恢复"});
    app.post(&ticket_path(&ticket, "cancel"), &c.ops, cancel.clone())
        .refused("forbidden")
        .await;
    app.post(
        &ticket_path(&ticket, "cancel"),
        &c.manager,
        json!({"reason": " "}),
    )
    .refused("validation_failed")
    .await;
    let cancelled = app
        .post(&ticket_path(&ticket, "cancel"), &c.manager, cancel.clone())
        .ok()
        .await;
    assert_eq!(cancelled["cancel_reason"], "用户已自行恢复");
    let conflict = app
        .post(&ticket_path(&ticket, "cancel"), &c.l2, cancel)
        .refused("illegal_transition")
        .await;
    assert_eq!(conflict["allowed_actions"], json!([]));

    // Reads are staff-only; unknown tickets are 404.
    app.get(
        &format!("/api/v1/coordination-tickets/{}", ticket["id"]),
        &c.portal,
    )
    .refused("forbidden")
    .await;
    let read = app
        .get(
            &format!("/api/v1/coordination-tickets/{}", ticket["id"]),
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(read["status"], "cancelled");
    app.get("/api/v1/coordination-tickets/424242", &c.desk)
        .refused("not_found")
        .await;
    app.get("/api/v1/coordination-tickets?status=lost", &c.desk)
        .refused("validation_failed")
        .await;

    // A closed incident takes no more tickets.
    let closed = app
        .create_incident(&c.desk, json!({"title": "撤销", "customer_id": c.customer}))
        .await;
    app.act_ok(
        &c.desk,
        &closed["id"],
        "withdraw",
        json!({"channel": "phone", "note": "用户来电撤回"}),
    )
    .await;
    app.act_ok(
        &c.desk,
        &closed["id"],
        "close",
        json!({"closure_code": "withdrawn", "note": "用户撤销"}),
    )
    .await;
    app.post(
        &format!("/api/v1/incidents/{}/coordination-tickets", closed["id"]),
        &c.l2,
        issue(ops_id),
    )
    .refused("incident_closed")
    .await;
}

//! Polling clients (SPEC §12): `updated_since` and `sort=updated_at` on the lists of incidents,
//! coordination tickets and knowledge entries walk what changed, in the order it changed.

use chrono::{Duration, SecondsFormat};
use serde_json::{Value, json};

use crate::helpers::*;

fn ids(page: &Value) -> Vec<i64> {
    pluck(&page["items"], "id")
        .into_iter()
        .map(|id| id.as_i64().unwrap())
        .collect()
}

/// Every item of a list, walked one per page.
async fn walk(app: &TestApp, token: &str, path: &str) -> Vec<i64> {
    walk_ids(app, token, path, 1).await
}

fn since(app: &TestApp) -> String {
    use incident_desk::domain::clock::Clock;
    app.clock.now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn incidents_are_walked_in_the_order_they_changed() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let mut created = Vec::new();
    for title in ["一", "二", "三"] {
        let incident = app
            .create_incident(&c.desk, json!({"title": title, "customer_id": c.customer}))
            .await;
        created.push(incident["id"].as_i64().unwrap());
        app.clock.advance(Duration::seconds(1));
    }
    app.clock.advance(Duration::minutes(5));
    let changed_from = since(&app);
    app.act_ok(&c.desk, &json!(created[0]), "accept", json!({}))
        .await;

    let all = walk(&app, &c.desk, "/api/v1/incidents?sort=updated_at").await;
    assert_eq!(all, [created[1], created[2], created[0]]);
    let newest_first = walk(&app, &c.desk, "/api/v1/incidents?sort=-updated_at").await;
    assert_eq!(newest_first, [created[0], created[2], created[1]]);
    let changed = app
        .get(
            &format!("/api/v1/incidents?sort=updated_at&updated_since={changed_from}"),
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(ids(&changed), [created[0]]);
    assert_eq!(changed["items"][0]["status"], "in_progress");

    // A cursor continues only the order it was made in; a time must be RFC 3339.
    let first = app
        .get("/api/v1/incidents?sort=updated_at&limit=1", &c.desk)
        .ok()
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let problem = app
        .get(&format!("/api/v1/incidents?cursor={cursor}"), &c.desk)
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["cursor"]);
    let problem = app
        .get("/api/v1/incidents?updated_since=yesterday", &c.desk)
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["updated_since"]);
}

#[tokio::test]
async fn coordination_tickets_and_knowledge_are_walked_in_the_order_they_changed() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = crate::coordination::at_l2(&app, &c).await;
    let path = format!("/api/v1/incidents/{}/coordination-tickets", incident["id"]);
    let mut tickets = Vec::new();
    for summary in ["编码变更", "接口变更"] {
        let ticket = app
            .post(
                &path,
                &c.l2,
                json!({"kind": "problem", "assignee_id": c.l2_id, "summary": summary}),
            )
            .created()
            .await;
        tickets.push(ticket["id"].as_i64().unwrap());
        app.clock.advance(Duration::seconds(1));
    }
    let mut entries = Vec::new();
    for title in ["升级出错", "打印失败"] {
        let entry = app
            .post(
                "/api/v1/knowledge",
                &c.desk,
                json!({"title": title, "symptom": "症状", "solution": "方案",
                       "subcategory": "upgrade_error"}),
            )
            .created()
            .await;
        entries.push(entry["id"].as_i64().unwrap());
        app.clock.advance(Duration::seconds(1));
    }
    app.clock.advance(Duration::minutes(5));
    let changed_from = since(&app);
    app.post(
        &format!("/api/v1/coordination-tickets/{}/accept", tickets[0]),
        &c.l2,
        json!({}),
    )
    .ok()
    .await;
    app.post(
        &format!("/api/v1/knowledge/{}/submit", entries[0]),
        &c.desk,
        json!({}),
    )
    .ok()
    .await;

    for (list, made) in [
        ("/api/v1/coordination-tickets", &tickets),
        ("/api/v1/knowledge", &entries),
    ] {
        // Oldest first by default; by last change with sort=updated_at, page by page.
        assert_eq!(walk(&app, &c.manager, &format!("{list}?")).await, *made);
        assert_eq!(
            walk(&app, &c.manager, &format!("{list}?sort=updated_at")).await,
            [made[1], made[0]]
        );
        let changed = app
            .get(
                &format!("{list}?sort=updated_at&updated_since={changed_from}"),
                &c.manager,
            )
            .ok()
            .await;
        assert_eq!(ids(&changed), [made[0]], "{list}");
        let first = app
            .get(&format!("{list}?sort=updated_at&limit=1"), &c.manager)
            .ok()
            .await;
        let cursor = first["next_cursor"].as_str().unwrap();
        app.get(&format!("{list}?cursor={cursor}"), &c.manager)
            .refused("validation_failed")
            .await;
        app.get(&format!("{list}?sort=created_at"), &c.manager)
            .refused("validation_failed")
            .await;
    }
    // A search ordered by change still matches only what it searches for.
    let found = app
        .get(
            "/api/v1/knowledge?q=%E5%8D%87%E7%BA%A7&sort=updated_at",
            &c.manager,
        )
        .ok()
        .await;
    assert_eq!(ids(&found), [entries[0]]);
}

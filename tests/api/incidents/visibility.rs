//! Who sees what (SPEC §2) and the journal (§4.3): customer users see their organisation's
//! incidents and public notes only.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn customers_see_only_their_organisation_and_never_internal_notes() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "OTHER").await;
    let (_, stranger) = app
        .create_user(&c.admin, "stranger", &["customer"], Some(other))
        .await;
    let incident = app
        .create_incident(&c.portal, json!({"title": "mine"}))
        .await;
    let id = &incident["id"];
    let theirs = app
        .create_incident(&stranger, json!({"title": "theirs"}))
        .await;

    app.get(&format!("/api/v1/incidents/{id}"), &stranger)
        .refused("not_found")
        .await;
    for path in ["notes", "history"] {
        app.get(&format!("/api/v1/incidents/{id}/{path}"), &stranger)
            .refused("not_found")
            .await;
    }
    app.post(
        &format!("/api/v1/incidents/{id}/notes"),
        &stranger,
        json!({"body": "hi"}),
    )
    .refused("not_found")
    .await;
    let listed = app.get("/api/v1/incidents", &c.portal).ok().await;
    let ids = pluck(&listed["items"], "id");
    assert_eq!(ids, [id]);
    let asked = app
        .get(&format!("/api/v1/incidents?customer_id={other}"), &c.portal)
        .ok()
        .await;
    assert_eq!(asked["items"], json!([]));
    app.post(
        "/api/v1/incidents",
        &c.portal,
        json!({"title": "x", "customer_id": other}),
    )
    .refused("forbidden")
    .await;
    let problem = app
        .post(
            "/api/v1/incidents",
            &c.portal,
            json!({"title": "x", "level": "high"}),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["level"]);
    assert_ne!(theirs["customer_id"], incident["customer_id"]);

    // Notes: staff write internal ones by default; customers never see them.
    let internal = app
        .post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.desk,
            json!({"body": "内部：疑似数据库锁"}),
        )
        .created()
        .await;
    assert_eq!(internal["visibility"], "internal");
    let public = app
        .post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.desk,
            json!({"body": "正在处理", "visibility": "public"}),
        )
        .created()
        .await;
    let from_customer = app
        .post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.portal,
            json!({"body": "谢谢"}),
        )
        .created()
        .await;
    assert_eq!(from_customer["visibility"], "public");
    app.post(
        &format!("/api/v1/incidents/{id}/notes"),
        &c.portal,
        json!({"body": "x", "visibility": "internal"}),
    )
    .refused("forbidden")
    .await;

    let seen = app
        .get(&format!("/api/v1/incidents/{id}/notes"), &c.portal)
        .ok()
        .await;
    let seen_ids = pluck(&seen, "id");
    assert_eq!(seen_ids, [&public["id"], &from_customer["id"]]);
    let staff_view = app
        .get(&format!("/api/v1/incidents/{id}/notes"), &c.desk)
        .ok()
        .await;
    assert_eq!(staff_view.as_array().unwrap().len(), 3);

    let history = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.portal)
        .ok()
        .await;
    let text = history.to_string();
    assert!(!text.contains("疑似数据库锁"));
    assert_eq!(
        history
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["action"] == "note")
            .count(),
        2
    );
    let staff_history = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.desk)
        .ok()
        .await;
    assert_eq!(
        staff_history
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["action"] == "note")
            .count(),
        3
    );
    let body = app
        .get(&format!("/api/v1/incidents/{id}"), &c.portal)
        .ok()
        .await;
    assert!(!body.to_string().contains("疑似数据库锁"));

    // Customers do not edit or work incidents.
    app.patch(
        &format!("/api/v1/incidents/{id}"),
        &c.portal,
        json!({"title": "x"}),
    )
    .refused("forbidden")
    .await;
    // Admins are not incident staff.
    app.get("/api/v1/incidents", &c.admin)
        .refused("forbidden")
        .await;
    app.post(
        "/api/v1/incidents",
        &c.admin,
        json!({"title": "x", "customer_id": c.customer}),
    )
    .refused("forbidden")
    .await;
    app.send(Method::GET, "/api/v1/incidents", None, None)
        .refused("unauthorized")
        .await;
}

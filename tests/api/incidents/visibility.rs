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

    expect_problem(
        app.get(&format!("/api/v1/incidents/{id}"), &stranger).await,
        "not_found",
    )
    .await;
    for path in ["notes", "history"] {
        expect_problem(
            app.get(&format!("/api/v1/incidents/{id}/{path}"), &stranger)
                .await,
            "not_found",
        )
        .await;
    }
    expect_problem(
        app.post(
            &format!("/api/v1/incidents/{id}/notes"),
            &stranger,
            json!({"body": "hi"}),
        )
        .await,
        "not_found",
    )
    .await;
    let listed = expect_ok(app.get("/api/v1/incidents", &c.portal).await).await;
    let ids = pluck(&listed["items"], "id");
    assert_eq!(ids, [id]);
    let asked = expect_ok(
        app.get(&format!("/api/v1/incidents?customer_id={other}"), &c.portal)
            .await,
    )
    .await;
    assert_eq!(asked["items"], json!([]));
    expect_problem(
        app.post(
            "/api/v1/incidents",
            &c.portal,
            json!({"title": "x", "customer_id": other}),
        )
        .await,
        "forbidden",
    )
    .await;
    let problem = expect_problem(
        app.post(
            "/api/v1/incidents",
            &c.portal,
            json!({"title": "x", "level": "high"}),
        )
        .await,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["level"]);
    assert_ne!(theirs["customer_id"], incident["customer_id"]);

    // Notes: staff write internal ones by default; customers never see them.
    let internal = expect_created(
        app.post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.desk,
            json!({"body": "内部：疑似数据库锁"}),
        )
        .await,
    )
    .await;
    assert_eq!(internal["visibility"], "internal");
    let public = expect_created(
        app.post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.desk,
            json!({"body": "正在处理", "visibility": "public"}),
        )
        .await,
    )
    .await;
    let from_customer = expect_created(
        app.post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.portal,
            json!({"body": "谢谢"}),
        )
        .await,
    )
    .await;
    assert_eq!(from_customer["visibility"], "public");
    expect_problem(
        app.post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.portal,
            json!({"body": "x", "visibility": "internal"}),
        )
        .await,
        "forbidden",
    )
    .await;

    let seen = expect_ok(
        app.get(&format!("/api/v1/incidents/{id}/notes"), &c.portal)
            .await,
    )
    .await;
    let seen_ids = pluck(&seen, "id");
    assert_eq!(seen_ids, [&public["id"], &from_customer["id"]]);
    let staff_view = expect_ok(
        app.get(&format!("/api/v1/incidents/{id}/notes"), &c.desk)
            .await,
    )
    .await;
    assert_eq!(staff_view.as_array().unwrap().len(), 3);

    let history = expect_ok(
        app.get(&format!("/api/v1/incidents/{id}/history"), &c.portal)
            .await,
    )
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
    let staff_history = expect_ok(
        app.get(&format!("/api/v1/incidents/{id}/history"), &c.desk)
            .await,
    )
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
    let body = expect_ok(app.get(&format!("/api/v1/incidents/{id}"), &c.portal).await).await;
    assert!(!body.to_string().contains("疑似数据库锁"));

    // Customers do not edit or work incidents.
    expect_problem(
        app.patch(
            &format!("/api/v1/incidents/{id}"),
            &c.portal,
            json!({"title": "x"}),
        )
        .await,
        "forbidden",
    )
    .await;
    // Admins are not incident staff.
    expect_problem(app.get("/api/v1/incidents", &c.admin).await, "forbidden").await;
    expect_problem(
        app.post(
            "/api/v1/incidents",
            &c.admin,
            json!({"title": "x", "customer_id": c.customer}),
        )
        .await,
        "forbidden",
    )
    .await;
    expect_problem(
        app.send(Method::GET, "/api/v1/incidents", None, None).await,
        "unauthorized",
    )
    .await;
}

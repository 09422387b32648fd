use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn item(name: &str, customer_id: i64) -> Value {
    json!({"name": name, "ci_type": "database_server", "customer_id": customer_id, "system": "HIS"})
}

#[tokio::test]
async fn staff_create_and_change_items_and_every_change_is_kept() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (desk_id, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let response = app
        .post(
            "/api/v1/configuration-items",
            &desk,
            item("his-db-01", customer),
        )
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created = expect_created(response).await;
    assert_eq!(created["system"], "HIS");

    let changed = app
        .patch(
            &location,
            &admin,
            json!({"system": "LIS", "ci_type": "database_server"}),
        )
        .ok()
        .await;
    assert_eq!(changed["system"], "LIS");
    assert_eq!(changed["version"], 2);
    // A change that changes nothing keeps the version and writes no history.
    let same = app
        .patch(&location, &admin, json!({"system": "LIS"}))
        .ok()
        .await;
    assert_eq!(same["version"], 2);

    let history = app.get(&format!("{location}/history"), &desk).ok().await;
    let entries = history.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "created");
    assert_eq!(entries[0]["actor_id"], desk_id);
    assert_eq!(entries[1]["action"], "updated");
    assert_eq!(
        entries[1]["changes"],
        json!([{"field": "system", "old": "HIS", "new": "LIS"}])
    );
}

#[tokio::test]
async fn item_names_are_unique_within_a_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = app.create_customer(&admin, "C1").await;
    let second = app.create_customer(&admin, "C2").await;
    app.post("/api/v1/configuration-items", &admin, item("gw", first))
        .created()
        .await;
    app.post("/api/v1/configuration-items", &admin, item("gw", second))
        .created()
        .await;
    app.post("/api/v1/configuration-items", &admin, item("gw", first))
        .refused("already_exists")
        .await;
    let problem = app
        .post("/api/v1/configuration-items", &admin, item("gw", 999_999))
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["customer_id"]);
    let problem = app
        .post(
            "/api/v1/configuration-items",
            &admin,
            json!({"name": " ", "ci_type": "", "customer_id": "one", "system": "S"}),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["customer_id"]);
    let problem = app
        .post(
            "/api/v1/configuration-items",
            &admin,
            json!({"name": " ", "ci_type": "", "customer_id": first, "system": "S"}),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["ci_type", "name"]);
}

#[tokio::test]
async fn customer_users_see_only_their_own_items() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let own = app.create_customer(&admin, "OWN").await;
    let other = app.create_customer(&admin, "OTHER").await;
    let mine = app
        .post("/api/v1/configuration-items", &admin, item("a", own))
        .created()
        .await;
    let theirs = app
        .post("/api/v1/configuration-items", &admin, item("b", other))
        .created()
        .await;
    let (_, portal) = app
        .create_user(&admin, "portal", &["customer"], Some(own))
        .await;

    let list = app.get("/api/v1/configuration-items", &portal).ok().await;
    let ids: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, [mine["id"].clone()]);
    let asked = app
        .get(
            &format!("/api/v1/configuration-items?customer_id={other}"),
            &portal,
        )
        .ok()
        .await;
    assert_eq!(asked["items"], json!([]));
    app.get(
        &format!("/api/v1/configuration-items/{}", mine["id"]),
        &portal,
    )
    .ok()
    .await;
    app.get(
        &format!("/api/v1/configuration-items/{}", theirs["id"]),
        &portal,
    )
    .refused("not_found")
    .await;
    app.post("/api/v1/configuration-items", &portal, item("c", own))
        .refused("forbidden")
        .await;
    app.get(
        &format!("/api/v1/configuration-items/{}/history", mine["id"]),
        &portal,
    )
    .refused("forbidden")
    .await;

    let staff_view = app
        .get(
            &format!("/api/v1/configuration-items?customer_id={other}"),
            &admin,
        )
        .ok()
        .await;
    assert_eq!(staff_view["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn stale_item_updates_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let created = app
        .post("/api/v1/configuration-items", &admin, item("x", customer))
        .created()
        .await;
    let path = format!("/api/v1/configuration-items/{}", created["id"]);
    app.patch(&path, &admin, json!({"name": "y"})).ok().await;
    app.send_if_match(Method::PATCH, &path, &admin, "\"1\"", json!({"name": "z"}))
        .refused("version_mismatch")
        .await;
    app.get("/api/v1/configuration-items/0/history", &admin)
        .refused("not_found")
        .await;
}

#[tokio::test]
async fn item_times_come_from_the_server_clock() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let at = chrono::DateTime::parse_from_rfc3339("2025-01-04T09:30:00Z")
        .unwrap()
        .to_utc();
    app.clock.set(at);
    let created = app
        .post("/api/v1/configuration-items", &admin, item("x", customer))
        .created()
        .await;
    assert_eq!(created["created_at"], "2025-01-04T09:30:00Z");
    app.clock.advance(chrono::Duration::minutes(5));
    let path = format!("/api/v1/configuration-items/{}", created["id"]);
    let changed = app.patch(&path, &admin, json!({"name": "y"})).ok().await;
    assert_eq!(changed["updated_at"], "2025-01-04T09:35:00Z");
    let history = app.get(&format!("{path}/history"), &admin).ok().await;
    assert_eq!(history[1]["created_at"], "2025-01-04T09:35:00Z");
}

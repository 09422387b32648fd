use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn admin_manages_customers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let response = app
        .post(
            "/api/v1/customers",
            &admin,
            json!({"code": "QD-HOSP-1", "name": " 青岛市第一人民医院 "}),
        )
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created = expect_created(response).await;
    assert_eq!(created["name"], "青岛市第一人民医院");
    assert_eq!(created["active"], true);
    let fetched = app.get(&location, &admin).ok().await;
    assert_eq!(fetched, created);

    let changed = app
        .patch(
            &location,
            &admin,
            json!({"name": "青岛一院", "active": false}),
        )
        .ok()
        .await;
    assert_eq!(changed["name"], "青岛一院");
    assert_eq!(changed["code"], "QD-HOSP-1");
    assert_eq!(changed["version"], 2);
    let inactive = app.get("/api/v1/customers?active=false", &admin).ok().await;
    assert_eq!(inactive["items"][0]["id"], created["id"]);
    let search = app.get("/api/v1/customers?q=hosp", &admin).ok().await;
    assert_eq!(search["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn customer_codes_are_unique_and_well_formed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer(&admin, "C1").await;
    app.post(
        "/api/v1/customers",
        &admin,
        json!({"code": "C1", "name": "Again"}),
    )
    .refused("already_exists")
    .await;
    let second = app.create_customer(&admin, "C2").await;
    app.patch(
        &format!("/api/v1/customers/{second}"),
        &admin,
        json!({"code": "C1"}),
    )
    .refused("already_exists")
    .await;
    for (body, fields) in [
        (json!({"code": "has space", "name": "X"}), vec!["code"]),
        (json!({"code": "", "name": ""}), vec!["code", "name"]),
        (json!({"code": "X9"}), vec!["name"]),
        (json!({"code": "X9", "name": "x".repeat(201)}), vec!["name"]),
    ] {
        let problem = app
            .post("/api/v1/customers", &admin, body)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), fields);
    }
}

#[tokio::test]
async fn staff_see_all_customers_and_customer_users_only_their_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let own = app.create_customer(&admin, "OWN").await;
    let other = app.create_customer(&admin, "OTHER").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let (_, portal) = app
        .create_user(&admin, "portal", &["customer"], Some(own))
        .await;

    let all = app.get("/api/v1/customers", &desk).ok().await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    app.get(&format!("/api/v1/customers/{other}"), &desk)
        .ok()
        .await;

    let mine = app.get("/api/v1/customers", &portal).ok().await;
    let ids: Vec<_> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [own]);
    app.get(&format!("/api/v1/customers/{own}"), &portal)
        .ok()
        .await;
    // Existence of other organisations does not leak: 404, not 403.
    app.get(&format!("/api/v1/customers/{other}"), &portal)
        .refused("not_found")
        .await;
    app.get("/api/v1/customers/777777", &desk)
        .refused("not_found")
        .await;
}

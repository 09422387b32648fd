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
    let fetched = expect_ok(app.get(&location, &admin).await).await;
    assert_eq!(fetched, created);

    let changed = expect_ok(
        app.patch(
            &location,
            &admin,
            json!({"name": "青岛一院", "active": false}),
        )
        .await,
    )
    .await;
    assert_eq!(changed["name"], "青岛一院");
    assert_eq!(changed["code"], "QD-HOSP-1");
    assert_eq!(changed["version"], 2);
    let inactive = expect_ok(app.get("/api/v1/customers?active=false", &admin).await).await;
    assert_eq!(inactive["items"][0]["id"], created["id"]);
    let search = expect_ok(app.get("/api/v1/customers?q=hosp", &admin).await).await;
    assert_eq!(search["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn customer_codes_are_unique_and_well_formed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer(&admin, "C1").await;
    expect_problem(
        app.post(
            "/api/v1/customers",
            &admin,
            json!({"code": "C1", "name": "Again"}),
        )
        .await,
        "already_exists",
    )
    .await;
    let second = app.create_customer(&admin, "C2").await;
    expect_problem(
        app.patch(
            &format!("/api/v1/customers/{second}"),
            &admin,
            json!({"code": "C1"}),
        )
        .await,
        "already_exists",
    )
    .await;
    for (body, fields) in [
        (json!({"code": "has space", "name": "X"}), vec!["code"]),
        (json!({"code": "", "name": ""}), vec!["code", "name"]),
        (json!({"code": "X9"}), vec!["name"]),
        (json!({"code": "X9", "name": "x".repeat(201)}), vec!["name"]),
    ] {
        let problem = expect_problem(
            app.post("/api/v1/customers", &admin, body).await,
            "validation_failed",
        )
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

    let all = expect_ok(app.get("/api/v1/customers", &desk).await).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    expect_ok(app.get(&format!("/api/v1/customers/{other}"), &desk).await).await;

    let mine = expect_ok(app.get("/api/v1/customers", &portal).await).await;
    let ids: Vec<_> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [own]);
    expect_ok(app.get(&format!("/api/v1/customers/{own}"), &portal).await).await;
    // Existence of other organisations does not leak: 404, not 403.
    expect_problem(
        app.get(&format!("/api/v1/customers/{other}"), &portal)
            .await,
        "not_found",
    )
    .await;
    expect_problem(
        app.get("/api/v1/customers/777777", &desk).await,
        "not_found",
    )
    .await;
}

use std::collections::HashSet;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn new_user(username: &str, roles: Value, customer_id: Option<i64>) -> Value {
    json!({
        "username": username,
        "password": USER_PASSWORD,
        "display_name": "李雷",
        "roles": roles,
        "customer_id": customer_id,
    })
}

#[tokio::test]
async fn admin_creates_reads_and_lists_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let response = app
        .post(
            "/api/v1/users",
            &admin,
            new_user("Li.Lei", json!(["l2_engineer", "service_desk"]), None),
        )
        .await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created = expect_created(response).await;
    assert_eq!(created["username"], "li.lei");
    assert_eq!(created["roles"], json!(["service_desk", "l2_engineer"]));
    assert_eq!(created["active"], true);
    assert_eq!(created["version"], 1);
    assert_eq!(location, format!("/api/v1/users/{}", created["id"]));

    let fetched = app.get(&location, &admin).ok().await;
    assert_eq!(fetched, created);

    let list = app.get("/api/v1/users?role=l2_engineer", &admin).ok().await;
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, [json!("li.lei")]);
    assert!(list["next_cursor"].is_null());

    let token = app.login("LI.LEI", USER_PASSWORD).await;
    let me = app.get("/api/v1/users/me", &token).ok().await;
    assert_eq!(me["id"], created["id"]);
}

#[tokio::test]
async fn user_list_filters_and_cursor_walk_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    for i in 0..7 {
        let (roles, customer_id) = if i % 2 == 0 {
            (json!(["customer"]), Some(customer))
        } else {
            (json!(["service_desk"]), None)
        };
        let response = app
            .post(
                "/api/v1/users",
                &admin,
                new_user(&format!("user{i}"), roles, customer_id),
            )
            .await;
        expect_created(response).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=3&cursor={c}"),
            None => "/api/v1/users?limit=3".to_owned(),
        };
        let page = app.get(&path, &admin).ok().await;
        pages += 1;
        for user in page["items"].as_array().unwrap() {
            seen.push(user["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 8, "admin plus seven users");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    let customers = app
        .get(&format!("/api/v1/users?customer_id={customer}"), &admin)
        .ok()
        .await;
    assert_eq!(customers["items"].as_array().unwrap().len(), 4);
    let found = app.get("/api/v1/users?q=user3", &admin).ok().await;
    assert_eq!(found["items"][0]["username"], "user3");
    let inactive = app.get("/api/v1/users?active=false", &admin).ok().await;
    assert_eq!(inactive["items"].as_array().unwrap().len(), 0);
    // `%` and `_` in q match literally.
    let literal = app.get("/api/v1/users?q=%25", &admin).ok().await;
    assert_eq!(literal["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = app
        .post(
            "/api/v1/users",
            &admin,
            new_user("hanmei", json!(["ops_staff"]), None),
        )
        .await;
    expect_created(first).await;
    let again = app
        .post(
            "/api/v1/users",
            &admin,
            new_user("HanMei", json!(["ops_staff"]), None),
        )
        .await;
    let problem = expect_problem(again, "already_exists").await;
    assert!(problem["detail"].as_str().unwrap().contains("hanmei"));
}

#[tokio::test]
async fn role_and_customer_binding_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let cases = [
        (
            new_user("c1", json!(["customer"]), None),
            vec!["customer_id"],
        ),
        (
            new_user("c2", json!(["customer"]), Some(987_654)),
            vec!["customer_id"],
        ),
        (
            new_user("s1", json!(["service_desk"]), Some(customer)),
            vec!["customer_id"],
        ),
        (
            new_user("m1", json!(["customer", "service_desk"]), Some(customer)),
            vec!["roles"],
        ),
        (new_user("e1", json!([]), None), vec!["roles"]),
        (new_user("u1", json!(["wizard"]), None), vec!["roles[0]"]),
    ];
    for (body, fields) in cases {
        let response = app.post("/api/v1/users", &admin, body.clone()).await;
        let problem = expect_problem(response, "validation_failed").await;
        assert_eq!(error_fields(&problem), fields, "{body}");
    }
    let ok = app
        .post(
            "/api/v1/users",
            &admin,
            new_user("c3", json!(["customer"]), Some(customer)),
        )
        .await;
    let created = expect_created(ok).await;
    assert_eq!(created["customer_id"], customer);
}

#[tokio::test]
async fn user_fields_are_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut short_password = new_user("ok", json!(["admin"]), None);
    short_password["password"] = json!("short");
    let mut bad_name = new_user("-bad name", json!(["admin"]), None);
    bad_name["display_name"] = json!("   ");
    let mut unknown = new_user("ok2", json!(["admin"]), None);
    unknown["colour"] = json!("blue");
    let mut missing = new_user("ok3", json!(["admin"]), None);
    missing.as_object_mut().unwrap().remove("display_name");
    let cases = [
        (short_password, vec!["password"]),
        (bad_name, vec!["display_name", "username"]),
        (unknown, vec!["colour"]),
        (missing, vec!["display_name"]),
        (json!({"username": 5}), vec!["username"]),
    ];
    for (body, fields) in cases {
        let problem = app
            .post("/api/v1/users", &admin, body.clone())
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), fields, "{body}");
    }
}

#[tokio::test]
async fn patch_changes_fields_bumps_version_and_honours_if_match() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = app
        .create_user(&admin, "worker", &["service_desk"], None)
        .await;
    let path = format!("/api/v1/users/{id}");

    let response = app
        .patch(&path, &admin, json!({"display_name": "  韩梅梅 "}))
        .await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let body = expect_ok(response).await;
    assert_eq!(body["display_name"], "韩梅梅");
    assert_eq!(body["version"], 2);

    app.send_if_match(
        Method::PATCH,
        &path,
        &admin,
        "\"1\"",
        json!({"display_name": "late"}),
    )
    .refused("version_mismatch")
    .await;

    // RFC 9110 compares If-Match strongly: a weak tag never matches, nor does a tag this API
    // cannot have issued; both are 412 like an outdated one, the weak one saying so.
    for never in ["W/\"2\"", "\"2147483648\"", "\"abc\""] {
        let problem = app
            .send_if_match(
                Method::PATCH,
                &path,
                &admin,
                never,
                json!({"display_name": "x"}),
            )
            .refused("version_mismatch")
            .await;
        let weak = never.starts_with("W/");
        assert_eq!(
            problem["detail"].as_str().unwrap().contains("weak"),
            weak,
            "{never}: {problem}"
        );
    }
    let body = app
        .send_if_match(
            Method::PATCH,
            &path,
            &admin,
            "\"2\"",
            json!({"roles": ["incident_manager"]}),
        )
        .ok()
        .await;
    assert_eq!(body["roles"], json!(["incident_manager"]));
    assert_eq!(body["display_name"], "韩梅梅");

    app.send_if_match(
        Method::PATCH,
        &path,
        &admin,
        "banana",
        json!({"display_name": "x"}),
    )
    .refused("bad_request")
    .await;
}

#[tokio::test]
async fn a_customer_user_can_become_staff_only_by_leaving_its_organisation() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (id, _) = app
        .create_user(&admin, "portal", &["customer"], Some(customer))
        .await;
    let path = format!("/api/v1/users/{id}");
    let problem = app
        .patch(&path, &admin, json!({"roles": ["service_desk"]}))
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["customer_id"]);
    let body = app
        .patch(
            &path,
            &admin,
            json!({"roles": ["service_desk"], "customer_id": null}),
        )
        .ok()
        .await;
    assert!(body["customer_id"].is_null());
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_removed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let me = app.get("/api/v1/users/me", &admin).ok().await;
    let path = format!("/api/v1/users/{}", me["id"]);
    for change in [json!({"active": false}), json!({"roles": ["service_desk"]})] {
        app.patch(&path, &admin, change).refused("last_admin").await;
    }
    app.create_user(&admin, "second.admin", &["admin"], None)
        .await;
    app.patch(&path, &admin, json!({"active": false}))
        .ok()
        .await;
}

#[tokio::test]
async fn unknown_users_are_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for path in [
        "/api/v1/users/424242",
        "/api/v1/users/abc",
        "/api/v1/users/99999999999999999999999",
    ] {
        app.get(path, &admin).refused("not_found").await;
    }
    app.patch("/api/v1/users/424242", &admin, json!({"active": true}))
        .refused("not_found")
        .await;
}

#[tokio::test]
async fn create_user_subcommand_creates_a_user_that_can_log_in() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "CLI").await;
    let binary = env!("CARGO_BIN_EXE_incident-desk");
    let output = Command::new(binary)
        .args([
            "create-user",
            "--username",
            "Shell.User",
            "--role",
            "customer",
        ])
        .args([
            "--customer-id",
            &customer.to_string(),
            "--display-name",
            "From the shell",
        ])
        .env("DATABASE_URL", database_url(&app.database))
        .env("NEW_USER_PASSWORD", "shell passphrase")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("shell.user"));
    let token = app.login("shell.user", "shell passphrase").await;
    let me = app.get("/api/v1/users/me", &token).ok().await;
    assert_eq!(me["roles"], json!(["customer"]));
    assert_eq!(me["customer_id"], customer);

    // The same rules as the API: a customer user needs an organisation.
    let refused = Command::new(binary)
        .args(["create-user", "--username", "orphan", "--role", "customer"])
        .env("DATABASE_URL", database_url(&app.database))
        .env("NEW_USER_PASSWORD", "shell passphrase")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("customer_id"));
    let again = Command::new(binary)
        .args(["create-user", "--username", "shell.user", "--role", "admin"])
        .env("DATABASE_URL", database_url(&app.database))
        .env("NEW_USER_PASSWORD", "shell passphrase")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already taken"));
}

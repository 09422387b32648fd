//! Bad input on every endpoint answers 4xx problem+json, never 5xx.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// Endpoints that take a JSON body, each with a token allowed to call it.
async fn body_endpoints(app: &TestApp, admin: &str) -> Vec<(Method, String, String)> {
    let customer = app.create_customer(admin, "C1").await;
    let item = app.create_ci(admin, customer, "n").await;
    let (user, _) = app
        .create_user(admin, "someone", &["service_desk"], None)
        .await;
    let webhook = app.post(
            "/api/v1/webhooks",
            admin,
            json!({"url": "https://hooks.example.com/hook", "events": ["incident.created"], "secret": "0123456789abcdef"}),
        ).created()
    .await;
    let (_, staff) = app
        .create_user(
            admin,
            "all.staff",
            &["service_desk", "l2_engineer", "incident_manager"],
            None,
        )
        .await;
    let incident = app
        .post(
            "/api/v1/incidents",
            &staff,
            json!({"title": "t", "customer_id": customer}),
        )
        .created()
        .await;
    let id = &incident["id"];
    app.post(&format!("/api/v1/incidents/{id}/accept"), &staff, json!({}))
        .ok()
        .await;
    let admin_paths = [
        (Method::POST, "/api/v1/auth/token".to_owned()),
        (Method::POST, "/api/v1/users".to_owned()),
        (Method::PATCH, format!("/api/v1/users/{user}")),
        (Method::POST, "/api/v1/customers".to_owned()),
        (Method::PATCH, format!("/api/v1/customers/{customer}")),
        (Method::POST, "/api/v1/configuration-items".to_owned()),
        (
            Method::PATCH,
            format!("/api/v1/configuration-items/{}", item["id"]),
        ),
        (Method::PUT, "/api/v1/sla-policies/high".to_owned()),
        (Method::PUT, "/api/v1/business-calendar".to_owned()),
        (Method::POST, "/api/v1/webhooks".to_owned()),
        (Method::PATCH, format!("/api/v1/webhooks/{}", webhook["id"])),
    ];
    let staff_paths = [
        "workaround",
        "resolve",
        "reject-resolution",
        "assign",
        "close",
        "notes",
        "escalations",
    ]
    .iter()
    .map(|action| (Method::POST, format!("/api/v1/incidents/{id}/{action}")))
    .chain([
        (Method::POST, "/api/v1/incidents".to_owned()),
        (Method::PATCH, format!("/api/v1/incidents/{id}")),
        (Method::POST, format!("/api/v1/incidents/{id}/follow-ups")),
        (
            Method::POST,
            format!("/api/v1/incidents/{id}/coordination-tickets"),
        ),
        (
            Method::POST,
            "/api/v1/coordination-tickets/1/resolve".to_owned(),
        ),
        (
            Method::POST,
            "/api/v1/coordination-tickets/1/cancel".to_owned(),
        ),
        (Method::POST, "/api/v1/knowledge".to_owned()),
        (Method::PATCH, "/api/v1/knowledge/1".to_owned()),
        (Method::POST, "/api/v1/knowledge/1/reject".to_owned()),
    ]);
    admin_paths
        .into_iter()
        .map(|(method, path)| (method, path, admin.to_owned()))
        .chain(staff_paths.map(|(method, path)| (method, path, staff.clone())))
        .collect()
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let deep = "[".repeat(5000);
    for (method, path, token) in body_endpoints(&app, &admin).await {
        for body in [
            "{",
            "",
            "   ",
            "{\"a\": 1,}",
            "{} trailing",
            deep.as_str(),
            "\u{feff}{}",
        ] {
            let response = app
                .send_raw(method.clone(), &path, Some(&token), body.to_owned())
                .await;
            expect_problem(response, "bad_request").await;
        }
        let invalid_utf8 = app
            .send_raw(
                method.clone(),
                &path,
                Some(&token),
                vec![b'{', b'"', 0xff, b'"', b'}'],
            )
            .await;
        expect_problem(invalid_utf8, "bad_request").await;
    }
}

#[tokio::test]
async fn well_formed_but_wrong_bodies_are_422_with_fields() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (method, path, token) in body_endpoints(&app, &admin).await {
        for body in [
            "null",
            "[]",
            "\"text\"",
            "42",
            "{\"nonsense\": true}",
            "{\"name\": \"a\\u0000b\"}",
        ] {
            let response = app
                .send_raw(method.clone(), &path, Some(&token), body.to_owned())
                .await;
            let problem = expect_problem(response, "validation_failed").await;
            assert!(
                !error_fields(&problem).is_empty(),
                "{method} {path} {body}: {problem}"
            );
        }
    }
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    for (method, path, token) in body_endpoints(&app, &admin).await {
        let response = app
            .send_raw(method.clone(), &path, Some(&token), huge.clone())
            .await;
        expect_problem(response, "payload_too_large").await;
    }
    // Just under the limit is read (and then refused for its content, not its size).
    let near = format!(
        "{{\"code\": \"X\", \"name\": \"{}\"}}",
        "x".repeat(1000 * 1000)
    );
    let response = app
        .send_raw(Method::POST, "/api/v1/customers", Some(&admin), near)
        .await;
    expect_problem(response, "validation_failed").await;
}

#[tokio::test]
async fn bad_query_strings_are_422_with_fields() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cases = [
        ("/api/v1/users?limit=abc", "limit"),
        ("/api/v1/users?limit=0", "limit"),
        ("/api/v1/users?limit=201", "limit"),
        ("/api/v1/users?cursor=not-a-cursor", "cursor"),
        ("/api/v1/users?active=maybe", "active"),
        ("/api/v1/users?role=wizard", "role"),
        ("/api/v1/users?q=%00", "q"),
        ("/api/v1/customers?customer_id=1&active=1x", "active"),
        ("/api/v1/customers?limit=-1", "limit"),
        ("/api/v1/configuration-items?customer_id=x", "customer_id"),
        (
            "/api/v1/configuration-items?cursor=eyJhZnRlciI6InRleHQifQ",
            "cursor",
        ),
    ];
    for (path, field) in cases {
        let problem = app.get(path, &admin).refused("validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "{path}");
    }
    // An empty search box is no filter, not an error.
    app.get("/api/v1/users?q=", &admin).ok().await;
}

#[tokio::test]
async fn hostile_text_is_stored_and_returned_verbatim() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let name = "'; DROP TABLE customers; -- 💥 \\ % _ <script>";
    let created = app
        .post(
            "/api/v1/customers",
            &admin,
            json!({"code": "HOSTILE", "name": name}),
        )
        .created()
        .await;
    assert_eq!(created["name"], name);
    let found = app
        .get("/api/v1/customers?q=DROP%20TABLE", &admin)
        .ok()
        .await;
    assert_eq!(found["items"][0]["name"], name);
}

#[tokio::test]
async fn actions_with_optional_bodies_accept_an_empty_body_but_not_a_broken_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let incident = app
        .post(
            "/api/v1/incidents",
            &desk,
            json!({"title": "t", "customer_id": customer}),
        )
        .created()
        .await;
    let path = format!("/api/v1/incidents/{}/accept", incident["id"]);
    for body in ["{", "[]", "{\"assignee_id\": \"me\"}"] {
        let response = app
            .send_raw(Method::POST, &path, Some(&desk), body.to_owned())
            .await;
        assert!(response.status().is_client_error(), "{body}");
    }
    let accepted = app
        .send_raw(Method::POST, &path, Some(&desk), "")
        .ok()
        .await;
    assert_eq!(accepted["status"], "in_progress");
    // A reporter's user withdraws with no body at all; a broken one is refused.
    let (_, portal) = app
        .create_user(&admin, "portal", &["customer"], Some(customer))
        .await;
    let path = format!("/api/v1/incidents/{}/withdraw", incident["id"]);
    for body in ["{", "[]", "{\"note\": 5}"] {
        let response = app
            .send_raw(Method::POST, &path, Some(&portal), body.to_owned())
            .await;
        assert!(response.status().is_client_error(), "{body}");
    }
    let asked = app
        .send_raw(Method::POST, &path, Some(&portal), "")
        .ok()
        .await;
    assert!(asked["withdrawal_requested_at"].is_string());
}

/// A taken key reaches the client as `already_exists`, in words, without the schema's names.
#[tokio::test]
async fn taken_keys_are_409_without_table_or_constraint_names() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    app.create_ci(&admin, customer, "gw").await;
    app.create_user(&admin, "hanmei", &["ops_staff"], None)
        .await;
    app.create_api_token(&admin, "nagios", &["integration"])
        .await;
    let retries = [
        ("/api/v1/customers", json!({"code": "C1", "name": "Again"})),
        (
            "/api/v1/configuration-items",
            json!({"customer_id": customer, "name": "gw", "ci_type": "database_server", "system": "HIS"}),
        ),
        (
            "/api/v1/users",
            json!({"username": "hanmei", "password": USER_PASSWORD, "display_name": "韩梅", "roles": ["ops_staff"]}),
        ),
        (
            "/api/v1/api-tokens",
            json!({"name": "nagios", "roles": ["integration"]}),
        ),
    ];
    for (path, body) in retries {
        let problem = app.post(path, &admin, body).refused("already_exists").await;
        let text = problem.to_string();
        for schema_word in [
            "_key",
            "_idx",
            "constraint",
            "customers",
            "configuration_items",
            "users",
            "api_tokens",
            "duplicate key",
        ] {
            assert!(
                !text.contains(schema_word),
                "{path} names `{schema_word}`: {text}"
            );
        }
    }
}

//! API tokens (SPEC §10): shown once, stored hashed, acting as users of their own, revocable at
//! once on every instance, expiring, never a password login.

use std::process::Command;

use chrono::{Duration, Utc};
use incident_desk::domain::clock::Clock;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_token_is_shown_once_and_acts_as_a_user_of_its_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let response = app
        .post(
            "/api/v1/api-tokens",
            &admin,
            json!({"name": "prometheus-prod", "roles": ["integration"]}),
        )
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created = expect_created(response).await;
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("idt_"));
    // 43 base64url characters carry 256 random bits.
    assert_eq!(token.len(), 4 + 43);
    assert_eq!(created["roles"], json!(["integration"]));
    assert_eq!(created["expires_at"], json!(null));

    let me = app.get("/api/v1/users/me", token).ok().await;
    assert_eq!(me["id"], created["id"]);
    assert_eq!(me["display_name"], "prometheus-prod");
    assert_eq!(me["roles"], json!(["integration"]));
    app.get("/api/v1/incidents", token).ok().await;

    let listed = app.get("/api/v1/api-tokens", &admin).ok().await;
    let entry = &listed["items"][0];
    assert_eq!(entry["name"], "prometheus-prod");
    assert!(
        entry.get("token").is_none(),
        "the token is never shown again"
    );
    assert!(entry["last_used_at"].is_string(), "the use is recorded");
    assert_eq!(entry["revoked_at"], json!(null));
}

#[tokio::test]
async fn revoked_tokens_are_refused_at_once_on_every_instance() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.database.clone(), &[]).await;
    let admin = first.admin_token().await;
    let (id, token) = first
        .create_api_token(&admin, "zabbix", &["integration"])
        .await;
    second.get("/api/v1/users/me", &token).ok().await;

    let path = format!("/api/v1/api-tokens/{id}");
    let revoked = first
        .send(reqwest::Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(revoked.status(), 204);
    refused_soon(&second, &token).await;
    first
        .get("/api/v1/users/me", &token)
        .refused("unauthorized")
        .await;
    let again = first
        .send(reqwest::Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(again.status(), 204, "revoking twice changes nothing");
    let listed = first.get("/api/v1/api-tokens", &admin).ok().await;
    assert!(listed["items"][0]["revoked_at"].is_string());
    first
        .send(
            reqwest::Method::DELETE,
            "/api/v1/api-tokens/999999",
            Some(&admin),
            None,
        )
        .refused("not_found")
        .await;
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let expires_at = app.clock.now() + Duration::hours(1);
    let created = app
        .post(
            "/api/v1/api-tokens",
            &admin,
            json!({"name": "grafana", "roles": ["integration"], "expires_at": expires_at}),
        )
        .created()
        .await;
    let token = created["token"].as_str().unwrap();
    app.get("/api/v1/users/me", token).ok().await;
    app.clock.set(expires_at + Duration::seconds(1));
    app.get("/api/v1/users/me", token)
        .refused("unauthorized")
        .await;
}

#[tokio::test]
async fn token_rules_are_checked() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (body, field) in [
        (json!({"name": "x", "roles": ["admin"]}), "roles"),
        (json!({"name": "x", "roles": ["customer"]}), "roles"),
        (json!({"name": "x", "roles": []}), "roles"),
        (json!({"name": "x", "roles": ["root"]}), "roles[0]"),
        (json!({"name": " ", "roles": ["integration"]}), "name"),
        (
            json!({"name": "x", "roles": ["integration"], "expires_at": Utc::now() - Duration::hours(1)}),
            "expires_at",
        ),
    ] {
        let problem = app
            .post("/api/v1/api-tokens", &admin, body.clone())
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    app.create_api_token(&admin, "nagios", &["integration", "service_desk"])
        .await;
    app.post(
        "/api/v1/api-tokens",
        &admin,
        json!({"name": "nagios", "roles": ["integration"]}),
    )
    .refused("already_exists")
    .await;

    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    app.post(
        "/api/v1/api-tokens",
        &desk,
        json!({"name": "mine", "roles": ["integration"]}),
    )
    .refused("forbidden")
    .await;
    app.get("/api/v1/api-tokens", &desk)
        .refused("forbidden")
        .await;
}

#[tokio::test]
async fn token_users_never_sign_in_with_a_password_nor_change_through_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = app
        .create_api_token(&admin, "checkmk", &["integration"])
        .await;
    let me = app.get(&format!("/api/v1/users/{id}"), &admin).ok().await;
    let username = me["username"].as_str().unwrap().to_owned();
    assert_eq!(username, format!("@api-token-{id}"));
    app.send(
        reqwest::Method::POST,
        "/api/v1/auth/token",
        None,
        Some(json!({"username": username, "password": "!"})),
    )
    .refused("unauthorized")
    .await;
    app.patch(
        &format!("/api/v1/users/{id}"),
        &admin,
        json!({"roles": ["admin"]}),
    )
    .refused("forbidden")
    .await;
}

#[tokio::test]
async fn create_api_token_subcommand_prints_a_working_token() {
    let app = TestApp::spawn().await;
    let binary = env!("CARGO_BIN_EXE_incident-desk");
    let output = Command::new(binary)
        .args([
            "create-api-token",
            "--name",
            "alertmanager",
            "--role",
            "integration",
        ])
        .env("DATABASE_URL", database_url(&app.database))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("idt_"));
    let me = app.get("/api/v1/users/me", &token).ok().await;
    assert_eq!(me["display_name"], "alertmanager");

    let refused = Command::new(binary)
        .args(["create-api-token", "--name", "root", "--role", "admin"])
        .env("DATABASE_URL", database_url(&app.database))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("roles"));
}

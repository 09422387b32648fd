use std::time::Duration;

use chrono::Utc;
use incident_desk::auth::token::TokenKeys;
use incident_desk::domain::role::{Role, Roles};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn admin_gets_a_bearer_token_that_works() {
    let app = TestApp::spawn().await;
    let response = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "ADMIN", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = expect_ok(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/users/me", token).ok().await;
    assert_eq!(me["username"], "admin");
    assert_eq!(me["roles"], json!(["admin"]));
    assert!(me.get("password_hash").is_none());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = TestApp::spawn().await;
    let mut details = Vec::new();
    for (username, password) in [("admin", "not the password"), ("nobody", ADMIN_PASSWORD)] {
        let response = app
            .send(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let problem = expect_problem(response, "unauthorized").await;
        details.push(problem["detail"].clone());
    }
    assert_eq!(details[0], details[1]);
}

#[tokio::test]
async fn repeated_wrong_passwords_are_slowed_with_429_and_retry_after() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let sign_in = |username: &'static str, password: &'static str| {
        app.send(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": username, "password": password})),
        )
    };
    for _ in 0..5 {
        expect_problem(sign_in("admin", "guess").await, "unauthorized").await;
    }
    // Past five failures even the right password waits, and costs no hashing.
    for password in ["guess", ADMIN_PASSWORD] {
        let refused = sign_in("admin", password).await;
        let wait: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
        expect_problem(refused, "too_many_requests").await;
    }
    // Other users from the same address still sign in, and tokens issued before still work.
    app.login("desk", USER_PASSWORD).await;
    app.get("/api/v1/users/me", &c.admin).ok().await;
}

/// Twenty wrong passwords, for distinct usernames, sent with `forwarded` as X-Forwarded-For.
async fn twenty_failures_from(app: &TestApp, forwarded: &str) {
    for n in 0..20 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/token"))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({"username": format!("nobody{n}"), "password": "guess"}))
            .send()
            .await
            .unwrap();
        expect_problem(response, "unauthorized").await;
    }
}

async fn sign_in_from(app: &TestApp, forwarded: &str) -> StatusCode {
    app.client
        .post(app.url("/api/v1/auth/token"))
        .header("X-Forwarded-For", forwarded)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_balancer_the_address_limit_counts_each_client_apart() {
    let app = TestApp::spawn_with(&[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    twenty_failures_from(&app, "203.0.113.9").await;
    // The client who failed waits; another behind the same balancer signs in.
    assert_eq!(
        sign_in_from(&app, "203.0.113.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(sign_in_from(&app, "198.51.100.4").await, StatusCode::OK);
    // A client cannot escape its limit by writing the header itself: the balancer's hop wins.
    assert_eq!(
        sign_in_from(&app, "198.51.100.4, 203.0.113.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Without TRUSTED_PROXIES the header is ignored: every request is the TCP peer's.
    let direct = TestApp::spawn().await;
    twenty_failures_from(&direct, "203.0.113.9").await;
    assert_eq!(
        sign_in_from(&direct, "198.51.100.4").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn token_requests_are_validated() {
    let app = TestApp::spawn().await;
    let problem = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "admin"})),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["password"]);
    app.send_raw(Method::POST, "/api/v1/auth/token", None, "{\"username\":")
        .refused("bad_request")
        .await;
}

#[tokio::test]
async fn requests_without_valid_credentials_are_401() {
    let app = TestApp::spawn().await;
    let keys = TokenKeys::new(JWT_SECRET.as_bytes(), Duration::from_secs(3600));
    let admin = Roles::new([Role::Admin]);
    let expired = keys
        .issue(1, &admin, None, 0, Utc::now() - chrono::Duration::hours(2))
        .unwrap();
    let forged = TokenKeys::new(
        b"some-other-secret-some-other-secret!",
        Duration::from_secs(3600),
    )
    .issue(1, &admin, None, 0, Utc::now())
    .unwrap();
    let valid = keys.issue(1, &admin, None, 0, Utc::now()).unwrap();
    let payload = valid.split('.').nth(1).unwrap();
    // Header {"alg":"none","typ":"JWT"}, the valid payload, no signature.
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    // Header {"alg":"HS512","typ":"JWT"}: the algorithm is pinned to HS256.
    let other_alg = format!(
        "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{payload}.{}",
        valid.split('.').nth(2).unwrap()
    );
    let unknown_user = keys.issue(999, &admin, None, 0, Utc::now()).unwrap();

    for header in [
        None,
        Some("Basic YWRtaW46YWRtaW4=".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer not-a-jwt".to_owned()),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer {unsigned}")),
        Some(format!("Bearer {other_alg}")),
        Some(format!("Bearer {unknown_user}")),
    ] {
        let mut request = app.client.get(app.url("/api/v1/users/me"));
        if let Some(header) = &header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        expect_problem(response, "unauthorized").await;
    }
    // The same signing key with a current token works, so the refusals above are real.
    app.get("/api/v1/users/me", &valid).ok().await;
}

#[tokio::test]
async fn deactivation_stops_tokens_at_once_and_reactivation_does_not_revive_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app
        .create_user(&admin, "desk1", &["service_desk"], None)
        .await;
    app.get("/api/v1/users/me", &token).ok().await;

    let path = format!("/api/v1/users/{id}");
    let body = app
        .patch(&path, &admin, json!({"active": false}))
        .ok()
        .await;
    assert_eq!(body["active"], false);
    app.get("/api/v1/users/me", &token)
        .refused("unauthorized")
        .await;
    let login = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "desk1", "password": USER_PASSWORD})),
        )
        .await;
    expect_problem(login, "unauthorized").await;

    app.patch(&path, &admin, json!({"active": true})).ok().await;
    app.get("/api/v1/users/me", &token)
        .refused("unauthorized")
        .await;
    let fresh = app.login("desk1", USER_PASSWORD).await;
    app.get("/api/v1/users/me", &fresh).ok().await;
}

/// Settings under which a cached caller outlives every test: only a notification (or the
/// instance's own change) can make an instance forget it.
const LONG_CACHE: &[(&str, &str)] = &[("CREDENTIAL_CACHE_TTL", "1h")];

/// Two instances on one database with `LONG_CACHE`, the admin's token, and a service desk
/// user's id and token.
async fn two_instances_and_a_desk_user() -> (TestApp, TestApp, String, i64, String) {
    let first = TestApp::spawn_with(LONG_CACHE).await;
    let second = TestApp::spawn_on(first.database.clone(), LONG_CACHE).await;
    let admin = first.admin_token().await;
    let (id, token) = first
        .create_user(&admin, "desk1", &["service_desk"], None)
        .await;
    (first, second, admin, id, token)
}

#[tokio::test]
async fn changes_to_users_reach_every_instance_although_callers_are_cached() {
    let (first, second, admin, id, token) = two_instances_and_a_desk_user().await;
    let path = format!("/api/v1/users/{id}");
    for app in [&first, &second] {
        let me = app.get("/api/v1/users/me", &token).ok().await;
        assert_eq!(me["roles"], json!(["service_desk"]));
    }

    first
        .patch(&path, &admin, json!({"roles": ["l2_engineer"]}))
        .ok()
        .await;
    let me = first.get("/api/v1/users/me", &token).ok().await;
    assert_eq!(
        me["roles"],
        json!(["l2_engineer"]),
        "at once where it changed"
    );
    let started = std::time::Instant::now();
    loop {
        let me = second.get("/api/v1/users/me", &token).ok().await;
        if me["roles"] == json!(["l2_engineer"]) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{me}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    first
        .patch(&path, &admin, json!({"active": false}))
        .ok()
        .await;
    first
        .get("/api/v1/users/me", &token)
        .refused("unauthorized")
        .await;
    refused_soon(&second, &token).await;
}

#[tokio::test]
async fn an_instance_that_lost_its_listener_forgets_what_it_could_not_hear_of() {
    let (first, second, admin, id, token) = two_instances_and_a_desk_user().await;
    second.get("/api/v1/users/me", &token).ok().await;

    // Every connection ends, the listeners' too; the deactivation commits before the second
    // instance listens again, so its notification never reaches it.
    assert!(terminate_connections(&first.database) >= 2);
    first
        .patch(
            &format!("/api/v1/users/{id}"),
            &admin,
            json!({"active": false}),
        )
        .ok()
        .await;
    refused_soon(&second, &token).await;
    // Listening again (a second after losing the connection), it has not kept the old row.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    second
        .get("/api/v1/users/me", &token)
        .refused("unauthorized")
        .await;
}

#[tokio::test]
async fn a_password_change_revokes_old_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app
        .create_user(&admin, "desk2", &["service_desk"], None)
        .await;
    let path = format!("/api/v1/users/{id}");
    app.patch(&path, &admin, json!({"password": "another passphrase"}))
        .ok()
        .await;
    app.get("/api/v1/users/me", &token)
        .refused("unauthorized")
        .await;
    let fresh = app.login("desk2", "another passphrase").await;
    app.get("/api/v1/users/me", &fresh).ok().await;
}

#[tokio::test]
async fn wrong_roles_get_403() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer_id = app.create_customer(&admin, "C1").await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let (_, customer) = app
        .create_user(&admin, "cust", &["customer"], Some(customer_id))
        .await;
    let (_, integration) = app
        .create_user(&admin, "zabbix", &["integration"], None)
        .await;
    let new_user = json!({"username": "x1", "password": USER_PASSWORD, "display_name": "x", "roles": ["admin"]});

    for token in [&desk, &customer] {
        app.get("/api/v1/users", token).refused("forbidden").await;
        app.post("/api/v1/users", token, new_user.clone())
            .refused("forbidden")
            .await;
        app.post(
            "/api/v1/customers",
            token,
            json!({"code": "X", "name": "X"}),
        )
        .refused("forbidden")
        .await;
        app.send(
            Method::PUT,
            "/api/v1/sla-policies/high",
            Some(token),
            Some(json!({"resolution_minutes": 60})),
        )
        .refused("forbidden")
        .await;
    }
    app.get("/api/v1/customers", &integration)
        .refused("forbidden")
        .await;
    // Role checks come before body validation: an invalid body from the wrong role is 403.
    app.post("/api/v1/users", &desk, json!({"nonsense": true}))
        .refused("forbidden")
        .await;
}

#[tokio::test]
async fn role_changes_apply_to_existing_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app
        .create_user(&admin, "promoted", &["service_desk"], None)
        .await;
    app.get("/api/v1/users", &token).refused("forbidden").await;
    app.patch(
        &format!("/api/v1/users/{id}"),
        &admin,
        json!({"roles": ["service_desk", "admin"]}),
    )
    .ok()
    .await;
    app.get("/api/v1/users", &token).ok().await;
}

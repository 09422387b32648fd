use std::time::{Duration, Instant};

use incident_desk::store::bootstrap;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let health = app.send(Method::GET, "/healthz", None, None).ok().await;
    assert_eq!(health["status"], "ok");
    let ready = app.send(Method::GET, "/readyz", None, None).ok().await;
    assert_eq!(ready["status"], "ready");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_pool() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.get("/api/v1/users/5", &admin).await;
    app.get("/api/v1/users/6", &admin).await;
    let response = app.send(Method::GET, "/metrics", None, None).await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"incident_desk_http_requests_total{method="GET",route="/api/v1/users/{id}",status="4xx"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"incident_desk_http_requests_total{method="POST",route="/api/v1/auth/token",status="2xx"} 1"#));
    assert!(text.contains("incident_desk_http_request_duration_seconds_bucket"));
    assert!(text.contains("incident_desk_db_pool_max_connections 4"));
    assert!(text.contains("incident_desk_db_pool_connections"));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let generated = app.send(Method::GET, "/nowhere", None, None).await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36);
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc-123");
    let other = app.send(Method::GET, "/healthz", None, None).await;
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problems() {
    let app = TestApp::spawn().await;
    app.send(Method::GET, "/api/v1/nothing-here", None, None)
        .refused("not_found")
        .await;
    let response = app
        .send(Method::DELETE, "/api/v1/users/3", None, None)
        .await;
    assert_eq!(response.headers()["allow"], "GET, PATCH");
    expect_problem(response, "method_not_allowed").await;
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    let app = TestApp::spawn_with(&[("CORS_ALLOWED_ORIGINS", "https://desk.example.com")]).await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/users"))
        .header("origin", "https://desk.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://desk.example.com"
    );

    let allowed = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://desk.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://desk.example.com"
    );
    let foreign = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn readiness_answers_503_within_a_probes_second_while_requests_wait_out_the_pool() {
    // Requests wait up to DATABASE_TIMEOUT_SECS for a connection; readiness, which a probe with a
    // one-second timeout asks, does not.
    let app = TestApp::spawn_with(&[("DATABASE_TIMEOUT_SECS", "4")]).await;
    drop_database(&app.database);
    let started = Instant::now();
    let response = app.send(Method::GET, "/readyz", None, None).await;
    let readiness = started.elapsed();
    expect_problem(response, "service_unavailable").await;
    // Without its own bound it would wait the pool's 4 s.
    assert!(readiness < Duration::from_secs(2), "{readiness:?}");
}

#[tokio::test]
async fn a_lost_database_gives_503_within_seconds_and_the_service_recovers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    drop_database(&app.database);

    for path in ["/api/v1/users/me", "/readyz"] {
        let started = Instant::now();
        let response = app.send(Method::GET, path, Some(&admin), None).await;
        let elapsed = started.elapsed();
        assert_eq!(response.headers()["retry-after"], "5");
        let problem = expect_problem(response, "service_unavailable").await;
        assert!(!problem["detail"].as_str().unwrap().contains("postgres"));
        assert!(elapsed < Duration::from_secs(5), "{path} took {elapsed:?}");
    }
    app.send(Method::GET, "/healthz", None, None).ok().await;

    // The database comes back (as a fresh copy): the same server serves again by itself.
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url("postgres")).unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "CREATE DATABASE \"{}\" TEMPLATE \"{}\"",
            app.database,
            template()
        )),
        &mut conn,
    )
    .unwrap();
    let me = app.get("/api/v1/users/me", &admin).ok().await;
    assert_eq!(me["username"], "admin");
}

#[tokio::test]
async fn requests_queued_behind_busy_blocking_threads_still_answer_503_within_the_pool_timeout() {
    // One worker and one connection: far fewer blocking threads than requests, so most of these
    // wait for a thread before they wait for a connection. Both waits count against the timeout.
    let app = TestApp::spawn_with(&[
        ("DATABASE_TIMEOUT_SECS", "2"),
        ("DATABASE_POOL_SIZE", "1"),
        ("HTTP_WORKERS", "1"),
    ])
    .await;
    let admin = app.admin_token().await;
    drop_database(&app.database);

    let started = Instant::now();
    let answers = futures_util::future::join_all(
        (0..12).map(|_| app.send(Method::GET, "/api/v1/incidents", Some(&admin), None)),
    )
    .await;
    for response in answers {
        expect_problem(response, "service_unavailable").await;
    }
    // Waiting in turn for two threads would take the twelve of them about 12 s.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
}

#[tokio::test]
async fn pooled_connections_the_server_closed_are_replaced_before_a_request_uses_them() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let first = app
        .create_incident(
            &c.desk,
            json!({"title": "收费模块无法录入", "customer_id": c.customer}),
        )
        .await;
    assert!(terminate_connections(&app.database) >= 1);

    // Every pooled connection is dead now; each request is still served, reads and writes.
    for _ in 0..6 {
        app.get("/api/v1/users/me", &c.desk).ok().await;
        app.get(&format!("/api/v1/incidents/{}", first["id"]), &c.desk)
            .ok()
            .await;
    }
    assert!(terminate_connections(&app.database) >= 1);
    let second = app
        .create_incident(
            &c.desk,
            json!({"title": "门诊挂号缓慢", "customer_id": c.customer}),
        )
        .await;
    let page = app.get("/api/v1/incidents", &c.desk).ok().await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{second}");
}

#[tokio::test]
async fn start_up_creates_a_missing_database_and_its_admin() {
    let database = format!("idt_{}_fresh", std::process::id());
    drop_database(&database);
    let app = TestApp::spawn_on(database, &[]).await;
    let token = app.admin_token().await;
    let me = app.get("/api/v1/users/me", &token).ok().await;
    assert_eq!(me["roles"], json!(["admin"]));
}

#[tokio::test]
async fn without_admin_password_a_generated_one_is_reported_once() {
    let database = clone_template();
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url(&database)).unwrap();
    diesel::RunQueryDsl::execute(diesel::sql_query("DELETE FROM users"), &mut conn).unwrap();
    let outcome = bootstrap::ensure_admin(&mut conn, None).unwrap();
    let bootstrap::AdminBootstrap::CreatedWithGeneratedPassword(password) = outcome else {
        panic!("expected a generated password, got {outcome:?}");
    };
    assert_eq!(
        bootstrap::ensure_admin(&mut conn, None).unwrap(),
        bootstrap::AdminBootstrap::UsersExist
    );
    drop(conn);
    let app = TestApp::spawn_on(database, &[]).await;
    app.login("admin", &password).await;
}

#[tokio::test]
async fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    use std::process::Command;

    let database = clone_template();
    let (mut child, address) = start_binary(&database, &[]);
    let health = reqwest::get(format!("{address}/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // Started again by itself with its allocator settings, under the same process id.
    let environment = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    for setting in [
        "MALLOC_MMAP_THRESHOLD_=65536".to_owned(),
        format!("MALLOC_ARENA_MAX={cores}"),
    ] {
        assert!(
            environment
                .split(|byte| *byte == 0)
                .any(|entry| entry == setting.as_bytes()),
            "the server runs without {setting}"
        );
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    drop_database(&database);
}

#[tokio::test]
async fn a_method_a_static_route_lacks_is_405_even_where_a_template_matches() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // PATCH /users/{id} exists, but /users/me is its own resource that only answers GET.
    let response = app
        .patch("/api/v1/users/me", &admin, json!({"active": false}))
        .await;
    assert_eq!(response.headers()["allow"], "GET");
    expect_problem(response, "method_not_allowed").await;
    app.patch("/api/v1/users/abc", &admin, json!({}))
        .refused("not_found")
        .await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };

    for (path, token) in [
        ("/healthz", None),
        ("/api/v1/users/me", Some(admin.as_str())),
        ("/api/v1/incidents/999999", Some(admin.as_str())),
        ("/api/v1/users/me", None),
    ] {
        let response = app.send(Method::GET, path, token, None).await;
        assert_eq!(
            header(&response, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        let policy = header(&response, "content-security-policy").unwrap();
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        let cache = header(&response, "cache-control");
        if token.is_some() {
            assert_eq!(cache.as_deref(), Some("no-store"), "{path}");
        } else {
            assert_ne!(cache.as_deref(), Some("no-store"), "{path}");
        }
    }
    // Swagger UI runs its own scripts, from this server only.
    let ui = app.send(Method::GET, "/swagger-ui/", None, None).await;
    assert_eq!(ui.status(), StatusCode::OK);
    assert_eq!(
        header(&ui, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let policy = header(&ui, "content-security-policy").unwrap_or_default();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

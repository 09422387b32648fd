//! Starts the real server on port 0 against a fresh PostgreSQL database per test.
//!
//! A template database is migrated (and given user `admin`) once per test process; each test
//! clones it with `CREATE DATABASE … TEMPLATE` and drops its clone when the `TestApp` drops.
//! Databases left behind by crashed runs are swept at start-up: their names carry the pid of
//! the process that made them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use incident_desk::config::Settings;
use incident_desk::domain::clock::ManualClock;
use incident_desk::startup::{self, Application};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// Password of the `admin` user in every test database.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// HMAC key the test servers sign tokens with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// Password given to users the tests create.
pub const USER_PASSWORD: &str = "a sound passphrase";

/// The test server's URL, without TLS unless `TEST_DATABASE_URL` asks for it.
///
/// libpq's TLS is OpenSSL, whose per-thread state is freed by each thread as it ends. A pool's
/// worker threads end up to 30 s after their test (when their pending reaper run is due), so one
/// may end just as the test process exits and OpenSSL's exit handler frees the same state: the
/// process then aborts with "double free or corruption" after every test has passed. Loopback
/// connections gain nothing from TLS, so the tests do without it.
fn server_url() -> String {
    let mut url = url::Url::parse(
        &std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )
    .expect("TEST_DATABASE_URL is a URL");
    if !url.query_pairs().any(|(name, _)| name == "sslmode") {
        url.query_pairs_mut().append_pair("sslmode", "disable");
    }
    url.to_string()
}

/// URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(&server_url()).expect("a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn maintenance() -> PgConnection {
    PgConnection::establish(&server_url()).expect("connect to PostgreSQL for test databases")
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = Text)]
    datname: String,
}

fn sweep_stale_databases(conn: &mut PgConnection) {
    let names: Vec<DatabaseName> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'idt\\_%'")
            .load(conn)
            .expect("list test databases");
    for DatabaseName { datname } in names {
        let pid = datname
            .split('_')
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
            ))
            .execute(conn);
        }
    }
}

fn test_settings(database: &str, extra: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = [
        ("DATABASE_URL", database_url(database)),
        ("BIND_ADDR", "127.0.0.1:0".into()),
        ("JWT_SECRET", JWT_SECRET.into()),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        ("HTTP_WORKERS", "1".into()),
        ("DATABASE_POOL_SIZE", "4".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_lookup(|name| vars.get(name).cloned()).expect("valid test settings")
}

/// The migrated template database of this test process.
pub fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut conn = maintenance();
        sweep_stale_databases(&mut conn);
        let name = format!("idt_{}_template", std::process::id());
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .expect("drop old template");
        // The real start-up path creates, migrates and seeds it; its connections are closed
        // when it returns, so the template can be copied.
        startup::prepare_database(&test_settings(&name, &[])).expect("prepare template database");
        name
    })
}

/// Creates a fresh copy of the template.
pub fn clone_template() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let template = template();
    let name = format!(
        "idt_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut conn = maintenance();
    let mut attempts = 0;
    loop {
        match diesel::sql_query(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        ))
        .execute(&mut conn)
        {
            Ok(_) => return name,
            // Another clone of the same template may be in progress.
            Err(err) if attempts < 20 && err.to_string().contains("being accessed") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(err) => panic!("cloning the template failed: {err}"),
        }
    }
}

/// Drops a test database, closing any connection to it.
pub fn drop_database(name: &str) {
    let mut conn = maintenance();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .expect("drop test database");
}

/// Ends every server connection to the app's database and waits until they are gone, as a
/// database restart does to the pool.
pub fn terminate_connections(database: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        ended: i64,
    }
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url("postgres")).unwrap();
    let ended: Ended = diesel::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS ended \
             FROM pg_stat_activity WHERE datname = $1",
        )
        .bind::<diesel::sql_types::Text, _>(database),
        &mut conn,
    )
    .unwrap();
    ended.ended
}

/// Polls `GET /users/me` with `token` until it is refused with 401, for at most two seconds;
/// returns how long that took. For changes that reach another instance by notification.
pub async fn refused_soon(app: &TestApp, token: &str) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let response = app
            .send(Method::GET, "/api/v1/users/me", Some(token), None)
            .await;
        if response.status() == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the change did not reach this instance"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A running server on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The test database.
    pub database: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
}

impl TestApp {
    /// Starts a server with the default test settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts a server with extra environment settings.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        let database = clone_template();
        Self::spawn_on(database, extra).await
    }

    /// Starts a server on an existing (or missing) database.
    pub async fn spawn_on(database: String, extra: &[(&str, &str)]) -> TestApp {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let app = Application::build(test_settings(&database, extra), clock.clone())
            .await
            .expect("build the application");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            database,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            clock,
        }
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    /// Sends a raw body with `Content-Type: application/json`.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// Sends JSON with a token and an `If-Match` header.
    pub async fn send_if_match(
        &self,
        method: Method,
        path: &str,
        token: &str,
        if_match: &str,
        body: Value,
    ) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("if-match", if_match)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.send(Method::GET, path, Some(token), None).await
    }

    /// GET with a token and an `Accept` header.
    pub async fn get_accepting(&self, path: &str, token: &str, accept: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .expect("request")
    }

    /// POST JSON with a token.
    /// A new incident posted here gets the reporter of [`with_default_reporter`]; tests of
    /// the reporter rule itself use [`TestApp::send`].
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        let body = if path.starts_with("/api/v1/incidents?") || path == "/api/v1/incidents" {
            with_default_reporter(token, body)
        } else {
            body
        };
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    /// PATCH JSON with a token.
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// Logs in; panics unless it works.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let response = self
            .send(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        let body = expect_ok(response).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A token of user `admin`.
    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a customer organisation; returns its id.
    pub async fn create_customer(&self, admin: &str, code: &str) -> i64 {
        let response = self
            .post(
                "/api/v1/customers",
                admin,
                json!({"code": code, "name": format!("Customer {code}")}),
            )
            .await;
        expect_created(response).await["id"].as_i64().unwrap()
    }

    /// Creates a user with `roles` (and `customer_id` for customer users); returns its id and
    /// a token.
    pub async fn create_user(
        &self,
        admin: &str,
        username: &str,
        roles: &[&str],
        customer_id: Option<i64>,
    ) -> (i64, String) {
        let response = self
            .post(
                "/api/v1/users",
                admin,
                json!({
                    "username": username,
                    "password": USER_PASSWORD,
                    "display_name": username,
                    "roles": roles,
                    "customer_id": customer_id,
                }),
            )
            .await;
        let id = expect_created(response).await["id"].as_i64().unwrap();
        (id, self.login(username, USER_PASSWORD).await)
    }
}

impl TestApp {
    /// Creates an API token; returns its id and the token.
    pub async fn create_api_token(&self, admin: &str, name: &str, roles: &[&str]) -> (i64, String) {
        let created = self
            .post(
                "/api/v1/api-tokens",
                admin,
                json!({"name": name, "roles": roles}),
            )
            .created()
            .await;
        (
            created["id"].as_i64().expect("token id"),
            created["token"].as_str().expect("token").to_owned(),
        )
    }
}

/// A customer organisation, a customer user of it, and one user of each staff role.
pub struct Cast {
    /// Token of `admin`.
    pub admin: String,
    /// The organisation.
    pub customer: i64,
    /// A customer user of it (the reporter).
    pub portal: String,
    /// A service-desk user.
    pub desk: String,
    /// Its id.
    pub desk_id: i64,
    /// An L2 engineer.
    pub l2: String,
    /// Its id.
    pub l2_id: i64,
    /// An ops staff user.
    pub ops: String,
    /// An incident manager.
    pub manager: String,
}

impl TestApp {
    /// Creates the [`Cast`]: organisation `HOSP` and users `reporter`, `desk`, `engineer`,
    /// `ops` and `manager`.
    pub async fn cast(&self) -> Cast {
        let admin = self.admin_token().await;
        let customer = self.create_customer(&admin, "HOSP").await;
        let (_, portal) = self
            .create_user(&admin, "reporter", &["customer"], Some(customer))
            .await;
        let (desk_id, desk) = self
            .create_user(&admin, "desk", &["service_desk"], None)
            .await;
        let (l2_id, l2) = self
            .create_user(&admin, "engineer", &["l2_engineer"], None)
            .await;
        let (_, ops) = self.create_user(&admin, "ops", &["ops_staff"], None).await;
        let (_, manager) = self
            .create_user(&admin, "manager", &["incident_manager"], None)
            .await;
        Cast {
            admin,
            customer,
            portal,
            desk,
            desk_id,
            l2,
            l2_id,
            ops,
            manager,
        }
    }

    /// Creates a configuration item of `customer_id`; returns it.
    pub async fn create_ci(&self, admin: &str, customer_id: i64, name: &str) -> Value {
        let response = self
            .post(
                "/api/v1/configuration-items",
                admin,
                json!({"name": name, "ci_type": "db", "customer_id": customer_id, "system": "HIS"}),
            )
            .await;
        expect_created(response).await
    }

    /// Records an incident (with the default reporter of [`TestApp::post`]); panics unless it
    /// is created.
    pub async fn create_incident(&self, token: &str, body: Value) -> Value {
        expect_created(self.post("/api/v1/incidents", token, body).await).await
    }

    /// `POST /incidents/{id}/{action}`.
    pub async fn act(&self, token: &str, id: &Value, action: &str, body: Value) -> Response {
        self.post(&format!("/api/v1/incidents/{id}/{action}"), token, body)
            .await
    }

    /// An action that must succeed; returns the incident.
    pub async fn act_ok(&self, token: &str, id: &Value, action: &str, body: Value) -> Value {
        expect_ok(self.act(token, id, action, body).await).await
    }

    /// An incident the cast's customer reported, classified, taken and resolved by the service
    /// desk.
    pub async fn resolved_incident(&self, c: &Cast) -> Value {
        let incident = self
            .create_incident(
                &c.portal,
                json!({"title": "收费模块无法录入", "subcategory": "module_input_blocked"}),
            )
            .await;
        let id = &incident["id"];
        self.act_ok(&c.desk, id, "accept", json!({})).await;
        self.act_ok(&c.desk, id, "resolve", resolution()).await
    }
}

/// A valid `resolve` body.
pub fn resolution() -> Value {
    json!({"solution": "重新部署补丁", "cause": "system_defect", "subcause": "module_unusable"})
}

/// An RFC 3339 instant.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A user-reported high incident created at `created`, resolved at `resolved`, confirmed and
/// closed with `code` at `closed`.
pub async fn closed_history(
    app: &TestApp,
    c: &Cast,
    created: &str,
    resolved: &str,
    closed: &str,
    code: &str,
) -> Value {
    app.clock.set(at(created));
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": "收费模块无法录入", "subcategory": "module_input_blocked"}),
        )
        .await;
    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    app.clock.set(at(resolved));
    app.act_ok(&c.desk, id, "resolve", resolution()).await;
    app.act_ok(&c.portal, id, "confirm", json!({})).await;
    app.clock.set(at(closed));
    app.act_ok(&c.desk, id, "close", json!({"closure_code": code}))
        .await
}

/// An incident the service desk records for the cast's customer at `when` and closes at once as
/// a duplicate of `original`.
pub async fn closed_duplicate(app: &TestApp, c: &Cast, original: &Value, when: &str) -> Value {
    app.clock.set(at(when));
    let dup = app
        .create_incident(&c.desk, json!({"title": "重复", "customer_id": c.customer}))
        .await;
    app.act_ok(
        &c.desk,
        &dup["id"],
        "close",
        json!({"closure_code": "duplicate", "duplicate_of": original["id"]}),
    )
    .await
}

/// An RFC 3339 timestamp of a response.
pub fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .to_utc()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop_database(&self.database);
    }
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text}"))
}

/// Asserts an RFC 9457 problem with `status` and `code`; returns it.
pub async fn expect_problem(response: Response, code: &str) -> Value {
    let status = problem_status(code);
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = expect_json(response, status).await;
    assert_eq!(
        content_type, "application/problem+json",
        "problem media type; body: {body}"
    );
    assert_eq!(body["code"], code, "problem code; body: {body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], format!("urn:incident-desk:problem:{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// The HTTP status SPEC.md §10 gives each problem `code`; a code it does not list fails the test.
fn problem_status(code: &str) -> StatusCode {
    match code {
        "bad_request" | "invalid_event" => StatusCode::BAD_REQUEST,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "not_acceptable" => StatusCode::NOT_ACCEPTABLE,
        "too_many_requests" => StatusCode::TOO_MANY_REQUESTS,
        "version_mismatch" => StatusCode::PRECONDITION_FAILED,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "validation_failed" | "idempotency_key_reused" => StatusCode::UNPROCESSABLE_ENTITY,
        "service_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "illegal_transition"
        | "incident_closed"
        | "already_exists"
        | "last_admin"
        | "already_acknowledged"
        | "confirmation_required"
        | "duplicate_incident"
        | "idempotency_key_in_use"
        | "follow_up_not_due"
        | "open_coordination_ticket" => StatusCode::CONFLICT,
        other => panic!("no status is specified for problem code {other}"),
    }
}

/// The body of a `200 OK` JSON response.
pub async fn expect_ok(response: Response) -> Value {
    expect_json(response, StatusCode::OK).await
}

/// The body of a `201 Created` JSON response.
pub async fn expect_created(response: Response) -> Value {
    expect_json(response, StatusCode::CREATED).await
}

/// What a test expects of a request, said where it is sent:
/// `app.get(path, &token).ok().await` is `expect_ok(app.get(path, &token).await).await`.
pub trait Expect: Future<Output = Response> + Sized {
    /// The body of a `200 OK` JSON response.
    fn ok(self) -> impl Future<Output = Value> {
        async { expect_ok(self.await).await }
    }

    /// The body of a `201 Created` JSON response.
    fn created(self) -> impl Future<Output = Value> {
        async { expect_created(self.await).await }
    }

    /// The problem body of a refusal with this `code`.
    fn refused(self, code: &str) -> impl Future<Output = Value> {
        async move { expect_problem(self.await, code).await }
    }
}

impl<F: Future<Output = Response>> Expect for F {}

/// One field of every element of a JSON array, in order.
pub fn pluck<'a>(list: &'a Value, field: &str) -> Vec<&'a Value> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|item| &item[field])
        .collect()
}

/// The field names of a `validation_failed` problem.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// An admin, a service desk user, an integration token and a customer with a CI.
pub struct Monitoring {
    pub admin: String,
    pub desk: String,
    pub token: String,
    pub customer: i64,
    pub ci: Value,
}

impl TestApp {
    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Customer `QD-01` with the CI `his-db-01`, a desk user and an integration token.
    pub async fn monitoring(&self) -> Monitoring {
        let admin = self.admin_token().await;
        let customer = self.create_customer(&admin, "QD-01").await;
        let ci = self.create_ci(&admin, customer, "his-db-01").await;
        let (_, desk) = self
            .create_user(&admin, "desk", &["service_desk"], None)
            .await;
        let (_, token) = self
            .create_api_token(&admin, "prometheus", &["integration"])
            .await;
        Monitoring {
            admin,
            desk,
            token,
            customer,
            ci,
        }
    }
}

/// The roles a JWT carries (none for API tokens).
pub fn token_roles(token: &str) -> Vec<String> {
    use base64::Engine;
    let Some(payload) = token.split('.').nth(1) else {
        return vec![];
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return vec![];
    };
    let claims: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    claims["roles"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `body` with the reporter a staff user's phone report names, unless it names one already,
/// comes from a staff-found channel, or the caller is a customer user (the reporter by
/// default) or an integration.
pub fn with_default_reporter(token: &str, mut body: Value) -> Value {
    let roles = token_roles(token);
    let staff = roles.iter().any(|r| {
        [
            "service_desk",
            "l2_engineer",
            "incident_manager",
            "ops_staff",
        ]
        .contains(&r.as_str())
    });
    let staff_found = matches!(body["channel"].as_str(), Some("monitoring" | "other"));
    if staff && !staff_found && body.get("reporter").is_none() && body.is_object() {
        body["reporter"] = json!({"name": "来电用户"});
    }
    body
}

/// Starts the server binary (`incident-desk serve`) on `database` with one HTTP worker, the test
/// JWT secret and `extra` environment; returns the process and its base URL once it listens.
pub fn start_binary(database: &str, extra: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut command = Command::new(env!("CARGO_BIN_EXE_incident-desk"));
    command
        .arg("serve")
        .env("DATABASE_URL", database_url(database))
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("JWT_SECRET", JWT_SECRET)
        .env("HTTP_WORKERS", "1")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped());
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start the binary");
    let stderr = child.stderr.take().expect("piped stderr");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(address) = line.split("listening on ").nth(1) {
                let _ = sender.send(address.trim().to_owned());
            }
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("the server reports its address");
    (child, address)
}

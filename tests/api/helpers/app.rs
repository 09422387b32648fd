//! The server under test: started in process (`TestApp`) or as the real binary, and the requests
//! tests send it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use incident_desk::config::Settings;
use incident_desk::domain::clock::ManualClock;
use incident_desk::startup::Application;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use super::*;

pub(crate) fn test_settings(database: &str, extra: &[(&str, &str)]) -> Settings {
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

impl Drop for TestApp {
    fn drop(&mut self) {
        drop_database(&self.database);
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

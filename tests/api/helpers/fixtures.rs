//! The people, organisations and incidents tests start from: the `Cast`, the monitoring set-up,
//! API tokens, and incidents closed at given times.

use chrono::{DateTime, Utc};
use reqwest::Response;
use serde_json::{Value, json};

use super::*;

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

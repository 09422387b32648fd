//! Every JSON request body's example in the OpenAPI document runs unchanged, as an integrator
//! pressing "Try it out" in Swagger UI would send it, on a fresh install: customer, configuration
//! item, a service desk user, that user's incident taken, worked around and resolved, then every
//! other operation in the state its description names.

use std::cell::RefCell;
use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// Sends documented examples and remembers which operations it sent.
struct Walk<'a> {
    app: &'a TestApp,
    doc: Value,
    sent: RefCell<BTreeSet<(String, String)>>,
}

impl Walk<'_> {
    /// The example of the JSON body of `method` `template`: the body's own, or its schema's.
    fn example(&self, method: &Method, template: &str) -> Value {
        let operation = &self.doc["paths"][template][method.as_str().to_lowercase()];
        let content = &operation["requestBody"]["content"]["application/json"];
        assert!(
            content.is_object(),
            "{method} {template} takes no JSON body"
        );
        if !content["example"].is_null() {
            return content["example"].clone();
        }
        let reference = content["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {template}: no example and no schema reference"));
        let name = reference.rsplit('/').next().unwrap();
        let example = self.doc["components"]["schemas"][name]["example"].clone();
        assert!(
            !example.is_null(),
            "{method} {template}: {name} has no example"
        );
        example
    }

    /// The 2xx statuses `method` `template` documents.
    fn successes(&self, method: &Method, template: &str) -> Vec<StatusCode> {
        let operation = &self.doc["paths"][template][method.as_str().to_lowercase()];
        operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|code| code.starts_with('2'))
            .map(|code| StatusCode::from_u16(code.parse().unwrap()).unwrap())
            .collect()
    }

    /// Sends the example of `method` `template` with the path parameters `ids`, in order, as
    /// `token`; asserts a documented success and returns the body.
    async fn send(
        &self,
        method: Method,
        template: &str,
        ids: &[&str],
        token: Option<&str>,
    ) -> Value {
        let mut path = template.to_owned();
        for id in ids {
            let start = path.find('{').expect("a path parameter left to fill");
            let end = path[start..].find('}').unwrap() + start;
            path.replace_range(start..=end, id);
        }
        let body = self.example(&method, template);
        let response = self
            .app
            .send(method.clone(), &path, token, Some(body.clone()))
            .await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status.is_success() && self.successes(&method, template).contains(&status),
            "{method} {path} with its example {body} answered {status} {text}"
        );
        self.sent
            .borrow_mut()
            .insert((method.to_string(), template.to_owned()));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Sends the example of `method` `template` (no path parameters, no token) and asserts that
    /// it is refused with `status`: for the one operation whose example cannot be real on any
    /// install (a confirmation token only an e-mail carries).
    async fn send_refused(&self, method: Method, template: &str, status: StatusCode) {
        let body = self.example(&method, template);
        let response = self
            .app
            .send(method.clone(), template, None, Some(body))
            .await;
        assert_eq!(response.status(), status, "{method} {template}");
        self.sent
            .borrow_mut()
            .insert((method.to_string(), template.to_owned()));
    }

    /// The operations with a JSON body that no step sent.
    fn unsent(&self) -> Vec<(String, String)> {
        let sent = self.sent.borrow();
        let mut missing = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let json = &operation["requestBody"]["content"]["application/json"];
                let key = (method.to_uppercase(), path.clone());
                if json.is_object() && !sent.contains(&key) {
                    missing.push(key);
                }
            }
        }
        missing
    }
}

#[tokio::test]
async fn every_request_example_runs_unchanged_on_a_fresh_install() {
    use Method as M;
    let app = TestApp::spawn().await;
    let doc = app
        .send(M::GET, "/api-docs/openapi.json", None, None)
        .ok()
        .await;
    let walk = Walk {
        app: &app,
        doc,
        sent: RefCell::new(BTreeSet::new()),
    };
    let admin_token = app.admin_token().await;
    let admin = Some(admin_token.as_str());

    // The order the README's first hour follows.
    let customer = walk.send(M::POST, "/api/v1/customers", &[], admin).await;
    assert_eq!(customer["id"], 1);
    let ci = walk
        .send(M::POST, "/api/v1/configuration-items", &[], admin)
        .await;
    assert_eq!(ci["id"], 1);
    let user = walk.send(M::POST, "/api/v1/users", &[], admin).await;
    assert_eq!(user["id"], 2);
    let token = walk.send(M::POST, "/api/v1/auth/token", &[], None).await;
    let desk = token["access_token"].as_str().unwrap().to_owned();
    let desk = Some(desk.as_str());
    let incident = walk.send(M::POST, "/api/v1/incidents", &[], desk).await;
    assert_eq!(incident["id"], 1);
    for action in ["accept", "workaround", "resolve"] {
        let template = format!("/api/v1/incidents/{{id}}/{action}");
        walk.send(M::POST, &template, &["1"], desk).await;
    }

    // The colleagues the other examples name: user 3 another service desk user, user 4 an L2
    // engineer, user 5 ops staff.
    let mut colleagues = Vec::new();
    for (name, role) in [
        ("li.qiang", "service_desk"),
        ("chen.jing", "l2_engineer"),
        ("zhao.lei", "ops_staff"),
    ] {
        let (id, token) = app.create_user(&admin_token, name, &[role], None).await;
        colleagues.push((id, token));
    }
    assert_eq!(
        colleagues.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    let l2 = Some(colleagues[1].1.as_str());
    let ops = Some(colleagues[2].1.as_str());

    // Incident 1 to its end: confirmed, closed, followed up.
    walk.send(M::POST, "/api/v1/incidents/{id}/confirm", &["1"], desk)
        .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/close", &["1"], desk)
        .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/follow-ups", &["1"], desk)
        .await;

    // Knowledge from incident 1: written, edited, submitted, approved, retired; a second entry
    // sent back.
    walk.send(M::POST, "/api/v1/knowledge", &[], desk).await;
    walk.send(M::PATCH, "/api/v1/knowledge/{id}", &["1"], desk)
        .await;
    walk.send(M::POST, "/api/v1/knowledge/{id}/submit", &["1"], desk)
        .await;
    walk.send(M::POST, "/api/v1/knowledge/{id}/approve", &["1"], l2)
        .await;
    walk.send(M::POST, "/api/v1/knowledge/{id}/retire", &["1"], l2)
        .await;
    walk.send(M::POST, "/api/v1/knowledge", &[], desk).await;
    walk.send(M::POST, "/api/v1/knowledge/{id}/submit", &["2"], desk)
        .await;
    walk.send(M::POST, "/api/v1/knowledge/{id}/reject", &["2"], l2)
        .await;

    // Incident 2, the same fault reported again after incident 1 was closed.
    let second = walk.send(M::POST, "/api/v1/incidents", &[], desk).await;
    assert_eq!(second["id"], 2);
    walk.send(M::PATCH, "/api/v1/incidents/{id}", &["2"], desk)
        .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/notes", &["2"], desk)
        .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/escalations", &["2"], desk)
        .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/assign", &["2"], desk)
        .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/withdraw", &["2"], desk)
        .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/accept", &["2"], desk)
        .await;
    // Coordination tickets opened by the L2 engineer to ops staff (user 5).
    let ticket = walk
        .send(
            M::POST,
            "/api/v1/incidents/{id}/coordination-tickets",
            &["2"],
            l2,
        )
        .await;
    let ticket = ticket["id"].to_string();
    walk.send(
        M::POST,
        "/api/v1/coordination-tickets/{id}/accept",
        &[&ticket],
        ops,
    )
    .await;
    walk.send(
        M::POST,
        "/api/v1/coordination-tickets/{id}/resolve",
        &[&ticket],
        ops,
    )
    .await;
    let other = walk
        .send(
            M::POST,
            "/api/v1/incidents/{id}/coordination-tickets",
            &["2"],
            l2,
        )
        .await;
    walk.send(
        M::POST,
        "/api/v1/coordination-tickets/{id}/cancel",
        &[&other["id"].to_string()],
        l2,
    )
    .await;
    walk.send(M::POST, "/api/v1/incidents/{id}/resolve", &["2"], desk)
        .await;
    walk.send(
        M::POST,
        "/api/v1/incidents/{id}/reject-resolution",
        &["2"],
        desk,
    )
    .await;

    // Administration.
    walk.send(M::PATCH, "/api/v1/users/{id}", &["2"], admin)
        .await;
    walk.send(M::PATCH, "/api/v1/customers/{id}", &["1"], admin)
        .await;
    walk.send(M::PATCH, "/api/v1/configuration-items/{id}", &["1"], admin)
        .await;
    walk.send(M::PUT, "/api/v1/sla-policies/{level}", &["high"], admin)
        .await;
    walk.send(M::PUT, "/api/v1/business-calendar", &[], admin)
        .await;
    let webhook = walk.send(M::POST, "/api/v1/webhooks", &[], admin).await;
    walk.send(
        M::PATCH,
        "/api/v1/webhooks/{id}",
        &[&webhook["id"].to_string()],
        admin,
    )
    .await;
    let integration = walk.send(M::POST, "/api/v1/api-tokens", &[], admin).await;
    let integration = integration["token"].as_str().unwrap().to_owned();

    // Monitoring, with the integration's token.
    walk.send(M::POST, "/api/v1/events", &[], Some(&integration))
        .await;
    walk.send(
        M::POST,
        "/api/v1/integrations/alertmanager",
        &[],
        Some(&integration),
    )
    .await;

    // A confirmation token comes only in a reporter's e-mail; the example's is made up and its
    // description says so.
    walk.send_refused(M::POST, "/api/v1/confirmations", StatusCode::UNAUTHORIZED)
        .await;

    assert_eq!(
        walk.unsent(),
        Vec::<(String, String)>::new(),
        "operations whose example no step sends"
    );
}

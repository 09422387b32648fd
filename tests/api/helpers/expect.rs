//! What tests expect of answers: statuses, problems with their SPEC §10 codes, lists.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use super::*;

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
pub(crate) fn problem_status(code: &str) -> StatusCode {
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
        "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "event_expired" | "confirmation_expired" => StatusCode::GONE,
        "range_not_satisfiable" => StatusCode::RANGE_NOT_SATISFIABLE,
        "illegal_transition"
        | "incident_closed"
        | "already_exists"
        | "last_admin"
        | "already_acknowledged"
        | "confirmation_required"
        | "duplicate_incident"
        | "idempotency_key_in_use"
        | "follow_up_not_due"
        | "open_coordination_ticket"
        | "attachment_limit" => StatusCode::CONFLICT,
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

/// The ids of a page's `items`, in order.
pub fn page_ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|item| item["id"].as_i64().expect("an id"))
        .collect()
}

/// The ids of every item of the list at `path` (which has a query string), walked page by page
/// with `limit` items per page.
pub async fn walk_ids(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}&limit={limit}&cursor={cursor}"),
            None => format!("{path}&limit={limit}"),
        };
        let page = app.get(&url, token).ok().await;
        seen.extend(
            pluck(&page["items"], "id")
                .into_iter()
                .map(|id| id.as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
    }
}

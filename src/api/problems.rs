//! The problem responses handlers declare in their OpenAPI operations, each with an example body.

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, ToResponse};

use crate::error::PROBLEM_JSON;

fn problem_response(
    description: &str,
    status: u16,
    code: &str,
    title: &str,
    detail: &str,
) -> RefOr<Response> {
    let mut example = serde_json::json!({
        "type": format!("urn:incident-desk:problem:{code}"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    });
    if code == "validation_failed" {
        example["errors"] = serde_json::json!([
            {"field": "username", "code": "length", "message": "must be between 2 and 64 characters"}
        ]);
    }
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .example(Some(example))
                .build(),
        )
        .build()
        .into()
}

macro_rules! problem_responses {
    ($($name:ident => ($status:literal, $code:literal, $title:literal, $detail:literal, $description:literal)),* $(,)?) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), problem_response($description, $status, $code, $title, $detail))
                }
            }

            // Alone in an operation's `responses(...)`: a reference to the shared response.
            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([($status.to_string(), Ref::from_response_name(stringify!($name)).into())])
                }
            }
        )*
    };
}

problem_responses! {
    BadRequest => (400, "bad_request", "Bad request", "The request body is not valid JSON: EOF while parsing an object at line 1 column 12.",
        "Malformed request: the body is not valid JSON (`bad_request`)."),
    Unauthorized => (401, "unauthorized", "Unauthorized", "The token is invalid or has expired.",
        "Missing, invalid or expired bearer token (`unauthorized`)."),
    Forbidden => (403, "forbidden", "Forbidden", "This needs one of the roles: admin.",
        "The caller's roles do not allow this (`forbidden`)."),
    NotFound => (404, "not_found", "Not found", "user 42 does not exist",
        "No such resource, or one the caller may not see (`not_found`)."),
    Conflict => (409, "already_exists", "Conflict", "The username `li.lei` is already taken.",
        "The request conflicts with the current state (`already_exists`, `last_admin`)."),
    VersionMismatch => (412, "version_mismatch", "Version mismatch",
        "The resource has changed; its current version is 3. Fetch it again and retry.",
        "`If-Match` names an outdated version (`version_mismatch`)."),
    PayloadTooLarge => (413, "payload_too_large", "Payload too large", "The request body exceeds the limit of 1 MiB.",
        "The body exceeds 1 MiB (`payload_too_large`)."),
    ValidationFailed => (422, "validation_failed", "Validation failed", "The request has invalid fields.",
        "Invalid fields, listed in `errors` (`validation_failed`)."),
    Unavailable => (503, "service_unavailable", "Service unavailable",
        "The service cannot reach its database right now; retry shortly.",
        "The database is unreachable; retry later (`service_unavailable`)."),
}

/// Reading one resource: 401, 403, 404, 503.
#[derive(IntoResponses)]
pub enum ReadErrors {
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// Listing with query parameters: 401, 403, 422, 503.
#[derive(IntoResponses)]
pub enum ListErrors {
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 422)]
    ValidationFailed(#[ref_response] ValidationFailed),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// Creating from a JSON body: 400, 401, 403, 413, 422, 503.
#[derive(IntoResponses)]
pub enum CreateErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 413)]
    PayloadTooLarge(#[ref_response] PayloadTooLarge),
    #[response(status = 422)]
    ValidationFailed(#[ref_response] ValidationFailed),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// Changing an existing resource from a JSON body with `If-Match`: 400, 401, 403, 404, 412,
/// 413, 422, 503.
#[derive(IntoResponses)]
pub enum UpdateErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 412)]
    VersionMismatch(#[ref_response] VersionMismatch),
    #[response(status = 413)]
    PayloadTooLarge(#[ref_response] PayloadTooLarge),
    #[response(status = 422)]
    ValidationFailed(#[ref_response] ValidationFailed),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// Anything a signed-in caller may call: 401, 503.
#[derive(IntoResponses)]
pub enum SignedInErrors {
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

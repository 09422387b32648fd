//! The OpenAPI document: paths are collected from the registered handlers
//! (utoipa-actix-web); this module adds the info block, security scheme and shared responses.

use actix_web::App;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_actix_web::AppExt;

use crate::domain::validation::FieldError;
use crate::error::{PROBLEM_JSON, Problem};

/// Static parts of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "incident-desk",
        description = "JSON REST backend for IT service incident management: service desks log and \
work incident tickets, monitoring systems post fault reports.\n\n\
Authenticate with `POST /api/v1/auth/token`, then press **Authorize** and paste the `access_token`.\n\n\
Errors are RFC 9457 `application/problem+json` bodies with a stable `code`. Lists take `limit` \
(1-200, default 50) and the opaque `cursor` from the previous page's `next_cursor`. Mutable \
resources carry `version`, sent as `ETag`; send it back in `If-Match` to refuse stale writes (412)."
    ),
    modifiers(&BearerAuth),
    components(
        schemas(Problem, FieldError, crate::api::incidents::IncidentSort),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            VersionMismatch,
            PayloadTooLarge,
            ValidationFailed,
            Unavailable
        )
    ),
    tags(
        (name = "auth", description = "Access tokens"),
        (name = "users", description = "User accounts (admin)"),
        (name = "customers", description = "Customer organisations"),
        (name = "incidents", description = "Incidents: the state machine of SPEC §4.2, notes and history"),
        (name = "escalations", description = "Functional, priority and hierarchical escalations (SPEC §5)"),
        (name = "webhooks", description = "Signed event deliveries to outside systems"),
        (name = "configuration-items", description = "Configuration items (CMDB) and their history"),
        (name = "reference-data", description = "Taxonomy and SLA policies"),
        (name = "operations", description = "Health, readiness and metrics")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from POST /api/v1/auth/token"))
                    .build(),
            ),
        );
    }
}

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

/// The full document, collected from the same handler registrations the server uses.
pub fn document() -> OpenApiDoc {
    let (_, openapi) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::api::configure)
        .split_for_parts();
    openapi
}

/// The methods each documented path accepts, for `405 Method Not Allowed` answers.
pub fn allowed_methods(openapi: &OpenApiDoc) -> Vec<(String, Vec<&'static str>)> {
    openapi
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods = [
                (&item.get, "GET"),
                (&item.post, "POST"),
                (&item.put, "PUT"),
                (&item.patch, "PATCH"),
                (&item.delete, "DELETE"),
            ]
            .into_iter()
            .filter(|(operation, _)| operation.is_some())
            .map(|(_, name)| name)
            .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_response_has_a_description() {
        let doc = serde_json::to_value(document()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    let described = response.get("$ref").is_some()
                        || response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty());
                    assert!(described, "{method} {path} {status} has no description");
                }
            }
        }
    }

    #[test]
    fn protected_operations_declare_bearer_auth_and_401() {
        let doc = serde_json::to_value(document()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let public = path == "/api/v1/auth/token" || !path.starts_with("/api/");
                if public {
                    continue;
                }
                assert!(op["security"].is_array(), "{method} {path} lacks security");
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} lacks 401"
                );
            }
        }
    }
}

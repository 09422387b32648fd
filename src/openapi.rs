//! The OpenAPI document: paths are collected from the registered handlers
//! (utoipa-actix-web); this module adds the info block, the security scheme and the shared
//! problem responses the handlers declare (`crate::api::problems`).

use actix_web::App;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::api::problems::{
    BadRequest, Conflict, Forbidden, IllegalTransition, IncidentActionRefused, InvalidEvent,
    NotAcceptable, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    ValidationFailed, VersionMismatch,
};
use crate::domain::validation::FieldError;
use crate::error::Problem;

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
            InvalidEvent,
            Unauthorized,
            Forbidden,
            NotFound,
            NotAcceptable,
            Conflict,
            IllegalTransition,
            IncidentActionRefused,
            VersionMismatch,
            PayloadTooLarge,
            ValidationFailed,
            TooManyRequests,
            Unavailable
        )
    ),
    tags(
        (name = "auth", description = "Access tokens"),
        (name = "users", description = "User accounts (admin)"),
        (name = "api-tokens", description = "API tokens for integrations such as monitoring systems (admin)"),
        (name = "events", description = "Monitoring intake: PagerDuty Events API v2 and Alertmanager webhooks (SPEC §8)"),
        (name = "customers", description = "Customer organisations"),
        (name = "incidents", description = "Incidents: the state machine of SPEC §4.2, notes and history"),
        (name = "escalations", description = "Functional, priority and hierarchical escalations (SPEC §5)"),
        (name = "coordination", description = "Coordination tickets: 《客户问题协调单》 to the operations staff, 《问题协调单》 to problem management (SPEC §6)"),
        (name = "knowledge", description = "The knowledge base: drafts, four-eyes review, search in Chinese and English (SPEC §7)"),
        (name = "webhooks", description = "Signed event deliveries to outside systems"),
        (name = "configuration-items", description = "Configuration items (CMDB) and their history"),
        (name = "reference-data", description = "Taxonomy and SLA policies"),
        (name = "reports", description = "The procedure's measures and forms (SPEC §9)"),
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
                    .description(Some(
                        "An access token (JWT) from POST /api/v1/auth/token, or an API token \
                         (`idt_…`) from POST /api/v1/api-tokens",
                    ))
                    .build(),
            ),
        );
    }
}

/// The full document, collected from the same handler registrations the server uses.
pub fn document() -> OpenApiDoc {
    let (_, openapi) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::api::configure)
        .split_for_parts();
    close_tagged_unions(openapi, &["CreateEscalationRequest"])
}

/// utoipa leaves the branches of a serde-tagged enum open, although `deny_unknown_fields` makes
/// the server refuse any other field; this closes the branches of the schemas `names`.
fn close_tagged_unions(mut openapi: OpenApiDoc, names: &[&str]) -> OpenApiDoc {
    let Some(components) = openapi.components.as_mut() else {
        return openapi;
    };
    for name in names {
        if let Some(RefOr::T(Schema::OneOf(union))) = components.schemas.get_mut(*name) {
            for branch in &mut union.items {
                if let RefOr::T(Schema::Object(object)) = branch {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
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

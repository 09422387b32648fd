//! The OpenAPI document: paths are collected from the registered handlers
//! (utoipa-actix-web); this module adds the info block, the security scheme and the shared
//! problem responses the handlers declare (`crate::api::problems`).

use actix_web::App;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::api::problems::{
    BadRequest, Conflict, Forbidden, IllegalTransition, IncidentActionRefused, InvalidEvent,
    NotAcceptable, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    UnsupportedMediaType, ValidationFailed, VersionMismatch,
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
            UnsupportedMediaType,
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
    let mut openapi = close_tagged_unions(openapi, &["CreateEscalationRequest"]);
    refer_page_items(&mut openapi);
    declare_unsupported_media_type(&mut openapi);
    openapi
}

/// utoipa inlines the item schema of each generic `Page<T>`; a generated client would then hold
/// a second class per resource. Each page refers to its item's component instead, and always
/// carries `next_cursor` (`null` on the last page).
fn refer_page_items(openapi: &mut OpenApiDoc) {
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    let items: Vec<(String, String)> = components
        .schemas
        .keys()
        .filter_map(|name| Some((name.clone(), name.strip_prefix("Page_")?.to_owned())))
        .collect();
    for (page, item) in items {
        let Some(component) = components.schemas.get(&item).cloned() else {
            continue;
        };
        let Some(RefOr::T(Schema::Object(page_schema))) = components.schemas.get_mut(&page) else {
            continue;
        };
        if let Some(RefOr::T(Schema::Array(list))) = page_schema.properties.get_mut("items")
            && let ArrayItems::RefOrSchema(listed) = &mut list.items
            // Only a true copy of the component is replaced, so a page of another shape stays.
            && **listed == component
        {
            **listed = Ref::from_schema_name(item).into();
        }
        page_schema.required = vec!["items".into(), "next_cursor".into()];
    }
}

/// Every operation that reads a JSON body answers 415 to a body of another declared type.
fn declare_unsupported_media_type(openapi: &mut OpenApiDoc) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let reads_json = operation
                .request_body
                .as_ref()
                .is_some_and(|body| matches!(body, RefOr::T(body) if body.content.contains_key("application/json")));
            if reads_json {
                operation.responses.responses.insert(
                    "415".into(),
                    Ref::from_response_name("UnsupportedMediaType").into(),
                );
            }
        }
    }
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

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
    AttachmentConflict, BadRequest, ConfirmationExpired, Conflict, EventExpired, FileTooLarge,
    Forbidden, IllegalTransition, IncidentActionRefused, InvalidEvent, NotAcceptable, NotFound,
    PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable, UnsupportedMediaType,
    UnsupportedUpload, ValidationFailed, VersionMismatch,
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
**First hour:** sign in as `admin` with `POST /api/v1/auth/token` and press **Authorize** with the \
`access_token`; run the examples of `POST /api/v1/customers`, `POST /api/v1/configuration-items` and \
`POST /api/v1/users` unchanged; sign in as the new user `wang.fang` (the `POST /api/v1/auth/token` example) \
and authorize again; then `POST /api/v1/incidents` and its `accept`, `workaround` and `resolve` take \
incident 1 through its life. Every example runs unchanged on a fresh install; each operation's \
description says in which state.\n\n\
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
            FileTooLarge,
            UnsupportedMediaType,
            UnsupportedUpload,
            AttachmentConflict,
            ValidationFailed,
            TooManyRequests,
            EventExpired,
            ConfirmationExpired,
            Unavailable
        )
    ),
    tags(
        (name = "auth", description = "Signing in. `POST /api/v1/auth/token` exchanges a username and password for a bearer token; press **Authorize** and paste it. A fresh install has one account, `admin`, which manages accounts and settings but works no incidents: create a staff user with the `POST /api/v1/users` example and sign in as that user."),
        (name = "users", description = "User accounts and their roles: `admin` (accounts and settings), the staff roles `service_desk` (first line), `l2_engineer` (second line), `ops_staff` (on-site work) and `incident_manager`, and `customer` (one organisation's users, who see only its incidents). Admin only, but for `GET /users/me`."),
        (name = "api-tokens", description = "Long-lived tokens (`idt_…`) for integrations such as monitoring systems. Each acts as a user of its own, so journals show which integration wrote what. Admin only."),
        (name = "events", description = "Monitoring intake: PagerDuty Events API v2 events and Prometheus Alertmanager or Grafana webhooks open incidents, count occurrences of the same fault by `dedup_key`, and resolve incidents nobody has taken yet. See `docs/monitoring.md` in the repository."),
        (name = "customers", description = "Customer organisations whose incidents the desk works. A customer user belongs to one and sees only its incidents, configuration items and published knowledge."),
        (name = "incidents", description = "Incidents from recording to closure: `new` → `in_progress` → `resolved` → `closed`, with workarounds, the reporter's confirmation or rejection, withdrawal, hand-offs, notes and an append-only history. `GET /api/v1/procedure` gives the whole state machine as data; `allowed_actions` on each incident says what the caller may do now. See `docs/incidents.md` in the repository."),
        (name = "attachments", description = "Files kept with incidents, coordination tickets and knowledge entries: logs, screenshots, scanned 《事件记录单》. Upload with `multipart/form-data`; the type is what the bytes are, not what the name says; downloads are always attachments and resume with `Range`. Customers see the public files of their own organisation's incidents. See `docs/attachments.md` in the repository."),
        (name = "escalations", description = "Functional (first line to second line), priority (a level change with its new deadline) and hierarchical (to the incident managers) escalations, and the incident managers' queue. The server escalates by itself when a deadline nears or passes."),
        (name = "coordination", description = "Coordination tickets: 《客户问题协调单》 sends ops staff to the customer's site and holds the incident's resolution until done; 《问题协调单》 hands a root-cause analysis to problem management. See `docs/coordination.md` in the repository."),
        (name = "knowledge", description = "The knowledge base: entries written by the desk, reviewed by a second person of the expert group before publication, searchable in Chinese and English, suggested while an incident is open. Customers read published entries."),
        (name = "stream", description = "Every change as it happens, as Server-Sent Events: open `GET /api/v1/stream` and keep it open, instead of polling. Reconnecting with `Last-Event-ID` loses nothing; browsers open it with a ticket. See `docs/stream.md` in the repository."),
        (name = "webhooks", description = "Signed HTTP deliveries of events (incident created, resolved, closed, escalations, SLA warnings, ...) to outside systems, retried with back-off, with a delivery log. Admin only."),
        (name = "configuration-items", description = "Configuration items (servers, databases, applications, devices) of each customer, which incidents name, with their change history."),
        (name = "reference-data", description = "What the rules are made of: the taxonomy of categories and causes, resolution targets per level, the business calendar, and the whole procedure as data (`GET /api/v1/procedure`)."),
        (name = "reports", description = "The procedure's measures (resolution rate, on-time rate, follow-up timeliness), the follow-up queue, recurring defects, and the monthly or yearly 《事件信息统计表》 as JSON, CSV or Excel."),
        (name = "operations", description = "Liveness, readiness and Prometheus metrics, without a token, for probes and monitoring of the service itself.")
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
                let public = path == "/api/v1/auth/token"
                    || path == "/api/v1/confirmations"
                    || !path.starts_with("/api/");
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

    #[test]
    fn every_operation_has_a_one_line_summary_and_a_description() {
        let doc = serde_json::to_value(document()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(
                    !summary.is_empty()
                        && summary.chars().count() <= 80
                        && !summary.contains(['\n', '`']),
                    "{method} {path}: the summary must be one plain line of at most 80 characters \
                     (Swagger UI shows no markup there): {summary:?}"
                );
                let description = op["description"].as_str().unwrap_or_default();
                assert!(
                    description.contains("Roles:"),
                    "{method} {path}: the description must say who may call it: {description:?}"
                );
            }
        }
        for tag in doc["tags"].as_array().unwrap() {
            assert!(
                tag["description"].as_str().is_some_and(|d| d.len() > 40),
                "{tag}"
            );
        }
    }

    #[test]
    fn the_document_cites_nothing_outside_the_repository() {
        let text = serde_json::to_string(&document()).unwrap();
        for outside in ["SPEC", "procedure §"] {
            assert!(!text.contains(outside), "the document cites {outside}");
        }
    }

    #[test]
    fn every_json_request_body_has_an_example() {
        let doc = serde_json::to_value(document()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let content = &op["requestBody"]["content"]["application/json"];
                if content.is_null() {
                    continue;
                }
                let example = match content["schema"]["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference.rsplit('/').next().unwrap();
                        &doc["components"]["schemas"][name]["example"]
                    }
                    None => &content["example"],
                };
                assert!(!example.is_null(), "{method} {path} has no request example");
            }
        }
    }
}

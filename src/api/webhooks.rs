//! `/api/v1/webhooks`: subscriptions to events, delivered signed by the delivery worker
//! (SPEC §10), with a delivery log per webhook.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidationError};

use super::codes::WebhookEventType;
use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery};
use super::pagination::{Page, PageQuery, page};
use crate::api::problems;
use crate::api::respond::{created, versioned};
use crate::error::AppError;
use crate::outbound::TargetCheck;
use crate::state::AppState;
use crate::store;
use crate::store::outbox::EVENT_TYPES;
use crate::store::webhooks::{AttemptRow, DeliveryRow, WebhookPatch, WebhookRow};

fn url_rule(url: &str) -> Result<(), ValidationError> {
    let ok = url::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if ok && url.len() <= 2000 {
        Ok(())
    } else {
        let mut error = ValidationError::new("invalid");
        error.message = Some("must be an http or https URL".into());
        Err(error)
    }
}

/// Refuses a target on an internal address (`outbound`), unless the operator allows them. A
/// name that does not resolve now is taken: the receiver may not be set up yet, and every
/// delivery checks it again.
async fn check_target(state: &AppState, url: &str) -> Result<(), AppError> {
    if state.settings.webhook_allow_private {
        return Ok(());
    }
    match crate::outbound::check_target(url).await {
        TargetCheck::Allowed | TargetCheck::Unresolved(_) => Ok(()),
        TargetCheck::Refused(reason) => Err(AppError::invalid_field(
            "url",
            "forbidden_target",
            format!(
                "{reason} (set WEBHOOK_ALLOW_PRIVATE=true for receivers on the desk's own network)"
            ),
        )),
    }
}

fn events_rule(events: &[String]) -> Result<(), ValidationError> {
    let unknown: Vec<&String> = events
        .iter()
        .filter(|e| !EVENT_TYPES.contains(&e.as_str()))
        .collect();
    if events.is_empty() || !unknown.is_empty() {
        let mut error = ValidationError::new("invalid");
        error.message = Some(format!("one or more of: {}", EVENT_TYPES.join(", ")).into());
        return Err(error);
    }
    Ok(())
}

/// A new webhook.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/incident-desk", "events": ["incident.created", "incident.resolved", "incident.closed"], "secret": "shared-secret-of-the-receiver"}))]
pub struct CreateWebhookRequest {
    /// Receiver URL (http or https).
    #[validate(custom(function = "url_rule"))]
    #[schema(example = "https://hooks.example.com/incident-desk")]
    pub url: String,
    /// Event types: `incident.created`, `incident.updated`, `incident.accepted`,
    /// `incident.assigned`, `incident.resolved`, `incident.confirmed`,
    /// `incident.resolution_rejected`, `incident.withdrawn`, `incident.closed`, `note.created`,
    /// `follow_up.created`, `knowledge.published`, `escalation.created`, `sla.warning`,
    /// `sla.breached`, `coordination.created`, `coordination.resolved`.
    #[validate(custom(function = "events_rule"))]
    #[schema(value_type = Vec<WebhookEventType>, example = json!(["incident.resolved", "sla.breached"]), min_items = 1)]
    pub events: Vec<String>,
    /// Shared secret for the signature, 16–200 characters; never shown again.
    #[validate(length(min = 16, max = 200))]
    #[schema(min_length = 16, max_length = 200, format = Password)]
    pub secret: String,
    /// Default true.
    pub active: Option<bool>,
    /// Only events about this customer's incidents and their coordination tickets; absent or
    /// `null`: every customer's, and events about incidents of no known customer.
    pub customer_id: Option<i64>,
}

/// Changes to a webhook; absent fields stay as they are.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"active": false}))]
pub struct UpdateWebhookRequest {
    /// New URL.
    #[validate(custom(function = "url_rule"))]
    pub url: Option<String>,
    /// New event types.
    #[validate(custom(function = "events_rule"))]
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// New secret.
    #[validate(length(min = 16, max = 200))]
    #[schema(min_length = 16, max_length = 200, format = Password)]
    pub secret: Option<String>,
    /// Pause (`false`) or resume (`true`) deliveries.
    pub active: Option<bool>,
    /// Limit to this customer's events; `null` lifts the limit.
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<i64>)]
    pub customer_id: Option<Option<i64>>,
}

/// A webhook (the secret is never returned).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookResponse {
    /// Id.
    pub id: i64,
    /// Receiver URL.
    pub url: String,
    /// Subscribed event types.
    #[schema(value_type = Vec<WebhookEventType>)]
    pub events: Vec<String>,
    /// Deliveries are made only while active.
    pub active: bool,
    /// The customer whose events alone it receives; `null`: every customer's.
    pub customer_id: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    pub version: i32,
}

impl From<WebhookRow> for WebhookResponse {
    fn from(row: WebhookRow) -> Self {
        WebhookResponse {
            id: row.id,
            url: row.url,
            events: row.events,
            active: row.active,
            customer_id: row.customer_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

/// One attempt to deliver.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// Duration.
    pub duration_ms: i32,
}

/// A delivery of one event to this webhook.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryResponse {
    /// Id.
    pub id: i64,
    /// The event's id (the `id` of the delivered body).
    pub event_id: i64,
    /// Event type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Last HTTP status.
    pub last_status_code: Option<i32>,
    /// Last error.
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<DeliveryAttempt>,
}

fn delivery(row: DeliveryRow, event_type: String, attempts: Vec<AttemptRow>) -> DeliveryResponse {
    DeliveryResponse {
        id: row.id,
        event_id: row.event_id,
        event_type,
        status: row.status,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        delivered_at: row.delivered_at,
        last_status_code: row.last_status_code,
        last_error: row.last_error,
        attempt_log: attempts
            .into_iter()
            .map(|a| DeliveryAttempt {
                attempted_at: a.attempted_at,
                status_code: a.status_code,
                error: a.error,
                duration_ms: a.duration_ms,
            })
            .collect(),
    }
}

/// Subscribe a URL to events
///
/// Each delivery is a POST of `{id, type, occurred_at, data}` with `X-Incident-Desk-Signature:
/// t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`, retried with exponential
/// back-off. `customer_id` limits it to one customer's events. See
/// `docs/escalations-and-webhooks.md` in the repository for checking the signature.
///
/// Roles: `admin`.
///
/// Targets on loopback, private, link-local, unique-local or multicast addresses (after name
/// resolution, here and at every delivery) are refused unless the server runs with
/// `WEBHOOK_ALLOW_PRIVATE=true`; redirects are not followed (a 3xx is a failed delivery).
///
/// Errors: 422 `validation_failed` for an unknown event type, a URL that is not http(s) or
/// reaches an internal address (`forbidden_target`), a short secret or an unknown customer.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Webhook created", body = WebhookResponse),
        problems::CreateErrors
    )
)]
#[post("/webhooks")]
pub async fn create_webhook(
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateWebhookRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    check_target(&state, &request.url).await?;
    let now = state.clock.now();
    let mut events = request.events;
    events.sort();
    events.dedup();
    let row = store::run(&state.pool, move |conn| {
        store::webhooks::insert(
            conn,
            &request.url,
            &events,
            &request.secret,
            request.active.unwrap_or(true),
            request.customer_id,
            now,
        )
    })
    .await?;
    Ok(created(
        Some(format!("/api/v1/webhooks/{}", row.id)),
        row.version,
        WebhookResponse::from(row),
    ))
}

/// List webhooks
///
/// The secret is never returned.
///
/// Roles: `admin`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of webhooks", body = Page<WebhookResponse>),
        problems::ListErrors
    )
)]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let page_req = query.0.request()?;
    let rows = store::run(&state.pool, move |conn| {
        store::webhooks::list(conn, page_req)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, WebhookResponse::from)))
}

/// One webhook
///
/// Roles: `admin`.
///
/// Errors: 404 `not_found`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookResponse),
        problems::ReadErrors
    )
)]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let row = store::run(&state.pool, move |conn| store::webhooks::find(conn, id)).await?;
    Ok(versioned(row.version, WebhookResponse::from(row)))
}

/// Change a webhook
///
/// Only the fields sent change; `active: false` stops deliveries until it is active again.
///
/// Roles: `admin`.
///
/// Errors: 412 `version_mismatch` for a stale `If-Match`; 422 `validation_failed` for a bad field.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Webhook id"),
        IfMatch
    ),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The changed webhook", body = WebhookResponse),
        problems::UpdateErrors
    )
)]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<UpdateWebhookRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    if let Some(url) = &request.url {
        check_target(&state, url).await?;
    }
    let id = id.into_inner();
    let now = state.clock.now();
    let patch = WebhookPatch {
        url: request.url,
        events: request.events.map(|mut e| {
            e.sort();
            e.dedup();
            e
        }),
        secret: request.secret,
        active: request.active,
        customer_id: request.customer_id,
    };
    let row = store::run(&state.pool, move |conn| {
        store::webhooks::update(conn, id, patch, if_match.0, now)
    })
    .await?;
    Ok(versioned(row.version, WebhookResponse::from(row)))
}

/// Delete a webhook and its delivery log
///
/// Roles: `admin`.
///
/// Errors: 404 `not_found`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        problems::ReadErrors
    )
)]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let id = id.into_inner();
    store::run(&state.pool, move |conn| store::webhooks::delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook's deliveries, newest first, each with its attempts
///
/// Status, response codes and errors of each attempt, for finding out why a receiver missed an
/// event.
///
/// Roles: `admin`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Webhook id"), PageQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<DeliveryResponse>),
        problems::ReadErrors, problems::ValidationFailed
    )
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    query: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let page_req = query.0.request()?;
    let rows = store::run(&state.pool, move |conn| {
        store::webhooks::deliveries(conn, id, page_req)
    })
    .await?;
    Ok(
        HttpResponse::Ok().json(page(rows, |(row, event_type, attempts)| {
            delivery(row, event_type, attempts)
        })),
    )
}

/// Send a delivery again, with a fresh attempt budget
///
/// Roles: `admin`.
///
/// Errors: 404 `not_found` for a delivery of another webhook.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Webhook id"),
        ("delivery_id" = i64, Path, description = "Delivery id")
    ),
    responses(
        (status = 202, description = "Queued for delivery"),
        problems::ReadErrors
    )
)]
#[post("/webhooks/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    state: Data<AppState>,
    caller: AuthUser,
    path: Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let (id, delivery_id) = path.into_inner();
    store::run(&state.pool, move |conn| {
        store::webhooks::redeliver(conn, id, delivery_id)
    })
    .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_webhook)
        .service(list_webhooks)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(list_deliveries)
        .service(redeliver);
}

//! Monitoring intake (SPEC §8): `POST /api/v1/events` speaks the PagerDuty Events API v2, so
//! any tool that notifies PagerDuty posts here by changing only the URL;
//! `POST /api/v1/integrations/alertmanager` takes Alertmanager's (and Grafana's) webhook.

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::web::Data;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{AuthUser, JsonBody, bearer_token, check_credential};
use crate::api::idempotency::{IdempotencyKey, take_replay};
use crate::api::problems;
use crate::auth::api_token;
use crate::domain::monitoring::{
    Event, EventOutcome, EventResult, Proof, alertmanager_events, may_send, parse_event,
};
use crate::error::{AppError, FieldError};
use crate::state::AppState;
use crate::store::credentials::Credential;
use crate::store::events::{Sender, no_routing_key};

/// A PagerDuty Events API v2 event, as documented; the server reads it leniently (unknown
/// fields are ignored) and names every problem in one 400.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "event_action": "trigger",
    "dedup_key": "charge-server-01/disk",
    "payload": {
        "summary": "门诊收费服务器 01 磁盘空间不足",
        "source": "charge-server-01",
        "severity": "warning",
        "component": "门诊收费服务器 01",
        "custom_details": {"customer": "BJ-HOSP-01", "free": "4%"}
    }
}))]
pub struct EventRequest {
    /// An API token of role `integration`; read only when no `Authorization` header is sent.
    pub routing_key: Option<String>,
    /// `trigger`, `acknowledge` or `resolve`.
    #[schema(example = "trigger")]
    pub event_action: String,
    /// The alert's key, 1–255 characters; derived from `source` and `summary` when absent.
    pub dedup_key: Option<String>,
    /// Required for `trigger`.
    pub payload: Option<EventPayloadRequest>,
}

/// The fault a trigger describes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventPayloadRequest {
    /// One line, 1–1024 characters; the incident title is its first 200.
    pub summary: String,
    /// Where the fault is; becomes the incident's `source_system`.
    pub source: String,
    /// `critical` or `error` (level high), `warning` (medium), `info` (low).
    pub severity: String,
    /// When the sender saw it (RFC 3339).
    pub timestamp: Option<String>,
    /// Names the customer's configuration item.
    pub component: Option<String>,
    /// Free grouping text.
    pub group: Option<String>,
    /// Free class text.
    pub class: Option<String>,
    /// Anything; `customer` names the customer by code. Becomes the incident's description.
    pub custom_details: Option<Value>,
}

/// The answer to an accepted event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventAccepted {
    /// Always `success`.
    #[schema(example = "success")]
    pub status: String,
    /// For people.
    #[schema(example = "Event processed")]
    pub message: String,
    /// The alert's key, derived when the event had none.
    #[schema(example = "his-db-01/disk")]
    pub dedup_key: String,
    /// What the event did.
    pub result: EventResult,
    /// The incident it opened or changed; `null` when ignored.
    #[schema(example = 42)]
    pub incident_id: Option<i64>,
}

/// The answer to an Alertmanager webhook: one result per alert, in order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertsAccepted {
    /// Always `success`.
    #[schema(example = "success")]
    pub status: String,
    /// One per alert.
    pub results: Vec<EventOutcome>,
}

/// Post a monitoring event (PagerDuty Events API v2)
///
/// A `trigger` opens an incident, or counts one more occurrence of the open incident with the same
/// `dedup_key`; `acknowledge` is noted; `resolve` resolves a still-`new` incident and is noted on
/// one being worked. Authenticate with `Authorization: Bearer` (an API token of role `integration`,
/// or a staff token), or, as PagerDuty senders do, with the API token in `routing_key`. The example
/// opens an incident for customer `BJ-HOSP-01`.
///
/// Roles: `integration`, staff.
///
/// Errors: 400 `invalid_event` naming every problem (never 422, which a PagerDuty sender would
/// retry); 401 for a missing or unknown token.
#[utoipa::path(
    tag = "events",
    security((), ("bearer" = [])),
    params(IdempotencyKey),
    request_body = EventRequest,
    responses(
        (status = 202, description = "Event processed", body = EventAccepted, examples(
            ("created" = (summary = "A new incident", value = json!({"status": "success", "message": "Event processed", "dedup_key": "his-db-01/disk", "result": "created", "incident_id": 42}))),
            ("deduplicated" = (summary = "One more occurrence of the open incident", value = json!({"status": "success", "message": "Event processed", "dedup_key": "his-db-01/disk", "result": "deduplicated", "incident_id": 42}))),
            ("noted" = (summary = "Recorded in the open incident's journal", value = json!({"status": "success", "message": "Event processed", "dedup_key": "his-db-01/disk", "result": "noted", "incident_id": 42}))),
            ("resolved" = (summary = "The new incident resolved itself", value = json!({"status": "success", "message": "Event processed", "dedup_key": "his-db-01/disk", "result": "resolved", "incident_id": 42}))),
            ("ignored" = (summary = "No open incident has the key", value = json!({"status": "success", "message": "Event processed", "dedup_key": "his-db-01/disk", "result": "ignored", "incident_id": null})))
        )),
        problems::EventErrors
    )
)]
#[post("/events")]
pub async fn post_event(
    request: HttpRequest,
    state: Data<AppState>,
    body: JsonBody<EventRequest>,
) -> Result<HttpResponse, AppError> {
    // A retry with a kept answer (the key's middleware read the caller from the header): replayed
    // while the caller still may send events.
    if let Some(replayed) = take_replay(&request) {
        let may = request
            .extensions()
            .get::<AuthUser>()
            .is_some_and(|caller| may_send(&caller.roles, Proof::Header));
        return if may {
            Ok(replayed)
        } else {
            Err(AppError::forbidden(
                "Events are sent by integrations and staff; this account may no longer send them.",
            ))
        };
    }
    let metrics = state.metrics.clone();
    let answer = async {
        // The header alone decides when present; without it the body is read first.
        let sender = match request.headers().contains_key(AUTHORIZATION) {
            true => Some(Sender::Header(check_credential(
                &state,
                &bearer_token(&request)?,
            )?)),
            false => None,
        };
        let event = parse_event(&read_json(body.bytes())?).map_err(AppError::InvalidEvent)?;
        let sender = match sender {
            Some(sender) => sender,
            None => Sender::RoutingKey(routing_key(&event)?),
        };
        let outcome = state.intake.submit(sender, vec![event]).await?;
        Ok::<_, AppError>(outcome.into_iter().next())
    }
    .await;
    match answer {
        Ok(Some(outcome)) => {
            metrics.monitoring_event(outcome.result.as_str(), "events");
            Ok(
                HttpResponse::build(StatusCode::ACCEPTED).json(EventAccepted {
                    status: "success".into(),
                    message: "Event processed".into(),
                    dedup_key: outcome.dedup_key,
                    result: outcome.result,
                    incident_id: outcome.incident_id,
                }),
            )
        }
        Ok(None) => Err(AppError::internal("an event without an outcome")),
        Err(err) => {
            metrics.monitoring_event(refusal(&err), "events");
            Err(err)
        }
    }
}

/// Post a Prometheus Alertmanager or Grafana alerting webhook
///
/// Alertmanager `webhook_configs` (version 4) or Grafana's webhook contact point. Each alert is an
/// event with `dedup_key` `alertmanager:<fingerprint>`: firing triggers, resolved resolves. Labels
/// `customer` and `ci` name the customer code and configuration item.
///
/// Roles: `integration`, staff (`Authorization: Bearer`).
///
/// Errors: 400 `invalid_event`; 401.
#[utoipa::path(
    tag = "events",
    security(("bearer" = [])),
    request_body(content = Value, description = "Alertmanager webhook payload, version 4", example = json!({
        "version": "4", "status": "firing", "receiver": "incident-desk",
        "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "groupKey": "{}:{alertname=\"DiskFull\"}", "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": "his-db-01:9100", "severity": "warning", "customer": "BJ-HOSP-01", "ci": "his-db-01"},
            "annotations": {"summary": "Disk almost full on his-db-01"},
            "startsAt": "2025-01-06T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "3f2a9c1e5b7d4a60"
        }]
    })),
    responses(
        (status = 202, description = "Every alert processed, one result each", body = AlertsAccepted,
            example = json!({"status": "success", "results": [{"dedup_key": "alertmanager:3f2a9c1e5b7d4a60", "result": "created", "incident_id": 42}]})),
        problems::EventErrors
    )
)]
#[post("/integrations/alertmanager")]
pub async fn post_alertmanager(
    request: HttpRequest,
    state: Data<AppState>,
    body: JsonBody<Value>,
) -> Result<HttpResponse, AppError> {
    let metrics = state.metrics.clone();
    let answer = async {
        let sender = Sender::Header(check_credential(&state, &bearer_token(&request)?)?);
        let events: Vec<Event> =
            alertmanager_events(&read_json(body.bytes())?).map_err(AppError::InvalidEvent)?;
        Ok(state.intake.submit(sender, events).await?)
    }
    .await;
    match answer {
        Ok(results) => {
            for outcome in &results {
                metrics.monitoring_event(outcome.result.as_str(), "alertmanager");
            }
            Ok(
                HttpResponse::build(StatusCode::ACCEPTED).json(AlertsAccepted {
                    status: "success".into(),
                    results,
                }),
            )
        }
        Err(err) => {
            metrics.monitoring_event(refusal(&err), "alertmanager");
            Err(err)
        }
    }
}

/// The metrics label of a refused event.
fn refusal(err: &AppError) -> &'static str {
    match err {
        AppError::InvalidEvent(_) | AppError::PayloadTooLarge => "invalid",
        AppError::Unauthorized(_) | AppError::Forbidden(_) => "refused",
        _ => "failed",
    }
}

/// The JSON document of an event body; anything else is an unreadable event.
fn read_json(body: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(body).map_err(|err| {
        AppError::InvalidEvent(vec![FieldError::new(
            ".",
            "malformed",
            format!("the body is not valid JSON: {err}"),
        )])
    })
}

/// The credential in an event's `routing_key`: only an API token.
fn routing_key(event: &Event) -> Result<Credential, AppError> {
    match event.routing_key.as_deref() {
        Some(key) if api_token::is_api_token(key) => {
            Ok(Credential::ApiToken(api_token::digest(key)))
        }
        _ => Err(no_routing_key().into()),
    }
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_event).service(post_alertmanager);
}

//! `GET /api/v1/incidents/{id}/notifications`: the delivery log of the e-mail a reporter was
//! sent about an incident (SPEC §12).

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{AuthUser, ValidQuery};
use super::pagination::{Page, PageQuery, page};
use crate::api::problems;
use crate::domain::notification::{NotificationKind, NotificationStatus};
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::notifications::NotificationRow;

/// One message to the reporter and what became of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 3, "kind": "resolved", "to": "wang@hospital.example", "status": "sent", "attempts": 1, "last_error": null, "sent_at": "2026-12-07T10:02:11Z", "created_at": "2026-12-07T10:02:10Z"}))]
pub struct NotificationResponse {
    /// Id.
    pub id: i64,
    /// What it tells: `created`, `resolved`, `confirmation_reminder`, `closed` or `note`.
    pub kind: NotificationKind,
    /// The address it goes to.
    pub to: String,
    /// `pending` (waiting, or to be tried again), `sent`, `failed` (given up) or `skipped` (no
    /// mail server configured, or no longer true when its turn came).
    pub status: NotificationStatus,
    /// Attempts made.
    pub attempts: i32,
    /// Why the last attempt failed, or why it was skipped.
    pub last_error: Option<String>,
    /// When the mail server took it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was queued: with the change it tells of.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<NotificationRow> for NotificationResponse {
    type Error = AppError;

    fn try_from(row: NotificationRow) -> Result<Self, AppError> {
        Ok(NotificationResponse {
            id: row.id,
            kind: row.kind.parse().map_err(AppError::internal)?,
            to: row.recipient,
            status: row.status.parse().map_err(AppError::internal)?,
            attempts: row.attempts,
            last_error: row.last_error,
            sent_at: row.sent_at,
            created_at: row.created_at,
        })
    }
}

/// The e-mail sent to an incident's reporter
///
/// Every message queued for the reporter, oldest first: what it tells, where it went, and
/// whether the mail server took it. A message is queued with the change it tells of; without
/// `SMTP_URL` it is recorded as `skipped`. Use it to see whether a reporter was told, and call
/// where e-mail could not reach them.
///
/// Roles: staff.
///
/// Errors: 404 `not_found` for no such incident.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), PageQuery),
    responses(
        (status = 200, description = "A page of messages", body = Page<NotificationResponse>),
        problems::ReadErrors, problems::ValidationFailed
    )
)]
#[get("/incidents/{id}/notifications")]
pub async fn list_incident_notifications(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let id = id.into_inner();
    let request = paging.0.request()?;
    let (rows, next) = store::run(&state.pool, move |conn| {
        store::notifications::of_incident(conn, id, request)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(NotificationResponse::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(page((items, next), |item| item)))
}

/// Registers the route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_incident_notifications);
}

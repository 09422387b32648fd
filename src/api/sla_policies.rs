//! `/api/v1/sla-policies`: resolution targets per level.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, IfMatch, JsonBody};
use crate::api::problems;
use crate::api::respond::versioned;
use crate::domain::level::Level;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::sla_policies::SlaPolicyRow;

/// The resolution target of one level.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SlaPolicyResponse {
    /// Level.
    pub level: Level,
    /// Minutes from creation by which an incident of this level must be resolved.
    #[schema(example = 120)]
    pub resolution_minutes: i32,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who changed it last; `null` for the shipped defaults.
    pub updated_by: Option<i64>,
    /// Version for `If-Match`.
    pub version: i32,
}

impl TryFrom<SlaPolicyRow> for SlaPolicyResponse {
    type Error = AppError;

    fn try_from(row: SlaPolicyRow) -> Result<Self, AppError> {
        Ok(SlaPolicyResponse {
            level: row.level.parse().map_err(AppError::internal)?,
            resolution_minutes: row.resolution_minutes,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
            version: row.version,
        })
    }
}

/// A new resolution target.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"resolution_minutes": 120}))]
pub struct UpdateSlaPolicyRequest {
    /// 1 to 525 600 minutes (one year).
    #[validate(range(min = 1, max = 525_600))]
    #[schema(example = 120, minimum = 1, maximum = 525600)]
    pub resolution_minutes: i32,
}

/// The resolution target of each level, highest level first
///
/// Minutes from recording to the resolution deadline (working minutes when the business calendar is
/// on).
///
/// Roles: any signed-in user.
#[utoipa::path(
    tag = "reference-data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Policies, highest level first", body = Vec<SlaPolicyResponse>),
        problems::SignedInErrors
    )
)]
#[get("/sla-policies")]
pub async fn list_sla_policies(
    state: Data<AppState>,
    _caller: AuthUser,
) -> Result<HttpResponse, AppError> {
    let rows = store::run(&state.pool, store::sla_policies::list).await?;
    let policies = rows
        .into_iter()
        .map(SlaPolicyResponse::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(policies))
}

/// Set the resolution target of a level
///
/// Applies to incidents recorded afterwards; deadlines already set stay.
///
/// Roles: `admin`.
///
/// Errors: 404 `not_found` for an unknown level; 412 `version_mismatch` for a stale `If-Match`; 422
/// `validation_failed` outside 1–525 600 minutes.
#[utoipa::path(
    tag = "reference-data",
    security(("bearer" = [])),
    params(
        ("level" = Level, Path, description = "`low`, `medium` or `high`"),
        IfMatch
    ),
    request_body = UpdateSlaPolicyRequest,
    responses(
        (status = 200, description = "The changed policy", body = SlaPolicyResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::UpdateErrors
    )
)]
#[put("/sla-policies/{level}")]
pub async fn update_sla_policy(
    state: Data<AppState>,
    caller: AuthUser,
    level: Path<String>,
    if_match: IfMatch,
    body: JsonBody<UpdateSlaPolicyRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let level: Level = level.parse().map_err(|_| {
        AppError::NotFound(format!(
            "There is no level `{level}`; use low, medium or high."
        ))
    })?;
    let request = body.parse()?;
    let now = state.clock.now();
    let row = store::run(&state.pool, move |conn| {
        store::sla_policies::update(
            conn,
            level,
            request.resolution_minutes,
            caller.id,
            if_match.0,
            now,
        )
    })
    .await?;
    Ok(versioned(row.version, SlaPolicyResponse::try_from(row)?))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_sla_policies).service(update_sla_policy);
}

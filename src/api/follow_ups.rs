//! Follow-ups (回访, SPEC §9): the service desk's call-backs after a user-reported incident is
//! closed, and its queue of incidents still owed one.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, JsonBody, ValidQuery};
use super::pagination::{Page, PageQuery, decode_cursor, encode_cursor};
use crate::api::idempotency::{IdempotencyKey, json_answer, run_keyed};
use crate::api::problems;
use crate::domain::follow_up::{FollowUp, FollowUpError, FollowUpReport, record_follow_up};
use crate::domain::incident::Channel;
use crate::domain::incident::Incident;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::follow_ups::DueFollowUp;
use crate::store::{self, StoreError};

/// A call-back as the service desk reports it.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel": "phone", "reached": true, "satisfaction": 5, "comment": "用户对处理速度满意。"}))]
pub struct CreateFollowUpRequest {
    /// How the user was contacted: `phone`, `web`, `email`, `onsite` or `other`.
    pub channel: Channel,
    /// Whether the user was reached.
    pub reached: bool,
    /// Satisfaction 1–5, when the user gave one.
    #[schema(minimum = 1, maximum = 5)]
    pub satisfaction: Option<i16>,
    /// What was said, up to 10 000 characters.
    #[validate(length(max = 10000))]
    #[schema(max_length = 10000, example = "用户确认收费模块已恢复，满意")]
    pub comment: Option<String>,
}

/// A follow-up as clients see it: the domain's, serialised as it is.
pub type FollowUpResponse = FollowUp;

/// A closed incident still owed its follow-up.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DueFollowUpResponse {
    /// The incident.
    pub incident_id: i64,
    /// Its number.
    #[schema(example = "INC-000123")]
    pub number: String,
    /// Its title.
    pub title: String,
    /// Its customer.
    pub customer_id: Option<i64>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// When the follow-up is due.
    pub follow_up_due_at: Option<DateTime<Utc>>,
}

impl From<DueFollowUp> for DueFollowUpResponse {
    fn from(row: DueFollowUp) -> Self {
        DueFollowUpResponse {
            incident_id: row.incident_id,
            number: row.number,
            title: row.title,
            customer_id: row.customer_id,
            closed_at: row.closed_at,
            follow_up_due_at: row.follow_up_due_at,
        }
    }
}

/// Filters of the follow-up queue.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DueFollowUpsQuery {
    /// Only follow-ups due before this time.
    pub before: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct DueCursor {
    due: DateTime<Utc>,
    id: i64,
}

fn require_staff(caller: &AuthUser) -> Result<(), AppError> {
    caller.require_any(&Role::STAFF)
}

/// Record a follow-up call on a closed incident
///
/// The service desk calls the user back after a user-reported incident was closed `resolved` or
/// `unresolved`; the call counts as on time by `follow_up_due_at`. The closed incident itself does
/// not change. The example follows up incident 1 after it was closed.
///
/// Roles: `service_desk`.
///
/// Errors: 409 `follow_up_not_due` for an incident that owes none (open, monitoring, duplicate or
/// withdrawn).
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IdempotencyKey),
    request_body = CreateFollowUpRequest,
    responses(
        (status = 201, description = "Follow-up recorded", body = FollowUpResponse),
        (status = 409, description = "The incident owes no follow-up (`follow_up_not_due`)", body = crate::error::Problem,
            content_type = "application/problem+json"),
        problems::CreateErrors, problems::NotFound
    )
)]
#[post("/incidents/{id}/follow-ups")]
pub async fn create_follow_up(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    body: JsonBody<CreateFollowUpRequest>,
) -> Result<HttpResponse, AppError> {
    require_staff(&caller)?;
    let request = body.parse()?;
    let id = id.into_inner();
    let report = FollowUpReport {
        channel: request.channel,
        reached: request.reached,
        satisfaction: request.satisfaction,
        comment: request.comment.unwrap_or_default(),
    };
    let now = state.clock.now();
    let timezone = state.settings.timezone;
    let max_attempts = state.settings.follow_up_max_attempts;
    run_keyed(&http, &state, move |conn| {
        let decide = |incident: &Incident, progress| {
            record_follow_up(
                incident,
                caller.id,
                &caller.roles,
                report,
                now,
                progress,
                max_attempts,
            )
            .map_err(|err| match err {
                FollowUpError::Refused(refusal) => StoreError::from(refusal),
                not_due @ FollowUpError::NotDue(_) => StoreError::Conflict {
                    code: "follow_up_not_due",
                    detail: not_due.to_string(),
                },
            })
        };
        let row = store::follow_ups::record(conn, id, decide, timezone)?;
        json_answer(StatusCode::CREATED, None, None, &row)
    })
    .await
}

/// The follow-ups of an incident, oldest first
///
/// Roles: staff.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Follow-ups, oldest first", body = Vec<FollowUpResponse>),
        problems::ReadErrors
    )
)]
#[get("/incidents/{id}/follow-ups")]
pub async fn list_follow_ups(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_staff(&caller)?;
    let id = id.into_inner();
    let rows = store::run(&state.pool, move |conn| {
        store::incidents::find_ref(conn, id)?
            .ok_or_else(|| StoreError::not_found("incident", id))?;
        store::follow_ups::of_incident(conn, id)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(Ok::<_, AppError>)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(items))
}

/// The service desk's follow-up queue, oldest due first
///
/// Closed incidents whose follow-up is not yet performed.
///
/// Roles: staff.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(DueFollowUpsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of incidents owed a follow-up", body = Page<DueFollowUpResponse>),
        problems::ListErrors
    )
)]
#[get("/follow-ups/due")]
pub async fn list_due_follow_ups(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<DueFollowUpsQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    require_staff(&caller)?;
    let limit = paging.0.limit()?;
    let after = paging
        .0
        .cursor
        .as_deref()
        .map(decode_cursor::<DueCursor>)
        .transpose()?
        .map(|c| (c.due, c.id));
    let before = query.0.before;
    let mut rows = store::run(&state.pool, move |conn| {
        store::follow_ups::due(conn, before, after, limit)
    })
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last()).flatten().and_then(|last| {
        last.follow_up_due_at.map(|due| {
            encode_cursor(&DueCursor {
                due,
                id: last.incident_id,
            })
        })
    });
    Ok(HttpResponse::Ok().json(Page {
        items: rows.into_iter().map(DueFollowUpResponse::from).collect(),
        next_cursor,
    }))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_follow_up)
        .service(list_follow_ups)
        .service(list_due_follow_ups);
}

//! `GET /incidents` and `GET /incidents/{id}`.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get};
use serde::{Deserialize, Serialize};

use super::requests::{IncidentSort, ListIncidentsQuery};
use super::{IncidentResponse, require_incident_reader, respond, visible};
use crate::api::extract::{AuthUser, ValidQuery};
use crate::api::pagination::{Page, PageQuery, decode_cursor, encode_cursor};
use crate::api::problems;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::incident_list::{IncidentCursor, IncidentFilter};

#[derive(Serialize, Deserialize)]
struct ListCursor {
    sort: String,
    #[serde(flatten)]
    position: IncidentCursor,
}

/// List incidents, filtered and sorted
///
/// Filters combine: status (repeatable), level, tier, `assignee_id` (`none` for unassigned),
/// customer, category, subcategory, configuration item, `sla_breached`, `awaiting_confirmation`
/// (resolved, user-reported and unanswered: the calls the desk still has to make), creation window,
/// `updated_since` and the text search `q` (Chinese and English words, ranked by relevance, a
/// number first). Sort by `created_at` (default), `due_at`, `level`, `updated_at`
/// (for polling) or `relevance` (default with `q`). Each item carries `allowed_actions` for the
/// caller.
///
/// Roles: staff, `integration`, and `customer` (its own organisation's incidents only).
///
/// Errors: 422 `validation_failed` for an unknown filter value or a cursor of another order.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(ListIncidentsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of incidents", body = Page<IncidentResponse>),
        problems::ListErrors
    )
)]
#[get("/incidents")]
pub async fn list_incidents(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListIncidentsQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let query = query.0;
    let limit = paging.0.limit()?;
    let q = query.q.filter(|q| !q.trim().is_empty());
    let sort = query.sort.unwrap_or(if q.is_some() {
        IncidentSort::Relevance
    } else {
        IncidentSort::default()
    });
    let after = match paging.0.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let decoded: ListCursor = decode_cursor(cursor)?;
            if decoded.sort != sort.code() {
                return Err(AppError::invalid_field(
                    "cursor",
                    "invalid",
                    "the cursor belongs to another sort order",
                ));
            }
            Some(decoded.position)
        }
    };
    let Some(customer_id) = caller.customer_filter(query.customer_id) else {
        return Ok(HttpResponse::Ok().json(Page::<IncidentResponse>::empty()));
    };
    let now = state.clock.now();
    let filter = IncidentFilter {
        statuses: query.status,
        level: query.level,
        tier: query.tier,
        assignee_id: query.assignee_id.map(|a| a.0),
        customer_id,
        category: query.category,
        subcategory: query.subcategory,
        ci_id: query.ci_id,
        sla_breached: query.sla_breached.map(|b| (b, now)),
        awaiting_confirmation: query.awaiting_confirmation,
        created_from: query.created_from,
        created_to: query.created_to,
        updated_since: query.updated_since,
        search: None,
    };
    let public_only = !caller.roles.is_staff();
    let (key, descending) = sort.key();
    let slot = state.heavy_read_slot().await?;
    let searched = q.is_some();
    let list = move |conn: &mut store::Connection| {
        let mut filter = filter;
        if let Some(q) = &q {
            filter.search = store::incident_text::search(conn, q, public_only)?;
        }
        let (rows, next) =
            store::incident_list::list(conn, &filter, key, descending, after, limit)?;
        let ids: Vec<i64> = rows.iter().map(|i| i.id).collect();
        let blocked = store::coordination::blocking_among(conn, &ids)?;
        Ok::<_, AppError>((rows, next, blocked))
    };
    // A search may be answered by the read replica (SPEC §14); the plain list is the desk's
    // working queue and always current.
    let (rows, next, blocked) = if searched {
        state.run_read(caller.id, list).await?
    } else {
        store::run(&state.pool, list).await?
    };
    let who = caller.caller();
    let items: Vec<IncidentResponse> = rows
        .into_iter()
        .map(|incident| {
            let open_customer_issue = blocked.contains(&incident.id);
            IncidentResponse::new(incident, &who, now, open_customer_issue)
        })
        .collect();
    let next_cursor = next.map(|position| {
        encode_cursor(&ListCursor {
            sort: sort.code().to_owned(),
            position,
        })
    });
    Ok(Page { items, next_cursor }.stream(slot))
}

/// One incident
///
/// With `allowed_actions`: what the caller may do now. The `ETag` is the version to send as
/// `If-Match` with the next write.
///
/// Roles: staff, `integration`, and `customer` (its own organisation's incidents).
///
/// Errors: 404 `not_found` for no such incident, or one the caller may not see.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = IncidentResponse,
            headers(("ETag" = String, description = "Version"))),
        problems::ReadErrors
    )
)]
#[get("/incidents/{id}")]
pub async fn get_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let id = id.into_inner();
    let who = caller.caller();
    let (incident, open_customer_issue) = store::run(&state.pool, move |conn| {
        store::incidents::find_with_blocking(conn, id)
    })
    .await?;
    let incident = visible(&who, incident)?;
    Ok(respond(
        incident,
        open_customer_issue,
        &caller,
        state.clock.now(),
    ))
}

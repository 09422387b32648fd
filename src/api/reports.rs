//! `/api/v1/reports`: the procedure's reports (SPEC §9). So far the recurring defects for the
//! weekly review meeting (procedure §3, §4.9).

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, ValidQuery};
use crate::api::problems;
use crate::domain::incident::Status;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// The window and the threshold.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecurringQuery {
    /// Incidents reported in the last this many days, 1–366 (default 7: the weekly meeting).
    #[validate(range(min = 1, max = 366))]
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<i64>,
    /// At least this many organisations, 1–1000 (default 3: 三个以上单位 is a system defect).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000)]
    pub min_customers: Option<i64>,
}

/// An incident behind a recurring defect.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecurringIncidentResponse {
    /// Id.
    pub id: i64,
    /// Number.
    pub number: String,
    /// Title.
    pub title: String,
    /// Organisation.
    pub customer_id: Option<i64>,
    /// Status.
    pub status: Status,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A subcategory and system several organisations reported.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecurringDefect {
    /// Subcategory code.
    #[schema(example = "module_input_blocked")]
    pub subcategory: String,
    /// System.
    #[schema(example = "HIS")]
    pub source_system: String,
    /// How many organisations reported it in the window.
    #[schema(example = 3)]
    pub customers: i64,
    /// The incidents, oldest first.
    pub incidents: Vec<RecurringIncidentResponse>,
}

/// Recurring defects.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecurringResponse {
    /// The window's start.
    pub since: DateTime<Utc>,
    /// Most widespread first.
    pub items: Vec<RecurringDefect>,
}

/// Recurring defects for the weekly review (staff): subcategory and system pairs reported by at
/// least `min_customers` organisations in the last `days` days, with their incidents.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(RecurringQuery),
    responses(
        (status = 200, description = "Recurring defects, most widespread first", body = RecurringResponse),
        problems::ListErrors
    )
)]
#[get("/reports/recurring")]
pub async fn get_recurring(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<RecurringQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let since = state.clock.now() - Duration::days(query.0.days.unwrap_or(7));
    let min_customers = query.0.min_customers.unwrap_or(3);
    let found = store::run(&state.pool, move |conn| {
        store::recurring::recurring(conn, since, min_customers)
    })
    .await?;
    let items = found
        .into_iter()
        .map(|(pair, incidents)| RecurringDefect {
            subcategory: pair.subcategory,
            source_system: pair.source_system,
            customers: pair.customers,
            incidents: incidents
                .into_iter()
                .map(|i| RecurringIncidentResponse {
                    status: i.status,
                    id: i.id,
                    number: i.number,
                    title: i.title,
                    customer_id: i.customer_id,
                    created_at: i.created_at,
                })
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(RecurringResponse { since, items }))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_recurring);
}

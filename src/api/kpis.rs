//! `GET /api/v1/kpis`: the procedure's measures by period (SPEC §9).

use std::collections::HashMap;

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, ValidQuery};
use crate::api::problems;
use crate::domain::incident::Tier;
use crate::domain::kpi::{Granularity, KpiRow, Period, kpi_rows};
use crate::domain::level::Level;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::kpi_measures::KpiFilter;

/// Which periods, and which incidents.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// `month`, `quarter` or `year`.
    #[param(inline)]
    pub granularity: Granularity,
    /// The first period: `2025-01`, `2025-Q1` or `2025`, as `granularity` says.
    #[param(example = "2025-01")]
    pub from: String,
    /// The last period, included.
    #[param(example = "2025-12")]
    pub to: String,
    /// One customer's incidents only.
    pub customer_id: Option<i64>,
    /// One level's incidents only.
    #[param(inline)]
    pub level: Option<Level>,
    /// One tier's incidents only.
    #[param(inline)]
    pub tier: Option<Tier>,
    /// One engineer's incidents only: those assigned to this user when they were closed
    /// (follow-ups count with the incident).
    pub assignee_id: Option<i64>,
}

/// The measures, one row per period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KpiResponse {
    /// From `from` to `to`, every period included (periods without incidents have zeros and
    /// `null` rates).
    pub items: Vec<KpiRow>,
}

/// The procedure's measures per period
///
/// Per period: incidents closed (duplicates excluded), resolved, and resolved by their deadline
/// with 事件解决率 and 事件按时解决率; follow-ups performed and on time with 事件回访的及时率; the mean satisfaction.
/// Filters narrow them to a customer, level, tier or engineer (`assignee_id`). Periods are calendar
/// periods in `TIMEZONE`; a rate with nothing to divide by is `null`.
///
/// Roles: staff.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(KpiQuery),
    responses(
        (status = 200, description = "One row per period", body = KpiResponse),
        problems::ListErrors
    )
)]
#[get("/kpis")]
pub async fn get_kpis(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<KpiQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let query = query.0;
    let one = |e| AppError::Validation(vec![e]);
    let from = Period::parse(&query.from, query.granularity, "from").map_err(one)?;
    let to = Period::parse(&query.to, query.granularity, "to").map_err(one)?;
    let periods = Period::range(from, to).map_err(one)?;
    let (first_month, end_month) = (from.first_day, to.next().first_day);
    let filter = KpiFilter {
        customer_id: query.customer_id,
        level: query.level,
        tier: query.tier,
        assignee_id: query.assignee_id,
    };
    let granularity = query.granularity;
    let counts = state
        .run_read(caller.id, move |conn| {
            store::kpi_measures::counts(conn, granularity, first_month, end_month, filter)
        })
        .await?;
    let by_period: HashMap<Period, _> = counts
        .into_iter()
        .map(|(local_start, counts)| (Period::of_local(local_start, granularity), counts))
        .collect();
    Ok(HttpResponse::Ok().json(KpiResponse {
        items: kpi_rows(&periods, &by_period),
    }))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_kpis);
}

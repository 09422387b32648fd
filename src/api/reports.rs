//! `/api/v1/reports`: the procedure's reports (SPEC §9): 《事件信息统计表》 as JSON, CSV or an
//! Excel workbook, and the recurring defects for the weekly review meeting (procedure §3, §4.9).

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, get};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, ValidQuery};
use super::respond::negotiate;
use super::spreadsheet::{self, CSV, XLSX};
use crate::api::problems;
use crate::domain::incident::Status;
use crate::domain::kpi::{Granularity, Period};
use crate::domain::report::{ReportGranularity, StatisticsReport, rate_months};
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// Which period.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatisticsQuery {
    /// `month` (月报) or `year` (年报).
    #[param(inline)]
    pub granularity: ReportGranularity,
    /// `2025-01` for a month, `2025` for a year.
    #[param(example = "2025-01")]
    pub period: String,
}

const JSON: &str = "application/json";

/// 《事件信息统计表》 for a month or a year
///
/// The incidents closed in the period (in `TIMEZONE`) counted by category and subcategory, cause
/// and sub-cause, level, channel, customer, resolving tier and closure code, with SLA breaches,
/// time to resolve (mean, median, p90 minutes) by level, and escalations by kind. `Accept:
/// text/csv` gives every table in one CSV file (UTF-8 with BOM, Chinese headings); `Accept:
/// application/vnd.openxmlformats-officedocument.spreadsheetml.sheet` an Excel workbook with one
/// sheet per table.
///
/// Roles: staff.
///
/// Errors: 406 `not_acceptable` for another `Accept`; 422 `validation_failed` for a bad period.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(StatisticsQuery),
    responses(
        (status = 200, description = "The report",
            content(
                (StatisticsReport = "application/json"),
                (String = "text/csv", example = "\u{feff}概要\n项目,值\n统计周期,2025-01\n..."),
                (spreadsheet::XlsxFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            )),
        problems::ReportErrors
    )
)]
#[get("/reports/statistics")]
pub async fn get_statistics(
    request: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<StatisticsQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let format = negotiate(&request, &[JSON, CSV, XLSX])?;
    let period = Period::parse(&query.0.period, query.0.granularity.into(), "period")
        .map_err(|e| AppError::Validation(vec![e]))?;
    let timezone = state.settings.timezone;
    let (start, end) = (period.start(timezone), period.end(timezone));
    let (first_month, end_month) = (period.first_day, period.next().first_day);
    let months = rate_months(period);
    let (rates_from, rates_to) = (months[0].first_day, period.next().first_day);
    // Three independent statements, each over the whole period (the closed incidents' summaries
    // and durations, the incidents recorded, the monthly rates): on their own connections they
    // take about as long as the slowest, not the sum (a year over a million incidents: 75–78 ms
    // against 108–114 ms one after another, BENCHMARKS.md).
    let closed = state.run_read(caller.id, move |conn| {
        store::statistics_report::closed_counts(conn, first_month, end_month)
    });
    let reported = state.run_read(caller.id, move |conn| {
        store::statistics_report::reported(conn, start, end)
    });
    let monthly = state.run_read(caller.id, move |conn| {
        store::kpi_measures::counts(
            conn,
            Granularity::Month,
            rates_from,
            rates_to,
            store::kpi_measures::KpiFilter::default(),
        )
    });
    let (mut counts, reported, monthly) = tokio::try_join!(closed, reported, monthly)?;
    counts.reported = reported;
    counts.monthly = monthly
        .into_iter()
        .map(|(local_start, c)| (Period::of_local(local_start, Granularity::Month), c))
        .collect();
    let report = StatisticsReport::build(period, timezone, counts, &state.taxonomy);
    if format == JSON {
        return Ok(HttpResponse::Ok().json(report));
    }
    let (body, extension) = if format == CSV {
        (spreadsheet::csv(&report.sheets())?, "csv")
    } else {
        (
            spreadsheet::xlsx(&report.sheets(), &report.charts())?,
            "xlsx",
        )
    };
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(format!(
            "statistics-{}.{extension}",
            report.period
        ))],
    };
    let content_type = if format == CSV {
        "text/csv; charset=utf-8"
    } else {
        XLSX
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header(disposition)
        .body(body))
}

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

/// Recurring defects for the weekly review
///
/// Subcategory and system pairs reported by at least `min_customers` organisations in the last
/// `days` days, with their incidents.
///
/// Roles: staff.
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
    let found = state
        .run_read(caller.id, move |conn| {
            store::recurring_defects::recurring(conn, since, min_customers)
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
    cfg.service(get_statistics).service(get_recurring);
}

//! `/api/v1/business-calendar`: working hours and holidays. When enabled, resolution deadlines
//! count working time only; off by default, since the service desk runs around the clock.

use actix_web::web::Data;
use actix_web::{HttpResponse, get, put};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, IfMatch, JsonBody};
use crate::api::problems;
use crate::api::respond::versioned;
use crate::domain::validation::FieldError;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::calendar::{CalendarRow, DayHours};

/// Working hours of one weekday.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingDay {
    /// ISO weekday: 1 (Monday) to 7 (Sunday).
    #[schema(minimum = 1, maximum = 7, example = 1)]
    pub weekday: u8,
    /// Opening time, `HH:MM`, in `TIMEZONE`.
    #[schema(example = "09:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub start: String,
    /// Closing time, `HH:MM`, after `start`.
    #[schema(example = "18:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub end: String,
}

/// The business calendar.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BusinessCalendarResponse {
    /// Deadlines count working time only while enabled.
    pub enabled: bool,
    /// Working hours; weekdays not listed are days off.
    pub working_hours: Vec<WorkingDay>,
    /// Days off, whatever the weekday.
    #[schema(example = json!(["2025-01-01", "2025-01-29"]))]
    pub holidays: Vec<NaiveDate>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    pub version: i32,
}

impl From<CalendarRow> for BusinessCalendarResponse {
    fn from(row: CalendarRow) -> Self {
        BusinessCalendarResponse {
            working_hours: row
                .day_hours()
                .into_iter()
                .map(|d| WorkingDay {
                    weekday: d.weekday,
                    start: d.start,
                    end: d.end,
                })
                .collect(),
            enabled: row.enabled,
            holidays: row.holidays,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

/// The new calendar (replaces the old one).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "working_hours": [{"weekday": 1, "start": "08:30", "end": "17:30"}, {"weekday": 2, "start": "08:30", "end": "17:30"}, {"weekday": 3, "start": "08:30", "end": "17:30"}, {"weekday": 4, "start": "08:30", "end": "17:30"}, {"weekday": 5, "start": "08:30", "end": "17:30"}], "holidays": ["2027-01-01", "2027-02-06"]}))]
pub struct UpdateBusinessCalendarRequest {
    /// Count deadlines in working time only.
    pub enabled: bool,
    /// Working hours per weekday, each weekday at most once.
    #[validate(length(max = 7))]
    pub working_hours: Vec<WorkingDay>,
    /// Days off.
    #[validate(length(max = 1000))]
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

fn check(request: &UpdateBusinessCalendarRequest) -> Result<Vec<DayHours>, AppError> {
    let mut errors = Vec::new();
    let mut seen = [false; 7];
    let mut days = Vec::new();
    for (i, day) in request.working_hours.iter().enumerate() {
        let field = |name: &str| format!("working_hours[{i}].{name}");
        if !(1..=7).contains(&day.weekday) {
            errors.push(FieldError::new(
                field("weekday"),
                "range",
                "must be between 1 (Monday) and 7 (Sunday)",
            ));
            continue;
        }
        if std::mem::replace(&mut seen[usize::from(day.weekday) - 1], true) {
            errors.push(FieldError::new(
                field("weekday"),
                "duplicate",
                "each weekday at most once",
            ));
        }
        let parse = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .ok()
                .filter(|_| t.len() == 5)
        };
        match (parse(&day.start), parse(&day.end)) {
            (Some(start), Some(end)) if start < end => days.push(DayHours {
                weekday: day.weekday,
                start: day.start.clone(),
                end: day.end.clone(),
            }),
            (Some(_), Some(_)) => errors.push(FieldError::new(
                field("end"),
                "invalid",
                "must be after start",
            )),
            (None, _) => errors.push(FieldError::new(
                field("start"),
                "invalid",
                "must be a time HH:MM",
            )),
            (_, None) => errors.push(FieldError::new(
                field("end"),
                "invalid",
                "must be a time HH:MM",
            )),
        }
    }
    if request.enabled && request.working_hours.is_empty() {
        errors.push(FieldError::new(
            "working_hours",
            "required",
            "an enabled calendar needs working hours",
        ));
    }
    if errors.is_empty() {
        days.sort_by_key(|d| d.weekday);
        Ok(days)
    } else {
        Err(AppError::Validation(errors))
    }
}

/// The business calendar
///
/// Working hours per weekday and holidays, in `TIMEZONE`. When `enabled`, resolution targets count
/// working time only.
///
/// Roles: `admin` and staff.
#[utoipa::path(
    tag = "reference-data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The calendar", body = BusinessCalendarResponse),
        problems::SignedInErrors, problems::Forbidden
    )
)]
#[get("/business-calendar")]
pub async fn get_business_calendar(
    state: Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, AppError> {
    caller.require_admin_or_staff()?;
    let row = store::run(&state.pool, store::calendar::find).await?;
    Ok(versioned(row.version, BusinessCalendarResponse::from(row)))
}

/// Replace the business calendar
///
/// Applies to deadlines computed afterwards. The example sets Monday to Friday, 08:30–17:30, with
/// two holidays.
///
/// Roles: `admin`.
///
/// Errors: 412 `version_mismatch` for a stale `If-Match`; 422 `validation_failed` for a weekday
/// twice, an end before its start, or a bad date.
#[utoipa::path(
    tag = "reference-data",
    security(("bearer" = [])),
    params(IfMatch),
    request_body = UpdateBusinessCalendarRequest,
    responses(
        (status = 200, description = "The new calendar", body = BusinessCalendarResponse),
        problems::CreateErrors, problems::VersionMismatch
    )
)]
#[put("/business-calendar")]
pub async fn update_business_calendar(
    state: Data<AppState>,
    caller: AuthUser,
    if_match: IfMatch,
    body: JsonBody<UpdateBusinessCalendarRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    let hours = check(&request)?;
    let mut holidays = request.holidays;
    holidays.sort();
    holidays.dedup();
    let now = state.clock.now();
    let row = store::run(&state.pool, move |conn| {
        store::calendar::update(conn, request.enabled, &hours, &holidays, if_match.0, now)
    })
    .await?;
    Ok(versioned(row.version, BusinessCalendarResponse::from(row)))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_business_calendar)
        .service(update_business_calendar);
}

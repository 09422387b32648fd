//! The business calendar row.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::check_version;
use super::schema::{business_calendar, sla_policies};
use crate::domain::calendar::{BusinessCalendar, WorkingHours};
use crate::domain::level::Level;
use crate::domain::sla::{Deadlines, SlaTargets};

/// Working hours of one ISO weekday (1 = Monday), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayHours {
    /// 1 (Monday) to 7 (Sunday).
    pub weekday: u8,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`, after `start`.
    pub end: String,
}

/// The stored calendar.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = business_calendar, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct CalendarRow {
    pub id: i16,
    pub enabled: bool,
    pub hours: serde_json::Value,
    pub holidays: Vec<NaiveDate>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl CalendarRow {
    /// The working hours per weekday.
    pub fn day_hours(&self) -> Vec<DayHours> {
        day_hours(&self.hours)
    }
}

/// The working hours per weekday of a stored `hours` value; the API writes only well-formed
/// ones, so anything else reads as none.
fn day_hours(hours: &serde_json::Value) -> Vec<DayHours> {
    Vec::<DayHours>::deserialize(hours).unwrap_or_default()
}

/// The calendar for deadline arithmetic, from the stored hours and holidays.
fn business_calendar(
    hours: &serde_json::Value,
    holidays: &[NaiveDate],
    timezone: Tz,
) -> BusinessCalendar {
    let mut week = [None; 7];
    for day in day_hours(hours) {
        let parse = |t: &str| NaiveTime::parse_from_str(t, "%H:%M").ok();
        if let (Some(start), Some(end), 1..=7) = (parse(&day.start), parse(&day.end), day.weekday) {
            week[usize::from(day.weekday) - 1] = Some(WorkingHours { start, end });
        }
    }
    BusinessCalendar {
        hours: week,
        holidays: holidays.iter().copied().collect(),
        timezone,
    }
}

/// The id of the only calendar row.
const CALENDAR_ID: i16 = 1;

/// The calendar row.
pub fn find(conn: &mut PgConnection) -> Result<CalendarRow, StoreError> {
    Ok(business_calendar::table
        .find(CALENDAR_ID)
        .select(CalendarRow::as_select())
        .first(conn)?)
}

/// The deadlines in force: SLA targets and, when enabled, the calendar; one statement.
pub fn deadlines(conn: &mut PgConnection, timezone: Tz) -> Result<Deadlines, StoreError> {
    let facts = diesel::select(deadline_facts()).get_result(conn)?;
    deadlines_from(facts, timezone)
}

/// The resolution target of one level in minutes; `NULL` when no policy row sets it.
#[diesel::dsl::auto_type]
fn target_minutes(level: &'static str) -> _ {
    sla_policies::table
        .find(level)
        .select(sla_policies::resolution_minutes)
        .single_value()
}

/// What [`deadlines`] reads, as scalar subqueries: a write path that reads other rows before it
/// decides selects these with them, in one statement and one round trip.
#[diesel::dsl::auto_type]
pub(super) fn deadline_facts() -> _ {
    let low: target_minutes = target_minutes(Level::Low.as_str());
    let medium: target_minutes = target_minutes(Level::Medium.as_str());
    let high: target_minutes = target_minutes(Level::High.as_str());
    let calendar: i16 = CALENDAR_ID;
    (
        low,
        medium,
        high,
        business_calendar::table
            .find(calendar)
            .select(business_calendar::enabled)
            .single_value(),
        business_calendar::table
            .find(calendar)
            .select(business_calendar::hours)
            .single_value(),
        business_calendar::table
            .find(calendar)
            .select(business_calendar::holidays)
            .single_value(),
    )
}

/// The values [`deadline_facts`] selects.
pub(super) type DeadlineFacts = (
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<bool>,
    Option<serde_json::Value>,
    Option<Vec<NaiveDate>>,
);

/// The deadlines that [`deadline_facts`] describe: a level without a policy row keeps the
/// procedure's default.
pub(super) fn deadlines_from(facts: DeadlineFacts, timezone: Tz) -> Result<Deadlines, StoreError> {
    let (low, medium, high, enabled, hours, holidays) = facts;
    let defaults = SlaTargets::procedure_defaults();
    let target = |minutes: Option<i32>, default| {
        minutes.map_or(default, |m| TimeDelta::minutes(i64::from(m)))
    };
    let targets = SlaTargets {
        low: target(low, defaults.low),
        medium: target(medium, defaults.medium),
        high: target(high, defaults.high),
    };
    let (Some(enabled), Some(hours), Some(holidays)) = (enabled, hours, holidays) else {
        return Err(StoreError::internal("the business calendar row is missing"));
    };
    Ok(Deadlines {
        targets,
        calendar: enabled.then(|| business_calendar(&hours, &holidays, timezone)),
    })
}

/// Replaces the calendar.
pub fn update(
    conn: &mut PgConnection,
    enabled: bool,
    hours: &[DayHours],
    holidays: &[NaiveDate],
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<CalendarRow, StoreError> {
    conn.transaction(|conn| {
        let current: CalendarRow = business_calendar::table
            .find(CALENDAR_ID)
            .select(CalendarRow::as_select())
            .for_update()
            .first(conn)?;
        check_version(expected_version, current.version)?;
        let hours = serde_json::to_value(hours).map_err(StoreError::internal)?;
        Ok(diesel::update(business_calendar::table.find(CALENDAR_ID))
            .set((
                business_calendar::enabled.eq(enabled),
                business_calendar::hours.eq(hours),
                business_calendar::holidays.eq(holidays),
                business_calendar::updated_at.eq(now),
                business_calendar::version.eq(current.version + 1),
            ))
            .returning(CalendarRow::as_returning())
            .get_result(conn)?)
    })
}

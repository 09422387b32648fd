//! The business calendar row.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::check_version;
use super::schema::business_calendar;
use crate::domain::calendar::{BusinessCalendar, WorkingHours};
use crate::domain::sla::Deadlines;
use crate::error::AppError;

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
        serde_json::from_value(self.hours.clone()).unwrap_or_default()
    }

    /// The calendar for deadline arithmetic.
    pub fn calendar(&self, timezone: Tz) -> BusinessCalendar {
        let mut hours = [None; 7];
        for day in self.day_hours() {
            let parse = |t: &str| NaiveTime::parse_from_str(t, "%H:%M").ok();
            if let (Some(start), Some(end), 1..=7) =
                (parse(&day.start), parse(&day.end), day.weekday)
            {
                hours[usize::from(day.weekday) - 1] = Some(WorkingHours { start, end });
            }
        }
        BusinessCalendar {
            hours,
            holidays: self.holidays.iter().copied().collect(),
            timezone,
        }
    }
}

/// The calendar row.
pub fn find(conn: &mut PgConnection) -> Result<CalendarRow, AppError> {
    Ok(business_calendar::table
        .find(1_i16)
        .select(CalendarRow::as_select())
        .first(conn)?)
}

/// The deadlines in force: SLA targets and, when enabled, the calendar.
pub fn deadlines(conn: &mut PgConnection, timezone: Tz) -> Result<Deadlines, AppError> {
    let targets = super::sla_policies::sla_targets(conn)?;
    let row = find(conn)?;
    Ok(Deadlines {
        targets,
        calendar: row.enabled.then(|| row.calendar(timezone)),
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
) -> Result<CalendarRow, AppError> {
    conn.transaction(|conn| {
        let current: CalendarRow = business_calendar::table
            .find(1_i16)
            .select(CalendarRow::as_select())
            .for_update()
            .first(conn)?;
        check_version(expected_version, current.version)?;
        let hours = serde_json::to_value(hours).map_err(AppError::internal)?;
        Ok(diesel::update(business_calendar::table.find(1_i16))
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

//! Resolution targets per level.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::check_version;
use super::schema::sla_policies;
use crate::domain::level::Level;

/// A stored SLA policy.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sla_policies, check_for_backend(diesel::pg::Pg))]
pub struct SlaPolicyRow {
    /// Level code.
    pub level: String,
    /// Resolution target in minutes.
    pub resolution_minutes: i32,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who changed it last (none for the seeded defaults).
    pub updated_by: Option<i64>,
    /// Optimistic-concurrency version.
    pub version: i32,
}

/// All policies, highest level first.
pub fn list(conn: &mut PgConnection) -> Result<Vec<SlaPolicyRow>, StoreError> {
    let mut rows: Vec<SlaPolicyRow> = sla_policies::table
        .select(SlaPolicyRow::as_select())
        .load(conn)?;
    rows.sort_by_key(|row| std::cmp::Reverse(row.level.parse::<Level>().ok()));
    Ok(rows)
}

/// Sets the resolution target of `level`.
pub fn update(
    conn: &mut PgConnection,
    level: Level,
    resolution_minutes: i32,
    actor_id: i64,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<SlaPolicyRow, StoreError> {
    conn.transaction(|conn| {
        let current: SlaPolicyRow = sla_policies::table
            .find(level.as_str())
            .select(SlaPolicyRow::as_select())
            .for_update()
            .first(conn)?;
        check_version(expected_version, current.version)?;
        Ok(diesel::update(sla_policies::table.find(level.as_str()))
            .set((
                sla_policies::resolution_minutes.eq(resolution_minutes),
                sla_policies::updated_by.eq(actor_id),
                sla_policies::updated_at.eq(now),
                sla_policies::version.eq(current.version + 1),
            ))
            .returning(SlaPolicyRow::as_returning())
            .get_result(conn)?)
    })
}

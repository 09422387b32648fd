//! Counts for the metrics endpoint, read from the database so every instance reports the same.

use diesel::prelude::*;

use super::StoreError;
use super::schema::{escalations, incidents, notifications, webhook_deliveries};

/// Counts by label.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// (level, tier, count) of incidents not closed.
    pub open_incidents: Vec<(String, String, i64)>,
    /// (kind, trigger or `none`, count) of escalations.
    pub escalations: Vec<(String, String, i64)>,
    /// (status, count) of webhook deliveries.
    pub deliveries: Vec<(String, i64)>,
    /// (kind, status, count) of e-mail to reporters.
    pub notifications: Vec<(String, String, i64)>,
}

/// Reads all counts.
pub fn counts(conn: &mut PgConnection) -> Result<Counts, StoreError> {
    let open_incidents = incidents::table
        .filter(incidents::status.ne("closed"))
        .group_by((incidents::level, incidents::tier))
        .select((incidents::level, incidents::tier, diesel::dsl::count_star()))
        .load(conn)?;
    let escalations = escalations::table
        .group_by((escalations::kind, escalations::trigger))
        .select((
            escalations::kind,
            escalations::trigger,
            diesel::dsl::count_star(),
        ))
        .load::<(String, Option<String>, i64)>(conn)?
        .into_iter()
        .map(|(kind, trigger, n)| (kind, trigger.unwrap_or_else(|| "none".into()), n))
        .collect();
    let deliveries = webhook_deliveries::table
        .group_by(webhook_deliveries::status)
        .select((webhook_deliveries::status, diesel::dsl::count_star()))
        .load(conn)?;
    let notifications = notifications::table
        .group_by((notifications::kind, notifications::status))
        .select((
            notifications::kind,
            notifications::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    Ok(Counts {
        open_incidents,
        escalations,
        deliveries,
        notifications,
    })
}

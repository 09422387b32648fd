//! The incident list: filters, sort orders with keyset cursors, and the ranked text search of
//! SPEC §14.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;

use super::StoreError;
use super::incident_text::{self, IncidentSearch};
use super::incidents::IncidentRow;
use super::schema::incidents;
use crate::domain::incident::{Incident, Status, Tier};
use crate::domain::level::Level;

/// Sort orders of the incident list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Creation time.
    CreatedAt,
    /// Deadline.
    DueAt,
    /// Level (low < medium < high).
    Level,
    /// Last change.
    UpdatedAt,
    /// Relevance to the search (SPEC §14); the cursor's value is then the rank offset.
    Relevance,
}

/// Where the previous page ended, in the list's sort order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IncidentCursor {
    /// Sort key value of the last row (RFC 3339 time or level rank).
    pub value: serde_json::Value,
    /// Id of the last row.
    pub id: i64,
}

/// Filters of the incident list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct IncidentFilter {
    pub statuses: Vec<Status>,
    pub level: Option<Level>,
    pub tier: Option<Tier>,
    /// `Some(None)`: unassigned incidents.
    pub assignee_id: Option<Option<i64>>,
    pub customer_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub ci_id: Option<i64>,
    /// With the time the breach is judged at.
    pub sla_breached: Option<(bool, DateTime<Utc>)>,
    /// Resolved, user-reported and not yet confirmed (or, `false`, anything else).
    pub awaiting_confirmation: Option<bool>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Changed at or after.
    pub updated_since: Option<DateTime<Utc>>,
    /// Text search, with the incident `q` names by number.
    pub search: Option<IncidentSearch>,
}

/// One page of incidents in the chosen order; returns the rows and the cursor of the next
/// page when more follow.
pub fn list(
    conn: &mut PgConnection,
    filter: &IncidentFilter,
    sort: SortKey,
    descending: bool,
    after: Option<IncidentCursor>,
    limit: i64,
) -> Result<(Vec<Incident>, Option<IncidentCursor>), StoreError> {
    match (sort, &filter.search) {
        (SortKey::Relevance, Some(search)) => {
            let offset = match &after {
                None => 0,
                Some(cursor) => cursor
                    .value
                    .as_i64()
                    .filter(|offset| (0..=RANK_WINDOW).contains(offset))
                    .ok_or_else(bad_cursor)?,
            };
            by_relevance(conn, filter, search, offset, limit)
        }
        // Without a search there is no relevance: newest first.
        (SortKey::Relevance, None) => {
            in_order(conn, filter, SortKey::CreatedAt, true, after, limit)
        }
        _ => in_order(conn, filter, sort, descending, after, limit),
    }
}

fn bad_cursor() -> StoreError {
    StoreError::invalid_field("cursor", "invalid", "is not a cursor returned by this list")
}

/// At most this many matches of a search are ranked: the newest. A query of one common word
/// that matches half the incidents ranks the newest thousand instead of reading every match,
/// which keeps a search within milliseconds whatever it matches; narrower filters or more words
/// reach further back.
pub const RANK_WINDOW: i64 = 1_000;

/// A page of the incidents matching `filter`, the one `search` names by number first, then by
/// relevance (`ts_rank`), newest first among equals.
fn by_relevance(
    conn: &mut PgConnection,
    filter: &IncidentFilter,
    search: &IncidentSearch,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Incident>, Option<IncidentCursor>), StoreError> {
    use incidents::dsl as i;
    let candidates: Vec<i64> = filtered(filter)
        .select(i::id)
        .order(i::id.desc())
        .limit(RANK_WINDOW)
        .load(conn)?;
    let named: Option<i64> = match search.number {
        Some(number) => filtered(filter)
            .filter(i::id.eq(number))
            .select(i::id)
            .first(conn)
            .optional()?,
        None => None,
    };
    let mut ranked = incident_text::ranks(conn, search, &candidates)?;
    ranked.retain(|(id, _)| Some(*id) != named);
    ranked.sort_by(|(a_id, a), (b_id, b)| b.total_cmp(a).then(b_id.cmp(a_id)));
    let order: Vec<i64> = named
        .into_iter()
        .chain(ranked.into_iter().map(|(id, _)| id))
        .skip(offset as usize)
        .take(limit as usize + 1)
        .collect();
    let more = order.len() as i64 > limit;
    let page = &order[..order.len().min(limit as usize)];
    let mut rows: Vec<IncidentRow> = incidents::table
        .filter(i::id.eq_any(page))
        .select(IncidentRow::as_select())
        .load(conn)?;
    rows.sort_by_key(|row| page.iter().position(|id| *id == row.id));
    let next = more.then(|| IncidentCursor {
        value: serde_json::json!(offset + limit),
        id: 0,
    });
    let incidents = rows
        .into_iter()
        .map(Incident::try_from)
        .collect::<Result<_, _>>()?;
    Ok((incidents, next))
}

/// The incidents matching `filter`, unordered and unselected.
fn filtered(filter: &IncidentFilter) -> incidents::BoxedQuery<'_, Pg> {
    use incidents::dsl as i;
    let mut query = incidents::table.into_boxed();
    // One status is an equality, which the queue indexes (status, level, due_at) serve in
    // deadline order; `= ANY` of a list would sort every match.
    match filter.statuses.as_slice() {
        [] => {}
        [one] => query = query.filter(i::status.eq(one.as_str())),
        many => {
            let codes: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
            query = query.filter(i::status.eq_any(codes));
        }
    }
    if let Some(level) = &filter.level {
        query = query.filter(i::level.eq(level.as_str()));
    }
    if let Some(tier) = &filter.tier {
        query = query.filter(i::tier.eq(tier.as_str()));
    }
    match filter.assignee_id {
        Some(Some(assignee)) => query = query.filter(i::assignee_id.eq(assignee)),
        Some(None) => query = query.filter(i::assignee_id.is_null()),
        None => {}
    }
    if let Some(customer) = filter.customer_id {
        query = query.filter(i::customer_id.eq(customer));
    }
    if let Some(category) = &filter.category {
        query = query.filter(i::category.eq(category.clone()));
    }
    if let Some(subcategory) = &filter.subcategory {
        query = query.filter(i::subcategory.eq(subcategory.clone()));
    }
    if let Some(ci) = filter.ci_id {
        query = query.filter(i::ci_id.eq(ci));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(i::created_at.ge(from));
    }
    if let Some(to) = filter.created_to {
        query = query.filter(i::created_at.lt(to));
    }
    if let Some(since) = filter.updated_since {
        query = query.filter(i::updated_at.ge(since));
    }
    if let Some(search) = &filter.search {
        query = query.filter(incident_text::matching(search));
    }
    if let Some(awaiting) = filter.awaiting_confirmation {
        let waits = i::status
            .eq(Status::Resolved.as_str())
            .and(i::user_reported)
            .and(i::user_confirmed_at.is_null());
        query = if awaiting {
            query.filter(waits)
        } else {
            query.filter(diesel::dsl::not(waits))
        };
    }
    if let Some((breached, now)) = filter.sla_breached {
        let resolved_late = i::resolved_at
            .is_not_null()
            .and(i::resolved_at.gt(i::due_at.nullable()));
        let closed_late = i::resolved_at
            .is_null()
            .and(i::closed_at.is_not_null())
            .and(i::closed_at.gt(i::due_at.nullable()));
        let open_late = i::resolved_at
            .is_null()
            .and(i::closed_at.is_null())
            .and(i::due_at.lt(now).nullable());
        let late = resolved_late.or(closed_late).or(open_late);
        query = if breached {
            query.filter(late.assume_not_null())
        } else {
            query.filter(diesel::dsl::not(late.assume_not_null()))
        };
    }

    query
}

/// A page of the incidents matching `filter` in `sort` order, after `after`.
fn in_order(
    conn: &mut PgConnection,
    filter: &IncidentFilter,
    sort: SortKey,
    descending: bool,
    after: Option<IncidentCursor>,
    limit: i64,
) -> Result<(Vec<Incident>, Option<IncidentCursor>), StoreError> {
    use incidents::dsl as i;
    let mut query = filtered(filter).select(IncidentRow::as_select());
    macro_rules! keyset {
        ($column:expr, $value:expr) => {{
            if let Some(cursor) = &after {
                let value = $value(&cursor.value)?;
                query = if descending {
                    query.filter(
                        $column
                            .lt(value.clone())
                            .or($column.eq(value).and(i::id.lt(cursor.id))),
                    )
                } else {
                    query.filter(
                        $column
                            .gt(value.clone())
                            .or($column.eq(value).and(i::id.gt(cursor.id))),
                    )
                };
            }
            query = if descending {
                query.order(($column.desc(), i::id.desc()))
            } else {
                query.order(($column.asc(), i::id.asc()))
            };
        }};
    }
    let time = |v: &serde_json::Value| -> Result<DateTime<Utc>, StoreError> {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc())
            .ok_or_else(bad_cursor)
    };
    let rank = |v: &serde_json::Value| -> Result<i16, StoreError> {
        v.as_i64()
            .and_then(|n| i16::try_from(n).ok())
            .ok_or_else(bad_cursor)
    };
    match sort {
        SortKey::CreatedAt => keyset!(i::created_at, time),
        SortKey::DueAt => keyset!(i::due_at, time),
        SortKey::Level => keyset!(i::level_rank, rank),
        SortKey::UpdatedAt | SortKey::Relevance => keyset!(i::updated_at, time),
    }

    let mut rows: Vec<IncidentRow> = query.limit(limit + 1).load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|row| IncidentCursor {
            value: match sort {
                SortKey::CreatedAt => serde_json::json!(
                    row.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ),
                SortKey::DueAt => serde_json::json!(
                    row.due_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ),
                SortKey::Level => serde_json::json!(row.level_rank),
                SortKey::UpdatedAt | SortKey::Relevance => serde_json::json!(
                    row.updated_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ),
            },
            id: row.id,
        })
    } else {
        None
    };
    let incidents = rows
        .into_iter()
        .map(Incident::try_from)
        .collect::<Result<_, _>>()?;
    Ok((incidents, next))
}

//! Configuration items (配置项) and their change history.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::customers;
use super::schema::{configuration_item_history, configuration_items};
use super::{PageRequest, check_version, explain_conflict, like_pattern, split_page};
use crate::domain::changes::{Changes, FieldChange};

/// A stored configuration item.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = configuration_items, check_for_backend(diesel::pg::Pg))]
pub struct ConfigurationItemRow {
    /// Id.
    pub id: i64,
    /// Name, unique within its customer.
    pub name: String,
    /// Kind of item (server, workstation, application ...).
    pub ci_type: String,
    /// Owning customer organisation.
    pub customer_id: i64,
    /// IT / application system the item belongs to.
    pub system: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i32,
}

/// A configuration item to create.
#[derive(Debug, Clone)]
pub struct NewConfigurationItem {
    /// Name.
    pub name: String,
    /// Kind of item.
    pub ci_type: String,
    /// Owning customer.
    pub customer_id: i64,
    /// System.
    pub system: String,
}

/// Changes to a configuration item.
#[derive(Debug, Clone, Default)]
pub struct ConfigurationItemPatch {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub ci_type: Option<String>,
    /// New owning customer.
    pub customer_id: Option<i64>,
    /// New system.
    pub system: Option<String>,
}

/// Filters of the configuration item list.
#[derive(Debug, Clone, Default)]
pub struct ConfigurationItemFilter {
    /// Items of this customer.
    pub customer_id: Option<i64>,
    /// Items of this kind.
    pub ci_type: Option<String>,
    /// Items of this system.
    pub system: Option<String>,
    /// Text in the name.
    pub q: Option<String>,
}

/// One entry of a configuration item's history.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = configuration_item_history, check_for_backend(diesel::pg::Pg))]
pub struct HistoryRow {
    /// Id.
    pub id: i64,
    /// The item.
    pub configuration_item_id: i64,
    /// Who made the change.
    pub actor_id: Option<i64>,
    /// `created` or `updated`.
    pub action: String,
    /// Field changes, a JSON array of [`FieldChange`].
    pub changes: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl HistoryRow {
    /// The recorded field changes.
    pub fn field_changes(&self) -> Vec<FieldChange> {
        serde_json::from_value(self.changes.clone()).unwrap_or_default()
    }
}

fn record(
    conn: &mut PgConnection,
    item_id: i64,
    actor_id: i64,
    action: &str,
    changes: Changes,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let changes = serde_json::to_value(changes.into_vec()).map_err(StoreError::internal)?;
    diesel::insert_into(configuration_item_history::table)
        .values((
            configuration_item_history::configuration_item_id.eq(item_id),
            configuration_item_history::actor_id.eq(actor_id),
            configuration_item_history::action.eq(action),
            configuration_item_history::changes.eq(changes),
            configuration_item_history::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Creates an item and its first history entry in one transaction.
pub fn insert(
    conn: &mut PgConnection,
    new: NewConfigurationItem,
    actor_id: i64,
    now: DateTime<Utc>,
) -> Result<ConfigurationItemRow, StoreError> {
    conn.transaction(|conn| {
        customers::ensure_exists(conn, new.customer_id)?;
        let row: ConfigurationItemRow = diesel::insert_into(configuration_items::table)
            .values((
                configuration_items::name.eq(&new.name),
                configuration_items::ci_type.eq(&new.ci_type),
                configuration_items::customer_id.eq(new.customer_id),
                configuration_items::system.eq(&new.system),
                configuration_items::created_at.eq(now),
                configuration_items::updated_at.eq(now),
            ))
            .returning(ConfigurationItemRow::as_returning())
            .get_result(conn)
            .map_err(|e| {
                explain_conflict(e, || {
                    format!(
                        "This customer already has a configuration item named `{}`.",
                        new.name
                    )
                })
            })?;
        let mut changes = Changes::new();
        changes
            .created("name", &row.name)
            .created("ci_type", &row.ci_type)
            .created("customer_id", &row.customer_id)
            .created("system", &row.system);
        record(conn, row.id, actor_id, "created", changes, now)?;
        Ok(row)
    })
}

/// The item with `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<ConfigurationItemRow, StoreError> {
    find_optional(conn, id)?.ok_or_else(|| StoreError::not_found("configuration item", id))
}

/// The item with `id`, when it exists.
pub fn find_optional(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<ConfigurationItemRow>, StoreError> {
    Ok(configuration_items::table
        .find(id)
        .select(ConfigurationItemRow::as_select())
        .first(conn)
        .optional()?)
}

/// One page of items in id order.
pub fn list(
    conn: &mut PgConnection,
    filter: &ConfigurationItemFilter,
    page: PageRequest,
) -> Result<(Vec<ConfigurationItemRow>, Option<i64>), StoreError> {
    let mut query = configuration_items::table
        .select(ConfigurationItemRow::as_select())
        .into_boxed();
    if let Some(customer_id) = filter.customer_id {
        query = query.filter(configuration_items::customer_id.eq(customer_id));
    }
    if let Some(ci_type) = &filter.ci_type {
        query = query.filter(configuration_items::ci_type.eq(ci_type.clone()));
    }
    if let Some(system) = &filter.system {
        query = query.filter(configuration_items::system.eq(system.clone()));
    }
    if let Some(q) = &filter.q {
        query = query.filter(configuration_items::name.ilike(like_pattern(q)));
    }
    if let Some(after) = page.after {
        query = query.filter(configuration_items::id.gt(after));
    }
    let rows = query
        .order(configuration_items::id.asc())
        .limit(page.limit + 1)
        .load(conn)?;
    Ok(split_page(rows, page, |row| row.id))
}

/// Applies `patch` and records what changed, in one transaction.
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    patch: ConfigurationItemPatch,
    expected_version: Option<i32>,
    actor_id: i64,
    now: DateTime<Utc>,
) -> Result<ConfigurationItemRow, StoreError> {
    conn.transaction(|conn| {
        let current: ConfigurationItemRow = configuration_items::table
            .find(id)
            .select(ConfigurationItemRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("configuration item", id))?;
        check_version(expected_version, current.version)?;
        let name = patch.name.unwrap_or_else(|| current.name.clone());
        let ci_type = patch.ci_type.unwrap_or_else(|| current.ci_type.clone());
        let customer_id = patch.customer_id.unwrap_or(current.customer_id);
        let system = patch.system.unwrap_or_else(|| current.system.clone());
        let mut changes = Changes::new();
        changes
            .track("name", &current.name, &name)
            .track("ci_type", &current.ci_type, &ci_type)
            .track("customer_id", &current.customer_id, &customer_id)
            .track("system", &current.system, &system);
        if changes.is_empty() {
            return Ok(current);
        }
        if customer_id != current.customer_id {
            customers::ensure_exists(conn, customer_id)?;
        }
        let row = diesel::update(configuration_items::table.find(id))
            .set((
                configuration_items::name.eq(&name),
                configuration_items::ci_type.eq(&ci_type),
                configuration_items::customer_id.eq(customer_id),
                configuration_items::system.eq(&system),
                configuration_items::updated_at.eq(now),
                configuration_items::version.eq(current.version + 1),
            ))
            .returning(ConfigurationItemRow::as_returning())
            .get_result(conn)
            .map_err(|e| {
                explain_conflict(e, || {
                    format!("This customer already has a configuration item named `{name}`.")
                })
            })?;
        record(conn, id, actor_id, "updated", changes, now)?;
        Ok(row)
    })
}

/// The item's history, oldest first.
pub fn history(conn: &mut PgConnection, id: i64) -> Result<Vec<HistoryRow>, StoreError> {
    Ok(configuration_item_history::table
        .filter(configuration_item_history::configuration_item_id.eq(id))
        .order(configuration_item_history::id.asc())
        .select(HistoryRow::as_select())
        .load(conn)?)
}

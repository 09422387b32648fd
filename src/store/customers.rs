//! Customer organisations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::schema::customers;
use super::{PageRequest, check_version, explain_conflict, like_pattern, split_page};
use crate::domain::notification::Locale;

/// A stored customer organisation.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customers, check_for_backend(diesel::pg::Pg))]
pub struct CustomerRow {
    /// Id.
    pub id: i64,
    /// Short unique code (used by monitoring events to name the customer).
    pub code: String,
    /// Name.
    pub name: String,
    /// False once the organisation is no longer served.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i32,
    /// Language of the e-mail its reporters get (`zh` or `en`).
    pub locale: String,
}

/// Changes to a customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    /// New code.
    pub code: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New language of its e-mail.
    pub locale: Option<Locale>,
}

/// Filters of the customer list.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Only this customer (a customer user sees its own organisation only).
    pub only_id: Option<i64>,
    /// Active or inactive only.
    pub active: Option<bool>,
    /// Text in code or name.
    pub q: Option<String>,
}

/// 422 on field `customer_id` unless customer `id` exists.
pub fn ensure_exists(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    let exists: bool =
        diesel::select(diesel::dsl::exists(customers::table.find(id))).get_result(conn)?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::invalid_field(
            "customer_id",
            "not_found",
            format!("customer {id} does not exist"),
        ))
    }
}

/// Creates a customer.
pub fn insert(
    conn: &mut PgConnection,
    code: &str,
    name: &str,
    locale: Locale,
) -> Result<CustomerRow, StoreError> {
    diesel::insert_into(customers::table)
        .values((
            customers::code.eq(code),
            customers::name.eq(name),
            customers::locale.eq(locale.as_str()),
        ))
        .returning(CustomerRow::as_returning())
        .get_result(conn)
        .map_err(|e| {
            explain_conflict(e, || {
                format!("A customer with code `{code}` already exists.")
            })
        })
}

/// The customer with `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<CustomerRow, StoreError> {
    customers::table
        .find(id)
        .select(CustomerRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("customer", id))
}

/// The customer with `id`, when it exists.
pub fn find_optional(conn: &mut PgConnection, id: i64) -> Result<Option<CustomerRow>, StoreError> {
    Ok(customers::table
        .find(id)
        .select(CustomerRow::as_select())
        .first(conn)
        .optional()?)
}

/// One page of customers in id order.
pub fn list(
    conn: &mut PgConnection,
    filter: &CustomerFilter,
    page: PageRequest,
) -> Result<(Vec<CustomerRow>, Option<i64>), StoreError> {
    let mut query = customers::table
        .select(CustomerRow::as_select())
        .into_boxed();
    if let Some(id) = filter.only_id {
        query = query.filter(customers::id.eq(id));
    }
    if let Some(active) = filter.active {
        query = query.filter(customers::active.eq(active));
    }
    if let Some(q) = &filter.q {
        let pattern = like_pattern(q);
        query = query.filter(
            customers::code
                .ilike(pattern.clone())
                .or(customers::name.ilike(pattern)),
        );
    }
    if let Some(after) = page.after {
        query = query.filter(customers::id.gt(after));
    }
    let rows = query
        .order(customers::id.asc())
        .limit(page.limit + 1)
        .load(conn)?;
    Ok(split_page(rows, page, |row| row.id))
}

/// Applies `patch` to customer `id`, checking `expected_version` when given.
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    patch: CustomerPatch,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<CustomerRow, StoreError> {
    conn.transaction(|conn| {
        let current: CustomerRow = customers::table
            .find(id)
            .select(CustomerRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("customer", id))?;
        check_version(expected_version, current.version)?;
        let code = patch.code.unwrap_or(current.code);
        diesel::update(customers::table.find(id))
            .set((
                customers::code.eq(&code),
                customers::name.eq(patch.name.unwrap_or(current.name)),
                customers::active.eq(patch.active.unwrap_or(current.active)),
                customers::locale.eq(patch
                    .locale
                    .map_or(current.locale, |l| l.as_str().to_owned())),
                customers::updated_at.eq(now),
                customers::version.eq(current.version + 1),
            ))
            .returning(CustomerRow::as_returning())
            .get_result(conn)
            .map_err(|e| {
                explain_conflict(e, || {
                    format!("A customer with code `{code}` already exists.")
                })
            })
    })
}

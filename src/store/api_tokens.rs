//! API tokens (SPEC §10). A token is a user of its own, created with it and sharing its id, so
//! the journal names the integration behind every entry; the token is stored as a digest only.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::schema::{api_tokens, users};
use super::users::UserRow;
use super::{PageRequest, explain_conflict, split_page};
use crate::domain::role::Roles;

/// How stale `last_used_at` may get before a use writes it again: a busy integration would
/// otherwise write its token row on every request.
const LAST_USED_PRECISION: TimeDelta = TimeDelta::seconds(60);

/// A stored API token (without its digest).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct ApiTokenRow {
    pub id: i64,
    pub name: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token with the roles its user holds.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// The token row.
    pub row: ApiTokenRow,
    /// Its roles.
    pub roles: Roles,
}

/// A token to create; already validated.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// Unique name, also the display name of its user.
    pub name: String,
    /// Its roles.
    pub roles: Roles,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The admin who created it; `None` from the command line.
    pub created_by: Option<i64>,
}

/// Creates a token and its user in one transaction; `digest` is the stored form of the token.
pub fn insert(
    conn: &mut PgConnection,
    new: NewApiToken,
    digest: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<ApiToken, StoreError> {
    conn.transaction(|conn| {
        let id: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "nextval('users_id_seq')",
        ))
        .get_result(conn)?;
        diesel::insert_into(users::table)
            .values((
                users::id.eq(id),
                users::username.eq(format!("@api-token-{id}")),
                // Not a password hash: no password ever matches it, and token users cannot
                // sign in with a password anyway.
                users::password_hash.eq("!"),
                users::display_name.eq(&new.name),
                users::roles.eq(new.roles.codes()),
                users::kind.eq("api_token"),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        let row = diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::id.eq(id),
                api_tokens::name.eq(&new.name),
                api_tokens::token_hash.eq(digest),
                api_tokens::created_by.eq(new.created_by),
                api_tokens::created_at.eq(now),
                api_tokens::expires_at.eq(new.expires_at),
            ))
            .returning(ApiTokenRow::as_returning())
            .get_result(conn)
            .map_err(|e| {
                explain_conflict(e, || {
                    format!("An API token named `{}` already exists.", new.name)
                })
            })?;
        Ok(ApiToken {
            row,
            roles: new.roles,
        })
    })
}

/// One page of tokens in id order, revoked ones included.
pub fn list(
    conn: &mut PgConnection,
    page: PageRequest,
) -> Result<(Vec<ApiToken>, Option<i64>), StoreError> {
    let mut query = api_tokens::table
        .inner_join(users::table.on(users::id.eq(api_tokens::id)))
        .select((ApiTokenRow::as_select(), users::roles))
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(api_tokens::id.gt(after));
    }
    let rows: Vec<(ApiTokenRow, Vec<String>)> = query
        .order(api_tokens::id.asc())
        .limit(page.limit + 1)
        .load(conn)?;
    let (rows, next) = split_page(rows, page, |(row, _)| row.id);
    let tokens = rows
        .into_iter()
        .map(|(row, roles)| ApiToken {
            row,
            roles: Roles::parse(&roles).unwrap_or_default(),
        })
        .collect();
    Ok((tokens, next))
}

/// Revokes token `id` at once: its user is deactivated in the same transaction, so every
/// server instance refuses it on the next request. Revoking a revoked token changes nothing.
pub fn revoke(conn: &mut PgConnection, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        let found = api_tokens::table
            .find(id)
            .select(api_tokens::revoked_at)
            .for_update()
            .first::<Option<DateTime<Utc>>>(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("API token", id))?;
        if found.is_some() {
            return Ok(());
        }
        diesel::update(api_tokens::table.find(id))
            .set(api_tokens::revoked_at.eq(now))
            .execute(conn)?;
        diesel::update(users::table.find(id))
            .set((
                users::active.eq(false),
                users::token_generation.eq(users::token_generation + 1),
                users::updated_at.eq(now),
                users::version.eq(users::version + 1),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// A live caller's user, and until when its credential is good (`None`: no end of its own).
pub type LiveCaller = (UserRow, Option<DateTime<Utc>>);

/// The user a live token stands for (not revoked, not expired, its user active), with the
/// token's expiry. Records the use, to a minute's precision.
pub fn authenticate(
    conn: &mut PgConnection,
    digest: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<LiveCaller>, StoreError> {
    let found: Option<(ApiTokenRow, UserRow)> = api_tokens::table
        .inner_join(users::table.on(users::id.eq(api_tokens::id)))
        .filter(api_tokens::token_hash.eq(digest))
        .select((ApiTokenRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?;
    let Some((token, user)) = found else {
        return Ok(None);
    };
    let live = token.revoked_at.is_none()
        && token.expires_at.is_none_or(|expiry| now < expiry)
        && user.active;
    if !live {
        return Ok(None);
    }
    if token
        .last_used_at
        .is_none_or(|used| now - used >= LAST_USED_PRECISION)
    {
        diesel::update(api_tokens::table.find(token.id))
            .set(api_tokens::last_used_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some((user, token.expires_at)))
}

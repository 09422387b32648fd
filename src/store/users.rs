//! User accounts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::customers;
use super::schema::users;
use super::{PageRequest, check_version, explain_conflict, like_pattern, split_page};
use crate::domain::role::{Role, Roles};
use crate::domain::user::check_role_binding;

/// A stored user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Lower-case login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Name shown to people.
    pub display_name: String,
    /// Role codes.
    pub roles: Vec<String>,
    /// Organisation of a customer user.
    pub customer_id: Option<i64>,
    /// False once deactivated.
    pub active: bool,
    /// Tokens issued under an older generation are refused.
    pub token_generation: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i32,
    /// `person`, or `api_token` for the user an API token acts as.
    pub kind: String,
    /// Where e-mail about the incidents a customer user reports goes.
    pub email: Option<String>,
}

impl UserRow {
    /// True for the user an API token acts as (SPEC §10).
    pub fn is_api_token(&self) -> bool {
        self.kind == "api_token"
    }

    /// The parsed roles; the database constraint admits only known codes.
    pub fn roles(&self) -> Roles {
        Roles::parse(&self.roles).unwrap_or_default()
    }
}

/// A user to create; all fields already validated by the domain rules.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Normalised username.
    pub username: String,
    /// Argon2id hash of the password.
    pub password_hash: String,
    /// Display name.
    pub display_name: String,
    /// Roles.
    pub roles: Roles,
    /// Organisation of a customer user.
    pub customer_id: Option<i64>,
    /// E-mail address.
    pub email: Option<String>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New display name.
    pub display_name: Option<String>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// New roles.
    pub roles: Option<Roles>,
    /// New organisation (`Some(None)` clears it).
    pub customer_id: Option<Option<i64>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New e-mail address (`Some(None)` removes it).
    pub email: Option<Option<String>>,
}

/// Filters of the user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Users holding this role.
    pub role: Option<Role>,
    /// Active or deactivated users only.
    pub active: Option<bool>,
    /// Users of this organisation.
    pub customer_id: Option<i64>,
    /// Text in username or display name.
    pub q: Option<String>,
}

/// Creates a user.
pub fn insert(conn: &mut PgConnection, new: NewUser) -> Result<UserRow, StoreError> {
    let binding = check_role_binding(&new.roles, new.customer_id);
    if !binding.is_empty() {
        return Err(StoreError::Invalid(binding));
    }
    conn.transaction(|conn| {
        if let Some(customer_id) = new.customer_id {
            customers::ensure_exists(conn, customer_id)?;
        }
        if let Some(email) = &new.email {
            ensure_email_free(conn, email, None)?;
        }
        diesel::insert_into(users::table)
            .values((
                users::username.eq(&new.username),
                users::password_hash.eq(&new.password_hash),
                users::display_name.eq(&new.display_name),
                users::roles.eq(new.roles.codes()),
                users::customer_id.eq(new.customer_id),
                users::email.eq(&new.email),
            ))
            .returning(UserRow::as_returning())
            .get_result(conn)
            .map_err(|e| {
                explain_conflict(e, || {
                    format!(
                        "The username `{}` or the e-mail address is already taken.",
                        new.username
                    )
                })
            })
    })
}

/// The user with `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<UserRow, StoreError> {
    find_optional(conn, id)?.ok_or_else(|| StoreError::not_found("user", id))
}

/// The user with `id`, when it exists.
pub fn find_optional(conn: &mut PgConnection, id: i64) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// The user named `username` (already normalised), if any.
pub fn find_by_username(
    conn: &mut PgConnection,
    username: &str,
) -> Result<Option<UserRow>, StoreError> {
    // Token users never sign in with a password (SPEC §10).
    Ok(users::table
        .filter(users::username.eq(username))
        .filter(users::kind.eq("person"))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// One page of users in id order; returns the rows and the last id when more follow.
pub fn list(
    conn: &mut PgConnection,
    filter: &UserFilter,
    page: PageRequest,
) -> Result<(Vec<UserRow>, Option<i64>), StoreError> {
    let mut query = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(role) = filter.role {
        query = query.filter(users::roles.contains(vec![role.as_str().to_owned()]));
    }
    if let Some(active) = filter.active {
        query = query.filter(users::active.eq(active));
    }
    if let Some(customer_id) = filter.customer_id {
        query = query.filter(users::customer_id.eq(customer_id));
    }
    if let Some(q) = &filter.q {
        let pattern = like_pattern(q);
        query = query.filter(
            users::username
                .ilike(pattern.clone())
                .or(users::display_name.ilike(pattern)),
        );
    }
    if let Some(after) = page.after {
        query = query.filter(users::id.gt(after));
    }
    let rows = query
        .order(users::id.asc())
        .limit(page.limit + 1)
        .load(conn)?;
    Ok(split_page(rows, page, |row| row.id))
}

/// Applies `patch` to user `id`, checking `expected_version` when given.
///
/// Deactivation and password changes revoke the user's tokens at once. The last active admin
/// can neither be deactivated nor lose the admin role, so the installation stays manageable.
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    patch: UserPatch,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<UserRow, StoreError> {
    conn.transaction(|conn| {
        let current: UserRow = users::table
            .find(id)
            .select(UserRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("user", id))?;
        check_version(expected_version, current.version)?;
        if current.is_api_token() {
            return Err(StoreError::forbidden(
                "This user is an API token's; manage it through /api/v1/api-tokens.",
            ));
        }

        let roles = patch.roles.clone().unwrap_or_else(|| current.roles());
        let customer_id = patch.customer_id.unwrap_or(current.customer_id);
        let active = patch.active.unwrap_or(current.active);
        let binding = check_role_binding(&roles, customer_id);
        if !binding.is_empty() {
            return Err(StoreError::Invalid(binding));
        }
        if let Some(new_customer) = customer_id.filter(|id| Some(*id) != current.customer_id) {
            customers::ensure_exists(conn, new_customer)?;
        }
        if let Some(Some(email)) = &patch.email {
            ensure_email_free(conn, email, Some(id))?;
        }

        let was_admin = current.active && current.roles().has(Role::Admin);
        let stays_admin = active && roles.has(Role::Admin);
        if was_admin && !stays_admin {
            let other_admins: Vec<i64> = users::table
                .filter(users::active.eq(true))
                .filter(users::roles.contains(vec![Role::Admin.as_str().to_owned()]))
                .filter(users::id.ne(id))
                .select(users::id)
                .for_update()
                .load(conn)?;
            if other_admins.is_empty() {
                return Err(StoreError::Conflict {
                    code: "last_admin",
                    detail: "This is the last active admin; create another admin first.".into(),
                });
            }
        }

        let revoke = (current.active && !active) || patch.password_hash.is_some();
        let token_generation = current.token_generation + i32::from(revoke);
        diesel::update(users::table.find(id))
            .set((
                users::display_name.eq(patch.display_name.unwrap_or(current.display_name)),
                users::password_hash.eq(patch.password_hash.unwrap_or(current.password_hash)),
                users::roles.eq(roles.codes()),
                users::customer_id.eq(customer_id),
                users::active.eq(active),
                users::email.eq(patch.email.unwrap_or(current.email)),
                users::token_generation.eq(token_generation),
                users::updated_at.eq(now),
                users::version.eq(current.version + 1),
            ))
            .returning(UserRow::as_returning())
            .get_result(conn)
            .map_err(|e| explain_conflict(e, || "The e-mail address is already taken.".into()))
    })
}

/// 409 `already_exists` when another user than `except` has `email` (compared without case).
fn ensure_email_free(
    conn: &mut PgConnection,
    email: &str,
    except: Option<i64>,
) -> Result<(), StoreError> {
    use diesel::sql_types::{BigInt, Bool, Nullable, Text};
    let taken: bool = diesel::select(
        diesel::dsl::sql::<Bool>("EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(")
            .bind::<Text, _>(email)
            .sql(") AND id IS DISTINCT FROM ")
            .bind::<Nullable<BigInt>, _>(except)
            .sql(")"),
    )
    .get_result(conn)?;
    if taken {
        return Err(StoreError::Conflict {
            code: "already_exists",
            detail: format!("The e-mail address `{email}` is already another user's."),
        });
    }
    Ok(())
}

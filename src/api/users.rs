//! `/api/v1/users`: user accounts, managed by admins.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, patch, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidateEmail, ValidationError};

use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery};
use super::pagination::{Page, PageQuery, page};
use crate::api::problems;
use crate::api::respond::{created, versioned};
use crate::auth::{password, throttle};
use crate::domain::role::{Role, Roles};
use crate::domain::user;
use crate::domain::validation::rule;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::users::{NewUser, UserFilter, UserPatch, UserRow};

/// A user account as clients see it (never the password hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 2, "username": "wang.fang", "display_name": "王芳", "roles": ["service_desk"], "customer_id": null, "email": null, "active": true, "created_at": "2026-12-07T09:15:00Z", "updated_at": "2026-12-07T09:15:00Z", "version": 1}))]
pub struct UserResponse {
    /// Id.
    #[schema(example = 2)]
    pub id: i64,
    /// Lower-case login name.
    #[schema(example = "li.lei")]
    pub username: String,
    /// Name shown to people.
    #[schema(example = "李雷")]
    pub display_name: String,
    /// Roles, sorted.
    pub roles: Vec<Role>,
    /// Organisation of a customer user; `null` for staff.
    pub customer_id: Option<i64>,
    /// E-mail address; a customer user's receives the messages about the incidents it reports
    /// (unless the incident names a reporter with an address of their own).
    pub email: Option<String>,
    /// False once deactivated; a deactivated user cannot log in and its tokens are refused.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    #[schema(example = 1)]
    pub version: i32,
}

impl From<UserRow> for UserResponse {
    fn from(row: UserRow) -> Self {
        UserResponse {
            id: row.id,
            roles: row.roles().as_slice().to_vec(),
            username: row.username,
            display_name: row.display_name,
            customer_id: row.customer_id,
            email: row.email,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

fn username_rule(value: &str) -> Result<(), ValidationError> {
    rule(user::parse_username(value).map(|_| ()))
}

fn password_rule(value: &str) -> Result<(), ValidationError> {
    rule(user::check_password(value))
}

fn display_name_rule(value: &str) -> Result<(), ValidationError> {
    rule(user::check_display_name(value))
}

/// 422 on `email` unless `email` is an address (the update's `email` may also be `null`).
fn check_email(email: &str) -> Result<(), AppError> {
    if email.validate_email() && email.len() <= 254 {
        return Ok(());
    }
    Err(AppError::invalid_field(
        "email",
        "email",
        "must be an e-mail address",
    ))
}

fn roles_rule(roles: &[Role]) -> Result<(), ValidationError> {
    if roles.is_empty() {
        let mut error = ValidationError::new("required");
        error.message = Some("at least one role is required".into());
        return Err(error);
    }
    Ok(())
}

/// A new user account.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "wang.fang", "password": "收费窗口 夜班 2026 春", "display_name": "王芳", "roles": ["service_desk"]}))]
pub struct CreateUserRequest {
    /// 2–64 characters of `a-z 0-9 _ . @ -`; stored lower-case.
    #[validate(custom(function = "username_rule"))]
    #[schema(example = "li.lei", pattern = "^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")]
    pub username: String,
    /// 8–256 characters.
    #[validate(custom(function = "password_rule"))]
    #[schema(example = "a long passphrase", format = Password, min_length = 8, max_length = 256, pattern = "^[^\\u0000]*\\S[^\\u0000]*$")]
    pub password: String,
    /// 1–200 characters.
    #[validate(custom(function = "display_name_rule"))]
    #[schema(
        example = "李雷",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub display_name: String,
    /// One or more roles. `customer` cannot be combined with others.
    #[validate(custom(function = "roles_rule"))]
    #[schema(example = json!(["service_desk"]), min_items = 1)]
    pub roles: Vec<Role>,
    /// Required for, and only for, `customer` users.
    pub customer_id: Option<i64>,
    /// E-mail address, unique among users (compared without case).
    #[validate(email, length(max = 254))]
    #[schema(example = "wang.fang@desk.example", format = Email, max_length = 254)]
    pub email: Option<String>,
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "王芳（服务台组长）"}))]
pub struct UpdateUserRequest {
    /// New display name.
    #[validate(custom(function = "display_name_rule"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub display_name: Option<String>,
    /// New password; revokes the user's existing tokens.
    #[validate(custom(function = "password_rule"))]
    #[schema(format = Password, min_length = 8, max_length = 256, pattern = "^[^\\u0000]*\\S[^\\u0000]*$")]
    pub password: Option<String>,
    /// New roles (replace the old ones).
    #[validate(custom(function = "roles_rule"))]
    #[schema(min_items = 1)]
    pub roles: Option<Vec<Role>>,
    /// New organisation; `null` removes it (when the user stops being a customer user).
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<i64>)]
    pub customer_id: Option<Option<i64>>,
    /// `false` deactivates the user and revokes its tokens at once; `true` reactivates.
    pub active: Option<bool>,
    /// New e-mail address; `null` removes it.
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<String>, format = Email, max_length = 254)]
    pub email: Option<Option<String>>,
}

/// Filters of `GET /users`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Users holding this role.
    pub role: Option<Role>,
    /// Active (`true`) or deactivated (`false`) users only.
    pub active: Option<bool>,
    /// Users of this customer organisation.
    pub customer_id: Option<i64>,
    /// Text in username or display name (empty means no filter).
    #[validate(length(max = 200))]
    #[param(max_length = 200, pattern = "^[^\\u0000]*$")]
    pub q: Option<String>,
}

/// Create a user account
///
/// Roles are `admin`, `service_desk`, `l2_engineer`, `ops_staff`, `incident_manager` and
/// `customer`; a `customer` user needs `customer_id` (its organisation) and sees that
/// organisation's incidents only. The example creates the service desk user `wang.fang` with whom
/// the other examples work incidents.
///
/// Roles: `admin`.
///
/// Errors: 409 `already_exists` when the username is taken; 422 `validation_failed` for a bad field
/// (a password that is too short, common or the username; an unknown role; a customer user
/// without organisation).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "User created", body = UserResponse,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "URL of the user"))),
        problems::CreateErrors, problems::Conflict
    )
)]
#[post("/users")]
pub async fn create_user(
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateUserRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    let username =
        user::parse_username(&request.username).map_err(|e| AppError::Validation(vec![e]))?;
    user::check_password_of(&username, &request.password)
        .map_err(|e| AppError::Validation(vec![e]))?;
    let roles = Roles::new(request.roles);
    let binding = user::check_role_binding(&roles, request.customer_id);
    if !binding.is_empty() {
        return Err(AppError::Validation(binding));
    }
    let password_hash = actix_web::web::block(move || password::hash(&request.password))
        .await?
        .map_err(AppError::internal)?;
    let new = NewUser {
        username,
        password_hash,
        display_name: request.display_name.trim().to_owned(),
        roles,
        customer_id: request.customer_id,
        email: request.email.map(|email| email.trim().to_owned()),
    };
    let row = store::run(&state.pool, move |conn| store::users::insert(conn, new)).await?;
    Ok(created(
        Some(format!("/api/v1/users/{}", row.id)),
        row.version,
        UserResponse::from(row),
    ))
}

/// List user accounts
///
/// Every account, active or not, by id; never a password hash.
///
/// Roles: `admin`.
///
/// Errors: 422 `validation_failed` for a bad `limit` or `cursor`.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(ListUsersQuery, PageQuery),
    responses(
        (status = 200, description = "A page of users, in id order", body = Page<UserResponse>),
        problems::ListErrors
    )
)]
#[get("/users")]
pub async fn list_users(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListUsersQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let query = query.0;
    let page_req = paging.0.request()?;
    let filter = UserFilter {
        role: query.role,
        active: query.active,
        customer_id: query.customer_id,
        q: query.q.filter(|q| !q.trim().is_empty()),
    };
    let rows = store::run(&state.pool, move |conn| {
        store::users::list(conn, &filter, page_req)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, UserResponse::from)))
}

/// The calling user's own account
///
/// What the token stands for: id, username, display name, roles and organisation. A frontend calls
/// it after sign-in to decide which screens to show.
///
/// Roles: any signed-in user or API token.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserResponse),
        problems::SignedInErrors
    )
)]
#[get("/users/me")]
pub async fn get_current_user(caller: AuthUser) -> Result<HttpResponse, AppError> {
    // The extractor has just read the caller's row; no second query.
    let row = caller.row;
    Ok(versioned(row.version, UserResponse::from(row)))
}

/// One user account
///
/// Roles: `admin`.
///
/// Errors: 404 `not_found` when there is no such user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserResponse,
            headers(("ETag" = String, description = "Version"))),
        problems::ReadErrors
    )
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let row = store::run(&state.pool, move |conn| store::users::find(conn, id)).await?;
    Ok(versioned(row.version, UserResponse::from(row)))
}

/// Change a user account
///
/// Only the fields sent change. `{"active": false}` deactivates the account and its tokens stop
/// working at once; a new `password` revokes the tokens issued before. Send the `ETag` as
/// `If-Match` to refuse a stale write.
///
/// Roles: `admin`.
///
/// Errors: 409 `last_admin` when the change would leave no active admin; 412 `version_mismatch` for
/// a stale or weak `If-Match`; 422 `validation_failed` for a bad field.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "User id"),
        IfMatch
    ),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The changed user", body = UserResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::UpdateErrors, problems::Conflict
    )
)]
#[patch("/users/{id}")]
pub async fn update_user(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<UpdateUserRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    let id = id.into_inner();
    if let Some(Some(email)) = &request.email {
        check_email(email.trim())?;
    }
    if let Some(new_password) = &request.password {
        let row = store::run(&state.pool, move |conn| store::users::find(conn, id)).await?;
        user::check_password_of(&row.username, new_password)
            .map_err(|e| AppError::Validation(vec![e]))?;
    }
    let password_hash = match request.password {
        Some(new_password) => Some(
            actix_web::web::block(move || password::hash(&new_password))
                .await?
                .map_err(AppError::internal)?,
        ),
        None => None,
    };
    let patch = UserPatch {
        display_name: request.display_name.map(|name| name.trim().to_owned()),
        password_hash,
        roles: request.roles.map(Roles::new),
        customer_id: request.customer_id,
        active: request.active,
        email: request
            .email
            .map(|email| email.map(|email| email.trim().to_owned())),
    };
    let now = state.clock.now();
    let row = store::run(&state.pool, move |conn| {
        store::users::update(conn, id, patch, if_match.0, now)
    })
    .await?;
    // Other instances hear of it from the database; this one must not wait for that.
    state.credentials.forget_all();
    Ok(versioned(row.version, UserResponse::from(row)))
}

/// Lift a sign-in lock
///
/// After repeated wrong passwords a username must wait before it may try again; this lets the
/// user sign in at once (its failures are forgotten on every instance). An address locked by
/// failures for many usernames stays locked until its window passes. To unlock `admin` itself
/// without another administrator, run `incident-desk unlock-user admin` on the server.
///
/// Roles: `admin`.
///
/// Errors: 404 `not_found` when there is no such user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 204, description = "The user may sign in again"),
        problems::ReadErrors
    )
)]
#[post("/users/{id}/unlock")]
pub async fn unlock_user(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let id = id.into_inner();
    store::run(&state.pool, move |conn| {
        let user = store::users::find(conn, id)?;
        store::sign_in_failures::forget(conn, &throttle::user_key(&user.username))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the routes; `/users/me` comes before `/users/{id}`.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_current_user)
        .service(create_user)
        .service(list_users)
        .service(get_user)
        .service(unlock_user)
        .service(update_user);
}

//! `/api/v1/api-tokens`: tokens for integrations such as monitoring systems (SPEC §10).

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidationError};

use super::extract::{AuthUser, JsonBody, ValidQuery};
use super::pagination::{Page, PageQuery, page};
use crate::api::problems;
use crate::auth::api_token;
use crate::domain::role::{Role, Roles};
use crate::domain::user;
use crate::domain::validation::rule;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::api_tokens::{ApiToken, NewApiToken};

fn name_rule(value: &str) -> Result<(), ValidationError> {
    rule(user::check_token_name(value))
}

/// A new API token.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "zabbix-prod", "roles": ["integration"]}))]
pub struct CreateApiTokenRequest {
    /// Unique name, 1–100 characters; journals show it as the author of what the token writes.
    #[validate(custom(function = "name_rule"))]
    #[schema(
        example = "prometheus-prod",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub name: String,
    /// `integration` and/or staff roles; `admin` and `customer` are refused.
    #[schema(example = json!(["integration"]), min_items = 1)]
    pub roles: Vec<Role>,
    /// When the token stops working; absent for never. Must lie in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API token as listed; the token itself is shown only once, when it is created.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiTokenResponse {
    /// Id; also the id of the user the token acts as, which journals name.
    #[schema(example = 42)]
    pub id: i64,
    /// Name.
    #[schema(example = "prometheus-prod")]
    pub name: String,
    /// Roles.
    #[schema(example = json!(["integration"]))]
    pub roles: Vec<Role>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it stops working; `null` for never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last accepted use, to a minute's precision; `null` when never used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; `null` while it is live.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for ApiTokenResponse {
    fn from(token: ApiToken) -> Self {
        ApiTokenResponse {
            id: token.row.id,
            name: token.row.name,
            roles: token.roles.as_slice().to_vec(),
            created_at: token.row.created_at,
            expires_at: token.row.expires_at,
            last_used_at: token.row.last_used_at,
            revoked_at: token.row.revoked_at,
        }
    }
}

/// A created API token, with the token itself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiTokenResponse {
    /// The token as listed.
    #[serde(flatten)]
    pub listed: ApiTokenResponse,
    /// The token: send it as `Authorization: Bearer <token>` (or as an event's `routing_key`).
    /// Shown only here; the server keeps a digest.
    #[schema(example = "idt_3q2T0m6yV8e9rJk1xZ4pL7cQ5wB0nH2sD8fG6aY1uE0")]
    pub token: String,
}

/// Create an API token for an integration
///
/// The token (`idt_…`) is shown only in this answer and stored as a hash. It acts as a user of its
/// own, named after the token, so journals show which integration wrote what. Give monitoring
/// systems the `integration` role.
///
/// Roles: `admin`.
///
/// Errors: 409 `already_exists` when the name is taken; 422 `validation_failed` for no roles, or
/// `admin` or `customer` among them.
#[utoipa::path(
    tag = "api-tokens",
    security(("bearer" = [])),
    request_body = CreateApiTokenRequest,
    responses(
        (status = 201, description = "Token created; `token` is shown only in this answer", body = CreatedApiTokenResponse),
        problems::CreateErrors, problems::Conflict
    )
)]
#[post("/api-tokens")]
pub async fn create_api_token(
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateApiTokenRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    let now = state.clock.now();
    let roles = Roles::new(request.roles);
    let mut errors = user::check_token_roles(&roles);
    if request.expires_at.is_some_and(|expiry| expiry <= now) {
        errors.push(crate::domain::validation::FieldError::new(
            "expires_at",
            "invalid",
            "must lie in the future",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let token = api_token::generate();
    let new = NewApiToken {
        name: request.name.trim().to_owned(),
        roles,
        expires_at: request.expires_at,
        created_by: Some(caller.id),
    };
    let digest = api_token::digest(&token);
    let created = store::run(&state.pool, move |conn| {
        store::api_tokens::insert(conn, new, digest, now)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedApiTokenResponse {
            listed: ApiTokenResponse::from(created),
            token,
        }))
}

/// List API tokens, revoked ones included
///
/// Names, roles, creation, expiry, last use and revocation; never the tokens themselves.
///
/// Roles: `admin`.
#[utoipa::path(
    tag = "api-tokens",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tokens, in id order", body = Page<ApiTokenResponse>),
        problems::ListErrors
    )
)]
#[get("/api-tokens")]
pub async fn list_api_tokens(
    state: Data<AppState>,
    caller: AuthUser,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let page_req = paging.0.request()?;
    let rows = store::run(&state.pool, move |conn| {
        store::api_tokens::list(conn, page_req)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, ApiTokenResponse::from)))
}

/// Revoke an API token
///
/// The token is refused (401) from the next request on, on every server instance. Revoking a
/// revoked token changes nothing and answers 204 again.
///
/// Roles: `admin`.
///
/// Errors: 404 `not_found` when there is no such token.
#[utoipa::path(
    tag = "api-tokens",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "API token id")),
    responses(
        (status = 204, description = "Revoked"),
        problems::ReadErrors
    )
)]
#[delete("/api-tokens/{id}")]
pub async fn revoke_api_token(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let now = state.clock.now();
    store::run(&state.pool, move |conn| {
        store::api_tokens::revoke(conn, id, now)
    })
    .await?;
    // Other instances hear of it from the database; this one must not wait for that.
    state.credentials.forget_all();
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_api_token)
        .service(list_api_tokens)
        .service(revoke_api_token);
}

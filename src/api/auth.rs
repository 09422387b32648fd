//! `POST /api/v1/auth/token`.

use actix_web::web::Data;
use actix_web::{HttpResponse, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::JsonBody;
use crate::api::problems;
use crate::auth::password;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// Credentials.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Username (case-insensitive).
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "admin", min_length = 1, max_length = 64)]
    pub username: String,
    /// Password.
    #[validate(length(min = 1, max = 256))]
    #[schema(example = "change-me-now", format = Password, min_length = 1, max_length = 256)]
    pub password: String,
}

/// An access token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// JWT (HS256) to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: u64,
}

/// Exchange a username and password for an access token.
#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Token issued", body = TokenResponse),
        problems::SignedInErrors, problems::BadRequest, problems::PayloadTooLarge, problems::ValidationFailed
    )
)]
#[post("/auth/token")]
pub async fn issue_token(
    state: Data<AppState>,
    body: JsonBody<TokenRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.parse()?;
    let username = request.username.trim().to_lowercase();
    let user = store::run(&state.pool, move |conn| {
        store::users::find_by_username(conn, &username)
    })
    .await?;
    let stored = user
        .as_ref()
        .filter(|u| u.active)
        .map(|u| u.password_hash.clone());
    // Argon2 is deliberately slow; keep it off the HTTP workers.
    let verified =
        actix_web::web::block(move || password::verify(&request.password, stored.as_deref()))
            .await?;
    let user = match user {
        Some(user) if verified => user,
        _ => return Err(AppError::Unauthorized("Wrong username or password.".into())),
    };
    // Token times are real time, not the injectable domain clock: the JWT library checks
    // expiry against the system clock.
    let access_token = state
        .tokens
        .issue(
            user.id,
            &user.roles(),
            user.customer_id,
            user.token_generation,
            chrono::Utc::now(),
        )
        .map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: state.tokens.ttl().as_secs(),
        }))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(issue_token);
}

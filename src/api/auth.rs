//! `POST /api/v1/auth/token`.

use std::time::Duration;

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{JsonBody, client_address};
use crate::api::problems;
use crate::auth::{password, throttle};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// How long a sign-in waits for a turn at password hashing before it is told to retry.
const HASHING_QUEUE: Duration = Duration::from_secs(2);

/// Credentials.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "wang.fang", "password": "收费窗口 夜班 2026 春"}))]
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
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyIiwicm9sZXMiOlsic2VydmljZV9kZXNrIl19.4oZ3d1p6Xk", "token_type": "Bearer", "expires_in": 3600}))]
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

/// How long a sign-in counted in `counters` must wait now, from the failures every instance
/// recorded.
pub(crate) async fn throttle_wait(
    state: &AppState,
    counters: &[throttle::Counter],
) -> Result<Option<Duration>, AppError> {
    let now = state.clock.now();
    let keys: Vec<String> = counters.iter().map(|c| c.key.clone()).collect();
    let since = throttle::window_start(now);
    let counted = store::run(&state.pool, move |conn| {
        store::sign_in_failures::recent(conn, &keys, since)
    })
    .await?;
    Ok(throttle::wait(counters, &counted, now))
}

/// Records a failed sign-in in each of `counters`, and counts it (and each lock it completes)
/// in the metrics.
pub(crate) async fn count_failure(
    state: &AppState,
    counters: Vec<throttle::Counter>,
) -> Result<(), AppError> {
    let now = state.clock.now();
    let since = throttle::window_start(now);
    let locked = store::run(&state.pool, move |conn| {
        let mut locked = Vec::new();
        for counter in &counters {
            let limit = i32::try_from(counter.limit).unwrap_or(i32::MAX);
            let counted = store::sign_in_failures::record(conn, &counter.key, limit, since, now)?;
            if counted == limit {
                locked.push(counter.kind);
            }
        }
        Ok::<_, AppError>(locked)
    })
    .await?;
    state.metrics.sign_in_failed(&locked);
    Ok(())
}

/// Sign in: exchange a username and password for an access token
///
/// Answers a JWT (`access_token`, `expires_in` seconds) to send as `Authorization: Bearer <token>`.
/// In Swagger UI, press **Authorize** and paste it; the page keeps it across reloads.
///
/// Roles: anyone with an active account. The `admin` account of a fresh install manages accounts
/// and settings only; to work incidents, create a user with a staff role (`POST /api/v1/users`, its
/// example makes a `service_desk` user) and sign in as that user.
///
/// Errors: 401 `unauthorized` for a wrong username or password (the same answer for both); 429
/// `too_many_requests` after repeated failures for the username or from the address, with
/// `Retry-After`.
#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Token issued", body = TokenResponse),
        problems::SignedInErrors, problems::BadRequest, problems::PayloadTooLarge, problems::ValidationFailed, problems::TooManyRequests
    )
)]
#[post("/auth/token")]
pub async fn issue_token(
    state: Data<AppState>,
    http: HttpRequest,
    body: JsonBody<TokenRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.parse()?;
    let username = request.username.trim().to_lowercase();
    // The TCP peer, or the client a trusted proxy names; never a header a client made up.
    let address = client_address(&http, &state.settings.trusted_proxies).map(|ip| ip.to_string());
    let throttled = |wait: Duration| AppError::TooManyRequests {
        detail:
            "Too many failed sign-ins for this username or from this address; wait and try again."
                .into(),
        retry_after: wait.as_secs().max(1),
    };
    let counters = throttle::counters(&username, address.as_deref());
    if let Some(wait) = throttle_wait(&state, &counters).await? {
        return Err(throttled(wait));
    }
    let _hashing = tokio::time::timeout(HASHING_QUEUE, state.password_hashing.acquire())
        .await
        .map_err(|_| AppError::TooManyRequests {
            detail: "Too many sign-ins at once; try again in a moment.".into(),
            retry_after: 1,
        })?
        .map_err(AppError::internal)?;
    // Asked again with the turn: the failures of the sign-ins that hashed while this one
    // waited count too.
    if let Some(wait) = throttle_wait(&state, &counters).await? {
        return Err(throttled(wait));
    }
    let lookup = username.clone();
    let user = store::run(&state.pool, move |conn| {
        store::users::find_by_username(conn, &lookup)
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
        _ => {
            count_failure(&state, counters).await?;
            return Err(AppError::Unauthorized("Wrong username or password.".into()));
        }
    };
    let key = throttle::user_key(&username);
    store::run(&state.pool, move |conn| {
        store::sign_in_failures::forget(conn, &key)
    })
    .await?;
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

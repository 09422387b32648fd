//! `Idempotency-Key` on creating POSTs (SPEC §10): the first response is kept and replayed —
//! status, body, `ETag`, `Location` — for 24 hours to the same caller, method and path, so a
//! client that lost an answer can retry without creating twice.
//!
//! The key is claimed in the database before the handler runs, so concurrent retries on any
//! number of server instances never both execute: the second waits for the first answer, and
//! gets 409 `idempotency_key_in_use` if it does not come in time. A request without a valid
//! `Authorization` header is passed through untouched; the handler refuses or authenticates it
//! its own way (an event's `routing_key`).
//!
//! Every creating handler but `/events` writes through [`run_keyed`], which keeps its answer in
//! the transaction of its effect, so a server that dies between the commit and the answer
//! leaves the answer behind, and the client's retry gets it at once instead of running the
//! request again. A claim in flight for 15 seconds may be taken over by a retry (the server
//! that held it may have died before its commit); each claim carries a token, and the answer is
//! kept only while the claim is still the request's own, so a slow request that was taken over
//! undoes its effect instead of running twice.
//! Events are written in batches shared by many requests, so their answers are kept after the
//! batch commits; a trigger run twice after a crash counts one more occurrence of the same
//! incident, never a second incident.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::extract::{AuthUser, bearer_token, read_body};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::idempotency::{Claim, KeyScope, StoredResponse};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header a replayed answer carries.
pub const REPLAYED: &str = "idempotent-replayed";

/// The key this request claimed, for a handler that keeps its answer in the transaction of its
/// effect (`store::idempotency::answered_with`); the middleware then keeps nothing more.
#[derive(Debug, Clone)]
pub struct KeyClaim {
    scope: KeyScope,
    token: i64,
    kept: Arc<AtomicBool>,
}

impl KeyClaim {
    /// The claim of `request`, when it carries a key this server claimed for it.
    pub fn of(request: &HttpRequest) -> Option<KeyClaim> {
        request.extensions().get::<KeyClaim>().cloned()
    }

    /// What the key is scoped to.
    pub fn scope(&self) -> &KeyScope {
        &self.scope
    }

    /// The handler committed its answer with its effect.
    pub fn mark_kept(&self) {
        self.kept.store(true, Ordering::Release);
    }

    fn is_kept(&self) -> bool {
        self.kept.load(Ordering::Acquire)
    }
}

/// The kept answer of an earlier request with the same key, which the handler replays once the
/// caller has passed the same authorisation a new request would ([`run_keyed`],
/// [`take_replay`]): a caller who lost access since gets the refusal, not the kept body.
#[derive(Debug, Clone)]
struct PendingReplay(Arc<std::sync::Mutex<Option<StoredResponse>>>);

/// The kept answer to replay for `request`, once: for a handler that authorises the caller
/// before it writes (monitoring events) and has just done so.
pub fn take_replay(request: &HttpRequest) -> Option<HttpResponse> {
    let pending = request.extensions().get::<PendingReplay>().cloned()?;
    let stored = pending.0.lock().ok()?.take()?;
    Some(replay(stored))
}

/// Refusals that mean the caller may not do this at all (any more), as opposed to what the
/// request would run into now that it was done once (a duplicate, a changed state).
fn refuses_access(error: &AppError) -> bool {
    matches!(
        error,
        AppError::Unauthorized(_) | AppError::Forbidden(_) | AppError::NotFound(_)
    ) || matches!(error, AppError::Validation(errors) if errors.iter().any(|e| e.code == "not_found"))
}

/// Runs a creating request's write: `work` makes the change and renders its answer in one
/// transaction, which keeps the answer too when the request claimed a key. Answers it.
///
/// A retry whose answer is kept runs `work` as a dry run, rolled back, so that the decisions
/// inside it (who may create what, for which organisation) are made again for this caller; the
/// kept answer is replayed unless they refuse the caller access.
pub async fn run_keyed<F>(
    request: &HttpRequest,
    state: &AppState,
    work: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut crate::store::Connection) -> Result<StoredResponse, AppError> + Send + 'static,
{
    let pending = request.extensions().get::<PendingReplay>().cloned();
    if let Some(stored) = pending.and_then(|p| p.0.lock().ok()?.take()) {
        let dry_run = store::run(&state.pool, move |conn| store::rolled_back(conn, work)).await;
        return match dry_run {
            Err(refusal) if refuses_access(&refusal) => Err(refusal),
            _ => Ok(replay(stored)),
        };
    }
    let claim = KeyClaim::of(request);
    let held = claim.as_ref().map(|c| (c.scope().clone(), c.token));
    let stored = store::run(&state.pool, move |conn| {
        let held = held.as_ref().map(|(scope, token)| (scope, *token));
        store::idempotency::answered_with(conn, held, work)
    })
    .await?;
    if let Some(claim) = claim {
        claim.mark_kept();
    }
    crate::fault::after_commit();
    Ok(answer(stored))
}

/// A JSON answer as kept for replay: `status`, the version as `ETag` and the URL as `Location`
/// when given.
pub fn json_answer(
    status: StatusCode,
    version: Option<i32>,
    location: Option<String>,
    body: &impl serde::Serialize,
) -> Result<StoredResponse, AppError> {
    Ok(StoredResponse {
        status: status.as_u16(),
        content_type: Some("application/json".to_owned()),
        etag: version.map(|v| super::respond::etag(v).1),
        location,
        body: serde_json::to_vec(body).map_err(AppError::internal)?,
    })
}

/// The creating POSTs a key applies to, as route patterns. Later resources add theirs.
const CREATING_ROUTES: &[&str] = &[
    "/api/v1/incidents",
    "/api/v1/incidents/{id}/notes",
    "/api/v1/incidents/{id}/escalations",
    "/api/v1/incidents/{id}/follow-ups",
    "/api/v1/incidents/{id}/coordination-tickets",
    "/api/v1/knowledge",
    "/api/v1/events",
];

/// The creating POSTs whose answer is kept after their effect committed, not with it: monitoring
/// events, written in batches shared by many requests.
const ANSWERED_AFTER_COMMIT: &[&str] = &["/api/v1/events"];

/// How long a retry waits for the answer of the same request still in flight.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// The `Idempotency-Key` header as the OpenAPI document describes it on creating POSTs.
pub struct IdempotencyKey;

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            // Spaces inside only: the server trims the key.
            .pattern(Some("^[!-~]([ -~]*[!-~])?$"));
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes a retry safe: the first answer (status, body, ETag, Location) is \
                     replayed for 24 h to the same caller, method and path, with \
                     `Idempotent-Replayed: true`. The same key with another body is 422 \
                     `idempotency_key_reused`; while the first request is still running a retry \
                     waits for its answer, or gets 409 `idempotency_key_in_use`.",
                ))
                .schema(Some(key))
                .build(),
        ]
    }
}

/// Middleware: replays, refuses or records creating POSTs that carry an `Idempotency-Key`.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let pattern = req
        .match_pattern()
        .filter(|pattern| CREATING_ROUTES.contains(&pattern.as_str()));
    let Some(pattern) = pattern
        .filter(|_| req.method() == Method::POST && req.headers().contains_key(IDEMPOTENCY_KEY))
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match read_key(req.headers().get(IDEMPOTENCY_KEY)) {
        Ok(key) => key,
        Err(err) => return Ok(req.error_response(err)),
    };
    let caller = match bearer_token(req.request()) {
        Ok(token) => AuthUser::from_token(&state, token).await.ok(),
        Err(_) => None,
    };
    let Some(caller) = caller else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let user_id = caller.id;
    req.extensions_mut().insert(caller);
    let (_, payload) = req.parts_mut();
    // Read as sent (still encoded): the handler's extractor decodes it from the payload put back.
    let body = match read_body(payload, state.settings.body_timeout).await {
        Ok(body) => body,
        Err(err) => return Ok(req.error_response(err)),
    };
    req.set_payload(Payload::from(body.clone()));
    let scope = KeyScope {
        user_id,
        method: req.method().to_string(),
        path: req.path().to_owned(),
        key,
    };
    let fingerprint = Sha256::digest(&body).to_vec();
    // A claim whose request keeps its answer with its effect may be taken over soon: should
    // that request still be alive, it undoes its effect when it finds the claim gone.
    let abandoned_after = if ANSWERED_AFTER_COMMIT.contains(&pattern.as_str()) {
        store::idempotency::ABANDONED_AFTER
    } else {
        store::idempotency::TAKEN_OVER_AFTER
    };

    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        let now = state.clock.now();
        let (claim_scope, claim_hash) = (scope.clone(), fingerprint.clone());
        let claim = store::run(&state.pool, move |conn| {
            store::idempotency::claim(conn, &claim_scope, &claim_hash, now, abandoned_after)
        })
        .await;
        match claim {
            Ok(Claim::Run(token)) => {
                let claim = KeyClaim {
                    scope,
                    token,
                    kept: Arc::new(AtomicBool::new(false)),
                };
                req.extensions_mut().insert(claim.clone());
                return run_and_keep(req, next, &state, claim).await;
            }
            Ok(Claim::Replay(stored)) => {
                // The handler authorises the caller as for a new request, then replays.
                let pending = PendingReplay(Arc::new(std::sync::Mutex::new(Some(stored))));
                req.extensions_mut().insert(pending.clone());
                let response = next.call(req).await?.map_into_boxed_body();
                let left = pending.0.lock().ok().and_then(|mut left| left.take());
                let Some(stored) = left else {
                    // Replayed by the handler, or refused the caller as a new request.
                    return Ok(response);
                };
                let status = response.status();
                if status.is_success() {
                    log::error!("a creating handler ran without replaying its kept answer");
                    return Ok(response);
                }
                if matches!(status.as_u16(), 401 | 403 | 404) {
                    return Ok(response);
                }
                // Refused before it came to the write for another reason than access (the kept
                // answer was such a refusal, say): the kept answer stands.
                let (request, _) = response.into_parts();
                return Ok(ServiceResponse::new(request, replay(stored)));
            }
            Ok(Claim::Reused) => {
                return Ok(req.error_response(AppError::Unprocessable {
                    code: "idempotency_key_reused",
                    detail: "This Idempotency-Key was used for a request with another body; \
                             use a new key for a new request."
                        .into(),
                }));
            }
            Ok(Claim::InFlight) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL).await;
            }
            Ok(Claim::InFlight) => {
                return Ok(req.error_response(AppError::Conflict {
                    code: "idempotency_key_in_use",
                    detail: "A request with this Idempotency-Key is still being answered; retry \
                             shortly to get its answer."
                        .into(),
                }));
            }
            Err(err) => return Ok(req.error_response(AppError::from(err))),
        }
    }
}

/// Runs the request that claimed the key and keeps its answer; a server-side failure releases
/// the key instead, so that a retry runs again.
async fn run_and_keep(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: &AppState,
    claim: KeyClaim,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let (scope, token) = (claim.scope.clone(), claim.token);
    let response = match next.call(req).await {
        Ok(response) => response,
        Err(err) => {
            release(state, scope, token).await;
            return Err(err);
        }
    };
    if claim.is_kept() {
        return Ok(response.map_into_boxed_body());
    }
    let status = response.status();
    if status.is_server_error() {
        release(state, scope, token).await;
        return Ok(response.map_into_boxed_body());
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let body = match actix_web::body::to_bytes(body).await {
        Ok(body) => body,
        Err(_) => {
            release(state, scope, token).await;
            return Err(AppError::internal("reading a response body failed").into());
        }
    };
    let header_text = |name: HeaderName| {
        head.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        content_type: header_text(header::CONTENT_TYPE),
        etag: header_text(header::ETAG),
        location: header_text(header::LOCATION),
        body: body.to_vec(),
    };
    let kept = store::run(&state.pool, move |conn| {
        store::idempotency::finish(conn, &scope, token, &stored)
    })
    .await;
    match kept {
        Ok(true) => {}
        Ok(false) => log::warn!("an idempotency key was taken over before its answer was kept"),
        Err(err) => log::error!("keeping an idempotent response failed: {err}"),
    }
    let response = head.set_body(body).map_into_boxed_body();
    Ok(ServiceResponse::new(request, response))
}

async fn release(state: &AppState, scope: KeyScope, token: i64) {
    let released = store::run(&state.pool, move |conn| {
        store::idempotency::release(conn, &scope, token)
    })
    .await;
    if let Err(err) = released {
        log::error!("releasing an idempotency key failed: {err}");
    }
}

/// The kept answer, as it was sent the first time.
fn replay(stored: StoredResponse) -> HttpResponse {
    let mut response = answer(stored);
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    );
    response
}

/// `stored` as a response: status, `Content-Type`, `ETag`, `Location` and body.
pub fn answer(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    for (name, value) in [
        (header::CONTENT_TYPE, stored.content_type),
        (header::ETAG, stored.etag),
        (header::LOCATION, stored.location),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.insert_header((name, value));
        }
    }
    response.body(stored.body)
}

/// A key of 1–255 visible ASCII characters.
fn read_key(value: Option<&HeaderValue>) -> Result<String, AppError> {
    let invalid = || {
        AppError::invalid_field(
            "Idempotency-Key",
            "invalid",
            "must be 1 to 255 visible ASCII characters",
        )
    };
    let text = value.and_then(|v| v.to_str().ok()).ok_or_else(invalid)?;
    let text = text.trim();
    let visible = text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if text.is_empty() || text.len() > 255 || !visible {
        return Err(invalid());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_characters() {
        let read = |s: &'static str| read_key(Some(&HeaderValue::from_static(s)));
        assert_eq!(read("order-1").unwrap(), "order-1");
        assert_eq!(read(" 7c1f2a ").unwrap(), "7c1f2a");
        assert!(read("   ").is_err());
        assert!(read_key(None).is_err());
        let long: &'static str = Box::leak("k".repeat(256).into_boxed_str());
        assert!(read(long).is_err());
        let longest: &'static str = Box::leak("k".repeat(255).into_boxed_str());
        assert!(read(longest).is_ok());
    }
}

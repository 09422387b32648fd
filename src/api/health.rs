//! `/healthz`, `/readyz` and `/metrics`.

use std::time::Duration;

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, get};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::bearer_token;
use crate::api::problems;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::replica::{Reached, ReplicaHealth};

/// A health answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` or `ready`.
    #[schema(example = "ok")]
    pub status: String,
}

/// The process is alive
///
/// No dependency is checked: for a liveness probe.
///
/// Roles: none (no token).
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Alive", body = HealthResponse))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok".into(),
    })
}

/// How long readiness waits for the database: probes time out after a second (Kubernetes'
/// default), and a probe that times out tells less than a 503.
const READY_WITHIN: Duration = Duration::from_millis(800);

/// Readiness: the databases each pool reaches.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadyResponse {
    /// `ready`.
    #[schema(example = "ready")]
    pub status: String,
    /// The primary: where writes, and reads that must not lag, go.
    pub primary: Reached,
    /// The read replica (`DATABASE_READ_URL`); `null` without one.
    pub replica: Option<ReplicaReport>,
}

/// The read replica as `/readyz` finds it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplicaReport {
    /// What it reaches; `null` when it gave no connection just now.
    pub reached: Option<Reached>,
    /// `streaming` (in use), `lagging` (skipped: further behind than `REPLICA_MAX_LAG`), `down`
    /// (skipped: not answering) or `unchecked` (skipped until the first check, within a second
    /// of start-up).
    pub health: ReplicaHealth,
}

/// The service can serve requests
///
/// The primary database answers within the readiness limit; 503 otherwise. For a readiness probe
/// or a load balancer's health check. Says which database each pool reaches; a replica that is
/// down or lagging does not make the service unready, as its reads go to the primary.
///
/// Roles: none (no token).
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = ReadyResponse),
        problems::Unavailable
    )
)]
#[get("/readyz")]
pub async fn readyz(state: Data<AppState>) -> Result<HttpResponse, AppError> {
    let wait = READY_WITHIN.min(state.settings.database_timeout);
    let primary = store::run_waiting(&state.pool, Some(wait), store::replica::reached).await?;
    let replica = match state.replica.clone() {
        None => None,
        Some(replica) => {
            let health = replica.health();
            let reached = replica.reached_within(wait / 2).await;
            Some(ReplicaReport { reached, health })
        }
    };
    Ok(HttpResponse::Ok().json(ReadyResponse {
        status: "ready".into(),
        primary,
        replica,
    }))
}

/// Prometheus metrics
///
/// Requests and latency by route and status class, database pool usage, open incidents by level
/// and tier, escalations by kind and trigger, webhook deliveries by outcome, sign-in failures and
/// locks. Every label comes from a closed set, so no request adds series. When the server runs
/// with `METRICS_TOKEN`, the scrape must send it as `Authorization: Bearer` (Prometheus's
/// `authorization` setting).
///
/// Roles: none; the `METRICS_TOKEN` bearer when one is set.
///
/// Errors: 401 `unauthorized` without the `METRICS_TOKEN` bearer, when one is set.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        problems::Unauthorized
    )
)]
#[get("/metrics")]
pub async fn metrics(
    request: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Some(expected) = &state.settings.metrics_token {
        let presented = bearer_token(&request)?;
        // Compared as digests, so the comparison's time tells nothing about the token.
        if Sha256::digest(presented.as_bytes()) != Sha256::digest(expected.expose().as_bytes()) {
            return Err(AppError::Unauthorized(
                "The metrics need the METRICS_TOKEN bearer.".into(),
            ));
        }
    }
    // Without the database the HTTP and pool metrics are still worth serving.
    match store::run(&state.pool, store::metrics_counts::counts).await {
        Ok(counts) => state.metrics.set_database_gauges(&counts),
        Err(err) => log::warn!("metrics without database counts: {err}"),
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.pool)))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

//! HTTP handlers: extract, authorise, validate, call the store, map to DTOs.
//!
//! One module per resource; each registers its handlers with `.service(...)` so that the
//! OpenAPI document is collected from the same registrations the server runs.

pub mod auth;
pub mod business_calendar;
pub mod configuration_items;
pub mod customers;
pub mod escalations;
pub mod extract;
pub mod health;
pub mod incidents;
pub mod pagination;
pub mod sla_policies;
pub mod taxonomy;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::token::TokenKeys;
use crate::config::Settings;
use crate::domain::clock::Clock;
use crate::domain::taxonomy::Taxonomy;
use crate::store::DbPool;
use crate::telemetry::Metrics;

/// Shared state of every worker.
pub struct AppState {
    /// Database connections.
    pub pool: DbPool,
    /// Access-token keys.
    pub tokens: TokenKeys,
    /// The taxonomy, loaded at start-up.
    pub taxonomy: Arc<Taxonomy>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Source of the current time.
    pub clock: Arc<dyn Clock>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
}

/// Registers every route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.configure(health::configure).service(
        scope::scope("/api/v1")
            .configure(auth::configure)
            .configure(users::configure)
            .configure(customers::configure)
            .configure(incidents::configure)
            .configure(escalations::configure)
            .configure(configuration_items::configure)
            .configure(taxonomy::configure)
            .configure(sla_policies::configure)
            .configure(business_calendar::configure)
            .configure(webhooks::configure),
    );
}

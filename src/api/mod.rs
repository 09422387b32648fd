//! HTTP handlers: extract, authorise, validate, call the store, map to DTOs.
//!
//! One module per resource; each registers its handlers with `.service(...)` so that the
//! OpenAPI document is collected from the same registrations the server runs.

pub mod api_tokens;
pub mod attachments;
pub mod auth;
pub mod business_calendar;
pub mod codes;
pub mod configuration_items;
pub mod confirmations;
pub mod coordination;
pub mod customers;
pub mod escalations;
pub mod events;
pub mod extract;
pub mod follow_ups;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod incidents;
pub mod knowledge;
pub mod kpis;
pub mod notifications;
pub mod pagination;
pub mod problems;
pub mod procedure;
pub mod replica;
pub mod reports;
pub mod respond;
pub mod sla_policies;
pub mod spreadsheet;
pub mod stream;
pub mod taxonomy;
pub mod users;
pub mod webhooks;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.configure(health::configure).service(
        scope::scope("/api/v1")
            .configure(auth::configure)
            .configure(users::configure)
            .configure(api_tokens::configure)
            .configure(customers::configure)
            .configure(incidents::configure)
            .configure(notifications::configure)
            .configure(attachments::configure)
            .configure(confirmations::configure)
            .configure(escalations::configure)
            .configure(coordination::configure)
            .configure(knowledge::configure)
            .configure(follow_ups::configure)
            .configure(kpis::configure)
            .configure(reports::configure)
            .configure(events::configure)
            .configure(configuration_items::configure)
            .configure(taxonomy::configure)
            .configure(procedure::configure)
            .configure(sla_policies::configure)
            .configure(business_calendar::configure)
            .configure(webhooks::configure)
            .configure(stream::configure),
    );
}

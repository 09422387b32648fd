//! `GET /api/v1/procedure`: the state machine as data, for frontends to draw their buttons from.

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use chrono::TimeDelta;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::AuthUser;
use crate::api::problems;
use crate::domain::level::Level;
use crate::domain::procedure::{Procedure, procedure};
use crate::domain::sla::SlaTargets;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// The incident procedure as the server enforces it
///
/// States; every action with the state it leads from and to and the roles that may take it (per
/// tier where the tier decides); the conditions beside the role (a classified incident to resolve,
/// the reporter's confirmation to close a user-reported one, ...); closure codes; levels with their
/// current resolution targets; how the impact flags re-grade a level; the kinds of escalation.
/// Everything is computed from the rules the server applies, so a frontend can draw its workflow
/// from it; `allowed_actions` on each incident says what the caller may do to that incident now.
/// `docs/procedure.md` in the repository draws it as a state diagram.
///
/// Roles: any signed-in user.
#[utoipa::path(
    tag = "reference-data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The procedure", body = Procedure),
        problems::SignedInErrors
    )
)]
#[get("/procedure")]
pub async fn get_procedure(
    state: Data<AppState>,
    _caller: AuthUser,
) -> Result<HttpResponse, AppError> {
    let policies = store::run(&state.pool, store::sla_policies::list).await?;
    let mut targets = SlaTargets::procedure_defaults();
    for policy in policies {
        let target = TimeDelta::minutes(i64::from(policy.resolution_minutes));
        match policy.level.parse::<Level>().map_err(AppError::internal)? {
            Level::Low => targets.low = target,
            Level::Medium => targets.medium = target,
            Level::High => targets.high = target,
        }
    }
    Ok(HttpResponse::Ok().json(procedure(&targets)))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_procedure);
}

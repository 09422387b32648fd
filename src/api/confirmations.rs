//! `POST /api/v1/confirmations`: the reporter answers a resolution from the link of a
//! `resolved` e-mail, without an account (SPEC §12).

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidationError};

use super::auth::{count_failure, throttle_wait};
use super::extract::{JsonBody, client_address};
use crate::api::problems;
use crate::auth::throttle;
use crate::domain::incident::{Channel, Status};
use crate::domain::validation::{check_text, rule};
use crate::domain::workflow::IncidentCommand;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// The reporter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The problem is solved: the desk may close the incident.
    Confirm,
    /// It is not: the incident goes back into work.
    Reject,
}

fn reason_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("reason", value, 10_000))
}

/// An answer given with a confirmation token.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "icc_1.1796000000123456.1797209600.3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "decision": "confirm"}))]
pub struct ConfirmationRequest {
    /// The token of the link in the e-mail (`icc_…`).
    #[validate(length(min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
    /// `confirm` or `reject`.
    pub decision: Decision,
    /// Why the problem is not solved; required to reject.
    #[validate(custom(function = "reason_rule"))]
    #[schema(example = "打印机仍然无法打印", min_length = 1, max_length = 10000)]
    pub reason: Option<String>,
}

/// What the answer did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"incident_id": 1, "number": "INC-000001", "title": "收费系统无法登录", "decision": "confirm", "status": "resolved"}))]
pub struct ConfirmationResponse {
    /// The incident.
    pub incident_id: i64,
    /// Its number.
    pub number: String,
    /// Its title.
    pub title: String,
    /// The answer recorded.
    pub decision: Decision,
    /// Its status now: `resolved` (confirmed; the desk closes it) or `in_progress` (rejected).
    pub status: Status,
}

/// Answer a resolution from the e-mail link, without signing in
///
/// A `resolved` e-mail carries a link with a signed, single-use token (`CONFIRMATION_URL`); the
/// page behind it posts the token with `confirm` or with `reject` and a `reason`. Confirming does
/// what `POST /incidents/{id}/confirm` does, rejecting what `reject-resolution` does, both recorded
/// with channel `email`. A token works while its resolution awaits an answer, at most 14 days;
/// the first answer spends it (and every reminder's copy). The example's token is a made-up one:
/// it answers 401.
///
/// Roles: none; the token is the credential.
///
/// Errors: 401 `unauthorized` for a token this service did not sign; 410 `confirmation_expired`
/// when it was used, has expired, or its incident no longer awaits an answer; 422 on `reason` when
/// rejecting without one; 429 after many wrong or spent tokens from one address.
#[utoipa::path(
    tag = "incidents",
    request_body = ConfirmationRequest,
    responses(
        (status = 200, description = "The answer was recorded", body = ConfirmationResponse),
        problems::ConfirmationErrors
    )
)]
#[post("/confirmations")]
pub async fn answer_resolution(
    state: Data<AppState>,
    http: HttpRequest,
    body: JsonBody<ConfirmationRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.parse()?;
    let command = match request.decision {
        Decision::Confirm => IncidentCommand::Confirm {
            channel: Some(Channel::Email),
        },
        Decision::Reject => IncidentCommand::RejectResolution {
            reason: request
                .reason
                .map(|reason| reason.trim().to_owned())
                .ok_or_else(|| {
                    AppError::invalid_field(
                        "reason",
                        "required",
                        "say why the problem is not solved",
                    )
                })?,
            channel: Some(Channel::Email),
        },
    };
    // The TCP peer, or the client a trusted proxy names; never a header a client made up.
    let address = client_address(&http, &state.settings.trusted_proxies)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let counters = vec![throttle::confirmation_counter(&address)];
    if let Some(wait) = throttle_wait(&state, &counters).await? {
        return Err(AppError::TooManyRequests {
            detail:
                "Too many wrong or used confirmation links from this address; wait and try again."
                    .into(),
            retry_after: wait.as_secs().max(1),
        });
    }
    let Ok(confirmation) = state.confirmations.verify(&request.token) else {
        count_failure(&state, counters).await?;
        return Err(AppError::Unauthorized(
            "This confirmation link is not valid; use the link of the latest e-mail.".into(),
        ));
    };
    let spent = || AppError::Gone {
        code: "confirmation_expired",
        detail: "This link was used already, has expired, or the incident no longer awaits your \
                 answer; call the service desk if the problem remains."
            .into(),
    };
    let now = state.clock.now();
    if now >= confirmation.expires_at {
        count_failure(&state, counters).await?;
        return Err(spent());
    }
    let settings = state.write_settings();
    let answered = store::run(&state.pool, move |conn| {
        store::incident_writes::answer_resolution(
            conn,
            confirmation.incident_id,
            confirmation.resolution,
            command,
            &settings,
            now,
        )
    })
    .await?;
    let Some(applied) = answered else {
        count_failure(&state, counters).await?;
        return Err(spent());
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ConfirmationResponse {
            incident_id: applied.incident.id,
            number: applied.incident.number,
            title: applied.incident.title,
            decision: request.decision,
            status: applied.incident.status,
        }))
}

/// Registers the route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(answer_resolution);
}

//! The actions of SPEC §4.2: `POST /incidents/{id}/<action>`.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, post};

use super::requests::{
    AcceptRequest, AssignRequest, CloseRequest, ConfirmRequest, RejectResolutionRequest,
    ResolveRequest, WithdrawRequest, WorkaroundRequest,
};
use super::{IncidentResponse, execute, require_incident_reader, respond};
use crate::api::extract::{AuthUser, IfMatch, JsonBody};
use crate::api::problems;
use crate::error::AppError;
use crate::state::AppState;

/// Declares an action handler: its OpenAPI operation, its route, and the request that becomes
/// the domain command.
macro_rules! action_doc {
    ($(#[$doc:meta])* $name:ident, $path:literal, $body:ty, $parse:ident, $success:literal) => {
        $(#[$doc])*
        #[utoipa::path(
            tag = "incidents",
            security(("bearer" = [])),
            params(
                ("id" = i64, Path, description = "Incident id"),
                IfMatch
            ),
            request_body = $body,
            responses(
                (status = 200, description = $success, body = IncidentResponse,
                    headers(("ETag" = String, description = "New version"))),
                (status = 409, description = "`illegal_transition` (with `state` and `allowed_actions`), `incident_closed` or `confirmation_required`", body = crate::error::Problem, content_type = "application/problem+json"),
                problems::UpdateErrors
            )
        )]
        #[post($path)]
        pub async fn $name(
            state: Data<AppState>,
            caller: AuthUser,
            id: Path<i64>,
            if_match: IfMatch,
            body: JsonBody<$body>,
        ) -> Result<HttpResponse, AppError> {
            require_incident_reader(&caller)?;
            let command = body.$parse()?.into();
            let applied = execute(&state, &caller, id.into_inner(), if_match, command).await?;
            Ok(respond(
                applied.incident,
                applied.open_customer_issue,
                &caller,
                state.clock.now(),
            ))
        }
    };
}

action_doc!(
    /// Take a new incident into work: `new` → `in_progress`. Service desk (tier l1), L2
    /// engineer (tier l2) or incident manager.
    accept_incident, "/incidents/{id}/accept", AcceptRequest, parse_or_default, "Accepted"
);

action_doc!(
    /// Record a workaround; the incident stays `in_progress` (procedure §4.1). Staff on the
    /// incident's tier or an incident manager.
    record_workaround, "/incidents/{id}/workaround", WorkaroundRequest, parse, "Workaround recorded"
);

action_doc!(
    /// Resolve: `in_progress` → `resolved`, with the solution and cause. The incident must be
    /// classified (here or before). Service desk (tier l1), L2 engineer (tier l2) or incident
    /// manager.
    resolve_incident, "/incidents/{id}/resolve", ResolveRequest, parse, "Resolved; waiting for the reporter's confirmation"
);

action_doc!(
    /// The reporter confirms the resolution (its customer users, or the service desk recording
    /// the answer). Required before a user-reported incident is closed.
    confirm_resolution, "/incidents/{id}/confirm", ConfirmRequest, parse_or_default, "Confirmation recorded"
);

action_doc!(
    /// The reporter rejects the resolution: `resolved` → `in_progress` (its customer users, or
    /// the service desk recording the answer).
    reject_resolution, "/incidents/{id}/reject-resolution", RejectResolutionRequest, parse, "Back in progress"
);

action_doc!(
    /// The reporter asks to drop the incident (`new` or `in_progress`; the state stays). Its
    /// customer users ask directly; the service desk records a request it received, with
    /// `channel` and `note`. Sets `withdrawal_requested_at` (a public history entry); only then
    /// may the desk close a user-reported incident as `withdrawn`.
    withdraw_incident, "/incidents/{id}/withdraw", WithdrawRequest, parse_or_default, "Withdrawal requested"
);

action_doc!(
    /// Hand the incident to another engineer of its tier (`new` or `in_progress`): a shift
    /// change at L1, a specialist at L2. Incident managers, or staff on the incident's tier.
    /// The assignee is an active `service_desk` user (tier l1) or `l2_engineer` (tier l2),
    /// else 422 on `assignee_id`. An internal history entry with the reason; emits
    /// `incident.assigned`.
    assign_incident, "/incidents/{id}/assign", AssignRequest, parse, "Assigned"
);

action_doc!(
    /// Close (service desk only). From `resolved` with `resolved` or `unresolved` — a
    /// user-reported incident only after the reporter confirmed (else 409
    /// `confirmation_required`); from `new` or `in_progress` with `duplicate` (and
    /// `duplicate_of`; the history names the surviving incident) or `withdrawn` (and `note`; a
    /// user-reported incident only after the reporter asked, else 409 `confirmation_required`).
    /// Open or accepted coordination tickets of the incident are cancelled with it. A closed
    /// incident never changes again.
    close_incident, "/incidents/{id}/close", CloseRequest, parse, "Closed"
);

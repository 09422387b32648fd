//! `/api/v1/incidents`: recording, working, resolving, confirming and closing incidents
//! (SPEC §4). Every change asks the state machine (`domain::state_machine`) first.

use std::sync::Arc;

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, patch, post};
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidationError};

use super::AppState;
use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery, etag, parse_stored, rule};
use super::pagination::{Page, decode_cursor, encode_cursor};
use crate::domain::incident::{Channel, ClosureCode, IncidentKind, NoteVisibility, Status, Tier};
use crate::domain::level::Level;
use crate::domain::role::Role;
use crate::domain::sla::{self, UploadCutoff};
use crate::domain::state_machine::{self, Actor, Command, Escalation, Facts, TransitionError};
use crate::domain::taxonomy::Taxonomy;
use crate::domain::validation::{FieldError, check_text};
use crate::error::AppError;
use crate::store;
use crate::store::escalations::NewEscalation;
use crate::store::incidents::{
    Applied, HistoryRow, IncidentCursor, IncidentFilter, IncidentRow, NewIncident, NewNote,
    NoteRow, SortKey, Transition,
};

/// Who reported the incident (for user-reported incidents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reporter {
    /// Name, 1–200 characters.
    #[validate(custom(function = "reporter_name_rule"))]
    #[schema(example = "王医生", min_length = 1, max_length = 200)]
    pub name: String,
    /// Telephone, up to 50 characters.
    #[validate(length(max = 50))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "0532-8888-0000", max_length = 50)]
    pub phone: Option<String>,
    /// E-mail address.
    #[validate(email)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "wang@hospital.example", format = Email)]
    pub email: Option<String>,
}

fn reporter_name_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("name", value, 200))
}

fn title_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("title", value, 200))
}

fn long_text_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("text", value, 10_000))
}

/// An incident as clients see it (SPEC §4).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentResponse {
    /// Id.
    pub id: i64,
    /// Human-readable number.
    #[schema(example = "INC-000123")]
    pub number: String,
    /// Fault report or service request.
    pub kind: IncidentKind,
    /// How it reached the service desk.
    pub channel: Channel,
    /// Short summary.
    pub title: String,
    /// Details.
    pub description: String,
    /// Customer organisation.
    pub customer_id: i64,
    /// Reporter; `null` for incidents no user reported (monitoring).
    pub reporter: Option<Reporter>,
    /// IT / application system concerned.
    pub source_system: Option<String>,
    /// Configuration item concerned.
    pub ci_id: Option<i64>,
    /// Category code.
    pub category: Option<String>,
    /// Subcategory code.
    pub subcategory: Option<String>,
    /// Level.
    pub level: Level,
    /// The incident holds up on-site work.
    pub affects_onsite_work: bool,
    /// The incident holds up the data upload.
    pub affects_data_upload: bool,
    /// Status.
    pub status: Status,
    /// Support line working it.
    pub tier: Tier,
    /// Engineer working it.
    pub assignee_id: Option<i64>,
    /// Temporary measure in place.
    pub workaround: Option<String>,
    /// A workaround restored the service (the incident stays in progress).
    pub workaround_applied: bool,
    /// Recorded solution.
    pub solution: Option<String>,
    /// Cause code.
    pub cause: Option<String>,
    /// Sub-cause code.
    pub subcause: Option<String>,
    /// Resolution deadline.
    pub due_at: DateTime<Utc>,
    /// Resolved after `due_at`, or unresolved and past it.
    pub sla_breached: bool,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the reporter confirmed the resolution.
    pub user_confirmed_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it.
    pub closed_by: Option<i64>,
    /// Why it was closed.
    pub closure_code: Option<ClosureCode>,
    /// The incident this one duplicates.
    pub duplicate_of: Option<i64>,
    /// The closed incident this one is a recurrence of.
    pub recurrence_of: Option<i64>,
    /// Reports counted on this incident.
    pub occurrences: i32,
    /// Last report counted on it.
    pub last_occurrence_at: Option<DateTime<Utc>>,
    /// Deduplication key of monitoring events.
    pub dedup_key: Option<String>,
    /// Change request reference.
    pub change_ref: Option<String>,
    /// Who recorded it.
    pub created_by: i64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    pub version: i32,
    /// Actions the caller may take now (`accept`, `workaround`, `resolve`, `confirm`,
    /// `reject-resolution`, `close`, `edit`, `note`).
    #[schema(example = json!(["accept", "close", "edit", "note"]))]
    pub allowed_actions: Vec<String>,
}

fn allowed_for(row: &IncidentRow, caller: &AuthUser) -> Vec<String> {
    let Ok(facts) = row.facts() else {
        return vec![];
    };
    let actor = Actor {
        roles: &caller.roles,
        customer_id: caller.customer_id,
    };
    let mut names = Vec::new();
    let candidates: &[&[Command]] = &[
        &[Command::Accept],
        &[Command::Workaround],
        &[Command::Resolve],
        &[Command::Confirm],
        &[Command::RejectResolution],
        &[
            Command::Close(ClosureCode::Resolved),
            Command::Close(ClosureCode::Unresolved),
            Command::Close(ClosureCode::Duplicate),
            Command::Close(ClosureCode::Withdrawn),
        ],
        &[Command::Edit],
        &[Command::AddNote(NoteVisibility::Public)],
        &[
            Command::Escalate(Escalation::Hierarchical),
            Command::Escalate(Escalation::Functional),
            Command::Escalate(Escalation::RaiseLevel),
        ],
    ];
    for commands in candidates {
        let possible = commands.iter().any(|command| {
            match state_machine::decide(&facts, &actor, *command) {
                Ok(_) => true,
                // Resolving can classify the incident in the same request.
                Err(TransitionError::ClassificationRequired) => true,
                Err(_) => false,
            }
        });
        if possible {
            names.push(commands[0].action().as_str().to_owned());
        }
    }
    names
}

fn to_response(
    row: IncidentRow,
    caller: &AuthUser,
    now: DateTime<Utc>,
) -> Result<IncidentResponse, AppError> {
    let allowed_actions = allowed_for(&row, caller);
    Ok(IncidentResponse {
        sla_breached: sla::sla_breached(row.due_at, row.resolved_at, row.closed_at, now),
        allowed_actions,
        id: row.id,
        number: row.number,
        kind: parse_stored(&row.kind)?,
        channel: parse_stored(&row.channel)?,
        title: row.title,
        description: row.description,
        customer_id: row.customer_id,
        reporter: row
            .reporter
            .map(serde_json::from_value)
            .transpose()
            .map_err(AppError::internal)?,
        source_system: row.source_system,
        ci_id: row.ci_id,
        category: row.category,
        subcategory: row.subcategory,
        level: parse_stored(&row.level)?,
        affects_onsite_work: row.affects_onsite_work,
        affects_data_upload: row.affects_data_upload,
        status: parse_stored(&row.status)?,
        tier: parse_stored(&row.tier)?,
        assignee_id: row.assignee_id,
        workaround: row.workaround,
        workaround_applied: row.workaround_applied,
        solution: row.solution,
        cause: row.cause,
        subcause: row.subcause,
        due_at: row.due_at,
        accepted_at: row.accepted_at,
        resolved_at: row.resolved_at,
        user_confirmed_at: row.user_confirmed_at,
        closed_at: row.closed_at,
        closed_by: row.closed_by,
        closure_code: row.closure_code.as_deref().map(parse_stored).transpose()?,
        duplicate_of: row.duplicate_of,
        recurrence_of: row.recurrence_of,
        occurrences: row.occurrences,
        last_occurrence_at: row.last_occurrence_at,
        dedup_key: row.dedup_key,
        change_ref: row.change_ref,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: row.version,
    })
}

fn respond(
    status: actix_web::http::StatusCode,
    row: IncidentRow,
    caller: &AuthUser,
    now: DateTime<Utc>,
) -> Result<HttpResponse, AppError> {
    let version = row.version;
    let id = row.id;
    let mut response = HttpResponse::build(status);
    response.insert_header(etag(version));
    if status == actix_web::http::StatusCode::CREATED {
        response.insert_header(("Location", format!("/api/v1/incidents/{id}")));
    }
    Ok(response.json(to_response(row, caller, now)?))
}

/// Maps the state machine's refusal to the API's error.
pub(crate) fn refusal(error: TransitionError) -> AppError {
    match error {
        TransitionError::IncidentClosed => AppError::Conflict {
            code: "incident_closed",
            detail: error.to_string(),
        },
        TransitionError::IllegalTransition {
            status,
            action,
            ref allowed,
        } => AppError::IllegalTransition {
            detail: format!(
                "`{action}` is not allowed while the incident is {status}; allowed now: {}.",
                allowed
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            status: status.as_str().to_owned(),
            allowed_actions: allowed.iter().map(|a| a.as_str().to_owned()).collect(),
        },
        TransitionError::ConfirmationRequired => AppError::Conflict {
            code: "confirmation_required",
            detail: error.to_string(),
        },
        TransitionError::OpenCoordinationTicket => AppError::Conflict {
            code: "open_coordination_ticket",
            detail: error.to_string(),
        },
        TransitionError::ClassificationRequired => {
            AppError::invalid_field("category", "required", error.to_string())
        }
        // The code fits another state: like any state-dependent refusal (it may follow a
        // concurrent change), this is a conflict, not a malformed request.
        TransitionError::ClosureCodeNotAllowed {
            status,
            ref actions,
            ..
        } => AppError::IllegalTransition {
            detail: format!("{error}."),
            status: status.as_str().to_owned(),
            allowed_actions: actions.iter().map(|a| a.as_str().to_owned()).collect(),
        },
        TransitionError::AlreadyAtL2 {
            status,
            ref actions,
        } => AppError::IllegalTransition {
            detail: format!("{error}; a functional escalation moves an l1 incident to l2."),
            status: status.as_str().to_owned(),
            allowed_actions: actions.iter().map(|a| a.as_str().to_owned()).collect(),
        },
        TransitionError::Forbidden(reason) => AppError::Forbidden(reason),
    }
}

/// A customer user sees only its own organisation's incidents; anything else does not exist.
fn check_visible(caller: &AuthUser, row: &IncidentRow) -> Result<(), AppError> {
    match caller.confined_to_customer() {
        Some(own) if own != row.customer_id => Err(AppError::not_found("incident", row.id)),
        _ => Ok(()),
    }
}

/// Who may see incidents at all: staff, customer users, integrations.
fn require_incident_reader(caller: &AuthUser) -> Result<(), AppError> {
    caller.require_any(&[
        Role::ServiceDesk,
        Role::L2Engineer,
        Role::OpsStaff,
        Role::IncidentManager,
        Role::Customer,
        Role::Integration,
    ])
}

fn check_classification(
    taxonomy: &Taxonomy,
    category: Option<&str>,
    subcategory: Option<&str>,
) -> Result<(), AppError> {
    match (category, subcategory) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(AppError::invalid_field(
            "category",
            "required",
            "a subcategory needs its category",
        )),
        (Some(category), None) if taxonomy.has_category(category) => Ok(()),
        (Some(category), None) => Err(AppError::invalid_field(
            "category",
            "unknown",
            format!("`{category}` is not a category; see GET /api/v1/taxonomy"),
        )),
        (Some(category), Some(subcategory)) => {
            if !taxonomy.has_category(category) {
                return Err(AppError::invalid_field(
                    "category",
                    "unknown",
                    format!("`{category}` is not a category; see GET /api/v1/taxonomy"),
                ));
            }
            if taxonomy.subcategory(category, subcategory).is_none() {
                return Err(AppError::invalid_field(
                    "subcategory",
                    "unknown",
                    format!("`{subcategory}` is not a subcategory of `{category}`"),
                ));
            }
            Ok(())
        }
    }
}

/// The category of `subcategory`, for requests that name only the subcategory.
fn category_of(taxonomy: &Taxonomy, subcategory: &str) -> Option<String> {
    taxonomy
        .categories
        .iter()
        .find(|c| c.subcategories.iter().any(|s| s.code == subcategory))
        .map(|c| c.code.clone())
}

fn check_ci(conn: &mut PgConnection, ci_id: Option<i64>, customer_id: i64) -> Result<(), AppError> {
    let Some(ci_id) = ci_id else { return Ok(()) };
    match store::configuration_items::find(conn, ci_id) {
        Ok(ci) if ci.customer_id == customer_id => Ok(()),
        Ok(_) => Err(AppError::invalid_field(
            "ci_id",
            "invalid",
            "the configuration item belongs to another customer",
        )),
        Err(AppError::NotFound(_)) => Err(AppError::invalid_field(
            "ci_id",
            "not_found",
            format!("configuration item {ci_id} does not exist"),
        )),
        Err(other) => Err(other),
    }
}

/// A new incident.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncidentRequest {
    /// Default `fault`.
    pub kind: Option<IncidentKind>,
    /// Default `web` for customer users, `monitoring` for integrations, `phone` for staff.
    pub channel: Option<Channel>,
    /// 1–200 characters.
    #[validate(custom(function = "title_rule"))]
    #[schema(
        example = "HIS 门诊收费模块无法录入",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub title: String,
    /// Up to 10 000 characters.
    #[validate(length(max = 10000))]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// Required for staff; a customer user's own organisation by default (and only that).
    pub customer_id: Option<i64>,
    /// Who reported it; a customer user is the reporter by default. Makes the incident
    /// user-reported: it is closed only after the reporter confirms the resolution.
    #[validate(nested)]
    pub reporter: Option<Reporter>,
    /// The IT / application system concerned.
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "HIS", min_length = 1, max_length = 200)]
    pub source_system: Option<String>,
    /// A configuration item of the same customer.
    pub ci_id: Option<i64>,
    /// Category code (GET /api/v1/taxonomy); inferred from the subcategory when omitted.
    #[schema(example = "usage_issue")]
    pub category: Option<String>,
    /// Subcategory code; gives the default level.
    #[schema(example = "module_input_blocked")]
    pub subcategory: Option<String>,
    /// Level; default the subcategory's, else `low`. Staff only.
    pub level: Option<Level>,
    /// Holds up on-site work: a `low` incident becomes `medium`.
    pub affects_onsite_work: Option<bool>,
    /// Holds up the data upload: the incident becomes `high` and is due by the upload cut-off.
    pub affects_data_upload: Option<bool>,
    /// The closed incident this one is a recurrence of (a closed incident is never reopened).
    pub recurrence_of: Option<i64>,
}

/// Record an incident (staff, customer users, integrations). Level and deadline follow
/// SPEC §4.1.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    request_body = CreateIncidentRequest,
    responses(
        (status = 201, description = "Incident recorded", body = IncidentResponse,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "URL of the incident"))),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[post("/incidents")]
pub async fn create_incident(
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateIncidentRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&[
        Role::ServiceDesk,
        Role::L2Engineer,
        Role::OpsStaff,
        Role::IncidentManager,
        Role::Customer,
        Role::Integration,
    ])?;
    let request = body.parse()?;
    let is_customer = caller.roles.has(Role::Customer);
    let customer_id = match (caller.confined_to_customer(), request.customer_id) {
        (Some(own), Some(asked)) if asked != own => {
            return Err(AppError::forbidden(
                "A customer user reports incidents for its own organisation only.",
            ));
        }
        (Some(own), _) => own,
        (None, Some(asked)) => asked,
        (None, None) => {
            return Err(AppError::invalid_field(
                "customer_id",
                "required",
                "is required",
            ));
        }
    };
    if is_customer && request.level.is_some() {
        return Err(AppError::invalid_field(
            "level",
            "forbidden",
            "the service desk sets the level",
        ));
    }
    let reporter = match request.reporter {
        Some(reporter) => Some(reporter),
        None if is_customer => Some(Reporter {
            name: caller.row.display_name.clone(),
            phone: None,
            email: None,
        }),
        None => None,
    };
    let channel = request.channel.unwrap_or(if is_customer {
        Channel::Web
    } else if caller.roles.has(Role::Integration) && !caller.roles.is_staff() {
        Channel::Monitoring
    } else {
        Channel::Phone
    });
    let taxonomy = state.taxonomy.clone();
    let subcategory = request.subcategory;
    let category = request.category.or_else(|| {
        subcategory
            .as_deref()
            .and_then(|s| category_of(&taxonomy, s))
    });
    if category.is_none() && subcategory.is_some() {
        return Err(AppError::invalid_field(
            "subcategory",
            "unknown",
            "not a subcategory; see GET /api/v1/taxonomy",
        ));
    }
    check_classification(&taxonomy, category.as_deref(), subcategory.as_deref())?;
    let subcategory_default = match (&category, &subcategory) {
        (Some(c), Some(s)) => taxonomy.subcategory(c, s).map(|s| s.default_level),
        _ => None,
    };
    let affects_data_upload = request.affects_data_upload.unwrap_or(false);
    let affects_onsite_work = request.affects_onsite_work.unwrap_or(false);
    let level = sla::initial_level(
        request.level,
        subcategory_default,
        affects_data_upload,
        affects_onsite_work,
    );
    let cutoff = state.settings.upload_cutoff.map(|time| UploadCutoff {
        time,
        timezone: state.settings.timezone,
    });
    let reporter = reporter
        .map(serde_json::to_value)
        .transpose()
        .map_err(AppError::internal)?;
    let now = state.clock.now();
    let timezone = state.settings.timezone;
    let actor_id = caller.id;
    let (ci_id, recurrence_of) = (request.ci_id, request.recurrence_of);
    let new_fields = (
        request.kind.unwrap_or(IncidentKind::Fault),
        request.title.trim().to_owned(),
        request.description.unwrap_or_default(),
        request.source_system.map(|s| s.trim().to_owned()),
    );
    let row = store::run(&state.pool, move |conn| {
        store::incidents::insert(conn, actor_id, now, timezone, |conn, deadlines| {
            let customer = store::customers::find(conn, customer_id).map_err(|err| match err {
                AppError::NotFound(_) => AppError::invalid_field(
                    "customer_id",
                    "not_found",
                    format!("customer {customer_id} does not exist"),
                ),
                other => other,
            })?;
            if !customer.active {
                return Err(AppError::invalid_field(
                    "customer_id",
                    "inactive",
                    "the customer organisation is no longer served",
                ));
            }
            check_ci(conn, ci_id, customer_id)?;
            if let Some(previous) = recurrence_of {
                let found = store::incidents::find(conn, previous).ok().filter(|p| p.customer_id == customer_id);
                match found {
                    Some(p) if p.status == Status::Closed.as_str() => {}
                    Some(_) => {
                        return Err(AppError::invalid_field(
                            "recurrence_of",
                            "not_closed",
                            "a recurrence refers to a closed incident; the open one can still be worked",
                        ));
                    }
                    None => {
                        return Err(AppError::invalid_field(
                            "recurrence_of",
                            "not_found",
                            format!("incident {previous} does not exist"),
                        ));
                    }
                }
            }
            let (kind, title, description, source_system) = new_fields;
            Ok(NewIncident {
                kind: kind.as_str().to_owned(),
                channel: channel.as_str().to_owned(),
                title,
                description,
                customer_id,
                reporter,
                source_system,
                ci_id,
                category,
                subcategory,
                level: level.as_str().to_owned(),
                affects_onsite_work,
                affects_data_upload,
                status: Status::New.as_str().to_owned(),
                tier: Tier::L1.as_str().to_owned(),
                due_at: sla::initial_due_at(now, level, deadlines, affects_data_upload, cutoff),
                recurrence_of,
                created_by: actor_id,
                created_at: now,
                updated_at: now,
            })
        })
    })
    .await?;
    respond(actix_web::http::StatusCode::CREATED, row, &caller, now)
}

/// Sort orders of `GET /incidents`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum IncidentSort {
    /// Newest first (default).
    #[default]
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    /// Oldest first.
    #[serde(rename = "created_at")]
    CreatedAt,
    /// Earliest deadline first.
    #[serde(rename = "due_at")]
    DueAt,
    /// Latest deadline first.
    #[serde(rename = "-due_at")]
    DueAtDesc,
    /// Lowest level first.
    #[serde(rename = "level")]
    Level,
    /// Highest level first.
    #[serde(rename = "-level")]
    LevelDesc,
}

impl IncidentSort {
    fn key(self) -> (SortKey, bool) {
        match self {
            IncidentSort::CreatedAtDesc => (SortKey::CreatedAt, true),
            IncidentSort::CreatedAt => (SortKey::CreatedAt, false),
            IncidentSort::DueAt => (SortKey::DueAt, false),
            IncidentSort::DueAtDesc => (SortKey::DueAt, true),
            IncidentSort::Level => (SortKey::Level, false),
            IncidentSort::LevelDesc => (SortKey::Level, true),
        }
    }

    fn code(self) -> &'static str {
        match self {
            IncidentSort::CreatedAtDesc => "-created_at",
            IncidentSort::CreatedAt => "created_at",
            IncidentSort::DueAt => "due_at",
            IncidentSort::DueAtDesc => "-due_at",
            IncidentSort::Level => "level",
            IncidentSort::LevelDesc => "-level",
        }
    }
}

/// Filters and order of `GET /incidents`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListIncidentsQuery {
    /// Status; repeat for several (`status=new&status=in_progress`).
    #[serde(default)]
    pub status: Vec<Status>,
    /// Level.
    pub level: Option<Level>,
    /// Tier.
    pub tier: Option<Tier>,
    /// Assignee.
    pub assignee_id: Option<i64>,
    /// Customer organisation.
    pub customer_id: Option<i64>,
    /// Category code.
    #[validate(length(max = 64))]
    #[param(max_length = 64)]
    pub category: Option<String>,
    /// Subcategory code.
    #[validate(length(max = 64))]
    #[param(max_length = 64)]
    pub subcategory: Option<String>,
    /// Configuration item.
    pub ci_id: Option<i64>,
    /// Missed (or not) the deadline.
    pub sla_breached: Option<bool>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub created_to: Option<DateTime<Utc>>,
    /// Text in number, title or description.
    #[validate(length(max = 200))]
    #[param(max_length = 200, pattern = "^[^\\u0000]*$")]
    pub q: Option<String>,
    /// Order: `-created_at` (default), `created_at`, `due_at`, `-due_at`, `level`, `-level`.
    #[param(value_type = Option<IncidentSort>)]
    pub sort: Option<IncidentSort>,
    /// Rows per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (with the same `sort`).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ListCursor {
    sort: String,
    #[serde(flatten)]
    position: IncidentCursor,
}

/// List incidents, filtered and sorted; a customer user sees its own organisation's only.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(ListIncidentsQuery),
    responses(
        (status = 200, description = "A page of incidents", body = Page<IncidentResponse>),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[get("/incidents")]
pub async fn list_incidents(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListIncidentsQuery>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let query = query.0;
    let limit = query.limit.unwrap_or(super::pagination::DEFAULT_LIMIT);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid_field(
            "limit",
            "range",
            "must be between 1 and 200",
        ));
    }
    let sort = query.sort.unwrap_or_default();
    let after = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let decoded: ListCursor = decode_cursor(cursor)?;
            if decoded.sort != sort.code() {
                return Err(AppError::invalid_field(
                    "cursor",
                    "invalid",
                    "the cursor belongs to another sort order",
                ));
            }
            Some(decoded.position)
        }
    };
    let customer_id = match caller.confined_to_customer() {
        Some(own) if query.customer_id.is_some_and(|asked| asked != own) => {
            return Ok(HttpResponse::Ok().json(Page::<IncidentResponse> {
                items: vec![],
                next_cursor: None,
            }));
        }
        Some(own) => Some(own),
        None => query.customer_id,
    };
    let now = state.clock.now();
    let filter = IncidentFilter {
        statuses: query.status.iter().map(|s| s.as_str().to_owned()).collect(),
        level: query.level.map(|l| l.as_str().to_owned()),
        tier: query.tier.map(|t| t.as_str().to_owned()),
        assignee_id: query.assignee_id,
        customer_id,
        category: query.category,
        subcategory: query.subcategory,
        ci_id: query.ci_id,
        sla_breached: query.sla_breached.map(|b| (b, now)),
        created_from: query.created_from,
        created_to: query.created_to,
        q: query.q.filter(|q| !q.trim().is_empty()),
    };
    let (key, descending) = sort.key();
    let (rows, next) = store::run(&state.pool, move |conn| {
        store::incidents::list(conn, &filter, key, descending, after, limit)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|row| to_response(row, &caller, now))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = next.map(|position| {
        encode_cursor(&ListCursor {
            sort: sort.code().to_owned(),
            position,
        })
    });
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

/// One incident.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = IncidentResponse,
            headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[get("/incidents/{id}")]
pub async fn get_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let id = id.into_inner();
    let row = store::run(&state.pool, move |conn| store::incidents::find(conn, id)).await?;
    check_visible(&caller, &row)?;
    respond(
        actix_web::http::StatusCode::OK,
        row,
        &caller,
        state.clock.now(),
    )
}

/// What an action records besides the incident's new fields.
#[derive(Debug, Default)]
pub(crate) struct Change {
    /// A reason or note for the history entry.
    pub comment: Option<String>,
    /// A note to write.
    pub note: Option<NewNote>,
    /// An escalation to record.
    pub escalation: Option<NewEscalation>,
}

impl Change {
    fn comment(comment: Option<String>) -> Self {
        Change {
            comment,
            ..Change::default()
        }
    }

    fn note(note: NewNote) -> Self {
        Change {
            note: Some(note),
            ..Change::default()
        }
    }
}

/// Runs `command` on incident `id` through the state machine; `change` fills in the fields
/// the action sets once the machine has agreed.
async fn act<F>(
    state: Data<AppState>,
    caller: AuthUser,
    id: i64,
    if_match: IfMatch,
    command: Command,
    change: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut PgConnection, &IncidentRow, &mut IncidentRow) -> Result<Change, AppError>
        + Send
        + 'static,
{
    let now = state.clock.now();
    let applied = act_on(&state, &caller, id, if_match, move |_| command, now, change).await?;
    respond(actix_web::http::StatusCode::OK, applied.row, &caller, now)
}

/// [`act`] without the response: returns the stored incident and the note written, if any.
pub(crate) async fn act_on<C, F>(
    state: &AppState,
    caller: &AuthUser,
    id: i64,
    if_match: IfMatch,
    choose: C,
    now: DateTime<Utc>,
    change: F,
) -> Result<Applied, AppError>
where
    C: FnOnce(&IncidentRow) -> Command + Send + 'static,
    F: FnOnce(&mut PgConnection, &IncidentRow, &mut IncidentRow) -> Result<Change, AppError>
        + Send
        + 'static,
{
    let caller = caller.clone();
    store::run(&state.pool, move |conn| {
        store::incidents::apply(
            conn,
            id,
            if_match.0,
            Some(caller.id),
            now,
            |conn, current| {
                check_visible(&caller, current)?;
                let command = choose(current);
                let actor = Actor {
                    roles: &caller.roles,
                    customer_id: caller.customer_id,
                };
                // The machine decides before the request's fields are looked at, so a closed
                // incident or an illegal action is reported as such, not as a field error.
                let before = current.facts()?;
                match state_machine::decide(&before, &actor, command) {
                    Ok(_) | Err(TransitionError::ClassificationRequired) => {}
                    Err(refused) => return Err(refusal(refused)),
                }
                let mut next = current.clone();
                let Change {
                    comment,
                    note,
                    escalation,
                } = change(conn, current, &mut next)?;
                // A resolve request may classify the incident in the same step.
                let after = Facts {
                    classified: next.category.is_some() && next.subcategory.is_some(),
                    ..before
                };
                let status = state_machine::decide(&after, &actor, command).map_err(refusal)?;
                next.status = status.as_str().to_owned();
                Ok(Transition {
                    row: next,
                    action: command.action().as_str(),
                    comment,
                    note,
                    escalation,
                })
            },
        )
    })
    .await
}

/// Changes to an incident's descriptive fields; absent fields stay as they are, `null` clears
/// a clearable one.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIncidentRequest {
    /// New title.
    #[validate(custom(function = "title_rule"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub title: Option<String>,
    /// New description.
    #[validate(length(max = 10000))]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// New reporter (`null`: not user-reported).
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<Reporter>)]
    pub reporter: Option<Option<Reporter>>,
    /// New system (`null` clears).
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    pub source_system: Option<Option<String>>,
    /// New configuration item (`null` clears).
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<i64>)]
    pub ci_id: Option<Option<i64>>,
    /// New kind.
    pub kind: Option<IncidentKind>,
    /// New channel.
    pub channel: Option<Channel>,
    /// New category (`null` clears; clearing it clears the subcategory too).
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    /// New subcategory (`null` clears).
    #[serde(default, deserialize_with = "super::extract::clearable")]
    #[schema(value_type = Option<String>)]
    pub subcategory: Option<Option<String>>,
    /// Holds up on-site work.
    pub affects_onsite_work: Option<bool>,
    /// Holds up the data upload.
    pub affects_data_upload: Option<bool>,
}

fn validate_patch(request: &UpdateIncidentRequest) -> Result<(), AppError> {
    let mut errors: Vec<FieldError> = Vec::new();
    if let Some(Some(reporter)) = &request.reporter
        && let Err(AppError::Validation(list)) = super::extract::validate(reporter)
    {
        errors.extend(list.into_iter().map(|mut f| {
            f.field = format!("reporter.{}", f.field);
            f
        }));
    }
    if let Some(Some(system)) = &request.source_system
        && let Err(e) = check_text("source_system", system, 200)
    {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Change an incident's descriptive fields (staff). Level and tier change only through
/// escalations.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Incident id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "ETag of the version this change is based on", pattern = "^(W/)?\"[0-9]+\"$")
    ),
    request_body = UpdateIncidentRequest,
    responses(
        (status = 200, description = "The changed incident", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 412, response = crate::openapi::VersionMismatch),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[patch("/incidents/{id}")]
pub async fn update_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<UpdateIncidentRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let request = body.parse()?;
    validate_patch(&request)?;
    let taxonomy: Arc<Taxonomy> = state.taxonomy.clone();
    let state_for_change = state.clone();
    let now = state.clock.now();
    let actor = caller.id;
    act(
        state,
        caller,
        id.into_inner(),
        if_match,
        Command::Edit,
        move |conn, current, next| {
            if let Some(title) = request.title {
                next.title = title.trim().to_owned();
            }
            if let Some(description) = request.description {
                next.description = description;
            }
            if let Some(reporter) = request.reporter {
                next.reporter = reporter
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(AppError::internal)?;
            }
            if let Some(system) = request.source_system {
                next.source_system = system.map(|s| s.trim().to_owned());
            }
            if let Some(kind) = request.kind {
                next.kind = kind.as_str().to_owned();
            }
            if let Some(channel) = request.channel {
                next.channel = channel.as_str().to_owned();
            }
            if let Some(category) = request.category {
                if category.is_none() {
                    next.subcategory = None;
                }
                next.category = category;
            }
            if let Some(subcategory) = request.subcategory {
                if next.category.is_none() {
                    next.category = subcategory
                        .as_deref()
                        .and_then(|s| category_of(&taxonomy, s));
                }
                next.subcategory = subcategory;
            }
            check_classification(
                &taxonomy,
                next.category.as_deref(),
                next.subcategory.as_deref(),
            )?;
            if let Some(ci_id) = request.ci_id {
                next.ci_id = ci_id;
                if next.ci_id != current.ci_id {
                    check_ci(conn, next.ci_id, current.customer_id)?;
                }
            }
            if let Some(onsite) = request.affects_onsite_work {
                next.affects_onsite_work = onsite;
            }
            if let Some(upload) = request.affects_data_upload {
                next.affects_data_upload = upload;
            }
            // Procedure §4.8.2: holding up the data upload makes the incident high at once;
            // holding up on-site work lifts a low one to medium. Both are priority escalations.
            let level: Level = parse_stored(&current.level)?;
            let raise = if next.affects_data_upload
                && !current.affects_data_upload
                && level < Level::High
            {
                Some((
                    Level::High,
                    "data_upload",
                    "the incident holds up the data upload",
                ))
            } else if next.affects_onsite_work
                && !current.affects_onsite_work
                && level == Level::Low
            {
                Some((
                    Level::Medium,
                    "onsite_urgent",
                    "the incident holds up on-site work",
                ))
            } else {
                None
            };
            let escalation = match raise {
                Some((to, trigger, reason)) => {
                    super::escalations::change_level(
                        conn,
                        &state_for_change,
                        next,
                        current,
                        to,
                        now,
                    )?;
                    Some(super::escalations::record_of(
                        current,
                        next,
                        "priority",
                        Some(trigger),
                        Some(reason.to_owned()),
                        Some(actor),
                        now,
                    ))
                }
                None => None,
            };
            Ok(Change {
                escalation,
                ..Change::default()
            })
        },
    )
    .await
}

/// Take a new incident into work.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// Engineer to work it: an active service-desk user (tier l1), L2 engineer (tier l2) or
    /// incident manager. Default: the caller.
    pub assignee_id: Option<i64>,
}

fn check_assignee(conn: &mut PgConnection, assignee_id: i64, tier: Tier) -> Result<(), AppError> {
    let worker = match tier {
        Tier::L1 => Role::ServiceDesk,
        Tier::L2 => Role::L2Engineer,
    };
    let user = store::users::find(conn, assignee_id).map_err(|err| match err {
        AppError::NotFound(_) => AppError::invalid_field(
            "assignee_id",
            "not_found",
            format!("user {assignee_id} does not exist"),
        ),
        other => other,
    })?;
    if !user.active || !user.roles().has_any(&[worker, Role::IncidentManager]) {
        return Err(AppError::invalid_field(
            "assignee_id",
            "invalid",
            format!("the assignee must be an active {worker} or incident_manager"),
        ));
    }
    Ok(())
}

macro_rules! action_doc {
    ($(#[$doc:meta])* $name:ident, $path:literal, $body:ty, $parse:ident, $success:literal) => {
        $(#[$doc])*
        #[utoipa::path(
            tag = "incidents",
            security(("bearer" = [])),
            params(
                ("id" = i64, Path, description = "Incident id"),
                ("If-Match" = Option<String>, Header, nullable = false, description = "ETag of the version this action is based on", pattern = "^(W/)?\"[0-9]+\"$")
            ),
            request_body = $body,
            responses(
                (status = 200, description = $success, body = IncidentResponse,
                    headers(("ETag" = String, description = "New version"))),
                (status = 400, response = crate::openapi::BadRequest),
                (status = 401, response = crate::openapi::Unauthorized),
                (status = 403, response = crate::openapi::Forbidden),
                (status = 404, response = crate::openapi::NotFound),
                (status = 409, description = "`illegal_transition` (with `state` and `allowed_actions`), `incident_closed` or `confirmation_required`", body = crate::error::Problem, content_type = "application/problem+json"),
                (status = 412, response = crate::openapi::VersionMismatch),
                (status = 413, response = crate::openapi::PayloadTooLarge),
                (status = 422, response = crate::openapi::ValidationFailed),
                (status = 503, response = crate::openapi::Unavailable)
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
            let request = body.$parse()?;
            paste_action(state, caller, id.into_inner(), if_match, request).await
        }
    };
}

/// What each action request does once the state machine agrees.
trait ActionRequest: Send + 'static {
    fn command(&self) -> Command;
    fn change(
        self,
        conn: &mut PgConnection,
        current: &IncidentRow,
        next: &mut IncidentRow,
        context: &ActionContext,
    ) -> Result<Change, AppError>;
}

struct ActionContext {
    actor_id: i64,
    now: DateTime<Utc>,
    taxonomy: Arc<Taxonomy>,
}

async fn paste_action<R: ActionRequest>(
    state: Data<AppState>,
    caller: AuthUser,
    id: i64,
    if_match: IfMatch,
    request: R,
) -> Result<HttpResponse, AppError> {
    let context = ActionContext {
        actor_id: caller.id,
        now: state.clock.now(),
        taxonomy: state.taxonomy.clone(),
    };
    let command = request.command();
    act(
        state,
        caller,
        id,
        if_match,
        command,
        move |conn, current, next| request.change(conn, current, next, &context),
    )
    .await
}

impl ActionRequest for AcceptRequest {
    fn command(&self) -> Command {
        Command::Accept
    }

    fn change(
        self,
        conn: &mut PgConnection,
        current: &IncidentRow,
        next: &mut IncidentRow,
        context: &ActionContext,
    ) -> Result<Change, AppError> {
        let assignee = self.assignee_id.unwrap_or(context.actor_id);
        if self.assignee_id.is_some() {
            check_assignee(conn, assignee, parse_stored(&current.tier)?)?;
        }
        next.assignee_id = Some(assignee);
        next.accepted_at = Some(context.now);
        Ok(Change::default())
    }
}

action_doc!(
    /// Take a new incident into work: `new` → `in_progress`. Service desk (tier l1), L2
    /// engineer (tier l2) or incident manager.
    accept_incident, "/incidents/{id}/accept", AcceptRequest, parse_or_default, "Accepted"
);

/// A temporary measure.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkaroundRequest {
    /// What was done to restore the service, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "切换到备用收费终端",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub description: String,
}

impl ActionRequest for WorkaroundRequest {
    fn command(&self) -> Command {
        Command::Workaround
    }

    fn change(
        self,
        _: &mut PgConnection,
        _: &IncidentRow,
        next: &mut IncidentRow,
        _: &ActionContext,
    ) -> Result<Change, AppError> {
        next.workaround = Some(self.description);
        next.workaround_applied = true;
        Ok(Change::default())
    }
}

action_doc!(
    /// Record a workaround; the incident stays `in_progress` (procedure §4.1). Staff on the
    /// incident's tier or an incident manager.
    record_workaround, "/incidents/{id}/workaround", WorkaroundRequest, parse, "Workaround recorded"
);

/// The resolution.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// How it was solved, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "重新部署收费模块补丁 2.3.1",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub solution: String,
    /// Cause code (GET /api/v1/taxonomy).
    #[schema(example = "system_defect")]
    pub cause: String,
    /// Sub-cause code of that cause.
    #[schema(example = "module_unusable")]
    pub subcause: String,
    /// Classify in the same request when the incident has no category yet.
    pub category: Option<String>,
    /// Classify in the same request when the incident has no subcategory yet.
    pub subcategory: Option<String>,
}

impl ActionRequest for ResolveRequest {
    fn command(&self) -> Command {
        Command::Resolve
    }

    fn change(
        self,
        _: &mut PgConnection,
        current: &IncidentRow,
        next: &mut IncidentRow,
        context: &ActionContext,
    ) -> Result<Change, AppError> {
        let taxonomy = &context.taxonomy;
        if !taxonomy.has_cause(&self.cause) {
            return Err(AppError::invalid_field(
                "cause",
                "unknown",
                format!("`{}` is not a cause", self.cause),
            ));
        }
        if taxonomy.subcause(&self.cause, &self.subcause).is_none() {
            return Err(AppError::invalid_field(
                "subcause",
                "unknown",
                format!("`{}` is not a sub-cause of `{}`", self.subcause, self.cause),
            ));
        }
        if self.category.is_some() || self.subcategory.is_some() {
            let category = self
                .category
                .or_else(|| current.category.clone())
                .or_else(|| {
                    self.subcategory
                        .as_deref()
                        .and_then(|s| category_of(taxonomy, s))
                });
            let subcategory = self.subcategory.or_else(|| current.subcategory.clone());
            check_classification(taxonomy, category.as_deref(), subcategory.as_deref())?;
            next.category = category;
            next.subcategory = subcategory;
        }
        next.solution = Some(self.solution);
        next.cause = Some(self.cause);
        next.subcause = Some(self.subcause);
        next.resolved_at = Some(context.now);
        next.user_confirmed_at = None;
        Ok(Change::default())
    }
}

action_doc!(
    /// Resolve: `in_progress` → `resolved`, with the solution and cause. The incident must be
    /// classified (here or before). Service desk (tier l1), L2 engineer (tier l2) or incident
    /// manager.
    resolve_incident, "/incidents/{id}/resolve", ResolveRequest, parse, "Resolved; waiting for the reporter's confirmation"
);

/// The reporter's confirmation.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// How the confirmation was obtained when the service desk records it (e.g. `phone`).
    pub channel: Option<Channel>,
}

impl ActionRequest for ConfirmRequest {
    fn command(&self) -> Command {
        Command::Confirm
    }

    fn change(
        self,
        _: &mut PgConnection,
        _: &IncidentRow,
        next: &mut IncidentRow,
        context: &ActionContext,
    ) -> Result<Change, AppError> {
        next.user_confirmed_at = Some(context.now);
        Ok(Change::comment(
            self.channel.map(|c| format!("confirmed by {c}")),
        ))
    }
}

action_doc!(
    /// The reporter confirms the resolution (its customer users, or the service desk recording
    /// the answer). Required before a user-reported incident is closed.
    confirm_resolution, "/incidents/{id}/confirm", ConfirmRequest, parse_or_default, "Confirmation recorded"
);

/// The reporter's rejection.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectResolutionRequest {
    /// Why the resolution does not solve the problem, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "收费模块仍然无法录入",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub reason: String,
}

impl ActionRequest for RejectResolutionRequest {
    fn command(&self) -> Command {
        Command::RejectResolution
    }

    fn change(
        self,
        _: &mut PgConnection,
        _: &IncidentRow,
        next: &mut IncidentRow,
        _: &ActionContext,
    ) -> Result<Change, AppError> {
        next.resolved_at = None;
        next.user_confirmed_at = None;
        Ok(Change::comment(Some(self.reason)))
    }
}

action_doc!(
    /// The reporter rejects the resolution: `resolved` → `in_progress` (its customer users, or
    /// the service desk recording the answer).
    reject_resolution, "/incidents/{id}/reject-resolution", RejectResolutionRequest, parse, "Back in progress"
);

/// Closing an incident.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// `resolved` or `unresolved` from `resolved`; `duplicate` or `withdrawn` from `new` or
    /// `in_progress`.
    pub closure_code: ClosureCode,
    /// The incident this one duplicates (`duplicate` only).
    pub duplicate_of: Option<i64>,
    /// Why; required for `withdrawn`.
    #[validate(length(max = 10000))]
    #[schema(max_length = 10000)]
    pub note: Option<String>,
}

impl ActionRequest for CloseRequest {
    fn command(&self) -> Command {
        Command::Close(self.closure_code)
    }

    fn change(
        self,
        conn: &mut PgConnection,
        current: &IncidentRow,
        next: &mut IncidentRow,
        context: &ActionContext,
    ) -> Result<Change, AppError> {
        let code = self.closure_code;
        let note = self.note.filter(|n| !n.trim().is_empty());
        match code {
            ClosureCode::Duplicate => {
                let Some(original) = self.duplicate_of else {
                    return Err(AppError::invalid_field(
                        "duplicate_of",
                        "required",
                        "a duplicate names the incident it duplicates",
                    ));
                };
                let exists = original != current.id
                    && store::incidents::find(conn, original)
                        .is_ok_and(|o| o.customer_id == current.customer_id);
                if !exists {
                    return Err(AppError::invalid_field(
                        "duplicate_of",
                        "invalid",
                        "must be another existing incident of the same customer",
                    ));
                }
                next.duplicate_of = Some(original);
            }
            ClosureCode::Withdrawn if note.is_none() => {
                return Err(AppError::invalid_field(
                    "note",
                    "required",
                    "say why the incident is withdrawn",
                ));
            }
            _ if self.duplicate_of.is_some() => {
                return Err(AppError::invalid_field(
                    "duplicate_of",
                    "invalid",
                    "only a duplicate names another incident",
                ));
            }
            _ => {}
        }
        next.closure_code = Some(code.as_str().to_owned());
        next.closed_at = Some(context.now);
        next.closed_by = Some(context.actor_id);
        Ok(Change::comment(note))
    }
}

action_doc!(
    /// Close (service desk only). From `resolved` with `resolved` or `unresolved` — a
    /// user-reported incident only after the reporter confirmed (else 409
    /// `confirmation_required`); from `new` or `in_progress` with `duplicate` (and
    /// `duplicate_of`) or `withdrawn` (and `note`). A closed incident never changes again.
    close_incident, "/incidents/{id}/close", CloseRequest, parse, "Closed"
);

/// A note.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNoteRequest {
    /// `internal` (staff only) or `public`. Default: `public` for customer users, `internal` for staff.
    pub visibility: Option<NoteVisibility>,
    /// Text, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "已远程连接，正在检查日志",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub body: String,
}

/// A note as clients see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoteResponse {
    /// Id.
    pub id: i64,
    /// Incident.
    pub incident_id: i64,
    /// Author.
    pub author_id: i64,
    /// Visibility.
    pub visibility: NoteVisibility,
    /// Text.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<NoteRow> for NoteResponse {
    type Error = AppError;

    fn try_from(row: NoteRow) -> Result<Self, AppError> {
        Ok(NoteResponse {
            visibility: parse_stored(&row.visibility)?,
            id: row.id,
            incident_id: row.incident_id,
            author_id: row.author_id,
            body: row.body,
            created_at: row.created_at,
        })
    }
}

/// Add a note. Staff write internal or public notes; customer users public ones on their
/// organisation's incidents. Closed incidents take no more notes.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    request_body = CreateNoteRequest,
    responses(
        (status = 201, description = "Note added", body = NoteResponse),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[post("/incidents/{id}/notes")]
pub async fn add_note(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    body: JsonBody<CreateNoteRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let request = body.parse()?;
    let visibility = request.visibility.unwrap_or(if caller.roles.is_staff() {
        NoteVisibility::Internal
    } else {
        NoteVisibility::Public
    });
    let now = state.clock.now();
    let note = NewNote {
        visibility: visibility.as_str().to_owned(),
        body: request.body,
    };
    let command = Command::AddNote(visibility);
    let applied = act_on(
        &state,
        &caller,
        id.into_inner(),
        IfMatch(None),
        move |_| command,
        now,
        move |_, _, _| Ok(Change::note(note)),
    )
    .await?;
    let written = applied
        .note
        .ok_or_else(|| AppError::internal("the note was not written"))?;
    Ok(HttpResponse::Created().json(NoteResponse::try_from(written)?))
}

/// The incident's notes, oldest first; customer users see public notes only.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Notes, oldest first", body = Vec<NoteResponse>),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[get("/incidents/{id}/notes")]
pub async fn list_notes(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let id = id.into_inner();
    let staff = caller.roles.is_staff();
    let visible_to = caller.clone();
    let rows = store::run(&state.pool, move |conn| {
        let incident = store::incidents::find(conn, id)?;
        check_visible(&visible_to, &incident)?;
        store::incidents::notes(conn, id, staff)
    })
    .await?;
    let notes = rows
        .into_iter()
        .map(NoteResponse::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(notes))
}

/// One history entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentHistoryEntry {
    /// Id.
    pub id: i64,
    /// Who acted.
    pub actor_id: Option<i64>,
    /// `created`, `edit`, `accept`, `workaround`, `resolve`, `confirm`, `reject-resolution`,
    /// `close` or `note`.
    #[schema(example = "accept")]
    pub action: String,
    /// Fields that changed, old → new.
    pub changes: Vec<crate::domain::changes::FieldChange>,
    /// A reason or note given with the action.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<HistoryRow> for IncidentHistoryEntry {
    fn from(row: HistoryRow) -> Self {
        IncidentHistoryEntry {
            changes: row.field_changes(),
            id: row.id,
            actor_id: row.actor_id,
            action: row.action,
            comment: row.comment,
            created_at: row.created_at,
        }
    }
}

/// The incident's append-only history, oldest first. Customer users do not see entries about
/// internal notes.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "History, oldest first", body = Vec<IncidentHistoryEntry>),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[get("/incidents/{id}/history")]
pub async fn get_incident_history(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let id = id.into_inner();
    let staff = caller.roles.is_staff();
    let visible_to = caller.clone();
    let rows = store::run(&state.pool, move |conn| {
        let incident = store::incidents::find(conn, id)?;
        check_visible(&visible_to, &incident)?;
        store::incidents::history(conn, id, staff)
    })
    .await?;
    let entries: Vec<IncidentHistoryEntry> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(entries))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_incident)
        .service(list_incidents)
        .service(get_incident)
        .service(update_incident)
        .service(accept_incident)
        .service(record_workaround)
        .service(resolve_incident)
        .service(confirm_resolution)
        .service(reject_resolution)
        .service(close_incident)
        .service(add_note)
        .service(list_notes)
        .service(get_incident_history);
}

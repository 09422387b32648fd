//! The one error type of the service, rendered as RFC 9457 `application/problem+json`.
//!
//! Every failure a client can see has a stable `code` (SPEC §10). Causes of server-side
//! failures are logged here and never sent to the client.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::coordination::{self, CoordinationError};
use crate::domain::knowledge::{self, KnowledgeError};
use crate::domain::state_machine::{Action, TransitionError};
pub use crate::domain::validation::FieldError;
use crate::store::StoreError;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A failure answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request could not be read (malformed JSON, bad header).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Well-formed input that breaks the rules, field by field.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// A monitoring event that cannot be read (SPEC §8): 400, never 422, because a PagerDuty
    /// sender does not retry a 400.
    #[error("invalid event: {0:?}")]
    InvalidEvent(Vec<FieldError>),
    /// Well-formed input the request cannot be carried out with, as a whole (not field by
    /// field), e.g. `idempotency_key_reused`.
    #[error("unprocessable ({code}): {detail}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Explanation for people.
        detail: String,
    },
    /// Missing or invalid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Valid credentials, but the caller's roles do not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such resource, or one the caller may not know about.
    #[error("not found: {0}")]
    NotFound(String),
    /// The resource has no representation of the media types `Accept` names.
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    /// The path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Methods the path accepts, for the `Allow` header.
        allow: String,
    },
    /// The request conflicts with the resource's current state.
    #[error("conflict ({code}): {detail}")]
    Conflict {
        /// Stable code, e.g. `already_exists`.
        code: &'static str,
        /// Explanation for people.
        detail: String,
    },
    /// The action is not allowed in the incident's current state.
    #[error("illegal transition: {detail}")]
    IllegalTransition {
        /// Explanation for people.
        detail: String,
        /// The incident's current status.
        status: String,
        /// Actions the current state allows.
        allowed_actions: Vec<String>,
    },
    /// A new report duplicates an unresolved incident (SPEC §8).
    #[error("duplicate of incident {duplicate_of}")]
    DuplicateIncident {
        /// The unresolved incident it duplicates.
        duplicate_of: i64,
    },
    /// `If-Match` named a version that is no longer current.
    #[error("version mismatch: current version is {current}")]
    VersionMismatch {
        /// The resource's current version.
        current: i32,
    },
    /// `If-Match` carried a weak entity tag: RFC 9110 compares `If-Match` strongly, so it can
    /// never match (412, `version_mismatch`).
    #[error("weak entity tag in If-Match")]
    WeakEntityTag,
    /// The body exceeds the size limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// An upload was not sent as `multipart/form-data` (415 `unsupported_media_type`).
    #[error("upload not multipart/form-data")]
    UnsupportedUpload,
    /// A `Range` lies beyond the end of a file of `size` bytes (416 `range_not_satisfiable`).
    #[error("range not satisfiable (size {size})")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// An uploaded file exceeds `MAX_ATTACHMENT_SIZE` (413 `payload_too_large`).
    #[error("file too large (limit {limit} bytes)")]
    FileTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request body stalled longer than `BODY_TIMEOUT_SECS`; the connection is closed.
    #[error("request body timed out")]
    RequestTimeout,
    /// A JSON operation was sent a body of another declared media type.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The caller must wait before trying again (sign-ins after repeated failures).
    #[error("too many requests: {detail}")]
    TooManyRequests {
        /// Explanation for people.
        detail: String,
        /// Seconds to wait, sent as `Retry-After`.
        retry_after: u64,
    },
    /// What the request names is gone for good (an event past the stream's retention, a used
    /// confirmation token): the client must start over.
    #[error("gone: {detail}")]
    Gone {
        /// Stable code.
        code: &'static str,
        /// Explanation for people.
        detail: String,
    },
    /// A dependency (the database) is unreachable; retrying later can help.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:incident-desk:problem:validation_failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "The request has invalid fields.",
    "code": "validation_failed",
    "errors": [{"field": "username", "code": "length", "message": "must be between 2 and 64 characters"}]
}))]
pub struct Problem {
    /// URI naming the problem type: `urn:incident-desk:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    pub detail: String,
    /// Stable machine-readable code; `docs/api-conventions.md` lists them.
    pub code: String,
    /// Per-field errors (`validation_failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
    /// The incident's current status (`illegal_transition` only).
    #[serde(rename = "state", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "new")]
    pub status_name: Option<String>,
    /// The unresolved incident a new report duplicates (`duplicate_incident` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = 42)]
    pub duplicate_of: Option<i64>,
    /// Actions the incident's current state allows (`illegal_transition` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = json!(["accept", "close", "edit", "note"]))]
    pub allowed_actions: Option<Vec<String>>,
}

impl AppError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Validation(_) => "validation_failed",
            AppError::InvalidEvent(_) => "invalid_event",
            AppError::Unprocessable { code, .. } => code,
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::NotAcceptable(_) => "not_acceptable",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::Conflict { code, .. } | AppError::Gone { code, .. } => code,
            AppError::IllegalTransition { .. } => "illegal_transition",
            AppError::DuplicateIncident { .. } => "duplicate_incident",
            AppError::VersionMismatch { .. } | AppError::WeakEntityTag => "version_mismatch",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::RequestTimeout => "request_timeout",
            AppError::PayloadTooLarge | AppError::FileTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedUpload => "unsupported_media_type",
            AppError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// A single-field validation error.
    pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, code, message)])
    }

    /// `not_found` for a resource kind and id.
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        AppError::NotFound(format!("{what} {id} does not exist"))
    }

    /// `forbidden` with a reason.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        AppError::Forbidden(reason.into())
    }

    /// An internal failure with a cause that is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    /// An internal failure caused by `error`, keeping its whole chain of causes for the log.
    pub fn internal_error(context: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        AppError::Internal(crate::store::error::cause_chain(context, error))
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "Bad request",
            AppError::Validation(_) => "Validation failed",
            AppError::InvalidEvent(_) => "Invalid event",
            AppError::Unprocessable { .. } => "Unprocessable request",
            AppError::Unauthorized(_) => "Unauthorized",
            AppError::Forbidden(_) => "Forbidden",
            AppError::NotFound(_) => "Not found",
            AppError::NotAcceptable(_) => "Not acceptable",
            AppError::MethodNotAllowed { .. } => "Method not allowed",
            AppError::Conflict { .. } => "Conflict",
            AppError::Gone { .. } => "Gone",
            AppError::IllegalTransition { .. } => "Illegal transition",
            AppError::DuplicateIncident { .. } => "Duplicate incident",
            AppError::VersionMismatch { .. } | AppError::WeakEntityTag => "Version mismatch",
            AppError::UnsupportedMediaType(_) => "Unsupported media type",
            AppError::RequestTimeout => "Request timeout",
            AppError::PayloadTooLarge | AppError::FileTooLarge { .. } => "Payload too large",
            AppError::UnsupportedUpload => "Unsupported media type",
            AppError::RangeNotSatisfiable { .. } => "Range not satisfiable",
            AppError::TooManyRequests { .. } => "Too many requests",
            AppError::Unavailable(_) => "Service unavailable",
            AppError::Internal(_) => "Internal server error",
        }
    }

    fn detail(&self) -> String {
        match self {
            AppError::BadRequest(d)
            | AppError::Unauthorized(d)
            | AppError::Forbidden(d)
            | AppError::NotFound(d)
            | AppError::NotAcceptable(d) => d.clone(),
            AppError::UnsupportedMediaType(declared) => format!(
                "This operation reads JSON; the body was declared as {declared}. Send it with Content-Type: application/json."
            ),
            AppError::RequestTimeout => {
                "The request body stopped arriving; the connection is closed. Send the whole body \
                 without pausing."
                    .into()
            }
            AppError::WeakEntityTag => "If-Match carries a weak entity tag (W/\"…\"); weak tags are not accepted for writes. Send the ETag as received, e.g. \"3\".".into(),
            AppError::Conflict { detail, .. }
            | AppError::IllegalTransition { detail, .. }
            | AppError::Unprocessable { detail, .. }
            | AppError::Gone { detail, .. }
            | AppError::TooManyRequests { detail, .. } => detail.clone(),
            AppError::Validation(_) => "The request has invalid fields.".into(),
            AppError::DuplicateIncident { duplicate_of } => format!(
                "Unresolved incident {duplicate_of} has the same customer, system, configuration item and subcategory. \
                 Retry with ?on_duplicate=append to record this report on it, or ?on_duplicate=create to open a new incident anyway."
            ),
            AppError::InvalidEvent(_) => "The event cannot be read; see errors.".into(),
            AppError::MethodNotAllowed { allow } => {
                format!("This path accepts only: {allow}.")
            }
            AppError::VersionMismatch { current } => format!(
                "The resource has changed; its current version is {current}. Fetch it again and retry."
            ),
            AppError::PayloadTooLarge => "The request body exceeds the limit of 1 MiB.".into(),
            AppError::UnsupportedUpload => "Upload files as multipart/form-data: an optional `visibility` part, then one or more `file` parts.".into(),
            AppError::RangeNotSatisfiable { size } => format!(
                "The range lies beyond the end of the file ({size} bytes); ask for bytes 0 to {}.",
                size.saturating_sub(1)
            ),
            AppError::FileTooLarge { limit } => format!(
                "A file exceeds the limit of {limit} bytes (MAX_ATTACHMENT_SIZE); nothing of this upload was kept."
            ),
            AppError::Unavailable(_) => {
                "The service cannot reach its database right now; retry shortly.".into()
            }
            AppError::Internal(_) => "An unexpected error occurred.".into(),
        }
    }

    /// The problem details body of this error.
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:incident-desk:problem:{}", self.code()),
            title: self.title().into(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            code: self.code().into(),
            errors: match self {
                AppError::Validation(errors) | AppError::InvalidEvent(errors) => {
                    Some(errors.clone())
                }
                _ => None,
            },
            status_name: match self {
                AppError::IllegalTransition { status, .. } => Some(status.clone()),
                _ => None,
            },
            duplicate_of: match self {
                AppError::DuplicateIncident { duplicate_of } => Some(*duplicate_of),
                _ => None,
            },
            allowed_actions: match self {
                AppError::IllegalTransition {
                    allowed_actions, ..
                } => Some(allowed_actions.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) | AppError::InvalidEvent(_) => StatusCode::BAD_REQUEST,
            AppError::Validation(_) | AppError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. }
            | AppError::IllegalTransition { .. }
            | AppError::DuplicateIncident { .. } => StatusCode::CONFLICT,
            AppError::VersionMismatch { .. } | AppError::WeakEntityTag => {
                StatusCode::PRECONDITION_FAILED
            }
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::PayloadTooLarge | AppError::FileTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AppError::UnsupportedUpload => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Gone { .. } => StatusCode::GONE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Internal(cause) => log::error!("internal error: {cause}"),
            AppError::Unavailable(cause) => log::warn!("service unavailable: {cause}"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            AppError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            AppError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            AppError::TooManyRequests { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            AppError::RangeNotSatisfiable { size } => {
                response.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
            }
            // The rest of the body may still come, or never: the connection cannot be reused.
            AppError::RequestTimeout | AppError::FileTooLarge { .. } => {
                response.force_close();
            }
            _ => {}
        }
        response.body(serde_json::to_vec(&self.problem()).unwrap_or_default())
    }
}

/// The one place a store failure becomes a client's answer.
impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(detail) => AppError::NotFound(detail),
            StoreError::AlreadyExists => AppError::Conflict {
                code: "already_exists",
                detail: "A resource with the same key already exists.".into(),
            },
            StoreError::Conflict { code, detail } => AppError::Conflict { code, detail },
            StoreError::VersionMismatch { current } => AppError::VersionMismatch { current },
            StoreError::DuplicateIncident { duplicate_of } => {
                AppError::DuplicateIncident { duplicate_of }
            }
            StoreError::Invalid(errors) => AppError::Validation(errors),
            StoreError::Unauthorized(detail) => AppError::Unauthorized(detail),
            StoreError::Forbidden(detail) => AppError::Forbidden(detail),
            StoreError::Transition(refusal) => refusal.into(),
            StoreError::Knowledge(refusal) => refusal.into(),
            StoreError::Coordination(refusal) => refusal.into(),
            StoreError::Unavailable(cause) => AppError::Unavailable(cause),
            StoreError::Internal(cause) => AppError::Internal(cause),
        }
    }
}

/// 409 `illegal_transition` for an action `what`'s state `status` does not allow.
fn illegal<'a>(
    what: &str,
    action: &str,
    status: &str,
    allowed: impl Iterator<Item = &'a str>,
) -> AppError {
    let allowed: Vec<String> = allowed.map(str::to_owned).collect();
    AppError::IllegalTransition {
        detail: format!(
            "`{action}` is not allowed while the {what} is {status}; allowed now: {}.",
            if allowed.is_empty() {
                "nothing".to_owned()
            } else {
                allowed.join(", ")
            }
        ),
        status: status.to_owned(),
        allowed_actions: allowed,
    }
}

impl From<KnowledgeError> for AppError {
    fn from(error: KnowledgeError) -> Self {
        match error {
            KnowledgeError::IllegalTransition { status, action } => illegal(
                "entry",
                action.as_str(),
                status.as_str(),
                knowledge::allowed_actions(status)
                    .iter()
                    .map(|a| a.as_str()),
            ),
            KnowledgeError::Forbidden(reason) => AppError::Forbidden(reason),
            KnowledgeError::Invalid(errors) => AppError::Validation(errors),
        }
    }
}

impl From<CoordinationError> for AppError {
    fn from(error: CoordinationError) -> Self {
        match error {
            CoordinationError::IllegalTransition { status, action } => illegal(
                "ticket",
                action.as_str(),
                status.as_str(),
                coordination::allowed_actions(status)
                    .iter()
                    .map(|a| a.as_str()),
            ),
            CoordinationError::IncidentClosed(_) => AppError::Conflict {
                code: "incident_closed",
                detail: error.to_string(),
            },
            CoordinationError::Forbidden(reason) => AppError::Forbidden(reason),
            CoordinationError::Invalid(errors) => AppError::Validation(errors),
        }
    }
}

impl From<TransitionError> for AppError {
    fn from(error: TransitionError) -> Self {
        let names = |actions: &[Action]| -> Vec<String> {
            actions.iter().map(|a| a.as_str().to_owned()).collect()
        };
        match error {
            TransitionError::NotFound { what, id } => AppError::not_found(what, id),
            TransitionError::Invalid(errors) => AppError::Validation(errors),
            TransitionError::IncidentClosed => AppError::Conflict {
                code: "incident_closed",
                detail: error.to_string(),
            },
            TransitionError::IllegalTransition {
                status,
                action,
                allowed,
            } => AppError::IllegalTransition {
                detail: format!(
                    "`{action}` is not allowed while the incident is {status}; allowed now: {}.",
                    names(allowed).join(", ")
                ),
                status: status.as_str().to_owned(),
                allowed_actions: names(allowed),
            },
            TransitionError::ConfirmationRequired | TransitionError::WithdrawalNotRequested => {
                AppError::Conflict {
                    code: "confirmation_required",
                    detail: error.to_string(),
                }
            }
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
                status, actions, ..
            } => AppError::IllegalTransition {
                detail: format!("{error}."),
                status: status.as_str().to_owned(),
                allowed_actions: names(actions),
            },
            TransitionError::AlreadyAtL2 { status, actions } => AppError::IllegalTransition {
                detail: format!("{error}; a functional escalation moves an l1 incident to l2."),
                status: status.as_str().to_owned(),
                allowed_actions: names(actions),
            },
            TransitionError::Forbidden(reason) => AppError::Forbidden(reason),
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        AppError::internal_error("blocking task failed", &err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(err: AppError) -> (StatusCode, serde_json::Value, HttpResponse) {
        let response = err.error_response();
        let status = response.status();
        let (res, body) = response.into_parts();
        let bytes = body.try_into_bytes().unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap(),
            res.set_body(()).map_into_boxed_body(),
        )
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let (status, body, _) = body_of(AppError::internal("password=hunter2 in query"));
        assert_eq!(status, 500);
        assert_eq!(body["code"], "internal");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[test]
    fn internal_errors_keep_their_causes_for_the_log() {
        #[derive(Debug, thiserror::Error)]
        #[error("pool exhausted")]
        struct Root;
        #[derive(Debug, thiserror::Error)]
        #[error("query failed")]
        struct Outer(#[source] Root);
        let err = AppError::internal_error("database", &Outer(Root));
        assert_eq!(
            err.to_string(),
            "internal error: database: query failed: pool exhausted"
        );
        let (_, body, _) = body_of(err);
        assert!(!body.to_string().contains("pool exhausted"));
    }

    #[test]
    fn validation_errors_list_fields() {
        let (status, body, _) = body_of(AppError::invalid_field(
            "roles",
            "required",
            "at least one role",
        ));
        assert_eq!(status, 422);
        assert_eq!(body["type"], "urn:incident-desk:problem:validation_failed");
        assert_eq!(body["errors"][0]["field"], "roles");
    }

    #[test]
    fn problems_use_the_problem_media_type() {
        let (_, body, response) = body_of(AppError::Unauthorized("no token".into()));
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            PROBLEM_JSON
        );
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
        assert!(body.get("errors").is_none());
    }

    #[test]
    fn a_taken_key_is_a_conflict_that_names_no_constraint() {
        let app: AppError = StoreError::AlreadyExists.into();
        assert_eq!(app.code(), "already_exists");
        assert_eq!(app.status_code(), 409);
        assert!(!app.problem().detail.contains('_'));
    }
}

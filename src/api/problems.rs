//! The problem responses handlers declare in their OpenAPI operations, each with an example body.

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, ToResponse};

use crate::error::PROBLEM_JSON;

fn problem_response(
    description: &str,
    status: u16,
    code: &str,
    title: &str,
    detail: &str,
) -> RefOr<Response> {
    let mut example = serde_json::json!({
        "type": format!("urn:incident-desk:problem:{code}"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    });
    if code == "validation_failed" {
        example["errors"] = serde_json::json!([
            {"field": "username", "code": "length", "message": "must be between 2 and 64 characters"}
        ]);
    }
    if code == "invalid_event" {
        example["errors"] = serde_json::json!([
            {"field": "payload.severity", "code": "invalid", "message": "must be one of: critical, error, warning, info"}
        ]);
    }
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .example(Some(example))
                .build(),
        )
        .build()
        .into()
}

macro_rules! problem_responses {
    ($($name:ident => ($status:literal, $code:literal, $title:literal, $detail:literal, $description:literal)),* $(,)?) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), problem_response($description, $status, $code, $title, $detail))
                }
            }

            // Alone in an operation's `responses(...)`: a reference to the shared response.
            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([($status.to_string(), Ref::from_response_name(stringify!($name)).into())])
                }
            }
        )*
    };
}

problem_responses! {
    BadRequest => (400, "bad_request", "Bad request", "The request body is not valid JSON: EOF while parsing an object at line 1 column 12.",
        "Malformed request: the body is not valid JSON (`bad_request`)."),
    InvalidEvent => (400, "invalid_event", "Invalid event", "The event cannot be read; see errors.",
        "A monitoring event that cannot be read, each problem in `errors` (`invalid_event`); never 422, so a PagerDuty sender does not retry it."),
    Unauthorized => (401, "unauthorized", "Unauthorized", "The token is invalid or has expired.",
        "Missing, invalid or expired bearer token (`unauthorized`)."),
    Forbidden => (403, "forbidden", "Forbidden", "This needs one of the roles: admin.",
        "The caller's roles do not allow this (`forbidden`)."),
    NotFound => (404, "not_found", "Not found", "user 42 does not exist",
        "No such resource, or one the caller may not see (`not_found`)."),
    NotAcceptable => (406, "not_acceptable", "Not acceptable",
        "This resource is available as: application/json, text/csv.",
        "`Accept` names no media type this resource is available in (`not_acceptable`)."),
    Conflict => (409, "already_exists", "Conflict", "The username `li.lei` is already taken.",
        "The request conflicts with the current state (`already_exists`, `last_admin`)."),
    IllegalTransition => (409, "illegal_transition", "Illegal transition",
        "`accept` is not allowed while the ticket is resolved.",
        "The current state does not allow this action; `state` and `allowed_actions` say what it does allow (`illegal_transition`)."),
    IncidentActionRefused => (409, "illegal_transition", "Illegal transition",
        "`resolve` is not allowed while the incident is new; allowed now: accept, assign, close, edit, escalate, note, withdraw.",
        "`illegal_transition` (with `state` and `allowed_actions`), `incident_closed` or `confirmation_required`."),
    VersionMismatch => (412, "version_mismatch", "Version mismatch",
        "The resource has changed; its current version is 3. Fetch it again and retry.",
        "`If-Match` names an outdated version, or is a weak tag (`W/\"3\"`), which never matches (`version_mismatch`)."),
    PayloadTooLarge => (413, "payload_too_large", "Payload too large", "The request body exceeds the limit of 1 MiB.",
        "The body exceeds 1 MiB (`payload_too_large`)."),
    FileTooLarge => (413, "payload_too_large", "Payload too large",
        "A file exceeds the limit of 25000000 bytes (MAX_ATTACHMENT_SIZE); nothing of this upload was kept.",
        "A file exceeds `MAX_ATTACHMENT_SIZE` (`payload_too_large`); refused as soon as its bytes pass the limit, and nothing of the upload is kept."),
    AttachmentConflict => (409, "attachment_limit", "Conflict",
        "at most 50 attachments per incident; it has 50, and this upload adds 1.",
        "`attachment_limit` (at most 50 per owner), `incident_closed` (a closed incident's files never change) or `illegal_transition` (a knowledge entry past `draft`)."),
    UnsupportedUpload => (415, "unsupported_media_type", "Unsupported media type",
        "Upload files as multipart/form-data: an optional `visibility` part, then one or more `file` parts.",
        "The body is not `multipart/form-data` (`unsupported_media_type`)."),
    UnsupportedMediaType => (415, "unsupported_media_type", "Unsupported media type",
        "This operation reads JSON; the body was declared as text/plain. Send it with Content-Type: application/json.",
        "The body was declared as another media type than JSON (`unsupported_media_type`)."),
    ValidationFailed => (422, "validation_failed", "Validation failed", "The request has invalid fields.",
        "Invalid fields, listed in `errors` (`validation_failed`)."),
    TooManyRequests => (429, "too_many_requests", "Too many requests",
        "Too many failed sign-ins for this username or from this address; wait and try again.",
        "Too many failed sign-ins for the username or from the address, or too many at once; wait the seconds of `Retry-After` (`too_many_requests`)."),
    EventExpired => (410, "event_expired", "Gone",
        "Event 1042 is no longer kept (events are kept for 7days); reload what you show, then open the stream without Last-Event-ID.",
        "`Last-Event-ID` names an event no longer kept: reload, then open the stream afresh (`event_expired`)."),
    ConfirmationExpired => (410, "confirmation_expired", "Gone",
        "This link was used already, or the incident no longer awaits your answer.",
        "The confirmation token was used, has expired, or its incident no longer awaits an answer (`confirmation_expired`)."),
    Unavailable => (503, "service_unavailable", "Service unavailable",
        "The service cannot reach its database right now; retry shortly.",
        "The database is unreachable; retry later (`service_unavailable`)."),
}

/// Declares a set of problem responses that operations share, as one `IntoResponses` type.
macro_rules! problem_set {
    ($(#[$doc:meta])* $name:ident { $($status:literal => $problem:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(IntoResponses)]
        pub enum $name {
            $(
                #[response(status = $status)]
                $problem(#[ref_response] $problem),
            )+
        }
    };
}

problem_set!(
    /// Uploading attachments.
    UploadErrors {
        400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 404 => NotFound,
        409 => AttachmentConflict, 413 => FileTooLarge, 415 => UnsupportedUpload,
        422 => ValidationFailed, 503 => Unavailable,
    }
);
problem_set!(
    /// Removing an attachment.
    DeleteAttachmentErrors {
        401 => Unauthorized, 403 => Forbidden, 404 => NotFound, 409 => AttachmentConflict,
        503 => Unavailable,
    }
);
problem_set!(
    /// Reading one resource.
    ReadErrors { 401 => Unauthorized, 403 => Forbidden, 404 => NotFound, 503 => Unavailable }
);
problem_set!(
    /// Listing with query parameters.
    ListErrors { 401 => Unauthorized, 403 => Forbidden, 422 => ValidationFailed, 503 => Unavailable }
);
problem_set!(
    /// Creating from a JSON body.
    CreateErrors {
        400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 413 => PayloadTooLarge,
        422 => ValidationFailed, 503 => Unavailable,
    }
);
problem_set!(
    /// Changing an existing resource from a JSON body with `If-Match`.
    UpdateErrors {
        400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 404 => NotFound,
        412 => VersionMismatch, 413 => PayloadTooLarge, 422 => ValidationFailed, 503 => Unavailable,
    }
);
problem_set!(
    /// An action of an incident's life (SPEC §4.2), with `If-Match`.
    IncidentActionErrors {
        400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 404 => NotFound,
        409 => IncidentActionRefused, 412 => VersionMismatch, 413 => PayloadTooLarge,
        422 => ValidationFailed, 503 => Unavailable,
    }
);
problem_set!(
    /// A step of a resource's life (a coordination ticket's or a knowledge entry's): changing it
    /// with `If-Match`, where its state may not allow the step.
    StepErrors {
        400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 404 => NotFound,
        409 => IllegalTransition, 412 => VersionMismatch, 413 => PayloadTooLarge,
        422 => ValidationFailed, 503 => Unavailable,
    }
);
problem_set!(
    /// Reading a report that comes in several media types.
    ReportErrors {
        401 => Unauthorized, 403 => Forbidden, 406 => NotAcceptable, 422 => ValidationFailed,
        503 => Unavailable,
    }
);
problem_set!(
    /// Reading one resource as a document in another media type than JSON.
    DocumentErrors {
        401 => Unauthorized, 403 => Forbidden, 404 => NotFound, 406 => NotAcceptable,
        503 => Unavailable,
    }
);
problem_set!(
    /// Opening the live stream.
    StreamErrors {
        400 => BadRequest, 401 => Unauthorized, 410 => EventExpired, 422 => ValidationFailed,
        503 => Unavailable,
    }
);
problem_set!(
    /// Answering a resolution with a confirmation token.
    ConfirmationErrors {
        400 => BadRequest, 401 => Unauthorized, 410 => ConfirmationExpired, 413 => PayloadTooLarge,
        422 => ValidationFailed, 429 => TooManyRequests, 503 => Unavailable,
    }
);
problem_set!(
    /// Anything a signed-in caller may call.
    SignedInErrors { 401 => Unauthorized, 503 => Unavailable }
);
problem_set!(
    /// Posting monitoring events. The event itself is never refused with 422 (a PagerDuty sender
    /// would retry it); a malformed `Idempotency-Key`, which no PagerDuty sender sends, is.
    EventErrors {
        400 => InvalidEvent, 401 => Unauthorized, 403 => Forbidden, 413 => PayloadTooLarge,
        422 => ValidationFailed, 503 => Unavailable,
    }
);

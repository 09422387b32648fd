//! JSON bodies: read at extraction (413 at once), parsed and validated when the handler asks, every
//! problem named by its field.

use std::marker::PhantomData;

use std::time::Duration;

use actix_web::dev::{Decompress, Payload};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Data};
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::domain::validation::FieldError;
use crate::error::AppError;
use crate::state::AppState;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body, read but not yet parsed.
///
/// Reading happens during extraction (so an oversized body is 413 at once, a stalled one 408); parsing and
/// validation happen when the handler calls [`JsonBody::parse`], after it has checked who the
/// caller is, so that a caller without the right role learns 403, not the body's schema.
#[derive(Debug)]
pub struct JsonBody<T> {
    body: Bytes,
    target: PhantomData<fn() -> T>,
}

impl<T> JsonBody<T> {
    /// The body as read, for formats with rules of their own (monitoring events).
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }
}

impl<T: DeserializeOwned + Validate> JsonBody<T> {
    /// Parses and validates the body.
    pub fn parse(self) -> Result<T, AppError> {
        parse_json(&self.body)
    }

    /// Like [`JsonBody::parse`], but an empty body means the defaults (for actions whose
    /// fields are all optional).
    pub fn parse_or_default(self) -> Result<T, AppError>
    where
        T: Default,
    {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            Ok(T::default())
        } else {
            parse_json(&self.body)
        }
    }
}

impl<T: 'static> FromRequest for JsonBody<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = declared_media_type(req);
        let stall = req
            .app_data::<Data<AppState>>()
            .map_or(DEFAULT_BODY_TIMEOUT, |state| state.settings.body_timeout);
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
        let mut payload = Decompress::from_headers(payload.take(), req.headers());
        Box::pin(async move {
            // Refused before reading a byte, when the client says how much is coming.
            if announced.is_some_and(|length| length > MAX_BODY_BYTES) {
                return Err(AppError::PayloadTooLarge);
            }
            let body = read_body(&mut payload, stall).await?;
            // An empty body has nothing to misread, whatever a client library declares for it.
            if let Some(declared) = declared
                && !body.iter().all(u8::is_ascii_whitespace)
            {
                return Err(AppError::UnsupportedMediaType(declared));
            }
            Ok(JsonBody {
                body,
                target: PhantomData,
            })
        })
    }
}

/// How long a body may stall between two chunks when the settings are not at hand.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the whole body, up to [`MAX_BODY_BYTES`]. A body that sends nothing for `stall` is
/// 408 (`BODY_TIMEOUT_SECS`): a client that announces a body and stops would otherwise hold its
/// connection forever. A slow but steady upload is never cut: the limit is between chunks.
pub async fn read_body<S>(payload: &mut S, stall: Duration) -> Result<Bytes, AppError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut body = BytesMut::new();
    loop {
        let chunk = match tokio::time::timeout(stall, payload.next()).await {
            Err(_) => return Err(AppError::RequestTimeout),
            Ok(None) => return Ok(body.freeze()),
            Ok(Some(chunk)) => chunk.map_err(|err| match err {
                PayloadError::Overflow => AppError::PayloadTooLarge,
                _ => AppError::BadRequest("The request body could not be read.".into()),
            })?,
        };
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
}

/// The `Content-Type` of a request when it declares something other than JSON
/// (`application/json` or any `+json` type); `None` when it declares JSON or nothing.
fn declared_media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    match text.parse::<actix_web::mime::Mime>() {
        Ok(media)
            if media.subtype() == actix_web::mime::JSON
                || media.suffix() == Some(actix_web::mime::JSON) =>
        {
            None
        }
        _ => Some(text),
    }
}

/// Parses and validates a JSON document.
pub fn parse_json<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest(
            "The request body is empty; a JSON object is expected.".into(),
        ));
    }
    let document: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("The request body is not valid JSON: {e}.")))?;
    // Serde would read a struct from an array too; the API speaks objects only.
    if !document.is_object() {
        return Err(AppError::invalid_field(
            ".",
            "invalid_type",
            "the body must be a JSON object",
        ));
    }
    // PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if let Some(field) = find_nul(&document, String::new()) {
        return Err(AppError::invalid_field(
            &field,
            "invalid",
            "must not contain the NUL character",
        ));
    }
    deserialize_valid(document)
}

/// Deserializes `T` from `deserializer`, naming a failing field by its path, then runs its
/// `validator` rules: what bodies and query strings share.
pub(super) fn deserialize_valid<'de, T, D>(deserializer: D) -> Result<T, AppError>
where
    T: serde::Deserialize<'de> + Validate,
    D: serde::Deserializer<'de>,
{
    let value: T = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        AppError::Validation(vec![deserialize_error(
            &path,
            &err.into_inner().to_string(),
        )])
    })?;
    validate(&value)?;
    Ok(value)
}

/// Runs the `validator` rules of `value`.
pub fn validate<T: Validate>(value: &T) -> Result<(), AppError> {
    value
        .validate()
        .map_err(|errors| AppError::Validation(flatten(&errors, "")))
}

fn find_nul(value: &Value, path: String) -> Option<String> {
    let name = |path: &str| {
        if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(name(&path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(name(&path))
            } else {
                find_nul(item, child)
            }
        }),
        _ => None,
    }
}

/// Turns a serde message into a field error, naming the missing field where serde names it
/// only in the message.
fn deserialize_error(path: &str, message: &str) -> FieldError {
    let join = |field: &str| {
        if path.is_empty() || path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    let quoted = |message: &str, prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(field) = quoted(message, "missing field `") {
        return FieldError::new(join(&field), "required", "is required");
    }
    if let Some(field) = quoted(message, "unknown field `") {
        // The path already ends with the unknown field's name.
        let field = if path.is_empty() || path == "." {
            field
        } else {
            path.to_owned()
        };
        return FieldError::new(field, "unknown_field", message);
    }
    let field = if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    };
    FieldError::new(field, "invalid_type", message)
}

fn flatten(errors: &ValidationErrors, prefix: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    out.push(FieldError::new(
                        path.clone(),
                        error.code.clone(),
                        describe(error),
                    ));
                }
            }
            ValidationErrorsKind::Struct(inner) => out.extend(flatten(inner, &path)),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    out.extend(flatten(inner, &format!("{path}[{index}]")));
                }
            }
        }
    }
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn describe(error: &ValidationError) -> String {
    if let Some(message) = &error.message {
        return message.to_string();
    }
    let param = |name: &str| error.params.get(name).map(|v| v.to_string());
    match error.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max}"),
            (Some(min), None) => format!("length must be at least {min}"),
            (None, Some(max)) => format!("length must be at most {max}"),
            _ => "has an invalid length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".into(),
        },
        "email" => "must be an email address".into(),
        other => format!("is invalid ({other})"),
    }
}

/// `deserialize_with` for PATCH fields where `null` clears and absence keeps:
/// absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn clearable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

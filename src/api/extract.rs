//! Request extractors that turn every kind of bad input into problem+json.
//!
//! actix's own `Json` and `Query` answer plain text and cannot name the failing field, so the
//! handlers use [`JsonBody`] and [`ValidQuery`] instead: malformed JSON is 400 `bad_request`,
//! a missing, mistyped or invalid field is 422 `validation_failed` with the field's path.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::auth::api_token;
use crate::domain::role::{Role, Roles};
use crate::domain::validation::FieldError;
use crate::domain::workflow::Caller;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::credentials::Credential;
use crate::store::users::UserRow;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body, read but not yet parsed.
///
/// Reading happens during extraction (so an oversized body is 413 at once); parsing and
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
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => AppError::PayloadTooLarge,
                    _ => AppError::BadRequest("The request body could not be read.".into()),
                })?;
            Ok(JsonBody {
                body,
                target: PhantomData,
            })
        })
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
    let value: T = serde_path_to_error::deserialize(document).map_err(|err| {
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

/// A query string, parsed and validated. Repeated keys fill `Vec` fields.
#[derive(Debug)]
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned + Validate> FromRequest for ValidQuery<T> {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(req.query_string()).map(ValidQuery))
    }
}

/// Parses and validates a query string.
pub fn parse_query<T: DeserializeOwned + Validate>(query: &str) -> Result<T, AppError> {
    if let Some((key, _)) = form_urlencoded::parse(query.as_bytes()).find(|(_, v)| v.contains('\0'))
    {
        return Err(AppError::invalid_field(
            &key,
            "invalid",
            "must not contain the NUL character",
        ));
    }
    // An empty parameter (`q=` from an empty search box) means the same as an absent one.
    let present: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(query.as_bytes()).filter(|(_, value)| !value.is_empty()),
        )
        .finish();
    let deserializer = serde_html_form::Deserializer::from_bytes(present.as_bytes());
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

/// The version named by `If-Match` (`"3"`); `None` when absent or `*`. An entity tag this API
/// could not have issued for a current version — a weak one (RFC 9110 compares `If-Match`
/// strongly, so `W/"3"` never matches) or a number out of range — asks for version 0, which
/// no resource has (versions start at 1), so the write is refused as outdated (412).
pub struct IfMatch(pub Option<i32>);

impl FromRequest for IfMatch {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_if_match(req.headers().get(header::IF_MATCH)).map(IfMatch))
    }
}

impl utoipa::IntoParams for IfMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let etag = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r#"^(\*|(W/)?"[^"]*")$"#));
        vec![
            ParameterBuilder::new()
                .name("If-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "ETag of the version this write is based on (compared strongly: a weak `W/` tag never matches); absent or `*` writes regardless",
                ))
                .schema(Some(etag))
                .build(),
        ]
    }
}

fn parse_if_match(value: Option<&header::HeaderValue>) -> Result<Option<i32>, AppError> {
    /// The version no resource has.
    const NO_VERSION: i32 = 0;
    let Some(value) = value else { return Ok(None) };
    let text = value
        .to_str()
        .map_err(|_| AppError::BadRequest("If-Match is not readable.".into()))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let (weak, tag) = match text.strip_prefix("W/") {
        Some(tag) => (true, tag),
        None => (false, text),
    };
    let opaque = tag
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|opaque| !opaque.contains('"'))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "If-Match must be an entity tag such as \"3\" (the ETag of the version the write is based on); got {text}."
            ))
        })?;
    Ok(Some(match opaque.parse::<i32>() {
        Ok(version) if !weak => version,
        _ => NO_VERSION,
    }))
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

/// The authenticated caller.
///
/// The bearer token is checked, then the user is read from the database on every request, so
/// a deactivated user or a revoked token stops working at once and role changes apply at once.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Current roles.
    pub roles: Roles,
    /// Organisation of a customer user.
    pub customer_id: Option<i64>,
    /// The user's row as read for this request.
    pub row: UserRow,
}

impl AuthUser {
    /// 403 unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AppError> {
        if self.roles.has_any(roles) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(AppError::forbidden(format!(
                "This needs one of the roles: {}.",
                names.join(", ")
            )))
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), AppError> {
        self.require_any(&[Role::Admin])
    }

    /// 403 unless the caller is an admin or staff.
    pub fn require_admin_or_staff(&self) -> Result<(), AppError> {
        self.require_any(&[
            Role::Admin,
            Role::ServiceDesk,
            Role::L2Engineer,
            Role::OpsStaff,
            Role::IncidentManager,
        ])
    }

    /// The caller as the incident rules see it.
    pub fn caller(&self) -> Caller {
        Caller {
            id: Some(self.id),
            name: self.row.display_name.clone(),
            roles: self.roles.clone(),
            customer_id: self.customer_id,
        }
    }

    /// Whose records the caller may see: `Some(own organisation)` for a customer user, `None`
    /// (every customer's) for admins and staff; 403 for anyone else.
    pub fn customer_scope(&self) -> Result<Option<i64>, AppError> {
        match self.confined_to_customer() {
            Some(own) => Ok(Some(own)),
            None => self.require_admin_or_staff().map(|()| None),
        }
    }

    /// The customer filter of a list: what was asked, except that a customer user is held to
    /// its own organisation. `None` when a customer user asks for another one, whose records it
    /// must not learn about: the answer is an empty page, as if there were none.
    pub fn customer_filter(&self, asked: Option<i64>) -> Option<Option<i64>> {
        match self.confined_to_customer() {
            Some(own) if asked.is_some_and(|asked| asked != own) => None,
            Some(own) => Some(Some(own)),
            None => Some(asked),
        }
    }

    /// The organisation a customer user is confined to; `None` for everyone else.
    pub fn confined_to_customer(&self) -> Option<i64> {
        if self.roles.has(Role::Customer) {
            self.customer_id
        } else {
            None
        }
    }
}

pub fn bearer_token(req: &HttpRequest) -> Result<String, AppError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        AppError::Unauthorized("An Authorization: Bearer token is required.".into())
    })?;
    let text = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("The Authorization header is not readable.".into()))?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "The Authorization header must be `Bearer <token>`.".into(),
        ));
    }
    Ok(token.trim().to_owned())
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // A middleware that already authenticated this request (Idempotency-Key) left the
        // caller here; reading the user again would be the same query for the same answer.
        if let Some(caller) = req.extensions().get::<AuthUser>().cloned() {
            return Box::pin(async move { Ok(caller) });
        }
        let state = req.app_data::<Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state missing"))?;
            AuthUser::from_token(&state, token?).await
        })
    }
}

impl AuthUser {
    /// The caller a Bearer value stands for: an API token (`idt_…`) or a JWT (SPEC §10).
    /// Deactivation, role changes and revocation apply at once on every server instance (see
    /// `store::credentials`).
    pub async fn from_token(state: &AppState, token: String) -> Result<AuthUser, AppError> {
        let credential = check_credential(state, &token)?;
        let now = state.clock.now();
        let user =
            store::credentials::caller(&state.pool, &state.credentials, credential, now).await?;
        Ok(AuthUser::from(user))
    }
}

impl From<UserRow> for AuthUser {
    fn from(user: UserRow) -> Self {
        AuthUser {
            id: user.id,
            roles: user.roles(),
            username: user.username.clone(),
            customer_id: user.customer_id,
            row: user,
        }
    }
}

fn invalid_token() -> AppError {
    AppError::Unauthorized("The token is invalid or has expired.".into())
}

/// Checks a Bearer value as far as it can be without the database: a JWT's signature and
/// expiry, an API token's shape.
pub fn check_credential(state: &AppState, token: &str) -> Result<Credential, AppError> {
    if api_token::is_api_token(token) {
        return Ok(Credential::ApiToken(api_token::digest(token)));
    }
    let claims = state.tokens.verify(token).map_err(|err| {
        log::debug!("refused token: {err}");
        invalid_token()
    })?;
    Ok(Credential::Jwt {
        user_id: claims.user_id().ok_or_else(invalid_token)?,
        generation: claims.generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[validate(length(min = 2, max = 5))]
        name: String,
        #[allow(dead_code)]
        count: Option<u8>,
        #[serde(default)]
        #[allow(dead_code)]
        tags: Vec<String>,
    }

    fn codes(err: AppError) -> Vec<(String, String)> {
        match err {
            AppError::Validation(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Sample>(b"{\"name\": "),
            Err(AppError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Sample>(b"  "),
            Err(AppError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Sample>(b"{} x"),
            Err(AppError::BadRequest(_))
        ));
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let err = parse_json::<Sample>(b"{}").unwrap_err();
        assert_eq!(codes(err), [("name".into(), "required".into())]);
        let err = parse_json::<Sample>(br#"{"name": "ab", "count": "x"}"#).unwrap_err();
        assert_eq!(codes(err), [("count".into(), "invalid_type".into())]);
        let err = parse_json::<Sample>(br#"{"name": "ab", "tags": ["a", 3]}"#).unwrap_err();
        assert_eq!(codes(err), [("tags[1]".into(), "invalid_type".into())]);
        let err = parse_json::<Sample>(br#"{"name": "ab", "colour": 1}"#).unwrap_err();
        assert_eq!(codes(err), [("colour".into(), "unknown_field".into())]);
        let err = parse_json::<Sample>(b"[1]").unwrap_err();
        assert_eq!(codes(err), [(".".into(), "invalid_type".into())]);
    }

    #[test]
    fn rules_are_checked_after_parsing() {
        let err = parse_json::<Sample>(br#"{"name": "abcdefgh"}"#).unwrap_err();
        assert_eq!(codes(err), [("name".into(), "length".into())]);
        assert!(parse_json::<Sample>(br#"{"name": "abc", "count": 3}"#).is_ok());
    }

    #[test]
    fn nul_characters_are_refused_with_their_field() {
        let err = parse_json::<Sample>(br#"{"name": "a\u0000b"}"#).unwrap_err();
        assert_eq!(codes(err), [("name".into(), "invalid".into())]);
        let err = parse_json::<Sample>(br#"{"name": "ab", "tags": ["\u0000"]}"#).unwrap_err();
        assert_eq!(codes(err), [("tags[0]".into(), "invalid".into())]);
    }

    #[derive(Debug, Deserialize, Validate)]
    struct Listing {
        #[validate(range(min = 1, max = 200))]
        limit: Option<i64>,
        #[serde(default)]
        status: Vec<String>,
    }

    #[test]
    fn query_strings_are_parsed_with_repeated_keys() {
        let listing: Listing = parse_query("limit=5&status=new&status=closed").unwrap();
        assert_eq!(listing.limit, Some(5));
        assert_eq!(listing.status, ["new", "closed"]);
        assert_eq!(
            codes(parse_query::<Listing>("limit=abc").unwrap_err())[0].0,
            "limit"
        );
        assert_eq!(
            codes(parse_query::<Listing>("limit=0").unwrap_err())[0].1,
            "range"
        );
        assert_eq!(
            codes(parse_query::<Listing>("status=%00").unwrap_err())[0].0,
            "status"
        );
    }

    #[test]
    fn if_match_names_a_version_and_tags_that_cannot_match_name_none_we_have() {
        let parse = |s: &'static str| parse_if_match(Some(&header::HeaderValue::from_static(s)));
        assert_eq!(parse("\"4\"").unwrap(), Some(4));
        assert_eq!(parse("*").unwrap(), None);
        // Compared strongly: weak, foreign or out-of-range tags ask for the absent version 0.
        assert_eq!(parse("W/\"4\"").unwrap(), Some(0));
        assert_eq!(parse("\"abc\"").unwrap(), Some(0));
        assert_eq!(parse("\"2147483648\"").unwrap(), Some(0));
        assert!(parse("4").is_err(), "an entity tag is quoted");
        assert!(parse("\"4").is_err());
        assert_eq!(parse_if_match(None).unwrap(), None);
    }
}

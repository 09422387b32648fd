//! `If-Match`: the version a write expects.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Ready, ready};
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::error::AppError;

/// The version named by `If-Match` (`"3"`); `None` when absent or `*`. A weak tag is refused
/// at once with 412 (RFC 9110 compares `If-Match` strongly, so `W/"3"` never matches), saying
/// why. Any other tag this API could not have issued for a current version (a number out of
/// range) asks for version 0, which no resource has (versions start at 1), so the write is
/// refused as outdated (412).
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

pub(super) fn parse_if_match(value: Option<&header::HeaderValue>) -> Result<Option<i32>, AppError> {
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
    if text.starts_with("W/") {
        return Err(AppError::WeakEntityTag);
    }
    let tag = text;
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
        Ok(version) => version,
        _ => NO_VERSION,
    }))
}

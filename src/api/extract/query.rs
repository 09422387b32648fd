//! Query strings, parsed and validated, repeated keys filling `Vec` fields.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Ready, ready};
use serde::de::DeserializeOwned;
use validator::Validate;

use super::body::deserialize_valid;
use crate::error::AppError;

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
    deserialize_valid(deserializer)
}

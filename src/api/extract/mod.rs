//! Request extractors that turn every kind of bad input into problem+json.
//!
//! actix's own `Json` and `Query` answer plain text and cannot name the failing field, so the
//! handlers use [`JsonBody`] and [`ValidQuery`] instead: malformed JSON is 400 `bad_request`,
//! a missing, mistyped or invalid field is 422 `validation_failed` with the field's path.

mod auth;
mod body;
mod client;
mod if_match;
mod query;

pub use auth::{AuthUser, bearer_token, check_credential};
pub use body::{JsonBody, MAX_BODY_BYTES, clearable, parse_json, read_body, validate};
pub use client::client_address;
pub use if_match::IfMatch;
pub use query::{ValidQuery, parse_query};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;
    use actix_web::http::header;
    use if_match::parse_if_match;
    use serde::Deserialize;
    use validator::Validate;

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
        // Compared strongly: a weak tag is refused as such; foreign or out-of-range tags ask
        // for the absent version 0.
        assert!(matches!(parse("W/\"4\""), Err(AppError::WeakEntityTag)));
        assert_eq!(parse("\"abc\"").unwrap(), Some(0));
        assert_eq!(parse("\"2147483648\"").unwrap(), Some(0));
        assert!(parse("4").is_err(), "an entity tag is quoted");
        assert!(parse("\"4").is_err());
        assert_eq!(parse_if_match(None).unwrap(), None);
    }
}

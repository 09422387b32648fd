//! Field-level validation results shared by every rule that checks input.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::ValidationError;

/// One reason why one input field was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Path of the field in the request (`roles`, `reporter.email`, `limit`).
    #[schema(example = "username")]
    pub field: String,
    /// Stable, machine-readable reason (`required`, `length`, `invalid`, ...).
    #[schema(example = "length")]
    pub code: String,
    /// Human-readable explanation.
    #[schema(example = "must be between 2 and 64 characters")]
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// True when `value` has visible content.
pub fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

/// Checks a required text field: 1–`max` characters with visible content.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if is_blank(value) || value.chars().count() > max {
        Err(FieldError::new(
            field,
            "length",
            format!("must be between 1 and {max} characters and not blank"),
        ))
    } else {
        Ok(())
    }
}

/// Adapts a domain rule to a `validator` custom function.
pub fn rule(result: Result<(), FieldError>) -> Result<(), ValidationError> {
    result.map_err(|error| {
        let mut out = ValidationError::new("invalid");
        out.code = Cow::Owned(error.code);
        out.message = Some(Cow::Owned(error.message));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_needs_visible_content_within_the_limit() {
        assert!(check_text("name", " \t", 200).is_err());
        assert!(check_text("name", "青岛市立医院", 200).is_ok());
        assert!(check_text("name", &"x".repeat(201), 200).is_err());
        assert_eq!(check_text("title", "", 5).unwrap_err().field, "title");
    }
}

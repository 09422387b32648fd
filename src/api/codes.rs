//! Schemas of the string fields the server checks against fixed lists, documented as enums
//! built from those same lists, so that the document says what the server accepts.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::domain::taxonomy::{CAUSE_CODES, SUBCAUSE_CODES};
use crate::store::outbox::EVENT_TYPES;

macro_rules! code_schema {
    ($(#[$doc:meta])* $name:ident, $description:literal, $codes:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .enum_values(Some($codes))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

code_schema!(
    /// An event type a webhook subscribes to.
    WebhookEventType,
    "An event type a webhook subscribes to.",
    EVENT_TYPES
);
code_schema!(
    /// A cause code (产生原因).
    CauseCode,
    "A cause code (产生原因, GET /api/v1/taxonomy).",
    CAUSE_CODES
);
code_schema!(
    /// A sub-cause code.
    SubcauseCode,
    "A sub-cause code; it must belong to the cause (GET /api/v1/taxonomy).",
    SUBCAUSE_CODES
);

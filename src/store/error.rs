//! Why a store operation failed, in the store's own terms.
//!
//! The store speaks of rows, keys and domain refusals, never of HTTP: the api layer turns a
//! [`StoreError`] into its problem+json answer in one place (`From<StoreError> for AppError`).
//! Database errors are classified here, by their SQLSTATE kind and, for the database's own
//! guards, by the constraint name the guard raises with; no code reads a message's text to
//! tell a refusal from a failure, and no table or constraint name leaves this module except
//! into the log.

use crate::domain::coordination::CoordinationError;
use crate::domain::knowledge::KnowledgeError;
use crate::domain::state_machine::TransitionError;
use crate::domain::validation::FieldError;

/// The name the closed-incident guard raises with (migration 000016).
const CLOSED_INCIDENT_GUARD: &str = "incidents_closed_are_final";

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row, or one the caller may not know about.
    #[error("{0}")]
    NotFound(String),
    /// A row with the same unique key exists (the key is logged, never named to the client).
    #[error("a row with the same key exists")]
    AlreadyExists,
    /// The change conflicts with the stored state, for a reason the domain names.
    #[error("conflict ({code}): {detail}")]
    Conflict {
        /// Stable code of SPEC §10, e.g. `incident_closed`.
        code: &'static str,
        /// Explanation for people.
        detail: String,
    },
    /// The client's version is no longer current.
    #[error("version mismatch: current version is {current}")]
    VersionMismatch {
        /// The row's current version.
        current: i32,
    },
    /// A new report duplicates an unresolved incident (SPEC §8).
    #[error("duplicate of incident {duplicate_of}")]
    DuplicateIncident {
        /// The unresolved incident.
        duplicate_of: i64,
    },
    /// Input that breaks a rule only the stored data can check, field by field.
    #[error("invalid: {0:?}")]
    Invalid(Vec<FieldError>),
    /// A credential the store looked up is not valid.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The caller may not do this to what is stored.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The incident workflow refused the command.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The knowledge workflow refused the command.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    /// The coordination workflow refused the command.
    #[error(transparent)]
    Coordination(#[from] CoordinationError),
    /// The database cannot be reached (no connection, or it was lost); retrying later helps.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected database failure; the cause is for the log.
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// `NotFound` for a kind of row and its id.
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        StoreError::NotFound(format!("{what} {id} does not exist"))
    }

    /// A single-field `Invalid`.
    pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Self {
        StoreError::Invalid(vec![FieldError::new(field, code, message)])
    }

    /// `Forbidden` with a reason.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        StoreError::Forbidden(reason.into())
    }

    /// An internal failure with a cause that is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        StoreError::Internal(cause.to_string())
    }

    /// An internal failure caused by `error`, with its whole chain of causes for the log.
    pub fn internal_error(context: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        StoreError::Internal(cause_chain(context, error))
    }
}

/// `context`, `error` and each of its sources, for the log.
pub fn cause_chain(context: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{context}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<diesel::result::Error> for StoreError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => StoreError::NotFound("The resource does not exist.".into()),
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                log::debug!(
                    "unique key taken: {} ({})",
                    info.constraint_name().unwrap_or("unnamed"),
                    info.message()
                );
                StoreError::AlreadyExists
            }
            // The database's own guard against changing a closed incident (SPEC §4.1).
            Error::DatabaseError(DatabaseErrorKind::RestrictViolation, ref info)
                if info.constraint_name() == Some(CLOSED_INCIDENT_GUARD) =>
            {
                StoreError::Conflict {
                    code: "incident_closed",
                    detail: "The incident is closed and can no longer change.".into(),
                }
            }
            // A backend ended by the server (a restart, `pg_terminate_backend`) reports
            // SQLSTATE 57P01, and libpq reports a socket closed under it; Diesel names neither
            // by kind, and gives no SQLSTATE, so only these texts tell them from a failed
            // statement.
            Error::DatabaseError(_, ref info)
                if info.message().contains("terminating connection")
                    || info.message().contains("server closed the connection")
                    || info.message().contains("no connection to the server") =>
            {
                StoreError::Unavailable(err.to_string())
            }
            other => StoreError::internal_error("database", &other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(format!("no database connection: {err}"))
    }
}

impl From<actix_web::error::BlockingError> for StoreError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        StoreError::internal_error("blocking task failed", &err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info {
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            Some("users")
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn database_error(
        kind: diesel::result::DatabaseErrorKind,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> StoreError {
        diesel::result::Error::DatabaseError(
            kind,
            Box::new(Info {
                message,
                constraint,
            }),
        )
        .into()
    }

    #[test]
    fn a_taken_key_is_already_exists_without_its_constraint() {
        use diesel::result::DatabaseErrorKind::UniqueViolation;
        let err = database_error(
            UniqueViolation,
            "duplicate key value violates unique constraint \"users_username_key\"",
            Some("users_username_key"),
        );
        assert!(matches!(err, StoreError::AlreadyExists));
        assert!(!err.to_string().contains("users"));
    }

    #[test]
    fn the_closed_incident_guard_is_known_by_its_name_not_its_text() {
        use diesel::result::DatabaseErrorKind::RestrictViolation;
        let guard = database_error(
            RestrictViolation,
            "anything at all",
            Some(CLOSED_INCIDENT_GUARD),
        );
        assert!(matches!(
            guard,
            StoreError::Conflict {
                code: "incident_closed",
                ..
            }
        ));
        let other = database_error(
            RestrictViolation,
            "incident 7 is closed and can no longer change",
            Some("incident_history_append_only"),
        );
        assert!(matches!(other, StoreError::Internal(_)));
    }
}

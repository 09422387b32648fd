//! The user a checked Bearer credential stands for, read on every request so that revocation,
//! deactivation and role changes apply at once on every server instance.

use chrono::{DateTime, Utc};
use diesel::PgConnection;

use super::users::UserRow;
use crate::error::AppError;

/// A Bearer value checked as far as it can be without the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// An API token, by its digest.
    ApiToken(Vec<u8>),
    /// A JWT for a user, issued under a token generation.
    Jwt {
        /// The user.
        user_id: i64,
        /// The user's token generation at issue time.
        generation: i32,
    },
}

fn invalid_token() -> AppError {
    AppError::Unauthorized("The token is invalid or has expired.".into())
}

impl Credential {
    /// The live user the credential stands for; 401 for none.
    pub fn load(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> Result<UserRow, AppError> {
        match self {
            Credential::ApiToken(digest) => {
                super::api_tokens::authenticate(conn, digest, now)?.ok_or_else(invalid_token)
            }
            Credential::Jwt {
                user_id,
                generation,
            } => {
                let user =
                    super::users::find_optional(conn, *user_id)?.ok_or_else(invalid_token)?;
                if !user.active || *generation != user.token_generation || user.is_api_token() {
                    return Err(invalid_token());
                }
                Ok(user)
            }
        }
    }
}

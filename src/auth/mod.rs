//! Credentials: password hashing and access tokens. No HTTP here; the extractor that uses
//! these lives in `api::extract`.

pub mod api_token;
pub mod confirmation;
pub mod password;
pub mod throttle;
pub mod token;

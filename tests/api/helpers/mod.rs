//! Starts the real server on port 0 against a fresh PostgreSQL database per test.
//!
//! A template database is migrated (and given user `admin`) once per test process; each test
//! clones it with `CREATE DATABASE … TEMPLATE` and drops its clone when the `TestApp` drops.
//! Databases left behind by crashed runs are swept at start-up: their names carry the pid of
//! the process that made them.
//!
//! `databases.rs` makes and drops the databases, `app.rs` starts servers and sends requests,
//! `fixtures.rs` creates what tests start from, `expect.rs` checks answers.

mod app;
mod databases;
mod expect;
mod fixtures;
mod replica;
mod s3;
mod smtp;

pub use app::*;
pub use databases::*;
pub use expect::*;
pub use fixtures::*;
pub use replica::*;
pub use s3::*;
pub use smtp::*;

/// Password of the `admin` user in every test database.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// HMAC key the test servers sign tokens with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// Password given to users the tests create.
pub const USER_PASSWORD: &str = "a sound passphrase";

//! Start-up work on the database: create it, migrate it, make sure someone can log in.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::MigrationHarness;

use super::MIGRATIONS;
use crate::auth::password;
use crate::config::Secret;
use crate::domain::role::Role;

/// Key of the advisory lock that serialises start-up work across server instances.
const BOOTSTRAP_LOCK: i64 = 0x1D_E5C0_0001;

/// A start-up step on the database failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Could not connect.
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's reason.
        reason: String,
    },
    /// A statement failed.
    #[error("{step} failed: {reason}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        reason: String,
    },
}

fn step(step: &'static str) -> impl Fn(diesel::result::Error) -> BootstrapError {
    move |err| BootstrapError::Step {
        step,
        reason: err.to_string(),
    }
}

/// The URL with its password replaced, fit for logs and error messages.
pub fn redact_url(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// Connects to `database_url`.
pub fn connect(database_url: &str) -> Result<PgConnection, BootstrapError> {
    PgConnection::establish(database_url).map_err(|e| BootstrapError::Connect {
        url: redact_url(database_url),
        reason: e.to_string().trim().to_owned(),
    })
}

/// Creates the database named in `database_url` when it does not exist yet.
/// Returns true when it was created.
pub fn ensure_database(database_url: &str) -> Result<bool, BootstrapError> {
    let name =
        crate::config::database_name(database_url).map_err(|reason| BootstrapError::Step {
            step: "reading DATABASE_URL",
            reason,
        })?;
    let mut maintenance_url = url::Url::parse(database_url).expect("checked by database_name");
    maintenance_url.set_path("/postgres");
    let mut conn = match connect(maintenance_url.as_str()) {
        Ok(conn) => conn,
        // Without access to the maintenance database, the target database may still exist:
        // connecting to it below reports the real problem if it does not.
        Err(_) => return Ok(false),
    };

    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[allow(dead_code)]
        one: i32,
    }
    let exists = diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(&name)
        .get_result::<Found>(&mut conn)
        .optional()
        .map_err(step("looking up the database"))?
        .is_some();
    if exists {
        return Ok(false);
    }
    let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match diesel::sql_query(create).execute(&mut conn) {
        Ok(_) => Ok(true),
        // Another instance created it at the same moment.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists") =>
        {
            Ok(false)
        }
        Err(err) => Err(step("creating the database")(err)),
    }
}

/// Runs pending migrations; returns the versions applied.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, BootstrapError> {
    with_bootstrap_lock(conn, |conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(|v| v.to_string()).collect())
            .map_err(|e| BootstrapError::Step {
                step: "running migrations",
                reason: e.to_string(),
            })
    })
}

/// What [`ensure_admin`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// Users exist already; nothing was done.
    UsersExist,
    /// `admin` was created with the configured password.
    Created,
    /// `admin` was created with this generated password, to be shown once.
    CreatedWithGeneratedPassword(String),
}

/// Creates user `admin` (role `admin`) when no user exists, so a new installation can be used.
pub fn ensure_admin(
    conn: &mut PgConnection,
    admin_password: Option<&Secret>,
) -> Result<AdminBootstrap, BootstrapError> {
    use super::schema::users;
    with_bootstrap_lock(conn, |conn| {
        let count: i64 = users::table
            .count()
            .get_result(conn)
            .map_err(step("counting users"))?;
        if count > 0 {
            return Ok(AdminBootstrap::UsersExist);
        }
        let (password, outcome) = match admin_password {
            Some(secret) => (secret.expose().to_owned(), AdminBootstrap::Created),
            None => {
                let generated = password::generate();
                (
                    generated.clone(),
                    AdminBootstrap::CreatedWithGeneratedPassword(generated),
                )
            }
        };
        let hash = password::hash(&password).map_err(|reason| BootstrapError::Step {
            step: "hashing the admin password",
            reason,
        })?;
        diesel::insert_into(users::table)
            .values((
                users::username.eq("admin"),
                users::password_hash.eq(hash),
                users::display_name.eq("Administrator"),
                users::roles.eq(vec![Role::Admin.as_str().to_owned()]),
            ))
            .execute(conn)
            .map_err(step("creating user admin"))?;
        Ok(outcome)
    })
}

fn with_bootstrap_lock<T>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> Result<T, BootstrapError>,
) -> Result<T, BootstrapError> {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(BOOTSTRAP_LOCK)
        .execute(conn)
        .map_err(step("taking the start-up lock"))?;
    let result = work(conn);
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(BOOTSTRAP_LOCK)
        .execute(conn)
        .map_err(step("releasing the start-up lock"));
    let value = result?;
    unlocked?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_read_from_urls() {
        assert_eq!(
            crate::config::database_name("postgres://postgres@127.0.0.1:5432/incident_desk")
                .unwrap(),
            "incident_desk"
        );
        assert_eq!(
            crate::config::database_name("postgresql://u:p@db/desk?sslmode=disable").unwrap(),
            "desk"
        );
        assert!(crate::config::database_name("postgres://127.0.0.1:5432").is_err());
        assert!(crate::config::database_name("mysql://h/db").is_err());
        assert!(crate::config::database_name("not a url").is_err());
    }

    #[test]
    fn passwords_are_hidden_from_messages() {
        let shown = redact_url("postgres://desk:s3cret@db:5432/desk");
        assert!(!shown.contains("s3cret"));
        assert!(shown.contains("desk:***@db"));
    }
}

//! A fresh PostgreSQL database per test: the template migrated once per process, its clones,
//! and the sweep of databases crashed runs left behind.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use diesel::sql_types::Text;
use incident_desk::startup::{self};

use super::*;

/// The test server's URL, without TLS unless `TEST_DATABASE_URL` asks for it.
///
/// libpq's TLS is OpenSSL, whose per-thread state is freed by each thread as it ends. A pool's
/// worker threads end up to 30 s after their test (when their pending reaper run is due), so one
/// may end just as the test process exits and OpenSSL's exit handler frees the same state: the
/// process then aborts with "double free or corruption" after every test has passed. Loopback
/// connections gain nothing from TLS, so the tests do without it.
pub(crate) fn server_url() -> String {
    let mut url = url::Url::parse(
        &std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )
    .expect("TEST_DATABASE_URL is a URL");
    if !url.query_pairs().any(|(name, _)| name == "sslmode") {
        url.query_pairs_mut().append_pair("sslmode", "disable");
    }
    url.to_string()
}

/// URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(&server_url()).expect("a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub(crate) fn maintenance() -> PgConnection {
    PgConnection::establish(&server_url()).expect("connect to PostgreSQL for test databases")
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = Text)]
    datname: String,
}

pub(crate) fn sweep_stale_databases(conn: &mut PgConnection) {
    let names: Vec<DatabaseName> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'idt\\_%'")
            .load(conn)
            .expect("list test databases");
    for DatabaseName { datname } in names {
        let pid = datname
            .split('_')
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
            ))
            .execute(conn);
        }
    }
}

/// The migrated template database of this test process.
pub fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut conn = maintenance();
        sweep_stale_databases(&mut conn);
        let name = format!("idt_{}_template", std::process::id());
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .expect("drop old template");
        // The real start-up path creates, migrates and seeds it; its connections are closed
        // when it returns, so the template can be copied.
        startup::prepare_database(&test_settings(&name, &[])).expect("prepare template database");
        name
    })
}

/// Creates a fresh copy of the template.
pub fn clone_template() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let template = template();
    let name = format!(
        "idt_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut conn = maintenance();
    let mut attempts = 0;
    loop {
        match diesel::sql_query(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        ))
        .execute(&mut conn)
        {
            Ok(_) => return name,
            // Another clone of the same template may be in progress.
            Err(err) if attempts < 20 && err.to_string().contains("being accessed") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(err) => panic!("cloning the template failed: {err}"),
        }
    }
}

/// Drops a test database, closing any connection to it.
pub fn drop_database(name: &str) {
    let mut conn = maintenance();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .expect("drop test database");
}

/// Ends every server connection to the app's database and waits until they are gone, as a
/// database restart does to the pool.
pub fn terminate_connections(database: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        ended: i64,
    }
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url("postgres")).unwrap();
    let ended: Ended = diesel::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS ended \
             FROM pg_stat_activity WHERE datname = $1",
        )
        .bind::<diesel::sql_types::Text, _>(database),
        &mut conn,
    )
    .unwrap();
    ended.ended
}

/// The number `sql` (a query selecting one `bigint` column named `n`) counts in `database`.
pub fn count_in(database: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn: diesel::PgConnection =
        diesel::Connection::establish(&database_url(database)).unwrap();
    let count: Count = diesel::RunQueryDsl::get_result(diesel::sql_query(sql), &mut conn).unwrap();
    count.n
}

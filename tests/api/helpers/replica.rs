//! A real streaming replica for the tests (SPEC §14): a small PostgreSQL cluster of this test
//! process's own (`initdb`), and its replica made with `pg_basebackup -R`, each on a free port.
//! The pair is made once per process and shared; each test creates its own database on it.
//!
//! A cluster of its own, rather than a replica of the machine's server, keeps the copy small
//! (that server may hold the benchmarks' million incidents). Both servers stop when this process
//! ends, however it ends: each runs under a shell that stops it when its standard input, a pipe
//! from this process, closes.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::free_port;

/// The start of the name of each pair's directory; the rest is the pid of its test process.
const PREFIX: &str = "incident-desk-replica-";

/// Removes the directories of pairs whose test process has ended (their servers stopped with
/// it).
fn sweep_stale_pairs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A running primary and its streaming replica.
pub struct ReplicaPair {
    /// The primary's port on 127.0.0.1.
    pub primary_port: u16,
    /// The replica's port on 127.0.0.1.
    pub replica_port: u16,
    // Held for the life of the process: closing a server's input stops it.
    _servers: Mutex<Vec<(Child, ChildStdin)>>,
}

/// The directory of PostgreSQL's server programs (`initdb`, `pg_basebackup`, `postgres`).
fn server_programs() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_basebackup").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Runs `program` with `args`, as user `postgres` when this process is root (PostgreSQL will
/// not run as root).
fn as_server_user(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts `postgres` on `data` and `port`, under a shell that stops it (fast shutdown) when its
/// standard input closes; waits until it accepts connections.
fn start(bin: &Path, data: &Path, port: u16) -> (Child, ChildStdin) {
    let script = format!(
        "'{postgres}' -D '{data}' -p {port} -c listen_addresses=127.0.0.1 \
         -c unix_socket_directories='{data}' -c fsync=off -c full_page_writes=off \
         >'{data}/server.log' 2>&1 & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid",
        postgres = bin.join("postgres").display(),
        data = data.display(),
    );
    let mut command = as_server_user(Path::new("/bin/sh"), &["-c", &script]);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    let stdin = child.stdin.take().expect("its standard input");
    let deadline = Instant::now() + Duration::from_secs(30);
    while PgConnection::establish(&url(port, "postgres")).is_err() {
        assert!(
            Instant::now() < deadline,
            "postgres on port {port} did not start: {}",
            std::fs::read_to_string(data.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, stdin)
}

/// The URL of `database` on the server at `port`.
pub fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}?sslmode=disable")
}

impl ReplicaPair {
    /// The pair of this process, made on first use; `None` (after saying why) where PostgreSQL's
    /// server programs are not installed.
    pub fn shared() -> Option<&'static ReplicaPair> {
        static PAIR: OnceLock<Option<ReplicaPair>> = OnceLock::new();
        PAIR.get_or_init(|| {
            let Some(bin) = server_programs() else {
                eprintln!(
                    "SKIPPED: no PostgreSQL server programs (initdb, pg_basebackup) under \
                     /usr/lib/postgresql; install the postgresql package (.ci/run has them)"
                );
                return None;
            };
            Some(ReplicaPair::make(&bin))
        })
        .as_ref()
    }

    fn make(bin: &Path) -> ReplicaPair {
        sweep_stale_pairs();
        let root = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("the pair's directory");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:postgres").arg(&root);
                    c
                },
                "chown",
            );
        }
        let primary = root.join("primary");
        let replica = root.join("replica");
        let (primary_port, replica_port) = (free_port(), free_port());
        run(
            as_server_user(
                &bin.join("initdb"),
                &[
                    "-D",
                    primary.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
            ),
            "initdb",
        );
        let mut servers = vec![start(bin, &primary, primary_port)];
        run(
            as_server_user(
                &bin.join("pg_basebackup"),
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &primary_port.to_string(),
                    "-U",
                    "postgres",
                    "-D",
                    replica.to_str().unwrap(),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
            ),
            "pg_basebackup",
        );
        servers.push(start(bin, &replica, replica_port));
        ReplicaPair {
            primary_port,
            replica_port,
            _servers: Mutex::new(servers),
        }
    }

    /// The settings of a server on database `name` of this pair, reading from its replica.
    pub fn settings(&self, name: &str) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", url(self.primary_port, name)),
            ("DATABASE_READ_URL", url(self.replica_port, name)),
        ]
    }

    /// A connection to database `name` on the replica.
    pub fn replica(&self, name: &str) -> PgConnection {
        PgConnection::establish(&url(self.replica_port, name)).expect("connect to the replica")
    }

    /// Waits until the replica has replayed everything the primary has written so far.
    pub fn catch_up(&self) {
        #[derive(QueryableByName)]
        struct Lsn {
            #[diesel(sql_type = diesel::sql_types::Text)]
            lsn: String,
        }
        #[derive(QueryableByName)]
        struct Replayed {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            replayed: bool,
        }
        let mut primary = PgConnection::establish(&url(self.primary_port, "postgres")).unwrap();
        let position: Lsn = diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
            .get_result(&mut primary)
            .unwrap();
        let mut replica = self.replica("postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done: Replayed =
                diesel::sql_query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS replayed")
                    .bind::<diesel::sql_types::Text, _>(&position.lsn)
                    .get_result(&mut replica)
                    .unwrap();
            if done.replayed {
                return;
            }
            assert!(Instant::now() < deadline, "the replica did not catch up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pauses (`true`) or resumes replay on the replica: what it serves then stands still, as
    /// on a replica that falls behind.
    pub fn pause_replay(&self, paused: bool) {
        let mut replica = self.replica("postgres");
        let call = if paused {
            "SELECT pg_wal_replay_pause()"
        } else {
            "SELECT pg_wal_replay_resume()"
        };
        diesel::sql_query(call).execute(&mut replica).unwrap();
    }
}

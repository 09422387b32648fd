//! A real S3-compatible server for the tests: `s3s-fs` from crates.io (`.ci/run` installs it
//! with `cargo install s3s-fs --version 0.14.1 --features binary`), started on a free port over
//! a temporary directory, where each object is a file the tests can count.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// The bucket the tests' servers keep files in.
pub const BUCKET: &str = "incident-desk";
const ACCESS_KEY: &str = "desk-test-access";
const SECRET_KEY: &str = "desk-test-secret-key";

/// A running S3-compatible server.
pub struct S3Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    root: PathBuf,
}

/// The `s3s-fs` binary: `S3S_FS`, else on `PATH`, else cargo's install directory.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("s3s-fs"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .expect("HOME or CARGO_HOME");
        home.join("bin").join("s3s-fs")
    })
}

impl S3Server {
    /// Starts a server with an empty bucket [`BUCKET`], and waits until it accepts connections.
    pub fn start() -> S3Server {
        let port = free_port();
        let root = std::env::temp_dir().join(format!(
            "incident-desk-s3-{}-{port}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(root.join(BUCKET)).expect("the bucket's directory");
        let binary = binary();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); install it with `cargo install s3s-fs --version 0.14.1 --features binary` (.ci/run does)",
                    binary.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3Server { child, port, root }
    }

    /// The settings of a server that keeps its files under `prefix` in this store.
    pub fn settings(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("ATTACHMENT_STORE", format!("s3://{BUCKET}/{prefix}")),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The directory of the bucket's objects.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(BUCKET)
    }

    /// The objects under `prefix`, as paths relative to the bucket.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        let mut found = Vec::new();
        collect(
            &self.bucket_dir(),
            &self.bucket_dir().join(prefix),
            &mut found,
        );
        found.sort();
        found
    }
}

fn collect(bucket: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(bucket, &path, found);
        } else if let Ok(relative) = path.strip_prefix(bucket) {
            let name = relative.to_string_lossy().into_owned();
            // s3s-fs keeps its own bookkeeping beside the objects.
            if !name.contains(".metadata") && !name.starts_with('.') && !name.contains("/.") {
                found.push(name);
            }
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

//! A real SMTP server for the tests: Debian's `python3-aiosmtpd` (`.ci/run` installs it),
//! started on a free port with its `Mailbox` handler, which writes each message it accepts to a
//! Maildir that the tests read.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The interpreter the Debian package installs for; `python3` on `PATH` may be another one.
const PYTHON: &str = "/usr/bin/python3";

/// A running SMTP server and the messages it received.
pub struct MailServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

/// One received message, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `Subject`, decoded.
    pub subject: String,
    /// The envelope recipients (`X-RcptTo` of the Mailbox handler).
    pub rcpt_to: String,
    /// `From`.
    pub from: String,
    /// `Message-ID`.
    pub message_id: String,
    /// `In-Reply-To`, when present.
    pub in_reply_to: Option<String>,
    /// `References`, when present.
    pub references: Option<String>,
    /// The text/plain part, decoded.
    pub plain: String,
    /// The text/html part, decoded.
    pub html: String,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl MailServer {
    /// Starts a server on a free port.
    pub fn start() -> MailServer {
        Self::start_on(free_port())
    }

    /// Starts a server on `port`, and waits until it accepts connections.
    pub fn start_on(port: u16) -> MailServer {
        let dir = std::env::temp_dir().join(format!(
            "incident-desk-mail-{}-{port}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        // Made by the handler: a Maildir it finds already there it does not fill in.
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (apt-get install python3-aiosmtpd)");
        let server = MailServer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `SMTP_URL` for the server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in the order they were written.
    pub fn messages(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|entry| {
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, entry.path())
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| parse(&std::fs::read(path).expect("a message file")))
            .collect()
    }

    /// Waits (up to 20 s) until at least `count` messages arrived; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} messages, got {}: {:?}",
                messages.len(),
                messages.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn parse(raw: &[u8]) -> Mail {
    let parsed = mailparse::parse_mail(raw).expect("a parsable message");
    let header = |name: &str| {
        use mailparse::MailHeaderMap;
        parsed.headers.get_first_value(name)
    };
    let mut plain = String::new();
    let mut html = String::new();
    for part in &parsed.subparts {
        match part.ctype.mimetype.as_str() {
            "text/plain" => plain = part.get_body().expect("a plain body"),
            "text/html" => html = part.get_body().expect("an HTML body"),
            _ => {}
        }
    }
    Mail {
        subject: header("Subject").unwrap_or_default(),
        rcpt_to: header("X-RcptTo").unwrap_or_default(),
        from: header("From").unwrap_or_default(),
        message_id: header("Message-ID").unwrap_or_default(),
        in_reply_to: header("In-Reply-To"),
        references: header("References"),
        plain,
        html,
    }
}

//! Typed settings read from the environment (SPEC §11).

use std::fmt;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;

mod values;

pub use values::database_name;
use values::{
    check_confirmation_url, check_smtp_url, is_origin, parse_bool, parse_count, parse_duration_ms,
    parse_duration_secs, parse_size,
};

/// Default `DATABASE_URL`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/incident_desk";
/// Default `MAIL_FROM`.
pub const DEFAULT_MAIL_FROM: &str = "incident-desk@localhost";
/// Default `BIND_ADDR`.
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PostgreSQL connection URL; the database is created when missing.
    pub database_url: String,
    /// How long a caller read from the database may answer later requests with the same
    /// credential (`CREDENTIAL_CACHE_TTL`, default 5 s; 0 reads the caller on every request).
    /// Changes reach every instance at once through `LISTEN`/`NOTIFY`; this only bounds how
    /// long a notification lost to a broken network could go unnoticed.
    pub credential_cache_ttl: Duration,
    /// Connections kept by the pool (`DATABASE_POOL_SIZE`, default 10).
    pub database_pool_size: u32,
    /// How long a request waits for a database connection before answering 503.
    pub database_timeout: Duration,
    /// Address and port to listen on; port 0 picks a free one.
    pub bind_addr: String,
    /// HTTP worker threads (`HTTP_WORKERS`, default: one per core).
    pub http_workers: Option<usize>,
    /// HMAC key for access tokens; when unset a random one is generated at start-up.
    pub jwt_secret: Option<Secret>,
    /// Lifetime of an access token (`JWT_TTL`, default 1 h).
    pub jwt_ttl: Duration,
    /// Password of the `admin` user created when no user exists.
    pub admin_password: Option<Secret>,
    /// Time zone of local times: the upload cut-off and report periods (default Asia/Shanghai).
    pub timezone: Tz,
    /// Local time by which the day's data upload must not be held up (SPEC §4.1).
    pub upload_cutoff: Option<NaiveTime>,
    /// Time after closure within which the follow-up call is due (default 72 h).
    pub follow_up_window: Duration,
    /// Unreached follow-up calls after which an incident counts as followed up (default 3).
    pub follow_up_max_attempts: u32,
    /// Origins allowed by CORS; `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Balancers and proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`,
    /// addresses or CIDR blocks); without them the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often the SLA watcher looks for incidents near or past their deadline (default 30 s).
    pub sla_scan_interval: Duration,
    /// Share of the time to the deadline after which the watcher warns (default 75 %).
    pub sla_warning_percent: u32,
    /// Attempts per webhook delivery before it is given up (default 8).
    pub webhook_max_attempts: u32,
    /// Wait before the first retry; doubled for each further one (default 10 s).
    pub webhook_retry_base: Duration,
    /// How often the delivery worker looks for due deliveries (default 1 s).
    pub webhook_poll_interval: Duration,
    /// Webhook targets may be loopback, private, link-local, unique-local or multicast
    /// addresses (default false: such targets are refused, against server-side request forgery).
    pub webhook_allow_private: bool,
    /// When set, `/metrics` answers only requests bearing it (`Authorization: Bearer`).
    pub metrics_token: Option<Secret>,
    /// A request body that sends nothing for this long is answered 408 (default 30 s).
    pub body_timeout: Duration,
    /// How long the live stream keeps events for clients that resume (default 7 days).
    pub stream_retention: Duration,
    /// How often an idle stream sends a comment, so proxies and clients see it alive (default
    /// 15 s).
    pub stream_heartbeat: Duration,
    /// The mail server reporters' e-mail goes through (`SMTP_URL`: `smtp://host:port`,
    /// `smtp://host:port?tls=required` for STARTTLS, `smtps://user:pass@host:465`); without it,
    /// messages are recorded as `skipped`.
    pub smtp_url: Option<Secret>,
    /// The sender of that e-mail (`MAIL_FROM`, default `incident-desk@localhost`); its domain
    /// also names the messages (`Message-ID`).
    pub mail_from: String,
    /// The frontend page where a reporter confirms or rejects a resolution, with `{token}` where
    /// the token goes (`CONFIRMATION_URL`); without it, messages ask for a reply or a call.
    pub confirmation_url: Option<String>,
    /// How long a resolution may wait for the reporter's answer before each reminder (default
    /// 24 h; at most three reminders).
    pub confirmation_reminder_after: Duration,
    /// Attempts per message before it is given up as `failed` (default 8).
    pub notification_max_attempts: u32,
    /// Wait before a message is tried again; doubled for each further attempt (default 30 s).
    pub notification_retry_base: Duration,
    /// The largest file accepted, in bytes (`MAX_ATTACHMENT_SIZE`, default `25MB`).
    pub max_attachment_size: u64,
    /// How long an upload may take before the bytes it left are treated as abandoned and
    /// removed (`ATTACHMENT_UPLOAD_TIMEOUT`, default 1 h): what a crashed server or a dropped
    /// upload leaves behind.
    pub attachment_upload_timeout: Duration,
    /// How often bytes no attachment names are removed (`ATTACHMENT_SWEEP_INTERVAL`, default
    /// 5 min).
    pub attachment_sweep_interval: Duration,
    /// Where attachment bytes are kept (`ATTACHMENT_STORE`, default `postgres`).
    pub attachment_store: AttachmentStore,
    /// A streaming replica for reads that may lag (`DATABASE_READ_URL`, SPEC §14): KPIs,
    /// statistics, recurring defects, suggestions, search and history.
    pub database_read_url: Option<String>,
    /// How long after a caller's write its reads stay on the primary
    /// (`READ_AFTER_WRITE_WINDOW`, default 5 s).
    pub read_after_write_window: Duration,
    /// A replica further behind than this is skipped (`REPLICA_MAX_LAG`, default 10 s).
    pub replica_max_lag: Duration,
}

/// Where attachment bytes are kept (SPEC §13); the records are in PostgreSQL either way.
#[derive(Debug, Clone, PartialEq)]
pub enum AttachmentStore {
    /// In the database, beside the records (`postgres`).
    Postgres,
    /// In an S3-compatible object store (`s3://bucket/prefix`).
    S3(S3Store),
}

/// An S3-compatible store: `ATTACHMENT_STORE=s3://bucket/prefix` and the usual `AWS_*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Store {
    /// The bucket.
    pub bucket: String,
    /// The key prefix objects go under (may be empty).
    pub prefix: String,
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`): the service's address, for stores other than AWS
    /// (MinIO, Ceph, s3s); AWS itself when unset.
    pub endpoint: Option<String>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`), default `us-east-1`.
    pub region: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<Secret>,
}

/// Reads `ATTACHMENT_STORE`: `postgres`, or `s3://bucket` with an optional key prefix.
fn parse_attachment_store(
    raw: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<AttachmentStore, String> {
    if raw == "postgres" {
        return Ok(AttachmentStore::Postgres);
    }
    let url = url::Url::parse(raw)
        .map_err(|_| format!("`{raw}` is neither `postgres` nor an `s3://bucket/prefix` URL"))?;
    let bucket = url.host_str().unwrap_or_default();
    if url.scheme() != "s3" || bucket.is_empty() || url.query().is_some() {
        return Err(format!(
            "`{raw}` is neither `postgres` nor an `s3://bucket/prefix` URL"
        ));
    }
    let endpoint = get("AWS_ENDPOINT_URL").or_else(|| get("AWS_ENDPOINT"));
    if let Some(endpoint) = &endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return Err(format!(
            "AWS_ENDPOINT_URL `{endpoint}` is not an http(s) URL"
        ));
    }
    Ok(AttachmentStore::S3(S3Store {
        bucket: bucket.to_owned(),
        prefix: url.path().trim_matches('/').to_owned(),
        endpoint,
        region: get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned()),
        access_key_id: get("AWS_ACCESS_KEY_ID"),
        secret_access_key: get("AWS_SECRET_ACCESS_KEY").map(Secret::new),
        session_token: get("AWS_SESSION_TOKEN").map(Secret::new),
    }))
}

/// One environment variable that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The variable's name.
    pub var: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Settings could not be read; lists every bad variable at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", .0.iter().map(|i| format!("{}: {}", i.var, i.problem)).collect::<Vec<_>>().join("; "))]
pub struct ConfigError(pub Vec<ConfigIssue>);

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut issues = Vec::new();
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut parse =
            |var: &'static str, default, f: &dyn Fn(&str) -> Result<_, String>| match get(var) {
                None => default,
                Some(raw) => f(&raw).unwrap_or_else(|problem| {
                    issues.push(ConfigIssue { var, problem });
                    default
                }),
            };

        let pool_size = parse("DATABASE_POOL_SIZE", 10, &|raw| parse_count(raw, 1, 1000));
        let db_timeout = parse("DATABASE_TIMEOUT_SECS", 3, &|raw| parse_count(raw, 1, 60));
        let workers = parse("HTTP_WORKERS", 0, &|raw| parse_count(raw, 1, 512));
        let jwt_ttl_secs = parse("JWT_TTL", 3600, &|raw| {
            parse_duration_secs(raw, 60, 7 * 86_400)
        });
        let follow_up_secs = parse("FOLLOW_UP_WINDOW", 72 * 3600, &|raw| {
            parse_duration_secs(raw, 60, 366 * 86_400)
        });
        let sla_scan_ms = parse("SLA_SCAN_INTERVAL_SECS", 30_000, &|raw| {
            parse_duration_ms(raw, 100, 86_400_000)
        });
        let sla_warning_percent = parse("SLA_WARNING_PERCENT", 75, &|raw| parse_count(raw, 1, 99));
        let webhook_max_attempts = parse("WEBHOOK_MAX_ATTEMPTS", 8, &|raw| parse_count(raw, 1, 50));
        let follow_up_max_attempts =
            parse("FOLLOW_UP_MAX_ATTEMPTS", 3, &|raw| parse_count(raw, 1, 20));
        let webhook_retry_ms = parse("WEBHOOK_RETRY_BASE", 10_000, &|raw| {
            parse_duration_ms(raw, 10, 86_400_000)
        });
        let webhook_poll_ms = parse("WEBHOOK_POLL_INTERVAL", 1_000, &|raw| {
            parse_duration_ms(raw, 10, 60_000)
        });
        let body_timeout_secs = parse("BODY_TIMEOUT_SECS", 30, &|raw| parse_count(raw, 1, 3600));
        let stream_retention_secs = parse("STREAM_RETENTION", 7 * 86_400, &|raw| {
            parse_duration_secs(raw, 60, 366 * 86_400)
        });
        let stream_heartbeat_ms = parse("STREAM_HEARTBEAT", 15_000, &|raw| {
            parse_duration_ms(raw, 100, 300_000)
        });
        let reminder_secs = parse("CONFIRMATION_REMINDER_AFTER", 24 * 3600, &|raw| {
            parse_duration_secs(raw, 1, 30 * 86_400)
        });
        let notification_max_attempts = parse("NOTIFICATION_MAX_ATTEMPTS", 8, &|raw| {
            parse_count(raw, 1, 50)
        });
        let notification_retry_ms = parse("NOTIFICATION_RETRY_BASE", 30_000, &|raw| {
            parse_duration_ms(raw, 10, 86_400_000)
        });
        let max_attachment_size = parse("MAX_ATTACHMENT_SIZE", 25_000_000, &|raw| {
            parse_size(raw, 1, 5_000_000_000)
        });
        let attachment_upload_timeout_ms = parse("ATTACHMENT_UPLOAD_TIMEOUT", 3_600_000, &|raw| {
            parse_duration_ms(raw, 0, 7 * 86_400_000)
        });
        let attachment_sweep_ms = parse("ATTACHMENT_SWEEP_INTERVAL", 300_000, &|raw| {
            parse_duration_ms(raw, 10, 86_400_000)
        });
        let read_after_write_ms = parse("READ_AFTER_WRITE_WINDOW", 5_000, &|raw| {
            parse_duration_ms(raw, 0, 3_600_000)
        });
        let replica_max_lag_ms = parse("REPLICA_MAX_LAG", 10_000, &|raw| {
            parse_duration_ms(raw, 100, 86_400_000)
        });
        let credential_cache_ms = parse("CREDENTIAL_CACHE_TTL", 5_000, &|raw| {
            parse_duration_ms(raw, 0, 3_600_000)
        });

        let attachment_store = match get("ATTACHMENT_STORE") {
            None => AttachmentStore::Postgres,
            Some(raw) => parse_attachment_store(raw.trim(), &get).unwrap_or_else(|problem| {
                issues.push(ConfigIssue {
                    var: "ATTACHMENT_STORE",
                    problem,
                });
                AttachmentStore::Postgres
            }),
        };
        let webhook_allow_private = match get("WEBHOOK_ALLOW_PRIVATE") {
            None => false,
            Some(raw) => parse_bool(&raw).unwrap_or_else(|problem| {
                issues.push(ConfigIssue {
                    var: "WEBHOOK_ALLOW_PRIVATE",
                    problem,
                });
                false
            }),
        };
        let timezone = match get("TIMEZONE") {
            None => chrono_tz::Asia::Shanghai,
            Some(raw) => raw.parse::<Tz>().unwrap_or_else(|_| {
                issues.push(ConfigIssue {
                    var: "TIMEZONE",
                    problem: format!("`{raw}` is not an IANA time zone name (e.g. Asia/Shanghai)"),
                });
                chrono_tz::Asia::Shanghai
            }),
        };
        let upload_cutoff = get("UPLOAD_CUTOFF").and_then(|raw| {
            NaiveTime::parse_from_str(&raw, "%H:%M")
                .map_err(|_| {
                    issues.push(ConfigIssue {
                        var: "UPLOAD_CUTOFF",
                        problem: format!("`{raw}` is not a local time HH:MM (e.g. 17:00)"),
                    })
                })
                .ok()
        });
        let jwt_secret = get("JWT_SECRET").and_then(|raw| {
            if raw.len() < 32 {
                issues.push(ConfigIssue {
                    var: "JWT_SECRET",
                    problem: "must be at least 32 characters long".into(),
                });
                None
            } else {
                Some(Secret::new(raw))
            }
        });
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if let Err(problem) = database_name(&database_url) {
            issues.push(ConfigIssue {
                var: "DATABASE_URL",
                problem,
            });
        }
        let database_read_url = get("DATABASE_READ_URL").filter(|url| !url.trim().is_empty());
        if let Some(Err(problem)) = database_read_url.as_deref().map(database_name) {
            issues.push(ConfigIssue {
                var: "DATABASE_READ_URL",
                problem,
            });
        }
        let bind_addr = get("BIND_ADDR").unwrap_or_else(|| DEFAULT_BIND_ADDR.to_owned());
        if bind_addr.parse::<std::net::SocketAddr>().is_err() {
            issues.push(ConfigIssue {
                var: "BIND_ADDR",
                problem: format!("`{bind_addr}` is not an address:port such as 127.0.0.1:8080"),
            });
        }

        let cors_allowed_origins: Vec<String> = get("CORS_ALLOWED_ORIGINS")
            .map(|raw| {
                raw.split(',')
                    .map(|origin| origin.trim().trim_end_matches('/').to_owned())
                    .filter(|origin| !origin.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for origin in &cors_allowed_origins {
            if origin != "*" && !is_origin(origin) {
                issues.push(ConfigIssue {
                    var: "CORS_ALLOWED_ORIGINS",
                    problem: format!(
                        "`{origin}` is not an origin such as https://desk.example.com or *"
                    ),
                });
            }
        }

        let mut trusted_proxies = Vec::new();
        for raw in get("TRUSTED_PROXIES").iter().flat_map(|raw| raw.split(',')) {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            match raw
                .parse::<ipnet::IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            {
                Ok(net) => trusted_proxies.push(net),
                Err(_) => issues.push(ConfigIssue {
                    var: "TRUSTED_PROXIES",
                    problem: format!(
                        "`{raw}` is not an address or CIDR block such as 10.0.0.5 or 10.0.0.0/24"
                    ),
                }),
            }
        }

        let smtp_url = get("SMTP_URL");
        if let Some(raw) = &smtp_url
            && let Err(problem) = check_smtp_url(raw)
        {
            issues.push(ConfigIssue {
                var: "SMTP_URL",
                problem,
            });
        }
        let mail_from = get("MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            issues.push(ConfigIssue {
                var: "MAIL_FROM",
                problem: format!(
                    "`{mail_from}` is not a mailbox such as desk@example.com or 服务台 <desk@example.com>"
                ),
            });
        }
        let confirmation_url = get("CONFIRMATION_URL");
        if let Some(raw) = &confirmation_url
            && let Err(problem) = check_confirmation_url(raw)
        {
            issues.push(ConfigIssue {
                var: "CONFIRMATION_URL",
                problem,
            });
        }

        let admin_password = get("ADMIN_PASSWORD");
        if let Some(Err(problem)) = admin_password
            .as_deref()
            .map(|password| crate::domain::user::check_password_of("admin", password))
        {
            issues.push(ConfigIssue {
                var: "ADMIN_PASSWORD",
                problem: format!("the password {}", problem.message),
            });
        }

        if !issues.is_empty() {
            return Err(ConfigError(issues));
        }
        Ok(Settings {
            database_url,
            database_pool_size: pool_size as u32,
            database_timeout: Duration::from_secs(db_timeout),
            bind_addr,
            http_workers: (workers > 0).then_some(workers as usize),
            jwt_secret,
            jwt_ttl: Duration::from_secs(jwt_ttl_secs),
            admin_password: admin_password.map(Secret::new),
            timezone,
            upload_cutoff,
            follow_up_window: Duration::from_secs(follow_up_secs),
            follow_up_max_attempts: follow_up_max_attempts as u32,
            cors_allowed_origins,
            trusted_proxies,
            sla_scan_interval: Duration::from_millis(sla_scan_ms),
            credential_cache_ttl: Duration::from_millis(credential_cache_ms),
            sla_warning_percent: sla_warning_percent as u32,
            webhook_max_attempts: webhook_max_attempts as u32,
            webhook_retry_base: Duration::from_millis(webhook_retry_ms),
            webhook_poll_interval: Duration::from_millis(webhook_poll_ms),
            webhook_allow_private,
            metrics_token: get("METRICS_TOKEN").map(Secret::new),
            body_timeout: Duration::from_secs(body_timeout_secs),
            stream_retention: Duration::from_secs(stream_retention_secs),
            stream_heartbeat: Duration::from_millis(stream_heartbeat_ms),
            smtp_url: smtp_url.map(Secret::new),
            mail_from,
            confirmation_url,
            confirmation_reminder_after: Duration::from_secs(reminder_secs),
            notification_max_attempts: notification_max_attempts as u32,
            notification_retry_base: Duration::from_millis(notification_retry_ms),
            max_attachment_size,
            attachment_upload_timeout: Duration::from_millis(attachment_upload_timeout_ms),
            attachment_sweep_interval: Duration::from_millis(attachment_sweep_ms),
            attachment_store,
            database_read_url,
            read_after_write_window: Duration::from_millis(read_after_write_ms),
            replica_max_lag: Duration::from_millis(replica_max_lag_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.bind_addr, DEFAULT_BIND_ADDR);
        assert_eq!(s.jwt_ttl, Duration::from_secs(3600));
        assert_eq!(s.follow_up_window, Duration::from_secs(72 * 3600));
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
        assert!(s.upload_cutoff.is_none());
        assert!(s.jwt_secret.is_none());
        assert!(s.cors_allowed_origins.is_empty());
        assert_eq!(s.sla_scan_interval, Duration::from_secs(30));
        assert_eq!(s.sla_warning_percent, 75);
        assert_eq!(s.webhook_max_attempts, 8);
        assert_eq!(s.follow_up_max_attempts, 3);
    }

    #[test]
    fn replica_settings_default_to_none_five_and_ten_seconds() {
        let s = settings(&[]).unwrap();
        assert!(s.database_read_url.is_none());
        assert_eq!(s.read_after_write_window, Duration::from_secs(5));
        assert_eq!(s.replica_max_lag, Duration::from_secs(10));
        let s = settings(&[
            (
                "DATABASE_READ_URL",
                "postgres://reader@replica:5433/incident_desk",
            ),
            ("READ_AFTER_WRITE_WINDOW", "2s"),
            ("REPLICA_MAX_LAG", "500ms"),
        ])
        .unwrap();
        assert_eq!(
            s.database_read_url.as_deref(),
            Some("postgres://reader@replica:5433/incident_desk")
        );
        assert_eq!(s.read_after_write_window, Duration::from_secs(2));
        assert_eq!(s.replica_max_lag, Duration::from_millis(500));
        let bad = settings(&[("DATABASE_READ_URL", "replica:5433")]).unwrap_err();
        assert_eq!(bad.0[0].var, "DATABASE_READ_URL");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        assert!(settings(&[]).unwrap().trusted_proxies.is_empty());
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16,::1")]).unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]);
        let bad = settings(&[("TRUSTED_PROXIES", "10.0.0.5,balancer")]).unwrap_err();
        assert_eq!(bad.0[0].var, "TRUSTED_PROXIES");
    }

    #[test]
    fn mail_settings_are_checked() {
        let s = settings(&[]).unwrap();
        assert!(s.smtp_url.is_none());
        assert_eq!(s.mail_from, DEFAULT_MAIL_FROM);
        assert_eq!(
            s.confirmation_reminder_after,
            Duration::from_secs(24 * 3600)
        );
        let s = settings(&[
            ("SMTP_URL", "smtps://desk:secret@mail.example:465"),
            ("MAIL_FROM", "服务台 <desk@hospital.example>"),
            (
                "CONFIRMATION_URL",
                "https://desk.example/confirm?token={token}",
            ),
            ("CONFIRMATION_REMINDER_AFTER", "12h"),
        ])
        .unwrap();
        assert!(s.smtp_url.is_some());
        assert_eq!(
            s.confirmation_reminder_after,
            Duration::from_secs(12 * 3600)
        );
        let bad = settings(&[
            ("SMTP_URL", "http://mail.example"),
            ("MAIL_FROM", "not a mailbox"),
            ("CONFIRMATION_URL", "https://desk.example/confirm"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = bad.0.iter().map(|issue| issue.var).collect();
        assert_eq!(vars, ["SMTP_URL", "MAIL_FROM", "CONFIRMATION_URL"]);
    }

    #[test]
    fn worker_intervals_accept_seconds_or_durations() {
        let s = settings(&[
            ("SLA_SCAN_INTERVAL_SECS", "5"),
            ("WEBHOOK_RETRY_BASE", "250ms"),
            ("WEBHOOK_POLL_INTERVAL", "100ms"),
        ])
        .unwrap();
        assert_eq!(s.sla_scan_interval, Duration::from_secs(5));
        assert_eq!(s.webhook_retry_base, Duration::from_millis(250));
        assert!(settings(&[("SLA_WARNING_PERCENT", "100")]).is_err());
    }

    #[test]
    fn values_are_parsed() {
        let s = settings(&[
            ("TIMEZONE", "Europe/Berlin"),
            ("UPLOAD_CUTOFF", "17:00"),
            ("FOLLOW_UP_WINDOW", "48h"),
            ("JWT_TTL", "900"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://desk.example.com/, http://localhost:3000",
            ),
            ("HTTP_WORKERS", "1"),
        ])
        .unwrap();
        assert_eq!(s.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(s.upload_cutoff, NaiveTime::from_hms_opt(17, 0, 0));
        assert_eq!(s.follow_up_window, Duration::from_secs(48 * 3600));
        assert_eq!(s.jwt_ttl, Duration::from_secs(900));
        assert_eq!(
            s.cors_allowed_origins,
            vec!["https://desk.example.com", "http://localhost:3000"]
        );
        assert_eq!(s.http_workers, Some(1));
    }

    #[test]
    fn every_bad_variable_is_reported() {
        let err = settings(&[
            ("TIMEZONE", "Mars/Olympus"),
            ("UPLOAD_CUTOFF", "5pm"),
            ("JWT_SECRET", "short"),
            ("BIND_ADDR", "localhost"),
            ("DATABASE_POOL_SIZE", "0"),
        ])
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|i| i.var).collect();
        assert_eq!(
            vars,
            [
                "DATABASE_POOL_SIZE",
                "TIMEZONE",
                "UPLOAD_CUTOFF",
                "JWT_SECRET",
                "BIND_ADDR"
            ]
        );
        assert!(err.to_string().contains("Mars/Olympus"));
    }

    #[test]
    fn attachment_settings_read_sizes_and_refuse_stores_not_built_in() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.max_attachment_size, 25_000_000);
        assert_eq!(s.attachment_upload_timeout, Duration::from_secs(3600));
        let s = settings(&[("MAX_ATTACHMENT_SIZE", "512KiB")]).unwrap();
        assert_eq!(s.max_attachment_size, 512 * 1024);
        let s = settings(&[
            ("MAX_ATTACHMENT_SIZE", "1048576"),
            ("ATTACHMENT_STORE", "postgres"),
        ])
        .unwrap();
        assert_eq!(s.max_attachment_size, 1_048_576);
        let s = settings(&[
            ("ATTACHMENT_STORE", "s3://desk-files/incident-desk/prod/"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8014"),
            ("AWS_ACCESS_KEY_ID", "desk"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ])
        .unwrap();
        let AttachmentStore::S3(store) = s.attachment_store else {
            panic!("an S3 store")
        };
        assert_eq!(store.bucket, "desk-files");
        assert_eq!(store.prefix, "incident-desk/prod");
        assert_eq!(store.region, "us-east-1");
        assert_eq!(store.endpoint.as_deref(), Some("http://127.0.0.1:8014"));
        for (var, bad) in [
            ("MAX_ATTACHMENT_SIZE", "lots"),
            ("MAX_ATTACHMENT_SIZE", "0"),
            ("ATTACHMENT_STORE", "s3:///prefix"),
            ("ATTACHMENT_STORE", "gs://bucket"),
            ("ATTACHMENT_STORE", "disk"),
        ] {
            let err = settings(&[(var, bad)]).unwrap_err();
            assert_eq!(err.0[0].var, var, "{bad}");
        }
    }

    #[test]
    fn cors_origins_must_be_origins() {
        for bad in [
            "desk.example.com",
            "https://desk.example.com/app",
            "ftp://x.org",
            "https://",
        ] {
            let err = settings(&[("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert_eq!(err.0[0].var, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
        for good in ["*", "http://localhost:3000", "https://desk.example.com/"] {
            assert!(
                settings(&[("CORS_ALLOWED_ORIGINS", good)]).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn a_common_admin_password_is_refused_at_start() {
        for weak in ["password", "qwertyuiop", "admin1234", "ADMIN1234"] {
            let err = settings(&[("ADMIN_PASSWORD", weak)]).unwrap_err();
            assert_eq!(err.0[0].var, "ADMIN_PASSWORD", "{weak}");
        }
        assert!(settings(&[("ADMIN_PASSWORD", "收费窗口 夜班 2026 春")]).is_ok());
    }

    #[test]
    fn hardening_settings_have_safe_defaults() {
        let s = settings(&[]).unwrap();
        assert!(!s.webhook_allow_private);
        assert!(s.metrics_token.is_none());
        assert_eq!(s.body_timeout, Duration::from_secs(30));
        let s = settings(&[
            ("WEBHOOK_ALLOW_PRIVATE", "true"),
            ("METRICS_TOKEN", "scrape-token"),
            ("BODY_TIMEOUT_SECS", "5"),
        ])
        .unwrap();
        assert!(s.webhook_allow_private);
        assert_eq!(s.metrics_token.unwrap().expose(), "scrape-token");
        assert_eq!(s.body_timeout, Duration::from_secs(5));
        assert!(settings(&[("WEBHOOK_ALLOW_PRIVATE", "maybe")]).is_err());
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = settings(&[
            ("JWT_SECRET", &"k".repeat(40)),
            ("ADMIN_PASSWORD", "hunter2hunter2"),
        ])
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("kkkk"));
    }
}

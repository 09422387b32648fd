//! Logging set-up, request ids and Prometheus metrics.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::store::DbPool;

/// Header carrying the request id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where actix reports the requests it could not parse (invalid headers, garbage instead of
/// HTTP) before answering them 400.
const UNPARSABLE_REQUESTS: &str = "actix_http::h1::dispatcher";

/// `env_logger`, except that actix's reports of requests it could not parse are logged at
/// `debug`: they are the client's error, answered with 400, and at `error` they would page
/// whoever watches this service's errors.
struct Logger(env_logger::Logger);

impl Logger {
    fn demotes(record: &log::Metadata) -> bool {
        record.target().starts_with(UNPARSABLE_REQUESTS) && record.level() < log::Level::Debug
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        if Self::demotes(metadata) {
            let demoted = log::Metadata::builder()
                .level(log::Level::Debug)
                .target(metadata.target())
                .build();
            return self.0.enabled(&demoted);
        }
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if Self::demotes(record.metadata()) {
            self.0.log(
                &log::Record::builder()
                    .args(*record.args())
                    .level(log::Level::Debug)
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        } else {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Starts logging at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let max_level = logger.filter();
    if log::set_boxed_logger(Box::new(Logger(logger))).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Gives every request an id: the caller's `X-Request-Id` when it is sane, a new UUID
/// otherwise. The id is put on the request (so the access log shows it) and on the response.
pub async fn request_id(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let supplied = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .and_then(|v| HeaderValue::from_str(v).ok());
    let id = supplied.unwrap_or_else(|| {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .expect("a UUID is a valid header value")
    });
    req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    let mut response = next.call(req).await?;
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    Ok(response)
}

/// The service's Prometheus metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    webhook_attempts: IntCounterVec,
    events: IntCounterVec,
    open_incidents: IntGaugeVec,
    escalations: IntGaugeVec,
    deliveries: IntGaugeVec,
    notifications: IntGaugeVec,
    sign_in_failures: IntCounter,
    sign_in_locks: IntCounterVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("incident_desk".into()), None).expect("valid prefix");
        let labels = &["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            labels,
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer HTTP requests",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            labels,
        )
        .expect("valid metric");
        let pool_connections = IntGauge::new("db_pool_connections", "Open database connections")
            .expect("valid metric");
        let pool_idle = IntGauge::new("db_pool_idle_connections", "Idle database connections")
            .expect("valid metric");
        let pool_max = IntGauge::new("db_pool_max_connections", "Size limit of the database pool")
            .expect("valid metric");
        let webhook_attempts = IntCounterVec::new(
            Opts::new(
                "webhook_delivery_attempts_total",
                "Webhook delivery attempts by outcome (this instance)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let events = IntCounterVec::new(
            Opts::new(
                "monitoring_events_total",
                "Monitoring events answered, by result and source (this instance)",
            ),
            &["result", "source"],
        )
        .expect("valid metric");
        let open_incidents = IntGaugeVec::new(
            Opts::new("open_incidents", "Incidents not closed, by level and tier"),
            &["level", "tier"],
        )
        .expect("valid metric");
        let escalations = IntGaugeVec::new(
            Opts::new("escalations", "Escalations recorded, by kind and trigger"),
            &["kind", "trigger"],
        )
        .expect("valid metric");
        let deliveries = IntGaugeVec::new(
            Opts::new("webhook_deliveries", "Webhook deliveries by status"),
            &["status"],
        )
        .expect("valid metric");
        let notifications = IntGaugeVec::new(
            Opts::new(
                "notifications",
                "E-mail to reporters by kind and status (pending, sent, failed, skipped)",
            ),
            &["kind", "status"],
        )
        .expect("valid metric");
        let sign_in_failures = IntCounter::new(
            "sign_in_failures_total",
            "Failed sign-ins (wrong username or password)",
        )
        .expect("valid metric");
        let sign_in_locks = IntCounterVec::new(
            Opts::new(
                "sign_in_locks_total",
                "Sign-in locks: a username or address reached its failure limit",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(sign_in_failures.clone()),
            Box::new(sign_in_locks.clone()),
            Box::new(webhook_attempts.clone()),
            Box::new(events.clone()),
            Box::new(open_incidents.clone()),
            Box::new(escalations.clone()),
            Box::new(deliveries.clone()),
            Box::new(notifications.clone()),
            Box::new(latency.clone()),
            Box::new(pool_connections.clone()),
            Box::new(pool_idle.clone()),
            Box::new(pool_max.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pool_max,
            webhook_attempts,
            events,
            open_incidents,
            escalations,
            deliveries,
            notifications,
            sign_in_failures,
            sign_in_locks,
        }
    }

    /// Counts a failed sign-in, and the locks it completed (`user`, `address`).
    pub fn sign_in_failed(&self, locked: &[crate::auth::throttle::KeyKind]) {
        self.sign_in_failures.inc();
        for kind in locked {
            self.sign_in_locks.with_label_values(&[kind.as_str()]).inc();
        }
    }

    /// Counts one webhook delivery attempt (`delivered`, `retrying`, `given_up`).
    pub fn webhook_attempt(&self, outcome: &str) {
        self.webhook_attempts.with_label_values(&[outcome]).inc();
    }

    /// Counts one monitoring event by what it did (`created`, ..., `invalid`, `refused`) and
    /// where it came from (`events` for the PagerDuty endpoint, `alertmanager`).
    pub fn monitoring_event(&self, result: &str, source: &str) {
        self.events.with_label_values(&[result, source]).inc();
    }

    /// Sets the gauges read from the database (shared by all instances).
    pub fn set_database_gauges(&self, counts: &crate::store::metrics_counts::Counts) {
        self.open_incidents.reset();
        for (level, tier, n) in &counts.open_incidents {
            self.open_incidents
                .with_label_values(&[level.as_str(), tier.as_str()])
                .set(*n);
        }
        self.escalations.reset();
        for (kind, trigger, n) in &counts.escalations {
            self.escalations
                .with_label_values(&[kind.as_str(), trigger.as_str()])
                .set(*n);
        }
        self.deliveries.reset();
        for (status, n) in &counts.deliveries {
            self.deliveries
                .with_label_values(&[status.as_str()])
                .set(*n);
        }
        self.notifications.reset();
        for (kind, status, n) in &counts.notifications {
            self.notifications
                .with_label_values(&[kind.as_str(), status.as_str()])
                .set(*n);
        }
    }

    /// Counts one answered request. Every label comes from a closed set, so no request can add
    /// series of its own: `route` is the matched pattern (or `unmatched`), `method` a known
    /// method (or `other`), `status` the class (`2xx`, ...).
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = [method_label(method), route, status_class(status)];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The text exposition, with pool gauges read now.
    pub fn render(&self, pool: &DbPool) -> String {
        let state = pool.state();
        self.pool_connections.set(i64::from(state.connections));
        self.pool_idle.set(i64::from(state.idle_connections));
        self.pool_max.set(i64::from(pool.max_size()));
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            log::error!("encoding metrics failed: {err}");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// The method as a metric label: one of the methods HTTP defines, or `other`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

/// The status as a metric label: its class.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware that records every request in [`Metrics`].
pub async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<Metrics>>()
        .map(|metrics| metrics.clone().into_inner());
    let method = req.method().to_string();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        metrics.observe(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod logging_tests {
    use log::Log;

    use super::*;

    fn logger(filters: &str) -> Logger {
        Logger(env_logger::Builder::new().parse_filters(filters).build())
    }

    fn error_of(target: &str) -> log::Metadata<'_> {
        log::Metadata::builder()
            .level(log::Level::Error)
            .target(target)
            .build()
    }

    #[test]
    fn metric_labels_come_from_closed_sets() {
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("FOO"), "other");
        assert_eq!(method_label("get"), "other");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }

    #[test]
    fn unparsable_requests_are_logged_at_debug_not_error() {
        let info = logger("info");
        assert!(!info.enabled(&error_of("actix_http::h1::dispatcher")));
        assert!(info.enabled(&error_of("actix_http::h2")));
        assert!(info.enabled(&error_of("incident_desk::store")));
        let debugging = logger("info,actix_http=debug");
        assert!(debugging.enabled(&error_of("actix_http::h1::dispatcher")));
    }
}

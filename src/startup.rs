//! Builds the application: database bootstrap, pool, middleware, routes, listener.
//! `main` and the integration tests start the server the same way.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::{ResourceDef, Server};
use actix_web::http::header;
use actix_web::middleware::{Logger, from_fn};
use actix_web::web::{self, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use rand::Rng;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::api;
use crate::auth::confirmation::ConfirmationKeys;
use crate::auth::token::TokenKeys;
use crate::config::{AttachmentStore, Settings};
use crate::domain::clock::Clock;
use crate::domain::taxonomy::Taxonomy;
use crate::error::AppError;
use crate::intake::Intake;
use crate::live::LiveStream;
use crate::state::AppState;
use crate::store::bootstrap::{self, AdminBootstrap, BootstrapError};
use crate::store::credentials::CredentialCache;
use crate::store::incident_writes::WriteSettings;
use crate::store::replica::Replica;
use crate::telemetry::{self, Metrics};
use crate::{openapi, store};

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be prepared.
    #[error(transparent)]
    Database(#[from] BootstrapError),
    /// Loading reference data failed.
    #[error("loading reference data failed: {0}")]
    ReferenceData(String),
    /// The OpenAPI document could not be serialised.
    #[error("serialising the OpenAPI document failed: {0}")]
    Document(String),
    /// The report summaries could not be brought up to date.
    #[error("rebuilding the report summaries failed: {0}")]
    Summaries(String),
    /// The attachment store could not be set up.
    #[error("setting up the attachment store failed: {0}")]
    AttachmentStore(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A built server, bound to its port and ready to run.
pub struct Application {
    port: u16,
    server: Server,
}

/// Creates the database when missing, migrates it, makes sure user `admin` exists when there
/// is no user, and loads the taxonomy. Blocking: call it off the async workers.
pub fn prepare_database(settings: &Settings) -> Result<Taxonomy, StartupError> {
    if bootstrap::ensure_database(&settings.database_url)? {
        log::info!(
            "created database {}",
            bootstrap::redact_url(&settings.database_url)
        );
    }
    let mut conn = bootstrap::connect(&settings.database_url)?;
    let applied = bootstrap::run_migrations(&mut conn)?;
    if !applied.is_empty() {
        log::info!("applied migrations: {}", applied.join(", "));
    }
    match bootstrap::ensure_admin(&mut conn, settings.admin_password.as_ref())? {
        AdminBootstrap::UsersExist => {}
        AdminBootstrap::Created => {
            log::info!("created user `admin` with the password from ADMIN_PASSWORD")
        }
        AdminBootstrap::CreatedWithGeneratedPassword(password) => log::warn!(
            "no user existed and ADMIN_PASSWORD is not set: created user `admin` with password `{password}`; \
             change it with PATCH /api/v1/users/{{id}}"
        ),
    }
    // The report summaries count by local month: rebuilt once when TIMEZONE is new to them.
    let rebuilt = store::report_summaries::ensure_current(&mut conn, settings.timezone)
        .map_err(|e| StartupError::Summaries(e.to_string()))?;
    if rebuilt {
        log::info!(
            "rebuilt the report summaries in months of {}",
            settings.timezone.name()
        );
    }
    let indexed = store::suggestions::ensure_backfilled(&mut conn)
        .map_err(|e| StartupError::Summaries(e.to_string()))?;
    if indexed > 0 {
        log::info!("indexed {indexed} resolved incidents for suggestions");
    }
    store::taxonomy::load(&mut conn).map_err(|e| StartupError::ReferenceData(e.to_string()))
}

/// Cores this process may run on (actix's own default number of HTTP workers).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Passwords hashed at a time: all cores but one, at least one.
fn password_hashers() -> usize {
    cores().saturating_sub(1).max(1)
}

/// Blocking threads per HTTP worker: its share of the pool's connections, plus room for every
/// password being hashed, which needs no connection.
///
/// Without a bound actix allows 512 threads in all, and under load every request waiting for a
/// connection parks a thread of its own: each returned connection then wakes threads that find
/// none. Measured under `wrk -c64` on `GET /incidents/{id}`: 3.2–3.9 context switches and
/// 131–155 µs of server CPU per request unbounded, 2.6 and 110–121 µs bounded (BENCHMARKS.md,
/// second round). A request beyond the bound waits in the worker's queue instead, within the same
/// pool timeout.
fn blocking_threads(pool_size: usize, workers: usize, hashers: usize) -> usize {
    pool_size.div_ceil(workers.max(1)) + hashers
}

/// The paths the API serves and the methods each accepts, to tell 404 from 405.
struct RouteTable(Vec<(ResourceDef, String)>);

impl RouteTable {
    fn new(doc: &utoipa::openapi::OpenApi) -> Self {
        Self(
            openapi::allowed_methods(doc)
                .into_iter()
                .map(|(path, methods)| (ResourceDef::new(path), methods.join(", ")))
                .collect(),
        )
    }

    fn allowed(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, allow)| allow.as_str())
    }
}

/// What a request that reached no handler gets: 405 when the path is served with other
/// methods, 404 otherwise. Also used when a path segment does not parse (`/users/abc`), where
/// a static route (`/users/me`) may still match the path.
fn route_miss(req: &HttpRequest) -> AppError {
    let allow = req
        .app_data::<Data<RouteTable>>()
        .and_then(|routes| routes.allowed(req.path()).map(str::to_owned));
    match allow {
        Some(allow) if !allow.split(", ").any(|m| m == req.method().as_str()) => {
            AppError::MethodNotAllowed { allow }
        }
        _ => AppError::NotFound(format!("No resource is served at {}.", req.path())),
    }
}

async fn fallback(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(route_miss(&req))
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            telemetry::REQUEST_ID.clone(),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            telemetry::REQUEST_ID.clone(),
        ])
        .max_age(3600);
    if origins.iter().any(|origin| origin == "*") {
        cors = cors.allow_any_origin();
    } else {
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

/// Where the OpenAPI document is served.
const OPENAPI_PATH: &str = "/api-docs/openapi.json";

/// How much of an answer a connection gathers before it writes to the socket. Each open
/// connection's buffer grows to this plus one piece of a streamed page and keeps that size while
/// the connection lives: actix's 32 KiB made it 64 KiB per connection. With jemalloc, 8 KiB (one
/// list piece) kept a thousand clients of 200-row pages under 100 MB (97-99 MB; 104-108 with
/// 16 KiB) at 744-840 pages/s (BENCHMARKS.md, "Memory under concurrent lists").
const WRITE_BUFFER_BYTES: usize = crate::api::pagination::PIECE_BYTES;

/// The longest wait for a connection to the read replica before a read goes to the primary.
const REPLICA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl Application {
    /// Prepares the database and binds the listener; `bind_addr` port 0 picks a free port.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        let for_bootstrap = settings.clone();
        let taxonomy = web::block(move || prepare_database(&for_bootstrap))
            .await
            .map_err(|e| StartupError::ReferenceData(e.to_string()))??;

        let pool = store::build_pool(
            &settings.database_url,
            settings.database_pool_size,
            settings.database_timeout,
        );
        let secret = match &settings.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                log::warn!(
                    "JWT_SECRET is not set: using a random key, so tokens end with this process \
                     and other instances will not accept them"
                );
                rand::rng().random::<[u8; 32]>().to_vec()
            }
        };
        let tokens = TokenKeys::new(&secret, settings.jwt_ttl);
        let confirmations = ConfirmationKeys::new(&secret);
        let document = openapi::document();
        let routes = Data::new(RouteTable::new(&document));
        // Serialised once and shared: a copy of the document per HTTP worker cost ~2.5 MB each.
        let document = web::Bytes::from(
            serde_json::to_vec(&document).map_err(|e| StartupError::Document(e.to_string()))?,
        );
        let metrics = Arc::new(Metrics::new());
        let taxonomy = Arc::new(taxonomy);
        let intake = Intake::start(
            pool.clone(),
            WriteSettings::new(&settings, taxonomy.clone()),
            clock.clone(),
        );
        let credentials = Arc::new(CredentialCache::new(settings.credential_cache_ttl));
        store::credentials::listen_for_changes(
            store::with_network_timeouts(&settings.database_url, settings.database_timeout),
            &credentials,
        );
        let live = LiveStream::start(
            pool.clone(),
            store::with_network_timeouts(&settings.database_url, settings.database_timeout),
        );
        let chunks: Arc<dyn crate::store::chunks::ChunkStore> = match &settings.attachment_store {
            AttachmentStore::Postgres => crate::store::chunks::PostgresChunks::shared(pool.clone()),
            AttachmentStore::S3(store) => crate::store::chunks::S3Chunks::shared(store)
                .map_err(|e| StartupError::AttachmentStore(e.to_string()))?,
        };
        let replica = settings.database_read_url.as_deref().map(|url| {
            // A replica that does not answer quickly is skipped, not waited for.
            let timeout = settings.database_timeout.min(REPLICA_TIMEOUT);
            let pool = store::build_pool(url, settings.database_pool_size, timeout);
            Arc::new(Replica::new(
                pool,
                settings.replica_max_lag,
                settings.read_after_write_window,
            ))
        });
        let state = Data::new(AppState {
            replica,
            live,
            chunks,
            pool,
            credentials,
            tokens,
            confirmations,
            taxonomy,
            settings: settings.clone(),
            clock,
            metrics: metrics.clone(),
            intake,
            password_hashing: Arc::new(tokio::sync::Semaphore::new(password_hashers())),
            // As many as can read at once, and as many again being sent.
            heavy_reads: Arc::new(tokio::sync::Semaphore::new(
                2 * settings.database_pool_size as usize,
            )),
        });
        // The metrics middleware reads its own app data, so telemetry needs no AppState.
        let metrics = Data::from(metrics);

        crate::jobs::spawn(state.clone());
        let listener =
            TcpListener::bind(&settings.bind_addr).map_err(|source| StartupError::Bind {
                addr: settings.bind_addr.clone(),
                source,
            })?;
        let bind_error = |source| StartupError::Bind {
            addr: settings.bind_addr.clone(),
            source,
        };
        let port = listener.local_addr().map_err(bind_error)?.port();
        let origins = settings.cors_allowed_origins.clone();
        let mut server = HttpServer::new(move || {
            let (app, _) = App::new()
                .into_utoipa_app()
                .configure(api::configure)
                .split_for_parts();
            app.app_data(state.clone())
                .app_data(metrics.clone())
                .app_data(routes.clone())
                .app_data(web::PayloadConfig::new(api::extract::MAX_BODY_BYTES))
                .app_data(web::PathConfig::default().error_handler(|err, req| {
                    log::debug!("unusable path segment in {}: {err}", req.path());
                    route_miss(req).into()
                }))
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}")
                        .config(SwaggerConfig::from(OPENAPI_PATH).persist_authorization(true)),
                )
                .route(
                    OPENAPI_PATH,
                    web::get().to({
                        let document = document.clone();
                        move || {
                            let document = document.clone();
                            async move {
                                HttpResponse::Ok()
                                    .content_type(header::ContentType::json())
                                    .body(document)
                            }
                        }
                    }),
                )
                .service(web::redirect("/swagger-ui", "/swagger-ui/"))
                .default_service(web::to(fallback))
                .wrap(from_fn(api::idempotency::idempotency))
                .wrap(from_fn(api::replica::record_writes))
                .wrap(from_fn(telemetry::record_metrics))
                .wrap(Logger::new(
                    r#"%a "%r" %s %b %Dms request_id=%{x-request-id}i"#,
                ))
                .wrap(from_fn(telemetry::request_id))
                .wrap(cors(&origins))
                .wrap(from_fn(api::headers::security_headers))
        })
        .listen(listener)
        .map_err(bind_error)?
        .shutdown_timeout(30)
        .h1_write_buffer_size(WRITE_BUFFER_BYTES);
        let workers = settings.http_workers.unwrap_or_else(cores);
        server = server
            .workers(workers)
            .worker_max_blocking_threads(blocking_threads(
                settings.database_pool_size as usize,
                workers,
                password_hashers(),
            ));
        log::info!(
            "listening on http://{}:{port}",
            listener_host(&settings.bind_addr)
        );
        Ok(Self {
            port,
            server: server.run(),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests (up to 30 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn listener_host(bind_addr: &str) -> &str {
    bind_addr
        .rsplit_once(':')
        .map_or(bind_addr, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::blocking_threads;

    #[test]
    fn each_worker_gets_its_share_of_the_connections_rounded_up_and_room_for_hashing() {
        assert_eq!(blocking_threads(10, 2, 1), 6);
        assert_eq!(blocking_threads(10, 3, 1), 5);
        assert_eq!(blocking_threads(1, 4, 3), 4);
        // A worker count of zero cannot come from the settings, but must not divide by zero.
        assert_eq!(blocking_threads(4, 0, 1), 5);
    }
}

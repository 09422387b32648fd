//! The state every HTTP worker and background job shares.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::auth::confirmation::ConfirmationKeys;
use crate::auth::token::TokenKeys;
use crate::config::Settings;
use crate::domain::clock::Clock;
use crate::domain::taxonomy::Taxonomy;
use crate::error::AppError;
use crate::intake::Intake;
use crate::live::LiveStream;
use crate::store::DbPool;
use crate::store::credentials::CredentialCache;
use crate::store::incident_writes::WriteSettings;
use crate::store::replica::Replica;
use crate::telemetry::Metrics;

/// Shared state of every worker.
pub struct AppState {
    /// Database connections.
    pub pool: DbPool,
    /// Callers recently read, forgotten whenever users or API tokens change.
    pub credentials: Arc<CredentialCache>,
    /// Access-token keys.
    pub tokens: TokenKeys,
    /// Keys of the confirmation tokens e-mail carries.
    pub confirmations: ConfirmationKeys,
    /// The taxonomy, loaded at start-up.
    pub taxonomy: Arc<Taxonomy>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Source of the current time.
    pub clock: Arc<dyn Clock>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The queue monitoring events are written through.
    pub intake: Intake,
    /// Passwords hashed at a time: Argon2 is slow on purpose, and a flood of sign-ins must
    /// leave cores for everyone else's requests.
    pub password_hashing: Arc<Semaphore>,
    /// Large list pages built and sent at a time. A page of 200 incidents is a few hundred KB
    /// from the rows read to the last byte sent; a request beyond the bound waits for a slot
    /// holding nothing, so memory stays flat however many clients ask at once.
    pub heavy_reads: Arc<Semaphore>,
    /// This instance's live stream: every settled event, prepared once for all open streams.
    pub live: Arc<LiveStream>,
    /// Where attachment bytes are kept.
    pub chunks: Arc<dyn crate::store::chunks::ChunkStore>,
    /// The read replica (`DATABASE_READ_URL`), when there is one.
    pub replica: Option<Arc<Replica>>,
}

impl AppState {
    /// A slot for a heavy read, waited for at most as long as for a database connection (503
    /// after that, like a request that finds no connection).
    pub async fn heavy_read_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        tokio::time::timeout(
            self.settings.database_timeout,
            self.heavy_reads.clone().acquire_owned(),
        )
        .await
        .map_err(|_| AppError::Unavailable("no slot for a large read in time".into()))?
        .map_err(AppError::internal)
    }

    /// Runs `work` for `caller` where SPEC §14 sends reads that may lag: the replica when it is
    /// in use and the caller has not written within `READ_AFTER_WRITE_WINDOW`, else the primary.
    pub async fn run_read<T, E, F>(&self, caller: i64, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut crate::store::Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<crate::store::StoreError> + Send + 'static,
    {
        crate::store::replica::run_read(&self.pool, self.replica.as_ref(), caller, work).await
    }

    /// What incident writes need besides the database.
    pub fn write_settings(&self) -> WriteSettings {
        WriteSettings::new(&self.settings, self.taxonomy.clone())
    }
}

//! Where attachment bytes live (SPEC §13), behind one small interface: the records and the
//! content rows (SHA-256, size) are always in PostgreSQL; the chunks of bytes are written, read
//! and forgotten through [`ChunkStore`]. [`PostgresChunks`] keeps them in `attachment_chunks`,
//! next to the records, so a backup holds everything (the default); [`S3Chunks`] in an
//! S3-compatible object store (`ATTACHMENT_STORE=s3://bucket/prefix`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Integer};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use super::schema::attachment_chunks;
use super::{DbPool, StoreError};
use crate::config::S3Store;

/// Bytes per stored chunk: large enough that a 25 MB file is 50 rows, small enough that eight
/// uploads at once hold a few MB between them.
pub const CHUNK_BYTES: usize = 512 * 1024;

diesel::define_sql_function!(
    /// PostgreSQL's `substring(bytes, start, count)` (1-based).
    fn substring(data: Bytea, start: Integer, count: Integer) -> Bytea
);

/// Writes, reads and forgets the chunks of stored contents. Every chunk but the last of a
/// content holds exactly [`CHUNK_BYTES`] bytes.
pub trait ChunkStore: Send + Sync {
    /// Stores chunk `seq` of content `content`.
    fn write(&self, content: i64, seq: i32, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;

    /// `length` bytes of content `content` from `offset`, within one chunk.
    fn read(
        &self,
        content: i64,
        offset: u64,
        length: usize,
    ) -> BoxFuture<'_, Result<Vec<u8>, StoreError>>;

    /// Forgets the chunks of contents whose rows were deleted.
    fn forget(&self, contents: Vec<i64>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The S3 store, for the sweep's search for objects without a row.
    fn as_s3(&self) -> Option<&S3Chunks> {
        None
    }
}

/// Chunks as rows of `attachment_chunks`, deleted with their content row by the foreign key's
/// cascade.
#[derive(Clone)]
pub struct PostgresChunks {
    pool: DbPool,
}

impl PostgresChunks {
    /// The chunk store of the database behind `pool`.
    pub fn shared(pool: DbPool) -> Arc<dyn ChunkStore> {
        Arc::new(PostgresChunks { pool })
    }
}

impl ChunkStore for PostgresChunks {
    fn write(&self, content: i64, seq: i32, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(super::run(&self.pool, move |conn| {
            store_chunk(conn, content, seq, &data)
        }))
    }

    fn read(
        &self,
        content: i64,
        offset: u64,
        length: usize,
    ) -> BoxFuture<'_, Result<Vec<u8>, StoreError>> {
        Box::pin(super::run(&self.pool, move |conn| {
            read_slice(conn, content, offset, length)
        }))
    }

    fn forget(&self, _contents: Vec<i64>) -> BoxFuture<'_, Result<(), StoreError>> {
        // The rows went with their content rows (`ON DELETE CASCADE`).
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Stores chunk `seq` of staged content `content_id`.
fn store_chunk(
    conn: &mut PgConnection,
    content_id: i64,
    seq: i32,
    data: &[u8],
) -> Result<(), StoreError> {
    diesel::insert_into(attachment_chunks::table)
        .values((
            attachment_chunks::content_id.eq(content_id),
            attachment_chunks::seq.eq(seq),
            attachment_chunks::data.eq(data),
        ))
        .execute(conn)?;
    Ok(())
}

/// `length` bytes of `content_id` from `offset` (within one chunk).
fn read_slice(
    conn: &mut PgConnection,
    content_id: i64,
    offset: u64,
    length: usize,
) -> Result<Vec<u8>, StoreError> {
    let seq = (offset / CHUNK_BYTES as u64) as i32;
    let within = (offset % CHUNK_BYTES as u64) as i32;
    let bytes: Option<Vec<u8>> = attachment_chunks::table
        .find((content_id, seq))
        .select(substring(
            attachment_chunks::data,
            within + 1,
            length as i32,
        ))
        .first(conn)
        .optional()?;
    bytes.ok_or_else(|| StoreError::internal(format!("content {content_id} lacks chunk {seq}")))
}

/// Chunks as objects of an S3-compatible store, named `<prefix>/<content id>/<chunk number>`.
/// The content rows stay in PostgreSQL and are written before any object, so every object
/// belongs to a row, or to one the sweep removed: [`ChunkStore::forget`] deletes the objects
/// of removed rows, and [`S3Chunks::stored_contents`] finds objects whose row is gone (a sweep
/// cut short) for the sweep to forget.
pub struct S3Chunks {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl S3Chunks {
    /// The chunk store of `settings`.
    pub fn shared(settings: &S3Store) -> Result<Arc<S3Chunks>, StoreError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token.expose());
        }
        let store = builder
            .build()
            .map_err(|e| StoreError::internal_error("configuring the S3 store", &e))?;
        Ok(Arc::new(S3Chunks {
            store: Arc::new(store),
            prefix: ObjectPath::from(settings.prefix.as_str()),
        }))
    }

    fn content(&self, content: i64) -> ObjectPath {
        self.prefix.child(content.to_string())
    }

    /// The contents that have objects written longer than `older_than` ago.
    pub async fn stored_contents(&self, older_than: Duration) -> Result<Vec<i64>, StoreError> {
        let cutoff = chrono::Utc::now()
            - chrono::TimeDelta::from_std(older_than).unwrap_or(chrono::TimeDelta::MAX);
        let depth = self.prefix.parts().count();
        let mut objects = self.store.list(Some(&self.prefix));
        let mut contents = std::collections::BTreeSet::new();
        while let Some(object) = objects.next().await {
            let object = object.map_err(unavailable)?;
            if object.last_modified >= cutoff {
                continue;
            }
            let id = object
                .location
                .parts()
                .nth(depth)
                .and_then(|part| part.as_ref().parse::<i64>().ok());
            contents.extend(id);
        }
        Ok(contents.into_iter().collect())
    }
}

fn unavailable(error: object_store::Error) -> StoreError {
    StoreError::Unavailable(super::error::cause_chain("the S3 store", &error))
}

impl ChunkStore for S3Chunks {
    fn write(&self, content: i64, seq: i32, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let path = self.content(content).child(seq.to_string());
            self.store
                .put(&path, PutPayload::from_bytes(data))
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn read(
        &self,
        content: i64,
        offset: u64,
        length: usize,
    ) -> BoxFuture<'_, Result<Vec<u8>, StoreError>> {
        Box::pin(async move {
            let chunk = CHUNK_BYTES as u64;
            let path = self.content(content).child((offset / chunk).to_string());
            let within = offset % chunk;
            let bytes = self
                .store
                .get_range(&path, within..within + length as u64)
                .await
                .map_err(unavailable)?;
            Ok(bytes.to_vec())
        })
    }

    fn forget(&self, contents: Vec<i64>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            for content in contents {
                let prefix = self.content(content);
                let objects: Vec<ObjectPath> = self
                    .store
                    .list(Some(&prefix))
                    .map(|object| object.map(|o| o.location))
                    .try_collect()
                    .await
                    .map_err(unavailable)?;
                for object in objects {
                    match self.store.delete(&object).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(error) => return Err(unavailable(error)),
                    }
                }
            }
            Ok(())
        })
    }

    fn as_s3(&self) -> Option<&S3Chunks> {
        Some(self)
    }
}

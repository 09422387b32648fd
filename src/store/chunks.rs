//! Where attachment bytes live (SPEC §13), behind one small interface: the records and the
//! content rows (SHA-256, size) are always in PostgreSQL; the chunks of bytes are written, read
//! and forgotten through [`ChunkStore`]. [`PostgresChunks`] keeps them in `attachment_chunks`,
//! next to the records, so a backup holds everything. An S3-compatible store would be a second
//! implementation (objects named by content id and chunk number); it is not built (README,
//! docs/attachments.md).

use std::sync::Arc;

use actix_web::web::Bytes;
use futures_util::future::BoxFuture;

use super::{DbPool, StoreError};

/// Writes, reads and forgets the chunks of stored contents. Every chunk but the last of a
/// content holds exactly [`super::attachments::CHUNK_BYTES`] bytes.
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
            super::attachments::store_chunk(conn, content, seq, &data)
        }))
    }

    fn read(
        &self,
        content: i64,
        offset: u64,
        length: usize,
    ) -> BoxFuture<'_, Result<Vec<u8>, StoreError>> {
        Box::pin(super::run(&self.pool, move |conn| {
            super::attachments::read_slice(conn, content, offset, length)
        }))
    }

    fn forget(&self, _contents: Vec<i64>) -> BoxFuture<'_, Result<(), StoreError>> {
        // The rows went with their content rows (`ON DELETE CASCADE`).
        Box::pin(std::future::ready(Ok(())))
    }
}

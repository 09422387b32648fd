//! The live stream of one instance (SPEC §12): one reader follows the outbox and hands every
//! settled event, prepared once, to all of this instance's open streams.
//!
//! The database is the source: every instance reads the same events in the same order, and a
//! `NOTIFY` sent when any instance commits one wakes every reader at once. A reader that was not
//! woken still looks every [`FALLBACK_READ`], so a lost notification delays events, never loses
//! them; a stream that falls behind the broadcast reads what it missed from the database.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::domain::stream::Prepared;
use crate::store::stream::{self, Position};
use crate::store::{self, DbPool};

/// Events read at a time.
pub const READ_BATCH: i64 = 500;

/// Events kept for streams that are a little behind; one further behind reads the database.
const BROADCAST_CAPACITY: usize = 4096;

/// How often the reader looks without being woken.
const FALLBACK_READ: Duration = Duration::from_secs(1);

/// How soon it looks again when a read found events not yet settled (a transaction older than
/// theirs was still running).
const UNSETTLED_RETRY: Duration = Duration::from_millis(10);

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// A settled event and where it sits in the stream.
#[derive(Debug)]
pub struct LiveEvent {
    /// Its position.
    pub position: Position,
    /// Its frames.
    pub event: Prepared,
}

/// This instance's live stream.
pub struct LiveStream {
    sender: broadcast::Sender<Arc<LiveEvent>>,
}

impl LiveStream {
    /// Starts following the outbox from its current end, on the current Tokio runtime. The
    /// tasks end when the returned value is dropped.
    pub fn start(pool: DbPool, database_url: String) -> Arc<LiveStream> {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        let live = Arc::new(LiveStream { sender });
        let wake = Arc::new(Notify::new());
        let listening = Arc::downgrade(&wake);
        tokio::spawn(async move {
            loop {
                match stream::listen(&database_url, &listening).await {
                    Ok(()) => log::debug!("the stream listener's connection closed"),
                    Err(err) => log::debug!("stream listener not connected: {err}"),
                }
                if listening.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        });
        tokio::spawn(follow(pool, Arc::downgrade(&live), wake));
        live
    }

    /// Events from now on. A receiver that lags more than the broadcast keeps is told how many
    /// it missed, and reads them from the database.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.sender.subscribe()
    }

    /// Streams open on this instance.
    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// The reader: from the outbox's end at start, each settled event once, in order.
async fn follow(pool: DbPool, live: Weak<LiveStream>, wake: Arc<Notify>) {
    let mut cursor = loop {
        match store::run(&pool, stream::head).await {
            Ok(head) => break head,
            Err(err) => log::warn!("the live stream cannot find the outbox's end: {err}"),
        }
        if live.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    };
    loop {
        let from = cursor;
        let pause = match store::run(&pool, move |conn| stream::after(conn, from, READ_BATCH)).await
        {
            Ok(batch) => {
                let Some(live) = live.upgrade() else { return };
                for (position, stored) in batch.events {
                    cursor = position;
                    let event = Prepared::new(stored);
                    // No receivers is not an error: the event is in the database for later.
                    let _ = live.sender.send(Arc::new(LiveEvent { position, event }));
                }
                batch.more.then_some(UNSETTLED_RETRY)
            }
            Err(err) => {
                log::warn!("reading the outbox for the live stream failed: {err}");
                Some(RECONNECT_DELAY)
            }
        };
        match pause {
            Some(pause) => tokio::time::sleep(pause).await,
            None => {
                let _ = tokio::time::timeout(FALLBACK_READ, wake.notified()).await;
            }
        }
        if live.strong_count() == 0 {
            return;
        }
    }
}

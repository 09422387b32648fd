//! The live stream of one instance (SPEC §12): one reader follows the outbox and hands every
//! settled event, prepared once, to the open streams of this instance that want it.
//!
//! The database is the source: every instance reads the same events in the same order, and a
//! `NOTIFY` sent when any instance commits one wakes every reader at once. A reader that was not
//! woken still looks every [`FALLBACK_READ`], so a lost notification delays events, never loses
//! them.
//!
//! Each stream registers what it wants (its reader and filter); the reader queues an event
//! only for the streams that will send it, so a stream waiting for one customer's incidents is
//! not woken for every other one (with every stream woken for every event, a thousand streams
//! cost 28 % of the write throughput; `bench/stream.sh`). A stream whose queue is full is marked
//! behind and reads what it missed from the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::domain::stream::{Filter, Prepared, Reader};
use crate::store::stream::{self, Position};
use crate::store::{self, DbPool};

/// Events read at a time.
pub const READ_BATCH: i64 = 500;

/// Events queued for a stream that is a little behind; one further behind reads the database.
const QUEUE_CAPACITY: usize = 256;

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
    streams: Mutex<HashMap<u64, Registered>>,
    next_id: AtomicU64,
}

/// What an open stream wants, and where its events go.
struct Registered {
    reader: Reader,
    filter: Filter,
    queue: mpsc::Sender<Arc<LiveEvent>>,
    behind: Arc<AtomicBool>,
}

/// An open stream's registration; dropping it unregisters.
pub struct Subscription {
    id: u64,
    live: Weak<LiveStream>,
    /// The events for this stream, in order.
    pub queue: mpsc::Receiver<Arc<LiveEvent>>,
    behind: Arc<AtomicBool>,
}

impl Subscription {
    /// True once if events were dropped because the queue was full since the last call: the
    /// stream must read them from the database.
    pub fn fell_behind(&self) -> bool {
        self.behind.swap(false, Ordering::AcqRel)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(live) = self.live.upgrade() {
            live.registry().remove(&self.id);
        }
    }
}

impl LiveStream {
    /// Starts following the outbox from its current end, on the current Tokio runtime. The
    /// tasks end when the returned value is dropped.
    pub fn start(pool: DbPool, database_url: String) -> Arc<LiveStream> {
        let live = Arc::new(LiveStream {
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
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

    /// Events from now on that `reader` may receive and `filter` lets through.
    pub fn subscribe(self: &Arc<Self>, reader: Reader, filter: Filter) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let behind = Arc::new(AtomicBool::new(false));
        self.registry().insert(
            id,
            Registered {
                reader,
                filter,
                queue,
                behind: behind.clone(),
            },
        );
        Subscription {
            id,
            live: Arc::downgrade(self),
            queue: receiver,
            behind,
        }
    }

    /// Streams open on this instance.
    pub fn listeners(&self) -> usize {
        self.registry().len()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Registered>> {
        // A panic while holding the lock leaves the map itself intact.
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `event` for every stream that wants it.
    fn dispatch(&self, event: Arc<LiveEvent>) {
        for stream in self.registry().values() {
            if !stream.filter.passes(&event.event) || event.event.frame_for(stream.reader).is_none()
            {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = stream.queue.try_send(event.clone()) {
                stream.behind.store(true, Ordering::Release);
            }
        }
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
                    live.dispatch(Arc::new(LiveEvent { position, event }));
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::stream::Stored;

    fn idle() -> Arc<LiveStream> {
        Arc::new(LiveStream {
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    fn event(id: i64, customer: i64) -> Arc<LiveEvent> {
        Arc::new(LiveEvent {
            position: Position { tx: id, id },
            event: Prepared::new(Stored {
                id,
                event_type: "incident.created".into(),
                occurred_at: "2026-12-07T09:15:00Z".into(),
                customer_id: Some(customer),
                actor_id: None,
                data: json!({"incident": {"id": id}}),
            }),
        })
    }

    const DESK: Reader = Reader::Desk {
        staff: true,
        knowledge: true,
    };

    #[test]
    fn events_are_queued_only_for_the_streams_that_want_them() {
        let live = idle();
        let mut desk = live.subscribe(DESK, Filter::default());
        let mut own = live.subscribe(Reader::Customer(1), Filter::default());
        let mut other_type = live.subscribe(
            DESK,
            Filter {
                types: vec!["note.created"],
                ..Filter::default()
            },
        );
        live.dispatch(event(1, 1));
        live.dispatch(event(2, 2));
        assert_eq!(desk.queue.try_recv().unwrap().position.id, 1);
        assert_eq!(desk.queue.try_recv().unwrap().position.id, 2);
        assert_eq!(own.queue.try_recv().unwrap().position.id, 1);
        assert!(own.queue.try_recv().is_err());
        assert!(other_type.queue.try_recv().is_err());
        assert_eq!(live.listeners(), 3);
        drop(other_type);
        assert_eq!(live.listeners(), 2);
    }

    #[test]
    fn a_stream_whose_queue_is_full_is_told_once_that_it_fell_behind() {
        let live = idle();
        let mut slow = live.subscribe(DESK, Filter::default());
        for id in 1..=QUEUE_CAPACITY as i64 {
            live.dispatch(event(id, 1));
        }
        assert!(!slow.fell_behind());
        live.dispatch(event(QUEUE_CAPACITY as i64 + 1, 1));
        assert!(slow.fell_behind());
        assert!(!slow.fell_behind());
        // What was queued stays, in order; the dropped event is read from the database.
        assert_eq!(slow.queue.try_recv().unwrap().position.id, 1);
    }
}

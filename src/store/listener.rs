//! A connection of its own that `LISTEN`s on one channel of PostgreSQL's notifications, for the
//! parts of an instance that must hear at once what another instance committed.
//!
//! `tokio-postgres`, not Diesel: libpq as Diesel wraps it can only be asked for notifications,
//! not waited on, and polling would leave changes unheard for the interval.

use std::future::Future;
use std::task::{Poll, ready};

use tokio_postgres::{AsyncMessage, NoTls};

/// What a listener hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// The `LISTEN` took effect: from now on no notification is missed (but some may have been
    /// before).
    Subscribed,
    /// A notification on the channel.
    Notified,
}

/// Connects, sends `listen` (`LISTEN <channel>`) and tells `heard` what it hears, until the
/// connection ends or `heard` answers `false` (its owner is gone).
pub async fn listen(
    database_url: &str,
    listen: &str,
    mut heard: impl FnMut(Heard) -> bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let mut subscribe = Box::pin(client.batch_execute(listen));
    let mut subscribed = false;
    // The connection is driven by polling it; the LISTEN request completes through it.
    std::future::poll_fn(|cx| {
        if !subscribed && let Poll::Ready(answer) = subscribe.as_mut().poll(cx) {
            answer?;
            subscribed = true;
            if !heard(Heard::Subscribed) {
                return Poll::Ready(Ok(()));
            }
        }
        loop {
            match ready!(connection.poll_message(cx)) {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if !heard(Heard::Notified) {
                        return Poll::Ready(Ok(()));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Poll::Ready(Err(err)),
                None => return Poll::Ready(Ok(())),
            }
        }
    })
    .await
}

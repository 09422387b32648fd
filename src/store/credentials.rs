//! The user a checked Bearer credential stands for.
//!
//! Reading the caller's row on every request doubled the database work of a read. The row is
//! kept per instance in a [`CredentialCache`] instead, and every change that could refuse or
//! narrow a caller (deactivation, roles, password, token revocation) still takes effect at once
//! on every instance: a trigger on `users` and `api_tokens` sends `NOTIFY credentials_changed`
//! with the change's commit, each instance listens ([`listen_for_changes`]) and forgets what it
//! kept. While an instance is not listening (starting, or its listening connection lost), its
//! cache answers nothing. The instance that made a change forgets at once, without waiting for
//! the notification. A time-to-live bounds how long a notification lost to a broken network
//! could go unnoticed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::PgConnection;

use super::StoreError;
use super::api_tokens::LiveCaller;
use super::listener::Heard;
use super::users::UserRow;
use super::{DbPool, run};

/// Subscribes the listener to the channel the trigger of migration 000014 notifies.
const LISTEN: &str = "LISTEN credentials_changed";

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Entries kept at most; beyond that the cache starts over (credentials are few: one per
/// user and token generation, one per API token).
const MAX_ENTRIES: usize = 10_000;

/// A Bearer value checked as far as it can be without the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// An API token, by its digest.
    ApiToken(Vec<u8>),
    /// A JWT for a user, issued under a token generation.
    Jwt {
        /// The user.
        user_id: i64,
        /// The user's token generation at issue time.
        generation: i32,
    },
}

fn invalid_token() -> StoreError {
    StoreError::Unauthorized("The token is invalid or has expired.".into())
}

impl Credential {
    /// The live user the credential stands for, and until when the credential itself is good
    /// (an API token's expiry); 401 for none.
    pub fn load(
        &self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
    ) -> Result<LiveCaller, StoreError> {
        match self {
            Credential::ApiToken(digest) => {
                super::api_tokens::authenticate(conn, digest, now)?.ok_or_else(invalid_token)
            }
            Credential::Jwt {
                user_id,
                generation,
            } => {
                let user =
                    super::users::find_optional(conn, *user_id)?.ok_or_else(invalid_token)?;
                if !user.active || *generation != user.token_generation || user.is_api_token() {
                    return Err(invalid_token());
                }
                Ok((user, None))
            }
        }
    }
}

struct Cached {
    user: UserRow,
    until: DateTime<Utc>,
}

/// Callers recently read, by credential. See the module documentation for why it is safe.
pub struct CredentialCache {
    ttl: TimeDelta,
    entries: RwLock<HashMap<Credential, Cached>>,
    /// Bumped whenever the cache forgets; a row read before that is not kept.
    epoch: AtomicU64,
    /// Whether changes made on other instances reach this one.
    listening: AtomicBool,
}

impl CredentialCache {
    /// A cache whose entries live at most `ttl` (zero: nothing is kept). It answers nothing
    /// until [`listen_for_changes`] has started listening.
    pub fn new(ttl: Duration) -> Self {
        CredentialCache {
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
            entries: RwLock::default(),
            epoch: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        }
    }

    /// Whether the cache keeps anything at all.
    pub fn enabled(&self) -> bool {
        self.ttl > TimeDelta::zero()
    }

    fn get(&self, credential: &Credential, now: DateTime<Utc>) -> Option<UserRow> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(credential)
            .filter(|cached| now < cached.until)
            .map(|cached| cached.user.clone())
    }

    fn put(&self, credential: Credential, cached: Cached, read_in_epoch: u64) {
        if !self.enabled() || !self.listening.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock that `forget_all` takes too: a row read before a change
        // committed is never stored after the change was forgotten.
        if self.epoch.load(Ordering::Acquire) != read_in_epoch {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(credential, cached);
    }

    /// Forgets every caller: after a change to users or API tokens, made here or elsewhere.
    pub fn forget_all(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    fn set_listening(&self, listening: bool) {
        // Forget first: what was kept while changes may have gone unheard is not used again.
        self.forget_all();
        self.listening.store(listening, Ordering::Release);
    }
}

/// The live user `credential` stands for: from `cache` when it may answer, else read from the
/// database (and kept). 401 when there is none.
pub async fn caller(
    pool: &DbPool,
    cache: &CredentialCache,
    credential: Credential,
    now: DateTime<Utc>,
) -> Result<UserRow, StoreError> {
    if let Some(user) = cache.get(&credential, now) {
        return Ok(user);
    }
    let read_in_epoch = cache.epoch.load(Ordering::Acquire);
    let key = credential.clone();
    let (user, expires_at) = run(pool, move |conn| credential.load(conn, now)).await?;
    let until = now
        .checked_add_signed(cache.ttl)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .min(expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC));
    cache.put(
        key,
        Cached {
            user: user.clone(),
            until,
        },
        read_in_epoch,
    );
    Ok(user)
}

/// Keeps `cache` true to the database: listens on a connection of its own for the
/// notifications of changed users and tokens and makes the cache forget. Runs as a task on the
/// current runtime until the cache is dropped; does nothing for a disabled cache.
pub fn listen_for_changes(database_url: String, cache: &Arc<CredentialCache>) {
    if !cache.enabled() {
        return;
    }
    let cache = Arc::downgrade(cache);
    tokio::spawn(async move {
        loop {
            let ended = listen(&database_url, &cache).await;
            match cache.upgrade() {
                Some(cache) => cache.set_listening(false),
                None => return,
            }
            match ended {
                Ok(()) => log::debug!("the credential listener's connection closed"),
                Err(err) => log::debug!("credential listener not connected: {err}"),
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    });
}

/// One connection's life: listens, then forgets at every notification until the connection
/// ends or the cache is gone.
async fn listen(
    database_url: &str,
    cache: &Weak<CredentialCache>,
) -> Result<(), tokio_postgres::Error> {
    super::listener::listen(database_url, LISTEN, |heard| match cache.upgrade() {
        Some(cache) => {
            match heard {
                Heard::Subscribed => cache.set_listening(true),
                Heard::Notified => cache.forget_all(),
            }
            true
        }
        None => false,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::role::Role;

    fn user(id: i64) -> UserRow {
        UserRow {
            id,
            username: format!("user{id}"),
            password_hash: "!".into(),
            display_name: "User".into(),
            roles: vec![Role::ServiceDesk.as_str().into()],
            customer_id: None,
            active: true,
            token_generation: 0,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            version: 1,
            kind: "person".into(),
            email: None,
        }
    }

    fn jwt(user_id: i64) -> Credential {
        Credential::Jwt {
            user_id,
            generation: 0,
        }
    }

    fn kept(until: DateTime<Utc>) -> Cached {
        Cached {
            user: user(1),
            until,
        }
    }

    #[test]
    fn nothing_is_answered_until_the_cache_listens() {
        let cache = CredentialCache::new(Duration::from_secs(5));
        let now = Utc::now();
        cache.put(jwt(1), kept(now + TimeDelta::seconds(5)), 0);
        assert!(cache.get(&jwt(1), now).is_none());
        cache.set_listening(true);
        let epoch = cache.epoch.load(Ordering::Acquire);
        cache.put(jwt(1), kept(now + TimeDelta::seconds(5)), epoch);
        assert_eq!(cache.get(&jwt(1), now).unwrap().id, 1);
        cache.set_listening(false);
        assert!(
            cache.get(&jwt(1), now).is_none(),
            "losing the listener forgets"
        );
    }

    #[test]
    fn entries_end_at_their_time() {
        let cache = CredentialCache::new(Duration::from_secs(5));
        cache.set_listening(true);
        let now = Utc::now();
        let epoch = cache.epoch.load(Ordering::Acquire);
        cache.put(jwt(1), kept(now + TimeDelta::seconds(5)), epoch);
        assert!(cache.get(&jwt(1), now + TimeDelta::seconds(4)).is_some());
        assert!(cache.get(&jwt(1), now + TimeDelta::seconds(5)).is_none());
        assert!(cache.get(&jwt(2), now).is_none());
    }

    #[test]
    fn a_row_read_before_a_change_is_not_kept_after_it() {
        let cache = CredentialCache::new(Duration::from_secs(5));
        cache.set_listening(true);
        let now = Utc::now();
        let read_in_epoch = cache.epoch.load(Ordering::Acquire);
        cache.forget_all();
        cache.put(jwt(1), kept(now + TimeDelta::seconds(5)), read_in_epoch);
        assert!(cache.get(&jwt(1), now).is_none());
    }

    #[test]
    fn a_zero_lifetime_keeps_nothing() {
        let cache = CredentialCache::new(Duration::ZERO);
        assert!(!cache.enabled());
        cache.set_listening(true);
        let now = Utc::now();
        cache.put(jwt(1), kept(now + TimeDelta::seconds(5)), 1);
        assert!(cache.get(&jwt(1), now).is_none());
    }
}

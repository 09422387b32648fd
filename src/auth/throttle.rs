//! Slowing down password guessing: failed sign-ins are counted per username and per client
//! address over a window, and past a threshold further attempts are refused (429 with
//! `Retry-After`) before any password is hashed. The failures are kept in the database
//! (`store::sign_in_failures`), so every instance counts them together and an administrator can
//! lift a lock (`POST /users/{id}/unlock`, `incident-desk unlock-user NAME`); this module holds
//! the rules.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Failed sign-ins one username may have within [`WINDOW`] before further attempts wait.
pub const USER_FAILURES: usize = 5;
/// Failed sign-ins one address may have within [`WINDOW`]; higher, as an office shares one.
pub const ADDRESS_FAILURES: usize = 20;
/// How long a failed sign-in counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// What a counted key stands for, for the metrics of locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A username.
    User,
    /// A client address.
    Address,
}

impl KeyKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::User => "user",
            KeyKind::Address => "address",
        }
    }
}

/// One counter of failures: its key, how many failures lock it, and what it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// `user:<name>` or `address:<ip>`.
    pub key: String,
    /// Failures within [`WINDOW`] that lock it.
    pub limit: usize,
    /// What the key stands for.
    pub kind: KeyKind,
}

/// The key of `username`'s failures.
pub fn user_key(username: &str) -> String {
    format!("user:{username}")
}

/// The counters a sign-in as `username` from `address` is counted in.
pub fn counters(username: &str, address: Option<&str>) -> Vec<Counter> {
    let mut counters = vec![Counter {
        key: user_key(username),
        limit: USER_FAILURES,
        kind: KeyKind::User,
    }];
    if let Some(address) = address {
        counters.push(Counter {
            key: format!("address:{address}"),
            limit: ADDRESS_FAILURES,
            kind: KeyKind::Address,
        });
    }
    counters
}

/// Wrong or spent confirmation tokens one address may present within [`WINDOW`]: a reporter's
/// mistakes are few, a guesser's many.
pub const CONFIRMATION_FAILURES: usize = 20;

/// The counter of failed confirmations from `address` (SPEC §12: rate-limited like sign-in).
pub fn confirmation_counter(address: &str) -> Counter {
    Counter {
        key: format!("confirmation:{address}"),
        limit: CONFIRMATION_FAILURES,
        kind: KeyKind::Address,
    }
}

/// The start of the window that counts at `now`.
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - TimeDelta::from_std(WINDOW).unwrap_or_default()
}

/// How long a sign-in must wait at `now`, given the failures counted for each key (oldest
/// first); `None` when it may try now. A locked key opens once its oldest counted failure stops
/// counting.
pub fn wait(
    counters: &[Counter],
    counted: &[(String, Vec<DateTime<Utc>>)],
    now: DateTime<Utc>,
) -> Option<Duration> {
    let start = window_start(now);
    counters
        .iter()
        .filter_map(|counter| {
            let (_, failures) = counted.iter().find(|(key, _)| *key == counter.key)?;
            // A failure stops counting when it is exactly WINDOW old.
            let inside: Vec<&DateTime<Utc>> = failures.iter().filter(|t| **t > start).collect();
            if inside.len() < counter.limit {
                return None;
            }
            let oldest = inside.iter().min()?;
            let opens = **oldest + TimeDelta::from_std(WINDOW).ok()?;
            (opens - now).to_std().ok()
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_username_waits_after_its_failures_until_the_oldest_stops_counting() {
        let counters = counters("li", Some("10.0.0.1"));
        let failures: Vec<DateTime<Utc>> = (0..USER_FAILURES as i64).map(at).collect();
        let counted = vec![("user:li".to_owned(), failures.clone())];
        assert_eq!(
            wait(&counters, &counted, at(60)),
            Some(WINDOW - Duration::from_secs(60))
        );
        // One failure fewer: no wait.
        let fewer = vec![("user:li".to_owned(), failures[1..].to_vec())];
        assert_eq!(wait(&counters, &fewer, at(60)), None);
        // Once the oldest stops counting, it may try again.
        assert_eq!(wait(&counters, &counted, at(WINDOW.as_secs() as i64)), None);
        // Other users are not held up by li's failures.
        assert_eq!(
            wait(&super::counters("han", Some("10.0.0.1")), &counted, at(60)),
            None
        );
    }

    #[test]
    fn an_address_waits_after_failures_for_many_usernames() {
        let counters = counters("anyone", Some("10.0.0.9"));
        let counted = vec![(
            "address:10.0.0.9".to_owned(),
            (0..ADDRESS_FAILURES as i64).map(at).collect(),
        )];
        assert!(wait(&counters, &counted, at(30)).is_some());
        assert_eq!(
            wait(
                &super::counters("anyone", Some("10.0.0.8")),
                &counted,
                at(30)
            ),
            None
        );
    }
}

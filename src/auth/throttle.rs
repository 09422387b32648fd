//! Slowing down password guessing: failed sign-ins are counted per username and per client
//! address over a window, and past a threshold further attempts are refused (429 with
//! `Retry-After`) before any password is hashed. The counts live in this process; several
//! instances each count their own share of an attack.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins one username may have within [`WINDOW`] before further attempts wait.
pub const USER_FAILURES: usize = 5;
/// Failed sign-ins one address may have within [`WINDOW`]; higher, as an office shares one.
pub const ADDRESS_FAILURES: usize = 20;
/// How long a failed sign-in counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most, so that a flood of made-up usernames cannot exhaust memory.
const MOST_KEYS: usize = 100_000;

/// Failed sign-ins by username and by address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn keys<'a>(username: &'a str, address: Option<&'a str>) -> Vec<(String, usize)> {
    let mut keys = vec![(format!("user:{username}"), USER_FAILURES)];
    if let Some(address) = address {
        keys.push((format!("address:{address}"), ADDRESS_FAILURES));
    }
    keys
}

impl LoginThrottle {
    /// How long a sign-in as `username` from `address` must wait; `None` when it may try now.
    pub fn wait(&self, username: &str, address: Option<&str>, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys(username, address)
            .into_iter()
            .filter_map(|(key, limit)| {
                let times = failures.get_mut(&key)?;
                times.retain(|t| now.duration_since(*t) < WINDOW);
                // The attempt may go once the oldest counted failure stops counting.
                (times.len() >= limit).then(|| WINDOW - now.duration_since(times[0]))
            })
            .max()
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, username: &str, address: Option<&str>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MOST_KEYS {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        for (key, limit) in keys(username, address) {
            if failures.len() >= MOST_KEYS && !failures.contains_key(&key) {
                continue;
            }
            let times = failures.entry(key).or_default();
            times.push_back(now);
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    /// Forgets the failures of `username` once it signed in.
    pub fn succeeded(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_waits_after_its_failures_until_the_oldest_stops_counting() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..USER_FAILURES as u64 {
            assert_eq!(throttle.wait("li", Some("10.0.0.1"), start), None);
            throttle.failed("li", Some("10.0.0.1"), start + Duration::from_secs(i));
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(
            throttle.wait("li", Some("10.0.0.2"), later),
            Some(WINDOW - Duration::from_secs(60))
        );
        // Other users, even from the same address, still sign in.
        assert_eq!(throttle.wait("han", Some("10.0.0.1"), later), None);
        assert_eq!(throttle.wait("li", None, start + WINDOW), None);
    }

    #[test]
    fn an_address_waits_after_failures_for_many_usernames_and_success_forgets_the_user() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_FAILURES {
            throttle.failed(&format!("user{i}"), Some("10.0.0.9"), now);
        }
        assert!(throttle.wait("anyone", Some("10.0.0.9"), now).is_some());
        assert_eq!(throttle.wait("anyone", Some("10.0.0.8"), now), None);

        for _ in 0..USER_FAILURES {
            throttle.failed("li", None, now);
        }
        assert!(throttle.wait("li", None, now).is_some());
        throttle.succeeded("li");
        assert_eq!(throttle.wait("li", None, now), None);
    }
}

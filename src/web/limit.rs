//! [`KeyedLimit`]: at most N events per hour per key (a client IP, an address), as a GCRA: each key keeps one
//! instant, the "theoretical arrival time", so a burst of N is allowed and then one more every hour / N. Kept in
//! memory: a restart forgets it, which costs an abuser one burst. Keys whose time has passed are dropped when
//! the table grows, so a flood of distinct keys cannot grow it without bound.
//!
//! The clock is tokio's, so tests pause and advance it instead of sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Past this many keys, expired ones are swept before a new one is added.
const SWEEP_AT: usize = 10_000;

pub struct KeyedLimit<K> {
    interval: Duration,
    /// How far ahead of now a key's arrival time may run: a burst of N events.
    tolerance: Duration,
    keys: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq> KeyedLimit<K> {
    /// At most `per_hour` events per key per hour (at least 1).
    pub fn per_hour(per_hour: u32) -> KeyedLimit<K> {
        let per_hour = per_hour.max(1);
        let interval = Duration::from_secs(3600) / per_hour;
        KeyedLimit {
            interval,
            tolerance: interval * (per_hour - 1),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `key`; `false` when it is over the limit (and then it is not counted).
    pub fn allow(&self, key: K) -> bool {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= SWEEP_AT && !keys.contains_key(&key) {
            keys.retain(|_, tat| *tat > now);
        }
        let tat = keys.get(&key).copied().unwrap_or(now).max(now);
        if tat > now + self.tolerance {
            return false;
        }
        keys.insert(key, tat + self.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_n_then_one_more_per_interval() {
        let limit = KeyedLimit::per_hour(3);
        assert!((0..3).all(|_| limit.allow("a")));
        assert!(!limit.allow("a"), "the fourth within the hour");
        assert!(limit.allow("b"), "keys are counted apart");
        tokio::time::advance(Duration::from_secs(19 * 60)).await;
        assert!(!limit.allow("a"), "not yet a third of an hour");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(limit.allow("a"));
        assert!(!limit.allow("a"));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(
            (0..3).all(|_| limit.allow("a")),
            "a full burst after an hour"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_swept_when_the_table_is_full() {
        let limit = KeyedLimit::per_hour(1);
        for i in 0..SWEEP_AT {
            assert!(limit.allow(i));
        }
        tokio::time::advance(Duration::from_secs(3601)).await;
        assert!(limit.allow(usize::MAX));
        assert_eq!(limit.keys.lock().unwrap().len(), 1);
    }
}

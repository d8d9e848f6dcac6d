//! [`RateLimit`]: a token bucket shared by every concurrent send, so `[mail] rate_per_second` holds for the whole
//! process (a relay's limit is per account, not per connection). Small enough to keep here: one shared
//! bucket needs none of a rate-limiting crate's keyed buckets or clocks.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Up to `rate` messages per second, with bursts of up to `rate` (at least one).
pub struct RateLimit {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimit {
    /// `None` or a rate that is not positive: no limit.
    pub fn new(rate_per_second: Option<f64>) -> Option<RateLimit> {
        let rate = rate_per_second.filter(|r| r.is_finite() && *r > 0.0)?;
        let burst = rate.max(1.0);
        Some(RateLimit {
            rate,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                updated: Instant::now(),
            }),
        })
    }

    /// Waits until one message may go.
    pub async fn acquire(&self) {
        let wait = {
            let mut bucket = self.bucket.lock().await;
            let now = Instant::now();
            let elapsed = now.duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
            bucket.updated = now;
            bucket.tokens -= 1.0;
            // A negative balance is this caller's place in the queue: it waits for its token to refill.
            (bucket.tokens < 0.0).then(|| Duration::from_secs_f64(-bucket.tokens / self.rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_and_the_rest_at_the_rate() {
        let limit = RateLimit::new(Some(10.0)).unwrap();
        let start = Instant::now();
        for _ in 0..10 {
            limit.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first burst waits for nothing"
        );
        for _ in 0..20 {
            limit.acquire().await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            (1.99..=2.01).contains(&elapsed),
            "20 more at 10/s take 2 s, took {elapsed}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_senders_share_one_budget() {
        let limit = std::sync::Arc::new(RateLimit::new(Some(5.0)).unwrap());
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limit = limit.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        limit.acquire().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            (2.99..=3.01).contains(&elapsed),
            "20 at 5/s with a burst of 5 take 3 s, took {elapsed}"
        );
    }

    #[test]
    fn no_rate_or_a_non_positive_one_is_no_limit() {
        assert!(RateLimit::new(None).is_none());
        assert!(RateLimit::new(Some(0.0)).is_none());
        assert!(RateLimit::new(Some(f64::NAN)).is_none());
    }
}

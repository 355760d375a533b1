//! `destination.max_requests_per_second`: a token bucket holding one token, shared by every
//! concurrent request of a destination.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Spaces requests `1 / max_requests_per_second` apart across every concurrent request of the
/// destination. Each caller reserves the next free slot under the lock and sleeps outside it, so
/// the lock is never held across the wait. A one-token bucket allows no burst: requests leave at
/// least `1 / rate` apart, so the rate holds over any window, not just on average. No crate
/// needed for ~20 lines.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Time between two requests.
    interval: Duration,
    /// When the next request may leave.
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` requests per second; `None` unless it is a positive finite
    /// number whose interval a `Duration` can hold.
    pub(crate) fn new(per_second: f64) -> Option<Self> {
        let interval = (per_second.is_finite() && per_second > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / per_second).ok())
            .flatten()?;
        Some(Self {
            interval,
            next: tokio::sync::Mutex::new(None),
        })
    }

    /// Waits for this request's slot; `false`, at once, when `stop` is cancelled first (the
    /// request must then not be sent).
    pub(crate) async fn acquire(&self, stop: &CancellationToken) -> bool {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |next| next.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => false,
            () = tokio::time::sleep_until(slot) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_leave_one_interval_apart() {
        let limiter = RateLimiter::new(2.0).unwrap();
        let start = Instant::now();
        let stop = CancellationToken::new();
        let slots = futures_util::future::join_all((0..5).map(|_| limiter.acquire(&stop))).await;
        assert!(slots.into_iter().all(|sent| sent));
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2050),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_ends_the_wait_for_a_slot() {
        // GIVEN one request a minute, the first slot taken
        let limiter = RateLimiter::new(1.0 / 60.0).unwrap();
        let stop = CancellationToken::new();
        assert!(limiter.acquire(&stop).await);
        // WHEN a stop comes while the next request waits its turn
        let start = Instant::now();
        let cancel = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.cancel();
        };
        let (sent, ()) = tokio::join!(limiter.acquire(&stop), cancel);
        // THEN the wait ends then, and the request is not to be sent
        assert!(!sent);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn only_a_positive_finite_rate_makes_a_limiter() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300] {
            assert!(RateLimiter::new(rate).is_none(), "{rate}");
        }
        assert!(RateLimiter::new(0.5).is_some());
    }
}

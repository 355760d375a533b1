//! Retry mechanics: counting, capped exponential delay with jitter, server delay hints and the
//! `retry` log line. Deciding *whether* a failure is worth retrying is the destination's job
//! (`meta::classify`); this module only knows the answer it is handed: classification apart
//! from mechanics, as vector's sinks keep them.
//!
//! The schedule is capped exponential (`base · 2ⁿ`, capped, `max_retries` of them: one line,
//! [`RetryPolicy::schedule`]) with "equal jitter", which keeps every delay within `[d/2, d]` so
//! that the cap is a real cap. The loop is the crate's own because it must count retries for
//! `Delivery.retries`, honour per-failure delay hints (`Retry-After`, Meta's usage headers), end
//! at once on a stop request with the failure it was going to retry, tell a failure that must not
//! be retried from retries running out, and log each retry in our format: a retry crate such as
//! `backon` would need a hook for each of those, and its own jitter adds up to 100 % on top of a
//! delay (a 30 s cap could become 60 s).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// First retry delay: long enough for a dropped connection to be re-established, short enough
/// that one flaky 5xx costs a fraction of a second.
pub(crate) const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(200);
/// Longest backoff delay: 200 ms doubled eight times reaches it, so with the default eight
/// retries a batch waits at most ~51 s (at least ~26 s) before `RetriesExhausted`.
pub(crate) const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// Longest wait a server hint may impose: Meta's `estimated_time_to_regain_access` can say an
/// hour; waiting that long inside one request would look like a hang, so we wait at most five
/// minutes per retry and let the run fail (and be re-run) if the throttle outlasts the retries.
pub(crate) const MAX_HINTED_DELAY: Duration = Duration::from_secs(300);

/// How often and how long to retry. Built from `[destination]` (`max_retries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt; 0 means try once.
    pub(crate) max_retries: u32,
    /// Delay before the first retry, doubled for each further one.
    pub(crate) base_delay: Duration,
    /// Cap on the backoff delay.
    pub(crate) max_delay: Duration,
    /// Cap on a delay the server asks for.
    pub(crate) max_hinted_delay: Duration,
    /// Spread delays over `[d/2, d]` so that concurrent requests do not retry in lockstep.
    pub(crate) jitter: bool,
}

impl RetryPolicy {
    /// The default schedule with `max_retries` retries.
    pub(crate) fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            max_hinted_delay: MAX_HINTED_DELAY,
            jitter: true,
        }
    }

    /// The backoff delays before each retry, without jitter: `base · 2ⁿ`, capped, `max_retries`
    /// of them.
    pub(crate) fn schedule(&self) -> impl Iterator<Item = Duration> {
        let (base, max) = (self.base_delay, self.max_delay);
        (0..self.max_retries).map(move |n| {
            base.checked_mul(2_u32.saturating_pow(n))
                .map_or(max, |d| d.min(max))
        })
    }

    /// The delay actually waited: the jittered backoff, or the server's hint (capped) if longer.
    pub(crate) fn delay(&self, backoff: Duration, hint: Option<Duration>) -> Duration {
        let backoff = if self.jitter && !backoff.is_zero() {
            let half = backoff / 2;
            half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
        } else {
            backoff
        };
        match hint {
            Some(hint) => backoff.max(hint.min(self.max_hinted_delay)),
            None => backoff,
        }
    }
}

/// What the classifier says about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Transient: try again, waiting at least `after` when the server said so.
    Retry {
        /// The server's delay hint, uncapped.
        after: Option<Duration>,
    },
    /// Retrying cannot help; hand the failure to the caller.
    Stop,
}

/// A failure that can name the remote trace id for the retry log line.
pub(crate) trait Traced: fmt::Display {
    /// The remote's trace id (Meta's `fbtrace_id`), when it gave one.
    fn trace_id(&self) -> Option<&str> {
        None
    }
}

/// A value obtained after `retries` retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retried<T> {
    /// The operation's result.
    pub(crate) value: T,
    /// Retries made before it (attempts − 1).
    pub(crate) retries: u32,
}

/// Why `retry_with_backoff` gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GaveUp<E> {
    /// The classifier said `Stop`.
    Stopped {
        /// The failure.
        error: E,
        /// Retries made before it.
        retries: u32,
    },
    /// Every retry failed transiently.
    Exhausted {
        /// The last failure.
        error: E,
        /// Retries made (= `max_retries`).
        retries: u32,
    },
    /// A stop was requested while waiting to retry (SIGTERM or Ctrl-C): the wait was cut short.
    Cancelled {
        /// The failure that was going to be retried.
        error: E,
        /// Retries made before it.
        retries: u32,
    },
}

/// Runs `op` until it succeeds, `classify` says `Stop`, or `policy.max_retries` retries have
/// failed, sleeping the backoff (or the server's hint) in between. Logs one `warn` per retry
/// with `retry`, `max`, `delay_ms`, `error` and `fbtrace_id`. No stop request can cut its waits:
/// see [`retry_until_stopped`].
#[cfg(test)]
pub(crate) async fn retry_with_backoff<T, E, C, Op, Fut>(
    policy: &RetryPolicy,
    classify: C,
    op: Op,
) -> Result<Retried<T>, GaveUp<E>>
where
    E: Traced,
    C: Fn(&E) -> Decision,
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_until_stopped(policy, &CancellationToken::new(), classify, op).await
}

/// [`retry_with_backoff`], with every wait between two attempts cut short when `stop` is
/// cancelled: the call then gives up at once with [`GaveUp::Cancelled`] and the last failure.
/// An attempt under way is not interrupted (it ends within `destination.request_timeout`);
/// a stop that comes during one makes the next wait, if any, end at once.
pub(crate) async fn retry_until_stopped<T, E, C, Op, Fut>(
    policy: &RetryPolicy,
    stop: &CancellationToken,
    classify: C,
    mut op: Op,
) -> Result<Retried<T>, GaveUp<E>>
where
    E: Traced,
    C: Fn(&E) -> Decision,
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut schedule = policy.schedule();
    let mut retries = 0;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(Retried { value, retries }),
            Err(error) => error,
        };
        let hint = match classify(&error) {
            Decision::Stop => return Err(GaveUp::Stopped { error, retries }),
            Decision::Retry { after } => after,
        };
        let Some(backoff) = schedule.next() else {
            return Err(GaveUp::Exhausted { error, retries });
        };
        retries += 1;
        let delay = policy.delay(backoff, hint);
        tracing::warn!(
            retry = retries,
            max = policy.max_retries,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            fbtrace_id = error.trace_id().unwrap_or("-"),
            "retrying request"
        );
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                tracing::info!(retries, "stop requested: the retry wait ends here");
                return Err(GaveUp::Cancelled { error, retries });
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use tokio::time::Instant;

    /// A test failure: transient or not, with an optional hint.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Flaky {
        transient: bool,
        hint: Option<Duration>,
    }

    impl fmt::Display for Flaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "flaky (transient: {})", self.transient)
        }
    }

    impl Traced for Flaky {}

    fn classify(error: &Flaky) -> Decision {
        if error.transient {
            Decision::Retry { after: error.hint }
        } else {
            Decision::Stop
        }
    }

    /// Paused-clock sleeps end on the next millisecond tick, so allow 1 ms per sleep.
    fn assert_about(elapsed: Duration, expected: Duration) {
        let slack = Duration::from_millis(20);
        assert!(
            elapsed >= expected && elapsed <= expected + slack,
            "{elapsed:?} vs {expected:?}"
        );
    }

    fn exact(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            jitter: false,
            ..RetryPolicy::new(max_retries)
        }
    }

    #[test]
    fn schedule_doubles_from_200ms_and_caps_at_30s() {
        let delays: Vec<u128> = RetryPolicy::new(10)
            .schedule()
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000],
            "ten retries, capped"
        );
        assert_eq!(RetryPolicy::new(0).schedule().count(), 0);
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        let policy = RetryPolicy::new(3);
        for _ in 0..1000 {
            let delay = policy.delay(Duration::from_secs(30), None);
            assert!(delay >= Duration::from_secs(15) && delay <= Duration::from_secs(30));
        }
    }

    #[test]
    fn hints_win_when_longer_and_are_capped() {
        let policy = exact(3);
        let second = Duration::from_secs(1);
        assert_eq!(
            policy.delay(second, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(policy.delay(second, Some(Duration::ZERO)), second);
        assert_eq!(
            policy.delay(second, Some(Duration::from_secs(3600))),
            MAX_HINTED_DELAY
        );
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_exponential_delays() {
        // GIVEN an operation failing transiently three times, then succeeding
        let calls = Cell::new(0);
        let start = Instant::now();
        // WHEN it is retried
        let result = retry_with_backoff(&exact(8), classify, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n <= 3 {
                    Err(Flaky {
                        transient: true,
                        hint: None,
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        // THEN it succeeds after 200 + 400 + 800 ms, counting three retries
        assert_eq!(
            result,
            Ok(Retried {
                value: 4,
                retries: 3
            })
        );
        assert_about(start.elapsed(), Duration::from_millis(1400));
    }

    #[tokio::test(start_paused = true)]
    async fn jittered_delays_stay_between_half_and_full_schedule() {
        let calls = Cell::new(0);
        let start = Instant::now();
        let result = retry_with_backoff(&RetryPolicy::new(8), classify, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n <= 5 {
                    Err(Flaky {
                        transient: true,
                        hint: None,
                    })
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(result.map(|r| r.retries), Ok(5));
        let full = Duration::from_millis(200 + 400 + 800 + 1600 + 3200);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= full / 2 && elapsed <= full + Duration::from_millis(20),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_max_and_report_exhaustion() {
        let calls = Cell::new(0u32);
        let start = Instant::now();
        let result: Result<Retried<()>, _> = retry_with_backoff(&exact(3), classify, || {
            calls.set(calls.get() + 1);
            async {
                Err(Flaky {
                    transient: true,
                    hint: None,
                })
            }
        })
        .await;
        assert_eq!(
            result,
            Err(GaveUp::Exhausted {
                error: Flaky {
                    transient: true,
                    hint: None
                },
                retries: 3
            })
        );
        assert_eq!(calls.get(), 4, "one attempt plus three retries");
        assert_about(start.elapsed(), Duration::from_millis(1400));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let calls = Cell::new(0u32);
        let start = Instant::now();
        let result: Result<Retried<()>, _> = retry_with_backoff(&exact(8), classify, || {
            calls.set(calls.get() + 1);
            async {
                Err(Flaky {
                    transient: false,
                    hint: None,
                })
            }
        })
        .await;
        assert!(matches!(result, Err(GaveUp::Stopped { retries: 0, .. })));
        assert_eq!(calls.get(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_cuts_a_throttled_wait_short() {
        // GIVEN a server asking for 240 s (Retry-After) before each retry, and a stop requested
        // 1 s into the first wait
        let stop = CancellationToken::new();
        let calls = Cell::new(0u32);
        let start = Instant::now();
        let cancel = {
            let stop = stop.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                stop.cancel();
            }
        };
        let policy = exact(8);
        let retried = retry_until_stopped(&policy, &stop, classify, || {
            calls.set(calls.get() + 1);
            async {
                Err::<(), _>(Flaky {
                    transient: true,
                    hint: Some(Duration::from_secs(240)),
                })
            }
        });
        let (result, ()) = tokio::join!(retried, cancel);
        // THEN the wait ends with the stop, with the failure it was going to retry
        assert!(
            matches!(result, Err(GaveUp::Cancelled { retries: 1, .. })),
            "{result:?}"
        );
        assert_eq!(calls.get(), 1, "no request after the stop");
        assert_about(start.elapsed(), Duration::from_secs(1));
        // AND a stop requested before a wait ends it before it starts
        let again = retry_until_stopped(&policy, &stop, classify, || async {
            Err::<(), _>(Flaky {
                transient: true,
                hint: Some(Duration::from_secs(240)),
            })
        })
        .await;
        assert!(matches!(again, Err(GaveUp::Cancelled { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_hint_longer_than_the_backoff_is_honoured() {
        let calls = Cell::new(0);
        let start = Instant::now();
        let result = retry_with_backoff(&exact(8), classify, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n == 1 {
                    Err(Flaky {
                        transient: true,
                        hint: Some(Duration::from_secs(7)),
                    })
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(result.map(|r| r.retries), Ok(1));
        assert_about(start.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_max_retries_tries_once() {
        let calls = Cell::new(0u32);
        let result: Result<Retried<()>, _> = retry_with_backoff(&exact(0), classify, || {
            calls.set(calls.get() + 1);
            async {
                Err(Flaky {
                    transient: true,
                    hint: None,
                })
            }
        })
        .await;
        assert!(matches!(result, Err(GaveUp::Exhausted { retries: 0, .. })));
        assert_eq!(calls.get(), 1);
    }
}

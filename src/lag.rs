//! Upload lag: how long after a sale the destination accepted it, measured from the sender's
//! side (the "freshness" Meta's Dataset Quality API scores). Each accepted event's lag, from
//! its `event_time` to the moment its batch was accepted, in whole seconds; per run, the
//! median, the 95th percentile and the maximum go to the stats, the `runs` table (written by
//! the ledger module), the metrics and `quality`.

use serde::ser::SerializeStruct as _;
use serde::{Serialize, Serializer};

/// The lags of one run's accepted events, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadLag {
    /// One entry per accepted event (4 bytes each: 4 MB for a million events).
    samples: Vec<u32>,
}

/// A run's lag figures in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagSummary {
    /// Half of the accepted events were accepted within this many seconds of their sale.
    pub median_seconds: f64,
    /// 95% of them within this many.
    pub p95_seconds: f64,
    /// The slowest.
    pub max_seconds: f64,
}

impl UploadLag {
    /// Records one accepted event: sold at `event_time`, accepted at `accepted_at` (unix
    /// seconds). A sale dated after its acceptance (a clock ahead) counts as no lag.
    pub fn record(&mut self, event_time: i64, accepted_at: i64) {
        let lag = accepted_at.saturating_sub(event_time).max(0);
        self.samples.push(u32::try_from(lag).unwrap_or(u32::MAX));
    }

    /// Every recorded lag, in recording order.
    pub(crate) fn samples(&self) -> &[u32] {
        &self.samples
    }

    /// The median, 95th percentile (nearest rank) and maximum; `None` when nothing was accepted.
    pub fn summary(&self) -> Option<LagSummary> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        Some(LagSummary {
            median_seconds: median(&sorted),
            p95_seconds: f64::from(nearest_rank(&sorted, 0.95)),
            max_seconds: f64::from(sorted[sorted.len() - 1]),
        })
    }
}

/// The median of sorted values (the mean of the two middle ones for an even count).
fn median(sorted: &[u32]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        f64::from(sorted[n / 2])
    } else {
        (f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0
    }
}

/// The nearest-rank percentile of sorted, non-empty values: the smallest value with at least
/// `p` of the values at or below it.
fn nearest_rank(sorted: &[u32], p: f64) -> u32 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Serialized as its summary (`null` when nothing was accepted), never as its samples.
impl Serialize for UploadLag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.summary() {
            None => serializer.serialize_none(),
            Some(summary) => {
                let mut s = serializer.serialize_struct("LagSummary", 3)?;
                s.serialize_field("median_seconds", &summary.median_seconds)?;
                s.serialize_field("p95_seconds", &summary.p95_seconds)?;
                s.serialize_field("max_seconds", &summary.max_seconds)?;
                s.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_p95_and_max_of_accepted_events() {
        let mut lag = UploadLag::default();
        assert_eq!(lag.summary(), None);
        assert_eq!(serde_json::to_string(&lag).unwrap(), "null");
        for seconds in 1..=100 {
            lag.record(1_000, 1_000 + seconds);
        }
        let summary = lag.summary().unwrap();
        assert_eq!(summary.median_seconds, 50.5);
        assert_eq!(summary.p95_seconds, 95.0);
        assert_eq!(summary.max_seconds, 100.0);
        assert_eq!(
            serde_json::to_string(&lag).unwrap(),
            r#"{"median_seconds":50.5,"p95_seconds":95.0,"max_seconds":100.0}"#
        );
    }

    #[test]
    fn a_sale_dated_after_its_acceptance_has_no_lag() {
        let mut lag = UploadLag::default();
        lag.record(2_000, 1_000);
        assert_eq!(lag.samples(), &[0]);
        assert_eq!(lag.summary().unwrap().max_seconds, 0.0);
    }
}

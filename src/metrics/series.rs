//! The series a [`Telemetry`] registers: each one's name, help text and type (counter, gauge,
//! histogram with its buckets), registered once when the metrics are made. Prometheus' naming
//! rules apply: only counters end in `_total` (the client adds it), and the last run's gauges
//! are named `ocapi_last_run_*`.

use std::borrow::Cow;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{Counters, LastRun, Seen, StatusLabel, Telemetry};

/// Upper bounds of the upload lag histogram's buckets, in seconds: a minute, 5 and 15 minutes,
/// 1, 3, 6, 12 hours, 1, 2 and 7 days (Meta accepts store events up to 62 days old, and scores
/// freshness against hours, not seconds).
const LAG_BUCKETS: [f64; 10] = [
    60.0, 300.0, 900.0, 3_600.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 604_800.0,
];

/// The stats fields shown as last-run gauges, with their help text.
const LAST_RUN_FIGURES: [(&str, &str); 12] = [
    ("rows_read", "Source rows read by the last run"),
    ("events", "Orders built into events by the last run"),
    ("sent", "Orders accepted by the destination in the last run"),
    (
        "skipped_duplicate",
        "Orders already sent, not sent again, in the last run",
    ),
    (
        "changed_after_send",
        "Sent orders whose value or event time changed since, seen by the last run",
    ),
    (
        "invalid",
        "Orders that could not become an event in the last run",
    ),
    (
        "anonymous",
        "Walk-in sales (no customer information, not sent) in the last run",
    ),
    (
        "rejected",
        "Events the destination rejected in the last run",
    ),
    ("retries", "Retried requests in the last run"),
    ("batches", "Requests sent by the last run"),
    (
        "held",
        "Orders dated ahead (a fast till clock) held by the last run until their time",
    ),
    (
        "ahead_of_clock",
        "Orders whose watermark was ahead of the source database's clock in the last run",
    ),
];

impl Telemetry {
    /// Metrics for `connector`, all counters at zero and no run yet.
    pub fn new(connector: &str) -> Self {
        let labels = [(Cow::Borrowed("connector"), Cow::Owned(connector.to_owned()))];
        let mut registry = Registry::with_labels(labels.into_iter());
        let counters = Counters::default();
        let lifetime: [(&str, &str, &Counter); 8] = [
            (
                "ocapi_rows_read",
                "Source rows read since the process started",
                &counters.rows_read,
            ),
            (
                "ocapi_events_sent",
                "Orders accepted by the destination since the process started",
                &counters.sent,
            ),
            (
                "ocapi_events_rejected",
                "Events the destination rejected since the process started",
                &counters.rejected,
            ),
            (
                "ocapi_orders_invalid",
                "Orders that could not become an event since the process started",
                &counters.invalid,
            ),
            (
                "ocapi_orders_anonymous",
                "Walk-in sales (no customer information, not sent) since the process started",
                &counters.anonymous,
            ),
            (
                "ocapi_orders_skipped_duplicate",
                "Orders already sent, not sent again, since the process started",
                &counters.skipped_duplicate,
            ),
            (
                "ocapi_retries",
                "Retried requests since the process started",
                &counters.retries,
            ),
            (
                "ocapi_requests",
                "Requests sent to the destination since the process started",
                &counters.requests,
            ),
        ];
        for (name, help, counter) in lifetime {
            registry.register(name, help, counter.clone());
        }
        let runs = Family::<StatusLabel, Counter>::default();
        registry.register(
            "ocapi_runs",
            "Runs finished since the process started, by status",
            runs.clone(),
        );
        let lag = Histogram::new(LAG_BUCKETS);
        registry.register(
            "ocapi_upload_lag_seconds",
            "Seconds from an accepted event's event_time to its acceptance",
            lag.clone(),
        );
        let in_progress = Gauge::default();
        registry.register(
            "ocapi_run_in_progress",
            "1 while a run is going, else 0",
            in_progress.clone(),
        );
        let mut last = LastRun::default();
        for (name, help) in LAST_RUN_FIGURES {
            let gauge = Gauge::default();
            registry.register(format!("ocapi_last_run_{name}"), help, gauge.clone());
            last.figures.push((name, gauge));
        }
        registry.register(
            "ocapi_last_run_duration_seconds",
            "Wall time of the last run",
            last.duration.clone(),
        );
        registry.register(
            "ocapi_last_run_status",
            "1 for the status the last run ended with, 0 for the others",
            last.status.clone(),
        );
        registry.register(
            "ocapi_last_run_finished_timestamp_seconds",
            "Unix time the last run finished",
            last.finished.clone(),
        );
        registry.register(
            "ocapi_last_success_timestamp_seconds",
            "Unix time of the last run that completed (degraded included)",
            last.last_success.clone(),
        );
        registry.register(
            "ocapi_last_run_match_keys",
            "Sent events carrying each user_data key in the last run",
            last.match_keys.clone(),
        );
        registry.register(
            "ocapi_last_run_dropped",
            "Customer values dropped as unusable in the last run, by user_data key",
            last.dropped.clone(),
        );
        registry.register(
            "ocapi_last_run_invalid_reason",
            "Invalid orders in the last run, by reason",
            last.invalid_reasons.clone(),
        );
        registry.register(
            "ocapi_last_run_upload_lag_seconds",
            "Upload lag of the last run's accepted events: median, p95 and max",
            last.upload_lag.clone(),
        );
        // NaN until a run says which version it uses (and for a version ocapi does not know).
        last.api_version_sunset.set(f64::NAN);
        registry.register(
            "ocapi_api_version_sunset_seconds",
            "Seconds until the configured Graph API version stops working (negative once past)",
            last.api_version_sunset.clone(),
        );
        registry.register(
            "ocapi_token_expires_in_seconds",
            "Seconds until the access token expires, as debug_token said at the last run \
             (absent when it never expires)",
            last.token_expires_in.clone(),
        );
        Self {
            registry,
            connector: connector.to_owned(),
            counters,
            runs,
            lag,
            in_progress,
            last,
            seen: Mutex::new(Seen::default()),
        }
    }
}

//! Unit tests of `metrics`.

use super::*;

#[test]
fn counters_are_counters_and_last_run_figures_are_gauges() {
    let telemetry = Telemetry::new("shop \"a\"");
    let mut stats = RunStats::new("shop \"a\"");
    telemetry.run_started();
    stats.sent = 4;
    telemetry.progress(&stats);
    assert!(telemetry
        .encode()
        .contains("ocapi_events_sent_total{connector=\"shop \\\"a\\\"\"} 4\n"));
    stats.status = RunStatus::Degraded;
    stats.sent = 7;
    stats.duration_ms = 1500;
    stats.accepted(100, 160);
    RunStats::bump(&mut stats.match_keys, "em", 7);
    RunStats::bump(&mut stats.dropped, "ph", 2);
    telemetry.run_finished(&stats);
    let text = telemetry.encode();
    assert!(
        text.contains("# TYPE ocapi_events_sent_total counter\n"),
        "{text}"
    );
    assert!(text.contains("ocapi_events_sent_total{connector=\"shop \\\"a\\\"\"} 7\n"));
    assert!(text.contains("# TYPE ocapi_last_run_sent gauge\n"));
    assert!(text.contains("ocapi_last_run_sent{connector=\"shop \\\"a\\\"\"} 7\n"));
    assert!(text.contains("status=\"degraded\"} 1\n"));
    assert!(text.contains("status=\"completed\"} 0\n"));
    assert!(text.contains("ocapi_last_run_duration_seconds{connector=\"shop \\\"a\\\"\"} 1.5\n"));
    assert!(text.contains(",key=\"em\"} 7\n"));
    assert!(text.contains("ocapi_last_run_dropped{connector=\"shop \\\"a\\\"\",key=\"ph\"} 2\n"));
    assert!(
        text.contains(
            "ocapi_upload_lag_seconds_bucket{connector=\"shop \\\"a\\\"\",le=\"60\"} 1\n"
        ),
        "{text}"
    );
    // Prometheus' naming rule: only counters end in `_total`.
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let mut parts = line.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
    }
}

#[test]
fn a_metrics_file_carries_counters_and_the_last_success_over() {
    let dir = std::env::temp_dir().join(format!("ocapi-metrics-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ocapi.prom");
    let mut stats = RunStats::new("shop");
    stats.status = RunStatus::Completed;
    stats.sent = 5;
    MetricsFile::new(path.clone(), "shop")
        .record(&stats)
        .unwrap();
    stats.status = RunStatus::Failed;
    stats.sent = 2;
    let mut second = MetricsFile::new(path.clone(), "shop");
    assert!(second.telemetry().last_success().is_some());
    second.record(&stats).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("ocapi_events_sent_total{connector=\"shop\"} 7\n"),
        "{text}"
    );
    assert!(text.contains("ocapi_runs_total{connector=\"shop\",status=\"completed\"} 1\n"));
    assert!(text.contains("ocapi_runs_total{connector=\"shop\",status=\"failed\"} 1\n"));
    assert!(text.contains("ocapi_last_run_sent{connector=\"shop\"} 2\n"));
    assert!(!text.contains("ocapi_last_success_timestamp_seconds{connector=\"shop\"} 0\n"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_skipped_run_counts_as_skipped_and_leaves_the_last_run_alone() {
    // GIVEN a completed run with walk-in sales
    let telemetry = Telemetry::new("shop");
    let mut stats = RunStats::new("shop");
    stats.status = RunStatus::Completed;
    stats.sent = 3;
    stats.anonymous = 2;
    telemetry.run_started();
    telemetry.run_finished(&stats);

    // WHEN a run is skipped because another holds the lock
    let mut skipped = RunStats::new("shop");
    skipped.status = RunStatus::Skipped;
    telemetry.run_started();
    telemetry.run_finished(&skipped);

    // THEN it is counted as skipped, and the last run is still the completed one
    let text = telemetry.encode();
    assert!(text.contains("ocapi_runs_total{connector=\"shop\",status=\"skipped\"} 1\n"));
    assert!(text.contains("ocapi_last_run_status{connector=\"shop\",status=\"completed\"} 1\n"));
    assert!(!text.contains("status=\"failed\"} 1\n"), "{text}");
    assert!(text.contains("ocapi_last_run_sent{connector=\"shop\"} 3\n"));
    assert!(text.contains("ocapi_run_in_progress{connector=\"shop\"} 0\n"));
    // AND walk-ins have their own counter and gauge
    assert!(text.contains("ocapi_orders_anonymous_total{connector=\"shop\"} 2\n"));
    assert!(text.contains("ocapi_last_run_anonymous{connector=\"shop\"} 2\n"));
}

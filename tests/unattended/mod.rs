//! Running unattended (issue #17): `watch --listen` with `/metrics`, `/healthz` and `/readyz`,
//! promtool's verdict on the exposition, upload lag, and alerts to a chat webhook, against the
//! real binary, a real PostgreSQL (behind a proxy the test can cut) and real HTTP.

mod alerts;
mod progress;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::support::proxy::PgProxy;
use crate::support::watch::Watch;
use crate::support::webhook::Webhook;
use crate::support::{config_text, insert_orders, migrate, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// `ocapi --config CONFIG --log-format json watch --listen 127.0.0.1:0 ARGS` with `env`, started.
fn start_watch(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Watch {
    let mut command = Watch::command(config, args);
    command.envs(env.iter().copied());
    Watch::start(command)
}

/// What these tests ask a running watch (see tests/support/watch.rs).
impl Watch {
    /// GET /readyz until it answers `status` (its answers are reused for 2 s), at most 30 s;
    /// the last answer.
    async fn readyz_until(&self, status: u16) -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.get("/readyz").await;
            if answer.0 == status || Instant::now() >= deadline {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The value of one series in `/metrics` (0 when absent).
    async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics").await;
        series_value(&text, series).unwrap_or(0.0)
    }

    /// Waits until `check` holds for `/metrics`' text.
    async fn wait_for_metrics(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (_, text) = self.get("/metrics").await;
            if check(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what} in\n{text}\nlogs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of `series` (name and labels, exactly) in an exposition.
fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `{connector="stores-test"}` with more labels.
fn c(extra: &str) -> String {
    format!("{{connector=\"stores-test\"{extra}}}")
}

/// Runs `promtool check metrics` on an exposition when promtool is installed (`.ci/run`
/// installs it); its verdict on Prometheus' naming and typing rules.
pub fn promtool_check(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool is not installed: skipping its check (.ci/run installs it)");
        return;
    };
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn watch_listen_serves_counters_during_a_run_and_the_last_run_after() {
    // GIVEN 300 orders sold an hour ago, sent through a slow stand-in 20 to a request (so that
    // the run is still going when the test makes the stand-in fail)
    let db = TestDb::new().await;
    insert_orders(&db, "R", 300, "2026-01-01T00:00:00Z").await;
    let slow = Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    };
    let graph = sandbox(slow.clone()).await;
    let config = db.meta_config(
        "batch_size = 20",
        &graph.base_url(),
        TOKEN,
        "batch_size = 20",
    );
    migrate(&config).await;

    // WHEN watch --listen runs, and the stand-in starts failing once the first events are in
    let watch = start_watch(&db.config_path(), &["--interval", "1h"], &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while graph.stats().events_accepted < 20 {
        assert!(Instant::now() < deadline, "nothing sent:\n{}", watch.logs());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    graph.set_faults(Faults {
        error_rate: 1.0,
        ..slow.clone()
    });

    // THEN during the run, the lifetime counter equals what the ledger holds as sent
    let text = watch
        .wait_for_metrics("the committed pages counted", |text| {
            series_value(text, &format!("ocapi_run_in_progress{}", c(""))) == Some(1.0)
                && series_value(text, &format!("ocapi_events_sent_total{}", c("")))
                    .is_some_and(|n| n > 0.0)
        })
        .await;
    let sent_now = db.ledger_counts().await.get("sent").copied().unwrap_or(0);
    let counted = series_value(&text, &format!("ocapi_events_sent_total{}", c(""))).unwrap();
    assert!(
        counted as i64 <= sent_now && sent_now < 300,
        "{counted} {sent_now}"
    );
    assert!(text.contains("# TYPE ocapi_events_sent_total counter\n"));
    promtool_check(&text);
    // AND it is live but not ready: no run has completed yet
    assert_eq!(watch.get("/healthz").await.0, 200);
    let (status, reason) = watch.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(reason, "no run has completed since the process started\n");

    // WHEN the stand-in recovers and the run completes
    graph.set_faults(slow);
    let text = watch
        .wait_for_metrics("the completed run", |text| {
            series_value(
                text,
                &format!("ocapi_runs_total{}", c(",status=\"completed\"")),
            ) == Some(1.0)
        })
        .await;

    // THEN the counters and the last run's gauges hold the whole run
    for (series, value) in [
        (format!("ocapi_events_sent_total{}", c("")), 300.0),
        (format!("ocapi_rows_read_total{}", c("")), 300.0),
        (format!("ocapi_last_run_sent{}", c("")), 300.0),
        (format!("ocapi_last_run_rows_read{}", c("")), 300.0),
        (format!("ocapi_run_in_progress{}", c("")), 0.0),
        (
            format!("ocapi_last_run_status{}", c(",status=\"completed\"")),
            1.0,
        ),
        (
            format!("ocapi_last_run_match_keys{}", c(",key=\"em\"")),
            300.0,
        ),
        (format!("ocapi_upload_lag_seconds_count{}", c("")), 300.0),
        // (sold an hour ago: none within 15 minutes, all within 3 hours)
        (
            format!("ocapi_upload_lag_seconds_bucket{}", c(",le=\"900\"")),
            0.0,
        ),
        (
            format!("ocapi_upload_lag_seconds_bucket{}", c(",le=\"10800\"")),
            300.0,
        ),
    ] {
        assert_eq!(
            series_value(&text, &series),
            Some(value),
            "{series} in\n{text}"
        );
    }
    assert!(series_value(&text, &format!("ocapi_retries_total{}", c(""))).unwrap() > 0.0);
    // (orders sold an hour ago: the lag is an hour and the seconds the run took)
    let median = series_value(
        &text,
        &format!("ocapi_last_run_upload_lag_seconds{}", c(",stat=\"median\"")),
    )
    .unwrap();
    assert!((3600.0..3700.0).contains(&median), "{median}");
    promtool_check(&text);
    // AND it is ready now
    assert_eq!(watch.get("/readyz").await, (200, "ok\n".to_owned()));
    assert_eq!(watch.get("/healthz").await, (200, "ok\n".to_owned()));
    // AND the run's lag is in the runs table
    let row = db
        .client
        .query_one(
            "select upload_lag_median_seconds, upload_lag_p95_seconds, upload_lag_max_seconds
             from ocapi.runs where status = 'completed'",
            &[],
        )
        .await
        .unwrap();
    let (stored_median, p95, max): (f64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(stored_median, median);
    assert!(
        stored_median <= p95 && p95 <= max,
        "{stored_median} {p95} {max}"
    );
    assert_eq!(watch.stop(Duration::from_secs(90)).await, Some(0));
}

#[tokio::test]
async fn readyz_goes_503_when_the_database_refuses_connections_and_back_to_200() {
    // GIVEN a source and ledger reached through a proxy, and a watch whose run completed
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let proxy = PgProxy::start().await;
    let config_file = db.dir.join("proxied.toml");
    std::fs::write(
        &config_file,
        config_text(&proxy.url(&db.name), &db.out_path(), "", None),
    )
    .unwrap();
    migrate(&ocapi::config::Config::load(&config_file).unwrap()).await;
    let watch = start_watch(&config_file, &["--interval", "1h"], &[]);
    watch
        .wait_for_metrics("a completed run", |text| {
            series_value(
                text,
                &format!("ocapi_runs_total{}", c(",status=\"completed\"")),
            ) == Some(1.0)
        })
        .await;
    assert_eq!(watch.get("/readyz").await, (200, "ok\n".to_owned()));

    // WHEN PostgreSQL refuses connections
    proxy.stop().await;

    // THEN /readyz answers 503 with a one-line reason, and /healthz stays 200
    let (status, reason) = watch.readyz_until(503).await;
    assert_eq!(status, 503);
    assert!(reason.starts_with("source unreachable: "), "{reason}");
    assert_eq!(reason.lines().count(), 1, "{reason}");
    assert_eq!(watch.get("/healthz").await.0, 200);

    // WHEN it accepts them again; THEN /readyz is 200 again
    proxy.restart().await;
    assert_eq!(watch.readyz_until(200).await, (200, "ok\n".to_owned()));
    assert_eq!(
        watch.metric(&format!("ocapi_last_run_sent{}", c(""))).await,
        5.0
    );
    assert_eq!(watch.stop(Duration::from_secs(90)).await, Some(0));
}

//! Running unattended (issue #17): `watch --listen` with `/metrics`, `/healthz` and `/readyz`,
//! promtool's verdict on the exposition, upload lag, and alerts to a chat webhook, against the
//! real binary, a real PostgreSQL (behind a proxy the test can cut) and real HTTP.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::webhook::Webhook;
use crate::support::{admin_url, config_text, insert_orders, migrate, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// A running `ocapi watch` and what it logged so far.
pub struct Watch {
    /// The process.
    child: Child,
    /// Its stderr lines.
    lines: Arc<Mutex<Vec<String>>>,
    /// Where `--listen` serves.
    pub addr: SocketAddr,
}

impl Watch {
    /// Starts `ocapi --log-format json watch --listen 127.0.0.1:0 ARGS` and waits for its address.
    fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["watch", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Self::spawn(config, &all, env)
    }

    /// Starts `ocapi --log-format json ARGS` (a `watch --listen`) and waits for its address.
    pub fn spawn(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = crate::support::command(config)
            .args(["--log-format", "json"])
            .args(args)
            .envs(env.iter().copied())
            .env("OCAPI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(addr) = json["fields"]["address"].as_str() {
                        let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "watch never said where it listens:\n{}",
                    lines.lock().unwrap().join("\n")
                )
            });
        Self { child, lines, addr }
    }

    /// GET a path; the status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

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

    /// The logs so far.
    pub fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// SIGTERM, then the exit code.
    pub async fn stop(self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let mut child = self.child;
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap()
            .code()
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

/// A TCP proxy in front of PostgreSQL that the test can stop (connections are then refused
/// and open ones cut) and start again on the same port.
struct PgProxy {
    /// Its address.
    addr: SocketAddr,
    /// PostgreSQL's.
    upstream: SocketAddr,
    /// The accept loop and the connections, aborted on stop.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl PgProxy {
    /// A proxy to the test server.
    async fn start() -> Self {
        let config: tokio_postgres::Config = admin_url().parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            tokio_postgres::config::Host::Unix(_) => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    /// Accepts and forwards connections on `listener`.
    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Refuses connections and cuts the open ones.
    async fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        // The listener is dropped with its task; let the runtime get there.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(self.addr).await.is_err());
    }

    /// Accepts connections again, on the same port.
    async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// A URL for `database` through the proxy.
    fn url(&self, database: &str) -> String {
        let config: tokio_postgres::Config = admin_url().parse().unwrap();
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        format!("postgres://{user}{password}@{}/{database}", self.addr)
    }
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
    let watch = Watch::start(&db.config_path(), &["--interval", "1h"], &[]);
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
    assert_eq!(watch.stop().await, Some(0));
}

#[tokio::test]
async fn readyz_goes_503_when_the_database_refuses_connections_and_back_to_200() {
    // GIVEN a source and ledger reached through a proxy, and a watch whose run completed
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let mut proxy = PgProxy::start().await;
    let config_file = db.dir.join("proxied.toml");
    std::fs::write(
        &config_file,
        config_text(&proxy.url(&db.name), &db.out_path(), "", None),
    )
    .unwrap();
    migrate(&ocapi::config::Config::load(&config_file).unwrap()).await;
    let watch = Watch::start(&config_file, &["--interval", "1h"], &[]);
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
    assert_eq!(watch.stop().await, Some(0));
}

#[tokio::test]
async fn watch_alerts_a_webhook_once_while_failing_and_once_on_recovery() {
    // GIVEN a chat webhook whose URL is in the environment, and a watch whose database is
    // reached through a proxy
    let webhook = Webhook::start().await;
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let mut proxy = PgProxy::start().await;
    let config_file = db.dir.join("proxied.toml");
    let text = config_text(&proxy.url(&db.name), &db.out_path(), "", None)
        + "\n[alerts]\nwebhook_url_env = \"TEST_ALERT_WEBHOOK\"\nquiet_period = \"1h\"\n";
    std::fs::write(&config_file, text).unwrap();
    migrate(&ocapi::config::Config::load(&config_file).unwrap()).await;
    let watch = Watch::start(
        &config_file,
        &["--interval", "1s"],
        &[("TEST_ALERT_WEBHOOK", webhook.url.as_str())],
    );
    watch
        .wait_for_metrics("a completed run", |text| {
            series_value(
                text,
                &format!("ocapi_runs_total{}", c(",status=\"completed\"")),
            )
            .is_some_and(|n| n >= 1.0)
        })
        .await;
    assert!(webhook.texts().is_empty(), "{:?}", webhook.texts());

    // WHEN the database goes away for three failing runs
    proxy.stop().await;
    watch
        .wait_for_metrics("three failed runs", |text| {
            series_value(
                text,
                &format!("ocapi_runs_total{}", c(",status=\"failed\"")),
            )
            .is_some_and(|n| n >= 3.0)
        })
        .await;
    // THEN the webhook got one message about it, not three
    let texts = webhook.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].starts_with("ocapi connector \"stores-test\": run failed: "),
        "{texts:?}"
    );

    // WHEN the database is back
    proxy.restart().await;
    let completed = watch
        .metric(&format!("ocapi_runs_total{}", c(",status=\"completed\"")))
        .await;
    watch
        .wait_for_metrics("a run completing again", |text| {
            series_value(
                text,
                &format!("ocapi_runs_total{}", c(",status=\"completed\"")),
            )
            .is_some_and(|n| n > completed)
        })
        .await;
    // THEN one recovery message follows, and the webhook's URL was never logged
    let texts = webhook.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("recovered"), "{texts:?}");
    let logs = watch.logs();
    assert!(!logs.contains("secret-7d1e"), "{logs}");
    assert_eq!(watch.stop().await, Some(0));
}

#[tokio::test]
async fn a_degraded_run_alerts_and_an_undeliverable_alert_never_fails_the_run() {
    // GIVEN a third of the orders invalid, and alerts configured in a file
    let db = TestDb::new().await;
    insert_orders(&db, "R", 6, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set total = null where order_id in ('R1', 'R2')")
        .await;
    let webhook = Webhook::start().await;
    let url_file = db.dir.join("webhook-url");
    std::fs::write(&url_file, format!("{}\n", webhook.url)).unwrap();
    // (no quiet period: the second degraded run alerts again)
    let alerts = format!(
        "\n[alerts]\nwebhook_url_file = {:?}\nquiet_period = \"0s\"\n",
        url_file.display().to_string()
    );
    let config_file = db.config_path();
    let base = config_text(&db.url, &db.out_path(), "", None);
    std::fs::write(&config_file, base.clone() + &alerts).unwrap();
    migrate(&ocapi::config::Config::load(&config_file).unwrap()).await;
    // (off the runtime's thread, which serves the webhook meanwhile)
    let ocapi_run = |config: &Path| {
        let config = config.to_path_buf();
        tokio::task::spawn_blocking(move || {
            crate::support::command(&config)
                .args(["run", "--max-invalid-ratio", "0.05"])
                .output()
                .unwrap()
        })
    };

    // WHEN a degraded run ends; THEN the webhook is told, with counts only
    let out = ocapi_run(&config_file).await.unwrap();
    assert_eq!(out.status.code(), Some(3));
    let texts = webhook.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains("degraded: 2 invalid and 0 rejected of 6 orders"),
        "{texts:?}"
    );

    // WHEN the webhook refuses connections
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}/hooks/secret-7d1e", closed.local_addr().unwrap());
    drop(closed);
    std::fs::write(&url_file, closed_url).unwrap();
    insert_orders(&db, "N", 1, "2026-01-05T00:00:00Z").await;
    db.exec("update shop.store_transactions set total = null where order_id = 'N1'")
        .await;
    let out = ocapi_run(&config_file).await.unwrap();

    // THEN the run still ends as it would have (3, degraded), logging the failure without
    // the URL
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot deliver the alert"), "{stderr}");
    assert!(!stderr.contains("secret-7d1e"), "{stderr}");
}

#[tokio::test]
async fn runs_and_quality_show_the_upload_lag_and_quality_names_the_stand_in() {
    // GIVEN 50 orders sold an hour ago, sent through the stand-in
    let db = TestDb::new().await;
    insert_orders(&db, "R", 50, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    let stats = crate::support::run(&config).await;
    let lag = stats.upload_lag.summary().unwrap();
    assert!((3600.0..3700.0).contains(&lag.median_seconds), "{lag:?}");
    let ocapi = |args: &'static [&'static str]| {
        let config = db.config_path();
        tokio::task::spawn_blocking(move || {
            crate::support::command(&config)
                .args(args)
                .output()
                .unwrap()
        })
    };

    // WHEN listing runs; THEN the run carries its lag, as the run's stats said
    let out = ocapi(&["runs", "--json"]).await.unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["upload_lag_median_seconds"], lag.median_seconds);
    assert_eq!(runs[0]["upload_lag_p95_seconds"], lag.p95_seconds);
    assert_eq!(runs[0]["upload_lag_max_seconds"], lag.max_seconds);
    let out = ocapi(&["runs"]).await.unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("lag p50/p95"), "{table}");
    assert!(table.contains("1.0h/1.0h"), "{table}");

    // WHEN reading quality from the stand-in
    let out = ocapi(&["quality"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);

    // THEN it says the scores are the stand-in's, and shows ocapi's lag beside freshness
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("are the local stand-in's"), "{text}");
    assert!(text.contains("not Meta's"), "{text}");
    let freshness = text.lines().find(|l| l.contains("freshness")).unwrap();
    assert!(freshness.ends_with("p50 1.0h"), "{text}");
    assert!(
        text.contains(&format!(
            "median {}, p95 {}, max {}",
            ocapi::human::duration(lag.median_seconds),
            ocapi::human::duration(lag.p95_seconds),
            ocapi::human::duration(lag.max_seconds)
        )),
        "{text}"
    );
}

#[tokio::test]
async fn run_without_a_terminal_logs_progress_lines() {
    // GIVEN 60 orders read 20 to a page
    let db = TestDb::new().await;
    insert_orders(&db, "R", 60, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 20", None);
    migrate(&config).await;

    // WHEN `ocapi run` runs with stderr piped (no terminal)
    let path = db.config_path();
    let out = tokio::task::spawn_blocking(move || {
        crate::support::command(&path)
            .args(["--log-format", "json", "run"])
            .env("OCAPI_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    // THEN it logs progress lines with rows read, sent and a rate
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "run progress")
        .collect();
    assert!(!progress.is_empty(), "{stderr}");
    let first = &progress[0]["fields"];
    assert!(first["rows_read"].as_u64().unwrap() >= 20, "{first}");
    assert!(first["sent"].as_u64().unwrap() >= 20, "{first}");
    assert!(first["rows_per_sec"].as_u64().is_some(), "{first}");
}

#[tokio::test]
async fn a_wrong_token_against_the_stand_in_says_which_token_it_accepts() {
    // GIVEN the stand-in and a config carrying another token
    let db = TestDb::new().await;
    insert_orders(&db, "R", 2, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), "a-real-looking-meta-token", "");
    migrate(&config).await;

    // WHEN a run sends to it
    let error = ocapi::run::run(
        &config,
        ocapi::run::RunOptions::default(),
        std::future::pending(),
    )
    .await
    .unwrap_err();

    // THEN the error names the stand-in's token, not Business Manager
    let message = ocapi::error::chain(&error);
    assert!(message.contains("`ocapi sandbox`"), "{message}");
    assert!(message.contains("sandbox-token"), "{message}");
    assert!(!message.contains("Business Manager"), "{message}");
}

#[tokio::test]
async fn one_shot_runs_stay_quiet_within_the_quiet_period_and_alert_the_recovery() {
    // GIVEN a third of the orders invalid, and alerts with an hour's quiet period
    let db = TestDb::new().await;
    insert_orders(&db, "R", 6, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set total = null where order_id in ('R1', 'R2')")
        .await;
    let webhook = Webhook::start().await;
    let text = config_text(&db.url, &db.out_path(), "", None)
        + "\n[alerts]\nwebhook_url_env = \"TEST_ALERT_WEBHOOK\"\nquiet_period = \"1h\"\n";
    let config_file = db.config_path();
    std::fs::write(&config_file, text).unwrap();
    migrate(&ocapi::config::Config::load(&config_file).unwrap()).await;
    let url = webhook.url.clone();
    let ocapi_run = move || {
        let (config, url) = (config_file.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            crate::support::command(&config)
                .args(["run", "--max-invalid-ratio", "0.05"])
                .env("TEST_ALERT_WEBHOOK", url)
                .output()
                .unwrap()
                .status
                .code()
        })
    };

    // (check sees the webhook's variable, and says so when it is missing)
    let check = |url: Option<String>| {
        let config = db.config_path();
        tokio::task::spawn_blocking(move || {
            let mut command = crate::support::command(&config);
            command.arg("check");
            if let Some(url) = url {
                command.env("TEST_ALERT_WEBHOOK", url);
            }
            command.output().unwrap()
        })
    };
    let out = check(Some(webhook.url.clone())).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok    alerts: webhook set (quiet period 1.0h)\n"),
        "{text}"
    );
    let out = check(None).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains(
        "FAIL  environment variable TEST_ALERT_WEBHOOK (named by `alerts.webhook_url_env`) is not set"
    ));

    // WHEN a degraded run, then another degraded one within the hour, run from cron
    assert_eq!(ocapi_run().await.unwrap(), Some(3));
    insert_orders(&db, "N", 1, "2026-01-05T00:00:00Z").await;
    db.exec("update shop.store_transactions set total = null where order_id = 'N1'")
        .await;
    assert_eq!(ocapi_run().await.unwrap(), Some(3));
    // THEN only the first alerted
    assert_eq!(webhook.texts().len(), 1, "{:?}", webhook.texts());

    // WHEN the invalid order is fixed and a run completes, and another after it
    db.exec(
        "update shop.store_transactions set total = 10, updated_at = '2026-01-05T12:00:00Z'
         where order_id = 'N1'",
    )
    .await;
    insert_orders(&db, "G", 3, "2026-01-06T00:00:00Z").await;
    assert_eq!(ocapi_run().await.unwrap(), Some(0));
    insert_orders(&db, "H", 3, "2026-01-07T00:00:00Z").await;
    assert_eq!(ocapi_run().await.unwrap(), Some(0));

    // THEN the first says the connector recovered, once
    let texts = webhook.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("degraded"), "{texts:?}");
    assert!(texts[1].contains("recovered"), "{texts:?}");
}

#[tokio::test]
async fn run_on_a_terminal_shows_a_progress_bar() {
    // GIVEN 200 orders read 20 to a page
    let db = TestDb::new().await;
    insert_orders(&db, "R", 200, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 20", None);
    migrate(&config).await;

    // WHEN `ocapi run` runs on a terminal (a pseudo-terminal from util-linux's `script`)
    let command = format!(
        "{} --config {} run",
        env!("CARGO_BIN_EXE_ocapi"),
        db.config_path().display()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("OCAPI_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    // THEN the terminal showed the bar: rows read, rate and orders sent, redrawn in place
    assert_eq!(out.status.code(), Some(0));
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains(" rows read  "), "{screen}");
    assert!(screen.contains(" rows/s  "), "{screen}");
    // (the bar redraws at most 20 times a second, so which counts it showed last varies)
    assert!(screen.contains(" sent, 0 invalid, 0 rejected"), "{screen}");
    assert!(!screen.contains("run progress"), "{screen}");
    // AND the log line of the finished run, written while the bar was up, starts on a line
    // of its own, not glued to the bar's text
    let at = screen
        .find("run finished")
        .expect("the run finished line was logged");
    let line_start = ["\n", "\r", "\x1b[2K"]
        .iter()
        .filter_map(|mark| screen[..at].rfind(mark).map(|i| i + mark.len()))
        .max()
        .unwrap_or(0);
    assert!(
        !screen[line_start..at].contains("rows read"),
        "{:?}",
        &screen[line_start..at]
    );
}

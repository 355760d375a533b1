//! Runs around a connector's life (issue 22): a cron run that overlaps another is `skipped`,
//! not failed, unless the lock has been held so long that its holder may be stuck (kind 7); a
//! run that finds no ledger state sends only the last 7 days unless told otherwise (kind 9); a
//! run stopped by SIGINT commits what is in flight and is recorded as `stopped`.

use crate::support::webhook::Webhook;
use crate::support::{connect, migrate, TestDb};

/// A session holding the test connector's lock, as another run would, named `name`.
async fn hold_lock(db: &TestDb, name: &str) -> (tokio_postgres::Client, i32) {
    let holder = connect(&db.url).await;
    holder
        .batch_execute(&format!("set application_name = '{name}'"))
        .await
        .unwrap();
    holder
        .batch_execute("select pg_advisory_lock(hashtext('ocapi:stores-test'))")
        .await
        .unwrap();
    let pid: i32 = holder
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    (holder, pid)
}

/// Runs the binary with the alert webhook's URL in the environment.
async fn ocapi_alerting(db: &TestDb, webhook: &Webhook, args: &[&str]) -> std::process::Output {
    let mut command = crate::support::command(&db.config_path());
    command.args(args).env("TEST_ALERT_WEBHOOK", &webhook.url);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// A connector with one order, alerts to a webhook, and `extra` in `[connector]`.
async fn alerting_connector(extra: &str) -> TestDb {
    let db = TestDb::new().await;
    crate::support::insert_orders(&db, "L", 1, "2026-01-01T00:00:00Z").await;
    db.config("", None);
    let config = db.edit_config(&[
        ("lock_wait = \"2s\"", &format!("lock_wait = \"2s\"\n{extra}")),
        (
            "[destination]",
            "[alerts]\nwebhook_url_env = \"TEST_ALERT_WEBHOOK\"\nquiet_period = \"0s\"\n\n[destination]",
        ),
    ]);
    migrate(&config).await;
    db
}

/// The number of rows in the ledger's `runs` table.
async fn runs_rows(db: &TestDb) -> i64 {
    db.client
        .query_one("select count(*) from ocapi.runs", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_run_overlapping_another_is_skipped_with_exit_0_and_no_alert() {
    // GIVEN another run holding the connector's lock, and alerts to a webhook
    let db = alerting_connector("").await;
    let webhook = Webhook::start().await;
    let (holder, pid) = hold_lock(&db, "ocapi-other-run").await;
    let metrics = db.dir.join("ocapi.prom");

    // WHEN a cron run starts meanwhile (lock_wait is 2s)
    let out = ocapi_alerting(
        &db,
        &webhook,
        &["--metrics-file", metrics.to_str().unwrap(), "run", "--json"],
    )
    .await;

    // THEN it exits 0 with the status `skipped`, naming who holds the lock
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["status"], "skipped");
    let note = stats["note"].as_str().unwrap();
    assert!(note.contains("holds its lock"), "{note}");
    assert!(note.contains(&format!("process {pid}")), "{note}");
    // AND it sent nothing, recorded no run, alerted no one and left the metrics alone
    assert!(db.written_events().is_empty());
    assert_eq!(runs_rows(&db).await, 0);
    assert!(webhook.texts().is_empty(), "{:?}", webhook.texts());
    assert!(!metrics.exists());

    // AND the text summary says so too
    let out = ocapi_alerting(&db, &webhook, &["run"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped"));
    assert!(webhook.texts().is_empty(), "{:?}", webhook.texts());
    drop(holder);
}

#[tokio::test]
async fn a_lock_held_longer_than_stuck_run_after_alerts_naming_its_holder_and_exits_1() {
    // GIVEN a lock held longer than `connector.stuck_run_after` (1s; the run waits 2s for it)
    let db = alerting_connector("stuck_run_after = \"1s\"").await;
    let webhook = Webhook::start().await;
    let (holder, pid) = hold_lock(&db, "ocapi-stuck-run").await;

    // WHEN a run finds it held
    let out = ocapi_alerting(&db, &webhook, &["run"]).await;

    // THEN it exits 1 and the alert names since when and which process holds it
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let texts = webhook.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    let text = &texts[0];
    for part in [
        "has held its lock since",
        "stuck_run_after",
        &format!("process {pid}"),
        "ocapi-stuck-run",
        &format!("pg_terminate_backend({pid})"),
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    assert!(db.written_events().is_empty());
    drop(holder);
}

/// Orders `OLD` (bought 30 days ago, written then) and `NEW` (an hour ago), with `source_extra`
/// in `[source]` (the test config sets `start` unless `source_extra` mentions it).
async fn old_and_new(source_extra: &str) -> TestDb {
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency,
                                              email) values
         ('OLD', now() - interval '30 days', now() - interval '30 days', 10, 'USD', 'o@example.com'),
         ('NEW', now() - interval '1 hour', now() - interval '1 hour', 20, 'USD', 'n@example.com')",
    )
    .await;
    let config = db.config(source_extra, None);
    migrate(&config).await;
    db
}

/// The event ids written, sorted.
fn sent_ids(db: &TestDb) -> Vec<String> {
    let mut ids: Vec<String> = db
        .written_events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_run_without_ledger_state_sends_the_last_7_days_unless_told_to_send_history() {
    // GIVEN a fresh ledger, orders of 30 days ago and of today, and no `source.start`
    let db = old_and_new("# no start: a first install, or a dropped ledger").await;

    // WHEN a run starts
    let out = crate::support::ocapi(&db.config_path(), &["run"]).await;

    // THEN only today's order is sent, and the summary names what it left and how to send it
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sent_ids(&db), ["NEW"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("left 1 orders older than 7 days"), "{text}");
    for way in ["--initial-sync", "source.start", "ocapi backfill --from"] {
        assert!(text.contains(way), "{way:?} not in {text}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("left 1 orders"));
    assert_eq!(db.ledger_text("OLD", "status").await, None);

    // AND given `--initial-sync`, a fresh ledger sends both
    let db = old_and_new("# no start").await;
    let out = crate::support::ocapi(&db.config_path(), &["run", "--initial-sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sent_ids(&db), ["NEW", "OLD"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["history_left"], 0);

    // AND so does one with `source.start`
    let start = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let db = old_and_new(&format!("start = \"{start}\"")).await;
    let out = crate::support::ocapi(&db.config_path(), &["run"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sent_ids(&db), ["NEW", "OLD"]);
}

#[tokio::test]
async fn watch_skips_its_runs_while_another_holds_the_lock_and_does_not_count_them_failed() {
    // GIVEN another run holding the lock, and a watch alerting a webhook (its URL in a file)
    let db = alerting_connector("").await;
    let webhook = Webhook::start().await;
    let url_file = db.dir.join("webhook-url");
    std::fs::write(&url_file, &webhook.url).unwrap();
    let config = db.edit_config(&[(
        "webhook_url_env = \"TEST_ALERT_WEBHOOK\"",
        &format!("webhook_url_file = {:?}", url_file.display().to_string()),
    )]);
    let (holder, _) = hold_lock(&db, "ocapi-other-run").await;
    let telemetry = std::sync::Arc::new(ocapi::metrics::Telemetry::new("stores-test"));

    // WHEN watch ticks every second for a few seconds (each run waits 2s for the lock)
    let options = ocapi::commands::watch::WatchOptions {
        interval: std::time::Duration::from_secs(1),
        run: ocapi::run::RunOptions::default(),
        metrics: None,
        telemetry: Some(std::sync::Arc::clone(&telemetry)),
        health: None,
        alerts: ocapi::alerts::Alerter::from_config(&config.alerts).unwrap(),
    };
    let stop = tokio::time::sleep(std::time::Duration::from_secs(4));
    let summary = ocapi::commands::watch::watch(&config, options, stop)
        .await
        .unwrap();

    // THEN its runs were skipped, none failed, no alert went out and nothing was sent
    assert!(summary.skipped >= 1, "{summary:?}");
    assert_eq!((summary.failed, summary.completed), (0, 0));
    assert!(webhook.texts().is_empty(), "{:?}", webhook.texts());
    let text = telemetry.encode();
    assert!(text.contains("status=\"skipped\"}"), "{text}");
    // (no last run: no `ocapi_last_run_status` series, so no `failed` one)
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("ocapi_last_run_status{")),
        "{text}"
    );
    assert!(db.written_events().is_empty());
    drop(holder);
}

#[tokio::test]
async fn the_first_runs_7_day_floor_holds_on_later_runs_until_initial_sync() {
    // GIVEN a first run without `source.start` that left the 30-day-old order
    let db = old_and_new("# no start: a first install, or a dropped ledger").await;
    let out = crate::support::ocapi(&db.config_path(), &["run"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sent_ids(&db), ["NEW"]);

    // WHEN every row is re-stamped (a bulk reload, a dbt rebuild) and a plain run follows
    db.exec("update shop.store_transactions set updated_at = now()")
        .await;
    let out = crate::support::ocapi(&db.config_path(), &["run", "--json"]).await;

    // THEN the old order is still left, counted and said, never sent nor recorded
    assert_eq!(out.status.code(), Some(0));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["history_left"], 1, "{stats}");
    assert_eq!(stats["sent"], 0, "{stats}");
    let note = stats["note"].as_str().unwrap_or_default();
    assert!(note.contains("--initial-sync"), "{note}");
    assert_eq!(sent_ids(&db), ["NEW"]);
    assert_eq!(db.ledger_text("OLD", "status").await, None);

    // AND `--initial-sync` lifts the floor: the order is sent, once
    let out = crate::support::ocapi(&db.config_path(), &["run", "--initial-sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["history_left"], 0, "{stats}");
    assert_eq!(sent_ids(&db), ["NEW", "OLD"]);
    db.exec("update shop.store_transactions set updated_at = now()")
        .await;
    let out = crate::support::ocapi(&db.config_path(), &["run", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sent_ids(&db), ["NEW", "OLD"]);
}

/// Trial finding 3: a run stopped by SIGINT (Ctrl-C) commits the pages in flight, exits 0 as
/// README's exit table says, and is recorded and summarized as `stopped`, not `completed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_sigint_is_recorded_as_stopped() {
    // GIVEN 3,000 orders in pages of 20, and a stand-in that answers each request in 200 ms
    let db = crate::support::TestDb::new().await;
    crate::support::insert_orders(&db, "R", 3000, "2026-01-01T00:00:00Z").await;
    let graph = crate::support::sandbox(ocapi::sandbox::Faults {
        latency: std::time::Duration::from_millis(200),
        ..ocapi::sandbox::Faults::default()
    })
    .await;
    let config = db.meta_config(
        "batch_size = 20",
        &graph.base_url(),
        crate::support::TOKEN,
        "",
    );
    crate::support::migrate(&config).await;

    // WHEN `ocapi run` gets SIGINT once its first pages are committed
    let child = crate::support::command(&db.config_path())
        .arg("run")
        .env("OCAPI_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.ledger_counts().await.get("sent").copied().unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "the run sent nothing");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let out = crate::support::signal_and_wait(child, "INT").await;
    let stdout = String::from_utf8_lossy(&out.stdout);

    // THEN it exited 0, its summary and its `runs` row say `stopped`, and not all was sent
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": stopped\n"), "{stdout}");
    assert!(stdout.contains("stopped by a signal"), "{stdout}");
    let row = db
        .client
        .query_one(
            "select status, sent from ocapi.runs order by run_id desc limit 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "stopped");
    assert!(row.get::<_, i64>(1) < 3000);

    // AND the next run sends the rest and is `completed`
    let stats = crate::support::run(&config).await;
    assert_eq!(stats.status, ocapi::stats::RunStatus::Completed);
    assert_eq!(db.ledger_counts().await.get("sent").copied(), Some(3000));
}

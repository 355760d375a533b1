//! Operations (issue #5): watch, backfill, runs, reconcile, explain, quality, metrics and the
//! per-connector lock, against a real PostgreSQL and, where a process matters, the real binary.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use rust_decimal::Decimal;

use crate::support::{config_text, insert_orders, migrate, run, TestDb};
use ocapi::commands::reconcile::GroupBy;
use ocapi::run::RunOptions;

/// Runs the `ocapi` binary with `--config` and waits for it.
fn ocapi(config: &Path, args: &[&str]) -> Output {
    crate::support::command(config).args(args).output().unwrap()
}

/// The stored watermark of the test connector.
async fn stored_watermark(db: &TestDb) -> Option<String> {
    db.client
        .query_opt(
            "select watermark from ocapi.state where connector = 'stores-test'",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

#[tokio::test]
async fn reconcile_totals_equal_hand_computed_totals_for_every_status() {
    // GIVEN a source with stores, and a run that sends A1..A3 and records two invalid orders
    let db = TestDb::new().await;
    db.exec("alter table shop.store_transactions add column store text")
        .await;
    insert_orders(&db, "A", 3, "2026-01-01T00:00:00Z").await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('BADCUR',  now() - interval '1 hour', '2026-01-01 01:00:00+00', 5, 'XYZ', 'a@b.co'),
         ('NOVALUE', now() - interval '1 hour', '2026-01-01 01:00:01+00', null, 'USD', 'a@b.co');
         update shop.store_transactions
            set store = case when order_id in ('A1', 'A2') then 'S1' else 'S2' end;",
    )
    .await;
    let mut config = db.config("", None);
    config.mapping.store_id = Some("store".into());
    migrate(&config).await;
    run(&config).await;
    // AND every other state, made directly: rejected, never seen, changed after send, and a
    // ledger row whose source row is gone
    db.exec(
        "update ocapi.ledger set status = 'rejected', reason = 'bad data' where order_id = 'A3';
         insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email, store) values
         ('P1', now() - interval '1 hour', '2026-01-02 00:00:00+00', 7, 'USD', 'p@b.co', 'S2'),
         ('N1', now() - interval '1 hour', '2026-01-02 00:00:01+00', 8, 'USD', 'n@b.co', 'S2'),
         ('N2', now() - interval '1 hour', '2026-01-02 00:00:02+00', 9, 'USD', 'm@b.co', 'S2');
         insert into ocapi.ledger (connector, dataset_id, event_name, order_id, event_time, value,
                                   currency, status, store_id) values
         ('stores-test', '1234567890', 'Purchase', 'GONE', now() - interval '1 hour', 50, 'USD', 'sent', 'S2');
         update shop.store_transactions set total = 99 where order_id = 'A2';",
    )
    .await;
    let today = Utc::now().date_naive();
    let (from, to) = (
        today - chrono::Duration::days(2),
        today + chrono::Duration::days(1),
    );

    // WHEN reconciling by day and by store
    let by_day = ocapi::commands::reconcile::reconcile(&config, from, to, GroupBy::Day)
        .await
        .unwrap();
    let by_store = ocapi::commands::reconcile::reconcile(&config, from, to, GroupBy::Store)
        .await
        .unwrap();

    // THEN the totals are the hand-computed ones
    let t = &by_day.total;
    assert_eq!(t.source_orders, 8);
    // A1 11 + A2 99 (changed) + A3 13 + P1 7 + N1 8 + N2 9, and BADCUR's 5: an invalid order
    // keeps the value it has (NOVALUE has none)
    assert_eq!(t.source_value, Decimal::from(152));
    assert_eq!((t.sent, t.sent_value), (3, Decimal::from(73)));
    assert_eq!(t.invalid, 2);
    assert_eq!(
        t.invalid_reasons,
        BTreeMap::from([
            ("currency is not an ISO 4217 code".to_owned(), 1),
            ("missing value".to_owned(), 1)
        ])
    );
    assert_eq!(t.rejected, 1);
    assert_eq!(t.never_seen, 3);
    assert_eq!(t.changed_after_send, 1);
    assert_eq!(t.ledger_only, 1);
    assert_eq!(
        t.sent + t.invalid + t.rejected + t.never_seen,
        t.source_orders + t.ledger_only
    );
    // AND by store, the same totals split as the fixture says
    assert_eq!(by_store.total.source_orders, 8);
    let s1 = by_store.lines.iter().find(|l| l.group == "S1").unwrap();
    assert_eq!(
        (s1.source_orders, s1.sent, s1.changed_after_send),
        (2, 2, 1)
    );
    // (S2's lines are split by currency: USD, and `-` for the invalid orders without one)
    let s2 =
        by_store
            .lines
            .iter()
            .filter(|l| l.group == "S2")
            .fold((0, 0, 0, 0), |(a, b, c, d), l| {
                (
                    a + l.source_orders,
                    b + l.never_seen,
                    c + l.ledger_only,
                    d + l.rejected,
                )
            });
    assert_eq!(s2, (6, 3, 1, 1));
    // AND the shipped views agree with the ledger side
    let view_sent: i64 = db
        .client
        .query_one(
            "select coalesce(sum(sent), 0)::int8 from ocapi.ledger_by_store",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(view_sent, 3);
}

#[tokio::test]
async fn overlapping_runs_of_one_connector_send_each_order_once() {
    // GIVEN 300 orders
    let db = TestDb::new().await;
    insert_orders(&db, "R", 300, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 20", None);
    migrate(&config).await;

    // WHEN two runs start at once
    let (a, b) = tokio::join!(
        ocapi::run::run(&config, RunOptions::default(), std::future::pending()),
        ocapi::run::run(&config, RunOptions::default(), std::future::pending()),
    );

    // THEN the file holds each order once and the two runs sent 300 between them
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 300);
    let events = db.written_events();
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(events.len(), 300);
    assert_eq!(ids.len(), 300);
}

#[tokio::test]
async fn a_second_run_waits_for_the_lock_then_is_skipped_with_exit_0_saying_another_run_holds_it() {
    // GIVEN another session holding the connector's lock
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let holder = crate::support::connect(&db.url).await;
    holder
        .execute(
            "select pg_advisory_lock(hashtext('ocapi:stores-test'))",
            &[],
        )
        .await
        .unwrap();

    // WHEN a run starts (lock_wait is 2s in the test config)
    let started = Instant::now();
    let out = ocapi(&db.config_path(), &["run"]);

    // THEN it waited, exited 0 as `skipped` (issue 22: an overlap is no failure), said why,
    // and sent nothing
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds its lock"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped"));
    assert!(db.written_events().is_empty());

    // AND once the lock is free, a run goes through
    holder
        .execute(
            "select pg_advisory_unlock(hashtext('ocapi:stores-test'))",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run(&config).await.sent, 5);
}

#[tokio::test]
async fn watch_stops_cleanly_on_sigterm_mid_run_and_loses_nothing() {
    // GIVEN enough orders, in small pages, that a run takes a while
    let db = TestDb::new().await;
    insert_orders(&db, "R", 3000, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 20", None);
    migrate(&config).await;

    // WHEN watch runs and gets SIGTERM once the first pages are committed
    let child = crate::support::command(&db.config_path())
        .args(["watch", "--interval", "1s"])
        .env("OCAPI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.ledger_counts().await.get("sent").copied().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "watch sent nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = crate::support::signal_and_wait(child, "TERM").await;

    // THEN it exited 0, and every order in the file is sent in the ledger
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = db
        .client
        .query(
            "select order_id from ocapi.ledger where status = 'sent'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<HashSet<_>>();
    let events = db.written_events();
    assert_eq!(events.len(), sent.len());
    for event in &events {
        assert!(sent.contains(event["event_id"].as_str().unwrap()));
    }
    // AND a later run sends the rest, so nothing was lost
    run(&config).await;
    let ids: HashSet<String> = db
        .written_events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3000);
    assert_eq!(db.written_events().len(), 3000);
}

#[tokio::test]
async fn backfill_of_a_window_already_sent_sends_nothing_and_leaves_the_watermark() {
    // GIVEN 40 orders sent by a run
    let db = TestDb::new().await;
    insert_orders(&db, "R", 40, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 7", None);
    migrate(&config).await;
    run(&config).await;
    let before = stored_watermark(&db).await;

    // WHEN the window around their event times is backfilled
    let now = Utc::now();
    let window = ocapi::commands::backfill::window(
        now - chrono::Duration::days(1),
        now + chrono::Duration::hours(1),
    )
    .unwrap();
    assert_eq!(
        ocapi::commands::backfill::count(&config, &window)
            .await
            .unwrap(),
        40
    );
    let stats = ocapi::commands::backfill::backfill(
        &config,
        window,
        RunOptions::default(),
        std::future::pending(),
    )
    .await
    .unwrap();

    // THEN every order was re-read, none sent again, and the watermark did not move
    assert_eq!(stats.rows_read, 40);
    assert_eq!(stats.sent, 0);
    assert_eq!(stats.skipped_duplicate, 40);
    assert_eq!(db.written_events().len(), 40);
    assert_eq!(stored_watermark(&db).await, before);
    let mode: String = db
        .client
        .query_one(
            "select mode from ocapi.runs order by run_id desc limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "backfill");
}

#[tokio::test]
async fn a_degraded_run_exits_3_and_writes_its_metrics_file() {
    // GIVEN 10 valid orders and 2 invalid ones (a ratio of 1/6)
    let db = TestDb::new().await;
    insert_orders(&db, "R", 10, "2026-01-01T00:00:00Z").await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('BAD1', now() - interval '1 hour', '2026-01-02', null, 'USD', 'a@b.co'),
         ('BAD2', now() - interval '1 hour', '2026-01-02', null, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    let metrics = db.dir.join("ocapi.prom");

    // WHEN it runs with --max-invalid-ratio 0.05 and --metrics-file
    let out = ocapi(
        &db.config_path(),
        &[
            "--metrics-file",
            metrics.to_str().unwrap(),
            "run",
            "--max-invalid-ratio",
            "0.05",
        ],
    );

    // THEN it exits 3 and the metrics file holds the run's stats
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    let c = "connector=\"stores-test\"";
    for line in [
        format!("ocapi_last_run_sent{{{c}}} 10"),
        format!("ocapi_last_run_invalid{{{c}}} 2"),
        format!("ocapi_last_run_status{{{c},status=\"degraded\"}} 1"),
        format!("ocapi_last_run_status{{{c},status=\"completed\"}} 0"),
        format!("ocapi_last_run_match_keys{{{c},key=\"em\"}} 10"),
        format!("ocapi_last_run_invalid_reason{{{c},reason=\"missing value\"}} 2"),
        format!("ocapi_events_sent_total{{{c}}} 10"),
        format!("ocapi_runs_total{{{c},status=\"degraded\"}} 1"),
        "# TYPE ocapi_last_run_duration_seconds gauge".to_owned(),
        "# TYPE ocapi_events_sent_total counter".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains(&format!("ocapi_last_success_timestamp_seconds{{{c}}} ")));
    assert!(text.contains(&format!("ocapi_last_run_duration_seconds{{{c}}} ")));
    crate::unattended::promtool_check(&text);
    // AND no temporary file is left beside it
    let files: Vec<_> = std::fs::read_dir(&db.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test]
async fn runs_json_lists_recent_runs_newest_first_with_their_stats() {
    // GIVEN two runs, the second with a new order
    let db = TestDb::new().await;
    insert_orders(&db, "R", 4, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;
    insert_orders(&db, "N", 1, "2026-01-02T00:00:00Z").await;
    run(&config).await;

    // WHEN listing them as JSON
    let out = ocapi(&db.config_path(), &["runs", "--json", "--last", "5"]);

    // THEN the newest comes first, with its stats and status
    assert_eq!(out.status.code(), Some(0));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0]["run_id"].as_i64() > runs[1]["run_id"].as_i64());
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["mode"], "run");
    assert_eq!(runs[0]["sent"], 1);
    assert_eq!(runs[1]["sent"], 4);
    assert_eq!(runs[1]["rows_read"], 4);
    assert_eq!(runs[1]["invalid_ratio"], 0.0);
    assert!(runs[1]["finished_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn explain_masks_customer_data_and_shows_the_ledger_history() {
    // GIVEN an order sent by a run, and one never read
    let db = TestDb::new().await;
    insert_orders(&db, "R", 2, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;
    insert_orders(&db, "LATE", 1, "2025-01-01T00:00:00Z").await;

    // WHEN explaining them
    let sent = ocapi::commands::explain::explain(&config, "R1")
        .await
        .unwrap();
    let late = ocapi::commands::explain::explain(&config, "LATE1")
        .await
        .unwrap();

    // THEN no raw customer value appears, masks and hashes do, and the history is there
    for text in [&sent, &late] {
        let lower = text.to_lowercase();
        assert!(!lower.contains("customer1@example.com"), "{text}");
        assert!(
            !lower.contains("smith") && !lower.contains("mary"),
            "{text}"
        );
        assert!(
            !text.contains("555-0001") && !text.contains("6505550001"),
            "{text}"
        );
        assert!(!text.contains("New York"), "{text}");
    }
    assert!(sent.contains("c***@e***.com"), "{sent}");
    assert!(sent.contains("***0001"), "{sent}");
    assert!(sent.contains(&ocapi::transform::hash::sha256_hex("customer1@example.com")));
    assert!(sent.contains("status         sent"), "{sent}");
    assert!(
        sent.contains("first seen") && sent.contains("sent"),
        "{sent}"
    );
    assert!(late.contains("no ledger row"), "{late}");
    assert!(late.contains("behind the connector's"), "{late}");
}

#[tokio::test]
async fn quality_reads_the_dataset_quality_api_with_a_bearer_token_never_in_the_url() {
    use axum::extract::{Query, RawQuery};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;

    // GIVEN a local stand-in answering the documented shape only to the right bearer token
    async fn answer(
        headers: HeaderMap,
        RawQuery(raw): RawQuery,
        Query(q): Query<BTreeMap<String, String>>,
    ) -> (StatusCode, axum::Json<serde_json::Value>) {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "Bearer sekret-token");
        let leaked = raw.unwrap_or_default().contains("sekret");
        let query_ok = q.get("dataset_id").map(String::as_str) == Some("1234567890")
            && q.get("fields").map(String::as_str) == Some("offline");
        if !bearer || leaked || !query_ok {
            let body = serde_json::json!({"error": {"message": "bad request", "code": 190}});
            return (StatusCode::BAD_REQUEST, axum::Json(body));
        }
        let body = serde_json::json!({"offline": {
            "composite": {"score": 7.5},
            "match_key": {"score": 6.5, "email_coverage": 80.0, "phone_coverage": 35.5},
            "freshness": {"score": 9.0}
        }});
        (StatusCode::OK, axum::Json(body))
    }
    let app = axum::Router::new().route("/v26.0/dataset_quality", get(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = std::env::temp_dir().join(format!("ocapi_quality_{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "sekret-token\n").unwrap();
    let destination = format!(
        "kind = \"meta\"\ndataset_id = \"1234567890\"\naccess_token_file = {:?}\nbase_url = \"http://{addr}\"",
        token.display().to_string()
    );
    let text = config_text(
        "postgres://postgres@127.0.0.1:5432/unused",
        &dir.join("unused"),
        "",
        Some(&destination),
    );
    let config = ocapi::config::Config::parse(&text, Path::new("test.toml")).unwrap();

    // WHEN fetching the dataset's quality
    let quality = ocapi::commands::quality::fetch(&config).await.unwrap();

    // THEN the scores are parsed and a missing one stays empty
    assert_eq!(quality.composite, Some(7.5));
    assert_eq!(quality.match_key, Some(6.5));
    assert_eq!(quality.email_coverage, Some(80.0));
    assert_eq!(quality.phone_coverage, Some(35.5));
    assert_eq!(quality.freshness, Some(9.0));
    assert_eq!(quality.frequency, None);
    assert!(!quality.stand_in);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_docker_connector_config_parses() {
    // GIVEN the config docker/compose.yaml mounts; WHEN it is loaded; THEN it is valid
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/connector.toml");
    let config = ocapi::config::Config::load(&path).unwrap();
    assert_eq!(config.mapping.store_id.as_deref(), Some("store_id"));
    assert_eq!(config.destination.base_url.as_str(), "http://sandbox:4599");
}

#[tokio::test]
async fn watch_logs_a_degraded_run_at_error_level_and_keeps_going() {
    // GIVEN a source where a third of the orders are invalid
    let db = TestDb::new().await;
    insert_orders(&db, "R", 20, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set total = null where order_id in ('R1', 'R2', 'R3', 'R4', 'R5', 'R6', 'R7')")
        .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN watch runs with a 5% limit, in JSON logs, and is stopped after its first run
    let child = crate::support::command(&db.config_path())
        .args([
            "--log-format",
            "json",
            "watch",
            "--interval",
            "1s",
            "--max-invalid-ratio",
            "0.05",
        ])
        .env("OCAPI_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.ledger_counts().await.get("sent").copied().unwrap_or(0) < 13 {
        assert!(Instant::now() < deadline, "watch sent nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = crate::support::signal_and_wait(child, "TERM").await;

    // THEN it exits 0 on the signal, and the degraded run was logged at error level
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let degraded: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("degraded"))
        })
        .collect();
    assert!(!degraded.is_empty(), "{stderr}");
    assert!(
        degraded.iter().all(|line| line["level"] == "ERROR"),
        "{stderr}"
    );
}

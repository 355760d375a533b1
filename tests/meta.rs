//! Meta destination (issue #4): delivery through the local Graph API stand-in over real HTTP.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::support::{accepted_ids, insert_orders, migrate, run, sandbox, TestDb, TOKEN};
use ocapi::destination::{Destination, DestinationError, TransportKind};
use ocapi::run::RunOptions;
use ocapi::sandbox::Faults;

/// How often each event id reached the stand-in.
fn arrivals(ids: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn every_valid_order_arrives_exactly_once_with_a_fifth_of_requests_failing() {
    // GIVEN 2000 orders and an endpoint failing 20% of requests transiently
    let db = TestDb::new().await;
    insert_orders(&db, "R", 2000, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        error_rate: 0.1,
        rate_limit_rate: 0.1,
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "batch_size = 40");
    migrate(&config).await;

    // WHEN the connector runs (50 requests: a fault-free run is as likely as 0.8^50)
    let stats = run(&config).await;

    // THEN each order was accepted exactly once, with its own order id as event_id
    let ids = accepted_ids(&graph);
    let counts = arrivals(&ids);
    assert_eq!(counts.len(), 2000);
    assert!(counts.values().all(|&n| n == 1), "an order arrived twice");
    assert!(graph.stats().faults_injected > 0);
    assert!(stats.retries > 0);
    assert_eq!(stats.sent, 2000);
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&2000));
    let traced: i64 = db
        .client
        .query_one("select count(*) from ocapi.ledger where fbtrace_id is not null and events_received > 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(traced, 2000);
}

#[tokio::test]
async fn poison_events_are_isolated_and_the_rest_delivered_with_and_without_an_index() {
    for name_index in [true, false] {
        let db = TestDb::new().await;
        insert_orders(&db, "R", 300, "2026-01-01T00:00:00Z").await;
        insert_orders(&db, "POISON", 3, "2026-01-01T01:00:00Z").await;
        let faults = Faults {
            reject_order_prefix: Some("POISON".into()),
            name_index,
            ..Faults::default()
        };
        let graph = sandbox(faults).await;
        let config = db.meta_config("", &graph.base_url(), TOKEN, "");
        migrate(&config).await;

        let stats = run(&config).await;

        let ids: HashSet<String> = accepted_ids(&graph).into_iter().collect();
        assert_eq!(ids.len(), 300, "name_index={name_index}");
        assert!(!ids.iter().any(|id| id.starts_with("POISON")));
        assert_eq!((stats.sent, stats.rejected), (300, 3));
        let counts = db.ledger_counts().await;
        assert_eq!(
            (counts.get("sent"), counts.get("rejected")),
            (Some(&300), Some(&3))
        );
        let reason = db.ledger_text("POISON2", "reason").await.unwrap();
        assert!(reason.contains("fbtrace_id"), "{reason}");
        // AND each keeps Meta's code and subcode, so that rejections group by cause
        let causes: Vec<(String, Option<i32>, Option<i32>)> = db
            .client
            .query(
                "select order_id, error_code, error_subcode from ocapi.ledger
                 where status = 'rejected' order by order_id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        let expected: Vec<(String, Option<i32>, Option<i32>)> = (1..=3)
            .map(|i| (format!("POISON{i}"), Some(100), Some(2_804_001)))
            .collect();
        assert_eq!(causes, expected, "name_index={name_index}");

        // A rejected order that is unchanged is not re-sent; once fixed (its watermark moves)
        // it is sent again.
        let again = run(&config).await;
        assert_eq!(again.sent, 0);
        graph.set_faults(Faults::default());
        db.exec("update shop.store_transactions set updated_at = '2026-01-02' where order_id = 'POISON2'").await;
        let fixed = run(&config).await;
        assert_eq!(fixed.sent, 1);
        assert_eq!(
            db.ledger_text("POISON2", "status").await.as_deref(),
            Some("sent")
        );
        assert_eq!(db.ledger_text("POISON2", "error_code").await, None);
    }
}

#[tokio::test]
async fn a_token_error_stops_the_run_cleanly_and_the_next_run_resumes() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 250, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults::default()).await;
    let bad = db.meta_config("", &graph.base_url(), "expired-token", "");
    migrate(&bad).await;

    let error = ocapi::run::run(&bad, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();

    let ocapi::Error::Destination(refused) = &error else {
        panic!("expected a destination error, got {error:?}");
    };
    assert!(
        matches!(refused, DestinationError::Meta { attempts: 1, .. }),
        "{refused:?}"
    );
    assert_eq!(refused.code(), Some(190));
    assert!(
        !refused.is_config(),
        "the README puts a refused token under exit 1"
    );
    let text = ocapi::error::chain(&error);
    assert!(
        !text.contains("expired-token"),
        "the token leaked into the error: {text}"
    );
    assert!(graph.events().is_empty());
    assert_eq!(db.ledger_counts().await.get("sent"), None);
    let (status, watermark): (String, Option<String>) = {
        let row = db
            .client
            .query_one(
                "select status, (select watermark from ocapi.state) from ocapi.runs",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((status.as_str(), watermark), ("failed", None));

    // WHEN the token is fixed, the next run delivers everything
    let good = db.meta_config("", &graph.base_url(), TOKEN, "");
    let stats = run(&good).await;
    assert_eq!(arrivals(&accepted_ids(&graph)).len(), 250);
    assert_eq!(stats.sent, 250);
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&250));
}

#[tokio::test]
async fn concurrency_is_really_used() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 1600, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("batch_size = 1600", &graph.base_url(), TOKEN, "");
    migrate(&config).await;

    run(&config).await;

    assert_eq!(graph.stats().max_in_flight, 4);
    assert_eq!(graph.events().len(), 1600);
}

#[tokio::test]
async fn check_verifies_the_token_and_dataset_without_sending() {
    let db = TestDb::new().await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    let report = ocapi::commands::check::check(&config).await;
    assert!(report.ok, "{}", report.text);
    assert!(
        report.text.contains("meta dataset 1234567890"),
        "{}",
        report.text
    );

    let bad = db.meta_config("", &graph.base_url(), "wrong", "");
    let report = ocapi::commands::check::check(&bad).await;
    assert!(!report.ok);
    assert_eq!(report.status, ocapi::error::ExitStatus::Failed);
    let refused = Destination::from_config(&bad)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(190));
    assert_eq!(graph.stats().requests, 0, "check must not send events");
}

/// Runs the binary with a config; returns its output.
fn ocapi_command(db: &TestDb) -> std::process::Command {
    let mut command = crate::support::command(&db.config_path());
    command.env("OCAPI_LOG", "debug");
    command
}

#[tokio::test]
async fn no_log_line_holds_the_token_or_raw_customer_data() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 300, "2026-01-01T00:00:00Z").await;
    insert_orders(&db, "POISON", 2, "2026-01-01T01:00:00Z").await;
    let faults = Faults {
        error_rate: 0.3,
        reject_order_prefix: Some("POISON".into()),
        ..Faults::default()
    };
    let graph = sandbox(faults).await;
    // Batches of 20: about 20 requests, so that at least one of them fails and is retried
    // (one batch of 302 made only a handful, and 1 run in 6 had no retry to log).
    let config = db.meta_config("", &graph.base_url(), TOKEN, "batch_size = 20");
    migrate(&config).await;

    let output = tokio::task::spawn_blocking({
        let mut command = ocapi_command(&db);
        move || command.args(["run", "--json"]).output().unwrap()
    })
    .await
    .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("retry"),
        "expected retry log lines: {stderr}"
    );
    for text in [&stderr, &stdout] {
        assert!(!text.contains(TOKEN), "token in output");
        assert!(
            !text.to_lowercase().contains("@example.com"),
            "raw email in output"
        );
        assert!(!text.contains("555-0"), "raw phone in output");
        assert!(!text.contains("Smith"), "raw name in output");
    }
    let stats: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(stats["sent"], 300);
    assert_eq!(stats["rejected"], 2);
}

#[tokio::test]
async fn kill_9_during_a_run_and_a_rerun_deliver_every_order_with_a_consistent_ledger() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 3000, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("batch_size = 500", &graph.base_url(), TOKEN, "");
    migrate(&config).await;

    // WHEN the connector is killed mid-run
    let mut child = ocapi_command(&db)
        .arg("run")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while graph.events().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let delivered_before = graph.events().len();

    // AND run again
    let stats = run(&config).await;

    // THEN every order was accepted at least once, and the ledger says sent exactly once each
    let counts = arrivals(&accepted_ids(&graph));
    assert_eq!(
        counts.len(),
        3000,
        "delivered before the kill: {delivered_before}"
    );
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&3000));
    let interrupted: i64 = db
        .client
        .query_one(
            "select count(*) from ocapi.runs where status = 'failed' and error like 'interrupted%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(interrupted, 1, "the killed run is recorded as interrupted");
    assert!(
        delivered_before > 0 && delivered_before < 3000,
        "the kill should land mid-run: {delivered_before}"
    );
    assert!(stats.sent + (delivered_before as u64) >= 3000);
}

#[tokio::test]
async fn quality_reads_the_stand_ins_scores_next_to_ocapis_own_coverage() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 40, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set email = null where order_id in ('R1', 'R2', 'R3', 'R4')").await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    run(&config).await;

    let report = ocapi::commands::quality::report(&config).await.unwrap();

    assert_eq!(report.meta.email_coverage, Some(90.0));
    assert_eq!(report.meta.phone_coverage, Some(100.0));
    assert!(report.meta.composite.is_some() && report.meta.freshness.is_some());
    let text = ocapi::commands::quality::render(&report);
    assert!(text.contains("90.0%"), "{text}");
    assert_eq!(graph.stats().tokens_seen_in_url, 0);
}

#[tokio::test]
async fn a_run_against_a_local_address_where_nothing_listens_fails_at_once_naming_the_url() {
    // GIVEN a config whose base_url is a local port nobody listens on
    let db = TestDb::new().await;
    insert_orders(&db, "R", 10, "2026-01-01T00:00:00Z").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let config = db.meta_config("", &format!("http://{address}"), TOKEN, "");
    migrate(&config).await;

    // WHEN the connector runs
    let error = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();

    // THEN it stops after one attempt per batch, with no backoff, naming the URL
    let ocapi::Error::Destination(DestinationError::Unreachable { error, attempts }) = &error
    else {
        panic!("expected Unreachable, got {error:?}");
    };
    assert_eq!(error.kind(), TransportKind::Refused { local: true });
    assert_eq!(*attempts, 1);
    assert_eq!(
        error.url(),
        format!("http://{address}/v26.0/1234567890/events")
    );
    assert_eq!(db.ledger_counts().await.get("sent"), None);
}

#[tokio::test]
async fn check_says_an_unreachable_endpoint_once_on_its_fail_line() {
    // GIVEN a destination URL where nothing listens
    let db = TestDb::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base_url = format!("http://127.0.0.1:{port}");
    let config = db.meta_config("", &base_url, TOKEN, "");
    crate::support::migrate(&config).await;

    // WHEN checking, with JSON logs
    let out = crate::support::ocapi(&db.config_path(), &["--log-format", "json", "check"]).await;

    // THEN it fails, no log line is at error level, and the URL is named once (the FAIL line)
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        let log: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_ne!(log["level"], "ERROR", "{line}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let naming: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains(&base_url))
        .collect();
    assert_eq!(naming.len(), 1, "{naming:?}");
    assert!(naming[0].starts_with("FAIL"), "{naming:?}");
}

#[tokio::test]
async fn a_run_failed_on_the_destination_counts_only_the_invalid_orders_it_recorded() {
    // GIVEN five orders, three of them invalid (no total), on one page, and a token Meta
    // refuses
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set total = null where order_id in ('R1', 'R2', 'R3')")
        .await;
    let graph = sandbox(Faults::default()).await;
    let bad = db.meta_config("", &graph.base_url(), "expired-token", "");
    migrate(&bad).await;

    // WHEN the run fails on the destination
    ocapi::run::run(&bad, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();

    // THEN the ledger has no invalid row, and the run's record counts none
    assert_eq!(db.ledger_counts().await.get("invalid"), None);
    let recorded = || async {
        let row = db
            .client
            .query_one(
                "select status, invalid, invalid_ratio::float8 from ocapi.run_summary
                 order by run_id desc limit 1",
                &[],
            )
            .await
            .unwrap();
        (
            row.get::<_, String>(0),
            row.get::<_, i64>(1),
            row.get::<_, f64>(2),
        )
    };
    assert_eq!(recorded().await, ("failed".to_owned(), 0, 0.0));

    // AND the next run, with a good token, records and counts all three
    let good = db.meta_config("", &graph.base_url(), TOKEN, "");
    let stats = run(&good).await;
    assert_eq!((stats.sent, stats.invalid), (2, 3));
    assert_eq!(db.ledger_counts().await.get("invalid"), Some(&3));
    assert_eq!(recorded().await.1, 3);
}

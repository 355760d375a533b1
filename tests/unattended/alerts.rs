//! Alerts of runs nobody watches: once while failing, once on recovery, quiet within the quiet
//! period, never failing a run.

use super::*;

#[tokio::test]
async fn watch_alerts_a_webhook_once_while_failing_and_once_on_recovery() {
    // GIVEN a chat webhook whose URL is in the environment, and a watch whose database is
    // reached through a proxy
    let webhook = Webhook::start().await;
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let proxy = PgProxy::start().await;
    let config_file = db.dir.join("proxied.toml");
    let text = config_text(&proxy.url(&db.name), &db.out_path(), "", None)
        + "\n[alerts]\nwebhook_url_env = \"TEST_ALERT_WEBHOOK\"\nquiet_period = \"1h\"\n";
    std::fs::write(&config_file, text).unwrap();
    migrate(&ocapi::config::Config::load(&config_file).unwrap()).await;
    let watch = start_watch(
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
    // THEN one recovery message follows (sent once the run is counted: waited for), and the
    // webhook's URL was never logged
    let deadline = Instant::now() + Duration::from_secs(30);
    while webhook.texts().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts = webhook.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("recovered"), "{texts:?}");
    let logs = watch.logs();
    assert!(!logs.contains("secret-7d1e"), "{logs}");
    assert_eq!(watch.stop(Duration::from_secs(90)).await, Some(0));
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

//! A database that stalls (issue 23 kind 2): bounded waits naming the setting, locks freed, watch
//! recovering and stopping on request.

use super::*;

#[tokio::test]
async fn a_database_that_accepts_tcp_and_never_answers_fails_the_run_naming_the_setting() {
    // GIVEN a source behind a proxy that accepts connections and never answers
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let proxy = PgProxy::start().await;
    proxied_config(&db, &proxy, "connect_timeout = \"1s\"", "").await;
    proxy.stall();

    // WHEN a run starts; THEN it fails (exit 1) naming what timed out and the key to change
    let out = ocapi_bounded(&db.config_path(), &["run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the source database at 127.0.0.1:")
            && stderr.contains("no answer within 1s")
            && stderr.contains("`source.connect_timeout`"),
        "{stderr}"
    );

    // AND libpq's `connect_timeout` in the URL is honoured (it wins over the key)
    db.edit_config_text(&[
        ("connect_timeout = \"1s\"", "connect_timeout = \"1h\""),
        (
            &proxy.url(&db.name),
            &proxy.url_with(&db.name, "?connect_timeout=2"),
        ),
    ]);
    let out = ocapi_bounded(&db.config_path(), &["run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no answer within 2s")
            && stderr.contains("`connect_timeout` in `source.url`"),
        "{stderr}"
    );
    assert!(db.written_events().is_empty());
}

#[tokio::test]
async fn a_database_that_stalls_mid_run_fails_the_run_which_frees_its_lock_for_the_next() {
    // GIVEN 300 orders sent 20 to a request through a slow stand-in, with source and ledger
    // behind a proxy, and a stall bound of 2 s on both
    let db = TestDb::new().await;
    insert_orders(&db, "R", 300, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    })
    .await;
    let proxy = PgProxy::start().await;
    let config = db.meta_config(
        "batch_size = 60\nstall_timeout = \"2s\"",
        &graph.base_url(),
        TOKEN,
        "batch_size = 20",
    );
    migrate(&config).await;
    db.edit_config_text(&[
        (
            &format!("url = \"{}\"", db.url),
            &format!("url = \"{}\"", proxy.url(&db.name)),
        ),
        ("concurrency = 4", "concurrency = 1"),
    ]);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "\n[ledger]\nstall_timeout = \"2s\"\n";
    std::fs::write(&path, text).unwrap();
    let first = crate::support::command(&path)
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // WHEN the database stops answering mid-run (the run holds its locks)
    eventually("a run under way", Duration::from_secs(60), || async {
        graph.events().len() >= 40
    })
    .await;
    proxy.stall();

    // THEN the run fails (exit 1) naming the stall and the key that bounds it
    let out = wait_bounded(first, Duration::from_secs(60), "the stalled run").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sent nothing for 2s") && stderr.contains(".stall_timeout`"),
        "{stderr}"
    );
    // AND it did not wait a second bound to record its end on the database that stalled
    assert!(!stderr.contains("could not be stored"), "{stderr}");

    // AND once the network heals the next run takes the lock and finishes the orders
    proxy.heal();
    let out = ocapi_bounded(&path, &["run"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&300));
}

/// Five orders and a watch every second whose databases are behind a proxy, with both
/// connection bounds at `bound`, once its first run has completed.
async fn a_watch_through_a_proxy(bound: &str) -> (TestDb, PgProxy, Watch) {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let proxy = PgProxy::start().await;
    let bounds = format!("connect_timeout = \"{bound}\"\nstall_timeout = \"{bound}\"");
    proxied_config(&db, &proxy, &bounds, &bounds).await;
    let watch = Watch::start(Watch::command(&db.config_path(), &["--interval", "1s"]));
    watch.wait_runs("completed", 1.0).await;
    (db, proxy, watch)
}

#[tokio::test]
async fn watch_recovers_by_itself_once_a_stalled_database_answers_again() {
    // GIVEN a watch every second whose databases are behind a proxy, bounds of 2 s
    let (db, proxy, watch) = a_watch_through_a_proxy("2s").await;

    // WHEN the database stops answering: runs fail
    proxy.stall();
    watch.wait_runs("failed", 1.0).await;
    assert!(
        watch.logs().contains("sent nothing for 2s")
            || watch.logs().contains("no answer within 2s"),
        "{}",
        watch.logs()
    );

    // AND when it answers again, the watch picks up new orders by itself
    insert_orders(&db, "S", 5, "2026-01-02T00:00:00Z").await;
    proxy.heal();
    eventually("the new orders sent", Duration::from_secs(90), || async {
        db.ledger_counts().await.get("sent") == Some(&10)
    })
    .await;
}

#[tokio::test]
async fn watch_stops_on_sigterm_while_a_database_does_not_answer() {
    // GIVEN a watch whose database stops answering, with bounds of an hour (so that only the
    // stop request can end the wait)
    let (_db, proxy, watch) = a_watch_through_a_proxy("1h").await;
    proxy.stall();
    // The next tick's run is stuck connecting.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // WHEN it is asked to stop; THEN it exits 0 within the README's 60 s
    assert_eq!(watch.stop(Duration::from_secs(60)).await, Some(0));
}

#[tokio::test]
async fn a_run_that_reads_and_sends_for_longer_than_the_stall_bound_is_no_stall() {
    // GIVEN a stall bound of 1 s on both databases, and a run that takes several seconds:
    // its source statement stays open (streaming a page at a time) and its lock session and
    // ledger session sit idle while a slow endpoint answers
    let db = TestDb::new().await;
    insert_orders(&db, "R", 600, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(250),
        ..Faults::default()
    })
    .await;
    db.meta_config(
        "batch_size = 100\nstall_timeout = \"1s\"",
        &graph.base_url(),
        TOKEN,
        "batch_size = 50",
    );
    db.edit_config_text(&[("concurrency = 4", "concurrency = 1")]);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "\n[ledger]\nstall_timeout = \"1s\"\n";
    std::fs::write(&path, text).unwrap();
    migrate(&ocapi::config::Config::load(&path).unwrap()).await;

    // WHEN it runs; THEN it completes: only waiting for an answer that does not come counts
    let started = Instant::now();
    let out = ocapi_bounded(&path, &["run"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() > Duration::from_secs(2));
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&600));
}

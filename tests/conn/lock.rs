//! The advisory lock and the sessions a run holds: one sender per dataset, a lock that outlives
//! idle timeouts, a run that stops when its lock session is gone.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connectors_on_one_dataset_never_send_at_once() {
    // GIVEN two connectors, identical but for their names, on one dataset, and a slow endpoint
    let db = TestDb::new().await;
    insert_orders(&db, "D", 5, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(1500),
        ..Faults::default()
    })
    .await;
    let base = meta.base_url();
    let first = db.meta_config("", &base, TOKEN, "");
    migrate(&first).await;
    let second = db.edit_config(&[
        ("name = \"stores-test\"", "name = \"stores-test-2\""),
        ("lock_wait = \"2s\"", "lock_wait = \"30s\""),
    ]);

    // WHEN both run, the second started while the first sends
    let one = tokio::spawn(async move {
        ocapi::run::run(&first, RunOptions::default(), std::future::pending()).await
    });
    lock_backend(&db).await;
    let two = ocapi::run::run(&second, RunOptions::default(), std::future::pending()).await;
    let one = one.await.unwrap().unwrap();
    let two = two.unwrap();

    // THEN the endpoint got each order once: the second waited, then found them sent
    let ids = accepted_ids(&meta);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(id_counts(&ids).values().all(|n| *n == 1), "{ids:?}");
    assert_eq!((one.sent, two.sent, two.skipped_duplicate), (5, 0, 5));
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_side_idle_timeout_does_not_end_the_lock() {
    // GIVEN a database that ends sessions idle for 1 s, and an endpoint taking 2.5 s a request
    let db = TestDb::new().await;
    insert_orders(&db, "I", 5, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(2500),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("", &meta.base_url(), TOKEN, "");
    migrate(&config).await;
    let waiting = db.edit_config(&[("lock_wait = \"2s\"", "lock_wait = \"30s\"")]);
    db.exec(&format!(
        "alter database {} set idle_session_timeout = '1s'",
        db.name
    ))
    .await;

    // WHEN a second run of the connector starts while the first waits on the endpoint
    let first = tokio::spawn(async move {
        ocapi::run::run(&config, RunOptions::default(), std::future::pending()).await
    });
    lock_backend(&db).await;
    let second = ocapi::run::run(&waiting, RunOptions::default(), std::future::pending()).await;
    let first = first.await.unwrap();

    // THEN the lock held: each event was sent once, both runs completed and say so
    let ids = accepted_ids(&meta);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(id_counts(&ids).values().all(|n| *n == 1), "{ids:?}");
    assert_eq!(first.unwrap().sent, 5);
    assert_eq!(second.unwrap().sent, 0);
    let runs = runs(&db).await;
    assert_eq!(
        runs,
        vec![
            ("completed".to_owned(), None),
            ("completed".to_owned(), None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_sessions_ended_while_idle_do_not_fail_the_run() {
    // GIVEN a database that ends sessions idle for 1 s, ten orders read two per page and sent
    // one request at a time, and an endpoint taking 1.2 s a request: the reader waits, idle,
    // for the sender to take its next page
    let db = TestDb::new().await;
    insert_orders(&db, "W", 10, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(1200),
        ..Faults::default()
    })
    .await;
    db.meta_config("batch_size = 2", &meta.base_url(), TOKEN, "batch_size = 2");
    let config = db.edit_config(&[("concurrency = 4", "concurrency = 1")]);
    migrate(&config).await;
    db.exec(&format!(
        "alter database {} set idle_session_timeout = '1s'",
        db.name
    ))
    .await;

    // WHEN it runs
    let stats = crate::support::run(&config).await;

    // THEN every order was read and sent once
    assert_eq!(stats.sent, 10);
    let ids = accepted_ids(&meta);
    assert_eq!(ids.len(), 10, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_lock_session_is_terminated_sends_nothing_more() {
    // GIVEN six orders read two per page and sent one request at a time, and an endpoint
    // taking 1 s a request
    let db = TestDb::new().await;
    insert_orders(&db, "T", 6, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(1000),
        ..Faults::default()
    })
    .await;
    db.meta_config("batch_size = 2", &meta.base_url(), TOKEN, "batch_size = 2");
    // One request at a time: a page's batch starts once the one before it is back.
    let config = db.edit_config(&[("concurrency = 4", "concurrency = 1")]);
    migrate(&config).await;

    // WHEN an administrator terminates the lock's backend while the first page is sent
    let running = config.clone();
    let run = tokio::spawn(async move {
        ocapi::run::run(&running, RunOptions::default(), std::future::pending()).await
    });
    let pid = lock_backend(&db).await;
    while meta.stats().requests == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.client
        .execute("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let error = run.await.unwrap().unwrap_err();

    // THEN the run stops, says why, and is recorded failed; only the page in flight when the
    // lock went reached the endpoint
    assert!(matches!(error, ocapi::Error::LockLost(_)), "{error:?}");
    let after_loss = accepted_ids(&meta);
    assert!(
        after_loss.iter().all(|id| id == "T1" || id == "T2"),
        "{after_loss:?}"
    );
    let recorded = runs(&db).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "failed");
    assert!(
        recorded[0].1.as_deref().unwrap_or("").contains("lock"),
        "{recorded:?}"
    );

    // AND the next run sends the rest; each order is in the ledger as sent once
    let stats = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap();
    assert!(stats.sent >= 2, "{stats:?}");
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&6));
    let counts = id_counts(&accepted_ids(&meta));
    assert_eq!(counts.len(), 6, "{counts:?}");
    // Only what was in flight when the lock went can come twice (same event_id: Meta keeps one).
    assert!(
        counts
            .iter()
            .all(|(id, n)| *n == 1 || after_loss.contains(id)),
        "{counts:?}"
    );
}

//! Connections and locks as deployments have them (issue #13): one sender per dataset, a lock
//! that is not lost silently, TLS verification against a throwaway CA, Unix sockets, the
//! URL's own options, a transaction-mode PgBouncer in front, and least-privilege roles.
//! Servers the shared PostgreSQL cannot stand in for (TLS, PgBouncer) are started here, each
//! in its own temp directory on its own port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{accepted_ids, insert_orders, migrate, sandbox, TestDb, TOKEN};
use ocapi::config::Config;
use ocapi::run::RunOptions;
use ocapi::sandbox::Faults;

/// Rewrites the config file last written and loads it again.
fn edit_config(db: &TestDb, edits: &[(&str, &str)]) -> Config {
    let path = db.config_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from} not in the config");
        text = text.replace(from, to);
    }
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

/// How often each event id reached the stand-in.
fn id_counts(ids: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_insert(0) += 1;
    }
    counts
}

/// `(status, error)` of every run, in order.
async fn runs(db: &TestDb) -> Vec<(String, Option<String>)> {
    db.client
        .query("select status, error from ocapi.runs order by run_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The backend holding this database's two run locks, once a run has taken them.
async fn lock_backend(db: &TestDb) -> i32 {
    for _ in 0..200 {
        let row = db
            .client
            .query_opt(
                "select pid from pg_locks
                 where locktype = 'advisory' and granted
                   and database = (select oid from pg_database where datname = current_database())
                 group by pid having count(*) = 2",
                &[],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no run took its lock");
}

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
    let second = edit_config(
        &db,
        &[
            ("name = \"stores-test\"", "name = \"stores-test-2\""),
            ("lock_wait = \"2s\"", "lock_wait = \"30s\""),
        ],
    );

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
    let waiting = edit_config(&db, &[("lock_wait = \"2s\"", "lock_wait = \"30s\"")]);
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
        vec![("completed".to_owned(), None), ("completed".to_owned(), None)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_lock_session_is_terminated_sends_nothing_more() {
    // GIVEN six orders read two per page, and an endpoint taking 1 s a request
    let db = TestDb::new().await;
    insert_orders(&db, "T", 6, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(1000),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("batch_size = 2", &meta.base_url(), TOKEN, "batch_size = 2");
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

    // THEN the run stops, says why, and is recorded failed; the last page was never sent
    let message = ocapi::run::error_chain(&error);
    assert!(message.contains("lock") && message.contains("lost"), "{message}");
    let after_loss = accepted_ids(&meta);
    assert!(!after_loss.iter().any(|id| id == "T5" || id == "T6"), "{after_loss:?}");
    let recorded = runs(&db).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "failed");
    assert!(recorded[0].1.as_deref().unwrap_or("").contains("lock"), "{recorded:?}");

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

//! A source that is a `postgres_fdw` foreign table (issue 21): a run over a few new orders
//! reads only their rows on the remote server, not the whole remote table.

use crate::support::{insert_orders, migrate, ocapi, TestDb};

/// Sequential scans and the rows they read on `shop.store_transactions` of `db`, once the
/// sessions that read it have ended (their statistics arrive as they end).
async fn remote_seq_reads(db: &TestDb) -> (i64, i64) {
    let now = || async {
        db.exec("select pg_stat_clear_snapshot()").await;
        let row = db
            .client
            .query_one(
                "select seq_scan, seq_tup_read from pg_stat_user_tables
                 where relname = 'store_transactions'",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0), row.get::<_, i64>(1))
    };
    let mut last = now().await;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let others: i64 = db
            .client
            .query_one(
                "select count(*) from pg_stat_activity
                 where datname = current_database() and pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let read = now().await;
        if others == 0 && read == last {
            break;
        }
        last = read;
    }
    last
}

#[tokio::test]
async fn a_run_over_new_orders_of_a_foreign_table_reads_only_their_rows_on_the_remote_server() {
    // GIVEN a remote table of 20,000 orders, indexed on its watermark and order id, and a source
    // database where it is a postgres_fdw foreign table, synced by a first run
    let remote = TestDb::new().await;
    remote
        .exec(
            "create index on shop.store_transactions (updated_at);
             create index on shop.store_transactions (order_id)",
        )
        .await;
    insert_orders(&remote, "R", 20_000, "2026-01-01T00:00:00Z").await;
    remote.exec("analyze shop.store_transactions").await;
    let local = TestDb::new().await;
    let at: tokio_postgres::Config = remote.url.parse().unwrap();
    let host = match &at.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    };
    let port = at.get_ports().first().copied().unwrap_or(5432);
    let user = at.get_user().unwrap_or("postgres");
    local
        .exec(&format!(
            "create extension postgres_fdw;
             create server remote foreign data wrapper postgres_fdw
               options (host '{host}', port '{port}', dbname '{}');
             create user mapping for current_user server remote options (user '{user}');
             drop table shop.store_transactions;
             import foreign schema shop limit to (store_transactions) from server remote
               into shop",
            remote.name
        ))
        .await;
    let config = local.config("", None);
    migrate(&config).await;
    let out = ocapi(&local.config_path(), &["run"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(local.written_events().len(), 20_000);
    let before = remote_seq_reads(&remote).await;

    // WHEN 10 new orders arrive and a run sends them
    insert_orders(&remote, "N", 10, "2026-06-01T00:00:00Z").await;
    let out = ocapi(&local.config_path(), &["run", "--json"]).await;
    assert!(out.status.success(), "{out:?}");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["sent"], 10, "{stats}");

    // THEN the remote server read no table whole: its indexes found the new orders' rows
    let after = remote_seq_reads(&remote).await;
    assert!(
        after.1 - before.1 < 20_000,
        "the remote table was read whole: seq scans and rows read {before:?} -> {after:?}"
    );

    // AND `check` calls it a foreign table, not a view, and does not say it is read whole
    let out = ocapi(&local.config_path(), &["check"]).await;
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(printed.contains("is a foreign table"), "{printed}");
    assert!(!printed.contains("is a view"), "{printed}");
    assert!(!printed.contains("whole of it"), "{printed}");
}

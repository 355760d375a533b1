//! Through a transaction-mode pooler (pgbouncer), and a source that is down.

use super::*;

#[tokio::test]
async fn the_source_is_read_through_a_transaction_mode_pooler() {
    let Some(bouncer) = Bouncer::start("transaction") else {
        return;
    };
    // GIVEN a database whose sessions default to another date style, time zone and float
    // precision, orders read two per page, and the source URL through PgBouncer
    let db = TestDb::new().await;
    insert_orders(&db, "P", 5, "2026-11-01 10:00:00+00").await;
    db.exec(&format!(
        "alter database {0} set datestyle = 'SQL, DMY';
         alter database {0} set timezone = 'America/New_York';
         alter database {0} set extra_float_digits = 0",
        db.name
    ))
    .await;
    let pooled = bouncer.url(&db.name);
    let text = crate::support::config_text(&pooled, &db.out_path(), "batch_size = 2", None)
        + &format!("\n[ledger]\nurl = {:?}\n", db.url);
    let config = Config::parse(&text, Path::new("pooled.toml")).unwrap();
    migrate(&config).await;

    // WHEN a run reads through the pooler, with the ledger on a direct connection
    let stats = crate::support::run(&config).await;

    // THEN every order is sent, the date of birth is the one stored (1990-01-02, not 1 Feb)
    // and the watermark is stored in ISO form, in UTC
    assert_eq!(stats.sent, 5);
    let events = db.written_events();
    let birth = serde_json::json!(ocapi::transform::hash::sha256_hex("19900102"));
    assert!(
        events
            .iter()
            .all(|e| e["user_data"]["db"] == birth || e["user_data"]["db"][0] == birth),
        "{:?}",
        events[0]["user_data"]["db"]
    );
    let watermark: String = db
        .client
        .query_one("select watermark from ocapi.state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(watermark, "2026-11-01 10:00:05+00");

    // AND with the ledger behind the pooler too, check and run refuse with exit 2 and the fix
    let text = crate::support::config_text(&pooled, &db.out_path(), "", None);
    let all_pooled = Config::parse(&text, Path::new("all-pooled.toml")).unwrap();
    let check = ocapi::commands::check::check(&all_pooled).await;
    assert_eq!(
        (check.ok, check.status),
        (false, ocapi::error::ExitStatus::Config),
        "{}",
        check.text
    );
    assert!(check.text.contains("`ledger.url`"), "{}", check.text);
    let error = ocapi::run::run(&all_pooled, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();
    assert!(error.is_config(), "{error}");
    assert!(
        matches!(
            error,
            ocapi::Error::Lock(ocapi::lock::LockError::TransactionPooler)
        ),
        "{error:?}"
    );

    // AND through a session-mode pooler, source and ledger both, a run is not refused and
    // reads the same dates and watermark
    let session = Bouncer::start("session").unwrap();
    insert_orders(&db, "Q", 2, "2026-11-02 10:00:00+00").await;
    let text = crate::support::config_text(&session.url(&db.name), &db.out_path(), "", None);
    let all_session = Config::parse(&text, Path::new("session.toml")).unwrap();
    let check = ocapi::commands::check::check(&all_session).await;
    assert!(check.ok, "{}", check.text);
    assert_eq!(crate::support::run(&all_session).await.sent, 2);
    let events = db.written_events();
    assert!(events
        .iter()
        .all(|e| e["user_data"]["db"] == birth || e["user_data"]["db"][0] == birth));
    let watermark: String = db
        .client
        .query_one("select watermark from ocapi.state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(watermark, "2026-11-02 10:00:02+00");
}

#[tokio::test]
async fn a_source_that_is_down_is_named_by_host_and_port_with_its_cause_said_once() {
    // GIVEN a URL with a password, at a port where nothing listens
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/postgres");
    let pool = ocapi::db::pool(&ocapi::secret::Secret::new(url), "source", 1).unwrap();

    // WHEN connecting
    let error = ocapi::db::connect(&pool, "source").await.unwrap_err();

    // THEN the error names the server, never the password, and no cause is said twice
    let ocapi::db::DbError::Connect { what, target, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        (*what, target.as_str()),
        ("source", &*format!("127.0.0.1:{port}"))
    );
    let text = ocapi::error::chain(&error);
    assert!(!text.contains("hunter2"), "{text}");
    let parts: Vec<&str> = text.split(": ").collect();
    let mut unique = parts.clone();
    unique.dedup();
    assert_eq!(parts, unique, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_at_once_through_a_transaction_mode_pooler_find_the_table() {
    // One server connection per database, shared by every client in turn, as a busy pool is.
    let Some(bouncer) = Bouncer::start_with("transaction", 1) else {
        return;
    };
    // GIVEN two connectors of one database (own names, datasets and outputs), each reading
    // the source through one transaction-mode PgBouncer pool, the ledger on a direct
    // connection
    let db = TestDb::new().await;
    let mut paths = Vec::new();
    for name in ["a", "b"] {
        let out = db.dir.join(format!("{name}.ndjson"));
        let text = crate::support::config_text(&bouncer.url(&db.name), &out, "", None)
            .replace("stores-test", &format!("stores-{name}"))
            .replace(
                "1234567890",
                &format!("{}", if name == "a" { 111 } else { 222 }),
            )
            + &format!("\n[ledger]\nurl = {:?}\n", db.url);
        let path = db.dir.join(format!("{name}.toml"));
        std::fs::write(&path, &text).unwrap();
        migrate(&Config::load(&path).unwrap()).await;
        paths.push((path, out));
    }

    // WHEN both run at once, round after round, with new orders each round
    let rounds = 8;
    for round in 0..rounds {
        let updated = format!("2026-11-{:02}T00:00:00Z", round + 1);
        insert_orders(&db, &format!("P{round}-"), 2, &updated).await;
        let children: Vec<_> = paths
            .iter()
            .map(|(path, _)| {
                crate::support::command(path)
                    .arg("run")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            // THEN none fails, and none takes a pooler's error for a missing table
            assert!(!stderr.contains("not found"), "round {round}: {stderr}");
            assert_eq!(output.status.code(), Some(0), "round {round}: {stderr}");
        }
    }
    // AND every order of every round reached both destinations
    for (_, out) in &paths {
        assert_eq!(crate::support::read_ndjson(out).len(), 2 * rounds);
    }
}

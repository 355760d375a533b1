//! The source's surroundings as retail warehouses have them (issue 22 kinds 4, 5, 8, 11, 12;
//! issue 23 kind 8): a host clock that is off, a `SQL_ASCII` database holding Latin-1 bytes,
//! another tool's `schema_migrations` in the ledger schema, row-level security, materialized
//! views and lower-case zone names, and a table swapped away for a moment under `watch` (the
//! README's own SQL runs in tests/docs.rs).

mod check;

use std::path::Path;
use std::time::{Duration, Instant};

use ocapi::config::Config;

use crate::support::{insert_orders, migrate, ocapi, TestDb};

/// The binary under `faketime` with the host clock moved by `offset` (`-2d`, `+70d`); `None`
/// when faketime is not installed (`.ci/run` installs it).
async fn faked(config: &Path, offset: &str, args: &[&str]) -> Option<std::process::Output> {
    if !Path::new("/usr/bin/faketime").exists() {
        println!("SKIPPED: faketime is not installed (apt-get install faketime; .ci/run does)");
        return None;
    }
    let mut command = std::process::Command::new("/usr/bin/faketime");
    command
        .args(["-f", offset, env!("CARGO_BIN_EXE_ocapi"), "--config"])
        .arg(config)
        .args(args)
        .env("OCAPI_LOG", "warn")
        // Only the wall clock is off, as on a host without NTP.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    Some(
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_host_clock_days_off_judges_orders_by_the_databases_clock() {
    // GIVEN orders bought an hour ago (by the database's clock)
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    insert_orders(&db, "C", 3, "2026-11-01T00:00:00Z").await;

    // WHEN the host's clock is 2 days behind the database's
    let Some(behind) = faked(&db.config_path(), "-2d", &["run"]).await else {
        return;
    };

    // THEN today's orders are sent, not written off as "further ahead than max_future", and
    // the run's log warns about the clock
    let stderr = String::from_utf8_lossy(&behind.stderr);
    assert_eq!(behind.status.code(), Some(0), "{stderr}");
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&3), "{stderr}");
    assert!(stderr.contains("behind the source database's"), "{stderr}");

    // AND with the host 70 days ahead, new orders are sent, not "more than 62 days old"
    insert_orders(&db, "D", 2, "2026-11-02T00:00:00Z").await;
    let ahead = faked(&db.config_path(), "+70d", &["run"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&ahead.stderr);
    assert_eq!(ahead.status.code(), Some(0), "{stderr}");
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&5), "{stderr}");
    assert_eq!(db.ledger_counts().await.get("invalid"), None);
    assert_eq!(db.written_events().len(), 5);

    // AND check warns, and passes
    let check = faked(&db.config_path(), "+70d", &["check"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("warn  this host's clock is") && stdout.contains("ahead of"),
        "{stdout}"
    );
}

/// A `SQL_ASCII` database with the demo table, dropped with the `TestDb`.
async fn sql_ascii_db() -> TestDb {
    let name = format!("ocapi_test_{:016x}", rand::random::<u64>());
    let admin = crate::support::connect(&crate::support::admin_url()).await;
    admin
        .batch_execute(&format!(
            "create database {name} encoding 'SQL_ASCII' template template0 \
             lc_collate 'C' lc_ctype 'C'"
        ))
        .await
        .unwrap();
    let mut url: tokio_postgres::Config = crate::support::admin_url().parse().unwrap();
    url.dbname(&name);
    let url = format!(
        "postgres://{}@{}:{}/{name}",
        url.get_user().unwrap_or("postgres"),
        match &url.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        },
        url.get_ports().first().copied().unwrap_or(5432)
    );
    let client = crate::support::connect(&url).await;
    client
        .batch_execute(crate::support::SOURCE_TABLE)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    TestDb {
        name,
        url,
        client,
        dir,
    }
}

/// The `fn` digest of the event of `order_id`.
fn first_name_digest(db: &TestDb, order_id: &str) -> serde_json::Value {
    let events = db.written_events();
    let event = events
        .iter()
        .find(|e| e["event_id"] == order_id)
        .unwrap_or_else(|| panic!("{order_id} not sent"));
    event["user_data"]["fn"].clone()
}

#[tokio::test]
async fn a_sql_ascii_source_with_latin1_bytes_invalidates_only_that_order_or_decodes_it() {
    // GIVEN a SQL_ASCII database: one order whose first name is Latin-1 (`Ren\xE9`), one in
    // UTF-8 (`René`), an id padded with a UTF-8 no-break space, an id ending in `à` (C3 A0)
    let db = sql_ascii_db().await;
    let config = db.config("", None);
    migrate(&config).await;
    insert_orders(&db, "A", 5, "2026-11-01T00:00:00Z").await;
    db.exec(
        "update shop.store_transactions set first_name = E'Ren\\xE9' where order_id = 'A1';
         update shop.store_transactions set first_name = E'Ren\\xC3\\xA9' where order_id = 'A2';
         update shop.store_transactions set order_id = E'A3\\xC2\\xA0' where order_id = 'A3';
         update shop.store_transactions set order_id = E'A4\\xC3\\xA0' where order_id = 'A4';",
    )
    .await;

    // WHEN it runs, and check looks at the source
    let stats = crate::support::run(&config).await;
    let check = ocapi::commands::check::check(&config).await;

    // THEN the Latin-1 order is invalid naming the column, every other order is sent
    assert_eq!((stats.sent, stats.invalid), (4, 1));
    let reason = db.ledger_text("A1", "reason").await.unwrap();
    assert!(reason.contains("mapping.first_name"), "{reason}");
    let mut sent: Vec<String> = db
        .written_events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    sent.sort();
    assert_eq!(sent, ["A2", "A3", "A4\u{e0}", "A5"]);
    // AND check says what the encoding is and what ocapi does
    assert!(check.ok, "{}", check.text);
    assert!(
        check.text.contains("source encoding SQL_ASCII") && check.text.contains("source.encoding"),
        "{}",
        check.text
    );

    // AND explain and reconcile read the same source, and explain names the column
    let explained = ocapi::commands::explain::explain(&config, "A1")
        .await
        .unwrap();
    assert!(explained.contains("mapping.first_name"), "{explained}");
    crate::support::reconcile_around_today(&config).await;

    // WHEN `source.encoding = "LATIN1"` and the order is touched
    let config = db.edit_config(&[("[mapping]", "encoding = \"LATIN1\"\n\n[mapping]")]);
    db.exec("update shop.store_transactions set updated_at = '2026-11-03T00:00:00Z' where order_id = 'A1'")
        .await;
    let stats = crate::support::run(&config).await;

    // THEN it is sent, its first name hashed as the UTF-8 `René`
    assert_eq!(stats.sent, 1);
    assert_eq!(
        first_name_digest(&db, "A1"),
        first_name_digest(&db, "A2"),
        "René from Latin-1 and from UTF-8 hash alike"
    );
    assert_eq!(
        db.ledger_text("A1", "status").await.as_deref(),
        Some("sent")
    );
}

#[tokio::test]
async fn another_tools_schema_migrations_in_the_ledger_schema_is_left_alone() {
    // GIVEN a Rails database: `public.schema_migrations(version varchar primary key)` with
    // rows, and ocapi's ledger configured in `public`
    let db = TestDb::new().await;
    db.exec(
        "create table public.schema_migrations (version varchar primary key);
         insert into public.schema_migrations values ('20240101000000'), ('20240202000000');",
    )
    .await;
    db.config("", None);
    db.edit_config_text(&[(
        "[destination]",
        "[ledger]\nschema = \"public\"\n\n[destination]",
    )]);
    insert_orders(&db, "R", 2, "2026-11-01T00:00:00Z").await;

    // WHEN migrate, check and run
    let migrated = ocapi(&db.config_path(), &["migrate"]).await;
    let checked = ocapi(&db.config_path(), &["check"]).await;
    let ran = ocapi(&db.config_path(), &["run"]).await;

    // THEN each works, the orders are sent, and Rails's table is as it was
    for (what, output) in [("migrate", &migrated), ("check", &checked), ("run", &ran)] {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{what}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(db.written_events().len(), 2);
    let rails: Vec<String> = db
        .client
        .query(
            "select version from public.schema_migrations order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rails, ["20240101000000", "20240202000000"]);

    // AND a table under ocapi's name holding what ocapi never wrote is a configuration error
    // naming it, not a panic
    db.exec(
        "alter table public.ocapi_schema_migrations alter column version type text;
         insert into public.ocapi_schema_migrations (version, name) values ('x', 'y');",
    )
    .await;
    for args in [&["migrate"][..], &["run"], &["check"]] {
        let output = ocapi(&db.config_path(), args).await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains("public.ocapi_schema_migrations"), "{text}");
    }
}

#[tokio::test]
async fn a_ledger_migrated_by_an_earlier_version_is_carried_over() {
    // GIVEN a ledger whose migrations table has the name earlier versions gave it
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    db.exec(
        "alter table ocapi.ocapi_schema_migrations rename to schema_migrations;
         alter index ocapi.ocapi_schema_migrations_pkey rename to schema_migrations_pkey;",
    )
    .await;
    insert_orders(&db, "U", 2, "2026-11-01T00:00:00Z").await;

    // WHEN migrate runs
    let output = ocapi(&db.config_path(), &["migrate"]).await;

    // THEN it says it carried the table over, and runs work on it
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("carried"), "{stdout}");
    let tables: Vec<String> = db
        .client
        .query(
            "select relname::text from pg_class where relnamespace = 'ocapi'::regnamespace
             and relname::text like '%schema_migrations%' order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        ["ocapi_schema_migrations", "ocapi_schema_migrations_pkey"]
    );
    assert_eq!(crate::support::run(&config).await.sent, 2);
    let again = ocapi(&db.config_path(), &["migrate"]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));
}

#[tokio::test]
async fn watch_outlasts_a_source_table_swapped_away_for_a_moment() {
    // GIVEN a watch every second that has sent the first orders
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    insert_orders(&db, "S", 2, "2026-11-01T00:00:00Z").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ocapi::commands::watch::WatchOptions {
        interval: Duration::from_secs(1),
        run: ocapi::run::RunOptions::default(),
        metrics: None,
        telemetry: None,
        health: None,
        alerts: None,
    };
    let watching = tokio::spawn({
        let config = config.clone();
        async move {
            ocapi::commands::watch::watch(&config, options, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    let wait_for = |n: usize| {
        let db = &db;
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while db.written_events().len() < n {
                assert!(Instant::now() < deadline, "{n} events never written");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(2).await;

    // WHEN the table is renamed away for a few seconds (a dbt swap) and back, then new rows
    db.exec("alter table shop.store_transactions rename to store_transactions_old")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    db.exec("alter table shop.store_transactions_old rename to store_transactions")
        .await;
    insert_orders(&db, "T", 2, "2026-11-02T00:00:00Z").await;

    // THEN watch is still running and sends them
    wait_for(4).await;
    assert!(!watching.is_finished(), "watch stopped");
    stop.send(()).unwrap();
    let summary = watching.await.unwrap().unwrap();
    assert!(summary.failed >= 1, "{summary:?}");
}

/// A login role for the test, dropped by `drop_role`.
async fn role(db: &TestDb) -> String {
    let role = format!("ocapi_rls_{:08x}", rand::random::<u32>());
    db.exec(&format!(
        "create role {role} login;
         grant usage on schema shop to {role};
         grant select on all tables in schema shop to {role};"
    ))
    .await;
    role
}

#[tokio::test]
async fn an_app_table_named_like_a_ledger_table_is_a_configuration_error_naming_it() {
    // GIVEN an application's own `public.runs`, and ocapi's ledger configured in `public`
    let db = TestDb::new().await;
    db.exec("create table public.runs (id serial primary key, distance_km numeric)")
        .await;
    db.config("", None);
    db.edit_config_text(&[(
        "[destination]",
        "[ledger]\nschema = \"public\"\n\n[destination]",
    )]);

    // WHEN migrate runs
    let migrated = ocapi(&db.config_path(), &["migrate"]).await;

    // THEN it is a configuration error (exit 2) naming the table and the fix, not a raw
    // `relation already exists`, and the app's table is left alone
    let stderr = String::from_utf8_lossy(&migrated.stderr);
    assert_eq!(migrated.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("public.runs") && stderr.contains("ledger.schema"),
        "{stderr}"
    );
    assert!(!stderr.contains("already exists"), "{stderr}");
    let kept: i64 = db
        .client
        .query_one(
            "select count(*) from information_schema.columns
             where table_name = 'runs' and column_name = 'distance_km'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1);
}

//! Setting a connector up: migrate, missing columns, bad TOML, what check says about indexes and
//! views.

use super::*;

#[tokio::test]
async fn a_missing_column_is_a_clear_error_naming_the_key() {
    let db = TestDb::new().await;
    let mut config = db.config("", None);
    config.mapping.email = Some("e_mail".into());
    migrate(&config).await;

    let error = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();

    assert!(error.is_config());
    let text = error.to_string();
    assert!(
        text.contains("e_mail") && text.contains("mapping.email"),
        "{text}"
    );
}

#[tokio::test]
async fn a_run_before_migrate_says_to_migrate() {
    let db = TestDb::new().await;
    let config = db.config("", None);
    let error = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("ocapi migrate"), "{error}");
}

#[tokio::test]
async fn migrate_twice_changes_nothing() {
    let db = TestDb::new().await;
    let config = db.config("", None);
    let first = ocapi::commands::migrate::migrate(&config).await.unwrap();
    let second = ocapi::commands::migrate::migrate(&config).await.unwrap();
    assert!(!first.is_empty());
    assert!(second.is_empty());
}

#[tokio::test]
async fn bad_toml_exits_2_naming_the_line() {
    let db = TestDb::new().await;
    let path = db.dir.join("bad.toml");
    std::fs::write(&path, "[connector]\nname = \"x\"\n[source]\ntable = \n").unwrap();

    let output = crate::support::command(&path).arg("run").output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

#[tokio::test]
async fn a_missing_column_exits_2_from_the_binary_and_check_names_it() {
    let db = TestDb::new().await;
    let mut config_text = std::fs::read_to_string({
        db.config("", None);
        db.config_path()
    })
    .unwrap();
    config_text = config_text.replace("email = \"email\"", "email = \"e_mail\"");
    std::fs::write(db.config_path(), config_text).unwrap();

    let run = |command: &str| {
        crate::support::command(&db.config_path())
            .arg(command)
            .output()
            .unwrap()
    };
    let migrate = run("migrate");
    assert!(migrate.status.success());
    let check = run("check");
    let ran = run("run");

    assert_eq!(check.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&check.stdout).contains("mapping.email"));
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("\"e_mail\""));
}

#[tokio::test]
async fn upgrading_a_ledger_with_pending_rows_sends_them_again_and_drops_the_payload() {
    // GIVEN a ledger at migration 3 (the `pending` design): U1 sent, U2 left pending by a
    // dead run, U3 never seen
    let db = TestDb::new().await;
    insert_orders(&db, "U", 3, "2026-01-01T00:00:00Z").await;
    db.exec(&format!(
        "create schema ocapi; set search_path to ocapi;
         {}; {}; {};
         create table schema_migrations (version integer primary key, name text not null,
                                         applied_at timestamptz not null default now());
         insert into schema_migrations (version, name)
         values (1, 'ledger'), (2, 'reconcile_views'), (3, 'operations');
         insert into ledger (connector, dataset_id, event_name, order_id, status, payload) values
           ('stores-test', '1234567890', 'Purchase', 'U1', 'sent', null),
           ('stores-test', '1234567890', 'Purchase', 'U2', 'pending', '{{}}');
         reset search_path;",
        include_str!("../../sql/0001_ledger.sql"),
        include_str!("../../sql/0002_reconcile_views.sql"),
        include_str!("../../sql/0003_operations.sql"),
    ))
    .await;
    let config = db.config("", None);

    // WHEN it is migrated and the connector runs
    migrate(&config).await;
    let stats = run(&config).await;

    // THEN the pending order was sent again with the new one, the sent one was not
    let mut sent: Vec<String> = db
        .written_events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    sent.sort();
    assert_eq!(sent, ["U2", "U3"]);
    assert_eq!((stats.sent, stats.skipped_duplicate), (2, 1));
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&3));
    // AND the payload column and the pending status are gone
    let payload_columns: i64 = db
        .client
        .query_one(
            "select count(*) from information_schema.columns
             where table_schema = 'ocapi' and table_name = 'ledger' and column_name = 'payload'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(payload_columns, 0);
    let pending = db
        .client
        .execute(
            "insert into ocapi.ledger (connector, dataset_id, event_name, order_id, status)
             values ('stores-test', '1234567890', 'Purchase', 'X', 'pending')",
            &[],
        )
        .await;
    assert!(pending.is_err(), "the ledger still accepts pending rows");
    // AND its order ids compare as bytes (migration 5), the sent one still found by its key
    let collation: Option<String> = db
        .client
        .query_one(
            "select collation_name from information_schema.columns
             where table_schema = 'ocapi' and table_name = 'ledger' and column_name = 'order_id'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(collation.as_deref(), Some("C"));
}

#[tokio::test]
async fn check_gives_the_create_index_statements_a_table_lacks() {
    // GIVEN the source table with no index at all
    let db = TestDb::new().await;
    insert_orders(&db, "R", 10, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN check runs, THEN it names both statements
    let none = check_output(&db);
    let warnings = index_warnings(&none);
    assert_eq!(warnings.len(), 2, "{none}");
    assert!(none.contains(r#"create index on "shop"."store_transactions" ("updated_at");"#));
    assert!(none.contains(r#"create index on "shop"."store_transactions" ("order_id");"#));

    // WHEN only a composite (watermark, order id) index exists, THEN the order id one is
    // still missing: the rows of a changed order are looked up by order id alone
    db.exec("create index on shop.store_transactions (updated_at, order_id)")
        .await;
    let composite = check_output(&db);
    let warnings = index_warnings(&composite);
    assert_eq!(warnings.len(), 1, "{composite}");
    assert!(warnings[0].contains(r#"("order_id");"#), "{composite}");

    // WHEN it is added, THEN check has no index advice left
    db.exec("create index on shop.store_transactions (order_id)")
        .await;
    let both = check_output(&db);
    assert!(index_warnings(&both).is_empty(), "{both}");
}

#[tokio::test]
async fn check_tells_when_a_view_would_be_read_whole_for_a_small_delta() {
    // GIVEN a view over 20,000 purchases whose table has only a composite (watermark, order
    // id) index: PostgreSQL finds the delta through it, but can only look the changed orders'
    // rows up by walking the whole index
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email)
         select 'V' || g, now() - interval '1 hour', now() - interval '2 days' + g * interval '1 second',
                10, 'USD', 'v' || g || '@example.com'
         from generate_series(1, 20000) g;
         create index on shop.store_transactions (updated_at, order_id);
         create view shop.purchases as select * from shop.store_transactions;
         analyze shop.store_transactions;",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    let text = std::fs::read_to_string(db.config_path()).unwrap();
    std::fs::write(
        db.config_path(),
        text.replace("\"shop.store_transactions\"", "\"shop.purchases\""),
    )
    .unwrap();

    // WHEN check runs, THEN it says the view would be read whole
    let composite = check_output(&db);
    let warnings = index_warnings(&composite);
    assert_eq!(warnings.len(), 1, "{composite}");
    assert!(
        warnings[0].contains("\"shop\".\"purchases\" is a view"),
        "{composite}"
    );

    // WHEN the order id gets its own index, THEN the advice goes
    db.exec("create index on shop.store_transactions (order_id); analyze shop.store_transactions")
        .await;
    let both = check_output(&db);
    assert!(index_warnings(&both).is_empty(), "{both}");
}

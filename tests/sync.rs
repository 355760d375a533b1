//! Core sync (issue #2): source pages → events → file destination → ledger.

use crate::support::{connect, insert_orders, migrate, run, TestDb};
use ocapi::run::{Mode, RunOptions};
use ocapi::transform::hash::sha256_hex;

#[tokio::test]
async fn first_run_sends_every_valid_order_once_and_records_it() {
    // GIVEN 1200 valid orders
    let db = TestDb::new().await;
    insert_orders(&db, "R", 1200, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN every order reached the destination once, hashed, and the ledger says sent
    let events = db.written_events();
    assert_eq!(events.len(), 1200);
    let e = events.iter().find(|e| e["event_id"] == "R7").unwrap();
    assert_eq!(e["event_name"], "Purchase");
    assert_eq!(e["action_source"], "physical_store");
    assert_eq!(e["custom_data"]["order_id"], "R7");
    assert_eq!(e["custom_data"]["value"].as_f64(), Some(17.0));
    assert_eq!(e["custom_data"]["currency"], "USD");
    assert_eq!(e["user_data"]["em"][0], sha256_hex("customer7@example.com"));
    assert_eq!(e["user_data"]["ct"][0], sha256_hex("newyork"));
    assert!(e["user_data"]["ph"][0].as_str().unwrap().len() == 64);
    let raw = std::fs::read_to_string(db.out_path()).unwrap();
    assert!(
        !raw.contains("example.com") && !raw.contains("Smith"),
        "raw customer data leaked"
    );
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&1200));
    assert_eq!(stats.sent, 1200);
    assert_eq!(stats.rows_read, 1200);
    assert_eq!(stats.match_keys.get("em"), Some(&1200));
    assert_eq!(
        stats.watermark_end.as_deref(),
        Some("2026-01-01 00:20:00+00")
    );
    let stored: String = db
        .client
        .query_one(
            "select watermark from ocapi.state where connector = 'stores-test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "2026-01-01 00:20:00+00");
}

#[tokio::test]
async fn rerun_sends_nothing_and_a_new_row_is_sent_alone() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 50, "2026-01-01T00:00:00Z").await;
    let config = db.config("lookback = \"1h\"", None);
    migrate(&config).await;
    run(&config).await;

    // WHEN it runs again with nothing new: the lookback re-reads, but sends nothing
    let again = run(&config).await;
    assert_eq!(again.sent, 0);
    assert_eq!(again.skipped_duplicate, 50);
    assert_eq!(db.written_events().len(), 50);

    // AND a new order is sent alone
    insert_orders(&db, "N", 1, "2026-01-02T00:00:00Z").await;
    let third = run(&config).await;
    assert_eq!(third.sent, 1);
    assert_eq!(db.written_events().len(), 51);
}

#[tokio::test]
async fn late_rows_inside_the_lookback_are_sent_and_outside_are_not() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 10, "2026-01-01T12:00:00Z").await;
    let config = db.config("lookback = \"15m\"", None);
    migrate(&config).await;
    run(&config).await;

    // GIVEN rows committed late, 10 minutes and 2 hours behind the watermark
    insert_orders(&db, "LATE", 1, "2026-01-01T11:55:00Z").await;
    insert_orders(&db, "TOOLATE", 1, "2026-01-01T10:00:00Z").await;
    let stats = run(&config).await;

    let ids: Vec<String> = db
        .written_events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&"LATE1".to_owned()));
    assert!(!ids.contains(&"TOOLATE1".to_owned()));
    assert_eq!(stats.sent, 1);
}

#[tokio::test]
async fn a_tie_of_thousands_of_rows_on_one_watermark_is_read_whole_across_pages() {
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, email)
         select 'T' || g, now() - interval '1 hour', timestamptz '2026-01-01', 5, 'a' || g || '@b.co'
         from generate_series(1, 3000) g;
         insert into shop.store_transactions (order_id, purchased_at, updated_at, total, email)
         values (null, now(), timestamptz '2026-01-01', 5, 'x@y.co'),
                (null, now(), timestamptz '2026-01-01', 5, 'z@y.co');",
    )
    .await;
    let config = db.config("batch_size = 7", None);
    migrate(&config).await;

    let stats = run(&config).await;

    let events = db.written_events();
    let ids: std::collections::HashSet<_> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events.len(), 3000);
    assert_eq!(ids.len(), 3000);
    assert_eq!(stats.rows_read, 3002);
    assert_eq!(stats.invalid_reasons.get("missing order id"), Some(&2));
}

#[tokio::test]
async fn line_items_become_one_event_even_when_split_across_pages() {
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, email, sku, qty, unit_price)
         select 'O' || (g / 5), now() - interval '1 hour', timestamptz '2026-01-01' + (g / 5) * interval '1 minute',
                'a@b.co', 'SKU' || (g % 5), 1 + g % 2, 2.50
         from generate_series(0, 49) g;",
    )
    .await;
    let mut config = db.config("batch_size = 3", None);
    config.mapping.value = None;
    config.mapping.item_id = Some("sku".into());
    config.mapping.item_quantity = Some("qty".into());
    config.mapping.item_price = Some("unit_price".into());
    migrate(&config).await;

    run(&config).await;

    let events = db.written_events();
    assert_eq!(events.len(), 10);
    for event in &events {
        let contents = event["custom_data"]["contents"].as_array().unwrap();
        assert_eq!(contents.len(), 5, "{event}");
        let items: i64 = contents
            .iter()
            .map(|c| c["quantity"].as_i64().unwrap())
            .sum();
        assert_eq!(event["custom_data"]["num_items"], items);
        assert_eq!(
            event["custom_data"]["value"].as_f64().unwrap(),
            items as f64 * 2.5
        );
        assert_eq!(event["custom_data"]["content_type"], "product");
    }
}

#[tokio::test]
async fn every_invalid_row_is_recorded_with_its_reason_and_fixed_rows_are_sent_later() {
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email, first_name, gender) values
         ('OK',       now() - interval '1 hour', '2026-01-01 00:00:01+00', 1, 'USD', 'a@b.co', null, null),
         ('NOTIME',   null,                      '2026-01-01 00:00:02+00', 1, 'USD', 'a@b.co', null, null),
         ('OLD',      now() - interval '63 days','2026-01-01 00:00:03+00', 1, 'USD', 'a@b.co', null, null),
         ('FUTURE',   now() + interval '2 days', '2026-01-01 00:00:04+00', 1, 'USD', 'a@b.co', null, null),
         ('NOVALUE',  now() - interval '1 hour', '2026-01-01 00:00:05+00', null, 'USD', 'a@b.co', null, null),
         ('BADCUR',   now() - interval '1 hour', '2026-01-01 00:00:06+00', 1, 'XYZ', 'a@b.co', null, null),
         ('NAN',      now() - interval '1 hour', '2026-01-01 00:00:07+00', 'NaN', 'USD', 'a@b.co', null, null),
         ('THIN',     now() - interval '1 hour', '2026-01-01 00:00:08+00', 1, 'USD', null, 'Ann', 'F'),
         ('INF',      'infinity',                '2026-01-01 00:00:09+00', 1, 'USD', 'a@b.co', null, null),
         (null,       now() - interval '1 hour', '2026-01-01 00:00:10+00', 1, 'USD', 'a@b.co', null, null);",
    )
    .await;
    let mut config = db.config("lookback = \"1h\"", None);
    config.defaults.country = None;
    migrate(&config).await;

    let stats = run(&config).await;

    let expected = [
        ("NOTIME", "missing event time"),
        ("OLD", "event time more than 62 days old"),
        ("FUTURE", "event time further ahead than source.max_future"),
        ("NOVALUE", "missing value"),
        ("BADCUR", "currency is not an ISO 4217 code"),
        ("NAN", "value is not a valid number"),
        ("THIN", "insufficient customer information"),
        ("INF", "event time out of range"),
    ];
    for (order, reason) in expected {
        assert_eq!(
            db.ledger_text(order, "status").await.as_deref(),
            Some("invalid"),
            "{order}"
        );
        assert_eq!(
            db.ledger_text(order, "reason").await.as_deref(),
            Some(reason),
            "{order}"
        );
    }
    assert_eq!(
        db.ledger_text("OK", "status").await.as_deref(),
        Some("sent")
    );
    assert_eq!(stats.invalid, 9);
    assert_eq!(stats.sent, 1);
    assert_eq!(db.written_events().len(), 1);

    // WHEN a bad row is fixed, it is sent on a later run
    db.exec("update shop.store_transactions set total = 3, updated_at = '2026-01-01 00:00:20+00' where order_id = 'NOVALUE'").await;
    let later = run(&config).await;
    assert_eq!(later.sent, 1);
    assert_eq!(
        db.ledger_text("NOVALUE", "status").await.as_deref(),
        Some("sent")
    );
}

#[tokio::test]
async fn the_same_order_updated_twice_is_sent_once_and_counted_as_changed() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 3, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;

    db.exec("update shop.store_transactions set total = 99, updated_at = '2026-01-02' where order_id = 'R2'").await;
    let first = run(&config).await;
    db.exec("update shop.store_transactions set total = 100, updated_at = '2026-01-03' where order_id = 'R2'").await;
    let second = run(&config).await;

    // The start is inclusive (rows sharing the last watermark may commit late), so R3 is re-read too.
    assert_eq!(
        (
            first.sent,
            first.skipped_duplicate,
            first.changed_after_send
        ),
        (0, 2, 1)
    );
    assert_eq!((second.sent, second.changed_after_send), (0, 1));
    assert_eq!(db.written_events().len(), 3);
    assert_eq!(db.ledger_text("R2", "value").await.as_deref(), Some("12"));
}

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
async fn dry_run_writes_nothing_anywhere() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };

    let stats = ocapi::run::run(&config, options, std::future::pending())
        .await
        .unwrap();

    assert_eq!(stats.events, 5);
    assert!(db.written_events().is_empty());
    assert!(db.ledger_counts().await.is_empty());
    let runs: i64 = db
        .client
        .query_one("select count(*) from ocapi.runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 0);
}

#[tokio::test]
async fn limit_stops_after_about_n_rows_and_the_next_run_goes_on() {
    let db = TestDb::new().await;
    insert_orders(&db, "R", 100, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 10", None);
    migrate(&config).await;
    let options = RunOptions {
        limit: Some(30),
        mode: Mode::Run,
        ..RunOptions::default()
    };

    let first = ocapi::run::run(&config, options, std::future::pending())
        .await
        .unwrap();
    let rest = run(&config).await;

    assert_eq!(first.sent, 30);
    assert_eq!(rest.sent, 70);
    assert_eq!(db.written_events().len(), 100);
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
async fn an_append_only_source_with_several_versions_of_an_order_in_one_page_keeps_one_ledger_row()
{
    // GIVEN an order logged three times (invalid, invalid, then fixed) and another twice invalid
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, email) values
         ('A', now() - interval '1 hour', '2026-01-01 00:00:01+00', null, 'a@b.co'),
         ('A', now() - interval '1 hour', '2026-01-01 00:00:02+00', 'NaN', 'a@b.co'),
         ('A', now() - interval '1 hour', '2026-01-01 00:00:03+00', 5, 'a@b.co'),
         ('B', now() - interval '1 hour', '2026-01-01 00:00:04+00', null, 'a@b.co'),
         ('B', now() - interval '1 hour', '2026-01-01 00:00:05+00', null, 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    let stats = run(&config).await;

    assert_eq!(stats.sent, 1);
    assert_eq!(db.written_events().len(), 1);
    assert_eq!(db.ledger_text("A", "status").await.as_deref(), Some("sent"));
    assert_eq!(
        db.ledger_text("B", "status").await.as_deref(),
        Some("invalid")
    );
}

#[tokio::test]
async fn an_order_invalid_in_one_page_and_fixed_in_a_later_page_of_the_same_run_is_sent() {
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, email) values
         ('A', now() - interval '1 hour', '2026-01-01 00:00:01+00', null, 'a@b.co'),
         ('B', now() - interval '1 hour', '2026-01-01 00:00:02+00', 1, 'a@b.co'),
         ('A', now() - interval '1 hour', '2026-01-01 00:00:03+00', 5, 'a@b.co');",
    )
    .await;
    let config = db.config("batch_size = 1", None);
    migrate(&config).await;

    let stats = run(&config).await;

    assert_eq!(stats.sent, 2);
    assert_eq!(db.ledger_text("A", "status").await.as_deref(), Some("sent"));
    assert_eq!(db.ledger_text("A", "value").await.as_deref(), Some("5"));
}

#[tokio::test]
async fn an_order_written_meanwhile_is_upserted_not_lost_when_its_plain_insert_conflicts() {
    // GIVEN an order already in the ledger as invalid, unknown to the page that sent it
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    let ledger = ocapi::ledger::Ledger::new("ocapi", "stores-test", "1234567890");
    db.exec(
        "insert into ocapi.ledger (connector, dataset_id, event_name, order_id, status, reason)
         values ('stores-test', '1234567890', 'Purchase', 'X1', 'invalid', 'missing value')",
    )
    .await;
    let outcome = |order_id: &str, new: bool| ocapi::ledger::Outcome {
        order: ocapi::ledger::OrderFacts {
            order_id: order_id.to_owned(),
            event_time: 1_767_225_600,
            value: 12.into(),
            currency: "USD".to_owned(),
            watermark: "2026-01-01 00:00:00+00".to_owned(),
            store_id: None,
            match_keys: "em,ph".to_owned(),
            ldu: None,
            digest: None,
        },
        verdict: ocapi::ledger::Verdict::Sent {
            fbtrace_id: Some("trace".to_owned()),
            events_received: 2,
        },
        new,
    };

    // WHEN a page commit records it as a new order, next to a really new one
    let mut client = connect(&db.url).await;
    let mut tx = client.transaction().await.unwrap();
    ledger
        .record_outcomes(&mut tx, &[outcome("X1", true), outcome("X2", true)], 7)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // THEN both are sent, the conflicting one updated in place
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&2));
    assert_eq!(db.ledger_text("X1", "reason").await, None);
    assert_eq!(db.ledger_text("X1", "attempts").await.as_deref(), Some("1"));
    assert_eq!(
        db.ledger_text("X2", "match_keys").await.as_deref(),
        Some("{em,ph}")
    );
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
        include_str!("../sql/0001_ledger.sql"),
        include_str!("../sql/0002_reconcile_views.sql"),
        include_str!("../sql/0003_operations.sql"),
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

/// `ocapi check`'s stdout with the config file last written for `db`.
fn check_output(db: &TestDb) -> String {
    let output = crate::support::command(&db.config_path())
        .arg("check")
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `warn` lines of a check that are about indexes.
fn index_warnings(check: &str) -> Vec<&str> {
    check
        .lines()
        .filter(|l| l.starts_with("warn") && l.contains("index"))
        .collect()
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

#[tokio::test]
async fn a_return_is_counted_invalid_but_left_out_of_the_ratio_in_the_run_and_in_runs() {
    // GIVEN four orders: a return, one with a currency that does not exist, two good ones
    let db = TestDb::new().await;
    insert_orders(&db, "R", 4, "2026-01-01T00:00:00Z").await;
    db.exec(
        "update shop.store_transactions set total = -5 where order_id = 'R1';
         update shop.store_transactions set currency = 'XX' where order_id = 'R2';",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN a run judges them against --max-invalid-ratio 0.2
    let options = RunOptions {
        max_invalid_ratio: Some(0.2),
        ..RunOptions::default()
    };
    let stats = ocapi::run::run(&config, options, std::future::pending())
        .await
        .unwrap();

    // THEN both are invalid orders, the ratio counts only the bad currency (1 of 3), and the
    // runs table's ratio is the same
    assert_eq!((stats.events, stats.invalid), (2, 2));
    assert_eq!(stats.status, ocapi::stats::RunStatus::Degraded);
    let row = db
        .client
        .query_one(
            "select invalid, returns, too_old, invalid_ratio::float8 from ocapi.run_summary",
            &[],
        )
        .await
        .unwrap();
    let (invalid, returns, too_old, ratio): (i64, i64, i64, f64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((invalid, returns, too_old), (2, 1, 0));
    assert!((ratio - 0.3333).abs() < 1e-9, "{ratio}");
    let runs = crate::support::ocapi(&db.config_path(), &["runs", "--json"]).await;
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert!(
        (runs[0]["invalid_ratio"].as_f64().unwrap() - 0.3333).abs() < 1e-9,
        "{runs}"
    );
}

#[tokio::test]
async fn attempts_counts_every_recording_of_an_invalid_order() {
    // GIVEN an order without a total, recorded invalid by a run
    let db = TestDb::new().await;
    insert_orders(&db, "R", 1, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set total = null where order_id = 'R1'")
        .await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;
    assert_eq!(db.ledger_text("R1", "attempts").await.as_deref(), Some("1"));

    // WHEN it is changed, still invalid for another reason, and read again
    db.exec(
        "update shop.store_transactions set total = 5, email = null, phone = null,
             first_name = null, last_name = null, city = null, state = null, zip = null,
             country = null, gender = 'F', birth_date = null, loyalty_id = null,
             updated_at = '2026-01-03' where order_id = 'R1'",
    )
    .await;
    run(&config).await;

    // THEN its outcome was recorded twice
    assert_eq!(
        db.ledger_text("R1", "status").await.as_deref(),
        Some("invalid")
    );
    assert_eq!(db.ledger_text("R1", "attempts").await.as_deref(), Some("2"));
}

#[tokio::test]
async fn rows_without_an_order_id_read_again_in_the_lookback_do_not_degrade_the_next_run() {
    // GIVEN valid orders and two rows with a blank order id, and a 15-minute lookback
    let db = TestDb::new().await;
    insert_orders(&db, "B", 5, "2026-01-01T12:00:00Z").await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email)
         values ('', now() - interval '1 hour', '2026-01-01T12:00:30Z', 5, 'USD', 'a@b.co'),
                ('   ', now() - interval '1 hour', '2026-01-01T12:00:40Z', 5, 'USD', 'c@d.co')",
    )
    .await;
    let config = db.config("lookback = \"15m\"", None);
    migrate(&config).await;
    let first = run(&config).await;
    assert_eq!((first.sent, first.invalid), (5, 2));

    // WHEN the next run, with nothing new, reads them again
    let out = crate::support::ocapi(
        &db.config_path(),
        &["run", "--json", "--max-invalid-ratio", "0.05"],
    )
    .await;

    // THEN it is not degraded: they count as skipped_invalid, not as new invalid orders
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["invalid"], 0, "{stats}");
    assert_eq!(stats["skipped_invalid"], 2, "{stats}");
}

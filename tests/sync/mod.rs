//! Core sync (issue #2): source pages → events → file destination → ledger.

mod invalid;
mod setup;

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
            order_id: order_id.into(),
            event_time: 1_767_225_600,
            value: 12.into(),
            currency: "USD".into(),
            watermark: ocapi::source::Watermark::new(
                ocapi::source::WatermarkKind::Timestamptz,
                "2026-01-01 00:00:00+00",
            ),
            store_id: None,
            match_keys: "em,ph",
            ldu: None,
            digest: None,
        },
        verdict: ocapi::ledger::Verdict::Sent {
            fbtrace_id: Some("trace".into()),
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
async fn a_rows_missing_values_stay_missing_where_the_row_read_before_it_into_its_place_had_them() {
    // GIVEN 400 orders, read a chunk of at most 128 rows at a time, each chunk decoded over the
    // rows of the one before: every third order has every customer field, the others only an
    // email (128 is no multiple of 3, so a row's place held the other kind of row before)
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions
         (order_id, purchased_at, updated_at, total, email, phone, first_name, last_name, city,
          state, zip, country, gender, birth_date, loyalty_id)
         select 'F' || g, now() - interval '1 hour',
                '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 second', 10,
                'f' || g || '@example.com',
                case when rich then '+1 650 555 ' || lpad(g::text, 4, '0') end,
                case when rich then 'Mary' end, case when rich then 'Smith' end,
                case when rich then 'Palo Alto' end, case when rich then 'CA' end,
                case when rich then '94301' end, case when rich then 'DE' end,
                case when rich then 'F' end, case when rich then date '1990-01-02' end,
                case when rich then 'L' || g end
         from generate_series(1, 400) g, lateral (select g % 3 = 0 as rich) f",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN the connector runs
    run(&config).await;

    // THEN each event carries its own row's values and no other row's
    let events = db.written_events();
    assert_eq!(events.len(), 400);
    let all = [
        "em",
        "ph",
        "fn",
        "ln",
        "ct",
        "st",
        "zp",
        "country",
        "ge",
        "db",
        "external_id",
    ];
    for event in &events {
        let id = event["custom_data"]["order_id"].as_str().unwrap();
        let g: u32 = id[1..].parse().unwrap();
        let mut keys: Vec<&str> = event["user_data"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut want: Vec<&str> = if g % 3 == 0 {
            all.to_vec()
        } else {
            vec!["em", "country"]
        };
        want.sort_unstable();
        assert_eq!(keys, want, "{id}");
        assert_eq!(
            event["user_data"]["em"][0],
            sha256_hex(&format!("f{g}@example.com")),
            "{id}"
        );
        let country = if g % 3 == 0 { "de" } else { "us" };
        assert_eq!(
            event["user_data"]["country"][0],
            sha256_hex(country),
            "{id}"
        );
    }
}

#[tokio::test]
async fn the_latest_version_of_an_order_is_sent_and_its_watermark_recorded_for_every_watermark_type(
) {
    // Each type's values as SQL: A's first version, its second, B's (within the last 62 days,
    // which a first run reads without `source.start`).
    let hours = |n: u8| format!("now() - interval '{n} hours'");
    let local = |n: u8| format!("localtimestamp - interval '{n} hours'");
    let days = |n: u8| format!("current_date - {n}");
    for (ty, values) in [
        ("timestamptz", [hours(3), hours(1), hours(2)]),
        ("timestamp", [local(3), local(1), local(2)]),
        ("date", [days(3), days(1), days(2)]),
        ("bigint", ["1".into(), "3".into(), "2".into()]),
    ] {
        // GIVEN order A logged twice (5.00, then 7.00 at a later watermark) and order B once,
        // the watermark a column of this type: the read sends a row's own watermark and its
        // order's uncapped one only where they differ from the one before
        let db = TestDb::new().await;
        db.exec(&format!(
            "alter table shop.store_transactions add column seq {ty};
             insert into shop.store_transactions (order_id, purchased_at, updated_at, total, email, seq)
             values ('A', now() - interval '1 hour', now(), 5, 'a@b.co', {}),
                    ('A', now() - interval '1 hour', now(), 7, 'a@b.co', {}),
                    ('B', now() - interval '1 hour', now(), 9, 'b@b.co', {})",
            values[0], values[1], values[2]
        ))
        .await;
        let config = db.config_watermarked_by("seq", "");
        migrate(&config).await;

        // WHEN the connector runs
        let stats = run(&config).await;

        // THEN A is sent once at its latest version, B once, and the ledger holds each
        // order's own watermark as the column's text
        assert_eq!(stats.sent, 2, "{ty}");
        let events = db.written_events();
        let value = |id: &str| {
            events
                .iter()
                .find(|e| e["custom_data"]["order_id"] == id)
                .map(|e| e["custom_data"]["value"].clone())
        };
        assert_eq!(value("A"), Some(serde_json::json!(7.0)), "{ty}");
        assert_eq!(value("B"), Some(serde_json::json!(9.0)), "{ty}");
        for id in ["A", "B"] {
            let want: String = db
                .client
                .query_one(
                    "select max(seq)::text from shop.store_transactions where order_id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                db.ledger_text(id, "source_watermark").await,
                Some(want),
                "{ty} {id}"
            );
        }
    }
}

//! Issue 22, kinds 2, 3 and 6: an order is its id as the id column's type compares it, a view
//! that repeats lines is not summed twice, and a touch is not a change. Each test is a
//! reproduction from the issue, against a real PostgreSQL, reading the events back from the
//! file destination and the outcomes from the ledger.

use crate::support::scenario::Scenario;
use crate::support::{ocapi, orders_sql, run, TestDb};

/// A till's lines with an id column of type `id_type`.
fn tills(id_type: &str) -> String {
    format!(
        "create table shop.tills (
             order_id     {id_type},
             line_no      int,
             purchased_at timestamptz default now() - interval '1 hour',
             updated_at   timestamptz,
             currency     text default 'EUR',
             email        text default 'ana@example.com',
             country      text default 'ES',
             sku          text,
             qty          numeric,
             unit_price   numeric
         );"
    )
}

/// The ledger's `(order_id, status, value)` rows, by order id.
async fn ledger_rows(db: &TestDb) -> Vec<(String, String, Option<String>)> {
    let client = crate::support::connect(&db.url).await;
    client
        .query(
            "select order_id, status, value::text from ocapi.ledger order by order_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_numeric_id_written_1001_and_1001_0_is_one_purchase_of_12() {
    // GIVEN order 1001 written `1001` by the till (5.00) and `1001.0` by a CSV import (7.00)
    let (db, config) = Scenario::lines("shop.tills")
        .named("identity-test")
        .given(tills("numeric"))
        .given(
            "insert into shop.tills (order_id, line_no, updated_at, sku, qty, unit_price) values
         (1001,   1, '2026-11-01 10:00:00+00', 'A', 1, 5.00),
         (1001.0, 2, '2026-11-01 10:00:01+00', 'B', 1, 7.00),
         (2002.50, 1, '2026-11-01 10:00:02+00', 'C', 1, 3.00);",
        )
        .source("lookback = \"1d\"")
        .migrated()
        .await;

    // WHEN the connector runs, twice
    let first = run(&config).await;
    let second = run(&config).await;

    // THEN one Purchase of 12.00 went out for 1001, under its one key, and is recorded once
    let events = db.written_events();
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1001", "2002.5"], "{events:?}");
    assert_eq!(events[0]["custom_data"]["value"], serde_json::json!(12.0));
    assert_eq!(events[0]["custom_data"]["order_id"], "1001");
    assert_eq!(events[0]["custom_data"]["num_items"], 2);
    assert_eq!(
        ledger_rows(&db).await,
        [
            ("1001".to_owned(), "sent".to_owned(), Some("12".to_owned())),
            ("2002.5".to_owned(), "sent".to_owned(), Some("3".to_owned())),
        ]
    );
    assert_eq!(
        (first.sent, second.sent, second.skipped_duplicate),
        (2, 0, 2)
    );
    // AND explain finds it written either way
    for typed in ["1001.0", "1001.00", "1001"] {
        let text = ocapi::commands::explain::explain(&config, typed)
            .await
            .unwrap();
        assert!(text.contains("row 2"), "{typed}: {text}");
        assert!(text.contains("status         sent"), "{typed}: {text}");
    }
}

#[tokio::test]
async fn a_citext_receipt_in_two_cases_is_one_order() {
    // GIVEN receipt RCPT-77 written `RCPT-77` and `rcpt-77` in a citext column
    let (db, config) = Scenario::lines("shop.tills")
        .named("identity-test")
        .given("create extension if not exists citext")
        .given(tills("citext"))
        .given(
            "insert into shop.tills (order_id, line_no, updated_at, sku, qty, unit_price) values
         ('RCPT-77', 1, '2026-11-01 10:00:00+00', 'A', 1, 5.00),
         ('rcpt-77', 2, '2026-11-01 10:00:01+00', 'B', 1, 7.00);",
        )
        .source("lookback = \"1d\"")
        .migrated()
        .await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN one Purchase of 12.00, recorded once, and explain finds it in any case
    let events = db.written_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["custom_data"]["value"], serde_json::json!(12.0));
    assert_eq!(stats.sent, 1);
    assert_eq!(ledger_rows(&db).await.len(), 1);
    let text = ocapi::commands::explain::explain(&config, "Rcpt-77")
        .await
        .unwrap();
    assert!(text.contains("status         sent"), "{text}");
}

#[tokio::test]
async fn explain_of_an_upper_case_uuid_finds_the_order() {
    // GIVEN an order whose id is a uuid, sent
    let (_db, config) = Scenario::lines("shop.tills")
        .named("identity-test")
        .given(tills("uuid"))
        .given(
            "insert into shop.tills (order_id, line_no, updated_at, sku, qty, unit_price) values
         ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1, '2026-11-01 10:00:00+00', 'A', 1, 5.00);",
        )
        .source("lookback = \"1d\"")
        .migrated()
        .await;
    run(&config).await;

    // WHEN explain is asked for it in upper case, as a receipt prints it
    let text = ocapi::commands::explain::explain(&config, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
        .await
        .unwrap();

    // THEN it finds the source rows and the ledger row
    assert!(text.contains("row 1"), "{text}");
    assert!(text.contains("status         sent"), "{text}");
}

#[tokio::test]
async fn a_ledger_with_keys_of_an_earlier_version_is_converted_by_migrate_and_nothing_is_resent() {
    // GIVEN a numeric id column and a ledger written by an earlier version: 1001 and 1001.0
    // sent as two orders (5.00, 7.00), 2002.50 sent, 3003.0 invalid
    let (db, config) = Scenario::lines("shop.tills")
        .named("identity-test")
        .given(tills("numeric"))
        .given(
            "insert into shop.tills (order_id, line_no, updated_at, sku, qty, unit_price) values
         (1001,    1, '2026-11-01 10:00:00+00', 'A', 1, 5.00),
         (1001.0,  2, '2026-11-01 10:00:01+00', 'B', 1, 7.00),
         (2002.50, 1, '2026-11-01 10:00:02+00', 'C', 1, 3.00);",
        )
        .source("lookback = \"1d\"")
        .migrated()
        .await;
    db.exec(
        "insert into ocapi.ledger (connector, dataset_id, event_name, order_id, status, value,
             currency, event_time, source_watermark, reason, updated_at)
         values
         ('identity-test', '1234567890', 'Purchase', '1001', 'sent', 5, 'EUR', now() - interval '1 hour',
          '2026-11-01T10:00:00.000000Z', null, now() - interval '2 minutes'),
         ('identity-test', '1234567890', 'Purchase', '1001.0', 'sent', 7, 'EUR', now() - interval '1 hour',
          '2026-11-01T10:00:01.000000Z', null, now() - interval '1 minute'),
         ('identity-test', '1234567890', 'Purchase', '2002.50', 'sent', 3, 'EUR', now() - interval '1 hour',
          '2026-11-01T10:00:02.000000Z', null, now()),
         ('identity-test', '1234567890', 'Purchase', '3003.0', 'invalid', null, null, null,
          '2026-10-01T00:00:00.000000Z', 'missing currency', now());
         insert into ocapi.state (connector, watermark, watermark_type)
         values ('identity-test', '2026-11-01T10:00:02.000000Z', 'timestamptz');",
    )
    .await;

    // WHEN `ocapi migrate` runs, then the connector
    let out = ocapi(&db.config_path(), &["migrate"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stats = run(&config).await;

    // THEN migrate said what it changed, the ledger holds one row per order under its key
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ledger keys converted to the numeric rule: 2 rewritten, 1 merged"),
        "{stdout}"
    );
    assert!(stdout.contains("\"1001.0\" into \"1001\""), "{stdout}");
    let rows = ledger_rows(&db).await;
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, ["1001", "2002.5", "3003"], "{rows:?}");
    // (both were sent: the row kept is the one that held the key already)
    assert_eq!(rows[0].2.as_deref(), Some("5"));
    // AND the run sent nothing again: both orders were sent before
    assert!(db.written_events().is_empty(), "{:?}", db.written_events());
    assert_eq!((stats.sent, stats.skipped_duplicate), (0, 2));
    // AND a second migrate has nothing left to do
    let again = ocapi(&db.config_path(), &["migrate"]).await;
    let again = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(
        again.contains("ledger keys follow the numeric rule"),
        "{again}"
    );
}

/// Order lines at line grain and a customer's emails, joined by a view that repeats each line
/// once per email.
const REPEATING_VIEW: &str = "
create table shop.order_lines (order_id text, line_no int, customer_id int,
    purchased_at timestamptz, updated_at timestamptz, currency text, country text,
    sku text, qty numeric, unit_price numeric);
create table shop.customer_emails (customer_id int, email text);
insert into shop.order_lines values
    ('V-1', 1, 7, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'EUR', 'ES', 'A', 2, 5.00),
    ('V-1', 2, 7, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'EUR', 'ES', 'B', 1, 10.00);
insert into shop.customer_emails values (7, 'ana@example.com'), (7, 'ana.work@example.com');
create view shop.lines_with_emails as
select l.order_id, l.line_no, l.purchased_at, l.updated_at, l.currency, l.country, e.email,
       l.sku, l.qty, l.unit_price
from shop.order_lines l join shop.customer_emails e using (customer_id);";

#[tokio::test]
async fn a_view_that_repeats_lines_with_item_line_sends_the_order_once_with_both_emails() {
    // GIVEN a 20.00 order of 3 items whose view repeats each line for the customer's two emails
    let (db, config) = Scenario::lines("shop.lines_with_emails")
        .named("identity-test")
        .given(REPEATING_VIEW)
        .source("lookback = \"1d\"")
        .mapping("item_line = \"line_no\"")
        .migrated()
        .await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN the order went out once, at 20.00 with 3 items, with both hashed emails
    let events = db.written_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["custom_data"]["value"], serde_json::json!(20.0));
    assert_eq!(event["custom_data"]["num_items"], 3);
    let mut emails: Vec<String> = event["user_data"]["em"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    let mut expected = vec![
        ocapi::transform::hash::sha256_hex("ana@example.com"),
        ocapi::transform::hash::sha256_hex("ana.work@example.com"),
    ];
    expected.sort();
    assert_eq!(emails, expected);
    assert_eq!((stats.sent, stats.invalid), (1, 0));
    assert_eq!(db.ledger_text("V-1", "value").await.as_deref(), Some("20"));
}

#[tokio::test]
async fn without_item_line_check_warns_of_repeated_lines_with_the_fix() {
    // GIVEN the same view and no `mapping.item_line`
    let (db, config) = Scenario::lines("shop.lines_with_emails")
        .named("identity-test")
        .given(REPEATING_VIEW)
        .source("lookback = \"1d\"")
        .migrated()
        .await;

    // WHEN `check` runs
    let report = ocapi::commands::check::check(&config).await;

    // THEN it warns, naming the key to set
    assert!(
        report.text.lines().any(|l| l.starts_with("warn")
            && l.contains("1 orders in a sample")
            && l.contains("`mapping.item_line`")),
        "{}",
        report.text
    );
    // AND with it set, the warning is gone
    let config = crate::support::scenario::lines_config(
        &db,
        "identity-test",
        "shop.lines_with_emails",
        "lookback = \"1d\"",
        "item_line = \"line_no\"",
    );
    let report = ocapi::commands::check::check(&config).await;
    assert!(
        !report.text.contains("mapping.item_line"),
        "{}",
        report.text
    );
}

#[tokio::test]
async fn rows_of_one_line_that_disagree_make_the_order_invalid_naming_the_column() {
    // GIVEN a line whose two repeats disagree on the quantity
    let (db, config) = Scenario::lines("shop.lines_with_emails")
        .named("identity-test")
        .given(REPEATING_VIEW)
        .given(
            "update shop.order_lines set qty = 3 where line_no = 1;
         create or replace view shop.lines_with_emails as
         select l.order_id, l.line_no, l.purchased_at, l.updated_at, l.currency, l.country,
                e.email, l.sku, l.qty + case when e.email like 'ana.work%' then 1 else 0 end as qty,
                l.unit_price
         from shop.order_lines l join shop.customer_emails e using (customer_id);",
        )
        .source("lookback = \"1d\"")
        .mapping("item_line = \"line_no\"")
        .migrated()
        .await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN nothing went out and the order is invalid, the reason naming the key
    assert!(db.written_events().is_empty());
    assert_eq!(stats.invalid, 1);
    let reason = db.ledger_text("V-1", "reason").await.unwrap();
    assert!(reason.contains("mapping.item_quantity"), "{reason}");
    // AND explain names the column
    let text = ocapi::commands::explain::explain(&config, "V-1")
        .await
        .unwrap();
    assert!(text.contains("must agree on its \"qty\""), "{text}");
}

#[tokio::test]
async fn rows_re_stamped_without_a_change_are_not_changed_after_send() {
    // GIVEN 50 orders sent
    let (db, config) = Scenario::demo()
        .given(orders_sql("T", 50, "2026-11-01 00:00:00+00"))
        .source("lookback = \"1d\"")
        .migrated()
        .await;
    let first = run(&config).await;
    assert_eq!(first.sent, 50);

    // WHEN a dbt model rebuild re-stamps every row without changing any, and the connector
    // runs again
    db.exec("update shop.store_transactions set updated_at = now()")
        .await;
    let second = run(&config).await;

    // THEN nothing is changed after send, nothing re-sent, and explain does not say changed
    assert_eq!(
        (
            second.sent,
            second.changed_after_send,
            second.skipped_duplicate
        ),
        (0, 0, 50)
    );
    assert_eq!(db.written_events().len(), 50);
    assert!(db
        .ledger_text("T7", "changed_after_send_at")
        .await
        .is_none());
    let text = ocapi::commands::explain::explain(&config, "T7")
        .await
        .unwrap();
    assert!(!text.contains("changed_after_send"), "{text}");

    // AND a real change (the amount) is still counted, once, and explained
    db.exec(
        "update shop.store_transactions set total = total + 1, updated_at = now()
         where order_id = 'T7'",
    )
    .await;
    let third = run(&config).await;
    assert_eq!((third.sent, third.changed_after_send), (0, 1));
    db.exec("update shop.store_transactions set updated_at = now()")
        .await;
    let fourth = run(&config).await;
    assert_eq!((fourth.sent, fourth.changed_after_send), (0, 0));
    assert_eq!(db.written_events().len(), 50);
    let text = ocapi::commands::explain::explain(&config, "T7")
        .await
        .unwrap();
    assert!(text.contains("changed_after_send"), "{text}");
}

/// Issue 24: a change of the normalization rules alone does not make sent orders
/// `changed_after_send`. The ledger's digests an older build wrote (bare hex, without the rules'
/// version) differ from today's whenever a rule now reads a value it dropped; the same rows read
/// again are no change, and a real change after the upgrade still is.
#[tokio::test]
async fn a_normalization_rules_change_alone_is_not_a_change_after_send() {
    // GIVEN 20 orders sent, whose ledger digests are then what an older build with other
    // rules wrote: another hash, no version
    an_older_digest_alone_is_not_a_change_after_send("md5(order_id) || md5(order_id || 'x')").await;
}

/// Issue 24: the event digest became XXH3-128 under rules version 3; a ledger the previous
/// version wrote (SHA-256 under version 2) keeps its meaning: no order counts as changed for it.
#[tokio::test]
async fn a_digest_the_previous_version_wrote_is_not_a_change_after_send() {
    // GIVEN 20 orders sent, whose ledger digests are then what the previous version wrote: 64
    // hex digits of SHA-256 under rules version 2 (this one writes XXH3-128 under version 3)
    an_older_digest_alone_is_not_a_change_after_send(
        "md5(order_id) || md5(order_id || 'x') || '/r2'",
    )
    .await;
}

/// Sends 20 orders, rewrites their ledger digests with the SQL expression `older` (what an
/// earlier build wrote), and checks that reading them again counts no change after send while
/// a real change is still counted, once.
async fn an_older_digest_alone_is_not_a_change_after_send(older: &str) {
    let (db, config) = Scenario::demo()
        .given(orders_sql("NR", 20, "2026-11-01 00:00:00+00"))
        .source("lookback = \"1d\"")
        .migrated()
        .await;
    let first = run(&config).await;
    assert_eq!(first.sent, 20);
    let digest = db.ledger_text("NR7", "event_digest").await.unwrap();
    assert!(digest.ends_with("/r3"), "{digest}");
    db.exec(&format!("update ocapi.ledger set event_digest = {older}"))
        .await;

    // WHEN the upgraded connector reads the same rows again (the lookback)
    let second = run(&config).await;

    // THEN they are duplicates, not changes after send
    assert_eq!(
        (
            second.sent,
            second.changed_after_send,
            second.skipped_duplicate
        ),
        (0, 0, 20)
    );
    assert!(db
        .ledger_text("NR7", "changed_after_send_at")
        .await
        .is_none());

    // AND a real change (the amount, re-stamped) is still counted, once
    db.exec(
        "update shop.store_transactions set total = total + 1, updated_at = now()
         where order_id = 'NR7'",
    )
    .await;
    let third = run(&config).await;
    assert_eq!((third.sent, third.changed_after_send), (0, 1));
    assert_eq!(db.written_events().len(), 20);
}

//! Orders as real warehouses hold them (issue 11): never split, never written off, never
//! silently stuck. Each test is a reproduction from the issue, or another member of its kind,
//! against a real PostgreSQL; the events are read back from the file destination and the
//! outcomes from the ledger.

use chrono::Utc;
use ocapi::commands::reconcile::GroupBy;
use ocapi::config::Config;
use ocapi::run::RunOptions;
use rust_decimal::Decimal;

use crate::support::{migrate, ocapi, run, TestDb};

/// A store's order lines at line grain, each line with its own `updated_at`.
const LINES: &str = "
create table shop.lines (
    order_id     text,
    line_no      int,
    purchased_at timestamptz,
    updated_at   timestamptz,
    currency     text,
    email        text,
    country      text,
    sku          text,
    qty          numeric,
    unit_price   numeric
);";

/// A config over `table` with line items (sku, qty, unit_price) and no value column;
/// `source_extra` goes into `[source]`, `mapping_extra` into `[mapping]`.
fn lines_config(db: &TestDb, table: &str, source_extra: &str, mapping_extra: &str) -> Config {
    let text = format!(
        r#"
[connector]
name = "lines-test"
lock_wait = "2s"

[source]
url = "{url}"
table = "{table}"
watermark_column = "updated_at"
start = "2000-01-01T00:00:00Z"
{source_extra}

[mapping]
order_id = "order_id"
event_time = "purchased_at"
currency = "currency"
email = "email"
country = "country"
item_id = "sku"
item_quantity = "qty"
item_price = "unit_price"
{mapping_extra}

[destination]
kind = "file"
dataset_id = "1234567890"
path = {out:?}
"#,
        url = db.url,
        out = db.out_path().display().to_string(),
    );
    let path = db.config_path();
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

/// The events written for one order id.
fn events_of(db: &TestDb, order_id: &str) -> Vec<serde_json::Value> {
    db.written_events()
        .into_iter()
        .filter(|e| e["event_id"] == order_id)
        .collect()
}

#[tokio::test]
async fn lines_with_their_own_updated_at_are_one_event_with_every_line() {
    // GIVEN order L-1: line 1 (1 x 30.00) updated at T, line 2 (2 x 10.00) at T + 1 s, and
    // pages of one row, so that the two lines fall in different pages
    let db = TestDb::new().await;
    db.exec(LINES).await;
    db.exec(
        "insert into shop.lines values
         ('L-1', 1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 30.00),
         ('L-1', 2, now() - interval '1 hour', '2026-11-01 10:00:01+00', 'USD', 'a@b.co', 'US', 'SKU-B', 2, 10.00),
         ('L-2', 1, now() - interval '1 hour', '2026-11-01 10:00:02+00', 'USD', 'c@d.co', 'US', 'SKU-A', 1, 5.00);",
    )
    .await;
    let config = lines_config(&db, "shop.lines", "batch_size = 1", "");
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN L-1 is one event with both lines and value 50, nothing is a duplicate
    let l1 = events_of(&db, "L-1");
    assert_eq!(l1.len(), 1, "{l1:?}");
    assert_eq!(l1[0]["custom_data"]["value"], serde_json::json!(50.0));
    assert_eq!(
        l1[0]["custom_data"]["contents"].as_array().unwrap().len(),
        2
    );
    assert_eq!(l1[0]["custom_data"]["num_items"], 3);
    assert_eq!((stats.sent, stats.skipped_duplicate), (2, 0));
    // AND reconcile's source value equals what was sent
    let report = crate::support::reconcile_around_today(&config).await;
    assert_eq!(report.total.source_value, Decimal::from(55));
    assert_eq!(report.total.sent_value, Decimal::from(55));
}

#[tokio::test]
async fn a_view_whose_watermark_is_the_greatest_of_header_and_line_sends_every_order_whole() {
    // GIVEN headers and lines in separate tables, joined by a view at line grain whose
    // watermark is greatest(header.updated_at, line.updated_at): every line of an order has
    // its own watermark value
    let db = TestDb::new().await;
    db.exec(
        "create table shop.headers (order_id text primary key, purchased_at timestamptz,
             updated_at timestamptz, currency text, email text, country text);
         create table shop.items (order_id text, line_no int, sku text, qty numeric,
             unit_price numeric, updated_at timestamptz);
         insert into shop.headers
         select 'H' || g, now() - interval '2 hours', '2026-11-01 00:00:00+00', 'EUR',
                'c' || g || '@example.com', 'DE'
         from generate_series(1, 40) g;
         insert into shop.items
         select 'H' || g, l, 'SKU-' || l, l, 2.50, '2026-11-01 00:00:00+00'::timestamptz + (g * 3 + l) * interval '1 second'
         from generate_series(1, 40) g, generate_series(1, 3) l;
         create view shop.order_lines as
         select h.order_id, i.line_no, h.purchased_at, greatest(h.updated_at, i.updated_at) as updated_at,
                h.currency, h.email, h.country, i.sku, i.qty, i.unit_price
         from shop.headers h join shop.items i using (order_id);",
    )
    .await;
    let config = lines_config(&db, "shop.order_lines", "batch_size = 7", "");
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN each of the 40 orders is one event with its 3 lines and value 15.00
    let events = db.written_events();
    assert_eq!(events.len(), 40);
    for event in &events {
        assert_eq!(
            event["custom_data"]["contents"].as_array().unwrap().len(),
            3
        );
        assert_eq!(event["custom_data"]["value"], serde_json::json!(15.0));
    }
    assert_eq!((stats.sent, stats.skipped_duplicate), (40, 0));
}

#[tokio::test]
async fn a_line_added_after_its_order_was_sent_sends_nothing_and_is_counted_changed_after_send() {
    // GIVEN order L-1 sent with one line
    let db = TestDb::new().await;
    db.exec(LINES).await;
    db.exec(
        "insert into shop.lines values
         ('L-1', 1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 30.00)",
    )
    .await;
    let config = lines_config(&db, "shop.lines", "lookback = \"1d\"", "");
    migrate(&config).await;
    run(&config).await;

    // WHEN a second line is added to it, and the connector runs twice
    db.exec(
        "insert into shop.lines values
         ('L-1', 2, now() - interval '1 hour', '2026-11-01 11:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-B', 2, 10.00)",
    )
    .await;
    let second = run(&config).await;
    let third = run(&config).await;

    // THEN no second event went out; the change is counted once, and recorded in the ledger
    assert_eq!(events_of(&db, "L-1").len(), 1);
    assert_eq!((second.sent, second.changed_after_send), (0, 1));
    assert_eq!((third.sent, third.changed_after_send), (0, 0));
    assert!(db
        .ledger_text("L-1", "changed_after_send_at")
        .await
        .is_some());
    // AND explain says so
    let text = ocapi::commands::explain::explain(&config, "L-1")
        .await
        .unwrap();
    assert!(text.contains("changed_after_send"), "{text}");
}

#[tokio::test]
async fn ids_that_differ_only_by_surrounding_blanks_are_one_order_everywhere() {
    // GIVEN the lines of W-2 written once as 'W-2' and once as 'W-2 ', and ' W-3' alone
    let db = TestDb::new().await;
    db.exec(LINES).await;
    db.exec(
        "insert into shop.lines values
         ('W-2',  1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 30.00),
         ('W-2 ', 2, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-B', 1, 20.00),
         (' W-3', 1, now() - interval '1 hour', '2026-11-01 10:00:01+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 7.00);",
    )
    .await;
    let config = lines_config(&db, "shop.lines", "", "");
    migrate(&config).await;

    // WHEN the connector runs
    run(&config).await;

    // THEN W-2 is one event with both lines, and the ledger and explain know it by its trimmed id
    let w2 = events_of(&db, "W-2");
    assert_eq!(w2.len(), 1);
    assert_eq!(w2[0]["custom_data"]["value"], serde_json::json!(50.0));
    assert_eq!(
        db.ledger_text("W-2", "status").await.as_deref(),
        Some("sent")
    );
    assert_eq!(
        db.ledger_text("W-3", "status").await.as_deref(),
        Some("sent")
    );
    let text = ocapi::commands::explain::explain(&config, "W-2")
        .await
        .unwrap();
    assert!(text.contains("row 2"), "{text}");
    assert!(!text.contains("no row with this order id"), "{text}");
}

#[tokio::test]
async fn one_order_id_from_two_tills_with_conflicting_values_is_invalid_and_said_so() {
    // GIVEN a union all of two tills: T-1 twice with different totals at the same watermark,
    // T-2 twice identical, T-3 twice as versions (the later one wins)
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('T-1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 10, 'USD', 'a@b.co'),
         ('T-1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 12, 'USD', 'a@b.co'),
         ('T-2', now() - interval '1 hour', '2026-11-01 10:00:01+00', 5, 'USD', 'a@b.co'),
         ('T-2', now() - interval '1 hour', '2026-11-01 10:00:01+00', 5.00, 'USD', 'a@b.co'),
         ('T-3', now() - interval '1 hour', '2026-11-01 10:00:02+00', 7, 'USD', 'a@b.co'),
         ('T-3', now() - interval '1 hour', '2026-11-01 10:00:03+00', 8, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN T-1 is invalid with a reason naming the conflict (a stat counts it), T-2 is sent
    // once, T-3 is sent with its latest version
    assert_eq!(
        db.ledger_text("T-1", "status").await.as_deref(),
        Some("invalid")
    );
    assert_eq!(
        db.ledger_text("T-1", "reason").await.as_deref(),
        Some("rows of one order id disagree")
    );
    assert_eq!(
        stats.invalid_reasons.get("rows of one order id disagree"),
        Some(&1)
    );
    assert_eq!(events_of(&db, "T-2").len(), 1);
    let t3 = events_of(&db, "T-3");
    assert_eq!(t3[0]["custom_data"]["value"], serde_json::json!(8.0));
    let text = ocapi::commands::explain::explain(&config, "T-1")
        .await
        .unwrap();
    assert!(text.contains("disagree"), "{text}");
}

#[tokio::test]
async fn an_order_dated_a_few_minutes_ahead_is_held_then_sent_with_the_event_it_would_have_had() {
    // GIVEN a till clock running fast: F-1 dated 5 min 10 s ahead, updated before F-2
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('F-1', now() + interval '5 minutes 10 seconds', '2026-11-01 10:00:00+00', 10, 'USD', 'a@b.co'),
         ('F-2', now() - interval '1 hour', '2026-11-01 10:00:01+00', 5, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN the connector runs
    let first = run(&config).await;

    // THEN F-1 is held (not sent, not invalid), the watermark passed it, and explain says until when
    assert_eq!((first.sent, first.held, first.invalid), (1, 1, 0));
    assert_eq!(
        db.ledger_text("F-1", "status").await.as_deref(),
        Some("held")
    );
    let text = ocapi::commands::explain::explain(&config, "F-1")
        .await
        .unwrap();
    assert!(text.contains("held until"), "{text}");
    let today = Utc::now().date_naive();
    let report = ocapi::commands::reconcile::reconcile(
        &config,
        today - chrono::Duration::days(1),
        today + chrono::Duration::days(2),
        GroupBy::Day,
    )
    .await
    .unwrap();
    assert_eq!(report.total.held, 1);

    // WHEN its time has come (a few seconds later) and the connector runs again
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let second = run(&config).await;

    // THEN it is sent, as the event it would have had
    assert_eq!((second.sent, second.held), (1, 0));
    let f1 = events_of(&db, "F-1");
    assert_eq!(f1.len(), 1);
    let expected: i64 = db
        .client
        .query_one(
            "select floor(extract(epoch from purchased_at))::int8 from shop.store_transactions where order_id = 'F-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(f1[0]["event_time"], expected);
    assert_eq!(
        db.ledger_text("F-1", "status").await.as_deref(),
        Some("sent")
    );
}

#[tokio::test]
async fn a_watermark_years_ahead_never_moves_the_watermark_past_the_clock_and_degrades_the_run() {
    // GIVEN a broken till that stamped one row ten years ahead
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('Z-1', now() - interval '1 hour', now() - interval '1 hour', 10, 'USD', 'a@b.co'),
         ('Z-2', now() - interval '1 hour', now() + interval '10 years', 5, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN the connector runs
    let first = run(&config).await;

    // THEN both orders are sent (by event time), the watermark stays near now, the run is degraded
    assert_eq!(first.sent, 2);
    assert_eq!(first.status, ocapi::stats::RunStatus::Degraded);
    assert_eq!(first.ahead_of_clock, 1);
    let ahead: bool = db
        .client
        .query_one(
            "select watermark::timestamptz > now() + interval '1 hour' from ocapi.state",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        !ahead,
        "the watermark jumped ahead: {:?}",
        first.watermark_end
    );

    // AND a row written later is still read
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('Z-3', now() - interval '1 minute', now(), 3, 'USD', 'a@b.co')",
    )
    .await;
    let second = run(&config).await;
    assert_eq!(second.sent, 1);
    assert_eq!(events_of(&db, "Z-3").len(), 1);
    // AND check reports the row ahead of now
    let out = ocapi(&db.config_path(), &["check"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("ahead of the database's clock"));
}

#[tokio::test]
async fn orders_with_a_null_watermark_are_counted_explained_and_read_by_backfill() {
    // GIVEN N-1 whose watermark is NULL, and N-2 with one
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('N-1', now() - interval '1 hour', null, 10, 'USD', 'a@b.co'),
         ('N-2', now() - interval '1 hour', now() - interval '1 hour', 5, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN the connector runs
    run(&config).await;

    // THEN reconcile counts N-1 as never seen, with the cause, and explain says why
    let report = crate::support::reconcile_around_today(&config).await;
    assert_eq!(
        (report.total.source_orders, report.total.never_seen),
        (2, 1)
    );
    assert_eq!(report.total.never_seen_null_watermark, 1);
    let text = ocapi::commands::explain::explain(&config, "N-1")
        .await
        .unwrap();
    assert!(text.contains("NULL"), "{text}");
    assert!(!text.contains("the next run sends it"), "{text}");

    // WHEN a backfill of its event time runs
    let now = Utc::now();
    let window = ocapi::commands::backfill::window(now - chrono::Duration::days(1), now).unwrap();
    let options = RunOptions {
        mode: ocapi::run::Mode::Backfill,
        window: Some(window),
        ..RunOptions::default()
    };
    let stats = ocapi::run::run(&config, options, std::future::pending())
        .await
        .unwrap();

    // THEN it is sent
    assert_eq!(stats.sent, 1);
    assert_eq!(events_of(&db, "N-1").len(), 1);
}

#[tokio::test]
async fn an_unchanged_invalid_order_read_again_is_not_a_new_invalid_order() {
    // GIVEN an invalid order inside the lookback, and a run that recorded it
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('I-1', now() - interval '1 hour', now() - interval '1 minute', null, 'USD', 'a@b.co'),
         ('I-2', now() - interval '1 hour', now() - interval '1 minute', 5, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("lookback = \"1h\"", None);
    migrate(&config).await;
    let first = run(&config).await;
    assert_eq!(first.invalid, 1);

    // WHEN an idle source is synced again with --max-invalid-ratio 0.05
    let out = ocapi(
        &db.config_path(),
        &["run", "--max-invalid-ratio", "0.05", "--json"],
    )
    .await;

    // THEN the run completes (exit 0): the order is skipped, not counted as a new outcome
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["invalid"], 0);
    assert_eq!(stats["skipped_invalid"], 1);
}

#[tokio::test]
async fn without_source_start_a_time_watermark_starts_62_days_ago() {
    // GIVEN rows updated 100 days ago and 10 days ago, and no `source.start`
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('OLD', now() - interval '100 days', now() - interval '100 days', 10, 'USD', 'a@b.co'),
         ('NEW', now() - interval '10 days', now() - interval '10 days', 5, 'USD', 'a@b.co');",
    )
    .await;
    // (the comment names `start`, so the test support adds none)
    let config = db.config("# no source.start", None);
    assert!(config.source.start.is_none());
    migrate(&config).await;

    // WHEN the first run runs, told to send the history (issue 22: without `--initial-sync`
    // it sends the last 7 days only, tests/lifecycle.rs)
    let options = RunOptions {
        initial_sync: true,
        ..RunOptions::default()
    };
    let stats = ocapi::run::run(&config, options, std::future::pending())
        .await
        .unwrap();

    // THEN it read only what can still be sent: no ledger row says "more than 62 days old"
    assert_eq!((stats.rows_read, stats.sent, stats.invalid), (1, 1, 0));
    assert_eq!(db.ledger_text("OLD", "status").await, None);
}

#[tokio::test]
async fn money_domains_fractions_and_floats_are_read_exactly() {
    // GIVEN a money total, a domain over timestamptz as watermark and event time, a real
    // price and a fractional quantity sold by weight
    let db = TestDb::new().await;
    // (citext is an extension; a domain over text stands in for it)
    db.exec(
        "create domain utc_ts as timestamptz;
         create domain citext_or_text as text;
         create table shop.weighed (order_id varchar(20), purchased_at utc_ts, updated_at utc_ts,
             total money, currency char(3), email citext_or_text, sku text, qty numeric, unit_price real);
         insert into shop.weighed values
         ('G-1', now() - interval '1 hour', now() - interval '1 hour', '$6.30', 'USD', 'a@b.co', 'APPLES', 1.5, 4.0),
         ('G-1', now() - interval '1 hour', now() - interval '1 hour', '$6.30', 'USD', 'a@b.co', 'MILK', 1, 0.3);",
    )
    .await;
    let text = format!(
        r#"
[connector]
name = "weighed"
[source]
url = "{url}"
table = "shop.weighed"
watermark_column = "updated_at"
start = "2000-01-01T00:00:00Z"
[mapping]
order_id = "order_id"
event_time = "purchased_at"
value = "total"
currency = "currency"
email = "email"
item_id = "sku"
item_quantity = "qty"
item_price = "unit_price"
[destination]
kind = "file"
dataset_id = "1234567890"
path = {out:?}
"#,
        url = db.url,
        out = db.out_path().display().to_string()
    );
    std::fs::write(db.config_path(), text).unwrap();
    let config = Config::load(&db.config_path()).unwrap();
    migrate(&config).await;

    // WHEN check and a run run
    let check = ocapi(&db.config_path(), &["check"]).await;
    let stats = run(&config).await;

    // THEN check accepts the types, and the event carries exact numbers
    assert!(
        !String::from_utf8_lossy(&check.stdout).contains("FAIL  source"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert_eq!(stats.sent, 1, "{stats:?}");
    let raw = std::fs::read_to_string(db.out_path()).unwrap();
    assert!(!raw.contains("0.30000001"), "{raw}");
    let event = &db.written_events()[0];
    assert_eq!(event["custom_data"]["value"], serde_json::json!(6.3));
    let contents = event["custom_data"]["contents"].as_array().unwrap();
    assert_eq!(contents[0]["item_price"], serde_json::json!(6.0));
    assert_eq!(contents[0]["quantity"], 1);
    assert_eq!(contents[1]["item_price"], serde_json::json!(0.3));
}

#[tokio::test]
async fn a_mapped_column_of_an_unusable_type_exits_2_naming_key_column_and_type() {
    // GIVEN `mapping.value` pointing at a boolean column
    let db = TestDb::new().await;
    db.exec("alter table shop.store_transactions add column paid boolean")
        .await;
    let mut config = db.config("", None);
    let text = std::fs::read_to_string(db.config_path())
        .unwrap()
        .replace("value = \"total\"", "value = \"paid\"");
    std::fs::write(db.config_path(), text).unwrap();
    config.mapping.value = Some("paid".to_owned());
    migrate(&config).await;

    // WHEN check and run run
    let check = ocapi(&db.config_path(), &["check"]).await;
    let ran = ocapi(&db.config_path(), &["run"]).await;

    // THEN both exit 2 naming the key, the column and its type
    assert_eq!(check.status.code(), Some(2));
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        said.contains("mapping.value") && said.contains("\"paid\"") && said.contains("boolean"),
        "{said}"
    );
    assert_eq!(ran.status.code(), Some(2));
}

#[tokio::test]
async fn stores_in_several_time_zones_have_their_register_times_read_in_their_own_zone() {
    // GIVEN register times without a zone, from Los Angeles, London and a store with no zone
    let day = (Utc::now() - chrono::Duration::days(3)).date_naive();
    let db = TestDb::new().await;
    db.exec(&format!(
        "create table shop.registers (order_id text, sold_at timestamp, updated_at timestamptz,
             total numeric, currency text, email text, store_tz text);
         insert into shop.registers values
         ('LA-1', '{day} 12:00:00', now(), 10, 'USD', 'a@b.co', 'America/Los_Angeles'),
         ('LON-1', '{day} 12:00:00', now(), 10, 'GBP', 'a@b.co', 'Europe/London'),
         ('NY-1', '{day} 12:00:00', now(), 10, 'USD', 'a@b.co', null),
         ('BAD-1', '{day} 12:00:00', now(), 10, 'USD', 'a@b.co', 'Mars/Olympus');"
    ))
    .await;
    let text = format!(
        r#"
[connector]
name = "registers"
[source]
url = "{url}"
table = "shop.registers"
watermark_column = "updated_at"
timezone = "America/New_York"
[mapping]
order_id = "order_id"
event_time = "sold_at"
value = "total"
currency = "currency"
email = "email"
timezone = "store_tz"
[destination]
kind = "file"
dataset_id = "1234567890"
path = {out:?}
"#,
        url = db.url,
        out = db.out_path().display().to_string()
    );
    std::fs::write(db.config_path(), text).unwrap();
    let config = Config::load(&db.config_path()).unwrap();
    migrate(&config).await;

    // WHEN the connector runs
    run(&config).await;

    // THEN each sale is sent at its own store's noon, in UTC
    let utc_of = |zone: &str| -> i64 {
        use chrono::TimeZone as _;
        let zone: chrono_tz::Tz = zone.parse().unwrap();
        zone.from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
            .single()
            .unwrap()
            .timestamp()
    };
    assert_eq!(
        events_of(&db, "LA-1")[0]["event_time"],
        utc_of("America/Los_Angeles")
    );
    assert_eq!(
        events_of(&db, "LON-1")[0]["event_time"],
        utc_of("Europe/London")
    );
    assert_eq!(
        events_of(&db, "NY-1")[0]["event_time"],
        utc_of("America/New_York")
    );
    assert_eq!(
        db.ledger_text("BAD-1", "reason").await.as_deref(),
        Some("time zone is not an IANA time zone name")
    );
    // AND explain shows the local time, the zone and the UTC time sent
    let text = ocapi::commands::explain::explain(&config, "LA-1")
        .await
        .unwrap();
    assert!(
        text.contains("America/Los_Angeles") && text.contains("local"),
        "{text}"
    );
    // AND check says which zone it assumes
    let out = ocapi(&db.config_path(), &["check"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("America/New_York"));
}

#[tokio::test]
async fn a_local_time_watermark_in_a_zone_with_dst_and_a_short_lookback_is_warned_about() {
    let db = TestDb::new().await;
    db.exec("alter table shop.store_transactions alter column updated_at type timestamp")
        .await;
    db.config("timezone = \"Europe/Berlin\"", None);
    let out = ocapi(&db.config_path(), &["check"]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("daylight saving"), "{said}");
}

#[tokio::test]
async fn a_dry_run_prints_only_what_a_real_run_would_send() {
    // GIVEN 12 orders already sent and one new
    let db = TestDb::new().await;
    crate::support::insert_orders(&db, "D", 12, "2026-11-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('D-NEW', now() - interval '1 hour', now(), 5, 'USD', 'a@b.co')",
    )
    .await;
    let lookback = std::fs::read_to_string(db.config_path())
        .unwrap()
        .replace("[source]", "[source]\nlookback = \"3650d\"");
    std::fs::write(db.config_path(), lookback).unwrap();

    // WHEN a dry run runs
    let out = ocapi(&db.config_path(), &["run", "--dry-run"]).await;

    // THEN it prints the one event a real run would send, and wrote nothing
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed.len(), 1, "{printed:?}");
    assert_eq!(printed[0]["event_id"], "D-NEW");
    assert_eq!(db.ledger_text("D-NEW", "status").await, None);
    assert_eq!(db.written_events().len(), 12);
}

#[tokio::test]
async fn reconcile_never_adds_currencies_and_counts_undated_orders() {
    // GIVEN orders in USD and EUR on one day, and one without an event time
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('C-1', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co'),
         ('C-2', now() - interval '1 hour', now(), 20, 'EUR', 'a@b.co'),
         ('C-3', null, now(), 30, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;

    // WHEN reconciling the day
    let report = crate::support::reconcile_around_today(&config).await;

    // THEN values are per currency (no total value across them), and the undated order has
    // its own line
    let usd = report
        .totals
        .iter()
        .find(|l| l.currency.as_deref() == Some("USD"))
        .unwrap();
    let eur = report
        .totals
        .iter()
        .find(|l| l.currency.as_deref() == Some("EUR"))
        .unwrap();
    assert_eq!(
        (usd.sent_value, eur.sent_value),
        (Decimal::from(10), Decimal::from(20))
    );
    assert_eq!(report.total.sent_value, Decimal::ZERO);
    assert!(report.total.currency.is_none());
    assert!(report
        .lines
        .iter()
        .any(|l| l.group == "undated" && l.invalid == 1));
    // AND the ledger view groups by currency too
    let rows: i64 = db
        .client
        .query_one(
            "select count(*) from ocapi.ledger_daily where sent > 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn ids_padded_with_tabs_newlines_or_no_break_spaces_are_one_order() {
    // GIVEN four lines of W-3, padded with nothing, a tab, a newline and a no-break space
    let db = TestDb::new().await;
    db.exec(LINES).await;
    db.exec(
        "insert into shop.lines values
         ('W-3',            1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'A', 1, 10),
         (E'W-3\\t',        2, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'B', 1, 3),
         (E'W-3\\n',        3, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'C', 1, 3),
         ('W-3' || chr(160), 4, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'D', 1, 2);",
    )
    .await;
    let config = lines_config(&db, "shop.lines", "", "");
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN it is one event with all four lines
    let w3 = events_of(&db, "W-3");
    assert_eq!(w3.len(), 1);
    assert_eq!(w3[0]["custom_data"]["value"], serde_json::json!(18.0));
    assert_eq!(stats.skipped_duplicate, 0);
}

#[tokio::test]
async fn a_limit_smaller_than_a_tie_on_one_watermark_still_makes_progress() {
    // GIVEN 50 orders on one watermark value (a bulk load) and 10 after it
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email)
         select 'B' || g, now() - interval '1 hour', '2026-11-01 10:00:00+00', 1, 'USD', 'a@b.co'
         from generate_series(1, 50) g;
         insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email)
         select 'C' || g, now() - interval '1 hour', '2026-11-01 11:00:00+00'::timestamptz + g * interval '1 second', 1, 'USD', 'a@b.co'
         from generate_series(1, 10) g;",
    )
    .await;
    let config = db.config("batch_size = 7", None);
    migrate(&config).await;

    // WHEN runs with --limit 20 follow one another
    let mut sent = 0;
    for _ in 0..4 {
        let options = RunOptions {
            limit: Some(20),
            ..RunOptions::default()
        };
        sent += ocapi::run::run(&config, options, std::future::pending())
            .await
            .unwrap()
            .sent;
    }

    // THEN every order is sent, once
    assert_eq!(sent, 60);
    assert_eq!(db.written_events().len(), 60);
}

#[tokio::test]
async fn an_order_stamped_a_few_minutes_ahead_is_not_taken_as_changed_on_every_run() {
    // GIVEN an order whose watermark is 3 minutes ahead of the clock (a fast till), sent
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('FAST', now() - interval '1 hour', now() + interval '3 minutes', 10, 'USD', 'a@b.co')",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    assert_eq!(run(&config).await.sent, 1);

    // WHEN the connector runs again (the capped watermark re-reads it)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = run(&config).await;

    // THEN it is a plain duplicate, not a change
    assert_eq!((again.sent, again.changed_after_send), (0, 0));
    assert!(db
        .ledger_text("FAST", "changed_after_send_at")
        .await
        .is_none());
}

#[tokio::test]
async fn a_real_price_with_seven_digits_is_sent_exactly() {
    let db = TestDb::new().await;
    db.exec(LINES).await;
    db.exec(
        "alter table shop.lines alter column unit_price type real;
         insert into shop.lines values
         ('R-1', 1, now() - interval '1 hour', now(), 'USD', 'a@b.co', 'US', 'CAR', 1, 1234567)",
    )
    .await;
    let config = lines_config(&db, "shop.lines", "", "");
    migrate(&config).await;
    run(&config).await;
    assert_eq!(
        events_of(&db, "R-1")[0]["custom_data"]["value"],
        serde_json::json!(1_234_567.0)
    );
}

#[tokio::test]
async fn held_orders_show_in_runs_and_the_metrics_file() {
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('AHEAD', now() + interval '2 hours', now(), 10, 'USD', 'a@b.co')",
    )
    .await;
    db.config("", None);
    let metrics = db.dir.join("ocapi.prom");
    let path = db.config_path();
    let config = Config::load(&path).unwrap();
    migrate(&config).await;
    let metrics_flag = metrics.display().to_string();
    let mut command = crate::support::command(&path);
    command.args(["--metrics-file", &metrics_flag, "run"]);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = ocapi(&path, &["runs", "--json"]).await;
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["held"], 1, "{runs}");
    let text = ocapi(&path, &["runs"]).await;
    assert!(String::from_utf8_lossy(&text.stdout).contains("held"));
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.lines()
            .any(|l| l.starts_with("ocapi_last_run_held{") && l.ends_with(" 1")),
        "{prom}"
    );
}

#[tokio::test]
async fn reconcile_counts_an_undated_source_order_on_its_undated_line() {
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('U-1', null, now(), 30, 'USD', 'a@b.co')",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;
    let today = Utc::now().date_naive();
    let report = ocapi::commands::reconcile::reconcile(
        &config,
        today,
        today + chrono::Duration::days(1),
        GroupBy::Day,
    )
    .await
    .unwrap();
    let undated = report.lines.iter().find(|l| l.group == "undated").unwrap();
    assert_eq!(
        (undated.source_orders, undated.invalid, undated.ledger_only),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_held_order_deleted_from_the_source_is_recorded_so_and_not_asked_for_again() {
    // GIVEN an order held (dated 2 hours ahead), then voided: deleted from the source
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('VOID', now() + interval '2 hours', now(), 10, 'USD', 'a@b.co')",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    assert_eq!(run(&config).await.held, 1);
    db.exec("delete from shop.store_transactions where order_id = 'VOID'; update ocapi.ledger set event_time = now() - interval '1 minute' where order_id = 'VOID'")
        .await;

    // WHEN its time has come and the connector runs
    let stats = run(&config).await;

    // THEN it is invalid with that reason, and nothing was sent
    assert_eq!(stats.sent, 0);
    assert_eq!(
        db.ledger_text("VOID", "reason").await.as_deref(),
        Some("held order no longer in the source")
    );
    assert!(db.ledger_text("VOID", "event_time").await.is_some());
}

#[tokio::test]
async fn explain_of_an_order_that_is_nowhere_exits_1() {
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    let out = ocapi(&db.config_path(), &["explain", "NOPE-1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such order"));
}

/// Issue 15: `explain` told to fix the source row of an order Meta no longer takes.
#[tokio::test]
async fn explain_of_an_order_older_than_62_days_says_it_is_too_old_to_send_and_no_more() {
    // GIVEN an order sold 63 days ago, which a run recorded as invalid
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('OLD-1', now() - interval '63 days', '2026-11-01 10:00:00+00', 10, 'USD', 'a@b.co');",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    let stats = run(&config).await;
    assert_eq!((stats.sent, stats.invalid), (0, 1));
    assert_eq!(
        db.ledger_text("OLD-1", "reason").await.as_deref(),
        Some("event time more than 62 days old")
    );

    // WHEN `ocapi explain` is asked about it
    let out = ocapi(&db.config_path(), &["explain", "OLD-1"]).await;

    // THEN it exits 0 with the too-old advice, and promises no run that would send it
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("why not sent [too_old]:"), "{text}");
    assert!(!text.contains("sends it"), "{text}");
}

#[tokio::test]
async fn reconcile_counts_an_order_no_run_recorded_as_a_run_would_and_as_explain_says() {
    // GIVEN four orders with NULL watermarks, which no run reads: OLD-1 70 days old, a
    // return, an order with too little customer data (a gender alone: without any, it would
    // be a walk-in sale, issue 22), and a good one
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email, gender) values
         ('OLD-1', now() - interval '70 days', null, 10, 'USD', 'a@b.co', null),
         ('RET-1', now() - interval '1 hour', null, -5, 'USD', 'a@b.co', null),
         ('BAD-1', now() - interval '1 hour', null, 7, 'USD', null, 'F'),
         ('OK-1', now() - interval '1 hour', null, 3, 'USD', 'a@b.co', null);",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    run(&config).await;
    assert!(db.ledger_counts().await.is_empty());
    let today = Utc::now().date_naive();
    let (from, to) = (
        today - chrono::Duration::days(80),
        today + chrono::Duration::days(1),
    );
    let too_old = ocapi::transform::InvalidReason::TooOld.as_str();

    // WHEN reconciling the window
    let report = ocapi::commands::reconcile::reconcile(&config, from, to, GroupBy::Day)
        .await
        .unwrap();

    // THEN OLD-1 is invalid as too old, RET-1 a return, and only what a run can still handle
    // is never seen; only OK-1 is one `backfill` can send
    let t = &report.total;
    assert_eq!(
        (t.source_orders, t.invalid, t.returns, t.never_seen),
        (4, 1, 1, 2)
    );
    assert_eq!(t.invalid_reasons.get(too_old), Some(&1));
    assert_eq!((t.never_seen_invalid, t.never_seen_null_watermark), (1, 1));
    assert_eq!(
        t.sent + t.invalid + t.returns + t.rejected + t.held + t.anonymous + t.never_seen,
        t.source_orders + t.ledger_only
    );
    // AND explain says the same of OLD-1
    let text = ocapi::commands::explain::explain(&config, "OLD-1")
        .await
        .unwrap();
    assert!(text.contains("[too_old]"), "{text}");

    // WHEN a backfill reads them all
    let now = Utc::now();
    let window = ocapi::commands::backfill::window(now - chrono::Duration::days(80), now).unwrap();
    let options = RunOptions {
        mode: ocapi::run::Mode::Backfill,
        window: Some(window),
        ..RunOptions::default()
    };
    ocapi::run::run(&config, options, std::future::pending())
        .await
        .unwrap();

    // THEN the ledger has OLD-1 and RET-1 as reconcile counted them before
    let after = ocapi::commands::reconcile::reconcile(&config, from, to, GroupBy::Day)
        .await
        .unwrap();
    let a = &after.total;
    assert_eq!((a.sent, a.invalid, a.returns, a.never_seen), (1, 2, 1, 0));
    assert_eq!(a.invalid_reasons.get(too_old), Some(&1));
    assert_eq!(
        db.ledger_text("OLD-1", "reason").await.as_deref(),
        Some(too_old)
    );
}

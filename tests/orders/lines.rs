//! Orders held as lines (issue 11): every line of an order in one event, whatever page or view
//! brought it, ids compared as the till wrote them, prices read exactly.

use super::*;

#[tokio::test]
async fn lines_with_their_own_updated_at_are_one_event_with_every_line() {
    // GIVEN order L-1: line 1 (1 x 30.00) updated at T, line 2 (2 x 10.00) at T + 1 s, and
    // pages of one row, so that the two lines fall in different pages
    let (db, config) = Scenario::lines("shop.lines")
        .given(LINES)
        .given(
            "insert into shop.lines values
         ('L-1', 1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 30.00),
         ('L-1', 2, now() - interval '1 hour', '2026-11-01 10:00:01+00', 'USD', 'a@b.co', 'US', 'SKU-B', 2, 10.00),
         ('L-2', 1, now() - interval '1 hour', '2026-11-01 10:00:02+00', 'USD', 'c@d.co', 'US', 'SKU-A', 1, 5.00);"
        )
        .source("batch_size = 1")
        .migrated()
        .await;

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
    let (db, config) = Scenario::lines("shop.order_lines")
        .given(
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
         from shop.headers h join shop.items i using (order_id);"
        )
        .source("batch_size = 7")
        .migrated()
        .await;

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
async fn orders_whose_lines_cross_the_readers_chunks_are_each_one_whole_event() {
    // GIVEN 300 orders of 3 lines each (900 rows, the lines of an order a second apart) and
    // pages of 400 rows: a page is read and transformed a chunk of at most 128 rows at a time,
    // and 128 is no multiple of 3, so every chunk's last order runs past its 128th row
    let (db, config) = Scenario::lines("shop.lines")
        .given(LINES)
        .given(
            "insert into shop.lines
             select 'C-' || lpad(g::text, 3, '0'), l, now() - interval '1 hour',
                    '2026-11-01 00:00:00+00'::timestamptz + (g * 3 + l) * interval '1 second',
                    'USD', 'c' || g || '@example.com', 'US', 'SKU-' || l, 1, 2.00
             from generate_series(1, 300) g, generate_series(1, 3) l",
        )
        .source("batch_size = 400")
        .migrated()
        .await;

    // WHEN a run stops after about 500 rows (`--limit`), and the next run reads the rest
    let options = RunOptions {
        limit: Some(500),
        mode: ocapi::run::Mode::Run,
        ..RunOptions::default()
    };
    let first = ocapi::run::run(&config, options, std::future::pending())
        .await
        .unwrap();
    let rest = run(&config).await;

    // THEN each of the 300 orders is one event with its 3 lines and value 6.00, sent once
    // across the two runs, the first stopping at a whole order past its 500th row (the next
    // starts at its watermark, and reads that order again only to skip it)
    let events = db.written_events();
    assert_eq!(events.len(), 300);
    let ids: std::collections::HashSet<String> = events
        .iter()
        .map(|e| e["custom_data"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 300);
    for event in &events {
        assert_eq!(
            event["custom_data"]["contents"].as_array().unwrap().len(),
            3,
            "{event}"
        );
        assert_eq!(event["custom_data"]["value"], serde_json::json!(6.0));
    }
    assert_eq!(
        first.sent, 167,
        "the first run ends with the order of its 500th row"
    );
    assert_eq!(first.sent + rest.sent, 300);
}

#[tokio::test]
async fn a_line_added_after_its_order_was_sent_sends_nothing_and_is_counted_changed_after_send() {
    // GIVEN order L-1 sent with one line
    let (db, config) = Scenario::lines("shop.lines")
        .given(LINES)
        .given(
            "insert into shop.lines values
         ('L-1', 1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 30.00)"
        )
        .source("lookback = \"1d\"")
        .migrated()
        .await;
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
    let (db, config) = Scenario::lines("shop.lines")
        .given(LINES)
        .given(
            "insert into shop.lines values
         ('W-2',  1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 30.00),
         ('W-2 ', 2, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'SKU-B', 1, 20.00),
         (' W-3', 1, now() - interval '1 hour', '2026-11-01 10:00:01+00', 'USD', 'a@b.co', 'US', 'SKU-A', 1, 7.00);"
        )
        .migrated()
        .await;

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
async fn ids_padded_with_tabs_newlines_or_no_break_spaces_are_one_order() {
    // GIVEN four lines of W-3, padded with nothing, a tab, a newline and a no-break space
    let (db, config) = Scenario::lines("shop.lines")
        .given(LINES)
        .given(
            "insert into shop.lines values
         ('W-3',            1, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'A', 1, 10),
         (E'W-3\\t',        2, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'B', 1, 3),
         (E'W-3\\n',        3, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'C', 1, 3),
         ('W-3' || chr(160), 4, now() - interval '1 hour', '2026-11-01 10:00:00+00', 'USD', 'a@b.co', 'US', 'D', 1, 2);"
        )
        .migrated()
        .await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN it is one event with all four lines
    let w3 = events_of(&db, "W-3");
    assert_eq!(w3.len(), 1);
    assert_eq!(w3[0]["custom_data"]["value"], serde_json::json!(18.0));
    assert_eq!(stats.skipped_duplicate, 0);
}

#[tokio::test]
async fn a_real_price_with_seven_digits_is_sent_exactly() {
    let (db, config) = Scenario::lines("shop.lines")
        .given(LINES)
        .given(
            "alter table shop.lines alter column unit_price type real;
         insert into shop.lines values
         ('R-1', 1, now() - interval '1 hour', now(), 'USD', 'a@b.co', 'US', 'CAR', 1, 1234567)",
        )
        .migrated()
        .await;
    run(&config).await;
    assert_eq!(
        events_of(&db, "R-1")[0]["custom_data"]["value"],
        serde_json::json!(1_234_567.0)
    );
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
{destination}
"#,
        url = db.url,
        destination = db.file_destination()
    );
    let config = db.use_config(&text).await;

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

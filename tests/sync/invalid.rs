//! Invalid orders: recorded with their reason, sent once fixed, counted once, returns left out of
//! the ratio.

use super::*;

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

//! Walk-in sales (issue 22, kind 1): an order whose rows carry no customer value is `anonymous`,
//! not invalid: recorded in the ledger, outside `--max-invalid-ratio`, shown by `runs`,
//! `reconcile`, the metrics and `explain`, and sent once if its customer data arrives later.

use crate::support::{insert_orders, migrate, ocapi, run, TestDb};
use ocapi::transform::hash::sha256_hex;

/// Adds `n` walk-in sales `W1..Wn` of store `S1`, bought an hour ago: no customer column set.
async fn insert_walk_ins(db: &TestDb, n: i32, updated: &str) {
    db.exec(&format!(
        "insert into shop.store_transactions (order_id, store_id, purchased_at, updated_at, total,
                                              currency)
         select 'W' || g, 'S1', now() - interval '1 hour',
                timestamptz '{updated}' + g * interval '1 second', 5 + g, 'USD'
         from generate_series(1, {n}) g"
    ))
    .await;
}

/// The stdout of a binary run as JSON, after checking its exit code.
fn json(out: &std::process::Output, code: i32) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_store_day_with_walk_ins_is_not_degraded_and_every_view_counts_them() {
    // GIVEN a store's day: 6 sales with customer data and 4 walk-ins (40%), store S1 mapped
    let db = TestDb::new().await;
    insert_orders(&db, "C", 6, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set store_id = 'S1'")
        .await;
    insert_walk_ins(&db, 4, "2026-01-02T00:00:00Z").await;
    db.config("", None);
    let config = db.edit_config(&[(
        "order_id = \"order_id\"",
        "order_id = \"order_id\"\nstore_id = \"store_id\"",
    )]);
    migrate(&config).await;
    let metrics = db.dir.join("ocapi.prom");

    // WHEN the README's cron line runs: --max-invalid-ratio 0.05
    let out = ocapi(
        &db.config_path(),
        &[
            "--metrics-file",
            metrics.to_str().unwrap(),
            "run",
            "--max-invalid-ratio",
            "0.05",
            "--json",
        ],
    )
    .await;

    // THEN it completes (exit 0): the walk-ins are anonymous, not invalid
    let stats = json(&out, 0);
    assert_eq!(stats["status"], "completed");
    assert_eq!(
        (stats["sent"].as_u64(), stats["anonymous"].as_u64()),
        (Some(6), Some(4))
    );
    assert_eq!(stats["invalid"], 0);
    // AND the ledger records them `anonymous`, and only the 6 went out
    let counts = db.ledger_counts().await;
    assert_eq!(
        (counts.get("sent"), counts.get("anonymous")),
        (Some(&6), Some(&4))
    );
    assert_eq!(counts.get("invalid"), None);
    assert_eq!(db.written_events().len(), 6);
    assert_eq!(
        db.ledger_text("W1", "reason").await.as_deref(),
        Some("no customer information")
    );

    // AND `runs` shows them, apart from invalid and the ratio
    let runs = json(&ocapi(&db.config_path(), &["runs", "--json"]).await, 0);
    assert_eq!(runs[0]["anonymous"], 4);
    assert_eq!(
        (
            runs[0]["invalid"].as_i64(),
            runs[0]["invalid_ratio"].as_f64()
        ),
        (Some(0), Some(0.0))
    );
    let text = ocapi(&db.config_path(), &["runs"]).await;
    assert!(String::from_utf8_lossy(&text.stdout).contains("anonymous"));

    // AND `reconcile --by store` counts them, with Google's two store-sales fractions
    let report = json(
        &ocapi(&db.config_path(), &["reconcile", "--by", "store", "--json"]).await,
        0,
    );
    let line = &report["lines"][0];
    assert_eq!(line["group"], "S1");
    assert_eq!(
        (line["sent"].as_u64(), line["anonymous"].as_u64()),
        (Some(6), Some(4))
    );
    assert_eq!(line["never_seen"], 0);
    assert_eq!(line["loyalty_fraction"].as_f64(), Some(0.6));
    assert_eq!(line["transaction_upload_fraction"].as_f64(), Some(1.0));
    assert_eq!(report["total"]["anonymous"], 4);
    let text = ocapi(&db.config_path(), &["reconcile", "--by", "day"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("anonymous") && text.contains("60.0%"),
        "{text}"
    );
    // AND so does the ledger's view, per day and store
    let row = db
        .client
        .query_one(
            "select sales, with_customer, sent, anonymous, loyalty_fraction::float8,
                    transaction_upload_fraction::float8
             from ocapi.ledger_store_sales where store_id = 'S1'",
            &[],
        )
        .await
        .unwrap();
    let figures: (i64, i64, i64, i64, f64, f64) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(figures, (10, 6, 6, 4, 0.6, 1.0));
    let daily: i64 = db
        .client
        .query_one("select sum(anonymous)::int8 from ocapi.ledger_daily", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(daily, 4);

    // AND the metrics file has them, in the existing names' style
    let text = std::fs::read_to_string(&metrics).unwrap();
    let c = "connector=\"stores-test\"";
    for line in [
        format!("ocapi_orders_anonymous_total{{{c}}} 4"),
        format!("ocapi_last_run_anonymous{{{c}}} 4"),
        format!("ocapi_last_run_invalid{{{c}}} 0"),
        format!("ocapi_last_run_status{{{c},status=\"completed\"}} 1"),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    // AND `explain` says why it cannot be matched, not to fix the row
    let text = ocapi::commands::explain::explain(&config, "W1")
        .await
        .unwrap();
    assert!(text.contains("anonymous"), "{text}");
    assert!(text.contains("no customer information"), "{text}");
    assert!(text.contains("Meta attributes"), "{text}");
    assert!(!text.contains("fix the source row"), "{text}");
}

#[tokio::test]
async fn only_a_default_country_is_a_walk_in_and_an_unmatchable_value_stays_invalid() {
    // GIVEN an order with no customer column (the country comes only from [defaults]), one
    // with only a gender, and one with only an email that is no email
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency,
                                              gender, email) values
         ('WALK', now() - interval '1 hour', '2026-01-01', 10, 'USD', null, null),
         ('GENDER', now() - interval '1 hour', '2026-01-01', 10, 'USD', 'F', null),
         ('NOMAIL', now() - interval '1 hour', '2026-01-01', 10, 'USD', null, 'no email'),
         ('BLANK', now() - interval '1 hour', '2026-01-01', 10, 'USD', ' ', '')",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;

    // WHEN a run reads them
    let stats = run(&config).await;

    // THEN the ones without any customer value are walk-ins; the others are data problems
    assert_eq!((stats.anonymous, stats.invalid, stats.sent), (2, 2, 0));
    let status = |id: &'static str| {
        let db = &db;
        async move { db.ledger_text(id, "status").await }
    };
    assert_eq!(status("WALK").await.as_deref(), Some("anonymous"));
    assert_eq!(status("BLANK").await.as_deref(), Some("anonymous"));
    assert_eq!(status("GENDER").await.as_deref(), Some("invalid"));
    assert_eq!(status("NOMAIL").await.as_deref(), Some("invalid"));
    assert_eq!(
        db.ledger_text("GENDER", "reason").await.as_deref(),
        Some("insufficient customer information")
    );
    // AND read again unchanged, nothing is counted twice
    let again = run(&config).await;
    assert_eq!(
        (again.anonymous, again.invalid, again.skipped_invalid),
        (0, 0, 2)
    );
}

#[tokio::test]
async fn a_walk_in_whose_loyalty_card_is_linked_later_is_sent_once_with_the_email() {
    // GIVEN a walk-in sale recorded anonymous, read again unchanged
    let db = TestDb::new().await;
    insert_walk_ins(&db, 1, "2026-01-02T00:00:00Z").await;
    let config = db.config("lookback = \"1h\"", None);
    migrate(&config).await;
    assert_eq!(run(&config).await.anonymous, 1);
    let again = run(&config).await;
    assert_eq!((again.anonymous, again.sent), (0, 0));

    // WHEN a loyalty card is linked to it after the sale (the row changes)
    db.exec(
        "update shop.store_transactions
         set email = 'Late@Example.com', updated_at = '2026-01-03' where order_id = 'W1'",
    )
    .await;
    let linked = run(&config).await;

    // THEN it is sent then, with the email
    assert_eq!((linked.sent, linked.anonymous), (1, 0));
    assert_eq!(
        db.ledger_text("W1", "status").await.as_deref(),
        Some("sent")
    );
    let events = db.written_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], "W1");
    assert_eq!(
        events[0]["user_data"]["em"][0],
        sha256_hex("late@example.com")
    );

    // AND once: read again, or changed again, it is not sent a second time
    let reread = run(&config).await;
    db.exec("update shop.store_transactions set updated_at = '2026-01-04' where order_id = 'W1'")
        .await;
    let touched = run(&config).await;
    assert_eq!((reread.sent, touched.sent), (0, 0));
    assert_eq!(db.written_events().len(), 1);
}

#[tokio::test]
async fn a_touch_counts_unchanged_invalid_orders_skipped_invalid_and_does_not_degrade_the_run() {
    // GIVEN an order sent, a walk-in and an order with only a gender (invalid), recorded
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency,
                                              gender, email) values
         ('GOOD', now() - interval '1 hour', now() - interval '1 hour', 10, 'USD', null, 'g@example.com'),
         ('WALK', now() - interval '1 hour', now() - interval '1 hour', 10, 'USD', null, null),
         ('GENDER', now() - interval '1 hour', now() - interval '1 hour', 10, 'USD', 'F', null)",
    )
    .await;
    let config = db.config("lookback = \"1d\"", None);
    migrate(&config).await;
    let first = run(&config).await;
    assert_eq!((first.sent, first.anonymous, first.invalid), (1, 1, 1));
    let strict = || ocapi::run::RunOptions {
        max_invalid_ratio: Some(0.05),
        ..ocapi::run::RunOptions::default()
    };

    // WHEN a rebuild re-stamps every row without changing any, and a strict run follows
    db.exec("update shop.store_transactions set updated_at = now()")
        .await;
    let second = ocapi::run::run(&config, strict(), std::future::pending())
        .await
        .unwrap();

    // THEN the invalid order is skipped_invalid, the walk-in counted nowhere, nothing sent,
    // and the run is not degraded
    assert_eq!(
        (
            second.invalid,
            second.skipped_invalid,
            second.anonymous,
            second.sent,
            second.skipped_duplicate
        ),
        (0, 1, 0, 0, 1),
        "{second:?}"
    );
    assert_eq!(
        second.status,
        ocapi::stats::RunStatus::Completed,
        "{second:?}"
    );

    // AND a real change to the invalid order (still invalid) is counted invalid again
    db.exec(
        "update shop.store_transactions set gender = 'M', updated_at = now()
         where order_id = 'GENDER'",
    )
    .await;
    let third = run(&config).await;
    assert_eq!((third.invalid, third.skipped_invalid), (1, 0), "{third:?}");
}

#[tokio::test]
async fn explain_of_a_walk_in_says_anonymous_in_its_event_section_too() {
    // GIVEN a walk-in sale recorded `anonymous`
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency,
                                              email) values
         ('WALK', now() - interval '1 hour', now() - interval '1 hour', 10, 'USD', null)",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    assert_eq!(run(&config).await.anonymous, 1);

    // WHEN it is explained
    let text = ocapi::commands::explain::explain(&config, "WALK")
        .await
        .unwrap();

    // THEN every section says anonymous, none calls it invalid
    assert!(text.contains("none: anonymous"), "{text}");
    assert!(!text.contains("none: invalid"), "{text}");
}

//! Orders accounted for (issue 11): reconcile and explain say what a run did with each order, in
//! its currency, dated or not.

use super::*;

#[tokio::test]
async fn reconcile_never_adds_currencies_and_counts_undated_orders() {
    // GIVEN orders in USD and EUR on one day, and one without an event time
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('C-1', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co'),
         ('C-2', now() - interval '1 hour', now(), 20, 'EUR', 'a@b.co'),
         ('C-3', null, now(), 30, 'USD', 'a@b.co');"
        )
        .migrated()
        .await;
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
async fn reconcile_counts_an_undated_source_order_on_its_undated_line() {
    let (_db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('U-1', null, now(), 30, 'USD', 'a@b.co')"
        )
        .migrated()
        .await;
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
async fn explain_of_an_order_that_is_nowhere_exits_1() {
    let (db, _) = Scenario::demo().migrated().await;
    let out = ocapi(&db.config_path(), &["explain", "NOPE-1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such order"));
}

/// Issue 15: `explain` told to fix the source row of an order Meta no longer takes.
#[tokio::test]
async fn explain_of_an_order_older_than_62_days_says_it_is_too_old_to_send_and_no_more() {
    // GIVEN an order sold 63 days ago, which a run recorded as invalid
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('OLD-1', now() - interval '63 days', '2026-11-01 10:00:00+00', 10, 'USD', 'a@b.co');"
        )
        .migrated()
        .await;
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
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email, gender) values
         ('OLD-1', now() - interval '70 days', null, 10, 'USD', 'a@b.co', null),
         ('RET-1', now() - interval '1 hour', null, -5, 'USD', 'a@b.co', null),
         ('BAD-1', now() - interval '1 hour', null, 7, 'USD', null, 'F'),
         ('OK-1', now() - interval '1 hour', null, 3, 'USD', 'a@b.co', null);"
        )
        .migrated()
        .await;
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

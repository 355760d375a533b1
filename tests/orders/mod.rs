//! Orders as real warehouses hold them (issue 11): never split, never written off, never
//! silently stuck. Each test is a reproduction from the issue, or another member of its kind,
//! against a real PostgreSQL; the events are read back from the file destination and the
//! outcomes from the ledger.

mod lines;
mod clock;
mod accounting;

use chrono::Utc;
use ocapi::commands::reconcile::GroupBy;
use ocapi::run::RunOptions;
use rust_decimal::Decimal;

use crate::support::scenario::Scenario;
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

/// The events written for one order id.
fn events_of(db: &TestDb, order_id: &str) -> Vec<serde_json::Value> {
    db.written_events()
        .into_iter()
        .filter(|e| e["event_id"] == order_id)
        .collect()
}

#[tokio::test]
async fn one_order_id_from_two_tills_with_conflicting_values_is_invalid_and_said_so() {
    // GIVEN a union all of two tills: T-1 twice with different totals at the same watermark,
    // T-2 twice identical, T-3 twice as versions (the later one wins)
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('T-1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 10, 'USD', 'a@b.co'),
         ('T-1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 12, 'USD', 'a@b.co'),
         ('T-2', now() - interval '1 hour', '2026-11-01 10:00:01+00', 5, 'USD', 'a@b.co'),
         ('T-2', now() - interval '1 hour', '2026-11-01 10:00:01+00', 5.00, 'USD', 'a@b.co'),
         ('T-3', now() - interval '1 hour', '2026-11-01 10:00:02+00', 7, 'USD', 'a@b.co'),
         ('T-3', now() - interval '1 hour', '2026-11-01 10:00:03+00', 8, 'USD', 'a@b.co');"
        )
        .migrated()
        .await;

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
async fn an_unchanged_invalid_order_read_again_is_not_a_new_invalid_order() {
    // GIVEN an invalid order inside the lookback, and a run that recorded it
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('I-1', now() - interval '1 hour', now() - interval '1 minute', null, 'USD', 'a@b.co'),
         ('I-2', now() - interval '1 hour', now() - interval '1 minute', 5, 'USD', 'a@b.co');"
        )
        .source("lookback = \"1h\"")
        .migrated()
        .await;
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
async fn a_dry_run_prints_only_what_a_real_run_would_send() {
    // GIVEN 12 orders already sent and one new
    let (db, config) = Scenario::demo()
        .given(crate::support::orders_sql("D", 12, "2026-11-01T00:00:00Z"))
        .migrated()
        .await;
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

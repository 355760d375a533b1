//! `[[source.changes]]` (issue 21) with the commands besides a plain run: a dry run, `explain`
//! and `reconcile` over a source whose changes its base tables find.

use crate::changes::{run_json, setup, CHANGES};
use crate::support::{ocapi, reconcile_around_today};

/// Three orders of one line each, bought an hour ago by customer 7.
const ORDERS: &str = "
insert into crm.customers values (7, 'ann@example.com');
insert into pos.order_headers select g, 7, now() - interval '1 hour' from generate_series(1, 3) g;
insert into pos.order_lines (order_id, line_no, sku, qty, price)
  select g, 1, 'A', 1, 10 * g from generate_series(1, 3) g";

#[tokio::test]
async fn a_dry_run_with_changes_sends_and_records_nothing_and_moves_no_watermark() {
    // GIVEN three orders
    let (db, _config) = setup("", CHANGES).await;
    db.exec(ORDERS).await;

    // WHEN a dry run reads them
    let out = ocapi(&db.config_path(), &["run", "--dry-run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let printed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();

    // THEN it printed the three events, and wrote nothing: no event, no ledger row, no watermark
    assert_eq!(printed.len(), 3, "{printed:?} {stderr}");
    assert!(db.written_events().is_empty());
    assert!(db.ledger_counts().await.is_empty());
    let kept: i64 = db
        .client
        .query_one("select count(*) from ocapi.change_watermarks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 0);

    // AND a run afterwards sends all three
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 3, "{stats}");
}

#[tokio::test]
async fn explain_and_reconcile_find_the_orders_of_a_changes_source() {
    // GIVEN three orders sent by a run
    let (db, config) = setup("", CHANGES).await;
    db.exec(ORDERS).await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 3, "{stats}");

    // WHEN one is explained and the day reconciled
    let text = ocapi::commands::explain::explain(&config, "2")
        .await
        .unwrap();
    let report = reconcile_around_today(&config).await;

    // THEN explain follows it from the view to the ledger, and reconcile counts all three sent
    assert!(text.contains("status         sent"), "{text}");
    assert!(text.contains("a***@e***.com"), "{text}");
    assert_eq!(report.total.source_orders, 3, "{report:?}");
    assert_eq!(report.total.sent, 3, "{report:?}");
}

#[tokio::test]
async fn a_first_sync_larger_than_a_chunk_of_keys_sends_every_order_once() {
    // GIVEN 25,000 orders whose 75,000 lines all but the last order's share one watermark
    // value: more rows than a chunk of keys holds (50,000) on one value, then one more value
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "insert into crm.customers values (7, 'ann@example.com');
         insert into pos.order_headers
           select g, 7, now() - interval '1 hour' from generate_series(1, 25000) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price, updated_at)
           select g, l, 'A', 1, 10,
                  timestamptz '2026-12-01 10:00:00+00' + (g / 25000) * interval '1 hour'
           from generate_series(1, 25000) g, generate_series(1, 3) l;
         analyze",
    )
    .await;

    // WHEN the first sync runs
    let (code, stats, stderr) = run_json(&db).await;

    // THEN every order is sent once, and the lines' watermark is their last value
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 25000, "{stats}");
    let events = db.written_events();
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["custom_data"]["order_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((events.len(), ids.len()), (25000, 25000));
    let kept: String = db
        .client
        .query_one(
            "select watermark from ocapi.change_watermarks where source_table = 'pos.order_lines'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(kept.starts_with("2026-12-01 11:00:00"), "{kept}");
}

/// `ocapi check`: its exit code and what it printed.
async fn check(db: &crate::support::TestDb) -> (Option<i32>, String) {
    let out = ocapi(&db.config_path(), &["check"]).await;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), printed)
}

#[tokio::test]
async fn check_fails_as_run_does_on_a_start_that_does_not_fit_a_changes_watermark() {
    // GIVEN a `[[source.changes]]` entry on the lines' integer `seq` and a `source.start` time
    let changes = "[[source.changes]]\ntable = \"pos.order_lines\"\nwatermark_column = \"seq\"\n\
                   key = \"order_id\"\nlookback = 0";
    let (db, _config) = setup("start = \"2026-01-01T00:00:00Z\"", changes).await;

    // WHEN it is checked
    let (code, printed) = check(&db).await;

    // THEN it is a configuration error naming the start, the entry and its column
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("FAIL"), "{printed}");
    assert!(printed.contains("source.start"), "{printed}");
    assert!(printed.contains("pos.order_lines"), "{printed}");
    assert!(printed.contains("\"seq\""), "{printed}");
}

#[tokio::test]
async fn check_fails_as_run_does_on_a_start_that_does_not_fit_the_watermark_column() {
    // GIVEN the single-watermark view and a `source.start` that is no time
    let (db, _config) = setup("watermark_column = \"updated_at\"\nstart = \"12345\"", "").await;

    // WHEN it is checked, and run
    let (code, printed) = check(&db).await;
    let (run_code, _stats, stderr) = run_json(&db).await;

    // THEN both are configuration errors naming the start and the watermark column
    assert_eq!(run_code, Some(2), "{stderr}");
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("source.start"), "{printed}");
    assert!(printed.contains("watermark column"), "{printed}");
}

#[tokio::test]
async fn a_restarted_sequence_a_lookback_covers_is_read_and_the_message_says_so() {
    // GIVEN a table read by its integer id with a lookback of 5000, synced up to id 20
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "create table pos.int_purchases (
           id bigserial primary key, order_id bigint, customer_id bigint,
           purchased_at timestamptz not null default now() - interval '1 hour',
           line_no int, sku text, qty numeric, price numeric, currency text,
           email text default 'ann@example.com');
         insert into pos.int_purchases (order_id, line_no, sku, qty, price, currency)
           select g, 1, 'A', 1, 10, 'USD' from generate_series(1, 20) g",
    )
    .await;
    db.edit_config_text(&[
        (
            "table = \"pos.ocapi_purchases\"",
            "table = \"pos.int_purchases\"\nwatermark_column = \"id\"\nlookback = 5000",
        ),
        (CHANGES, ""),
    ]);
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 20, "{stats}");

    // WHEN the table is re-created (its sequence restarted) with 5 new orders
    db.exec(
        "truncate pos.int_purchases restart identity;
         insert into pos.int_purchases (order_id, line_no, sku, qty, price, currency)
           select 100 + g, 1, 'A', 1, 10, 'USD' from generate_series(1, 5) g",
    )
    .await;
    let (code, stats, stderr) = run_json(&db).await;

    // THEN the run reads and sends them, degraded (exit 3), and says it reads the rows the
    // lookback reaches, not that they are left unread
    assert_eq!(code, Some(3), "{stats} {stderr}");
    assert_eq!(stats["sent"], 5, "{stats}");
    let said = format!("{stats} {stderr}");
    assert!(said.contains("behind the stored watermark 20"), "{said}");
    assert!(
        said.contains("runs read only its rows from -4980 on"),
        "{said}"
    );
    assert!(!said.contains("not read until they pass it"), "{said}");

    // AND `check` says the same
    let (code, printed) = check(&db).await;
    assert_eq!(code, Some(0), "{printed}");
    assert!(
        printed.contains("behind the stored watermark 20"),
        "{printed}"
    );
    assert!(
        printed.contains("runs read only its rows from -4980 on"),
        "{printed}"
    );
}

#[tokio::test]
async fn check_on_a_tiny_unanalyzed_source_gives_no_placeholder_index_advice() {
    // GIVEN three orders over the README's indexed tables, never analyzed
    let (db, _config) = setup("", CHANGES).await;
    db.exec(ORDERS).await;

    // WHEN it is checked
    let (code, printed) = check(&db).await;

    // THEN no advice names a placeholder table or column
    assert_eq!(code, Some(0), "{printed}");
    assert!(!printed.contains("<table>"), "{printed}");
    assert!(!printed.contains("<column>"), "{printed}");
}

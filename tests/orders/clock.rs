//! Orders against the clock (issue 11): dated ahead, stamped ahead, without a watermark, in other
//! time zones, on one watermark value, held and then gone.

use super::*;

#[tokio::test]
async fn an_order_dated_a_few_minutes_ahead_is_held_then_sent_with_the_event_it_would_have_had() {
    // GIVEN a till clock running fast: F-1 dated 5 min 10 s ahead, updated before F-2
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('F-1', now() + interval '5 minutes 10 seconds', '2026-11-01 10:00:00+00', 10, 'USD', 'a@b.co'),
         ('F-2', now() - interval '1 hour', '2026-11-01 10:00:01+00', 5, 'USD', 'a@b.co');"
        )
        .migrated()
        .await;

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
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('Z-1', now() - interval '1 hour', now() - interval '1 hour', 10, 'USD', 'a@b.co'),
         ('Z-2', now() - interval '1 hour', now() + interval '10 years', 5, 'USD', 'a@b.co');"
        )
        .migrated()
        .await;

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
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('N-1', now() - interval '1 hour', null, 10, 'USD', 'a@b.co'),
         ('N-2', now() - interval '1 hour', now() - interval '1 hour', 5, 'USD', 'a@b.co');"
        )
        .migrated()
        .await;

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
async fn without_source_start_a_time_watermark_starts_62_days_ago() {
    // GIVEN rows updated 100 days ago and 10 days ago, and no `source.start`
    // (the comment names `start`, so the test support adds none)
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('OLD', now() - interval '100 days', now() - interval '100 days', 10, 'USD', 'a@b.co'),
         ('NEW', now() - interval '10 days', now() - interval '10 days', 5, 'USD', 'a@b.co');"
        )
        .source("# no source.start")
        .build()
        .await;
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
{destination}
"#,
        url = db.url,
        destination = db.file_destination()
    );
    let config = db.use_config(&text).await;

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
    let (db, _) = Scenario::demo()
        .given("alter table shop.store_transactions alter column updated_at type timestamp")
        .source("timezone = \"Europe/Berlin\"")
        .build()
        .await;
    let out = ocapi(&db.config_path(), &["check"]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("daylight saving"), "{said}");
}

#[tokio::test]
async fn a_limit_smaller_than_a_tie_on_one_watermark_still_makes_progress() {
    // GIVEN 50 orders on one watermark value (a bulk load) and 10 after it
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email)
         select 'B' || g, now() - interval '1 hour', '2026-11-01 10:00:00+00', 1, 'USD', 'a@b.co'
         from generate_series(1, 50) g;
         insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email)
         select 'C' || g, now() - interval '1 hour', '2026-11-01 11:00:00+00'::timestamptz + g * interval '1 second', 1, 'USD', 'a@b.co'
         from generate_series(1, 10) g;"
        )
        .source("batch_size = 7")
        .migrated()
        .await;

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
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('FAST', now() - interval '1 hour', now() + interval '3 minutes', 10, 'USD', 'a@b.co')"
        )
        .migrated()
        .await;
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
async fn held_orders_show_in_runs_and_the_metrics_file() {
    let (db, _) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('AHEAD', now() + interval '2 hours', now(), 10, 'USD', 'a@b.co')"
        )
        .migrated()
        .await;
    let metrics = db.dir.join("ocapi.prom");
    let path = db.config_path();
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
async fn a_held_order_deleted_from_the_source_is_recorded_so_and_not_asked_for_again() {
    // GIVEN an order held (dated 2 hours ahead), then voided: deleted from the source
    let (db, config) = Scenario::demo()
        .given(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('VOID', now() + interval '2 hours', now(), 10, 'USD', 'a@b.co')"
        )
        .migrated()
        .await;
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

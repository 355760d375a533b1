//! Hostile input and mismatched types: a ledger row or a clear error for every order, never a
//! panic.

use super::*;

#[tokio::test]
async fn hostile_input_gives_a_ledger_row_or_a_clear_error_for_every_order_and_never_panics() {
    // GIVEN a source with NULLs, empty and 10 KB strings, non-UTF-8 bytes, overflowing and NaN
    // numbers, extreme timestamps, and a column literally named `x"; drop table y; --` mapped
    // as external_id
    let db = TestDb::new().await;
    db.exec("create table public.y (id int)").await;
    db.exec(&format!(
        "alter table shop.store_transactions add column {} text",
        ocapi::db::quote_ident(HOSTILE_COLUMN)
    ))
    .await;
    db.exec(HOSTILE_ROWS).await;
    db.exec(&format!(
        "update shop.store_transactions set {} = 'ext-' || order_id where order_id <> 'E1'",
        ocapi::db::quote_ident(HOSTILE_COLUMN)
    ))
    .await;
    let graph = sandbox(Faults::default()).await;
    db.meta_config("", &graph.base_url(), TOKEN, "");
    let config = db.edit_config(&[(
        r#"external_id = "loyalty_id""#,
        &format!("external_id = '{HOSTILE_COLUMN}'"),
    )]);
    migrate(&config).await;

    // WHEN the connector runs, twice
    let stats = run(&config).await;
    let again = run(&config).await;

    // THEN every row with a usable order id (and a watermark at or after the start) has a
    // ledger row
    let usable: HashSet<String> = db
        .client
        .query(
            "select distinct btrim(order_id) from shop.store_transactions
             where updated_at >= '2000-01-01' and btrim(order_id) <> ''
               and char_length(btrim(order_id)) <= 256",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let statuses = ledger_statuses(&db).await;
    let missing: Vec<_> = usable
        .iter()
        .filter(|id| !statuses.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "orders without a ledger row: {missing:?}"
    );
    assert_eq!(statuses.len(), usable.len());
    // AND each bad row is `invalid` for its own reason, and the good ones are sent
    let reason = |id: &str| {
        let client = &db.client;
        let id = id.to_owned();
        async move {
            client
                .query_one(
                    "select status || ': ' || coalesce(reason, '') from ocapi.ledger
                     where order_id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    for (id, expected) in [
        ("V1", "sent: "),
        ("V2", "sent: "),
        ("N1", "invalid: missing event time"),
        // empty strings in every customer column: a walk-in sale (issue 22)
        ("E1", "anonymous: no customer information"),
        ("O1", "invalid: value is not a valid number"),
        ("O3", "invalid: value is not a valid number"),
        ("NAN1", "invalid: value is not a valid number"),
        ("INF1", "invalid: value is not a valid number"),
        ("T1", "invalid: event time out of range"),
        ("T2", "invalid: event time out of range"),
        ("T3", "invalid: event time out of range"),
        ("T4", "invalid: event time out of range"),
        ("S1", "invalid: currency is not an ISO 4217 code"),
    ] {
        assert_eq!(reason(id).await, expected, "order {id}");
    }
    for id in ["S2", "B1", "O2", "Q1'; drop table y; --"] {
        let status = statuses[id].as_str();
        assert!(
            matches!(status, "sent" | "invalid" | "rejected"),
            "{id}: {status}"
        );
    }
    // AND what was sent is what the endpoint accepted, with the hostile column's values
    let accepted: HashSet<String> = accepted_ids(&graph).into_iter().collect();
    let sent: HashSet<String> = statuses
        .iter()
        .filter(|(_, s)| *s == "sent")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(accepted, sent);
    assert_event_ids_are_order_ids(&graph);
    let v1 = graph
        .events()
        .into_iter()
        .find(|e| e["event_id"] == "V1")
        .unwrap();
    assert!(
        v1["user_data"]["external_id"][0].is_string(),
        "the hostile column was not read: {v1}"
    );
    // AND the table named in the hostile column still exists, and the rerun sends nothing new
    db.exec("select * from public.y").await;
    assert_eq!(stats.sent, sent.len() as u64);
    assert_eq!(again.sent, 0);
}

#[tokio::test]
async fn a_mapping_to_a_column_of_the_wrong_type_is_a_clear_error_naming_the_key() {
    // GIVEN the event time mapped to a text column
    let db = TestDb::new().await;
    insert_orders(&db, "W", 3, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults::default()).await;
    db.meta_config("", &graph.base_url(), TOKEN, "");
    let config = db.edit_config(&[(r#"event_time = "purchased_at""#, r#"event_time = "email""#)]);
    migrate(&config).await;

    // WHEN the connector runs
    let error = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();

    // THEN it stops before reading, naming the config key, and sends nothing
    assert!(
        matches!(
            &error,
            ocapi::Error::Source(ocapi::source::SourceError::ColumnType { key, .. })
                if key == "mapping.event_time"
        ),
        "{error:?}"
    );
    assert_eq!(graph.stats().requests, 0);
}

#[tokio::test]
async fn an_integer_watermark_whose_values_grow_a_digit_pages_in_numeric_order_and_reads_every_row()
{
    // GIVEN 30 orders with an integer watermark 1..30 and pages of 7 rows (found while
    // profiling: ORDER BY "seq" bound to the select list's "seq"::text and sorted '10' < '9',
    // so the keyset skipped rows; it also kept the page query off the index)
    let db = TestDb::new().await;
    insert_orders(&db, "I", 30, "2026-01-01T00:00:00Z").await;
    db.exec(
        "alter table shop.store_transactions add column seq bigint;
         update shop.store_transactions set seq = substr(order_id, 2)::bigint",
    )
    .await;
    let config = db.config_watermarked_by("seq", "batch_size = 7");
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN every order was read and sent, and the watermark is the largest value
    assert_eq!((stats.rows_read, stats.sent), (30, 30));
    assert_eq!(db.written_events().len(), 30);
    assert_eq!(stats.watermark_end.as_deref(), Some("30"));
}

#[tokio::test]
async fn a_watermark_column_whose_type_no_longer_fits_the_stored_watermark_is_a_configuration_error(
) {
    // GIVEN a ledger whose watermark was stored from a timestamp column
    let db = TestDb::new().await;
    insert_orders(&db, "K", 3, "2026-01-01T00:00:00Z").await;
    db.exec(
        "alter table shop.store_transactions add column seq bigint;
         update shop.store_transactions set seq = substr(order_id, 2)::bigint",
    )
    .await;
    let config = db.config("", None);
    migrate(&config).await;
    assert_eq!(run(&config).await.sent, 3);

    // WHEN the config then names an integer watermark column
    let config = db.edit_config(&[(
        r#"watermark_column = "updated_at""#,
        r#"watermark_column = "seq""#,
    )]);
    let error = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();

    // THEN it is a configuration error on that key (exit 2; `watch` stops), and nothing moved
    assert!(error.is_config(), "{error:?}");
    assert!(
        matches!(
            &error,
            ocapi::Error::Config(ocapi::config::ConfigError::Invalid {
                key: "source.watermark_column",
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(db.written_events().len(), 3);
}

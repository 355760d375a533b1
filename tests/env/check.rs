//! What `check` says about the database's settings (row security, materialized views, zones) and
//! the README's SQL.

use super::*;

#[tokio::test]
async fn check_warns_about_row_security_materialized_views_and_reads_lower_case_zones() {
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    insert_orders(&db, "Z", 2, "2026-11-01T00:00:00Z").await;
    let sync = role(&db).await;
    let as_sync = |text: String| {
        let text = text.replace(
            &format!("url = \"{}\"", db.url),
            &format!(
                "url = \"{}\"",
                db.url.replacen("postgres@", &format!("{sync}@"), 1)
            ),
        ) + &format!("\n[ledger]\nurl = {:?}\n", db.url);
        Config::parse(&text, Path::new("as-sync.toml")).unwrap()
    };
    let text = std::fs::read_to_string(db.config_path()).unwrap();
    assert!(text.contains("postgres@"), "{text}");

    // GIVEN row-level security on the source that no policy opens to the sync role
    db.exec(
        "alter table shop.store_transactions enable row level security;
         create policy others_only on shop.store_transactions for select to postgres using (true);",
    )
    .await;
    // THEN check warns that every run reads nothing, naming the role
    let report = ocapi::commands::check::check(&as_sync(text.clone())).await;
    assert!(
        report.text.contains("row-level security") && report.text.contains(&sync),
        "{}",
        report.text
    );
    assert!(report.text.contains("reads 0 rows"), "{}", report.text);

    // AND with a policy that lets it see some rows, check names the policy
    db.exec(&format!(
        "create policy big_orders on shop.store_transactions for select to {sync} using (total > 11)"
    ))
    .await;
    let report = ocapi::commands::check::check(&as_sync(text.clone())).await;
    assert!(report.text.contains("big_orders"), "{}", report.text);
    db.exec("alter table shop.store_transactions disable row level security")
        .await;

    // GIVEN a materialized view as the source: check says what `lookback` must cover
    db.exec("create materialized view shop.mv as select * from shop.store_transactions")
        .await;
    let mv = Config::parse(
        &text.replace("table = \"shop.store_transactions\"", "table = \"shop.mv\""),
        Path::new("mv.toml"),
    )
    .unwrap();
    let report = ocapi::commands::check::check(&mv).await;
    assert!(
        report.text.contains("materialized view") && report.text.contains("refresh interval"),
        "{}",
        report.text
    );

    // GIVEN local register times with lower-case zone names, as PostgreSQL accepts them
    db.exec(
        "create view shop.local_times as
         select *, (purchased_at at time zone 'America/New_York') as local_at,
                'america/new_york'::text as tz
         from shop.store_transactions",
    )
    .await;
    let local = text
        .replace(
            "table = \"shop.store_transactions\"",
            "table = \"shop.local_times\"\ntimezone = \"america/chicago\"",
        )
        .replace(
            "event_time = \"purchased_at\"",
            "event_time = \"local_at\"\ntimezone = \"tz\"",
        );
    let local = Config::parse(&local, Path::new("local.toml")).unwrap();
    let stats = crate::support::run(&local).await;
    // THEN the config loads and the rows' times are read in New York, as PostgreSQL reads them
    assert_eq!(stats.sent, 2, "{:?}", stats.error);
    let expected: Vec<i64> = db
        .client
        .query(
            "select extract(epoch from date_trunc('second', purchased_at))::bigint
             from shop.store_transactions order by order_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut times: Vec<(String, i64)> = db
        .written_events()
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["event_time"].as_i64().unwrap(),
            )
        })
        .collect();
    times.sort();
    assert_eq!(times.iter().map(|t| t.1).collect::<Vec<_>>(), expected);

    drop(db);
    let admin = crate::support::connect(&crate::support::admin_url()).await;
    let _ = admin
        .batch_execute(&format!("drop role if exists {sync}"))
        .await;
}

#[tokio::test]
async fn check_warns_about_row_security_on_the_table_behind_a_view() {
    // GIVEN row-level security on a table that lets the sync role see only some rows, and the
    // README's view over it: one `security_invoker`, one owned by the sync role, one owned by
    // a superuser (which bypasses it)
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    let sync = role(&db).await;
    db.exec(&format!(
        "alter table shop.store_transactions enable row level security;
         create policy east_only on shop.store_transactions for select to {sync}
             using (total > 11);
         create view shop.v_invoker with (security_invoker = true) as
             select * from shop.store_transactions;
         create view shop.v_owned as select * from shop.store_transactions;
         alter view shop.v_owned owner to {sync};
         create view shop.v_super as select * from shop.store_transactions;
         grant select on shop.v_invoker, shop.v_super to {sync};"
    ))
    .await;
    let text = std::fs::read_to_string(db.config_path()).unwrap();
    let as_sync = |view: &str| {
        let text =
            text.replace(
                &format!("url = \"{}\"", db.url),
                &format!(
                    "url = \"{}\"",
                    db.url.replacen("postgres@", &format!("{sync}@"), 1)
                ),
            )
            .replace(
                "table = \"shop.store_transactions\"",
                &format!("table = \"{view}\""),
            ) + &format!("\n[ledger]\nurl = {:?}\n", db.url);
        Config::parse(&text, Path::new("as-sync.toml")).unwrap()
    };

    // WHEN check runs over each view, as the sync role
    for view in ["shop.v_invoker", "shop.v_owned"] {
        let report = ocapi::commands::check::check(&as_sync(view)).await;
        // THEN it warns, naming the table, the view, the role and the policy
        assert!(
            report
                .text
                .contains("row-level security on shop.store_transactions")
                && report.text.contains(view)
                && report.text.contains(&sync)
                && report.text.contains("east_only"),
            "{view}: {}",
            report.text
        );
    }
    // AND a view owned by a superuser reads every row: no warning
    let report = ocapi::commands::check::check(&as_sync("shop.v_super")).await;
    assert!(
        !report.text.contains("row-level security"),
        "{}",
        report.text
    );
}

//! `[[source.changes]]` (issue 21), continued: a cancelled read of a changes table's keys is
//! read again; a single-watermark source whose values went back degrades the run naming the
//! reset; what `check` says about both; each table's watermark in a run's summary and `--json`,
//! and `check`'s view warning, given only without changes entries.

use std::time::Duration;

use crate::changes::{setup, CHANGES};
use crate::support::TestDb;

/// Starts a run of `config` and cancels (`pg_cancel_backend`, as a hot standby's recovery
/// conflict does) the first of its statements seen sleeping whose text is `like` `query_like`;
/// returns the run's stats once it has ended. `what` names the read when none is seen.
pub(crate) async fn run_cancelling_one_sleeping_read(
    db: &TestDb,
    config: ocapi::config::Config,
    query_like: &str,
    what: &str,
) -> ocapi::stats::RunStats {
    let running = tokio::spawn(async move {
        ocapi::run::run(
            &config,
            ocapi::run::RunOptions::default(),
            std::future::pending(),
        )
        .await
    });
    let mut tries = 0;
    loop {
        let cancelled: i64 = db
            .client
            .query_one(
                "select count(*) from (
                   select pg_cancel_backend(pid) from pg_stat_activity
                   where pid <> pg_backend_pid() and datname = current_database()
                     and state = 'active' and wait_event = 'PgSleep'
                     and query like $1) as c",
                &[&query_like],
            )
            .await
            .unwrap()
            .get(0);
        if cancelled > 0 {
            break;
        }
        tries += 1;
        if running.is_finished() || tries >= 3000 {
            panic!("no read of {what} was seen: {:?}", running.await);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_read_of_the_changed_keys_is_read_again_and_every_order_sent_once() {
    // GIVEN 10 orders, and a changes table (a view over the lines) whose every read takes 0.3 s
    let slow = CHANGES.replace("table = \"pos.order_lines\"", "table = \"pos.slow_lines\"");
    let (db, config) = setup("", &slow).await;
    db.exec(&format!(
        "create view pos.slow_lines as
           select l.* from pos.order_lines l, (select pg_sleep(0.3)) as z;
         {}",
        crate::changes::one_line_orders(10)
    ))
    .await;

    // WHEN the server cancels the read of that table's changed keys (as a recovery conflict does)
    let stats =
        run_cancelling_one_sleeping_read(&db, config, "%slow_lines%group by%", "the changed keys")
            .await;

    // THEN the run read the keys again and completed: every order sent once
    assert_eq!(stats.sent, 10);
    let mut ids: Vec<String> = db
        .written_events()
        .iter()
        .map(|e| e["custom_data"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 10);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&10));
}

#[tokio::test]
async fn a_single_integer_watermark_behind_the_stored_one_degrades_the_run_naming_the_reset() {
    // GIVEN a table read by its integer id (lookback 10), synced up to id 20
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "create table pos.int_purchases (
           id bigserial primary key, order_id bigint, customer_id bigint,
           purchased_at timestamptz not null default now() - interval '1 hour',
           line_no int, sku text, qty numeric, price numeric, currency text, email text);
         insert into pos.int_purchases (order_id, line_no, sku, qty, price, currency)
           select g, 1, 'A', 1, 10, 'USD' from generate_series(1, 20) g",
    )
    .await;
    db.edit_config_text(&[
        (
            "table = \"pos.ocapi_purchases\"",
            "table = \"pos.int_purchases\"\nwatermark_column = \"id\"\nlookback = 10",
        ),
        (CHANGES, ""),
    ]);
    let (code, stats, stderr) = crate::changes::run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["watermark_end"], "20", "{stats}");

    // WHEN the table is re-created (its sequence restarted) with 5 new orders
    db.exec(
        "truncate pos.int_purchases restart identity;
         insert into pos.int_purchases (order_id, line_no, sku, qty, price, currency)
           select 100 + g, 1, 'A', 1, 10, 'USD' from generate_series(1, 5) g",
    )
    .await;
    let (code, stats, stderr) = crate::changes::run_json(&db).await;

    // THEN the run is degraded (exit 3), naming why and the statement that resets it
    assert_eq!(code, Some(3), "{stats} {stderr}");
    let said = format!("{stats} {stderr}");
    assert!(said.contains("behind the stored watermark 20"), "{said}");
    assert!(said.contains("set watermark = null"), "{said}");

    // AND `check` warns the same, with the reset, its exit code unchanged as for other warnings
    let (code, text) = check(&db).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "warn  the largest \"id\" of pos.int_purchases (5) is behind the stored watermark 20"
        ),
        "{text}"
    );
    assert!(text.contains("set watermark = null"), "{text}");
}

/// `ocapi check`: its exit code and what it printed.
async fn check(db: &crate::support::TestDb) -> (Option<i32>, String) {
    let out = crate::support::ocapi(&db.config_path(), &["check"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[tokio::test]
async fn check_warns_when_a_changes_table_s_largest_watermark_is_behind_the_stored_one() {
    // GIVEN lines watched by their integer `seq` (lookback 10), 3 orders sent
    let changes = "[[source.changes]]\ntable = \"pos.order_lines\"\nwatermark_column = \"seq\"\n\
                   key = \"order_id\"\nlookback = 10\n";
    let (db, _config) = setup("", changes).await;
    db.exec(crate::changes::THREE_ORDERS_OF_ONE_CUSTOMER).await;
    let (code, _, stderr) = crate::changes::run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (_, text) = check(&db).await;
    assert!(!text.contains("is behind the stored watermark"), "{text}");

    // WHEN the table is re-created: its ids start again at 1
    db.exec("truncate pos.order_lines restart identity").await;
    let (code, text) = check(&db).await;

    // THEN `check` warns, naming the table, both values and the reset; its exit code unchanged
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "warn  the largest \"seq\" of pos.order_lines (none, the table is empty) is behind \
             the stored watermark 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("delete from \"ocapi\".\"change_watermarks\"")
            || text.contains("change_watermarks where connector = 'changes-test'"),
        "{text}"
    );
}

#[tokio::test]
async fn check_names_the_missing_index_the_matches_column_needs_in_the_views_base_table() {
    // GIVEN the headers' customer_id index missing, with customers and orders to plan over
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "drop index pos.order_headers_customer_id_idx;
         insert into crm.customers select g, 'c' || g || '@example.com' from generate_series(1, 50) g;
         insert into pos.order_headers
           select g, 1 + g % 50, now() - interval '1 hour' from generate_series(1, 5000) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price)
           select g, 1, 'A', 1, 10 from generate_series(1, 5000) g;
         analyze",
    )
    .await;

    // WHEN `check` runs
    let out = crate::support::ocapi(&db.config_path(), &["check"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);

    // THEN it gives the statement for the base table column the customers entry reaches
    assert!(
        text.contains("create index on pos.order_headers (\"customer_id\");"),
        "{text}"
    );
}

#[tokio::test]
async fn check_fails_naming_source_lookback_when_a_duration_is_given_for_an_integer_watermark() {
    // GIVEN a table read by its integer id with `lookback = "15m"`
    let (db, _config) = setup("", CHANGES).await;
    db.exec("create table pos.int_purchases (id bigserial primary key, order_id bigint, purchased_at timestamptz, line_no int, sku text, qty numeric, price numeric, currency text, email text)").await;
    db.edit_config_text(&[
        (
            "table = \"pos.ocapi_purchases\"",
            "table = \"pos.int_purchases\"\nwatermark_column = \"id\"\nlookback = \"15m\"",
        ),
        (CHANGES, ""),
    ]);

    // WHEN `check` runs
    let out = crate::support::ocapi(&db.config_path(), &["check"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);

    // THEN it is a configuration error naming the key, as `run`'s is
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("source.lookback"), "{text}");
}

/// Calls of `pos.counted` (one per row the view gives), once ended sessions' statistics are in.
async fn view_rows_read(db: &crate::support::TestDb) -> i64 {
    let read = "select coalesce(sum(calls), 0)::int8 from pg_stat_user_functions
                where funcname = 'counted'";
    let others = "select count(*) from pg_stat_activity
                  where datname = current_database() and pid <> pg_backend_pid()";
    let mut last = -1;
    for _ in 0..40 {
        db.exec("select pg_stat_clear_snapshot()").await;
        let now: i64 = db.client.query_one(read, &[]).await.unwrap().get(0);
        let others: i64 = db.client.query_one(others, &[]).await.unwrap().get(0);
        if others == 0 && now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

#[tokio::test]
async fn an_order_changed_in_its_header_and_its_lines_is_read_from_the_view_once() {
    // GIVEN the view counts the rows it gives (a function of each row, whose calls the server
    // counts), and a walk-in sale (no customer row) whose header and lines are both new
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "do $$ begin
           execute format('alter database %I set track_functions = ''pl''', current_database());
         end $$;
         create function pos.counted(id bigint) returns bigint language plpgsql volatile
           as $f$ begin return id; end $f$;",
    )
    .await;
    view_with(&db, "pos.counted(h.order_id) as read_no").await;
    db.exec(
        "insert into pos.order_headers values (1, null, now() - interval '1 hour');
         insert into pos.order_lines (order_id, line_no, sku, qty, price)
           values (1, 1, 'A', 1, 10), (1, 2, 'B', 1, 5), (1, 3, 'C', 1, 1)",
    )
    .await;

    // WHEN a run finds it changed in two tables
    let (code, stats, stderr) = crate::changes::run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["anonymous"], 1, "{stats}");

    // THEN its 3 rows were read once, not once per table that found it
    assert_eq!(view_rows_read(&db).await, 3);
    // AND both tables' watermarks moved, the lines' by a page that read nothing
    assert_eq!(crate::changes::stored_change_watermarks(&db).await, 2);
}

#[tokio::test]
async fn a_page_of_a_thousand_new_orders_is_read_through_the_indexes_not_by_scanning_the_tables() {
    // GIVEN 20,000 orders of 90 days ago (before what a run reads) and 1,000 new ones, where
    // PostgreSQL's default costs would rather scan the tables than probe them 1,000 times
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "insert into crm.customers
           select g, 'c' || g || '@example.com', now() - interval '90 days'
           from generate_series(1, 5000) g;
         insert into pos.order_headers
           select g, 1 + g % 5000, now() - interval '90 days', now() - interval '90 days'
           from generate_series(1, 20000) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price, updated_at)
           select g, l, 'S', 1, 1, now() - interval '90 days'
           from generate_series(1, 20000) g, generate_series(1, 3) l;
         insert into pos.order_headers
           select g, 1 + g % 5000, now() - interval '1 hour' from generate_series(20001, 21000) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price)
           select g, l, 'S', 1, 1 from generate_series(20001, 21000) g, generate_series(1, 3) l;
         analyze",
    )
    .await;
    let before = crate::changes::seq_scans(&db).await;

    // WHEN a run sends them
    let (code, stats, stderr) = crate::changes::run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 1000, "{stats}");

    // THEN no base table was scanned: the page read its orders by key (it scanned each of
    // the three tables once before)
    assert_eq!(crate::changes::seq_scans(&db).await, before);
}

/// Orders 1..=`n` with three lines each and 20 customers, written an hour ago (the schema of
/// tests/changes.rs).
async fn some_orders(db: &crate::support::TestDb, n: i32) {
    db.exec(&format!(
        "insert into crm.customers
           select g, 'c' || g || '@example.com', now() - interval '1 day'
           from generate_series(1, 20) g;
         insert into pos.order_headers
           select g, 1 + g % 20, now() - interval '1 hour',
                  now() - interval '1 hour' + g * interval '1 s'
           from generate_series(1, {n}) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price, updated_at)
           select g, l, 'S' || l, 1, l, now() - interval '1 hour' + g * interval '1 s'
           from generate_series(1, {n}) g, generate_series(1, 3) l;
         analyze"
    ))
    .await;
}

/// Trial finding 10: with `[[source.changes]]` the run's summary and `--json` give each
/// table's watermark start and end, not `watermark - -> -` and nulls.
#[tokio::test]
async fn a_changes_run_shows_each_tables_watermark() {
    // GIVEN the README's header/line/customer view with three changes entries, and 50 orders
    let (db, _config) = crate::changes::setup("", crate::changes::CHANGES).await;
    some_orders(&db, 50).await;

    // WHEN the first run sends them
    let (code, stats, stderr) = crate::changes::run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 50, "{stats}");

    // THEN each table has its watermark: none before, the last committed one after
    let tables = stats["change_watermarks"]
        .as_array()
        .expect("change_watermarks");
    let names: Vec<&str> = tables.iter().filter_map(|t| t["table"].as_str()).collect();
    assert_eq!(
        names,
        ["pos.order_headers", "pos.order_lines", "crm.customers"],
        "{stats}"
    );
    for table in tables {
        assert!(table["start"].is_null(), "{stats}");
        assert!(table["end"].is_string(), "{stats}");
    }
    let headers_end = tables[0]["end"].as_str().unwrap().to_owned();

    // AND a second, idle run starts where the first ended, and its summary says so per table
    let out = crate::support::ocapi(&db.config_path(), &["run"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("watermark           - -> -"), "{text}");
    assert!(
        text.contains(&format!(
            "watermark           pos.order_headers: {headers_end} -> {headers_end}"
        )),
        "{text}"
    );
    assert!(text.contains("crm.customers: "), "{text}");
}

/// Trial finding 6: with `[[source.changes]]`, `check` does not warn that the view would be
/// read whole to find one minute of changes by `source.watermark_column` (a run does not read
/// by it); without them it still does, in words rather than "estimated cost 317 of 58".
#[tokio::test]
async fn check_gives_the_view_warning_only_without_changes_entries_and_in_words() {
    // GIVEN the view with a single watermark over greatest() of three tables' columns
    let (db, _config) = crate::changes::setup("watermark_column = \"updated_at\"", "").await;
    some_orders(&db, 50).await;
    let check = || async {
        let out = crate::support::ocapi(&db.config_path(), &["check"]).await;
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let text = check().await;
    assert!(text.contains("one minute of changes"), "{text}");
    assert!(!text.contains("estimated cost"), "{text}");
    assert!(
        text.contains("the cost of reading the view whole"),
        "{text}"
    );

    // WHEN the changes entries are added
    db.edit_config_text(&[(
        "[mapping]",
        &format!("{}\n[mapping]", crate::changes::CHANGES),
    )]);

    // THEN the single-watermark warning is gone, and the entries are checked instead
    let text = check().await;
    assert!(!text.contains("one minute of changes"), "{text}");
    assert!(text.contains("changes: \"crm\".\"customers\""), "{text}");
}

/// A view whose every row takes 0.3 s to give (a function of each row that sleeps), over 10
/// orders of one line, and `statement_timeout = 1s` on the database: no read of a page or of
/// the whole delta can finish.
async fn a_view_no_read_of_can_finish(db: &TestDb) {
    a_slow_view(db, "0.3", "1s").await;
}

/// A view whose every row takes `sleep` seconds to give, over 10 orders of one line, and
/// `statement_timeout = timeout` on the database.
async fn a_slow_view(db: &TestDb, sleep: &str, timeout: &str) {
    db.exec(&format!(
        "create function pos.slow(id bigint) returns bigint language sql volatile
           as $f$ select pg_sleep({sleep}); select id $f$;"
    ))
    .await;
    view_with(db, "pos.slow(h.order_id) as slow").await;
    db.exec(&format!(
        "insert into pos.order_headers
           select g, null, now() - interval '1 hour' from generate_series(1, 10) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price)
           select g, 1, 'A', 1, 10 from generate_series(1, 10) g;
         alter database {} set statement_timeout = '{timeout}'",
        db.name
    ))
    .await;
}

#[tokio::test]
async fn a_page_the_server_cancels_is_read_in_halves_and_every_order_sent_once() {
    // GIVEN `[[source.changes]]` over a view whose page of 10 orders (batch_size 30: 10 keys a
    // page) takes 4 s and one order 0.4 s, under a `statement_timeout` of 2 s; each order
    // with a customer of its own (the headers and lines are the changes tables)
    let mut headers_and_lines = CHANGES.split("[[source.changes]]\ntable = \"crm.customers\"");
    let (db, _config) = setup("batch_size = 30", headers_and_lines.next().unwrap()).await;
    a_slow_view(&db, "0.4", "2s").await;
    db.exec(
        "insert into crm.customers select g, 'c' || g || '@example.com'
           from generate_series(1, 10) g;
         update pos.order_headers set customer_id = order_id",
    )
    .await;

    // WHEN a first run reads it
    let (code, stats, stderr) = crate::changes::run_json(&db).await;

    // THEN it completed: each order sent once, and recorded sent once
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 10, "{stats}");
    let mut ids: Vec<String> = db
        .written_events()
        .iter()
        .map(|e| e["custom_data"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort_by_key(|id| id.parse::<i64>().unwrap());
    let expected: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&10));

    // AND the next run reads nothing again
    let (code, stats, stderr) = crate::changes::run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 0, "{stats}");
    assert_eq!(db.written_events().len(), 10);
}

#[tokio::test]
async fn a_read_the_server_cancels_every_time_fails_the_run_not_the_config() {
    // GIVEN `[[source.changes]]` over a view no single order of which can be read within the
    // role's `statement_timeout`
    let (db, _config) = setup("batch_size = 30", CHANGES).await;
    a_slow_view(&db, "1.5", "1s").await;

    // WHEN a run reads it
    let (code, _stats, stderr) = crate::changes::run_json(&db).await;

    // THEN the run failed (exit 1: `watch` tries again later), not a configuration error (2),
    // naming what to change; nothing was sent or recorded
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("statement_timeout"), "{stderr}");
    assert!(stderr.contains("hot_standby_feedback"), "{stderr}");
    assert!(db.written_events().is_empty());
    assert_eq!(db.ledger_counts().await.get("sent"), None);
}

#[tokio::test]
async fn a_streamed_read_the_server_cancels_names_what_to_change() {
    // GIVEN the single-watermark view (no `[[source.changes]]`), whose one streamed read cannot
    // finish within the role's `statement_timeout`
    let (db, _config) = setup("watermark_column = \"updated_at\"", "").await;
    a_view_no_read_of_can_finish(&db).await;

    // WHEN a run reads it
    let (code, _stats, stderr) = crate::changes::run_json(&db).await;

    // THEN the run failed (exit 1), naming the settings and `[[source.changes]]`
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("statement_timeout"), "{stderr}");
    assert!(stderr.contains("[[source.changes]]"), "{stderr}");
    assert!(db.written_events().is_empty());
}

#[tokio::test]
async fn a_time_start_with_an_integer_changes_watermark_names_the_entry() {
    // GIVEN a `[[source.changes]]` entry on the lines' integer `seq` and a `source.start` time
    let changes = "[[source.changes]]\ntable = \"pos.order_lines\"\nwatermark_column = \"seq\"\n\
                   key = \"order_id\"\nlookback = 0";
    let (db, _config) = setup("start = \"2026-01-01T00:00:00Z\"", changes).await;

    // WHEN a run starts
    let (code, _stats, stderr) = crate::changes::run_json(&db).await;

    // THEN it is a configuration error naming the start, the entry and its column
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("source.start"), "{stderr}");
    assert!(stderr.contains("pos.order_lines"), "{stderr}");
    assert!(stderr.contains("\"seq\""), "{stderr}");
}

/// Replaces the view of [`crate::changes::SCHEMA`] with one giving `column` (an expression and
/// its name) too.
async fn view_with(db: &TestDb, column: &str) {
    db.exec(&format!(
        "create or replace view pos.ocapi_purchases as
         select h.order_id, h.customer_id, h.purchased_at, l.line_no, l.sku, l.qty, l.price,
                'USD'::text as currency, c.email,
                greatest(h.updated_at, l.updated_at, c.updated_at) as updated_at,
                {column}
         from pos.order_headers h
         join pos.order_lines l using (order_id)
         left join crm.customers c using (customer_id)"
    ))
    .await;
}

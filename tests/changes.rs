//! `[[source.changes]]` (issue 21): on the README's header/line/customer schema, a run finds what
//! changed by each base table's own indexed watermark and reads the orders it touches by key.
//! A customer row that arrives after its sale, a line added to an unsent order, idle runs that
//! read no base table, integer lookbacks in the watermark's units, a restarted sequence.

use std::time::Duration;

use ocapi::config::Config;
use ocapi::sandbox::Faults;
use ocapi::transform::hash::sha256_hex;

use crate::support::{ocapi, sandbox, TestDb, TOKEN};

/// Headers, lines (several per order) and customers, indexed as docs/source.md says,
/// behind the view a run reads (`greatest()` of the three `updated_at`, as the README's view).
pub(crate) const SCHEMA: &str = "
create schema pos;
create schema crm;
create table crm.customers (
    customer_id bigint primary key,
    email text,
    updated_at timestamptz not null default now());
create table pos.order_headers (
    order_id bigint primary key,
    customer_id bigint,
    purchased_at timestamptz not null,
    updated_at timestamptz not null default now());
create table pos.order_lines (
    order_id bigint not null,
    line_no int not null,
    sku text not null,
    qty numeric not null,
    price numeric not null,
    seq bigserial,
    updated_at timestamptz not null default now(),
    primary key (order_id, line_no));
create index on crm.customers (updated_at);
create index on pos.order_headers (updated_at);
create index on pos.order_headers (customer_id);
create index on pos.order_lines (updated_at);
create index on pos.order_lines (seq);
create view pos.ocapi_purchases as
select h.order_id, h.customer_id, h.purchased_at, l.line_no, l.sku, l.qty, l.price,
       'USD'::text as currency, c.email,
       greatest(h.updated_at, l.updated_at, c.updated_at) as updated_at
from pos.order_headers h
join pos.order_lines l using (order_id)
left join crm.customers c using (customer_id);
";

/// The three `[[source.changes]]` entries of the issue.
pub(crate) const CHANGES: &str = r#"
[[source.changes]]
table = "pos.order_headers"
watermark_column = "updated_at"
key = "order_id"

[[source.changes]]
table = "pos.order_lines"
watermark_column = "updated_at"
key = "order_id"

[[source.changes]]
table = "crm.customers"
watermark_column = "updated_at"
key = "customer_id"
matches = "customer_id"
"#;

/// A database with [`SCHEMA`] and a config over its view with `source_extra` in `[source]` and
/// `changes` after it (a file destination).
pub(crate) async fn setup(source_extra: &str, changes: &str) -> (TestDb, Config) {
    setup_to(source_extra, changes, None).await
}

/// [`setup`] with `destination` as the `[destination]` table (a file destination without).
pub(crate) async fn setup_to(
    source_extra: &str,
    changes: &str,
    destination: Option<String>,
) -> (TestDb, Config) {
    let db = TestDb::new().await;
    db.exec(SCHEMA).await;
    let text = format!(
        r#"
[connector]
name = "changes-test"
lock_wait = "2s"

[source]
url = "{url}"
table = "pos.ocapi_purchases"
{source_extra}
{changes}

[mapping]
order_id = "order_id"
event_time = "purchased_at"
currency = "currency"
email = "email"
item_id = "sku"
item_quantity = "qty"
item_price = "price"
item_line = "line_no"

[defaults]
currency = "USD"
country = "US"

[destination]
{destination}
"#,
        url = db.url,
        destination = destination.unwrap_or_else(|| db.file_destination()),
    );
    let config = db.use_config(&text).await;
    (db, config)
}

/// Three orders of one line each (10 each), bought an hour ago by customer 7 (SQL).
pub(crate) const THREE_ORDERS_OF_ONE_CUSTOMER: &str = "
insert into crm.customers values (7, 'ann@example.com');
insert into pos.order_headers
  select g, 7, now() - interval '1 hour' from generate_series(1, 3) g;
insert into pos.order_lines (order_id, line_no, sku, qty, price)
  select g, 1, 'A', 1, 10 from generate_series(1, 3) g";

/// Five customers and orders 1..=`n` of one line each, sold an hour ago (SQL).
pub(crate) fn one_line_orders(n: u32) -> String {
    format!(
        "insert into crm.customers select g, 'c' || g || '@example.com' from generate_series(1, 5) g;
         insert into pos.order_headers
           select g, 1 + g % 5, now() - interval '1 hour' from generate_series(1, {n}) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price)
           select g, 1, 'A', 1, 10 from generate_series(1, {n}) g"
    )
}

/// A `[destination]` table sending to the stand-in at `base_url` with a token file of its own,
/// `batch_size` events a request, one request at a time.
fn meta_destination(base_url: &str, batch_size: u32) -> String {
    let dir = std::env::temp_dir().join(format!("ocapi-changes-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    format!(
        "kind = \"meta\"\ndataset_id = \"1234567890\"\naccess_token_file = {:?}\n\
         base_url = {base_url:?}\nbatch_size = {batch_size}\nconcurrency = 1\n\
         request_timeout = \"10s\"",
        token.display().to_string(),
    )
}

/// `ocapi run --json`: its exit code and stats.
pub(crate) async fn run_json(db: &TestDb) -> (Option<i32>, serde_json::Value, String) {
    let out = ocapi(&db.config_path(), &["run", "--json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stats = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), stats, stderr)
}

/// The events written for order `id`.
pub(crate) fn events_of(db: &TestDb, id: &str) -> Vec<serde_json::Value> {
    db.written_events()
        .into_iter()
        .filter(|e| e["custom_data"]["order_id"] == id)
        .collect()
}

#[tokio::test]
async fn a_customer_row_arriving_after_its_sale_gets_the_sale_sent_once_with_its_email() {
    // GIVEN a sale of customer 7 whose customer row has not arrived yet
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "insert into pos.order_headers values (1, 7, now() - interval '1 hour');
         insert into pos.order_lines (order_id, line_no, sku, qty, price)
         values (1, 1, 'A', 1, 10), (1, 2, 'B', 2, 5)",
    )
    .await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        (stats["sent"].as_u64(), stats["anonymous"].as_u64()),
        (Some(0), Some(1))
    );

    // WHEN the customer row arrives (the header and lines untouched) and runs go on
    db.exec("insert into crm.customers values (7, 'Ann@Example.com')")
        .await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 1, "{stats}");
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");

    // THEN the sale is sent once, with the email, and the next run sends nothing
    assert_eq!(stats["sent"], 0, "{stats}");
    let events = events_of(&db, "1");
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["user_data"]["em"][0],
        sha256_hex("ann@example.com")
    );
    assert_eq!(events[0]["custom_data"]["value"].as_f64(), Some(20.0));
    // AND each table's watermark is stored
    assert_eq!(stored_change_watermarks(&db).await, 3);
}

/// How many `[[source.changes]]` tables have a stored watermark.
pub(crate) async fn stored_change_watermarks(db: &TestDb) -> i64 {
    db.client
        .query_one(
            "select count(*) from ocapi.change_watermarks where connector = 'changes-test'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_line_added_to_an_unsent_order_is_in_its_event() {
    // GIVEN an order whose header committed before its lines (a run in between sees no row
    // of it in the view), and a line whose `updated_at` is older than the header's
    let (db, _config) = setup("", CHANGES).await;
    db.exec("insert into crm.customers values (7, 'ann@example.com', now() - interval '1 day')")
        .await;
    db.exec("insert into pos.order_headers values (2, 7, now() - interval '1 hour')")
        .await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 0, "{stats}");

    // WHEN its lines are added (stamped by the till a minute before the header)
    db.exec(
        "insert into pos.order_lines (order_id, line_no, sku, qty, price, updated_at)
         values (2, 1, 'A', 1, 10, now() - interval '1 minute'),
                (2, 2, 'C', 3, 1, now() - interval '1 minute')",
    )
    .await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");

    // THEN the order is sent with both lines
    assert_eq!(stats["sent"], 1, "{stats}");
    let events = events_of(&db, "2");
    assert_eq!(events.len(), 1);
    let contents = events[0]["custom_data"]["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 2, "{contents:?}");
    assert_eq!(events[0]["custom_data"]["value"].as_f64(), Some(13.0));
}

/// Sequential scans and rows they read, per base table, once ended sessions' statistics are in.
pub(crate) async fn seq_scans(db: &TestDb) -> Vec<(String, i64, i64)> {
    // They arrive as a session ends, and this session's own (the set-up's index builds count
    // as scans) at the end of a transaction at least a second after its last report: wait
    // for no other session here and two equal reads more than a second apart.
    let mut last = seq_scans_now(db).await;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let others = "select count(*) from pg_stat_activity
                      where datname = current_database() and pid <> pg_backend_pid()";
        let others: i64 = db.client.query_one(others, &[]).await.unwrap().get(0);
        let now = seq_scans_now(db).await;
        if others == 0 && now == last {
            break;
        }
        last = now;
    }
    last
}

async fn seq_scans_now(db: &TestDb) -> Vec<(String, i64, i64)> {
    db.exec("select pg_stat_clear_snapshot()").await;
    db.client
        .query(
            "select relname::text, seq_scan, seq_tup_read from pg_stat_user_tables
             where schemaname in ('pos', 'crm') order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn idle_runs_read_no_base_table() {
    // GIVEN 3,000 orders (9,000 lines), written over the last hours, sent by a first run
    let (db, _config) = setup("", CHANGES).await;
    db.exec(
        "insert into crm.customers
           select g, 'c' || g || '@example.com', now() - interval '1 day' + g * interval '1 s'
           from generate_series(1, 500) g;
         insert into pos.order_headers
           select g, 1 + g % 500, now() - interval '2 hours',
                  now() - interval '2 hours' + g * interval '1 s'
           from generate_series(1, 3000) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price, updated_at)
           select g, l, 'S' || l, 1, l, now() - interval '2 hours' + g * interval '1 s'
           from generate_series(1, 3000) g, generate_series(1, 3) l;
         analyze",
    )
    .await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 3000, "{stats}");
    // Sessions flush their statistics as they end; the runs' have.
    let before = seq_scans(&db).await;

    // WHEN two runs find nothing new
    for _ in 0..2 {
        let (code, stats, stderr) = run_json(&db).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(stats["rows_read"], 0, "{stats}");
        assert_eq!(stats["sent"], 0, "{stats}");
    }

    // THEN no base table was scanned: each table's index found that nothing changed
    assert_eq!(seq_scans(&db).await, before);
}

#[tokio::test]
async fn a_duration_lookback_on_an_integer_watermark_is_a_configuration_error_naming_it() {
    // GIVEN lines watched by their integer `seq`, with the lookback `check` used to suggest
    let changes = r#"
[[source.changes]]
table = "pos.order_lines"
watermark_column = "seq"
key = "order_id"
"#;
    let (db, _config) = setup("lookback = \"15m\"", changes).await;
    db.exec(
        "insert into crm.customers values (7, 'ann@example.com');
         insert into pos.order_headers values (1, 7, now() - interval '1 hour');
         insert into pos.order_lines (order_id, line_no, sku, qty, price) values (1, 1, 'A', 1, 10)",
    )
    .await;

    // WHEN it runs
    let (code, _, stderr) = run_json(&db).await;

    // THEN it is a configuration error (exit 2) naming the key and the units to use
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("source.lookback"), "{stderr}");
    assert!(stderr.contains("lookback = 5000"), "{stderr}");
    assert!(db.written_events().is_empty());

    // AND in the column's own units it runs, and re-reads that many ids back
    db.edit_config_text(&[("lookback = \"15m\"", "lookback = 5")]);
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 1, "{stats}");
    // A line committed late with an id below the stored watermark, within the lookback
    db.exec(
        "insert into pos.order_headers values (2, 7, now() - interval '1 hour');
         insert into pos.order_lines (order_id, line_no, sku, qty, price, seq)
         values (2, 1, 'A', 1, 10, 1)",
    )
    .await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 1, "{stats}");
    assert_eq!(events_of(&db, "2").len(), 1);
}

#[tokio::test]
async fn a_restarted_sequence_degrades_the_run_naming_the_reset() {
    // GIVEN lines watched by their integer `seq`, 3 orders sent
    let changes = r#"
[[source.changes]]
table = "pos.order_lines"
watermark_column = "seq"
key = "order_id"
"#;
    let (db, _config) = setup("", changes).await;
    db.exec(THREE_ORDERS_OF_ONE_CUSTOMER).await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 3, "{stats}");

    // WHEN the table is re-created: its ids start again at 1
    db.exec(
        "truncate pos.order_lines restart identity;
         insert into pos.order_headers values (10, 7, now() - interval '1 hour');
         insert into pos.order_lines (order_id, line_no, sku, qty, price) values (10, 1, 'A', 1, 10)",
    )
    .await;
    let (code, stats, stderr) = run_json(&db).await;

    // THEN the run is degraded (exit 3), naming the reason and the reset
    assert_eq!(code, Some(3), "{stderr}");
    let error = stats["error"].as_str().unwrap_or_default().to_owned() + &stderr;
    assert!(error.contains("behind the stored watermark"), "{error}");
    assert!(error.contains("delete from"), "{error}");
    assert!(error.contains("change_watermarks"), "{error}");

    // AND once reset as it says, the new order is sent
    db.exec(
        "delete from ocapi.change_watermarks where connector = 'changes-test' \
         and source_table = 'pos.order_lines'",
    )
    .await;
    let (code, stats, stderr) = run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 1, "{stats}");
    assert_eq!(events_of(&db, "10").len(), 1);
}

#[tokio::test]
async fn check_validates_each_entry_and_gives_the_missing_create_index() {
    // GIVEN the lines' watermark index missing
    let (db, _config) = setup("", CHANGES).await;
    db.exec("drop index pos.order_lines_updated_at_idx").await;

    // WHEN `check` runs
    let out = ocapi(&db.config_path(), &["check"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);

    // THEN each entry is listed, and the missing index is given as a statement
    assert!(text.contains("changes: \"crm\".\"customers\""), "{text}");
    assert!(
        text.contains("changes found by [[source.changes]]"),
        "{text}"
    );
    assert!(
        text.contains("create index on \"pos\".\"order_lines\" (\"updated_at\");"),
        "{text}"
    );
    assert!(
        !text.contains("create index on \"pos\".\"order_headers\""),
        "{text}"
    );

    // AND an entry naming a column that is not there is a configuration error naming its key
    db.edit_config_text(&[("key = \"customer_id\"", "key = \"customer\"")]);
    let out = ocapi(&db.config_path(), &["check"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("source.changes[3].key"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lock_is_held_on_the_source_while_the_run_waits_on_meta() {
    // GIVEN 30 orders and an endpoint taking 2 s a request, batches of 10
    let graph = sandbox(Faults {
        latency: Duration::from_millis(2000),
        ..Faults::default()
    })
    .await;
    let destination = meta_destination(&graph.base_url(), 10);
    let (db, config) = setup_to("batch_size = 6", CHANGES, Some(destination)).await;
    db.exec(&one_line_orders(30)).await;

    // WHEN a run is waiting on Meta
    let running = tokio::spawn(async move {
        ocapi::run::run(
            &config,
            ocapi::run::RunOptions::default(),
            std::future::pending(),
        )
        .await
    });
    let mut waited = 0;
    while graph.stats().requests == 0 {
        assert!(waited < 3000, "no request reached the endpoint");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }

    // THEN no session holds a lock on a table or view of the source, nor idles in a
    // transaction on it (the ledger's own tables, in the same database, are not counted)
    let held: i64 = db
        .client
        .query_one(
            "select count(*) from pg_locks l join pg_class c on c.oid = l.relation
             join pg_namespace n on n.oid = c.relnamespace
             where l.pid <> pg_backend_pid() and n.nspname in ('pos', 'crm')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 0);
    let stats = running.await.unwrap().unwrap();
    assert_eq!(stats.sent, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_cancelled_mid_run_is_read_again_and_nothing_is_lost_or_doubled() {
    // GIVEN 30 orders behind a view whose every read takes 0.3 s (a standby replaying WAL)
    let (db, _config) = setup("batch_size = 30", CHANGES).await;
    db.exec(&format!(
        "create view pos.slow_purchases as
           select p.* from pos.ocapi_purchases p, (select pg_sleep(0.3)) as z;
         {}",
        one_line_orders(30)
    ))
    .await;
    let config = db.edit_config(&[(
        "table = \"pos.ocapi_purchases\"",
        "table = \"pos.slow_purchases\"",
    )]);

    // WHEN a run's read of a page is cancelled by the server (as a recovery conflict is)
    let stats =
        crate::changes2::run_cancelling_one_sleeping_read(&db, config, "%", "the view").await;

    // THEN the run read the page again and completed: every order sent once
    assert_eq!(stats.sent, 30);
    let mut ids: Vec<String> = db
        .written_events()
        .iter()
        .map(|e| e["custom_data"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    assert_eq!(db.written_events().len(), 30);
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_timeout_on_the_sync_role_does_not_stop_a_long_first_sync() {
    // GIVEN `statement_timeout = 1s` for every session of the database, 30 orders, and an
    // endpoint taking 0.3 s a request, so that the run lasts several times the timeout
    let graph = sandbox(Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    })
    .await;
    let destination = meta_destination(&graph.base_url(), 2);
    let (db, config) = setup_to("batch_size = 6", CHANGES, Some(destination)).await;
    db.exec(&format!(
        "{};
         alter database {} set statement_timeout = '1s'",
        one_line_orders(30),
        db.name
    ))
    .await;

    // WHEN the first sync runs
    let stats = ocapi::run::run(
        &config,
        ocapi::run::RunOptions::default(),
        std::future::pending(),
    )
    .await
    .unwrap();

    // THEN it completes: every order sent once, no statement outlived the timeout
    assert_eq!(stats.sent, 30);
    let mut ids = crate::support::accepted_ids(&graph);
    assert_eq!(ids.len(), 30);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
}

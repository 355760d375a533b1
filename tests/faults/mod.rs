//! Fault tolerance (issue #6): `kill -9` at random moments, PostgreSQL backends terminated
//! mid-run, an endpoint outage, and a corpus of hostile input. Real PostgreSQL, real HTTP to the
//! local Graph API stand-in; after each fault, no order is lost and none is sent twice in the
//! ledger.

mod input;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::support::{accepted_ids, insert_orders, migrate, run, sandbox, TestDb, TOKEN};
use ocapi::config::Config;
use ocapi::run::RunOptions;
use ocapi::sandbox::{Faults, Sandbox};

/// `orders` orders `{prefix}1…`, a connector migrated for them that sends batches of 100 to a
/// stand-in answering every request with a transient error, and `max_retries`.
async fn failing_endpoint(
    db: &TestDb,
    prefix: &str,
    orders: i32,
    max_retries: u32,
) -> (Sandbox, Config) {
    insert_orders(db, prefix, orders, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    db.meta_config("", &graph.base_url(), TOKEN, "batch_size = 100");
    let config = db.edit_config(&[("max_retries = 10", &format!("max_retries = {max_retries}"))]);
    migrate(&config).await;
    (graph, config)
}

/// `order_id -> status` of every ledger row.
async fn ledger_statuses(db: &TestDb) -> HashMap<String, String> {
    db.client
        .query("select order_id, status from ocapi.ledger", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Checks that every accepted event carries its own order id as `event_id`, and that an order
/// accepted more than once (re-sent after a kill) came every time as the identical event, which
/// is what lets Meta deduplicate it.
fn assert_event_ids_are_order_ids(graph: &Sandbox) {
    let mut first_copy: HashMap<String, serde_json::Value> = HashMap::new();
    for event in graph.events() {
        assert_eq!(
            event["event_id"], event["custom_data"]["order_id"],
            "an event_id is not its order id"
        );
        let id = event["event_id"].as_str().unwrap().to_owned();
        let first = first_copy.entry(id).or_insert_with(|| event.clone());
        assert_eq!(first, &event, "a re-sent event differs from its first copy");
    }
}

/// The runs of the test connector still marked `running`.
async fn runs_left_running(db: &TestDb) -> i64 {
    db.client
        .query_one(
            "select count(*) from ocapi.runs where status = 'running'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Asserts that exactly `expected` orders are in the ledger, all `sent` (one row per order, so
/// each is sent exactly once there), and that the endpoint accepted each at least once.
async fn assert_all_sent_once(db: &TestDb, graph: &Sandbox, expected: &HashSet<String>) {
    let statuses = ledger_statuses(db).await;
    let not_sent: Vec<_> = statuses.iter().filter(|(_, s)| *s != "sent").collect();
    assert!(not_sent.is_empty(), "orders not sent: {not_sent:?}");
    let in_ledger: HashSet<String> = statuses.into_keys().collect();
    assert_eq!(&in_ledger, expected, "the ledger holds other orders");
    let accepted: HashSet<String> = accepted_ids(graph).into_iter().collect();
    let missing: Vec<_> = expected.difference(&accepted).collect();
    assert!(missing.is_empty(), "never accepted: {missing:?}");
    assert_event_ids_are_order_ids(graph);
}

/// The binary, `ocapi --config <db's config> run`, its logs discarded.
fn ocapi_run(db: &TestDb) -> std::process::Command {
    let mut command = crate::support::command(&db.config_path());
    command
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

#[tokio::test]
async fn kill_9_at_random_moments_over_many_runs_loses_no_order_and_sends_none_twice() {
    // GIVEN an endpoint with some latency and a connector sending small batches
    let db = TestDb::new().await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(15),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "batch_size = 40");
    migrate(&config).await;
    let mut expected = HashSet::new();
    let mut delays = Vec::new();

    // WHEN, 8 times, new orders arrive and `ocapi run` is killed with SIGKILL at a random
    // moment (from before it connects to after it has sent several pages)
    for iteration in 0..8 {
        let prefix = format!("K{iteration}-");
        let base = format!("2026-01-01T{iteration:02}:00:00Z");
        insert_orders(&db, &prefix, 400, &base).await;
        expected.extend((1..=400).map(|i| format!("{prefix}{i}")));
        // The last kill comes once the endpoint has accepted a page of this run (then up to
        // 300 ms later), so that at least one lands after a send however long a loaded
        // machine takes to start the run.
        let accepted_before = graph.events().len();
        let mut child = ocapi_run(&db).spawn().unwrap();
        let started = std::time::Instant::now();
        let delay = if iteration == 7 {
            while graph.events().len() == accepted_before
                && started.elapsed() < Duration::from_secs(60)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rand::random_range(0..300u64)
        } else {
            rand::random_range(0..600u64)
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        delays.push(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let accepted_before_clean_run = graph.events().len();

    // AND one clean run follows
    let stats = run(&config).await;

    // THEN every valid order is `sent` exactly once in the ledger and was accepted at least
    // once, with its own order id as event_id
    assert_all_sent_once(&db, &graph, &expected).await;
    assert!(
        accepted_before_clean_run > 0,
        "no kill landed after a send (delays {delays:?} ms)"
    );
    assert!(stats.sent > 0 || accepted_before_clean_run >= 3200);
    // AND the killed runs are recorded as interrupted, none left `running`
    assert_eq!(runs_left_running(&db).await, 0);
}

#[tokio::test]
async fn a_run_that_fails_leaves_no_request_going_out_behind_it() {
    // GIVEN a run whose requests fail half the time, so that sends are retrying all along
    let db = TestDb::new().await;
    insert_orders(&db, "A", 3000, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        error_rate: 0.5,
        latency: Duration::from_millis(20),
        ..Faults::default()
    })
    .await;
    // (small pages, so that a page commit, which meets the cut, comes while others are sent)
    let config = db.meta_config(
        "batch_size = 200",
        &graph.base_url(),
        TOKEN,
        "batch_size = 50",
    );
    migrate(&config).await;
    let running = tokio::spawn({
        let config = config.clone();
        async move { ocapi::run::run(&config, RunOptions::default(), std::future::pending()).await }
    });
    while graph.stats().requests < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // WHEN its database connections are cut, so that it stops with an error
    db.client
        .execute(
            "select pg_terminate_backend(pid) from pg_stat_activity
             where datname = current_database() and application_name = 'ocapi'",
            &[],
        )
        .await
        .unwrap();
    // (it stops on a lost lock or a failed ledger write; the test took 2.5-22 s alone and the
    // run over a minute to return once under the whole suite's load: 240 s still tells a hang)
    let outcome = tokio::time::timeout(Duration::from_secs(240), running)
        .await
        .expect("the run hung")
        .expect("the run panicked");

    // THEN, once it has returned, no retry of its in-flight batches reaches the endpoint
    // (they would keep coming, every few hundred ms, had its send tasks outlived it)
    if outcome.is_ok() {
        return; // it finished before the cut landed: nothing to check
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_return = graph.stats().requests;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        graph.stats().requests,
        after_return,
        "requests kept coming after the run failed"
    );
}

#[tokio::test]
async fn terminating_the_connectors_backends_mid_run_fails_cleanly_and_the_next_run_loses_nothing()
{
    // GIVEN a run in progress against a slow endpoint
    let db = TestDb::new().await;
    insert_orders(&db, "P", 3000, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(40),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "batch_size = 50");
    migrate(&config).await;
    let running = tokio::spawn({
        let config = config.clone();
        async move { ocapi::run::run(&config, RunOptions::default(), std::future::pending()).await }
    });
    while graph.events().len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // WHEN every backend of the connector is terminated
    let terminated: i64 = db
        .client
        .query_one(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity
             where datname = current_database() and application_name = 'ocapi'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(terminated > 0, "no connector backend found");

    // THEN the run ends by itself, with an error or having recovered, without panicking
    let outcome = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the run hung after its connections were terminated")
        .expect("the run panicked");
    if let Err(error) = &outcome {
        assert!(
            !ocapi::error::chain(error).is_empty(),
            "an error without a message"
        );
    }

    // AND the next run completes with nothing lost
    run(&config).await;
    let expected: HashSet<String> = (1..=3000).map(|i| format!("P{i}")).collect();
    assert_all_sent_once(&db, &graph, &expected).await;
}

#[tokio::test]
async fn an_endpoint_outage_is_retried_with_backoff_and_the_run_completes_after_it() {
    // GIVEN an endpoint answering 5xx to every request. The issue speaks of a whole minute;
    // the retry schedule (200 ms doubling to 30 s, halved by jitter at worst) makes any outage
    // look the same to a batch, so 3 s keeps the suite fast and still spans 4 to 5 retries.
    let db = TestDb::new().await;
    let (graph, config) = failing_endpoint(&db, "O", 1000, 8).await;
    let running = tokio::spawn({
        let config = config.clone();
        async move { ocapi::run::run(&config, RunOptions::default(), std::future::pending()).await }
    });

    // WHEN the outage lasts 3 s, then the endpoint recovers
    tokio::time::sleep(Duration::from_secs(3)).await;
    graph.set_faults(Faults::default());
    let outage_requests = graph.stats().faults_injected;
    let stats = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the run did not finish after the outage")
        .unwrap()
        .unwrap();

    // THEN the requests during the outage are bounded by the retry schedule: each of the 4
    // batches in flight tried at most 1 + 5 times in 3 s (delays ≥ 100, 200, 400, 800, 1600 ms),
    // no new batch started, and nothing busy-looped
    let concurrency = config.destination.concurrency as u64;
    assert!(
        (concurrency..=concurrency * 6).contains(&outage_requests),
        "{outage_requests} requests during a 3 s outage"
    );
    assert!(stats.retries >= concurrency, "retries: {}", stats.retries);
    // AND every order is delivered once the endpoint is back
    let expected: HashSet<String> = (1..=1000).map(|i| format!("O{i}")).collect();
    assert_all_sent_once(&db, &graph, &expected).await;
}

#[tokio::test]
async fn an_outage_longer_than_the_retry_budget_fails_the_run_in_time_and_loses_nothing() {
    // GIVEN an endpoint that keeps failing and a budget of 3 retries (~1.4 s of backoff)
    let db = TestDb::new().await;
    let (graph, config) = failing_endpoint(&db, "B", 500, 3).await;

    // WHEN the connector runs
    let started = Instant::now();
    let error = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();

    // THEN it fails within its retry budget, after at most 4 attempts per batch in flight
    assert!(started.elapsed() < Duration::from_secs(10));
    let status: String = db
        .client
        .query_one("select status from ocapi.runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "failed", "{}", ocapi::error::chain(&error));
    let requests = graph.stats().requests;
    let concurrency = config.destination.concurrency as u64;
    assert!(
        requests <= concurrency * 4,
        "{requests} requests with 3 retries"
    );
    // AND the watermark did not move, and nothing is marked sent
    let watermark: Option<String> = db
        .client
        .query_opt("select watermark from ocapi.state", &[])
        .await
        .unwrap()
        .and_then(|r| r.get(0));
    assert_eq!(watermark, None);
    assert_eq!(db.ledger_counts().await.get("sent"), None);

    // AND once the endpoint recovers, the next run delivers everything
    graph.set_faults(Faults::default());
    run(&config).await;
    let expected: HashSet<String> = (1..=500).map(|i| format!("B{i}")).collect();
    assert_all_sent_once(&db, &graph, &expected).await;
}

/// A column whose name is SQL text; the connector must quote it, never paste it.
const HOSTILE_COLUMN: &str = r#"x"; drop table y; --"#;

/// The hostile rows: each is a valid base row with one thing wrong. `updated_at` orders them.
const HOSTILE_ROWS: &str = r#"
insert into shop.store_transactions
    (order_id, purchased_at, updated_at, total, currency, email, phone, first_name, last_name,
     city, state, zip, country, gender, birth_date, loyalty_id)
values
    -- valid rows around the bad ones
    ('V1', now() - interval '1 hour', '2026-01-01 00:00:01', 10, 'USD', 'v1@example.com',
     '6505550001', 'Ann', 'Lee', 'Paris', null, '75001', 'FR', 'f', '1990-01-02', 'L1'),
    -- NULL in every column but the watermark, and in every column at all
    ('N1', null, '2026-01-01 00:00:02', null, null, null, null, null, null, null, null, null,
     null, null, null, null),
    (null, null, '2026-01-01 00:00:03', null, null, null, null, null, null, null, null, null,
     null, null, null, null),
    (null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
     null),
    -- empty strings, in the order id and everywhere else
    ('', now() - interval '1 hour', '2026-01-01 00:00:04', 10, '', 'e@example.com', '', '', '',
     '', '', '', '', '', null, ''),
    ('E1', now() - interval '1 hour', '2026-01-01 00:00:05', 10, '', '', '', '', '', '', '', '',
     '', '', null, ''),
    ('   ', now() - interval '1 hour', '2026-01-01 00:00:06', 10, 'USD', 'w@example.com',
     null, null, null, null, null, null, null, null, null, null),
    -- 10 KB strings, in every text column and as the order id
    ('S1', now() - interval '1 hour', '2026-01-01 00:00:07', 10, repeat('U', 10240),
     repeat('a', 10240) || '@example.com', repeat('5', 10240), repeat('é', 5120),
     repeat('z', 10240), repeat('c', 10240), repeat('s', 10240), repeat('9', 10240),
     repeat('u', 10240), repeat('g', 10240), null, repeat('k', 10240)),
    ('S2', now() - interval '1 hour', '2026-01-01 00:00:08', 10, 'USD',
     repeat('a', 10240) || '@example.com', repeat('5', 10240), repeat('é', 5120),
     repeat('z', 10240), repeat('c', 10240), repeat('s', 10240), repeat('9', 10240),
     'US', 'f', null, repeat('k', 10240)),
    (repeat('O', 10240), now() - interval '1 hour', '2026-01-01 00:00:09', 10, 'USD',
     'o@example.com', null, null, null, null, null, null, null, null, null, null),
    -- bytes that are not UTF-8, as a bytea cast to text and as Latin-1 read as text
    ('B1', now() - interval '1 hour', '2026-01-01 00:00:10', 10, 'USD',
     '\xc328ff'::bytea::text, '\xfffe'::bytea::text, convert_from('\xe9'::bytea, 'LATIN1'),
     encode('\xff00fe'::bytea, 'escape'), '\x80'::bytea::text, null, null, null, null, null,
     '\xdeadbeef'::bytea::text),
    -- numeric overflow: 40 digits, and 40 decimals
    ('O1', now() - interval '1 hour', '2026-01-01 00:00:11', 1e40, 'USD', 'o1@example.com',
     null, null, null, null, null, null, null, null, null, null),
    ('O2', now() - interval '1 hour', '2026-01-01 00:00:12', 1e-40, 'USD', 'o2@example.com',
     null, null, null, null, null, null, null, null, null, null),
    ('O3', now() - interval '1 hour', '2026-01-01 00:00:13', -1e40, 'USD', 'o3@example.com',
     null, null, null, null, null, null, null, null, null, null),
    -- timestamps at the extremes, in the event time and in the date of birth
    ('T1', 'infinity', '2026-01-01 00:00:14', 10, 'USD', 't1@example.com', null, null, null,
     null, null, null, null, null, 'infinity', null),
    ('T2', '-infinity', '2026-01-01 00:00:15', 10, 'USD', 't2@example.com', null, null, null,
     null, null, null, null, null, '-infinity', null),
    ('T3', '294276-12-31 23:59:59+00', '2026-01-01 00:00:16', 10, 'USD', 't3@example.com', null,
     null, null, null, null, null, null, null, '5874897-12-31', null),
    ('T4', '4713-01-01 00:00:00+00 BC', '2026-01-01 00:00:17', 10, 'USD', 't4@example.com',
     null, null, null, null, null, null, null, null, '4713-01-01 BC', null),
    -- a watermark at minus infinity is before any `source.start`: never read by `run` (the
    -- test's start is 2000-01-01), and it does not stall the read
    ('T5', now() - interval '1 hour', '-infinity', 10, 'USD', 't5@example.com', null, null,
     null, null, null, null, null, null, null, null),
    -- NaN and infinite numerics
    ('NAN1', now() - interval '1 hour', '2026-01-01 00:00:18', 'NaN', 'USD', 'n@example.com',
     null, null, null, null, null, null, null, null, null, null),
    ('INF1', now() - interval '1 hour', '2026-01-01 00:00:19', 'Infinity', 'USD',
     'i@example.com', null, null, null, null, null, null, null, null, null, null),
    -- SQL in the values
    ('Q1''; drop table y; --', now() - interval '1 hour', '2026-01-01 00:00:20', 10, 'USD',
     'q@example.com', null, 'Robert''); drop table y;--', null, null, null, null, null, null,
     null, null),
    ('V2', now() - interval '1 hour', '2026-01-01 00:00:21', 10, 'USD', 'v2@example.com',
     null, null, null, null, null, null, null, null, null, null);
"#;

#[tokio::test]
async fn a_run_failed_by_an_endpoint_that_fails_every_request_records_its_requests_and_retries() {
    // GIVEN an endpoint that answers every request with a transient error, and 2 retries
    let db = TestDb::new().await;
    let (graph, config) = failing_endpoint(&db, "F", 50, 2).await;

    // WHEN the connector runs and fails
    let error = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ocapi::Error::Destination(
                ocapi::destination::DestinationError::RetriesExhausted { .. }
            )
        ),
        "{error:?}"
    );

    // THEN its row in the runs table counts the requests it made and their retries (#15)
    let row = db
        .client
        .query_one("select status, batches, retries from ocapi.runs", &[])
        .await
        .unwrap();
    let (status, batches, retries): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(status, "failed");
    assert!(batches >= 3, "batches: {batches}");
    assert!(retries >= 2, "retries: {retries}");
    assert!(
        batches as u64 <= graph.stats().requests,
        "batches: {batches}"
    );
}

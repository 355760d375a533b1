//! Hostile databases and neighbours (issue 23): a PostgreSQL that accepts TCP and never
//! answers, or stops answering mid-run; `/readyz` floods; more `--listen` connections than the
//! limit or than descriptors; a ledger that cannot be written. Real binary, real PostgreSQL
//! behind a TCP proxy the test can stall, real HTTP to the stand-in.

mod stall;
mod listen;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::proxy::PgProxy;
use crate::support::watch::{wait_bounded, Watch};
use crate::support::{insert_orders, migrate, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// `ocapi ARGS` with `config`, waited for at most 90 s.
async fn ocapi_bounded(config: &Path, args: &[&str]) -> Output {
    let child = crate::support::command(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, Duration::from_secs(90), &format!("ocapi {args:?}")).await
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `GET path` on a fresh connection (`Connection: close`): the status and body; `None`
/// when no whole answer came within 30 s.
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: ocapi\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_owned();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .ok()
        .flatten()
}

/// What these tests ask a running watch (see tests/support/watch.rs).
impl Watch {
    /// The value of `ocapi_runs_total` for `status` (0 when absent or unanswered).
    async fn runs(&self, status: &str) -> f64 {
        let series = format!("ocapi_runs_total{{connector=\"stores-test\",status=\"{status}\"}}");
        let Some((_, text)) = http_get(self.addr, "/metrics").await else {
            return 0.0;
        };
        text.lines()
            .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (at most 90 s) until `ocapi_runs_total{status}` reaches `n`.
    async fn wait_runs(&self, status: &str, n: f64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.runs(status).await < n {
            assert!(
                Instant::now() < deadline,
                "never saw {n} {status} runs; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The connections ocapi holds to `database` now (`application_name` ocapi).
async fn ocapi_connections(db: &TestDb) -> i64 {
    db.client
        .query_one(
            "select count(*) from pg_stat_activity where datname = $1 \
             and application_name = 'ocapi'",
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0)
}

/// A file-destination config for `db` whose source and ledger are reached through `proxy`,
/// with `source_extra` in `[source]` and `ledger` as the `[ledger]` table's keys; migrated
/// directly.
async fn proxied_config(db: &TestDb, proxy: &PgProxy, source_extra: &str, ledger: &str) {
    let config = db.config(source_extra, None);
    migrate(&config).await;
    db.edit_config_text(&[(
        &format!("url = \"{}\"", db.url),
        &format!("url = \"{}\"", proxy.url(&db.name)),
    )]);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "\n[ledger]\n" + ledger + "\n";
    std::fs::write(&path, text).unwrap();
}

/// Opens `n` connections to `addr` that send nothing.
async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    idle
}

/// Waits (at most 60 s each) until every connection in `idle` is closed by the server.
async fn closed_by_server(idle: Vec<TcpStream>) {
    for mut stream in idle {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "an idle connection is still open: {read:?}"
        );
    }
}

#[tokio::test]
async fn a_ledger_that_stops_taking_writes_stops_the_sending_and_the_next_run_sends_nothing() {
    // GIVEN 1200 orders in pages of 300 sent 20 to a request, and a ledger that fails every
    // write once it holds 300 rows (a disk gone full)
    let db = TestDb::new().await;
    insert_orders(&db, "R", 1200, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(30),
        ..Faults::default()
    })
    .await;
    db.meta_config(
        "batch_size = 300",
        &graph.base_url(),
        TOKEN,
        "batch_size = 20",
    );
    let config = db.edit_config(&[("concurrency = 4", "concurrency = 2")]);
    migrate(&config).await;
    db.exec(
        "create function ocapi.full_disk() returns trigger language plpgsql as $$
         begin
           if (select count(*) from ocapi.ledger) >= 300 then
             raise exception 'could not extend file: No space left on device (simulated)';
           end if;
           return null;
         end $$;
         create trigger full_disk before insert on ocapi.ledger
           for each statement execute function ocapi.full_disk();",
    )
    .await;

    // WHEN a run sends: the first page is recorded, the second page's write fails
    let out = ocapi_bounded(&db.config_path(), &["run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&300));

    // THEN sending stopped at once: the recorded page, the page whose write failed, and at
    // most the batches in flight then (2 requests of 20, and one more page's first batches
    // started while the write was failing)
    let reached = graph.events().len();
    eprintln!("ledger full after 300 rows: {reached} events reached the endpoint");
    assert!(
        (600..=600 + 4 * 20).contains(&reached),
        "{reached} events reached the endpoint"
    );

    // WHEN the next run starts; THEN it sends nothing: its write check fails first
    let out = ocapi_bounded(&db.config_path(), &["run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot be written, so nothing was sent")
            && stderr.contains("No space left on device (simulated)"),
        "{stderr}"
    );
    assert_eq!(graph.events().len(), reached);

    // AND `check` reports the ledger that cannot be written
    let out = ocapi_bounded(&db.config_path(), &["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("FAIL  the ledger table") && stdout.contains("cannot be written"),
        "{stdout}"
    );
}

#[tokio::test]
async fn check_and_runs_refuse_a_read_only_ledger_or_one_without_insert() {
    // GIVEN a migrated ledger whose database makes transactions read-only
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    db.exec(&format!(
        "alter database {} set default_transaction_read_only = on",
        db.name
    ))
    .await;

    // THEN check reports it, and a run fails before writing any event
    let out = ocapi_bounded(&db.config_path(), &["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("read-only transaction"), "{stdout}");
    let out = ocapi_bounded(&db.config_path(), &["run"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(db.written_events().is_empty());

    // AND a role without INSERT on the ledger is refused the same way
    db.exec(&format!(
        "alter database {} reset default_transaction_read_only;
         create role ocapi_no_insert_{0} login;
         grant usage on schema shop, ocapi to ocapi_no_insert_{0};
         grant select on all tables in schema shop, ocapi to ocapi_no_insert_{0};
         grant insert, update on ocapi.runs, ocapi.state to ocapi_no_insert_{0};
         grant usage on all sequences in schema ocapi to ocapi_no_insert_{0};",
        db.name
    ))
    .await;
    let role_url = db.url.replacen(
        "postgres://postgres",
        &format!("postgres://ocapi_no_insert_{}", db.name),
        1,
    );
    db.edit_config_text(&[(&db.url, &role_url)]);
    let out = ocapi_bounded(&db.config_path(), &["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    db.exec(&format!(
        "drop owned by ocapi_no_insert_{0}; drop role ocapi_no_insert_{0}",
        db.name
    ))
    .await;
    assert!(
        stdout.contains("permission denied for table ledger"),
        "{stdout}"
    );
}

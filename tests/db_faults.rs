//! Hostile databases and neighbours (issue 23): a PostgreSQL that accepts TCP and never
//! answers, or stops answering mid-run; `/readyz` floods; more `--listen` connections than the
//! limit or than descriptors; a ledger that cannot be written. Real binary, real PostgreSQL
//! behind a TCP proxy the test can stall, real HTTP to the stand-in.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{admin_url, insert_orders, migrate, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// A TCP proxy in front of the test's PostgreSQL that forwards until told to stall: then open
/// connections forward nothing more (what either side sends is read and dropped, so both
/// stay open, as behind a hung pooler or a half-dead network), and new ones are accepted and
/// never answered. Healed, new connections forward again; a connection that saw the stall
/// stays dead. Either side closing closes the other (so a killed client's session ends).
struct StallProxy {
    /// Its address.
    addr: SocketAddr,
    /// Whether it stalls now.
    stalled: Arc<AtomicBool>,
}

impl StallProxy {
    /// A forwarding proxy to the test server (stalled from the start when `stalled`).
    async fn start(stalled: bool) -> Self {
        let config: tokio_postgres::Config = admin_url().parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            tokio_postgres::config::Host::Unix(_) => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(stalled));
        let flag = Arc::clone(&stalled);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let flag = Arc::clone(&flag);
                tokio::spawn(async move {
                    let (from_client, to_client) = inbound.into_split();
                    if flag.load(Ordering::SeqCst) {
                        // Accepted, never answered: read until the client gives up.
                        drain(from_client).await;
                        drop(to_client);
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (from_server, to_server) = outbound.into_split();
                    let dead = Arc::new(AtomicBool::new(false));
                    tokio::join!(
                        pipe(from_client, to_server, Arc::clone(&flag), Arc::clone(&dead)),
                        pipe(from_server, to_client, flag, dead),
                    );
                });
            }
        });
        Self { addr, stalled }
    }

    /// Stops forwarding, on open connections and new ones.
    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards new connections again.
    fn heal(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// A URL for `database` through the proxy, with `query` (`?…`) appended.
    fn url(&self, database: &str, query: &str) -> String {
        let config: tokio_postgres::Config = admin_url().parse().unwrap();
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        format!(
            "postgres://{user}{password}@{}/{database}{query}",
            self.addr
        )
    }
}

/// Reads and drops until the end.
async fn drain(mut from: OwnedReadHalf) {
    let mut buf = vec![0u8; 16 * 1024];
    while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Copies `from` to `to` until either ends; drops what arrives once the proxy stalls (and
/// from then on, for this connection); closes `to` at the end.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
    dead: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stalled.load(Ordering::SeqCst) {
            dead.store(true, Ordering::SeqCst);
        }
        if dead.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Waits for `child` at most `limit` (killing it past that, and failing).
async fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{what} still running after {}s; stderr:\n{}",
                    limit.as_secs(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap()
}

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

/// A running `ocapi watch --listen 127.0.0.1:0` (possibly under `sh -c`) and its logs.
struct Watcher {
    /// The process.
    child: Option<Child>,
    /// Its stderr lines.
    lines: Arc<Mutex<Vec<String>>>,
    /// Where it listens.
    addr: SocketAddr,
}

impl Watcher {
    /// Starts `command` (an `ocapi --log-format json watch --listen 127.0.0.1:0 …`) and waits
    /// for its address.
    fn start(mut command: Command) -> Self {
        let mut child = command
            .env("OCAPI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(addr) = json["fields"]["address"].as_str() {
                        let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "watch never said where it listens:\n{}",
                    lines.lock().unwrap().join("\n")
                )
            });
        Self {
            child: Some(child),
            lines,
            addr,
        }
    }

    /// `ocapi --config CONFIG --log-format json watch --listen 127.0.0.1:0 ARGS`.
    fn command(config: &Path, args: &[&str]) -> Command {
        let mut command = crate::support::command(config);
        command
            .args(["--log-format", "json", "watch", "--listen", "127.0.0.1:0"])
            .args(args);
        command
    }

    /// The logs so far.
    fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

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

    /// SIGTERM, then its exit code, waiting at most `limit`.
    async fn stop(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        wait_bounded(child, limit, "watch after SIGTERM")
            .await
            .status
            .code()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
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
async fn proxied_config(db: &TestDb, proxy: &StallProxy, source_extra: &str, ledger: &str) {
    let config = db.config(source_extra, None);
    migrate(&config).await;
    db.edit_config_text(&[(
        &format!("url = \"{}\"", db.url),
        &format!("url = \"{}\"", proxy.url(&db.name, "")),
    )]);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "\n[ledger]\n" + ledger + "\n";
    std::fs::write(&path, text).unwrap();
}

#[tokio::test]
async fn a_database_that_accepts_tcp_and_never_answers_fails_the_run_naming_the_setting() {
    // GIVEN a source behind a proxy that accepts connections and never answers
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let proxy = StallProxy::start(false).await;
    proxied_config(&db, &proxy, "connect_timeout = \"1s\"", "").await;
    proxy.stall();

    // WHEN a run starts; THEN it fails (exit 1) naming what timed out and the key to change
    let out = ocapi_bounded(&db.config_path(), &["run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the source database at 127.0.0.1:")
            && stderr.contains("no answer within 1s")
            && stderr.contains("`source.connect_timeout`"),
        "{stderr}"
    );

    // AND libpq's `connect_timeout` in the URL is honoured (it wins over the key)
    db.edit_config_text(&[
        ("connect_timeout = \"1s\"", "connect_timeout = \"1h\""),
        (
            &proxy.url(&db.name, ""),
            &proxy.url(&db.name, "?connect_timeout=2"),
        ),
    ]);
    let out = ocapi_bounded(&db.config_path(), &["run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no answer within 2s")
            && stderr.contains("`connect_timeout` in `source.url`"),
        "{stderr}"
    );
    assert!(db.written_events().is_empty());
}

#[tokio::test]
async fn a_database_that_stalls_mid_run_fails_the_run_which_frees_its_lock_for_the_next() {
    // GIVEN 300 orders sent 20 to a request through a slow stand-in, with source and ledger
    // behind a proxy, and a stall bound of 2 s on both
    let db = TestDb::new().await;
    insert_orders(&db, "R", 300, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    })
    .await;
    let proxy = StallProxy::start(false).await;
    let config = db.meta_config(
        "batch_size = 60\nstall_timeout = \"2s\"",
        &graph.base_url(),
        TOKEN,
        "batch_size = 20",
    );
    migrate(&config).await;
    db.edit_config_text(&[
        (
            &format!("url = \"{}\"", db.url),
            &format!("url = \"{}\"", proxy.url(&db.name, "")),
        ),
        ("concurrency = 4", "concurrency = 1"),
    ]);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "\n[ledger]\nstall_timeout = \"2s\"\n";
    std::fs::write(&path, text).unwrap();
    let first = crate::support::command(&path)
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // WHEN the database stops answering mid-run (the run holds its locks)
    eventually("a run under way", Duration::from_secs(60), || async {
        graph.events().len() >= 40
    })
    .await;
    proxy.stall();

    // THEN the run fails (exit 1) naming the stall and the key that bounds it
    let out = wait_bounded(first, Duration::from_secs(60), "the stalled run").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sent nothing for 2s") && stderr.contains(".stall_timeout`"),
        "{stderr}"
    );
    // AND it did not wait a second bound to record its end on the database that stalled
    assert!(!stderr.contains("could not be stored"), "{stderr}");

    // AND once the network heals the next run takes the lock and finishes the orders
    proxy.heal();
    let out = ocapi_bounded(&path, &["run"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&300));
}

#[tokio::test]
async fn watch_recovers_by_itself_once_a_stalled_database_answers_again() {
    // GIVEN a watch every second whose databases are behind a proxy, bounds of 2 s
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let proxy = StallProxy::start(false).await;
    let bounds = "connect_timeout = \"2s\"\nstall_timeout = \"2s\"";
    proxied_config(&db, &proxy, bounds, bounds).await;
    let watch = Watcher::start(Watcher::command(&db.config_path(), &["--interval", "1s"]));
    watch.wait_runs("completed", 1.0).await;

    // WHEN the database stops answering: runs fail
    proxy.stall();
    watch.wait_runs("failed", 1.0).await;
    assert!(
        watch.logs().contains("sent nothing for 2s")
            || watch.logs().contains("no answer within 2s"),
        "{}",
        watch.logs()
    );

    // AND when it answers again, the watch picks up new orders by itself
    insert_orders(&db, "S", 5, "2026-01-02T00:00:00Z").await;
    proxy.heal();
    eventually("the new orders sent", Duration::from_secs(90), || async {
        db.ledger_counts().await.get("sent") == Some(&10)
    })
    .await;
}

#[tokio::test]
async fn watch_stops_on_sigterm_while_a_database_does_not_answer() {
    // GIVEN a watch whose database stops answering, with bounds of an hour (so that only the
    // stop request can end the wait)
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let proxy = StallProxy::start(false).await;
    let bounds = "connect_timeout = \"1h\"\nstall_timeout = \"1h\"";
    proxied_config(&db, &proxy, bounds, bounds).await;
    let mut watch = Watcher::start(Watcher::command(&db.config_path(), &["--interval", "1s"]));
    watch.wait_runs("completed", 1.0).await;
    proxy.stall();
    // The next tick's run is stuck connecting.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // WHEN it is asked to stop; THEN it exits 0 within the README's 60 s
    assert_eq!(watch.stop(Duration::from_secs(60)).await, Some(0));
}

#[tokio::test]
async fn readyz_floods_cost_the_database_a_few_connections_and_the_runs_go_on() {
    // GIVEN a watch every second with a completed run
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let watch = Watcher::start(Watcher::command(&db.config_path(), &["--interval", "1s"]));
    watch.wait_runs("completed", 1.0).await;

    // WHEN 300 probes of /readyz arrive at once, while the connections are counted
    let counting = Arc::new(AtomicBool::new(true));
    let most = Arc::new(Mutex::new(0i64));
    let sampler = {
        let (counting, most) = (Arc::clone(&counting), Arc::clone(&most));
        let client = crate::support::connect(&db.url).await;
        let name = db.name.clone();
        tokio::spawn(async move {
            while counting.load(Ordering::SeqCst) {
                let n: i64 = client
                    .query_one(
                        "select count(*) from pg_stat_activity where datname = $1 \
                         and application_name = 'ocapi'",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get(0);
                {
                    let mut most = most.lock().unwrap();
                    *most = (*most).max(n);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let probes: Vec<_> = (0..300)
        .map(|_| tokio::spawn(http_get(watch.addr, "/readyz")))
        .collect();
    let mut answers = Vec::new();
    for probe in probes {
        answers.push(probe.await.unwrap());
    }
    counting.store(false, Ordering::SeqCst);
    sampler.await.unwrap();

    // THEN every probe is answered ready, and ocapi never held more than a few connections
    let ready = answers
        .iter()
        .filter(|a| matches!(a, Some((200, body)) if body == "ok\n"))
        .count();
    assert_eq!(
        ready,
        300,
        "{:?}",
        answers.iter().find(|a| !matches!(a, Some((200, _))))
    );
    let most = *most.lock().unwrap();
    eprintln!("300 concurrent /readyz: ocapi held at most {most} connections");
    assert!(most <= 12, "ocapi held {most} connections at once");

    // AND the watch's runs go on
    insert_orders(&db, "S", 5, "2026-01-02T00:00:00Z").await;
    eventually(
        "the new orders written",
        Duration::from_secs(60),
        || async { db.written_events().len() == 10 },
    )
    .await;
    assert!(ocapi_connections(&db).await <= 12);
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
async fn listen_outlasts_more_idle_connections_than_its_limit() {
    // GIVEN a watch serving --listen with at most 64 connections, each given 1 s to ask
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let watch = Watcher::start(Watcher::command(
        &db.config_path(),
        &[
            "--interval",
            "1h",
            "--listen-max-connections",
            "64",
            "--listen-timeout",
            "1s",
        ],
    ));
    watch.wait_runs("completed", 1.0).await;

    // WHEN 200 connections are opened and send nothing
    let idle = idle_connections(watch.addr, 200).await;

    // THEN /healthz and /metrics still answer, and the idle connections are closed
    assert_eq!(
        http_get(watch.addr, "/healthz").await,
        Some((200, "ok\n".to_owned()))
    );
    let metrics = http_get(watch.addr, "/metrics").await;
    assert!(
        matches!(&metrics, Some((200, text)) if text.contains("ocapi_runs_total")),
        "{metrics:?}"
    );
    closed_by_server(idle).await;
    assert_eq!(
        http_get(watch.addr, "/healthz").await.map(|a| a.0),
        Some(200)
    );
}

#[tokio::test]
async fn listen_outlasts_running_out_of_file_descriptors() {
    // GIVEN a watch limited to 64 descriptors whose --listen allows more connections than that
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let inner = Watcher::command(
        &db.config_path(),
        &[
            "--interval",
            "1h",
            "--listen-max-connections",
            "500",
            "--listen-timeout",
            "1s",
        ],
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let watch = Watcher::start(command);
    watch.wait_runs("completed", 1.0).await;

    // WHEN 150 connections are opened and send nothing (more than it has descriptors)
    let idle = idle_connections(watch.addr, 150).await;

    // THEN once they are closed, it answers again: it never stopped accepting
    closed_by_server(idle).await;
    assert_eq!(
        http_get(watch.addr, "/healthz").await,
        Some((200, "ok\n".to_owned()))
    );
    assert!(watch.logs().contains("cannot accept"), "{}", watch.logs());
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

#[tokio::test]
async fn a_run_that_reads_and_sends_for_longer_than_the_stall_bound_is_no_stall() {
    // GIVEN a stall bound of 1 s on both databases, and a run that takes several seconds:
    // its source statement stays open (streaming a page at a time) and its lock session and
    // ledger session sit idle while a slow endpoint answers
    let db = TestDb::new().await;
    insert_orders(&db, "R", 600, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults {
        latency: Duration::from_millis(250),
        ..Faults::default()
    })
    .await;
    db.meta_config(
        "batch_size = 100\nstall_timeout = \"1s\"",
        &graph.base_url(),
        TOKEN,
        "batch_size = 50",
    );
    db.edit_config_text(&[("concurrency = 4", "concurrency = 1")]);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "\n[ledger]\nstall_timeout = \"1s\"\n";
    std::fs::write(&path, text).unwrap();
    migrate(&ocapi::config::Config::load(&path).unwrap()).await;

    // WHEN it runs; THEN it completes: only waiting for an answer that does not come counts
    let started = Instant::now();
    let out = ocapi_bounded(&path, &["run"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() > Duration::from_secs(2));
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&600));
}

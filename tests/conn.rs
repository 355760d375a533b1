//! Connections and locks as deployments have them (issue #13): one sender per dataset, a lock
//! that is not lost silently, TLS verification against a throwaway CA, Unix sockets, the
//! URL's own options, a transaction-mode PgBouncer in front, and least-privilege roles.
//! Servers the shared PostgreSQL cannot stand in for (TLS, PgBouncer) are started here, each
//! in its own temp directory on its own port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{accepted_ids, insert_orders, migrate, sandbox, TestDb, TOKEN};
use ocapi::config::Config;
use ocapi::run::RunOptions;
use ocapi::sandbox::Faults;

/// How often each event id reached the stand-in.
fn id_counts(ids: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_insert(0) += 1;
    }
    counts
}

/// `(status, error)` of every run, in order.
async fn runs(db: &TestDb) -> Vec<(String, Option<String>)> {
    db.client
        .query("select status, error from ocapi.runs order by run_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The backend holding this database's run locks, once a run has taken them.
async fn lock_backend(db: &TestDb) -> i32 {
    for _ in 0..200 {
        let row = db
            .client
            .query_opt(
                "select pid from pg_locks
                 where locktype = 'advisory' and granted
                   and database = (select oid from pg_database where datname = current_database())
                 group by pid order by count(*) desc limit 1",
                &[],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no run took its lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connectors_on_one_dataset_never_send_at_once() {
    // GIVEN two connectors, identical but for their names, on one dataset, and a slow endpoint
    let db = TestDb::new().await;
    insert_orders(&db, "D", 5, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(1500),
        ..Faults::default()
    })
    .await;
    let base = meta.base_url();
    let first = db.meta_config("", &base, TOKEN, "");
    migrate(&first).await;
    let second = db.edit_config(&[
        ("name = \"stores-test\"", "name = \"stores-test-2\""),
        ("lock_wait = \"2s\"", "lock_wait = \"30s\""),
    ]);

    // WHEN both run, the second started while the first sends
    let one = tokio::spawn(async move {
        ocapi::run::run(&first, RunOptions::default(), std::future::pending()).await
    });
    lock_backend(&db).await;
    let two = ocapi::run::run(&second, RunOptions::default(), std::future::pending()).await;
    let one = one.await.unwrap().unwrap();
    let two = two.unwrap();

    // THEN the endpoint got each order once: the second waited, then found them sent
    let ids = accepted_ids(&meta);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(id_counts(&ids).values().all(|n| *n == 1), "{ids:?}");
    assert_eq!((one.sent, two.sent, two.skipped_duplicate), (5, 0, 5));
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_side_idle_timeout_does_not_end_the_lock() {
    // GIVEN a database that ends sessions idle for 1 s, and an endpoint taking 2.5 s a request
    let db = TestDb::new().await;
    insert_orders(&db, "I", 5, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(2500),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("", &meta.base_url(), TOKEN, "");
    migrate(&config).await;
    let waiting = db.edit_config(&[("lock_wait = \"2s\"", "lock_wait = \"30s\"")]);
    db.exec(&format!(
        "alter database {} set idle_session_timeout = '1s'",
        db.name
    ))
    .await;

    // WHEN a second run of the connector starts while the first waits on the endpoint
    let first = tokio::spawn(async move {
        ocapi::run::run(&config, RunOptions::default(), std::future::pending()).await
    });
    lock_backend(&db).await;
    let second = ocapi::run::run(&waiting, RunOptions::default(), std::future::pending()).await;
    let first = first.await.unwrap();

    // THEN the lock held: each event was sent once, both runs completed and say so
    let ids = accepted_ids(&meta);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(id_counts(&ids).values().all(|n| *n == 1), "{ids:?}");
    assert_eq!(first.unwrap().sent, 5);
    assert_eq!(second.unwrap().sent, 0);
    let runs = runs(&db).await;
    assert_eq!(
        runs,
        vec![
            ("completed".to_owned(), None),
            ("completed".to_owned(), None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_sessions_ended_while_idle_do_not_fail_the_run() {
    // GIVEN a database that ends sessions idle for 1 s, ten orders read two per page and sent
    // one request at a time, and an endpoint taking 1.2 s a request: the reader waits, idle,
    // for the sender to take its next page
    let db = TestDb::new().await;
    insert_orders(&db, "W", 10, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(1200),
        ..Faults::default()
    })
    .await;
    db.meta_config("batch_size = 2", &meta.base_url(), TOKEN, "batch_size = 2");
    let config = db.edit_config(&[("concurrency = 4", "concurrency = 1")]);
    migrate(&config).await;
    db.exec(&format!(
        "alter database {} set idle_session_timeout = '1s'",
        db.name
    ))
    .await;

    // WHEN it runs
    let stats = crate::support::run(&config).await;

    // THEN every order was read and sent once
    assert_eq!(stats.sent, 10);
    let ids = accepted_ids(&meta);
    assert_eq!(ids.len(), 10, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_lock_session_is_terminated_sends_nothing_more() {
    // GIVEN six orders read two per page and sent one request at a time, and an endpoint
    // taking 1 s a request
    let db = TestDb::new().await;
    insert_orders(&db, "T", 6, "2026-11-01 10:00:00+00").await;
    let meta = sandbox(Faults {
        latency: Duration::from_millis(1000),
        ..Faults::default()
    })
    .await;
    db.meta_config("batch_size = 2", &meta.base_url(), TOKEN, "batch_size = 2");
    // One request at a time: a page's batch starts once the one before it is back.
    let config = db.edit_config(&[("concurrency = 4", "concurrency = 1")]);
    migrate(&config).await;

    // WHEN an administrator terminates the lock's backend while the first page is sent
    let running = config.clone();
    let run = tokio::spawn(async move {
        ocapi::run::run(&running, RunOptions::default(), std::future::pending()).await
    });
    let pid = lock_backend(&db).await;
    while meta.stats().requests == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.client
        .execute("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let error = run.await.unwrap().unwrap_err();

    // THEN the run stops, says why, and is recorded failed; only the page in flight when the
    // lock went reached the endpoint
    assert!(matches!(error, ocapi::Error::LockLost(_)), "{error:?}");
    let after_loss = accepted_ids(&meta);
    assert!(
        after_loss.iter().all(|id| id == "T1" || id == "T2"),
        "{after_loss:?}"
    );
    let recorded = runs(&db).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "failed");
    assert!(
        recorded[0].1.as_deref().unwrap_or("").contains("lock"),
        "{recorded:?}"
    );

    // AND the next run sends the rest; each order is in the ledger as sent once
    let stats = ocapi::run::run(&config, RunOptions::default(), std::future::pending())
        .await
        .unwrap();
    assert!(stats.sent >= 2, "{stats:?}");
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&6));
    let counts = id_counts(&accepted_ids(&meta));
    assert_eq!(counts.len(), 6, "{counts:?}");
    // Only what was in flight when the lock went can come twice (same event_id: Meta keeps one).
    assert!(
        counts
            .iter()
            .all(|(id, n)| *n == 1 || after_loss.contains(id)),
        "{counts:?}"
    );
}

/// The `sql` blocks of the roles section of docs/connections.md, in order.
fn readme_role_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/connections.md"))
            .unwrap();
    let section = readme
        .split("<!-- roles:")
        .nth(1)
        .expect("the roles block of docs/connections.md");
    section
        .split("```sql\n")
        .skip(1)
        .take(2)
        .map(|block| block.split("```").next().unwrap().to_owned())
        .collect()
}

/// A config over the test's source table that connects as `role`.
fn config_as(db: &TestDb, role: &str) -> Config {
    let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let text = crate::support::config_text(&url, &db.out_path(), "", None);
    Config::parse(&text, Path::new("roles.toml")).unwrap()
}

#[tokio::test]
async fn each_command_works_as_a_role_with_only_the_readme_grants() {
    // GIVEN the README's three roles, with exactly its grants, and an administrator's schema
    let db = TestDb::new().await;
    insert_orders(&db, "R", 3, "2026-11-01 10:00:00+00").await;
    let tag = &db.name["ocapi_test_".len()..];
    let [migrator, sync, analyst] =
        ["migrator", "sync", "analyst"].map(|role| format!("ocapi_{role}_{tag}"));
    let adapt = |sql: &str| {
        sql.replace("ocapi_migrator", &migrator)
            .replace("ocapi_sync", &sync)
            .replace("ocapi_analyst", &analyst)
            .replace("database warehouse", &format!("database {}", db.name))
    };
    let blocks = readme_role_blocks();
    db.exec(&format!(
        "revoke create on database {} from public",
        db.name
    ))
    .await;
    db.exec(&adapt(&blocks[0])).await;

    // WHEN the migrator migrates the schema it owns, twice, and grants as the README says
    let applied = ocapi::commands::migrate::migrate(&config_as(&db, &migrator)).await;
    let again = ocapi::commands::migrate::migrate(&config_as(&db, &migrator)).await;
    let owner =
        crate::support::connect(&db.url.replacen("postgres@", &format!("{migrator}@"), 1)).await;
    owner.batch_execute(&adapt(&blocks[1])).await.unwrap();

    // THEN it applied every migration once, without the right to create a schema
    assert_eq!(applied.unwrap().len(), ocapi::db::MIGRATIONS.len());
    assert_eq!(again.unwrap(), Vec::<i32>::new());

    // AND the sync role checks, runs and lists runs; its migrate is a no-op
    let as_sync = config_as(&db, &sync);
    let check = ocapi::commands::check::check(&as_sync).await;
    assert!(check.ok, "{}", check.text);
    let stats = crate::support::run(&as_sync).await;
    assert_eq!(stats.sent, 3);
    assert_eq!(
        ocapi::commands::runs::recent(&as_sync, 5)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(ocapi::commands::migrate::migrate(&as_sync)
        .await
        .unwrap()
        .is_empty());

    // AND the analyst reads the ledger and its views, migrates nothing and cannot run
    let as_analyst = config_as(&db, &analyst);
    assert!(ocapi::commands::migrate::migrate(&as_analyst)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ocapi::commands::runs::recent(&as_analyst, 5)
            .await
            .unwrap()
            .len(),
        1
    );
    let reader =
        crate::support::connect(&db.url.replacen("postgres@", &format!("{analyst}@"), 1)).await;
    let days: i64 = reader
        .query_one("select count(*) from ocapi.ledger_daily", &[])
        .await
        .unwrap()
        .get(0);
    assert!(days >= 1);
    let denied = ocapi::run::run(&as_analyst, RunOptions::default(), std::future::pending()).await;
    assert!(denied.is_err());

    drop((owner, reader));
    drop(db);
    let admin = crate::support::connect(&crate::support::admin_url()).await;
    for role in [migrator, sync, analyst] {
        let _ = admin
            .batch_execute(&format!("drop role if exists {role}"))
            .await;
    }
}

/// Runs a server program, as the `postgres` user when the tests run as root (initdb,
/// postgres and pgbouncer refuse root).
fn server_command(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Hands a path to the `postgres` user when the tests run as root.
fn give_to_server_user(path: &Path) {
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status();
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The installed PostgreSQL server's `bin` directory (the newest version).
fn postgres_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|dir| {
        dir.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect("initdb under /usr/lib/postgresql/*/bin")
}

/// A PostgreSQL server of the test's own, in a temp directory, on its own port, stopped and
/// removed when dropped. Trust authentication, except certificate authentication for the role
/// `certonly` over TLS.
struct OwnServer {
    /// Holds `data/`, the log, and the Unix socket.
    dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    port: u16,
}

/// A throwaway CA and what it signs.
struct Pki {
    /// The CA certificate (PEM).
    ca: String,
    /// The server's certificate, for `localhost` only (PEM), and its key.
    server: (String, String),
    /// A client certificate for the role `certonly` (PEM), and its key.
    client: (String, String),
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ocapi test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>, common_name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        Self {
            server: leaf(vec!["localhost".to_owned()], "localhost"),
            client: leaf(Vec::new(), "certonly"),
            ca: ca.pem(),
        }
    }
}

impl OwnServer {
    /// initdb, TLS with `pki`'s server certificate, start.
    fn start(pki: &Pki) -> Self {
        let dir = std::env::temp_dir().join(format!("ocapi-pg-{:08x}", rand::random::<u32>()));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        give_to_server_user(&dir);
        let bin = postgres_bin();
        let status = server_command(&bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
            ])
            .args(["-E", "UTF8", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let port = free_port();
        for (name, text) in [
            ("server.crt", &pki.server.0),
            ("server.key", &pki.server.1),
            ("ca.crt", &pki.ca),
        ] {
            std::fs::write(data.join(name), text).unwrap();
        }
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             ssl_ca_file = 'ca.crt'\nfsync = off\nmax_connections = 30\nshared_buffers = 16MB\n",
            dir.display()
        );
        let mut postgresql_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        postgresql_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), postgresql_conf).unwrap();
        let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("hostssl all certonly 127.0.0.1/32 cert\nhost all certonly 127.0.0.1/32 reject\n{hba}"),
        )
        .unwrap();
        give_to_server_user(&dir);
        let _ = Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key"))
            .status();
        let status = server_command(&bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        assert!(status.success(), "pg_ctl start failed: {log}");
        Self { dir, port }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = server_command(&postgres_bin().join("pg_ctl"))
            .args(["-D", self.dir.join("data").to_str().unwrap()])
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connects through ocapi's pool and says whether the session is encrypted.
async fn ocapi_connect(url: &str) -> Result<bool, String> {
    let pool = ocapi::db::pool(&ocapi::secret::Secret::new(url), "source", 1)
        .map_err(|error| ocapi::error::chain(&error))?;
    let client = ocapi::db::connect(&pool, "source")
        .await
        .map_err(|error| ocapi::error::chain(&error))?;
    let row = client
        .query_one(
            "select coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)",
            &[],
        )
        .await
        .map_err(|error| error.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn server_certificates_are_verified_and_unix_sockets_connect() {
    // GIVEN a server of our own with a certificate for `localhost` from a throwaway CA
    let pki = Pki::new();
    let other = Pki::new();
    let server = OwnServer::start(&pki);
    let dir = server.dir.clone();
    for (name, text) in [
        ("ca.pem", &pki.ca),
        ("other-ca.pem", &other.ca),
        ("client.pem", &pki.client.0),
        ("client.key", &pki.client.1),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let port = server.port;
    let ca = dir.join("ca.pem").display().to_string();
    let other_ca = dir.join("other-ca.pem").display().to_string();
    // `hostaddr` pins the address (the server listens on IPv4 only) while `host` stays the
    // name the certificate is checked against, as with libpq.
    let url = |host: &str, user: &str, params: &str| {
        format!("postgres://{user}@{host}:{port}/postgres?hostaddr=127.0.0.1&{params}")
    };

    // THEN verify-full connects, encrypted, to the name the certificate gives
    let full = url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert_eq!(ocapi_connect(&full).await, Ok(true));
    // AND refuses another name for the same server, which verify-ca accepts
    let by_ip = url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let refused = ocapi_connect(&by_ip).await.unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
    let ca_only = url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    assert_eq!(ocapi_connect(&ca_only).await, Ok(true));
    // AND refuses a certificate from a CA it was not given, in both modes
    for mode in ["verify-full", "verify-ca"] {
        let wrong = url(
            "localhost",
            "postgres",
            &format!("sslmode={mode}&sslrootcert={other_ca}"),
        );
        let refused = ocapi_connect(&wrong).await.unwrap_err();
        assert!(refused.contains("certificate"), "{refused}");
    }
    // AND presents a client certificate (sslcert/sslkey) to a role that needs one
    let client_cert = format!(
        "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        dir.join("client.pem").display(),
        dir.join("client.key").display()
    );
    let admin = crate::support::connect(&url("127.0.0.1", "postgres", "sslmode=disable")).await;
    admin
        .batch_execute("create role certonly login")
        .await
        .unwrap();
    assert_eq!(
        ocapi_connect(&url("localhost", "certonly", &client_cert)).await,
        Ok(true)
    );
    let no_cert = url(
        "localhost",
        "certonly",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert!(ocapi_connect(&no_cert).await.is_err());

    // AND a Unix socket connects as psql does, in both URL forms, whatever the sslmode
    let socket = dir.display().to_string();
    let query_form = format!("postgres:///postgres?host={socket}&port={port}&user=postgres");
    assert_eq!(ocapi_connect(&query_form).await, Ok(false));
    let encoded = socket.replace('/', "%2F");
    let host_form = format!("postgres://postgres@{encoded}:{port}/postgres?sslmode=disable");
    assert_eq!(ocapi_connect(&host_form).await, Ok(false));
    let required = format!("postgres://postgres@{encoded}:{port}/postgres?sslmode=require");
    assert_eq!(ocapi_connect(&required).await, Ok(false));

    // AND a whole sync runs over the verified connection
    admin
        .batch_execute(crate::support::SOURCE_TABLE)
        .await
        .unwrap();
    admin
        .batch_execute(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total,
                 currency, email)
             values ('V1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 12, 'USD',
                 'v@example.com')",
        )
        .await
        .unwrap();
    let out = dir.join("events.ndjson");
    let text = crate::support::config_text(&full, &out, "", None);
    let config = Config::parse(&text, Path::new("tls.toml")).unwrap();
    migrate(&config).await;
    assert_eq!(crate::support::run(&config).await.sent, 1);
    assert_eq!(crate::support::read_ndjson(&out).len(), 1);
}

#[tokio::test]
async fn the_urls_own_options_are_kept() {
    // GIVEN a `sales` schema holding a table of the same name as one in `public`, and a URL
    // whose options put `sales` first and set a statement timeout
    let db = TestDb::new().await;
    db.exec(
        "create schema sales;
         create table sales.store_transactions (like shop.store_transactions);
         create table public.store_transactions (like shop.store_transactions);
         insert into sales.store_transactions (order_id, purchased_at, updated_at, total,
             currency, email)
         values ('S1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 5, 'USD', 's@example.com');",
    )
    .await;
    let url = format!(
        "{}?options=-c%20search_path%3Dsales%2Cpublic%20-c%20statement_timeout%3D42s",
        db.url
    );
    let text = crate::support::config_text(&url, &db.out_path(), "", None).replace(
        "table = \"shop.store_transactions\"",
        "table = \"store_transactions\"",
    );
    let config = Config::parse(&text, Path::new("options.toml")).unwrap();

    // WHEN the ledger is migrated and a run reads `store_transactions`
    migrate(&config).await;
    let stats = crate::support::run(&config).await;

    // THEN it read the schema the URL names, and sessions keep the URL's settings
    assert_eq!(stats.sent, 1);
    assert_eq!(db.written_events()[0]["custom_data"]["order_id"], "S1");
    for what in ["source", "ledger"] {
        let pool = ocapi::db::pool(&ocapi::secret::Secret::new(url.clone()), what, 1).unwrap();
        let client = ocapi::db::connect(&pool, what).await.unwrap();
        let row = client
            .query_one(
                "select current_setting('statement_timeout'), current_schema()",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, String>(1)),
            ("42s".to_owned(), "sales".to_owned())
        );
    }
}

#[tokio::test]
async fn an_unusable_url_is_a_configuration_error_and_watch_stops() {
    // GIVEN a URL with a password and a parameter that cannot work (a missing root certificate)
    let db = TestDb::new().await;
    let url = db.url.replacen("postgres@", "postgres:pa55-w0rd-x@", 1)
        + "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
    let text = crate::support::config_text(&url, &db.out_path(), "", None);
    let path = db.dir.join("bad-url.toml");
    std::fs::write(&path, text).unwrap();

    // WHEN `run` and `watch` start with it
    for args in [vec!["run"], vec!["watch", "--interval", "1s"]] {
        let mut command = tokio::process::Command::from(crate::support::command(&path));
        command.args(&args);
        command.kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("watch stops instead of retrying")
            .unwrap();

        // THEN each exits 2 naming the key and the parameter, never the password
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("`source.url`") && stderr.contains("sslrootcert"),
            "{stderr}"
        );
        assert!(!stderr.contains("pa55-w0rd-x"), "{stderr}");
    }
    // AND verify-full without `sslrootcert` or `~/.postgresql/root.crt` says to give one
    let text = crate::support::config_text(
        &format!("{}?sslmode=verify-full", db.url),
        &db.out_path(),
        "",
        None,
    );
    std::fs::write(&path, text).unwrap();
    let output = crate::support::command(&path)
        .env("HOME", &db.dir)
        .arg("check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("add parameter `sslrootcert`"), "{stdout}");

    // AND an unknown parameter is named the same way
    let unknown = format!("{}?sslcrl=/etc/crl.pem", db.url);
    let error = ocapi::db::pool(&ocapi::secret::Secret::new(unknown), "ledger", 1).unwrap_err();
    assert!(
        matches!(&error, ocapi::db::DbError::Url { what: "ledger", reason } if reason.contains("sslcrl")),
        "{error:?}"
    );
    assert!(ocapi::Error::from(error).is_config());
}

/// A PgBouncer of the test's own in transaction mode, in front of the shared server, stopped
/// when dropped. `None` (with a message) only when the binary is not installed; `.ci/run`
/// installs it.
struct Bouncer {
    /// Config, log and pid file.
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    port: u16,
}

impl Bouncer {
    fn start(pool_mode: &str) -> Option<Self> {
        Self::start_with(pool_mode, 4)
    }

    /// [`Bouncer::start`] with `pool_size` server connections per database and user.
    fn start_with(pool_mode: &str, pool_size: u32) -> Option<Self> {
        let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists());
        let Some(binary) = binary else {
            println!(
                "SKIPPED: pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("ocapi-pgb-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let shared: tokio_postgres::Config = crate::support::admin_url().parse().unwrap();
        let server_host = match shared.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let server_port = shared.get_ports().first().copied().unwrap_or(5432);
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={server_host} port={server_port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {dir}/users.txt\npool_mode = {pool_mode}\n\
                 default_pool_size = {pool_size}\nlogfile = {dir}/log\npidfile = {dir}/pid\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        give_to_server_user(&dir);
        let status = server_command(&binary)
            .arg("-d")
            .arg(dir.join("pgbouncer.ini"))
            .status()
            .unwrap();
        assert!(status.success(), "pgbouncer did not start");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self { dir, port });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pgbouncer did not listen on {port}");
    }

    /// A URL for `database` through the pooler.
    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // The daemon this test started, by the id it wrote.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_source_is_read_through_a_transaction_mode_pooler() {
    let Some(bouncer) = Bouncer::start("transaction") else {
        return;
    };
    // GIVEN a database whose sessions default to another date style, time zone and float
    // precision, orders read two per page, and the source URL through PgBouncer
    let db = TestDb::new().await;
    insert_orders(&db, "P", 5, "2026-11-01 10:00:00+00").await;
    db.exec(&format!(
        "alter database {0} set datestyle = 'SQL, DMY';
         alter database {0} set timezone = 'America/New_York';
         alter database {0} set extra_float_digits = 0",
        db.name
    ))
    .await;
    let pooled = bouncer.url(&db.name);
    let text = crate::support::config_text(&pooled, &db.out_path(), "batch_size = 2", None)
        + &format!("\n[ledger]\nurl = {:?}\n", db.url);
    let config = Config::parse(&text, Path::new("pooled.toml")).unwrap();
    migrate(&config).await;

    // WHEN a run reads through the pooler, with the ledger on a direct connection
    let stats = crate::support::run(&config).await;

    // THEN every order is sent, the date of birth is the one stored (1990-01-02, not 1 Feb)
    // and the watermark is stored in ISO form, in UTC
    assert_eq!(stats.sent, 5);
    let events = db.written_events();
    let birth = serde_json::json!(ocapi::transform::hash::sha256_hex("19900102"));
    assert!(
        events
            .iter()
            .all(|e| e["user_data"]["db"] == birth || e["user_data"]["db"][0] == birth),
        "{:?}",
        events[0]["user_data"]["db"]
    );
    let watermark: String = db
        .client
        .query_one("select watermark from ocapi.state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(watermark, "2026-11-01 10:00:05+00");

    // AND with the ledger behind the pooler too, check and run refuse with exit 2 and the fix
    let text = crate::support::config_text(&pooled, &db.out_path(), "", None);
    let all_pooled = Config::parse(&text, Path::new("all-pooled.toml")).unwrap();
    let check = ocapi::commands::check::check(&all_pooled).await;
    assert_eq!(
        (check.ok, check.status),
        (false, ocapi::error::ExitStatus::Config),
        "{}",
        check.text
    );
    assert!(check.text.contains("`ledger.url`"), "{}", check.text);
    let error = ocapi::run::run(&all_pooled, RunOptions::default(), std::future::pending())
        .await
        .unwrap_err();
    assert!(error.is_config(), "{error}");
    assert!(
        matches!(
            error,
            ocapi::Error::Lock(ocapi::lock::LockError::TransactionPooler)
        ),
        "{error:?}"
    );

    // AND through a session-mode pooler, source and ledger both, a run is not refused and
    // reads the same dates and watermark
    let session = Bouncer::start("session").unwrap();
    insert_orders(&db, "Q", 2, "2026-11-02 10:00:00+00").await;
    let text = crate::support::config_text(&session.url(&db.name), &db.out_path(), "", None);
    let all_session = Config::parse(&text, Path::new("session.toml")).unwrap();
    let check = ocapi::commands::check::check(&all_session).await;
    assert!(check.ok, "{}", check.text);
    assert_eq!(crate::support::run(&all_session).await.sent, 2);
    let events = db.written_events();
    assert!(events
        .iter()
        .all(|e| e["user_data"]["db"] == birth || e["user_data"]["db"][0] == birth));
    let watermark: String = db
        .client
        .query_one("select watermark from ocapi.state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(watermark, "2026-11-02 10:00:02+00");
}

#[tokio::test]
async fn a_source_that_is_down_is_named_by_host_and_port_with_its_cause_said_once() {
    // GIVEN a URL with a password, at a port where nothing listens
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/postgres");
    let pool = ocapi::db::pool(&ocapi::secret::Secret::new(url), "source", 1).unwrap();

    // WHEN connecting
    let error = ocapi::db::connect(&pool, "source").await.unwrap_err();

    // THEN the error names the server, never the password, and no cause is said twice
    let ocapi::db::DbError::Connect { what, target, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        (*what, target.as_str()),
        ("source", &*format!("127.0.0.1:{port}"))
    );
    let text = ocapi::error::chain(&error);
    assert!(!text.contains("hunter2"), "{text}");
    let parts: Vec<&str> = text.split(": ").collect();
    let mut unique = parts.clone();
    unique.dedup();
    assert_eq!(parts, unique, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_at_once_through_a_transaction_mode_pooler_find_the_table() {
    // One server connection per database, shared by every client in turn, as a busy pool is.
    let Some(bouncer) = Bouncer::start_with("transaction", 1) else {
        return;
    };
    // GIVEN two connectors of one database (own names, datasets and outputs), each reading
    // the source through one transaction-mode PgBouncer pool, the ledger on a direct
    // connection
    let db = TestDb::new().await;
    let mut paths = Vec::new();
    for name in ["a", "b"] {
        let out = db.dir.join(format!("{name}.ndjson"));
        let text = crate::support::config_text(&bouncer.url(&db.name), &out, "", None)
            .replace("stores-test", &format!("stores-{name}"))
            .replace(
                "1234567890",
                &format!("{}", if name == "a" { 111 } else { 222 }),
            )
            + &format!("\n[ledger]\nurl = {:?}\n", db.url);
        let path = db.dir.join(format!("{name}.toml"));
        std::fs::write(&path, &text).unwrap();
        migrate(&Config::load(&path).unwrap()).await;
        paths.push((path, out));
    }

    // WHEN both run at once, round after round, with new orders each round
    let rounds = 8;
    for round in 0..rounds {
        let updated = format!("2026-11-{:02}T00:00:00Z", round + 1);
        insert_orders(&db, &format!("P{round}-"), 2, &updated).await;
        let children: Vec<_> = paths
            .iter()
            .map(|(path, _)| {
                crate::support::command(path)
                    .arg("run")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            // THEN none fails, and none takes a pooler's error for a missing table
            assert!(!stderr.contains("not found"), "round {round}: {stderr}");
            assert_eq!(output.status.code(), Some(0), "round {round}: {stderr}");
        }
    }
    // AND every order of every round reached both destinations
    for (_, out) in &paths {
        assert_eq!(crate::support::read_ndjson(out).len(), 2 * rounds);
    }
}

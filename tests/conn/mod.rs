//! Connections and locks as deployments have them (issue #13): one sender per dataset, a lock
//! that is not lost silently, TLS verification against a throwaway CA, Unix sockets, the
//! URL's own options, a transaction-mode PgBouncer in front, and least-privilege roles.
//! Servers the shared PostgreSQL cannot stand in for (TLS, PgBouncer) are started here, each
//! in its own temp directory on its own port.

mod lock;
mod url;
mod pooler;

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

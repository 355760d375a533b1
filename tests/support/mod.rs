//! Test support: a PostgreSQL database per test (from `DATABASE_URL`, else the local server),
//! a demo-shaped source table, config files, and ledger queries.

use std::path::{Path, PathBuf};

use ocapi::config::Config;
use tokio_postgres::{Client, NoTls};

pub mod proxy;
pub mod scenario;
pub mod retail;
pub mod watch;
pub mod webhook;

pub use webhook::Webhook;

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// A URL for it.
    pub url: String,
    /// A connection to it.
    pub client: Client,
    /// A scratch directory for config and output files.
    pub dir: PathBuf,
}

/// Connects without TLS.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A URL like `admin` with another database name.
fn with_database(admin: &str, name: &str) -> String {
    let mut config: tokio_postgres::Config = admin.parse().unwrap();
    config.dbname(name);
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{name}")
}

impl TestDb {
    /// Creates a fresh database with the demo-shaped source table `shop.store_transactions`.
    pub async fn new() -> Self {
        let name = format!("ocapi_test_{:016x}", rand::random::<u64>());
        let admin = connect(&admin_url()).await;
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .unwrap();
        let url = with_database(&admin_url(), &name);
        let client = connect(&url).await;
        client.batch_execute(SOURCE_TABLE).await.unwrap();
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            name,
            url,
            client,
            dir,
        }
    }

    /// Writes a config file (a file destination into the scratch dir unless `destination` is
    /// given) and loads it. `extra` is TOML appended to `[source]`.
    pub fn config(&self, source_extra: &str, destination: Option<&str>) -> Config {
        let text = config_text(&self.url, &self.out_path(), source_extra, destination);
        let path = self.dir.join("connector.toml");
        std::fs::write(&path, &text).unwrap();
        Config::load(&path).unwrap()
    }

    /// A `[destination]` table's keys writing to [`TestDb::out_path`].
    pub fn file_destination(&self) -> String {
        file_destination(&self.out_path())
    }

    /// Writes `text` as the connector's config, loads it and migrates its ledger.
    pub async fn use_config(&self, text: &str) -> Config {
        std::fs::write(self.config_path(), text).unwrap();
        let config = Config::load(&self.config_path()).unwrap();
        migrate(&config).await;
        config
    }

    /// The file destination's output.
    pub fn out_path(&self) -> PathBuf {
        self.dir.join("events.ndjson")
    }

    /// The events written to the file destination.
    pub fn written_events(&self) -> Vec<serde_json::Value> {
        read_ndjson(&self.out_path())
    }

    /// Runs a SQL statement.
    pub async fn exec(&self, sql: &str) {
        self.client.batch_execute(sql).await.unwrap();
    }

    /// `status -> count` of the ledger.
    pub async fn ledger_counts(&self) -> std::collections::BTreeMap<String, i64> {
        self.client
            .query("select status, count(*) from ocapi.ledger group by 1", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// One column of the ledger row of an order.
    pub async fn ledger_text(&self, order_id: &str, column: &str) -> Option<String> {
        let sql = format!("select {column}::text from ocapi.ledger where order_id = $1");
        self.client
            .query_opt(&sql, &[&order_id])
            .await
            .unwrap()
            .and_then(|r| r.get(0))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dir = self.dir.clone();
        // Dropping needs a connection of its own, outside the test's runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = connect(&admin_url()).await;
                let _ = admin
                    .batch_execute(&format!("drop database if exists {name} with (force)"))
                    .await;
            });
            let _ = std::fs::remove_dir_all(dir);
        })
        .join();
    }
}

/// Reads an NDJSON file's whole lines (empty when missing): a test that polls the file while a
/// `watch` still writes it may read a line half written, which is not yet an event.
pub fn read_ndjson(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
    whole
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The demo-shaped source table `shop.store_transactions` (sql/demo/store_transactions.sql,
/// the one definition `ocapi demo` and bench/e2e use too).
pub const SOURCE_TABLE: &str = concat!(
    "create schema shop; set search_path = shop;\n",
    include_str!("../../sql/demo/store_transactions.sql"),
    "\nreset search_path;"
);

/// A `[destination]` table's keys writing events to the file `out`.
pub fn file_destination(out: &Path) -> String {
    format!(
        "kind = \"file\"\ndataset_id = \"1234567890\"\npath = {:?}",
        out.display().to_string()
    )
}

/// A connector config over `shop.store_transactions`.
pub fn config_text(url: &str, out: &Path, source_extra: &str, destination: Option<&str>) -> String {
    let destination = destination.map_or_else(|| file_destination(out), str::to_owned);
    // The fixtures' watermarks lie in 2026 and the default first watermark is 62 days ago:
    // start from the beginning unless a test says otherwise.
    let start = if source_extra.contains("start") {
        ""
    } else {
        "start = \"2000-01-01T00:00:00Z\""
    };
    format!(
        r#"
[connector]
name = "stores-test"
lock_wait = "2s"

[source]
url = "{url}"
table = "shop.store_transactions"
watermark_column = "updated_at"
{start}
{source_extra}

[mapping]
order_id = "order_id"
event_time = "purchased_at"
value = "total"
currency = "currency"
email = "email"
phone = "phone"
first_name = "first_name"
last_name = "last_name"
city = "city"
state = "state"
zip = "zip"
country = "country"
gender = "gender"
date_of_birth = "birth_date"
external_id = "loyalty_id"

[defaults]
currency = "USD"
country = "US"

[destination]
{destination}
"#
    )
}

/// Inserts `n` valid orders `{prefix}{i}` bought an hour ago, updated at base + i seconds.
pub async fn insert_orders(db: &TestDb, prefix: &str, n: i32, updated_base: &str) {
    db.exec(&orders_sql(prefix, n, updated_base)).await;
}

/// The statement [`insert_orders`] runs (for `Scenario::given`).
pub fn orders_sql(prefix: &str, n: i32, updated_base: &str) -> String {
    format!(
        "insert into shop.store_transactions
         select '{prefix}' || g, now() - interval '1 hour',
                timestamptz '{updated_base}' + g * interval '1 second',
                10 + g, 'USD', 'Customer' || g || '@Example.com', '(650) 555-' || lpad(g::text, 4, '0'),
                'Mary', 'Smith', 'New York', 'NY', '10001', 'US', 'F', date '1990-01-02', 'L' || g
         from generate_series(1, {n}) g"
    )
}

/// Runs one sync pass with default options.
pub async fn run(config: &Config) -> ocapi::stats::RunStats {
    ocapi::run::run(
        config,
        ocapi::run::RunOptions::default(),
        std::future::pending(),
    )
    .await
    .unwrap()
}

/// Runs `ocapi migrate` for a config.
pub async fn migrate(config: &Config) {
    ocapi::commands::migrate::migrate(config).await.unwrap();
}

/// The token the stand-in accepts in tests.
pub const TOKEN: &str = "test-token-7f3a9c";

/// Starts the local Graph API stand-in with these faults.
pub async fn sandbox(faults: ocapi::sandbox::Faults) -> ocapi::sandbox::Sandbox {
    sandbox_with(faults, ocapi::sandbox::MetaSide::default()).await
}

/// Starts the local Graph API stand-in with these faults and these answers about Meta's side
/// (the token's life and scopes, `/stats`, diagnostics, version headers).
pub async fn sandbox_with(
    faults: ocapi::sandbox::Faults,
    meta_side: ocapi::sandbox::MetaSide,
) -> ocapi::sandbox::Sandbox {
    let options = ocapi::sandbox::SandboxOptions {
        access_token: TOKEN.to_owned(),
        dataset_id: Some("1234567890".to_owned()),
        app_secret: None,
        faults,
        meta_side,
    };
    ocapi::sandbox::Sandbox::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
}

impl TestDb {
    /// A config whose destination is the stand-in at `base_url`, with the token in a file.
    pub fn meta_config(
        &self,
        source_extra: &str,
        base_url: &str,
        token: &str,
        extra: &str,
    ) -> Config {
        let token_path = self.dir.join("token");
        std::fs::write(&token_path, token).unwrap();
        // Readable by its owner only, as the README asks (others reading it is warned about).
        #[cfg(unix)]
        std::fs::set_permissions(
            &token_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let destination = format!(
            "kind = \"meta\"\ndataset_id = \"1234567890\"\naccess_token_file = {:?}\n\
             base_url = {base_url:?}\nconcurrency = 4\nmax_retries = 10\n\
             request_timeout = \"5s\"\n{extra}\n{batch}",
            token_path.display().to_string(),
            batch = if extra.contains("batch_size") {
                ""
            } else {
                "batch_size = 100"
            }
        );
        self.config(source_extra, Some(&destination))
    }

    /// Rewrites the config file last written (`config`, `meta_config`) with each `(from, to)`,
    /// each of which must be there, without loading it (the edit may make it invalid).
    pub fn edit_config_text(&self, edits: &[(&str, &str)]) {
        let path = self.config_path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "{from} not in the config");
            text = text.replace(from, to);
        }
        std::fs::write(&path, text).unwrap();
    }

    /// Rewrites the config file last written (for keys that `config` and `meta_config` fix,
    /// such as `max_retries`) and loads it again.
    pub fn edit_config(&self, edits: &[(&str, &str)]) -> Config {
        self.edit_config_text(edits);
        Config::load(&self.config_path()).unwrap()
    }

    /// [`Self::config`] with the watermark column `column` (an integer one, say) and no
    /// `source.start` (a first run then reads the whole table for an integer watermark).
    pub fn config_watermarked_by(&self, column: &str, source_extra: &str) -> Config {
        self.config(source_extra, None);
        self.edit_config(&[
            (
                r#"watermark_column = "updated_at""#,
                &format!(r#"watermark_column = "{column}""#),
            ),
            (r#"start = "2000-01-01T00:00:00Z""#, ""),
        ])
    }

    /// The path of the config file last written by `config`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("connector.toml")
    }
}

/// Event ids of the events the stand-in accepted, in arrival order.
pub fn accepted_ids(sandbox: &ocapi::sandbox::Sandbox) -> Vec<String> {
    sandbox
        .events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends `signal` (`"INT"`, `"TERM"`) to `child` with kill(1).
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal}");
}

/// [`send_signal`], then waits for the child to exit and returns what it printed.
pub async fn signal_and_wait(child: std::process::Child, signal: &str) -> std::process::Output {
    send_signal(&child, signal);
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

/// The `ocapi` binary with `--config PATH` and warn-level logs: the one way tests start it,
/// to wait for (`output`, or [`ocapi`] from async tests) or to signal (`spawn`).
pub fn command(config: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ocapi"));
    command.arg("--config").arg(config).env("OCAPI_LOG", "warn");
    command
}

/// Runs the `ocapi` binary with `--config` and waits for it, letting the test's runtime go on
/// (it closes the connections of the in-process runs before, which hold their locks until then).
pub async fn ocapi<S: AsRef<std::ffi::OsStr>>(config: &Path, args: &[S]) -> std::process::Output {
    let mut command = command(config);
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// `reconcile` by day over yesterday, today and tomorrow (UTC): where the fixtures' orders,
/// bought an hour ago, fall.
pub async fn reconcile_around_today(config: &Config) -> ocapi::commands::reconcile::Report {
    let today = chrono::Utc::now().date_naive();
    ocapi::commands::reconcile::reconcile(
        config,
        today - chrono::Duration::days(1),
        today + chrono::Duration::days(1),
        ocapi::commands::reconcile::GroupBy::Day,
    )
    .await
    .unwrap()
}

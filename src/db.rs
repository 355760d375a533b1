//! PostgreSQL plumbing: pools from our config (URLs read as libpq reads them, TLS through
//! rustls with certificate verification for `sslmode=verify-ca`/`verify-full`, Unix sockets),
//! the settings reads depend on, identifier quoting, and the migration runner for `sql/`.

mod bounds;
mod migrate;
mod tls;
mod url;

pub use bounds::Timeouts;
use bounds::{DRIVER_KEEPALIVE_IDLE, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES};
pub(crate) use migrate::schema_version;
pub use migrate::{migrate, migrate_reporting, Migrated, MIGRATIONS_TABLE};

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::config::Host;
use tokio_postgres::Client;

use crate::config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_STALL_TIMEOUT};
use crate::secret::Secret;

/// Migrations, numbered, forward-only, never edited once landed. Each runs with `search_path`
/// set to the ledger schema, so the files use unqualified names.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "ledger", include_str!("../sql/0001_ledger.sql")),
    (
        2,
        "reconcile_views",
        include_str!("../sql/0002_reconcile_views.sql"),
    ),
    (3, "operations", include_str!("../sql/0003_operations.sql")),
    (
        4,
        "ledger_written_once",
        include_str!("../sql/0004_ledger_written_once.sql"),
    ),
    (
        5,
        "ledger_key_collation",
        include_str!("../sql/0005_ledger_key_collation.sql"),
    ),
    (
        6,
        "orders_held_and_per_currency",
        include_str!("../sql/0006_orders_held_and_per_currency.sql"),
    ),
    (7, "upload_lag", include_str!("../sql/0007_upload_lag.sql")),
    (
        8,
        "limited_data_use",
        include_str!("../sql/0008_limited_data_use.sql"),
    ),
    (
        9,
        "rejection_cause",
        include_str!("../sql/0009_rejection_cause.sql"),
    ),
    (
        10,
        "attempts_and_unsendable",
        include_str!("../sql/0010_attempts_and_unsendable.sql"),
    ),
    (
        11,
        "ledger_without_event_time_index",
        include_str!("../sql/0011_ledger_without_event_time_index.sql"),
    ),
    (
        12,
        "anonymous_orders",
        include_str!("../sql/0012_anonymous_orders.sql"),
    ),
    (13, "key_rules", include_str!("../sql/0013_key_rules.sql")),
    (
        14,
        "event_digest",
        include_str!("../sql/0014_event_digest.sql"),
    ),
    (
        16,
        "meta_alerts",
        include_str!("../sql/0016_meta_alerts.sql"),
    ),
    (
        17,
        "history_floor",
        include_str!("../sql/0017_history_floor.sql"),
    ),
    (
        18,
        "change_watermarks",
        include_str!("../sql/0018_change_watermarks.sql"),
    ),
    (
        21,
        "run_stopped",
        include_str!("../sql/0021_run_stopped.sql"),
    ),
];

/// Errors talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL cannot be used (its text is not repeated: it may hold a password).
    #[error("config key `{what}.url` is not a usable PostgreSQL URL: {reason}")]
    Url {
        /// Which URL (source or ledger).
        what: &'static str,
        /// The parameter at fault and why.
        reason: String,
    },
    /// The pool could not be built.
    #[error("cannot build the {what} connection pool")]
    Pool {
        /// Which pool.
        what: &'static str,
        /// The cause.
        #[source]
        source: deadpool_postgres::BuildError,
    },
    /// No connection could be had. The message names the server (`host:port`, never the
    /// user or password) and gives the cause once: the pool's own wrapper, whose text repeats
    /// its cause, is left out.
    #[error("cannot connect to the {what} database at {target}")]
    Connect {
        /// Which database.
        what: &'static str,
        /// Where: `host:port` (or the socket path), comma-separated when the URL lists several.
        target: String,
        /// The cause: PostgreSQL's (or the network's) error, or the pool's when no connection
        /// was tried (a timeout waiting for a free one).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Connecting took longer than its bound (a server that accepts TCP and never answers).
    #[error(
        "cannot connect to the {what} database at {target}: no answer within {secs}s; check \
         the server and the network, or raise {setting} if it is only slow to accept"
    )]
    ConnectTimeout {
        /// Which database.
        what: &'static str,
        /// Where, as [`DbError::Connect`] names it.
        target: String,
        /// The bound, in seconds.
        secs: u64,
        /// The setting that changes it: `` `source.connect_timeout` `` or the URL's parameter.
        setting: String,
    },
    /// The database sent nothing for `stall_timeout` while ocapi waited for an answer.
    #[error(
        "the {what} database sent nothing for {secs}s while ocapi was {doing} (a stalled \
         server, pooler or network); the run stopped and closed its connections, which frees \
         its locks; raise `{what}.stall_timeout` if such a wait is normal there"
    )]
    Stalled {
        /// Which database.
        what: &'static str,
        /// What ocapi was waiting for.
        doing: String,
        /// The bound, in seconds (`source.stall_timeout`, `ledger.stall_timeout`).
        secs: u64,
    },
    /// A statement failed.
    #[error("{context}")]
    Query {
        /// What ocapi was doing.
        context: String,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A table in the ledger schema that ocapi's name points at holds what ocapi never wrote
    /// (a configuration error: `ledger.schema` is shared with something else).
    #[error(
        "{table} is not ocapi's: it has {found}; set `ledger.schema` to a schema of ocapi's own          or move that table"
    )]
    NotOurs {
        /// `schema.table`.
        table: String,
        /// What was found instead.
        found: String,
    },
}

impl DbError {
    /// Wraps a tokio-postgres error with what ocapi was doing.
    pub fn query(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        // Converted only on an error: the source read maps every row's result through this,
        // and a `&str` made into a `String` up front was two allocations per row.
        move |source| Self::Query {
            context: context.into(),
            source,
        }
    }
}

/// The settings ocapi's text renderings of times, dates and numbers depend on. The source
/// reads set them per transaction ([`reading`]); ledger sessions set them once ([`pool`]).
/// Only these are set: a URL's own `options` (`search_path`, `statement_timeout`, …) stay.
const READ_SETTINGS: [(&str, &str); 4] = [
    ("TimeZone", "'UTC'"),
    ("DateStyle", "'ISO, MDY'"),
    ("IntervalStyle", "'postgres'"),
    ("extra_float_digits", "1"),
];

/// `set [local] name = value; …` for `READ_SETTINGS`.
pub(crate) fn set_statements(local: bool) -> String {
    let scope = if local { "set local" } else { "set" };
    READ_SETTINGS
        .iter()
        .map(|(name, value)| format!("{scope} {name} = {value}; "))
        .collect()
}

/// A connection pool, with the server it connects to (for messages) and the bounds on its
/// waits. Dereferences to the `deadpool_postgres` pool.
#[derive(Clone)]
pub struct Pool {
    /// The pool.
    inner: deadpool_postgres::Pool,
    /// `host:port` of the server(s), as [`DbError::Connect`] names them.
    target: std::sync::Arc<str>,
    /// `source`, `ledger` or `demo`: names the config keys in errors.
    what: &'static str,
    /// The URL's `connect_timeout`, which wins over the config's.
    url_connect_timeout: Option<Duration>,
    /// The bounds in force.
    timeouts: Timeouts,
}

impl std::ops::Deref for Pool {
    type Target = deadpool_postgres::Pool;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// Where a config connects: `host:port` per host (a Unix socket as its path), comma-separated;
/// the port defaults to 5432 as libpq's. Holds no user name or password.
fn target(pg: &tokio_postgres::Config) -> String {
    let ports = pg.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let hosts: Vec<String> = if pg.get_hosts().is_empty() {
        pg.get_hostaddrs()
            .iter()
            .enumerate()
            .map(|(i, addr)| match addr {
                std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", port(i)),
                std::net::IpAddr::V4(v4) => format!("{v4}:{}", port(i)),
            })
            .collect()
    } else {
        pg.get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{}", port(i)),
                Host::Tcp(name) => format!("{name}:{}", port(i)),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}/.s.PGSQL.{}", path.display(), port(i)),
            })
            .collect()
    };
    if hosts.is_empty() {
        "(no host in the URL)".to_owned()
    } else {
        hosts.join(",")
    }
}

/// Builds a pool for a URL. `what` is `source`, `ledger` (or `demo`) and names the config key
/// in errors. The URL is read as libpq reads it (`db::url`); nothing is added to its startup
/// packet but `application_name`, so a transaction-mode pooler accepts it. Source connections
/// set nothing per session (a pooler may hand the session to another client between
/// statements): reads go through [`reading`]. Other connections are sessions and set
/// `READ_SETTINGS` once, after the user's own options.
pub fn pool(url: &Secret, what: &'static str, size: usize) -> Result<Pool, DbError> {
    // Every reason is redacted: a URL that does not even parse (a mistyped scheme) is echoed
    // by the parsers, password included.
    let password = password_in(url.expose());
    let bad = |reason: String| DbError::Url {
        what,
        reason: match &password {
            Some(password) => reason.replace(password.as_str(), "[redacted]"),
            None => reason,
        },
    };
    let (text, params) = url::split(url.expose()).map_err(bad)?;
    let mut pg = tokio_postgres::Config::from_str(&text)
        // tokio-postgres's message is generic ("invalid connection string"); its cause names
        // the part at fault.
        .map_err(|error| match std::error::Error::source(&error) {
            Some(cause) => bad(format!("{error}: {cause}")),
            None => bad(error.to_string()),
        })?;
    if pg.get_application_name().is_none() {
        pg.application_name("ocapi");
    }
    // libpq's `connect_timeout` (tokio-postgres bounds only the TCP connect with it).
    let url_connect_timeout = pg.get_connect_timeout().copied();
    if pg.get_keepalives_idle() == DRIVER_KEEPALIVE_IDLE {
        pg.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
        if pg.get_keepalives_interval().is_none() {
            pg.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if pg.get_keepalives_retries().is_none() {
            pg.keepalives_retries(KEEPALIVE_RETRIES);
        }
    }
    let target = target(&pg);
    let hosts = pg.get_hosts();
    let unix_only = !hosts.is_empty() && hosts.iter().all(|h| !matches!(h, Host::Tcp(_)));
    pg.ssl_mode(match params.mode {
        // libpq ignores `sslmode` on Unix sockets: there is no TLS over them.
        _ if unix_only => tokio_postgres::config::SslMode::Disable,
        Some(url::SslMode::Disable) => tokio_postgres::config::SslMode::Disable,
        None | Some(url::SslMode::Prefer) => tokio_postgres::config::SslMode::Prefer,
        Some(_) => tokio_postgres::config::SslMode::Require,
    });
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if unix_only {
        // tokio-postgres asks for a TLS connector by host name even when it will not use it,
        // and a socket path is no host name.
        Manager::from_config(pg, tokio_postgres::NoTls, manager_config)
    } else {
        let config = tls::client_config(&params).map_err(bad)?;
        let connector = tokio_postgres_rustls::MakeRustlsConnect::new(config);
        Manager::from_config(pg, connector, manager_config)
    };
    let mut builder = deadpool_postgres::Pool::builder(manager).max_size(size);
    if what != "source" {
        // A run's ledger sessions wait on the destination between statements and close when
        // the run ends: a server-side `idle_session_timeout` (PostgreSQL 14+) must not end
        // them mid-run, leaving the run unrecorded. The server's keepalives (`tcp_keepalives_*`,
        // any role may set them) end a session whose client vanished behind a cut network
        // within a minute, so its advisory locks do not outlive it by two hours.
        let settings = format!(
            "{}set client_min_messages = warning; \
             set tcp_keepalives_idle = {}; set tcp_keepalives_interval = {}; \
             set tcp_keepalives_count = {}; \
             select set_config('idle_session_timeout', '0', false) \
             where current_setting('server_version_num')::int >= 140000",
            set_statements(false),
            KEEPALIVE_IDLE.as_secs(),
            KEEPALIVE_INTERVAL.as_secs(),
            KEEPALIVE_RETRIES,
        );
        builder = builder.post_create(Hook::async_fn(move |client, _| {
            let settings = settings.clone();
            Box::pin(async move {
                client
                    .batch_execute(&settings)
                    .await
                    .map_err(HookError::Backend)
            })
        }));
    }
    let inner = builder
        .build()
        .map_err(|source| DbError::Pool { what, source })?;
    Ok(Pool {
        inner,
        target: target.into(),
        what,
        url_connect_timeout,
        timeouts: Timeouts {
            connect: url_connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            stall: DEFAULT_STALL_TIMEOUT,
        },
    })
}

/// The password of a URL, to keep it out of messages.
fn password_in(text: &str) -> Option<String> {
    let config = tokio_postgres::Config::from_str(text).ok();
    config
        .and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        })
        .or_else(|| {
            // The URL form did not parse (a mistyped scheme such as `mysql://` or `postgres//`):
            // take what sits between `user:` and `@`.
            let rest = text.split_once("//").map_or(text, |(_, rest)| rest);
            let userinfo = rest.split_once('@')?.0;
            userinfo.split_once(':').map(|(_, p)| p.to_owned())
        })
        .filter(|p| !p.is_empty())
}

/// Runs `work` (statements on `client`) in a transaction that sets `READ_SETTINGS` for
/// itself: text renderings of times, dates and floats do not depend on the server's or the
/// role's defaults, and nothing outlives the transaction, so reads work through a
/// transaction-mode pooler (the statements tokio-postgres prepares live and die inside it).
pub async fn reading<T>(
    client: &Client,
    work: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    client
        .batch_execute(&format!("begin; {}", set_statements(true)))
        .await?;
    match work.await {
        Ok(value) => {
            client.batch_execute("commit").await?;
            Ok(value)
        }
        Err(error) => {
            let _ = client.batch_execute("rollback").await;
            Err(error)
        }
    }
}

/// Takes a connection from a pool, connecting (TCP, TLS, authentication, the session's
/// settings) within the pool's connect bound: past it, [`DbError::ConnectTimeout`] names the
/// setting that changes it.
pub async fn connect(
    pool: &Pool,
    what: &'static str,
) -> Result<deadpool_postgres::Object, DbError> {
    let bound = pool.timeouts.connect;
    let Ok(got) = tokio::time::timeout(bound, pool.get()).await else {
        return Err(DbError::ConnectTimeout {
            what,
            target: pool.target.to_string(),
            secs: bound.as_secs(),
            setting: match pool.url_connect_timeout {
                Some(_) => format!("`connect_timeout` in `{what}.url`"),
                None => format!("`{what}.connect_timeout`"),
            },
        });
    };
    got.map_err(|error| DbError::Connect {
        what,
        target: pool.target.to_string(),
        source: match error {
            deadpool_postgres::PoolError::Backend(cause)
            | deadpool_postgres::PoolError::PostCreateHook(HookError::Backend(cause)) => {
                Box::new(cause)
            }
            other => Box::new(other),
        },
    })
}

/// Quotes an identifier for SQL: `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL: `'text'`, with embedded quotes doubled.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The latest migration version in this build.
pub(crate) fn latest_migration() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_ident("order_id"), "\"order_id\"");
        assert_eq!(
            quote_ident("a\"; drop table x; --"),
            "\"a\"\"; drop table x; --\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    /// The reason of a URL that cannot be used.
    fn unusable(url: &str) -> String {
        match pool(&Secret::new(url), "source", 1) {
            Err(error @ DbError::Url { .. }) => error.to_string(),
            Err(other) => panic!("not a URL error: {other}"),
            Ok(_) => panic!("{url} was accepted"),
        }
    }

    #[test]
    fn unusable_urls_name_key_and_parameter_not_the_password() {
        let reason = unusable("postgres://u:hunter2-pw@db/x?sslmode=verify&sslrootcert=/ca.pem");
        assert!(
            reason.contains("`source.url`") && reason.contains("`sslmode`"),
            "{reason}"
        );
        let reason = unusable("postgres://u:hunter2-pw@db/x?sslcert=/c.pem");
        assert!(reason.contains("`sslkey`"), "{reason}");
        let reason =
            unusable("postgres://u:hunter2-pw@db/x?sslmode=verify-ca&sslrootcert=/none.pem");
        assert!(
            reason.contains("`sslrootcert`") && reason.contains("/none.pem"),
            "{reason}"
        );
        let reason = unusable("postgres://u:hunter2-pw@db/x?sslcrl=/crl.pem");
        assert!(reason.contains("sslcrl"), "{reason}");
        let reason = unusable("postgres://u:hunter2-pw@db:notaport/x");
        assert!(!reason.contains("hunter2"), "{reason}");
        let reason = unusable("host=db password='hunter2-pw' port=x");
        assert!(!reason.contains("hunter2"), "{reason}");
        // A mistyped scheme is echoed by the parser: never with the password.
        for url in [
            "mysql://postgres:hunter2-pw@127.0.0.1/x",
            "postgresql:/postgres:hunter2-pw@127.0.0.1/x",
            "postgres//postgres:hunter2-pw@127.0.0.1/x",
            "http://postgres:hunter2-pw@127.0.0.1/x",
        ] {
            let reason = unusable(url);
            assert!(!reason.contains("hunter2"), "{url}: {reason}");
        }
    }

    #[test]
    fn unix_socket_urls_build_a_pool() {
        for url in [
            "postgres:///shop?host=/var/run/postgresql&sslmode=verify-full",
            "postgres://%2Fvar%2Frun%2Fpostgresql/shop",
            "host=/var/run/postgresql dbname=shop sslmode=require",
        ] {
            assert!(pool(&Secret::new(url), "source", 1).is_ok(), "{url}");
        }
    }
}

//! The run lock: at most one run sends for a connector, and at most one for a dataset.
//!
//! Two session advisory locks, taken in a fixed order (the connector's, then the dataset's),
//! on a ledger connection of their own that lives as long as the run. The ledger's no-resend
//! promise is per dataset, so two connectors that send to one dataset take turns. A lock is
//! only as good as its session: the run checks before each page and each commit that the
//! session still holds both locks (same backend, locks granted), and stops with [`LockLost`] when it does not. Behind a
//! transaction-mode pooler a session lock means nothing (the next statement may run on another
//! backend that another client shares), so taking the lock refuses such a URL.
//!
//! The lock's session turns off `idle_session_timeout` for itself, as every ledger session
//! does (`db::pool`); an administrator's `pg_terminate_backend` or a server restart still
//! ends it, and the run then stops.

use std::time::{Duration, Instant};

use tokio_postgres::types::Type;

use crate::db::Pool;

use crate::config::Config;
use crate::db::{self, DbError};

/// The run lost its lock: its session ended (`pg_terminate_backend`, a server-side timeout, a
/// restart) or moved to another backend. Another run may hold the lock now, so this one sends
/// nothing more.
#[derive(Debug, thiserror::Error)]
#[error(
    "the run's lock on {held} was lost ({why}); stopping before sending anything more \
     (orders of the page in flight are sent again by the next run, with the same event_id)"
)]
pub struct LockLost {
    /// What the lock was on.
    held: String,
    /// How it was lost.
    why: String,
    /// Whether the ledger stopped answering (rather than ending the session or moving it).
    stalled: bool,
}

impl LockLost {
    /// Whether the lock's session stopped answering within `ledger.stall_timeout`: the ledger's
    /// database is not to be waited on again by this run.
    pub fn stalled(&self) -> bool {
        self.stalled
    }
}

/// The session holding a lock a run waited for, as `pg_locks` joined with `pg_stat_activity`
/// show it (columns the ledger role may not see are `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    /// Its backend's process id (`pg_terminate_backend` takes it).
    pub pid: i32,
    /// Its `application_name` (`ocapi` for ocapi's own runs).
    pub application_name: Option<String>,
    /// Its client's address (`None` for a Unix socket or a role that may not see it).
    pub client_addr: Option<String>,
    /// When its session began (RFC 3339, UTC): when the lock was taken at the latest, since a
    /// session lock lives as long as its session and ocapi takes it on a session of its own.
    pub backend_start: Option<String>,
    /// When its current transaction began, if it is in one.
    pub xact_start: Option<String>,
    /// Seconds since `backend_start`, by the ledger database's clock.
    pub held_secs: Option<f64>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Instants as every text for people gives them (`2026-12-07 01:27:03 UTC`).
        let or = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "unknown".to_owned(), crate::human::instant_text)
        };
        write!(
            f,
            "process {} (application_name {:?}, client {}, session started {}, transaction \
             started {})",
            self.pid,
            self.application_name.as_deref().unwrap_or(""),
            self.client_addr
                .as_deref()
                .unwrap_or("local or not visible"),
            or(&self.backend_start),
            self.xact_start
                .as_deref()
                .map_or_else(|| "none open".to_owned(), crate::human::instant_text),
        )
    }
}

/// Whole seconds as people read durations everywhere (`2s`, `5m`, `1.0h`).
fn human_secs(secs: impl std::borrow::Borrow<u64>) -> String {
    crate::human::duration(*secs.borrow() as f64)
}

/// Why a run could not take its lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run of the same connector, or another run sending to the same dataset, holds
    /// the lock. Not a failure: the run is `skipped` (exit 0) and the next run resumes.
    #[error(
        "another run for {holder} holds its lock (waited {waited}{held_by}); \
         try again when it finishes, or raise `connector.lock_wait`",
        held_by = .by.as_ref().map(|h| format!("; held by {h}")).unwrap_or_default(),
        waited = human_secs(.waited_secs)
    )]
    Held {
        /// What the lock is on: `connector "name"` or `dataset 1234`.
        holder: String,
        /// How long ocapi waited, in seconds (`connector.lock_wait`).
        waited_secs: u64,
        /// The session holding it, when the ledger role can see it (boxed: errors stay small).
        by: Option<Box<Holder>>,
    },
    /// The lock has been held longer than `connector.stuck_run_after`: the run holding it may
    /// be stuck (exit 1, and an alert).
    #[error(
        "another run for {holder} has held its lock since {since} ({held}, longer than \
         `connector.stuck_run_after` = {limit}): {by}; if that run is stuck, end it with \
         `select pg_terminate_backend({pid})` on the ledger database (its orders in flight are \
         sent again by the next run)",
        since = .by.backend_start.as_deref().map_or_else(|| "unknown".to_owned(), crate::human::instant_text),
        held = crate::human::duration(.by.held_secs.unwrap_or(0.0)),
        limit = human_secs(.limit_secs),
        pid = .by.pid
    )]
    Stuck {
        /// What the lock is on.
        holder: String,
        /// `connector.stuck_run_after`, in seconds.
        limit_secs: u64,
        /// The session holding it (boxed: errors stay small).
        by: Box<Holder>,
    },
    /// `ledger.url` goes through a transaction-mode pooler, where a session lock means nothing:
    /// a configuration error (exit 2).
    #[error(
        "`ledger.url` goes through a transaction-mode connection pooler: two connections \
         ran on one server session, so the run's lock and the ledger's transactions \
         cannot be trusted; set `ledger.url` to a direct connection (or a session-mode \
         pool) to the same database, and keep the pooled URL in `source.url`"
    )]
    TransactionPooler,
    /// The ledger database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl LockError {
    /// Whether only a config change fixes it.
    pub fn is_config(&self) -> bool {
        match self {
            Self::TransactionPooler => true,
            Self::Db(error) => matches!(error, DbError::Url { .. }),
            Self::Held { .. } | Self::Stuck { .. } => false,
        }
    }
}

/// The connector's and the dataset's locks, held by one session for the length of a run.
pub(crate) struct RunLock {
    /// The session holding the locks; dropping it closes the session and frees them.
    client: deadpool_postgres::ClientWrapper,
    /// The backend that took the locks.
    pid: i32,
    /// The lock keys, as hashed by `hashtext`.
    keys: Vec<String>,
    /// For messages.
    held: String,
    /// `ledger.stall_timeout`: how long [`RunLock::check`] waits for the session's answer.
    stall: Duration,
}

/// The advisory lock key of a connector.
fn connector_key(name: &str) -> String {
    format!("ocapi:{name}")
}

/// The advisory lock key of a dataset.
fn dataset_key(dataset_id: &str) -> String {
    format!("ocapi-dataset:{dataset_id}")
}

impl RunLock {
    /// Takes the connector's lock, then the dataset's, waiting up to `connector.lock_wait`
    /// for both. The caller has refused a transaction-mode pooler first
    /// ([`refuse_transaction_pooler`]).
    pub(crate) async fn acquire(pool: &Pool, config: &Config) -> Result<Self, LockError> {
        let object = db::connect(pool, "ledger").await?;
        let client = deadpool_postgres::Object::take(object);
        // Each statement waits at most `ledger.stall_timeout` (issue 23); a stalled one fails
        // the run, and dropping `client` closes the session, which frees what it took.
        let pid: i32 = pool
            .within("taking the run's lock", async {
                client
                    .query_one("select pg_backend_pid()", &[])
                    .await
                    .map_err(DbError::query("cannot take the run's lock"))
            })
            .await?
            .get(0);
        // The lock lives as long as the session; ledger sessions turn off a server-side
        // `idle_session_timeout` for themselves (`db::pool`), so waiting on the destination
        // does not end it.
        let wait = config.connector.lock_wait;
        let deadline = Instant::now() + wait;
        let name = &config.connector.name;
        let dataset = &config.destination.dataset_id;
        let steps = [
            (connector_key(name), format!("connector {name:?}")),
            (dataset_key(dataset), format!("dataset {dataset}")),
        ];
        let mut keys = Vec::new();
        for (key, what) in steps {
            loop {
                let row = pool
                    .within("taking the run's lock", async {
                        client
                            .query_one("select pg_try_advisory_lock(hashtext($1))", &[&key])
                            .await
                            .map_err(DbError::query("cannot take the run's lock"))
                    })
                    .await?;
                if row.get::<_, bool>(0) {
                    break;
                }
                if Instant::now() >= deadline {
                    let by = holder(&client, &key).await?;
                    let limit = config.connector.stuck_run_after;
                    return Err(match by {
                        Some(by) if by.held_secs.is_some_and(|s| s > limit.as_secs_f64()) => {
                            LockError::Stuck {
                                holder: what,
                                limit_secs: limit.as_secs(),
                                by: Box::new(by),
                            }
                        }
                        by => LockError::Held {
                            holder: what,
                            waited_secs: wait.as_secs(),
                            by: by.map(Box::new),
                        },
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            keys.push(key);
        }
        Ok(Self {
            client,
            pid,
            keys,
            held: format!("connector {name:?} and dataset {dataset}"),
            stall: pool.timeouts().stall,
        })
    }

    /// Without a round trip: false once the lock's connection is known to be closed (the
    /// server ended the session). Checked before each request.
    pub(crate) fn is_held(&self) -> bool {
        !self.client.is_closed()
    }

    /// Fails with [`LockLost`] unless the session that took the locks still holds them.
    /// Called before each page is sent and before each page commits.
    pub(crate) async fn check(&self) -> Result<(), LockLost> {
        let lost = |why: String| LockLost {
            held: self.held.clone(),
            why,
            stalled: false,
        };
        let keys: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] =
            [(&self.keys, Type::TEXT_ARRAY)];
        let asked = self.client.query_typed_one(
            "select pg_backend_pid(), count(*) from pg_locks l
             where l.locktype = 'advisory' and l.pid = pg_backend_pid() and l.granted
               and l.objsubid = 1
               and ((l.classid::int8 << 32) | l.objid::int8)
                   = any(select hashtext(k)::int8 from unnest($1::text[]) k)",
            &keys,
        );
        let row = tokio::time::timeout(self.stall, asked)
            .await
            .map_err(|_| LockLost {
                stalled: true,
                ..lost(format!(
                    "its session sent nothing for {}s: a stalled server or network \
                     (`ledger.stall_timeout`)",
                    self.stall.as_secs()
                ))
            })?
            .map_err(|error| lost(format!("its session ended: {error}")))?;
        let pid: i32 = row.get(0);
        let count: i64 = row.get(1);
        if pid != self.pid {
            return Err(lost(format!(
                "its statements now run on another backend ({pid}, not {}): a pooler in between",
                self.pid
            )));
        }
        if usize::try_from(count).ok() != Some(self.keys.len()) {
            return Err(lost("its session no longer holds it".to_owned()));
        }
        Ok(())
    }
}

/// The session holding the advisory lock on `key` in this database, if the ledger role can
/// see it.
async fn holder(client: &tokio_postgres::Client, key: &str) -> Result<Option<Holder>, DbError> {
    let utc = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";
    let sql = format!(
        "select l.pid, a.application_name, host(a.client_addr),
                to_char(a.backend_start at time zone 'UTC', {utc}),
                to_char(a.xact_start at time zone 'UTC', {utc}),
                extract(epoch from now() - a.backend_start)::float8
         from pg_locks l left join pg_stat_activity a on a.pid = l.pid
         where l.locktype = 'advisory' and l.granted and l.objsubid = 1
           and l.database = (select oid from pg_database where datname = current_database())
           and ((l.classid::int8 << 32) | l.objid::int8) = hashtext($1)::int8
         limit 1"
    );
    let row = client
        .query_opt(&sql, &[&key])
        .await
        .map_err(DbError::query("cannot read who holds the run's lock"))?;
    Ok(row.map(|r| Holder {
        pid: r.get(0),
        application_name: r.get(1),
        client_addr: r.get(2),
        backend_start: r.get(3),
        xact_start: r.get(4),
        held_secs: r.get(5),
    }))
}

/// Fails when `pool`'s connections share backends between statements, as a transaction-mode
/// pooler (PgBouncer's `pool_mode = transaction`, hosted "pooled" ports) does: two client
/// connections open at once are two sessions, so two backends, unless something multiplexes
/// them. Simple-protocol statements only, which any pooler passes. `pool` must allow two
/// connections.
pub(crate) async fn refuse_transaction_pooler(pool: &Pool) -> Result<(), LockError> {
    let first = db::connect(pool, "ledger").await?;
    let second = db::connect(pool, "ledger").await?;
    let mut pids = Vec::new();
    for client in [&first, &second] {
        let messages = pool
            .within("reading the ledger's backend", async {
                client
                    .simple_query("select pg_backend_pid()")
                    .await
                    .map_err(DbError::query("cannot read the ledger's backend"))
            })
            .await?;
        pids.extend(messages.into_iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        }));
    }
    if pids.len() == 2 && pids[0] == pids[1] {
        return Err(LockError::TransactionPooler);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_and_dataset_keys_do_not_collide() {
        assert_ne!(connector_key("1234"), dataset_key("1234"));
        assert_eq!(connector_key("stores"), "ocapi:stores");
    }
}

//! The README's exit-code table, one row per line, each run through the binary (issue 15):
//! 0 completed, 1 failed, 2 configuration or usage, 3 degraded. Rows assert on the exit code
//! only, never on message text; `watch` is among them because it must stop on a configuration
//! error instead of retrying it. After the table, exits whose message matters as much as the
//! code: what a flag that cannot be honoured names.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use ocapi::sandbox::Faults;

use crate::support::{insert_orders, migrate, ocapi, sandbox, TestDb, TOKEN};

/// What a row needs kept alive while the binary runs: the database, a stand-in, a connection
/// holding a lock.
struct Setup {
    /// The test database.
    db: TestDb,
    /// The config file.
    path: PathBuf,
    /// The command line after `--config PATH`.
    args: Vec<&'static str>,
    /// Anything else the row keeps alive (a stand-in, a lock's connection).
    _keep: Option<Box<dyn std::any::Any + Send>>,
}

/// A migrated file-destination connector with three valid orders.
async fn ready(args: &[&'static str]) -> Setup {
    let db = TestDb::new().await;
    let config = db.config("", None);
    migrate(&config).await;
    insert_orders(&db, "E", 3, "2026-11-01T00:00:00Z").await;
    let path = db.config_path();
    Setup {
        db,
        path,
        args: args.to_vec(),
        _keep: None,
    }
}

/// A meta destination at the stand-in; `token` is what the config's file holds.
async fn meta(args: &[&'static str], token: &str) -> Setup {
    let db = TestDb::new().await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), token, "");
    migrate(&config).await;
    insert_orders(&db, "M", 3, "2026-11-01T00:00:00Z").await;
    let path = db.config_path();
    Setup {
        db,
        path,
        args: args.to_vec(),
        _keep: Some(Box::new(graph)),
    }
}

/// Each row: the README's situation, how to make it, and its exit code.
#[tokio::test]
async fn every_row_of_the_readme_exit_code_table_exits_with_its_code() {
    let mut failures = Vec::new();
    for Row {
        name,
        code: expected,
        setup,
    } in rows()
    {
        let setup = setup().await;
        let out = ocapi(&setup.path, &setup.args).await;
        if out.status.code() != Some(expected) {
            failures.push(format!(
                "{name}: exit {:?}, expected {expected}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        drop(setup.db);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A row's situation, being made.
type Making = Pin<Box<dyn Future<Output = Setup>>>;

/// One row of the table: what happens, the code the README gives it, and how to make it.
struct Row {
    /// The situation, as the README names it.
    name: &'static str,
    /// Its exit code.
    code: i32,
    /// Makes the situation.
    setup: fn() -> Making,
}

/// A row.
fn row(name: &'static str, code: i32, setup: fn() -> Making) -> Row {
    Row { name, code, setup }
}

/// The rows, each with its own set-up.
fn rows() -> Vec<Row> {
    vec![
        row("a run that completed", 0, || Box::pin(ready(&["run"]))),
        row("a dry run", 0, || Box::pin(ready(&["run", "--dry-run"]))),
        row("check of a ready connector", 0, || {
            Box::pin(ready(&["check"]))
        }),
        row("a degraded run (--max-invalid-ratio passed)", 3, || {
            Box::pin(with_an_invalid_order(&[
                "run",
                "--max-invalid-ratio",
                "0.1",
            ]))
        }),
        row("a backfill that is degraded", 3, || {
            Box::pin(with_an_invalid_order(&[
                "backfill",
                "--from",
                "2000-01-01",
                "--to",
                "2100-01-01",
                "--max-invalid-ratio",
                "0.1",
            ]))
        }),
        row("an unset access token variable", 2, || {
            Box::pin(token_variable_unset(&["run"]))
        }),
        row("watch with an unset access token variable stops", 2, || {
            Box::pin(token_variable_unset(&["watch", "--interval", "1s"]))
        }),
        row("an unreadable access token file", 2, || {
            Box::pin(async {
                let setup = meta(&["run"], TOKEN).await;
                std::fs::remove_file(setup.db.dir.join("token")).unwrap();
                setup
            })
        }),
        row("an unmigrated ledger", 2, || Box::pin(unmigrated(&["run"]))),
        row("a watch against an unmigrated ledger stops", 2, || {
            Box::pin(unmigrated(&["watch", "--interval", "1s"]))
        }),
        row("an unknown config key", 2, || {
            Box::pin(async {
                let setup = ready(&["run"]).await;
                setup
                    .db
                    .edit_config_text(&[("[connector]\n", "[connector]\nnmae = \"typo\"\n")]);
                setup
            })
        }),
        row("a mapped column that does not exist", 2, || {
            Box::pin(async {
                let setup = ready(&["run"]).await;
                setup
                    .db
                    .edit_config_text(&[("email = \"email\"", "email = \"e_mail\"")]);
                setup
            })
        }),
        row("a config file that does not exist", 2, || {
            Box::pin(async {
                let mut setup = ready(&["run"]).await;
                setup.path = setup.db.dir.join("nowhere.toml");
                setup
            })
        }),
        row("a bad flag", 2, || {
            Box::pin(ready(&["run", "--no-such-flag"]))
        }),
        row("reconcile with --to before --from", 2, || {
            Box::pin(ready(&[
                "reconcile",
                "--from",
                "2026-11-02",
                "--to",
                "2026-11-01",
            ]))
        }),
        row("a lock held by another run: the run is skipped", 0, || {
            Box::pin(lock_held(&[]))
        }),
        row("meta rejects the access token", 1, || {
            Box::pin(meta(&["run"], "a-token-meta-does-not-know"))
        }),
        row("the source database is unreachable", 1, || {
            Box::pin(source_unreachable())
        }),
        row("explain of an order that is nowhere", 1, || {
            Box::pin(ready(&["explain", "NOPE-1"]))
        }),
        row("watch with a zero interval", 2, || {
            Box::pin(ready(&["watch", "--interval", "0s"]))
        }),
        row("reconcile from a day after today", 2, || {
            Box::pin(ready(&["reconcile", "--from", "2999-01-01"]))
        }),
        row(
            "a lock held longer than connector.stuck_run_after",
            1,
            || {
                Box::pin(lock_held(&[(
                    "lock_wait = \"2s\"",
                    "lock_wait = \"2s\"\nstuck_run_after = \"1s\"",
                )]))
            },
        ),
    ]
}

/// [`ready`] for `args`, and an order without a total, which is invalid: 1 of 4.
async fn with_an_invalid_order(args: &[&'static str]) -> Setup {
    let setup = ready(args).await;
    setup
        .db
        .exec(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at)
             values ('BAD-1', now() - interval '1 hour', '2026-11-02T00:00:00Z')",
        )
        .await;
    setup
}

/// [`meta`] for `args`, its token named by a variable that is not set.
async fn token_variable_unset(args: &[&'static str]) -> Setup {
    let setup = meta(args, TOKEN).await;
    let text = std::fs::read_to_string(&setup.path).unwrap();
    let text: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("access_token_file"))
        .collect();
    std::fs::write(
        &setup.path,
        text.join("\n").replace(
            "[destination]\n",
            "[destination]\naccess_token_env = \"OCAPI_TEST_TOKEN_NOT_SET\"\n",
        ),
    )
    .unwrap();
    setup
}

/// A config for `args` whose ledger was never migrated.
async fn unmigrated(args: &[&'static str]) -> Setup {
    let db = TestDb::new().await;
    db.config("", None);
    let path = db.config_path();
    Setup {
        db,
        path,
        args: args.to_vec(),
        _keep: None,
    }
}

/// `run` while another run of the connector (a session) holds its advisory lock, with the
/// config edited by `edits`.
async fn lock_held(edits: &[(&str, &str)]) -> Setup {
    let mut setup = ready(&["run"]).await;
    if !edits.is_empty() {
        // (a run holding the lock longer than the limit: the waiting run waits 2s)
        setup.db.edit_config_text(edits);
    }
    let holder = crate::support::connect(&setup.db.url).await;
    holder
        .execute(
            "select pg_advisory_lock(hashtext('ocapi:stores-test'))",
            &[],
        )
        .await
        .unwrap();
    setup._keep = Some(Box::new(holder));
    setup
}

/// `run` with the source moved to a closed port, the ledger where it was.
async fn source_unreachable() -> Setup {
    let setup = ready(&["run"]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = std::fs::read_to_string(&setup.path).unwrap();
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("url = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    let closed_url =
        format!("url = \"postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=2\"");
    let ledger = format!("[ledger]\nurl = \"{url}\"\n\n[destination]\n");
    setup.db.edit_config_text(&[
        (&format!("url = \"{url}\""), &closed_url),
        ("[destination]\n", &ledger),
    ]);
    setup
}

/// Trial finding 9: `ocapi sandbox --listen ADDR` on a port already taken names the address
/// and the flag, and exits 2 (README's exit table: a bad flag), not "cannot write output".
#[test]
fn sandbox_on_a_taken_port_says_it_cannot_listen_there() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocapi"))
        .args(["sandbox", "--listen", &addr])
        .env_remove("OCAPI_CONFIG")
        .env("OCAPI_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot write output"), "{stderr}");
    drop(taken);
}

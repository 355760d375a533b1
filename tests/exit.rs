//! The README's exit-code table, one row per line, each run through the binary (issue 15):
//! 0 completed, 1 failed, 2 configuration or usage, 3 degraded. Rows assert on the exit code
//! only, never on message text; `watch` is among them because it must stop on a configuration
//! error instead of retrying it.

use std::path::PathBuf;

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
    for (row, &(name, expected)) in ROWS.iter().enumerate() {
        let setup = setup(row).await;
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

/// The rows: what happens, and the code the README gives it.
const ROWS: &[(&str, i32)] = &[
    ("a run that completed", 0),
    ("a dry run", 0),
    ("check of a ready connector", 0),
    ("a degraded run (--max-invalid-ratio passed)", 3),
    ("a backfill that is degraded", 3),
    ("an unset access token variable", 2),
    ("watch with an unset access token variable stops", 2),
    ("an unreadable access token file", 2),
    ("an unmigrated ledger", 2),
    ("a watch against an unmigrated ledger stops", 2),
    ("an unknown config key", 2),
    ("a mapped column that does not exist", 2),
    ("a config file that does not exist", 2),
    ("a bad flag", 2),
    ("reconcile with --to before --from", 2),
    ("a lock held by another run: the run is skipped", 0),
    ("meta rejects the access token", 1),
    ("the source database is unreachable", 1),
    ("explain of an order that is nowhere", 1),
    ("watch with a zero interval", 2),
    ("reconcile from a day after today", 2),
    ("a lock held longer than connector.stuck_run_after", 1),
];

/// Builds row `row`'s situation.
async fn setup(row: usize) -> Setup {
    match row {
        0 => ready(&["run"]).await,
        1 => ready(&["run", "--dry-run"]).await,
        2 => ready(&["check"]).await,
        3 | 4 => {
            let args: &[&'static str] = if row == 3 {
                &["run", "--max-invalid-ratio", "0.1"]
            } else {
                &[
                    "backfill",
                    "--from",
                    "2000-01-01",
                    "--to",
                    "2100-01-01",
                    "--max-invalid-ratio",
                    "0.1",
                ]
            };
            let setup = ready(args).await;
            // an order without a total is invalid: 1 of 4
            setup
                .db
                .exec(
                    "insert into shop.store_transactions (order_id, purchased_at, updated_at)
                     values ('BAD-1', now() - interval '1 hour', '2026-11-02T00:00:00Z')",
                )
                .await;
            setup
        }
        5 | 6 => {
            let setup = meta(
                if row == 5 {
                    &["run"]
                } else {
                    &["watch", "--interval", "1s"]
                },
                TOKEN,
            )
            .await;
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
        7 => {
            let setup = meta(&["run"], TOKEN).await;
            std::fs::remove_file(setup.db.dir.join("token")).unwrap();
            setup
        }
        8 | 9 => {
            let db = TestDb::new().await;
            db.config("", None);
            let path = db.config_path();
            let args: &[&'static str] = if row == 8 {
                &["run"]
            } else {
                &["watch", "--interval", "1s"]
            };
            Setup {
                db,
                path,
                args: args.to_vec(),
                _keep: None,
            }
        }
        10 => {
            let setup = ready(&["run"]).await;
            setup
                .db
                .edit_config_text(&[("[connector]\n", "[connector]\nnmae = \"typo\"\n")]);
            setup
        }
        11 => {
            let setup = ready(&["run"]).await;
            setup
                .db
                .edit_config_text(&[("email = \"email\"", "email = \"e_mail\"")]);
            setup
        }
        12 => {
            let mut setup = ready(&["run"]).await;
            setup.path = setup.db.dir.join("nowhere.toml");
            setup
        }
        13 => ready(&["run", "--no-such-flag"]).await,
        14 => ready(&["reconcile", "--from", "2026-11-02", "--to", "2026-11-01"]).await,
        15 => {
            let mut setup = ready(&["run"]).await;
            // another run of the connector: a session holding its advisory lock
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
        16 => meta(&["run"], "a-token-meta-does-not-know").await,
        17 => {
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
            // the source moves to a closed port; the ledger stays where it was
            let closed_url = format!(
                "url = \"postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=2\""
            );
            let ledger = format!("[ledger]\nurl = \"{url}\"\n\n[destination]\n");
            setup.db.edit_config_text(&[
                (&format!("url = \"{url}\""), &closed_url),
                ("[destination]\n", &ledger),
            ]);
            setup
        }
        18 => ready(&["explain", "NOPE-1"]).await,
        19 => ready(&["watch", "--interval", "0s"]).await,
        20 => ready(&["reconcile", "--from", "2999-01-01"]).await,
        21 => {
            let mut setup = ready(&["run"]).await;
            setup.db.edit_config_text(&[(
                "lock_wait = \"2s\"",
                "lock_wait = \"2s\"\nstuck_run_after = \"1s\"",
            )]);
            // a run holding the lock longer than the limit: the waiting run waits 2s
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
        _ => unreachable!("a row without a setup"),
    }
}

//! The documentation runs (issue 26 item 4): every ```sql block of README.md and docs/*.md
//! against a migrated ledger holding a run's rows, and every `ocapi …` line of their ```sh and
//! ```console blocks against the local stand-in. A fenced block that is not meant to run uses
//! another info string (```text, ```toml, ```ini, ```yaml). And docs/configuration.md lists
//! every key the config parser accepts.

use crate::support::retail::{documentation, fenced_blocks};
use crate::support::{insert_orders, migrate, TestDb};

/// Every SQL block of the documentation runs, in order (docs/source.md's tables, the README's
/// view, then the other pages), against a migrated ledger holding a run's rows, in a database
/// with the demo's source table. Blocks that create roles and grant them (cluster objects that
/// tests must not leave behind) are run by `tests/conn.rs`'s
/// `each_command_works_as_a_role_with_only_the_readme_grants`; every other block, DDL for the
/// user's source included, runs here, one statement at a time so that a failure names it.
#[tokio::test]
async fn every_sql_block_of_the_docs_runs() {
    // GIVEN the docs' connector `stores`, run once
    let db = TestDb::new().await;
    db.config("", None);
    let config = db.edit_config(&[("name = \"stores-test\"", "name = \"stores\"")]);
    migrate(&config).await;
    insert_orders(&db, "Q", 3, "2026-11-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set email = null, phone = null, first_name = null, last_name = null, loyalty_id = null, city = null, zip = null, birth_date = null, gender = null, state = null where order_id = 'Q3'")
        .await;
    crate::support::run(&config).await;

    // WHEN every block runs
    let mut ran = Vec::new();
    let mut daily_rows = None;
    for (path, text) in documentation() {
        for block in fenced_blocks(&text, "sql") {
            if block.contains("create role") || block.contains("grant ") {
                continue;
            }
            for statement in block.split(";\n").map(str::trim) {
                let code: String = statement
                    .lines()
                    .filter(|line| !line.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n");
                if code.trim().is_empty() {
                    continue;
                }
                let rows = db
                    .client
                    .simple_query(statement)
                    .await
                    .unwrap_or_else(|error| panic!("{path}: SQL fails: {error:?}\n{statement}"));
                let count = rows
                    .iter()
                    .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                    .count();
                if code.contains("from ocapi.ledger_daily") {
                    daily_rows = Some(count);
                }
            }
            ran.push(path.clone());
        }
    }

    // THEN each ran: the README's view, the source's tables and indexes, the analyst queries
    for path in [
        "README.md",
        "docs/source.md",
        "docs/reconciliation.md",
        "docs/ledger.md",
    ] {
        assert!(ran.iter().any(|p| p == path), "no SQL block ran in {path}");
    }
    // AND last week's daily figures hold the run's day
    assert_eq!(daily_rows, Some(1));
}

/// The `ocapi …` lines of the ```sh and ```console blocks of `text` (a `$ ` prompt, variable
/// assignments before the command and `\` continuations allowed), in order.
fn command_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for info in ["sh", "console"] {
        for block in fenced_blocks(text, info) {
            let mut pending = String::new();
            for raw in block.lines() {
                let line = raw.strip_prefix("$ ").unwrap_or(raw);
                if let Some(head) = line.strip_suffix('\\') {
                    pending.push_str(head);
                    continue;
                }
                pending.push_str(line);
                let command = std::mem::take(&mut pending);
                let program = command.split_whitespace().find(|word| !word.contains('='));
                if program == Some("ocapi") {
                    lines.push(command.trim().to_owned());
                }
            }
        }
    }
    lines
}

/// The subcommand of an `ocapi …` line (the first word after `ocapi` that is no flag or flag
/// value of the global options).
fn subcommand(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "ocapi").unwrap_or(0);
    let mut rest = words[at + 1..].iter();
    while let Some(word) = rest.next() {
        match *word {
            "--config" | "--log-format" | "--metrics-file" => {
                rest.next();
            }
            w if w.starts_with('-') => {}
            w => return w.to_owned(),
        }
    }
    String::new()
}

/// The token `ocapi sandbox` accepts unless told otherwise, as the docs use it.
const STAND_IN_TOKEN: &str = "sandbox-token";

/// Subcommands that run until a signal (`watch`, `sandbox`) or build their own database and
/// stand-in (`demo`): a documented line of theirs is checked by ocapi's own command-line parser
/// only. What they do is tested where it is promised: `watch` in tests/ops.rs and
/// tests/unattended.rs, `sandbox` by every test that starts the stand-in, `demo` by
/// `scripts/demo` and tests/docker.rs's compose run.
const PARSED_ONLY: &[&str] = &["watch", "sandbox", "demo"];

/// Every `ocapi …` line of the documentation's ```sh and ```console blocks runs as printed,
/// in order, in a directory of its own, against the README's retail view and the local
/// stand-in, with the variables the README exports: the first sync of the README (init,
/// migrate, check, dry run, run, reconcile) and the runbook's commands after it. Each exits 0.
#[tokio::test]
async fn every_ocapi_command_line_of_the_docs_runs_against_the_stand_in() {
    // GIVEN the retail warehouse of docs/source.md and the README's view, and the stand-in
    let db = TestDb::new().await;
    crate::support::retail::build(&db).await;
    // The stand-in as the docs start it: its default token, `sandbox-token`.
    let stand_in = ocapi::sandbox::Sandbox::start(
        "127.0.0.1:0".parse().unwrap(),
        ocapi::sandbox::SandboxOptions {
            access_token: STAND_IN_TOKEN.to_owned(),
            dataset_id: None,
            app_secret: None,
            faults: ocapi::sandbox::Faults::default(),
            meta_side: ocapi::sandbox::MetaSide::default(),
        },
    )
    .await
    .unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ocapi"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // WHEN every documented line runs
    let mut ran = Vec::new();
    for (doc, text) in documentation() {
        for line in command_lines(&text) {
            let sub = subcommand(&line);
            if PARSED_ONLY.contains(&sub.as_str()) {
                let words = line
                    .split_whitespace()
                    .skip_while(|w| *w != "ocapi")
                    .take_while(|w| *w != "&" && *w != ">" && *w != "|");
                if let Err(error) = <ocapi::cli::Cli as clap::Parser>::try_parse_from(words) {
                    panic!("{doc}: `{line}` does not parse: {error}");
                }
                continue;
            }
            let dir = db.dir.clone();
            let (shell_path, url, shell_line) = (path.clone(), db.url.clone(), line.clone());
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("sh")
                    .args(["-c", &shell_line])
                    .current_dir(dir)
                    .env("PATH", shell_path)
                    .env("OCAPI_SOURCE_URL", url)
                    .env("META_ACCESS_TOKEN", STAND_IN_TOKEN)
                    .env("OCAPI_LOG", "warn")
                    .env_remove("OCAPI_CONFIG")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{doc}: `{line}`\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // The README's way to try a config without Meta: its base_url at the stand-in.
            let config = db.dir.join("connector.toml");
            if sub == "init" {
                let text = std::fs::read_to_string(&config).unwrap();
                let offered = text
                    .lines()
                    .find(|l| l.starts_with("# base_url = "))
                    .expect("init offers base_url")
                    .to_owned();
                let text = text.replace(&offered, &format!("base_url = {:?}", stand_in.base_url()));
                std::fs::write(&config, text).unwrap();
            }
            ran.push(sub);
        }
    }

    // THEN the README's first sync ran, in order, and the runbook's explain and the stand-in
    // page's quality after it
    let first_sync = ["init", "migrate", "check", "run", "run", "reconcile"];
    assert!(
        ran.windows(first_sync.len()).any(|w| w == first_sync),
        "{ran:?}"
    );
    for sub in ["explain", "quality"] {
        assert!(ran.contains(&sub.to_owned()), "{sub} in {ran:?}");
    }
    // AND the dry run printed the three sales the run then sent; the walk-ins were not sent
    let printed = crate::support::read_ndjson(&db.dir.join("events.ndjson"));
    assert_eq!(printed.len(), 3, "{printed:?}");
    let mut sent = crate::support::accepted_ids(&stand_in);
    sent.sort();
    assert_eq!(sent, ["R-10023", "R-10024", "R-10028"]);
}

/// The keys a config error lists as valid for `section` when `bogus = 1` is put there:
/// the parser's own list, so that a key added later must be documented too.
fn valid_keys(dir: &std::path::Path, section: &str) -> Vec<String> {
    let path = dir.join(format!("{}.toml", section.replace(['[', ']', '.'], "_")));
    let text = crate::support::config_text(
        "postgres://u@127.0.0.1/db",
        &dir.join("out.ndjson"),
        "",
        None,
    );
    let text = if section == "[[source.changes]]" {
        text.replace(
            "[mapping]",
            "[[source.changes]]\ntable = \"t\"\nwatermark_column = \"w\"\nkey = \"k\"\n\
             bogus = 1\n\n[mapping]",
        )
    } else {
        text.replace("[destination]\n", "[destination]\nbogus = 1\n")
    };
    std::fs::write(&path, text).unwrap();
    let error = ocapi::config::Config::load(&path).unwrap_err();
    let message = format!("{error:#}");
    let list = message
        .split_once("expected one of")
        .unwrap_or_else(|| panic!("no key list in {message:?}"))
        .1;
    let keys: Vec<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(keys.len() > 3, "{message}");
    keys
}

/// Trial findings 5 and 14: docs/configuration.md lists every `[destination]` key
/// (`ad_account_id` was missing) and every `[[source.changes]]` key, as the parser accepts them.
#[test]
fn configuration_md_lists_every_destination_and_changes_key() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("trial-config-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let rows: Vec<&str> = page.lines().filter(|l| l.starts_with("| ")).collect();
    let documented = |dotted: &str| {
        rows.iter().any(|row| {
            let key = row.split('|').nth(1).unwrap_or_default();
            key.contains(&format!("`{dotted}`")) || key.contains(&format!("`{dotted} "))
        }) || rows.iter().any(|row| {
            // `destination.access_token_env` / `access_token_file`: the second names its key bare
            let key = row.split('|').nth(1).unwrap_or_default();
            let (section, bare) = dotted.rsplit_once('.').unwrap();
            key.contains(&format!("`{section}.")) && key.contains(&format!("`{bare}`"))
        })
    };
    let mut missing = Vec::new();
    for key in valid_keys(&dir, "destination") {
        if !documented(&format!("destination.{key}")) {
            missing.push(format!("destination.{key}"));
        }
    }
    for key in valid_keys(&dir, "[[source.changes]]") {
        if !documented(&format!("source.changes[].{key}")) {
            missing.push(format!("source.changes[].{key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
    assert!(
        page.contains(concat!("(source", ".md#")),
        "the page points to the source page for [[source.changes]]"
    );
}

//! The new-user trial's findings (docs/operations.md walks the same first sync): each test
//! fails on the build the trial used and passes after its fix.

use std::process::Command;

/// Trial finding 9: `ocapi sandbox --listen ADDR` on a port already taken names the address
/// and the flag, and exits 2 (README's exit table: a bad flag), not "cannot write output".
#[test]
fn sandbox_on_a_taken_port_says_it_cannot_listen_there() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ocapi"))
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

/// Orders 1..=`n` with three lines each and 20 customers, written an hour ago (the schema of
/// tests/changes.rs).
async fn some_orders(db: &crate::support::TestDb, n: i32) {
    db.exec(&format!(
        "insert into crm.customers
           select g, 'c' || g || '@example.com', now() - interval '1 day'
           from generate_series(1, 20) g;
         insert into pos.order_headers
           select g, 1 + g % 20, now() - interval '1 hour',
                  now() - interval '1 hour' + g * interval '1 s'
           from generate_series(1, {n}) g;
         insert into pos.order_lines (order_id, line_no, sku, qty, price, updated_at)
           select g, l, 'S' || l, 1, l, now() - interval '1 hour' + g * interval '1 s'
           from generate_series(1, {n}) g, generate_series(1, 3) l;
         analyze"
    ))
    .await;
}

/// Trial finding 10: with `[[source.changes]]` the run's summary and `--json` give each
/// table's watermark start and end, not `watermark - -> -` and nulls.
#[tokio::test]
async fn a_changes_run_shows_each_tables_watermark() {
    // GIVEN the README's header/line/customer view with three changes entries, and 50 orders
    let (db, _config) = crate::changes::setup("", crate::changes::CHANGES).await;
    some_orders(&db, 50).await;

    // WHEN the first run sends them
    let (code, stats, stderr) = crate::changes::run_json(&db).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stats["sent"], 50, "{stats}");

    // THEN each table has its watermark: none before, the last committed one after
    let tables = stats["change_watermarks"]
        .as_array()
        .expect("change_watermarks");
    let names: Vec<&str> = tables.iter().filter_map(|t| t["table"].as_str()).collect();
    assert_eq!(
        names,
        ["pos.order_headers", "pos.order_lines", "crm.customers"],
        "{stats}"
    );
    for table in tables {
        assert!(table["start"].is_null(), "{stats}");
        assert!(table["end"].is_string(), "{stats}");
    }
    let headers_end = tables[0]["end"].as_str().unwrap().to_owned();

    // AND a second, idle run starts where the first ended, and its summary says so per table
    let out = crate::support::ocapi(&db.config_path(), &["run"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("watermark           - -> -"), "{text}");
    assert!(
        text.contains(&format!(
            "watermark           pos.order_headers: {headers_end} -> {headers_end}"
        )),
        "{text}"
    );
    assert!(text.contains("crm.customers: "), "{text}");
}

/// Trial finding 6: with `[[source.changes]]`, `check` does not warn that the view would be
/// read whole to find one minute of changes by `source.watermark_column` (a run does not read
/// by it); without them it still does, in words rather than "estimated cost 317 of 58".
#[tokio::test]
async fn check_gives_the_view_warning_only_without_changes_entries_and_in_words() {
    // GIVEN the view with a single watermark over greatest() of three tables' columns
    let (db, _config) = crate::changes::setup("watermark_column = \"updated_at\"", "").await;
    some_orders(&db, 50).await;
    let check = || async {
        let out = crate::support::ocapi(&db.config_path(), &["check"]).await;
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let text = check().await;
    assert!(text.contains("one minute of changes"), "{text}");
    assert!(!text.contains("estimated cost"), "{text}");
    assert!(
        text.contains("the cost of reading the view whole"),
        "{text}"
    );

    // WHEN the changes entries are added
    db.edit_config_text(&[(
        "[mapping]",
        &format!("{}\n[mapping]", crate::changes::CHANGES),
    )]);

    // THEN the single-watermark warning is gone, and the entries are checked instead
    let text = check().await;
    assert!(!text.contains("one minute of changes"), "{text}");
    assert!(text.contains("changes: \"crm\".\"customers\""), "{text}");
}

/// Trial finding 3: a run stopped by SIGINT (Ctrl-C) commits the pages in flight, exits 0 as
/// README's exit table says, and is recorded and summarized as `stopped`, not `completed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_sigint_is_recorded_as_stopped() {
    // GIVEN 3,000 orders in pages of 20, and a stand-in that answers each request in 200 ms
    let db = crate::support::TestDb::new().await;
    crate::support::insert_orders(&db, "R", 3000, "2026-01-01T00:00:00Z").await;
    let graph = crate::support::sandbox(ocapi::sandbox::Faults {
        latency: std::time::Duration::from_millis(200),
        ..ocapi::sandbox::Faults::default()
    })
    .await;
    let config = db.meta_config(
        "batch_size = 20",
        &graph.base_url(),
        crate::support::TOKEN,
        "",
    );
    crate::support::migrate(&config).await;

    // WHEN `ocapi run` gets SIGINT once its first pages are committed
    let child = crate::support::command(&db.config_path())
        .arg("run")
        .env("OCAPI_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.ledger_counts().await.get("sent").copied().unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "the run sent nothing");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);

    // THEN it exited 0, its summary and its `runs` row say `stopped`, and not all was sent
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": stopped\n"), "{stdout}");
    assert!(stdout.contains("stopped by a signal"), "{stdout}");
    let row = db
        .client
        .query_one(
            "select status, sent from ocapi.runs order by run_id desc limit 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "stopped");
    assert!(row.get::<_, i64>(1) < 3000);

    // AND the next run sends the rest and is `completed`
    let stats = crate::support::run(&config).await;
    assert_eq!(stats.status, ocapi::stats::RunStatus::Completed);
    assert_eq!(db.ledger_counts().await.get("sent").copied(), Some(3000));
}

/// Trial finding 14: `init` names the rows it sampled for the currency and country (3 here),
/// not its upper bound of 10000.
#[tokio::test]
async fn init_names_the_number_of_rows_it_sampled() {
    let db = crate::support::TestDb::new().await;
    crate::support::insert_orders(&db, "T", 3, "2026-11-01T00:00:00Z").await;
    let path = db.dir.join("connector.toml");
    let out = crate::support::command(&path)
        .args([
            "init",
            "--source-url",
            &db.url,
            "--table",
            "shop.store_transactions",
            "--dataset-id",
            "1234567890",
        ])
        .env("OCAPI_SOURCE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("the most common among 3 rows"), "{text}");
    assert!(!text.contains("among 10000 rows"), "{text}");
}

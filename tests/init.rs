//! `ocapi init` (issue 26 item 1) against a real PostgreSQL: a config for the demo's table and
//! for the documentation's header/line/customer view that `ocapi check` accepts and that syncs
//! to the stand-in, no password in the file, the `--force` rule, `--example`, and the questions
//! it asks on a terminal (util-linux's `script` gives it one), and how many rows it sampled.

use std::path::Path;
use std::process::{Command, Output};

use ocapi::config::Config;
use ocapi::sandbox::Faults;

use crate::support::{accepted_ids, insert_orders, sandbox, TestDb, TOKEN};

/// `ocapi --config PATH init ARGS` with the environment a user has (the source URL and the
/// token exported), stdin not a terminal.
async fn init(path: &Path, url: &str, args: &[&str]) -> Output {
    let mut command = crate::support::command(path);
    command
        .arg("init")
        .args(args)
        .env("OCAPI_SOURCE_URL", url)
        .env("META_ACCESS_TOKEN", TOKEN);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// `ocapi --config PATH ARGS` as the user would run it after `init`.
async fn ocapi_as_user(path: &Path, url: &str, args: &[&str]) -> Output {
    let mut command = crate::support::command(path);
    command
        .args(args)
        .env("OCAPI_SOURCE_URL", url)
        .env("META_ACCESS_TOKEN", TOKEN);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Points the written file at the stand-in, as the README says to try a config without Meta.
fn to_the_stand_in(path: &Path, base_url: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("# base_url = "))
        .expect("the written file offers base_url")
        .to_owned();
    std::fs::write(
        path,
        text.replace(&line, &format!("base_url = {base_url:?}")),
    )
    .unwrap();
}

/// The exit code, with stdout and stderr when it is not the expected one.
fn expect(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn init_on_a_table_writes_a_config_that_check_accepts_and_that_syncs() {
    // GIVEN the demo's table with three orders of one line each, and a URL with a password
    let db = TestDb::new().await;
    insert_orders(&db, "T", 3, "2026-11-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set store_id = 'S1', sku = 'SKU', qty = 1, unit_price = total")
        .await;
    let url = db
        .url
        .replacen("postgres@", "postgres:pw-7f3a9c-secret@", 1);
    let path = db.dir.join("connector.toml");

    // WHEN `ocapi init` is given both flags (and stdin is no terminal)
    let out = init(
        &path,
        &url,
        &[
            "--source-url",
            &url,
            "--table",
            "shop.store_transactions",
            "--dataset-id",
            "1234567890",
        ],
    )
    .await;

    // THEN it wrote a file naming the URL's variable, never the URL or its password
    expect(&out, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("url_env = \"OCAPI_SOURCE_URL\""), "{text}");
    assert!(
        !text.contains("pw-7f3a9c-secret") && !text.contains("postgres://"),
        "{text}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("pw-7f3a9c-secret"), "{stdout}");
    // AND the mapping, the watermark, an explicit start and the data's defaults
    let config = Config::parse(&text, &path).unwrap();
    assert_eq!(config.source.table, "shop.store_transactions");
    assert_eq!(config.source.watermark_column(), "updated_at");
    assert!(config.source.start.is_some(), "{text}");
    assert_eq!(config.mapping.order_id, "order_id");
    assert_eq!(config.mapping.event_time, "purchased_at");
    assert_eq!(config.mapping.value.as_deref(), Some("total"));
    assert_eq!(config.mapping.item_id.as_deref(), Some("sku"));
    assert_eq!(config.mapping.store_id.as_deref(), Some("store_id"));
    for key in [
        "email = \"email\"",
        "phone = \"phone\"",
        "date_of_birth = \"birth_date\"",
        "external_id = \"loyalty_id\"",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
    assert!(text.contains("currency = \"USD\""), "{text}");
    assert!(text.contains("country = \"US\""), "{text}");

    // AND `migrate`, `check` and `run` work with it against the stand-in: three orders sent
    let stand_in = sandbox(Faults::default()).await;
    to_the_stand_in(&path, &stand_in.base_url());
    expect(&ocapi_as_user(&path, &url, &["migrate"]).await, 0);
    let check = ocapi_as_user(&path, &url, &["check"]).await;
    expect(&check, 0);
    expect(&ocapi_as_user(&path, &url, &["run"]).await, 0);
    let mut sent = accepted_ids(&stand_in);
    sent.sort();
    assert_eq!(sent, ["T1", "T2", "T3"]);
}

#[tokio::test]
async fn init_on_a_header_line_customer_view_writes_an_entry_per_base_table() {
    // GIVEN the documentation's retail warehouse: stores in two countries, walk-ins
    let db = TestDb::new().await;
    crate::support::retail::build(&db).await;
    let path = db.dir.join("connector.toml");

    // WHEN `ocapi init` reads the README's view
    let out = init(
        &path,
        &db.url,
        &[
            "--table",
            "pos.ocapi_purchases",
            "--dataset-id",
            "1234567890",
        ],
    )
    .await;

    // THEN the file maps the view, with each store's zone, the line number and the data's
    // defaults (euros; Germany, where most customers are)
    expect(&out, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    for line in [
        "timezone = \"time_zone\"",
        "item_line = \"line_no\"",
        "store_id = \"store_id\"",
        "country = \"country\"",
        "currency = \"EUR\"",
        "country = \"DE\"",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // AND one [[source.changes]] entry for each base table whose changes move an order, tied
    // by the order id or by the key the view exposes; the stores (no updated_at) are said
    let entries: Vec<&str> = text.split("\n[[source.changes]]").skip(1).collect();
    assert_eq!(entries.len(), 3, "{text}");
    assert!(
        entries[0].contains("table = \"crm.customers\"")
            && entries[0].contains("key = \"customer_id\"")
            && entries[0].contains("matches = \"customer_id\""),
        "{text}"
    );
    assert!(
        entries[1].contains("table = \"pos.order_headers\"")
            && entries[1].contains("key = \"order_id\""),
        "{text}"
    );
    assert!(
        entries[2].contains("table = \"pos.order_lines\"")
            && entries[2].contains("key = \"order_id\""),
        "{text}"
    );
    assert!(
        text.contains("# pos.stores: no [[source.changes]] entry"),
        "{text}"
    );
    // AND it says which columns it could not place
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("not placed: customer_id"), "{stdout}");

    // AND `check` accepts it, and a run sends the three sales with a customer; the two
    // walk-ins are anonymous
    let stand_in = sandbox(Faults::default()).await;
    to_the_stand_in(&path, &stand_in.base_url());
    expect(&ocapi_as_user(&path, &db.url, &["migrate"]).await, 0);
    expect(&ocapi_as_user(&path, &db.url, &["check"]).await, 0);
    expect(&ocapi_as_user(&path, &db.url, &["run"]).await, 0);
    let mut sent = accepted_ids(&stand_in);
    sent.sort();
    assert_eq!(sent, ["R-10023", "R-10024", "R-10028"]);
    let counts = db.ledger_counts().await;
    assert_eq!(counts.get("anonymous"), Some(&2), "{counts:?}");
}

#[tokio::test]
async fn init_never_overwrites_a_file_without_force() {
    // GIVEN a config file of the user's
    let dir = std::env::temp_dir().join(format!("ocapi_init_{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("connector.toml");
    std::fs::write(&path, "# mine\n").unwrap();

    // WHEN `ocapi init` runs without --force (with flags that would reach no database)
    let refused = init(
        &path,
        "postgres://nobody@127.0.0.1:1/none",
        &["--table", "shop.nothing"],
    )
    .await;
    let example = init(&path, "", &["--example"]).await;

    // THEN both refuse with exit 2, name --force, and the file is untouched
    expect(&refused, 2);
    expect(&example, 2);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");

    // AND with --force the example replaces it
    expect(&init(&path, "", &["--example", "--force"]).await, 0);
    assert_ne!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn init_example_writes_the_repositorys_commented_example() {
    let dir = std::env::temp_dir().join(format!("ocapi_init_{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("connector.toml");

    // WHEN `ocapi init --example` runs where no config is
    let out = init(&path, "", &["--example"]).await;

    // THEN it wrote the repository's connector.toml, byte for byte, and it parses
    expect(&out, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, include_str!("../connector.toml"));
    Config::parse(&text, &path).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn init_asks_on_a_terminal_for_what_no_flag_gave() {
    // GIVEN the demo's table, and no flag and no OCAPI_SOURCE_URL
    let db = TestDb::new().await;
    insert_orders(&db, "A", 2, "2026-11-01T00:00:00Z").await;
    let path = db.dir.join("connector.toml");

    // WHEN `ocapi init` runs on a terminal and is answered: the URL, the table, the dataset
    let command = format!(
        "{} --config {} init",
        env!("CARGO_BIN_EXE_ocapi"),
        path.display()
    );
    let answers = format!("{}\nshop.store_transactions\n1234567890\n", db.url);
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env_remove("OCAPI_SOURCE_URL")
            .env("OCAPI_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answers.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();

    // THEN it asked for each, listed the tables, and wrote the file from the answers
    expect(&out, 0);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("PostgreSQL URL of the source"), "{screen}");
    assert!(
        screen.contains("shop.store_transactions (table)"),
        "{screen}"
    );
    assert!(screen.contains("dataset (pixel) id"), "{screen}");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.source.table, "shop.store_transactions");
    assert_eq!(config.destination.dataset_id, "1234567890");
}

#[tokio::test]
async fn init_names_the_flag_to_give_when_it_cannot_go_on() {
    // GIVEN a table whose receipt id and sale time have names init does not know
    let db = TestDb::new().await;
    db.exec("create table shop.bons (bon text, zeit timestamptz, betrag numeric, waehrung text)")
        .await;
    let path = db.dir.join("connector.toml");

    // WHEN init is given a key that is not a mapping key, a table that does not exist, then
    // that table, then the mapping
    let unknown = init(
        &path,
        &db.url,
        &["--table", "shop.bons", "--map", "bogus_key=bon"],
    )
    .await;
    let missing = init(&path, &db.url, &["--table", "shop.nothing"]).await;
    let unplaced = init(&path, &db.url, &["--table", "shop.bons"]).await;
    let mapped = init(
        &path,
        &db.url,
        &[
            "--table",
            "shop.bons",
            "--map",
            "order_id=bon",
            "--map",
            "event_time=zeit",
            "--map",
            "value=betrag",
            "--map",
            "currency=waehrung",
        ],
    )
    .await;

    // THEN the first two exit 2 naming the flag, wrote nothing, and the third wrote the file
    expect(&unknown, 2);
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("mapping.bogus_key") && said.contains("order_id"),
        "{said}"
    );
    expect(&missing, 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--table"));
    expect(&unplaced, 2);
    let said = String::from_utf8_lossy(&unplaced.stderr);
    assert!(
        said.contains("--map order_id=COLUMN") && said.contains("bon (text)"),
        "{said}"
    );
    expect(&mapped, 0);
    let config = Config::load(&path).unwrap();
    assert_eq!(config.mapping.order_id, "bon");
    assert_eq!(config.mapping.event_time, "zeit");
    assert_eq!(config.source.watermark_column(), "zeit");
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

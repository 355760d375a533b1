//! `ocapi hash` (issue #12): the real binary hashes a value in the country a run would use, the
//! config's `defaults.country`, found as a run finds its config, and says which country it used.

use std::path::Path;
use std::process::Command;

use crate::support::{insert_orders, migrate, run, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// The `ocapi` binary with no config in its environment, run in `dir`.
fn ocapi_in(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ocapi"));
    command
        .current_dir(dir)
        .env_remove("OCAPI_CONFIG")
        .env("OCAPI_LOG", "warn");
    command
}

/// Stdout of a command that must succeed.
fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value after `label` on its line of `hash`'s output.
fn line_value<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in {text:?}"))
        .trim()
}

#[tokio::test]
async fn hash_uses_the_configs_default_country_and_agrees_with_what_a_run_sends() {
    // GIVEN an order whose phone is national and whose country is NULL, and a config whose
    // `defaults.country` is US
    let db = TestDb::new().await;
    insert_orders(&db, "H", 1, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set phone = '(212) 555-0199', country = null")
        .await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;

    // WHEN a run sends it, and `ocapi hash` is asked about the same value with each way of
    // finding the config
    run(&config).await;
    let events = graph.events();
    assert_eq!(events.len(), 1);
    let sent = events[0]["user_data"]["ph"][0].as_str().unwrap().to_owned();
    let empty_dir = db.dir.join("elsewhere");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let flag = stdout_of(
        ocapi_in(&empty_dir)
            .arg("--config")
            .arg(db.config_path())
            .args(["hash", "ph", "(212) 555-0199"]),
    );
    let variable = stdout_of(
        ocapi_in(&empty_dir)
            .env("OCAPI_CONFIG", db.config_path())
            .args(["hash", "ph", "(212) 555-0199"]),
    );
    let current_dir = stdout_of(ocapi_in(&db.dir).args(["hash", "ph", "(212) 555-0199"]));

    // THEN each prints the digest the run sent, and says the country came from the config
    for (how, out) in [
        ("--config", &flag),
        ("OCAPI_CONFIG", &variable),
        ("./connector.toml", &current_dir),
    ] {
        assert_eq!(
            line_value(out, "normalized:"),
            "12125550199",
            "{how}: {out}"
        );
        assert_eq!(line_value(out, "sha256:"), sent, "{how}: {out}");
        let country = line_value(out, "country:");
        assert!(
            country.starts_with("US (defaults.country in ") && country.ends_with("connector.toml)"),
            "{how}: {out}"
        );
    }
}

#[tokio::test]
async fn hash_country_flag_wins_over_the_config_and_no_config_means_no_country() {
    // GIVEN a config whose `defaults.country` is US in the current directory
    let db = TestDb::new().await;
    db.config("", None);

    // WHEN `--country GB` is given there, and nothing is given in a directory without a config
    let flagged =
        stdout_of(ocapi_in(&db.dir).args(["hash", "ph", "020 7946 0958", "--country", "GB"]));
    let empty_dir = db.dir.join("elsewhere");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let bare = stdout_of(ocapi_in(&empty_dir).args(["hash", "ph", "(212) 555-0199"]));

    // THEN the flag's country is used and named; without a config there is none, and a national
    // number cannot be given a calling code
    assert_eq!(
        line_value(&flagged, "country:"),
        "GB (--country)",
        "{flagged}"
    );
    assert_eq!(
        line_value(&flagged, "normalized:"),
        "442079460958",
        "{flagged}"
    );
    assert!(
        line_value(&bare, "country:")
            .starts_with("none (no --country, and no config: connector.toml not found)"),
        "{bare}"
    );
    assert!(
        line_value(&bare, "normalized:").starts_with("(dropped"),
        "{bare}"
    );
}

#[tokio::test]
async fn hash_with_a_named_config_that_does_not_load_exits_2_naming_it() {
    // GIVEN a config path that does not exist
    let db = TestDb::new().await;
    let missing = db.dir.join("missing.toml");

    // WHEN `ocapi hash` is pointed at it by `OCAPI_CONFIG`
    let out = ocapi_in(&db.dir)
        .env("OCAPI_CONFIG", &missing)
        .args(["hash", "em", "a@b.co"])
        .output()
        .unwrap();

    // THEN it fails as a configuration problem that names the file
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

/// Issue 24's examples through the real binary: each value of a kind ocapi got wrong, with the
/// row's country given by `--country`, prints the normalized value libphonenumber, Unicode and
/// the calendar give (no config needed).
#[test]
fn hash_normalizes_issue_24s_examples() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hash-issue-24");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        // An area code equal to the calling code is part of the national number.
        ("ph", "(55) 99555-1234", "BR", "5555995551234"),
        // Thai SARA AM is not rewritten by compatibility folding.
        ("fn", "สำราญ", "TH", "สำราญ"),
        // A two-digit year is in the past.
        ("db", "07.11.72", "DE", "19721107"),
        // Country names in other languages, CLDR's short forms; a name, not a code.
        ("country", "Nhật Bản", "VN", "jp"),
        ("country", "ロシア", "JP", "ru"),
        ("country", "サウジアラビア", "JP", "sa"),
        ("country", "Áo", "VN", "at"),
        // A row's country given by such a name reads the phone in that country.
        ("ph", "030 20000001", "Đức", "493020000001"),
    ];
    for (field, raw, country, want) in cases {
        let out = stdout_of(ocapi_in(&dir).args(["hash", field, raw, "--country", country]));
        assert_eq!(line_value(&out, "normalized:"), want, "{out}");
        assert_eq!(
            line_value(&out, "sha256:"),
            ocapi::transform::hash::sha256_hex(want),
            "{out}"
        );
    }
}

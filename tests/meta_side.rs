//! Meta's side (issue 25): the token's and the API version's remaining life, Meta's counts
//! beside the ledger, and Meta's diagnostics, read from the stand-in's `debug_token`, `/stats`,
//! `ads_signal_diagnostic_issues` and version headers, and asserted on what `check`, `quality`,
//! `reconcile --meta --json`, the metrics file and the webhook receive.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::{NaiveDate, Utc};

use crate::support::{insert_orders, migrate, ocapi, run, sandbox_with, TestDb, Webhook, TOKEN};
use ocapi::destination::meta::versions::VERSIONS;
use ocapi::sandbox::{Faults, MetaSide, Sandbox};

/// Stdout and stderr of a finished command, for messages.
fn both(output: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A stand-in answering with `side`, and a migrated Meta config against it (`extra` is appended
/// after `[destination]`, e.g. an `[alerts]` table).
async fn setup(
    side: MetaSide,
    orders: i32,
    extra: &str,
) -> (TestDb, Sandbox, ocapi::config::Config) {
    let db = TestDb::new().await;
    insert_orders(&db, "R", orders, "2026-01-01T00:00:00Z").await;
    let graph = sandbox_with(Faults::default(), side).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, extra);
    migrate(&config).await;
    (db, graph, config)
}

/// The value of a series line (`name{labels} value`) in a metrics file.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with(&format!("{name}{{")))
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse().ok())
}

/// `ocapi run` with a metrics file.
async fn run_with_metrics(config_path: &Path, metrics: &Path) -> Output {
    let flag = metrics.display().to_string();
    ocapi(config_path, &["--metrics-file", flag.as_str(), "run"]).await
}

#[tokio::test]
async fn a_token_expiring_in_5_days_warns_in_check_and_every_run_exports_a_gauge_and_alerts_once_a_day(
) {
    // GIVEN a token that expires in 5 days (and an hour), and a chat webhook
    let webhook = Webhook::start().await;
    let side = MetaSide {
        token_expires_in: Some(Duration::from_secs(5 * 86_400 + 3_600)),
        ..MetaSide::default()
    };
    let db = TestDb::new().await;
    let alerts = webhook.alerts_table(&db.dir);
    insert_orders(&db, "R", 10, "2026-01-01T00:00:00Z").await;
    let graph = sandbox_with(Faults::default(), side).await;
    let config = db.meta_config(
        "",
        &graph.base_url(),
        TOKEN,
        &format!("batch_size = 100{alerts}"),
    );
    migrate(&config).await;
    let expiry = (Utc::now() + chrono::Duration::seconds(5 * 86_400 + 3_600)).date_naive();

    // WHEN check looks at it
    let checked = ocapi(&db.config_path(), &["check"]).await;

    // THEN it warns with the date and the days left, and still passes
    let text = both(&checked);
    assert_eq!(checked.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "warn  meta token: system user, valid, expires {expiry} (5 days left)"
        )),
        "{text}"
    );
    assert!(text.contains("it stops working in 5 days"), "{text}");
    assert!(
        text.contains("ok    meta token: covers sending events (the run) (ads_management)"),
        "{text}"
    );

    // WHEN two runs go (from cron, one process each)
    let metrics = db.dir.join("ocapi.prom");
    let first = run_with_metrics(&db.config_path(), &metrics).await;
    let second = run_with_metrics(&db.config_path(), &metrics).await;

    // THEN each run's log warns, the gauge says about 5 days, the events were sent, and the
    // webhook was told once
    for output in [&first, &second] {
        assert_eq!(output.status.code(), Some(0), "{}", both(output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("it stops working in 5 days"),
            "{}",
            both(output)
        );
    }
    let exposition = std::fs::read_to_string(&metrics).unwrap();
    let left = series(&exposition, "ocapi_token_expires_in_seconds").expect(&exposition);
    assert!(
        (5.0 * 86_400.0..=5.0 * 86_400.0 + 3_600.0).contains(&left),
        "{left}"
    );
    assert!(series(&exposition, "ocapi_api_version_sunset_seconds").is_some_and(|s| s > 0.0));
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&10));
    let texts = webhook.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("stops working in 5 days"), "{texts:?}");
    assert!(!texts[0].contains(TOKEN));
}

#[tokio::test]
async fn an_expired_token_fails_check_with_exit_2_and_the_date_it_stopped() {
    // GIVEN a token that expired yesterday
    let side = MetaSide {
        token_expired_ago: Some(Duration::from_secs(86_400)),
        ..MetaSide::default()
    };
    let (db, _graph, _config) = setup(side, 1, "").await;
    let stopped = (Utc::now() - chrono::Duration::days(1)).date_naive();

    // WHEN check looks at it
    let checked = ocapi(&db.config_path(), &["check"]).await;

    // THEN it exits 2 and says when the token stopped working
    let text = both(&checked);
    assert_eq!(checked.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "FAIL  meta token: system user, NOT valid, expired {stopped}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("it stopped working on {stopped}")),
        "{text}"
    );
    assert!(!text.contains(TOKEN));
}

#[tokio::test]
async fn a_token_without_the_permission_to_read_quality_is_a_warning_naming_it_and_the_run_still_sends(
) {
    // GIVEN a token that may send events but not read Dataset Quality
    let side = MetaSide {
        token_scopes: vec!["ads_management".to_owned()],
        ..MetaSide::default()
    };
    // (Meta's diagnostics edge requires the ad account: docs/meta-side.md.)
    let (db, graph, config) = setup(side, 12, "ad_account_id = \"act_555\"").await;

    // WHEN check, a run and quality go
    let checked = ocapi(&db.config_path(), &["check"]).await;
    let stats = run(&config).await;
    let quality = ocapi(&db.config_path(), &["quality"]).await;

    // THEN check warns naming the permission (and the diagnostics edge it could not read) and
    // passes, the run sent everything, and quality warns naming the edge and the permission
    let text = both(&checked);
    assert_eq!(checked.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "warn  meta token: lacks the ads_read permission needed for reading Dataset Quality"
        ),
        "{text}"
    );
    assert!(
        text.contains("warn  meta refused {dataset_id}/ads_signal_diagnostic_issues for a missing permission (code 200): the token needs the ads_read permission"),
        "{text}"
    );
    assert_eq!(stats.sent, 12);
    assert_eq!(graph.events().len(), 12);
    let text = both(&quality);
    assert_eq!(quality.status.code(), Some(0), "{text}");
    // Warnings, not errors, in the logs too.
    for output in [&checked, &quality] {
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(!log.contains("ERROR"), "{log}");
    }
    assert!(
        text.contains("warn  meta refused dataset_quality for a missing permission (code 200): the token needs the ads_read permission"),
        "{text}"
    );
}

#[tokio::test]
async fn a_version_30_days_from_its_end_warns_and_one_past_it_fails_check_and_the_run_naming_the_version_to_move_to(
) {
    // GIVEN the version table: one version already past its end, and the oldest one still
    // working, seen (through faketime) 30 days before its end
    let today = Utc::now().date_naive();
    let ended = VERSIONS
        .iter()
        .find(|v| v.sunset < today)
        .expect("an ended version");
    let ending = VERSIONS
        .iter()
        .find(|v| v.sunset > today + chrono::Duration::days(31))
        .expect("a working version");
    let newest = VERSIONS.last().unwrap().version;
    let (db, _graph, _config) = setup(MetaSide::default(), 3, "").await;

    // WHEN check runs 30 days before the working version's end
    db.edit_config_text(&[(
        "request_timeout",
        &format!("api_version = {:?}\nrequest_timeout", ending.version),
    )]);
    let fake_now = format!("{} 12:00:00", ending.sunset - chrono::Duration::days(30));
    let faked = tokio::task::spawn_blocking({
        let path = db.config_path();
        move || {
            std::process::Command::new("faketime")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("OCAPI_LOG", "warn")
                .arg(&fake_now)
                .arg(env!("CARGO_BIN_EXE_ocapi"))
                .arg("--config")
                .arg(path)
                .arg("check")
                .output()
                .expect("faketime is installed (Debian package faketime)")
        }
    })
    .await
    .unwrap();

    // THEN it warns, naming the end, the days left and the newest version, and passes
    let text = both(&faked);
    assert_eq!(faked.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "warn  api version {} stops working after {}, in 30 days",
            ending.version, ending.sunset
        )),
        "{text}"
    );
    assert!(text.contains(&format!("move to {newest}")), "{text}");

    // WHEN the config names the ended version
    db.edit_config_text(&[(
        &format!("api_version = {:?}", ending.version),
        &format!("api_version = {:?}", ended.version),
    )]);
    let checked = ocapi(&db.config_path(), &["check"]).await;
    let ran = ocapi(&db.config_path(), &["run"]).await;

    // THEN check and the run exit 2, both naming the version to move to
    let text = both(&checked);
    assert_eq!(checked.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "FAIL  api version {} stopped working after {}",
            ended.version, ended.sunset
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("`destination.api_version = \"{newest}\"`")),
        "{text}"
    );
    let text = both(&ran);
    assert_eq!(ran.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("set it to \"{newest}\"")), "{text}");
    assert_eq!(db.ledger_counts().await.get("sent"), None);
}

#[tokio::test]
async fn a_version_warning_header_and_another_answered_version_are_logged_by_the_run_and_shown_by_check(
) {
    // GIVEN a stand-in whose answers warn about the version and say another one answered
    let warning = "Graph API v26.0 will be deprecated on 2028-11-04. Please upgrade.";
    let side = MetaSide {
        api_version_warning: Some(warning.to_owned()),
        answer_api_version: Some("v27.0".to_owned()),
        ..MetaSide::default()
    };
    let (db, _graph, _config) = setup(side, 5, "").await;

    // WHEN a run and check go
    let ran = ocapi(&db.config_path(), &["run"]).await;
    let checked = ocapi(&db.config_path(), &["check"]).await;

    // THEN the run's log carries Meta's text and the answered version, once each, and check
    // shows both as warnings
    let log = String::from_utf8_lossy(&ran.stderr).to_string();
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert_eq!(
        log.matches("meta answered with api version v27.0, not the configured v26.0")
            .count(),
        1,
        "{log}"
    );
    let text = both(&checked);
    assert!(
        text.contains(&format!(
            "warn  meta warns about api version v26.0: {warning}"
        )),
        "{text}"
    );
    assert!(
        text.contains("warn  meta answered with api version v27.0, not the configured v26.0"),
        "{text}"
    );
}

#[tokio::test]
async fn meta_counting_fewer_on_a_settled_day_is_shown_and_alerted_once_and_a_day_inside_the_settle_time_is_not(
) {
    // GIVEN 20 orders bought 4 days ago and 20 an hour ago, all sent, and a stand-in whose
    // `/stats` counts a tenth fewer than it accepted
    let webhook = Webhook::start().await;
    let side = MetaSide {
        stats_undercount: 0.1,
        ..MetaSide::default()
    };
    let db = TestDb::new().await;
    let alerts = webhook.alerts_table(&db.dir);
    insert_orders(&db, "T", 20, "2026-01-01T00:00:00Z").await;
    insert_orders(&db, "S", 20, "2026-01-02T00:00:00Z").await;
    db.exec("update shop.store_transactions set purchased_at = date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '4 days' + interval '12 hours' where order_id like 'S%'").await;
    let graph = sandbox_with(Faults::default(), side).await;
    let config = db.meta_config(
        "",
        &graph.base_url(),
        TOKEN,
        &format!("batch_size = 100{alerts}"),
    );
    migrate(&config).await;
    assert_eq!(run(&config).await.sent, 40);
    let today = Utc::now().date_naive();
    let settled = today - chrono::Duration::days(4);
    // The recent orders were bought an hour ago: yesterday, between 00:00 and 01:00 UTC.
    let recent_day = (Utc::now() - chrono::Duration::hours(1)).date_naive();

    // WHEN reconcile --meta --json runs twice
    let window = [
        "reconcile".to_owned(),
        "--meta".to_owned(),
        "--json".to_owned(),
        "--from".to_owned(),
        (today - chrono::Duration::days(6)).to_string(),
    ];
    let first = ocapi(&db.config_path(), &window).await;
    let second = ocapi(&db.config_path(), &window).await;

    // THEN the settled day shows Meta's 18 beside the ledger's 20 and a difference of 2, today
    // shows both without a difference, and the webhook was told about the settled day once
    assert_eq!(first.status.code(), Some(0), "{}", both(&first));
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let day = |date: NaiveDate| {
        report["meta"]["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["day"] == date.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{date} missing: {report}"))
    };
    let old = day(settled);
    assert_eq!(old["meta_received"], 18, "{old}");
    assert_eq!(old["ledger_sent"], 20, "{old}");
    assert_eq!(old["difference"], 2, "{old}");
    let recent = day(recent_day);
    assert_eq!(recent["meta_received"], 18, "{recent}");
    assert_eq!(recent["ledger_sent"], 20, "{recent}");
    assert!(recent["difference"].is_null(), "{recent}");
    assert!(
        report["meta"]["newest_bucket_age_seconds"]
            .as_i64()
            .is_some(),
        "{report}"
    );
    assert_eq!(second.status.code(), Some(0), "{}", both(&second));
    let texts = webhook.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains(&settled.to_string()), "{texts:?}");
    assert!(!texts[0].contains(&recent_day.to_string()), "{texts:?}");

    // AND the text report labels the figures as Meta's and marks today as not settled
    let text = ocapi(&db.config_path(), &["reconcile", "--meta"]).await;
    let text = both(&text);
    assert!(
        text.contains("Meta's counts (its figures, not ocapi's"),
        "{text}"
    );
    assert!(text.contains("not settled yet"), "{text}");
    assert!(text.contains("Meta counts 10.0% fewer"), "{text}");
}

#[tokio::test]
async fn check_and_quality_list_metas_diagnostics_with_advice_and_quality_explains_an_empty_answer()
{
    // GIVEN a dataset for which Meta reports two issues and whose Dataset Quality answer is {}
    let side = MetaSide {
        diagnostic_issues: vec![
            "LOW_MATCH_RATE".to_owned(),
            "EVENTS_RECEIVED_LATE".to_owned(),
        ],
        empty_quality: true,
        ..MetaSide::default()
    };
    let (db, _graph, _config) = setup(side, 3, "ad_account_id = \"act_555\"").await;

    // WHEN check and quality look
    let checked = ocapi(&db.config_path(), &["check"]).await;
    let quality = ocapi(&db.config_path(), &["quality"]).await;

    // THEN both list each issue with what to change, as warnings; quality explains the empty
    // answer instead of a column of dashes
    let text = both(&checked);
    assert_eq!(checked.status.code(), Some(0), "{text}");
    assert!(
        text.contains("warn  meta diagnostic LOW_MATCH_RATE"),
        "{text}"
    );
    assert!(text.contains("map email and phone"), "{text}");
    assert!(
        text.contains("warn  meta diagnostic EVENTS_RECEIVED_LATE"),
        "{text}"
    );
    assert!(text.contains("`ocapi watch`"), "{text}");
    let text = both(&quality);
    assert_eq!(quality.status.code(), Some(0), "{text}");
    assert!(text.contains("meta diagnostic LOW_MATCH_RATE"), "{text}");
    assert!(
        text.contains("Dataset Quality answer is empty ({})"),
        "{text}"
    );
    assert!(text.contains("last 28 days"), "{text}");
    assert!(!text.contains("composite (/10)"), "{text}");
}

//! Meta's side, what issue 25 had left (docs/meta-side.md): `event_source` in `reconcile
//! --meta` where Meta's `/stats` answers it, Meta's side in the HTML report, and
//! `destination.ad_account_id`, which Meta's diagnostics edge requires.

use std::process::Output;

use crate::support::{insert_orders, migrate, ocapi, run, sandbox_with, TestDb, TOKEN};
use ocapi::sandbox::{Faults, MetaSide};

/// Stdout and stderr, for messages.
fn both(output: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn reconcile_meta_splits_metas_count_by_event_source_and_the_report_shows_metas_side() {
    // GIVEN 12 orders sent to a stand-in that counts them by event source too, and a token
    // that expires in 5 days
    let db = TestDb::new().await;
    insert_orders(&db, "E", 12, "2026-01-01T00:00:00Z").await;
    let side = MetaSide {
        token_expires_in: Some(std::time::Duration::from_secs(5 * 86_400)),
        ..MetaSide::default()
    };
    let graph = sandbox_with(Faults::default(), side).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    assert_eq!(run(&config).await.sent, 12);
    let today = chrono::Utc::now().date_naive();
    let day = (chrono::Utc::now() - chrono::Duration::hours(1)).date_naive();
    let window = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        v.extend([
            "--from".to_owned(),
            (today - chrono::Duration::days(2)).to_string(),
            "--to".to_owned(),
            (today + chrono::Duration::days(1)).to_string(),
        ]);
        v
    };

    // WHEN reconcile --meta runs (JSON and text) and the report is written
    let json = ocapi(
        &db.config_path(),
        &window(&["reconcile", "--meta", "--json"]),
    )
    .await;
    let text = ocapi(&db.config_path(), &window(&["reconcile", "--meta"])).await;
    let html_path = db.dir.join("report.html");
    let report = ocapi(
        &db.config_path(),
        &window(&["report", "--html", html_path.to_str().unwrap()]),
    )
    .await;

    // THEN the day shows Meta's count split by event source, in JSON and in text
    assert_eq!(json.status.code(), Some(0), "{}", both(&json));
    let body: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let entry = body["meta"]["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == day.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(entry["meta_received"], 12, "{entry}");
    assert_eq!(entry["meta_event_source"]["server"], 12, "{entry}");
    let text = both(&text);
    assert!(text.contains("meta by event source"), "{text}");
    assert!(text.contains("server 12"), "{text}");
    // AND the report, still one file Chromium renders cleanly, shows the token's and the
    // version's time left and Meta's count beside the ledger's for that day
    assert_eq!(report.status.code(), Some(0), "{}", both(&report));
    let (dom, console) = crate::report::chromium_dump(&html_path);
    assert!(console.is_empty(), "{console:?}");
    let shown = crate::report::figures(&dom);
    assert_eq!(shown[&format!("meta/{day}/meta_received")], "12");
    assert_eq!(shown[&format!("meta/{day}/ledger_sent")], "12");
    assert_eq!(shown[&format!("meta/{day}/difference")], "not settled");
    let token_left = &shown["meta/token_left"];
    assert!(
        ["5.0d", "4.9d"].contains(&token_left.as_str()),
        "{token_left}"
    );
    assert!(shown["meta/api_version_left"].ends_with('d'), "{shown:?}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<h2>Meta's side"), "no Meta section");
}

#[tokio::test]
async fn metas_diagnostics_need_the_ad_account_which_check_names_and_the_stand_in_requires() {
    // GIVEN a dataset for which Meta reports an issue
    let db = TestDb::new().await;
    insert_orders(&db, "A", 2, "2026-01-01T00:00:00Z").await;
    let side = MetaSide {
        diagnostic_issues: vec!["LOW_MATCH_RATE".to_owned()],
        ..MetaSide::default()
    };
    let graph = sandbox_with(Faults::default(), side).await;

    // WHEN check runs without `destination.ad_account_id`, then with it
    migrate(&db.meta_config("", &graph.base_url(), TOKEN, "")).await;
    let without = ocapi(&db.config_path(), &["check"]).await;
    let _ = db.meta_config("", &graph.base_url(), TOKEN, "ad_account_id = \"act_4242\"");
    let with = ocapi(&db.config_path(), &["check"]).await;
    // AND the stand-in is asked as Meta documents the edge, without and with the account
    let client = reqwest::Client::new();
    let edge = format!(
        "{}/v26.0/1234567890/ads_signal_diagnostic_issues",
        graph.base_url()
    );
    let bare = client.get(&edge).bearer_auth(TOKEN).send().await.unwrap();
    let bare_status = bare.status();
    let bare: serde_json::Value = bare.json().await.unwrap();
    let listed: serde_json::Value = client
        .get(format!("{edge}?ad_account_id=4242"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // THEN without the account check warns naming the key (and still passes); with it, it
    // lists Meta's issue
    let text = both(&without);
    assert_eq!(without.status.code(), Some(0), "{text}");
    assert!(text.contains("set `destination.ad_account_id`"), "{text}");
    assert!(!text.contains("LOW_MATCH_RATE"), "{text}");
    let text = both(&with);
    assert_eq!(with.status.code(), Some(0), "{text}");
    assert!(
        text.contains("warn  meta diagnostic LOW_MATCH_RATE"),
        "{text}"
    );
    // AND the stand-in answers code 100 without `ad_account_id`, a Graph list with it
    assert_eq!(bare_status.as_u16(), 400, "{bare}");
    assert_eq!(bare["error"]["code"], 100, "{bare}");
    assert_eq!(
        listed["data"][0]["issue_type"], "LOW_MATCH_RATE",
        "{listed}"
    );
    assert!(listed["paging"].is_object(), "{listed}");
    // AND a malformed account id is a configuration error naming the key
    let _ = std::fs::write(
        db.config_path(),
        std::fs::read_to_string(db.config_path())
            .unwrap()
            .replace("act_4242", "my account"),
    );
    let bad = ocapi(&db.config_path(), &["check"]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", both(&bad));
    assert!(
        both(&bad).contains("destination.ad_account_id"),
        "{}",
        both(&bad)
    );
}

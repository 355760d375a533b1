//! `ocapi report --html` (issue #17): a self-contained page whose figures equal
//! `reconcile --json` and `runs --json`, rendered in a real headless Chromium.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::support::{insert_orders, migrate, ocapi, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// Undoes HTML's attribute and text escapes.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// `data-figure` key → shown text, from the DOM Chromium rendered.
pub(crate) fn figures(dom: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in dom.split("data-figure=\"").skip(1) {
        let (key, rest) = part.split_once('"').unwrap();
        let value = rest.split_once('>').unwrap().1.split_once('<').unwrap().0;
        out.insert(unescape(key), unescape(value));
    }
    out
}

/// Renders a file in headless Chromium: its DOM, and console messages from its stderr.
pub(crate) fn chromium_dump(html: &Path) -> (String, Vec<String>) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is not installed (.ci/run installs it: apt-get install -y chromium)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Refused to"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8(out.stdout).unwrap(), console)
}

#[tokio::test]
async fn the_html_report_renders_in_chromium_with_the_figures_of_reconcile_and_runs() {
    // GIVEN orders over three days in two stores, some invalid and some rejected, sent
    // through the stand-in in two runs
    let db = TestDb::new().await;
    db.exec("alter table shop.store_transactions add column store text")
        .await;
    insert_orders(&db, "R", 30, "2026-01-01T00:00:00Z").await;
    insert_orders(&db, "POISON", 3, "2026-01-01T00:01:00Z").await;
    db.exec(
        "update shop.store_transactions set store = case when order_id like '%1%' then 'S1' else 'S2' end;
         update shop.store_transactions set purchased_at = purchased_at - interval '1 day'
             where order_id in ('R2', 'R3', 'R4', 'R5', 'POISON1');
         update shop.store_transactions set purchased_at = purchased_at - interval '2 days'
             where order_id in ('R6', 'R7');
         update shop.store_transactions set total = null where order_id in ('R8', 'R9', 'R11');
         update shop.store_transactions set email = null, phone = null where order_id = 'R10';",
    )
    .await;
    let graph = sandbox(Faults {
        reject_order_prefix: Some("POISON".into()),
        ..Faults::default()
    })
    .await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "batch_size = 10");
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "event_time = \"purchased_at\"\n",
        "event_time = \"purchased_at\"\nstore_id = \"store\"\n",
    );
    std::fs::write(&path, text).unwrap();
    let config = ocapi::config::Config::load(&path).unwrap_or(config);
    migrate(&config).await;
    crate::support::run(&config).await;
    insert_orders(&db, "N", 4, "2026-01-02T00:00:00Z").await;
    db.exec(
        "update shop.store_transactions set store = 'S1', email = null where order_id like 'N%'",
    )
    .await;
    crate::support::run(&config).await;

    // WHEN writing the report for the last three days
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Duration::days(3)).to_string();
    // `--to` is exclusive, as backfill's: tomorrow includes today.
    let to = (today + chrono::Duration::days(1)).to_string();
    let html_path = db.dir.join("report.html");
    let window = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        v.extend([
            "--from".to_owned(),
            from.clone(),
            "--to".to_owned(),
            to.clone(),
        ]);
        v
    };
    let out = ocapi(
        &path,
        &window(&["report", "--html", html_path.to_str().unwrap()]),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // THEN it is one self-contained file: no scripts, links or sources outside it
    let html = std::fs::read_to_string(&html_path).unwrap();
    for banned in [
        "<script", "<link", "src=", "url(", "@import", "http://", "https://",
    ] {
        assert!(!html.contains(banned), "{banned} in the report");
    }
    assert!(html.contains("<svg"));
    // AND Chromium renders it without a console message (its CSP reports any outside request)
    let (dom, console) = chromium_dump(&html_path);
    assert!(console.is_empty(), "{console:?}");
    let shown = figures(&dom);

    // AND every per-day and total figure equals reconcile --json's
    let day: serde_json::Value = serde_json::from_slice(
        &ocapi(&path, &window(&["reconcile", "--json", "--by", "day"]))
            .await
            .stdout,
    )
    .unwrap();
    let lines = day["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{day}");
    // AND the report and reconcile show the window as given: `--to` exclusive
    assert_eq!(
        (&day["from"], &day["to"]),
        (&from.clone().into(), &to.clone().into())
    );
    assert_eq!((&shown["window/from"], &shown["window/to"]), (&from, &to));
    for line in lines.iter().chain([&day["total"]]) {
        let g = line["group"].as_str().unwrap();
        for field in [
            "source_orders",
            "sent",
            "invalid",
            "returns",
            "rejected",
            "held",
            "anonymous",
            "never_seen",
        ] {
            assert_eq!(
                shown[&format!("day/{g}/{field}")],
                line[field].to_string(),
                "day/{g}/{field}"
            );
        }
    }
    assert_eq!(shown["total/sent"], day["total"]["sent"].to_string());
    assert_eq!(day["total"]["rejected"], 3);
    assert_eq!(day["total"]["invalid"], 3);
    // AND the per-store shares equal reconcile --by store --json's
    let store: serde_json::Value = serde_json::from_slice(
        &ocapi(&path, &window(&["reconcile", "--json", "--by", "store"]))
            .await
            .stdout,
    )
    .unwrap();
    let stores = store["lines"].as_array().unwrap();
    assert_eq!(stores.len(), 2, "{store}");
    for line in stores {
        let g = line["group"].as_str().unwrap();
        let (sent, orders) = (
            line["sent"].as_f64().unwrap(),
            line["source_orders"].as_f64().unwrap(),
        );
        assert_eq!(shown[&format!("store/{g}/sent")], line["sent"].to_string());
        assert_eq!(
            shown[&format!("store/{g}/share_sent")],
            format!("{:.1}", 100.0 * sent / orders)
        );
    }
    // AND the top reasons and their counts equal the reconcile totals
    for (kind, reasons) in [
        ("invalid", &day["total"]["invalid_reasons"]),
        ("rejected", &day["total"]["rejected_reasons"]),
    ] {
        let reasons = reasons.as_object().unwrap();
        assert!(!reasons.is_empty(), "{kind}");
        for (reason, n) in reasons {
            assert_eq!(shown[&format!("{kind}_reason/{reason}")], n.to_string());
        }
    }
    // AND each run's sent count, match-key coverage and lag equal runs --json's
    let runs: serde_json::Value = serde_json::from_slice(
        &ocapi(&path, &["runs", "--json", "--last", "60"])
            .await
            .stdout,
    )
    .unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let id = run["run_id"].as_i64().unwrap();
        let sent = run["sent"].as_f64().unwrap();
        assert_eq!(shown[&format!("run/{id}/sent")], run["sent"].to_string());
        for (key, n) in run["match_keys"].as_object().unwrap() {
            assert_eq!(
                shown[&format!("run/{id}/coverage/{key}")],
                format!("{:.1}", 100.0 * n.as_f64().unwrap() / sent),
                "run {id} {key}"
            );
        }
        for (shown_key, json_key) in [
            ("lag_median", "upload_lag_median_seconds"),
            ("lag_p95", "upload_lag_p95_seconds"),
            ("lag_max", "upload_lag_max_seconds"),
        ] {
            // (as people read durations everywhere: `45s`, `5m`, `15.1d`; issue 26)
            assert_eq!(
                shown[&format!("run/{id}/{shown_key}")],
                ocapi::human::duration(run[json_key].as_f64().unwrap()),
                "run {id} {shown_key}"
            );
        }
    }
    // (the second run's orders carry no email: its coverage shows it)
    let newest = runs[0]["run_id"].as_i64().unwrap();
    assert_eq!(
        shown
            .get(&format!("run/{newest}/coverage/em"))
            .map(String::as_str),
        Some("0.0")
    );
}

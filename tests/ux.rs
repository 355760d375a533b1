//! The first hour (issue 26, items 6–8): the demo says what it does and accounts for every
//! order, figures read the same in every command, and the HTML report shows money per
//! currency and day, match keys by name, round ticks, and tables while runs are few.

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::{insert_orders, migrate, ocapi, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// Both output streams, for messages.
fn both(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn the_demo_announces_its_faults_accounts_for_every_order_and_ends_with_a_psql_line_that_works(
) {
    // GIVEN a database of its own for the demo (DATABASE_URL, as scripts/demo sets it)
    let db = TestDb::new().await;

    // WHEN the demo runs with 400 orders
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ocapi"))
            .args(["demo", "--rows", "400"])
            .env("DATABASE_URL", url)
            .env("OCAPI_LOG", "warn")
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // THEN it announces the HTTP 500s it injects before the first run
    let announced = stdout
        .find("HTTP 500 or 503 on purpose")
        .unwrap_or_else(|| panic!("{stdout}"));
    let first_run = stdout.find("first run:").unwrap();
    assert!(announced < first_run, "{stdout}");
    // AND it does not warn about its own token file
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("may be read by group or others"),
        "{stderr}"
    );
    // AND it accounts for every one of the 400 orders: the lines add up, and the 7 orders
    // older than 62 days (every 53rd) are named as too old
    let accounted = stdout
        .split("every one of the 400 demo orders, accounted for:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    let mut parts = BTreeMap::new();
    let mut all = None;
    for line in accounted.lines().take_while(|l| l.starts_with("  ")) {
        let (n, what) = line.trim().split_once("  ").unwrap();
        let n: i64 = n.trim().parse().unwrap();
        if what == "in all" {
            all = Some(n);
        } else {
            parts.insert(what.to_owned(), n);
        }
    }
    assert_eq!(all, Some(400), "{stdout}");
    assert_eq!(parts.values().sum::<i64>(), 400, "{parts:?}");
    let count = |prefix: &str| {
        parts
            .iter()
            .filter(|(what, _)| what.starts_with(prefix))
            .map(|(_, n)| *n)
            .sum::<i64>()
    };
    assert_eq!(count("too old"), 7, "{parts:?}");
    // (every 7th is a walk-in; the 371st is also too old)
    assert_eq!(count("anonymous"), 56, "{parts:?}");
    assert!(count("sent") > 250, "{parts:?}");
    // (invalid orders say why: every 71st has the currency `EURO`)
    assert!(
        parts.keys().any(|what| what.starts_with("invalid: ")),
        "{parts:?}"
    );
    // AND its closing psql line works as printed: it reaches the demo's database
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("inspect the ledger: "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_owned();
    assert!(line.contains(&db.name), "{line}");
    let psql = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .args(["-c", &line])
            .env_remove("PGDATABASE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(psql.status.code(), Some(0), "{}", both(&psql));
    assert!(
        String::from_utf8_lossy(&psql.stdout).contains("anonymous"),
        "{}",
        both(&psql)
    );
}

#[tokio::test]
async fn durations_read_as_5m_or_15_1d_everywhere_and_a_dry_run_says_would_send_without_a_run_number(
) {
    // GIVEN orders bought 15 days ago (an upload lag of about 15.0d)
    let db = TestDb::new().await;
    insert_orders(&db, "D", 5, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set purchased_at = now() - interval '15 days'")
        .await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    let path = db.config_path();

    // WHEN a dry run, a run, `runs` and `quality` go
    let dry = ocapi(&path, &["run", "--dry-run"]).await;
    let sent = ocapi(&path, &["run"]).await;
    let runs = ocapi(&path, &["runs"]).await;
    let quality = ocapi(&path, &["quality"]).await;

    // THEN the dry run says what it would send, with no run number
    let text = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(0), "{}", both(&dry));
    assert!(text.contains("dry run of stores-test"), "{text}");
    assert!(text.contains("would send"), "{text}");
    assert!(!text.contains("run 0"), "{text}");
    assert!(!text.contains("  sent "), "{text}");
    // AND the run summary gives its duration and upload lag as people read them
    let text = String::from_utf8_lossy(&sent.stdout);
    assert_eq!(sent.status.code(), Some(0), "{}", both(&sent));
    assert!(
        text.contains("upload lag          median 15.0d, p95 15.0d, max 15.0d"),
        "{text}"
    );
    assert!(!text.contains(" ms"), "{text}");
    assert!(!text.contains(" s,"), "{text}");
    // AND `runs` and `quality` use the same units, and `runs` the same instant format
    let text = String::from_utf8_lossy(&runs.stdout);
    assert!(text.contains("15.0d/15.0d"), "{text}");
    assert!(text.contains(" UTC"), "{text}");
    assert!(!text.contains("Z "), "{text}");
    let text = both(&quality);
    assert!(
        text.contains("median 15.0d, p95 15.0d, max 15.0d"),
        "{text}"
    );
}

/// The report's windows: three days back to tomorrow (`--to` exclusive).
fn window(args: &[&str]) -> Vec<String> {
    let today = chrono::Utc::now().date_naive();
    let mut v: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    v.extend([
        "--from".to_owned(),
        (today - chrono::Duration::days(3)).to_string(),
        "--to".to_owned(),
        (today + chrono::Duration::days(1)).to_string(),
    ]);
    v
}

/// Whether `v` is 1, 2, 2.5 or 5 times a power of ten (or 0): a round step.
fn round_tick(v: f64) -> bool {
    if v == 0.0 {
        return true;
    }
    let magnitude = 10_f64.powf(v.log10().floor());
    let m = v / magnitude;
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .any(|r| ((m * 10.0).round() / 10.0 - r).abs() < 1e-6 && (m - r).abs() < 1e-6)
}

#[tokio::test]
async fn the_report_shows_money_per_currency_and_day_names_match_keys_rounds_ticks_and_tables_few_runs(
) {
    // GIVEN 23 orders (a count that gives no round axis by quarters) in USD and GBP, one
    // invalid, sent in two runs
    let db = TestDb::new().await;
    insert_orders(&db, "U", 13, "2026-01-01T00:00:00Z").await;
    insert_orders(&db, "G", 10, "2026-01-01T00:01:00Z").await;
    db.exec(
        "update shop.store_transactions set currency = 'GBP', country = 'GB' where order_id like 'G%';
         update shop.store_transactions set purchased_at = purchased_at - interval '1 day'
             where order_id in ('U1', 'U2', 'G1');
         update shop.store_transactions set total = null where order_id = 'U3';",
    )
    .await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    crate::support::run(&config).await;
    insert_orders(&db, "N", 2, "2026-01-02T00:00:00Z").await;
    crate::support::run(&config).await;
    let path = db.config_path();

    // WHEN the report is written
    let html_path = db.dir.join("report.html");
    let out = ocapi(
        &path,
        &window(&["report", "--html", html_path.to_str().unwrap()]),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // THEN it is still one self-contained file that Chromium renders without a message
    let html = std::fs::read_to_string(&html_path).unwrap();
    for banned in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(banned), "{banned} in the report");
    }
    let (dom, console) = crate::report::chromium_dump(&html_path);
    assert!(console.is_empty(), "{console:?}");
    let shown = crate::report::figures(&dom);
    // AND per currency and day it shows the source value and the value sent, as reconcile
    // --json gives them
    let day: serde_json::Value = serde_json::from_slice(
        &ocapi(&path, &window(&["reconcile", "--json", "--by", "day"]))
            .await
            .stdout,
    )
    .unwrap();
    let lines = day["lines"].as_array().unwrap();
    let currencies: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l["currency"].as_str())
        .collect();
    assert_eq!(currencies.len(), 2, "{day}");
    for line in lines {
        let (g, c) = (
            line["group"].as_str().unwrap(),
            line["currency"].as_str().unwrap(),
        );
        for field in ["source_value", "sent_value"] {
            let value: f64 = shown[&format!("value/{g}/{c}/{field}")].parse().unwrap();
            assert!(
                (value - line[field].as_f64().unwrap()).abs() < 0.005,
                "value/{g}/{c}/{field}: {value} against {line}"
            );
        }
    }
    // AND match keys are named as the mapping names them, not by Meta's codes
    assert!(html.contains("<th>email</th>"), "{html}");
    assert!(html.contains("<th>phone</th>"), "{html}");
    assert!(!html.contains("<th>em</th>"), "{html}");
    // AND with two runs the run charts are tables only: no line is drawn
    assert!(!html.contains("<polyline"), "run charts drawn for two runs");
    // AND every axis tick is a round number
    let ticks: Vec<f64> = html
        .split("text-anchor=\"end\">")
        .skip(1)
        .filter_map(|t| t.split_once('<'))
        .filter_map(|(t, _)| t.trim_end_matches('%').parse().ok())
        .collect();
    // (one chart, per day: ticks from 0 up by a round step, as 0, 5, 10, 15)
    assert!(ticks.len() >= 3, "{ticks:?}");
    let step = ticks[1] - ticks[0];
    assert!(ticks[0] == 0.0 && round_tick(step), "{ticks:?}");
    assert!(
        ticks
            .iter()
            .enumerate()
            .all(|(k, t)| (t - step * k as f64).abs() < 1e-9),
        "{ticks:?}"
    );
    // AND the time it was made reads as every text output's instants do
    assert!(html.contains(" UTC."), "made-at not in the people's format");
}

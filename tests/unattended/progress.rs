//! What an operator sees: the upload lag, progress lines and bars, the stand-in's token hint.

use super::*;

#[tokio::test]
async fn runs_and_quality_show_the_upload_lag_and_quality_names_the_stand_in() {
    // GIVEN 50 orders sold an hour ago, sent through the stand-in
    let db = TestDb::new().await;
    insert_orders(&db, "R", 50, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    let stats = crate::support::run(&config).await;
    let lag = stats.upload_lag.summary().unwrap();
    assert!((3600.0..3700.0).contains(&lag.median_seconds), "{lag:?}");
    let ocapi = |args: &'static [&'static str]| {
        let config = db.config_path();
        tokio::task::spawn_blocking(move || {
            crate::support::command(&config)
                .args(args)
                .output()
                .unwrap()
        })
    };

    // WHEN listing runs; THEN the run carries its lag, as the run's stats said
    let out = ocapi(&["runs", "--json"]).await.unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["upload_lag_median_seconds"], lag.median_seconds);
    assert_eq!(runs[0]["upload_lag_p95_seconds"], lag.p95_seconds);
    assert_eq!(runs[0]["upload_lag_max_seconds"], lag.max_seconds);
    let out = ocapi(&["runs"]).await.unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("lag p50/p95"), "{table}");
    assert!(table.contains("1.0h/1.0h"), "{table}");

    // WHEN reading quality from the stand-in
    let out = ocapi(&["quality"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);

    // THEN it says the scores are the stand-in's, and shows ocapi's lag beside freshness
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("are the local stand-in's"), "{text}");
    assert!(text.contains("not Meta's"), "{text}");
    let freshness = text.lines().find(|l| l.contains("freshness")).unwrap();
    assert!(freshness.ends_with("p50 1.0h"), "{text}");
    assert!(
        text.contains(&format!(
            "median {}, p95 {}, max {}",
            ocapi::human::duration(lag.median_seconds),
            ocapi::human::duration(lag.p95_seconds),
            ocapi::human::duration(lag.max_seconds)
        )),
        "{text}"
    );
}

#[tokio::test]
async fn run_without_a_terminal_logs_progress_lines() {
    // GIVEN 60 orders read 20 to a page
    let db = TestDb::new().await;
    insert_orders(&db, "R", 60, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 20", None);
    migrate(&config).await;

    // WHEN `ocapi run` runs with stderr piped (no terminal)
    let path = db.config_path();
    let out = tokio::task::spawn_blocking(move || {
        crate::support::command(&path)
            .args(["--log-format", "json", "run"])
            .env("OCAPI_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    // THEN it logs progress lines with rows read, sent and a rate
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "run progress")
        .collect();
    assert!(!progress.is_empty(), "{stderr}");
    let first = &progress[0]["fields"];
    assert!(first["rows_read"].as_u64().unwrap() >= 20, "{first}");
    assert!(first["sent"].as_u64().unwrap() >= 20, "{first}");
    assert!(first["rows_per_sec"].as_u64().is_some(), "{first}");
}

#[tokio::test]
async fn a_wrong_token_against_the_stand_in_says_which_token_it_accepts() {
    // GIVEN the stand-in and a config carrying another token
    let db = TestDb::new().await;
    insert_orders(&db, "R", 2, "2026-01-01T00:00:00Z").await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), "a-real-looking-meta-token", "");
    migrate(&config).await;

    // WHEN a run sends to it
    let error = ocapi::run::run(
        &config,
        ocapi::run::RunOptions::default(),
        std::future::pending(),
    )
    .await
    .unwrap_err();

    // THEN the error names the stand-in's token, not Business Manager
    let message = ocapi::error::chain(&error);
    assert!(message.contains("`ocapi sandbox`"), "{message}");
    assert!(message.contains("sandbox-token"), "{message}");
    assert!(!message.contains("Business Manager"), "{message}");
}

#[tokio::test]
async fn run_on_a_terminal_shows_a_progress_bar() {
    // GIVEN 200 orders read 20 to a page
    let db = TestDb::new().await;
    insert_orders(&db, "R", 200, "2026-01-01T00:00:00Z").await;
    let config = db.config("batch_size = 20", None);
    migrate(&config).await;

    // WHEN `ocapi run` runs on a terminal (a pseudo-terminal from util-linux's `script`)
    let command = format!(
        "{} --config {} run",
        env!("CARGO_BIN_EXE_ocapi"),
        db.config_path().display()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("OCAPI_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    // THEN the terminal showed the bar: rows read, rate and orders sent, redrawn in place
    assert_eq!(out.status.code(), Some(0));
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains(" rows read  "), "{screen}");
    assert!(screen.contains(" rows/s  "), "{screen}");
    // (the bar redraws at most 20 times a second, so which counts it showed last varies)
    assert!(screen.contains(" sent, 0 invalid, 0 rejected"), "{screen}");
    assert!(!screen.contains("run progress"), "{screen}");
    // AND the log line of the finished run, written while the bar was up, starts on a line
    // of its own, not glued to the bar's text
    let at = screen
        .find("run finished")
        .expect("the run finished line was logged");
    let line_start = ["\n", "\r", "\x1b[2K"]
        .iter()
        .filter_map(|mark| screen[..at].rfind(mark).map(|i| i + mark.len()))
        .max()
        .unwrap_or(0);
    assert!(
        !screen[line_start..at].contains("rows read"),
        "{:?}",
        &screen[line_start..at]
    );
}

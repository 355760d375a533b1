//! Text from the network or the source reaching a terminal or a chat (issue 23 kind 10), and the
//! settings that guard a deployment (kind 11).

use super::*;

/// Three orders, and a config sending them to an endpoint that refuses the token with a hostile
/// message (kept alive by the returned server) and alerting the webhook in `TEST_ALERT_WEBHOOK`.
async fn three_orders_for_an_endpoint_refusing_the_token_hostilely() -> (TestDb, Canned) {
    let endpoint = Canned::start(|_| hostile_error(190, None)).await;
    let db = TestDb::new().await;
    insert_orders(&db, "R", 3, "2026-01-01T00:00:00Z").await;
    db.meta_config("", &endpoint.base_url(), TOKEN, "");
    let text = std::fs::read_to_string(db.config_path()).unwrap()
        + "\n[alerts]\nwebhook_url_env = \"TEST_ALERT_WEBHOOK\"\n";
    std::fs::write(db.config_path(), text).unwrap();
    migrate(&ocapi::config::Config::load(&db.config_path()).unwrap()).await;
    (db, endpoint)
}

/// `ocapi run` alerting `webhook`'s `/hooks/x`: its exit code and stderr.
async fn run_alerting_to(db: &TestDb, webhook: &Canned) -> (Option<i32>, String) {
    let mut command = crate::support::command(&db.config_path());
    command.arg("run").env(
        "TEST_ALERT_WEBHOOK",
        format!("{}/hooks/x", webhook.base_url()),
    );
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let (code, stderr, _) = outcome(&output);
    (code, stderr)
}

#[tokio::test]
async fn escape_sequences_in_the_endpoints_messages_reach_no_terminal_and_no_chat() {
    // GIVEN an endpoint refusing the token with a hostile message, and a chat webhook
    let webhook = Canned::start(|_| answer(200, &[], "ok")).await;
    let (db, _endpoint) = three_orders_for_an_endpoint_refusing_the_token_hostilely().await;

    // WHEN a run fails on it
    let (code, stderr) = run_alerting_to(&db, &webhook).await;

    // THEN the error line shows the message escaped
    assert_eq!(code, Some(1), "{stderr}");
    assert_escaped_for_a_terminal(&stderr);
    // AND so does `runs`, which shows the run's recorded error
    let (code, _, stdout) = outcome(&ocapi(&db.config_path(), &["runs"]).await);
    assert_eq!(code, Some(0));
    assert_escaped_for_a_terminal(&stdout);
    // AND the chat got one line, without markup
    let posts = webhook.received();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let alert: serde_json::Value = serde_json::from_slice(&posts[0].body).unwrap();
    let alert = alert["text"].as_str().unwrap();
    assert!(
        !alert.contains('\u{1b}') && !alert.contains('\n'),
        "{alert}"
    );
    assert!(
        !alert.contains("<!channel>") && !alert.contains("<https://"),
        "{alert}"
    );
    assert!(
        alert.contains("&lt;!channel&gt; &lt;https://evil.example|Meta&gt;"),
        "{alert}"
    );
    assert_eq!(posts[0].uri, "/hooks/x");
    // AND `check`, which prints Meta's refusal of the token and its other findings, shows them
    // escaped too
    let (code, stderr, stdout) = outcome(&ocapi(&db.config_path(), &["check"]).await);
    assert_ne!(code, Some(0), "{stderr}");
    assert_escaped_for_a_terminal(&stdout);
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("error: all good")),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_alert_webhook_that_redirects_is_not_followed() {
    // GIVEN a webhook redirecting every post to another server, and a run that fails
    let other = Canned::start(|_| answer(200, &[], "ok")).await;
    let target = format!("{}/elsewhere", other.base_url());
    let webhook = Canned::start(move |_| answer(307, &[("location", target.as_str())], "")).await;
    let (db, _endpoint) = three_orders_for_an_endpoint_refusing_the_token_hostilely().await;

    // WHEN the run alerts
    let (code, stderr) = run_alerting_to(&db, &webhook).await;

    // THEN the alert went to the webhook only, and its 307 is a failed delivery
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(webhook.received().len(), 1, "{stderr}");
    assert!(other.received().is_empty(), "{:?}", other.received());
    assert!(stderr.contains("answered HTTP 307"), "{stderr}");
    assert!(!stderr.contains("alert sent"), "{stderr}");
}

#[tokio::test]
async fn escape_sequences_in_a_rejection_and_a_source_value_reach_no_terminal() {
    // GIVEN an order with an escape sequence in a source value, and an endpoint rejecting
    // events with a hostile message
    let endpoint = Canned::start(|_| hostile_error(100, Some(2_804_001))).await;
    let db = TestDb::new().await;
    insert_orders(&db, "R", 1, "2026-01-01T00:00:00Z").await;
    db.exec("update shop.store_transactions set city = E'\\x1b[2J\\x1b[31mbad\\nerror: all good'")
        .await;
    let config = db.meta_config("", &endpoint.base_url(), TOKEN, "");
    migrate(&config).await;

    // WHEN a run records the order rejected, and `explain` shows it
    let (code, stderr, _) = outcome(&ocapi(&db.config_path(), &["run"]).await);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(db.ledger_counts().await.get("rejected"), Some(&1));
    let (code, stderr, stdout) = outcome(&ocapi(&db.config_path(), &["explain", "R1"]).await);

    // THEN Meta's message in the ledger row is shown escaped, and so is the source value
    assert_eq!(code, Some(0), "{stderr}");
    assert_escaped_for_a_terminal(&stdout);
    assert!(stdout.contains("city           \\x1b***"), "{stdout}");
}

#[tokio::test]
async fn plain_http_to_a_public_host_is_refused_unless_allowed() {
    // GIVEN a config sending to Meta over plain http
    let db = TestDb::new().await;
    db.meta_config("", "http://127.0.0.1:9", TOKEN, "");
    db.edit_config_text(&[("http://127.0.0.1:9", "http://graph.facebook.com")]);

    // WHEN any command loads it
    let (code, stderr, _) = outcome(&ocapi(&db.config_path(), &["check"]).await);
    // THEN it exits 2 naming the key and the way out
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("destination.base_url"), "{stderr}");
    assert!(stderr.contains("allow_plain_http"), "{stderr}");
    // AND with the opt-in, the config loads
    let config = db.edit_config(&[(
        "kind = \"meta\"",
        "kind = \"meta\"\nallow_plain_http = true",
    )]);
    assert!(config.destination.allow_plain_http);
}

#[cfg(unix)]
#[tokio::test]
async fn a_token_file_others_may_read_is_warned_about_in_check_and_the_log() {
    use std::os::unix::fs::PermissionsExt as _;
    // GIVEN a token file anyone on the machine may read
    let graph = sandbox(Faults::default()).await;
    let db = TestDb::new().await;
    insert_orders(&db, "R", 2, "2026-01-01T00:00:00Z").await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;
    let token = db.dir.join("token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();

    // WHEN `check` and a run use it
    let (code, _, stdout) = outcome(&ocapi(&db.config_path(), &["check"]).await);
    let (run_code, stderr, _) = outcome(&ocapi(&db.config_path(), &["run"]).await);

    // THEN both work, and both say so, naming the key, the file and its mode
    assert_eq!(code, Some(0), "{stdout}");
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("warn") && l.contains("may be read by group or others"))
        .unwrap_or_else(|| panic!("no warning in\n{stdout}"));
    assert!(
        warning.contains("destination.access_token_file")
            && warning.contains(&token.display().to_string())
            && warning.contains("0644"),
        "{warning}"
    );
    assert_eq!(run_code, Some(0), "{stderr}");
    assert!(
        stderr.contains("may be read by group or others (mode 0644)"),
        "{stderr}"
    );
    // AND a file only its owner may read draws no warning
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, _, stdout) = outcome(&ocapi(&db.config_path(), &["check"]).await);
    assert!(
        !stdout.contains("may be read by group or others"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_config_error_keeps_tomls_line_breaks_and_escapes_the_rest() {
    // GIVEN a config whose line holds an escape sequence (a control character TOML refuses)
    let db = TestDb::new().await;
    db.config("", None);
    db.edit_config_text(&[(
        "[connector]\n",
        "[connector]\nnmae = \"typo\" # \u{1b}[2J\n",
    )]);

    // WHEN a command reads it
    let (code, stderr, _) = outcome(&ocapi(&db.config_path(), &["check"]).await);

    // THEN toml's message keeps its lines (the file's line, the caret under the key), and no
    // line carries a raw control character or a `\n` written out
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("TOML parse error at line 3"), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.trim_start().starts_with('|')),
        "{stderr}"
    );
    assert!(!stderr.contains("\\n"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

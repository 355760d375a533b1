//! Meta's store-purchase contract in full (issue 16): Limited Data Use, opt-out, several values
//! per customer field, delivery category, upload tag, returns and zero totals. Each test runs
//! the connector against the local stand-in and asserts on the JSON it received and on the
//! ledger.

use ocapi::config::Config;
use ocapi::sandbox::Faults;
use serde_json::json;

use crate::support::{migrate, ocapi, run, sandbox, TestDb, TOKEN};

/// Rewrites the config file `meta_config` wrote: `[mapping]` and `[defaults]` extras, and loads
/// it.
fn with_extras(db: &TestDb, mapping: &str, defaults: &str) -> Config {
    let path = db.config_path();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[mapping]\n", &format!("[mapping]\n{mapping}\n"))
        .replace("[defaults]\n", &format!("[defaults]\n{defaults}\n"));
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

/// The accepted event of one order.
fn event_of(graph: &ocapi::sandbox::Sandbox, order_id: &str) -> serde_json::Value {
    graph
        .events()
        .into_iter()
        .find(|e| e["event_id"] == order_id)
        .unwrap_or_else(|| panic!("{order_id} was not received"))
}

#[tokio::test]
async fn limited_data_use_is_sent_per_order_as_mapped_and_defaulted_and_broken_rules_are_invalid() {
    // GIVEN orders whose LDU column holds LDU, nothing, NULL (the default: LDU, geolocated), a
    // boolean-ish 'true', an unknown option, LDU without a state (the default's applies) and
    // LDU with a state code Meta does not document
    let db = TestDb::new().await;
    db.exec(
        "alter table shop.store_transactions add column dpo text, add column dpo_country int,
             add column dpo_state int;
         insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email, dpo, dpo_country, dpo_state) values
         ('LDU-CA', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', 'LDU', 1, 1000),
         ('NO-LDU', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', '', null, null),
         ('DEFAULT', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', null, null, null),
         ('BOOL', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', 'true', 1, 0),
         ('GDPR', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', 'GDPR', 1, 1000),
         ('NOSTATE', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', 'LDU', 1, null),
         ('BADSTATE', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', 'LDU', 1, 7);",
    )
    .await;
    let graph = sandbox(Faults::default()).await;
    db.meta_config("", &graph.base_url(), TOKEN, "");
    let config = with_extras(
        &db,
        "data_processing_options = \"dpo\"\ndata_processing_options_country = \"dpo_country\"\n\
         data_processing_options_state = \"dpo_state\"",
        "data_processing_options = [\"LDU\"]\ndata_processing_options_country = 0\n\
         data_processing_options_state = 0",
    );
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN the stand-in received the fields Meta documents, per order
    let ldu = event_of(&graph, "LDU-CA");
    assert_eq!(ldu["data_processing_options"], json!(["LDU"]));
    assert_eq!(ldu["data_processing_options_country"], 1);
    assert_eq!(ldu["data_processing_options_state"], 1000);
    let none = event_of(&graph, "NO-LDU");
    assert_eq!(none["data_processing_options"], json!([]));
    assert!(none.get("data_processing_options_country").is_none());
    let default = event_of(&graph, "DEFAULT");
    assert_eq!(default["data_processing_options"], json!(["LDU"]));
    assert_eq!(default["data_processing_options_country"], 0);
    assert_eq!(default["data_processing_options_state"], 0);
    assert_eq!(event_of(&graph, "BOOL")["data_processing_options_state"], 0);
    // (a NULL state takes the default's)
    assert_eq!(
        event_of(&graph, "NOSTATE")["data_processing_options_state"],
        0
    );
    // AND the broken ones are invalid with the rule named
    assert_eq!(stats.sent, 5);
    assert_eq!(
        db.ledger_text("GDPR", "reason").await.as_deref(),
        Some("data_processing_options other than LDU")
    );
    assert_eq!(
        db.ledger_text("BADSTATE", "reason").await.as_deref(),
        Some("data_processing_options_country or _state is not a code Meta documents")
    );
    // AND the ledger records LDU per order, and reconcile reports it
    assert_eq!(
        db.ledger_text("LDU-CA", "ldu").await.as_deref(),
        Some("true")
    );
    assert_eq!(
        db.ledger_text("NO-LDU", "ldu").await.as_deref(),
        Some("false")
    );
    let report = crate::support::reconcile_around_today(&config).await;
    assert_eq!(report.total.sent_ldu, 4);
}

#[tokio::test]
async fn the_stand_in_refuses_ldu_without_its_geography_as_meta_does() {
    // GIVEN the stand-in, and a request whose event has LDU but no country or state
    let graph = sandbox(Faults::default()).await;
    let event = json!({
        "event_name": "Purchase",
        "event_time": chrono::Utc::now().timestamp() - 60,
        "action_source": "physical_store",
        "user_data": {"em": ["a".repeat(64)]},
        "custom_data": {"value": 1.0, "currency": "USD"},
        "data_processing_options": ["LDU"],
    });
    let url = format!("{}/v26.0/1234567890/events", graph.base_url());
    let client = reqwest::Client::new();

    // WHEN it is posted
    let answer = client
        .post(&url)
        .json(&json!({"data": [event], "access_token": TOKEN}))
        .send()
        .await
        .unwrap();

    // THEN it is refused with code 100 and a subcode, like Meta
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert!(body["error"]["error_subcode"].is_number(), "{body}");

    // AND an unknown option is refused too
    let mut other = event.clone();
    other["data_processing_options"] = json!(["GDPR"]);
    other["data_processing_options_country"] = json!(1);
    other["data_processing_options_state"] = json!(1000);
    let answer = client
        .post(&url)
        .json(&json!({"data": [other], "access_token": TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
}

#[tokio::test]
async fn opt_out_delivery_category_and_upload_tag_are_sent_as_configured() {
    // GIVEN an opt-out column, a pickup column, a default delivery category and an upload tag
    let db = TestDb::new().await;
    db.exec(
        "alter table shop.store_transactions add column attribution_only boolean,
             add column pickup text;
         insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email, attribution_only, pickup) values
         ('OPT', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', true, 'curbside'),
         ('PLAIN', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', null, null),
         ('DRONE', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co', false, 'drone');",
    )
    .await;
    let graph = sandbox(Faults::default()).await;
    db.meta_config(
        "",
        &graph.base_url(),
        TOKEN,
        "upload_tag = \"store-sales-2026\"",
    );
    let config = with_extras(
        &db,
        "opt_out = \"attribution_only\"\ndelivery_category = \"pickup\"",
        "opt_out = false\ndelivery_category = \"in_store\"",
    );
    migrate(&config).await;

    // WHEN the connector runs
    run(&config).await;

    // THEN each event carries them, and every request the tag
    let opt = event_of(&graph, "OPT");
    assert_eq!(opt["opt_out"], true);
    assert_eq!(opt["custom_data"]["delivery_category"], "curbside");
    let plain = event_of(&graph, "PLAIN");
    assert_eq!(plain["opt_out"], false);
    assert_eq!(plain["custom_data"]["delivery_category"], "in_store");
    assert_eq!(
        db.ledger_text("DRONE", "reason").await.as_deref(),
        Some("delivery_category is not in_store, curbside or home_delivery")
    );
    let bodies = graph.bodies();
    assert!(!bodies.is_empty());
    for body in bodies {
        assert_eq!(body["upload_tag"], "store-sales-2026");
    }
}

#[tokio::test]
async fn several_values_per_customer_field_are_each_hashed_deduplicated_and_sent_as_a_list() {
    // GIVEN two email columns (one a receipt email, sometimes the same address in another case,
    // sometimes unusable) and a text[] of phones
    let db = TestDb::new().await;
    db.exec(
        "alter table shop.store_transactions add column receipt_email text,
             add column phones text[];
         insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email, receipt_email, phones) values
         ('TWO', now() - interval '1 hour', now(), 10, 'USD', 'Jane@Example.com', 'jane.work@example.com', '{\"(650) 555-1212\",\"+44 20 7946 0958\"}'),
         ('SAME', now() - interval '1 hour', now(), 10, 'USD', 'Jane@Example.com', ' jane@example.COM ', null),
         ('BAD', now() - interval '1 hour', now(), 10, 'USD', 'Jane@Example.com', 'not-an-email', '{}');",
    )
    .await;
    let graph = sandbox(Faults::default()).await;
    db.meta_config("", &graph.base_url(), TOKEN, "");
    let path = db.config_path();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "email = \"email\"",
            "email = [\"email\", \"receipt_email\"]",
        )
        .replace("phone = \"phone\"", "phone = \"phones\"");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN each value is hashed on its own; duplicates after normalization go once
    let sha = |text: &str| ocapi::transform::hash::sha256(text).to_string();
    let two = event_of(&graph, "TWO");
    assert_eq!(
        two["user_data"]["em"],
        json!([sha("jane@example.com"), sha("jane.work@example.com")])
    );
    assert_eq!(
        two["user_data"]["ph"],
        json!([sha("16505551212"), sha("442079460958")])
    );
    assert_eq!(
        event_of(&graph, "SAME")["user_data"]["em"],
        json!([sha("jane@example.com")])
    );
    // AND an unusable value is dropped and counted, the others kept
    assert_eq!(
        event_of(&graph, "BAD")["user_data"]["em"],
        json!([sha("jane@example.com")])
    );
    assert_eq!(stats.dropped.get("em"), Some(&1));
    // AND match-key coverage counts an event once per key, in the stats and the ledger
    assert_eq!(stats.match_keys.get("em"), Some(&3));
    assert_eq!(
        db.ledger_text("TWO", "match_keys").await.as_deref(),
        Some("{em,ph,country}")
    );
    assert_eq!(stats.match_keys.get("ph"), Some(&1));
    // AND explain shows both values, masked
    let text = ocapi::commands::explain::explain(&config, "TWO")
        .await
        .unwrap();
    assert!(text.contains("j***@e***.com, j***@e***.com"), "{text}");
}

#[tokio::test]
async fn a_negative_total_is_an_invalid_return_and_a_zero_total_is_sent_and_counted() {
    // GIVEN a sale, a return booked with a negative total, and a free order
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('SALE', now() - interval '1 hour', now(), 30, 'USD', 'a@b.co'),
         ('RETURN', now() - interval '1 hour', now(), -30, 'USD', 'a@b.co'),
         ('FREE', now() - interval '1 hour', now(), 0, 'USD', 'a@b.co');",
    )
    .await;
    let graph = sandbox(Faults::default()).await;
    let config = db.meta_config("", &graph.base_url(), TOKEN, "");
    migrate(&config).await;

    // WHEN the connector runs
    let stats = run(&config).await;

    // THEN the return is not sent but recorded with its reason; the free order is sent
    assert_eq!(stats.sent, 2);
    assert_eq!(stats.zero_value, 1);
    assert_eq!(event_of(&graph, "FREE")["custom_data"]["value"], 0.0);
    assert_eq!(
        db.ledger_text("RETURN", "reason").await.as_deref(),
        Some("negative value (a return or void is not a purchase)")
    );
    // AND reconcile counts the return apart, and the source total still reconciles
    let report = crate::support::reconcile_around_today(&config).await;
    let t = &report.total;
    assert_eq!((t.returns, t.invalid), (1, 0));
    assert_eq!(t.returns_value, rust_decimal::Decimal::from(-30));
    assert_eq!(t.source_value, t.sent_value + t.returns_value);
}

#[tokio::test]
async fn a_bad_default_is_a_configuration_error_naming_the_key_and_line() {
    let db = TestDb::new().await;
    db.config("", None);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[defaults]\n",
        "[defaults]\ndelivery_category = \"drone\"\n",
    );
    std::fs::write(&path, text).unwrap();
    let out = ocapi(&path, &["check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("delivery_category") && said.contains("line"),
        "{said}"
    );

    let text = std::fs::read_to_string(&path).unwrap().replace(
        "delivery_category = \"drone\"",
        "data_processing_options_state = 7",
    );
    std::fs::write(&path, text).unwrap();
    let out = ocapi(&path, &["check"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("data_processing_options_state"));
}

#[tokio::test]
async fn hash_and_dry_run_show_several_values_and_the_privacy_fields() {
    // GIVEN a config with LDU by default, and an order
    let db = TestDb::new().await;
    db.exec(
        "insert into shop.store_transactions (order_id, purchased_at, updated_at, total, currency, email) values
         ('D-1', now() - interval '1 hour', now(), 10, 'USD', 'a@b.co')",
    )
    .await;
    db.config("", None);
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[defaults]\n",
        "[defaults]\ndata_processing_options = [\"LDU\"]\ndata_processing_options_country = 1\n\
         data_processing_options_state = 1000\nopt_out = true\n",
    );
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    migrate(&config).await;

    // WHEN hash is given two emails that normalize alike and a third, and a dry run runs
    let hash = ocapi(
        &path,
        &[
            "hash",
            "em",
            "Jane@Example.com",
            " jane@example.com",
            "j2@example.com",
        ],
    )
    .await;
    let dry = ocapi(&path, &["run", "--dry-run"]).await;

    // THEN hash shows each value, and that the first two are sent once
    let said = String::from_utf8_lossy(&hash.stdout);
    assert!(said.contains("value 3:"), "{said}");
    assert!(said.contains("the same as value 1"), "{said}");
    // AND the dry run prints the fields a run would send
    let event: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&dry.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(event["data_processing_options"], json!(["LDU"]));
    assert_eq!(event["data_processing_options_state"], 1000);
    assert_eq!(event["opt_out"], true);
}

#[tokio::test]
async fn an_unset_token_variable_is_a_configuration_error_exit_2() {
    // GIVEN a meta destination whose access_token_env names a variable that is not set
    let db = TestDb::new().await;
    let graph = sandbox(Faults::default()).await;
    db.meta_config("", &graph.base_url(), TOKEN, "");
    let path = db.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .lines()
        .filter(|l| !l.starts_with("access_token_file"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "[destination]\n",
            "[destination]\naccess_token_env = \"OCAPI_TEST_TOKEN_NOT_SET\"\n",
        );
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    migrate(&config).await;

    // WHEN a run starts
    // (no test environment sets OCAPI_TEST_TOKEN_NOT_SET)
    let out = ocapi(&path, &["run"]).await;

    // THEN it exits 2 naming the key, and nothing was sent
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_token_env"));
    assert_eq!(graph.stats().requests, 0);
}

#[tokio::test]
async fn with_json_logs_a_failed_command_ends_with_a_json_line_too() {
    // GIVEN a config whose ledger has not been migrated
    let db = TestDb::new().await;
    db.config("", None);
    let path = db.config_path();

    // WHEN a run fails with --log-format json
    let out = ocapi(&path, &["--log-format", "json", "run"]).await;

    // THEN it exits 2 and every stderr line is JSON, the error among them
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"));
        assert!(parsed.is_object());
    }
    assert!(stderr.contains("ocapi migrate"), "{stderr}");
}

#[tokio::test]
async fn with_json_logs_a_usage_error_is_a_json_line_and_exits_2() {
    // GIVEN any config
    let db = TestDb::new().await;
    db.config("", None);

    // WHEN a flag's value is not what it takes, with --log-format json
    let out = ocapi(
        &db.config_path(),
        &["--log-format", "json", "runs", "--last", "abc"],
    )
    .await;

    // THEN it exits 2 and every stderr line is JSON
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.trim().is_empty());
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"));
        assert_eq!(parsed["level"], "ERROR", "{line}");
    }
}

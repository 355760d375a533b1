//! Unit tests of `config`.

use super::*;

const MINIMAL: &str = TEST_CONFIG;

#[test]
fn minimal_config_gets_defaults() {
    let config = Config::parse(MINIMAL, Path::new("x.toml")).unwrap();
    assert_eq!(config.source.batch_size.get(), DEFAULT_SOURCE_BATCH_SIZE);
    assert_eq!(config.source.lookback, Lookback::default());
    assert_eq!(config.destination.batch_size, 1000);
    assert_eq!(config.ledger.schema, "ocapi");
    assert!(config.normalize.hash_external_id);
    assert_eq!(
        config.alerts.token_expiry_warning,
        Duration::from_secs(14 * 86_400)
    );
    assert_eq!(config.alerts.meta_shortfall, 0.02);
    assert_eq!(
        config.reconcile.meta_settle,
        Duration::from_secs(2 * 86_400)
    );
    let text = format!("{MINIMAL}\n[alerts]\nmeta_shortfall = 1.5\n");
    let error = Config::parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(
        error.to_string().contains("alerts.meta_shortfall"),
        "{error}"
    );
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = MINIMAL.replace("table = \"t\"", "table = \"t\"\ntabel = \"x\"");
    let error = Config::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("tabel"), "{error}");
    assert!(error.contains("line 7"), "{error}");
}

#[test]
fn missing_required_key_is_named() {
    let text = MINIMAL.replace("watermark_column = \"updated_at\"\n", "");
    let error = Config::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("watermark_column"), "{error}");
}

#[test]
fn batch_size_over_meta_limit_is_rejected() {
    let text = MINIMAL.replace("path = \"out.ndjson\"", "path = \"o\"\nbatch_size = 1001");
    let error = Config::parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(matches!(
        error,
        ConfigError::Invalid {
            key: "destination.batch_size",
            ..
        }
    ));
}

#[test]
fn meta_keys_under_file_kind_are_rejected() {
    let text = MINIMAL.replace(
        "path = \"out.ndjson\"",
        "path = \"o\"\naccess_token_env = \"X\"",
    );
    let error = Config::parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(matches!(
        error,
        ConfigError::Invalid {
            key: "destination.access_token_env",
            ..
        }
    ));
}

#[test]
fn plain_http_to_a_remote_host_needs_allow_plain_http() {
    let meta = TEST_CONFIG.replace(
        "kind = \"file\"\ndataset_id = \"123\"\npath = \"out.ndjson\"",
        "kind = \"meta\"\ndataset_id = \"123\"\naccess_token_env = \"T\"\n\
         base_url = \"http://graph.facebook.com\"",
    );
    let error = Config::parse(&meta, Path::new("x.toml")).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                key: "destination.base_url",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("allow_plain_http"), "{error}");
    let allowed = meta.replace(
        "kind = \"meta\"",
        "kind = \"meta\"\nallow_plain_http = true",
    );
    assert!(Config::parse(&allowed, Path::new("x.toml")).is_ok());
    let local = meta.replace("graph.facebook.com", "127.0.0.1:4599");
    assert!(Config::parse(&local, Path::new("x.toml")).is_ok());
    let tls = meta.replace("http://", "https://");
    assert!(Config::parse(&tls, Path::new("x.toml")).is_ok());
}

#[test]
fn bad_duration_is_explained() {
    let text = MINIMAL.replace("table = \"t\"", "table = \"t\"\nlookback = \"soon\"");
    let error = Config::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid duration"), "{error}");
}

#[test]
fn source_start_is_a_text_or_an_integer() {
    let with =
        |start: &str| MINIMAL.replace("table = \"t\"", &format!("table = \"t\"\nstart = {start}"));
    let start =
        |text: &str| Config::parse(&with(text), Path::new("x.toml")).map(|c| c.source.start);
    assert_eq!(start("0").unwrap().as_deref(), Some("0"));
    assert_eq!(start("1700000000").unwrap().as_deref(), Some("1700000000"));
    assert_eq!(
        start("\"2026-11-01T00:00:00Z\"").unwrap().as_deref(),
        Some("2026-11-01T00:00:00Z")
    );
    assert_eq!(
        Config::parse(MINIMAL, Path::new("x.toml"))
            .unwrap()
            .source
            .start,
        None
    );
    let error = start("1.5").unwrap_err().to_string();
    assert!(
        error.contains("start = 1.5") && error.contains("or an integer"),
        "{error}"
    );
}

#[test]
fn the_example_connector_toml_parses() {
    let text = include_str!("../../connector.toml");
    Config::parse(text, Path::new("connector.toml")).unwrap();
}

#[test]
fn ldu_by_default_needs_its_geography_and_an_upload_tag_is_not_empty() {
    let base = TEST_CONFIG.replace(
        "[defaults]",
        "[defaults]\ndata_processing_options = [\"LDU\"]",
    );
    let error = Config::parse(&base, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("defaults.data_processing_options"),
        "{error}"
    );
    let fixed = base.replace(
        "data_processing_options = [\"LDU\"]",
        "data_processing_options = [\"LDU\"]\ndata_processing_options_country = 0\n\
         data_processing_options_state = 0",
    );
    assert!(Config::parse(&fixed, Path::new("t.toml")).is_ok());
    let tagged = TEST_CONFIG.replace("[destination]", "[destination]\nupload_tag = \" \"");
    let error = Config::parse(&tagged, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("destination.upload_tag"), "{error}");
}

#[test]
fn database_waits_have_bounds_by_default_and_no_key_turns_them_off() {
    let config = Config::parse(MINIMAL, Path::new("x.toml")).unwrap();
    assert_eq!(config.source.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(config.source.stall_timeout, DEFAULT_STALL_TIMEOUT);
    assert_eq!(config.ledger.connect_timeout, Duration::from_secs(10));
    assert_eq!(config.ledger.stall_timeout, Duration::from_secs(60));
    let text = format!("{MINIMAL}[ledger]\nstall_timeout = \"0s\"\n");
    let error = Config::parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                key: "ledger.stall_timeout",
                ..
            }
        ),
        "{error}"
    );
    let text = MINIMAL.replace(
        "table = \"t\"",
        "table = \"t\"\nconnect_timeout = \"500ms\"",
    );
    let error = Config::parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(
        error.to_string().contains("`source.connect_timeout`"),
        "{error}"
    );
}

//! Unit tests of `validate`.

use super::*;
use crate::sandbox::view::is_sha256_hex;

/// A fixed clock for the rules.
const NOW: i64 = 1_764_300_000;

/// A hex digest stand-in.
fn digest(byte: char) -> String {
    byte.to_string().repeat(64)
}

/// A valid physical-store purchase.
fn event() -> Value {
    json!({
        "event_name": "Purchase",
        "event_time": NOW - 3600,
        "event_id": "R1",
        "action_source": "physical_store",
        "user_data": {"em": [digest('a')], "ph": [digest('b')]},
        "custom_data": {"value": 12.5, "currency": "USD", "order_id": "R1"}
    })
}

#[test]
fn a_form_body_as_the_sdks_send_it_reads_like_the_json_one() {
    // GIVEN the body Meta's Python SDK posts: form fields, `data` a JSON list of JSON texts
    let data = serde_json::to_string(&vec![event().to_string()]).unwrap();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("data", &data)
        .append_pair("access_token", "t")
        .finish();

    // WHEN it is parsed and checked
    let fields = parse_body(body.as_bytes()).unwrap();
    let count = check_events(&fields, &rules()).unwrap();

    // THEN it holds the same event, and the token as a string field
    assert_eq!(count, 1);
    assert_eq!(decode_events(body.as_bytes()), vec![event()]);
    let token = fields.access_token.as_ref().and_then(Scalar::as_str);
    assert_eq!(token, Some("t"));
    assert!(parse_body(b"not json, not a form").is_err());
}

/// Rules at [`NOW`] that name indexes.
fn rules() -> Rules<'static> {
    Rules {
        now: NOW,
        name_index: true,
        reject_order_prefix: None,
    }
}

/// Parses `body` as the sandbox receives it and checks its events.
fn check_body(body: &Value, rules: &Rules<'_>) -> Result<usize, GraphError> {
    let bytes = body.to_string();
    check_events(&parse_body(bytes.as_bytes())?, rules)
}

/// Checks a single event at index 0 and returns its error, if any.
fn check(event: Value) -> Option<GraphError> {
    check_body(&json!({ "data": [event] }), &rules()).err()
}

#[test]
fn a_valid_purchase_passes() {
    assert_eq!(check(event()), None);
}

#[test]
fn a_missing_required_field_is_named_with_its_path() {
    let mut bad = event();
    bad.as_object_mut().unwrap().remove("event_time");
    let error = check(bad).unwrap();
    assert_eq!(
        (error.code, error.error_subcode),
        (100, Some(SUBCODE_REQUIRED))
    );
    assert_eq!(
        error.message,
        "The parameter $['data'][0]['event_time'] is required."
    );
}

#[test]
fn physical_store_events_may_be_62_days_old_but_others_7() {
    let mut old = event();
    old["event_time"] = json!(NOW - 61 * 86_400);
    assert_eq!(check(old.clone()), None);
    old["action_source"] = json!("website");
    assert_eq!(check(old).unwrap().error_subcode, Some(SUBCODE_TOO_OLD));
    let mut older = event();
    older["event_time"] = json!(NOW - 63 * 86_400);
    assert_eq!(check(older).unwrap().error_subcode, Some(SUBCODE_TOO_OLD));
}

#[test]
fn events_more_than_five_minutes_ahead_are_rejected() {
    let mut soon = event();
    soon["event_time"] = json!(NOW + 299);
    assert_eq!(check(soon.clone()), None);
    soon["event_time"] = json!(NOW + 301);
    assert_eq!(check(soon).unwrap().error_subcode, Some(SUBCODE_INVALID));
}

#[test]
fn unhashed_or_uppercase_customer_keys_are_rejected_but_plain_external_id_is_not() {
    let mut plain = event();
    plain["user_data"]["em"] = json!(["jane@example.com"]);
    assert_eq!(check(plain).unwrap().code, 100);
    let mut upper = event();
    upper["user_data"]["ph"] = json!(digest('A'));
    assert_eq!(check(upper).unwrap().code, 100);
    let mut external = event();
    external["user_data"]["external_id"] = json!(["loyalty-42"]);
    assert_eq!(check(external), None);
    let mut appendix = event();
    appendix["user_data"]["em"] = json!([format!("{}.AQYBAQIA", digest('c'))]);
    assert_eq!(check(appendix), None);
}

#[test]
fn a_digest_is_64_lowercase_hex_digits_and_an_optional_appendix() {
    let hex = digest('0').replace("00", "9f");
    assert!(is_sha256_hex(&hex));
    assert!(is_sha256_hex(&format!("{hex}.AQ-_9")));
    for bad in [
        hex[..63].to_owned(),
        format!("{hex}a"),
        format!("{hex}."),
        format!("{hex}.a.b"),
        format!("{hex}.a b"),
        format!("{}.{}", &hex[..32], &hex[33..]),
        hex.to_uppercase(),
        format!("{}g", &hex[..63]),
        String::new(),
    ] {
        assert!(!is_sha256_hex(&bad), "{bad}");
    }
}

#[test]
fn too_broad_customer_information_is_rejected() {
    for keys in [
        vec![],
        vec!["ct", "country", "st", "zp", "ge"],
        vec!["db"],
        vec!["fn", "ge"],
        vec!["ln"],
    ] {
        let mut broad = event();
        let user_data: Map<String, Value> = keys
            .iter()
            .map(|key| ((*key).to_owned(), json!([digest('d')])))
            .collect();
        broad["user_data"] = Value::Object(user_data);
        assert_eq!(
            check(broad).unwrap().error_subcode,
            Some(SUBCODE_INSUFFICIENT),
            "{keys:?}"
        );
    }
    let mut enough = event();
    enough["user_data"] = json!({"fn": [digest('e')], "ln": [digest('f')], "zp": [digest('1')]});
    assert_eq!(check(enough), None);
}

#[test]
fn a_purchase_needs_a_numeric_value_and_a_currency() {
    let mut text_value = event();
    text_value["custom_data"]["value"] = json!("12.50");
    assert_eq!(
        check(text_value).unwrap().error_subcode,
        Some(SUBCODE_PURCHASE)
    );
    let mut no_currency = event();
    no_currency["custom_data"]
        .as_object_mut()
        .unwrap()
        .remove("currency");
    assert_eq!(
        check(no_currency).unwrap().error_subcode,
        Some(SUBCODE_PURCHASE)
    );
}

#[test]
fn bad_action_sources_and_event_times_are_rejected() {
    let mut source = event();
    source["action_source"] = json!("store");
    assert_eq!(check(source).unwrap().code, 100);
    let mut time = event();
    time["event_time"] = json!(1.5);
    assert_eq!(check(time).unwrap().code, 100);
}

#[test]
fn data_as_json_strings_is_decoded() {
    let events = Value::Array(vec![Value::String(event().to_string())]);
    let body = json!({ "data": events.to_string() });
    assert_eq!(check_body(&body, &rules()).unwrap(), 1);
    assert_eq!(decode_events(body.to_string().as_bytes()), vec![event()]);
}

#[test]
fn value_rule_errors_omit_the_index_unless_naming_is_on() {
    let mut bad = event();
    bad["custom_data"]["order_id"] = json!("BAD-1");
    let body = json!({ "data": [event(), bad] });
    let named = Rules {
        reject_order_prefix: Some("BAD"),
        ..rules()
    };
    let error = check_body(&body, &named).unwrap_err();
    assert_eq!(error.error_subcode, Some(SUBCODE_INVALID));
    assert!(error.message.contains("$['data'][1]"), "{}", error.message);
    let blame = json!({"blame_field_specs": [["data", "1", "custom_data", "order_id"]]});
    assert_eq!(error.error_data, Some(blame));
    let unnamed = Rules {
        name_index: false,
        ..named
    };
    let error = check_body(&body, &unnamed).unwrap_err();
    assert!(!error.body().to_string().contains("$['data']"));
}

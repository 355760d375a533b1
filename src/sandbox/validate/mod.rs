//! Meta's request and event rules as pure functions: a request body in, the events or the Graph
//! error Meta would answer out. No I/O and no clock (the caller passes `now`), so every rule is
//! unit-tested with plain values.
//!
//! Index naming: a missing required field is always named as `$['data'][i]['field']`, as Meta
//! does (🟠 S29). For every other event rule the index (and `error_data.blame_field_specs`) is
//! present only when [`Rules::name_index`] is set: Meta's verbatim value-rule bodies (e.g. 2804003)
//! do not name the event, so a client must be able to bisect.

use serde_json::{json, Map, Value};

use super::graph_error::GraphError;
use super::view::{Body, Data, Event, Item, MaybeBody, Scalar, UserData, UserValue};

/// Most events in one request (✅ S2).
pub(super) const MAX_EVENTS: usize = 1000;
/// Oldest `physical_store` event, in seconds: 62 days (✅ S1).
const MAX_AGE_PHYSICAL_STORE_SECS: i64 = 62 * 86_400;
/// Oldest event of any other action source, in seconds: 7 days (✅ S2, S3).
const MAX_AGE_SECS: i64 = 7 * 86_400;
/// Furthest an event may lie in the future: 5 minutes (❌ undocumented; docs/meta-capi.md decision 3).
const MAX_FUTURE_SECS: i64 = 300;

/// Generic invalid event value. RudderStack lists it (🟠 S27) but its meaning is unconfirmed (❌):
/// used for the injected reject rule and for every rule whose real subcode is unknown.
pub(super) const SUBCODE_INVALID: u32 = 2_804_001;
/// "Event Timestamp Too Old" (🟠 S27).
pub(super) const SUBCODE_TOO_OLD: u32 = 2_804_003;
/// "Missing Value for Purchase Event" (🟠 S27); also used for a bad currency (❌).
pub(super) const SUBCODE_PURCHASE: u32 = 2_804_009;
/// A required parameter is missing; the message names the path (🟠 S29).
pub(super) const SUBCODE_REQUIRED: u32 = 2_804_019;
/// Insufficient customer information (🟠 S28).
pub(super) const SUBCODE_INSUFFICIENT: u32 = 2_804_050;

/// Allowed `action_source` values (✅ S3).
const ACTION_SOURCES: [&str; 9] = [
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];
/// `user_data` keys that must be SHA-256 digests (✅ S4). `external_id` is not among them.
const HASHED_KEYS: [&str; 10] = [
    "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country",
];
/// Customer-information sets that are too broad on their own, or as any subset (✅ S5).
const INSUFFICIENT_SETS: [&[&str]; 4] = [
    &["ct", "country", "st", "zp", "ge", "client_user_agent"],
    &["db", "client_user_agent"],
    &["fn", "ge"],
    &["ln", "ge"],
];
/// Required event fields, in the order they are checked (✅ S3).
const REQUIRED_FIELDS: [&str; 4] = ["event_name", "event_time", "action_source", "user_data"];

/// The per-request inputs of the event rules.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules<'a> {
    /// Unix seconds now.
    pub(super) now: i64,
    /// Name the bad event's index in value-rule errors.
    pub(super) name_index: bool,
    /// Orders whose `custom_data.order_id` starts with this are rejected.
    pub(super) reject_order_prefix: Option<&'a str>,
}

/// Parses a request body as a JSON object, or as form fields (`data=<json>&...`, what Meta's
/// own SDKs send) whose values are strings; an empty body has no fields so that a token in a
/// header can still be checked before the body's own errors are reported. Only the fields the
/// rules read are kept, borrowed from `bytes` where possible (see `view/`).
pub(super) fn parse_body(bytes: &[u8]) -> Result<Body<'_>, GraphError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Body::default());
    }
    match serde_json::from_slice::<MaybeBody<'_>>(bytes) {
        Ok(MaybeBody(Some(body))) => Ok(body),
        Err(_) if looks_like_form(bytes) => {
            let mut body = Body::default();
            for (key, value) in form_urlencoded::parse(bytes) {
                body.set_form_field(&key, value);
            }
            Ok(body)
        }
        _ => Err(GraphError::invalid("Invalid parameter", None).with_user(
            "Invalid Request Body",
            "The request body must be a JSON object.",
        )),
    }
}

/// Whether a body that is not JSON reads as `key=value&...` form fields.
fn looks_like_form(bytes: &[u8]) -> bool {
    let first = bytes.split(|&b| b == b'&').next().unwrap_or_default();
    first.contains(&b'=') && first.first().is_some_and(u8::is_ascii_alphabetic)
}

/// Checks `data` and every event in it; the whole request fails on the first bad event.
/// Returns how many events there are.
pub(super) fn check_events(body: &Body<'_>, rules: &Rules<'_>) -> Result<usize, GraphError> {
    match &body.data {
        None | Some(Data::Null) => Err(GraphError::invalid(
            "(#100) The parameter data is required",
            None,
        )),
        Some(Data::Array(items)) => check_items(items, rules),
        // The Java SDK sends the array as one JSON string, and a form body always does (🟡 §8).
        Some(Data::Text(text)) => match serde_json::from_str::<Data<'_>>(text) {
            Ok(Data::Array(items)) => check_items(&items, rules),
            _ => Err(not_array()),
        },
        Some(Data::Other) => Err(not_array()),
    }
}

/// The error for a `data` that is not an array.
fn not_array() -> GraphError {
    GraphError::invalid("(#100) param data must be an array.", None).with_user(
        "Invalid Parameter",
        "The parameter data must be an array of events.",
    )
}

/// Checks the number of items of `data`, then each in order. An item may be a JSON string
/// holding the event (the Python SDK's way, 🟡 §8); one that does not decode to an object is not
/// an event.
fn check_items(items: &[Item<'_>], rules: &Rules<'_>) -> Result<usize, GraphError> {
    if items.is_empty() || items.len() > MAX_EVENTS {
        return Err(GraphError::invalid("Invalid parameter", None).with_user(
            "Invalid Number of Events",
            format!("The parameter data must contain between 1 and {MAX_EVENTS} events."),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        match item {
            Item::Event(event) => check_event(index, event, rules)?,
            Item::Text(text) => match serde_json::from_str::<Item<'_>>(text) {
                Ok(Item::Event(event)) => check_event(index, &event, rules)?,
                _ => return Err(not_an_object(index, rules)),
            },
            Item::Other => return Err(not_an_object(index, rules)),
        }
    }
    Ok(items.len())
}

/// The error for an item of `data` that is not an event object.
fn not_an_object(index: usize, rules: &Rules<'_>) -> GraphError {
    event_error(
        index,
        "",
        SUBCODE_INVALID,
        "Invalid Event",
        "Each event must be a JSON object.",
        rules.name_index,
    )
}

/// The events of a body the sandbox accepted, as JSON values, for the inspection routes: `data`
/// decoded as [`check_events`] reads it (a JSON string holding the array or an event is decoded).
/// Empty if the body does not parse, which an accepted body always does.
pub(super) fn decode_events(bytes: &[u8]) -> Vec<Value> {
    let mut body: Map<String, Value> = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => map,
        Err(_) if looks_like_form(bytes) => form_urlencoded::parse(bytes)
            .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
            .collect(),
        _ => return Vec::new(),
    };
    let items = match body.remove("data") {
        Some(Value::Array(items)) => items,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            other => other,
        })
        .collect()
}

/// Checks one event object against Meta's rules.
fn check_event(index: usize, event: &Event<'_>, rules: &Rules<'_>) -> Result<(), GraphError> {
    let bad = |path: &str, subcode: u32, title: &str, msg: &str| {
        event_error(index, path, subcode, title, msg, rules.name_index)
    };
    if let Some(field) = missing_field(event) {
        return Err(GraphError::invalid(
            format!("The parameter $['data'][{index}]['{field}'] is required."),
            Some(SUBCODE_REQUIRED),
        )
        .with_user(
            "Missing Parameter",
            format!("The parameter {field} is required."),
        )
        .with_blame(index, &[field]));
    }
    let event_name = str_of(event.event_name.as_ref());
    if event_name.is_empty() {
        let msg = "The event_name must be a non-empty string.";
        return Err(bad(
            "['event_name']",
            SUBCODE_INVALID,
            "Invalid Event Name",
            msg,
        ));
    }
    let Some(event_time) = event.event_time.as_ref().and_then(unix_seconds) else {
        let msg = "The event_time must be an integer of Unix seconds.";
        return Err(bad(
            "['event_time']",
            SUBCODE_INVALID,
            "Invalid Event Time",
            msg,
        ));
    };
    let action_source = str_of(event.action_source.as_ref());
    if !ACTION_SOURCES.contains(&action_source) {
        let msg = "The action_source is not one of the allowed values.";
        return Err(bad(
            "['action_source']",
            SUBCODE_INVALID,
            "Invalid Action Source",
            msg,
        ));
    }
    let max_age = if action_source == "physical_store" {
        MAX_AGE_PHYSICAL_STORE_SECS
    } else {
        MAX_AGE_SECS
    };
    if rules.now - event_time > max_age {
        let msg = "The timestamp for this event is too far in the past.";
        return Err(bad(
            "['event_time']",
            SUBCODE_TOO_OLD,
            "Event Timestamp Too Old",
            msg,
        ));
    }
    if event_time - rules.now > MAX_FUTURE_SECS {
        let msg = "The timestamp for this event is in the future.";
        return Err(bad(
            "['event_time']",
            SUBCODE_INVALID,
            "Event Timestamp In Future",
            msg,
        ));
    }
    check_user_data(event.user_data.as_ref(), &bad)?;
    check_processing(event, &bad)?;
    let custom_data = event.custom_data.as_ref();
    if event_name == "Purchase" {
        if !custom_data
            .and_then(|data| data.value.as_ref())
            .is_some_and(|value| matches!(value, Scalar::Number(_)))
        {
            let msg = "Purchase events must include a numeric custom_data.value.";
            let title = "Missing Value for Purchase Event";
            return Err(bad(
                "['custom_data']['value']",
                SUBCODE_PURCHASE,
                title,
                msg,
            ));
        }
        let currency = custom_data
            .and_then(|data| data.currency.as_ref())
            .and_then(Scalar::as_str);
        if !currency
            .is_some_and(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            let msg = "Purchase events must include a three-letter ISO 4217 custom_data.currency.";
            let title = "Invalid Currency for Purchase Event";
            return Err(bad(
                "['custom_data']['currency']",
                SUBCODE_PURCHASE,
                title,
                msg,
            ));
        }
    }
    if let Some(prefix) = rules.reject_order_prefix {
        let order_id = custom_data
            .and_then(|data| data.order_id.as_ref())
            .and_then(Scalar::as_str);
        if order_id.is_some_and(|id| id.starts_with(prefix)) {
            let msg = "This event was rejected by the sandbox's reject rule.";
            return Err(bad(
                "['custom_data']['order_id']",
                SUBCODE_INVALID,
                "Invalid Parameter",
                msg,
            ));
        }
    }
    Ok(())
}

/// Limited Data Use as Meta documents it (docs/meta-capi.md §2): `data_processing_options` is an
/// array whose only valid value is `LDU`; with it, `data_processing_options_country` (`0` or
/// `1`) and `data_processing_options_state` (`0` or a state code from 1000) are both required.
fn check_processing(
    event: &Event<'_>,
    bad: &dyn Fn(&str, u32, &str, &str) -> GraphError,
) -> Result<(), GraphError> {
    let Some(processing) = &event.processing else {
        return Ok(());
    };
    let Some(options) = &processing.options else {
        return Ok(());
    };
    let path = "['data_processing_options']";
    let title = "Invalid Data Processing Options";
    let Some(options) = options.as_array() else {
        return Err(bad(
            path,
            SUBCODE_INVALID,
            title,
            "data_processing_options must be an array.",
        ));
    };
    if options.iter().any(|o| o.as_str() != Some("LDU")) {
        let msg = "The only valid data processing option is LDU.";
        return Err(bad(path, SUBCODE_INVALID, title, msg));
    }
    if options.is_empty() {
        return Ok(());
    }
    let code =
        |value: &Option<serde_json::Value>| value.as_ref().and_then(serde_json::Value::as_i64);
    let country = code(&processing.country);
    let state = code(&processing.state);
    match (country, state) {
        (Some(country), Some(state))
            if matches!(country, 0 | 1) && (state == 0 || (1000..2000).contains(&state)) =>
        {
            Ok(())
        }
        (Some(_), Some(_)) => Err(bad(
            "['data_processing_options_state']",
            SUBCODE_INVALID,
            title,
            "data_processing_options_country must be 0 or 1 and data_processing_options_state 0 or a state code.",
        )),
        _ => Err(bad(
            "['data_processing_options_country']",
            SUBCODE_REQUIRED,
            title,
            "With LDU, data_processing_options_country and data_processing_options_state are required.",
        )),
    }
}

/// The first required field that is absent or `null`, in [`REQUIRED_FIELDS`] order.
fn missing_field(event: &Event<'_>) -> Option<&'static str> {
    let absent = |value: Option<&Scalar<'_>>| value.is_none_or(|value| *value == Scalar::Null);
    let present = [
        !absent(event.event_name.as_ref()),
        !absent(event.event_time.as_ref()),
        !absent(event.action_source.as_ref()),
        event
            .user_data
            .as_ref()
            .is_some_and(|user_data| *user_data != UserData::Null),
    ];
    REQUIRED_FIELDS
        .iter()
        .zip(present)
        .find_map(|(field, present)| (!present).then_some(*field))
}

/// A field's string, or `""` when it is absent or not a string.
fn str_of<'v>(value: Option<&'v Scalar<'_>>) -> &'v str {
    value.and_then(Scalar::as_str).unwrap_or_default()
}

/// Checks the shape and hashing of `user_data` and that it identifies a person well enough.
/// Entries come sorted by key, so the first bad key is the one a `Map` would yield first.
fn check_user_data(
    user_data: Option<&UserData<'_>>,
    bad: &impl Fn(&str, u32, &str, &str) -> GraphError,
) -> Result<(), GraphError> {
    let Some(UserData::Object(entries)) = user_data else {
        let msg = "The user_data must be a JSON object.";
        return Err(bad(
            "['user_data']",
            SUBCODE_INVALID,
            "Invalid User Data",
            msg,
        ));
    };
    let mut present = Present::default();
    for (key, value) in entries {
        let key: &str = key;
        let hashed = HASHED_KEYS.contains(&key);
        let path = || format!("['user_data']['{key}']");
        let not_strings = || {
            let msg = "Customer information values must be strings.";
            bad(&path(), SUBCODE_INVALID, "Invalid User Data", msg)
        };
        match *value {
            UserValue::Null => continue,
            UserValue::NonStringItem => return Err(not_strings()),
            // Numbers and objects: allowed only for keys the sandbox does not model.
            UserValue::Other if !hashed && key != "external_id" => {}
            UserValue::Other => return Err(not_strings()),
            UserValue::Strings {
                all_empty: true, ..
            } => continue,
            UserValue::Strings { all_hashed, .. } => {
                if hashed && !all_hashed {
                    let msg = format!("The {key} value must be a lowercase hex SHA-256 digest.");
                    return Err(bad(
                        &path(),
                        SUBCODE_INVALID,
                        "Unhashed Customer Information",
                        &msg,
                    ));
                }
            }
        }
        present.add(key);
    }
    if present.too_broad() {
        let msg = "The customer information parameters sent are insufficient to match.";
        return Err(bad(
            "['user_data']",
            SUBCODE_INSUFFICIENT,
            "Insufficient Customer Information",
            msg,
        ));
    }
    Ok(())
}

/// The `user_data` keys present in an event, as far as [`INSUFFICIENT_SETS`] cares: a bit per key
/// named in a set, and whether any other key is present. Replaces a list of key names so that
/// checking an event allocates nothing.
#[derive(Debug, Clone, Copy, Default)]
struct Present {
    /// Bit `i` set: [`SET_KEYS`]`[i]` is present.
    named: u16,
    /// A key outside [`SET_KEYS`] is present.
    other: bool,
}

/// The keys that appear in [`INSUFFICIENT_SETS`], one bit each in [`Present::named`].
const SET_KEYS: [&str; 9] = [
    "ct",
    "country",
    "st",
    "zp",
    "ge",
    "client_user_agent",
    "db",
    "fn",
    "ln",
];

impl Present {
    /// Records `key` as present.
    fn add(&mut self, key: &str) {
        match SET_KEYS.iter().position(|named| *named == key) {
            Some(bit) => self.named |= 1 << bit,
            None => self.other = true,
        }
    }

    /// Whether the present keys are a subset of one of the too-broad sets (none present is too).
    fn too_broad(self) -> bool {
        !self.other
            && INSUFFICIENT_SETS
                .iter()
                .any(|set| self.named & !set_bits(set) == 0)
    }
}

/// The [`Present::named`] bits of `keys`.
fn set_bits(keys: &[&str]) -> u16 {
    keys.iter()
        .filter_map(|key| SET_KEYS.iter().position(|named| named == key))
        .fold(0, |bits, bit| bits | 1 << bit)
}

/// The error of a value rule; names the event only when `name_index` is set.
fn event_error(
    index: usize,
    path: &str,
    subcode: u32,
    title: &str,
    msg: &str,
    name_index: bool,
) -> GraphError {
    if name_index {
        let segments: Vec<&str> = path
            .split(['[', ']', '\''])
            .filter(|segment| !segment.is_empty())
            .collect();
        GraphError::invalid(
            format!("Invalid parameter $['data'][{index}]{path}"),
            Some(subcode),
        )
        .with_user(title, format!("{msg} (event $['data'][{index}])"))
        .with_blame(index, &segments)
    } else {
        GraphError::invalid("Invalid parameter", Some(subcode)).with_user(title, msg)
    }
}

impl GraphError {
    /// Adds `error_data.blame_field_specs` as the Python SDK reads it (🟡 S21).
    fn with_blame(mut self, index: usize, fields: &[&str]) -> Self {
        let mut spec = vec![Value::from("data"), Value::from(index.to_string())];
        spec.extend(fields.iter().map(|field| Value::from(*field)));
        self.error_data = Some(json!({ "blame_field_specs": [spec] }));
        self
    }
}

/// `event_time` as Unix seconds: a JSON integer, or a string of digits.
fn unix_seconds(value: &Scalar<'_>) -> Option<i64> {
    match value {
        Scalar::Number(number) => *number,
        Scalar::Str(text) => text.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

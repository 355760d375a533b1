//! What a failed exchange means, decided from types only (docs/meta-capi.md decision 7): HTTP status
//! × Graph `code` × `error_subcode` → retry, isolate the bad events, or stop; the kind of a
//! transport failure → retry or stop; and which event of a rejected request Meta blamed. Pure:
//! no I/O, table-tested.

use serde_json::Value;

use super::error::{Failure, MetaError, TransportKind};
use crate::destination::retry::Decision;

/// Graph codes Meta documents as temporary or throttling (docs/meta-capi.md §5: 1, 2, 4, 17, 341,
/// 613, 21009). 32 and 80000–80014 are throttles on other Graph surfaces; §5 says to treat them
/// as throttling if CAPI ever sends them.
fn is_transient_code(code: i64) -> bool {
    matches!(
        code,
        1 | 2 | 4 | 17 | 32 | 341 | 613 | 21009 | 80000..=80014
    )
}

/// What to do about one failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Transient: retry with backoff.
    Retry,
    /// Some events of the batch are invalid: isolate them and send the rest.
    RejectEvents,
    /// No retry helps; the user must act.
    Fail,
}

/// Decides what an HTTP answer that is not a success means, from its status and Graph error
/// fields. Codes win over statuses; the status decides only when the code says nothing.
pub(crate) fn classify(
    status: u16,
    code: Option<i64>,
    subcode: Option<i64>,
    is_transient: Option<bool>,
) -> Action {
    if is_transient == Some(true) {
        return Action::Retry;
    }
    match (code, subcode) {
        (Some(code), _) if is_transient_code(code) => return Action::Retry,
        // Unknown dataset, or the token cannot reach it: configuration, not data.
        (Some(100), Some(33)) => return Action::Fail,
        // Invalid parameter: one or more events carry bad data.
        (Some(100), _) => return Action::RejectEvents,
        // Token, permissions, policy block, deprecated version.
        (Some(3 | 10 | 190 | 200..=299 | 368 | 2635), _) => return Action::Fail,
        _ => {}
    }
    match status {
        408 | 429 | 500..=599 => Action::Retry,
        _ => Action::Fail,
    }
}

/// Decides what a request without an HTTP answer means. Refused connections to a local or
/// private address, host names that do not resolve and plain-HTTP servers behind an `https://`
/// URL are mistakes no backoff fixes; timeouts, resets and refusals from a public address may
/// be an outage or a deploy, so they are retried.
pub(crate) fn classify_transport(kind: TransportKind) -> Action {
    match kind {
        TransportKind::Refused { local: true } | TransportKind::Unresolved => Action::Fail,
        TransportKind::PlainHttp
        | TransportKind::Redirect { .. }
        | TransportKind::TooLarge
        | TransportKind::Stopped => Action::Fail,
        TransportKind::Timeout | TransportKind::Refused { local: false } | TransportKind::Other => {
            Action::Retry
        }
    }
}

/// What to do about a failure of either kind.
pub(crate) fn action(failure: &Failure) -> Action {
    match failure {
        Failure::Transport(error) => classify_transport(error.kind()),
        Failure::Meta(error) if error.unreadable_body().is_some() => Action::Fail,
        Failure::Meta(error) => classify(
            error.status(),
            error.code(),
            error.error_subcode(),
            error.is_transient(),
        ),
    }
}

/// The retry helper's view of [`action`]: a retry waits at least the server's hint.
pub(crate) fn decision(failure: &Failure) -> Decision {
    decision_for(action(failure), failure)
}

/// The retry helper's view of an `action` already decided for `failure`.
pub(crate) fn decision_for(action: Action, failure: &Failure) -> Decision {
    match action {
        Action::Retry => Decision::Retry {
            after: failure.meta().and_then(MetaError::hint),
        },
        Action::RejectEvents | Action::Fail => Decision::Stop,
    }
}

/// The position, in the request's `data`, of the event Meta blamed: from
/// `error_data.blame_field_specs` (`[["data", "3", "event_time"]]`), which the stand-in sends and
/// Meta's SDKs read; failing that, from a `$['data'][3]` in the message (a documented fallback:
/// Meta's messages are localized, but the JSON path in them is not).
pub(crate) fn blamed_position(error: &MetaError) -> Option<usize> {
    let graph = error.graph()?;
    graph
        .error_data
        .as_ref()
        .and_then(blamed_in_error_data)
        .or_else(|| {
            [graph.message.as_deref(), graph.error_user_msg.as_deref()]
                .into_iter()
                .flatten()
                .find_map(event_index)
        })
}

/// The first `["data", "<i>", …]` of `blame_field_specs`; `error_data` may be a string holding
/// the JSON object.
fn blamed_in_error_data(error_data: &Value) -> Option<usize> {
    if let Value::String(text) = error_data {
        return blamed_in_error_data(&serde_json::from_str(text).ok()?);
    }
    error_data
        .get("blame_field_specs")?
        .as_array()?
        .iter()
        .find_map(|spec| {
            let spec = spec.as_array()?;
            if spec.first()?.as_str()? != "data" {
                return None;
            }
            match spec.get(1)? {
                Value::String(index) => index.parse().ok(),
                Value::Number(index) => usize::try_from(index.as_u64()?).ok(),
                _ => None,
            }
        })
}

/// Finds the event index in a message such as `The parameter $['data'][3]['event_time'] is
/// required.` (docs/meta-capi.md §5). Meta quotes with `'`; `"` is accepted too.
fn event_index(message: &str) -> Option<usize> {
    ["$['data'][", "$[\"data\"]["].iter().find_map(|pattern| {
        let start = message.find(pattern)? + pattern.len();
        let rest = &message[start..];
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 || !rest[digits..].starts_with(']') {
            return None;
        }
        rest[..digits].parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::meta::error::TransportError;
    use crate::destination::meta::graph::GraphError;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn classify_table() {
        use Action::{Fail, RejectEvents, Retry};
        /// (status, code, subcode, is_transient, expected action).
        type Row = (u16, Option<i64>, Option<i64>, Option<bool>, Action);
        let table: &[Row] = &[
            // statuses without a graph error
            (500, None, None, None, Retry),
            (502, None, None, None, Retry),
            (503, None, None, None, Retry),
            (408, None, None, None, Retry),
            (429, None, None, None, Retry),
            (400, None, None, None, Fail),
            (401, None, None, None, Fail),
            (403, None, None, None, Fail),
            (404, None, None, None, Fail),
            // Meta's transient codes, whatever the status
            (500, Some(1), None, Some(false), Retry),
            (500, Some(2), None, None, Retry),
            (400, Some(4), None, None, Retry),
            (400, Some(17), Some(2446079), None, Retry),
            (400, Some(341), None, None, Retry),
            (400, Some(613), Some(1487742), None, Retry),
            (400, Some(21009), None, None, Retry),
            (400, Some(32), None, None, Retry),
            (400, Some(80004), None, None, Retry),
            // is_transient wins over any code
            (400, Some(100), Some(2804003), Some(true), Retry),
            (400, Some(999), None, Some(true), Retry),
            // event data
            (400, Some(100), Some(2804003), Some(false), RejectEvents),
            (400, Some(100), Some(2804019), None, RejectEvents),
            (400, Some(100), None, None, RejectEvents),
            // configuration and permissions
            (400, Some(100), Some(33), None, Fail),
            (400, Some(190), Some(463), None, Fail),
            (401, Some(190), None, None, Fail),
            (400, Some(3), None, None, Fail),
            (403, Some(10), None, None, Fail),
            (403, Some(200), None, None, Fail),
            (403, Some(294), None, None, Fail),
            (400, Some(368), None, None, Fail),
            (400, Some(2635), None, None, Fail),
            // permanent codes stay permanent on a 5xx; unknown codes follow the status
            (500, Some(190), None, None, Fail),
            (400, Some(12345), None, None, Fail),
            (503, Some(12345), None, None, Retry),
            (500, None, None, Some(false), Retry),
        ];
        for &(status, code, subcode, transient, expected) in table {
            assert_eq!(
                classify(status, code, subcode, transient),
                expected,
                "status {status}, code {code:?}, subcode {subcode:?}, transient {transient:?}"
            );
        }
    }

    #[test]
    fn transport_table() {
        use Action::{Fail, Retry};
        let table = [
            (TransportKind::Timeout, Retry),
            (TransportKind::Other, Retry),
            (TransportKind::Refused { local: false }, Retry),
            (TransportKind::Refused { local: true }, Fail),
            (TransportKind::Unresolved, Fail),
            (TransportKind::PlainHttp, Fail),
            (TransportKind::Redirect { status: 307 }, Fail),
            (TransportKind::TooLarge, Fail),
            (TransportKind::Stopped, Fail),
        ];
        for (kind, expected) in table {
            assert_eq!(classify_transport(kind), expected, "{kind:?}");
            let failure = Failure::Transport(TransportError::new(
                kind,
                "http://127.0.0.1:9/v26.0/1/events".to_owned(),
                String::new(),
                Duration::from_secs(5),
            ));
            assert_eq!(action(&failure), expected, "{kind:?}");
        }
    }

    #[test]
    fn a_throttled_answer_retries_after_its_hint_and_an_unreadable_one_stops() {
        let hint = Some(Duration::from_secs(60));
        let throttled = Failure::Meta(MetaError::http(429, None, None, hint));
        assert_eq!(decision(&throttled), Decision::Retry { after: hint });
        let unreadable = Failure::Meta(MetaError::unreadable(200, "eof".to_owned(), None));
        assert_eq!(decision(&unreadable), Decision::Stop);
        let data = Failure::Meta(MetaError::http(
            400,
            Some(GraphError {
                code: Some(100),
                ..GraphError::default()
            }),
            None,
            None,
        ));
        assert_eq!(action(&data), Action::RejectEvents);
        assert_eq!(decision(&data), Decision::Stop);
    }

    fn blamed(error_data: Option<Value>, message: &str) -> Option<usize> {
        let graph = GraphError {
            message: Some(message.to_owned()),
            code: Some(100),
            error_data,
            ..GraphError::default()
        };
        blamed_position(&MetaError::http(400, Some(graph), None, None))
    }

    #[test]
    fn the_blamed_event_comes_from_error_data_first_and_the_message_as_a_fallback() {
        let specs = |spec: Value| Some(json!({ "blame_field_specs": [spec] }));
        let table: &[(Option<Value>, &str, Option<usize>)] = &[
            // structured: wins over a message naming another index
            (
                specs(json!(["data", "3", "event_time"])),
                "$['data'][7]",
                Some(3),
            ),
            (specs(json!(["data", 4])), "Invalid parameter", Some(4)),
            (
                Some(json!(r#"{"blame_field_specs":[["data","5"]]}"#)),
                "Invalid parameter",
                Some(5),
            ),
            // not an event path: fall back to the message
            (specs(json!(["user_data"])), "$['data'][2]['em']", Some(2)),
            (Some(json!("not json")), "$['data'][2]", Some(2)),
            // the documented message forms
            (
                None,
                "The parameter $['data'][0]['event_time'] is required.",
                Some(0),
            ),
            (
                None,
                "Invalid parameter at $['data'][417]['user_data']",
                Some(417),
            ),
            (None, "$[\"data\"][12]", Some(12)),
            (
                None,
                "The timestamp for this event is too far in the past.",
                None,
            ),
            (None, "$['data'][]", None),
            (None, "$['data'][x]", None),
            (None, "$['data'][3", None),
            (None, "data[3]", None),
        ];
        for (error_data, message, expected) in table {
            assert_eq!(
                blamed(error_data.clone(), message),
                *expected,
                "{error_data:?} {message}"
            );
        }
        assert_eq!(
            blamed_position(&MetaError::http(400, None, None, None)),
            None
        );
    }
}

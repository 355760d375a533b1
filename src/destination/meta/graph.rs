//! The Graph API on the wire: request and answer bodies, `appsecret_proof`, and the delay a
//! throttled answer asks for (docs/meta-capi.md §4, §5). Pure: no I/O.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::event::Event;
use crate::secret::Secret;

/// `partner_agent`: Meta's format is `[partner_name]_[major]_[minor]` (docs/meta-capi.md §1, S5/S19).
pub const PARTNER_AGENT: &str = concat!(
    "ocapi_",
    env!("CARGO_PKG_VERSION_MAJOR"),
    "_",
    env!("CARGO_PKG_VERSION_MINOR")
);

/// The `error` object of a Graph API error answer (docs/meta-capi.md §5).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct GraphError {
    /// Meta's message; localized, so never branched on.
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// The error code that decides what to do.
    #[serde(default)]
    pub(crate) code: Option<i64>,
    /// Refines `code` (e.g. 33 under 100, 463 under 190).
    #[serde(default)]
    pub(crate) error_subcode: Option<i64>,
    /// A short title, e.g. "Event Timestamp Too Old".
    #[serde(default)]
    pub(crate) error_user_title: Option<String>,
    /// The message written for people.
    #[serde(default)]
    pub(crate) error_user_msg: Option<String>,
    /// Meta's trace id, for support tickets.
    #[serde(default)]
    pub(crate) fbtrace_id: Option<String>,
    /// Meta's own verdict that a retry may succeed.
    #[serde(default)]
    pub(crate) is_transient: Option<bool>,
    /// `{"blame_field_specs": [["data", "3", "event_time"]]}`: where the bad event is. Meta
    /// sometimes sends it as a JSON object, sometimes as a string holding one.
    #[serde(default)]
    pub(crate) error_data: Option<serde_json::Value>,
}

/// A Graph error answer: `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    /// The error.
    pub(crate) error: GraphError,
}

/// A 200 answer of the `/events` edge.
#[derive(Debug, Deserialize)]
pub(crate) struct EventsResponse {
    /// Events Meta counted.
    pub(crate) events_received: u64,
    /// Meta's trace id.
    #[serde(default)]
    pub(crate) fbtrace_id: Option<String>,
}

/// A 200 answer of `GET /{dataset_id}?fields=id,name,is_consolidated_container`.
#[derive(Debug, Deserialize)]
pub(crate) struct DatasetInfo {
    /// The dataset id.
    pub(crate) id: String,
    /// Its name in Events Manager.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Whether the dataset can take offline events through CAPI (docs/meta-capi.md §1).
    #[serde(default)]
    pub(crate) is_consolidated_container: Option<bool>,
}

/// The JSON body of an `/events` request.
#[derive(Serialize)]
pub(crate) struct EventsRequest<'a> {
    /// The events.
    pub(crate) data: &'a [&'a Event],
    /// The token: in the body, never in the URL (decision 1).
    pub(crate) access_token: &'a str,
    /// HMAC of the token with the app secret, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) appsecret_proof: Option<&'a str>,
    /// Only when configured (decision 9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) test_event_code: Option<&'a str>,
    /// `destination.upload_tag`, when configured (still accepted on the Conversions API for
    /// advertisers from the legacy Offline Conversions API; docs/meta-capi.md §1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) upload_tag: Option<&'a str>,
    /// `ocapi_<major>_<minor>`.
    pub(crate) partner_agent: &'a str,
}

/// [`EventsRequest`] without its events: the fields that follow `data`, in the same order.
#[derive(Serialize)]
struct AfterData<'a> {
    /// As in [`EventsRequest`].
    access_token: &'a str,
    /// As in [`EventsRequest`].
    #[serde(skip_serializing_if = "Option::is_none")]
    appsecret_proof: Option<&'a str>,
    /// As in [`EventsRequest`].
    #[serde(skip_serializing_if = "Option::is_none")]
    test_event_code: Option<&'a str>,
    /// As in [`EventsRequest`].
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_tag: Option<&'a str>,
    /// As in [`EventsRequest`].
    partner_agent: &'a str,
}

impl EventsRequest<'_> {
    /// Appends the body to `out`: exactly the bytes of the `Serialize` impl (a test compares
    /// them), with each event written by [`Event::write_json`]; `written` is given each event's
    /// position in `data` and the bytes just written for it.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>, mut written: impl FnMut(usize, &[u8])) {
        out.extend_from_slice(b"{\"data\":[");
        for (n, event) in self.data.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let start = out.len();
            event.write_json(out);
            written(n, &out[start..]);
        }
        out.extend_from_slice(b"],");
        let rest = serde_json::to_vec(&AfterData {
            access_token: self.access_token,
            appsecret_proof: self.appsecret_proof,
            test_event_code: self.test_event_code,
            upload_tag: self.upload_tag,
            partner_agent: self.partner_agent,
        })
        .expect("strings always serialize");
        // `{"access_token":…}` without its `{`: `access_token` is always there.
        out.extend_from_slice(&rest[1..]);
    }
}

impl super::Inner {
    /// The JSON body of `POST /events` carrying the events at `indices`. The buffer is sized
    /// for the batch up front: grown by doubling from empty, a 1 MB body was copied about a dozen
    /// times, and the freed buffers made the allocator consolidate its free lists. Each
    /// canonical event's digest ([`Event::digest`]) is taken from its bytes in the body into
    /// `digests` (by index), where no earlier body of the batch gave it: the ledger stores it,
    /// and writing every event's JSON a second time for it cost ~1 µs per event.
    pub(super) fn events_body(
        &self,
        events: &[Event],
        indices: &[usize],
        digests: &mut [Option<u128>],
    ) -> Vec<u8> {
        /// A typical event with every customer key is ~1 KB of JSON.
        const EVENT_BYTES: usize = 1200;
        let data: Vec<&Event> = indices.iter().map(|&index| &events[index]).collect();
        let mut body = self.bodies.take(512 + data.len() * EVENT_BYTES);
        EventsRequest {
            data: &data,
            access_token: self.token.expose(),
            appsecret_proof: self.appsecret_proof.as_ref().map(Secret::expose),
            test_event_code: self.test_event_code.as_deref(),
            upload_tag: self.upload_tag.as_deref(),
            partner_agent: PARTNER_AGENT,
        }
        .write_json(&mut body, |n, json| {
            let Some(&index) = indices.get(n) else {
                return;
            };
            if let Some(slot @ None) = digests.get_mut(index) {
                if events[index].is_canonical() {
                    *slot = Some(crate::event::json_digest(json));
                }
            }
        });
        body
    }
}

/// Request-body buffers kept for the next batches. A body is ~1.2 MB; written into fresh memory
/// every batch, its pages were faulted in and zeroed by the kernel each time (the allocator
/// returns freed large blocks to the system after a few milliseconds), a few % of a run's CPU
/// (`perf`, issue 24). A sent body's bytes come back here when reqwest has let go of them.
#[derive(Debug, Default)]
pub(super) struct Bodies(std::sync::Mutex<Vec<Vec<u8>>>);

impl Bodies {
    /// How many buffers are kept: what a few batches in flight use at once.
    const KEPT: usize = 4;

    /// An empty buffer of at least `capacity` bytes, a kept one when there is one.
    fn take(&self, capacity: usize) -> Vec<u8> {
        let kept = self
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .pop();
        let mut body = kept.unwrap_or_default();
        body.reserve(capacity);
        body
    }

    /// Keeps a sent body's buffer, when nothing else holds it any more and fewer than
    /// [`Bodies::KEPT`] are kept.
    pub(super) fn give_back(&self, body: bytes::Bytes) {
        let Ok(body) = body.try_into_mut() else {
            return;
        };
        let mut body = Vec::from(body);
        body.clear();
        let mut kept = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if kept.len() < Self::KEPT {
            kept.push(body);
        }
    }
}

/// `appsecret_proof`: lowercase hex HMAC-SHA256 of the token, keyed with the app secret.
pub(crate) fn appsecret_proof(token: &str, app_secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The delay a throttled answer asks for: `Retry-After` (seconds), or the largest
/// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage` / `X-App-Usage`.
/// HTTP-date `Retry-After` values are ignored (Graph sends seconds). Capped by the retry policy.
pub(crate) fn rate_limit_hint(headers: &HeaderMap) -> Option<Duration> {
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let usage = [
        "x-business-use-case-usage",
        "x-app-usage",
        "x-ad-account-usage",
    ]
    .iter()
    .filter_map(|name| headers.get(*name)?.to_str().ok())
    .filter_map(|text| serde_json::from_str::<serde_json::Value>(text).ok())
    .filter_map(|json| max_regain_minutes(&json))
    .max()
    .map(|minutes| Duration::from_secs(minutes.saturating_mul(60)));
    retry_after.max(usage).filter(|d| !d.is_zero())
}

/// The largest `estimated_time_to_regain_access` anywhere in a usage header's JSON.
fn max_regain_minutes(json: &serde_json::Value) -> Option<u64> {
    match json {
        serde_json::Value::Object(map) => map
            .iter()
            .filter_map(|(key, value)| {
                if key == "estimated_time_to_regain_access" {
                    value.as_u64()
                } else {
                    max_regain_minutes(value)
                }
            })
            .max(),
        serde_json::Value::Array(items) => items.iter().filter_map(max_regain_minutes).max(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_limit_headers_give_hints() {
        let mut headers = HeaderMap::new();
        assert_eq!(rate_limit_hint(&headers), None);
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(rate_limit_hint(&headers), Some(Duration::from_secs(7)));
        let usage = json!({"1234": [{"type": "ads_management", "call_count": 100,
            "estimated_time_to_regain_access": 3}]});
        headers.insert(
            "x-business-use-case-usage",
            usage.to_string().parse().unwrap(),
        );
        assert_eq!(rate_limit_hint(&headers), Some(Duration::from_secs(180)));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-app-usage",
            r#"{"call_count":100,"total_time":20}"#.parse().unwrap(),
        );
        assert_eq!(rate_limit_hint(&headers), None);
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(rate_limit_hint(&headers), None);
        headers.insert("x-app-usage", "not json".parse().unwrap());
        assert_eq!(rate_limit_hint(&headers), None);
    }

    /// The body writer gives the bytes of the `Serialize` impl, with and without the
    /// optional fields, for no event, one, and several.
    #[test]
    fn the_events_body_writer_gives_exactly_the_bytes_of_serde() {
        use crate::config::CustomerField;
        use crate::event::{Digest, UserData, UserValue};
        let event = |n: u8| Event {
            user_data: UserData::default()
                .with(CustomerField::Em, UserValue::Digest(Digest([n; 32]))),
            ..Event::purchase(
                &format!("R{n}"),
                1_780_000_000 + i64::from(n),
                rust_decimal::Decimal::new(1250, 2),
                "USD",
            )
        };
        let events = [event(1), event(2), event(3)];
        let refs: Vec<&Event> = events.iter().collect();
        for data in [&refs[..0], &refs[..1], &refs[..]] {
            for optional in [None, Some("x\"y\\z")] {
                let request = EventsRequest {
                    data,
                    access_token: "EAA\"token",
                    appsecret_proof: optional,
                    test_event_code: optional,
                    upload_tag: optional,
                    partner_agent: PARTNER_AGENT,
                };
                let mut written = Vec::new();
                request.write_json(&mut written, |_, _| {});
                assert_eq!(written, serde_json::to_vec(&request).unwrap());
            }
        }
    }

    #[test]
    fn appsecret_proof_matches_rfc_4231_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            appsecret_proof("what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn partner_agent_names_major_and_minor_version() {
        let expected = format!(
            "ocapi_{}_{}",
            env!("CARGO_PKG_VERSION_MAJOR"),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(PARTNER_AGENT, expected);
    }

    #[test]
    fn a_graph_error_reads_every_field_meta_documents() {
        let body: ErrorBody = serde_json::from_value(json!({"error": {
            "message": "Invalid parameter", "type": "OAuthException", "code": 100,
            "error_subcode": 2804003, "is_transient": false,
            "error_user_title": "Event Timestamp Too Old", "error_user_msg": "too old",
            "fbtrace_id": "A6U", "error_data": {"blame_field_specs": [["data", "2"]]}}}))
        .unwrap();
        let error = body.error;
        assert_eq!(
            (error.code, error.error_subcode),
            (Some(100), Some(2_804_003))
        );
        assert_eq!(error.is_transient, Some(false));
        assert_eq!(error.fbtrace_id.as_deref(), Some("A6U"));
        assert!(error.error_data.is_some());
    }
}

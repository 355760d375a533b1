//! A plausible Dataset Quality API body for offline events (docs/meta-capi.md §7, ✅ S19 for what it
//! reports), computed from the events the sandbox accepted. Meta documents the scores
//! (`composite`, `match_key` with email/phone coverage, `freshness`, `frequency`, each out of 10)
//! but the sandbox's exact field names and scoring formulas are its own (❌ assumed).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

/// Seconds in a day.
const DAY_SECS: i64 = 86_400;

/// One accepted event and when the sandbox accepted it.
#[derive(Debug, Clone)]
pub(super) struct Accepted {
    /// The event exactly as received.
    pub(super) event: Value,
    /// Unix seconds at acceptance.
    pub(super) received_at: i64,
}

/// `{"offline": [...]}`: one entry per `event_name`, in name order.
pub(super) fn offline(accepted: &[Accepted], dataset_id: &str, now: i64) -> Value {
    let mut by_name: BTreeMap<&str, Vec<&Accepted>> = BTreeMap::new();
    for record in accepted {
        let name = record
            .event
            .get("event_name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        by_name.entry(name).or_default().push(record);
    }
    let entries: Vec<Value> = by_name
        .into_iter()
        .map(|(name, records)| entry(name, &records, now))
        .collect();
    json!({
        "dataset_id": dataset_id,
        "offline": entries,
        "stand_in": "ocapi sandbox: scores computed locally from the events it accepted, not by Meta",
    })
}

/// The scores of one event name.
fn entry(name: &str, records: &[&Accepted], now: i64) -> Value {
    let count = records.len();
    let email = coverage(records, "em");
    let phone = coverage(records, "ph");
    let match_key = round1(10.0 * (email + phone) / 200.0);

    let mut delays: Vec<i64> = records
        .iter()
        .map(|record| {
            let time = record.event.get("event_time").and_then(Value::as_i64);
            (record.received_at - time.unwrap_or(record.received_at)).max(0)
        })
        .collect();
    delays.sort_unstable();
    let median_delay = delays.get(delays.len() / 2).copied().unwrap_or_default();
    // Meta asks for uploads within an hour, and at least daily (✅ S1, S2).
    let freshness = match median_delay {
        d if d <= 3_600 => 10.0,
        d if d <= 6 * 3_600 => 8.0,
        d if d <= DAY_SECS => 6.0,
        d if d <= 3 * DAY_SECS => 3.0,
        _ => 1.0,
    };

    let first = records
        .iter()
        .map(|record| record.received_at)
        .min()
        .unwrap_or(now);
    let upload_days: BTreeSet<i64> = records
        .iter()
        .filter(|record| now - record.received_at < 7 * DAY_SECS)
        .map(|record| record.received_at.div_euclid(DAY_SECS))
        .collect();
    // Days the sandbox could have seen uploads on, at most the last 7.
    let possible_days = ((now - first).div_euclid(DAY_SECS) + 1).clamp(1, 7);
    let frequency = round1(10.0 * (upload_days.len() as f64 / possible_days as f64).min(1.0));

    let composite = round1((match_key + freshness + frequency) / 3.0);
    json!({
        "event_name": name,
        "event_count": count,
        "composite": { "score": composite },
        "match_key": {
            "score": match_key,
            "email_coverage_percentage": email,
            "phone_coverage_percentage": phone,
        },
        "freshness": { "score": freshness, "median_upload_delay_seconds": median_delay },
        "frequency": { "score": frequency, "upload_days_last_7_days": upload_days.len() },
    })
}

/// Percentage (one decimal) of events whose `user_data` carries `key`.
fn coverage(records: &[&Accepted], key: &str) -> f64 {
    if records.is_empty() {
        return 0.0;
    }
    let with_key = records
        .iter()
        .filter(|record| {
            match record
                .event
                .get("user_data")
                .and_then(|user_data| user_data.get(key))
            {
                Some(Value::String(text)) => !text.is_empty(),
                Some(Value::Array(items)) => !items.is_empty(),
                _ => false,
            }
        })
        .count();
    round1(100.0 * with_key as f64 / records.len() as f64)
}

/// Rounds to one decimal, as Meta's scores are shown.
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_and_scores_follow_what_was_accepted() {
        let now = 1_764_300_000;
        let record = |user_data: Value| Accepted {
            event: json!({
                "event_name": "Purchase",
                "event_time": now - 60,
                "user_data": user_data,
            }),
            received_at: now,
        };
        let accepted = [
            record(json!({"em": ["a"], "ph": ["b"]})),
            record(json!({"em": ["a"]})),
        ];
        let body = offline(&accepted, "1", now);
        let purchase = &body["offline"][0];
        assert_eq!(purchase["event_count"], 2);
        assert_eq!(purchase["match_key"]["email_coverage_percentage"], 100.0);
        assert_eq!(purchase["match_key"]["phone_coverage_percentage"], 50.0);
        assert_eq!(purchase["freshness"]["score"], 10.0);
        assert_eq!(purchase["frequency"]["score"], 10.0);
        assert_eq!(offline(&[], "1", now)["offline"], json!([]));
    }
}

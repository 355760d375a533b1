//! Meta's side (docs/meta-side.md): the read edges that say how long the setup keeps working
//! and what Meta did with the events, through the destination's client, retries and errors,
//! with the token in the `Authorization` header:
//!
//! - `GET {version}/debug_token?input_token=…` (the token's life, [`super::token`]). The edge
//!   takes the inspected token only as `input_token` in the query (✅
//!   https://developers.facebook.com/docs/graph-api/reference/debug_token); ocapi never logs
//!   or shows a URL's query;
//! - `GET {version}/{dataset_id}/stats?aggregation=event` (hourly counts, [`MetaStats`]);
//! - `GET {version}/{dataset_id}/ads_signal_diagnostic_issues` ([`Issue`]);
//! - the version headers of every answer ([`VersionWatch`]).
//!
//! A failure on any of these edges is a warning naming the edge (and the permission, for a
//! permission error): it never fails a run or `check`'s other findings ([`edge_warning`]).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::token::{DebugTokenBody, TokenInfo};
use super::MetaDestination;
use crate::destination::DestinationError;

/// Pages of `/stats` followed at most (62 days of hourly buckets fit in a few).
const MAX_STATS_PAGES: usize = 50;
/// Longest header text kept from Meta.
const MAX_HEADER_CHARS: usize = 300;

/// The edges and what each needs, for warnings.
pub const EDGE_DEBUG_TOKEN: &str = "debug_token";
/// See [`EDGE_DEBUG_TOKEN`].
pub const EDGE_STATS: &str = "{dataset_id}/stats";
/// See [`EDGE_DEBUG_TOKEN`].
pub const EDGE_DIAGNOSTICS: &str = "{dataset_id}/ads_signal_diagnostic_issues";
/// See [`EDGE_DEBUG_TOKEN`].
pub const EDGE_QUALITY: &str = "dataset_quality";

/// A warning for a failed read of `edge`: for a permission error (Graph codes 10, 200–299, and
/// 100 on a read edge, "(#100) Missing Permission"; ✅
/// https://developers.facebook.com/docs/graph-api/guides/error-handling) it names the
/// permission `needs` and the edge; anything else says what failed.
pub fn edge_warning(edge: &str, needs: &str, error: &DestinationError) -> String {
    match permission_code(error) {
        Some(code) => format!(
            "meta refused {edge} for a missing permission (code {code}): the token needs the \
             {needs} permission on the dataset; nothing else is affected"
        ),
        // Meta's message is the endpoint's text: escaped, so that it cannot fake a log line.
        None => format!(
            "cannot read {edge} from meta: {}",
            crate::escape::terminal(&error.to_string())
        ),
    }
}

/// The Graph code of a permission refusal on a read edge (10, 100, 200–299), if `error` is one.
pub fn permission_code(error: &DestinationError) -> Option<i64> {
    match error {
        DestinationError::Meta { error, .. } => error
            .code()
            .filter(|code| matches!(code, 10 | 100 | 200..=299)),
        _ => None,
    }
}

/// One day's events as Meta counts them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaStats {
    /// `Purchase` events per UTC day: Meta's hourly buckets summed.
    pub days: BTreeMap<NaiveDate, u64>,
    /// The start of the newest hourly bucket Meta answered with.
    pub newest_bucket: Option<DateTime<Utc>>,
    /// `Purchase` events per UTC day and event source (`aggregation=event_source`); empty
    /// when Meta answered no bucket for it.
    pub sources: BTreeMap<NaiveDate, BTreeMap<String, u64>>,
}

/// A count as Meta writes it: a number or a numeric string.
fn count_of(item: &Value) -> Option<u64> {
    let count = item.get("count")?;
    count
        .as_u64()
        .or_else(|| count.as_str().and_then(|s| s.parse().ok()))
}

/// A bucket's `start_time`: `2026-12-06T10:00:00+0000`, RFC 3339, or unix seconds.
fn bucket_time(value: &Value) -> Option<DateTime<Utc>> {
    if let Some(secs) = value.as_i64() {
        return DateTime::from_timestamp(secs, 0);
    }
    let text = value.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            text.parse::<i64>()
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0))
        })
}

impl MetaStats {
    /// Adds the `Purchase` counts of one `/stats` page (`{"data": [{"start_time", "data":
    /// [{"value", "count"}]}]}`); entries it cannot read are skipped.
    pub fn add_page(&mut self, body: &Value) {
        let buckets = body.get("data").and_then(Value::as_array);
        for bucket in buckets.into_iter().flatten() {
            let Some(start) = bucket.get("start_time").and_then(bucket_time) else {
                continue;
            };
            let counts = bucket.get("data").and_then(Value::as_array);
            let purchases: u64 = counts
                .into_iter()
                .flatten()
                .filter(|c| c.get("value").and_then(Value::as_str) == Some("Purchase"))
                .filter_map(count_of)
                .sum();
            *self.days.entry(start.date_naive()).or_default() += purchases;
            if self.newest_bucket.is_none_or(|newest| start > newest) {
                self.newest_bucket = Some(start);
            }
        }
    }

    /// Adds one page of `/stats?aggregation=event_source&event=Purchase`: hourly buckets whose
    /// `data` counts the `Purchase` events per event source (`value`), summed per UTC day.
    pub fn add_source_page(&mut self, body: &Value) {
        let buckets = body.get("data").and_then(Value::as_array);
        for bucket in buckets.into_iter().flatten() {
            let Some(start) = bucket.get("start_time").and_then(bucket_time) else {
                continue;
            };
            let counts = bucket.get("data").and_then(Value::as_array);
            for item in counts.into_iter().flatten() {
                let (Some(source), Some(n)) =
                    (item.get("value").and_then(Value::as_str), count_of(item))
                else {
                    continue;
                };
                // Meta's text, shown to people: control characters and markup stripped.
                let source: String = source
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(40)
                    .collect();
                *self
                    .sources
                    .entry(start.date_naive())
                    .or_default()
                    .entry(source)
                    .or_default() += n;
            }
        }
    }
}

/// One diagnostic Meta reports, with what it means for a store connector.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// Meta's issue type (or `unknown`).
    pub kind: String,
    /// Meta's own words, when it gave any (control characters removed).
    pub description: Option<String>,
    /// What it means for in-store purchases sent by ocapi, and what to change.
    pub advice: &'static str,
}

/// What an issue type means for a store connector. ❌ Meta publishes no list of the types this
/// edge returns; they are matched by the words in the type (never by Meta's text, which is
/// localized), and an unknown one points to Events Manager.
fn advice(kind: &str) -> &'static str {
    let kind = kind.to_ascii_uppercase();
    let has = |words: &[&str]| words.iter().any(|w| kind.contains(w));
    if has(&["MATCH", "CUSTOMER_INFO", "USER_DATA"]) {
        "few events carry customer information Meta can match: map email and phone in \
         `[mapping]` and compare `ocapi quality`'s coverage per key"
    } else if has(&["DEDUP", "DUPLICATE"]) {
        "events look duplicated: ocapi sends each order once with its order id as event_id; \
         make sure no other integration (a POS plug-in, a CSV upload) sends the same store \
         purchases to this dataset"
    } else if has(&["LATE", "DELAY", "FRESH", "STALE"]) {
        "events reach Meta late: run `ocapi watch` (or cron more often) so that orders are \
         sent within an hour of the sale; `ocapi quality` shows the upload lag"
    } else if has(&["HASH"]) {
        "Meta saw customer data not hashed as it expects: ocapi hashes every key; a column \
         that is already hashed must hold lowercase SHA-256 hex"
    } else if has(&["TIME", "TIMESTAMP"]) {
        "event times look wrong: check `source.timezone` (local till times) and \
         `mapping.event_time`; `ocapi explain ORDER_ID` shows the time sent"
    } else if has(&["CURRENCY", "VALUE", "PARAMETER", "INVALID"]) {
        "some events carry values Meta finds malformed: `ocapi reconcile` lists rejected \
         orders and `ocapi explain ORDER_ID` says why"
    } else if has(&["DATA_PROCESSING", "LDU", "LIMITED_DATA"]) {
        "Limited Data Use: check `[mapping]`'s data processing options for the states you sell in"
    } else {
        "open Events Manager, the dataset's Diagnostics tab, for Meta's explanation"
    }
}

/// The issues of an answer: a Graph list (`{"data": [...]}`), a bare list, or a list under
/// `issues` or `diagnostics` (as a Dataset Quality answer may carry). Read leniently.
pub fn issues(body: &Value) -> Vec<Issue> {
    let list = body
        .get("data")
        .or_else(|| body.get("issues"))
        .or_else(|| body.get("diagnostics"))
        .or(Some(body))
        .and_then(Value::as_array);
    let text = |item: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| item.get(*k).and_then(Value::as_str))
            .map(|s| {
                s.replace(char::is_control, " ")
                    .chars()
                    .take(MAX_HEADER_CHARS)
                    .collect::<String>()
            })
    };
    list.into_iter()
        .flatten()
        .map(|item| {
            let kind = text(
                item,
                &["issue_type", "type", "diagnostic_type", "name", "key"],
            )
            .unwrap_or_else(|| "unknown".to_owned());
            Issue {
                advice: advice(&kind),
                description: text(item, &["description", "message", "title"]),
                kind,
            }
        })
        .collect()
}

/// The version headers seen on Meta's answers, and whether they were logged yet.
#[derive(Debug, Default)]
pub(crate) struct VersionWatch {
    /// What was seen (locked only to copy or update, never across an await).
    seen: Mutex<VersionSeen>,
}

/// What Meta said about the version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionSeen {
    /// The last `facebook-api-version`.
    pub answered: Option<String>,
    /// The last `x-ad-api-version-warning`.
    pub warning: Option<String>,
}

/// A header's text, without control characters, bounded.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(
        value
            .replace(char::is_control, " ")
            .chars()
            .take(MAX_HEADER_CHARS)
            .collect(),
    )
}

impl VersionWatch {
    /// Reads the version headers of one answer to a request for `asked`; logs Meta's warning
    /// and a different version the first time each is seen.
    pub(crate) fn observe(&self, headers: &HeaderMap, asked: &str) {
        let answered = header_text(headers, "facebook-api-version");
        let warning = header_text(headers, "x-ad-api-version-warning");
        if answered.is_none() && warning.is_none() {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(answered) = answered {
            if answered != asked && seen.answered.as_ref() != Some(&answered) {
                tracing::warn!(
                    asked,
                    answered = %answered,
                    "meta answered with api version {answered}, not the configured {asked}: \
                     the configured version is no longer served as asked; set \
                     `destination.api_version` to a supported version (`ocapi check`)"
                );
            }
            seen.answered = Some(answered);
        }
        if let Some(warning) = warning {
            if seen.warning.as_ref() != Some(&warning) {
                tracing::warn!(warning = %warning, "meta warns about api version {asked}");
            }
            seen.warning = Some(warning);
        }
    }

    /// What was seen so far.
    pub(crate) fn seen(&self) -> VersionSeen {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl MetaDestination {
    /// The configured `destination.api_version`.
    pub(crate) fn api_version(&self) -> &str {
        &self.inner.advice.api_version
    }

    /// What Meta's answers said about the version so far.
    pub(crate) fn version_seen(&self) -> VersionSeen {
        self.inner.versions.seen()
    }

    /// `GET {version}/debug_token?input_token=…`: the token's kind, validity, expiry and scopes.
    /// One attempt: every run reads it before sending, and a failure is only a warning.
    ///
    /// # Errors
    /// A typed [`DestinationError`].
    pub(crate) async fn debug_token(&self) -> Result<TokenInfo, DestinationError> {
        let inner = &*self.inner;
        let url = format!("{}/debug_token", inner.version_url);
        let query = [("input_token", inner.token.expose())];
        let once = crate::destination::retry::RetryPolicy::new(0);
        let body: DebugTokenBody = inner.get_with(&once, &url, &query, "debug_token").await?;
        Ok(body.data)
    }

    /// `GET {version}/{dataset_id}/stats?aggregation=event` for event times in `[from, to)`
    /// (unix seconds), following Meta's paging: `Purchase` counts per UTC day.
    ///
    /// # Errors
    /// A typed [`DestinationError`] after the destination's retries.
    pub(crate) async fn purchase_stats(
        &self,
        from: i64,
        to: i64,
    ) -> Result<MetaStats, DestinationError> {
        let mut stats = MetaStats::default();
        self.stats_pages(&[("aggregation", "event")], from, to, |page| {
            stats.add_page(page);
        })
        .await?;
        // Per event source where Meta answers it (✅ `event_source` is in the edge's
        // aggregation list, and `event` filters one event name; docs/meta-side.md). A refusal
        // leaves the split out, it does not hide the counts.
        let mut sources = MetaStats::default();
        let split = self
            .stats_pages(
                &[("aggregation", "event_source"), ("event", "Purchase")],
                from,
                to,
                |page| sources.add_source_page(page),
            )
            .await;
        if let Err(error) = split {
            tracing::debug!(error = %error, "meta's stats per event source could not be read");
        }
        stats.sources = sources.sources;
        Ok(stats)
    }

    /// `GET {version}/{dataset_id}/stats` with `query`, `start_time` and `end_time` (unix
    /// seconds), following Meta's cursor paging; each page goes to `page`.
    async fn stats_pages(
        &self,
        query: &[(&str, &str)],
        from: i64,
        to: i64,
        mut page: impl FnMut(&Value),
    ) -> Result<(), DestinationError> {
        let inner = &*self.inner;
        let url = format!("{}/stats", inner.dataset_url);
        let (from, to) = (from.to_string(), to.to_string());
        let mut after: Option<String> = None;
        for _ in 0..MAX_STATS_PAGES {
            let mut query = query.to_vec();
            query.extend([("start_time", from.as_str()), ("end_time", to.as_str())]);
            if let Some(cursor) = &after {
                query.push(("after", cursor.as_str()));
            }
            let body: Value = inner.get(&url, &query, "stats").await?;
            page(&body);
            let paging = body.get("paging");
            after = paging
                .filter(|p| p.get("next").is_some())
                .and_then(|p| p.pointer("/cursors/after"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if after.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// `destination.ad_account_id` (digits), which Meta's diagnostics edge requires.
    pub(crate) fn ad_account_id(&self) -> Option<&str> {
        self.inner.ad_account_id.as_deref()
    }

    /// `GET {version}/{dataset_id}/ads_signal_diagnostic_issues`: the issues Meta reports.
    ///
    /// # Errors
    /// A typed [`DestinationError`] after the destination's retries.
    pub(crate) async fn diagnostic_issues(&self) -> Result<Vec<Issue>, DestinationError> {
        let inner = &*self.inner;
        let url = format!("{}/ads_signal_diagnostic_issues", inner.dataset_url);
        // ✅ Meta's reference page for the edge lists `ad_account_id` (int64) as required
        // (docs/meta-side.md); callers ask only when it is configured.
        let query: Vec<(&str, &str)> = inner
            .ad_account_id
            .as_deref()
            .map(|account| ("ad_account_id", account))
            .into_iter()
            .collect();
        let body: Value = inner.get(&url, &query, "diagnostics").await?;
        Ok(issues(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hourly_buckets_sum_per_utc_day() {
        let mut stats = MetaStats::default();
        stats.add_page(&json!({"data": [
            {"start_time": "2026-12-05T23:00:00+0000", "aggregation": "event",
             "data": [{"value": "Purchase", "count": 3}, {"value": "Lead", "count": 9}]},
            {"start_time": "2026-12-06T00:00:00+0000", "aggregation": "event",
             "data": [{"value": "Purchase", "count": "2"}]},
            {"start_time": "2026-12-06T05:00:00Z", "aggregation": "event",
             "data": [{"value": "Purchase", "count": 1}]},
            {"start_time": "garbage", "data": [{"value": "Purchase", "count": 100}]}
        ]}));
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        assert_eq!(stats.days[&day("2026-12-05")], 3);
        assert_eq!(stats.days[&day("2026-12-06")], 3);
        assert_eq!(
            stats.newest_bucket.unwrap().to_rfc3339(),
            "2026-12-06T05:00:00+00:00"
        );
    }

    #[test]
    fn issues_are_read_leniently_with_advice() {
        let found = issues(&json!({"data": [
            {"issue_type": "LOW_MATCH_RATE", "description": "Few\nmatches"},
            {"type": "SOMETHING_NEW"},
            {}
        ]}));
        assert_eq!(found.len(), 3);
        assert!(found[0].advice.contains("email and phone"));
        assert_eq!(found[0].description.as_deref(), Some("Few matches"));
        assert!(found[1].advice.contains("Events Manager"));
        assert_eq!(found[2].kind, "unknown");
        assert!(issues(&json!({})).is_empty());
    }

    #[test]
    fn permission_errors_name_the_edge_and_the_permission() {
        let error = DestinationError::Invalid("x".to_owned());
        assert!(edge_warning(EDGE_STATS, "ads_read", &error).contains("cannot read"));
    }
}

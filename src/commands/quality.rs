//! `ocapi quality`: Meta's Dataset Quality API for the dataset's offline events (called by
//! `destination::meta`, docs/meta-capi.md §7) beside ocapi's own per-key coverage from the ledger's
//! recent runs. The response is parsed leniently: Meta's exact nesting is not pinned down, so
//! each score is looked for by name wherever it appears, and anything missing prints as `-`.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cli::QualityArgs;
use crate::config::Config;
use crate::error::{Error, ExitStatus};
pub use crate::ledger::RunLag;
use crate::ledger::{LedgerReader, MatchKeyTotals};

/// Runs whose match keys make up ocapi's own coverage.
pub(crate) const RECENT_RUNS: i64 = 10;

/// Meta's offline dataset quality, every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetaQuality {
    /// The composite score, out of 10.
    pub composite: Option<f64>,
    /// The match-key score, out of 10.
    pub match_key: Option<f64>,
    /// Email coverage, percent.
    pub email_coverage: Option<f64>,
    /// Phone coverage, percent.
    pub phone_coverage: Option<f64>,
    /// The freshness score, out of 10.
    pub freshness: Option<f64>,
    /// The frequency score, out of 10.
    pub frequency: Option<f64>,
    /// The scores come from the local stand-in (`ocapi sandbox`), not from Meta.
    pub stand_in: bool,
}

/// ocapi's own coverage: per key, the share of sent events that carried it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LocalCoverage {
    /// Runs counted.
    pub runs: i64,
    /// Events sent by those runs.
    pub sent: i64,
    /// Key → percent of sent events.
    pub keys: BTreeMap<String, f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The dataset.
    pub dataset_id: String,
    /// Meta's view.
    pub meta: MetaQuality,
    /// ocapi's view.
    pub local: LocalCoverage,
    /// The upload lag of the connector's latest run that sent something, seen from ocapi.
    pub upload_lag: Option<RunLag>,
    /// Warnings about Meta's side: an empty answer explained, Meta's diagnostics with what to
    /// change, an edge Meta refused for a missing permission (docs/meta-side.md).
    pub warnings: Vec<String>,
    /// Meta's answer was empty (`{}`): the scores are left out, `warnings` says why.
    pub meta_empty: bool,
}

/// Why Dataset Quality answers `{}` (✅
/// https://developers.facebook.com/docs/marketing-api/conversions-api/dataset-quality-api).
pub const EMPTY_ANSWER: &str = "meta's Dataset Quality answer is empty ({}): Meta computes no      offline scores for this dataset. Either the app has no access tier for the API, or the      dataset received no offline (physical_store) events in the last 28 days (run `ocapi run`      and look again tomorrow), or the Dataset Quality beta is not enabled for the dataset (ask      your Meta representative); the scores below are empty for that reason, not because ocapi      sends nothing";

/// Whether a Dataset Quality answer holds nothing (`{}`, or only empty values).
fn is_empty_answer(body: &Value) -> bool {
    match body {
        Value::Object(map) => map.values().all(is_empty_answer),
        Value::Array(items) => items.iter().all(is_empty_answer),
        Value::Null => true,
        _ => false,
    }
}

/// A number, or an object holding one under a score-like name.
fn score_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('%').parse().ok(),
        Value::Object(map) => [
            "score",
            "value",
            "composite_score",
            "percentage",
            "coverage",
        ]
        .iter()
        .find_map(|k| map.get(*k).and_then(score_of)),
        _ => None,
    }
}

/// The first value under `key` anywhere in `value` (depth first).
fn find<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|v| find(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}

/// A coverage for `needle` (`email` or `phone`) under the match-key part: a key containing
/// the needle, or an entry of a list whose name is the needle.
fn coverage_of(match_key: &Value, needle: &str) -> Option<f64> {
    match match_key {
        Value::Object(map) => {
            for (key, value) in map {
                let k = key.to_ascii_lowercase();
                if k.contains(needle)
                    || (needle == "email" && k == "em")
                    || (needle == "phone" && k == "ph")
                {
                    if let Some(score) = score_of(value) {
                        return Some(score);
                    }
                }
            }
            map.values().find_map(|v| coverage_of(v, needle))
        }
        Value::Array(items) => items.iter().find_map(|item| {
            let named = ["identifier", "key", "name", "match_key"]
                .iter()
                .filter_map(|k| item.get(*k).and_then(Value::as_str))
                .any(|name| {
                    let name = name.to_ascii_lowercase();
                    name.contains(needle)
                        || (needle == "email" && name == "em")
                        || (needle == "phone" && name == "ph")
                });
            if named {
                item.get("coverage")
                    .or_else(|| item.get("percentage"))
                    .and_then(score_of)
            } else {
                coverage_of(item, needle)
            }
        }),
        _ => None,
    }
}

/// Parses a Dataset Quality API body; unknown shapes give `None` fields, never an error.
pub fn parse(body: &Value) -> MetaQuality {
    let root = find(body, "offline").unwrap_or(body);
    let match_key = find(root, "match_key");
    MetaQuality {
        composite: find(root, "composite").and_then(score_of),
        match_key: match_key.and_then(score_of),
        email_coverage: match_key.and_then(|m| coverage_of(m, "email")),
        phone_coverage: match_key.and_then(|m| coverage_of(m, "phone")),
        freshness: find(root, "freshness").and_then(score_of),
        stand_in: body.get("stand_in").is_some(),
        frequency: find(root, "frequency").and_then(score_of),
    }
}

/// Calls the Dataset Quality API through the Meta destination (its client, retries and typed
/// errors) and reads the scores out of the answer.
pub async fn fetch(config: &Config) -> Result<MetaQuality, Error> {
    let meta = crate::destination::MetaDestination::from_config(config)?;
    Ok(parse(&meta.dataset_quality().await?))
}

/// ocapi's coverage over the connector's last `RECENT_RUNS` runs that sent something: per
/// key, the percent of their sent events that carried it.
fn local_coverage(totals: MatchKeyTotals) -> LocalCoverage {
    let mut coverage = LocalCoverage {
        runs: totals.runs,
        sent: totals.sent,
        keys: BTreeMap::new(),
    };
    if coverage.sent > 0 {
        for (key, events) in totals.events_with {
            coverage
                .keys
                .insert(key, 100.0 * events as f64 / coverage.sent as f64);
        }
    }
    coverage
}

/// Meta's scores and ocapi's coverage. A Dataset Quality answer refused for a missing
/// permission, and Meta's diagnostics, are warnings; other failures of the call fail.
pub async fn report(config: &Config) -> Result<Report, Error> {
    use crate::destination::meta::side;
    use crate::destination::meta::token::READ_SCOPE;
    let destination = crate::destination::MetaDestination::from_config(config)?;
    let mut warnings = Vec::new();
    let mut meta_empty = false;
    let meta = match destination.dataset_quality().await {
        Ok(body) => {
            if is_empty_answer(&body) {
                meta_empty = true;
                warnings.push(EMPTY_ANSWER.to_owned());
            }
            // Issues the Dataset Quality answer carries itself, wherever they are.
            for key in ["issues", "diagnostics"] {
                if let Some(list) = find(&body, key) {
                    warnings.extend(super::meta_side::issue_lines(&side::issues(list)));
                }
            }
            parse(&body)
        }
        Err(error) if side::permission_code(&error).is_some() => {
            warnings.push(side::edge_warning(side::EDGE_QUALITY, READ_SCOPE, &error));
            MetaQuality::default()
        }
        Err(error) => return Err(error.into()),
    };
    for finding in super::meta_side::diagnostics(&destination).await {
        if finding.severity != crate::destination::meta::token::Severity::Ok {
            warnings.push(finding.text);
        }
    }
    let ledger = LedgerReader::open(config).await?;
    let local = local_coverage(ledger.match_keys(RECENT_RUNS).await?);
    let upload_lag = ledger.latest_lag().await?;
    Ok(Report {
        dataset_id: config.destination.dataset_id.clone(),
        meta,
        local,
        upload_lag,
        warnings,
        meta_empty,
    })
}

/// The report for people.
pub fn render(report: &Report) -> String {
    let show =
        |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}{unit}"));
    let local = |key: &str| show(report.local.keys.get(key).copied(), "%");
    let m = &report.meta;
    let mut out = String::new();
    let _ = writeln!(out, "dataset {} (offline events)", report.dataset_id);
    for warning in &report.warnings {
        let _ = writeln!(out, "warn  {warning}");
    }
    if m.stand_in {
        let _ = writeln!(
            out,
            "these scores are the local stand-in's (`ocapi sandbox`), computed from the events it \
             accepted: they are not Meta's"
        );
    }
    let none = || "-".to_owned();
    let lag = report.upload_lag.as_ref().map_or_else(none, |lag| {
        format!("p50 {}", crate::commands::runs::short(lag.median_seconds))
    });
    let rows = [
        ("", "meta".to_owned(), "ocapi".to_owned()),
        ("composite (/10)", show(m.composite, ""), none()),
        ("match key (/10)", show(m.match_key, ""), none()),
        ("email coverage", show(m.email_coverage, "%"), local("em")),
        ("phone coverage", show(m.phone_coverage, "%"), local("ph")),
        ("freshness (/10)", show(m.freshness, ""), lag),
        ("frequency (/10)", show(m.frequency, ""), none()),
    ];
    // An empty answer is explained among the warnings, not shown as a column of dashes.
    for (label, meta, ocapi) in rows.iter().filter(|_| !report.meta_empty) {
        let _ = writeln!(out, "  {label:<22} {meta:>10}  {ocapi:>10}");
    }
    let _ = writeln!(
        out,
        "ocapi coverage per key over the last {} runs ({} events sent):",
        report.local.runs, report.local.sent
    );
    if report.local.keys.is_empty() {
        let _ = writeln!(out, "  -");
    }
    for (key, pct) in &report.local.keys {
        let _ = writeln!(out, "  {key:<12} {pct:>6.1}%");
    }
    if let Some(lag) = &report.upload_lag {
        let _ = writeln!(
            out,
            "ocapi upload lag (sale to acceptance) in run {}: median {}, p95 {}, max {}",
            lag.run_id,
            crate::commands::runs::short(lag.median_seconds),
            crate::commands::runs::short(lag.p95_seconds),
            crate::commands::runs::short(lag.max_seconds)
        );
    }
    if m.composite.is_some_and(|c| c < 8.5) {
        let _ = writeln!(
            out,
            "a composite of 8.5 or more unlocks omnichannel ads: send email and phone, sync \
             more often (`ocapi watch`), and sooner after the sale"
        );
    }
    out
}

/// `ocapi quality`: Meta's view of the dataset beside the ledger's, as text or one JSON object.
pub(crate) async fn command(config: &Config, args: &QualityArgs) -> Result<ExitStatus, Error> {
    let report = report(config).await?;
    if args.json {
        crate::commands::print_json(&report)?;
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_shape_parses() {
        let body = serde_json::json!({
            "offline": {
                "composite": {"score": 7.4},
                "match_key": {"score": 6.0, "email_coverage": 81.5, "phone_coverage": "42%"},
                "freshness": {"score": 9.1},
                "frequency": 8
            }
        });
        let q = parse(&body);
        assert_eq!(q.composite, Some(7.4));
        assert_eq!(q.match_key, Some(6.0));
        assert_eq!(q.email_coverage, Some(81.5));
        assert_eq!(q.phone_coverage, Some(42.0));
        assert_eq!(q.freshness, Some(9.1));
        assert_eq!(q.frequency, Some(8.0));
    }

    #[test]
    fn list_shaped_coverage_and_missing_fields_parse() {
        let body = serde_json::json!({"data": [{"offline": {
            "match_key": {"coverage": [
                {"identifier": "EMAIL", "percentage": 55},
                {"identifier": "PHONE", "percentage": 10.5}
            ]}
        }}]});
        let q = parse(&body);
        assert_eq!(q.email_coverage, Some(55.0));
        assert_eq!(q.phone_coverage, Some(10.5));
        assert_eq!(q.composite, None);
        assert_eq!(parse(&serde_json::json!({})), MetaQuality::default());
    }
}

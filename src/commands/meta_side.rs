//! Meta's side in `check` and `quality` (docs/meta-side.md): the token's and the API version's
//! remaining life, the version headers Meta answered with, and Meta's diagnostics, as findings.
//! Only a dead token or a version past its end fail (`check` exits 2); everything else,
//! including an edge Meta refuses for a missing permission, is a warning.

use chrono::Utc;

use crate::config::Config;
use crate::destination::meta::side::{edge_warning, Issue, EDGE_DIAGNOSTICS};
use crate::destination::meta::token::{Finding, Severity, READ_SCOPE};
use crate::destination::MetaDestination;

/// The findings about the token and the version (read first, so that a dead token's exit 2
/// and date come before the other edges' refusals).
pub(crate) async fn life(config: &Config, meta: &MetaDestination) -> Vec<Finding> {
    meta.life(config.alerts.token_expiry_warning, Utc::now())
        .await
        .findings
}

/// The version headers seen on Meta's answers so far, as findings.
pub(crate) fn version_headers(meta: &MetaDestination) -> Vec<Finding> {
    let seen = meta.version_seen();
    let asked = meta.api_version();
    let mut findings = Vec::new();
    if let Some(answered) = seen.answered.filter(|answered| answered != asked) {
        findings.push(Finding::new(
            Severity::Warn,
            format!(
                "meta answered with api version {answered}, not the configured {asked}: set \
                 `destination.api_version` to a version ocapi supports"
            ),
        ));
    }
    if let Some(warning) = seen.warning {
        findings.push(Finding::new(
            Severity::Warn,
            format!("meta warns about api version {asked}: {warning}"),
        ));
    }
    findings
}

/// One warning line per issue: Meta's type and words, then what to change.
pub(crate) fn issue_lines(issues: &[Issue]) -> Vec<String> {
    issues
        .iter()
        .map(|issue| {
            let words = issue
                .description
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            format!("meta diagnostic {}{words}: {}", issue.kind, issue.advice)
        })
        .collect()
}

/// Meta's diagnostics as warnings (an unreadable edge is one warning naming it).
pub(crate) async fn diagnostics(meta: &MetaDestination) -> Vec<Finding> {
    if meta.ad_account_id().is_none() {
        // Meta's edge requires the ad account (docs/meta-side.md): asking without it would
        // only earn a "(#100) invalid parameter".
        return vec![Finding::new(
            Severity::Warn,
            "meta diagnostics: not read: Meta's ads_signal_diagnostic_issues edge needs the ad \
             account that uses the dataset; set `destination.ad_account_id` (act_<digits>, \
             Ads Manager shows it) to list them here, or open Events Manager's Diagnostics tab",
        )];
    }
    match meta.diagnostic_issues().await {
        Ok(issues) if issues.is_empty() => vec![Finding::new(
            Severity::Ok,
            "meta diagnostics: no issue reported for the dataset",
        )],
        Ok(issues) => issue_lines(&issues)
            .into_iter()
            .map(|line| Finding::new(Severity::Warn, line))
            .collect(),
        Err(error) => vec![Finding::new(
            Severity::Warn,
            edge_warning(EDGE_DIAGNOSTICS, READ_SCOPE, &error),
        )],
    }
}

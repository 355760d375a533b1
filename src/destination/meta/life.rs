//! How long the setup keeps working: the token's and the configured API version's remaining
//! life, read once by `check` and at the start of every run (docs/meta-side.md). What it finds
//! is printed by `check`, logged by the run, exported as gauges and, for a token about to
//! expire, alerted once a day.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::side::{edge_warning, EDGE_DEBUG_TOKEN};
use super::token::{Finding, Severity, TokenInfo, SEND_SCOPE};
use super::versions::{VersionLife, VersionState};
use super::MetaDestination;
use crate::destination::DestinationError;

/// The remaining life figures of a run or a check, for the gauges and `--json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetaLife {
    /// The configured `destination.api_version`.
    pub api_version: String,
    /// Seconds until it stops working (negative once past); `None` when ocapi does not know it.
    pub api_version_sunset_seconds: Option<i64>,
    /// Seconds until the token expires (negative once past); `None` when it never expires or
    /// `debug_token` could not be read.
    pub token_expires_in_seconds: Option<i64>,
}

impl MetaLife {
    /// The version's figures only (a run that failed before reading the token).
    pub fn of_version(api_version: &str, now: DateTime<Utc>) -> Self {
        Self {
            api_version: api_version.to_owned(),
            api_version_sunset_seconds: VersionLife::of(api_version, now).seconds_left,
            token_expires_in_seconds: None,
        }
    }
}

/// What `check` and a run found about the token and the version.
#[derive(Debug, Clone, Default)]
pub struct LifeReport {
    /// The figures.
    pub life: MetaLife,
    /// Findings, in order: the version, then the token.
    pub findings: Vec<Finding>,
    /// The token expires within `alerts.token_expiry_warning` (or has expired): alert once a
    /// day with this text.
    pub token_alert: Option<String>,
}

/// The version's finding.
pub fn version_finding(version: &VersionLife) -> Finding {
    let severity = match version.state() {
        VersionState::Fine => Severity::Ok,
        VersionState::Ending | VersionState::Unknown => Severity::Warn,
        VersionState::Ended => Severity::Fail,
    };
    Finding::new(severity, version.describe())
}

impl MetaDestination {
    /// Reads `debug_token` and judges the token and the configured version at `now`. Never
    /// fails: a failed read is a warning naming the edge.
    pub(crate) async fn life(&self, warning: Duration, now: DateTime<Utc>) -> LifeReport {
        let version = VersionLife::of(self.api_version(), now);
        let mut report = LifeReport {
            life: MetaLife {
                api_version: version.version.clone(),
                api_version_sunset_seconds: version.seconds_left,
                token_expires_in_seconds: None,
            },
            findings: vec![version_finding(&version)],
            token_alert: None,
        };
        let warning_secs = i64::try_from(warning.as_secs()).unwrap_or(i64::MAX);
        match self.debug_token().await {
            Ok(token) => {
                report.life.token_expires_in_seconds = token.expires_in(now.timestamp());
                let found = token.findings(now.timestamp(), warning_secs);
                report.token_alert = found
                    .iter()
                    .find(|f| f.severity != Severity::Ok && is_expiry(&token, now, warning_secs))
                    .map(|f| f.text.clone());
                report.findings.extend(found);
            }
            // An endpoint nobody listens at is said once, by the call that fails on it (the
            // dataset in `check`, the events in a run), not here too.
            Err(DestinationError::Unreachable { .. }) => {}
            Err(error) => report.findings.push(Finding::new(
                Severity::Warn,
                edge_warning(EDGE_DEBUG_TOKEN, SEND_SCOPE, &error),
            )),
        }
        report
    }
}

/// Whether the token's expiry (not a missing scope) calls for an alert.
fn is_expiry(token: &TokenInfo, now: DateTime<Utc>, warning_secs: i64) -> bool {
    token.is_dead(now.timestamp())
        || token
            .expires_in(now.timestamp())
            .is_some_and(|left| left <= warning_secs)
}

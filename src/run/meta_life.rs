//! What a run checks of Meta's side before it sends (docs/meta-side.md): the configured API
//! version's remaining life (past its end the run stops with exit 2, naming the version to
//! move to) and the token's (`debug_token`: logged, kept for the gauges, alerted once a day
//! when it expires within `alerts.token_expiry_warning`). A token Meta refuses is only logged
//! here: the run goes on and fails on the events edge as before, with the same exit code.

use chrono::Utc;

use crate::config::{Config, ConfigError};
use crate::destination::meta::token::Severity;
use crate::destination::meta::versions::{newest, VersionLife, VersionState};
use crate::destination::MetaDestination;
use crate::error::Error;
use crate::stats::RunStats;

/// Reads the token's and the version's life into `stats` and logs what they call for.
///
/// # Errors
/// [`ConfigError::Invalid`] for `destination.api_version` when the version has stopped
/// working.
pub(super) async fn read(
    config: &Config,
    meta: &MetaDestination,
    stats: &mut RunStats,
) -> Result<(), Error> {
    let now = Utc::now();
    let version = VersionLife::of(meta.api_version(), now);
    if version.state() == VersionState::Ended {
        return Err(ConfigError::Invalid {
            key: "destination.api_version",
            constraint: format!(
                "names a version Meta no longer serves: {}; set it to \"{}\"",
                version.describe(),
                newest().version
            ),
        }
        .into());
    }
    let report = meta.life(config.alerts.token_expiry_warning, now).await;
    for finding in &report.findings {
        match finding.severity {
            Severity::Fail => tracing::error!("{}", finding.text),
            Severity::Warn => tracing::warn!("{}", finding.text),
            Severity::Ok => tracing::debug!("{}", finding.text),
        }
    }
    stats.meta_life = Some(report.life);
    if let Some(text) = report.token_alert {
        stats.meta_alerts.push((
            format!("token_expiry:{}", now.date_naive()),
            format!("ocapi connector {:?}: {text}", config.connector.name),
        ));
    }
    Ok(())
}

//! `[alerts]`: the chat webhook told about failed, degraded and recovered runs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{duration, ConfigError};
use crate::secret::{self, Secret};

/// The default `alerts.quiet_period`.
pub const DEFAULT_QUIET_PERIOD: Duration = Duration::from_secs(60 * 60);
/// The default `alerts.token_expiry_warning`: warn (and alert once a day) two weeks ahead.
pub const DEFAULT_TOKEN_EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// The default `alerts.meta_shortfall`: Meta counting 2% fewer events than the ledger sent on a
/// settled day is an alert.
pub const DEFAULT_META_SHORTFALL: f64 = 0.02;

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The environment variable holding the webhook URL.
    pub webhook_url_env: Option<String>,
    /// A file holding the webhook URL (a mounted secret).
    pub webhook_url_file: Option<PathBuf>,
    /// How long the same alert stays quiet after it was sent.
    #[serde(default = "default_quiet_period", deserialize_with = "duration")]
    pub quiet_period: Duration,
    /// A token expiring within this is a warning in `check` and every run, and an alert once
    /// a day.
    #[serde(
        default = "default_token_expiry_warning",
        deserialize_with = "duration"
    )]
    pub token_expiry_warning: Duration,
    /// The share of a settled day's sent orders that Meta may count fewer of before
    /// `reconcile --meta` alerts (0.0 to 1.0).
    #[serde(default = "default_meta_shortfall")]
    pub meta_shortfall: f64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_url_env: None,
            webhook_url_file: None,
            quiet_period: DEFAULT_QUIET_PERIOD,
            token_expiry_warning: DEFAULT_TOKEN_EXPIRY_WARNING,
            meta_shortfall: DEFAULT_META_SHORTFALL,
        }
    }
}

/// Serde default for `alerts.quiet_period`.
fn default_quiet_period() -> Duration {
    DEFAULT_QUIET_PERIOD
}

/// Serde default for `alerts.token_expiry_warning`.
fn default_token_expiry_warning() -> Duration {
    DEFAULT_TOKEN_EXPIRY_WARNING
}

/// Serde default for `alerts.meta_shortfall`.
fn default_meta_shortfall() -> f64 {
    DEFAULT_META_SHORTFALL
}

impl AlertsConfig {
    /// The webhook URL, if alerts are configured: from the file, else the environment.
    pub(crate) fn webhook_url(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(path) = &self.webhook_url_file {
            let text = secret::from_file("alerts.webhook_url_file", path)?;
            return non_empty_url(text, "alerts.webhook_url_file").map(Some);
        }
        let Some(var) = &self.webhook_url_env else {
            return Ok(None);
        };
        Ok(Some(secret::from_env("alerts.webhook_url_env", var)?))
    }
}

/// A trimmed, non-empty URL from a secret file.
fn non_empty_url(url: Secret, key: &'static str) -> Result<Secret, ConfigError> {
    if url.expose().is_empty() {
        return Err(ConfigError::Invalid {
            key,
            constraint: "names an empty file: put the webhook URL in it".to_owned(),
        });
    }
    Ok(url)
}

//! `[alerts]`: a JSON message `{"text": "..."}` (the shape Slack, Mattermost, Google Chat and
//! most chat webhooks accept) when a run fails, when it is degraded, and once when a connector
//! that was alerted about recovers. The same alert is not repeated on every failing tick of
//! `watch`: once, then again only after `quiet_period`. The URL is a secret, read from the
//! environment or a file and never logged; an alert that cannot be delivered is logged and
//! never fails the run.

use std::time::{Duration, Instant};

use crate::config::{AlertsConfig, ConfigError};
use crate::secret::Secret;
use crate::stats::{RunStats, RunStatus};

/// How long a delivery may take.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A run failed.
    Failed,
    /// A run completed above `--max-invalid-ratio`.
    Degraded,
    /// A run completed after alerts about failed or degraded runs.
    Recovered,
}

/// Decides which runs are alerted about; holds no I/O, so that it can be tested on its own.
#[derive(Debug, Clone)]
pub(crate) struct AlertState {
    /// How long the same alert stays quiet.
    quiet_period: Duration,
    /// The last failed or degraded alert sent, and when.
    last: Option<(AlertKind, Instant)>,
}

impl AlertState {
    /// No alert sent yet.
    pub fn new(quiet_period: Duration) -> Self {
        Self {
            quiet_period,
            last: None,
        }
    }

    /// Counts the connector's previous run, which ended with `status` `age` ago, as alerted
    /// about if it failed or was degraded: a one-shot `ocapi run` from cron then stays quiet
    /// within the quiet period and says when the connector recovers, as `watch` does.
    pub(crate) fn recall(&mut self, status: &str, age: Duration, now: Instant) {
        let kind = match status {
            "failed" => AlertKind::Failed,
            "degraded" => AlertKind::Degraded,
            _ => return,
        };
        // An age beyond what `Instant` can go back to is past any quiet period anyway.
        let at = now
            .checked_sub(age)
            .or_else(|| now.checked_sub(self.quiet_period))
            .unwrap_or(now);
        self.last = Some((kind, at));
    }

    /// The alert to send for a run that ended with `status` at `now`, if any.
    pub(crate) fn decide(&mut self, status: RunStatus, now: Instant) -> Option<AlertKind> {
        let kind = match status {
            RunStatus::Failed => AlertKind::Failed,
            RunStatus::Degraded => AlertKind::Degraded,
            RunStatus::Completed => {
                return self.last.take().map(|_| AlertKind::Recovered);
            }
            RunStatus::Running | RunStatus::Skipped | RunStatus::Stopped => return None,
        };
        let quiet = self.last.is_some_and(|(last, at)| {
            last == kind && now.saturating_duration_since(at) < self.quiet_period
        });
        if quiet {
            return None;
        }
        self.last = Some((kind, now));
        Some(kind)
    }
}

/// The message for an alert about `stats`. No customer data: counts and the error chain only.
/// Text from elsewhere (the error chain quotes the endpoint's messages; the connector's name) is
/// escaped for the chat ([`crate::escape::chat`]): no mention, link or extra line can come
/// from it.
pub fn message(kind: AlertKind, stats: &RunStats) -> String {
    let who = format!(
        "ocapi connector \"{}\"",
        crate::escape::chat(&stats.connector)
    );
    // A run that failed before it was recorded has no id.
    let run = if stats.run_id == 0 {
        "run".to_owned()
    } else {
        format!("run {}", stats.run_id)
    };
    match kind {
        AlertKind::Failed => format!(
            "{who}: {run} failed: {}",
            crate::escape::chat(stats.error.as_deref().unwrap_or("unknown error"))
        ),
        AlertKind::Degraded => format!(
            "{who}: {run} degraded: {} invalid and {} rejected of {} orders ({:.1}%)",
            stats.invalid,
            stats.rejected,
            stats.events + stats.invalid,
            stats.invalid_ratio() * 100.0
        ),
        AlertKind::Recovered => format!("{who}: recovered, {run} completed ({} sent)", stats.sent),
    }
}

/// Sends alerts to a webhook.
#[derive(Debug, Clone)]
pub struct Alerter {
    /// The webhook URL (secret).
    url: Secret,
    /// What was sent when.
    state: AlertState,
    /// The HTTP client.
    http: reqwest::Client,
}

impl Alerter {
    /// An alerter for the config, or `None` when `[alerts]` names no webhook.
    pub fn from_config(config: &AlertsConfig) -> Result<Option<Self>, ConfigError> {
        let Some(url) = config.webhook_url()? else {
            return Ok(None);
        };
        // No redirect is followed: the webhook URL is a secret's address, and a 3xx is a
        // failed delivery, not a delivery elsewhere.
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ConfigError::Invalid {
                key: "alerts.webhook_url_env",
                constraint: format!("cannot set up an http client: {error}"),
            })?;
        Ok(Some(Self {
            url,
            state: AlertState::new(config.quiet_period),
            http,
        }))
    }

    /// Reads how the connector's previous run ended (see [`AlertState::recall`]), before a
    /// one-shot run. Best effort: when the ledger cannot tell within a few seconds, nothing is
    /// recalled and every failed or degraded run alerts.
    pub(crate) async fn recall_previous_run(&mut self, config: &crate::config::Config) {
        let read = async {
            let ledger = crate::ledger::LedgerReader::connect(config).await?;
            Ok::<_, crate::Error>(ledger.previous_run().await?)
        };
        match tokio::time::timeout(SEND_TIMEOUT, read).await {
            Ok(Ok(Some(previous))) => {
                let age = Duration::try_from_secs_f64(previous.age_seconds.max(0.0))
                    .unwrap_or(Duration::MAX);
                self.state.recall(&previous.status, age, Instant::now());
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                tracing::debug!(error = %crate::error::chain(&error), "previous run unknown for alerts");
            }
            Err(_) => tracing::debug!("previous run unknown for alerts: no answer in time"),
        }
    }

    /// Alerts about a finished run when it calls for one. Never fails: a delivery failure is
    /// logged (without the URL) and the run goes on.
    pub(crate) async fn observe(&mut self, stats: &RunStats) {
        let Some(kind) = self.state.decide(stats.status, Instant::now()) else {
            return;
        };
        match self.post(&message(kind, stats)).await {
            Ok(()) => tracing::info!(kind = ?kind, "alert sent"),
            Err(error) => tracing::warn!(
                kind = ?kind,
                error = %error,
                "cannot deliver the alert to alerts' webhook; the run goes on"
            ),
        }
    }

    /// Posts `{"text": text}` to the webhook. Only a 2xx answer is a delivery: a redirect is
    /// not followed, and its 3xx is an error like a 4xx or 5xx.
    ///
    /// # Errors
    /// Why it was not delivered, without the URL (a secret).
    async fn post(&self, text: &str) -> Result<(), String> {
        let body = serde_json::json!({ "text": text });
        let sent = self.http.post(self.url.expose()).json(&body).send().await;
        match sent {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) if answer.status().is_redirection() => Err(format!(
                "the webhook answered HTTP {} (a redirect, which ocapi does not follow)",
                answer.status().as_u16()
            )),
            Ok(answer) => Err(format!(
                "the webhook answered HTTP {}",
                answer.status().as_u16()
            )),
            Err(error) => Err(crate::error::chain(&error.without_url())),
        }
    }
}

impl Alerter {
    /// Sends each `(key, text)` alert about Meta's side (a token about to expire, Meta counting
    /// fewer events) whose key the connector has not alerted before (`meta_alerts`, sql/0016).
    /// Never fails: a ledger or delivery failure is logged and the caller goes on.
    pub(crate) async fn notify_once(
        &self,
        config: &crate::config::Config,
        alerts: &[(String, String)],
    ) {
        if alerts.is_empty() {
            return;
        }
        let keys: Vec<String> = alerts.iter().map(|(key, _)| key.clone()).collect();
        let new = match crate::ledger::claim_meta_alerts(config, &keys).await {
            Ok(new) => new,
            Err(error) => {
                tracing::warn!(error = %crate::error::chain(&error), "cannot tell which alerts about Meta's side were sent; not sending them");
                return;
            }
        };
        for (key, text) in alerts.iter().filter(|(key, _)| new.contains(key)) {
            match self.post(text).await {
                Ok(()) => tracing::info!(alert = %key, "alert sent"),
                Err(error) => tracing::warn!(
                    alert = %key,
                    error = %error,
                    "cannot deliver the alert to alerts' webhook; the run goes on"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_alert_once_per_quiet_period_and_recovery_once() {
        let hour = Duration::from_secs(3600);
        let mut state = AlertState::new(hour);
        let t0 = Instant::now();
        assert_eq!(state.decide(RunStatus::Completed, t0), None);
        assert_eq!(state.decide(RunStatus::Failed, t0), Some(AlertKind::Failed));
        assert_eq!(state.decide(RunStatus::Failed, t0 + hour / 2), None);
        assert_eq!(
            state.decide(RunStatus::Failed, t0 + hour),
            Some(AlertKind::Failed)
        );
        assert_eq!(
            state.decide(RunStatus::Degraded, t0 + hour),
            Some(AlertKind::Degraded)
        );
        assert_eq!(
            state.decide(RunStatus::Completed, t0 + hour),
            Some(AlertKind::Recovered)
        );
        assert_eq!(state.decide(RunStatus::Completed, t0 + hour), None);
    }

    #[test]
    fn an_alert_carries_no_markup_or_control_from_the_error() {
        let mut stats = RunStats::new("shop <1>");
        stats.run_id = 7;
        stats.error = Some(
            "meta says: \"<!channel> see <https://evil.example|Meta> & \u{1b}[2Jfix\nnow\""
                .to_owned(),
        );
        assert_eq!(
            message(AlertKind::Failed, &stats),
            "ocapi connector \"shop &lt;1&gt;\": run 7 failed: meta says: \"&lt;!channel&gt; see \
             &lt;https://evil.example|Meta&gt; &amp; \\x1b[2Jfix\\nnow\""
        );
    }

    #[test]
    fn a_recalled_previous_run_counts_as_alerted() {
        let hour = Duration::from_secs(3600);
        let now = Instant::now();
        let mut state = AlertState::new(hour);
        state.recall("failed", Duration::from_secs(60), now);
        assert_eq!(state.decide(RunStatus::Failed, now), None);
        let mut state = AlertState::new(hour);
        state.recall("failed", 2 * hour, now);
        assert_eq!(
            state.decide(RunStatus::Failed, now),
            Some(AlertKind::Failed)
        );
        let mut state = AlertState::new(hour);
        state.recall("degraded", Duration::from_secs(60), now);
        assert_eq!(
            state.decide(RunStatus::Completed, now),
            Some(AlertKind::Recovered)
        );
        let mut state = AlertState::new(hour);
        state.recall("completed", Duration::from_secs(60), now);
        assert_eq!(state.decide(RunStatus::Completed, now), None);
    }
}

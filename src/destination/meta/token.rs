//! The access token's remaining life and permissions, read from `GET /debug_token`
//! (docs/meta-side.md, "The token's remaining life"). Shape (✅
//! https://developers.facebook.com/docs/graph-api/reference/debug_token):
//! `{"data": {"app_id", "type", "application", "data_access_expires_at", "expires_at" (0 =
//! never), "is_valid", "scopes": [...], "user_id", "error"?}}`.
//!
//! Pure: what the answer means at a given moment, as findings `check` prints and a run logs.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The permission the events edge needs (docs/meta-side.md: ❌ the Conversions API pages name
/// no scope; Meta's system-user token guide grants it for Marketing API work). Missing, it is
/// only a warning.
pub const SEND_SCOPE: &str = "ads_management";
/// The permission reading Dataset Quality, `stats` and the diagnostics needs (❌ Meta names
/// none per edge; `ads_read` is the Marketing API's read permission, ✅
/// https://developers.facebook.com/docs/permissions).
pub const READ_SCOPE: &str = "ads_read";
/// The default `alerts.token_expiry_warning`, in seconds (14 days).
pub const DEFAULT_WARNING_SECS: i64 = 14 * 86_400;

/// `debug_token`'s `{"data": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DebugTokenBody {
    /// The token's facts.
    pub(crate) data: TokenInfo,
}

/// What `debug_token` says about the token; every field optional, read leniently.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct TokenInfo {
    /// `SYSTEM_USER`, `USER`, `PAGE`, `APP`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Whether Meta accepts it now.
    pub is_valid: Option<bool>,
    /// Unix seconds it expires at; 0 for never.
    pub expires_at: Option<i64>,
    /// Unix seconds its data access expires at; 0 or absent for none.
    pub data_access_expires_at: Option<i64>,
    /// Its permissions.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Why it is not valid, when it is not.
    pub error: Option<TokenError>,
}

/// `data.error` of an invalid token.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct TokenError {
    /// The Graph code (190 for tokens).
    pub code: Option<i64>,
    /// The subcode (463 expired, 460 invalidated, …).
    pub subcode: Option<i64>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Fine.
    Ok,
    /// Works now, needs a person soon.
    Warn,
    /// Does not work: `check` exits 2.
    Fail,
}

/// One thing found, for a `check` line or a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// What it says (no token: only dates, kinds and permission names).
    pub text: String,
}

impl Finding {
    /// A finding of `severity`.
    pub(crate) fn new(severity: Severity, text: impl Into<String>) -> Self {
        Self {
            severity,
            text: text.into(),
        }
    }
}

/// A unix time as `YYYY-MM-DD` (UTC).
fn date(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map_or_else(|| "-".to_owned(), |t| t.date_naive().to_string())
}

impl TokenInfo {
    /// Seconds until it expires at `now` (negative once past); `None` when it never expires.
    pub fn expires_in(&self, now: i64) -> Option<i64> {
        self.expires_at.filter(|at| *at > 0).map(|at| at - now)
    }

    /// Whether it has expired or been invalidated.
    pub fn is_dead(&self, now: i64) -> bool {
        self.is_valid == Some(false) || self.expires_in(now).is_some_and(|left| left <= 0)
    }

    /// The findings at `now`, warning when it expires within `warning_secs`.
    pub fn findings(&self, now: i64, warning_secs: i64) -> Vec<Finding> {
        let mut findings = Vec::new();
        let kind = match self.kind.as_deref() {
            Some("SYSTEM_USER") => "system user",
            Some("USER") => "user (a person's token: it expires; use a system user's)",
            Some(other) => other,
            None => "unknown kind",
        };
        let expiry = match self.expires_in(now) {
            None => "never expires".to_owned(),
            Some(left) if left > 0 => format!(
                "expires {} ({} days left)",
                date(self.expires_at.unwrap_or_default()),
                left.div_euclid(86_400)
            ),
            Some(_) => format!("expired {}", date(self.expires_at.unwrap_or_default())),
        };
        let data_access = match self.data_access_expires_at.filter(|at| *at > 0) {
            Some(at) => format!("data access until {}", date(at)),
            None => "data access does not expire".to_owned(),
        };
        let scopes = if self.scopes.is_empty() {
            "-".to_owned()
        } else {
            self.scopes.join(",")
        };
        let valid = if self.is_dead(now) {
            "NOT valid"
        } else {
            "valid"
        };
        let summary =
            format!("meta token: {kind}, {valid}, {expiry}, {data_access}, scopes {scopes}");
        if self.is_dead(now) {
            let when = match self.expires_in(now) {
                Some(left) if left <= 0 => {
                    format!(
                        "it stopped working on {}",
                        date(self.expires_at.unwrap_or_default())
                    )
                }
                _ => {
                    let subcode = self.error.as_ref().and_then(|e| e.subcode);
                    let why = match subcode {
                        Some(460) => "invalidated (a password change or a security reset)",
                        Some(463) => "expired",
                        _ => "refused by Meta",
                    };
                    format!("it was {why}")
                }
            };
            findings.push(Finding::new(
                Severity::Fail,
                format!(
                    "{summary}: {when}; generate a new system user token in Business Settings \
                     and replace the configured one"
                ),
            ));
            return findings;
        }
        match self.expires_in(now) {
            Some(left) if left <= warning_secs => findings.push(Finding::new(
                Severity::Warn,
                format!(
                    "{summary}: it stops working in {} days, on {}; replace it before then \
                     (a system user token can be made to never expire)",
                    left.div_euclid(86_400),
                    date(self.expires_at.unwrap_or_default())
                ),
            )),
            _ => findings.push(Finding::new(Severity::Ok, summary)),
        }
        if let Some(at) = self.data_access_expires_at.filter(|at| *at > 0) {
            if at - now <= warning_secs {
                findings.push(Finding::new(
                    Severity::Warn,
                    format!(
                        "meta token: its data access expires {} ({} days left): the person \
                         behind it must use the app again, or use a system user's token",
                        date(at),
                        (at - now).div_euclid(86_400)
                    ),
                ));
            }
        }
        if !self.scopes.is_empty() {
            for (scope, what) in [
                (SEND_SCOPE, "sending events (the run)"),
                (
                    READ_SCOPE,
                    "reading Dataset Quality, Meta's counts and diagnostics",
                ),
            ] {
                if self.scopes.iter().any(|s| s == scope) {
                    findings.push(Finding::new(
                        Severity::Ok,
                        format!("meta token: covers {what} ({scope})"),
                    ));
                } else {
                    findings.push(Finding::new(
                        Severity::Warn,
                        format!(
                            "meta token: lacks the {scope} permission needed for {what}; add it \
                             to the system user's token"
                        ),
                    ));
                }
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(body: serde_json::Value) -> TokenInfo {
        serde_json::from_value::<DebugTokenBody>(body).unwrap().data
    }

    #[test]
    fn a_token_expiring_soon_warns_and_a_dead_one_fails() {
        let now = 1_765_000_000;
        let soon = info(serde_json::json!({"data": {
            "type": "SYSTEM_USER", "is_valid": true, "expires_at": now + 5 * 86_400 + 60,
            "data_access_expires_at": 0, "scopes": ["ads_management"]
        }}));
        let findings = soon.findings(now, DEFAULT_WARNING_SECS);
        assert_eq!(findings[0].severity, Severity::Warn, "{findings:?}");
        assert!(findings[0].text.contains("in 5 days"), "{findings:?}");
        assert!(findings
            .iter()
            .any(|f| f.severity == Severity::Warn && f.text.contains("lacks the ads_read")));
        assert_eq!(soon.expires_in(now), Some(5 * 86_400 + 60));

        let never = info(serde_json::json!({"data": {"is_valid": true, "expires_at": 0}}));
        assert_eq!(never.expires_in(now), None);
        assert_eq!(
            never.findings(now, DEFAULT_WARNING_SECS)[0].severity,
            Severity::Ok
        );

        let expired = info(serde_json::json!({"data": {
            "is_valid": false, "expires_at": now - 86_400,
            "error": {"code": 190, "subcode": 463, "message": "Session has expired"}
        }}));
        let findings = expired.findings(now, DEFAULT_WARNING_SECS);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Fail);
        assert!(
            findings[0].text.contains(&date(now - 86_400)),
            "{findings:?}"
        );
    }
}

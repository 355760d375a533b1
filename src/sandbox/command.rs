//! `ocapi sandbox`: the flags that configure a standalone sandbox, and the loop that serves it
//! until Ctrl-C. Logs carry addresses, counts and fault settings, never the token or events.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{serve, Faults, MetaSide, SandboxOptions, TokenKind};

/// Default listen address of `ocapi sandbox`.
const DEFAULT_LISTEN: &str = "127.0.0.1:4599";
/// Default token: a local sandbox needs no secret, only a value to match.
const DEFAULT_TOKEN: &str = "sandbox-token";

/// Flags of `ocapi sandbox`.
#[derive(Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The access token requests must carry.
    #[arg(long, env = "OCAPI_SANDBOX_TOKEN", default_value = DEFAULT_TOKEN, hide_env_values = true)]
    pub token: String,
    /// The only dataset id accepted (default: any).
    #[arg(long)]
    pub dataset_id: Option<String>,
    /// Require `appsecret_proof` keyed with this app secret.
    #[arg(long, env = "OCAPI_SANDBOX_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// Share of POSTs answered HTTP 500/503 (code 2, transient), 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,
    /// Share of POSTs answered HTTP 400 code 17 "User request limit reached", 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub rate_limit_rate: f64,
    /// Share of POSTs whose connection is cut without a response, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_rate: f64,
    /// Delay before answering each POST, e.g. "200ms".
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Reject events whose custom_data.order_id starts with this (code 100).
    #[arg(long)]
    pub reject_order_prefix: Option<String>,
    /// Do not name the bad event's index in value-rule errors (forces clients to bisect).
    #[arg(long)]
    pub no_name_index: bool,
    /// The token's kind, as `debug_token` reports it.
    #[arg(long, value_enum, default_value_t = TokenKind::SystemUser)]
    pub token_type: TokenKind,
    /// The token expires this long after the stand-in starts, e.g. "5d" (default: never).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub token_expires_in: Option<Duration>,
    /// The token expired this long ago, e.g. "1d": every edge but `debug_token` answers code
    /// 190 / 463.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "token_expires_in")]
    pub token_expired_ago: Option<Duration>,
    /// The token was invalidated (code 190 / 460).
    #[arg(long)]
    pub token_invalid: bool,
    /// The token's scopes, comma-separated (default: ads_management,ads_read,business_management).
    #[arg(long, value_delimiter = ',')]
    pub token_scopes: Option<Vec<String>>,
    /// Share of each hour's accepted events `/stats` leaves out, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub stats_undercount: f64,
    /// An issue type `ads_signal_diagnostic_issues` lists (repeat for more).
    #[arg(long = "diagnostic-issue", value_name = "TYPE")]
    pub diagnostic_issues: Vec<String>,
    /// Text of an `x-ad-api-version-warning` header on every answer.
    #[arg(long)]
    pub api_version_warning: Option<String>,
    /// The version every answer's `facebook-api-version` names (default: the one asked for).
    #[arg(long)]
    pub answer_api_version: Option<String>,
    /// `dataset_quality` answers `{}`.
    #[arg(long)]
    pub empty_quality: bool,
}

impl fmt::Debug for SandboxArgs {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SandboxArgs")
            .field("listen", &self.listen)
            .field("token", &"<redacted>")
            .field("dataset_id", &self.dataset_id)
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("error_rate", &self.error_rate)
            .field("rate_limit_rate", &self.rate_limit_rate)
            .field("drop_rate", &self.drop_rate)
            .field("latency", &self.latency)
            .field("reject_order_prefix", &self.reject_order_prefix)
            .field("no_name_index", &self.no_name_index)
            .field("meta_side", &self.meta_side())
            .finish()
    }
}

impl SandboxArgs {
    /// The options these flags describe.
    pub fn options(&self) -> SandboxOptions {
        SandboxOptions {
            access_token: self.token.clone(),
            dataset_id: self.dataset_id.clone(),
            app_secret: self.app_secret.clone(),
            faults: Faults {
                error_rate: self.error_rate,
                rate_limit_rate: self.rate_limit_rate,
                drop_rate: self.drop_rate,
                latency: self.latency,
                reject_order_prefix: self.reject_order_prefix.clone(),
                name_index: !self.no_name_index,
            },
            meta_side: self.meta_side(),
        }
    }

    /// The Meta-side answers these flags describe.
    fn meta_side(&self) -> MetaSide {
        let defaults = MetaSide::default();
        MetaSide {
            token_kind: self.token_type,
            token_expires_in: self.token_expires_in,
            token_expired_ago: self.token_expired_ago,
            token_invalid: self.token_invalid,
            token_scopes: self.token_scopes.clone().unwrap_or(defaults.token_scopes),
            stats_undercount: self.stats_undercount,
            diagnostic_issues: self.diagnostic_issues.clone(),
            api_version_warning: self.api_version_warning.clone(),
            answer_api_version: self.answer_api_version.clone(),
            empty_quality: self.empty_quality,
        }
    }
}

/// Serves a sandbox with `args` until Ctrl-C. An address it cannot bind (in use, not local) is
/// [`crate::error::Error::Listen`] naming `--listen`, exit 2; a failure while serving is
/// [`crate::error::Error::Io`].
pub async fn run_cli(args: SandboxArgs) -> Result<(), crate::error::Error> {
    let options = args.options();
    let listener =
        TcpListener::bind(args.listen)
            .await
            .map_err(|source| crate::error::Error::Listen {
                addr: args.listen,
                source,
            })?;
    let addr = listener.local_addr()?;
    tracing::info!(
        addr = %addr,
        dataset_id = args.dataset_id.as_deref().unwrap_or("any"),
        app_secret_proof = args.app_secret.is_some(),
        error_rate = args.error_rate,
        rate_limit_rate = args.rate_limit_rate,
        drop_rate = args.drop_rate,
        latency_ms = u64::try_from(args.latency.as_millis()).unwrap_or(u64::MAX),
        reject_order_prefix = args.reject_order_prefix.is_some(),
        name_index = !args.no_name_index,
        "sandbox listening"
    );
    let shutdown = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %error, "cannot listen for ctrl-c, stopping");
        }
        tracing::info!("sandbox shutting down");
    };
    serve(listener, options, shutdown).await?;
    tracing::info!("sandbox stopped");
    Ok(())
}

/// Parses a share between 0.0 and 1.0.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("must be between 0.0 and 1.0, got {rate}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A parser around the flags.
    #[derive(Parser)]
    struct Cli {
        /// The sandbox flags.
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn flags_map_to_options() {
        let cli = Cli::try_parse_from([
            "ocapi",
            "--token",
            "t",
            "--latency",
            "200ms",
            "--error-rate",
            "0.5",
            "--no-name-index",
        ])
        .unwrap();
        let options = cli.args.options();
        assert_eq!(options.access_token, "t");
        assert_eq!(options.faults.latency, Duration::from_millis(200));
        assert_eq!(options.faults.error_rate, 0.5);
        assert!(!options.faults.name_index);
        assert_eq!(
            cli.args.listen,
            DEFAULT_LISTEN.parse::<SocketAddr>().unwrap()
        );
        assert!(Cli::try_parse_from(["ocapi", "--drop-rate", "1.5"]).is_err());
        let cli = Cli::try_parse_from([
            "ocapi",
            "--token-expires-in",
            "5d",
            "--token-scopes",
            "ads_management",
            "--diagnostic-issue",
            "A",
            "--diagnostic-issue",
            "B",
        ])
        .unwrap();
        let side = cli.args.options().meta_side;
        assert_eq!(side.token_expires_in, Some(Duration::from_secs(5 * 86_400)));
        assert_eq!(side.token_scopes, ["ads_management"]);
        assert_eq!(side.diagnostic_issues, ["A", "B"]);
    }
}

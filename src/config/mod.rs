//! The connector's TOML configuration: one serde struct per table, closed to unknown keys,
//! validated once at load so that the rest of the program can trust it.

mod alerts;
mod changes;
mod mapping;
mod validate;
mod values;

use mapping::mapping_key;
pub use values::{parse_zone, BatchSize, Country, Currency, HttpUrl, TextEncoding, Zone};

pub use alerts::{AlertsConfig, DEFAULT_QUIET_PERIOD};
pub use changes::{ChangesSource, Lookback};
pub use mapping::{
    ldu_rules, Columns, CustomerField, DeliveryCategory, Mapping, ProcessingCountry,
    ProcessingOption, ProcessingState,
};

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::secret::{self, Secret};

/// Where the config is read from when `--config` is not given and `OCAPI_CONFIG` is unset.
pub(crate) const DEFAULT_CONFIG_PATH: &str = "connector.toml";
/// Rows per source page: large enough to amortize a round trip, small enough to bound memory.
/// Measured (docs/benchmarks.md, "The default page"): on a quiet machine, once ocapi outran
/// PostgreSQL, 4000-row pages peaked at 102 MiB on 1M rows; 3000 keep 84–93 MiB at the same
/// rows/s, and are three whole batches of 1000 (2500 lost 10% with a 200 ms endpoint to its
/// half batches). With every customer field filled (issue 24), 3000-row pages peaked at
/// 92–106 MiB on 200k rows; 2000 (two whole batches) kept 83–94 MiB at the same rows/s, with
/// and without a 200 ms endpoint.
pub(crate) const DEFAULT_SOURCE_BATCH_SIZE: usize = 2000;
/// Meta accepts physical-store events up to 62 days old, in seconds (docs/meta-capi.md decision 3):
/// older orders are never sent, and a first run reads back this far by default.
pub const MAX_EVENT_AGE_SECS: i64 = 62 * 24 * 3600;
/// The Graph API version ocapi is tested against (docs/meta-capi.md §1).
pub(crate) const DEFAULT_API_VERSION: &str = "v26.0";
/// Meta's Graph API host.
pub(crate) const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// Requests in flight at once; Meta documents no CAPI-specific rate limit.
pub(crate) const DEFAULT_CONCURRENCY: usize = 4;
/// Retries per request before a transient failure fails the run.
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 8;
/// A 1000-event batch takes longer than Meta's 1.5 s advice for small payloads.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A killed run's advisory lock is freed by PostgreSQL within moments, so 30 s never blocks.
pub(crate) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);
/// The schema that holds the ledger, runs and state tables.
pub(crate) const DEFAULT_LEDGER_SCHEMA: &str = "ocapi";
/// How long connecting to a database may take (TCP, TLS, authentication, the session's
/// settings) when neither the URL's `connect_timeout` nor the config key says: libpq waits
/// forever by default, a run must not (issue 23).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a database may send nothing while ocapi waits for an answer (a statement's result,
/// the next rows of a streamed read) before the wait counts as a stall and the run fails.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors in loading or validating the config; each names the key and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the file")]
    Read {
        /// The path tried.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or lacks a required one (toml names the line).
    #[error("{message}")]
    Parse {
        /// The path read.
        path: PathBuf,
        /// toml's message, which names the key, line and column.
        message: String,
    },
    /// A value is out of range or contradicts another.
    #[error("config key `{key}` {constraint}")]
    Invalid {
        /// The dotted key path, e.g. `destination.batch_size`.
        key: &'static str,
        /// What is wrong, written as the fix.
        constraint: String,
    },
    /// A secret the config points to (an environment variable or a file) cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
}

/// The whole connector configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[connector]`: names this sync.
    pub connector: ConnectorConfig,
    /// `[source]`: where orders are read from.
    pub source: SourceConfig,
    /// `[mapping]`: event field = source column.
    pub mapping: Mapping,
    /// `[defaults]`: values used where a row's column is NULL or empty.
    #[serde(default)]
    pub defaults: Defaults,
    /// `[normalize]`: the few normalization choices where users genuinely differ.
    #[serde(default)]
    pub normalize: NormalizeConfig,
    /// `[destination]`: where events go.
    pub destination: DestinationConfig,
    /// `[ledger]`: where the ledger lives.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// `[alerts]`: a chat webhook told about failed, degraded and recovered runs.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// `[reconcile]`: how `reconcile` reads Meta's counts.
    #[serde(default)]
    pub reconcile: ReconcileConfig,
}

/// The default `reconcile.meta_settle`: Meta documents neither how soon events show in its
/// counts nor whether they are by event time or receipt, so younger days are left out.
pub const DEFAULT_META_SETTLE: Duration = Duration::from_secs(2 * 24 * 60 * 60);

/// `[reconcile]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Days younger than this (their end less than this ago) are shown but left out of
    /// `reconcile --meta`'s difference and alerts.
    #[serde(default = "default_meta_settle", deserialize_with = "duration")]
    pub meta_settle: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            meta_settle: DEFAULT_META_SETTLE,
        }
    }
}

/// Serde default for `reconcile.meta_settle`.
fn default_meta_settle() -> Duration {
    DEFAULT_META_SETTLE
}

/// `[connector]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Names this sync's state, runs and advisory lock.
    pub name: String,
    /// How long a run waits for another run of the same connector to finish.
    #[serde(default = "default_lock_wait", deserialize_with = "duration")]
    pub lock_wait: Duration,
    /// A run that finds the lock held is `skipped` (exit 0), unless the session holding it
    /// began longer ago than this: then the holder may be stuck, and the run fails (exit 1,
    /// an alert) naming it.
    #[serde(default = "default_stuck_run_after", deserialize_with = "duration")]
    pub stuck_run_after: Duration,
}

/// `[source]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A PostgreSQL URL; prefer `url_env` so the password stays out of the file.
    pub url: Option<Secret>,
    /// The environment variable holding the URL.
    pub url_env: Option<String>,
    /// The table or view, schema-qualified or not.
    pub table: String,
    /// A timestamptz, timestamp, date or integer column that grows when a row is written.
    /// Required without `[[source.changes]]`; with them, optional.
    #[serde(default)]
    pub watermark_column: Option<String>,
    /// Rows per page.
    #[serde(default = "default_source_batch_size")]
    pub batch_size: NonZeroUsize,
    /// The window re-read behind the watermark, for rows committed late: a duration on a time
    /// watermark, a number of the column's own units on an integer one ([`Lookback`]).
    #[serde(default)]
    pub lookback: Lookback,
    /// The first watermark, when there is no state yet (a timestamp or an integer). Set, a
    /// run without ledger state sends the history from there; unset, such a run sends only
    /// the last 7 days unless given `--initial-sync` (`run::RECENT_SECS`). Written as a text,
    /// or as a TOML integer for an integer watermark ([`text_or_integer`]).
    #[serde(default, deserialize_with = "text_or_integer")]
    pub start: Option<String>,
    /// How `timestamp without time zone` and `date` columns are read (an IANA name, parsed
    /// as the config is read).
    #[serde(default)]
    pub timezone: Zone,
    /// How far ahead of now an event time may be and still be held until its time comes;
    /// further ahead, the order is `invalid`.
    #[serde(default = "default_max_future", deserialize_with = "duration")]
    pub max_future: Duration,
    /// How long connecting may take; the URL's own `connect_timeout` (libpq's, seconds) wins.
    #[serde(default = "default_connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// How long the database may send nothing while ocapi waits for an answer.
    #[serde(default = "default_stall_timeout", deserialize_with = "duration")]
    pub stall_timeout: Duration,
    /// How text that is not valid UTF-8 is decoded (PostgreSQL's name: `LATIN1`, `WIN1252`,
    /// …): only a `SQL_ASCII` database can hold such text. Unset, such a value makes its
    /// order invalid, naming the column.
    #[serde(default)]
    pub encoding: Option<TextEncoding>,
    /// `[[source.changes]]`: the base tables whose changes move an order, each read by its own
    /// indexed watermark; empty, the delta is read by `watermark_column` (docs/source.md).
    #[serde(default)]
    pub changes: Vec<ChangesSource>,
}

impl SourceConfig {
    /// `watermark_column`, or `""` when it is left out (only allowed with `[[source.changes]]`).
    pub fn watermark_column(&self) -> &str {
        self.watermark_column.as_deref().unwrap_or_default()
    }
}

/// `[defaults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Currency for rows whose currency is NULL or empty.
    pub currency: Option<Currency>,
    /// Country for rows whose country is NULL or empty; also the phone region.
    pub country: Option<Country>,
    /// For rows whose `mapping.data_processing_options` is NULL or unmapped: `["LDU"]` or `[]`.
    pub data_processing_options: Option<Vec<ProcessingOption>>,
    /// For rows whose country column is NULL or unmapped.
    pub data_processing_options_country: Option<ProcessingCountry>,
    /// For rows whose state column is NULL or unmapped.
    pub data_processing_options_state: Option<ProcessingState>,
    /// For rows whose `mapping.opt_out` is NULL or unmapped.
    pub opt_out: Option<bool>,
    /// For rows whose `mapping.delivery_category` is NULL or unmapped.
    pub delivery_category: Option<DeliveryCategory>,
}

/// `[normalize]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Hash `external_id` (Meta recommends it); false sends it as is.
    #[serde(default = "yes")]
    pub hash_external_id: bool,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            hash_external_id: true,
        }
    }
}

/// Which destination receives the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// NDJSON file: exactly the events that would be sent to Meta.
    File,
    /// Meta's Conversions API.
    Meta,
}

/// `[destination]`: one flat table so that toml can name the line of an unknown key; `validate`
/// rejects keys that do not belong to the chosen kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// `file` or `meta`.
    pub kind: DestinationKind,
    /// The Meta dataset (pixel) id; also the ledger's dedup scope.
    pub dataset_id: String,
    /// file: the NDJSON output path.
    pub path: Option<PathBuf>,
    /// meta: the environment variable holding the access token.
    pub access_token_env: Option<String>,
    /// meta: a file holding the access token (e.g. a mounted secret).
    pub access_token_file: Option<PathBuf>,
    /// meta: the environment variable holding the app secret, for `appsecret_proof`.
    pub app_secret_env: Option<String>,
    /// meta: the Graph API version.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// meta: the Graph API base URL; tests and the demo point it at the local stand-in.
    #[serde(default = "default_base_url")]
    pub base_url: HttpUrl,
    /// meta: accept a plain `http://` `base_url` to a host that is not this machine (a
    /// stand-in on a private network, e.g. the compose file's); the token and the events then
    /// cross that network in clear. Off by default: such a URL is a configuration error.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// meta: the ad account that uses the dataset, `act_<digits>` or `<digits>`. Meta's
    /// `{dataset_id}/ads_signal_diagnostic_issues` edge requires it (`ad_account_id`,
    /// docs/meta-side.md); without it `check` and `quality` say so instead of reading Meta's
    /// diagnostics.
    pub ad_account_id: Option<String>,
    /// meta: events then show in Events Manager's Test Events (and are still kept as data).
    pub test_event_code: Option<String>,
    /// A tag sent on every request (`upload_tag`), which Meta still accepts for advertisers
    /// coming from the legacy Offline Conversions API.
    pub upload_tag: Option<String>,
    /// Events per request, 1 to 1000.
    #[serde(default)]
    pub batch_size: BatchSize,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Retries per request for transient failures.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Time allowed for one request.
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// A token bucket shared by all requests in flight.
    pub max_requests_per_second: Option<f64>,
}

/// `[ledger]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The schema for ledger, runs and state.
    #[serde(default = "default_ledger_schema")]
    pub schema: String,
    /// A PostgreSQL URL; defaults to the source's.
    pub url: Option<Secret>,
    /// The environment variable holding the URL.
    pub url_env: Option<String>,
    /// How long connecting may take; the URL's own `connect_timeout` (libpq's, seconds) wins.
    #[serde(default = "default_connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// How long the database may send nothing while ocapi waits for an answer.
    #[serde(default = "default_stall_timeout", deserialize_with = "duration")]
    pub stall_timeout: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            schema: default_ledger_schema(),
            url: None,
            url_env: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

/// Chooses the config path: the flag, else `OCAPI_CONFIG`, else `./connector.toml`.
pub(crate) fn resolve_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("OCAPI_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| {
            // A typed value's own check names its key, as `validate` does.
            match values::KeyedError::from_message(error.message()) {
                Some(values::KeyedError { key, constraint }) => {
                    ConfigError::Invalid { key, constraint }
                }
                None => ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: error.to_string().trim_end().to_owned(),
                },
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The source URL, from the file or the environment.
    pub(crate) fn source_url(&self) -> Result<Secret, ConfigError> {
        resolve_url(
            "source.url_env",
            self.source.url.as_ref(),
            self.source.url_env.as_deref(),
        )
    }

    /// The ledger URL: its own, else the source's.
    /// Whether the ledger is the source's database (no `ledger.url` nor `ledger.url_env`).
    pub(crate) fn ledger_shares_source(&self) -> bool {
        self.ledger.url.is_none() && self.ledger.url_env.is_none()
    }

    pub(crate) fn ledger_url(&self) -> Result<Secret, ConfigError> {
        if self.ledger_shares_source() {
            return self.source_url();
        }
        resolve_url(
            "ledger.url_env",
            self.ledger.url.as_ref(),
            self.ledger.url_env.as_deref(),
        )
    }

    /// The Meta access token, from the environment or a file, trimmed.
    pub fn access_token(&self) -> Result<Secret, ConfigError> {
        let d = &self.destination;
        if let Some(path) = &d.access_token_file {
            return Ok(secret::from_file("destination.access_token_file", path)?);
        }
        let var = d.access_token_env.as_deref().unwrap_or("META_ACCESS_TOKEN");
        Ok(secret::from_env("destination.access_token_env", var)?)
    }

    /// The app secret for `appsecret_proof`, when configured.
    pub fn app_secret(&self) -> Result<Option<Secret>, ConfigError> {
        self.destination
            .app_secret_env
            .as_deref()
            .map(|var| secret::from_env("destination.app_secret_env", var))
            .transpose()
            .map_err(ConfigError::from)
    }
}

/// Picks a URL from the file or from the named environment variable.
fn resolve_url(
    key: &'static str,
    url: Option<&Secret>,
    var: Option<&str>,
) -> Result<Secret, ConfigError> {
    match (url, var) {
        (Some(url), _) => Ok(url.clone()),
        (None, Some(var)) => Ok(secret::from_env(key, var)?),
        (None, None) => Err(ConfigError::Invalid {
            key,
            constraint: "is not set: set a URL or the variable that holds it".to_owned(),
        }),
    }
}

/// The ISO 4217 code of `raw` (any case, surrounding white space ignored), or `None` when it
/// is not one: [`Currency::parse`]'s rule, for a row's currency.
pub(crate) fn currency_code(raw: &str) -> Option<crate::Text> {
    Currency::parse(raw).map(Currency::into_text)
}

/// Whether `text` can start a watermark: an integer, an RFC 3339 time, a date or a time
/// without zone (read in UTC).
pub(crate) fn is_watermark_start(text: &str) -> bool {
    let t = text.trim();
    t.parse::<i64>().is_ok()
        || chrono::DateTime::parse_from_rfc3339(t).is_ok()
        || chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
        || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").is_ok()
}

/// Parses `"15m"`, `"30s"`, `"1h 30m"` (humantime) into a duration.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("invalid duration {text:?} ({error}); use e.g. \"30s\", \"15m\""))
}

/// Serde adapter for humantime durations.
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// A key that takes a text or a TOML integer, as its text (`source.start = 0` is `"0"`).
fn text_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    /// Takes either form.
    struct TextOrInteger;
    impl serde::de::Visitor<'_> for TextOrInteger {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a text such as \"2026-11-01T00:00:00Z\", or an integer")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
            Ok(text.to_owned())
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<String, E> {
            Ok(n.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<String, E> {
            Ok(n.to_string())
        }
    }
    deserializer.deserialize_any(TextOrInteger).map(Some)
}

/// Serde default for `connector.stuck_run_after`: an hour, longer than any healthy run of a
/// store's day (a 1M-order first sync takes minutes, docs/benchmarks.md).
fn default_stuck_run_after() -> Duration {
    Duration::from_secs(3600)
}
/// Serde default for `connector.lock_wait`.
fn default_lock_wait() -> Duration {
    DEFAULT_LOCK_WAIT
}
/// Serde default for `source.batch_size`.
fn default_source_batch_size() -> NonZeroUsize {
    NonZeroUsize::new(DEFAULT_SOURCE_BATCH_SIZE).expect("constant is non-zero")
}
/// Serde default for `source.max_future`: a day, so that a till whose clock runs minutes or
/// hours fast has its sales held, not written off (issue 11).
fn default_max_future() -> Duration {
    Duration::from_secs(24 * 3600)
}
/// Serde default for boolean options that are on unless turned off.
fn yes() -> bool {
    true
}
/// Serde default for `destination.api_version`.
fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}
/// Serde default for `destination.base_url`.
fn default_base_url() -> HttpUrl {
    HttpUrl::try_from(DEFAULT_BASE_URL.to_owned()).expect("the default base URL is an https URL")
}
/// Serde default for `destination.concurrency`.
fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}
/// Serde default for `destination.max_retries`.
fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}
/// Serde default for `destination.request_timeout`.
fn default_request_timeout() -> Duration {
    DEFAULT_REQUEST_TIMEOUT
}
/// Serde default for `source.connect_timeout` and `ledger.connect_timeout`.
fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}
/// Serde default for `source.stall_timeout` and `ledger.stall_timeout`.
fn default_stall_timeout() -> Duration {
    DEFAULT_STALL_TIMEOUT
}
/// Serde default for `ledger.schema`.
fn default_ledger_schema() -> String {
    DEFAULT_LEDGER_SCHEMA.to_owned()
}

/// A minimal valid config (file destination) for unit tests across the crate; tests derive
/// variants with `str::replace`.
#[cfg(test)]
pub(crate) const TEST_CONFIG: &str = r#"
[connector]
name = "t"
[source]
url = "postgres://localhost/test"
table = "t"
watermark_column = "updated_at"
[mapping]
order_id = "id"
event_time = "at"
value = "total"
[defaults]
currency = "USD"
[destination]
kind = "file"
dataset_id = "123"
path = "out.ndjson"
"#;

#[cfg(test)]
mod tests;

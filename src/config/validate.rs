//! The checks a config must pass once its TOML has parsed: ranges, keys that need each other,
//! values that must name something real. Each error names the dotted key and says the fix.

use super::{
    is_watermark_start, mapping_key, Config, ConfigError, DestinationKind, MAX_EVENTS_PER_REQUEST,
};

impl Config {
    /// Cross-field and range checks, each naming the key.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, constraint: &str| {
            Err(ConfigError::Invalid {
                key,
                constraint: constraint.to_owned(),
            })
        };
        if self.connector.name.trim().is_empty() {
            return invalid("connector.name", "must not be empty");
        }
        if self.connector.stuck_run_after.is_zero() {
            return invalid(
                "connector.stuck_run_after",
                "must be longer than 0s (how long a run may hold its lock before a run that \
                 finds it held reports it stuck; default \"1h\")",
            );
        }
        if self.source.url.is_some() == self.source.url_env.is_some() {
            return invalid(
                "source.url",
                "set exactly one of `source.url` and `source.url_env`",
            );
        }
        if self.ledger.url.is_some() && self.ledger.url_env.is_some() {
            return invalid(
                "ledger.url",
                "set at most one of `ledger.url` and `ledger.url_env`",
            );
        }
        for (key, value) in [
            ("source.connect_timeout", self.source.connect_timeout),
            ("source.stall_timeout", self.source.stall_timeout),
            ("ledger.connect_timeout", self.ledger.connect_timeout),
            ("ledger.stall_timeout", self.ledger.stall_timeout),
        ] {
            if value < std::time::Duration::from_secs(1) {
                return invalid(
                    key,
                    "must be at least 1s: every wait on a database has a bound",
                );
            }
        }
        if self.source.table.trim().is_empty() {
            return invalid("source.table", "must name a table or view");
        }
        if !(0.0..=1.0).contains(&self.alerts.meta_shortfall) {
            return invalid(
                "alerts.meta_shortfall",
                "must be a share between 0.0 and 1.0 of a day's sent orders, e.g. 0.02",
            );
        }
        let d = &self.defaults;
        let m = &self.mapping;
        if d.data_processing_options
            .as_ref()
            .is_some_and(|o| !o.is_empty())
            && ((d.data_processing_options_country.is_none()
                && m.data_processing_options_country.is_none())
                || (d.data_processing_options_state.is_none()
                    && m.data_processing_options_state.is_none()))
        {
            return invalid(
                "defaults.data_processing_options",
                "LDU needs a country and a state: set `defaults.data_processing_options_country` \
                 and `_state` (0 lets Meta geolocate), or map their columns",
            );
        }
        if self
            .destination
            .upload_tag
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return invalid("destination.upload_tag", "must not be empty");
        }
        if super::parse_zone(&self.source.timezone).is_none() {
            return invalid(
                "source.timezone",
                "must be an IANA time zone name such as \"UTC\" or \"America/New_York\"",
            );
        }
        super::changes::validate(
            &self.source.changes,
            self.source.watermark_column.as_deref(),
        )?;
        if let Some(start) = &self.source.start {
            if !is_watermark_start(start) {
                return invalid(
                    "source.start",
                    "must be an RFC 3339 timestamp (\"2026-11-01T00:00:00Z\") or an integer",
                );
            }
        }
        for (key, column) in self.mapping.columns() {
            if column.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key: mapping_key(key),
                    constraint: "must name a column".to_owned(),
                });
            }
        }
        let m = &self.mapping;
        if m.item_id.is_some() != m.item_quantity.is_some()
            || m.item_id.is_some() != m.item_price.is_some()
        {
            return invalid(
                "mapping.item_id",
                "line items need all three of `item_id`, `item_quantity` and `item_price`",
            );
        }
        if m.item_line.is_some() && !m.has_line_items() {
            return invalid(
                "mapping.item_line",
                "names the line of an order's line items: map `item_id`, `item_quantity` and \
                 `item_price` too, or remove it",
            );
        }
        if m.value.is_none() && !m.has_line_items() {
            return invalid(
                "mapping.value",
                "is required (or map line items to sum them)",
            );
        }
        if m.currency.is_none() && self.defaults.currency.is_none() {
            return invalid(
                "mapping.currency",
                "map a column or set `defaults.currency`",
            );
        }
        self.validate_destination()
    }

    /// Checks `[destination]` for its kind.
    fn validate_destination(&self) -> Result<(), ConfigError> {
        let d = &self.destination;
        let invalid = |key, constraint: &str| {
            Err(ConfigError::Invalid {
                key,
                constraint: constraint.to_owned(),
            })
        };
        if d.dataset_id.trim().is_empty() || !d.dataset_id.chars().all(|c| c.is_ascii_digit()) {
            return invalid(
                "destination.dataset_id",
                "must be the dataset (pixel) id, digits only",
            );
        }
        if d.batch_size == 0 || d.batch_size > MAX_EVENTS_PER_REQUEST {
            return invalid(
                "destination.batch_size",
                "must be between 1 and 1000 (Meta's limit)",
            );
        }
        if d.concurrency == 0 || d.concurrency > 64 {
            return invalid("destination.concurrency", "must be between 1 and 64");
        }
        if d.request_timeout.is_zero() {
            return invalid("destination.request_timeout", "must be greater than 0");
        }
        if let Some(rps) = d.max_requests_per_second {
            if !(rps.is_finite() && rps > 0.0) {
                return invalid(
                    "destination.max_requests_per_second",
                    "must be greater than 0",
                );
            }
        }
        match d.kind {
            DestinationKind::File => {
                if d.path.is_none() {
                    return invalid("destination.path", "is required when kind = \"file\"");
                }
                let meta_only = [
                    ("destination.access_token_env", d.access_token_env.is_some()),
                    (
                        "destination.access_token_file",
                        d.access_token_file.is_some(),
                    ),
                    ("destination.app_secret_env", d.app_secret_env.is_some()),
                    ("destination.test_event_code", d.test_event_code.is_some()),
                ];
                if let Some((key, _)) = meta_only.into_iter().find(|(_, set)| *set) {
                    return invalid(key, "only applies to kind = \"meta\"");
                }
            }
            DestinationKind::Meta => {
                if d.access_token_env.is_some() == d.access_token_file.is_some() {
                    return invalid(
                        "destination.access_token_env",
                        "set exactly one of `access_token_env` and `access_token_file`",
                    );
                }
                if d.path.is_some() {
                    return invalid("destination.path", "only applies to kind = \"file\"");
                }
                if !d.api_version.starts_with('v') {
                    return invalid("destination.api_version", "must look like \"v26.0\"");
                }
                if let Some(host) = d.base_url.plain_http_remote_host() {
                    if !d.allow_plain_http {
                        return invalid(
                            "destination.base_url",
                            &format!(
                                "is plain http:// to {host:?}, which is not this machine: the \
                                 access token and every event would cross the network in clear; \
                                 use https://, or set destination.allow_plain_http = true for a \
                                 stand-in on a network you trust"
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

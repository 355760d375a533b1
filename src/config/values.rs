//! Typed config values that validate themselves as they are read, so that a wrong one is a
//! parse error naming its key and line, and the rest of the program holds only good ones:
//! [`Currency`] (ISO 4217), [`Country`] (ISO 3166) and [`HttpUrl`].

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr as _;

use serde::Deserialize;

/// An ISO 4217 currency code, uppercase (`"usd"` is read as `USD`); iso_currency's list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency(String);

impl Currency {
    /// The code of `raw` (any case, surrounding white space ignored), or `None` when it is not
    /// one. The one rule for `defaults.currency` and every row's currency.
    pub fn parse(raw: &str) -> Option<Self> {
        thread_local! {
            /// The last code this thread found valid: rows of a table nearly always share
            /// their currency, and iso_currency's lookup compares the code with each currency
            /// in turn (~750 instructions per row under callgrind, docs/benchmarks.md).
            static LAST: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let upper = raw.trim().to_ascii_uppercase();
        if LAST.with_borrow(|last| !last.is_empty() && *last == upper) {
            return Some(Self(upper));
        }
        iso_currency::Currency::from_code(&upper)?;
        LAST.with_borrow_mut(|last| last.clone_from(&upper));
        Some(Self(upper))
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
            .ok_or_else(|| format!("{value:?} is not an ISO 4217 currency code such as \"USD\""))
    }
}

/// A country as the config gives it: an ISO 3166 code (alpha-2, alpha-3) or English name that
/// celes knows, kept as written (the transform normalizes it as it does a row's country).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Country(String);

impl Country {
    /// The country as written in the config, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Country {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let trimmed = value.trim();
        match celes::Country::from_str(trimmed) {
            Ok(_) => Ok(Self(trimmed.to_owned())),
            Err(_) => Err(format!(
                "{value:?} is not an ISO 3166 country code or English name such as \"US\""
            )),
        }
    }
}

/// An `http://` or `https://` URL with a host, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host, for a plain `http://` URL to a host that is not this machine (not `localhost`,
    /// a `*.localhost` name, `127.0.0.0/8` or `::1`): what travels to it, the access token
    /// included, is readable and changeable by anyone on the way. `None` for `https://` and
    /// for loopback hosts.
    pub fn plain_http_remote_host(&self) -> Option<&str> {
        let rest = self.0.strip_prefix("http://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let host = if let Some(bracketed) = host_port.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or_default()
        } else {
            host_port.split(':').next().unwrap_or_default()
        };
        let lower = host.to_ascii_lowercase();
        let loopback = lower == "localhost"
            || lower.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (!loopback).then_some(host)
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let url = value.trim().trim_end_matches('/');
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match host {
            Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(Self(url.to_owned())),
            _ => Err(format!(
                "{value:?} is not an http(s) URL such as \"https://graph.facebook.com\""
            )),
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_they_validate() {
        assert_eq!(
            Currency::try_from(" usd ".to_owned()).unwrap().as_str(),
            "USD"
        );
        assert!(Currency::try_from("EURO".to_owned()).is_err());
        assert_eq!(Country::try_from("US".to_owned()).unwrap().as_str(), "US");
        assert_eq!(
            Country::try_from("United States".to_owned())
                .unwrap()
                .as_str(),
            "United States"
        );
        assert!(Country::try_from("Atlantis".to_owned()).is_err());
        assert_eq!(
            HttpUrl::try_from("http://127.0.0.1:4599/".to_owned())
                .unwrap()
                .as_str(),
            "http://127.0.0.1:4599"
        );
        assert!(HttpUrl::try_from("graph.facebook.com".to_owned()).is_err());
        assert!(HttpUrl::try_from("https://".to_owned()).is_err());
    }

    #[test]
    fn plain_http_is_remote_unless_the_host_is_loopback() {
        let table = [
            ("http://graph.facebook.com", Some("graph.facebook.com")),
            ("http://sandbox:4599/x", Some("sandbox")),
            ("http://10.0.0.5:4599", Some("10.0.0.5")),
            ("http://user:pw@evil.example:80/", Some("evil.example")),
            ("http://[2a03:2880::1]:80", Some("2a03:2880::1")),
            ("http://127.0.0.1:4599", None),
            ("http://127.8.9.10", None),
            ("http://localhost:4599", None),
            ("http://LocalHost", None),
            ("http://api.localhost:1", None),
            ("http://[::1]:4599", None),
            ("https://graph.facebook.com", None),
            ("https://10.0.0.5", None),
        ];
        for (url, host) in table {
            let url = HttpUrl::try_from(url.to_owned()).unwrap();
            assert_eq!(url.plain_http_remote_host(), host, "{url}");
        }
    }
}

//! Typed config values that validate themselves as they are read, so that a wrong one is a
//! parse error naming its key and line, and the rest of the program holds only good ones:
//! [`Currency`] (ISO 4217), [`Country`] (ISO 3166) and [`HttpUrl`].

use std::cell::RefCell;
use std::fmt;

use serde::Deserialize;

/// An ISO 4217 currency code, uppercase (`"usd"` is read as `USD`); iso_currency's list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency(crate::Text);

/// Currency codes a thread remembers as valid ([`Currency::parse`]).
const KNOWN_CODES: usize = 16;

impl Currency {
    /// The code of `raw` (any case, surrounding white space ignored), or `None` when it is not
    /// one. The one rule for `defaults.currency` and every row's currency.
    pub fn parse(raw: &str) -> Option<Self> {
        thread_local! {
            /// The codes this thread last found valid, up to [`KNOWN_CODES`]: a table's rows
            /// share a few currencies (one per market), and iso_currency's lookup compares the
            /// code with each currency in turn (~750 instructions per row under callgrind; with
            /// only the last code remembered, a chain selling in nine markets missed on most
            /// rows, ~1.5% of a run's CPU, issue 24). Kept as bytes: a remembered text cloned
            /// out of the table and moved on stalled on its copy (`perf annotate`: ~1.5% of a
            /// run's CPU on fully populated rows, issue 24), where a three-byte text is built
            /// in registers.
            static KNOWN: RefCell<Vec<[u8; 3]>> = const { RefCell::new(Vec::new()) };
        }
        let raw = raw.trim();
        // A remembered code (uppercase ASCII) is the value's uppercase form exactly when the
        // two are equal ignoring ASCII case: found without building a text (copying the value
        // into one and reading it back stalled on every row, ~1% of a run's CPU, issue 24).
        let known = KNOWN.with_borrow(|known| {
            known
                .iter()
                .find(|code| code.eq_ignore_ascii_case(raw.as_bytes()))
                .copied()
        });
        if let Some(code) = known {
            return std::str::from_utf8(&code)
                .ok()
                .map(|code| Self(code.into()));
        }
        // Inline (three letters): no allocation.
        let mut upper = crate::Text::from(raw);
        upper.make_ascii_uppercase();
        iso_currency::Currency::from_code(&upper)?;
        if let Ok(code) = <[u8; 3]>::try_from(upper.as_bytes()) {
            KNOWN.with_borrow_mut(|known| {
                if known.len() == KNOWN_CODES {
                    known.remove(0);
                }
                known.push(code);
            });
        }
        Some(Self(upper))
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-letter code, owned.
    pub(crate) fn into_text(self) -> crate::Text {
        self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
            .ok_or_else(|| format!("{value:?} is not an ISO 4217 currency code such as \"USD\""))
    }
}

/// A country as the config gives it: an ISO 3166 code (alpha-2, alpha-3) or a name in any
/// language that [`crate::country`] knows, kept as written (the transform normalizes it as it does a row's country).
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
        match crate::country::alpha2(trimmed) {
            Some(_) => Ok(Self(trimmed.to_owned())),
            None => Err(format!(
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

    /// A code is read the same whether it is remembered or not: more codes than a thread
    /// remembers, asked in turns, in any case and spacing, and texts that are not codes.
    #[test]
    fn currencies_are_read_alike_remembered_or_not() {
        let codes = [
            "USD",
            "eur",
            " GBP ",
            "BRL",
            "JPY",
            "INR",
            "MXN",
            "AUD",
            "CAD",
            "CHF",
            "SEK",
            "NOK",
            "DKK",
            "PLN",
            "CZK",
            "HUF",
            "RON",
            "TRY",
            "ZAR",
            "KRW",
            "xyz",
            "",
            "US",
            "USDD",
            "uSd",
            "ÜSD",
            "usd\u{301}",
            "EUR\u{a0}",
        ];
        for round in 0..3 {
            for (i, raw) in codes.iter().enumerate() {
                let code = raw.trim().to_ascii_uppercase();
                let valid = iso_currency::Currency::from_code(&code).is_some();
                assert_eq!(
                    Currency::parse(raw).map(|c| c.as_str().to_owned()),
                    valid.then_some(code),
                    "{raw:?} in round {round}"
                );
                // And the first code again, between every two.
                assert!(Currency::parse(codes[i % 3]).is_some());
            }
        }
    }

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

/// An encoding PostgreSQL names, for `source.encoding`: how text that is not valid UTF-8 is
/// decoded (only a `SQL_ASCII` database holds such text). Read from any case, `-` or `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TextEncoding {
    /// ISO 8859-1, as PostgreSQL's `LATIN1` (each byte is the code point of the same number).
    Latin1,
    /// Another encoding PostgreSQL names (`WIN1252`, `LATIN9`, `SJIS`, …), through
    /// `encoding_rs`.
    Other(&'static encoding_rs::Encoding),
}

impl std::str::FromStr for TextEncoding {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let upper = name.trim().to_ascii_uppercase().replace('-', "_");
        let label = match upper.as_str() {
            "LATIN1" | "ISO_8859_1" | "ISO8859_1" => return Ok(Self::Latin1),
            "LATIN2" => "iso-8859-2".to_owned(),
            "LATIN3" => "iso-8859-3".to_owned(),
            "LATIN4" => "iso-8859-4".to_owned(),
            "LATIN5" => "iso-8859-9".to_owned(),
            "LATIN6" => "iso-8859-10".to_owned(),
            "LATIN7" => "iso-8859-13".to_owned(),
            "LATIN8" => "iso-8859-14".to_owned(),
            "LATIN9" => "iso-8859-15".to_owned(),
            "LATIN10" => "iso-8859-16".to_owned(),
            "WIN866" => "ibm866".to_owned(),
            "KOI8R" | "KOI8_R" => "koi8-r".to_owned(),
            "KOI8U" | "KOI8_U" => "koi8-u".to_owned(),
            "EUC_JP" => "euc-jp".to_owned(),
            "EUC_KR" => "euc-kr".to_owned(),
            "SJIS" | "SHIFT_JIS" => "shift_jis".to_owned(),
            "BIG5" => "big5".to_owned(),
            "GBK" => "gbk".to_owned(),
            "GB18030" => "gb18030".to_owned(),
            other => match (other.strip_prefix("WIN"), other.strip_prefix("ISO_8859_")) {
                (
                    Some(
                        code @ ("874" | "1250" | "1251" | "1252" | "1253" | "1254" | "1255"
                        | "1256" | "1257" | "1258"),
                    ),
                    _,
                ) => format!("windows-{code}"),
                (_, Some(part @ ("5" | "6" | "7" | "8"))) => format!("iso-8859-{part}"),
                _ => String::new(),
            },
        };
        encoding_rs::Encoding::for_label(label.as_bytes())
            .map(Self::Other)
            .ok_or_else(|| {
                format!(
                    "`source.encoding` {name:?} is not an encoding ocapi can decode; use \
                     PostgreSQL's name, such as \"LATIN1\", \"WIN1252\" or \"LATIN9\""
                )
            })
    }
}

impl TryFrom<String> for TextEncoding {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl TextEncoding {
    /// The encoding's name (`LATIN1`, `windows-1252`, …), for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Latin1 => "LATIN1",
            Self::Other(encoding) => encoding.name(),
        }
    }

    /// `bytes` in this encoding as text, `None` when they are not.
    pub fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Self::Latin1 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
            Self::Other(encoding) => encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(std::borrow::Cow::into_owned),
        }
    }
}

/// An IANA time zone by name, matched as PostgreSQL matches it: exactly, else ignoring ASCII
/// case (`america/new_york` is `America/New_York`, as `at time zone` and `set timezone` read
/// it). The one rule for `source.timezone` and every row's `mapping.timezone`. `None` when no
/// zone of the tz database has that name.
pub fn parse_zone(name: &str) -> Option<chrono_tz::Tz> {
    if let Ok(zone) = name.parse::<chrono_tz::Tz>() {
        return Some(zone);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|zone| zone.name().eq_ignore_ascii_case(name))
        .copied()
}

/// The error of a value that checks itself as it is read, naming its config key:
/// `Config::parse` reports it as `ConfigError::Invalid` for that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedError {
    /// The dotted key.
    pub key: &'static str,
    /// What is wrong, written as the fix.
    pub constraint: String,
}

impl fmt::Display for KeyedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.key, self.constraint)
    }
}

impl KeyedError {
    /// The keys whose values check themselves as they are read ([`Zone`], [`BatchSize`]).
    const KEYS: [&'static str; 2] = [Zone::KEY, BatchSize::KEY];

    /// The error toml reported with `message` (a [`KeyedError`]'s text), if it is one.
    pub(crate) fn from_message(message: &str) -> Option<Self> {
        Self::KEYS.into_iter().find_map(|key| {
            let constraint = message.strip_prefix(&format!("`{key}` "))?;
            Some(Self {
                key,
                constraint: constraint.to_owned(),
            })
        })
    }
}

/// `source.timezone`: the IANA time zone in which `timestamp without time zone` and `date`
/// columns are read, parsed once as the config is read by [`parse_zone`]'s rule (a name
/// PostgreSQL accepts, any ASCII case). A name the tz database lacks is a config error naming
/// the key. `UTC` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Zone(chrono_tz::Tz);

impl Zone {
    /// Its config key.
    const KEY: &'static str = "source.timezone";

    /// The zone.
    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    /// Its canonical name (`America/New_York` for `america/new_york`), as PostgreSQL's
    /// `at time zone` takes it.
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for Zone {
    fn default() -> Self {
        Self(chrono_tz::UTC)
    }
}

impl TryFrom<String> for Zone {
    type Error = KeyedError;

    fn try_from(name: String) -> Result<Self, KeyedError> {
        parse_zone(&name).map(Self).ok_or(KeyedError {
            key: Self::KEY,
            constraint: "must be an IANA time zone name such as \"UTC\" or \"America/New_York\""
                .to_owned(),
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `destination.batch_size`: events per request, from 1 to Meta's limit of 1000
/// (docs/meta-capi.md §4); 1000 by default. Anything else is a config error naming the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct BatchSize(std::num::NonZeroU16);

impl BatchSize {
    /// Its config key.
    const KEY: &'static str = "destination.batch_size";
    /// Meta's limit of events per request (docs/meta-capi.md §4).
    pub const MAX: usize = 1000;

    /// `count` events per request, `None` outside 1 to [`BatchSize::MAX`].
    pub fn new(count: usize) -> Option<Self> {
        if count > Self::MAX {
            return None;
        }
        u16::try_from(count)
            .ok()
            .and_then(std::num::NonZeroU16::new)
            .map(Self)
    }

    /// The count.
    pub fn get(self) -> usize {
        usize::from(self.0.get())
    }
}

impl Default for BatchSize {
    fn default() -> Self {
        Self::new(Self::MAX).expect("Meta's limit is a valid batch size")
    }
}

impl TryFrom<i64> for BatchSize {
    type Error = KeyedError;

    fn try_from(count: i64) -> Result<Self, KeyedError> {
        usize::try_from(count)
            .ok()
            .and_then(Self::new)
            .ok_or(KeyedError {
                key: Self::KEY,
                constraint: "must be between 1 and 1000 (Meta's limit)".to_owned(),
            })
    }
}

impl PartialEq<usize> for BatchSize {
    fn eq(&self, other: &usize) -> bool {
        self.get() == *other
    }
}

#[cfg(test)]
mod typed_tests {
    use super::*;

    #[test]
    fn a_zone_is_parsed_once_and_a_bad_one_names_its_key() {
        let zone = Zone::try_from("america/new_york".to_owned()).unwrap();
        assert_eq!(zone.name(), "America/New_York");
        assert_eq!(zone.tz(), chrono_tz::America::New_York);
        let error = Zone::try_from("Mars/Olympus".to_owned()).unwrap_err();
        assert_eq!(error.key, "source.timezone");
        assert_eq!(KeyedError::from_message(&error.to_string()), Some(error));
        assert_eq!(Zone::default().name(), "UTC");
    }

    #[test]
    fn a_batch_size_is_1_to_1000() {
        for good in [1, 250, 1000] {
            assert_eq!(BatchSize::try_from(good).unwrap().get(), good as usize);
        }
        for bad in [0, -1, 1001, 65_537] {
            let error = BatchSize::try_from(bad).unwrap_err();
            assert_eq!(error.key, "destination.batch_size", "{bad}");
        }
        assert_eq!(BatchSize::default(), 1000);
    }
}

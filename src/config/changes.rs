//! `[[source.changes]]`: the base tables whose changes move an order, each read by its own
//! indexed watermark (issue 21), and `lookback`, which is a duration on a time watermark and a
//! number in the column's own units on an integer one. docs/source.md says when to use
//! them.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use super::{parse_duration, ConfigError};

/// One `[[source.changes]]` entry: a base table of `source.table` whose rows tie to an order.
/// A run finds the keys of this table that changed since its own stored watermark (minus its
/// lookback), reads every row of the orders whose `matches` column equals one of those keys from
/// `source.table`, and advances this table's watermark with the pages it commits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesSource {
    /// The base table, schema-qualified or not (`pos.order_lines`).
    pub table: String,
    /// A `timestamptz`, `timestamp`, `date` or integer column of `table` that grows when a row
    /// is written, with an index (`check` gives the `create index` statement when it lacks one).
    pub watermark_column: String,
    /// A column of `table` whose value names the orders a changed row touches.
    pub key: String,
    /// The column of `source.table` equal to `key` (default: `mapping.order_id`).
    #[serde(default)]
    pub matches: Option<String>,
    /// The window re-read behind this table's watermark (default: `source.lookback`).
    #[serde(default)]
    pub lookback: Option<Lookback>,
}

impl ChangesSource {
    /// The column of `source.table` that `key` matches: `matches`, else `mapping.order_id`.
    pub fn matches_or<'a>(&'a self, order_id: &'a str) -> &'a str {
        self.matches.as_deref().unwrap_or(order_id)
    }
}

/// `lookback`: how far behind the stored watermark a run reads again, for rows committed late.
/// A duration (`"15m"`, humantime) on a time watermark; a number in the column's own units
/// (`5000`: ids, or milliseconds of an epoch-millisecond column) on an integer one. Which one
/// fits is known once the column's type is: [`Lookback::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookback {
    /// A time span, for `timestamptz`, `timestamp` and `date` watermarks.
    Duration(Duration),
    /// A number of the watermark's own units, for integer watermarks.
    Units(u64),
}

impl Default for Lookback {
    fn default() -> Self {
        Self::Duration(Duration::ZERO)
    }
}

impl Lookback {
    /// Whether nothing is re-read.
    pub fn is_zero(self) -> bool {
        match self {
            Self::Duration(span) => span.is_zero(),
            Self::Units(units) => units == 0,
        }
    }

    /// The span of a duration lookback (zero for a number).
    pub fn duration(self) -> Duration {
        match self {
            Self::Duration(span) => span,
            Self::Units(_) => Duration::ZERO,
        }
    }

    /// What the lookback subtracts from a watermark of the given kind (integer or time): a
    /// number of units, or a number of seconds.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `key` when the lookback's form does not fit the column:
    /// a duration on an integer watermark would subtract seconds from ids (or milliseconds), so
    /// a row committed late would never be read; a number on a time watermark has no unit.
    pub fn check(self, integer: bool, key: &'static str) -> Result<i64, ConfigError> {
        match (self, integer) {
            (_, _) if self.is_zero() => Ok(0),
            (Self::Units(units), true) => Ok(i64::try_from(units).unwrap_or(i64::MAX)),
            (Self::Duration(span), false) => Ok(i64::try_from(span.as_secs()).unwrap_or(i64::MAX)),
            (Self::Duration(span), true) => Err(ConfigError::Invalid {
                key,
                constraint: format!(
                    "is a duration ({}), but the watermark column is an integer: give the \
                     lookback in the column's own units, e.g. `lookback = 5000` (ids, or \
                     milliseconds of an epoch-millisecond column)",
                    crate::human::std_duration(span)
                ),
            }),
            (Self::Units(units), false) => Err(ConfigError::Invalid {
                key,
                constraint: format!(
                    "is a number ({units}), but the watermark column is a time: give a duration \
                     such as `lookback = \"15m\"`"
                ),
            }),
        }
    }
}

impl fmt::Display for Lookback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(span) => write!(f, "{}", crate::human::std_duration(*span)),
            Self::Units(units) => write!(f, "{units}"),
        }
    }
}

impl<'de> Deserialize<'de> for Lookback {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Takes a humantime string or a non-negative integer.
        struct LookbackVisitor;

        impl Visitor<'_> for LookbackVisitor {
            type Value = Lookback;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"15m\" (time watermarks) or a non-negative number of \
                     the watermark's units such as 5000 (integer watermarks)",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Lookback, E> {
                parse_duration(text)
                    .map(Lookback::Duration)
                    .map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, units: u64) -> Result<Lookback, E> {
                Ok(Lookback::Units(units))
            }

            fn visit_i64<E: de::Error>(self, units: i64) -> Result<Lookback, E> {
                u64::try_from(units).map(Lookback::Units).map_err(|_| {
                    E::custom(format!(
                        "lookback {units} is negative: give how far back to read again, e.g. 5000"
                    ))
                })
            }
        }

        deserializer.deserialize_any(LookbackVisitor)
    }
}

/// Checks the `[[source.changes]]` entries: each names a table, a watermark column and a key,
/// no table twice; without any, `source.watermark_column` is required.
pub(super) fn validate(
    changes: &[ChangesSource],
    watermark_column: Option<&str>,
) -> Result<(), ConfigError> {
    let invalid = |constraint: String| {
        Err(ConfigError::Invalid {
            key: "source.changes",
            constraint,
        })
    };
    if changes.is_empty() {
        if watermark_column.is_none_or(|c| c.trim().is_empty()) {
            return Err(ConfigError::Invalid {
                key: "source.watermark_column",
                constraint: "is required: name a column that grows when a row is written \
                             (`updated_at`), or list the base tables whose changes move an order \
                             in `[[source.changes]]`"
                    .to_owned(),
            });
        }
        return Ok(());
    }
    if watermark_column.is_some_and(|c| c.trim().is_empty()) {
        return Err(ConfigError::Invalid {
            key: "source.watermark_column",
            constraint: "must name a column, or be left out".to_owned(),
        });
    }
    for (i, entry) in changes.iter().enumerate() {
        let n = i + 1;
        for (name, value) in [
            ("table", Some(entry.table.as_str())),
            ("watermark_column", Some(entry.watermark_column.as_str())),
            ("key", Some(entry.key.as_str())),
            ("matches", entry.matches.as_deref()),
        ] {
            if value.is_some_and(|v| v.trim().is_empty()) {
                return invalid(format!(
                    "entry {n} (table {:?}): `{name}` must name a {}",
                    entry.table,
                    if name == "table" { "table" } else { "column" }
                ));
            }
        }
        if let Some(first) = changes[..i]
            .iter()
            .position(|other| same_name(&other.table, &entry.table))
        {
            return invalid(format!(
                "entries {} and {n} both name table {:?}: list each table once",
                first + 1,
                entry.table
            ));
        }
    }
    Ok(())
}

/// Whether two configured table names are one (unquoted names fold to lower case).
fn same_name(a: &str, b: &str) -> bool {
    let fold = |name: &str| {
        if name.contains('"') {
            name.trim().to_owned()
        } else {
            name.trim().to_lowercase()
        }
    };
    fold(a) == fold(b)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, TEST_CONFIG};

    const CHANGES: &str = r#"
[[source.changes]]
table = "pos.order_headers"
watermark_column = "updated_at"
key = "order_id"

[[source.changes]]
table = "pos.order_lines"
watermark_column = "updated_at"
key = "order_id"
lookback = 5000

[[source.changes]]
table = "crm.customers"
watermark_column = "updated_at"
key = "customer_id"
matches = "customer_id"
"#;

    /// TEST_CONFIG with `[[source.changes]]` after `[source]` and `source_extra` in it.
    fn with_changes(source_extra: &str, changes: &str) -> String {
        TEST_CONFIG.replace(
            "[mapping]",
            &format!("{source_extra}\n{changes}\n[mapping]"),
        )
    }

    #[test]
    fn changes_entries_parse_with_their_defaults() {
        let text = with_changes("", CHANGES);
        let config = Config::parse(&text, Path::new("x.toml")).unwrap();
        let changes = &config.source.changes;
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].table, "pos.order_headers");
        assert_eq!(changes[0].matches_or("id"), "id");
        assert_eq!(changes[2].matches_or("id"), "customer_id");
        assert_eq!(changes[1].lookback, Some(Lookback::Units(5000)));
        assert_eq!(changes[0].lookback, None);
    }

    #[test]
    fn without_changes_the_watermark_column_is_required_and_with_them_optional() {
        let bare = TEST_CONFIG.replace("watermark_column = \"updated_at\"\n", "");
        let error = Config::parse(&bare, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("source.watermark_column"), "{error}");
        assert!(error.contains("[[source.changes]]"), "{error}");
        let with = bare.replace("[mapping]", &format!("{CHANGES}\n[mapping]"));
        let config = Config::parse(&with, Path::new("x.toml")).unwrap();
        assert_eq!(config.source.watermark_column, None);
        let plain = Config::parse(TEST_CONFIG, Path::new("x.toml")).unwrap();
        assert!(plain.source.changes.is_empty());
        assert_eq!(plain.source.watermark_column.as_deref(), Some("updated_at"));
    }

    #[test]
    fn a_bad_entry_is_named_by_its_number_and_table() {
        let missing_key = with_changes(
            "",
            "[[source.changes]]\ntable = \"pos.h\"\nwatermark_column = \"u\"\n",
        );
        let error = Config::parse(&missing_key, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("key"), "{error}");
        let empty = with_changes(
            "",
            "[[source.changes]]\ntable = \"pos.h\"\nwatermark_column = \" \"\nkey = \"id\"\n",
        );
        let error = Config::parse(&empty, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("source.changes"), "{error}");
        assert!(error.contains("entry 1"), "{error}");
        assert!(error.contains("watermark_column"), "{error}");
        let twice = with_changes(
            "",
            "[[source.changes]]\ntable = \"pos.h\"\nwatermark_column = \"u\"\nkey = \"id\"\n\
             [[source.changes]]\ntable = \"POS.H\"\nwatermark_column = \"v\"\nkey = \"id\"\n",
        );
        let error = Config::parse(&twice, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("entries 1 and 2"), "{error}");
        let unknown = with_changes(
            "",
            "[[source.changes]]\ntable = \"pos.h\"\nwatermark_column = \"u\"\nkey = \"id\"\n\
             matched = \"x\"\n",
        );
        let error = Config::parse(&unknown, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("matched"), "{error}");
    }

    #[test]
    fn lookback_is_a_duration_or_a_number_and_must_fit_the_column() {
        let number = with_changes("lookback = 5000", "");
        let config = Config::parse(&number, Path::new("x.toml")).unwrap();
        assert_eq!(config.source.lookback, Lookback::Units(5000));
        assert_eq!(
            config
                .source
                .lookback
                .check(true, "source.lookback")
                .unwrap(),
            5000
        );
        let error = config
            .source
            .lookback
            .check(false, "source.lookback")
            .unwrap_err()
            .to_string();
        assert!(error.contains("source.lookback"), "{error}");
        assert!(error.contains("\"15m\""), "{error}");

        let span = with_changes("lookback = \"15m\"", "");
        let config = Config::parse(&span, Path::new("x.toml")).unwrap();
        assert_eq!(
            config.source.lookback,
            Lookback::Duration(Duration::from_secs(900))
        );
        assert_eq!(
            config
                .source
                .lookback
                .check(false, "source.lookback")
                .unwrap(),
            900
        );
        let error = config
            .source
            .lookback
            .check(true, "source.lookback")
            .unwrap_err()
            .to_string();
        assert!(error.contains("source.lookback"), "{error}");
        assert!(error.contains("lookback = 5000"), "{error}");
        // Zero fits either column.
        assert_eq!(
            Lookback::default().check(true, "source.lookback").unwrap(),
            0
        );
        assert_eq!(
            Lookback::Units(0).check(false, "source.lookback").unwrap(),
            0
        );

        let negative = with_changes("lookback = -5", "");
        let error = Config::parse(&negative, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("negative"), "{error}");
        let nonsense = with_changes("lookback = \"soon\"", "");
        assert!(Config::parse(&nonsense, Path::new("x.toml")).is_err());
    }
}

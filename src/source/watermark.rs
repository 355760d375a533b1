//! The watermark as one value: its kind (how the column is typed, which decides how its text is
//! cast back and compared) and its value (PostgreSQL's text form of it, cast back with
//! `::text::<type>`). The ledger's `state` table stores both, as text, unchanged by this type:
//! the value turns into text only where it leaves for SQL, the ledger or the run's output
//! ([`Watermark::as_str`], its `Display` and `Serialize`), and comes back from there with its
//! column's kind ([`Watermark::new`]).

use std::sync::Arc;

use arrayvec::ArrayString;
use tokio_postgres::types::{ToSql, Type};

use super::{Param, WatermarkKind};

/// A watermark value of the source's watermark column; empty text when the column held none
/// (a NULL, or no `source.watermark_column` at all: `[[source.changes]]` find the changes).
///
/// Two watermarks are equal when they are of one kind and name the same value: equal text, or,
/// for a timestamp, the same instant written in another of the four layouts a ledger holds
/// (ledgers written before issue 11 kept PostgreSQL's session-dependent text form,
/// `2026-11-01 10:00:00.5+00`; RFC 3339 `2026-11-01T10:00:00.500000Z`; and both without an
/// offset for a `timestamp` column).
#[derive(Debug, Clone, Eq)]
pub struct Watermark {
    /// How the column is typed.
    kind: WatermarkKind,
    /// PostgreSQL's text form of the value (ISO, UTC for `timestamptz`, under
    /// `db::READ_SETTINGS`).
    value: WatermarkText,
}

/// The longest watermark text kept inline: PostgreSQL's ISO text of a `timestamptz` with
/// microseconds (`2026-11-01 10:00:00.123456+00`) is 29 bytes, of a `timestamp` 26, of a
/// `bigint` at most 20.
const INLINE: usize = 30;

/// A watermark's text: inline when it fits in [`INLINE`] bytes (every value PostgreSQL writes
/// for the watermark column's types under `db::READ_SETTINGS`), else shared. A row carries its
/// order's watermark three times (capped, as recorded, its own), and an order's travels from
/// its row to the event, the batch and the ledger's record: kept in an `Arc`, it was an
/// allocation per row in the decoder, whose reference count every later copy and drop then
/// updated from another thread (~2% of a run's CPU on fully populated rows, issue 24).
#[derive(Clone)]
enum WatermarkText {
    /// Text of up to [`INLINE`] bytes.
    Inline(ArrayString<INLINE>),
    /// Longer text (a layout a ledger kept, or a hand-written value), shared by its copies.
    Shared(Arc<str>),
}

impl WatermarkText {
    /// `text`, inline when it fits.
    fn new(text: &str) -> Self {
        ArrayString::from(text).map_or_else(|_| Self::Shared(Arc::from(text)), Self::Inline)
    }
}

impl std::ops::Deref for WatermarkText {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Inline(text) => text.as_str(),
            Self::Shared(text) => text,
        }
    }
}

/// Compared, ordered and shown as the text it holds, however it is kept.
impl PartialEq for WatermarkText {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for WatermarkText {}

impl PartialOrd for WatermarkText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WatermarkText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::fmt::Debug for WatermarkText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl Watermark {
    /// A value of a column of `kind`, in PostgreSQL's text form.
    pub fn new(kind: WatermarkKind, value: impl AsRef<str>) -> Self {
        Self {
            kind,
            value: WatermarkText::new(value.as_ref()),
        }
    }

    /// How the column is typed.
    pub fn kind(&self) -> WatermarkKind {
        self.kind
    }

    /// The value's text form, which PostgreSQL casts back with `::text::<type>`.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Whether this value is before `other`, a value of the same column: integers as numbers
    /// (`false` when either is not one), the rest as PostgreSQL's ISO text of one layout,
    /// which sorts as the values do.
    pub fn before(&self, other: &Watermark) -> bool {
        match self.kind {
            WatermarkKind::Integer => {
                match (
                    self.value.trim().parse::<i64>(),
                    other.value.trim().parse::<i64>(),
                ) {
                    (Ok(a), Ok(b)) => a < b,
                    _ => false,
                }
            }
            _ => self.value < other.value,
        }
    }

    /// Whether the column held no value (NULL), or there is no watermark column.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The value bound as a value of the column's own type (so that PostgreSQL, and
    /// `postgres_fdw`, can use a condition on it where the rows live: a `$1::text::timestamptz`
    /// cast is not immutable, so it is neither an index bound a remote server is sent nor
    /// folded early); `None` when the text is in none of the layouts the kind is read from (the
    /// caller binds the text and casts it instead).
    pub fn bind(&self) -> Option<Param> {
        let t = self.value.trim();
        match self.kind {
            WatermarkKind::Integer => t
                .parse::<i64>()
                .ok()
                .map(|v| (Box::new(v) as Box<dyn ToSql + Sync + Send>, Type::INT8)),
            WatermarkKind::Date => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .map(|v| (Box::new(v) as Box<dyn ToSql + Sync + Send>, Type::DATE)),
            WatermarkKind::Timestamp => {
                local(t).map(|v| (Box::new(v) as Box<dyn ToSql + Sync + Send>, Type::TIMESTAMP))
            }
            WatermarkKind::Timestamptz => absolute(t).map(|v| {
                (
                    Box::new(v.with_timezone(&chrono::Utc)) as Box<dyn ToSql + Sync + Send>,
                    Type::TIMESTAMPTZ,
                )
            }),
        }
    }
}

impl PartialEq for Watermark {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && (self.value == other.value
                || matches!(
                    self.kind,
                    WatermarkKind::Timestamptz | WatermarkKind::Timestamp
                ) && matches!((instant(&self.value), instant(&other.value)), (Some(x), Some(y)) if x == y))
    }
}

/// The text form, as `runs.watermark_start` and the run's JSON and metrics hold it.
impl std::ops::Deref for Watermark {
    type Target = str;

    fn deref(&self) -> &str {
        &self.value
    }
}

/// As its text form (the run's JSON output is unchanged by the type).
impl serde::Serialize for Watermark {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

/// A row built by hand (benchmarks, tests): an empty `timestamptz` watermark.
impl Default for Watermark {
    fn default() -> Self {
        Self::new(WatermarkKind::Timestamptz, "")
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value)
    }
}

/// The instant a timestamp text names (UTC for one with an offset), in any of the layouts
/// [`Watermark`] lists; `None` for other text (integers, dates compare as text).
fn instant(text: &str) -> Option<chrono::NaiveDateTime> {
    let text = text.trim();
    absolute(text)
        .map(|t| t.naive_utc())
        .or_else(|| local(text))
}

/// A timestamp text with an offset: RFC 3339, or PostgreSQL's form (`+00`).
fn absolute(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
            .iter()
            .find_map(|f| chrono::DateTime::parse_from_str(text, f).ok())
    })
}

/// A timestamp text without an offset, with a space or a `T`.
fn local(text: &str) -> Option<chrono::NaiveDateTime> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One instant in the four layouts a ledger holds.
    const LAYOUTS: [&str; 4] = [
        "2026-11-01 10:00:00.5+00",
        "2026-11-01T10:00:00.500000Z",
        "2026-11-01T11:00:00.5+01:00",
        "2026-11-01 10:00:00.500",
    ];

    #[test]
    fn one_instant_in_the_four_layouts_is_one_watermark() {
        for kind in [WatermarkKind::Timestamptz, WatermarkKind::Timestamp] {
            for a in LAYOUTS {
                for b in LAYOUTS {
                    assert_eq!(
                        Watermark::new(kind, a),
                        Watermark::new(kind, b),
                        "{a} vs {b}"
                    );
                }
            }
        }
        let kind = WatermarkKind::Timestamptz;
        assert_ne!(
            Watermark::new(kind, "2026-11-01 10:00:00+00"),
            Watermark::new(kind, "2026-11-01 10:00:01+00")
        );
        let integer = WatermarkKind::Integer;
        assert_eq!(Watermark::new(integer, "42"), Watermark::new(integer, "42"));
        assert_ne!(Watermark::new(integer, "42"), Watermark::new(integer, "43"));
        assert_ne!(
            Watermark::new(WatermarkKind::Integer, "1"),
            Watermark::new(WatermarkKind::Date, "1")
        );
        // No value equals no value (a NULL column, or `[[source.changes]]` only).
        assert_eq!(Watermark::new(kind, ""), Watermark::new(kind, ""));
        assert_ne!(Watermark::new(kind, ""), Watermark::new(kind, LAYOUTS[0]));
        assert!(Watermark::new(kind, "").is_empty());
    }

    #[test]
    fn a_watermark_binds_as_its_columns_type_from_any_of_the_layouts() {
        let ty = |kind, text| Watermark::new(kind, text).bind().map(|(_, ty)| ty);
        for text in LAYOUTS.into_iter().take(3) {
            assert_eq!(
                ty(WatermarkKind::Timestamptz, text),
                Some(Type::TIMESTAMPTZ),
                "{text}"
            );
        }
        // Without an offset a `timestamptz` text is left to PostgreSQL's cast (its zone is
        // the session's).
        assert_eq!(ty(WatermarkKind::Timestamptz, LAYOUTS[3]), None);
        assert_eq!(
            ty(WatermarkKind::Timestamp, LAYOUTS[3]),
            Some(Type::TIMESTAMP)
        );
        assert_eq!(
            ty(WatermarkKind::Timestamp, "2026-11-01T10:00:00"),
            Some(Type::TIMESTAMP)
        );
        assert_eq!(ty(WatermarkKind::Date, "2026-11-01"), Some(Type::DATE));
        assert_eq!(ty(WatermarkKind::Integer, " 42 "), Some(Type::INT8));
        assert_eq!(ty(WatermarkKind::Integer, "4.2"), None);
        assert_eq!(ty(WatermarkKind::Date, "yesterday"), None);
    }

    #[test]
    fn integers_are_before_by_value_and_times_by_their_iso_text() {
        let integer = |text| Watermark::new(WatermarkKind::Integer, text);
        assert!(integer("9").before(&integer("10")));
        assert!(!integer("10").before(&integer("9")));
        assert!(!integer("x").before(&integer("9")));
        let time = |text| Watermark::new(WatermarkKind::Timestamptz, text);
        assert!(time("2026-01-01 00:00:00+00").before(&time("2026-01-02 00:00:00+00")));
        assert!(!time("2026-01-02 00:00:00+00").before(&time("2026-01-01 00:00:00+00")));
    }

    #[test]
    fn a_watermark_leaves_as_its_text_unchanged() {
        let text = "2026-11-01 10:00:00.5+00";
        let watermark = Watermark::new(WatermarkKind::Timestamptz, text);
        assert_eq!(watermark.as_str(), text);
        assert_eq!(watermark.to_string(), text);
        assert_eq!(&*watermark, text);
        assert_eq!(
            serde_json::to_string(&Some(watermark)).ok().as_deref(),
            Some("\"2026-11-01 10:00:00.5+00\"")
        );
    }

    /// A watermark is the one its text names, however the text is kept: inline up to
    /// [`INLINE`] bytes (a clone copies it), shared beyond (a clone shares it); compared and
    /// ordered as their text, across the two.
    #[test]
    fn a_same_text_is_the_same_watermark_inline_or_shared() {
        let longest = "2026-11-01 10:00:00.123456+00:00";
        for text in [
            "2026-11-01 10:00:00+00",
            "2026-11-01 10:00:00.123456+00",
            &longest[..INLINE],
            &longest[..INLINE + 1],
            longest,
        ] {
            let first = Watermark::new(WatermarkKind::Timestamptz, text);
            let same = first.clone();
            assert_eq!(same.as_str(), text);
            assert_eq!(same, first);
            let shared = text.len() > INLINE;
            assert_eq!(
                std::ptr::eq(first.as_str(), same.as_str()),
                shared,
                "{text}"
            );
            assert!(format!("{first:?}").contains(&format!("{text:?}")));
            let other = Watermark::new(first.kind(), "2027-11-01 11:00:00+00");
            assert_eq!(other.as_str(), "2027-11-01 11:00:00+00");
            assert_eq!(other.kind(), WatermarkKind::Timestamptz);
            assert!(first.before(&other));
            assert!(!other.before(&first));
            assert!(Watermark::new(first.kind(), "").is_empty());
        }
        let short = Watermark::new(WatermarkKind::Timestamptz, &longest[..INLINE]);
        let long = Watermark::new(WatermarkKind::Timestamptz, &longest[..INLINE + 1]);
        assert!(short.before(&long));
        assert_ne!(short, long);
    }
}

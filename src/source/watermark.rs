//! The watermark as one value: its kind (how the column is typed, which decides how its text is
//! cast back and compared) and its value (PostgreSQL's text form of it, cast back with
//! `::text::<type>`). The ledger's `state` table stores both, as text, unchanged by this type.

use super::WatermarkKind;

/// A watermark value of the source's watermark column.
///
/// Two watermarks are equal when they name the same value: equal text, or the same instant
/// written in two layouts (see [`Watermark::same_value`]).
#[derive(Debug, Clone, Eq)]
pub struct Watermark {
    /// How the column is typed.
    kind: WatermarkKind,
    /// PostgreSQL's text form of the value (ISO, UTC for `timestamptz`, under
    /// `db::READ_SETTINGS`).
    value: String,
}

impl Watermark {
    /// A value of a column of `kind`, in PostgreSQL's text form.
    pub fn new(kind: WatermarkKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
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

    /// The value's text form, owned (as `runs.watermark_start` and the stats keep it).
    pub fn into_text(self) -> String {
        self.value
    }

    /// Whether two texts of one watermark column name the same value: equal text, or the same
    /// instant written in another of the four layouts a ledger holds (ledgers written before
    /// issue 11 kept PostgreSQL's session-dependent text form, `2026-11-01 10:00:00.5+00`;
    /// RFC 3339 `2026-11-01T10:00:00.500000Z`; and both without an offset for a `timestamp`
    /// column).
    pub fn same_value(a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        matches!((instant(a), instant(b)), (Some(x), Some(y)) if x == y)
    }
}

impl PartialEq for Watermark {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Self::same_value(&self.value, &other.value)
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value)
    }
}

/// The instant a timestamp text names (UTC for one with an offset), in any of the layouts
/// [`Watermark::same_value`] lists; `None` for other text (integers, dates compare as text).
fn instant(text: &str) -> Option<chrono::NaiveDateTime> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.naive_utc());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t.naive_utc());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instant_in_the_four_layouts_is_one_watermark() {
        let layouts = [
            "2026-11-01 10:00:00.5+00",
            "2026-11-01T10:00:00.500000Z",
            "2026-11-01T11:00:00.5+01:00",
            "2026-11-01 10:00:00.500",
        ];
        for a in layouts {
            for b in layouts {
                assert!(Watermark::same_value(a, b), "{a} vs {b}");
            }
        }
        let kind = WatermarkKind::Timestamptz;
        assert_eq!(
            Watermark::new(kind, layouts[0]),
            Watermark::new(kind, layouts[1])
        );
        assert_ne!(
            Watermark::new(kind, "2026-11-01 10:00:00+00"),
            Watermark::new(kind, "2026-11-01 10:00:01+00")
        );
        assert!(Watermark::same_value("42", "42"));
        assert!(!Watermark::same_value("42", "43"));
        assert_ne!(
            Watermark::new(WatermarkKind::Integer, "1"),
            Watermark::new(WatermarkKind::Date, "1")
        );
    }
}

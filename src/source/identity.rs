//! An order's identity: its id as the id column's own type compares it. A `numeric` id written
//! `1001` by a till and `1001.0` by a CSV import is one value to PostgreSQL, a `citext` receipt
//! `RCPT-77` and `rcpt-77` too, and a `uuid` typed in upper case names the same order as the
//! column's lower-case text; ocapi groups, deduplicates, records and looks orders up by one
//! canonical text per value (the *key*), computed by the source read (`query.rs`) and, for an id
//! typed by a user (`ocapi explain`), by [`IdKind::canonical`].

/// What is trimmed from both ends of an order id (the source read's SQL trims the same set).
const ID_BLANKS: &[char] = &[' ', '\t', '\n', '\r', '\x0b', '\x0c', '\u{a0}'];

/// How the order id column's type compares its values, which decides its canonical text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdKind {
    /// Text (`text`, `varchar`, `char`, `name`): the text, trimmed of blanks.
    #[default]
    Text,
    /// `citext`: the text trimmed, in lower case (citext compares `lower()` of both sides).
    CaseInsensitive,
    /// An integer type: its text, trimmed (already one text per value).
    Integer,
    /// `numeric`: its text without trailing fractional zeros (`1001.0` → `1001`, `12.50` →
    /// `12.5`), the same for every scale of one value.
    Numeric,
    /// `uuid`: its lower-case hyphenated text, the form PostgreSQL prints.
    Uuid,
}

impl IdKind {
    /// The kind for the id column's base type (`pg_type.typname`, domains followed).
    pub(crate) fn from_typname(typname: &str) -> Self {
        match typname {
            "citext" => Self::CaseInsensitive,
            "int2" | "int4" | "int8" => Self::Integer,
            "numeric" => Self::Numeric,
            "uuid" => Self::Uuid,
            _ => Self::Text,
        }
    }

    /// The name stored in the ledger's `state.key_rule` for the keys this kind writes. Kinds
    /// whose keys are the text ocapi wrote before keys followed the column's type (text,
    /// integers, uuid: PostgreSQL's uuid text is already canonical) share `text`.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Text | Self::Integer | Self::Uuid => "text",
            Self::CaseInsensitive => "citext",
            Self::Numeric => "numeric",
        }
    }

    /// The SQL expression of the key of `trimmed`, an SQL text expression of the id's text
    /// already trimmed of blanks (the source read's `btrim(id::text, …)`, or a ledger key
    /// written by an earlier version, which was that text). Pure text functions, so that the
    /// ledger's database can convert its keys whatever the source's types.
    pub fn key_of_trimmed(self, trimmed: &str) -> String {
        match self {
            Self::Text | Self::Integer | Self::Uuid => trimmed.to_owned(),
            Self::CaseInsensitive => format!("lower({trimmed})"),
            // numeric's text never has an exponent: drop the zeros that end a fraction, and
            // the point when nothing is left after it (`1001.0`, `1001.500`, `0.0`).
            Self::Numeric => {
                format!("regexp_replace({trimmed}, E'(\\\\.[0-9]*[1-9])0+$|\\\\.0+$', E'\\\\1')")
            }
        }
    }

    /// The canonical key of an id typed by a user (`ocapi explain 1001.0`, an upper-case uuid):
    /// the text a source read gives the same value. Text that is not a value of the type is
    /// only trimmed (it names no order the source can hold).
    pub fn canonical(self, id: &str) -> String {
        let id = id.trim_matches(ID_BLANKS);
        match self {
            Self::Text | Self::Integer => id.to_owned(),
            Self::CaseInsensitive => id.to_lowercase(),
            Self::Numeric => canonical_number(id).unwrap_or_else(|| id.to_owned()),
            Self::Uuid => canonical_uuid(id).unwrap_or_else(|| id.to_owned()),
        }
    }
}

/// A plain decimal number (`+0012.500`) as numeric prints it without trailing fractional
/// zeros (`12.5`); `None` for anything else.
fn canonical_number(id: &str) -> Option<String> {
    let (sign, digits) = match id.as_bytes().first()? {
        b'-' => ("-", &id[1..]),
        b'+' => ("", &id[1..]),
        _ => ("", id),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = fraction.trim_end_matches('0');
    let sign = if whole == "0" && fraction.is_empty() {
        ""
    } else {
        sign
    };
    Some(match fraction {
        "" => format!("{sign}{whole}"),
        _ => format!("{sign}{whole}.{fraction}"),
    })
}

/// A uuid in any form PostgreSQL reads (upper case, braces, hyphens anywhere between groups of
/// four digits or none) as it prints it; `None` for anything else.
fn canonical_uuid(id: &str) -> Option<String> {
    let inner = id
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(id);
    let hex: String = inner.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::IdKind;

    #[test]
    fn a_typed_id_becomes_the_key_a_read_gives_its_value() {
        let cases = [
            (IdKind::Text, " RCPT-77\u{a0}", "RCPT-77"),
            (IdKind::CaseInsensitive, " RCPT-77 ", "rcpt-77"),
            (IdKind::Integer, "1001 ", "1001"),
            (IdKind::Numeric, "1001.0", "1001"),
            (IdKind::Numeric, "1001", "1001"),
            (IdKind::Numeric, "+001001.500", "1001.5"),
            (IdKind::Numeric, "-0.00", "0"),
            (IdKind::Numeric, "-12.10", "-12.1"),
            (IdKind::Numeric, "0.05", "0.05"),
            (IdKind::Numeric, "R-1", "R-1"),
            (IdKind::Numeric, ".", "."),
            (
                IdKind::Uuid,
                "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            ),
            (
                IdKind::Uuid,
                "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            ),
            (IdKind::Uuid, "not-a-uuid", "not-a-uuid"),
        ];
        for (kind, typed, key) in cases {
            assert_eq!(kind.canonical(typed), key, "{kind:?} {typed:?}");
        }
    }

    #[test]
    fn keys_are_computed_by_text_functions_of_the_trimmed_id() {
        assert_eq!(IdKind::CaseInsensitive.key_of_trimmed("x"), "lower(x)");
        assert_eq!(
            IdKind::Numeric.key_of_trimmed("x"),
            r"regexp_replace(x, E'(\\.[0-9]*[1-9])0+$|\\.0+$', E'\\1')"
        );
        assert_eq!(IdKind::Uuid.key_of_trimmed("x"), "x");
        assert_eq!(IdKind::Integer.key_of_trimmed("x"), "x");
        assert_eq!(IdKind::Uuid.rule(), "text");
        assert_eq!(IdKind::Numeric.rule(), "numeric");
    }
}

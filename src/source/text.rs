//! Source text as bytes, decoded in Rust: a database whose server encoding is `SQL_ASCII`
//! stores whatever bytes a client sent and checks none of them, and PostgreSQL then refuses to
//! send a value that is not valid UTF-8 to a UTF-8 client (`invalid byte sequence for encoding
//! "UTF8"`), failing the whole statement, hence every run. The read takes such a database's
//! text as `bytea` (`convert_to(…, 'SQL_ASCII')`, which neither converts nor checks), and each
//! value is decoded here: valid UTF-8 as it is, anything else with `source.encoding` when it is
//! set (`LATIN1`: `Ren\xE9` is `René`), else the row is marked [`SourceRow::undecodable`] with
//! the key of the column at fault and its order becomes `invalid` naming it, while every other
//! order is sent. In any other server encoding PostgreSQL converts to UTF-8 itself and this is
//! a plain UTF-8 read.

use std::borrow::Cow;

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;

use super::columns::{self, Role};
use super::{SourceRow, Text, Watermark, WatermarkKind};
use crate::config::TextEncoding;

/// How a value that is not valid UTF-8 is decoded: `source.encoding`, if set.
pub type Fallback = Option<TextEncoding>;

/// `bytes` as text: UTF-8 when they are (borrowed), else decoded with `fallback` (`None`
/// without one, or when the bytes are not that encoding either).
pub fn decode(fallback: Fallback, bytes: &[u8]) -> Option<Cow<'_, str>> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(Cow::Borrowed(text));
    }
    fallback?.decode(bytes).map(Cow::Owned)
}

/// A text or `bytea` value's bytes as they arrived (both are their bytes in the binary format).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::TEXT | Type::BYTEA | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
        )
    }
}

/// The text expression `expr` as the read outputs it: as is, or, in a `SQL_ASCII` database,
/// as its bytes (`convert_to` into `SQL_ASCII` returns them unchanged, valid or not; into
/// `UTF8` it checks them and fails the statement).
pub(super) fn output(expr: &str, sql_ascii: bool) -> String {
    if sql_ascii {
        format!("convert_to({expr}, 'SQL_ASCII')")
    } else {
        expr.to_owned()
    }
}

/// How the rows of one read are decoded ([`super::ReadQuery::decoding`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decoding {
    /// `source.encoding`, for values that are not UTF-8.
    pub(super) fallback: Fallback,
    /// The watermark column's kind, which the rows' watermarks are of.
    pub(super) kind: WatermarkKind,
    /// Which inner columns the read has ([`columns::read_under`]); the others are constant
    /// nulls, skipped.
    pub(super) read: [bool; columns::WIDTH],
}

/// Decodes a row of `ReadQuery::read`'s output: its leading columns, then each inner column by
/// its [`Role`] in `columns::INNER`, the list the select list was built from. A value that
/// cannot be decoded is kept lossily (so that grouping and messages still work) and marks the
/// row with the config key of the first such column.
///
/// The row is written over `decoded`, a row already in its page (a default one, or one an
/// earlier page of the same read held): every field is set, and each text is written into the
/// memory the field's earlier text held ([`put`]). A row is ~760 bytes: returned, then
/// returned again and pushed, it was copied three times (~2% of a run's CPU on fully populated
/// rows, issue 24); each text built anew and moved into place stalled on its copy
/// (`perf annotate`: half of this function's own time).
///
/// # Errors
/// A column whose type is not text, bytea, a float or a boolean where one is expected (a bug).
pub(super) fn decode_row(
    row: &Row,
    how: &Decoding,
    decoded: &mut SourceRow,
) -> Result<(), tokio_postgres::Error> {
    let Decoding {
        fallback,
        kind,
        ref read,
    } = *how;
    let mut undecodable: Option<&'static str> = None;
    // A value as borrowed text where it is UTF-8 (a watermark compared with the row's others
    // needs no copy of its own: three allocations a row, issue 24), else decoded or kept lossily.
    let mut value =
        |i: usize, key: &'static str| -> Result<Option<Cow<'_, str>>, tokio_postgres::Error> {
            Ok(row.try_get::<_, Option<Raw<'_>>>(i)?.map(|Raw(bytes)| {
                decode(fallback, bytes).unwrap_or_else(|| {
                    undecodable.get_or_insert(key);
                    String::from_utf8_lossy(bytes)
                })
            }))
        };
    let last = row.len() - 1;
    // A row's three watermarks are nearly always one value: the read sends the order's uncapped
    // watermark and the row's own only where they differ from the one before (NULL: the same,
    // a copy of it; `''`: NULL itself, `ReadQuery::read_after`).
    let watermark = Watermark::new(
        kind,
        value(0, "source.watermark_column")?.unwrap_or_default(),
    );
    let order_watermark = match value(last - 1, "source.watermark_column")? {
        None => watermark.clone(),
        Some(text) => Watermark::new(kind, text),
    };
    decoded.watermark = watermark;
    decoded.key.clear();
    if let Some(key) = value(1, "mapping.order_id")? {
        decoded.key.push_str(&key);
    }
    decoded.order_watermark = order_watermark;
    decoded.reread = row.try_get(last)?;
    decoded.ahead = row.try_get(2)?;
    // The read has the columns the mapping reads, in `columns::INNER`'s order; a column it
    // does not have is a constant null: its field is `None`.
    let mut next = columns::LEADING;
    for (i, role) in columns::INNER.into_iter().enumerate() {
        let read = read[i];
        let at = next;
        next += usize::from(read);
        let key = role.config_key();
        match role {
            Role::Epoch => decoded.event_time = if read { row.try_get(at)? } else { None },
            Role::RowWatermark => {
                decoded.row_watermark = match if read { value(at, key)? } else { None } {
                    None => decoded.order_watermark.clone(),
                    Some(text) => Watermark::new(kind, text),
                };
            }
            Role::OrderId => put(&mut decoded.order_id, read, || value(at, key))?,
            Role::LocalTime => put(&mut decoded.local_time, read, || value(at, key))?,
            Role::Customer(field) => {
                put(&mut decoded.customer[field.index()], read, || {
                    value(at, key)
                })?;
            }
            Role::Field(field) => put(field.slot(decoded), read, || value(at, key))?,
        }
    }
    decoded.undecodable = undecodable;
    Ok(())
}

/// Sets `slot` to the value `value` reads when the column is `read` (else to `None`), writing
/// the text into the memory `slot` already holds where it holds one.
fn put<'a, E>(
    slot: &mut Option<Text>,
    read: bool,
    value: impl FnOnce() -> Result<Option<Cow<'a, str>>, E>,
) -> Result<(), E> {
    let value = if read { value()? } else { None };
    match (slot.as_mut(), value) {
        (Some(text), Some(value)) => {
            text.clear();
            text.push_str(&value);
        }
        (_, value) => *slot = value.map(Text::from),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_kept_and_other_bytes_need_source_encoding() {
        let nbsp = "A1\u{a0}".as_bytes();
        assert_eq!(decode(None, nbsp).as_deref(), Some("A1\u{a0}"));
        assert_eq!(decode(None, b"Ren\xe9"), None);
        let latin1 = "latin1".parse::<TextEncoding>().ok();
        assert_eq!(decode(latin1, b"Ren\xe9").as_deref(), Some("René"));
        // Valid UTF-8 stays UTF-8 whatever the fallback.
        assert_eq!(decode(latin1, "René".as_bytes()).as_deref(), Some("René"));
    }

    /// A value's `Debug` form is the same as a `String`'s: an invalid order's content digest
    /// (`transform::content_digest`) hashes the `Debug` form of its rows, and the ledger keeps
    /// digests taken when values were `String`s.
    #[test]
    fn text_values_debug_as_strings_did() {
        for value in [
            "",
            "R1",
            "a\"b\\c",
            "Ren\u{e9} \u{1f} \n",
            &"long ".repeat(20),
        ] {
            assert_eq!(
                format!("{:?}", Some(Text::from(value))),
                format!("{:?}", Some(value.to_owned()))
            );
        }
    }
}

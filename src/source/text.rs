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

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;

use super::{query, SourceRow};
use crate::config::{CustomerField, TextEncoding};

/// How a value that is not valid UTF-8 is decoded: `source.encoding`, if set.
pub type Fallback = Option<TextEncoding>;

/// `bytes` as text: UTF-8 when they are, else decoded with `fallback` (`None` without one, or
/// when the bytes are not that encoding either).
pub fn decode(fallback: Fallback, bytes: &[u8]) -> Option<String> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(text.to_owned());
    }
    fallback?.decode(bytes)
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

/// Decodes a row in `ReadQuery::read`'s output order. A value that cannot be decoded is kept
/// lossily (so that grouping and messages still work) and marks the row with its config key.
///
/// # Errors
/// A column whose type is not text, bytea, a float or a boolean where one is expected (a bug).
pub(super) fn decode_row(
    row: &Row,
    fallback: Fallback,
) -> Result<SourceRow, tokio_postgres::Error> {
    let mut undecodable: Option<&'static str> = None;
    let mut text = |i: usize, key: &'static str| -> Result<Option<String>, tokio_postgres::Error> {
        Ok(row.try_get::<_, Option<Raw<'_>>>(i)?.map(|Raw(bytes)| {
            decode(fallback, bytes).unwrap_or_else(|| {
                undecodable.get_or_insert(key);
                String::from_utf8_lossy(bytes).into_owned()
            })
        }))
    };
    let f = query::col::FIELDS;
    let last = row.len() - 1;
    let mut customer: [Option<String>; CustomerField::COUNT] = Default::default();
    for field in CustomerField::ALL {
        customer[field.index()] = text(f + 2 + field.index(), field.config_key())?;
    }
    let mut decoded = SourceRow {
        watermark: text(0, "source.watermark_column")?.unwrap_or_default(),
        key: text(1, "mapping.order_id")?.unwrap_or_default(),
        order_watermark: text(last - 1, "source.watermark_column")?.unwrap_or_default(),
        reread: row.try_get(last)?,
        ahead: row.try_get(2)?,
        row_watermark: text(query::col::ROW_WATERMARK, "source.watermark_column")?
            .unwrap_or_default(),
        order_id: text(query::col::ORDER_ID, "mapping.order_id")?,
        event_time: row.try_get(query::col::EPOCH)?,
        local_time: text(query::col::LOCAL_TIME, "mapping.event_time")?,
        value: text(f, "mapping.value")?,
        currency: text(f + 1, "mapping.currency")?,
        customer,
        item_id: text(f + 13, "mapping.item_id")?,
        item_quantity: text(f + 14, "mapping.item_quantity")?,
        item_price: text(f + 15, "mapping.item_price")?,
        store_id: text(f + 16, "mapping.store_id")?,
        timezone: text(f + 17, "mapping.timezone")?,
        dpo_country: text(f + 18, "mapping.data_processing_options_country")?,
        dpo_state: text(f + 19, "mapping.data_processing_options_state")?,
        opt_out: text(f + 20, "mapping.opt_out")?,
        delivery_category: text(f + 21, "mapping.delivery_category")?,
        data_processing_options: text(f + 22, "mapping.data_processing_options")?,
        item_line: text(f + 23, "mapping.item_line")?,
        undecodable: None,
    };
    decoded.undecodable = undecodable;
    Ok(decoded)
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
}

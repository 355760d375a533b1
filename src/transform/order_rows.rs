//! The rows of one order id: which of them are the order (the latest version, or every line),
//! and whether they disagree where they must agree.

use std::borrow::Cow;

use rust_decimal::Decimal;

use super::{decimal, nonblank, InvalidReason};
use crate::source::SourceRow;
use crate::transform::normalize::Field;

/// Without line items, the rows of one order id are versions of one order (an append-only
/// log) or copies of it (a `union all` of two tills): the rows with the latest watermark are the
/// order; older versions are ignored (a deterministic merge). With line items every row is a
/// line. Rows arrive sorted by their own watermark, so the latest are the last ones.
pub(crate) fn latest_version(rows: &[SourceRow], line_items: bool) -> &[SourceRow] {
    if line_items || rows.len() < 2 {
        return rows;
    }
    let last = &rows[rows.len() - 1].row_watermark;
    let from = rows
        .iter()
        .rposition(|r| &r.row_watermark != last)
        .map_or(0, |i| i + 1);
    &rows[from..]
}

/// Whether the rows of one order id disagree where they must agree: on the order's time,
/// value, currency, time zone and store always, and on every field when there are no line
/// items (then the rows are copies of one order, as a `union all` of two tills gives).
pub(super) fn conflict(rows: &[SourceRow], line_items: bool) -> Option<InvalidReason> {
    /// The order's own fields, as compared.
    type Header<'a> = (
        Option<u64>,
        Option<&'a str>,
        Option<&'a str>,
        Option<Decimal>,
        Option<String>,
        Option<&'a str>,
    );
    fn header(r: &SourceRow) -> Header<'_> {
        (
            r.event_time.map(f64::to_bits),
            r.local_time.as_deref(),
            nonblank(r.timezone.as_deref()),
            nonblank(r.value.as_deref()).and_then(decimal),
            nonblank(r.currency.as_deref()).map(str::to_ascii_uppercase),
            nonblank(r.store_id.as_deref()),
        )
    }
    /// The customer fields, as compared (case aside: `T@X.com` and `t@x.com ` hash alike).
    fn customer(r: &SourceRow) -> [Option<String>; Field::COUNT] {
        Field::ALL.map(|f| nonblank(r.customer(f)).map(str::to_lowercase))
    }
    let first = &rows[0];
    let disagree = rows[1..]
        .iter()
        .any(|r| header(r) != header(first) || (!line_items && customer(r) != customer(first)));
    disagree.then_some(InvalidReason::ConflictingRows)
}

/// The customer fields of an order: its first row's, and for line items each field's first
/// non-blank value among its lines (a view at line grain may carry them on some lines only).
pub(super) fn customer_row(rows: &[SourceRow], line_items: bool) -> Cow<'_, SourceRow> {
    let first = &rows[0];
    if !line_items || rows.len() == 1 {
        return Cow::Borrowed(first);
    }
    let mut row = first.clone();
    for other in &rows[1..] {
        for (mine, theirs) in row.customer.iter_mut().zip(&other.customer) {
            if nonblank(mine.as_deref()).is_none() && nonblank(theirs.as_deref()).is_some() {
                mine.clone_from(theirs);
            }
        }
    }
    Cow::Owned(row)
}

/// With `mapping.item_line`: one row per line of the order (the first of the rows with the same
/// line value, in read order; rows without a line value are each a line). A view that joins an
/// order's lines with something that has several rows per order (a customer's two emails)
/// repeats each line; its rows of one line must agree on the line's item, quantity and price,
/// compared as the transform reads them (trimmed, numbers by value).
///
/// # Errors
/// [`InvalidReason::LineItemIdDisagrees`], [`InvalidReason::LineQuantityDisagrees`] or
/// [`InvalidReason::LinePriceDisagrees`] for the first field on which two rows of one line
/// disagree.
pub(super) fn distinct_lines(rows: &[SourceRow]) -> Result<Vec<&SourceRow>, InvalidReason> {
    let number = |text: Option<&str>| {
        nonblank(text)
            .map(|t| decimal(t).map_or_else(|| t.to_owned(), |d| d.normalize().to_string()))
    };
    let mut lines: Vec<&SourceRow> = Vec::with_capacity(rows.len());
    for row in rows {
        let line = nonblank(row.item_line.as_deref());
        let same = line.and_then(|line| {
            lines
                .iter()
                .find(|l| nonblank(l.item_line.as_deref()) == Some(line))
        });
        let Some(first) = same else {
            lines.push(row);
            continue;
        };
        if nonblank(first.item_id.as_deref()) != nonblank(row.item_id.as_deref()) {
            return Err(InvalidReason::LineItemIdDisagrees);
        }
        if number(first.item_quantity.as_deref()) != number(row.item_quantity.as_deref()) {
            return Err(InvalidReason::LineQuantityDisagrees);
        }
        if number(first.item_price.as_deref()) != number(row.item_price.as_deref()) {
            return Err(InvalidReason::LinePriceDisagrees);
        }
    }
    Ok(lines)
}

/// With `mapping.item_line`: the order's customer fields with every distinct value its rows
/// hold (a view joined with a customer's two emails gives each on other rows), joined by
/// [`crate::source::VALUE_SEPARATOR`]; the hashing keeps each hashed value once.
pub(super) fn all_customer_values(rows: &[SourceRow]) -> Cow<'_, SourceRow> {
    let first = &rows[0];
    if rows.len() == 1 {
        return Cow::Borrowed(first);
    }
    let separator = crate::source::VALUE_SEPARATOR;
    let mut row = first.clone();
    for (index, slot) in row.customer.iter_mut().enumerate() {
        let mut values: Vec<&str> = Vec::new();
        for other in rows {
            let Some(text) = other.customer[index].as_deref() else {
                continue;
            };
            for value in text.split(separator) {
                if nonblank(Some(value)).is_some() && !values.contains(&value) {
                    values.push(value);
                }
            }
        }
        *slot = (!values.is_empty()).then(|| values.join(&separator.to_string()).into());
    }
    Cow::Owned(row)
}

/// The digest of an order's rows as read, without their watermarks (which a touch moves):
/// SHA-256, hex, of each row's fields in a fixed form, the rows' forms sorted (the order of rows
/// within an order is the database's). Used to tell an unchanged invalid or anonymous order
/// read again from a changed one (issue 22: a touch is not a change).
#[must_use]
pub fn content_digest(rows: &[SourceRow]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut forms: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{:?}",
                (
                    (
                        &r.key,
                        &r.order_id,
                        r.event_time.map(f64::to_bits),
                        &r.local_time
                    ),
                    (&r.value, &r.currency, &r.customer),
                    (&r.item_id, &r.item_quantity, &r.item_price, &r.item_line),
                    (&r.store_id, &r.timezone, &r.dpo_country, &r.dpo_state),
                    (&r.opt_out, &r.delivery_category, &r.data_processing_options),
                    r.undecodable,
                )
            )
        })
        .collect();
    forms.sort_unstable();
    let mut hasher = Sha256::new();
    for form in &forms {
        hasher.update(form.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

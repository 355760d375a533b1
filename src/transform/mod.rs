//! SourceRow → Event, or the reason a row cannot become one. Pure: no I/O, and the clock is a
//! parameter, so every rule is tested with tables of inputs and outputs.

pub mod hash;
pub mod normalize;
mod customer;
pub mod memo;
mod order_rows;
pub use order_rows::content_digest;
mod processing;
mod text;
mod time;

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::config::Config;
use crate::event::{Content, CustomData, Event, PHYSICAL_STORE, PURCHASE};
use crate::source::{SourceRow, Watermark};
use crate::Text;

use customer::{sufficient, user_data};
use normalize::Field;
pub(crate) use order_rows::latest_version;
use order_rows::{all_customer_values, conflict, customer_row, distinct_lines};
use processing::{boolean, processing};
pub use time::{event_time, row_zone};

/// Physical-store events may be up to 62 days old (docs/meta-capi.md decision 3).
pub use crate::config::MAX_EVENT_AGE_SECS as MAX_AGE_SECS;
/// ocapi never sends an event more than 5 minutes in the future (docs/meta-capi.md decision 3); such
/// an order is held until its time comes (up to `source.max_future` ahead).
pub(crate) const MAX_FUTURE_SECS: i64 = 5 * 60;
/// What is trimmed from both ends of an order id (the same set as the source read's SQL):
/// ASCII white space and the no-break space.
pub(crate) const ID_BLANKS: &[char] = &[' ', '\t', '\n', '\r', '\x0b', '\x0c', '\u{a0}'];

/// Longer order ids cannot be a ledger key (PostgreSQL's index rows are bounded) and are no
/// receipt number anyway.
pub(crate) const MAX_ORDER_ID_LEN: usize = 256;

/// Why a row cannot become an event. The text is stored in the ledger's `reason` column and is
/// stable, so reconciliation can group by it; it never holds customer data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidReason {
    /// No order id: the row cannot have a ledger row.
    MissingOrderId,
    /// An order id too long to be one.
    OrderIdTooLong,
    /// No event time.
    MissingEventTime,
    /// An event time that is not a real instant (infinity, NaN, out of range).
    EventTimeOutOfRange,
    /// Older than 62 days.
    TooOld,
    /// Further ahead than `source.max_future` (a time within it is held, not invalid).
    InFuture,
    /// A row's `mapping.timezone` value is not an IANA time zone.
    UnknownTimeZone,
    /// Rows with the same order id disagree on the order's time, value, currency, store or (for
    /// orders without line items) anything else.
    ConflictingRows,
    /// A negative total: a return or void booked in the sales table (docs/meta-capi.md: Meta has no
    /// refund event and documents no negative purchase value).
    NegativeValue,
    /// `data_processing_options` holds something other than `LDU`.
    UnknownProcessingOption,
    /// LDU without both `data_processing_options_country` and `_state` (docs/meta-capi.md §2).
    LduWithoutGeography,
    /// A country or state code Meta does not document.
    ProcessingGeographyOutOfRange,
    /// `opt_out` holds something that is not a boolean.
    InvalidOptOut,
    /// `delivery_category` outside Meta's set.
    InvalidDeliveryCategory,
    /// A held order whose rows are gone from the source by the time it was due.
    HeldOrderGone,
    /// No value and no line items to sum.
    MissingValue,
    /// A value that is not a finite number in range.
    InvalidValue,
    /// No currency and no default.
    MissingCurrency,
    /// Not an ISO 4217 code.
    InvalidCurrency,
    /// A line whose quantity or price is not a number.
    InvalidLineItem,
    /// Rows of one order and one `mapping.item_line` disagree on the item id.
    LineItemIdDisagrees,
    /// Rows of one order and one `mapping.item_line` disagree on the quantity.
    LineQuantityDisagrees,
    /// Rows of one order and one `mapping.item_line` disagree on the unit price.
    LinePriceDisagrees,
    /// Customer values were given, but none of them is usable (each was dropped), and there is
    /// no default country: a data problem.
    NoCustomerInformation,
    /// Only a combination Meta rejects as too broad (docs/meta-capi.md decision 5).
    InsufficientCustomerInformation,
    /// A value of this config key's column is neither UTF-8 nor `source.encoding` (a
    /// `SQL_ASCII` database holding another encoding's bytes).
    NotText(&'static str),
    /// A walk-in sale: the order's rows carry no customer value at all (a value that comes
    /// only from `[defaults]`, such as the country, does not count). Not a data problem: the
    /// ledger records it `anonymous`, outside `--max-invalid-ratio` ([`InvalidReason::is_anonymous`]).
    Anonymous,
}

impl InvalidReason {
    /// The stable ledger text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingOrderId => "missing order id",
            Self::OrderIdTooLong => "order id longer than 256 characters",
            Self::MissingEventTime => "missing event time",
            Self::EventTimeOutOfRange => "event time out of range",
            Self::TooOld => "event time more than 62 days old",
            Self::InFuture => "event time further ahead than source.max_future",
            Self::UnknownTimeZone => "time zone is not an IANA time zone name",
            Self::ConflictingRows => "rows of one order id disagree",
            Self::NegativeValue => "negative value (a return or void is not a purchase)",
            Self::UnknownProcessingOption => "data_processing_options other than LDU",
            Self::LduWithoutGeography => {
                "LDU without data_processing_options_country and data_processing_options_state"
            }
            Self::ProcessingGeographyOutOfRange => {
                "data_processing_options_country or _state is not a code Meta documents"
            }
            Self::InvalidOptOut => "opt_out is not a boolean",
            Self::InvalidDeliveryCategory => {
                "delivery_category is not in_store, curbside or home_delivery"
            }
            Self::HeldOrderGone => "held order no longer in the source",
            Self::MissingValue => "missing value",
            Self::InvalidValue => "value is not a valid number",
            Self::MissingCurrency => "missing currency",
            Self::InvalidCurrency => "currency is not an ISO 4217 code",
            Self::InvalidLineItem => {
                "line item quantity or price is not a valid number (a negative quantity is a return)"
            }
            Self::LineItemIdDisagrees => {
                "rows of one line (mapping.item_line) disagree on mapping.item_id"
            }
            Self::LineQuantityDisagrees => {
                "rows of one line (mapping.item_line) disagree on mapping.item_quantity"
            }
            Self::LinePriceDisagrees => {
                "rows of one line (mapping.item_line) disagree on mapping.item_price"
            }
            Self::NoCustomerInformation => "no usable customer information",
            Self::InsufficientCustomerInformation => "insufficient customer information",
            Self::NotText(key) => text::not_text_reason(key),
            Self::Anonymous => "no customer information",
        }
    }

    /// Whether the order is a walk-in sale (`anonymous` in the ledger), not an invalid one.
    pub fn is_anonymous(self) -> bool {
        self == Self::Anonymous
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order that cannot be sent, with what is known of it for the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The order id, when usable.
    pub order_id: Option<String>,
    /// Why.
    pub reason: InvalidReason,
    /// The event time, when known.
    pub event_time: Option<i64>,
    /// The value, when known.
    pub value: Option<Decimal>,
    /// The currency, when known.
    pub currency: Option<String>,
    /// The source watermark of the row's order.
    pub watermark: Watermark,
    /// The store, when `mapping.store_id` is mapped.
    pub store_id: Option<String>,
    /// Read again (at or before the stored watermark: a restart, the lookback), so an earlier
    /// run has counted it already ([`crate::source::SourceRow::reread`]).
    pub reread: bool,
    /// [`content_digest`] of its rows (set by the reader): a touch keeps it. `None`: no rows.
    pub digest: Option<String>,
}

/// A built event and the customer fields dropped on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The event.
    pub event: Event,
    /// Fields whose values could not be normalized (counted per field in the stats).
    pub dropped: Vec<Field>,
    /// The source watermark of the order.
    pub watermark: Watermark,
    /// The store, when `mapping.store_id` is mapped.
    pub store_id: Option<String>,
    /// When the event is more than [`MAX_FUTURE_SECS`] ahead: the unix time from which it may
    /// be sent. The order is held (not sent, not invalid) until then.
    pub held_until: Option<i64>,
    /// The order's watermark is ahead of the source database's clock.
    pub ahead: bool,
}

/// What the transform needs from the config, resolved once per run.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Rows sharing an order id are lines of one order.
    line_items: bool,
    /// `mapping.item_line` is mapped: rows of one order with the same line are one line.
    item_line: bool,
    /// Whether a value column is mapped.
    value_mapped: bool,
    /// Default currency, uppercase.
    default_currency: Option<String>,
    /// Default country, as configured (any accepted form).
    default_country: Option<String>,
    /// `normalize.hash_external_id`.
    hash_external_id: bool,
    /// `source.timezone`: how local event times are read where a row names no zone.
    timezone: chrono_tz::Tz,
    /// `source.max_future` in seconds.
    max_future_secs: i64,
    /// Whether `data_processing_options` is sent at all (mapped or defaulted).
    processing: bool,
    /// `defaults.data_processing_options`: LDU or not.
    default_ldu: Option<bool>,
    /// `defaults.data_processing_options_country`.
    default_dpo_country: Option<i64>,
    /// `defaults.data_processing_options_state`.
    default_dpo_state: Option<i64>,
    /// Whether `opt_out` is sent at all.
    opt_out: bool,
    /// `defaults.opt_out`.
    default_opt_out: Option<bool>,
    /// Whether `delivery_category` is sent at all.
    delivery: bool,
    /// `defaults.delivery_category`.
    default_delivery: Option<crate::config::DeliveryCategory>,
}

impl Rules {
    /// Resolves the transform rules from the config.
    pub fn from_config(config: &Config) -> Self {
        Self {
            line_items: config.mapping.has_line_items(),
            item_line: config.mapping.has_line_items() && config.mapping.item_line.is_some(),
            value_mapped: config.mapping.value.is_some(),
            default_currency: config
                .defaults
                .currency
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            default_country: config
                .defaults
                .country
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            hash_external_id: config.normalize.hash_external_id,
            timezone: config.source.timezone.tz(),
            max_future_secs: i64::try_from(config.source.max_future.as_secs())
                .unwrap_or(i64::MAX)
                .max(MAX_FUTURE_SECS),
            processing: config.mapping.data_processing_options.is_some()
                || config.defaults.data_processing_options.is_some(),
            default_ldu: config
                .defaults
                .data_processing_options
                .as_ref()
                .map(|options| !options.is_empty()),
            default_dpo_country: config.defaults.data_processing_options_country.map(|c| c.0),
            default_dpo_state: config.defaults.data_processing_options_state.map(|s| s.0),
            opt_out: config.mapping.opt_out.is_some() || config.defaults.opt_out.is_some(),
            default_opt_out: config.defaults.opt_out,
            delivery: config.mapping.delivery_category.is_some()
                || config.defaults.delivery_category.is_some(),
            default_delivery: config.defaults.delivery_category,
        }
    }
}

/// Splits a page into orders: consecutive rows with the same key (the order id as its column's
/// type compares it, trimmed, [`crate::source::IdKind`]) are one
/// order's rows: its lines, or, without line items, copies of one row (which must agree). Rows
/// without an order id are each their own (invalid) order.
pub fn orders(rows: &[SourceRow]) -> impl Iterator<Item = &[SourceRow]> {
    rows.chunk_by(|a, b| a.key == b.key && a.watermark == b.watermark && !a.key.is_empty())
}

/// Builds the event of one order (its rows), judged at unix time `now`.
#[allow(
    clippy::result_large_err,
    reason = "an Invalid is built once per bad order and moved into the page plan; boxing it \
              would allocate for every invalid row to save a copy"
)]
pub fn build(rows: &[SourceRow], rules: &Rules, now: i64) -> Result<Built, Invalid> {
    let rows = latest_version(rows, rules.line_items);
    let first = &rows[0];
    // What can be read of the order's value and currency, whatever else is wrong with it, so
    // that the ledger and `reconcile` show an invalid order's amount when it has one.
    let currency_read = match nonblank(first.currency.as_deref()) {
        Some(raw) => crate::config::currency_code(raw),
        None => rules.default_currency.as_deref().map(Text::from),
    };
    // With `mapping.item_line`, the rows of one line (a view that repeats them) count once.
    let lines_read = rules.line_items.then(|| {
        if rules.item_line {
            distinct_lines(rows).and_then(line_items)
        } else {
            line_items(rows)
        }
    });
    let value_read = value(
        first.value.as_deref(),
        rules.value_mapped,
        match &lines_read {
            Some(Ok(lines)) => Some(lines.totals.as_slice()),
            _ => None,
        },
    )
    .ok();
    let mut known = Known {
        first,
        order_id: None,
        event_time: None,
        value: value_read,
        currency: currency_read.as_deref(),
    };
    // The order's key (its id as the column's type compares it: `1001.0` in a numeric column
    // is `1001`) is its event id, its order id and its ledger key.
    let order_id = match first.order_id.as_deref() {
        Some(_) if !first.key.is_empty() => Some(first.key.as_str()),
        raw => raw.map(|id| id.trim_matches(ID_BLANKS)),
    };
    let order_id = match order_id {
        None | Some("") => return Err(known.invalid(InvalidReason::MissingOrderId)),
        Some(id) if id.chars().count() > MAX_ORDER_ID_LEN => {
            return Err(known.invalid(InvalidReason::OrderIdTooLong));
        }
        Some(id) => id,
    };
    known.order_id = Some(order_id);
    if let Some(key) = rows.iter().find_map(|row| row.undecodable) {
        return Err(known.invalid(InvalidReason::NotText(key)));
    }

    let event_time = event_time(first, rules.timezone).map_err(|reason| known.invalid(reason))?;
    known.event_time = Some(event_time);
    if let Some(reason) = conflict(rows, rules.line_items) {
        return Err(known.invalid(reason));
    }

    let currency = match (nonblank(first.currency.as_deref()), &currency_read) {
        (_, Some(currency)) => currency.clone(),
        (None, None) => return Err(known.invalid(InvalidReason::MissingCurrency)),
        (Some(_), None) => return Err(known.invalid(InvalidReason::InvalidCurrency)),
    };

    let lines = match lines_read {
        Some(lines) => Some(lines.map_err(|reason| known.invalid(reason))?),
        None => None,
    };
    let value = value(
        first.value.as_deref(),
        rules.value_mapped,
        lines.as_ref().map(|l| l.totals.as_slice()),
    )
    .map_err(|reason| known.invalid(reason))?;
    // A negative total, or a line of negative quantity, is a return: not a purchase.
    let returned = lines.as_ref().is_some_and(|l| l.returned);
    if returned || (value.is_sign_negative() && !value.is_zero()) {
        return Err(known.invalid(InvalidReason::NegativeValue));
    }
    let processing = processing(first, rules).map_err(|reason| known.invalid(reason))?;
    let opt_out = if rules.opt_out {
        match nonblank(first.opt_out.as_deref()) {
            None => rules.default_opt_out,
            Some(text) => {
                Some(boolean(text).ok_or_else(|| known.invalid(InvalidReason::InvalidOptOut))?)
            }
        }
    } else {
        None
    };
    let delivery_category = if rules.delivery {
        match nonblank(first.delivery_category.as_deref()) {
            None => rules
                .default_delivery
                .map(crate::config::DeliveryCategory::as_str),
            Some(text) => Some(
                crate::config::DeliveryCategory::parse(text)
                    .ok_or_else(|| known.invalid(InvalidReason::InvalidDeliveryCategory))?
                    .as_str(),
            ),
        }
    } else {
        None
    };

    if event_time < now - MAX_AGE_SECS {
        return Err(known.invalid(InvalidReason::TooOld));
    }
    if event_time > now.saturating_add(rules.max_future_secs) {
        return Err(known.invalid(InvalidReason::InFuture));
    }
    let held_until = (event_time > now + MAX_FUTURE_SECS).then(|| event_time - MAX_FUTURE_SECS);

    let customer = if rules.item_line {
        all_customer_values(rows)
    } else {
        customer_row(rows, rules.line_items)
    };
    let (user_data, dropped, carried) = user_data(&customer, rules, now);
    if !carried {
        return Err(known.invalid(InvalidReason::Anonymous));
    }
    sufficient(&user_data).map_err(|reason| known.invalid(reason))?;

    let (contents, num_items) = match lines {
        Some(lines) => {
            let num_items = lines.contents.iter().map(|c| c.quantity).sum();
            (Some(lines.contents), Some(num_items))
        }
        None => (None, None),
    };
    let content_type = contents.as_ref().map(|_| "product".to_owned());
    let event = Event {
        event_name: PURCHASE,
        event_time,
        event_id: order_id.into(),
        action_source: PHYSICAL_STORE,
        user_data,
        custom_data: CustomData {
            value,
            currency,
            order_id: order_id.into(),
            contents,
            num_items,
            content_type,
            delivery_category,
        },
        opt_out,
        data_processing_options: processing.map(|p| p.options),
        data_processing_options_country: processing.and_then(|p| p.country),
        data_processing_options_state: processing.and_then(|p| p.state),
    };
    Ok(Built {
        event,
        dropped,
        watermark: first.order_watermark.clone(),
        store_id: store_id(first),
        held_until,
        ahead: first.ahead,
    })
}

/// What is known of an order while it is being built, borrowed from the row. It becomes an owned
/// [`Invalid`] only when the order fails, so a valid order copies nothing for the ledger's
/// `invalid` record (three allocations per row saved).
struct Known<'a> {
    /// The order's first row.
    first: &'a SourceRow,
    /// The trimmed order id, once checked.
    order_id: Option<&'a str>,
    /// The event time, once checked.
    event_time: Option<i64>,
    /// The value, once checked.
    value: Option<Decimal>,
    /// The currency, once checked.
    currency: Option<&'a str>,
}

impl Known<'_> {
    /// The ledger's record of the order failing for `reason`.
    fn invalid(&self, reason: InvalidReason) -> Invalid {
        Invalid {
            order_id: self.order_id.map(str::to_owned),
            reason,
            event_time: self.event_time,
            value: self.value,
            currency: self.currency.map(str::to_owned),
            watermark: self.first.order_watermark.clone(),
            store_id: store_id(self.first),
            reread: self.first.reread,
            digest: None,
        }
    }
}

/// The row's store id, when mapped and not blank.
fn store_id(row: &SourceRow) -> Option<String> {
    nonblank(row.store_id.as_deref()).map(str::to_owned)
}

/// `None` for NULL, empty and whitespace-only text.
fn nonblank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Parses a decimal from PostgreSQL's text form of numeric, float or integer values.
fn decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

/// The order value: the mapped total, else the sum of quantity × price of the lines.
fn value(
    raw: Option<&str>,
    mapped: bool,
    line_totals: Option<&[Decimal]>,
) -> Result<Decimal, InvalidReason> {
    if mapped {
        if let Some(raw) = nonblank(raw) {
            return decimal(raw)
                .map(|v| v.normalize())
                .ok_or(InvalidReason::InvalidValue);
        }
    }
    let Some(totals) = line_totals else {
        return Err(InvalidReason::MissingValue);
    };
    totals
        .iter()
        .try_fold(Decimal::ZERO, |sum, t| sum.checked_add(*t))
        .map(|v| v.normalize())
        .ok_or(InvalidReason::InvalidValue)
}

/// An order's lines: what is sent as `contents`, and each line's exact total.
struct Lines {
    /// One per line with an item id.
    contents: Vec<Content>,
    /// Quantity × unit price of each line, exact.
    totals: Vec<Decimal>,
    /// A line has a negative quantity: the order returns goods.
    returned: bool,
}

/// The order's lines; lines without an item id are skipped.
///
/// Meta's `contents[].quantity` is an integer: a line sold by weight or length (1.5 kg at 4.00)
/// is sent as quantity 1 at its line total (6.00), so `contents` still add up to the order's
/// value, which is summed exactly from quantity × unit price.
fn line_items<'a>(
    rows: impl IntoIterator<Item = &'a SourceRow, IntoIter: ExactSizeIterator>,
) -> Result<Lines, InvalidReason> {
    let rows = rows.into_iter();
    let mut lines = Lines {
        contents: Vec::with_capacity(rows.len()),
        totals: Vec::with_capacity(rows.len()),
        returned: false,
    };
    for row in rows {
        let Some(id) = nonblank(row.item_id.as_deref()) else {
            continue;
        };
        let quantity = nonblank(row.item_quantity.as_deref())
            .and_then(decimal)
            .ok_or(InvalidReason::InvalidLineItem)?;
        lines.returned |= quantity.is_sign_negative() && !quantity.is_zero();
        let item_price = nonblank(row.item_price.as_deref())
            .and_then(decimal)
            .ok_or(InvalidReason::InvalidLineItem)?;
        let total = quantity
            .checked_mul(item_price)
            .ok_or(InvalidReason::InvalidLineItem)?
            .normalize();
        let content = match i64::try_from(quantity)
            .ok()
            .filter(|_| quantity.fract().is_zero())
        {
            Some(quantity) => Content {
                id: id.to_owned(),
                quantity,
                item_price: item_price.normalize(),
            },
            None => Content {
                id: id.to_owned(),
                quantity: 1,
                item_price: total,
            },
        };
        lines.contents.push(content);
        lines.totals.push(total);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;

//! SourceRow → Event, or the reason a row cannot become one. Pure: no I/O, and the clock is a
//! parameter, so every rule is tested with tables of inputs and outputs.

pub mod hash;
pub mod normalize;

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::config::Config;
use crate::event::{Content, CustomData, Event, UserData, PHYSICAL_STORE, PURCHASE};
use crate::source::SourceRow;
use hash::{hash_value, Hashed};
use normalize::{Context, Field};

/// Physical-store events may be up to 62 days old (meta-capi.md decision 3).
pub const MAX_AGE_SECS: i64 = 62 * 24 * 3600;
/// ocapi never sends an event more than 5 minutes in the future (meta-capi.md decision 3).
pub const MAX_FUTURE_SECS: i64 = 5 * 60;
/// Longer order ids cannot be a ledger key (PostgreSQL's index rows are bounded) and are no
/// receipt number anyway.
pub const MAX_ORDER_ID_LEN: usize = 256;

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
    /// More than 5 minutes ahead.
    InFuture,
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
    /// No user_data key at all.
    NoCustomerInformation,
    /// Only a combination Meta rejects as too broad (meta-capi.md decision 5).
    InsufficientCustomerInformation,
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
            Self::InFuture => "event time more than 5 minutes in the future",
            Self::MissingValue => "missing value",
            Self::InvalidValue => "value is not a valid number",
            Self::MissingCurrency => "missing currency",
            Self::InvalidCurrency => "currency is not an ISO 4217 code",
            Self::InvalidLineItem => "line item quantity or price is not a valid number",
            Self::NoCustomerInformation => "no customer information",
            Self::InsufficientCustomerInformation => "insufficient customer information",
        }
    }

    /// Whether the row can have a ledger row (it needs a usable order id).
    pub fn has_ledger_row(self) -> bool {
        !matches!(self, Self::MissingOrderId | Self::OrderIdTooLong)
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
    /// The source watermark of the row.
    pub watermark: String,
    /// The store, when `mapping.store_id` is mapped.
    pub store_id: Option<String>,
}

/// A built event and the customer fields dropped on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The event.
    pub event: Event,
    /// Fields whose values could not be normalized (counted per field in the stats).
    pub dropped: Vec<Field>,
    /// The source watermark of the order.
    pub watermark: String,
    /// The store, when `mapping.store_id` is mapped.
    pub store_id: Option<String>,
}

/// What the transform needs from the config, resolved once per run.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Rows sharing an order id are lines of one order.
    line_items: bool,
    /// Whether a value column is mapped.
    value_mapped: bool,
    /// Default currency, uppercase.
    default_currency: Option<String>,
    /// Default country, as configured (any accepted form).
    default_country: Option<String>,
    /// `normalize.hash_external_id`.
    hash_external_id: bool,
}

impl Rules {
    /// Resolves the transform rules from the config.
    pub fn from_config(config: &Config) -> Self {
        Self {
            line_items: config.mapping.has_line_items(),
            value_mapped: config.mapping.value.is_some(),
            default_currency: config.defaults.currency.as_deref().and_then(currency_code),
            default_country: config.defaults.country.clone(),
            hash_external_id: config.normalize.hash_external_id,
        }
    }
}

/// ISO 4217 code, uppercase, or `None`.
pub fn currency_code(raw: &str) -> Option<String> {
    let upper = raw.trim().to_ascii_uppercase();
    iso_currency::Currency::from_code(&upper).map(|_| upper)
}

/// Splits a page into orders: consecutive rows with the same key are one order's lines (or,
/// without line items, duplicates of one row, of which the first counts). Rows without an
/// order id are each their own (invalid) order.
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
    let first = &rows[0];
    let mut known = Known {
        first,
        order_id: None,
        event_time: None,
        value: None,
        currency: None,
    };
    let order_id = match first.order_id.as_deref().map(str::trim) {
        None | Some("") => return Err(known.invalid(InvalidReason::MissingOrderId)),
        Some(id) if id.chars().count() > MAX_ORDER_ID_LEN => {
            return Err(known.invalid(InvalidReason::OrderIdTooLong));
        }
        Some(id) => id,
    };
    known.order_id = Some(order_id);

    let event_time = event_time(first.event_time).map_err(|reason| known.invalid(reason))?;
    known.event_time = Some(event_time);

    let currency = match nonblank(first.currency.as_deref()) {
        Some(raw) => currency_code(raw),
        None => match &rules.default_currency {
            Some(default) => Some(default.clone()),
            None => return Err(known.invalid(InvalidReason::MissingCurrency)),
        },
    };
    let Some(currency) = currency else {
        return Err(known.invalid(InvalidReason::InvalidCurrency));
    };
    known.currency = Some(&currency);

    let contents = if rules.line_items {
        Some(line_items(rows).map_err(|reason| known.invalid(reason))?)
    } else {
        None
    };
    let value = value(
        first.value.as_deref(),
        rules.value_mapped,
        contents.as_deref(),
    )
    .map_err(|reason| known.invalid(reason))?;
    known.value = Some(value);

    if event_time < now - MAX_AGE_SECS {
        return Err(known.invalid(InvalidReason::TooOld));
    }
    if event_time > now + MAX_FUTURE_SECS {
        return Err(known.invalid(InvalidReason::InFuture));
    }

    let (user_data, dropped) = user_data(first, rules);
    sufficient(&user_data).map_err(|reason| known.invalid(reason))?;

    let num_items = contents
        .as_ref()
        .map(|c| c.iter().map(|c| c.quantity).sum());
    let content_type = contents.as_ref().map(|_| "product".to_owned());
    let event = Event {
        event_name: PURCHASE,
        event_time,
        event_id: order_id.to_owned(),
        action_source: PHYSICAL_STORE,
        user_data,
        custom_data: CustomData {
            value,
            currency,
            order_id: order_id.to_owned(),
            contents,
            num_items,
            content_type,
        },
    };
    Ok(Built {
        event,
        dropped,
        watermark: first.watermark.clone(),
        store_id: store_id(first),
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
            watermark: self.first.watermark.clone(),
            store_id: store_id(self.first),
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

/// Unix seconds from the source's float epoch, rejecting what is not a real instant.
fn event_time(epoch: Option<f64>) -> Result<i64, InvalidReason> {
    let epoch = epoch.ok_or(InvalidReason::MissingEventTime)?;
    // Year 0..=9999 bounds what Meta (and any receipt) can mean.
    if !epoch.is_finite() || !(-62_167_219_200.0..=253_402_300_799.0).contains(&epoch) {
        return Err(InvalidReason::EventTimeOutOfRange);
    }
    Ok(epoch.floor() as i64)
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
    contents: Option<&[Content]>,
) -> Result<Decimal, InvalidReason> {
    if mapped {
        if let Some(raw) = nonblank(raw) {
            return decimal(raw)
                .map(|v| v.normalize())
                .ok_or(InvalidReason::InvalidValue);
        }
    }
    let Some(contents) = contents else {
        return Err(InvalidReason::MissingValue);
    };
    contents
        .iter()
        .try_fold(Decimal::ZERO, |sum, c| {
            Decimal::from(c.quantity)
                .checked_mul(c.item_price)
                .and_then(|v| sum.checked_add(v))
        })
        .map(|v| v.normalize())
        .ok_or(InvalidReason::InvalidValue)
}

/// The order's lines; lines without an item id are skipped.
fn line_items(rows: &[SourceRow]) -> Result<Vec<Content>, InvalidReason> {
    let mut contents = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(id) = nonblank(row.item_id.as_deref()) else {
            continue;
        };
        let quantity = nonblank(row.item_quantity.as_deref())
            .and_then(decimal)
            .filter(|q| q.fract().is_zero())
            .and_then(|q| i64::try_from(q).ok())
            .ok_or(InvalidReason::InvalidLineItem)?;
        let item_price = nonblank(row.item_price.as_deref())
            .and_then(decimal)
            .ok_or(InvalidReason::InvalidLineItem)?
            .normalize();
        contents.push(Content {
            id: id.to_owned(),
            quantity,
            item_price,
        });
    }
    Ok(contents)
}

/// Normalizes and hashes every mapped customer field; returns the fields dropped.
fn user_data(row: &SourceRow, rules: &Rules) -> (UserData, Vec<Field>) {
    let country = nonblank(row.country.as_deref()).or(rules.default_country.as_deref());
    let ctx = Context { country };
    let fields = [
        (Field::Em, row.email.as_deref()),
        (Field::Ph, row.phone.as_deref()),
        (Field::Fn, row.first_name.as_deref()),
        (Field::Ln, row.last_name.as_deref()),
        (Field::Ge, row.gender.as_deref()),
        (Field::Db, row.date_of_birth.as_deref()),
        (Field::Ct, row.city.as_deref()),
        (Field::St, row.state.as_deref()),
        (Field::Zp, row.zip.as_deref()),
        (Field::Country, country),
        (Field::ExternalId, row.external_id.as_deref()),
    ];
    let mut user_data = UserData::default();
    let mut dropped = Vec::new();
    for (field, raw) in fields {
        let Some(raw) = raw else { continue };
        match hash_value(field, raw, &ctx, rules.hash_external_id) {
            Hashed::Value(value) => {
                if let Some(slot) = user_data.value_mut(field.key()) {
                    *slot = Some(value);
                }
            }
            Hashed::Empty => {}
            Hashed::Dropped => dropped.push(field),
        }
    }
    (user_data, dropped)
}

/// Meta rejects events whose customer data is only one of these combinations or a subset of
/// one (meta-capi.md decision 5).
const TOO_BROAD: [&[&str]; 4] = [
    &["ct", "country", "st", "zp", "ge"],
    &["db"],
    &["fn", "ge"],
    &["ln", "ge"],
];

/// Checks that the customer data can identify someone. Runs once per order, so it checks the
/// present keys in place rather than collecting them (an allocation per row).
fn sufficient(user_data: &UserData) -> Result<(), InvalidReason> {
    if user_data.present_keys().next().is_none() {
        return Err(InvalidReason::NoCustomerInformation);
    }
    if TOO_BROAD
        .iter()
        .any(|combo| user_data.present_keys().all(|k| combo.contains(&k)))
    {
        return Err(InvalidReason::InsufficientCustomerInformation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::UserValue;

    const NOW: i64 = 1_780_000_000;

    fn rules() -> Rules {
        Rules {
            line_items: false,
            value_mapped: true,
            default_currency: Some("USD".to_owned()),
            default_country: Some("US".to_owned()),
            hash_external_id: true,
        }
    }

    fn row() -> SourceRow {
        SourceRow {
            watermark: "w".to_owned(),
            key: "R1".to_owned(),
            order_id: Some("R1".to_owned()),
            event_time: Some((NOW - 3600) as f64),
            value: Some("12.50".to_owned()),
            email: Some("A@Example.com".to_owned()),
            ..SourceRow::default()
        }
    }

    fn reason(row: SourceRow) -> InvalidReason {
        build(&[row], &rules(), NOW).unwrap_err().reason
    }

    #[test]
    fn a_valid_row_becomes_a_purchase_event() {
        let built = build(&[row()], &rules(), NOW).unwrap();
        let e = &built.event;
        assert_eq!(e.event_name, "Purchase");
        assert_eq!(e.action_source, "physical_store");
        assert_eq!(e.event_id, "R1");
        assert_eq!(e.event_time, NOW - 3600);
        assert_eq!(e.custom_data.value, Decimal::new(125, 1));
        assert_eq!(e.custom_data.currency, "USD");
        assert_eq!(
            e.user_data.em,
            Some(UserValue::Digest(hash::sha256("a@example.com")))
        );
        assert_eq!(
            e.user_data.country,
            Some(UserValue::Digest(hash::sha256("us")))
        );
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(json["custom_data"]["value"], serde_json::json!(12.5));
    }

    #[test]
    fn every_invalid_reason_is_detected() {
        let cases = [
            (
                SourceRow {
                    order_id: None,
                    ..row()
                },
                InvalidReason::MissingOrderId,
            ),
            (
                SourceRow {
                    order_id: Some(" ".into()),
                    ..row()
                },
                InvalidReason::MissingOrderId,
            ),
            (
                SourceRow {
                    order_id: Some("x".repeat(300)),
                    ..row()
                },
                InvalidReason::OrderIdTooLong,
            ),
            (
                SourceRow {
                    event_time: None,
                    ..row()
                },
                InvalidReason::MissingEventTime,
            ),
            (
                SourceRow {
                    event_time: Some(f64::INFINITY),
                    ..row()
                },
                InvalidReason::EventTimeOutOfRange,
            ),
            (
                SourceRow {
                    event_time: Some(f64::NAN),
                    ..row()
                },
                InvalidReason::EventTimeOutOfRange,
            ),
            (
                SourceRow {
                    event_time: Some((NOW - 63 * 86400) as f64),
                    ..row()
                },
                InvalidReason::TooOld,
            ),
            (
                SourceRow {
                    event_time: Some((NOW + 301) as f64),
                    ..row()
                },
                InvalidReason::InFuture,
            ),
            (
                SourceRow {
                    value: None,
                    ..row()
                },
                InvalidReason::MissingValue,
            ),
            (
                SourceRow {
                    value: Some("NaN".into()),
                    ..row()
                },
                InvalidReason::InvalidValue,
            ),
            (
                SourceRow {
                    value: Some("1e400".into()),
                    ..row()
                },
                InvalidReason::InvalidValue,
            ),
            (
                SourceRow {
                    currency: Some("XYZ".into()),
                    ..row()
                },
                InvalidReason::InvalidCurrency,
            ),
            (
                SourceRow {
                    email: None,
                    ..row()
                },
                InvalidReason::InsufficientCustomerInformation,
            ),
            (
                SourceRow {
                    email: Some("not-an-email".into()),
                    ..row()
                },
                InvalidReason::InsufficientCustomerInformation,
            ),
        ];
        for (row, expected) in cases {
            assert_eq!(reason(row.clone()), expected, "{row:?}");
        }
        let mut no_country = rules();
        no_country.default_country = None;
        let error = build(
            &[SourceRow {
                email: None,
                ..row()
            }],
            &no_country,
            NOW,
        )
        .unwrap_err();
        assert_eq!(error.reason, InvalidReason::NoCustomerInformation);
    }

    #[test]
    fn a_dropped_email_is_counted_not_fatal() {
        let row = SourceRow {
            email: Some("nope".into()),
            phone: Some("+1 650 555 1212".into()),
            ..row()
        };
        let built = build(&[row], &rules(), NOW).unwrap();
        assert!(built.event.user_data.em.is_none());
        assert_eq!(built.dropped, vec![Field::Em]);
    }

    #[test]
    fn line_items_become_contents_and_sum_to_the_value() {
        let mut rules = rules();
        rules.line_items = true;
        rules.value_mapped = false;
        let line = |sku: &str, qty: &str, price: &str| SourceRow {
            item_id: Some(sku.into()),
            item_quantity: Some(qty.into()),
            item_price: Some(price.into()),
            value: None,
            ..row()
        };
        let rows = [line("A", "2", "5.00"), line("B", "1", "2.5")];
        let event = build(&rows, &rules, NOW).unwrap().event;
        assert_eq!(event.custom_data.value, Decimal::new(125, 1));
        assert_eq!(event.custom_data.num_items, Some(3));
        let contents = event.custom_data.contents.unwrap();
        assert_eq!(
            contents[0],
            Content {
                id: "A".into(),
                quantity: 2,
                item_price: Decimal::new(5, 0)
            }
        );
        let bad = [line("A", "two", "5.00")];
        assert_eq!(
            build(&bad, &rules, NOW).unwrap_err().reason,
            InvalidReason::InvalidLineItem
        );
    }

    #[test]
    fn rows_are_grouped_by_key_but_null_ids_stay_apart() {
        let r = |key: &str| SourceRow {
            key: key.into(),
            ..row()
        };
        let rows = [r("A"), r("A"), r(""), r(""), r("B")];
        let groups: Vec<usize> = orders(&rows).map(<[SourceRow]>::len).collect();
        assert_eq!(groups, vec![2, 1, 1, 1]);
    }
}

//! The customer side of an order: its customer fields gathered from its rows, normalized,
//! hashed into `user_data`, and checked to be enough for Meta to match (docs/meta-capi.md).

use super::{InvalidReason, Rules};
use crate::config::CustomerField;
use crate::event::UserData;
use crate::source::SourceRow;
use crate::transform::hash::Hashed;
use crate::transform::memo::hash_value_memo;
use crate::transform::normalize::{Context, Field};

/// Normalizes and hashes every mapped customer field; returns the fields dropped (once per
/// unusable value), and whether the row carried any customer value of its own (usable or not;
/// the default country is not the row's: an order without one is a walk-in sale). A field may hold several values (several columns, or an array), joined by
/// [`crate::source::VALUE_SEPARATOR`]: each is normalized and hashed on its own, and duplicates
/// after normalization are sent once. `now` (unix seconds, the run's clock) gives the year that
/// bounds plausible birth dates.
pub(super) fn user_data(row: &SourceRow, rules: &Rules, now: i64) -> (UserData, Vec<Field>, bool) {
    let row_country = row.customer(Field::Country).and_then(|t| {
        t.split(crate::source::VALUE_SEPARATOR)
            .map(str::trim)
            .find(|v| !v.is_empty())
    });
    let country = row_country.or(rules.default_country.as_deref());
    let year = chrono::DateTime::from_timestamp(now, 0).map(|t| chrono::Datelike::year(&t));
    let ctx = Context { country, year };
    // The country field: the row's values, else the default.
    let countries = if row_country.is_some() {
        row.customer(Field::Country)
    } else {
        rules.default_country.as_deref()
    };
    let fields = Field::ALL.map(|f| match f {
        Field::Country => (f, countries),
        _ => (f, row.customer(f)),
    });
    let mut user_data = UserData::default();
    let mut dropped = Vec::new();
    let mut carried = false;
    for (field, raw) in fields {
        let Some(raw) = raw else { continue };
        let own = field != Field::Country || row_country.is_some();
        for raw in raw.split(crate::source::VALUE_SEPARATOR) {
            let hashed = hash_value_memo(field, raw, &ctx, rules.hash_external_id);
            carried |= own && hashed != Hashed::Empty;
            match hashed {
                Hashed::Value(value) => user_data.add(field, value),
                Hashed::Empty => {}
                Hashed::Dropped => dropped.push(field),
            }
        }
    }
    (user_data, dropped, carried)
}

/// Meta rejects events whose customer data is only one of these combinations or a subset of
/// one (docs/meta-capi.md decision 5), as sets of fields ([`UserData::present_set`]).
const TOO_BROAD: [u16; 4] = {
    use CustomerField::{Country, Ct, Db, Fn, Ge, Ln, St, Zp};
    [
        set_of(&[Ct, Country, St, Zp, Ge]),
        set_of(&[Db]),
        set_of(&[Fn, Ge]),
        set_of(&[Ln, Ge]),
    ]
};

/// The set of `fields`, a bit per [`CustomerField::index`].
const fn set_of(fields: &[CustomerField]) -> u16 {
    let mut set = 0;
    let mut i = 0;
    while i < fields.len() {
        set |= 1 << fields[i] as u16;
        i += 1;
    }
    set
}

/// Checks that the customer data can identify someone. Runs once per order, so it compares
/// sets of fields rather than their keys (nine text comparisons per order, ~1% of a run's
/// instructions on fully populated rows, issue 24).
pub(super) fn sufficient(user_data: &UserData) -> Result<(), InvalidReason> {
    let present = user_data.present_set();
    if present == 0 {
        return Err(InvalidReason::NoCustomerInformation);
    }
    if TOO_BROAD.iter().any(|&combo| present & !combo == 0) {
        return Err(InvalidReason::InsufficientCustomerInformation);
    }
    Ok(())
}

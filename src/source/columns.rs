//! The read's columns by name: [`INNER`], one list that both the select list
//! (`query::select_list`) and the decoder (`text::decode_row`) walk, so that no column's
//! position is written down anywhere. A new field of [`SourceRow`] is one [`Field`] variant
//! (its `[mapping]` key, its place in the row) and one entry here; a new customer field needs
//! nothing here at all (every variant of [`CustomerField::ALL`] is in the list).

use super::SourceRow;
use crate::config::{CustomerField, Mapping};

/// The columns before [`INNER`] in the read's output: the order's watermark (capped), the
/// order's key, whether the order is ahead of the clock. After [`INNER`] come the order's
/// uncapped watermark and whether it was read again (`query::ReadQuery::read_after`).
pub(crate) const LEADING: usize = 3;

/// What one inner column of the read holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The row's own watermark (canonical text).
    RowWatermark,
    /// The order id as its column holds it, as text.
    OrderId,
    /// The event time in unix seconds (`timestamptz` and epoch kinds): a float, the one column
    /// that is not text.
    Epoch,
    /// The local event time as text (`timestamp` and `date` kinds).
    LocalTime,
    /// A customer field's values (several joined by `query::VALUE_SEPARATOR`).
    Customer(CustomerField),
    /// Another `[mapping]` field, one column read as text.
    Field(Field),
}

impl Role {
    /// Whether the read has a column for it under mapping `m`: always, but for a customer
    /// field or another `[mapping]` field that is not mapped, which the read selects as a
    /// constant null and the decoder skips (11 of the 28 inner columns of a mapping with every
    /// customer field; each cost a type check and a lookup per row, issue 24).
    pub(crate) fn is_read(self, m: &Mapping) -> bool {
        match self {
            Self::Customer(field) => m.customer(field).is_some(),
            Self::Field(field) => field.column(m).is_some(),
            Self::RowWatermark | Self::OrderId | Self::Epoch | Self::LocalTime => true,
        }
    }

    /// The config key its value comes from: the one an undecodable value is reported under.
    pub(crate) fn config_key(self) -> &'static str {
        match self {
            Self::RowWatermark => "source.watermark_column",
            Self::OrderId => "mapping.order_id",
            Self::Epoch | Self::LocalTime => "mapping.event_time",
            Self::Customer(field) => field.config_key(),
            Self::Field(field) => field.config_key(),
        }
    }
}

/// A `[mapping]` field other than the order id, the event time and the customer fields: one
/// column, read as text into its [`SourceRow`] field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// `mapping.value`.
    Value,
    /// `mapping.currency`.
    Currency,
    /// `mapping.item_id`.
    ItemId,
    /// `mapping.item_quantity`.
    ItemQuantity,
    /// `mapping.item_price`.
    ItemPrice,
    /// `mapping.store_id`.
    StoreId,
    /// `mapping.timezone`.
    Timezone,
    /// `mapping.data_processing_options_country`.
    DpoCountry,
    /// `mapping.data_processing_options_state`.
    DpoState,
    /// `mapping.opt_out`.
    OptOut,
    /// `mapping.delivery_category`.
    DeliveryCategory,
    /// `mapping.data_processing_options`.
    DataProcessingOptions,
    /// `mapping.item_line`.
    ItemLine,
}

impl Field {
    /// Every field, in the read's order.
    pub(crate) const ALL: [Field; 13] = [
        Self::Value,
        Self::Currency,
        Self::ItemId,
        Self::ItemQuantity,
        Self::ItemPrice,
        Self::StoreId,
        Self::Timezone,
        Self::DpoCountry,
        Self::DpoState,
        Self::OptOut,
        Self::DeliveryCategory,
        Self::DataProcessingOptions,
        Self::ItemLine,
    ];

    /// The dotted config key.
    pub(crate) fn config_key(self) -> &'static str {
        match self {
            Self::Value => "mapping.value",
            Self::Currency => "mapping.currency",
            Self::ItemId => "mapping.item_id",
            Self::ItemQuantity => "mapping.item_quantity",
            Self::ItemPrice => "mapping.item_price",
            Self::StoreId => "mapping.store_id",
            Self::Timezone => "mapping.timezone",
            Self::DpoCountry => "mapping.data_processing_options_country",
            Self::DpoState => "mapping.data_processing_options_state",
            Self::OptOut => "mapping.opt_out",
            Self::DeliveryCategory => "mapping.delivery_category",
            Self::DataProcessingOptions => "mapping.data_processing_options",
            Self::ItemLine => "mapping.item_line",
        }
    }

    /// The column it is mapped to, if any.
    pub(crate) fn column(self, m: &Mapping) -> Option<&str> {
        match self {
            Self::Value => &m.value,
            Self::Currency => &m.currency,
            Self::ItemId => &m.item_id,
            Self::ItemQuantity => &m.item_quantity,
            Self::ItemPrice => &m.item_price,
            Self::StoreId => &m.store_id,
            Self::Timezone => &m.timezone,
            Self::DpoCountry => &m.data_processing_options_country,
            Self::DpoState => &m.data_processing_options_state,
            Self::OptOut => &m.opt_out,
            Self::DeliveryCategory => &m.delivery_category,
            Self::DataProcessingOptions => &m.data_processing_options,
            Self::ItemLine => &m.item_line,
        }
        .as_deref()
    }

    /// Its place in a row.
    pub(crate) fn slot(self, row: &mut SourceRow) -> &mut Option<super::Text> {
        match self {
            Self::Value => &mut row.value,
            Self::Currency => &mut row.currency,
            Self::ItemId => &mut row.item_id,
            Self::ItemQuantity => &mut row.item_quantity,
            Self::ItemPrice => &mut row.item_price,
            Self::StoreId => &mut row.store_id,
            Self::Timezone => &mut row.timezone,
            Self::DpoCountry => &mut row.dpo_country,
            Self::DpoState => &mut row.dpo_state,
            Self::OptOut => &mut row.opt_out,
            Self::DeliveryCategory => &mut row.delivery_category,
            Self::DataProcessingOptions => &mut row.data_processing_options,
            Self::ItemLine => &mut row.item_line,
        }
    }
}

/// How many inner columns there are.
pub(crate) const WIDTH: usize = 4 + CustomerField::COUNT + Field::ALL.len();

/// The inner columns, in the read's order: the row's watermark, the order id, the event time
/// (two columns, one per kind), then every [`Field`] with the customer fields after the
/// currency (in [`CustomerField::ALL`]'s order).
pub(crate) const INNER: [Role; WIDTH] = inner();

/// Which of [`INNER`]'s columns the read under mapping `m` has ([`Role::is_read`]), in its
/// order.
pub(crate) fn read_under(m: &Mapping) -> [bool; WIDTH] {
    INNER.map(|role| role.is_read(m))
}

/// Builds [`INNER`] from [`CustomerField::ALL`] and [`Field::ALL`].
const fn inner() -> [Role; WIDTH] {
    let mut list = [Role::Epoch; WIDTH];
    list[0] = Role::RowWatermark;
    list[1] = Role::OrderId;
    list[2] = Role::Epoch;
    list[3] = Role::LocalTime;
    let mut at = 4;
    let mut i = 0;
    while i < Field::ALL.len() {
        list[at] = Role::Field(Field::ALL[i]);
        at += 1;
        if matches!(Field::ALL[i], Field::Currency) {
            let mut c = 0;
            while c < CustomerField::COUNT {
                list[at] = Role::Customer(CustomerField::ALL[c]);
                at += 1;
                c += 1;
            }
        }
        i += 1;
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_is_read_once() {
        for (i, role) in INNER.iter().enumerate() {
            assert_eq!(
                INNER.iter().filter(|r| *r == role).count(),
                1,
                "{role:?} at {i}"
            );
        }
        for field in CustomerField::ALL {
            assert!(INNER.contains(&Role::Customer(field)), "{field:?}");
        }
        for field in Field::ALL {
            assert!(INNER.contains(&Role::Field(field)), "{field:?}");
        }
    }

    /// A column the read does not have (an unmapped customer or other field) is selected as a
    /// constant null and skipped by the decoder, and every mapped one is read.
    #[test]
    fn columns_not_read_are_the_constant_nulls_of_the_select_list() {
        use crate::config::Config;
        use crate::source::{EventTimeKind, IdKind, SourceTable, WatermarkKind};
        let text = crate::config::TEST_CONFIG
            .replace("value = \"total\"", "value = \"total\"\nemail = \"mail\"");
        let config =
            Config::parse(&text, std::path::Path::new("t.toml")).expect("the test config parses");
        let read = read_under(&config.mapping);
        let table = SourceTable {
            quoted_name: "\"t\"".to_owned(),
            columns: std::collections::HashMap::new(),
            watermark_kind: WatermarkKind::Timestamptz,
            event_time_kind: EventTimeKind::Timestamptz,
            server_encoding: "UTF8".to_owned(),
            id_kind: IdKind::Text,
            foreign: false,
        };
        let list = format!("{}, ", super::super::query::select_list(&config, &table));
        for (i, role) in INNER.iter().enumerate() {
            let null = list.contains(&format!("null::text as c{i}, "));
            if let Role::Customer(_) | Role::Field(_) = role {
                assert_eq!(null, !read[i], "c{i} ({role:?}) in {list}");
            } else {
                assert!(read[i], "{role:?}");
            }
        }
        // The config maps one customer field and leaves the others.
        let customer = |read: bool| {
            INNER
                .iter()
                .zip(read_under(&config.mapping))
                .any(|(role, r)| matches!(role, Role::Customer(_)) && r == read)
        };
        assert!(customer(true) && customer(false));
    }

    #[test]
    fn each_field_lands_in_the_row_field_of_its_name() {
        let mut row = SourceRow::default();
        for field in Field::ALL {
            *field.slot(&mut row) = Some(field.config_key().into());
        }
        let named = [
            (&row.value, "mapping.value"),
            (&row.currency, "mapping.currency"),
            (&row.item_id, "mapping.item_id"),
            (&row.item_quantity, "mapping.item_quantity"),
            (&row.item_price, "mapping.item_price"),
            (&row.store_id, "mapping.store_id"),
            (&row.timezone, "mapping.timezone"),
            (&row.dpo_country, "mapping.data_processing_options_country"),
            (&row.dpo_state, "mapping.data_processing_options_state"),
            (&row.opt_out, "mapping.opt_out"),
            (&row.delivery_category, "mapping.delivery_category"),
            (
                &row.data_processing_options,
                "mapping.data_processing_options",
            ),
            (&row.item_line, "mapping.item_line"),
        ];
        for (value, key) in named {
            assert_eq!(value.as_deref(), Some(key));
        }
    }
}

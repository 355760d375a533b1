//! `[mapping]`: which source column feeds which event field, the processing options' typed values,
//! and [`CustomerField`], the one list of customer fields.

use serde::{Deserialize, Deserializer};

/// `[mapping]`: event field = source column.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The order (receipt) id: event_id and custom_data.order_id.
    pub order_id: String,
    /// When the purchase happened.
    pub event_time: String,
    /// The order total.
    pub value: Option<String>,
    /// ISO 4217 currency.
    pub currency: Option<String>,
    /// Customer email: one column or several, each value sent.
    pub email: Option<Columns>,
    /// Customer phone: one column or several, each value sent.
    pub phone: Option<Columns>,
    /// Customer first name: one column or several, each value sent.
    pub first_name: Option<Columns>,
    /// Customer last name: one column or several, each value sent.
    pub last_name: Option<Columns>,
    /// Customer city: one column or several, each value sent.
    pub city: Option<Columns>,
    /// Customer state or region: one column or several, each value sent.
    pub state: Option<Columns>,
    /// Customer postal code: one column or several, each value sent.
    pub zip: Option<Columns>,
    /// Customer country: one column or several, each value sent.
    pub country: Option<Columns>,
    /// Customer gender: one column or several, each value sent.
    pub gender: Option<Columns>,
    /// Customer date of birth: one column or several, each value sent.
    pub date_of_birth: Option<Columns>,
    /// A stable customer id such as a loyalty number: one column or several.
    pub external_id: Option<Columns>,
    /// Line item id; when mapped, rows sharing an order id are one order's lines.
    pub item_id: Option<String>,
    /// Line item quantity.
    pub item_quantity: Option<String>,
    /// Line item unit price.
    pub item_price: Option<String>,
    /// The line's number or id, for a view that repeats an order's lines (a join with a
    /// customer's two emails): rows of one order with the same line are one line when they
    /// agree on its item, quantity and price, and their customer values are all sent. Needs
    /// `item_id`. Unset: every row is a line.
    pub item_line: Option<String>,
    /// The store (or register) that made the sale; recorded in the ledger so that
    /// `ocapi reconcile --by store` can group by it. Never sent to Meta.
    pub store_id: Option<String>,
    /// A column holding each row's IANA time zone (for example joined from the stores table):
    /// how a `timestamp without time zone` or `date` event time is read for that row.
    /// NULL or empty falls back to `source.timezone`.
    pub timezone: Option<String>,
    /// Limited Data Use per order: a column holding `LDU`, an empty value, a boolean, or a text
    /// array; NULL falls back to `defaults.data_processing_options`.
    pub data_processing_options: Option<String>,
    /// An integer column: `1` the US, `0` let Meta geolocate (required with LDU).
    pub data_processing_options_country: Option<String>,
    /// An integer column: `1000` California, `0` let Meta geolocate (required with LDU).
    pub data_processing_options_state: Option<String>,
    /// A boolean column: `true` means the event is used for attribution only.
    pub opt_out: Option<String>,
    /// A column holding `in_store`, `curbside` or `home_delivery` (buy online, pick up in store).
    pub delivery_category: Option<String>,
}

/// One source column, or several (`email = ["email", "receipt_email"]`): each value is
/// normalized and hashed on its own and the event carries them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns(pub Vec<String>);

impl Columns {
    /// The column names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl From<&str> for Columns {
    fn from(name: &str) -> Self {
        Self(vec![name.to_owned()])
    }
}

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A column name or a list of them, as written in TOML.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            /// `email = "email"`.
            One(String),
            /// `email = ["email", "receipt_email"]`.
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(name) => Ok(Self(vec![name])),
            OneOrMany::Many(names) if names.is_empty() => Err(serde::de::Error::custom(
                "expected a column name or a non-empty list of column names",
            )),
            OneOrMany::Many(names) => Ok(Self(names)),
        }
    }
}

/// Meta's data processing options: only `LDU` (Limited Data Use) exists (docs/meta-capi.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ProcessingOption {
    /// Limited Data Use.
    #[serde(rename = "LDU")]
    Ldu,
}

/// `data_processing_options_country`: `0` (Meta geolocates) or `1` (the US).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct ProcessingCountry(pub i64);

impl TryFrom<i64> for ProcessingCountry {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        ldu_rules::country_ok(value)
            .then_some(Self(value))
            .ok_or_else(|| format!("{value} is not 0 (geolocate) or 1 (the US)"))
    }
}

/// `data_processing_options_state`: `0` (Meta geolocates) or a US state code from 1000
/// (`1000` is California).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct ProcessingState(pub i64);

impl TryFrom<i64> for ProcessingState {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        ldu_rules::state_ok(value)
            .then_some(Self(value))
            .ok_or_else(|| {
                format!("{value} is not 0 (geolocate) or a US state code (1000 is California)")
            })
    }
}

/// Meta's `custom_data.delivery_category` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryCategory {
    /// Bought and handed over in the store.
    InStore,
    /// Picked up outside the store.
    Curbside,
    /// Delivered home.
    HomeDelivery,
}

impl DeliveryCategory {
    /// Meta's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InStore => "in_store",
            Self::Curbside => "curbside",
            Self::HomeDelivery => "home_delivery",
        }
    }

    /// Reads Meta's text (trimmed, any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "in_store" => Some(Self::InStore),
            "curbside" => Some(Self::Curbside),
            "home_delivery" => Some(Self::HomeDelivery),
            _ => None,
        }
    }
}

/// The ranges Meta documents for the LDU geography (docs/meta-capi.md §2: `1` = USA, `0` = geolocate;
/// `1000` = California, `0` = geolocate; Meta numbers further US states from 1000 on).
pub mod ldu_rules {
    /// Whether a `data_processing_options_country` value is one Meta documents.
    pub(crate) fn country_ok(value: i64) -> bool {
        matches!(value, 0 | 1)
    }

    /// Whether a `data_processing_options_state` value is one Meta documents.
    pub(crate) fn state_ok(value: i64) -> bool {
        value == 0 || (1000..2000).contains(&value)
    }
}

impl Mapping {
    /// Every mapped column with its config key, in a stable order.
    pub fn columns(&self) -> Vec<(&'static str, &str)> {
        let customer = CustomerField::ALL.map(|f| (f.mapping_key(), self.customer(f)));
        let optional = [
            ("value", &self.value),
            ("currency", &self.currency),
            ("item_id", &self.item_id),
            ("item_quantity", &self.item_quantity),
            ("item_price", &self.item_price),
            ("item_line", &self.item_line),
            ("store_id", &self.store_id),
            ("timezone", &self.timezone),
            ("data_processing_options", &self.data_processing_options),
            (
                "data_processing_options_country",
                &self.data_processing_options_country,
            ),
            (
                "data_processing_options_state",
                &self.data_processing_options_state,
            ),
            ("opt_out", &self.opt_out),
            ("delivery_category", &self.delivery_category),
        ];
        let mut columns = vec![
            ("order_id", self.order_id.as_str()),
            ("event_time", self.event_time.as_str()),
        ];
        columns.extend(
            optional
                .into_iter()
                .filter_map(|(k, c)| c.as_deref().map(|c| (k, c))),
        );
        for (key, list) in customer {
            for name in list.iter().flat_map(Columns::names) {
                columns.push((key, name));
            }
        }
        columns
    }

    /// The columns of a customer field, if mapped.
    pub fn customer(&self, field: CustomerField) -> &Option<Columns> {
        match field {
            CustomerField::Em => &self.email,
            CustomerField::Ph => &self.phone,
            CustomerField::Fn => &self.first_name,
            CustomerField::Ln => &self.last_name,
            CustomerField::Ge => &self.gender,
            CustomerField::Db => &self.date_of_birth,
            CustomerField::Ct => &self.city,
            CustomerField::St => &self.state,
            CustomerField::Zp => &self.zip,
            CustomerField::Country => &self.country,
            CustomerField::ExternalId => &self.external_id,
        }
    }

    /// Whether rows are order lines to be grouped into one event per order.
    pub(crate) fn has_line_items(&self) -> bool {
        self.item_id.is_some()
    }
}

/// A customer field: a `[mapping]` key that names one or several columns, and the `user_data`
/// key Meta takes it under (docs/meta-capi.md §3), normalized and hashed by the rule of the same name
/// in `transform::normalize`. This is the one list of customer fields: the source reads, the
/// transform normalizes and the event serializes them in [`CustomerField::ALL`]'s order, so that
/// adding one touches this enum and its `[mapping]` key in [`Mapping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerField {
    /// Email (`em`).
    Em,
    /// Phone (`ph`).
    Ph,
    /// First name (`fn`).
    Fn,
    /// Last name (`ln`).
    Ln,
    /// Gender (`ge`).
    Ge,
    /// Date of birth (`db`).
    Db,
    /// City (`ct`).
    Ct,
    /// State or region (`st`).
    St,
    /// Postal code (`zp`).
    Zp,
    /// Country (`country`).
    Country,
    /// The retailer's customer id (`external_id`).
    ExternalId,
}

impl CustomerField {
    /// How many there are.
    pub(crate) const COUNT: usize = 11;

    /// Every field, in Meta's key order; `field as usize` is its index here.
    pub const ALL: [CustomerField; Self::COUNT] = [
        Self::Em,
        Self::Ph,
        Self::Fn,
        Self::Ln,
        Self::Ge,
        Self::Db,
        Self::Ct,
        Self::St,
        Self::Zp,
        Self::Country,
        Self::ExternalId,
    ];

    /// Meta's `user_data` key.
    pub fn key(self) -> &'static str {
        self.names().0
    }

    /// The `[mapping]` key that names its columns.
    pub(crate) fn mapping_key(self) -> &'static str {
        self.names().1
    }

    /// The dotted config key, for messages.
    pub(crate) fn config_key(self) -> &'static str {
        self.names().2
    }

    /// The field for a Meta key.
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.key() == key)
    }

    /// The field for a `[mapping]` key.
    pub(crate) fn from_mapping_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.mapping_key() == key)
    }

    /// Its position in [`CustomerField::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// (Meta's key, the mapping key, the dotted config key).
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Em => ("em", "email", "mapping.email"),
            Self::Ph => ("ph", "phone", "mapping.phone"),
            Self::Fn => ("fn", "first_name", "mapping.first_name"),
            Self::Ln => ("ln", "last_name", "mapping.last_name"),
            Self::Ge => ("ge", "gender", "mapping.gender"),
            Self::Db => ("db", "date_of_birth", "mapping.date_of_birth"),
            Self::Ct => ("ct", "city", "mapping.city"),
            Self::St => ("st", "state", "mapping.state"),
            Self::Zp => ("zp", "zip", "mapping.zip"),
            Self::Country => ("country", "country", "mapping.country"),
            Self::ExternalId => ("external_id", "external_id", "mapping.external_id"),
        }
    }
}

/// The dotted key of a mapping entry, for messages.
pub(super) fn mapping_key(key: &str) -> &'static str {
    if let Some(field) = CustomerField::from_mapping_key(key) {
        return field.config_key();
    }
    match key {
        "order_id" => "mapping.order_id",
        "event_time" => "mapping.event_time",
        "value" => "mapping.value",
        "currency" => "mapping.currency",
        "item_id" => "mapping.item_id",
        "item_quantity" => "mapping.item_quantity",
        "item_price" => "mapping.item_price",
        "item_line" => "mapping.item_line",
        "store_id" => "mapping.store_id",
        "timezone" => "mapping.timezone",
        "data_processing_options" => "mapping.data_processing_options",
        "data_processing_options_country" => "mapping.data_processing_options_country",
        "data_processing_options_state" => "mapping.data_processing_options_state",
        "opt_out" => "mapping.opt_out",
        "delivery_category" => "mapping.delivery_category",
        _ => "mapping",
    }
}

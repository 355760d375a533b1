//! `Event`: the one type that crosses transform → destination → ledger. It serializes to exactly
//! the JSON object Meta's Conversions API takes in `data` (meta-capi.md §2 and §9).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `event_name` of every event ocapi sends.
pub const PURCHASE: &str = "Purchase";
/// `action_source` of every event ocapi sends: in-store purchases.
pub const PHYSICAL_STORE: &str = "physical_store";

/// One Conversions API server event: one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Always `Purchase`.
    pub event_name: String,
    /// Unix seconds, UTC, of the purchase itself.
    pub event_time: i64,
    /// The order id, so that Meta deduplicates re-sends.
    pub event_id: String,
    /// Always `physical_store`.
    pub action_source: String,
    /// Hashed customer keys.
    pub user_data: UserData,
    /// Value, currency, order id and line items.
    pub custom_data: CustomData,
}

/// `user_data`: each key is an array of lowercase hex SHA-256 digests (external_id may be plain
/// when `normalize.hash_external_id = false`). Empty keys are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserData {
    /// Email.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub em: Vec<String>,
    /// Phone, with country calling code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ph: Vec<String>,
    /// First name.
    #[serde(default, rename = "fn", skip_serializing_if = "Vec::is_empty")]
    pub first_name: Vec<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ln: Vec<String>,
    /// Gender.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ge: Vec<String>,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db: Vec<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ct: Vec<String>,
    /// State.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub st: Vec<String>,
    /// Zip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zp: Vec<String>,
    /// Country.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<String>,
    /// External id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_id: Vec<String>,
}

impl UserData {
    /// The keys that carry a value, by their Meta names, in a stable order.
    pub fn present_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("em", &self.em),
            ("ph", &self.ph),
            ("fn", &self.first_name),
            ("ln", &self.ln),
            ("ge", &self.ge),
            ("db", &self.db),
            ("ct", &self.ct),
            ("st", &self.st),
            ("zp", &self.zp),
            ("country", &self.country),
            ("external_id", &self.external_id),
        ]
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(key, _)| key)
    }

    /// The value list of a key by its Meta name.
    pub fn values_mut(&mut self, key: &str) -> Option<&mut Vec<String>> {
        Some(match key {
            "em" => &mut self.em,
            "ph" => &mut self.ph,
            "fn" => &mut self.first_name,
            "ln" => &mut self.ln,
            "ge" => &mut self.ge,
            "db" => &mut self.db,
            "ct" => &mut self.ct,
            "st" => &mut self.st,
            "zp" => &mut self.zp,
            "country" => &mut self.country,
            "external_id" => &mut self.external_id,
            _ => return None,
        })
    }
}

/// `custom_data` of a Purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomData {
    /// The order total, a JSON number.
    #[serde(with = "rust_decimal::serde::float")]
    pub value: Decimal,
    /// ISO 4217, uppercase.
    pub currency: String,
    /// The receipt id: Meta's offline dedup key.
    pub order_id: String,
    /// Line items, when mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Vec<Content>>,
    /// Sum of line quantities, when line items are mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_items: Option<i64>,
    /// `product` when contents are present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// The product id (SKU).
    pub id: String,
    /// Units bought.
    pub quantity: i64,
    /// Unit price, a JSON number.
    #[serde(with = "rust_decimal::serde::float")]
    pub item_price: Decimal,
}

//! `Event`: the one type that crosses transform → destination → ledger. It serializes to exactly
//! the JSON object Meta's Conversions API takes in `data` (docs/meta-capi.md §2 and §9).

use std::fmt;
use std::sync::OnceLock;

use rust_decimal::Decimal;
use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};

use crate::config::CustomerField;
use crate::Text;

/// `event_name` of every event ocapi sends.
pub(crate) const PURCHASE: &str = "Purchase";
/// `action_source` of every event ocapi sends: in-store purchases.
pub(crate) const PHYSICAL_STORE: &str = "physical_store";

/// One Conversions API server event: one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Always `Purchase` (a constant: no allocation per event).
    pub event_name: &'static str,
    /// Unix seconds, UTC, of the purchase itself.
    pub event_time: i64,
    /// The order id, so that Meta deduplicates re-sends.
    pub event_id: Text,
    /// Always `physical_store`.
    pub action_source: &'static str,
    /// Hashed customer keys.
    pub user_data: UserData,
    /// Value, currency, order id and line items.
    pub custom_data: CustomData,
    /// `true`: the event is used for attribution only (sent only when configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out: Option<bool>,
    /// `["LDU"]` or `[]` (sent only when configured; docs/meta-capi.md §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_processing_options: Option<&'static [&'static str]>,
    /// With LDU: `1` the US, `0` geolocate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_processing_options_country: Option<i64>,
    /// With LDU: `1000` California, `0` geolocate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_processing_options_state: Option<i64>,
}

impl Event {
    /// A `Purchase` of `order_id` (also its `event_id`) worth `value` in `currency` at unix
    /// second `event_time`, with no customer data, line items or privacy fields: where the
    /// tests of the destination, the dedup policy and the stand-in start from.
    #[cfg(test)]
    pub(crate) fn purchase(
        order_id: &str,
        event_time: i64,
        value: Decimal,
        currency: &str,
    ) -> Self {
        Self {
            event_name: PURCHASE,
            event_time,
            event_id: order_id.into(),
            action_source: PHYSICAL_STORE,
            user_data: UserData::default(),
            custom_data: CustomData {
                value,
                currency: currency.into(),
                order_id: order_id.into(),
                contents: None,
                num_items: None,
                content_type: None,
                delivery_category: None,
            },
            opt_out: None,
            data_processing_options: None,
            data_processing_options_country: None,
            data_processing_options_state: None,
        }
    }

    /// Appends this event's JSON to `out`: exactly the bytes its `Serialize` impl gives (the
    /// tests compare the two on every optional part), for the request bodies. The digests
    /// (eleven of the ~1 KB of a typical event) are written as hex without serde_json's
    /// per-byte escape scan and UTF-8 check, and the keys as the ASCII they are; every other
    /// value goes through serde_json. Callgrind put the serde path at ~15,600 instructions per
    /// event, a third of them that scan (docs/benchmarks.md).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"event_name\":");
        json(out, self.event_name);
        out.extend_from_slice(b",\"event_time\":");
        json(out, &self.event_time);
        out.extend_from_slice(b",\"event_id\":");
        json(out, &self.event_id);
        out.extend_from_slice(b",\"action_source\":");
        json(out, self.action_source);
        out.extend_from_slice(b",\"user_data\":");
        self.user_data.write_json(out);
        out.extend_from_slice(b",\"custom_data\":");
        self.custom_data.write_json(out);
        if let Some(opt_out) = self.opt_out {
            out.extend_from_slice(b",\"opt_out\":");
            json(out, &opt_out);
        }
        if let Some(options) = self.data_processing_options {
            out.extend_from_slice(b",\"data_processing_options\":");
            json(out, options);
        }
        if let Some(country) = self.data_processing_options_country {
            out.extend_from_slice(b",\"data_processing_options_country\":");
            json(out, &country);
        }
        if let Some(state) = self.data_processing_options_state {
            out.extend_from_slice(b",\"data_processing_options_state\":");
            json(out, &state);
        }
        out.push(b'}');
    }
}

/// The version of the normalization rules (`src/transform/normalize`), part of each sent
/// event's digest as the ledger keeps it ([`Event::digest`]). Raise it with any change to a
/// rule that can turn a value into another normalized value (a dropped value now read, a form
/// read otherwise): an already-sent order read again is then compared by its watermark where
/// its digest was taken under other rules, so that a rule change alone is not counted
/// `changed_after_send` (docs/normalization.md). 1: every digest written before versions were
/// kept; 2: issue 24's 35-locale check (titles, CLDR month names, Korean short dates, country
/// names' letters); 3: the digest itself became XXH3-128 (32 hex digits) instead of SHA-256
/// (64), which was ~7% of a run's CPU on fully populated rows (issue 24); a digest of
/// another version is compared by watermark in the same way.
pub const RULES_VERSION: u32 = 3;

/// `/r` and the normalization rules' version, as [`Event::digest`] ends.
static RULES_TAG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("/r{RULES_VERSION}"));

/// The text an order's version is stored as (`<32 hex>/r<rules>`, see [`Event::digest`]) for
/// the digest of an event's canonical JSON ([`json_digest`]). Written into a string of its final
/// size: formatted, the string grew several times (~180 instructions of reallocation a call
/// under callgrind).
pub(crate) fn version_text(digest: u128) -> String {
    let mut hex = [0; 32];
    hex_digits(&digest.to_be_bytes(), &mut hex);
    let tag = RULES_TAG.as_str();
    let mut text = String::with_capacity(hex.len() + tag.len());
    // Hex digits are ASCII: pushed as one text, not as 32 chars encoded one by one (~500
    // instructions an event under callgrind).
    text.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    text.push_str(tag);
    text
}

/// Whether an order recorded with the event digest `recorded` is the event whose digest is
/// `now` ([`Event::digest`]): `Some(true)` for the same event, `Some(false)` for another, and
/// `None` when `recorded` was taken under other normalization rules (or before versions were
/// kept: a bare 64-hex digest) and differs: a rule change alone may have changed it, so the
/// caller compares watermarks instead.
pub fn same_version(recorded: &str, now: &str) -> Option<bool> {
    let split = |digest: &str| {
        let (hex, rules) = digest.split_once('/').unwrap_or((digest, ""));
        (hex.to_owned(), rules.to_owned())
    };
    let ((old_hex, old_rules), (new_hex, new_rules)) = (split(recorded), split(now));
    if old_hex == new_hex {
        return Some(true);
    }
    (old_rules == new_rules).then_some(false)
}

impl Event {
    /// The XXH3-128 digest (32 lowercase hex digits, [`json_digest`]) of what this event says:
    /// its JSON as sent (every
    /// field Meta would receive, [`Event::write_json`]), with its lines and each key's values
    /// in one order, so that an order's lines, or a customer's two emails, read in another
    /// order are the same event. Two versions of an order with the same digest send the same thing; a run compares
    /// digests, not watermarks, before calling a sent order changed (a row re-stamped without
    /// a change, as a rebuilt dbt model does, is no change). An `Event` holds no field that
    /// varies with the time of sending (`event_time` is the purchase's), so nothing is left out.
    ///
    /// The hex is followed by `/r` and the normalization rules' version
    /// ([`RULES_VERSION`]), which hashed the customer values:
    /// `<32 hex>/r3`. [`same_version`] compares two digests.
    pub fn digest(&self) -> String {
        let mut json = Vec::with_capacity(2048);
        match self.canonical() {
            Some(event) => event.write_json(&mut json),
            None => self.write_json(&mut json),
        }
        version_text(json_digest(&json))
    }

    /// Whether the event is its own canonical form (at most one line, one value per key): then
    /// [`Event::digest`] is the SHA-256 of its [`Event::write_json`] bytes as they are, and
    /// the bytes a request body carries give it ([`json_digest`]).
    pub(crate) fn is_canonical(&self) -> bool {
        let lines = self
            .custom_data
            .contents
            .as_ref()
            .is_some_and(|contents| contents.len() > 1);
        !lines && self.user_data.more.is_empty()
    }

    /// This event with its arrays in one order, when one has several items (else `None`: the
    /// event is canonical as it is, and is not copied): lines by item, quantity and price,
    /// each key's values by their text.
    fn canonical(&self) -> Option<Self> {
        if self.is_canonical() {
            return None;
        }
        let mut event = self.clone();
        if let Some(contents) = &mut event.custom_data.contents {
            contents.sort_by(|a, b| {
                (a.id.as_str(), a.quantity, a.item_price).cmp(&(
                    b.id.as_str(),
                    b.quantity,
                    b.item_price,
                ))
            });
        }
        let more = std::mem::take(&mut event.user_data.more);
        if !more.is_empty() {
            for field in CustomerField::ALL {
                let key = field.key();
                let slot = &mut event.user_data.values[field.index()];
                let Some(first) = slot.take() else {
                    continue;
                };
                let mut values: Vec<UserValue> = std::iter::once(first)
                    .chain(
                        more.iter()
                            .filter(|(k, _)| *k == key)
                            .map(|(_, v)| v.clone()),
                    )
                    .collect();
                values.sort_by_cached_key(ToString::to_string);
                let mut values = values.into_iter();
                *slot = values.next();
                event
                    .user_data
                    .more
                    .extend(values.map(|value| (key, value)));
            }
        }
        Some(event)
    }
}

/// The digest of an event's JSON: [`Event::digest`]'s, for a canonical event's
/// [`Event::write_json`] output (written once, into a request body). XXH3-128: the digest only
/// tells one version of an order from another in the ledger (it is never sent and guards
/// nothing against an attacker, who could change the source rows themselves), so a fast
/// 128-bit hash does (two versions share one with a chance of 2^-128); SHA-256 of the ~1 KB of
/// JSON was ~7% of a run's CPU on fully populated rows (issue 24).
pub(crate) fn json_digest(json: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(json)
}

/// Appends `value` as serde_json writes it. Writing to a `Vec` cannot fail, and every part of
/// an event serializes (the request bodies have always relied on it).
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("an Event always serializes");
}

/// `data_processing_options` with Limited Data Use.
pub const LDU: &[&str] = &["LDU"];
/// `data_processing_options` without it.
pub(crate) const NO_LDU: &[&str] = &[];

/// `user_data`: each key is an array of lowercase hex SHA-256 digests (external_id may be
/// plain when `normalize.hash_external_id = false`). Empty keys are left out of the JSON.
///
/// Nearly every key holds one value, so each key's first value has a slot of its own (no `Vec`
/// per key and event), indexed by [`CustomerField::index`]; further values wait in `more`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserData {
    /// Each field's first value, in [`CustomerField::ALL`]'s order. Boxed: ~450 bytes inline
    /// made each event ~700 bytes, copied whole at every move through the run's vectors
    /// (page → to send → batch → outcomes; `memmove` ~10% of a run's CPU, issue 24).
    values: Box<[Option<UserValue>; CustomerField::COUNT]>,
    /// The fields whose slot in `values` holds a value, a bit per [`CustomerField::index`]:
    /// kept as the slots are filled, so that the fields an event carries are read without
    /// visiting its slots (the ledger reads them for `match_keys` once the event comes back
    /// from the destination, when the slots have long left the CPU's caches: ~1% of a run's
    /// CPU on fully populated rows, issue 24).
    present: u16,
    /// Further values of keys that have several (a second email, say), in the order read:
    /// sent after the key's first value. Empty for nearly every event, so it costs nothing.
    pub more: Vec<(&'static str, UserValue)>,
}

impl UserData {
    /// This data with `value` as `field`'s first value.
    #[must_use]
    pub fn with(mut self, field: CustomerField, value: UserValue) -> Self {
        self.values[field.index()] = Some(value);
        self.present |= 1 << field.index();
        self
    }

    /// Adds `value` to `field`'s values: as its first value, else after the ones it has
    /// (in `more`), unless the field already has it.
    pub(crate) fn add(&mut self, field: CustomerField, value: UserValue) {
        match &mut self.values[field.index()] {
            slot @ None => {
                *slot = Some(value);
                self.present |= 1 << field.index();
            }
            Some(first) if *first == value => {}
            Some(_) => {
                let key = field.key();
                if !self.more.iter().any(|(k, v)| *k == key && *v == value) {
                    self.more.push((key, value));
                }
            }
        }
    }

    /// A field's first value.
    pub fn get(&self, field: CustomerField) -> Option<&UserValue> {
        self.values[field.index()].as_ref()
    }

    /// The keys that carry a value, by their Meta names, in a stable order.
    pub(crate) fn present_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.present_fields().map(CustomerField::key)
    }

    /// The keys that carry a value, comma-separated in [`CustomerField::ALL`]'s order
    /// (`em,ph,fn`): the ledger's `match_keys`. One text per set of keys for the process, made
    /// on its first use: joined for every order, it was an allocation per order, freed on
    /// another thread once the order was recorded.
    pub(crate) fn match_keys(&self) -> &'static str {
        static JOINED: [OnceLock<String>; 1 << CustomerField::COUNT] =
            [const { OnceLock::new() }; 1 << CustomerField::COUNT];
        JOINED[usize::from(self.present_set())]
            .get_or_init(|| self.present_keys().collect::<Vec<_>>().join(","))
    }

    /// The fields that carry a value, as a set: bit [`CustomerField::index`] of each.
    pub(crate) fn present_set(&self) -> u16 {
        self.present
    }

    /// The fields that carry a value, in [`CustomerField::ALL`]'s order.
    pub(crate) fn present_fields(&self) -> impl Iterator<Item = CustomerField> + '_ {
        CustomerField::ALL
            .into_iter()
            .filter(|f| self.present & 1 << f.index() != 0)
    }
}

impl UserData {
    /// Appends the JSON its `Serialize` impl gives (see [`Event::write_json`]). The keys are
    /// [`CustomerField::key`]s: lowercase ASCII letters and `_`, which JSON does not escape.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for field in CustomerField::ALL {
            let Some(value) = &self.values[field.index()] else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            let key = field.key();
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":[");
            value.write_json(out);
            for (_, more) in self.more.iter().filter(|(k, _)| *k == key) {
                out.push(b',');
                more.write_json(out);
            }
            out.push(b']');
        }
        out.push(b'}');
    }
}

/// The keys that carry a value, each as Meta's one-element array (`"em": ["<digest>"]`).
impl Serialize for UserData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for field in CustomerField::ALL {
            let key = field.key();
            if let Some(value) = &self.values[field.index()] {
                if self.more.is_empty() {
                    map.serialize_entry(key, &[value])?;
                } else {
                    let values: Vec<&UserValue> = std::iter::once(value)
                        .chain(self.more.iter().filter(|(k, _)| *k == key).map(|(_, v)| v))
                        .collect();
                    map.serialize_entry(key, &values)?;
                }
            }
        }
        map.end()
    }
}

/// One `user_data` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserValue {
    /// A SHA-256 digest ocapi computed, kept as its 32 bytes and written as lowercase hex only
    /// into the request body: no 64-byte string is allocated, copied and freed per key.
    Digest(Digest),
    /// A value sent as it is: a digest the source already held, or a plain external id.
    Text(String),
}

impl Serialize for UserValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            UserValue::Digest(digest) => digest.serialize(serializer),
            UserValue::Text(text) => serializer.serialize_str(text),
        }
    }
}

impl UserValue {
    /// Appends the JSON string its `Serialize` impl gives: a digest's 64 hex digits need no
    /// escaping; a text value goes through serde_json.
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            UserValue::Digest(digest) => {
                out.push(b'"');
                out.extend_from_slice(&digest.hex());
                out.push(b'"');
            }
            UserValue::Text(text) => json(out, text.as_str()),
        }
    }
}

/// The text the value is sent as.
impl fmt::Display for UserValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserValue::Digest(digest) => digest.fmt(f),
            UserValue::Text(text) => f.write_str(text),
        }
    }
}

/// A SHA-256 digest, written as 64 lowercase hex digits. Aligned to 8 bytes: unaligned, its
/// bytes sat at offset 1 of a `UserValue` (same size either way, 40 bytes), and every copy of
/// a value was a run of odd-offset moves that the processor could not forward from store to
/// load (~1.5% of a run's CPU on fully populated rows under `perf annotate`, issue 24).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(align(8))]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The 64 lowercase hex digits, on the stack ([`hex_digits`]).
    fn hex(&self) -> [u8; 64] {
        let mut out = [0; 64];
        hex_digits(&self.0, &mut out);
        out
    }
}

/// Writes `bytes` as lowercase hex digits into `out` (exactly twice as long), with the
/// `const-hex` crate's SIMD encoder (SSSE3/AVX2 where the CPU has them, chosen at run time):
/// eleven digests an event made hex a few % of a run's CPU on fully populated rows, even eight
/// digits at a time in plain arithmetic (issue 24).
fn hex_digits(bytes: &[u8], out: &mut [u8]) {
    // Only a length mismatch fails, and every caller passes twice the length.
    let written = const_hex::encode_to_slice(bytes, out);
    debug_assert!(
        written.is_ok(),
        "hex of {} bytes into {}",
        bytes.len(),
        out.len()
    );
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

/// Shows the hex digits, as they are sent: a digest is not a raw customer value.
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hex = self.hex();
        let text = std::str::from_utf8(&hex).map_err(S::Error::custom)?;
        serializer.serialize_str(text)
    }
}

/// `custom_data` of a Purchase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomData {
    /// The order total, a JSON number.
    #[serde(with = "rust_decimal::serde::float")]
    pub value: Decimal,
    /// ISO 4217, uppercase.
    pub currency: Text,
    /// The receipt id: Meta's offline dedup key.
    pub order_id: Text,
    /// Line items, when mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contents: Option<Vec<Content>>,
    /// Sum of line quantities, when line items are mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_items: Option<i64>,
    /// `product` when contents are present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `in_store`, `curbside` or `home_delivery`, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_category: Option<&'static str>,
}

impl CustomData {
    /// Appends the JSON its `Serialize` impl gives (see [`Event::write_json`]): the keys as the
    /// ASCII they are, each value through serde_json as the derived impl writes it (the value
    /// by `rust_decimal::serde::float`, the texts escaped). Through the derived impl it was
    /// ~1,150 instructions an event under callgrind, most of them serde's per-field machinery.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"value\":");
        rust_decimal::serde::float::serialize(
            &self.value,
            &mut serde_json::Serializer::new(&mut *out),
        )
        .expect("a value always serializes");
        out.extend_from_slice(b",\"currency\":");
        json(out, self.currency.as_str());
        out.extend_from_slice(b",\"order_id\":");
        json(out, self.order_id.as_str());
        if let Some(contents) = &self.contents {
            out.extend_from_slice(b",\"contents\":");
            json(out, contents);
        }
        if let Some(num_items) = self.num_items {
            out.extend_from_slice(b",\"num_items\":");
            json(out, &num_items);
        }
        if let Some(content_type) = &self.content_type {
            out.extend_from_slice(b",\"content_type\":");
            json(out, content_type.as_str());
        }
        if let Some(delivery_category) = self.delivery_category {
            out.extend_from_slice(b",\"delivery_category\":");
            json(out, delivery_category);
        }
        out.push(b'}');
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Content {
    /// The product id (SKU).
    pub id: String,
    /// Units bought.
    pub quantity: i64,
    /// Unit price, a JSON number.
    #[serde(with = "rust_decimal::serde::float")]
    pub item_price: Decimal,
}

#[cfg(test)]
mod tests;

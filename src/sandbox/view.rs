//! Borrowed views of a `POST …/events` body, just wide enough for the rules in `validate.rs`.
//!
//! Why: reading a 1000-event body into `serde_json::Value` allocates a `String` per key and
//! value and a `BTreeMap` per object, and that (not the rules) was most of the sandbox's CPU.
//! These types keep only the fields a rule reads, borrow strings from the body whenever they
//! hold no escapes, and skip everything else without allocating.
//!
//! They must accept and reject exactly the bodies `Value` does, so that the sandbox's answers do
//! not change:
//! - every value, also a skipped one, goes through `deserialize_any`, so strings are decoded and
//!   checked (UTF-8, escapes, surrogates) and numbers parsed as for `Value`;
//! - a key given twice keeps its last value, as `Map::insert` does;
//! - `user_data` entries are sorted by key, as a `Map` (a `BTreeMap` here) iterates them, so that
//!   the first bad key reported is the same.
//!
//! serde_json never hands a visitor a non-finite float (it rejects out-of-range numbers), so a
//! float is always a number here, as in `Value`. The inspection routes still decode stored bodies
//! with `Value` (see `mod.rs`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::validate::is_sha256_hex;

/// Implements the `visit_*` methods of a visitor for booleans, numbers, strings and sequences,
/// all answered with `$other` (a sequence is consumed with [`Skip`]). Written once because most
/// views only care whether a value is an object.
macro_rules! non_objects_are {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_seq(seq)?;
            Ok($other)
        }
    };
}

/// Any JSON value, read in full (so that it is checked as `Value` would check it) and dropped.
pub(super) struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

/// The visitor of [`Skip`].
struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
        skip_map(map)?;
        Ok(Skip)
    }

    non_objects_are!(Skip);
}

/// Reads and drops the rest of a sequence.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(())
}

/// Reads and drops the rest of a map.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<Skip, Skip>()?.is_some() {}
    Ok(())
}

/// A value a rule reads as a string or a number; arrays, objects and booleans are `Other`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    /// `null`.
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// A number, with its value when it is an integer that fits an `i64` (`Value::as_i64`).
    Number(Option<i64>),
    /// A boolean, array or object.
    Other,
}

impl Scalar<'_> {
    /// The string, if this is one (`Value::as_str`).
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(text) => Some(text),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The visitor of [`Scalar`].
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_i64<E>(self, number: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(Some(number)))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(i64::try_from(number).ok()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(None))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq)?;
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map)?;
        Ok(Scalar::Other)
    }
}

/// A map key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

/// The visitor of [`Key`]; JSON keys are always strings.
struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(text)))
    }
}

/// One `user_data` value, summarized for the rules without keeping its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UserValue {
    /// `null`: the key counts as absent.
    Null,
    /// A string, or an array of strings.
    Strings {
        /// Every string is empty (also true for an empty array).
        all_empty: bool,
        /// Every string is a lowercase hex SHA-256 digest.
        all_hashed: bool,
    },
    /// An array with an item that is not a string.
    NonStringItem,
    /// A number, boolean or object.
    Other,
}

impl UserValue {
    /// The summary of one string.
    fn of_str(text: &str) -> Self {
        UserValue::Strings {
            all_empty: text.is_empty(),
            all_hashed: is_sha256_hex(text),
        }
    }
}

impl<'de> Deserialize<'de> for UserValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UserValueVisitor)
    }
}

/// The visitor of [`UserValue`].
struct UserValueVisitor;

impl<'de> Visitor<'de> for UserValueVisitor {
    type Value = UserValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(UserValue::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(UserValue::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(UserValue::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(UserValue::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(UserValue::Other)
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(UserValue::of_str(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut all_empty = true;
        let mut all_hashed = true;
        let mut strings_only = true;
        while let Some(item) = seq.next_element::<Scalar<'de>>()? {
            match item.as_str() {
                Some(text) => {
                    all_empty &= text.is_empty();
                    all_hashed = all_hashed && is_sha256_hex(text);
                }
                None => strings_only = false,
            }
        }
        Ok(if strings_only {
            UserValue::Strings {
                all_empty,
                all_hashed,
            }
        } else {
            UserValue::NonStringItem
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map)?;
        Ok(UserValue::Other)
    }
}

/// An event's `user_data` field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum UserData<'a> {
    /// `null`: the field counts as missing.
    Null,
    /// An object: its entries sorted by key, each key once (its last value).
    Object(Vec<(Cow<'a, str>, UserValue)>),
    /// Any other value.
    Other,
}

impl<'de> Deserialize<'de> for UserData<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UserDataVisitor)
    }
}

/// The visitor of [`UserData`].
struct UserDataVisitor;

impl<'de> Visitor<'de> for UserDataVisitor {
    type Value = UserData<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(UserData::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, UserValue)> = Vec::with_capacity(16);
        while let Some(Key(key)) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        sort_last_wins(&mut entries);
        Ok(UserData::Object(entries))
    }

    non_objects_are!(UserData::Other);
}

/// Sorts map entries by key and keeps the last value of a repeated key: a `Map`'s view of them.
fn sort_last_wins<V>(entries: &mut Vec<(Cow<'_, str>, V)>) {
    // Stable, so repeated keys stay in arrival order; move each later value onto the kept entry.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(&mut later.1, &mut kept.1);
        }
        same
    });
}

/// The fields of an event's `custom_data` object the rules read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct CustomData<'a> {
    /// `value`.
    pub(super) value: Option<Scalar<'a>>,
    /// `currency`.
    pub(super) currency: Option<Scalar<'a>>,
    /// `order_id`.
    pub(super) order_id: Option<Scalar<'a>>,
}

/// `custom_data` when it is an object (`None` for anything else, as `Value::as_object` gives).
struct MaybeCustomData<'a>(Option<CustomData<'a>>);

impl<'de> Deserialize<'de> for MaybeCustomData<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CustomDataVisitor)
    }
}

/// The visitor of [`MaybeCustomData`].
struct CustomDataVisitor;

impl<'de> Visitor<'de> for CustomDataVisitor {
    type Value = MaybeCustomData<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(MaybeCustomData(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut custom = CustomData::default();
        while let Some(Key(key)) = map.next_key()? {
            let slot = match &*key {
                "value" => &mut custom.value,
                "currency" => &mut custom.currency,
                "order_id" => &mut custom.order_id,
                _ => {
                    map.next_value::<Skip>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(MaybeCustomData(Some(custom)))
    }

    non_objects_are!(MaybeCustomData(None));
}

/// The fields of one event object the rules read; `None` is an absent field.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Event<'a> {
    /// `event_name`.
    pub(super) event_name: Option<Scalar<'a>>,
    /// `event_time`.
    pub(super) event_time: Option<Scalar<'a>>,
    /// `action_source`.
    pub(super) action_source: Option<Scalar<'a>>,
    /// `user_data`.
    pub(super) user_data: Option<UserData<'a>>,
    /// `custom_data`, when it is an object.
    pub(super) custom_data: Option<CustomData<'a>>,
    /// The Limited Data Use fields, when any is sent (rare: boxed, kept as JSON values).
    pub(super) processing: Option<Box<Processing>>,
}

/// An event's `data_processing_options` fields, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Processing {
    /// `data_processing_options`.
    pub(super) options: Option<serde_json::Value>,
    /// `data_processing_options_country`.
    pub(super) country: Option<serde_json::Value>,
    /// `data_processing_options_state`.
    pub(super) state: Option<serde_json::Value>,
}

/// Reads an event object's fields; every other field is skipped.
fn event_from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Event<'de>, A::Error> {
    let mut event = Event::default();
    while let Some(Key(key)) = map.next_key()? {
        match &*key {
            "event_name" => event.event_name = Some(map.next_value()?),
            "event_time" => event.event_time = Some(map.next_value()?),
            "action_source" => event.action_source = Some(map.next_value()?),
            "user_data" => event.user_data = Some(map.next_value()?),
            "custom_data" => event.custom_data = map.next_value::<MaybeCustomData<'de>>()?.0,
            "data_processing_options" => {
                event.processing.get_or_insert_default().options = Some(map.next_value()?);
            }
            "data_processing_options_country" => {
                event.processing.get_or_insert_default().country = Some(map.next_value()?);
            }
            "data_processing_options_state" => {
                event.processing.get_or_insert_default().state = Some(map.next_value()?);
            }
            _ => {
                map.next_value::<Skip>()?;
            }
        }
    }
    Ok(event)
}

/// One item of `data`: an event object, a JSON string holding one (Python SDK), or anything else.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item<'a> {
    /// An object.
    Event(Event<'a>),
    /// A string, to be decoded as JSON.
    Text(Cow<'a, str>),
    /// Any other value (`null` included): not an event.
    Other,
}

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// The visitor of [`Item`].
struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Item::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        event_from_map(map).map(Item::Event)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Item::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Item::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Item::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Item::Other)
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Item::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Item::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Item::Text(Cow::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq)?;
        Ok(Item::Other)
    }
}

/// The top-level `data` field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Data<'a> {
    /// `null`: counts as missing.
    Null,
    /// An array.
    Array(Vec<Item<'a>>),
    /// A string, to be decoded as a JSON array (Java SDK, and every form body).
    Text(Cow<'a, str>),
    /// Any other value.
    Other,
}

impl<'de> Deserialize<'de> for Data<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DataVisitor)
    }
}

/// The visitor of [`Data`].
struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Data::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Data::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map)?;
        Ok(Data::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Data::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Data::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Data::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Data::Other)
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Data::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Data::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Data::Text(Cow::Owned(text)))
    }
}

/// The top-level fields of a request body the sandbox reads; `None` is an absent field.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Body<'a> {
    /// `access_token`.
    pub(super) access_token: Option<Scalar<'a>>,
    /// `appsecret_proof`.
    pub(super) appsecret_proof: Option<Scalar<'a>>,
    /// `data`.
    pub(super) data: Option<Data<'a>>,
}

impl<'a> Body<'a> {
    /// Sets the field `key` of a form body (every value a string); other keys are ignored.
    pub(super) fn set_form_field(&mut self, key: &str, value: Cow<'a, str>) {
        match key {
            "access_token" => self.access_token = Some(Scalar::Str(value)),
            "appsecret_proof" => self.appsecret_proof = Some(Scalar::Str(value)),
            "data" => self.data = Some(Data::Text(value)),
            _ => {}
        }
    }
}

/// A JSON body: its fields when it is an object, `None` when it is another JSON value.
pub(super) struct MaybeBody<'a>(pub(super) Option<Body<'a>>);

impl<'de> Deserialize<'de> for MaybeBody<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

/// The visitor of [`MaybeBody`].
struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = MaybeBody<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(MaybeBody(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut body = Body::default();
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "access_token" => body.access_token = Some(map.next_value()?),
                "appsecret_proof" => body.appsecret_proof = Some(map.next_value()?),
                "data" => body.data = Some(map.next_value()?),
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(MaybeBody(Some(body)))
    }

    non_objects_are!(MaybeBody(None));
}

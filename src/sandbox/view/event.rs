//! The view of one event: the fields the rules read (`event_name`, `event_time`,
//! `action_source`, `user_data` with its keys sorted, `custom_data`, the data processing
//! options), every other field skipped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::values::{is_sha256_hex, skip_map, skip_seq, Key, Scalar, Skip};

/// One `user_data` value, summarized for the rules without keeping its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sandbox) enum UserValue {
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
pub(in crate::sandbox) enum UserData<'a> {
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
pub(in crate::sandbox) struct CustomData<'a> {
    /// `value`.
    pub(in crate::sandbox) value: Option<Scalar<'a>>,
    /// `currency`.
    pub(in crate::sandbox) currency: Option<Scalar<'a>>,
    /// `order_id`.
    pub(in crate::sandbox) order_id: Option<Scalar<'a>>,
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
pub(in crate::sandbox) struct Event<'a> {
    /// `event_name`.
    pub(in crate::sandbox) event_name: Option<Scalar<'a>>,
    /// `event_time`.
    pub(in crate::sandbox) event_time: Option<Scalar<'a>>,
    /// `action_source`.
    pub(in crate::sandbox) action_source: Option<Scalar<'a>>,
    /// `user_data`.
    pub(in crate::sandbox) user_data: Option<UserData<'a>>,
    /// `custom_data`, when it is an object.
    pub(in crate::sandbox) custom_data: Option<CustomData<'a>>,
    /// The Limited Data Use fields, when any is sent (rare: boxed, kept as JSON values).
    pub(in crate::sandbox) processing: Option<Box<Processing>>,
}

/// An event's `data_processing_options` fields, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub(in crate::sandbox) struct Processing {
    /// `data_processing_options`.
    pub(in crate::sandbox) options: Option<serde_json::Value>,
    /// `data_processing_options_country`.
    pub(in crate::sandbox) country: Option<serde_json::Value>,
    /// `data_processing_options_state`.
    pub(in crate::sandbox) state: Option<serde_json::Value>,
}

/// Reads an event object's fields; every other field is skipped.
pub(super) fn event_from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Event<'de>, A::Error> {
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

//! Borrowed views of a `POST …/events` body, just wide enough for the rules in `validate/`.
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
//! with `Value` (see the sandbox's `state.rs`).
//!
//! Here: the body, its `data` and the items of `data`. An event's view is in `event.rs`, the
//! scalars, keys and skipped values all views are made of in `values.rs`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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

mod event;
mod values;

pub(super) use event::{Event, UserData, UserValue};
/// The digest check, for the validator's tests.
#[cfg(test)]
pub(super) use values::is_sha256_hex;
pub(super) use values::Scalar;

use event::event_from_map;
use values::{skip_map, skip_seq, Key, Skip};

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

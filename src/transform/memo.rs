//! A per-thread memory of the values a run already normalized and hashed, for the fields whose
//! values repeat from row to row: a chain's customers share first and last names, genders,
//! cities, states, postcodes and countries, so most of a page's values of those fields were
//! seen on an earlier row. Normalizing and hashing one again is pure work with the same result
//! ([`hash_value`] is a function of the field, the raw value and the row's country alone for
//! these fields), so the result is remembered instead: one hash-map lookup against a few µs of
//! folding, lowercasing, table lookups and SHA-256 per row (docs/benchmarks.md, issue 24).
//!
//! Emails, phones, dates of birth and external ids are not remembered: they are (nearly) one
//! per customer, so a bounded memory would mostly hold values that never come back.

use std::cell::RefCell;
use std::collections::HashMap;

use super::hash::{hash_value, Hashed};
use super::normalize::{Context, Field};

/// How many values a thread remembers before it forgets them all: far more than the distinct
/// names, cities, states, postcodes, genders and countries of a page (3000 rows), and at most a
/// few hundred KiB per thread (a key of a few dozen bytes and a digest each).
const REMEMBERED: usize = 8192;

/// A row's country at least this long is not remembered: its length would not fit the key's
/// one character ([`key`]).
const LONGEST_COUNTRY: usize = 0xD800;

/// What a thread remembers: results by key ([`key`]), and a buffer the key is built in, so a
/// lookup allocates nothing.
#[derive(Default)]
struct Memory {
    /// [`hash_value`]'s result by key. A key of up to 24 bytes (most: a field, a country
    /// and a name) is kept inline in the table, so a lookup does not follow a pointer to
    /// memory of its own (a cache miss per lookup with boxed keys, ~2% of a run).
    known: HashMap<compact_str::CompactString, Hashed, foldhash::fast::RandomState>,
    /// The key of the value being looked up.
    key: String,
}

thread_local! {
    /// This thread's memory. Pages are normalized on tokio's blocking threads; each keeps its own.
    static MEMORY: RefCell<Memory> = RefCell::new(Memory::default());
}

/// Whether the field's values repeat enough across rows to be remembered.
fn remembered(field: Field) -> bool {
    matches!(
        field,
        Field::Fn | Field::Ln | Field::Ge | Field::Ct | Field::St | Field::Zp | Field::Country
    )
}

/// [`hash_value`], remembered per thread for the fields whose values repeat ([`remembered`]).
/// The same result as [`hash_value`] for every input: the key holds everything the result
/// depends on (the field, the row's country as given, and the raw value). `hash_external_id`
/// is passed through: external ids are never remembered.
pub fn hash_value_memo(
    field: Field,
    raw: &str,
    ctx: &Context<'_>,
    hash_external_id: bool,
) -> Hashed {
    if !remembered(field)
        || ctx
            .country
            .is_some_and(|country| country.len() >= LONGEST_COUNTRY)
    {
        return hash_value(field, raw, ctx, hash_external_id);
    }
    MEMORY.with_borrow_mut(|memory| {
        key(&mut memory.key, field, ctx.country, raw);
        if let Some(hashed) = memory.known.get(memory.key.as_str()) {
            return hashed.clone();
        }
        let hashed = hash_value(field, raw, ctx, hash_external_id);
        if memory.known.len() >= REMEMBERED {
            memory.known.clear();
        }
        memory
            .known
            .insert(memory.key.as_str().into(), hashed.clone());
        hashed
    })
}

/// Writes the key of a value into `out`: the field, then the country (its length first, so
/// that no text in it can run into the raw value; absent and given apart), then the raw value,
/// so that no two inputs share a key.
fn key(out: &mut String, field: Field, country: Option<&str>, raw: &str) {
    out.clear();
    out.push(char::from(b'a' + field as u8));
    match country {
        Some(country) => {
            // The length as one character (a row's country is far shorter than U+D800 bytes;
            // a longer one is not remembered, see `hash_value_memo`): `write!` of its digits
            // went through the formatter, ~10% of a lookup.
            out.push(char::from_u32(country.len() as u32).unwrap_or(char::REPLACEMENT_CHARACTER));
            out.push_str(country);
        }
        // Not a length: no country is that long.
        None => out.push(char::MAX),
    }
    out.push_str(raw);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field gives the same result remembered as computed, asked twice, with and without
    /// a country, and two values that differ only by country or field are told apart.
    #[test]
    fn remembered_results_equal_computed_ones() {
        let values = [
            "Mary-Jane",
            "  O'Brien ",
            "Female",
            "männlich",
            "Saint-Étienne",
            "California",
            "BY",
            "SW1A 1AA",
            "94035-1234",
            "Deutschland",
            "日本",
            "",
            "   ",
            "not a value @@",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ];
        for country in [
            None,
            Some("US"),
            Some("DE"),
            Some("Deutschland"),
            Some("JP"),
        ] {
            let ctx = Context { country };
            for field in Field::ALL {
                for raw in values {
                    for _ in 0..2 {
                        assert_eq!(
                            hash_value_memo(field, raw, &ctx, true),
                            hash_value(field, raw, &ctx, true),
                            "{field:?} {raw:?} in {country:?}"
                        );
                    }
                }
            }
        }
    }

    /// Keys of different fields, countries or values differ, whatever the text holds.
    #[test]
    fn keys_tell_fields_countries_and_values_apart() {
        let mut keys = std::collections::HashSet::new();
        let mut out = String::new();
        for field in Field::ALL {
            for country in [
                None,
                Some(""),
                Some("-"),
                Some("US"),
                Some("US\0x"),
                Some("1:"),
                // As long as the code of '-': told apart from no country.
                Some("-------------------------------------------US"),
            ] {
                let long = "-------------------------------------------USx";
                for raw in ["", "x", "\0x", "US", "-", "1:", "2:US", long] {
                    key(&mut out, field, country, raw);
                    assert!(keys.insert(out.clone()), "{field:?} {country:?} {raw:?}");
                }
            }
        }
    }

    /// The memory forgets everything once full, and answers right after.
    #[test]
    fn a_full_memory_starts_over() {
        let ctx = Context {
            country: Some("US"),
        };
        for i in 0..REMEMBERED + 10 {
            let raw = format!("City {i}");
            assert_eq!(
                hash_value_memo(Field::Ct, &raw, &ctx, true),
                hash_value(Field::Ct, &raw, &ctx, true)
            );
        }
        MEMORY.with_borrow(|memory| assert!(memory.known.len() <= REMEMBERED));
    }
}

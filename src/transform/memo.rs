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
use std::hash::BuildHasher;

use compact_str::CompactString;

use super::hash::{hash_value, Hashed};
use super::normalize::{Context, Field};

/// How many values a thread remembers before it forgets them all: far more than the distinct
/// names, cities, states, postcodes, genders and countries of a page (3000 rows), and at most a
/// few hundred KiB per thread (two short texts and a digest each).
const REMEMBERED: usize = 8192;

/// One remembered result and everything it depends on.
struct Remembered {
    /// The field.
    field: Field,
    /// The row's country as given (not resolved: the result is a function of the text).
    country: Option<CompactString>,
    /// The raw value.
    raw: CompactString,
    /// [`hash_value`]'s result.
    hashed: Hashed,
}

/// What a thread remembers. A table of entries found by the hash of their parts, so that a
/// lookup neither builds a key nor allocates: building one text of the field, country and value
/// for each of a row's seven remembered values and hashing it was ~2% of a run's CPU on fully
/// populated rows (issue 24). Texts of up to 24 bytes (most: names, codes, postcodes) are kept
/// inline, so a lookup does not follow a pointer to memory of its own.
#[derive(Default)]
struct Memory {
    /// The remembered results.
    known: hashbrown::HashTable<Remembered>,
    /// The hasher of the parts (seeded per process: rows cannot aim values at one bucket).
    hasher: foldhash::fast::RandomState,
}

/// The hash of a result's parts. A tuple's hash tells its parts apart (a text's hash ends with
/// a marker byte, an `Option`'s starts with its variant), so `("US", "x")` and `("USx", "")`
/// are different keys even before the parts are compared.
fn hash_of(
    hasher: &foldhash::fast::RandomState,
    field: Field,
    country: Option<&str>,
    raw: &str,
) -> u64 {
    hasher.hash_one((field, country, raw))
}

thread_local! {
    /// This thread's memory. Pages are normalized on the runtime's threads (a streamed read) and
    /// on its blocking threads (pages read whole); each keeps its own.
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
/// The same result as [`hash_value`] for every input: an entry holds everything the result
/// depends on (the field, the row's country as given, and the raw value), and a lookup compares
/// all three. `hash_external_id` is passed through: external ids are never remembered.
pub fn hash_value_memo(
    field: Field,
    raw: &str,
    ctx: &Context<'_>,
    hash_external_id: bool,
) -> Hashed {
    if !remembered(field) {
        return hash_value(field, raw, ctx, hash_external_id);
    }
    MEMORY.with_borrow_mut(|memory| {
        let country = ctx.country;
        let hash = hash_of(&memory.hasher, field, country, raw);
        let same = |entry: &Remembered| {
            entry.field == field && entry.raw == raw && entry.country.as_deref() == country
        };
        if let Some(entry) = memory.known.find(hash, same) {
            return entry.hashed.clone();
        }
        let hashed = hash_value(field, raw, ctx, hash_external_id);
        if memory.known.len() >= REMEMBERED {
            memory.known.clear();
        }
        let Memory { known, hasher } = memory;
        known.insert_unique(
            hash,
            Remembered {
                field,
                country: country.map(CompactString::from),
                raw: CompactString::from(raw),
                hashed: hashed.clone(),
            },
            |entry| hash_of(hasher, entry.field, entry.country.as_deref(), &entry.raw),
        );
        hashed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field gives the same result remembered as computed, asked twice, with and without
    /// a country, and two inputs that differ only by country or field are told apart, also
    /// when their parts run into each other written one after another (a country that ends as
    /// another's value starts, a control character, a long country): a memory that confused
    /// two of them would answer the one asked first for the other.
    #[test]
    fn remembered_results_equal_computed_ones() {
        let long = "-------------------------------------------USx";
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
            "Berlin",
            "日本",
            "",
            "   ",
            "not a value @@",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "x",
            "\0x",
            "US",
            "-",
            "1:",
            "2:US",
            long,
        ];
        for country in [
            None,
            Some(""),
            Some("-"),
            Some("US"),
            Some("US\0x"),
            Some("1:"),
            Some("DE"),
            Some("Deutschland"),
            Some("JP"),
            Some("-------------------------------------------US"),
        ] {
            let ctx = Context {
                country,
                year: None,
            };
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

    /// The memory forgets everything once full, and answers right after.
    #[test]
    fn a_full_memory_starts_over() {
        let ctx = Context {
            country: Some("US"),
            year: None,
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

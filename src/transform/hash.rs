//! The privacy boundary: a raw customer value goes in, a normalized SHA-256 digest comes out.
//! After this module no raw personal value exists in ocapi's data.
//!
//! STUB: the full rule set is issue #3.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use super::normalize::{normalize, Context, Field, Outcome};

/// Lowercase hex SHA-256 of the UTF-8 bytes of the NFC form of `normalized`.
pub fn sha256_hex(normalized: &str) -> String {
    let nfc: String = normalized.nfc().collect();
    hex::encode(Sha256::digest(nfc.as_bytes()))
}

/// A value ready for `user_data`, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hashed {
    /// The value to send (a digest, or a plain external id when hashing it is turned off).
    Value(String),
    /// No value in the source.
    Empty,
    /// A value that could not be normalized; counted per field.
    Dropped,
}

/// Normalizes and hashes one raw value. `hash_external_id = false` sends external ids as is.
pub fn hash_value(field: Field, raw: &str, ctx: &Context<'_>, hash_external_id: bool) -> Hashed {
    match normalize(field, raw, ctx) {
        Outcome::Empty => Hashed::Empty,
        Outcome::Dropped => Hashed::Dropped,
        Outcome::AlreadyHashed(digest) => Hashed::Value(digest),
        Outcome::Normalized(value) if field == Field::ExternalId && !hash_external_id => {
            Hashed::Value(value)
        }
        Outcome::Normalized(value) => Hashed::Value(sha256_hex(&value)),
    }
}

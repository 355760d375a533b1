//! SourceRow → Event. STUB being written.

pub mod hash;
pub mod normalize;

/// ISO 4217 code, uppercase, or `None`.
pub fn currency_code(raw: &str) -> Option<String> {
    let upper = raw.trim().to_ascii_uppercase();
    iso_currency::Currency::from_code(&upper).map(|_| upper)
}

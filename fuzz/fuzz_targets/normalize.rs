//! Feeds arbitrary bytes, as lossy UTF-8, to every field's normalization and hashing in a few
//! country contexts (none, codes, an alpha-3 code, a name, and the input itself as a country).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocapi::transform::hash::hash_value;
use ocapi::transform::normalize::{country_code, normalize, Context, Field, Outcome};

/// The country contexts every input is tried in.
const COUNTRIES: [Option<&str>; 7] = [
    None,
    Some("US"),
    Some("gb"),
    Some("DEU"),
    Some("France"),
    Some("IT"),
    Some("JP"),
];

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let _ = country_code(&raw);
    for country in COUNTRIES.into_iter().chain([Some(raw.as_ref())]) {
        let ctx = Context { country };
        for field in Field::ALL {
            if let Outcome::Normalized(value) = normalize(field, &raw, &ctx) {
                assert!(!value.is_empty(), "normalized values are never empty");
            }
            let _ = hash_value(field, &raw, &ctx, true);
        }
    }
});

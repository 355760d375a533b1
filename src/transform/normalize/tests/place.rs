//! Place fields: city, state, zip and country, the last by code, English, ISO long or inverted
//! name, or its name in another language.

use super::*;

/// Cities keep only letters.
#[test]
fn cities_keep_only_letters() {
    use Field::Ct;
    check(&[
        (Ct, "New York", None, ok("newyork")),
        (Ct, "St. Louis", None, ok("stlouis")),
        (Ct, "Winston-Salem", None, ok("winstonsalem")),
        (Ct, "Zürich", None, ok("zürich")),
        (Ct, "London 2", None, ok("london")),
        (Ct, "12345", None, Outcome::Dropped),
    ]);
}

/// States use the us code only for us rows.
#[test]
fn states_use_the_us_code_only_for_us_rows() {
    use Field::St;
    check(&[
        (St, "California", Some("US"), ok("ca")),
        (St, "CA", Some("us"), ok("ca")),
        (St, "california", Some("United States of America"), ok("ca")),
        (St, "Calif.", Some("US"), ok("ca")),
        (St, "Bavaria", Some("DE"), ok("bavaria")),
        (St, "Baden-Württemberg", Some("DE"), ok("badenwürttemberg")),
    ]);
}

/// Zips follow the row country.
#[test]
fn zips_follow_the_row_country() {
    use Field::Zp;
    check(&[
        (Zp, "94035-1234", Some("US"), ok("94035")),
        (Zp, "94035-1234", Some("United States"), ok("94035")),
        (Zp, "SW1A 1AA", Some("GB"), ok("sw1a1aa")),
        (Zp, "SW1A 1AA", Some("uk"), ok("sw1a1aa")),
        (Zp, "75018", Some("FR"), ok("75018")),
        (Zp, "123", Some("US"), Outcome::Dropped),
    ]);
}

/// Countries accept codes and english names.
#[test]
fn countries_accept_codes_and_english_names() {
    use Field::Country;
    check(&[
        (Country, "US", None, ok("us")),
        (Country, "usa", None, ok("us")),
        (Country, "United States", None, ok("us")),
        (Country, "United States of America", None, ok("us")),
        (Country, "U.S.A.", None, ok("us")),
        (Country, "DEU", None, ok("de")),
        (Country, "germany", None, ok("de")),
        (Country, "United Kingdom", None, ok("gb")),
        (Country, "UK", None, ok("gb")),
        (Country, "Côte d'Ivoire", None, ok("ci")),
        (Country, "Narnia", None, Outcome::Dropped),
        (Country, "840", None, Outcome::Dropped),
        (Country, "ZZ", None, Outcome::Dropped),
    ]);
    assert_eq!(country_code(" us ").as_deref(), Some("us"));
    assert_eq!(country_code("United States").as_deref(), Some("us"));
    assert_eq!(country_code("xx"), None);
}

/// The allocation-free path for two-letter codes agrees with the general one on every pair of
/// letters, in either case.
#[test]
fn two_letter_fast_path_matches_the_general_lookup() {
    for a in b'a'..=b'z' {
        for b in b'a'..=b'z' {
            for pair in [[a, b], [a.to_ascii_uppercase(), b]] {
                let raw = std::str::from_utf8(&pair).expect("ASCII");
                let general = crate::country::alpha2(&format!("{raw}.")).map(super::Alpha2);
                assert_eq!(super::alpha2(raw), general, "{raw}");
            }
        }
    }
}

/// Countries by their ISO long or inverted names and by their names in other languages.
#[test]
fn countries_by_iso_long_inverted_and_foreign_names() {
    use Field::Country;
    check(&[
        (Country, "Korea, Republic of", None, ok("kr")),
        (Country, "Venezuela, Bolivarian Republic of", None, ok("ve")),
        (Country, "Türkiye", None, ok("tr")),
        (Country, "Virgin Islands, U.S.", None, ok("vi")),
        (Country, "Virgin Islands (British)", None, ok("vg")),
        (Country, "Congo, Democratic Republic of the", None, ok("cd")),
        (Country, "Congo", None, ok("cg")),
        (Country, "Deutschland", None, ok("de")),
        (Country, "ESPAÑA", None, ok("es")),
        (Country, "Japão", None, ok("jp")),
        (Country, "日本", None, ok("jp")),
        (Country, "Россия", None, ok("ru")),
        (Country, "Ελλάδα", None, ok("gr")),
    ]);
    // Letters outside ASCII make a name, never a code: the Vietnamese `Áo` is Austria (CLDR's
    // Vietnamese name), not Angola's `ao`, and `Ấn` is not a code either (issue 24); names with
    // accents still match.
    check(&[
        (Country, "Áo", None, ok("at")),
        (Country, "Ấn", None, Outcome::Dropped),
        (Country, "Côte d'Ivoire", None, ok("ci")),
        (Country, "Åland Islands", None, ok("ax")),
        (Country, "Réunion", None, ok("re")),
    ]);
    // A row's country context takes the same names.
    check(&[
        (
            Field::Ph,
            "030 12345678",
            Some("Deutschland"),
            ok("493012345678"),
        ),
        (Field::Zp, "00901-1234", Some("Puerto Rico"), ok("00901")),
    ]);
}

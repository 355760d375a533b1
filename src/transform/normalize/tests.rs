//! Table tests for every field rule, and property tests: normalization never panics and is
//! idempotent where it should be. The shared vectors are checked in `hash.rs`.

use proptest::prelude::*;

use super::*;

/// The year the tests pretend it is.
const YEAR: i32 = 2026;

/// Normalizes `raw` for `field` in `country` in [`YEAR`].
fn run(field: Field, raw: &str, country: Option<&str>) -> Outcome {
    normalize_at(field, raw, &Context { country }, YEAR)
}

/// Shorthand for an expected normalized value.
fn ok(value: &str) -> Outcome {
    Outcome::Normalized(value.to_owned())
}

/// Checks a table of `(field, raw, country, expected)` rows.
fn check(cases: &[(Field, &str, Option<&str>, Outcome)]) {
    for (field, raw, country, want) in cases {
        assert_eq!(
            &run(*field, raw, *country),
            want,
            "{} {raw:?} in {country:?}",
            field.key()
        );
    }
}

/// Emails are trimmed lowercased and checked.
#[test]
fn emails_are_trimmed_lowercased_and_checked() {
    use Field::Em;
    check(&[
        (
            Em,
            " John_Smith@Gmail.com ",
            None,
            ok("john_smith@gmail.com"),
        ),
        (Em, "a@b.c", None, ok("a@b.c")),
        (
            Em,
            "user.name+tag@domain.co.uk",
            None,
            ok("user.name+tag@domain.co.uk"),
        ),
        (Em, "JOSÉ@EXAMPLE.ES", None, ok("josé@example.es")),
        (Em, "no-at-sign.com", None, Outcome::Dropped),
        (Em, "two@@example.com", None, Outcome::Dropped),
        (Em, "a@b@example.com", None, Outcome::Dropped),
        (Em, "@example.com", None, Outcome::Dropped),
        (Em, "john@localhost", None, Outcome::Dropped),
        (Em, "john@example..com", None, Outcome::Dropped),
        (Em, "john smith@example.com", None, Outcome::Dropped),
        (Em, "John <john@example.com>", None, Outcome::Dropped),
        (Em, "", None, Outcome::Empty),
        (Em, " \t\n", None, Outcome::Empty),
    ]);
}

/// Phones take the calling code from the number or the country in any form.
#[test]
fn phones_take_the_calling_code_from_the_number_or_the_country_in_any_form() {
    use Field::Ph;
    check(&[
        (Ph, "(650) 555-1212", Some("US"), ok("16505551212")),
        (Ph, "(650) 555-1212", Some("usa"), ok("16505551212")),
        (
            Ph,
            "(650) 555-1212",
            Some("United States"),
            ok("16505551212"),
        ),
        (Ph, "020 7946 0958", Some("GB"), ok("442079460958")),
        (
            Ph,
            "020 7946 0958",
            Some("United Kingdom"),
            ok("442079460958"),
        ),
        (Ph, "+44 20 7946 0958", Some("US"), ok("442079460958")),
        (Ph, "0044 20 7946 0958", None, ok("442079460958")),
        (Ph, "555", Some("US"), Outcome::Dropped),
        (Ph, "", Some("US"), Outcome::Empty),
    ]);
}

/// Names lose punctuation and whitespace but keep letters.
#[test]
fn names_lose_punctuation_and_whitespace_but_keep_letters() {
    use Field::{Fn, Ln};
    check(&[
        (Fn, "Mary-Jane", None, ok("maryjane")),
        (Fn, "Mary Ann", None, ok("maryann")),
        (Fn, "José", None, ok("josé")),
        (Fn, "Jose\u{301}", None, ok("josé")),
        (Ln, "O'Brien", None, ok("obrien")),
        (Ln, "Van Der Berg", None, ok("vanderberg")),
        (Ln, "정", None, ok("정")),
        (Ln, "ÑÚÑEZ", None, ok("ñúñez")),
        (Fn, "लक्ष्मी", None, ok("लक्ष्मी")),
        (Fn, "-.-", None, Outcome::Dropped),
    ]);
}

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
        (St, "Calif.", Some("US"), Outcome::Dropped),
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
                assert_eq!(super::alpha2(raw), super::alpha2_by_name(raw), "{raw}");
            }
        }
    }
}

/// Genders are f or m.
#[test]
fn genders_are_f_or_m() {
    use Field::Ge;
    check(&[
        (Ge, "F", None, ok("f")),
        (Ge, "female", None, ok("f")),
        (Ge, "Woman", None, ok("f")),
        (Ge, "M", None, ok("m")),
        (Ge, " Male ", None, ok("m")),
        (Ge, "MAN", None, ok("m")),
        (Ge, "x", None, Outcome::Dropped),
        (Ge, "unknown", None, Outcome::Dropped),
    ]);
}

/// Dates of birth become yyyymmdd.
#[test]
fn dates_of_birth_become_yyyymmdd() {
    use Field::Db;
    check(&[
        (Db, "1997-02-16", None, ok("19970216")),
        (Db, "2/16/1997", Some("US"), ok("19970216")),
        (Db, "16/02/1997", Some("France"), ok("19970216")),
        (Db, "16.02.1997", Some("DE"), ok("19970216")),
        (Db, "1899-01-01", None, Outcome::Dropped),
        (Db, "2030-01-01", None, Outcome::Dropped),
    ]);
}

/// External ids are trimmed only.
#[test]
fn external_ids_are_trimmed_only() {
    use Field::ExternalId;
    check(&[
        (ExternalId, "  Cust_1234 ", None, ok("Cust_1234")),
        (ExternalId, "A-1 b", None, ok("A-1 b")),
    ]);
}

/// Sha256 digests pass through lowercased for every field.
#[test]
fn sha256_digests_pass_through_lowercased_for_every_field() {
    let digest = "CF14FE3C9D73FCB3574D2643988EFB2DB605B1C224725BD322D7D2350467B4DC";
    for field in Field::ALL {
        let got = run(field, &format!(" {digest} "), Some("US"));
        assert_eq!(
            got,
            Outcome::AlreadyHashed(digest.to_ascii_lowercase()),
            "{}",
            field.key()
        );
    }
}

/// Values are nfc before the rules apply.
#[test]
fn values_are_nfc_before_the_rules_apply() {
    // "e" + combining acute is one letter after NFC, so the name rule keeps it.
    assert_eq!(run(Field::Ct, "San Jose\u{301}", None), ok("sanjosé"));
    assert_eq!(run(Field::ExternalId, "Jose\u{301}", None), ok("José"));
}

/// Field keys round trip.
#[test]
fn field_keys_round_trip() {
    for field in Field::ALL {
        assert_eq!(Field::from_key(field.key()), Some(field));
    }
    assert_eq!(Field::from_key("email"), None);
}

/// A country context: none, a code in some case, an alpha-3 code, a name, or junk.
fn any_country() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "US",
            "us",
            "USA",
            "United States",
            "GB",
            "de",
            "FR",
            "IT",
            "CA"
        ])
        .prop_map(|c| Some(c.to_owned())),
        any::<String>().prop_map(Some),
    ]
}

/// A field, any of the eleven.
fn any_field() -> impl Strategy<Value = Field> {
    prop::sample::select(Field::ALL.to_vec())
}

/// Strings that look like the values the rules expect, so idempotence is tested on real output
/// and not only on inputs that are dropped.
fn plausible_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ A-Za-zÀ-ÿ.'-]{0,20}",
        "[ a-z0-9.+_-]{1,10}@[a-z0-9-]{1,8}\\.[a-z]{2,3}",
        "[+(]?[0-9 ()-]{5,18}",
        "[0-9]{1,2}[/.-][0-9]{1,2}[/.-](19|20)[0-9]{2}",
        "(19|20)[0-9]{2}-[0-9]{1,2}-[0-9]{1,2}",
        "[0-9]{5}(-[0-9]{4})?",
        "\\PC{0,20}",
    ]
}

proptest! {
    /// Normalize never panics.
    #[test]
    fn normalize_never_panics(field in any_field(), raw in any::<String>(), country in any_country()) {
        let _ = run(field, &raw, country.as_deref());
        let _ = country_code(&raw);
    }

    /// Normalize never panics on plausible values.
    #[test]
    fn normalize_never_panics_on_plausible_values(
        field in any_field(),
        raw in plausible_value(),
        country in any_country(),
    ) {
        let _ = run(field, &raw, country.as_deref());
    }

    /// Normalizing a normalized value gives it back, for every field in its row's context; for
    /// `ph` without a context, since its output is international digits without the `+`, which
    /// a national context would read as a national number (`442079460958` in the US is not
    /// possible and is dropped, rightly).
    #[test]
    fn normalization_is_idempotent(
        field in any_field(),
        raw in plausible_value(),
        country in any_country(),
    ) {
        let ctx_country = country.as_deref();
        if let Outcome::Normalized(once) = run(field, &raw, ctx_country) {
            // A phone's output is international without the `+`, which is how Meta wants it and
            // which reads back as such only without a national context.
            let again_country = if field == Field::Ph { None } else { ctx_country };
            prop_assert_eq!(run(field, &once, again_country), Outcome::Normalized(once));
        }
    }

    /// Output is nfc and trimmed.
    #[test]
    fn output_is_nfc_and_trimmed(field in any_field(), raw in any::<String>(), country in any_country()) {
        if let Outcome::Normalized(value) = run(field, &raw, country.as_deref()) {
            prop_assert!(unicode_normalization::is_nfc(&value));
            prop_assert_eq!(value.trim(), value.as_str());
            prop_assert!(!value.is_empty());
        }
    }
}

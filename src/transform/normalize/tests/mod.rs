//! Table tests for every field rule, and property tests: normalization never panics and is
//! idempotent where it should be. The shared vectors are checked in `hash.rs`.
//!
//! Here: the helpers every table uses and the rules common to all fields (digests, NFC and
//! NFKC, lowercasing, field keys, the properties over every field). The field families have a
//! file each: `contact.rs` (email, phone, external id), `person.rs` (names, gender, date of
//! birth), `place.rs` (city, state, zip, country).

use proptest::prelude::*;

use super::*;

mod contact;
mod person;
mod place;

/// The year the tests pretend it is.
const YEAR: i32 = 2026;

/// Normalizes `raw` for `field` in `country` in [`YEAR`].
fn run(field: Field, raw: &str, country: Option<&str>) -> Outcome {
    normalize_at(
        field,
        raw,
        &Context {
            country,
            year: None,
        },
        YEAR,
    )
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

proptest! {
    /// Decimal digits are appended as `format!` pads them, at every width a rule asks for.
    #[test]
    fn decimals_are_written_as_format_pads_them(value: u32, width in 0usize..12) {
        let mut out = String::from("x");
        push_decimal(&mut out, value, width);
        prop_assert_eq!(out, format!("x{value:0width$}"));
    }
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
            // which reads back as such only without a national context. A North American
            // number of local length (`2-46-1900` with CA is `12461900`) reads back, without
            // its country, as another country's number: such short outputs are left out here
            // (kept by the documented "possible number" rule; see the issue 12 closing note).
            prop_assume!(field != Field::Ph || once.len() >= 10);
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

/// Full-width letters, digits and punctuation, ligatures and other compatibility characters
/// are folded before every field's rule.
#[test]
fn compatibility_characters_are_folded_before_every_rule() {
    use Field::{Country, Ct, Db, Em, ExternalId, Fn, Ln, Ph, St, Zp};
    check(&[
        (
            Em,
            "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            None,
            ok("john@example.com"),
        ),
        (
            Ph,
            "０９０-１２３４-５６７８",
            Some("JP"),
            ok("819012345678"),
        ),
        (
            Ph,
            "（０３）１２３４－５６７８",
            Some("JP"),
            ok("81312345678"),
        ),
        (Ph, "＋８１ ３ １２３４ ５６７８", None, ok("81312345678")),
        (Zp, "１５０-０００１", Some("JP"), ok("1500001")),
        (Zp, "９４０３５－１２３４", Some("US"), ok("94035")),
        (Fn, "ﬁona", None, ok("fiona")),
        (Ln, "ﬀoulkes", None, ok("ffoulkes")),
        (Ct, "ＴＯＫＹＯ", None, ok("tokyo")),
        (St, "ＣＡ", Some("US"), ok("ca")),
        (Db, "１９９０－１２－３１", None, ok("19901231")),
        (Db, "１９９０年１２月３１日", None, ok("19901231")),
        (Country, "ＵＳＡ", None, ok("us")),
        (ExternalId, "ＡＢ１２３", None, ok("AB123")),
        // Circled and superscript digits are digits; a half-width katakana name is full-width.
        (Ph, "⑥⑤⓪-⑤⑤⑤-①②①②", Some("US"), ok("16505551212")),
        // The row's country is folded too.
        (Ph, "03-1234-5678", Some("ＪＰ"), ok("81312345678")),
        (Ph, "03-1234-5678", Some("Ｊａｐａｎ"), ok("81312345678")),
        (Fn, "ｱｷﾗ", None, ok("アキラ")),
    ]);
}

/// Lowercasing takes the whole string, so a Greek word ends in a final sigma wherever it ends,
/// in names, cities and states.
#[test]
fn greek_words_end_in_a_final_sigma() {
    use Field::{Ct, Fn, Ln, St};
    check(&[
        (Ln, "ΠΑΠΑΔΟΠΟΥΛΟΣ", None, ok("παπαδοπουλος")),
        (Fn, "ΟΔΥΣΣΕΑΣ", None, ok("οδυσσεας")),
        (Fn, "Νίκος", None, ok("νίκος")),
        // Each word's last sigma is final, even when the spaces go.
        (Ln, "ΣΤΑΥΡΟΣ ΠΑΠΑΣ", None, ok("σταυροςπαπας")),
        (Ct, "ΠΕΙΡΑΙΑΣ", None, ok("πειραιας")),
        (St, "ΑΤΤΙΚΗΣ", Some("GR"), ok("αττικης")),
        // A sigma inside a word stays medial.
        (Fn, "ΣΩΣΑΝΝΑ", None, ok("σωσαννα")),
    ]);
}

proptest! {
    /// Full-width spelling changes nothing, for every field in every context: it is folded.
    #[test]
    fn full_width_spelling_normalizes_like_ascii(
        field in any_field(),
        raw in plausible_ascii_value(),
        country in any_country(),
    ) {
        let wide: String = raw
            .chars()
            .map(|c| match c {
                ' ' => '\u{3000}',
                '!'..='~' => char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap_or(c),
                _ => c,
            })
            .collect();
        prop_assert_eq!(run(field, &wide, country.as_deref()), run(field, &raw, country.as_deref()));
    }
}

/// Thai and Lao letters canonical in their script are kept: SARA AM (U+0E33, U+0EB3) is not
/// rewritten into NIKHAHIT + SARA AA as NFKC would (`hash fn --country TH สำราญ`).
#[test]
fn thai_and_lao_sara_am_is_kept() {
    use Field::*;
    check(&[
        (Fn, "สำราญ", Some("TH"), ok("สำราญ")),
        (Ln, "คำแหง", Some("TH"), ok("คำแหง")),
        (Ct, "ลำปาง", Some("TH"), ok("ลำปาง")),
        (St, "กำแพงเพชร", Some("TH"), ok("กำแพงเพชร")),
        (Fn, "ຄຳ", Some("LA"), ok("ຄຳ")),
        (Ct, "ນ້ຳທາ", Some("LA"), ok("ນ້ຳທາ")),
        // Compatibility forms in the same value still fold.
        (Fn, "ｽﾐｽ สำราญ", None, ok("スミスสำราญ")),
    ]);
}

proptest! {
    /// Names, cities and states written in Thai or Lao (in NFC) come out letter for letter,
    /// spaces and punctuation aside: nothing in those scripts is a compatibility form.
    #[test]
    fn thai_and_lao_letters_survive_every_text_field(
        text in "[\u{0E01}-\u{0E3A}\u{0E40}-\u{0E4E}\u{0E81}-\u{0EBD}\u{0EC0}-\u{0ECD}\u{0EDC}-\u{0EDF}]{1,16}",
        field in prop::sample::select(vec![Field::Fn, Field::Ln, Field::Ct, Field::St]),
    ) {
        let canonical: String = text.nfc().collect();
        // What is hashed is NFC: marks that filtering brings together take canonical order.
        let kept: String = canonical.chars().filter(|c| is_name_char(*c)).nfc().collect();
        let got = run(field, &canonical, Some("TH"));
        if kept.is_empty() {
            prop_assert_eq!(got, Outcome::Dropped);
        } else {
            prop_assert_eq!(got, ok(&kept));
        }
    }
}

/// ASCII values shaped like each field's, for properties about spelling.
fn plausible_ascii_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ A-Za-z.'-]{0,20}",
        "[a-z0-9.+_-]{1,10}@[a-z0-9-]{1,8}\\.[a-z]{2,3}",
        "[+(]?[0-9 ()-]{5,18}",
        "[0-9]{1,2}[/.-][0-9]{1,2}[/.-](19|20)[0-9]{2}",
        "[ -~]{0,20}",
    ]
}

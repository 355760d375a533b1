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

/// A date whose day is over 12 is read whatever the row's country says.
#[test]
fn unambiguous_dates_win_over_the_country_convention() {
    use Field::Db;
    check(&[
        (Db, "16/02/1997", Some("US"), ok("19970216")),
        (Db, "2/16/1997", Some("GB"), ok("19970216")),
        (Db, "2/16/1997", Some("DE"), ok("19970216")),
        (Db, "01/02/2001", Some("US"), ok("20010102")),
        (Db, "01/02/2001", Some("GB"), ok("20010201")),
        (Db, "01/02/2001", None, Outcome::Dropped),
    ]);
}

/// A calendar date between 1900 and [`YEAR`], to write in several ways.
fn any_date() -> impl Strategy<Value = NaiveDateParts> {
    (1900i32..=YEAR, 1u32..=12, 1u32..=31)
        .prop_filter("on the calendar", |(y, m, d)| {
            chrono::NaiveDate::from_ymd_opt(*y, *m, *d).is_some()
        })
        .prop_map(|(year, month, day)| NaiveDateParts { year, month, day })
}

/// A calendar date between 1900 and [`YEAR`] whose day is in `days`.
fn date_with_days(days: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = NaiveDateParts> {
    (1900i32..=YEAR, 1u32..=12, days)
        .prop_filter("on the calendar", |(y, m, d)| {
            chrono::NaiveDate::from_ymd_opt(*y, *m, *d).is_some()
        })
        .prop_map(|(year, month, day)| NaiveDateParts { year, month, day })
}

/// A calendar date's parts.
#[derive(Debug, Clone, Copy)]
struct NaiveDateParts {
    /// Year.
    year: i32,
    /// Month, 1 to 12.
    month: u32,
    /// Day, 1 to 31.
    day: u32,
}

impl NaiveDateParts {
    /// `YYYYMMDD`.
    fn expected(self) -> Outcome {
        ok(&format!("{:04}{:02}{:02}", self.year, self.month, self.day))
    }
}

/// A separator between a date's numbers.
fn any_separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["-", "/", ".", " ", "|", "_", "–", ":", " / ", ", "])
}

/// Text around a date: none, a label, a time, a note.
fn any_wrapper() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop::sample::select(vec![
        ("", ""),
        ("DOB: ", ""),
        ("Born ", " (verified)"),
        ("", " 00:00:00"),
        ("", "T12:30:00Z"),
        ("date of birth is ", "."),
    ])
}

/// A country context for dates.
fn any_date_country() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        None,
        Some("US"),
        Some("GB"),
        Some("DE"),
        Some("CA"),
        Some("JP"),
    ])
}

proptest! {
    /// Year-first dates, with any separator and around any text, in any country.
    #[test]
    fn year_first_dates_read_in_any_country(
        date in any_date(),
        sep in any_separator(),
        (before, after) in any_wrapper(),
        country in any_date_country(),
        pad in any::<bool>(),
    ) {
        let (m, d) = if pad {
            (format!("{:02}", date.month), format!("{:02}", date.day))
        } else {
            (date.month.to_string(), date.day.to_string())
        };
        let raw = format!("{before}{}{sep}{m}{sep}{d}{after}", date.year);
        prop_assert_eq!(run(Field::Db, &raw, country), date.expected(), "{}", raw);
    }

    /// A day over 12 tells the order: both orders read alike, whatever the country.
    #[test]
    fn a_day_over_12_tells_the_order_in_any_country(
        date in date_with_days(13..=31),
        sep in any_separator(),
        (before, after) in any_wrapper(),
        country in any_date_country(),
    ) {
        for raw in [
            format!("{before}{}{sep}{}{sep}{}{after}", date.day, date.month, date.year),
            format!("{before}{}{sep}{}{sep}{}{after}", date.month, date.day, date.year),
        ] {
            prop_assert_eq!(run(Field::Db, &raw, country), date.expected(), "{}", raw);
        }
    }

    /// An ambiguous day/month follows the country, and is dropped without one.
    #[test]
    fn ambiguous_dates_follow_the_country(
        date in date_with_days(1..=12).prop_filter("ambiguous", |d| d.day != d.month),
        sep in prop::sample::select(vec!["-", "/", " "]),
    ) {
        let raw = format!("{:02}{sep}{:02}{sep}{}", date.month, date.day, date.year);
        prop_assert_eq!(run(Field::Db, &raw, Some("US")), date.expected(), "{}", raw);
        let raw = format!("{:02}{sep}{:02}{sep}{}", date.day, date.month, date.year);
        prop_assert_eq!(run(Field::Db, &raw, Some("GB")), date.expected(), "{}", raw);
        prop_assert_eq!(run(Field::Db, &raw, None), Outcome::Dropped, "{}", raw);
        prop_assert_eq!(run(Field::Db, &raw, Some("CA")), Outcome::Dropped, "{}", raw);
    }

    /// Month names, full or short, before or after the day; CJK markers in either order.
    #[test]
    fn month_names_and_cjk_markers(date in any_date(), country in any_date_country(), full in any::<bool>()) {
        let month = chrono::Month::try_from(u8::try_from(date.month).unwrap_or(1)).map_or("", |m| m.name());
        let month = if full { month.to_owned() } else { month[..3].to_owned() };
        for raw in [
            format!("{month} {}, {}", date.day, date.year),
            format!("{} {month} {}", date.day, date.year),
            format!("{} {} {}", date.day, month.to_uppercase(), date.year),
            format!("{}年{}月{}日", date.year, date.month, date.day),
            format!("{}月{}日{}年", date.month, date.day, date.year),
            format!("{}년 {}월 {}일", date.year, date.month, date.day),
        ] {
            prop_assert_eq!(run(Field::Db, &raw, country), date.expected(), "{}", raw);
        }
    }

    /// Full-width spelling changes nothing, for every field in every context: NFKC folds it.
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

    /// Gender titles with any case and punctuation.
    #[test]
    fn titles_give_a_gender_in_any_case(
        (title, want) in prop::sample::select(vec![
            ("mr", "m"), ("sir", "m"), ("mister", "m"), ("mrs", "f"), ("ms", "f"),
            ("miss", "f"), ("dame", "f"), ("lady", "f"), ("madam", "f"),
        ]),
        upper in prop::collection::vec(any::<bool>(), 6),
        dot in any::<bool>(),
    ) {
        let cased: String = title
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect();
        let raw = if dot { format!("{cased}.") } else { cased };
        prop_assert_eq!(run(Field::Ge, &raw, None), ok(want));
    }

    /// A NANP row reads any international prefix: `00`, `011`, `+00` and `+` give the same
    /// number as the `+` form without a country.
    #[test]
    fn nanp_rows_read_any_international_prefix(
        number in prop::sample::select(vec![
            "44 20 7946 0958", "49 30 12345678", "33 6 12 34 56 78", "81 3 1234 5678",
            "61 2 9374 4000", "52 55 1234 5678", "1 650 555 1212",
        ]),
        country in prop::sample::select(vec!["US", "CA", "PR"]),
    ) {
        let want = run(Field::Ph, &format!("+{number}"), None);
        prop_assert!(matches!(want, Outcome::Normalized(_)));
        // A stray `0` before the calling code is read only before NANP's own `1`.
        let stray = if number.starts_with('1') { &["0"][..] } else { &[][..] };
        for prefix in ["00", "011 ", "+00", "+"].iter().chain(stray) {
            let raw = format!("{prefix}{number}");
            prop_assert_eq!(&run(Field::Ph, &raw, Some(country)), &want, "{}", raw);
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

//! Contact fields: email, phone (with its calling code from the number or the row's country)
//! and external id.

use proptest::prelude::*;

use super::*;

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

/// A valid national number whose area code equals the country's calling code keeps it, in the
/// row's country in any form; the same digits after `+` are read as international.
#[test]
fn area_codes_equal_to_the_calling_code_are_kept() {
    use Field::Ph;
    check(&[
        (Ph, "(55) 99555-1234", Some("BR"), ok("5555995551234")),
        (Ph, "(55) 99555-1234", Some("Brasil"), ok("5555995551234")),
        (Ph, "055 99555-1234", Some("BR"), ok("5555995551234")),
        (Ph, "+55 99555-1234", Some("BR"), ok("55995551234")),
        (Ph, "5061 2345", Some("CR"), ok("50650612345")),
        (Ph, "298 123", Some("FO"), ok("298298123")),
        (Ph, "8 37 012345", Some("LT"), ok("37037012345")),
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

proptest! {
    /// An ASCII address is judged by bytes exactly as any text is judged by characters, on
    /// texts made of what an address has and what breaks one.
    #[test]
    fn ascii_emails_are_judged_as_any_text_is(text in "[a-zA-Z0-9.+'_~ -]{0,8}@?[a-zA-Z0-9.@_-]{0,12}") {
        prop_assert_eq!(
            crate::transform::normalize::looks_like_ascii_email(text.as_bytes()),
            crate::transform::normalize::looks_like_email(&text)
        );
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

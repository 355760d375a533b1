//! `ph`: digits only, with the country calling code, through libphonenumber's metadata (the
//! `phonenumber` crate). A number is dropped only when its length cannot be a *possible* one for
//! its country, never for not being *valid* (docs/normalization.md).

use phonenumber::country::Id;

use super::Outcome;
use metadata::Metadata;

#[cfg(test)]
mod fast_tests;
mod metadata;
mod rules;

/// More digits than any dialled form of an E.164 number can have: 15 digits of E.164 plus an
/// international prefix of up to 5 digits (`00`, `011`, `0011`, `00XXX` carrier codes).
const MAX_DIGITS: usize = 20;

/// The digits of a phone value and whether it was written in international form.
#[derive(Debug, PartialEq, Eq)]
struct Dialled {
    /// ASCII digits only, in order, without the extension.
    digits: String,
    /// A `+` came before the first digit.
    plus: bool,
}

/// Normalizes a phone number; `country` is the row's alpha-2 code in lowercase, if known.
pub(super) fn phone(raw: &str, country: Option<&str>) -> Outcome {
    let Some(dialled) = dial_digits(raw) else {
        return Outcome::Dropped;
    };
    let region = country.and_then(region_id);
    let fast = if dialled.plus {
        international_fast(&dialled.digits)
    } else {
        region.and_then(|region| national_fast(&dialled, region))
    };
    match fast {
        Some(fast) => Outcome::Normalized(fast),
        None => parsed(&dialled, region),
    }
}

/// The common international case without the parser: `+`, a calling code, and a national
/// number the parser would keep as written. Follows the `phonenumber` crate's `parse` of a
/// number in international form (`parser::parse_with`, as libphonenumber's `parseHelper`): the
/// calling code is the first one to three digits that are one (`helper::country_code`); the
/// region whose rules read the rest is the code's only region, or, for a code shared by several
/// (+1, +7, +44, +61…), the first that the number is valid in or whose leading digits it starts
/// with (`validator::source_for`); a trunk prefix after the code is stripped (`+49 (0)30…`). So a
/// national part that starts with 0, a trunk prefix or the national prefix goes to the parser,
/// as does, under a shared code, one that is not valid in the code's main region and that some
/// region of the code would strip a trunk prefix from (the parser reads `+1 8686925` as
/// Trinidad's `18688686925`; `+1 653 552 1152`, in no region and stripped by none, keeps its
/// digits whichever region reads it: [`rules::no_region_strips`]), or a code of no region
/// (`+800`). Under a
/// code of one region validity decides nothing, so it is not judged: a number that is possible
/// but not valid (`+33 7 01 00 00 78`) is as fast as a valid one.
fn international_fast(digits: &str) -> Option<String> {
    if digits.starts_with('0') {
        return None;
    }
    let (code, national, (region, shared)) =
        (1..=3.min(digits.len().saturating_sub(1))).find_map(|len| {
            let code: u16 = digits[..len].parse().ok()?;
            rules::main_region(code).map(|main| (code, &digits[len..], main))
        })?;
    rules::with(region, |rules| {
        if national.len() < 2
            || national.starts_with('0')
            || rules.trunk_prefix_len(national)? != 0
            || rules.starts_with_national_prefix(national)
            || (shared && !rules.is_valid(national) && !rules::no_region_strips(code, national))
        {
            return None;
        }
        // The calling code and the national number are the digits as written (no code starts
        // with 0): one allocation of the right size, not a format's two.
        rules
            .is_possible_length(national.len())
            .then(|| digits.to_owned())
    })
}

/// [`phone`] for what [`national_fast`] leaves: libphonenumber's parser (the `phonenumber`
/// crate), after [`plain_prefix_fast`].
fn parsed(dialled: &Dialled, region: Option<Id>) -> Outcome {
    if let Some(fast) = region.and_then(|region| plain_prefix_fast(dialled, region)) {
        return Outcome::Normalized(fast);
    }
    let parsed = if dialled.plus {
        // The number says its own country; a national context must not touch it. No calling
        // code starts with 0: zeros after the `+` are a stray exit code (`+001 616…`).
        phonenumber::parse(None, format!("+{}", dialled.digits.trim_start_matches('0')))
    } else if let Some(rest) = region
        .filter(|region| is_nanp(*region))
        .and_then(|_| nanp_international(&dialled.digits))
    {
        phonenumber::parse(None, format!("+{rest}"))
    } else if let Some(region) = region {
        // National, or international with this region's exit code (`00`, `011`…): the parser
        // strips the exit code or the trunk prefix and adds the region's calling code.
        phonenumber::parse(Some(region), &dialled.digits)
    } else if let Some(rest) = dialled.digits.strip_prefix("00") {
        phonenumber::parse(None, format!("+{rest}"))
    } else {
        // No country to go by: Meta's rule is that the digits already carry the calling code.
        phonenumber::parse(None, format!("+{}", dialled.digits.trim_start_matches('0')))
    };
    let Ok(number) = parsed else {
        return Outcome::Dropped;
    };
    let code = number.code().value();
    let national = number.national().to_string();
    if is_possible(code, national.len()) {
        Outcome::Normalized(with_code(code, &national))
    } else {
        Outcome::Dropped
    }
}

/// Loads libphonenumber's metadata now ([`metadata`], ~4 ms of CPU); done by the first page's
/// normalization, that held the whole pipeline up. The parser's own database is built only
/// when a number needs the parser.
pub(super) fn load_metadata() {
    metadata::load();
}

/// The digits of a dialled number, or `None` when there are none or too many.
///
/// Separators and a leading `tel:` are ignored; an extension (`x12`, `ext. 12`, `#12`, `;ext=12`)
/// ends the number, as does any letter after the first digit. Only `+` before the first digit
/// marks the international form.
fn dial_digits(raw: &str) -> Option<Dialled> {
    let mut digits = String::with_capacity(16);
    let mut plus = false;
    for c in raw.chars() {
        if c.is_ascii_digit() {
            if digits.len() == MAX_DIGITS {
                return None;
            }
            digits.push(c);
        } else if digits.is_empty() {
            plus |= c == '+';
        } else if c.is_alphabetic() || c == '#' || c == ';' || c == ',' {
            break;
        }
    }
    (!digits.is_empty()).then_some(Dialled { digits, plus })
}

/// The common case without the parser (whose regex cache locks a mutex and hashes every
/// pattern string on each match): a well-formed national number. Follows libphonenumber's
/// `parse` for a number without `+` in a region (`PhoneNumberUtil.parseHelper`): no exit code
/// at the start, the trunk prefix stripped when what is left is a valid national number, and the
/// calling code kept as part of the number when the whole is valid (Brazil's area code 55:
/// `(55) 99555-1234` is `5555995551234`, not `55995551234`). Validity is the region's own
/// number patterns from libphonenumber's metadata ([`rules::Rules::is_valid`]), judged only where
/// it decides: after a trunk prefix, or before digits that start with the calling code (not
/// valid so, they may be the international form without `+`: [`international_without_plus`]).
///
/// `None` hands the number to the parser: international form, an exit code, a trunk-prefix
/// pattern that rewrites the number, a number that is not valid where validity decides, a
/// leading 0 that stays (Italy), or any case where the calling code could be read either way.
fn national_fast(dialled: &Dialled, region: Id) -> Option<String> {
    if dialled.plus || dialled.digits.starts_with("00") {
        return None;
    }
    rules::with(region, |rules| {
        let digits = dialled.digits.as_str();
        if rules.starts_with_exit_code(digits) {
            return None;
        }
        let national = match rules.trunk_prefix_len(digits)? {
            // Without a trunk prefix, the parser reads a calling code off the front only when
            // the number starts with it (`maybeExtractCountryCode`): validity decides only
            // then, and a whole that is valid keeps it (Brazil's area code 55).
            // Not valid so, the digits are the number in international form without its `+`
            // (`39 347 123 4567` in Italy) when what follows the code is valid, else the
            // parser's.
            0 if digits.starts_with(rules.code_text()) && !rules.is_valid(digits) => {
                return international_without_plus(rules, digits);
            }
            0 => digits,
            len => {
                // libphonenumber strips the prefix when the rest is valid; a whole that is
                // valid too, and starts with the calling code, could be read either way.
                let rest = &digits[len..];
                if !(rules.is_valid(rest) || strips_viable_rest(rules, digits, rest))
                    || (digits.starts_with(rules.code_text()) && rules.is_valid(digits))
                {
                    return None;
                }
                rest
            }
        };
        if national.starts_with('0') {
            return None;
        }
        // libphonenumber judges length by the main region of the calling code (US for +1).
        rules
            .is_possible_length(national.len())
            .then(|| [rules.code_text(), national].concat())
    })
}

/// Whether a trunk prefix is stripped from `digits`, leaving `rest`, that is not a valid
/// number of the region: when `rest` fits the region's general description and has a length
/// possible in the region (libphonenumber's `maybeStripNationalPrefixAndCarrierCode` and the
/// length test after it in `parseHelper`; the `phonenumber` crate's parser strips the prefix in
/// every such case too). A Brazilian number after the carrier-selection prefix `90`
/// (`(90) 90159-0022`, `55901590022`) is one. Left to the parser (`false`): digits that start
/// with the calling code (they may be the international form without `+`), and a rest that
/// starts with the national prefix, which the crate's parser strips once more.
fn strips_viable_rest(rules: &rules::Rules, digits: &str, rest: &str) -> bool {
    !digits.starts_with(rules.code_text())
        && !rules.starts_with_national_prefix(rest)
        && rules.fits_general(rest)
        && rules.is_possible_here(rest.len())
}

/// The calling code and the national significant number of `rest`, the digits after a row's
/// own calling code in a number whose national reading is not valid, as libphonenumber's
/// `maybeExtractCountryCode` reads them: international when `rest`, or `rest` without a trunk
/// prefix (`49 030 123456`), is a valid number of the region (`49 30 123456` in Germany is
/// `4930123456`), and, as libphonenumber also does, when the whole is too long for the region or
/// does not fit its general pattern while the rest does (`267 2679819` in Botswana). `None`
/// (the parser's, as before) otherwise, or when the rest's length is not possible.
fn international_without_plus(rules: &rules::Rules, digits: &str) -> Option<String> {
    let rest = &digits[rules.code_text().len()..];
    let trunk = rules.trunk_prefix_len(rest).unwrap_or(0);
    let national = [rest, &rest[trunk..]]
        .into_iter()
        .find(|national| rules.is_valid(national))
        .or_else(|| {
            let national = &rest[trunk..];
            (rules.is_too_long(digits.len())
                || (!rules.fits_general(digits) && rules.fits_general(national)))
            .then_some(national)
        })?;
    rules
        .is_possible_length(national.len())
        .then(|| [rules.code_text(), national].concat())
}

/// The next common case without the parser, for numbers [`national_fast`] leaves because they
/// are not valid as read (fictional `555` numbers): a national number in a region whose trunk
/// prefix is a plain digit string (`0`, `1`, `8`). `None` hands the number to the parser:
/// international form, an exit code, a region with a trunk-prefix pattern, or a length that is
/// not possible as read here.
fn plain_prefix_fast(dialled: &Dialled, region: Id) -> Option<String> {
    if dialled.plus || dialled.digits.starts_with("00") {
        return None;
    }
    let meta = metadata::by_id(region.as_ref())?;
    // The trunk prefixes to strip: the national prefix, or the parsing pattern when it is a plain
    // alternation of digit strings (GB's `0|180020`); any other pattern needs the parser. Like the
    // regex, the first alternative that starts the number wins.
    let parsing = meta.national_prefix_for_parsing();
    let prefixes = match parsing {
        Some(p) if p.bytes().all(|b| b.is_ascii_digit() || b == b'|') => p,
        Some(_) => return None,
        None => meta.national_prefix().unwrap_or(""),
    };
    let prefix = prefixes
        .split('|')
        .find(|p| !p.is_empty() && dialled.digits.starts_with(p));
    // A leading 0 that is not a trunk prefix may start an exit code (`011`), or belong to the
    // number (Italy): the parser knows which.
    if dialled.digits.starts_with('0') && !prefix.is_some_and(|p| p.starts_with('0')) {
        return None;
    }
    let national = prefix.map_or(dialled.digits.as_str(), |p| &dialled.digits[p.len()..]);
    if national.is_empty() || national.starts_with('0') {
        return None;
    }
    let code = meta.country_code();
    // libphonenumber judges length by the main region of the calling code (US for +1).
    let possible = if meta.is_main_country_for_code() {
        possible_in(meta, national.len())
    } else {
        is_possible(code, national.len())
    };
    possible.then(|| with_code(code, national))
}

/// The calling code's digits, then the national number's: a string of its final size (a
/// `format!` of the two grew once on nearly every number).
fn with_code(code: u16, national: &str) -> String {
    let mut out = String::with_capacity(3 + national.len());
    super::push_decimal(&mut out, u32::from(code), 1);
    out.push_str(national);
    out
}

/// In a North American row, the digits after an international prefix, with their calling code:
/// no North American number, nor its trunk prefix `1`, starts with 0, so `011` (the NANP exit
/// code), `00` (everyone else's, `0044 20…`) or a stray `0` before the calling code `1`
/// (`01 (650) 123-4567`) is one. A single `0` before another digit is left to the parser.
fn nanp_international(digits: &str) -> Option<&str> {
    if let Some(rest) = digits.strip_prefix("011") {
        return Some(rest);
    }
    if digits.starts_with("00") {
        return Some(digits.trim_start_matches('0'));
    }
    digits.strip_prefix("01").map(|_| &digits[1..])
}

/// Whether `region` is in the North American Numbering Plan (calling code 1).
fn is_nanp(region: Id) -> bool {
    metadata::by_id(region.as_ref()).is_some_and(|meta| meta.country_code() == 1)
}

/// libphonenumber's region id for an alpha-2 code (any case), if the crate has one.
fn region_id(alpha2: &str) -> Option<Id> {
    /// Every alpha-2 code's id, by [`metadata::slot`]: the crate parses an id by comparing the
    /// text with each of its ~250 names in turn, ~2% of a run's CPU on fully populated rows
    /// when done for every phone (issue 24).
    static IDS: std::sync::LazyLock<Vec<Option<Id>>> = std::sync::LazyLock::new(|| {
        (b'A'..=b'Z')
            .flat_map(|a| (b'A'..=b'Z').map(move |b| [a, b]))
            .map(|code| std::str::from_utf8(&code).ok()?.parse().ok())
            .collect()
    });
    let mut upper = [0u8; 2];
    if alpha2.len() != 2 {
        return None;
    }
    upper.copy_from_slice(alpha2.as_bytes());
    upper.make_ascii_uppercase();
    IDS.get(metadata::slot(std::str::from_utf8(&upper).ok()?)?)
        .copied()
        .flatten()
}

/// libphonenumber's `isPossibleNumber`: whether a national significant number of `len` digits
/// can exist under calling code `code` (local-only lengths included, as libphonenumber counts
/// them possible).
///
/// The crate loads the raw `PhoneNumberMetadata.xml`, whose general descriptor carries no
/// possible lengths: libphonenumber's metadata build fills them in as the union over the number
/// types, and so does this (`BuildMetadataFromXml.setPossibleLengthsGeneralDesc`).
fn is_possible(code: u16, len: usize) -> bool {
    // The main region comes first ([`metadata::by_code`]).
    metadata::by_code(code)
        .next()
        .is_some_and(|main| possible_in(main, len))
}

/// Whether `len` is a possible national significant number length in `meta`'s region.
fn possible_in(meta: &Metadata, len: usize) -> bool {
    let Ok(len) = u16::try_from(len) else {
        return false;
    };
    meta.general().into_iter().chain(meta.types()).any(|desc| {
        desc.possible_length.contains(&len) || desc.possible_local_length.contains(&len)
    })
}

#[cfg(test)]
mod tests {
    use phonenumber::metadata::DATABASE;

    use super::*;

    /// Shorthand for an expected normalized number.
    fn ok(value: &str) -> Outcome {
        Outcome::Normalized(value.to_owned())
    }

    /// National numbers gain the calling code and lose the trunk prefix.
    #[test]
    fn national_numbers_gain_the_calling_code_and_lose_the_trunk_prefix() {
        let cases = [
            ("(650) 555-1212", Some("us"), ok("16505551212")),
            ("650.555.1212", Some("us"), ok("16505551212")),
            ("1 650 555 1212", Some("us"), ok("16505551212")),
            ("1-650-555-1212", Some("us"), ok("16505551212")),
            ("020 7946 0958", Some("gb"), ok("442079460958")),
            ("07700 900123", Some("gb"), ok("447700900123")),
            ("030 12345678", Some("de"), ok("493012345678")),
            ("06 12 34 56 78", Some("fr"), ok("33612345678")),
            // Italy keeps its leading zero in international form.
            ("06 6982 1234", Some("it"), ok("390669821234")),
            ("(02) 9374 4000", Some("au"), ok("61293744000")),
        ];
        for (raw, country, want) in cases {
            assert_eq!(phone(raw, country), want, "{raw} in {country:?}");
        }
    }

    /// International numbers keep their own country.
    #[test]
    fn international_numbers_keep_their_own_country() {
        let cases = [
            ("+44 20 7946 0958", Some("us"), ok("442079460958")),
            ("+1 (650) 555-1212", Some("gb"), ok("16505551212")),
            ("+49 (0)30 12345678", Some("de"), ok("493012345678")),
            ("0044 20 7946 0958", Some("de"), ok("442079460958")),
            ("011 44 20 7946 0958", Some("us"), ok("442079460958")),
            ("0044 20 7946 0958", Some("us"), ok("442079460958")),
            ("0044 20 7946 0958", Some("ca"), ok("442079460958")),
            ("00 49 30 12345678", Some("pr"), ok("493012345678")),
            ("01 (650) 123-4567", Some("us"), ok("16501234567")),
            ("001 650 123 4567", Some("us"), ok("16501234567")),
            ("+001 (616) 954-78 88", Some("us"), ok("16169547888")),
            ("+0044 20 7946 0958", None, ok("442079460958")),
            ("0044 20 7946 0958", None, ok("442079460958")),
            ("16505551212", None, ok("16505551212")),
            ("+16505551212", None, ok("16505551212")),
            ("tel:+1-650-555-1212", None, ok("16505551212")),
        ];
        for (raw, country, want) in cases {
            assert_eq!(phone(raw, country), want, "{raw} in {country:?}");
        }
    }

    /// In a North American row a single leading 0 is an international prefix only before the
    /// calling code 1; before another digit it is no reason to read a foreign number.
    #[test]
    fn a_single_leading_zero_in_a_nanp_row_is_a_prefix_only_before_1() {
        assert_eq!(nanp_international("016501234567"), Some("16501234567"));
        assert_eq!(nanp_international("00442079460958"), Some("442079460958"));
        assert_eq!(nanp_international("011442079460958"), Some("442079460958"));
        assert_eq!(nanp_international("06505551212"), None);
        assert_eq!(nanp_international("6505551212"), None);
        assert_ne!(phone("0650 555 1212", Some("us")), ok("6505551212"));
    }

    /// Extensions are not part of the number.
    #[test]
    fn extensions_are_not_part_of_the_number() {
        assert_eq!(phone("(650) 555-1212 x123", Some("us")), ok("16505551212"));
        assert_eq!(phone("650-555-1212 ext. 9", Some("us")), ok("16505551212"));
        assert_eq!(phone("+1 650 555 1212;ext=9", None), ok("16505551212"));
    }

    /// Only impossible lengths are dropped not invalid numbers.
    #[test]
    fn only_impossible_lengths_are_dropped_not_invalid_numbers() {
        // 555-0100 numbers are reserved for fiction: not valid, but possible.
        assert_eq!(phone("(202) 555-0100", Some("us")), ok("12025550100"));
        // A 10-digit US number starting with 0 is not valid but has a possible length.
        assert_eq!(phone("+1 012 345 6789", None), ok("10123456789"));
        assert_eq!(phone("12345", Some("us")), Outcome::Dropped);
        assert_eq!(phone("+1 650 555 12121", None), Outcome::Dropped);
        assert_eq!(phone("+999 1234567", None), Outcome::Dropped);
        assert_eq!(phone("no number", Some("us")), Outcome::Dropped);
        assert_eq!(
            phone("123456789012345678901234", Some("us")),
            Outcome::Dropped
        );
    }

    /// The fast path agrees with the parser.
    #[test]
    fn the_fast_path_agrees_with_the_parser() {
        let cases = [
            ("6505551212", "US"),
            ("16505551212", "US"),
            ("02079460958", "GB"),
            ("07700900123", "GB"),
            ("03012345678", "DE"),
            ("0612345678", "FR"),
            ("84951234567", "RU"),
            ("0293744000", "AU"),
            ("0312345678", "JP"),
        ];
        for (digits, region) in cases {
            let region: Id = region.parse().unwrap();
            let dialled = Dialled {
                digits: digits.to_owned(),
                plus: false,
            };
            // Regions with a trunk-prefix pattern go to the parser; that is fine.
            let Some(fast) = national_fast(&dialled, region) else {
                assert!(
                    !matches!(digits, "6505551212" | "02079460958"),
                    "{digits} is fast"
                );
                continue;
            };
            let parsed = phonenumber::parse(Some(region), digits).unwrap();
            let slow = format!("{}{}", parsed.code().value(), parsed.national());
            assert_eq!(fast, slow, "{digits} in {region:?}");
        }
    }

    /// A valid national number that starts with its region's calling code keeps it: Brazil's
    /// area code 55, Costa Rica's 506…, the Faroes' 298…, Lithuania's 370… (libphonenumber
    /// reads these as national numbers; a prefix test took the area code for the calling code).
    #[test]
    fn area_codes_equal_to_the_calling_code_stay_in_the_number() {
        let cases = [
            ("(55) 99555-1234", "br", "5555995551234"),
            ("55 3212-3456", "br", "555532123456"),
            ("5061 2345", "cr", "50650612345"),
            ("298123", "fo", "298298123"),
            ("(8 37) 012345", "lt", "37037012345"),
            ("37012345", "lt", "37037012345"),
            // The same numbers with their calling code in front are unchanged.
            ("+55 55 99555-1234", "br", "5555995551234"),
            ("0055 99555 1234", "lt", "55995551234"),
            // A national number of the region without its area code repeated is as before.
            ("(11) 99555-1234", "br", "5511995551234"),
        ];
        for (raw, country, want) in cases {
            assert_eq!(phone(raw, Some(country)), ok(want), "{raw} in {country}");
        }
    }

    /// Over every region's example numbers (libphonenumber's metadata, each number type),
    /// dialled nationally (with the trunk prefix where the region has one), the fast path gives
    /// the calling code and the example, or leaves the number to the parser. (The parser is no
    /// oracle here: it strips Belarus' trunk prefix 8 twice from `8 801 123 45 67`.)
    #[test]
    fn the_fast_path_reads_every_regions_example_numbers() {
        let mut answered = 0;
        for code in 1..1000u16 {
            for meta in DATABASE.by_code(&code).unwrap_or_default() {
                // Non-geographic entities (`001`) are no row's region.
                let Ok(region) = meta.id().parse::<Id>() else {
                    continue;
                };
                let d = meta.descriptors();
                let examples = [d.fixed_line(), d.mobile(), d.toll_free(), d.voip()]
                    .into_iter()
                    .flatten()
                    .filter_map(|desc| desc.example());
                for example in examples {
                    let trunk = meta.national_prefix().unwrap_or("");
                    let dialled = Dialled {
                        digits: format!("{trunk}{example}"),
                        plus: false,
                    };
                    let Some(fast) = national_fast(&dialled, region) else {
                        continue;
                    };
                    answered += 1;
                    assert_eq!(
                        fast,
                        format!("{code}{example}"),
                        "{} in {region:?}",
                        dialled.digits
                    );
                }
            }
        }
        assert!(answered > 400, "the fast path answered only {answered}");
    }

    /// Over every region's example numbers in international form (`+` and the calling code),
    /// the international fast path agrees with the parser, or leaves the number to it.
    #[test]
    fn the_international_fast_path_agrees_with_the_parser() {
        let mut answered = 0;
        for code in 1..1000u16 {
            for meta in DATABASE.by_code(&code).unwrap_or_default() {
                let d = meta.descriptors();
                let examples = [d.fixed_line(), d.mobile(), d.toll_free(), d.voip()]
                    .into_iter()
                    .flatten()
                    .filter_map(|desc| desc.example());
                for example in examples {
                    let digits = format!("{code}{example}");
                    let Some(fast) = international_fast(&digits) else {
                        continue;
                    };
                    answered += 1;
                    let parsed = phonenumber::parse(None, format!("+{digits}")).unwrap();
                    let slow = format!("{}{}", parsed.code().value(), parsed.national());
                    assert_eq!(fast, slow, "+{digits}");
                }
            }
        }
        assert!(answered > 400, "the fast path answered only {answered}");
        // A trunk prefix after the calling code, or a number of no region, is the parser's.
        assert_eq!(international_fast("4903012345678"), None);
        assert_eq!(international_fast("80012345678"), None);
        assert_eq!(phone("+49 (0)30 12345678", None), ok("493012345678"));
    }

    /// Dial digits reads the plus only before the first digit.
    #[test]
    fn dial_digits_reads_the_plus_only_before_the_first_digit() {
        let got = dial_digits("tel: +1 (650) 555-1212").map(|d| (d.digits, d.plus));
        assert_eq!(got, Some(("16505551212".to_owned(), true)));
        let got = dial_digits("650+555").map(|d| (d.digits, d.plus));
        assert_eq!(got, Some(("650555".to_owned(), false)));
        assert_eq!(dial_digits("+"), None);
    }
}

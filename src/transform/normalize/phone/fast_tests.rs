//! The international fast path against the `phonenumber` crate's parser on pseudo-random
//! numbers: whatever it answers, the parser (as [`super::parsed`] reads it) answers the same.
//! (The national fast paths are not judged this way: for a valid national number that starts
//! with its calling code the parser is no oracle, issue 24's kind 2.)

use phonenumber::metadata::DATABASE;

use super::*;

/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
struct Digits(u64);

impl Digits {
    /// The next pseudo-random number.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` pseudo-random digits.
    fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
}

/// What the parser makes of `+digits`, as [`phone`] sends it.
fn by_parser(digits: &str) -> Outcome {
    parsed(
        &Dialled {
            digits: digits.to_owned(),
            plus: true,
        },
        None,
    )
}

/// Under every calling code, numbers of every length from 2 to 15 digits with random digits,
/// valid or not, in international form: the fast path answers what the parser answers, or
/// leaves the number to it. Codes of one region are answered without judging validity.
#[test]
fn the_international_fast_path_agrees_with_the_parser_on_random_numbers() {
    let mut random = Digits(0x9e37_79b9_7f4a_7c15);
    let (mut answered, mut invalid_answered) = (0, 0);
    for code in 1..1000u16 {
        let Some(regions) = DATABASE.by_code(&code) else {
            continue;
        };
        for len in 2..=15 {
            for _ in 0..12 {
                let national = random.digits(len);
                let digits = format!("{code}{national}");
                let Some(fast) = international_fast(&digits) else {
                    continue;
                };
                answered += 1;
                assert_eq!(
                    Outcome::Normalized(fast.clone()),
                    by_parser(&digits),
                    "+{digits}"
                );
                let valid = regions
                    .first()
                    .and_then(|meta| meta.id().parse::<Id>().ok());
                let valid =
                    valid.and_then(|region| rules::with(region, |r| Some(r.is_valid(&national))));
                invalid_answered += usize::from(valid == Some(false));
            }
        }
    }
    assert!(answered > 2000, "the fast path answered only {answered}");
    assert!(invalid_answered > 500, "only {invalid_answered} not valid");
    // France's +33 7 01…: possible, not valid, one region.
    assert_eq!(
        international_fast("33701000078"),
        Some("33701000078".to_owned())
    );
    assert_eq!(
        by_parser("33701000078"),
        Outcome::Normalized("33701000078".to_owned())
    );
}

/// Issue 24's kind 2, both ways, over every region's example numbers and pseudo-random valid
/// numbers of the same types: digits that start with the row's own calling code are a national
/// number when that reading is valid for the region (Brazil's area code 55), else, when what
/// follows the code is valid, the number written internationally without its `+`
/// (`39 347 123 4567` in Italy), as libphonenumber reads both.
#[test]
fn a_calling_code_without_plus_is_stripped_only_when_the_national_reading_is_not_valid() {
    let mut random = Digits(24);
    let mut judged = 0;
    let mut wrong = Vec::new();
    for code in 1..1000u16 {
        for meta in DATABASE.by_code(&code).unwrap_or_default() {
            let Ok(region) = meta.id().parse::<Id>() else {
                continue;
            };
            let d = meta.descriptors();
            for example in [d.fixed_line(), d.mobile()]
                .into_iter()
                .flatten()
                .filter_map(|desc| desc.example())
            {
                let mut numbers = vec![example.to_owned()];
                for _ in 0..20 {
                    let keep = example.len().min(2);
                    let tail = random.digits(example.len() - keep);
                    numbers.push(format!("{}{tail}", &example[..keep]));
                }
                for national in numbers {
                    let whole = format!("{code}{national}");
                    let Some((valid, whole_valid)) = rules::with(region, |rules| {
                        Some((rules.is_valid(&national), rules.is_valid(&whole)))
                    }) else {
                        continue;
                    };
                    if !valid {
                        continue;
                    }
                    judged += 1;
                    let want = if whole_valid {
                        format!("{code}{whole}")
                    } else {
                        whole.clone()
                    };
                    let country = meta.id().to_ascii_lowercase();
                    let got = phone(&format!("{code} {national}"), Some(&country));
                    if got != Outcome::Normalized(want.clone()) {
                        wrong.push(format!(
                            "{code} {national} in {region:?}: {got:?}, not {want}"
                        ));
                    }
                }
            }
        }
    }
    assert!(judged > 2000, "only {judged} numbers judged");
    assert!(wrong.is_empty(), "{} of {judged}: {wrong:#?}", wrong.len());
}

/// Under a calling code several regions share, a number that is not valid in the code's main
/// region no longer needs the parser when no region of the code would strip a trunk prefix
/// from it (`+1 653…`, an area code of no NANP region; `+44 7646…`, a mobile range of neither
/// the UK nor the Crown Dependencies): the fast path answers them, as the parser does, and
/// leaves those some region strips to it.
#[test]
fn shared_code_numbers_that_no_region_strips_keep_their_digits_without_the_parser() {
    let mut random = Digits(0x5eed_0024);
    let mut answered = 0;
    for code in 1..1000u16 {
        let Some(regions) = DATABASE.by_code(&code) else {
            continue;
        };
        if regions.len() < 2 {
            continue;
        }
        let main: Id = regions[0].id().parse().expect("a region id");
        for len in 4..=13 {
            for _ in 0..40 {
                let national = random.digits(len);
                if rules::with(main, |r| Some(r.is_valid(&national))) != Some(false) {
                    continue;
                }
                let digits = format!("{code}{national}");
                let Some(fast) = international_fast(&digits) else {
                    continue;
                };
                answered += 1;
                assert_eq!(Outcome::Normalized(fast), by_parser(&digits), "+{digits}");
            }
        }
    }
    assert!(answered > 1000, "only {answered} answered");
    for (digits, want) in [
        ("16535521152", Some("16535521152")),
        ("447646000246", Some("447646000246")),
        // Trinidad strips nothing but reads 7 digits as a local number: the parser's.
        ("18686925", None),
    ] {
        assert_eq!(international_fast(digits).as_deref(), want, "+{digits}");
    }
}

/// Every region's rules compile, with digit-only patterns (`rules::digits_regex`): a region
/// whose rules did not would send all its numbers to the parser, correct but ~50 times slower.
/// Its patterns match what the crate's Unicode patterns match on a sample of digit strings.
#[test]
fn every_regions_rules_compile_and_match_as_the_metadata_patterns_do() {
    let mut digits = Digits(0x0c0f_fee0_dead_beef);
    let mut regions = 0;
    for meta in DATABASE.iter() {
        let Ok(region) = meta.id().parse::<Id>() else {
            continue;
        };
        regions += 1;
        assert!(
            rules::with(region, |_| Some(())).is_some(),
            "{}'s rules do not compile",
            meta.id()
        );
        let general = regex::RegexBuilder::new(&format!(
            "^(?:{})$",
            meta.descriptors().general().national_number().as_str()
        ))
        .ignore_whitespace(true)
        .build()
        .unwrap();
        for len in 4..=13 {
            for _ in 0..20 {
                let national = digits.digits(len);
                assert_eq!(
                    rules::with(region, |rules| Some(rules.fits_general(&national))),
                    Some(general.is_match(&national)),
                    "{national} in {}",
                    meta.id()
                );
            }
        }
    }
    assert!(regions > 240, "{regions} regions");
}

/// National numbers after a trunk prefix whose rest is not valid, in every region with a
/// trunk prefix: where the fast path strips the prefix ([`strips_viable_rest`]), the parser
/// reads the same digits. More than a thousand are answered so; none were before (all went to
/// the parser, whose database costs ~60 ms of CPU to build). One case by name: a Brazilian
/// number after the carrier-selection prefix 90, which libphonenumber also reads so.
#[test]
fn a_trunk_prefix_before_a_viable_rest_is_stripped_as_the_parser_strips_it() {
    let brazil = Dialled {
        digits: "90901590022".to_owned(),
        plus: false,
    };
    assert_eq!(
        national_fast(&brazil, Id::BR).as_deref(),
        Some("55901590022")
    );
    let mut digits = Digits(0x005e_ed0f_7e57);
    let mut answered = 0;
    for meta in DATABASE.iter() {
        let Ok(region) = meta.id().parse::<Id>() else {
            continue;
        };
        let Some(trunk) = meta.national_prefix().filter(|p| !p.is_empty()) else {
            continue;
        };
        for len in 4..=12 {
            for _ in 0..40 {
                let number = format!("{trunk}{}", digits.digits(len));
                let dialled = Dialled {
                    digits: number.clone(),
                    plus: false,
                };
                let rest_invalid = rules::with(region, |rules| {
                    let stripped = rules.trunk_prefix_len(&number)?;
                    Some(stripped > 0 && !rules.is_valid(&number[stripped..]))
                });
                if rest_invalid != Some(true) {
                    continue;
                }
                let Some(fast) = national_fast(&dialled, region) else {
                    continue;
                };
                answered += 1;
                let parsed = phonenumber::parse(Some(region), &number).unwrap();
                let slow = format!("{}{}", parsed.code().value(), parsed.national());
                assert_eq!(fast, slow, "{number} in {region:?}");
            }
        }
    }
    assert!(answered > 1000, "the fast path answered only {answered}");
}

/// The table of region ids answers every two-character text as the crate's own parse of its
/// uppercase form does, lowercase and mixed case included, and nothing else has an id.
#[test]
fn region_ids_by_table_are_the_crates() {
    for a in (b'A'..=b'Z').chain(b'a'..=b'z').chain([b'0', b'-']) {
        for b in (b'A'..=b'Z').chain(b'a'..=b'z').chain([b'1', b' ']) {
            let code = String::from_utf8(vec![a, b]).expect("ascii");
            let want = code.to_ascii_uppercase().parse::<Id>().ok();
            assert_eq!(region_id(&code), want, "{code:?}");
        }
    }
    assert_eq!(region_id("usa"), None);
    assert_eq!(region_id("u"), None);
    assert_eq!(region_id("é"), None);
}

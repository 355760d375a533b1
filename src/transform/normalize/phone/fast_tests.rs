//! The international fast path against the `phonenumber` crate's parser on pseudo-random
//! numbers: whatever it answers, the parser (as [`super::parsed`] reads it) answers the same.
//! (The national fast paths are not judged this way: for a valid national number that starts
//! with its calling code the parser is no oracle, issue 24's kind 2.)

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

//! `db`: `YYYYMMDD` from the date forms a warehouse, a till or a CRM holds. Implausible dates (not
//! on the calendar, or a year outside 1900..=the current year, Meta's bounds) are dropped.

use chrono::{Datelike, Month, NaiveDate};

use super::Outcome;

/// Countries that write numeric dates month first (`2/16/1997`): the US, its territories and the
/// few others that follow it (CLDR short date patterns).
const MONTH_FIRST: [&str; 12] = [
    "us", "pr", "gu", "as", "vi", "mp", "um", "ph", "fm", "mh", "pw", "bz",
];

/// Countries where both orders are common, so only an unambiguous day/month is accepted.
const EITHER_ORDER: [&str; 1] = ["ca"];

/// Countries whose short numeric dates put a two-digit year first (`64. 9. 26.`: CLDR's
/// Korean short date pattern `yy. M. d.`).
const SHORT_YEAR_FIRST: [&str; 1] = ["kr"];

/// The first year Meta accepts in `db`.
const FIRST_YEAR: i32 = 1900;

/// `db`: `YYYYMMDD` from the first date found in the value: `YYYYMMDD`, year first (`1990-12-31`,
/// any separators: `1990|12|31`, `1990_12.31`), year last (`12/31/1990`, `31.12.1990`,
/// `12 31 1990`, en dashes), with a month name (`Dec 31, 1990`, `31 December 1990`), or with
/// CJK markers (`1990年12月31日`, `1990년 12월 31일`). What comes around it (a time after it, a
/// label before it: `DOB: 1990/12/31 (verified)`) is ignored. A day/month order is read as the
/// only one the numbers allow (`16/02/1997`, `2/16/1997`), else as a `(dd-mm-yyyy)` note beside
/// it says, else by the row's country; when none of these tells, the date is dropped.
pub(super) fn date_of_birth(value: &str, country: Option<&str>, current_year: i32) -> Outcome {
    let ymd = parse(value, country, current_year)
        .filter(|(year, _, _)| (FIRST_YEAR..=current_year).contains(year))
        .and_then(|(year, month, day)| NaiveDate::from_ymd_opt(year, month, day));
    match ymd {
        Some(date) => {
            // Written into its final size: a `format!` grew its string on the way. The year is
            // in `FIRST_YEAR..=current_year`, never negative.
            let mut out = String::with_capacity(8);
            super::push_decimal(&mut out, date.year().unsigned_abs(), 4);
            super::push_decimal(&mut out, date.month(), 2);
            super::push_decimal(&mut out, date.day(), 2);
            Outcome::Normalized(out)
        }
        None => Outcome::Dropped,
    }
}

/// A run of ASCII digits or of letters in the value; anything else separates tokens.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    /// The run's text.
    text: &'a str,
    /// Digits (else letters).
    number: bool,
    /// A token of the other kind touches it, without a separator (`1990bbb`, `31st`, `DOB19`).
    glued: bool,
    /// The separator right after it, if one is.
    separator: Option<char>,
}

/// The value's tokens, in order.
fn tokens(value: &str) -> Vec<Token<'_>> {
    let mut tokens: Vec<Token<'_>> = Vec::with_capacity(8);
    let mut chars = value.char_indices().peekable();
    // Whether the last character seen ended a token (so that the next token touches it).
    let mut touching = false;
    while let Some((from, c)) = chars.next() {
        let number = c.is_ascii_digit();
        if !number && !c.is_alphabetic() {
            if touching {
                if let Some(last) = tokens.last_mut() {
                    last.separator = Some(c);
                }
            }
            touching = false;
            continue;
        }
        let mut to = from + c.len_utf8();
        while let Some(&(at, next)) = chars.peek() {
            let same = if number {
                next.is_ascii_digit()
            } else {
                next.is_alphabetic()
            };
            if !same {
                break;
            }
            to = at + next.len_utf8();
            chars.next();
        }
        if touching {
            if let Some(last) = tokens.last_mut() {
                last.glued = true;
            }
        }
        tokens.push(Token {
            text: &value[from..to],
            number,
            glued: touching,
            separator: None,
        });
        touching = true;
    }
    tokens
}

/// Year, month and day as written, before any calendar check (a two-digit year is read in the
/// century that puts it in the past of `current_year`).
fn parse(value: &str, country: Option<&str>, current_year: i32) -> Option<(i32, u32, u32)> {
    // The common case, a bare `YYYYMMDD`, without tokens.
    if value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()) {
        return compact(value);
    }
    // A `date` column's text, `YYYY-MM-DD`, without tokens (what `numeric` reads it as).
    let bytes = value.as_bytes();
    if bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&at| bytes[at].is_ascii_digit())
    {
        return Some((
            number(value.get(..4)?)?,
            number(value.get(5..7)?)?,
            number(value.get(8..)?)?,
        ));
    }
    read_tokens(value, country, current_year)
}

/// [`parse`]'s general reading, by the value's tokens: CJK markers, then numbers, then month
/// names.
fn read_tokens(value: &str, country: Option<&str>, current_year: i32) -> Option<(i32, u32, u32)> {
    let tokens = tokens(value);
    with_cjk_markers(&tokens)
        .or_else(|| numeric(&tokens, country, current_year))
        .or_else(|| with_month_name(&tokens, country))
}

/// `YYYYMMDD`.
fn compact(digits: &str) -> Option<(i32, u32, u32)> {
    Some((
        number(digits.get(..4)?)?,
        number(digits.get(4..6)?)?,
        number(digits.get(6..)?)?,
    ))
}

/// `1990年12月31日`, `12月31日1990年`, `1990년 12월 31일`: each number names its part.
fn with_cjk_markers(tokens: &[Token<'_>]) -> Option<(i32, u32, u32)> {
    let (mut year, mut month, mut day) = (None, None, None);
    for pair in tokens.windows(2) {
        let [part, marker] = pair else {
            continue;
        };
        if !part.number || marker.number {
            continue;
        }
        match marker.text.chars().next() {
            Some('年' | '년') => year = Some(part.text),
            Some('月' | '월') => month = Some(part.text),
            Some('日' | '일') => day = Some(part.text),
            _ => {}
        }
    }
    Some((four(year?)?, short(month?)?, short(day?)?))
}

/// The first run of numbers that is a date: `YYYYMMDD` standing alone, or three numbers in a row
/// with only separators between them, year first or last. A two-digit year last (`07.11.72`,
/// `2/16/97`: the same separator twice, nothing numeric after it) is read by [`two_digit_year`].
fn numeric(
    tokens: &[Token<'_>],
    country: Option<&str>,
    current_year: i32,
) -> Option<(i32, u32, u32)> {
    for (at, token) in tokens.iter().enumerate() {
        if !token.number {
            continue;
        }
        // Glued to letters, eight digits are more likely part of an identifier than a date.
        if token.text.len() == 8 && !token.glued {
            return compact(token.text);
        }
        let Some([a, b, c]) = tokens.get(at..at + 3) else {
            return None;
        };
        if !(b.number && c.number) {
            continue;
        }
        if a.text.len() == 4 && is_short(b.text) && is_short(c.text) {
            return Some((number(a.text)?, number(b.text)?, number(c.text)?));
        }
        if country.is_some_and(|c| SHORT_YEAR_FIRST.contains(&c))
            && a.text.len() == 2
            && is_short(b.text)
            && is_short(c.text)
            && a.separator == Some('.')
            && b.separator == Some('.')
        {
            let year = two_digit_year(number(a.text)?, current_year)?;
            return Some((year, number(b.text)?, number(c.text)?));
        }
        let short_year = c.text.len() == 2
            && matches!(a.separator, Some('.' | '/' | '-'))
            && a.separator == b.separator
            && !tokens.get(at + 3).is_some_and(|next| next.number);
        if is_short(a.text) && is_short(b.text) && (c.text.len() == 4 || short_year) {
            let (first, second) = (number(a.text)?, number(b.text)?);
            let month_first = month_first(first, second, a.separator, tokens, country)?;
            let (month, day) = if month_first {
                (first, second)
            } else {
                (second, first)
            };
            let year = if short_year {
                two_digit_year(number(c.text)?, current_year)?
            } else {
                number(c.text)?
            };
            return Some((year, month, day));
        }
    }
    None
}

/// Whether `first/second/year` is month first: the only order the numbers allow, else what a
/// `dd-mm-yyyy` or `mm/dd/yyyy` note says, else the country's order (day first after a `.`,
/// as in `31.12.1990`). `None` when nothing tells.
fn month_first(
    first: u32,
    second: u32,
    separator: Option<char>,
    tokens: &[Token<'_>],
    country: Option<&str>,
) -> Option<bool> {
    match (first > 12, second > 12) {
        (true, true) => return None,
        (false, true) => return Some(true),
        (true, false) => return Some(false),
        _ if first == second => return Some(true),
        _ => {}
    }
    let position = |word: &str| {
        tokens
            .iter()
            .position(|t| !t.number && t.text.eq_ignore_ascii_case(word))
    };
    if let (Some(day), Some(month)) = (position("dd"), position("mm")) {
        return Some(month < day);
    }
    if separator == Some('.') {
        return Some(false);
    }
    match country {
        Some(c) if MONTH_FIRST.contains(&c) => Some(true),
        Some(c) if EITHER_ORDER.contains(&c) => None,
        Some(_) => Some(false),
        None => None,
    }
}

/// The year of a birth date written with two digits: a date of birth is never in the future, so
/// `yy` is in the last century when this century's `yy` is after `current_year` (`72` in 2026 is
/// 1972). When both centuries are possible for a living customer (`yy` up to the current year's
/// two digits: `05` is 2005 or 1905), `None`: the date is dropped rather than guessed.
fn two_digit_year(yy: i32, current_year: i32) -> Option<i32> {
    let century = current_year - current_year.rem_euclid(100);
    (century + yy > current_year).then_some(century - 100 + yy)
}

/// `Dec 31, 1990`, `31 December 1990`, `December 31st, 1990`, `3 de março de 1987`,
/// `12 października 1990`: a month name (English, as chrono reads it: full or three letters, or
/// `Sept`; else in another language, [`super::months`]), the first day-sized number and the
/// first four-digit number, none of them glued to other letters or digits.
///
/// A month written as a number after its word (Vietnamese `17 tháng 1, 1972`) is found before
/// names, and a Thai abbreviation's letters are read across its periods (`27 พ.ค. 1979`).
fn with_month_name(tokens: &[Token<'_>], country: Option<&str>) -> Option<(i32, u32, u32)> {
    let words = || {
        tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.number && !t.glued)
    };
    let by_marker = words().find_map(|(at, t)| {
        let next = tokens.get(at + 1).filter(|n| n.number && !n.glued)?;
        let month = short(next.text).filter(|m| (1..=12).contains(m))?;
        super::months::is_marker(t.text).then_some((month, Some(at + 1)))
    });
    let (month, month_at) = by_marker.or_else(|| {
        words().find_map(|(at, t)| {
            month_number(t.text)
                .or_else(|| super::months::month_number(t.text, country))
                .or_else(|| dotted_abbreviation(tokens, at, country))
                .map(|month| (month, None))
        })
    })?;
    let day = tokens.iter().enumerate().find_map(|(at, t)| {
        if Some(at) == month_at {
            return None;
        }
        let ordinal = || {
            tokens.get(at + 1).is_some_and(|next| {
                ["st", "nd", "rd", "th"]
                    .iter()
                    .any(|s| next.text.eq_ignore_ascii_case(s))
            })
        };
        (t.number && is_short(t.text) && (!t.glued || ordinal()))
            .then(|| number(t.text))
            .flatten()
    })?;
    let year = tokens
        .iter()
        .find(|t| t.number && t.text.len() == 4 && !t.glued)?;
    Some((number(year.text)?, month, day))
}

/// The month of an abbreviation whose letters periods separate (Thai `พ.ค.`, May), starting at
/// the letter token `at`.
fn dotted_abbreviation(tokens: &[Token<'_>], at: usize, country: Option<&str>) -> Option<u32> {
    let [first, second] = tokens.get(at..at + 2)? else {
        return None;
    };
    if first.separator != Some('.') || second.number || second.glued {
        return None;
    }
    super::months::abbreviation_number(&format!("{}{}", first.text, second.text), country)
}

/// 1 to 12 for an English month name.
fn month_number(word: &str) -> Option<u32> {
    if word.eq_ignore_ascii_case("sept") {
        return Some(9);
    }
    word.parse::<Month>().ok().map(|m| m.number_from_month())
}

/// Whether `part` can be a day or month: one or two digits.
fn is_short(part: &str) -> bool {
    (1..=2).contains(&part.len())
}

/// A day or month: one or two ASCII digits.
fn short(part: &str) -> Option<u32> {
    is_short(part).then(|| number(part)).flatten()
}

/// A year: four ASCII digits.
fn four(part: &str) -> Option<i32> {
    (part.len() == 4).then(|| number(part)).flatten()
}

/// ASCII digits as a number (no sign, no spaces).
fn number<T: std::str::FromStr>(part: &str) -> Option<T> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The year the tests pretend it is.
    const YEAR: i32 = 2026;

    /// Shorthand for normalizing in `country` in [`YEAR`].
    fn db(value: &str, country: Option<&str>) -> Option<String> {
        match date_of_birth(value, country, YEAR) {
            Outcome::Normalized(value) => Some(value),
            _ => None,
        }
    }

    /// Common formats become yyyymmdd.
    #[test]
    fn common_formats_become_yyyymmdd() {
        let cases = [
            ("19900101", None, "19900101"),
            ("1990-12-31", None, "19901231"),
            ("1990/12/31", None, "19901231"),
            ("1990-12-31 00:00:00", None, "19901231"),
            ("1990-12-31T00:00:00Z", None, "19901231"),
            ("1990-1-5", None, "19900105"),
            ("2/16/1997", Some("us"), "19970216"),
            ("01/02/2001", Some("us"), "20010102"),
            ("01-02-2001", Some("us"), "20010102"),
            ("01/02/2001", Some("gb"), "20010201"),
            ("16.02.1997", Some("us"), "19970216"),
            ("16.02.1997", None, "19970216"),
            ("2/16/1997", None, "19970216"),
            ("16/2/1997", None, "19970216"),
            ("16/2/1997", Some("ca"), "19970216"),
            ("5/5/1997", None, "19970505"),
            // Text around the date, a time after it, a sign before it.
            ("+1990-12-31", None, "19901231"),
            ("1990-12-31-01", None, "19901231"),
            ("1990-12-31-00-00-00", None, "19901231"),
            ("12-31-1990-15-30", Some("gb"), "19901231"),
            ("DOB: 1990/12/31", None, "19901231"),
            ("Date: 31.12.1990 Age: 30", Some("us"), "19901231"),
            ("id 12345 12/31/1990", None, "19901231"),
            ("xx12-31-1990yy", None, "19901231"),
            ("born 19901231", None, "19901231"),
            // Other separators.
            ("1990|12|31", None, "19901231"),
            ("1990_12.31", None, "19901231"),
            ("12 31 1990", Some("gb"), "19901231"),
            ("16\u{2013}2\u{2013}1997", None, "19970216"),
            ("12:31:1990", None, "19901231"),
            // Month names.
            ("Dec 31, 1990", Some("gb"), "19901231"),
            ("31 Dec 1990", Some("us"), "19901231"),
            ("December 31st, 1990", None, "19901231"),
            ("1 Sept 1990", None, "19900901"),
            ("1990 March 3", None, "19900303"),
            // Month names in other languages, genitive forms and abbreviations (glibc's tables).
            ("3 de março de 1987", None, "19870303"),
            ("3 de marzo de 1987", Some("es"), "19870303"),
            ("12 października 1990", None, "19901012"),
            ("12 paź 1990", Some("pl"), "19901012"),
            ("7. November 1972", Some("de"), "19721107"),
            ("7 févr. 1972", Some("fr"), "19720207"),
            ("12 октября 1990", None, "19901012"),
            ("3. března 1987", Some("cz"), "19870303"),
            // `listopada` is November in Polish and October in Croatian: the country decides.
            ("5 listopada 1990", Some("pl"), "19901105"),
            ("5 listopada 1990", Some("hr"), "19901005"),
            // CLDR's forms as ICU and babel write them (issue 24's 35-locale check).
            ("5. syyskuuta 1969", Some("fi"), "19690905"),
            ("perjantai 5. syyskuuta 1969", Some("fi"), "19690905"),
            ("sobota 20. augusta 1977", Some("sk"), "19770820"),
            ("10 серп. 1959\u{202f}р.", Some("ua"), "19590810"),
            ("12 февр. 1930\u{202f}г.", Some("ru"), "19300212"),
            ("יום שישי, 14 בספטמבר 2001", Some("il"), "20010914"),
            ("14 בספט׳ 2001", Some("il"), "20010914"),
            ("27 พ.ค. 1979", Some("th"), "19790527"),
            ("18 ธ.ค. 1957", None, "19571218"),
            ("17 tháng 1, 1972", Some("vn"), "19720117"),
            ("Thứ Hai, 17 tháng 1, 1972", Some("vn"), "19720117"),
            ("29 thg 11, 1964", None, "19641129"),
            ("17 ม.ค. 1927", Some("th"), "19270117"),
            ("3 มี.ค. 1950", Some("th"), "19500303"),
            // Korean short dates: a two-digit year first.
            ("64. 9. 26.", Some("kr"), "19640926"),
            ("86. 10. 4.", Some("kr"), "19861004"),
            // CJK markers.
            ("1990年12月31日", None, "19901231"),
            ("12月31日1990年", Some("gb"), "19901231"),
            ("1990년 12월 31일", None, "19901231"),
            // A format note decides an ambiguous order.
            ("01-02-2001 (dd-mm-yyyy)", Some("us"), "20010201"),
            ("01-02-2001 (mm-dd-yyyy)", Some("gb"), "20010102"),
            ("01-02-2001 (MM/DD/YYYY)", None, "20010102"),
        ];
        for (raw, country, want) in cases {
            assert_eq!(
                db(raw, country).as_deref(),
                Some(want),
                "{raw} in {country:?}"
            );
        }
    }

    /// Implausible or ambiguous dates are dropped.
    #[test]
    fn implausible_or_ambiguous_dates_are_dropped() {
        let cases = [
            ("123456", None),
            ("1899-12-31", None),
            ("2027-01-01", None),
            ("1990-02-30", None),
            ("1990-13-01", None),
            ("13/13/1990", Some("us")),
            ("01/02/2001", None),
            ("01/02/2001", Some("ca")),
            ("1990-12", None),
            ("yesterday", None),
            ("13/13/1990", None),
            ("15-13-1990", Some("gb")),
            ("1990-1991-12", None),
            ("1990-12-1991", None),
            ("199012311999", None),
            ("Dec 1990", None),
            ("5 listopada 1990", None),
            ("31 Smarch 1990", None),
            // Eight digits glued to letters are an identifier, not a date.
            ("a19901231", None),
            (
                "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae",
                None,
            ),
            ("dec1a2b1990", None),
        ];
        for (raw, country) in cases {
            assert_eq!(db(raw, country), None, "{raw} in {country:?}");
        }
    }

    /// A two-digit year is in the past: the last century when this century's year would be
    /// after the current one, dropped when both centuries could be a living customer's.
    #[test]
    fn two_digit_years_are_read_in_the_past_or_dropped() {
        let cases = [
            ("07.11.72", Some("de"), Some("19721107")),
            ("07.11.72", None, Some("19721107")),
            ("1/2/90", Some("us"), Some("19900102")),
            ("16/02/97", Some("gb"), Some("19970216")),
            ("2-16-99", None, Some("19990216")),
            ("31.12.27", Some("de"), Some("19271231")),
            // 2026 itself, and every earlier year of this century: either century is possible.
            ("31.12.26", Some("de"), None),
            ("07.11.05", Some("de"), None),
            ("07.11.00", Some("de"), None),
            // Not a date: mixed separators, a time, more numbers after it.
            ("07.11/72", Some("de"), None),
            ("10:30:45", None, None),
            ("07.11.72.12", Some("de"), None),
            // Year first in Korea's short form, with the same two-digit rule.
            ("72. 11. 7.", Some("kr"), Some("19721107")),
            ("05. 11. 7.", Some("kr"), None),
        ];
        for (raw, country, want) in cases {
            assert_eq!(db(raw, country).as_deref(), want, "{raw} in {country:?}");
        }
        for yy in 0..100 {
            let want = (yy > 26).then(|| 1900 + yy);
            assert_eq!(two_digit_year(yy, YEAR), want, "{yy}");
        }
    }

    /// The current year is the last plausible one.
    #[test]
    fn the_current_year_is_the_last_plausible_one() {
        assert_eq!(db("2026-11-28", None).as_deref(), Some("20261128"));
        assert_eq!(db("1900-01-01", None).as_deref(), Some("19000101"));
    }

    /// The `YYYY-MM-DD` shortcut reads every such value as the general reading does, in any
    /// country, valid dates or not.
    #[test]
    fn iso_dates_read_as_the_general_reading_does() {
        for (year, month, day) in [(1950, 1, 1), (1987, 3, 3), (2001, 12, 31), (1999, 2, 30)] {
            for (m, d) in [(month, day), (day, month), (13, 1), (0, 0)] {
                let value = format!("{year:04}-{m:02}-{d:02}");
                for country in [None, Some("us"), Some("de"), Some("jp"), Some("hu")] {
                    let general = read_tokens(&value, country, 2026);
                    assert_eq!(
                        parse(&value, country, 2026),
                        general,
                        "{value} in {country:?}"
                    );
                }
            }
        }
    }
}

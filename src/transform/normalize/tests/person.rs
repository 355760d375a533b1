//! Person fields: first and last name, gender (letters or titles) and date of birth, the last
//! written in any order, separator or script, read by the row's country only when ambiguous.

use proptest::prelude::*;

use super::*;

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

    /// Dates as CLDR's patterns write them in the row's country (issue 24's 35-locale check):
    /// Finnish and Slovak genitive names, Ukrainian and Russian abbreviations with a period,
    /// Hebrew's glued ב, Thai dotted abbreviations, Vietnamese `tháng N`, and Korea's
    /// two-digit year first when only the last century is possible.
    #[test]
    fn cldr_month_forms_read_in_their_country(date in any_date(), at in 0usize..8) {
        let m = usize::try_from(date.month).unwrap_or(1) - 1;
        let (d, y) = (date.day, date.year);
        const FI: [&str; 12] = ["tammikuuta", "helmikuuta", "maaliskuuta", "huhtikuuta",
            "toukokuuta", "kesäkuuta", "heinäkuuta", "elokuuta", "syyskuuta", "lokakuuta",
            "marraskuuta", "joulukuuta"];
        const SK: [&str; 12] = ["januára", "februára", "marca", "apríla", "mája", "júna",
            "júla", "augusta", "septembra", "októbra", "novembra", "decembra"];
        const UK: [&str; 12] = ["січ.", "лют.", "бер.", "квіт.", "трав.", "черв.", "лип.",
            "серп.", "вер.", "жовт.", "лист.", "груд."];
        const RU: [&str; 12] = ["янв.", "февр.", "мар.", "апр.", "мая", "июн.", "июл.",
            "авг.", "сент.", "окт.", "нояб.", "дек."];
        const HE: [&str; 12] = ["ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי",
            "אוגוסט", "ספטמבר", "אוקטובר", "נובמבר", "דצמבר"];
        const TH: [&str; 12] = ["ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.",
            "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค."];
        let (raw, country) = match at {
            0 => (format!("{d}. {} {y}", FI[m]), "FI"),
            1 => (format!("{d}. {} {y}", SK[m]), "SK"),
            2 => (format!("{d} {} {y}\u{202f}р.", UK[m]), "UA"),
            3 => (format!("{d} {} {y}\u{202f}г.", RU[m]), "RU"),
            4 => (format!("{d} ב{} {y}", HE[m]), "IL"),
            5 => (format!("{d} {} {y}", TH[m]), "TH"),
            6 => (format!("{d} tháng {}, {y}", m + 1), "VN"),
            _ => (format!("{:02}. {}. {d}.", y % 100, m + 1), "KR"),
        };
        let want = if at == 7 && !(1927..=1999).contains(&y) {
            Outcome::Dropped
        } else {
            date.expected()
        };
        prop_assert_eq!(run(Field::Db, &raw, Some(country)), want, "{}", raw);
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
}

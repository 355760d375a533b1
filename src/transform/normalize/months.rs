//! Month names in other languages for `db` (`3 de março de 1987`, `12 października 1990`,
//! `7. Nov. 1972`), from glibc's locale tables as the `pure-rust-locales` crate keeps them: each
//! locale's `LC_TIME` `mon`, `abmon`, `alt_mon` and `ab_alt_mon`, that is full names and
//! abbreviations, in the genitive form a date uses and the nominative where the language has
//! both (Polish `października` / `październik`, Russian `октября` / `октябрь`).
//!
//! The locales of a country are those its languages (keshvar's official and spoken languages)
//! have for it in glibc (`pt_BR`, `pl_PL`, `fr_CA`): a row's country reads its own languages'
//! names first, so that Croatian `listopad` (October) is not Czech or Polish `listopad`
//! (November). Any other value is read by every locale's names, and a word that names different
//! months in different languages is no month. Words shorter than three letters are never month
//! names: `de`, `du`, `le` are the words around a date.
//!
//! CLDR's names, as ICU-based software (Java, JavaScript's `Intl`, Android, iOS) and Python's
//! `babel` write dates, are added for the same languages (`src/month-names.txt`, written by
//! `scripts/cldr-month-names` from the npm package `cldr-dates-full`): the forms glibc lacks,
//! Finnish `syyskuuta`, Ukrainian `серп.`, Slovak `augusta`. Thai abbreviations are two letters
//! with periods (`พ.ค.`: [`abbreviation_number`]); Hebrew dates glue the preposition ב to the
//! month (`14 בספטמבר 2001`); Vietnamese writes the month as a number after a word
//! ([`is_marker`]: `17 tháng 1, 1972`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use pure_rust_locales::{locale_match, Locale};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Key → month (1–12), or `None` when the key names different months.
type Months = HashMap<String, Option<u32>>;

/// Every locale's month names, and each country's own.
struct Tables {
    /// Every locale's names.
    all: Months,
    /// A country's locales' names, by lowercase alpha-2 code.
    by_country: HashMap<String, Months>,
    /// CLDR's words written beside a month's number (Vietnamese `tháng`, `thg`).
    markers: HashSet<String>,
}

/// CLDR's month names, one line per language and month (`scripts/cldr-month-names`).
const CLDR_MONTHS: &str = include_str!("../../month-names.txt");

/// 1 to 12 for a month name or abbreviation in a language glibc has a locale for; `country` is
/// the row's lowercase alpha-2 code.
pub(super) fn month_number(word: &str, country: Option<&str>) -> Option<u32> {
    find(word, country, 3).or_else(|| {
        // Hebrew dates glue the preposition ב ("in") to the month: `14 בספטמבר 2001`.
        let rest = word.strip_prefix('ב')?;
        find(rest, country, 3)
    })
}

/// 1 to 12 for an abbreviation written as two or more letters with periods between them,
/// given as its letters joined (`พค` for Thai `พ.ค.`, May); `None` for anything else.
pub(super) fn abbreviation_number(letters: &str, country: Option<&str>) -> Option<u32> {
    find(letters, country, 2)
}

/// Whether `word` is written beside a month's number instead of a name (Vietnamese `tháng`,
/// `thg`: `17 tháng 1, 1972`).
pub(super) fn is_marker(word: &str) -> bool {
    let markers = &tables().markers;
    !markers.is_empty()
        && [false, true]
            .iter()
            .any(|bare| key(word, *bare, 3).is_some_and(|k| markers.contains(&k)))
}

/// The month `word` names, for keys of `min` letters or more: the row's country's names
/// first, then every locale's.
fn find(word: &str, country: Option<&str>, min: usize) -> Option<u32> {
    let key = key(word, false, min)?;
    let tables = tables();
    if let Some(own) = country.and_then(|c| tables.by_country.get(c)) {
        if let Some(month) = lookup(own, &key, word, min) {
            return month;
        }
    }
    lookup(&tables.all, &key, word, min).flatten()
}

/// The entry for `key`, else for `word` without its accents: `Some(None)` when ambiguous.
fn lookup(months: &Months, key: &str, word: &str, min: usize) -> Option<Option<u32>> {
    months.get(key).copied().or_else(|| {
        let bare = self::key(word, true, min)?;
        (bare != key).then(|| months.get(&bare).copied()).flatten()
    })
}

/// The lookup key of a word: its letters (and their marks unless `bare`), lowercased, in NFC;
/// `None` when shorter than `min` letters.
fn key(word: &str, bare: bool, min: usize) -> Option<String> {
    let key: String = word
        .to_lowercase()
        .nfd()
        .filter(|c| {
            if is_combining_mark(*c) {
                !bare
            } else {
                c.is_alphabetic()
            }
        })
        .nfc()
        .collect();
    (key.chars().filter(|c| c.is_alphabetic()).count() >= min).then_some(key)
}

/// The tables, built on first use (a few milliseconds, well under a megabyte).
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(build)
}

/// Builds the tables from every country's languages' glibc locales.
fn build() -> Tables {
    let mut all = Months::new();
    let mut by_country: HashMap<String, Months> = HashMap::new();
    // CLDR's month names by language (ISO 639-1), each with its month (1–12).
    let mut cldr: HashMap<&str, Vec<(u32, &str)>> = HashMap::new();
    for (language, month, words) in cldr_lines().filter(|(_, month, _)| *month > 0) {
        cldr.entry(language)
            .or_default()
            .extend(words.map(|word| (month, word)));
    }
    for country in keshvar::CountryIterator::new() {
        let code = country.alpha2().to_string();
        let languages: Vec<String> = country
            .maybe_official_language_list()
            .into_iter()
            .chain(country.maybe_spoken_language_list())
            .flatten()
            .map(|language| language.to_lowercase())
            .collect();
        for language in &languages {
            let name = format!("{language}_{}", code.to_uppercase());
            let Ok(locale) = Locale::try_from(name.as_str()) else {
                continue;
            };
            let own = by_country.entry(code.to_lowercase()).or_default();
            let glibc = names(locale).map(|(at, word)| (u32::try_from(at + 1).ok(), word));
            for (month, word) in glibc {
                add(own, &mut all, word, month);
            }
        }
        // CLDR's names for the country's languages (`pt`, `vi`, `he`).
        let own = by_country.entry(code.to_lowercase()).or_default();
        for language in &languages {
            for (month, word) in cldr.get(language.as_str()).into_iter().flatten() {
                add(own, &mut all, word, Some(*month));
            }
        }
    }
    let markers = cldr_lines()
        .filter(|(_, month, _)| *month == 0)
        .flat_map(|(_, _, words)| words)
        .flat_map(|word| [key(word, false, 3), key(word, true, 3)])
        .flatten()
        .collect();
    by_country.retain(|_, months| !months.is_empty());
    Tables {
        all,
        by_country,
        markers,
    }
}

/// Adds `word` (with and without its accents) for `month` to a country's table and to every
/// locale's. A name with a period between its letters (Thai `พ.ค.`) is keyed from two letters.
fn add(own: &mut Months, all: &mut Months, word: &str, month: Option<u32>) {
    let inner_period = word.trim_matches('.').contains('.');
    let min = if inner_period { 2 } else { 3 };
    // Without its marks a Thai abbreviation is another month's (`มี.ค.`, March, would be
    // `ม.ค.`, January): abbreviations are keyed as written.
    let forms: &[bool] = if inner_period {
        &[false]
    } else {
        &[false, true]
    };
    for &bare in forms {
        if let Some(key) = key(word, bare, min) {
            insert(own, key.clone(), month);
            insert(all, key, month);
        }
    }
}

/// CLDR's lines: language, month (0 for a marker) and names.
fn cldr_lines() -> impl Iterator<Item = (&'static str, u32, std::str::Split<'static, char>)> {
    CLDR_MONTHS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let language = fields.next()?;
            let month = fields.next()?.parse().ok()?;
            Some((language, month, fields))
        })
}

/// A locale's month names and abbreviations, each with its index (0 = January).
fn names(locale: Locale) -> impl Iterator<Item = (usize, &'static str)> {
    let lists: [&'static [&'static str]; 4] = [
        locale_match!(locale => LC_TIME::MON),
        locale_match!(locale => LC_TIME::ABMON),
        locale_match!(locale => LC_TIME::ALT_MON).unwrap_or_default(),
        locale_match!(locale => LC_TIME::AB_ALT_MON).unwrap_or_default(),
    ];
    lists
        .into_iter()
        .flat_map(|list| list.iter().copied().enumerate().take(12))
}

/// Adds `key` for `month`, marking it ambiguous when it already names another month.
fn insert(months: &mut Months, key: String, month: Option<u32>) {
    months
        .entry(key)
        .and_modify(|known| {
            if *known != month {
                *known = None;
            }
        })
        .or_insert(month);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full names, abbreviations and genitive forms in several languages, with and without the
    /// row's country.
    #[test]
    fn month_names_in_other_languages() {
        let cases = [
            ("março", None, Some(3)),
            ("marco", Some("br"), Some(3)),
            ("października", None, Some(10)),
            ("październik", Some("pl"), Some(10)),
            ("paź", Some("pl"), Some(10)),
            ("октября", None, Some(10)),
            ("Октябрь", Some("ru"), Some(10)),
            ("März", None, Some(3)),
            ("Mär", Some("de"), Some(3)),
            ("janvier", None, Some(1)),
            ("févr", Some("fr"), Some(2)),
            ("diciembre", None, Some(12)),
            ("maggio", None, Some(5)),
            ("Ağustos", None, Some(8)),
            ("Σεπτεμβρίου", None, Some(9)),
            ("března", Some("cz"), Some(3)),
            // The same word, another month: the row's country decides, else nothing does.
            ("listopad", Some("hr"), Some(10)),
            ("listopad", Some("pl"), Some(11)),
            ("listopad", None, None),
            // Words around dates.
            ("de", None, None),
            ("del", Some("es"), None),
            ("born", None, None),
            // CLDR's forms (issue 24's 35-locale check, bench/locales).
            ("syyskuuta", Some("fi"), Some(9)),
            ("augusta", Some("sk"), Some(8)),
            ("серп", Some("ua"), Some(8)),
            ("февр", Some("ru"), Some(2)),
            ("בספטמבר", Some("il"), Some(9)),
            ("ספט", Some("il"), Some(9)),
        ];
        for (word, country, want) in cases {
            assert_eq!(month_number(word, country), want, "{word} in {country:?}");
        }
        assert_eq!(abbreviation_number("พค", Some("th")), Some(5));
        assert_eq!(abbreviation_number("ธค", None), Some(12));
        assert_eq!(abbreviation_number("คศ", Some("th")), None);
        assert!(is_marker("tháng") && is_marker("Thg") && is_marker("thang"));
        assert!(!is_marker("de") && !is_marker("năm"));
    }
}

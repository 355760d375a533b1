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

use std::collections::HashMap;
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
}

/// 1 to 12 for a month name or abbreviation in a language glibc has a locale for; `country` is
/// the row's lowercase alpha-2 code.
pub(super) fn month_number(word: &str, country: Option<&str>) -> Option<u32> {
    let key = key(word, false)?;
    let tables = tables();
    if let Some(own) = country.and_then(|c| tables.by_country.get(c)) {
        if let Some(month) = lookup(own, &key, word) {
            return month;
        }
    }
    lookup(&tables.all, &key, word).flatten()
}

/// The entry for `key`, else for `word` without its accents: `Some(None)` when ambiguous.
fn lookup(months: &Months, key: &str, word: &str) -> Option<Option<u32>> {
    months.get(key).copied().or_else(|| {
        let bare = self::key(word, true)?;
        (bare != key).then(|| months.get(&bare).copied()).flatten()
    })
}

/// The lookup key of a word: its letters (and their marks unless `bare`), lowercased, in NFC;
/// `None` when shorter than three letters.
fn key(word: &str, bare: bool) -> Option<String> {
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
    (key.chars().filter(|c| c.is_alphabetic()).count() >= 3).then_some(key)
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
    for country in keshvar::CountryIterator::new() {
        let code = country.alpha2().to_string();
        let languages = country
            .maybe_official_language_list()
            .into_iter()
            .chain(country.maybe_spoken_language_list())
            .flatten();
        for language in languages {
            let name = format!("{}_{}", language.to_lowercase(), code.to_uppercase());
            let Ok(locale) = Locale::try_from(name.as_str()) else {
                continue;
            };
            let own = by_country.entry(code.to_lowercase()).or_default();
            for (at, word) in names(locale) {
                let month = u32::try_from(at + 1).ok();
                for bare in [false, true] {
                    if let Some(key) = key(word, bare) {
                        insert(own, key.clone(), month);
                        insert(&mut all, key, month);
                    }
                }
            }
        }
    }
    Tables { all, by_country }
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
        ];
        for (word, country, want) in cases {
            assert_eq!(month_number(word, country), want, "{word} in {country:?}");
        }
    }
}

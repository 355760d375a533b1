//! Country names beyond celes' English ones: ISO 3166 short names in their inverted form
//! (`Korea, Republic of`), ISO long names (`The Republic of Türkiye`), the common unofficial
//! names and the name in other languages (`Deutschland`, `Japão`, `日本`), from the `keshvar`
//! crate's data (ISO 3166 with CLDR-based translations), not from a hand-written list.
//!
//! A name is looked up by its words in any order, without case, accents, punctuation or the
//! words "the", "of" and "and": `Korea, Republic of` and `Republic of Korea` are one key, as are
//! `Virgin Islands, U.S.` and `Virgin Islands (U.S.)`.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Words that do not tell countries apart and that the inverted ISO forms move around.
const STOP_WORDS: [&str; 3] = ["the", "of", "and"];

/// Key → alpha-2 code (uppercase), or `None` when two countries share the key.
type Names = HashMap<String, Option<&'static str>>;

/// The alpha-2 code (uppercase) of a country name, if exactly one country has it.
pub(super) fn by_name(raw: &str) -> Option<&'static str> {
    let key = key(raw)?;
    names().get(&key).copied().flatten()
}

/// The lookup key of a name: its words, lowercased, without accents or stop words, sorted and
/// joined by a space. `None` when nothing is left, or for a short ASCII word (`ab`, `xyz`): codes
/// are celes' business, and three letters from some language's name would shadow them.
fn key(raw: &str) -> Option<String> {
    let bare: String = raw
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase();
    let mut words: Vec<&str> = bare
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .collect();
    words.sort_unstable();
    words.dedup();
    let key = words.join(" ");
    let short_code = key.len() <= 3 && key.is_ascii();
    (!key.is_empty() && !short_code).then_some(key)
}

/// Every name of every country, built once on first use (~25,000 names).
fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(build)
}

/// Builds the table. Official and common names come first; a translation only adds a key that
/// no such name has. Two countries with the same key at the same level make it ambiguous.
fn build() -> Names {
    let countries: Vec<(&'static str, keshvar::Country)> = keshvar::CountryIterator::new()
        .filter_map(|country| {
            let code = alpha2_text(country.alpha2())?;
            Some((code, country))
        })
        .collect();
    let mut names = Names::new();
    let mut official = Names::new();
    for (code, country) in &countries {
        let listed = [country.iso_short_name(), country.iso_long_name()];
        for name in listed.iter().chain(country.unofficial_name_list()) {
            insert(&mut official, name, code);
        }
    }
    let mut translated = Names::new();
    for (code, country) in &countries {
        for name in country.translations().values() {
            insert(&mut translated, name, code);
        }
    }
    for (key, code) in translated {
        if !official.contains_key(&key) {
            names.insert(key, code);
        }
    }
    names.extend(official);
    names
}

/// Adds `name` for `code`, marking the key ambiguous when another country already has it.
fn insert(names: &mut Names, name: &str, code: &'static str) {
    let Some(key) = key(name) else {
        return;
    };
    names
        .entry(key)
        .and_modify(|known| {
            if *known != Some(code) {
                *known = None;
            }
        })
        .or_insert(Some(code));
}

/// keshvar's alpha-2 code as celes' static text for it (celes has every code keshvar has), so
/// that the table holds no allocated codes.
fn alpha2_text(alpha2: keshvar::Alpha2) -> Option<&'static str> {
    celes::Country::from_alpha2(alpha2.to_string())
        .ok()
        .map(|c| c.alpha2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inverted, long and foreign names find their country.
    #[test]
    fn inverted_long_and_foreign_names_find_their_country() {
        let cases = [
            ("Korea, Republic of", "KR"),
            ("Republic of Korea", "KR"),
            ("Korea, Democratic People's Republic of", "KP"),
            ("Venezuela, Bolivarian Republic of", "VE"),
            ("Bolivia (Plurinational State of)", "BO"),
            ("Iran, Islamic Republic of", "IR"),
            ("Congo, The Democratic Republic of the", "CD"),
            ("Tanzania, United Republic of", "TZ"),
            ("Virgin Islands, U.S.", "VI"),
            ("Virgin Islands, British", "VG"),
            ("Türkiye", "TR"),
            ("Turkiye", "TR"),
            ("The Republic of Türkiye", "TR"),
            ("Holy See (Vatican City State)", "VA"),
            ("Deutschland", "DE"),
            ("Allemagne", "DE"),
            ("España", "ES"),
            ("Espana", "ES"),
            ("Japão", "JP"),
            ("日本", "JP"),
            ("Nederland", "NL"),
            ("Österreich", "AT"),
            ("Schweiz", "CH"),
            ("Brasil", "BR"),
            ("Россия", "RU"),
            ("中国", "CN"),
            ("대한민국", "KR"),
            ("Sverige", "SE"),
            ("Polska", "PL"),
            ("Ελλάδα", "GR"),
            ("Italia", "IT"),
            ("México", "MX"),
        ];
        for (raw, want) in cases {
            assert_eq!(by_name(raw), Some(want), "{raw}");
        }
    }

    /// Every country's own ISO names find it.
    #[test]
    fn every_countrys_iso_names_find_it() {
        for country in keshvar::CountryIterator::new() {
            let want = alpha2_text(country.alpha2());
            assert!(want.is_some(), "celes lacks {:?}", country.alpha2());
            for name in [country.iso_short_name(), country.iso_long_name()] {
                assert_eq!(by_name(name), want, "{name}");
            }
        }
    }

    /// Short ascii words and junk find nothing.
    #[test]
    fn short_ascii_words_and_junk_find_nothing() {
        for raw in ["ab", "xyz", "Narnia", "randomcountry", "", "...", "123"] {
            assert_eq!(by_name(raw), None, "{raw}");
        }
    }
}

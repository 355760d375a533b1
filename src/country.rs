//! Countries by any name or code: the one country source of the crate, for `[defaults] country`
//! and for a row's `country` (normalized in `transform::normalize`).
//!
//! - Codes, ISO 3166 names and the common unofficial names: the `keshvar` crate (ISO 3166-1
//!   alpha-2 and alpha-3, the ISO short name and its inverted form `Korea, Republic of`, the
//!   ISO long name `The Republic of Türkiye`, and names such as `Great Britain`, `England`).
//! - Names in every language: CLDR's territory display names, every locale with its short and
//!   variant forms (`Nhật Bản`, `ロシア`, `サウジアラビア`, `UK`), in `country-names.txt`, written
//!   by `scripts/cldr-country-names` from the npm package `cldr-localenames-full` (its header
//!   names the version and carries the Unicode license).
//!
//! A name is looked up by its words in any order, without case, accents, punctuation or the
//! words "the", "of" and "and": `Korea, Republic of` and `Republic of Korea` are one key, as are
//! `Virgin Islands, U.S.` and `Virgin Islands (U.S.)`. ISO and unofficial names come first; a
//! CLDR name only adds a key that none of them has, and a key that two countries share at the
//! same level names no country (CLDR's `Kongo` is both Congos in some languages).

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// CLDR's territory names, one line per territory (`scripts/cldr-country-names`).
const CLDR_NAMES: &str = include_str!("country-names.txt");

/// Words that do not tell countries apart and that the inverted ISO forms move around.
const STOP_WORDS: [&str; 3] = ["the", "of", "and"];

/// Names the data above lacks that British data uses for the whole United Kingdom: the other
/// countries of the UK besides England (which keshvar lists), as ISO 3166-2:GB names them.
const UK_COUNTRIES: [&str; 3] = ["Scotland", "Wales", "Northern Ireland"];

/// A lowercase ISO 3166-1 alpha-2 code.
pub type Alpha2 = [u8; 2];

/// Key → code, or `None` when two countries share the key.
type Keys = HashMap<String, Option<Alpha2>>;

/// ISO 3166's codes and names (keshvar), built on first use: all that a column of codes or
/// English names needs.
struct Iso {
    /// Lowercase alpha-2 and alpha-3 codes.
    codes: HashMap<String, Alpha2>,
    /// Name keys ([`key`]) of the ISO and unofficial names.
    names: Keys,
    /// The same names as one run of ASCII letters (`unitedstates`,
    /// `laopeoplesdemocraticrepublic`), for values whose words ran together or were cut apart
    /// by noise (`United|States`, `Lao Peoples Democratic Republic`).
    compact: Keys,
}

/// CLDR's names (~35,000), built on the first name that [`Iso`] does not know: keys that no
/// ISO or unofficial name has.
struct Cldr {
    /// Name keys.
    names: Keys,
    /// Compact keys of the names written in ASCII letters.
    compact: Keys,
}

/// The lowercase alpha-2 code of a country named or coded by `raw`, or `None` when unknown or
/// ambiguous.
///
/// A value with letters outside ASCII is a name, never a code: stripped of its accents, the
/// Vietnamese `Áo` (Austria) would be `ao`, Angola's code. An ASCII value is a code when its
/// letters are one (`US`, `u.s.a.`, `9gb`), else a name, in any language. `UK` is the United
/// Kingdom: ISO 3166 reserves it for GB, and most British data says it.
pub fn alpha2(raw: &str) -> Option<Alpha2> {
    let raw = raw.trim();
    if !raw.is_ascii() && raw.chars().any(|c| c.is_alphabetic() && !c.is_ascii()) {
        return by_name(raw);
    }
    let letters: String = raw
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if letters == "uk" {
        return Some(*b"gb");
    }
    let iso = iso();
    if let Some(code) = iso.codes.get(&letters) {
        return Some(*code);
    }
    if let Some(code) = iso.compact.get(&letters) {
        return *code;
    }
    if let Some(code) = key(raw).and_then(|key| iso.names.get(&key)) {
        return *code;
    }
    match cldr().compact.get(&letters) {
        Some(code) => *code,
        None => by_name(raw),
    }
}

/// The code of a country name, if exactly one country has it: ISO's names, then CLDR's.
///
/// A name whose words CLDR writes apart or joined otherwise (`ติมอร์-เลสเต` written
/// `ติมอร์เลสเต`, `중앙 아프리카 공화국` written `중앙아프리카 공화국`) is found by its letters run
/// together, when no name has its words.
fn by_name(raw: &str) -> Option<Alpha2> {
    let key = key(raw)?;
    match iso().names.get(&key) {
        Some(code) => *code,
        None => match cldr().names.get(&key) {
            Some(code) => *code,
            None => {
                let key = compact_key(raw)?;
                match iso().compact.get(&key) {
                    Some(code) => *code,
                    None => cldr().compact.get(&key).copied().flatten(),
                }
            }
        },
    }
}

/// The lookup key of a name: its words, lowercased, without accents or stop words, sorted and
/// joined by a space. `None` when nothing is left, or for a short ASCII name (`ab`, `xyz`): codes
/// are looked up as codes, and three letters from some language's name would shadow them (a
/// short name with accents, Vietnamese `Áo`, is a name).
fn key(raw: &str) -> Option<String> {
    let bare = if raw.is_ascii() {
        raw.to_ascii_lowercase()
    } else {
        raw.nfd()
            .filter(|c| !is_combining_mark(*c))
            .collect::<String>()
            .to_lowercase()
    };
    let mut words: Vec<&str> = bare
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .collect();
    words.sort_unstable();
    words.dedup();
    let key = words.join(" ");
    let short_code = key.len() <= 3 && raw.is_ascii();
    (!key.is_empty() && !short_code).then_some(key)
}

/// The compact key of a name: its letters lowercased, accents (combining marks) stripped, run
/// together; `None` for three letters or fewer.
fn compact_key(name: &str) -> Option<String> {
    let key: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c) && c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    (key.chars().count() > 3).then_some(key)
}

/// ISO's table, built on first use.
fn iso() -> &'static Iso {
    static ISO: OnceLock<Iso> = OnceLock::new();
    ISO.get_or_init(build_iso)
}

/// CLDR's table, built on first use.
fn cldr() -> &'static Cldr {
    static CLDR: OnceLock<Cldr> = OnceLock::new();
    CLDR.get_or_init(|| build_cldr(iso()))
}

/// Builds ISO's table, so that a spare core does it while a run connects. CLDR's is left to
/// the first name that needs it (~0.1 s of CPU that a column of codes never spends).
pub fn warm_up() {
    let _ = iso();
}

/// keshvar's codes and names, and the UK's countries.
fn build_iso() -> Iso {
    let mut codes = HashMap::new();
    let mut names = Keys::new();
    let mut compact = Keys::new();
    for country in keshvar::CountryIterator::new() {
        let alpha2 = country.alpha2().to_string();
        let Some(code) = lower_code(&alpha2) else {
            continue;
        };
        codes.insert(alpha2.to_ascii_lowercase(), code);
        codes.insert(country.alpha3().to_string().to_ascii_lowercase(), code);
        let listed = [country.iso_short_name(), country.iso_long_name()];
        for name in listed.iter().chain(country.unofficial_name_list()) {
            insert(&mut names, key(name), code);
            insert(&mut compact, compact_key(name), code);
        }
    }
    for name in UK_COUNTRIES {
        insert(&mut names, key(name), *b"gb");
        insert(&mut compact, compact_key(name), *b"gb");
    }
    Iso {
        codes,
        names,
        compact,
    }
}

/// CLDR's names of the countries `iso` knows (not CLDR-only codes such as EU or XK), without
/// the keys `iso` already has.
fn build_cldr(iso: &Iso) -> Cldr {
    let mut names = Keys::new();
    let mut compact = Keys::new();
    for line in CLDR_NAMES.lines().filter(|line| !line.starts_with('#')) {
        let mut fields = line.split('\t');
        let Some(code) = fields.next().and_then(lower_code) else {
            continue;
        };
        if !iso.codes.values().any(|known| *known == code) {
            continue;
        }
        for name in fields {
            if let Some(key) = key(name).filter(|key| !iso.names.contains_key(key)) {
                insert(&mut names, Some(key), code);
            }
            if let Some(key) = compact_key(name).filter(|key| !iso.compact.contains_key(key)) {
                insert(&mut compact, Some(key), code);
            }
        }
    }
    Cldr { names, compact }
}

/// An alpha-2 code's lowercase bytes.
fn lower_code(code: &str) -> Option<Alpha2> {
    let code: [u8; 2] = code.as_bytes().try_into().ok()?;
    code.iter()
        .all(u8::is_ascii_alphabetic)
        .then(|| code.map(|b| b.to_ascii_lowercase()))
}

/// Adds `key` for `code`, marking the key ambiguous when another country already has it.
fn insert(keys: &mut Keys, key: Option<String>, code: Alpha2) {
    let Some(key) = key else {
        return;
    };
    keys.entry(key)
        .and_modify(|known| {
            if *known != Some(code) {
                *known = None;
            }
        })
        .or_insert(Some(code));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code as text, for readable assertions.
    fn code(raw: &str) -> Option<String> {
        alpha2(raw).map(|c| String::from_utf8_lossy(&c).into_owned())
    }

    /// Inverted, long and foreign names find their country.
    #[test]
    fn inverted_long_and_foreign_names_find_their_country() {
        let cases = [
            ("Korea, Republic of", "kr"),
            ("Republic of Korea", "kr"),
            ("Korea, Democratic People's Republic of", "kp"),
            ("Venezuela, Bolivarian Republic of", "ve"),
            ("Bolivia (Plurinational State of)", "bo"),
            ("Iran, Islamic Republic of", "ir"),
            ("Congo, The Democratic Republic of the", "cd"),
            ("Tanzania, United Republic of", "tz"),
            ("Virgin Islands, U.S.", "vi"),
            ("Virgin Islands, British", "vg"),
            ("Türkiye", "tr"),
            ("Turkiye", "tr"),
            ("The Republic of Türkiye", "tr"),
            ("Holy See (Vatican City State)", "va"),
            ("Deutschland", "de"),
            ("Allemagne", "de"),
            ("España", "es"),
            ("Espana", "es"),
            ("Japão", "jp"),
            ("日本", "jp"),
            ("Nederland", "nl"),
            ("Österreich", "at"),
            ("Schweiz", "ch"),
            ("Brasil", "br"),
            ("Россия", "ru"),
            ("中国", "cn"),
            ("대한민국", "kr"),
            ("Sverige", "se"),
            ("Polska", "pl"),
            ("Ελλάδα", "gr"),
            ("Italia", "it"),
            ("México", "mx"),
            ("Scotland", "gb"),
            ("Great Britain", "gb"),
        ];
        for (raw, want) in cases {
            assert_eq!(code(raw).as_deref(), Some(want), "{raw}");
        }
    }

    /// CLDR's short and variant names in other languages, which keshvar's long forms lack
    /// (issue 24): Vietnamese, Japanese, Korean, Arabic, Hindi, Thai, Ukrainian, Hebrew.
    #[test]
    fn cldr_short_names_in_other_languages_find_their_country() {
        let cases = [
            ("Nhật Bản", "jp"),
            ("ロシア", "ru"),
            ("サウジアラビア", "sa"),
            ("Áo", "at"),
            ("Hàn Quốc", "kr"),
            ("Đức", "de"),
            ("アメリカ合衆国", "us"),
            ("イギリス", "gb"),
            ("미국", "us"),
            ("السعودية", "sa"),
            ("भारत", "in"),
            ("ประเทศไทย", "th"),
            ("Україна", "ua"),
            ("ישראל", "il"),
            ("Magyarország", "hu"),
            ("Türkei", "tr"),
            // Words CLDR writes apart or with a hyphen or a middle dot, as Faker's locales
            // write them (issue 24's 35-locale check, bench/locales).
            ("ติมอร์เลสเต", "tl"),
            ("アンティグアバーブーダ", "ag"),
            ("サントメプリンシペ", "st"),
            ("중앙아프리카 공화국", "cf"),
            ("파푸아 뉴기니", "pg"),
            ("Центральноафриканская Республика", "cf"),
        ];
        for (raw, want) in cases {
            assert_eq!(code(raw).as_deref(), Some(want), "{raw}");
        }
    }

    /// A non-ASCII value is never a code, and a name two countries share names none.
    #[test]
    fn non_ascii_values_are_names_and_shared_names_name_no_country() {
        // `Áo` stripped of its accent is Angola's code; the name is Austria.
        assert_eq!(code("Áo").as_deref(), Some("at"));
        assert_eq!(code("ÁO").as_deref(), Some("at"));
        assert_eq!(code("Ao").as_deref(), Some("ao"));
        // CLDR names that two countries share: Saint Martin's two halves in Serbian, Niger
        // and Nigeria in one language, Latvia and Lithuania in another.
        assert_eq!(code("Свети Мартин"), None);
        assert_eq!(code("Nigeri"), None);
        assert_eq!(code("لتونی"), None);
    }

    /// Codes in any case and with noise around them; `UK` is GB.
    #[test]
    fn codes_in_any_case_and_noise_find_their_country() {
        let cases = [
            ("US", "us"),
            ("usa", "us"),
            ("U.S.A.", "us"),
            ("DEU", "de"),
            ("9gb", "gb"),
            ("C-A", "ca"),
            ("UK", "gb"),
            ("Japan2024", "jp"),
            ("United|States", "us"),
            ("Lao Peoples Democratic Republic", "la"),
        ];
        for (raw, want) in cases {
            assert_eq!(code(raw).as_deref(), Some(want), "{raw}");
        }
    }

    /// Every country's own ISO names find it.
    #[test]
    fn every_countrys_iso_names_find_it() {
        for country in keshvar::CountryIterator::new() {
            let want = lower_code(&country.alpha2().to_string());
            for name in [country.iso_short_name(), country.iso_long_name()] {
                assert_eq!(alpha2(name), want, "{name}");
            }
        }
    }

    /// Short ascii words and junk find nothing.
    #[test]
    fn short_ascii_words_and_junk_find_nothing() {
        for raw in [
            "ab",
            "xyz",
            "Narnia",
            "randomcountry",
            "",
            "...",
            "123",
            "zz",
        ] {
            assert_eq!(alpha2(raw), None, "{raw}");
        }
    }
}

//! `st` and `zp`, whose rules depend on the row's country: US states become their 2-letter code,
//! US zips (and those of the territories that use US ZIP codes) their first 5 digits, UK
//! postcodes are kept whole.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{is_name_char, lower_kept, Outcome};

/// US states, DC and the inhabited territories: USPS name (lowercase, letters only) and code.
/// Source: USPS Publication 28, appendix B (the same codes as ANSI/FIPS 5-2 for these entries).
const US_STATES: [(&str, &str); 56] = [
    ("alabama", "al"),
    ("alaska", "ak"),
    ("arizona", "az"),
    ("arkansas", "ar"),
    ("california", "ca"),
    ("colorado", "co"),
    ("connecticut", "ct"),
    ("delaware", "de"),
    ("districtofcolumbia", "dc"),
    ("florida", "fl"),
    ("georgia", "ga"),
    ("hawaii", "hi"),
    ("idaho", "id"),
    ("illinois", "il"),
    ("indiana", "in"),
    ("iowa", "ia"),
    ("kansas", "ks"),
    ("kentucky", "ky"),
    ("louisiana", "la"),
    ("maine", "me"),
    ("maryland", "md"),
    ("massachusetts", "ma"),
    ("michigan", "mi"),
    ("minnesota", "mn"),
    ("mississippi", "ms"),
    ("missouri", "mo"),
    ("montana", "mt"),
    ("nebraska", "ne"),
    ("nevada", "nv"),
    ("newhampshire", "nh"),
    ("newjersey", "nj"),
    ("newmexico", "nm"),
    ("newyork", "ny"),
    ("northcarolina", "nc"),
    ("northdakota", "nd"),
    ("ohio", "oh"),
    ("oklahoma", "ok"),
    ("oregon", "or"),
    ("pennsylvania", "pa"),
    ("rhodeisland", "ri"),
    ("southcarolina", "sc"),
    ("southdakota", "sd"),
    ("tennessee", "tn"),
    ("texas", "tx"),
    ("utah", "ut"),
    ("vermont", "vt"),
    ("virginia", "va"),
    ("washington", "wa"),
    ("westvirginia", "wv"),
    ("wisconsin", "wi"),
    ("wyoming", "wy"),
    ("americansamoa", "as"),
    ("guam", "gu"),
    ("northernmarianaislands", "mp"),
    ("puertorico", "pr"),
    ("virginislands", "vi"),
];

/// The abbreviations newspapers and older address books use (AP style and the Government
/// Printing Office's, letters only): `Calif.`, `Mass.`, `Tex.`, `N. Dak.`. The AP forms that are
/// the USPS code itself (`Ga.`, `Pa.`, `N.Y.`) need no entry.
const PRESS_ABBREVIATIONS: &[(&str, &str)] = &[
    ("ala", "al"),
    ("ariz", "az"),
    ("ark", "ar"),
    ("calif", "ca"),
    ("cal", "ca"),
    ("colo", "co"),
    ("col", "co"),
    ("conn", "ct"),
    ("del", "de"),
    ("fla", "fl"),
    ("flor", "fl"),
    ("ill", "il"),
    ("ind", "in"),
    ("kan", "ks"),
    ("kans", "ks"),
    ("mass", "ma"),
    ("mich", "mi"),
    ("minn", "mn"),
    ("miss", "ms"),
    ("mont", "mt"),
    ("neb", "ne"),
    ("nebr", "ne"),
    ("nev", "nv"),
    ("ndak", "nd"),
    ("sdak", "sd"),
    ("nmex", "nm"),
    ("okla", "ok"),
    ("ore", "or"),
    ("oreg", "or"),
    ("penn", "pa"),
    ("penna", "pa"),
    ("tenn", "tn"),
    ("tex", "tx"),
    ("wash", "wa"),
    ("wva", "wv"),
    ("wis", "wi"),
    ("wisc", "wi"),
    ("wyo", "wy"),
    ("usvirginislands", "vi"),
];

/// Countries and territories whose postcodes are US ZIP codes: the US, Puerto Rico, Guam, the US
/// Virgin Islands, American Samoa, the Northern Mariana Islands, the US Minor Outlying Islands
/// and the freely associated states (Micronesia, the Marshall Islands, Palau).
const US_ZIP_COUNTRIES: [&str; 10] = ["us", "pr", "gu", "vi", "as", "mp", "um", "fm", "mh", "pw"];

/// `st`: for US rows the 2-letter code in lowercase (`California`, `CA`, `N.Y.`, `Calif.`,
/// `Florida32801` → `ca`, `ca`, `ny`, `ca`, `fl`), and dropped when it names no state; without a
/// country, a US state's name or abbreviation becomes its code too (`Georgia` → `ga`: a state
/// field holding a country's name is rarer than a US address without a country) and anything
/// else is as elsewhere; elsewhere lowercase without punctuation or spaces.
pub(super) fn state(value: &str, country: Option<&str>) -> Outcome {
    match country {
        Some("us") => us_state(value).map_or(Outcome::Dropped, |code| {
            Outcome::Normalized(code.to_owned())
        }),
        None => match us_state(value) {
            Some(code) => Outcome::Normalized(code.to_owned()),
            None => Outcome::Normalized(lower_kept(value, is_name_char)),
        },
        Some(_) => Outcome::Normalized(lower_kept(value, is_name_char)),
    }
}

/// The USPS code of the US state, DC or territory `value` names: by code, USPS name or press
/// abbreviation, in any case, with any punctuation or spacing (`Hawaiʻi`), and with a ZIP code
/// glued to it (`Florida32801`): only its ASCII letters count.
fn us_state(value: &str) -> Option<&'static str> {
    let key: String = value
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    us_states().get(key.as_str()).copied()
}

/// Every spelling [`us_state`] knows (a state's name, its code, a press abbreviation) and its
/// code, built once: a linear search of the tables cost ~1,400 instructions per row (callgrind,
/// docs/benchmarks.md). A name or code wins over a press abbreviation spelled the same, as the
/// search it replaces had it.
fn us_states() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map: HashMap<&'static str, &'static str> =
            PRESS_ABBREVIATIONS.iter().copied().collect();
        for (name, code) in US_STATES {
            map.insert(name, code);
            map.insert(code, code);
        }
        map
    })
}

/// `zp`: lowercase letters and digits only (no spaces, no dash); US zips, and those of the
/// territories that use them, are their first 5 digits (`94035-1234` → `94035`) and dropped when
/// not 5 or 9 digits; UK postcodes whole. Without a country, a ZIP+4 (`94035-1234`) is taken as a
/// US zip: no other postcode has its shape, and keeping all 9 digits would never match. A single
/// character is no postcode anywhere, and is dropped.
pub(super) fn zip(value: &str, country: Option<&str>) -> Outcome {
    let key = lower_kept(value, char::is_alphanumeric);
    if key.chars().nth(1).is_none() {
        return Outcome::Dropped;
    }
    let us = country.is_some_and(|c| US_ZIP_COUNTRIES.contains(&c))
        || (country.is_none() && is_zip_plus4(value));
    if !us {
        return Outcome::Normalized(key);
    }
    let us_shape = (key.len() == 5 || key.len() == 9) && key.bytes().all(|b| b.is_ascii_digit());
    match key.get(..5) {
        Some(zip5) if us_shape => Outcome::Normalized(zip5.to_owned()),
        _ => Outcome::Dropped,
    }
}

/// Whether `value` is written as a US ZIP+4: 5 digits, a dash or space, 4 digits.
fn is_zip_plus4(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 10
        && matches!(bytes[5], b'-' | b' ')
        && bytes[..5].iter().chain(&bytes[6..]).all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shorthand for an expected normalized value.
    fn ok(value: &str) -> Outcome {
        Outcome::Normalized(value.to_owned())
    }

    /// Us states become their code.
    #[test]
    fn us_states_become_their_code() {
        let us = Some("us");
        assert_eq!(state("California", us), ok("ca"));
        assert_eq!(state("CA", us), ok("ca"));
        assert_eq!(state("N.Y.", us), ok("ny"));
        assert_eq!(state("new  york", us), ok("ny"));
        assert_eq!(state("District of Columbia", us), ok("dc"));
        assert_eq!(state("Puerto Rico", us), ok("pr"));
        assert_eq!(state("Calif", us), ok("ca"));
        assert_eq!(state("Calif.", us), ok("ca"));
        assert_eq!(state("N. Dak.", us), ok("nd"));
        assert_eq!(state("Florida32801", us), ok("fl"));
        assert_eq!(state("32801 FL", us), ok("fl"));
        assert_eq!(state("Hawaiʻi", us), ok("hi"));
        assert_eq!(state("Californ", us), Outcome::Dropped);
        assert_eq!(state("ZZ", us), Outcome::Dropped);
    }

    /// Every state's name, code and press abbreviation, in any case and spacing, and with a ZIP
    /// glued on, is its code in a US row and without a country.
    #[test]
    fn every_state_spelling_is_its_code_in_us_rows_and_without_a_country() {
        let spellings = US_STATES.iter().chain(PRESS_ABBREVIATIONS);
        for (name, code) in spellings {
            for country in [Some("us"), None] {
                for raw in [
                    (*name).to_owned(),
                    name.to_uppercase(),
                    format!("{name}."),
                    format!(" {name}12345 "),
                    code.to_uppercase(),
                ] {
                    assert_eq!(state(&raw, country), ok(code), "{raw:?} in {country:?}");
                }
            }
        }
    }

    /// Other states lose punctuation and spaces.
    #[test]
    fn other_states_lose_punctuation_and_spaces() {
        assert_eq!(state("Île-de-France", Some("fr")), ok("îledefrance"));
        assert_eq!(state("British Columbia", Some("ca")), ok("britishcolumbia"));
        assert_eq!(state("California", None), ok("ca"));
        assert_eq!(state("Mass.", None), ok("ma"));
        assert_eq!(state("Bavaria", None), ok("bavaria"));
        assert_eq!(state("NSW", None), ok("nsw"));
        assert_eq!(state("Georgia", Some("ge")), ok("georgia"));
        assert_eq!(state("ΑΤΤΙΚΗ", Some("gr")), ok("αττικη"));
        assert_eq!(state("NSW", Some("au")), ok("nsw"));
    }

    /// Us zips keep five digits.
    #[test]
    fn us_zips_keep_five_digits() {
        let us = Some("us");
        assert_eq!(zip("94035-1234", us), ok("94035"));
        assert_eq!(zip("94035 1234", us), ok("94035"));
        assert_eq!(zip("940351234", us), ok("94035"));
        assert_eq!(zip("02101", us), ok("02101"));
        assert_eq!(zip("2101", us), Outcome::Dropped);
        assert_eq!(zip("9403A", us), Outcome::Dropped);
    }

    /// Every territory that uses US ZIP codes keeps five digits.
    #[test]
    fn us_territory_zips_keep_five_digits() {
        for territory in US_ZIP_COUNTRIES {
            let country = Some(territory);
            assert_eq!(zip("00901-1234", country), ok("00901"), "{territory}");
            assert_eq!(zip("969100000", country), ok("96910"), "{territory}");
            assert_eq!(zip("9691", country), Outcome::Dropped, "{territory}");
        }
    }

    /// A single character is never a postcode.
    #[test]
    fn a_single_character_is_never_a_postcode() {
        for country in [None, Some("us"), Some("gb"), Some("fr"), Some("ie")] {
            for raw in ["1", " a ", "-1", "--Z--", "７"] {
                assert_eq!(zip(raw, country), Outcome::Dropped, "{raw} in {country:?}");
            }
        }
    }

    /// Other zips are whole without spaces or dashes.
    #[test]
    fn other_zips_are_whole_without_spaces_or_dashes() {
        assert_eq!(zip("SW1A 1AA", Some("gb")), ok("sw1a1aa"));
        assert_eq!(zip("M1 1AE", Some("gb")), ok("m11ae"));
        assert_eq!(zip("75018", Some("fr")), ok("75018"));
        assert_eq!(zip("K1A 0B1", Some("ca")), ok("k1a0b1"));
        assert_eq!(zip("1000-001", Some("pt")), ok("1000001"));
        assert_eq!(zip("94035-1234", None), ok("94035"));
        assert_eq!(zip("1000-001", None), ok("1000001"));
    }
}

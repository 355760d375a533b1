//! `st` and `zp`, whose rules depend on the row's country: US states become their 2-letter code,
//! US zips their first 5 digits, UK postcodes are kept whole.

use super::{is_name_char, Outcome};

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

/// `st`: for US rows the 2-letter code in lowercase (`California`, `CA`, `N.Y.` → `ca`, `ca`,
/// `ny`), and dropped when it names no state; elsewhere lowercase without punctuation or spaces.
pub(super) fn state(value: &str, country: Option<&str>) -> Outcome {
    let key: String = value
        .chars()
        .filter(|c| is_name_char(*c))
        .flat_map(char::to_lowercase)
        .collect();
    if country != Some("us") {
        return Outcome::Normalized(key);
    }
    let code = US_STATES
        .iter()
        .find(|(name, code)| *code == key || *name == key)
        .map(|(_, code)| *code);
    code.map_or(Outcome::Dropped, |code| {
        Outcome::Normalized(code.to_owned())
    })
}

/// `zp`: lowercase letters and digits only (no spaces, no dash); US zips are their first 5
/// digits (`94035-1234` → `94035`) and dropped when not 5 or 9 digits; UK postcodes whole.
/// Without a country, a ZIP+4 (`94035-1234`) is taken as a US zip: no other postcode has its
/// shape, and keeping all 9 digits would never match.
pub(super) fn zip(value: &str, country: Option<&str>) -> Outcome {
    let key: String = value
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let us = country == Some("us") || (country.is_none() && is_zip_plus4(value));
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
        assert_eq!(state("Calif", us), Outcome::Dropped);
        assert_eq!(state("ZZ", us), Outcome::Dropped);
    }

    /// Other states lose punctuation and spaces.
    #[test]
    fn other_states_lose_punctuation_and_spaces() {
        assert_eq!(state("Île-de-France", Some("fr")), ok("îledefrance"));
        assert_eq!(state("British Columbia", Some("ca")), ok("britishcolumbia"));
        assert_eq!(state("California", None), ok("california"));
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

//! Customer-field normalization, one function per `user_data` key, exactly as Meta requires
//! (docs/normalization.md). Pure: no I/O; the clock is read only by [`normalize`], which passes
//! the current year to the pure [`normalize_at`].
//!
//! Every value is trimmed and its Unicode compatibility forms are folded first (full-width
//! `０９０` is `090`, `ﬁ` is `fi`; letters canonical in their script, such as Thai `ำ`, are kept:
//! [`fold`](fold::fold)); a value that already is a SHA-256 hex digest
//! passes through lowercased. Lowercasing takes whole strings, with each language's rules (a
//! Greek word's last `Σ` is `ς`), and what is hashed is the NFC form. The field rules live in
//! one function each: [`email`], [`phone`](phone::phone), [`name`],
//! [`gender`](gender::gender), [`date`](date::date_of_birth), [`city`],
//! [`state`](place::state), [`zip`](place::zip), [`country`](fn@country) and [`external_id`].

use std::borrow::Cow;
use std::cell::RefCell;

use chrono::Datelike;
use fold::fold;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

mod date;
mod fold;
mod gender;
mod months;
mod phone;
mod place;
#[cfg(test)]
mod tests;

/// Builds what normalization loads on first use (libphonenumber's metadata, ISO 3166's country
/// table), so that a run can do it on a spare core while it connects and reads its first page.
pub(crate) fn warm_up() {
    phone::load_metadata();
    crate::country::warm_up();
}

/// The version of these rules, kept in each sent event's digest: raise
/// [`crate::event::RULES_VERSION`] with any change here that can turn a value into another
/// normalized value (a dropped value now read, a form read otherwise).
pub use crate::event::RULES_VERSION;

/// A `user_data` key: the one list of customer fields is [`crate::config::CustomerField`].
pub use crate::config::CustomerField as Field;

/// The row context some rules depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The row's country (or `[defaults] country`) in any form [`country_code`] accepts: `US`,
    /// `us`, `USA`, `United States`.
    pub country: Option<&'a str>,
    /// The current year, which bounds plausible birth dates, when the caller has a clock of
    /// its own (a run takes it from its page's reading of the run's clock, once per order);
    /// `None` reads the system clock for each birth date.
    pub year: Option<i32>,
}

/// What normalization made of one raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The normalized plain value, to be hashed.
    Normalized(String),
    /// The input already was a SHA-256 hex digest; lowercased, not to be hashed again.
    AlreadyHashed(String),
    /// Nothing there (NULL, empty or whitespace): not counted as dropped.
    Empty,
    /// A value that cannot be a valid one for the field: dropped and counted.
    Dropped,
}

/// Normalizes one raw value of a field, with the current year from `ctx.year`, else from the
/// system clock. Only birth dates read the year, so only they read the clock (eleven clock reads
/// and calendar conversions per row showed up end to end; one per birth date still took ~1% of
/// a run's CPU on fully populated rows, issue 24).
pub fn normalize(field: Field, raw: &str, ctx: &Context<'_>) -> Outcome {
    let current_year = match field {
        Field::Db => ctx.year.unwrap_or_else(|| chrono::Utc::now().year()),
        _ => 0,
    };
    normalize_at(field, raw, ctx, current_year)
}

/// Normalizes one raw value of a field; `current_year` bounds plausible birth dates. Pure.
pub(crate) fn normalize_at(
    field: Field,
    raw: &str,
    ctx: &Context<'_>,
    current_year: i32,
) -> Outcome {
    let value = fold(raw.trim());
    let value = value.trim();
    if value.is_empty() {
        return Outcome::Empty;
    }
    if is_sha256_hex(value) {
        return Outcome::AlreadyHashed(value.to_ascii_lowercase());
    }
    // Only these rules read the country; resolving it costs a lookup per value.
    let country = match field {
        Field::Ph | Field::Db | Field::St | Field::Zp => ctx.country.and_then(alpha2),
        _ => None,
    };
    let country = country.as_ref().map(Alpha2::as_str);
    let outcome = match field {
        Field::Em => email(value),
        Field::Ph => phone::phone(value, country),
        Field::Fn | Field::Ln => name(value),
        Field::Ge => gender::gender(value),
        Field::Db => date::date_of_birth(value, country, current_year),
        Field::Ct => city(value),
        Field::St => place::state(value, country),
        Field::Zp => place::zip(value, country),
        Field::Country => self::country(value),
        Field::ExternalId => external_id(value),
    };
    match outcome {
        // Lowercasing can leave a string that is not NFC; the hash is taken over NFC.
        Outcome::Normalized(value) if !value.is_ascii() => Outcome::Normalized(nfc(&value).into()),
        Outcome::Normalized(value) if value.is_empty() => Outcome::Dropped,
        other => other,
    }
}

/// ISO 3166-1 alpha-2, lowercase, for an alpha-2 or alpha-3 code, an English country name, an
/// ISO long or inverted name (`Korea, Republic of`) or the name in another language
/// (`Deutschland`, `日本`), in any case, with or without spaces, punctuation or accents; `None`
/// when unknown.
pub fn country_code(raw: &str) -> Option<String> {
    alpha2(raw).map(|code| code.as_str().to_owned())
}

/// A lowercase ISO 3166-1 alpha-2 code, held inline: the country is resolved for four fields of
/// every row, and an owned `String` each time was two allocations per resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Alpha2([u8; 2]);

impl Alpha2 {
    /// The code as text.
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// [`country_code`] without allocating when the value is already a two-letter code (the common
/// case: a `country` column of codes, or `[defaults] country = "US"`).
fn alpha2(raw: &str) -> Option<Alpha2> {
    /// How many texts a thread remembers before it forgets them all: more than a table's
    /// countries (a few, in any spelling), few enough to scan.
    const REMEMBERED: usize = 32;
    thread_local! {
        /// The texts this thread resolved and their codes: a row's country is resolved for
        /// four of its fields, and a table's rows hold few countries, in turn (a chain's
        /// markets), so that one remembered text missed on every row of a mixed table and
        /// each resolved a name again (`bench/e2e --fields all`, docs/benchmarks.md).
        static KNOWN: RefCell<Vec<(Box<str>, Option<Alpha2>)>> = const { RefCell::new(Vec::new()) };
    }
    if let Some(code) = KNOWN.with_borrow(|known| {
        known
            .iter()
            .find(|(text, _)| &**text == raw)
            .map(|(_, code)| *code)
    }) {
        return code;
    }
    // Resolved outside the borrow: the general path comes back here for full-width codes.
    let code = resolve_alpha2(raw);
    KNOWN.with_borrow_mut(|known| {
        if known.len() == REMEMBERED {
            known.clear();
        }
        known.push((raw.into(), code));
    });
    code
}

/// [`alpha2`] without its memory of the texts it resolved: [`crate::country::alpha2`] of the
/// value with its compatibility forms folded (`ＵＳ` is `US`; a row's country is not folded with
/// the field values).
fn resolve_alpha2(raw: &str) -> Option<Alpha2> {
    if raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_alphabetic()) {
        return crate::country::alpha2(raw).map(Alpha2);
    }
    crate::country::alpha2(&fold(raw.trim())).map(Alpha2)
}

/// Appends `value` in decimal, zero-padded to at least `width` digits: what
/// `write!(out, "{value:0width$}")` writes, without the formatting machinery (~700
/// instructions per value under callgrind, one per phone and date of birth; issue 24).
fn push_decimal(out: &mut String, value: u32, width: usize) {
    let mut digits = [0u8; 10];
    let (mut rest, mut len) = (value, 0);
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        rest /= 10;
        len += 1;
        if rest == 0 {
            break;
        }
    }
    out.extend(std::iter::repeat_n('0', width.saturating_sub(len)));
    out.extend(digits[..len].iter().rev().map(|&digit| char::from(digit)));
}

/// `value` in Unicode NFC form, borrowed when it already is.
fn nfc(value: &str) -> Cow<'_, str> {
    if value.is_ascii() || is_nfc_quick(value.chars()) == IsNormalized::Yes {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.nfc().collect())
    }
}

/// The characters of `value` that `keep` accepts, lowercased. Non-ASCII text is lowercased as a
/// whole string first, so that context-dependent rules apply (a Greek word's final `Σ` becomes
/// `ς`, not `σ`), and only then filtered.
fn lower_kept(value: &str, keep: impl Fn(char) -> bool) -> String {
    if value.is_ascii() {
        return value
            .chars()
            .filter(|c| keep(*c))
            .map(|c| c.to_ascii_lowercase())
            .collect();
    }
    value.to_lowercase().chars().filter(|c| keep(*c)).collect()
}

/// Whether `value` is a SHA-256 digest in hex (64 hex digits, any case).
fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `c` belongs in a name: a letter or digit of any script, or a combining mark (the
/// vowel signs of Indic scripts, say, which NFC cannot fold into their letter).
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// `em`: trimmed and lowercased; dropped unless it looks like an address (`local@domain.tld`).
fn email(value: &str) -> Outcome {
    // Nearly every address is ASCII: lowercased byte by byte (the same result as
    // `to_lowercase` on ASCII), and judged by bytes.
    let (lower, fits) = if value.is_ascii() {
        let lower = value.to_ascii_lowercase();
        let fits = looks_like_ascii_email(lower.as_bytes());
        (lower, fits)
    } else {
        let lower = value.to_lowercase();
        let fits = looks_like_email(&lower);
        (lower, fits)
    };
    if fits {
        Outcome::Normalized(lower)
    } else {
        Outcome::Dropped
    }
}

/// One `@` between a non-empty local part of address characters and a domain of two or more
/// non-empty labels of letters, digits and `-` (any script, for internationalized domains).
fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    // The punctuation by `matches!`, not a search of a string of them for every character.
    let local_char = |c: char| {
        c.is_alphanumeric()
            || matches!(
                c,
                '!' | '#'
                    | '$'
                    | '%'
                    | '&'
                    | '\''
                    | '*'
                    | '+'
                    | '-'
                    | '/'
                    | '='
                    | '?'
                    | '^'
                    | '_'
                    | '`'
                    | '{'
                    | '|'
                    | '}'
                    | '~'
                    | '.'
            )
    };
    let local_ok = !local.is_empty() && local.chars().all(local_char);
    let mut labels = domain.split('.');
    let labels_ok = domain.split('.').count() >= 2
        && labels.all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    local_ok && labels_ok
}

/// [`looks_like_email`] for ASCII text, a byte at a time (the same answer for every ASCII
/// text: on ASCII, `char::is_alphanumeric` is `is_ascii_alphanumeric`).
fn looks_like_ascii_email(value: &[u8]) -> bool {
    let Some(at) = value.iter().position(|&b| b == b'@') else {
        return false;
    };
    let (local, domain) = (&value[..at], &value[at + 1..]);
    let local_ok = !local.is_empty()
        && local
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let mut labels = 0;
    let labels_ok = domain.split(|&b| b == b'.').all(|label| {
        labels += 1;
        !label.is_empty()
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    });
    local_ok && labels_ok && labels >= 2
}

/// `fn`, `ln`: lowercase, without punctuation or whitespace (`Mary Ann` → `maryann`); letters of
/// any script are kept (`José` → `josé`).
fn name(value: &str) -> Outcome {
    Outcome::Normalized(lower_kept(value, is_name_char))
}

/// `ct`: lowercase letters only: no spaces, digits or punctuation (`New York` → `newyork`).
fn city(value: &str) -> Outcome {
    Outcome::Normalized(lower_kept(value, |c| {
        c.is_alphabetic() || is_combining_mark(c)
    }))
}

/// `country`: the alpha-2 code in lowercase; dropped when no country matches.
fn country(value: &str) -> Outcome {
    country_code(value).map_or(Outcome::Dropped, Outcome::Normalized)
}

/// `external_id`: the trimmed value as is; whether it is hashed is decided in `hash.rs`.
fn external_id(value: &str) -> Outcome {
    Outcome::Normalized(value.to_owned())
}

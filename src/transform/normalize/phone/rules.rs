//! One region's libphonenumber rules, compiled once per process into plain anchored regexes.
//!
//! The `phonenumber` crate keeps its patterns in a shared LRU cache of 100 compiled regexes
//! behind a mutex, keyed by the pattern text: every match locks it, hashes the pattern with
//! SipHash and refreshes the LRU, and rows from many regions evict and recompile patterns. That
//! was about a third of a run's CPU on fully populated rows (issue 24's profile). The patterns
//! here are the same metadata (`PhoneNumberMetadata.xml` as the crate ships it), compiled once
//! per region and process; the checks follow libphonenumber's Java `PhoneNumberUtil`.

use std::sync::OnceLock;

use phonenumber::country::Id;
use regex::{Regex, RegexBuilder};

use super::metadata::{self, Metadata};

/// A region's patterns for reading a national number.
pub(crate) struct Rules {
    /// The calling code as text.
    code_text: String,
    /// The exit code (`internationalPrefix`): digit strings (`00`, `011`) compared as text, any
    /// other pattern anchored at the start.
    exit: Prefix,
    /// How the parser strips a trunk prefix in the region.
    stripping: Stripping,
    /// The general description (index 0) and each number type's pattern, anchored at both ends.
    /// One regex each, not a `RegexSet`: a set's search for every pattern that matches cost
    /// more than the few single searches until a type matches (fixed line or mobile, nearly
    /// always the first two).
    patterns: Vec<Regex>,
    /// Each pattern's possible lengths (empty: any length).
    lengths: Vec<Vec<u16>>,
    /// Lengths that are local-only for some number type.
    local_lengths: Vec<u16>,
    /// The national number lengths of the region's own number types, 1 to 17 digits as bits:
    /// what libphonenumber's `testNumberLength` counts possible for the number left after a
    /// trunk prefix ([`Rules::is_possible_here`]).
    possible_here: u32,
    /// The national number lengths libphonenumber counts possible under the calling code
    /// ([`super::is_possible`], judged by the code's main region), 1 to 17 digits as bits.
    possible_for_code: u32,
}

/// How libphonenumber's parser strips a region's trunk prefix from a national number
/// (`helper::national_number` and the `nationalPrefix` strip after it in the `phonenumber`
/// crate's `parser::parse_with`).
struct Stripping {
    /// The trunk prefix (`nationalPrefixForParsing`, else `nationalPrefix`).
    trunk: Prefix,
    /// Whether a `nationalPrefixTransformRule` rewrites what the trunk pattern captured.
    transform: bool,
    /// The national (trunk) prefix as dialled (`nationalPrefix`), empty when none.
    national_prefix: String,
}

/// How a region recognizes a prefix a number may start with: its trunk prefix or its exit
/// code.
enum Prefix {
    /// The region has none.
    None,
    /// A plain alternation of digit strings (`0`, `0|180020`): the first that starts the number.
    Plain(Vec<String>),
    /// Any other pattern, anchored at the start.
    Pattern(Regex),
}

impl Prefix {
    /// A metadata pattern: a plain alternation of digit strings as [`Prefix::Plain`], any
    /// other anchored at the start; `None` when it does not compile.
    fn of_pattern(pattern: &str) -> Option<Self> {
        Some(
            if pattern.bytes().all(|b| b.is_ascii_digit() || b == b'|') {
                Self::Plain(pattern.split('|').map(str::to_owned).collect())
            } else {
                Self::Pattern(anchored_start(pattern)?)
            },
        )
    }
}

impl Rules {
    /// The region's rules from libphonenumber's metadata ([`metadata`]); `None` when a pattern
    /// does not compile.
    fn build(meta: &Metadata) -> Option<Self> {
        let exit = match meta.international_prefix() {
            Some(pattern) => Prefix::of_pattern(pattern)?,
            None => Prefix::None,
        };
        let all = std::iter::once(meta.general()?).chain(meta.types());
        let patterns = all
            .clone()
            .map(|desc| digits_regex(&format!("^(?:{})$", desc.national_number.as_deref()?)))
            .collect::<Option<Vec<Regex>>>()?;
        let lengths = all.map(|desc| desc.possible_length.clone()).collect();
        let mut local_lengths: Vec<u16> = meta
            .types()
            .flat_map(|desc| desc.possible_local_length.iter().copied())
            .collect();
        local_lengths.sort_unstable();
        local_lengths.dedup();
        let possible_here = meta
            .types()
            .flat_map(|desc| desc.possible_length.iter().copied())
            .filter(|len| (1..=17).contains(len))
            .fold(0, |bits, len| bits | 1 << len);
        Some(Self {
            code_text: meta.country_code().to_string(),
            exit,
            stripping: Stripping::build(meta)?,
            patterns,
            lengths,
            local_lengths,
            possible_here,
            possible_for_code: (1..=17)
                .filter(|&len| super::is_possible(meta.country_code(), len))
                .fold(0, |bits, len| bits | 1 << len),
        })
    }

    /// The calling code as text.
    pub(crate) fn code_text(&self) -> &str {
        &self.code_text
    }

    /// Whether a national number of `len` digits is possible under the calling code.
    pub(crate) fn is_possible_length(&self, len: usize) -> bool {
        len <= 17 && self.possible_for_code & (1 << len) != 0
    }

    /// Whether a national number of `len` digits is possible in the region itself: a length
    /// of one of its number types. libphonenumber keeps a trunk prefix unless what is left has
    /// such a length (`PhoneNumberUtil.parseHelper`, after
    /// `maybeStripNationalPrefixAndCarrierCode`). Its general description's local-only lengths,
    /// which the test also refuses, are the types' local-only lengths that no type has as a
    /// possible one (`BuildMetadataFromXml.setPossibleLengthsGeneralDesc`), so none of these.
    pub(crate) fn is_possible_here(&self, len: usize) -> bool {
        len <= 17 && self.possible_here & (1 << len) != 0
    }

    /// Whether the digits start with the region's exit code (`00`, `011`, `810`).
    pub(crate) fn starts_with_exit_code(&self, digits: &str) -> bool {
        match &self.exit {
            Prefix::None => false,
            Prefix::Plain(codes) => codes
                .iter()
                .any(|code| !code.is_empty() && digits.starts_with(code.as_str())),
            Prefix::Pattern(re) => re.is_match(digits),
        }
    }

    /// The length of the trunk prefix the digits start with (0: none), as libphonenumber's
    /// `maybeStripNationalPrefixAndCarrierCode` reads it; `None` when a transform rule rewrites
    /// the number (left to the parser).
    pub(crate) fn trunk_prefix_len(&self, digits: &str) -> Option<usize> {
        self.stripping.trunk_prefix_len(digits)
    }

    /// Whether the digits start with the region's national (trunk) prefix as dialled, which the
    /// `phonenumber` crate's parser strips from a number in international form even where the
    /// parsing pattern did not (`parser::parse_with`).
    pub(crate) fn starts_with_national_prefix(&self, digits: &str) -> bool {
        self.stripping.starts_with_national_prefix(digits)
    }

    /// Whether a national number of `len` digits is longer than any possible under the calling
    /// code (libphonenumber's `TOO_LONG`).
    pub(crate) fn is_too_long(&self, len: usize) -> bool {
        len > 17 || self.possible_for_code >> len == 0
    }

    /// Whether a national number matches the region's general description (libphonenumber's
    /// `matchNationalNumber` on `generalDesc`).
    pub(crate) fn fits_general(&self, national: &str) -> bool {
        self.patterns
            .first()
            .is_some_and(|general| general.is_match(national))
    }

    /// libphonenumber's `isValidNumberForRegion` for a national significant number: it matches
    /// the general description and at least one number type, pattern and length, and its length
    /// is not local-only for any type.
    pub(crate) fn is_valid(&self, national: &str) -> bool {
        let Ok(len) = u16::try_from(national.len()) else {
            return false;
        };
        if self.local_lengths.contains(&len) {
            return false;
        }
        let fits = |i: usize| {
            self.lengths
                .get(i)
                .is_some_and(|l| l.is_empty() || l.contains(&len))
        };
        self.fits_general(national)
            && self
                .patterns
                .iter()
                .enumerate()
                .skip(1)
                .any(|(i, pattern)| fits(i) && pattern.is_match(national))
    }
}

impl Stripping {
    /// The region's trunk rules from libphonenumber's metadata; `None` when a pattern does not
    /// compile.
    fn build(meta: &Metadata) -> Option<Self> {
        let trunk = match meta.national_prefix_for_parsing() {
            Some(pattern) => Prefix::of_pattern(pattern)?,
            None => match meta.national_prefix() {
                Some(p) if !p.is_empty() => Prefix::Plain(vec![p.to_owned()]),
                _ => Prefix::None,
            },
        };
        Some(Self {
            trunk,
            transform: meta
                .national_prefix_transform_rule()
                .is_some_and(|rule| !rule.is_empty()),
            national_prefix: meta.national_prefix().unwrap_or("").to_owned(),
        })
    }

    /// Whether the digits start with the region's national (trunk) prefix as dialled, which the
    /// `phonenumber` crate's parser strips from a number in international form even where the
    /// parsing pattern did not (`parser::parse_with`).
    fn starts_with_national_prefix(&self, digits: &str) -> bool {
        !self.national_prefix.is_empty() && digits.starts_with(self.national_prefix.as_str())
    }

    /// The length of the trunk prefix the digits start with (0: none), as libphonenumber's
    /// `maybeStripNationalPrefixAndCarrierCode` reads it; `None` when a transform rule rewrites
    /// the number (left to the parser).
    fn trunk_prefix_len(&self, digits: &str) -> Option<usize> {
        match &self.trunk {
            Prefix::None => Some(0),
            Prefix::Plain(prefixes) => Some(
                prefixes
                    .iter()
                    .find(|p| !p.is_empty() && digits.starts_with(p.as_str()))
                    .map_or(0, String::len),
            ),
            Prefix::Pattern(re) => {
                // The match alone (no allocation) decides, but for a transform rule, which
                // needs the groups: most numbers start with no trunk prefix.
                let Some(found) = re.find(digits) else {
                    return Some(0);
                };
                if self.transform {
                    let captures = re.captures(digits)?;
                    let last = captures.len() - 1;
                    if last > 0 && captures.get(last).is_some() {
                        return None;
                    }
                }
                Some(found.end())
            }
        }
    }

    /// Whether the parser leaves a national number as it is in this region: no trunk
    /// prefix to strip by either rule.
    fn leaves(&self, national: &str) -> bool {
        self.trunk_prefix_len(national) == Some(0) && !self.starts_with_national_prefix(national)
    }
}

/// Whether, under a calling code that several regions share, the parser keeps `national` (the
/// digits after the code) as it is whichever region it reads the number by: no region of the
/// code strips a trunk prefix from it. The `phonenumber` crate picks the region by validity or
/// leading digits (`validator::source_for`, none when no region claims the number) and then
/// strips that region's trunk prefix; when none would strip anything, which region it picks
/// does not change the digits (a `+1` number whose area code no NANP region has, say). The
/// regions' rules are compiled on the first use of the code (only their trunk patterns).
pub(crate) fn no_region_strips(code: u16, national: &str) -> bool {
    static BY_CODE: [OnceLock<Option<Vec<Stripping>>>; 1000] = [const { OnceLock::new() }; 1000];
    let Some(slot) = BY_CODE.get(usize::from(code)) else {
        return false;
    };
    slot.get_or_init(|| metadata::by_code(code).map(Stripping::build).collect())
        .as_ref()
        .is_some_and(|regions| regions.iter().all(|region| region.leaves(national)))
}

/// The main region of calling code `code` (libphonenumber's `mainCountryForCode`, else the
/// code's first region) and whether other regions share the code; `None` for a code of no
/// region. Found once per code and process: the crate's `by_code` builds a vector on each call,
/// and the international fast path asked it up to four times a number.
pub(crate) fn main_region(code: u16) -> Option<(Id, bool)> {
    static BY_CODE: [OnceLock<Option<(Id, bool)>>; 1000] = [const { OnceLock::new() }; 1000];
    *BY_CODE.get(usize::from(code))?.get_or_init(|| {
        // The main region comes first ([`metadata::by_code`]).
        let mut regions = metadata::by_code(code);
        let main = regions.next()?;
        Some((main.id().parse().ok()?, regions.next().is_some()))
    })
}

/// `pattern` compiled to match only at the start of the text, as Java's `lookingAt`.
fn anchored_start(pattern: &str) -> Option<Regex> {
    digits_regex(&format!("^(?:{pattern})"))
}

/// A metadata pattern compiled for the texts it is matched against here: ASCII digits only
/// ([`super::dial_digits`] keeps nothing else). So `\d` is `[0-9]` (Unicode off), which gives
/// the same matches on such text as libphonenumber's Unicode `\d`, and compiles to automata a
/// fraction of the size: building the rules of the nine markets of `bench/e2e --fields all`
/// with Unicode classes was about a quarter of a small run's instructions. `None` when the
/// pattern does not compile (the region is then left to the parser).
fn digits_regex(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .ignore_whitespace(true)
        .unicode(false)
        .build()
        .ok()
}

/// Calls `f` with the rules of `region`, compiled on the process's first use of the region;
/// `None` when the region has no metadata or `f` returns `None`.
///
/// One table for the process, not one per thread: a run normalizes on several threads, and
/// compiling every region's patterns on each of them cost more CPU and memory than it saved
/// (`bench/e2e --fields all`, docs/benchmarks.md). A region's slot is indexed by its alpha-2
/// letters (26 × 26 slots), so a lookup neither hashes nor locks once the slot is set.
pub(crate) fn with<T>(region: Id, f: impl FnOnce(&Rules) -> Option<T>) -> Option<T> {
    static RULES: [OnceLock<Option<Rules>>; 26 * 26] = [const { OnceLock::new() }; 26 * 26];
    let id: &str = region.as_ref();
    RULES[metadata::slot(id)?]
        .get_or_init(|| metadata::by_id(id).and_then(Rules::build))
        .as_ref()
        .and_then(f)
}

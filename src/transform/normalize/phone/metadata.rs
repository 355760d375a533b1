//! libphonenumber's metadata as the fast paths read it: `PhoneNumberMetadata.xml` exactly as
//! the `phonenumber` crate ships it (copied beside this file; the test
//! `the_copied_metadata_is_the_crates` fails when the crate's copy differs), read with the
//! crate's own XML loader (`phonenumber::metadata::loader`) on first use.
//!
//! Why not the crate's `DATABASE`: building it checks the syntax of every pattern of every
//! region (~15,000, with `regex-syntax`), 55–65 ms of CPU once per process, which was ~4% of a
//! 200k-row run's CPU and most of its fixed cost; the loader reads the same file in ~4 ms, and
//! the rules compile only the patterns of the regions rows use ([`super::rules::with`]). The
//! crate's parser (and so its `DATABASE`) is still used, for the numbers the fast paths leave.

use std::sync::LazyLock;

use phonenumber::metadata::loader;

pub(crate) use loader::Descriptor;

/// The metadata file, as the crate ships it.
const XML: &str = include_str!("PhoneNumberMetadata.xml");

/// Every region's metadata, by alpha-2 region and by calling code.
struct Table {
    /// The regions, in the file's order.
    regions: Vec<Metadata>,
    /// The index in `regions` of each alpha-2 region, by its letters (26 × 26 slots).
    by_id: Vec<Option<usize>>,
    /// The indices in `regions` of each calling code's regions (codes below 1000): the code's
    /// main region first, then the others in the file's order, as the crate's `by_code`.
    by_code: Vec<Vec<usize>>,
}

/// One region's metadata (a `<territory>` of the file).
#[derive(Debug)]
pub(crate) struct Metadata(loader::Metadata);

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // The file is the crate's own and loads with its loader (a test checks both); a copy that
    // failed to load would leave every number to the parser, not fail the run.
    let regions: Vec<Metadata> = loader::load(XML.as_bytes())
        .unwrap_or_default()
        .into_iter()
        .map(Metadata)
        .collect();
    let mut by_id = vec![None; 26 * 26];
    let mut by_code = vec![Vec::new(); 1000];
    for (i, meta) in regions.iter().enumerate() {
        if let Some(slot) = slot(meta.id()) {
            by_id[slot] = Some(i);
        }
        if let Some(code) = by_code.get_mut(usize::from(meta.country_code())) {
            if meta.is_main_country_for_code() {
                code.insert(0, i);
            } else {
                code.push(i);
            }
        }
    }
    Table {
        regions,
        by_id,
        by_code,
    }
});

/// The slot of an alpha-2 region id (`US`) in a table of 26 × 26, `None` for any other id
/// (`001`, non-geographic).
pub(crate) fn slot(id: &str) -> Option<usize> {
    match id.as_bytes() {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => {
            Some(usize::from(a - b'A') * 26 + usize::from(b - b'A'))
        }
        _ => None,
    }
}

/// Reads the file now (a run does it on a spare core while it connects).
pub(crate) fn load() {
    LazyLock::force(&TABLE);
}

/// The metadata of an alpha-2 region (`US`), if it has any.
pub(crate) fn by_id(id: &str) -> Option<&'static Metadata> {
    let table = &*TABLE;
    table
        .by_id
        .get(slot(id)?)
        .copied()
        .flatten()
        .map(|i| &table.regions[i])
}

/// The regions of calling code `code`, its main region first; empty for a code of no region.
pub(crate) fn by_code(code: u16) -> impl Iterator<Item = &'static Metadata> {
    let table = &*TABLE;
    table
        .by_code
        .get(usize::from(code))
        .into_iter()
        .flatten()
        .map(|&i| &table.regions[i])
}

impl Metadata {
    /// The region id (`US`, `001` for a non-geographic entity).
    pub(crate) fn id(&self) -> &str {
        self.0.id.as_deref().unwrap_or("")
    }

    /// The calling code (0 when the file gives none).
    pub(crate) fn country_code(&self) -> u16 {
        self.0.country_code.unwrap_or(0)
    }

    /// Whether the region is its calling code's main one (`mainCountryForCode`).
    pub(crate) fn is_main_country_for_code(&self) -> bool {
        self.0.main_country_for_code
    }

    /// The exit code pattern (`internationalPrefix`).
    pub(crate) fn international_prefix(&self) -> Option<&str> {
        self.0.international_prefix.as_deref()
    }

    /// The trunk prefix as dialled (`nationalPrefix`).
    pub(crate) fn national_prefix(&self) -> Option<&str> {
        self.0.national_prefix.as_deref()
    }

    /// The trunk prefix pattern for parsing (`nationalPrefixForParsing`).
    pub(crate) fn national_prefix_for_parsing(&self) -> Option<&str> {
        self.0.national_prefix_for_parsing.as_deref()
    }

    /// The rewrite of what the trunk pattern captured (`nationalPrefixTransformRule`).
    pub(crate) fn national_prefix_transform_rule(&self) -> Option<&str> {
        self.0.national_prefix_transform_rule.as_deref()
    }

    /// The general description (`generalDesc`).
    pub(crate) fn general(&self) -> Option<&Descriptor> {
        self.0.general.as_ref()
    }

    /// The number types' descriptions the region has, in libphonenumber's order: fixed line,
    /// mobile, toll free, premium rate, shared cost, personal number, VoIP, pager, UAN,
    /// voicemail.
    pub(crate) fn types(&self) -> impl Iterator<Item = &Descriptor> + Clone {
        let m = &self.0;
        [
            &m.fixed_line,
            &m.mobile,
            &m.toll_free,
            &m.premium_rate,
            &m.shared_cost,
            &m.personal_number,
            &m.voip,
            &m.pager,
            &m.uan,
            &m.voicemail,
        ]
        .into_iter()
        .filter_map(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use phonenumber::metadata::DATABASE;

    use super::*;

    /// The lengths and pattern of a description, from either source.
    fn of_crate(desc: &phonenumber::metadata::Descriptor) -> (String, Vec<u16>, Vec<u16>) {
        (
            desc.national_number().as_str().to_owned(),
            desc.possible_length().to_vec(),
            desc.possible_local_length().to_vec(),
        )
    }

    /// The lengths and pattern of a description read here.
    fn of_copy(desc: &Descriptor) -> (String, Vec<u16>, Vec<u16>) {
        (
            desc.national_number.clone().unwrap_or_default(),
            desc.possible_length.clone(),
            desc.possible_local_length.clone(),
        )
    }

    /// The copied file gives every region exactly what the crate's `DATABASE` gives, in the
    /// same order under each calling code: after an upgrade of the `phonenumber` crate, copy
    /// its `assets/PhoneNumberMetadata.xml` here.
    #[test]
    fn the_copied_metadata_is_the_crates() {
        let mut regions = 0;
        for code in 1..1000u16 {
            let theirs = DATABASE.by_code(&code).unwrap_or_default();
            let ours: Vec<&Metadata> = by_code(code).collect();
            assert_eq!(ours.len(), theirs.len(), "regions of +{code}");
            for (ours, theirs) in ours.into_iter().zip(theirs) {
                regions += 1;
                let id = theirs.id();
                assert_eq!(ours.id(), id);
                assert_eq!(ours.country_code(), theirs.country_code(), "{id}");
                assert_eq!(
                    ours.is_main_country_for_code(),
                    theirs.is_main_country_for_code(),
                    "{id}"
                );
                assert_eq!(
                    ours.international_prefix(),
                    theirs.international_prefix().map(|re| re.as_str()),
                    "{id}"
                );
                assert_eq!(ours.national_prefix(), theirs.national_prefix(), "{id}");
                assert_eq!(
                    ours.national_prefix_for_parsing(),
                    theirs.national_prefix_for_parsing().map(|re| re.as_str()),
                    "{id}"
                );
                assert_eq!(
                    ours.national_prefix_transform_rule(),
                    theirs.national_prefix_transform_rule(),
                    "{id}"
                );
                let d = theirs.descriptors();
                assert_eq!(
                    ours.general().map(of_copy),
                    Some(of_crate(d.general())),
                    "{id}"
                );
                let their_types: Vec<_> = [
                    d.fixed_line(),
                    d.mobile(),
                    d.toll_free(),
                    d.premium_rate(),
                    d.shared_cost(),
                    d.personal_number(),
                    d.voip(),
                    d.pager(),
                    d.uan(),
                    d.voicemail(),
                ]
                .into_iter()
                .flatten()
                .map(of_crate)
                .collect();
                let our_types: Vec<_> = ours.types().map(of_copy).collect();
                assert_eq!(our_types, their_types, "{id}");
                if slot(id).is_some() {
                    assert_eq!(by_id(id).map(Metadata::id), Some(id));
                }
            }
        }
        assert!(regions > 240, "{regions} regions");
    }
}

//! The privacy fields of an order: Limited Data Use (`data_processing_options` with its country
//! and state), `opt_out` and `delivery_category`, from its columns or the `[defaults]`.

use super::{nonblank, InvalidReason, Rules};
use crate::source::SourceRow;

/// An event's Limited Data Use fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct Processing {
    /// `["LDU"]` or `[]`.
    pub(super) options: &'static [&'static str],
    /// With LDU, the country code.
    pub(super) country: Option<i64>,
    /// With LDU, the state code.
    pub(super) state: Option<i64>,
}

/// The order's Limited Data Use fields (docs/meta-capi.md §2): only `LDU` is a valid option; with
/// it, country and state are both required (`0` lets Meta geolocate; `1` is the US, `1000`
/// California). `None` when neither a column nor a default configures them.
pub(super) fn processing(
    row: &SourceRow,
    rules: &Rules,
) -> Result<Option<Processing>, InvalidReason> {
    if !rules.processing {
        return Ok(None);
    }
    let ldu = match row.data_processing_options.as_deref() {
        // NULL: the default; without one, nothing is sent.
        None => match rules.default_ldu {
            Some(ldu) => ldu,
            None => return Ok(None),
        },
        Some(text) => {
            let mut ldu = false;
            for option in text.split(crate::source::VALUE_SEPARATOR).map(str::trim) {
                match option.to_ascii_lowercase().as_str() {
                    "" | "false" | "f" | "{}" => {}
                    "ldu" | "true" | "t" | "{ldu}" => ldu = true,
                    _ => return Err(InvalidReason::UnknownProcessingOption),
                }
            }
            ldu
        }
    };
    if !ldu {
        return Ok(Some(Processing {
            options: crate::event::NO_LDU,
            country: None,
            state: None,
        }));
    }
    let code = |text: Option<&str>, default: Option<i64>| match nonblank(text) {
        None => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .map(Some)
            .map_err(|_| InvalidReason::ProcessingGeographyOutOfRange),
    };
    let country = code(row.dpo_country.as_deref(), rules.default_dpo_country)?;
    let state = code(row.dpo_state.as_deref(), rules.default_dpo_state)?;
    let (Some(country), Some(state)) = (country, state) else {
        return Err(InvalidReason::LduWithoutGeography);
    };
    if !crate::config::ldu_rules::country_ok(country) || !crate::config::ldu_rules::state_ok(state)
    {
        return Err(InvalidReason::ProcessingGeographyOutOfRange);
    }
    Ok(Some(Processing {
        options: crate::event::LDU,
        country: Some(country),
        state: Some(state),
    }))
}

/// A boolean's text: PostgreSQL's `true`/`false` and the usual spellings.
pub(super) fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "on" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "off" => Some(false),
        _ => None,
    }
}

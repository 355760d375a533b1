//! `ocapi hash FIELD VALUE`: one customer value normalized and hashed as a run would, to debug
//! one customer's match.

use std::fmt::Write as _;

use crate::cli::{Cli, HashArgs};
use crate::config::Config;
use crate::error::{Error, ExitStatus};
use crate::transform::hash::sha256;
use crate::transform::normalize::{normalize, Context, Field, Outcome};

/// `ocapi hash`: prints the country used, the normalized value and its hash.
pub(crate) fn command(cli: &Cli, args: &HashArgs) -> Result<ExitStatus, Error> {
    let country = hash_country(args.country.as_deref(), cli.config.as_deref())?;
    print!("{}", hash(&args.field, &args.value, &country)?);
    Ok(ExitStatus::Success)
}

/// The row country `ocapi hash` normalizes in, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashCountry {
    /// The country, as given (`US`, `usa`, `United States`), if any.
    pub country: Option<String>,
    /// Where it came from, or why there is none, for the output.
    pub from: String,
}

/// The country `ocapi hash` uses: `--country` when given, else the config's `defaults.country`
/// (the country a run gives rows without one) when a config is found: `--config`,
/// `$OCAPI_CONFIG`, or `./connector.toml` if it exists. A config named by the flag or the
/// variable must load; without any, there is no country, as in a run without one.
pub(crate) fn hash_country(
    flag: Option<&str>,
    config_flag: Option<&std::path::Path>,
) -> Result<HashCountry, Error> {
    if let Some(country) = flag {
        return Ok(HashCountry {
            country: Some(country.to_owned()),
            from: "--country".to_owned(),
        });
    }
    let path = crate::config::resolve_path(config_flag);
    let named = config_flag.is_some() || std::env::var_os("OCAPI_CONFIG").is_some();
    if !named && !path.exists() {
        return Ok(HashCountry {
            country: None,
            from: format!("no --country, and no config: {} not found", path.display()),
        });
    }
    let config = Config::load(&path).map_err(|source| Error::ConfigFile {
        path: path.clone(),
        source,
    })?;
    let from = match &config.defaults.country {
        Some(_) => format!("defaults.country in {}", path.display()),
        None => format!(
            "no --country, and no defaults.country in {}",
            path.display()
        ),
    };
    Ok(HashCountry {
        country: config.defaults.country.map(|c| c.as_str().to_owned()),
        from,
    })
}

/// `ocapi hash FIELD VALUE [--country CC]`: the country used, the normalized value and its hash.
/// FIELD is Meta's `user_data` key (`em`, `ph`, `fn`) or the config's `[mapping]` key for it
/// (`email`, `phone`, `first_name`); anything else is [`Error::Usage`] listing both.
pub fn hash(field: &str, values: &[String], country: &HashCountry) -> Result<String, Error> {
    let field = Field::from_key(field)
        .or_else(|| Field::from_mapping_key(field))
        .ok_or_else(|| {
            let keys: Vec<String> = Field::ALL
                .iter()
                .map(|f| {
                    if f.key() == f.mapping_key() {
                        f.key().to_owned()
                    } else {
                        format!("{} ({})", f.key(), f.mapping_key())
                    }
                })
                .collect();
            Error::Usage(format!(
                "unknown field {field:?}; use one of {}",
                keys.join(", ")
            ))
        })?;
    let ctx = Context {
        country: country.country.as_deref(),
    };
    let used = match &country.country {
        Some(code) => format!("country:    {code} ({})\n", country.from),
        None => format!("country:    none ({})\n", country.from),
    };
    let mut out = used;
    let mut seen: Vec<String> = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if values.len() > 1 {
            let _ = writeln!(out, "value {}:", i + 1);
        }
        let (text, sent) = match normalize(field, value, &ctx) {
            Outcome::Normalized(normalized) => {
                let hex = sha256(&normalized).to_string();
                (
                    format!("normalized: {normalized}\nsha256:     {hex}\n"),
                    Some(hex),
                )
            }
            Outcome::AlreadyHashed(hex) => (
                format!("normalized: (already a SHA-256 digest, sent as is)\nsha256:     {hex}\n"),
                Some(hex.clone()),
            ),
            Outcome::Empty => ("normalized: (empty: nothing is sent)\n".to_owned(), None),
            Outcome::Dropped => (
                format!("normalized: (dropped: not a valid {} value)\n", field.key()),
                None,
            ),
        };
        out.push_str(&text);
        if let Some(hex) = sent {
            if let Some(first) = seen.iter().position(|s| *s == hex) {
                let _ = writeln!(
                    out,
                    "            (the same as value {}: sent once)",
                    first + 1
                );
            } else {
                seen.push(hex);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> HashCountry {
        HashCountry {
            country: Some("DE".to_owned()),
            from: "--country".to_owned(),
        }
    }

    /// Trial finding 11: the config's `[mapping]` names are accepted as well as Meta's keys,
    /// and give the same output.
    #[test]
    fn hash_accepts_the_configs_mapping_names_as_aliases() {
        let pairs = [
            ("em", "email", "  Kunde1@Example.DE "),
            ("ph", "phone", "030 1234008"),
            ("fn", "first_name", "Jürgen"),
            ("ln", "last_name", "O'Brien"),
            ("ge", "gender", "Female"),
            ("db", "date_of_birth", "1972-11-07"),
            ("ct", "city", "Berlin"),
            ("st", "state", "BE"),
            ("zp", "zip", "10115"),
        ];
        for (short, long, value) in pairs {
            let values = vec![value.to_owned()];
            let want = hash(short, &values, &de()).unwrap();
            assert!(
                want.contains("normalized: ") && want.contains("sha256:"),
                "{want}"
            );
            assert_eq!(hash(long, &values, &de()).unwrap(), want, "{long}");
        }
        let out = hash("phone", &["030 1234008".to_owned()], &de()).unwrap();
        assert!(out.contains("normalized: 49301234008\n"), "{out}");
        let err = hash("telephone", &["1".to_owned()], &de()).unwrap_err();
        assert!(err.to_string().contains("ph (phone)"), "{err}");
    }
}

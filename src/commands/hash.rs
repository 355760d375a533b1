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
    if args.jsonl {
        let stdin = std::io::stdin().lock();
        let stdout = std::io::BufWriter::new(std::io::stdout().lock());
        hash_jsonl(stdin, stdout, args.field.as_deref(), &country).map_err(Error::Io)?;
        return Ok(ExitStatus::Success);
    }
    let field = args.field.as_deref().unwrap_or_default();
    print!("{}", hash(field, &args.value, &country)?);
    Ok(ExitStatus::Success)
}

/// One input line of `ocapi hash --jsonl`.
#[derive(Debug, serde::Deserialize)]
struct JsonlIn {
    /// The `user_data` key or `[mapping]` name; else the command's FIELD.
    field: Option<String>,
    /// The raw value.
    value: String,
    /// The row's country; else `--country` or the config's `defaults.country`.
    country: Option<String>,
}

/// `ocapi hash --jsonl`: one JSON object per line of `input` (`field`, `value`, `country`), one
/// JSON object per line on `output`, in the same order: `outcome` (`normalized`,
/// `already_hashed`, `empty`, `dropped`), `normalized` and `sha256` (null when nothing is sent),
/// or `error` for a line that is not such an object or names no known field. For scripts that
/// check many values (bench/locales) without a process per value. Errors are I/O errors only.
pub fn hash_jsonl(
    input: impl std::io::BufRead,
    mut output: impl std::io::Write,
    default_field: Option<&str>,
    country: &HashCountry,
) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<JsonlIn>(&line) {
            Err(e) => serde_json::json!({ "error": format!("not a hash line: {e}") }),
            Ok(row) => {
                let key = row.field.as_deref().or(default_field).unwrap_or_default();
                match Field::from_key(key).or_else(|| Field::from_mapping_key(key)) {
                    None => serde_json::json!({ "error": format!("unknown field {key:?}") }),
                    Some(field) => {
                        let ctx = Context {
                            country: row.country.as_deref().or(country.country.as_deref()),
                            year: None,
                        };
                        let (outcome, normalized, hex) = match normalize(field, &row.value, &ctx) {
                            Outcome::Normalized(value) => {
                                let hex = sha256(&value).to_string();
                                ("normalized", Some(value), Some(hex))
                            }
                            Outcome::AlreadyHashed(hex) => ("already_hashed", None, Some(hex)),
                            Outcome::Empty => ("empty", None, None),
                            Outcome::Dropped => ("dropped", None, None),
                        };
                        serde_json::json!({
                            "outcome": outcome,
                            "normalized": normalized,
                            "sha256": hex,
                        })
                    }
                }
            }
        };
        writeln!(output, "{answer}")?;
    }
    output.flush()
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
        year: None,
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

    /// `--jsonl` answers each line in order with what the single-value form prints: the
    /// line's own field and country first, else FIELD and `--country`; a bad line gets an
    /// error and the next lines are still answered.
    #[test]
    fn jsonl_answers_each_line_like_the_single_value_form() {
        let input = concat!(
            "{\"field\": \"ph\", \"value\": \"(55) 99555-1234\", \"country\": \"BR\"}\n",
            "{\"value\": \"030 1234008\"}\n",
            "\n",
            "not json\n",
            "{\"field\": \"gender\", \"value\": \"unknown\"}\n",
            "{\"field\": \"xx\", \"value\": \"1\"}\n",
        );
        let mut out = Vec::new();
        hash_jsonl(input.as_bytes(), &mut out, Some("ph"), &de()).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[0]["normalized"], "5555995551234");
        let single = hash("ph", &["030 1234008".to_owned()], &de()).unwrap();
        assert_eq!(lines[1]["normalized"], "49301234008");
        assert!(
            single.contains(&format!(
                "sha256:     {}",
                lines[1]["sha256"].as_str().unwrap()
            )),
            "{single}"
        );
        assert!(lines[2]["error"].is_string(), "{:?}", lines[2]);
        assert_eq!(lines[3]["outcome"], "dropped");
        assert!(lines[3]["sha256"].is_null());
        assert!(lines[4]["error"].as_str().unwrap().contains("xx"));
    }
}

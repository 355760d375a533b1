//! [`Secret`]: a value (a database URL with its password, Meta's access token, the app secret,
//! a webhook URL) that must never reach a log line, an error message, the ledger or stdout.
//! It is redacted in `Debug`, has no `Display` and is never `Serialize`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A value that must never reach a log line, an error message or the ledger.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A secret the config points to that cannot be read: a configuration error (exit 2), since
/// no retry can make an unset variable set.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or blank.
    #[error("environment variable {var} (named by `{key}`) is not set, or is empty")]
    MissingEnv {
        /// The config key naming the variable.
        key: &'static str,
        /// The variable's name.
        var: String,
    },
    /// The file cannot be read.
    #[error("cannot read `{key}` file {path}")]
    File {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Reads a secret from the environment variable `var` (named by config key `key`), trimmed.
///
/// # Errors
/// [`SecretError::MissingEnv`] when it is unset or blank.
pub(crate) fn from_env(key: &'static str, var: &str) -> Result<Secret, SecretError> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
        _ => Err(SecretError::MissingEnv {
            key,
            var: var.to_owned(),
        }),
    }
}

/// Reads a secret from the file at `path` (named by config key `key`), trimmed of the
/// surrounding white space and newline that editors and Kubernetes secret mounts leave.
///
/// # Errors
/// [`SecretError::File`] when the file cannot be read.
pub(crate) fn from_file(key: &'static str, path: &Path) -> Result<Secret, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
        key,
        path: path.to_owned(),
        source,
    })?;
    Ok(Secret::new(text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "[redacted]");
    }

    #[test]
    fn an_unset_variable_names_key_and_variable() {
        let error =
            from_env("destination.access_token_env", "OCAPI_TEST_SURELY_UNSET").unwrap_err();
        assert!(matches!(
            error,
            SecretError::MissingEnv { key: "destination.access_token_env", ref var } if var == "OCAPI_TEST_SURELY_UNSET"
        ));
    }
}

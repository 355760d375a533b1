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
/// surrounding white space and newline that editors and Kubernetes secret mounts leave. A file
/// that group or others may read is read all the same, with a warning in the log (once per
/// process and file; `ocapi check` says it too, see [`exposure`]).
///
/// # Errors
/// [`SecretError::File`] when the file cannot be read.
pub(crate) fn from_file(key: &'static str, path: &Path) -> Result<Secret, SecretError> {
    if let Some(warning) = exposure(key, path) {
        static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        let mut warned = WARNED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !warned.iter().any(|p| p == path) {
            warned.push(path.to_owned());
            tracing::warn!(key, "{warning}");
        }
    }
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
        key,
        path: path.to_owned(),
        source,
    })?;
    Ok(Secret::new(text.trim()))
}

/// What is wrong with the permissions of the secret file at `path` (named by config key
/// `key`): on Unix, a file (or the file a symlink points to) whose mode gives group or others
/// any access, since any local account or process of that group can then read the secret.
/// `None` when only the owner may read it, or when the file cannot be looked at (reading it
/// says why). A Kubernetes secret volume's default mode, 0644, is one such file: set the
/// volume's `defaultMode` to 0400.
pub fn exposure(key: &str, path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the `{key}` file {} may be read by group or others (mode {mode:04o}): \
                 `chmod 600` it (or 400), or set the secret volume's defaultMode to 0400",
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (key, path);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_may_read_is_named_with_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("ocapi-secret-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "t\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = exposure("destination.access_token_file", &path).unwrap();
        assert!(warning.contains("mode 0644"), "{warning}");
        assert!(
            warning.contains("destination.access_token_file"),
            "{warning}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(exposure("destination.access_token_file", &path), None);
        assert_eq!(from_file("k", &path).unwrap().expose(), "t");
        std::fs::remove_dir_all(dir).unwrap();
    }

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

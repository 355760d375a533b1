//! The questions `ocapi init` asks on a terminal for what no flag gave (on stderr, answers from
//! stdin). Off a terminal it asks nothing: a missing answer is a usage error naming the flag.

use std::io::{BufRead as _, Write as _};

use super::render::URL_ENV;
use crate::error::Error;
use crate::source::catalog::RelationKind;

/// Asks, or says which flag to pass.
pub struct Prompter {
    /// Whether stdin and stderr are a terminal.
    terminal: bool,
}

impl Prompter {
    /// A prompter that asks only when `terminal`.
    pub fn new(terminal: bool) -> Self {
        Self { terminal }
    }

    /// One answer, trimmed (empty at end of input).
    fn ask(question: &str) -> Result<String, Error> {
        let mut err = std::io::stderr().lock();
        write!(err, "{question}: ")?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(answer.trim().to_owned())
    }

    /// The source URL: `$OCAPI_SOURCE_URL` when set (it is what the written file names),
    /// else asked on a terminal.
    ///
    /// # Errors
    /// [`Error::Usage`] off a terminal without the variable, or for an empty answer.
    pub fn source_url(&mut self) -> Result<String, Error> {
        if let Some(url) = std::env::var(URL_ENV).ok().filter(|u| !u.trim().is_empty()) {
            return Ok(url);
        }
        let usage = || {
            Error::Usage(format!(
                "give the source with --source-url URL (or set {URL_ENV}, which the written \
                 file names)"
            ))
        };
        if !self.terminal {
            return Err(usage());
        }
        let answer = Self::ask("PostgreSQL URL of the source (postgres://user@host:5432/db)")?;
        if answer.is_empty() {
            return Err(usage());
        }
        Ok(answer)
    }

    /// The table or view, chosen from `relations` by number or typed by name.
    ///
    /// # Errors
    /// [`Error::Usage`] off a terminal, or for an empty answer.
    pub fn table(&mut self, relations: &[(String, RelationKind)]) -> Result<String, Error> {
        let usage = || Error::Usage("give the table or view with --table SCHEMA.NAME".to_owned());
        if !self.terminal {
            return Err(usage());
        }
        let mut err = std::io::stderr().lock();
        writeln!(err, "Tables and views this role can read:")?;
        for (i, (name, kind)) in relations.iter().enumerate() {
            writeln!(err, "  {:>3}  {name} ({})", i + 1, kind.noun())?;
        }
        drop(err);
        let answer = Self::ask("Table or view (number or schema.name)")?;
        match answer.parse::<usize>() {
            Ok(n) if (1..=relations.len()).contains(&n) => Ok(relations[n - 1].0.clone()),
            _ if answer.is_empty() => Err(usage()),
            _ => Ok(answer),
        }
    }

    /// The column for a required `key` that no column's name gave.
    ///
    /// # Errors
    /// [`Error::Usage`] off a terminal (naming `--map KEY=COLUMN` and the columns left), or
    /// for an empty answer.
    pub fn column(&mut self, key: &str, left: &[(String, String)]) -> Result<String, Error> {
        let names: Vec<String> = left.iter().map(|(c, t)| format!("{c} ({t})")).collect();
        let usage =
            || {
                Error::Usage(format!(
                "no column could be placed on `mapping.{key}`: pass --map {key}=COLUMN (columns \
                 not placed: {})",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ))
            };
        if !self.terminal {
            return Err(usage());
        }
        let answer = Self::ask(&format!(
            "Which column is `mapping.{key}`? (not placed: {})",
            names.join(", ")
        ))?;
        if answer.is_empty() {
            return Err(usage());
        }
        Ok(answer)
    }

    /// The dataset id, asked on a terminal (empty: left to set in the file).
    ///
    /// # Errors
    /// [`Error::Io`] when the terminal cannot be read.
    pub fn dataset_id(&mut self) -> Result<Option<String>, Error> {
        if !self.terminal {
            return Ok(None);
        }
        let answer = Self::ask("Meta dataset (pixel) id (empty: set it in the file later)")?;
        Ok(Some(answer).filter(|a| !a.is_empty()))
    }
}

//! Customer-field normalization, one function per `user_data` key, exactly as Meta requires
//! (meta-capi.md decision 4). Pure: no I/O, no clock beyond what the caller passes.
//!
//! STUB: a basic rule set; the full rule set is issue #3.

/// A `user_data` key that ocapi normalizes and hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Email.
    Em,
    /// Phone.
    Ph,
    /// First name.
    Fn,
    /// Last name.
    Ln,
    /// Gender.
    Ge,
    /// Date of birth.
    Db,
    /// City.
    Ct,
    /// State.
    St,
    /// Zip.
    Zp,
    /// Country.
    Country,
    /// External id.
    ExternalId,
}

impl Field {
    /// Every field, in Meta's key order.
    pub const ALL: [Field; 11] = [
        Field::Em,
        Field::Ph,
        Field::Fn,
        Field::Ln,
        Field::Ge,
        Field::Db,
        Field::Ct,
        Field::St,
        Field::Zp,
        Field::Country,
        Field::ExternalId,
    ];

    /// Meta's key for the field.
    pub fn key(self) -> &'static str {
        match self {
            Field::Em => "em",
            Field::Ph => "ph",
            Field::Fn => "fn",
            Field::Ln => "ln",
            Field::Ge => "ge",
            Field::Db => "db",
            Field::Ct => "ct",
            Field::St => "st",
            Field::Zp => "zp",
            Field::Country => "country",
            Field::ExternalId => "external_id",
        }
    }

    /// The field for a Meta key.
    pub fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == key)
    }
}

/// The row context some rules depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The row's country (or `[defaults] country`), ISO alpha-2 in any case.
    pub country: Option<&'a str>,
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

/// Normalizes one raw value of a field.
pub fn normalize(field: Field, raw: &str, _ctx: &Context<'_>) -> Outcome {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Outcome::Empty;
    }
    if trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Outcome::AlreadyHashed(trimmed.to_ascii_lowercase());
    }
    let lower = trimmed.to_lowercase();
    let value = match field {
        Field::Em if !lower.contains('@') => return Outcome::Dropped,
        Field::Ph => lower.chars().filter(char::is_ascii_digit).collect(),
        Field::ExternalId => trimmed.to_owned(),
        _ => lower
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '@' || *c == '.')
            .collect(),
    };
    if value.is_empty() {
        Outcome::Dropped
    } else {
        Outcome::Normalized(value)
    }
}

/// ISO 3166-1 alpha-2, lowercase, for a country code or name; `None` when unknown.
pub fn country_code(raw: &str) -> Option<String> {
    let t = raw.trim();
    (t.len() == 2 && t.chars().all(|c| c.is_ascii_alphabetic())).then(|| t.to_ascii_lowercase())
}

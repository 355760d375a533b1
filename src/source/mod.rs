//! Reads source rows in keyset pages. STUB being written.

/// A watermark value.
pub struct Watermark;

impl Watermark {
    /// Parses `source.start`.
    pub fn parse_start(text: &str) -> Option<String> {
        let t = text.trim();
        (t.parse::<i64>().is_ok() || chrono::DateTime::parse_from_rfc3339(t).is_ok())
            .then(|| t.to_owned())
    }
}

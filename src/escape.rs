//! Text from elsewhere (source values, the endpoint's messages and the ledger's records of them)
//! made safe for where it is shown: one function per output kind, used by every command that
//! prints such text (`explain`, `reconcile`, `runs`, `check`, the final error line) and by the
//! alerts. Pure; imports nothing of the crate.
//!
//! Why: a source value or an endpoint's message holding `ESC [2J` clears an operator's screen,
//! one holding a newline prints a fake log or table line, and `<!channel>` in a chat alert
//! notifies a whole channel. JSON outputs (`--json`, the JSON log format) need none of this:
//! JSON escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a character must not reach a terminal as itself: the C0 controls (LF and CR fake new
/// lines, ESC starts ANSI sequences, BEL, BS…), DEL, the C1 controls (U+009B is a one-character
/// CSI on some terminals) and Unicode's bidirectional controls (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069), which reorder what is shown.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` for a terminal (or any line-oriented output): every character of [`is_unsafe`]
/// written as an escape, `\n`, `\r`, `\t`, `\x1b` (`\xNN` for the other C0 and C1 controls and
/// DEL) or `\u{202e}` (bidirectional controls); everything else as is, backslashes included.
/// Borrows when there is nothing to escape.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` for a chat message (Slack's `mrkdwn`, which Mattermost and most chat webhooks also
/// read): `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;`, which is Slack's whole escaping rule
/// ("Escaping text" in Slack's message formatting docs: `<` starts a link or a mention such as
/// `<!channel>`, and `&` an entity), then control characters as [`terminal`] writes them, so
/// that an alert stays one message of one line.
pub fn chat(text: &str) -> String {
    let markup = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    terminal(&markup).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_sees_escapes_not_controls() {
        let table = [
            (
                "plain text, ünïcode, \\ kept",
                "plain text, ünïcode, \\ kept",
            ),
            ("\u{1b}[2J\u{1b}[31mred", "\\x1b[2J\\x1b[31mred"),
            ("one\nfake line\r\n", "one\\nfake line\\r\\n"),
            ("tab\there", "tab\\there"),
            (
                "bell\u{7} del\u{7f} csi\u{9b}",
                "bell\\x07 del\\x7f csi\\x9b",
            ),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
        ];
        for (text, shown) in table {
            assert_eq!(terminal(text), shown, "{text:?}");
        }
        assert!(matches!(terminal("ok"), Cow::Borrowed("ok")));
    }

    #[test]
    fn a_chat_sees_no_markup_and_one_line() {
        let table = [
            ("<!channel> look", "&lt;!channel&gt; look"),
            (
                "<https://evil.example|Meta support>",
                "&lt;https://evil.example|Meta support&gt;",
            ),
            ("a & b", "a &amp; b"),
            ("&lt; stays visible", "&amp;lt; stays visible"),
            ("line\n<@U123>\u{1b}[2J", "line\\n&lt;@U123&gt;\\x1b[2J"),
            ("*bold* _it_ `code`", "*bold* _it_ `code`"),
        ];
        for (text, shown) in table {
            assert_eq!(chat(text), shown, "{text:?}");
        }
    }
}

//! Compatibility folding of the forms that exist only for compatibility: full-width and
//! half-width forms (`ＴＯＫＹＯ`, `０３`), ligatures and presentation forms (`ﬁ`, `ĳ`, Arabic
//! presentation forms), compatibility digits and letters (superscripts, circled and
//! mathematical alphanumerics, `№`, `㎏`), compatibility spaces and punctuation.
//!
//! Unicode NFKC folds these, but also rewrites letters that are the ordinary, canonical spelling
//! in their own script and merely carry a compatibility decomposition: the Thai and Lao vowel
//! SARA AM (U+0E33, U+0EB3) would become two characters (NIKHAHIT + SARA AA), which no other
//! system writes, so a Thai name or city could never match. Such letters are kept as written.
//! The rule: a character is folded (its NFKD, then the whole value in NFC) unless it is a
//! letter outside the compatibility blocks listed in [`in_compatibility_block`] (Unicode's
//! block names, <https://www.unicode.org/charts/>).

use std::borrow::Cow;

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// `value` with its compatibility forms folded and in NFC, borrowed when there is nothing to do.
pub(super) fn fold(value: &str) -> Cow<'_, str> {
    if value.is_ascii() || is_nfkc_quick(value.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(value);
    }
    let decomposed: String = value
        .chars()
        .flat_map(|c| {
            let folds = is_folded(c);
            std::iter::once(c)
                .filter(move |_| !folds)
                .chain(std::iter::once(c).filter(move |_| folds).nfkd())
        })
        .collect();
    let folded: String = decomposed.nfc().collect();
    if folded == value {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(folded)
    }
}

/// Whether `c` is folded: anything but a letter of a script's own block (Thai `ำ` stays).
fn is_folded(c: char) -> bool {
    !c.is_alphabetic() || in_compatibility_block(c)
}

/// Whether `c` is in a block of compatibility forms, or is one of the Latin ligatures and
/// digraphs (`ĳ`, `ŀ`, `ŉ`, `ſ`, `ǆ`, `ǌ`, `ǳ`) and ordinal indicators (`ª`, `º`).
fn in_compatibility_block(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AA | 0x00BA
            | 0x0132..=0x0133
            | 0x013F..=0x0140
            | 0x0149
            | 0x017F
            | 0x01C4..=0x01CC
            | 0x01F1..=0x01F3
            // Spacing Modifier Letters, Phonetic Extensions' modifier letters
            | 0x02B0..=0x02FF
            | 0x1D2C..=0x1DBF
            // Superscripts and Subscripts, Letterlike Symbols, Number Forms
            | 0x2070..=0x218F
            // Enclosed Alphanumerics
            | 0x2460..=0x24FF
            | 0x2C7C..=0x2C7D
            // Enclosed CJK Letters and Months, CJK Compatibility
            | 0x3200..=0x33FF
            // Alphabetic Presentation Forms, Arabic Presentation Forms-A
            | 0xFB00..=0xFDFF
            // Vertical Forms, CJK Compatibility Forms, Small Form Variants
            | 0xFE10..=0xFE1F
            | 0xFE30..=0xFE6F
            // Arabic Presentation Forms-B, Halfwidth and Fullwidth Forms
            | 0xFE70..=0xFFEF
            // Mathematical Alphanumeric Symbols
            | 0x1D400..=0x1D7FF
            // Arabic Mathematical Alphabetic Symbols
            | 0x1EE00..=0x1EEFF
            // Enclosed Alphanumeric Supplement, Enclosed Ideographic Supplement
            | 0x1F100..=0x1F2FF
            // Segmented digits (Symbols for Legacy Computing)
            | 0x1FBF0..=0x1FBF9
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Full-width forms, ligatures and compatibility digits fold; canonical letters stay.
    #[test]
    fn compatibility_forms_fold_and_script_letters_stay() {
        let cases = [
            ("ＴＯＫＹＯ", "TOKYO"),
            ("（０３）１２３４", "(03)1234"),
            ("ﬁona", "fiona"),
            ("ĳssel", "ijssel"),
            ("x²①𝟗", "x219"),
            ("Ａ\u{301}", "Á"),
            ("สำราญ", "สำราญ"),
            ("ນ້ຳ", "ນ້ຳ"),
            ("กรุงเทพมหานคร", "กรุงเทพมหานคร"),
            ("ｶﾀｶﾅ", "カタカナ"),
            ("José", "José"),
            ("Jose\u{301}", "José"),
        ];
        for (raw, want) in cases {
            assert_eq!(fold(raw), want, "{raw}");
        }
    }

    proptest! {
        /// Thai and Lao text in NFC is never changed by folding (SARA AM above all).
        #[test]
        fn canonical_thai_and_lao_text_is_kept(
            text in "[\u{0E01}-\u{0E3A}\u{0E40}-\u{0E5B}\u{0E81}-\u{0EBD}\u{0EC0}-\u{0ED9} ]{1,16}"
        ) {
            let canonical: String = text.nfc().collect();
            prop_assert_eq!(fold(&canonical), canonical.as_str());
        }
    }
}

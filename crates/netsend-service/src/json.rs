//! JSON for people's tools (`--json`, the message log): serde_json escapes
//! only the C0 controls; here every character
//! [`netsend_proto::display::is_unsafe_raw`] names (DEL, the C1 controls
//! U+0080–U+009F, bidirectional overrides and isolates, U+2028/U+2029) is
//! written as a `\uXXXX` escape as well, so the raw bytes carry no control
//! character a terminal or a log viewer would act on.

use std::io;

use netsend_proto::display::is_unsafe_raw;
use serde::Serialize;

/// serde_json's compact formatter with the extra escapes.
struct EscapingFormatter;

impl serde_json::ser::Formatter for EscapingFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe_raw(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every such character is in the BMP: one \uXXXX.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `value` as one line of JSON with the extra escapes.
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        EscapingFormatter,
    ))?;
    // The formatter writes only valid UTF-8 (str slices and ASCII escapes).
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn c1_and_bidi_controls_are_escaped() {
        let line =
            to_line(&serde_json::json!({"t": "a\u{1b}[2J\u{9b}31m\u{202e}z\u{7f}\u{2028}é"}))
                .unwrap();
        assert_eq!(line, r#"{"t":"a\u001b[2J\u009b31m\u202ez\u007f\u2028é"}"#);
    }

    proptest! {
        #[test]
        fn lines_hold_no_unsafe_character_and_read_back(s in any::<String>()) {
            let line = to_line(&s).unwrap();
            prop_assert!(!line.chars().any(is_unsafe_raw), "{line:?}");
            let back: String = serde_json::from_str(&line).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}

//! JSON for people's tools (`--json`, the message log). A string holding a
//! control character a terminal or log viewer would act on (C0 but line
//! feed and tab, DEL, the C1 controls U+0080–U+009F, bidirectional
//! overrides and isolates, U+2028/U+2029: [`netsend_proto::display::is_unsafe_raw`])
//! carries it as the six visible characters `\uXXXX`, so neither the raw
//! JSON nor a decoded value (`jq -r .text`) can drive a terminal. serde_json
//! alone escapes only C0, and a decoding tool would replay its escapes.

use std::io;

use netsend_proto::display::is_unsafe_raw;
use serde::Serialize;
use serde_json::ser::CharEscape;

/// serde_json's compact formatter, writing unsafe characters as visible text.
struct EscapingFormatter;

/// Writes `c` as the JSON for the text `\uXXXX` (an escaped backslash, then
/// `uXXXX`); every such character is in the BMP.
fn write_visible<W: ?Sized + io::Write>(writer: &mut W, c: u32) -> io::Result<()> {
    write!(writer, "\\\\u{c:04x}")
}

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
                write_visible(writer, u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Quote => writer.write_all(b"\\\""),
            CharEscape::ReverseSolidus => writer.write_all(b"\\\\"),
            CharEscape::LineFeed => writer.write_all(b"\\n"),
            CharEscape::Tab => writer.write_all(b"\\t"),
            CharEscape::Solidus => writer.write_all(b"/"),
            CharEscape::Backspace => write_visible(writer, 0x08),
            CharEscape::FormFeed => write_visible(writer, 0x0c),
            CharEscape::CarriageReturn => write_visible(writer, 0x0d),
            CharEscape::AsciiControl(b) => write_visible(writer, u32::from(b)),
        }
    }
}

/// `value` as one line of JSON, unsafe characters written as visible text.
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        EscapingFormatter,
    ))?;
    // The formatter writes only valid UTF-8 (str slices and ASCII escapes).
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The text a decoded `--json` string holds for `s`: each unsafe character
/// (see the module comment) as the visible `\uXXXX`.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe_raw(c) && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unsafe_characters_become_visible_text() {
        let line = to_line(&serde_json::json!({
            "t": "a\u{1b}[2J\u{9b}31m\u{202e}z\u{7f}\u{2028}\r\n\t\"\\é"
        }))
        .unwrap();
        assert_eq!(
            line,
            r#"{"t":"a\\u001b[2J\\u009b31m\\u202ez\\u007f\\u2028\\u000d\n\t\"\\é"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back["t"],
            r#"a\u001b[2J\u009b31m\u202ez\u007f\u2028\u000d"#.to_owned() + "\n\t\"\\é"
        );
    }

    proptest! {
        #[test]
        fn neither_lines_nor_decoded_values_hold_an_unsafe_character(s in any::<String>()) {
            let line = to_line(&s).unwrap();
            prop_assert!(!line.chars().any(is_unsafe_raw), "{line:?}");
            let back: String = serde_json::from_str(&line).unwrap();
            prop_assert!(
                !back.chars().any(|c| is_unsafe_raw(c) && c != '\n' && c != '\t'),
                "{back:?}"
            );
            prop_assert_eq!(back, visible(&s));
        }
    }
}

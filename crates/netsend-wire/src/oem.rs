//! OEM code pages and the text rules of messenger blocks.
//!
//! Messenger text travels in the sender's OEM code page (Samba's "dos charset",
//! CP850 by default). Samba's smbclient converts each 127-byte chunk on its own and
//! sends a chunk that does not convert as raw UTF-8, so receivers decode per block;
//! line breaks arrive as 0x14, CRLF, LFCR or a lone CR.

use std::fmt;
use std::str::FromStr;

use oem_cp::code_table::{DECODING_TABLE_CP437, DECODING_TABLE_CP850};
use oem_cp::code_table::{ENCODING_TABLE_CP437, ENCODING_TABLE_CP850};

/// The DOS line-break byte that Windows senders use inside messages.
pub const DC4_LINE_BREAK: u8 = 0x14;

/// An OEM (DOS) code page used for names and message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CodePage {
    /// Multilingual Latin 1, Samba's default "dos charset".
    #[default]
    Cp850,
    /// The original IBM PC code page, US Windows' OEM code page.
    Cp437,
}

impl CodePage {
    fn tables(
        self,
    ) -> (
        &'static [char; 128],
        &'static oem_cp::OEMCPHashMap<char, u8>,
    ) {
        match self {
            Self::Cp850 => (&DECODING_TABLE_CP850, &ENCODING_TABLE_CP850),
            Self::Cp437 => (&DECODING_TABLE_CP437, &ENCODING_TABLE_CP437),
        }
    }

    /// Encodes `text`; fails with the first character the code page lacks.
    pub fn encode(self, text: &str) -> Result<Vec<u8>, char> {
        let (_, enc) = self.tables();
        text.chars()
            .map(|c| match u8::try_from(c) {
                Ok(b) if b < 0x80 => Ok(b),
                _ => enc.get(&c).copied().ok_or(c),
            })
            .collect()
    }

    /// Decodes bytes; every byte maps to exactly one character.
    pub fn decode(self, bytes: &[u8]) -> String {
        let (dec, _) = self.tables();
        bytes
            .iter()
            .map(|&b| match b {
                0..=0x7F => char::from(b),
                _ => dec[usize::from(b - 0x80)],
            })
            .collect()
    }
}

impl fmt::Display for CodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cp850 => "CP850",
            Self::Cp437 => "CP437",
        })
    }
}

/// The error of parsing a code page name other than CP850 or CP437.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code page {0:?}: use CP850 or CP437")]
pub struct UnknownCodePage(pub String);

impl FromStr for CodePage {
    type Err = UnknownCodePage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .trim()
            .trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '-' || c == '_');
        match digits {
            "850" => Ok(Self::Cp850),
            "437" => Ok(Self::Cp437),
            _ => Err(UnknownCodePage(s.to_owned())),
        }
    }
}

/// Decodes one received text block (§7.7): trailing NULs are dropped; a block that
/// is valid UTF-8 and holds a byte ≥ 0x80 is taken as UTF-8 (smbclient's fallback),
/// anything else as the OEM code page. Line breaks are left as they are.
pub fn decode_block(bytes: &[u8], code_page: CodePage) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let bytes = &bytes[..end];
    match std::str::from_utf8(bytes) {
        Ok(s) if bytes.iter().any(|&b| b >= 0x80) => s.to_owned(),
        _ => code_page.decode(bytes),
    }
}

/// Decodes the text blocks of one message. When all the blocks together are
/// valid UTF-8 with a byte ≥ 0x80 (smbclient fell back to raw UTF-8, possibly
/// splitting a character between blocks), the whole is taken as UTF-8; otherwise
/// each block is decoded on its own with [`decode_block`].
pub fn decode_blocks<B: AsRef<[u8]>>(blocks: &[B], code_page: CodePage) -> String {
    let joined: Vec<u8> = blocks
        .iter()
        .flat_map(|b| b.as_ref().iter().copied())
        .collect();
    if joined.iter().any(|&b| b >= 0x80) {
        if let Ok(s) = std::str::from_utf8(&joined) {
            return s.trim_end_matches('\0').to_owned();
        }
    }
    blocks
        .iter()
        .map(|b| decode_block(b.as_ref(), code_page))
        .collect()
}

/// Turns every 0x14, CRLF, LFCR and lone CR into a single `\n`.
pub fn normalize_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\n' => {
                chars.next_if_eq(&'\r');
                out.push('\n');
            }
            '\u{14}' => out.push('\n'),
            _ => out.push(c),
        }
    }
    out
}

/// How a sender writes line breaks into message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineBreaks {
    /// CR LF, as smbclient sends and smbd understands.
    #[default]
    CrLf,
    /// The single byte 0x14, as Windows senders do.
    Dc4,
}

/// Encodes message text for the wire and cuts it into blocks of at most `max_block`
/// bytes (smbclient uses 127, Windows 128).
///
/// A block is encoded in the code page when every character of it can be; a block
/// holding a character the code page lacks is sent as UTF-8, which
/// [`decode_block`] recognises. A character or a line break is never split
/// between blocks. Empty text gives one empty block, as smbclient sends.
pub fn encode_message_blocks(
    text: &str,
    code_page: CodePage,
    line_breaks: LineBreaks,
    max_block: usize,
) -> Vec<Vec<u8>> {
    let max_block = max_block.max(4);
    let encode = |s: &str| {
        code_page
            .encode(s)
            .unwrap_or_else(|_| s.as_bytes().to_vec())
    };
    let line_break = match line_breaks {
        LineBreaks::CrLf => "\r\n",
        LineBreaks::Dc4 => "\u{14}",
    };
    let mut blocks = Vec::new();
    let mut block = String::new();
    for c in normalize_line_breaks(text).chars() {
        let mut buf = [0u8; 4];
        let piece = if c == '\n' {
            line_break
        } else {
            c.encode_utf8(&mut buf)
        };
        let mut candidate = block.clone();
        candidate.push_str(piece);
        if !block.is_empty() && encode(&candidate).len() > max_block {
            blocks.push(encode(&block));
            block = piece.to_owned();
        } else {
            block = candidate;
        }
    }
    if !block.is_empty() || blocks.is_empty() {
        blocks.push(encode(&block));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp850_round_trip_of_german() {
        let bytes = CodePage::Cp850.encode("Grüße").unwrap();
        assert_eq!(bytes, [0x47, 0x72, 0x81, 0xE1, 0x65]);
        assert_eq!(CodePage::Cp850.decode(&bytes), "Grüße");
        assert_eq!(CodePage::Cp850.encode("€"), Err('€'));
    }

    #[test]
    fn line_breaks_are_normalised() {
        assert_eq!(
            normalize_line_breaks("a\r\nb\n\rc\rd\u{14}e\nf"),
            "a\nb\nc\nd\ne\nf"
        );
    }

    #[test]
    fn utf8_blocks_are_recognised() {
        assert_eq!(decode_block("é".as_bytes(), CodePage::Cp850), "é");
        assert_eq!(decode_block(&[0x82, 0, 0], CodePage::Cp850), "é");
    }

    #[test]
    fn blocks_never_split_characters() {
        let text = "é".repeat(100) + "€";
        let blocks = encode_message_blocks(&text, CodePage::Cp850, LineBreaks::CrLf, 127);
        assert!(blocks.iter().all(|b| b.len() <= 127));
        let joined: String = blocks
            .iter()
            .map(|b| decode_block(b, CodePage::Cp850))
            .collect();
        assert_eq!(joined, text);
        assert_eq!(
            encode_message_blocks("", CodePage::Cp850, LineBreaks::CrLf, 127),
            vec![Vec::<u8>::new()]
        );
        assert_eq!(
            encode_message_blocks("a\nb", CodePage::Cp850, LineBreaks::Dc4, 127),
            vec![b"a\x14b".to_vec()]
        );
    }

    #[test]
    fn code_page_names_parse() {
        assert_eq!("cp850".parse::<CodePage>().unwrap(), CodePage::Cp850);
        assert_eq!("CP437".parse::<CodePage>().unwrap(), CodePage::Cp437);
        assert!("1252".parse::<CodePage>().is_err());
    }
}

//! A received message, decoded for people.

use netsend_wire::oem::{decode_block, decode_blocks, normalize_line_breaks, CodePage};

/// A message as assembled from one or more blocks, decoded to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sender's name as it claimed it (OriginatorName).
    pub from: String,
    /// The destination name as the sender wrote it (DestinationName).
    pub to: String,
    /// The text, decoded with [`decode_blocks`] (CP850, or UTF-8 where the sender
    /// fell back to it), line breaks normalised to `\n`.
    pub text: String,
    /// Whether it came as 0xD5/0xD7/0xD6 rather than one 0xD0.
    pub multi_block: bool,
}

impl Message {
    /// Decodes the raw OEM fields of a message.
    pub fn decode(
        originator: &[u8],
        destination: &[u8],
        blocks: &[Vec<u8>],
        multi_block: bool,
        code_page: CodePage,
    ) -> Self {
        let text = decode_blocks(blocks, code_page);
        Self {
            from: decode_block(originator, code_page).trim().to_owned(),
            to: decode_block(destination, code_page).trim().to_owned(),
            text: normalize_line_breaks(&text),
            multi_block,
        }
    }
}

//! The messenger commands (MS-MSRP §2.2.3): 0xD0 single-block message, 0xD5
//! start, 0xD7 text and 0xD6 end of a multi-block message, and their replies.
//!
//! Names and text stay raw OEM bytes here; decoding is the receiver's business
//! (see [`crate::oem::decode_block`]).

use crate::error::{DecodeError, EncodeError};
use crate::reader::Reader;
use crate::smb::header::{Smb, SmbCommand, SmbHeader, SmbStatus};

/// Largest text block the protocol allows (Windows sends 128, smbclient 127).
pub const MAX_BLOCK_LEN: usize = 128;
/// Largest originator or destination name accepted (smbclient sends the Unix
/// user and the host as typed, which may exceed 15 bytes).
pub const MAX_NAME_FIELD: usize = 255;

/// Buffer-format byte of a NUL-terminated string.
const FORMAT_STRING: u8 = 0x04;
/// Buffer-format byte of a data block with a 16-bit length.
const FORMAT_DATA_BLOCK: u8 = 0x01;

/// A messenger request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessengerRequest {
    /// 0xD0: a whole message in one block.
    Send {
        /// OriginatorName (OEM).
        originator: Vec<u8>,
        /// DestinationName (OEM).
        destination: Vec<u8>,
        /// The text block (OEM).
        text: Vec<u8>,
    },
    /// 0xD5: start of a multi-block message.
    Start {
        /// OriginatorName (OEM).
        originator: Vec<u8>,
        /// DestinationName (OEM).
        destination: Vec<u8>,
    },
    /// 0xD7: one text block.
    Text {
        /// MessageGroupId from the start reply (any value is accepted).
        group_id: u16,
        /// The text block (OEM).
        text: Vec<u8>,
    },
    /// 0xD6: end of the message.
    End {
        /// MessageGroupId.
        group_id: u16,
    },
}

fn read_string(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    if r.u8(field)? != FORMAT_STRING {
        return Err(DecodeError::malformed(
            field,
            "buffer format is not 0x04 (string)",
        ));
    }
    Ok(r.cstring(MAX_NAME_FIELD, field)?.to_vec())
}

fn read_block(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    if r.u8("text block")? != FORMAT_DATA_BLOCK {
        return Err(DecodeError::malformed(
            "text block",
            "buffer format is not 0x01 (data block)",
        ));
    }
    let len = r.u16_le("text block length")?;
    Ok(r.take(usize::from(len), "text block")?.to_vec())
}

fn write_string(out: &mut Vec<u8>, s: &[u8], field: &'static str) -> Result<(), EncodeError> {
    if s.len() > MAX_NAME_FIELD || s.contains(&0) {
        return Err(EncodeError::Unencodable {
            field,
            reason: "at most 255 bytes without NUL",
        });
    }
    out.push(FORMAT_STRING);
    out.extend_from_slice(s);
    out.push(0);
    Ok(())
}

fn write_block(out: &mut Vec<u8>, text: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(text.len()).map_err(|_| EncodeError::TooLong {
        field: "text block",
        len: text.len(),
        max: usize::from(u16::MAX),
    })?;
    out.push(FORMAT_DATA_BLOCK);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text);
    Ok(())
}

impl MessengerRequest {
    /// Reads the messenger request in `smb`; `Ok(None)` when the command is not
    /// one of 0xD0/0xD5/0xD6/0xD7.
    pub fn from_smb(smb: &Smb) -> Result<Option<Self>, DecodeError> {
        let mut r = Reader::new(&smb.bytes);
        let group = || {
            smb.word(0).ok_or(DecodeError::Truncated {
                field: "message group id",
            })
        };
        let request = match smb.header.command() {
            SmbCommand::SEND_MESSAGE => Self::Send {
                originator: read_string(&mut r, "originator name")?,
                destination: read_string(&mut r, "destination name")?,
                text: read_block(&mut r)?,
            },
            SmbCommand::SEND_START_MB_MESSAGE => Self::Start {
                originator: read_string(&mut r, "originator name")?,
                destination: read_string(&mut r, "destination name")?,
            },
            SmbCommand::SEND_TEXT_MB_MESSAGE => Self::Text {
                group_id: group()?,
                text: read_block(&mut r)?,
            },
            SmbCommand::SEND_END_MB_MESSAGE => Self::End { group_id: group()? },
            _ => return Ok(None),
        };
        Ok(Some(request))
    }

    /// The command code of this request.
    pub const fn command(&self) -> SmbCommand {
        match self {
            Self::Send { .. } => SmbCommand::SEND_MESSAGE,
            Self::Start { .. } => SmbCommand::SEND_START_MB_MESSAGE,
            Self::Text { .. } => SmbCommand::SEND_TEXT_MB_MESSAGE,
            Self::End { .. } => SmbCommand::SEND_END_MB_MESSAGE,
        }
    }

    /// Builds the SMB for this request with `header` (its command is set here).
    pub fn to_smb(&self, mut header: SmbHeader) -> Result<Smb, EncodeError> {
        header.command = self.command().0;
        let mut words = Vec::new();
        let mut bytes = Vec::new();
        match self {
            Self::Send {
                originator,
                destination,
                text,
            } => {
                write_string(&mut bytes, originator, "originator name")?;
                write_string(&mut bytes, destination, "destination name")?;
                write_block(&mut bytes, text)?;
            }
            Self::Start {
                originator,
                destination,
            } => {
                write_string(&mut bytes, originator, "originator name")?;
                write_string(&mut bytes, destination, "destination name")?;
            }
            Self::Text { group_id, text } => {
                words.extend_from_slice(&group_id.to_le_bytes());
                write_block(&mut bytes, text)?;
            }
            Self::End { group_id } => words.extend_from_slice(&group_id.to_le_bytes()),
        }
        Ok(Smb {
            header,
            words,
            bytes,
        })
    }
}

/// The reply to a messenger request: `group_id` is sent (WordCount 1) only on a
/// successful 0xD5 reply when given; smbd sends none.
pub fn message_reply(request: &SmbHeader, status: SmbStatus, group_id: Option<u16>) -> Smb {
    let words = match group_id {
        Some(id) if status.is_success() => id.to_le_bytes().to_vec(),
        _ => Vec::new(),
    };
    Smb {
        header: SmbHeader::reply_to(request, status),
        words,
        bytes: Vec::new(),
    }
}

/// A messenger reply as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessengerReply {
    /// The command answered.
    pub command: SmbCommand,
    /// The status.
    pub status: SmbStatus,
    /// MessageGroupId of a 0xD5 reply (0 when the server sent none, as smbd).
    pub group_id: u16,
    /// The MID echoed.
    pub mid: u16,
}

impl MessengerReply {
    /// Reads a reply; the REPLY flag must be set.
    pub fn from_smb(smb: &Smb) -> Result<Self, DecodeError> {
        if !smb.header.is_reply() {
            return Err(DecodeError::malformed("smb flags", "not a reply"));
        }
        Ok(Self {
            command: smb.header.command(),
            status: smb.header.status(),
            group_id: smb.word(0).unwrap_or(0),
            mid: smb.header.mid,
        })
    }
}

/// Fuzz entry point: SMB and messenger request round trips.
#[doc(hidden)]
pub fn fuzz_smb(data: &[u8]) {
    let Ok(smb) = Smb::parse(data) else {
        return;
    };
    let bytes = smb.to_bytes().expect("a parsed SMB re-encodes");
    assert_eq!(Smb::parse(&bytes).expect("re-parse"), smb);
    if let Ok(Some(request)) = MessengerRequest::from_smb(&smb) {
        let again = request
            .to_smb(smb.header)
            .expect("a parsed request re-encodes");
        assert_eq!(
            MessengerRequest::from_smb(&again).expect("re-parse"),
            Some(request)
        );
    }
    let _ = MessengerReply::from_smb(&smb);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use proptest::prelude::*;

    /// protocol.md §13 vectors without their 4-byte NBSS header.
    const D0: &str = "FF534D42 D0 00000000 00 0000 0000 0000000000000000 0000 0000 0000 0000 0000 00 1100 04424F4200 04414C49434500 010200 6869";
    const D0_OK: &str =
        "FF534D42 D0 00000000 80 0000 0000 0000000000000000 0000 0000 0000 0000 0000 00 0000";
    const D0_MSGOFF: &str =
        "FF534D42 D0 02005200 80 0000 0000 0000000000000000 0000 0000 0000 0000 0000 00 0000";
    const D5: &str = "FF534D42 D5 00000000 00 0000 0000 0000000000000000 0000 0000 3412 0000 0100 00 0C00 04626F6200 04414C49434500";
    const D5_OK: &str =
        "FF534D42 D5 00000000 80 0000 0000 0000000000000000 0000 0000 3412 0000 0100 01 0100 0000";
    const D7: &str = "FF534D42 D7 00000000 00 0000 0000 0000000000000000 0000 0000 3412 0000 0200 01 0100 0F00 010C00 68656C6C6F0D0A776F726C64";
    const D6: &str =
        "FF534D42 D6 00000000 00 0000 0000 0000000000000000 0000 0000 3412 0000 0300 01 0100 0000";

    #[test]
    fn single_block_vectors() {
        let smb = Smb::parse(&hex(D0)).unwrap();
        let req = MessengerRequest::from_smb(&smb).unwrap().unwrap();
        assert_eq!(
            req,
            MessengerRequest::Send {
                originator: b"BOB".to_vec(),
                destination: b"ALICE".to_vec(),
                text: b"hi".to_vec()
            }
        );
        assert_eq!(
            req.to_smb(SmbHeader::default())
                .unwrap()
                .to_bytes()
                .unwrap(),
            hex(D0)
        );
        // The digest's reply vectors are in the spec's form (Flags2 0).
        let mut ok = message_reply(&smb.header, SmbStatus::SUCCESS, None);
        ok.header.flags2 = 0;
        assert_eq!(ok.to_bytes().unwrap(), hex(D0_OK));
        let mut off = message_reply(&smb.header, SmbStatus::ERRSRV_MSGOFF, None);
        assert_eq!(off.header.flags2, 0x0003);
        off.header.flags2 = 0;
        assert_eq!(off.to_bytes().unwrap(), hex(D0_MSGOFF));
        assert_eq!(
            Smb::parse(&hex(D0_MSGOFF)).unwrap().header.status(),
            SmbStatus::ERRSRV_MSGOFF
        );
    }

    #[test]
    fn multi_block_vectors() {
        let d5 = Smb::parse(&hex(D5)).unwrap();
        assert_eq!(
            MessengerRequest::from_smb(&d5).unwrap().unwrap(),
            MessengerRequest::Start {
                originator: b"bob".to_vec(),
                destination: b"ALICE".to_vec()
            }
        );
        let mut reply = message_reply(&d5.header, SmbStatus::SUCCESS, Some(1));
        reply.header.flags2 = 0;
        assert_eq!(reply.to_bytes().unwrap(), hex(D5_OK));
        assert_eq!(MessengerReply::from_smb(&reply).unwrap().group_id, 1);
        let d7 = Smb::parse(&hex(D7)).unwrap();
        let text = MessengerRequest::from_smb(&d7).unwrap().unwrap();
        assert_eq!(
            text,
            MessengerRequest::Text {
                group_id: 1,
                text: b"hello\r\nworld".to_vec()
            }
        );
        assert_eq!(text.to_smb(d7.header).unwrap().to_bytes().unwrap(), hex(D7));
        let d6 = Smb::parse(&hex(D6)).unwrap();
        assert_eq!(
            MessengerRequest::from_smb(&d6).unwrap().unwrap(),
            MessengerRequest::End { group_id: 1 }
        );
        assert_eq!(d6.to_bytes().unwrap(), hex(D6));
    }

    #[test]
    fn malformed_requests_are_errors() {
        let mut bad = Smb::parse(&hex(D0)).unwrap();
        bad.bytes[0] = 0x05;
        assert!(MessengerRequest::from_smb(&bad).is_err());
        let mut short = Smb::parse(&hex(D7)).unwrap();
        short.bytes.truncate(2);
        assert!(MessengerRequest::from_smb(&short).is_err());
        let mut no_group = Smb::parse(&hex(D6)).unwrap();
        no_group.words.clear();
        assert!(MessengerRequest::from_smb(&no_group).is_err());
        assert!(Smb::parse(b"\xFFSMB\xD0").is_err());
        assert!(Smb::parse(&hex(
            "FE534D42 D0000000 00000000 00000000 00000000 00000000 00000000 00 0000"
        ))
        .is_err());
    }

    fn request() -> impl Strategy<Value = MessengerRequest> {
        let name = proptest::collection::vec(1u8..=255, 0..40);
        let text = proptest::collection::vec(any::<u8>(), 0..300);
        prop_oneof![
            (name.clone(), name.clone(), text.clone()).prop_map(|(o, d, t)| {
                MessengerRequest::Send {
                    originator: o,
                    destination: d,
                    text: t,
                }
            }),
            (name.clone(), name).prop_map(|(o, d)| MessengerRequest::Start {
                originator: o,
                destination: d
            }),
            (any::<u16>(), text).prop_map(|(g, t)| MessengerRequest::Text {
                group_id: g,
                text: t
            }),
            any::<u16>().prop_map(|g| MessengerRequest::End { group_id: g }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in request(), mid in any::<u16>(), pid in any::<u16>()) {
            let header = SmbHeader { mid, pid_low: pid, ..SmbHeader::default() };
            let bytes = req.to_smb(header).unwrap().to_bytes().unwrap();
            let smb = Smb::parse(&bytes).unwrap();
            prop_assert_eq!(smb.header.mid, mid);
            prop_assert_eq!(MessengerRequest::from_smb(&smb).unwrap(), Some(req));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            fuzz_smb(&data);
        }
    }
}

//! The SMB_COM_TRANSACTION mailslot write carried in a datagram's user data
//! (MS-MAIL §2.2.1), and the `\MAILSLOT\MESSNGR` payload: `From\0To\0Text\0`.
//!
//! The data is located by DataOffset and DataCount, never by position: Samba
//! writes no padding after the mailslot name, a Win98 capture shows one garbage
//! byte. Whatever lies between the name and the data is kept as `padding`.

use crate::error::{DecodeError, EncodeError};
use crate::reader::Reader;
use crate::smb::header::{Smb, SmbCommand, SmbHeader, HEADER_LEN};

/// The messenger's mailslot.
pub const MESSNGR: &[u8] = b"\\MAILSLOT\\MESSNGR";
/// Largest mailslot name accepted.
pub const MAX_MAILSLOT_NAME: usize = 255;
/// Largest MESSNGR payload that fits Windows' 512-byte transaction.
pub const MAX_MESSNGR_PAYLOAD: usize = 424;
/// Largest name field of a MESSNGR payload.
pub const MAX_PAYLOAD_NAME: usize = 255;
/// Mailslot opcode of a write.
const OPCODE_WRITE: u16 = 1;
/// Setup words of a mailslot write.
const SETUP_COUNT: u8 = 3;
/// WordCount of a mailslot write: 14 fixed words plus the setup words.
const WORD_COUNT: usize = 14 + SETUP_COUNT as usize;

/// Whether `name` is `\MAILSLOT\MESSNGR`, in any case.
pub fn is_messenger_mailslot(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(MESSNGR)
}

/// A mailslot write transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotWrite {
    /// The SMB header (receivers ignore it).
    pub header: SmbHeader,
    /// TotalParameterCount.
    pub total_parameter_count: u16,
    /// TotalDataCount.
    pub total_data_count: u16,
    /// MaxParameterCount.
    pub max_parameter_count: u16,
    /// MaxDataCount.
    pub max_data_count: u16,
    /// MaxSetupCount.
    pub max_setup_count: u8,
    /// Transaction flags (0x0002: no response).
    pub flags: u16,
    /// Timeout.
    pub timeout: u32,
    /// ParameterOffset (no parameters are carried; kept as sent).
    pub parameter_offset: u16,
    /// Setup[1]: priority 0..9.
    pub priority: u16,
    /// Setup[2]: class, 2 = unreliable broadcast.
    pub class: u16,
    /// The mailslot name, e.g. `\MAILSLOT\MESSNGR`.
    pub name: Vec<u8>,
    /// Bytes between the name's NUL and the data.
    pub padding: Vec<u8>,
    /// The data.
    pub data: Vec<u8>,
}

impl MailslotWrite {
    /// A MESSNGR write of `payload` as netsend sends it: Samba's layout (no
    /// padding, header zero), class 2 (broadcast), priority 0.
    pub fn messenger(payload: Vec<u8>) -> Self {
        Self::to_mailslot(MESSNGR, payload)
    }

    /// A write of `payload` to the mailslot `name`, in the same layout as
    /// [`MailslotWrite::messenger`].
    pub fn to_mailslot(name: &[u8], payload: Vec<u8>) -> Self {
        Self {
            header: SmbHeader::request(SmbCommand::TRANSACTION),
            total_parameter_count: 0,
            total_data_count: payload.len() as u16,
            max_parameter_count: 0,
            max_data_count: 0,
            max_setup_count: 0,
            flags: 0,
            timeout: 0,
            parameter_offset: 0,
            priority: 0,
            class: 2,
            name: name.to_vec(),
            padding: Vec::new(),
            data: payload,
        }
    }

    /// Parses a datagram's user data.
    pub fn parse(user_data: &[u8]) -> Result<Self, DecodeError> {
        let smb = Smb::parse(user_data)?;
        if smb.header.command() != SmbCommand::TRANSACTION {
            return Err(DecodeError::malformed("smb command", "not a transaction"));
        }
        if smb.words.len() != 2 * WORD_COUNT {
            return Err(DecodeError::malformed(
                "word count",
                "a mailslot write has 17 words",
            ));
        }
        let mut w = Reader::new(&smb.words);
        let total_parameter_count = w.u16_le("total parameter count")?;
        let total_data_count = w.u16_le("total data count")?;
        let max_parameter_count = w.u16_le("max parameter count")?;
        let max_data_count = w.u16_le("max data count")?;
        let max_setup_count = w.u8("max setup count")?;
        let _reserved = w.u8("reserved")?;
        let flags = w.u16_le("transaction flags")?;
        let timeout = w.u32_le("timeout")?;
        let _reserved2 = w.u16_le("reserved2")?;
        let parameter_count = w.u16_le("parameter count")?;
        let parameter_offset = w.u16_le("parameter offset")?;
        let data_count = usize::from(w.u16_le("data count")?);
        let data_offset = usize::from(w.u16_le("data offset")?);
        let setup_count = w.u8("setup count")?;
        let _reserved3 = w.u8("reserved3")?;
        let opcode = w.u16_le("mailslot opcode")?;
        let priority = w.u16_le("priority")?;
        let class = w.u16_le("class")?;
        if parameter_count != 0 || setup_count != SETUP_COUNT || opcode != OPCODE_WRITE {
            return Err(DecodeError::malformed(
                "mailslot write",
                "not a plain mailslot write",
            ));
        }
        let mut b = Reader::new(&smb.bytes);
        let name = b.cstring(MAX_MAILSLOT_NAME, "mailslot name")?.to_vec();
        // Offsets count from the SMB header; the byte area starts after ByteCount.
        let bytes_start = HEADER_LEN + 1 + smb.words.len() + 2;
        let name_end = bytes_start + b.position();
        let data_end = data_offset
            .checked_add(data_count)
            .ok_or(DecodeError::malformed("data offset", "overflows"))?;
        if data_offset < name_end || data_end > bytes_start + smb.bytes.len() {
            return Err(DecodeError::malformed(
                "data offset",
                "data outside the byte area",
            ));
        }
        let padding = b.take(data_offset - name_end, "padding")?.to_vec();
        let data = b.take(data_count, "mailslot data")?.to_vec();
        b.finish("mailslot byte area")?;
        Ok(Self {
            header: smb.header,
            total_parameter_count,
            total_data_count,
            max_parameter_count,
            max_data_count,
            max_setup_count,
            flags,
            timeout,
            parameter_offset,
            priority,
            class,
            name,
            padding,
            data,
        })
    }

    /// Builds the SMB.
    pub fn to_smb(&self) -> Result<Smb, EncodeError> {
        let data_offset =
            HEADER_LEN + 1 + 2 * WORD_COUNT + 2 + self.name.len() + 1 + self.padding.len();
        let too_long = |field, len| EncodeError::TooLong {
            field,
            len,
            max: usize::from(u16::MAX),
        };
        let data_count = u16::try_from(self.data.len())
            .map_err(|_| too_long("mailslot data", self.data.len()))?;
        let data_offset16 =
            u16::try_from(data_offset).map_err(|_| too_long("data offset", data_offset))?;
        if self.name.len() > MAX_MAILSLOT_NAME || self.name.contains(&0) {
            return Err(EncodeError::Unencodable {
                field: "mailslot name",
                reason: "at most 255 bytes without NUL",
            });
        }
        let mut words = Vec::with_capacity(2 * WORD_COUNT);
        for v in [
            self.total_parameter_count,
            self.total_data_count,
            self.max_parameter_count,
            self.max_data_count,
        ] {
            words.extend_from_slice(&v.to_le_bytes());
        }
        words.extend_from_slice(&[self.max_setup_count, 0]);
        words.extend_from_slice(&self.flags.to_le_bytes());
        words.extend_from_slice(&self.timeout.to_le_bytes());
        for v in [0, 0, self.parameter_offset, data_count, data_offset16] {
            words.extend_from_slice(&u16::to_le_bytes(v));
        }
        words.extend_from_slice(&[SETUP_COUNT, 0]);
        for v in [OPCODE_WRITE, self.priority, self.class] {
            words.extend_from_slice(&v.to_le_bytes());
        }
        let mut bytes = self.name.clone();
        bytes.push(0);
        bytes.extend_from_slice(&self.padding);
        bytes.extend_from_slice(&self.data);
        let mut header = self.header;
        header.command = SmbCommand::TRANSACTION.0;
        Ok(Smb {
            header,
            words,
            bytes,
        })
    }

    /// The user data bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        self.to_smb()?.to_bytes()
    }
}

/// The MESSNGR payload: three OEM strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessengerPayload {
    /// The sender's name.
    pub from: Vec<u8>,
    /// The recipient (the domain name for `NET SEND *`).
    pub to: Vec<u8>,
    /// The text.
    pub text: Vec<u8>,
}

impl MessengerPayload {
    /// Parses `From\0To\0Text\0`; a missing final NUL is accepted.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        if data.len() > MAX_MESSNGR_PAYLOAD * 2 {
            return Err(DecodeError::TooLong {
                field: "messenger payload",
                len: data.len(),
                max: MAX_MESSNGR_PAYLOAD * 2,
            });
        }
        let mut r = Reader::new(data);
        let from = r.cstring(MAX_PAYLOAD_NAME, "payload from")?.to_vec();
        let to = r.cstring(MAX_PAYLOAD_NAME, "payload to")?.to_vec();
        let rest = r.rest();
        let text = match rest.iter().position(|&b| b == 0) {
            Some(n) if n + 1 == rest.len() => &rest[..n],
            Some(_) => {
                return Err(DecodeError::TrailingBytes {
                    field: "messenger payload",
                    count: rest.len(),
                })
            }
            None => rest,
        };
        Ok(Self {
            from,
            to,
            text: text.to_vec(),
        })
    }

    /// Writes `From\0To\0Text\0`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        if [&self.from, &self.to, &self.text]
            .iter()
            .any(|f| f.contains(&0))
        {
            return Err(EncodeError::Unencodable {
                field: "messenger payload",
                reason: "fields may not hold NUL",
            });
        }
        let mut out = Vec::with_capacity(self.from.len() + self.to.len() + self.text.len() + 3);
        for f in [&self.from, &self.to, &self.text] {
            out.extend_from_slice(f);
            out.push(0);
        }
        if out.len() > MAX_MESSNGR_PAYLOAD {
            return Err(EncodeError::TooLong {
                field: "messenger payload",
                len: out.len(),
                max: MAX_MESSNGR_PAYLOAD,
            });
        }
        Ok(out)
    }

    /// The longest text (OEM bytes) that fits one datagram with these names; a
    /// longer text must be refused (NERR_TruncatedBroadcast), never cut.
    pub fn max_text_len(from: &[u8], to: &[u8]) -> usize {
        MAX_MESSNGR_PAYLOAD.saturating_sub(from.len() + to.len() + 3)
    }
}

/// Fuzz entry point: mailslot write and MESSNGR payload round trips.
#[doc(hidden)]
pub fn fuzz_mailslot(data: &[u8]) {
    if let Ok(m) = MailslotWrite::parse(data) {
        let bytes = m.to_bytes().expect("a parsed write re-encodes");
        assert_eq!(MailslotWrite::parse(&bytes).expect("re-parse"), m);
    }
    if let Ok(p) = MessengerPayload::parse(data) {
        if let Ok(bytes) = p.to_bytes() {
            assert_eq!(MessengerPayload::parse(&bytes).expect("re-parse"), p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nbds::Datagram;
    use crate::test_util::hex;
    use proptest::prelude::*;

    /// protocol.md §13: the `NET SEND *` datagram (202 bytes).
    const NET_SEND_STAR: &str = "
        11 02 2A 2A C0 00 02 0A 00 8A 00 BC 00 00 20 45
        49 45 50 46 44 46 45 44 42 43 41 43 41 43 41 43
        41 43 41 43 41 43 41 43 41 43 41 43 41 41 41 00
        20 46 48 45 50 46 43 45 4C 45 48 46 43 45 50 46
        46 46 41 43 41 43 41 43 41 43 41 43 41 43 41 41
        41 00 FF 53 4D 42 25 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 11 00 00 20 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 20 00 58 00 03 00 01
        00 00 00 02 00 33 00 5C 4D 41 49 4C 53 4C 4F 54
        5C 4D 45 53 53 4E 47 52 00 00 42 4F 42 00 57 4F
        52 4B 47 52 4F 55 50 00 53 65 72 76 65 72 20 67
        6F 69 6E 67 20 64 6F 77 6E 00";

    #[test]
    fn net_send_star_vector() {
        let bytes = hex(NET_SEND_STAR);
        assert_eq!(bytes.len(), 202);
        let dgram = Datagram::parse(&bytes).unwrap();
        assert_eq!(dgram.to_bytes().unwrap(), bytes);
        let Datagram::Data {
            user_data,
            destination_name,
            ..
        } = dgram
        else {
            panic!()
        };
        assert_eq!(destination_name.name.to_string(), "WORKGROUP<00>");
        let write = MailslotWrite::parse(&user_data).unwrap();
        assert!(is_messenger_mailslot(&write.name));
        assert_eq!(write.padding, [0]);
        assert_eq!(write.to_bytes().unwrap(), user_data);
        let payload = MessengerPayload::parse(&write.data).unwrap();
        assert_eq!(payload.from, b"BOB");
        assert_eq!(payload.to, b"WORKGROUP");
        assert_eq!(payload.text, b"Server going down");
        // Built from its values, the same bytes come out.
        let mut built = MailslotWrite::messenger(payload.to_bytes().unwrap());
        built.padding = vec![0];
        assert_eq!(built.to_bytes().unwrap(), user_data);
    }

    #[test]
    fn payload_rules() {
        assert_eq!(
            MessengerPayload::parse(b"A\0B\0text").unwrap().text,
            b"text"
        );
        assert!(MessengerPayload::parse(b"A\0B\0te\0xt\0").is_err());
        assert!(MessengerPayload::parse(b"A\0B").is_err());
        let long = MessengerPayload {
            from: b"BOB".to_vec(),
            to: b"WORKGROUP".to_vec(),
            text: vec![b'x'; 500],
        };
        assert!(long.to_bytes().is_err());
        assert_eq!(
            MessengerPayload::max_text_len(b"BOB", b"WORKGROUP"),
            424 - 15
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            fuzz_mailslot(&data);
        }

        #[test]
        fn messenger_writes_round_trip(from in "[A-Z]{1,15}", text in proptest::collection::vec(1u8..=255, 0..300)) {
            let payload = MessengerPayload { from: from.into_bytes(), to: b"WORKGROUP".to_vec(), text };
            let w = MailslotWrite::messenger(payload.to_bytes().unwrap());
            let parsed = MailslotWrite::parse(&w.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(MessengerPayload::parse(&parsed.data).unwrap(), payload);
            prop_assert_eq!(parsed, w);
        }
    }
}

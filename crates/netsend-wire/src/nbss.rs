//! The NetBIOS session service on TCP 139 (RFC 1002 §4.3): a 4-byte header
//! (type, flags with the 17th length bit, length) and a trailer.

use std::net::Ipv4Addr;

use crate::error::{DecodeError, EncodeError};
use crate::name::WireName;
use crate::reader::Reader;

/// Length of the session packet header.
pub const HEADER_LEN: usize = 4;
/// Largest trailer length the 17-bit length field can express.
pub const MAX_TRAILER_LEN: usize = 0x1_FFFF;

/// Session packet type (open: unknown values round-trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketType(pub u8);

impl PacketType {
    /// SESSION MESSAGE: the trailer is one SMB.
    pub const SESSION_MESSAGE: Self = Self(0x00);
    /// SESSION REQUEST: called and calling names.
    pub const SESSION_REQUEST: Self = Self(0x81);
    /// POSITIVE SESSION RESPONSE.
    pub const POSITIVE_RESPONSE: Self = Self(0x82);
    /// NEGATIVE SESSION RESPONSE: one error byte.
    pub const NEGATIVE_RESPONSE: Self = Self(0x83);
    /// RETARGET SESSION RESPONSE: IPv4 and port.
    pub const RETARGET_RESPONSE: Self = Self(0x84);
    /// SESSION KEEP ALIVE.
    pub const KEEP_ALIVE: Self = Self(0x85);
    /// Non-standard keep-alive request that smbd answers with 0x85.
    pub const KEEP_ALIVE_REQUEST: Self = Self(0x89);
}

/// Error code of a negative session response (open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NegativeCode(pub u8);

impl NegativeCode {
    /// Not listening on called name.
    pub const NOT_LISTENING_ON_CALLED: Self = Self(0x80);
    /// Not listening for calling name.
    pub const NOT_LISTENING_FOR_CALLING: Self = Self(0x81);
    /// Called name not present.
    pub const CALLED_NAME_NOT_PRESENT: Self = Self(0x82);
    /// Called name present, but insufficient resources.
    pub const INSUFFICIENT_RESOURCES: Self = Self(0x83);
    /// Unspecified error.
    pub const UNSPECIFIED: Self = Self(0x8F);
}

/// The 4-byte session header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// Trailer length (17 bits).
    pub length: usize,
}

impl FrameHeader {
    /// Decodes a header; reserved flag bits must be zero.
    pub fn parse(bytes: [u8; HEADER_LEN]) -> Result<Self, DecodeError> {
        let [packet_type, flags, hi, lo] = bytes;
        if flags & 0xFE != 0 {
            return Err(DecodeError::malformed("nbss flags", "reserved bits set"));
        }
        Ok(Self {
            packet_type: PacketType(packet_type),
            length: (usize::from(flags & 1) << 16) | usize::from(u16::from_be_bytes([hi, lo])),
        })
    }

    /// Encodes the header; fails when the length does not fit 17 bits.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.length > MAX_TRAILER_LEN {
            return Err(EncodeError::TooLong {
                field: "nbss length",
                len: self.length,
                max: MAX_TRAILER_LEN,
            });
        }
        out.push(self.packet_type.0);
        out.push((self.length >> 16) as u8);
        out.extend_from_slice(&(self.length as u16).to_be_bytes());
        Ok(())
    }

    /// Total frame length, header included.
    pub const fn frame_len(&self) -> usize {
        HEADER_LEN + self.length
    }
}

/// Looks for one complete frame at the front of `buf` without allocating
/// (mini-redis style check-then-parse): `Ok(None)` means more bytes are needed,
/// `Ok(Some(n))` that the first `n` bytes are a whole frame, and an error that
/// the header is malformed or announces more than `max_len` trailer bytes — so
/// the caller can refuse before buffering them.
pub fn check_frame(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = FrameHeader::parse(*head)?;
    if header.length > max_len {
        return Err(DecodeError::TooLong {
            field: "nbss frame",
            len: header.length,
            max: max_len,
        });
    }
    Ok((buf.len() >= header.frame_len()).then_some(header.frame_len()))
}

/// A typed session service packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionPacket {
    /// A session message carrying one SMB (the payload bytes).
    Message(Vec<u8>),
    /// A session request.
    Request {
        /// The name being called (`NAME<03>` for the messenger).
        called: WireName,
        /// The caller's name.
        calling: WireName,
    },
    /// Positive session response.
    Positive,
    /// Negative session response.
    Negative(NegativeCode),
    /// Retarget session response.
    Retarget {
        /// Address to reconnect to.
        ip: Ipv4Addr,
        /// Port to reconnect to.
        port: u16,
    },
    /// Session keep-alive.
    KeepAlive,
    /// smbd's non-standard keep-alive request (0x89).
    KeepAliveRequest,
    /// Any other packet type, kept as is.
    Unknown {
        /// The type byte.
        packet_type: PacketType,
        /// The trailer.
        trailer: Vec<u8>,
    },
}

impl SessionPacket {
    /// Parses exactly one frame (header and trailer, nothing more).
    pub fn parse(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(frame);
        let header = FrameHeader::parse(r.array("nbss header")?)?;
        let mut t = r.sub(header.length, "nbss trailer")?;
        r.finish("nbss frame")?;
        let packet = match header.packet_type {
            PacketType::SESSION_MESSAGE => Self::Message(t.rest().to_vec()),
            PacketType::SESSION_REQUEST => {
                let called = WireName::read_uncompressed(&mut t)?;
                let calling = WireName::read_uncompressed(&mut t)?;
                Self::Request { called, calling }
            }
            PacketType::POSITIVE_RESPONSE => Self::Positive,
            PacketType::NEGATIVE_RESPONSE => Self::Negative(NegativeCode(t.u8("nbss error code")?)),
            PacketType::RETARGET_RESPONSE => Self::Retarget {
                ip: Ipv4Addr::from(t.u32_be("retarget ip")?),
                port: t.u16_be("retarget port")?,
            },
            PacketType::KEEP_ALIVE => Self::KeepAlive,
            PacketType::KEEP_ALIVE_REQUEST => Self::KeepAliveRequest,
            packet_type => Self::Unknown {
                packet_type,
                trailer: t.rest().to_vec(),
            },
        };
        t.finish("nbss trailer")?;
        Ok(packet)
    }

    fn packet_type(&self) -> PacketType {
        match self {
            Self::Message(_) => PacketType::SESSION_MESSAGE,
            Self::Request { .. } => PacketType::SESSION_REQUEST,
            Self::Positive => PacketType::POSITIVE_RESPONSE,
            Self::Negative(_) => PacketType::NEGATIVE_RESPONSE,
            Self::Retarget { .. } => PacketType::RETARGET_RESPONSE,
            Self::KeepAlive => PacketType::KEEP_ALIVE,
            Self::KeepAliveRequest => PacketType::KEEP_ALIVE_REQUEST,
            Self::Unknown { packet_type, .. } => *packet_type,
        }
    }

    /// Length of the trailer.
    fn trailer_len(&self) -> usize {
        match self {
            Self::Message(p) => p.len(),
            Self::Request { called, calling } => called.buffer_len() + calling.buffer_len(),
            Self::Negative(_) => 1,
            Self::Retarget { .. } => 6,
            Self::Positive | Self::KeepAlive | Self::KeepAliveRequest => 0,
            Self::Unknown { trailer, .. } => trailer.len(),
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.trailer_len()
    }

    /// Writes the whole frame.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        FrameHeader {
            packet_type: self.packet_type(),
            length: self.trailer_len(),
        }
        .emit(out)?;
        match self {
            Self::Message(p) => out.extend_from_slice(p),
            Self::Request { called, calling } => {
                called.emit(out)?;
                calling.emit(out)?;
            }
            Self::Negative(code) => out.push(code.0),
            Self::Retarget { ip, port } => {
                out.extend_from_slice(&ip.octets());
                out.extend_from_slice(&port.to_be_bytes());
            }
            Self::Positive | Self::KeepAlive | Self::KeepAliveRequest => {}
            Self::Unknown { trailer, .. } => out.extend_from_slice(trailer),
        }
        Ok(())
    }

    /// The frame as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

/// Fuzz entry point: frame check, parse, and the emit/parse round trip.
#[doc(hidden)]
pub fn fuzz_nbss(data: &[u8]) {
    let _ = check_frame(data, MAX_TRAILER_LEN);
    if let Ok(packet) = SessionPacket::parse(data) {
        let bytes = packet.to_bytes().expect("a parsed packet re-encodes");
        assert_eq!(bytes.len(), packet.buffer_len());
        assert_eq!(SessionPacket::parse(&bytes).expect("re-parse"), packet);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NetbiosName;
    use crate::test_util::hex;
    use proptest::prelude::*;

    /// protocol.md §13: session request ALICE<03> from BOB<00>.
    const REQUEST: &str =
        "81000044 20454245 4D454A45 44454643 41434143 41434143 41434143 41434143 \
        41434141 44002045 43455045 43434143 41434143 41434143 41434143 41434143 41434143 41414100";

    #[test]
    fn session_request_vector() {
        let bytes = hex(REQUEST);
        assert_eq!(bytes.len(), 72);
        let packet = SessionPacket::parse(&bytes).unwrap();
        let expected = SessionPacket::Request {
            called: NetbiosName::new("ALICE", 3).unwrap().into(),
            calling: NetbiosName::new("BOB", 0).unwrap().into(),
        };
        assert_eq!(packet, expected);
        assert_eq!(expected.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn short_packets() {
        assert_eq!(SessionPacket::Positive.to_bytes().unwrap(), [0x82, 0, 0, 0]);
        assert_eq!(
            SessionPacket::Negative(NegativeCode::CALLED_NAME_NOT_PRESENT)
                .to_bytes()
                .unwrap(),
            [0x83, 0, 0, 1, 0x82]
        );
        assert_eq!(
            SessionPacket::KeepAlive.to_bytes().unwrap(),
            [0x85, 0, 0, 0]
        );
        assert_eq!(
            SessionPacket::parse(&[0x89, 0, 0, 0]).unwrap(),
            SessionPacket::KeepAliveRequest
        );
    }

    #[test]
    fn seventeen_bit_length_and_checks() {
        assert_eq!(FrameHeader::parse([0, 1, 0, 2]).unwrap().length, 0x10002);
        assert!(FrameHeader::parse([0, 2, 0, 0]).is_err());
        assert_eq!(check_frame(&[0, 0], 100), Ok(None));
        assert_eq!(check_frame(&[0, 0, 0, 2, 9], 100), Ok(None));
        assert_eq!(check_frame(&[0, 0, 0, 2, 9, 9, 7], 100), Ok(Some(6)));
        assert!(matches!(
            check_frame(&[0, 1, 0xFF, 0xFF], 4096),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(SessionPacket::parse(&[0x82, 0, 0, 1, 0]).is_err());
        assert!(SessionPacket::parse(&[0x00, 0, 0, 2, 1]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            fuzz_nbss(&data);
        }

        #[test]
        fn messages_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..300), t in any::<u8>()) {
            for p in [SessionPacket::Message(payload.clone()), SessionPacket::Negative(NegativeCode(t)),
                      SessionPacket::Retarget { ip: Ipv4Addr::from(u32::from(t) << 8), port: u16::from(t) }] {
                let bytes = p.to_bytes().unwrap();
                prop_assert_eq!(SessionPacket::parse(&bytes).unwrap(), p);
            }
        }
    }
}

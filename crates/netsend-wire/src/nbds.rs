//! The NetBIOS datagram service on UDP 138 (RFC 1002 §4.4): direct unique,
//! direct group and broadcast datagrams, error datagrams and datagram queries.
//!
//! DGM_LENGTH counts the bytes after the 14-byte header (both names and the user
//! data), as Samba writes it; on input it must match the bytes that arrived, so
//! a datagram re-encodes byte for byte.

use std::net::Ipv4Addr;

use crate::error::{DecodeError, EncodeError};
use crate::name::WireName;
use crate::reader::Reader;

/// Largest datagram accepted or written (an Ethernet frame's UDP payload).
pub const MAX_DATAGRAM_LEN: usize = 1472;
/// RFC 1002's MAX_DATAGRAM_LENGTH, the size a sender should stay within.
pub const RFC_MAX_DATAGRAM_LEN: usize = 576;
/// Length of the header before the names of a data datagram.
pub const DATA_HEADER_LEN: usize = 14;

/// MSG_TYPE (open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType(pub u8);

impl MessageType {
    /// DIRECT_UNIQUE DATAGRAM.
    pub const DIRECT_UNIQUE: Self = Self(0x10);
    /// DIRECT_GROUP DATAGRAM.
    pub const DIRECT_GROUP: Self = Self(0x11);
    /// BROADCAST DATAGRAM.
    pub const BROADCAST: Self = Self(0x12);
    /// DATAGRAM ERROR.
    pub const ERROR: Self = Self(0x13);
    /// DATAGRAM QUERY REQUEST.
    pub const QUERY_REQUEST: Self = Self(0x14);
    /// DATAGRAM POSITIVE QUERY RESPONSE.
    pub const POSITIVE_QUERY_RESPONSE: Self = Self(0x15);
    /// DATAGRAM NEGATIVE QUERY RESPONSE.
    pub const NEGATIVE_QUERY_RESPONSE: Self = Self(0x16);
}

/// ERROR_CODE of an error datagram (open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramErrorCode(pub u8);

impl DatagramErrorCode {
    /// Destination name not present.
    pub const DESTINATION_NAME_NOT_PRESENT: Self = Self(0x82);
    /// Invalid source name format.
    pub const INVALID_SOURCE_NAME: Self = Self(0x83);
    /// Invalid destination name format.
    pub const INVALID_DESTINATION_NAME: Self = Self(0x84);
}

/// FLAGS bits.
pub mod flags {
    /// M: more fragments follow.
    pub const MORE: u8 = 0x01;
    /// F: first fragment.
    pub const FIRST: u8 = 0x02;
    /// SNT: sending node type mask (0x00 B, 0x04 P, 0x08 M, 0x0C NBDD / H).
    pub const NODE_TYPE_MASK: u8 = 0x0C;
    /// SNT value of an M-node (Samba's mailslot sender).
    pub const NODE_M: u8 = 0x08;
    /// SNT value Windows (H-node) sends.
    pub const NODE_H: u8 = 0x0C;
}

/// The fields every datagram starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// MSG_TYPE.
    pub msg_type: MessageType,
    /// FLAGS (see [`flags`]).
    pub flags: u8,
    /// DGM_ID.
    pub id: u16,
    /// SOURCE_IP.
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT.
    pub source_port: u16,
}

/// A datagram service packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// 0x10–0x12: data for a name.
    Data {
        /// Common header.
        header: Header,
        /// PACKET_OFFSET (fragment offset; 0 when unfragmented).
        packet_offset: u16,
        /// SOURCE_NAME.
        source_name: WireName,
        /// DESTINATION_NAME.
        destination_name: WireName,
        /// USER_DATA (an SMB for mailslots).
        user_data: Vec<u8>,
    },
    /// 0x13: error.
    Error {
        /// Common header.
        header: Header,
        /// ERROR_CODE.
        code: DatagramErrorCode,
    },
    /// 0x14–0x16: query for a name.
    Query {
        /// Common header.
        header: Header,
        /// DESTINATION_NAME.
        destination_name: WireName,
    },
}

impl Datagram {
    /// Parses one UDP payload.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        if data.len() > MAX_DATAGRAM_LEN {
            return Err(DecodeError::TooLong {
                field: "datagram",
                len: data.len(),
                max: MAX_DATAGRAM_LEN,
            });
        }
        let mut r = Reader::new(data);
        let header = Header {
            msg_type: MessageType(r.u8("msg type")?),
            flags: r.u8("datagram flags")?,
            id: r.u16_be("dgm id")?,
            source_ip: Ipv4Addr::from(r.u32_be("source ip")?),
            source_port: r.u16_be("source port")?,
        };
        let datagram = match header.msg_type {
            MessageType::DIRECT_UNIQUE | MessageType::DIRECT_GROUP | MessageType::BROADCAST => {
                let length = usize::from(r.u16_be("dgm length")?);
                let packet_offset = r.u16_be("packet offset")?;
                if length != r.remaining() {
                    return Err(DecodeError::malformed(
                        "dgm length",
                        "does not match the datagram size",
                    ));
                }
                Self::Data {
                    header,
                    packet_offset,
                    source_name: WireName::read_uncompressed(&mut r)?,
                    destination_name: WireName::read_uncompressed(&mut r)?,
                    user_data: r.rest().to_vec(),
                }
            }
            MessageType::ERROR => Self::Error {
                header,
                code: DatagramErrorCode(r.u8("error code")?),
            },
            MessageType::QUERY_REQUEST
            | MessageType::POSITIVE_QUERY_RESPONSE
            | MessageType::NEGATIVE_QUERY_RESPONSE => Self::Query {
                header,
                destination_name: WireName::read_uncompressed(&mut r)?,
            },
            _ => return Err(DecodeError::malformed("msg type", "unknown datagram type")),
        };
        r.finish("datagram")?;
        Ok(datagram)
    }

    /// The common header.
    pub const fn header(&self) -> &Header {
        match self {
            Self::Data { header, .. } | Self::Error { header, .. } | Self::Query { header, .. } => {
                header
            }
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        10 + match self {
            Self::Data {
                source_name,
                destination_name,
                user_data,
                ..
            } => 4 + source_name.buffer_len() + destination_name.buffer_len() + user_data.len(),
            Self::Error { .. } => 1,
            Self::Query {
                destination_name, ..
            } => destination_name.buffer_len(),
        }
    }

    /// Writes the datagram; fails if it would exceed [`MAX_DATAGRAM_LEN`].
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let len = self.buffer_len();
        if len > MAX_DATAGRAM_LEN {
            return Err(EncodeError::TooLong {
                field: "datagram",
                len,
                max: MAX_DATAGRAM_LEN,
            });
        }
        let h = self.header();
        out.push(h.msg_type.0);
        out.push(h.flags);
        out.extend_from_slice(&h.id.to_be_bytes());
        out.extend_from_slice(&h.source_ip.octets());
        out.extend_from_slice(&h.source_port.to_be_bytes());
        match self {
            Self::Data {
                packet_offset,
                source_name,
                destination_name,
                user_data,
                ..
            } => {
                out.extend_from_slice(&((len - DATA_HEADER_LEN) as u16).to_be_bytes());
                out.extend_from_slice(&packet_offset.to_be_bytes());
                source_name.emit(out)?;
                destination_name.emit(out)?;
                out.extend_from_slice(user_data);
            }
            Self::Error { code, .. } => out.push(code.0),
            Self::Query {
                destination_name, ..
            } => destination_name.emit(out)?,
        }
        Ok(())
    }

    /// The datagram as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

/// Fuzz entry point: parse, and the emit/parse round trip.
#[doc(hidden)]
pub fn fuzz_nbds(data: &[u8]) {
    if let Ok(d) = Datagram::parse(data) {
        let bytes = d.to_bytes().expect("a parsed datagram re-encodes");
        assert_eq!(bytes, data, "datagrams re-encode byte for byte");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NetbiosName;
    use proptest::prelude::*;

    fn header(t: MessageType) -> Header {
        Header {
            msg_type: t,
            flags: flags::FIRST | flags::NODE_H,
            id: 0x2A2A,
            source_ip: Ipv4Addr::new(192, 0, 2, 10),
            source_port: 138,
        }
    }

    #[test]
    fn direct_unique_and_error_round_trip() {
        let d = Datagram::Data {
            header: header(MessageType::DIRECT_UNIQUE),
            packet_offset: 0,
            source_name: NetbiosName::new("HOST1", 0).unwrap().into(),
            destination_name: NetbiosName::new("ALICE", 3).unwrap().into(),
            user_data: b"payload".to_vec(),
        };
        let bytes = d.to_bytes().unwrap();
        assert_eq!(
            u16::from_be_bytes([bytes[10], bytes[11]]) as usize,
            bytes.len() - 14
        );
        assert_eq!(Datagram::parse(&bytes).unwrap(), d);
        let e = Datagram::Error {
            header: header(MessageType::ERROR),
            code: DatagramErrorCode::DESTINATION_NAME_NOT_PRESENT,
        };
        let bytes = e.to_bytes().unwrap();
        assert_eq!(bytes.len(), 11);
        assert_eq!(Datagram::parse(&bytes).unwrap(), e);
        let mut bad = d.to_bytes().unwrap();
        bad[11] = bad[11].wrapping_add(1);
        assert!(Datagram::parse(&bad).is_err());
        assert!(Datagram::parse(&[0x10, 0, 0]).is_err());
        assert!(Datagram::parse(&[0x77; 20]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_nbds(&data);
        }

        #[test]
        fn data_round_trips(t in 0x10u8..=0x12, id in any::<u16>(), user in proptest::collection::vec(any::<u8>(), 0..400),
                            src in proptest::array::uniform16(any::<u8>())) {
            let d = Datagram::Data {
                header: Header { id, ..header(MessageType(t)) },
                packet_offset: 0,
                source_name: NetbiosName::from_raw(src).into(),
                destination_name: NetbiosName::WILDCARD.into(),
                user_data: user,
            };
            let bytes = d.to_bytes().unwrap();
            prop_assert_eq!(Datagram::parse(&bytes).unwrap(), d);
        }
    }
}

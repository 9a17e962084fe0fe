//! The NetBIOS name service on UDP 137 (RFC 1002 §4.2): queries, registrations,
//! releases, refreshes, WACKs, conflict demands and node status.
//!
//! Label pointers are accepted anywhere on input. On output a resource record's
//! name is written as the pointer `C0 0C` only when it was parsed that way or
//! built by a request constructor (registration, refresh, release), which is what
//! RFC 1002 and Samba send; responses always carry the full name, because
//! nbtscan reads the answer name as a fixed 34-byte field.

use std::fmt;
use std::net::Ipv4Addr;

use crate::error::{DecodeError, EncodeError};
use crate::name::{NetbiosName, WireName};
use crate::reader::Reader;

/// Length of the header.
pub const HEADER_LEN: usize = 12;
/// Largest name service packet accepted or written (RFC 1002's 576, plus room
/// for node status responses of big name tables).
pub const MAX_PACKET_LEN: usize = 1500;
/// Most entries in any one section.
pub const MAX_SECTION_ENTRIES: usize = 32;
/// Most names in a node status response.
pub const MAX_NODE_NAMES: usize = 64;
/// Length of the node status statistics block.
pub const STATISTICS_LEN: usize = 46;
/// Offset of the question name, where `C0 0C` points.
const QUESTION_NAME_OFFSET: u16 = 12;

/// Name service opcode (open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opcode(pub u8);

impl Opcode {
    /// Name query (and node status).
    pub const QUERY: Self = Self(0);
    /// Name registration.
    pub const REGISTRATION: Self = Self(5);
    /// Name release.
    pub const RELEASE: Self = Self(6);
    /// Wait for acknowledgement (from a WINS server).
    pub const WACK: Self = Self(7);
    /// Name refresh (what nmbd sends).
    pub const REFRESH: Self = Self(8);
    /// Name refresh as the RFC's diagram numbers it.
    pub const REFRESH_ALT: Self = Self(9);
    /// Multi-homed name registration (Microsoft WINS).
    pub const MULTIHOMED_REGISTRATION: Self = Self(15);
}

/// Response code (open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rcode(pub u8);

impl Rcode {
    /// No error.
    pub const OK: Self = Self(0);
    /// Format error.
    pub const FMT_ERR: Self = Self(1);
    /// Server failure.
    pub const SRV_ERR: Self = Self(2);
    /// Name does not exist.
    pub const NAM_ERR: Self = Self(3);
    /// Unsupported request.
    pub const IMP_ERR: Self = Self(4);
    /// Refused.
    pub const RFS_ERR: Self = Self(5);
    /// Active error: the name is owned by another node.
    pub const ACT_ERR: Self = Self(6);
    /// Name in conflict.
    pub const CFT_ERR: Self = Self(7);
}

/// The FLAGS word, bit by bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// R: this is a response.
    pub response: bool,
    /// OPCODE.
    pub opcode: u8,
    /// AA: authoritative answer.
    pub authoritative: bool,
    /// TC: truncated.
    pub truncated: bool,
    /// RD: recursion desired.
    pub recursion_desired: bool,
    /// RA: recursion available.
    pub recursion_available: bool,
    /// The two reserved bits (0x0060), kept so packets round-trip.
    pub reserved: u8,
    /// B: broadcast.
    pub broadcast: bool,
    /// RCODE.
    pub rcode: u8,
}

impl Flags {
    /// Splits a flags word.
    pub const fn from_word(w: u16) -> Self {
        Self {
            response: w & 0x8000 != 0,
            opcode: ((w >> 11) & 0xF) as u8,
            authoritative: w & 0x0400 != 0,
            truncated: w & 0x0200 != 0,
            recursion_desired: w & 0x0100 != 0,
            recursion_available: w & 0x0080 != 0,
            reserved: ((w >> 5) & 0x3) as u8,
            broadcast: w & 0x0010 != 0,
            rcode: (w & 0xF) as u8,
        }
    }

    /// Joins the flags into a word.
    pub const fn to_word(self) -> u16 {
        (self.response as u16) << 15
            | ((self.opcode as u16) & 0xF) << 11
            | (self.authoritative as u16) << 10
            | (self.truncated as u16) << 9
            | (self.recursion_desired as u16) << 8
            | (self.recursion_available as u16) << 7
            | ((self.reserved as u16) & 0x3) << 5
            | (self.broadcast as u16) << 4
            | ((self.rcode as u16) & 0xF)
    }

    /// The opcode as a typed code.
    pub const fn opcode(self) -> Opcode {
        Opcode(self.opcode)
    }

    /// The response code as a typed code.
    pub const fn rcode(self) -> Rcode {
        Rcode(self.rcode)
    }
}

/// Question and record types.
pub mod rr_type {
    /// IP address record (unused by NetBIOS, listed by the RFC).
    pub const A: u16 = 0x0001;
    /// Name server record.
    pub const NS: u16 = 0x0002;
    /// Null record (negative query responses).
    pub const NULL: u16 = 0x000A;
    /// NetBIOS general name service record.
    pub const NB: u16 = 0x0020;
    /// NetBIOS node status.
    pub const NBSTAT: u16 = 0x0021;
    /// The Internet class.
    pub const CLASS_IN: u16 = 0x0001;
}

/// Owner node type in NB_FLAGS and node status NAME_FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeType(pub u8);

impl NodeType {
    /// B-node (broadcast).
    pub const B: Self = Self(0);
    /// P-node (point to point, WINS).
    pub const P: Self = Self(1);
    /// M-node (mixed).
    pub const M: Self = Self(2);
    /// H-node (hybrid; Microsoft's use of the reserved value).
    pub const H: Self = Self(3);
}

/// One NB address entry: NB_FLAGS and an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NbEntry {
    /// The whole NB_FLAGS word (G 0x8000, ONT 0x6000, others zero).
    pub flags: u16,
    /// The address.
    pub address: Ipv4Addr,
}

impl NbEntry {
    /// A unique (`group = false`) or group name of a node of `node_type` at `address`.
    pub const fn new(group: bool, node_type: NodeType, address: Ipv4Addr) -> Self {
        Self {
            flags: (group as u16) << 15 | ((node_type.0 as u16) & 3) << 13,
            address,
        }
    }

    /// Whether the name is a group name.
    pub const fn is_group(&self) -> bool {
        self.flags & 0x8000 != 0
    }
}

/// NAME_FLAGS bits of a node status entry.
pub mod name_flags {
    /// Group name.
    pub const GROUP: u16 = 0x8000;
    /// Being deregistered.
    pub const DEREGISTERING: u16 = 0x1000;
    /// In conflict.
    pub const CONFLICT: u16 = 0x0800;
    /// Active (always set).
    pub const ACTIVE: u16 = 0x0400;
    /// Permanent node name.
    pub const PERMANENT: u16 = 0x0200;
}

/// One name of a node status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeName {
    /// The 16-byte name (not first-level encoded on the wire).
    pub name: NetbiosName,
    /// NAME_FLAGS.
    pub flags: u16,
}

/// Node status RDATA: the name table and the statistics block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The names.
    pub names: Vec<NodeName>,
    /// The statistics bytes as sent (46 normally; first 6 are the MAC).
    pub statistics: Vec<u8>,
}

impl NodeStatus {
    /// A status with `names` and a statistics block carrying `mac`, the rest zero.
    pub fn new(names: Vec<NodeName>, mac: [u8; 6]) -> Self {
        let mut statistics = vec![0u8; STATISTICS_LEN];
        statistics[..6].copy_from_slice(&mac);
        Self { names, statistics }
    }

    /// The UNIT_ID (MAC address), if the statistics block has one.
    pub fn unit_id(&self) -> Option<[u8; 6]> {
        self.statistics.first_chunk::<6>().copied()
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = usize::from(r.u8("node status name count")?);
        if count > MAX_NODE_NAMES || count * 18 > r.remaining() {
            return Err(DecodeError::TooLong {
                field: "node status names",
                len: count,
                max: MAX_NODE_NAMES.min(r.remaining() / 18),
            });
        }
        let mut names = Vec::with_capacity(count);
        for _ in 0..count {
            names.push(NodeName {
                name: NetbiosName::from_raw(r.array("node name")?),
                flags: r.u16_be("node name flags")?,
            });
        }
        Ok(Self {
            names,
            statistics: r.rest().to_vec(),
        })
    }

    fn buffer_len(&self) -> usize {
        1 + 18 * self.names.len() + self.statistics.len()
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.names.len() > MAX_NODE_NAMES {
            return Err(EncodeError::TooLong {
                field: "node status names",
                len: self.names.len(),
                max: MAX_NODE_NAMES,
            });
        }
        out.push(self.names.len() as u8);
        for n in &self.names {
            out.extend_from_slice(n.name.as_raw());
            out.extend_from_slice(&n.flags.to_be_bytes());
        }
        out.extend_from_slice(&self.statistics);
        Ok(())
    }
}

/// Typed RDATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// NB address entries.
    Nb(Vec<NbEntry>),
    /// Node status.
    NodeStatus(NodeStatus),
    /// WACK: the flags word of the request being acknowledged.
    Wack(u16),
    /// Bytes of any other record, kept as they are.
    Raw(Vec<u8>),
}

impl RData {
    fn buffer_len(&self) -> usize {
        match self {
            Self::Nb(entries) => 6 * entries.len(),
            Self::NodeStatus(s) => s.buffer_len(),
            Self::Wack(_) => 2,
            Self::Raw(b) => b.len(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Nb(entries) => {
                for e in entries {
                    out.extend_from_slice(&e.flags.to_be_bytes());
                    out.extend_from_slice(&e.address.octets());
                }
            }
            Self::NodeStatus(s) => s.emit(out)?,
            Self::Wack(w) => out.extend_from_slice(&w.to_be_bytes()),
            Self::Raw(b) => out.extend_from_slice(b),
        }
        Ok(())
    }
}

/// A question entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked about.
    pub name: WireName,
    /// NB or NBSTAT.
    pub qtype: u16,
    /// IN.
    pub qclass: u16,
}

/// A resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// RR_NAME.
    pub name: WireName,
    /// Write RR_NAME as the pointer `C0 0C` to the question name.
    pub name_is_pointer: bool,
    /// RR_TYPE.
    pub rr_type: u16,
    /// RR_CLASS.
    pub rr_class: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA.
    pub rdata: RData,
}

impl ResourceRecord {
    /// A full-name record of class IN.
    pub const fn new(name: WireName, rr_type: u16, ttl: u32, rdata: RData) -> Self {
        Self {
            name,
            name_is_pointer: false,
            rr_type,
            rr_class: rr_type::CLASS_IN,
            ttl,
            rdata,
        }
    }
}

/// A name service packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// NAME_TRN_ID.
    pub trn_id: u16,
    /// The flags word.
    pub flags: Flags,
    /// Questions.
    pub questions: Vec<Question>,
    /// Answer records.
    pub answers: Vec<ResourceRecord>,
    /// Authority records.
    pub authority: Vec<ResourceRecord>,
    /// Additional records.
    pub additional: Vec<ResourceRecord>,
}

fn read_section_count(r: &mut Reader<'_>, field: &'static str) -> Result<usize, DecodeError> {
    let n = usize::from(r.u16_be(field)?);
    if n > MAX_SECTION_ENTRIES {
        return Err(DecodeError::TooLong {
            field,
            len: n,
            max: MAX_SECTION_ENTRIES,
        });
    }
    Ok(n)
}

fn read_record(
    r: &mut Reader<'_>,
    opcode: Opcode,
    has_question: bool,
) -> Result<ResourceRecord, DecodeError> {
    let start = r.position();
    // Only a pointer to the question name is remembered (and re-emitted).
    let pointer = has_question
        && r.buffer().get(start..start + 2) == Some(&[0xC0, QUESTION_NAME_OFFSET as u8][..]);
    let name = WireName::read(r)?;
    let rr_type = r.u16_be("rr type")?;
    let rr_class = r.u16_be("rr class")?;
    let ttl = r.u32_be("rr ttl")?;
    let len = usize::from(r.u16_be("rdlength")?);
    let mut d = r.sub(len, "rdata")?;
    let rdata = if rr_type == rr_type::NBSTAT && len > 0 {
        let mut probe = d.clone();
        match NodeStatus::read(&mut probe) {
            Ok(status) => {
                d.rest();
                RData::NodeStatus(status)
            }
            Err(_) => RData::Raw(d.rest().to_vec()),
        }
    } else if rr_type == rr_type::NB && opcode == Opcode::WACK && len == 2 {
        RData::Wack(d.u16_be("wack flags")?)
    } else if rr_type == rr_type::NB && len % 6 == 0 && len > 0 {
        let mut entries = Vec::with_capacity(len / 6);
        while d.remaining() > 0 {
            entries.push(NbEntry {
                flags: d.u16_be("nb flags")?,
                address: Ipv4Addr::from(d.u32_be("nb address")?),
            });
        }
        RData::Nb(entries)
    } else {
        RData::Raw(d.rest().to_vec())
    };
    Ok(ResourceRecord {
        name,
        name_is_pointer: pointer,
        rr_type,
        rr_class,
        ttl,
        rdata,
    })
}

impl Packet {
    /// Parses a whole datagram; trailing bytes are an error.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        if data.len() > MAX_PACKET_LEN {
            return Err(DecodeError::TooLong {
                field: "name service packet",
                len: data.len(),
                max: MAX_PACKET_LEN,
            });
        }
        let mut r = Reader::new(data);
        let trn_id = r.u16_be("trn id")?;
        let flags = Flags::from_word(r.u16_be("flags")?);
        let qd = read_section_count(&mut r, "qdcount")?;
        let an = read_section_count(&mut r, "ancount")?;
        let ns = read_section_count(&mut r, "nscount")?;
        let ar = read_section_count(&mut r, "arcount")?;
        // Each entry takes at least 6 bytes (a pointer and type/class).
        if (qd + an + ns + ar) * 6 > r.remaining() {
            return Err(DecodeError::Truncated {
                field: "name service sections",
            });
        }
        let mut questions = Vec::with_capacity(qd);
        for _ in 0..qd {
            questions.push(Question {
                name: WireName::read(&mut r)?,
                qtype: r.u16_be("question type")?,
                qclass: r.u16_be("question class")?,
            });
        }
        let opcode = flags.opcode();
        let mut section = |n: usize| -> Result<Vec<ResourceRecord>, DecodeError> {
            (0..n)
                .map(|_| read_record(&mut r, opcode, qd > 0))
                .collect()
        };
        let answers = section(an)?;
        let authority = section(ns)?;
        let additional = section(ar)?;
        r.finish("name service packet")?;
        let packet = Self {
            trn_id,
            flags,
            questions,
            answers,
            authority,
            additional,
        };
        // Names reached through pointers are written out in full (only a
        // record's pointer to the question name is kept), so a small packet
        // of many pointers could grow past what may be sent back.
        let len = packet.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(DecodeError::TooLong {
                field: "name service packet with its names expanded",
                len,
                max: MAX_PACKET_LEN,
            });
        }
        Ok(packet)
    }

    /// The number of bytes [`Packet::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let question_name = self.questions.first().map(|q| &q.name);
        let questions: usize = self.questions.iter().map(|q| q.name.buffer_len() + 4).sum();
        let records: usize = self
            .answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
            .map(|rr| {
                let name = if rr.name_is_pointer && question_name == Some(&rr.name) {
                    2
                } else {
                    rr.name.buffer_len()
                };
                name + 10 + rr.rdata.buffer_len()
            })
            .sum();
        HEADER_LEN + questions + records
    }

    /// Writes the packet.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&self.trn_id.to_be_bytes());
        out.extend_from_slice(&self.flags.to_word().to_be_bytes());
        for n in [
            self.questions.len(),
            self.answers.len(),
            self.authority.len(),
            self.additional.len(),
        ] {
            if n > MAX_SECTION_ENTRIES {
                return Err(EncodeError::TooLong {
                    field: "name service section",
                    len: n,
                    max: MAX_SECTION_ENTRIES,
                });
            }
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        for q in &self.questions {
            q.name.emit(out)?;
            out.extend_from_slice(&q.qtype.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        let question_name = self.questions.first().map(|q| &q.name);
        for rr in self
            .answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
        {
            if rr.name_is_pointer && question_name == Some(&rr.name) {
                out.extend_from_slice(&[0xC0, QUESTION_NAME_OFFSET as u8]);
            } else {
                rr.name.emit(out)?;
            }
            out.extend_from_slice(&rr.rr_type.to_be_bytes());
            out.extend_from_slice(&rr.rr_class.to_be_bytes());
            out.extend_from_slice(&rr.ttl.to_be_bytes());
            let len = rr.rdata.buffer_len();
            let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong {
                field: "rdata",
                len,
                max: usize::from(u16::MAX),
            })?;
            out.extend_from_slice(&len16.to_be_bytes());
            rr.rdata.emit(out)?;
        }
        let written = out.len() - start;
        if written > MAX_PACKET_LEN {
            return Err(EncodeError::TooLong {
                field: "name service packet",
                len: written,
                max: MAX_PACKET_LEN,
            });
        }
        Ok(())
    }

    /// The packet as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }

    fn request(trn_id: u16, flags: Flags, name: WireName, qtype: u16) -> Self {
        Self {
            trn_id,
            flags,
            questions: vec![Question {
                name,
                qtype,
                qclass: rr_type::CLASS_IN,
            }],
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    fn response(trn_id: u16, flags: Flags, record: ResourceRecord) -> Self {
        Self {
            trn_id,
            flags,
            questions: Vec::new(),
            answers: vec![record],
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    /// Name query: broadcast (flags 0x0110, RD and B) or unicast (0x0000).
    pub fn name_query(trn_id: u16, name: NetbiosName, broadcast: bool) -> Self {
        let flags = Flags::from_word(if broadcast { 0x0110 } else { 0x0000 });
        Self::request(trn_id, flags, name.into(), rr_type::NB)
    }

    /// Positive query response (flags 0x8580, as nmbd answers).
    pub fn positive_query_response(
        trn_id: u16,
        name: WireName,
        ttl: u32,
        entries: Vec<NbEntry>,
    ) -> Self {
        let record = ResourceRecord::new(name, rr_type::NB, ttl, RData::Nb(entries));
        Self::response(trn_id, Flags::from_word(0x8580), record)
    }

    /// Negative query response (flags 0x8583, NAM_ERR, NULL record).
    pub fn negative_query_response(trn_id: u16, name: WireName) -> Self {
        let record = ResourceRecord::new(name, rr_type::NULL, 0, RData::Raw(Vec::new()));
        Self::response(trn_id, Flags::from_word(0x8583), record)
    }

    fn claim(trn_id: u16, flags: u16, name: NetbiosName, ttl: u32, entry: NbEntry) -> Self {
        let mut p = Self::request(trn_id, Flags::from_word(flags), name.into(), rr_type::NB);
        let mut rr = ResourceRecord::new(name.into(), rr_type::NB, ttl, RData::Nb(vec![entry]));
        rr.name_is_pointer = true;
        p.additional.push(rr);
        p
    }

    /// Broadcast name registration (flags 0x2910, TTL 0, RR_NAME = `C0 0C`).
    pub fn registration_request(trn_id: u16, name: NetbiosName, entry: NbEntry) -> Self {
        Self::claim(trn_id, 0x2910, name, 0, entry)
    }

    /// Name overwrite demand (a broadcast registration without RD, 0x2810).
    pub fn overwrite_demand(trn_id: u16, name: NetbiosName, entry: NbEntry) -> Self {
        Self::claim(trn_id, 0x2810, name, 0, entry)
    }

    /// Broadcast name release (flags 0x3010, TTL 0).
    pub fn release_request(trn_id: u16, name: NetbiosName, entry: NbEntry) -> Self {
        Self::claim(trn_id, 0x3010, name, 0, entry)
    }

    /// Name refresh to a WINS server (opcode 8, unicast).
    pub fn refresh_request(trn_id: u16, name: NetbiosName, ttl: u32, entry: NbEntry) -> Self {
        Self::claim(trn_id, 0x4000, name, ttl, entry)
    }

    /// Registration response: positive (0xAD80) or negative with `rcode`
    /// (ACT_ERR 0xAD86 defends a name), RDATA copied from the request.
    pub fn registration_response(
        trn_id: u16,
        name: WireName,
        rcode: Rcode,
        ttl: u32,
        entry: NbEntry,
    ) -> Self {
        let record = ResourceRecord::new(name, rr_type::NB, ttl, RData::Nb(vec![entry]));
        Self::response(
            trn_id,
            Flags::from_word(0xAD80 | u16::from(rcode.0 & 0xF)),
            record,
        )
    }

    /// Name conflict demand (0xAD87, TTL 0, address 0.0.0.0).
    pub fn conflict_demand(trn_id: u16, name: WireName, nb_flags: u16) -> Self {
        let entry = NbEntry {
            flags: nb_flags,
            address: Ipv4Addr::UNSPECIFIED,
        };
        let record = ResourceRecord::new(name, rr_type::NB, 0, RData::Nb(vec![entry]));
        Self::response(trn_id, Flags::from_word(0xAD87), record)
    }

    /// Release response (0xB400 | rcode).
    pub fn release_response(trn_id: u16, name: WireName, rcode: Rcode, entry: NbEntry) -> Self {
        let record = ResourceRecord::new(name, rr_type::NB, 0, RData::Nb(vec![entry]));
        Self::response(
            trn_id,
            Flags::from_word(0xB400 | u16::from(rcode.0 & 0xF)),
            record,
        )
    }

    /// WACK (0xBC00): wait `ttl` seconds for the answer to a request with `request_flags`.
    pub fn wack(trn_id: u16, name: WireName, ttl: u32, request_flags: u16) -> Self {
        let record = ResourceRecord::new(name, rr_type::NB, ttl, RData::Wack(request_flags));
        Self::response(trn_id, Flags::from_word(0xBC00), record)
    }

    /// Node status request for `name` (usually `*<00>`); nbtscan sets B (0x0010).
    pub fn node_status_request(trn_id: u16, name: NetbiosName, broadcast_flag: bool) -> Self {
        let flags = Flags::from_word(if broadcast_flag { 0x0010 } else { 0x0000 });
        Self::request(trn_id, flags, name.into(), rr_type::NBSTAT)
    }

    /// Node status response (0x8400, TTL 0).
    pub fn node_status_response(trn_id: u16, name: WireName, status: NodeStatus) -> Self {
        let record = ResourceRecord::new(name, rr_type::NBSTAT, 0, RData::NodeStatus(status));
        Self::response(trn_id, Flags::from_word(0x8400), record)
    }

    /// The first question, if any.
    pub fn question(&self) -> Option<&Question> {
        self.questions.first()
    }
}

impl fmt::Display for Packet {
    /// One line for logs, e.g. `query ALICE<03> trn=0x1234 bcast`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (self.flags.opcode(), self.flags.response) {
            (Opcode::QUERY, false)
                if self.question().is_some_and(|q| q.qtype == rr_type::NBSTAT) =>
            {
                "node-status"
            }
            (Opcode::QUERY, false) => "query",
            (Opcode::QUERY, true) => "query-response",
            (Opcode::REGISTRATION, false) => "registration",
            (Opcode::REGISTRATION, true) => "registration-response",
            (Opcode::RELEASE, false) => "release",
            (Opcode::RELEASE, true) => "release-response",
            (Opcode::WACK, _) => "wack",
            (Opcode::REFRESH | Opcode::REFRESH_ALT, _) => "refresh",
            _ => "opcode",
        };
        write!(f, "{kind}")?;
        if let Some(name) = self
            .question()
            .map(|q| &q.name)
            .or(self.answers.first().map(|r| &r.name))
        {
            write!(f, " {name}")?;
        }
        write!(f, " trn=0x{:04x}", self.trn_id)?;
        if self.flags.rcode != 0 {
            write!(f, " rcode={}", self.flags.rcode)?;
        }
        if self.flags.broadcast {
            write!(f, " bcast")?;
        }
        Ok(())
    }
}

/// Fuzz entry point: parse, and the emit/parse round trip.
#[doc(hidden)]
pub fn fuzz_nbns(data: &[u8]) {
    if let Ok(packet) = Packet::parse(data) {
        let bytes = packet.to_bytes().expect("a parsed packet re-encodes");
        assert_eq!(bytes.len(), packet.buffer_len());
        assert_eq!(Packet::parse(&bytes).expect("re-parse"), packet);
    }
}

/// Fuzz entry point for names: read (with pointers) and the emit/read round trip.
#[doc(hidden)]
pub fn fuzz_name(data: &[u8]) {
    if let Ok(name) = WireName::read(&mut Reader::new(data)) {
        let mut out = Vec::new();
        if name.emit(&mut out).is_ok() {
            assert_eq!(out.len(), name.buffer_len());
            assert_eq!(
                WireName::read(&mut Reader::new(&out)).expect("re-read"),
                name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use proptest::prelude::*;

    fn alice() -> NetbiosName {
        NetbiosName::new("ALICE", 3).unwrap()
    }
    fn ip10() -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, 10)
    }

    #[test]
    fn digest_vectors() {
        let alice_enc = format!("20 {} 00", hex_of(b"EBEMEJEDEFCACACACACACACACACACAAD"));
        let star_enc = format!("20 {} 00", hex_of(b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let query = hex(&format!(
            "1234 0110 0001 0000 0000 0000 {alice_enc} 0020 0001"
        ));
        assert_eq!(
            Packet::name_query(0x1234, alice(), true)
                .to_bytes()
                .unwrap(),
            query
        );
        assert_eq!(
            Packet::parse(&query).unwrap(),
            Packet::name_query(0x1234, alice(), true)
        );

        let unique_b = NbEntry::new(false, NodeType::B, ip10());
        let positive = hex(&format!(
            "1234 8580 0000 0001 0000 0000 {alice_enc} 0020 0001 000493E0 0006 0000 C000020A"
        ));
        let p = Packet::positive_query_response(0x1234, alice().into(), 300_000, vec![unique_b]);
        assert_eq!(p.to_bytes().unwrap(), positive);
        assert_eq!(Packet::parse(&positive).unwrap(), p);

        let reg = hex(&format!("4321 2910 0001 0000 0000 0001 {alice_enc} 0020 0001 C00C 0020 0001 00000000 0006 0000 C000020A"));
        let p = Packet::registration_request(0x4321, alice(), unique_b);
        assert_eq!(p.to_bytes().unwrap(), reg);
        assert_eq!(Packet::parse(&reg).unwrap(), p);

        let defend = hex(&format!(
            "4321 AD86 0000 0001 0000 0000 {alice_enc} 0020 0001 00000000 0006 0000 C000020A"
        ));
        let p = Packet::registration_response(0x4321, alice().into(), Rcode::ACT_ERR, 0, unique_b);
        assert_eq!(p.to_bytes().unwrap(), defend);

        let mut release = reg.clone();
        release[..4].copy_from_slice(&[0x43, 0x22, 0x30, 0x10]);
        assert_eq!(
            Packet::release_request(0x4322, alice(), unique_b)
                .to_bytes()
                .unwrap(),
            release
        );

        let status_req = hex(&format!(
            "0ABC 0000 0001 0000 0000 0000 {star_enc} 0021 0001"
        ));
        assert_eq!(
            Packet::node_status_request(0x0ABC, NetbiosName::WILDCARD, false)
                .to_bytes()
                .unwrap(),
            status_req
        );
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    #[test]
    fn node_status_vector() {
        let nn = |n: &str, s: u8, flags: u16| NodeName {
            name: NetbiosName::new(n, s).unwrap(),
            flags,
        };
        let status = NodeStatus::new(
            vec![
                nn("HOST1", 0, 0x0400),
                nn("HOST1", 3, 0x0400),
                nn("HOST1", 0x20, 0x0400),
                nn("ALICE", 3, 0x0400),
                nn("WORKGROUP", 0, 0x8400),
            ],
            [0; 6],
        );
        let p = Packet::node_status_response(0x0ABC, NetbiosName::WILDCARD.into(), status);
        let bytes = p.to_bytes().unwrap();
        assert_eq!(bytes.len(), 193);
        assert_eq!(&bytes[54..58], &[0x00, 0x89, 0x05, b'H']);
        assert_eq!(Packet::parse(&bytes).unwrap(), p);
        assert_eq!(p.to_string(), "query-response *<00> trn=0x0abc");
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(Packet::parse(&[0x12]).is_err());
        // Counts larger than the bytes present.
        assert!(Packet::parse(&hex("1234 0110 0010 0000 0000 0000")).is_err());
        assert!(Packet::parse(&hex("1234 0110 FFFF 0000 0000 0000")).is_err());
        // Trailing bytes.
        let mut q = Packet::name_query(1, alice(), true).to_bytes().unwrap();
        q.push(0);
        assert!(Packet::parse(&q).is_err());
        // A name that is not first-level encoded.
        let mut q = Packet::name_query(1, alice(), true).to_bytes().unwrap();
        q[13] = b'Z';
        assert!(Packet::parse(&q).is_err());
        assert!(Packet::parse(&vec![0u8; 2000]).is_err());
    }

    #[test]
    fn pointers_that_would_expand_past_the_packet_limit_are_refused() {
        // One question with a long scope, then questions that only point back
        // at it: 300 bytes on the wire, over 2,000 once written out again
        // (found by the nbns fuzz target).
        let label = format!("3F {}", "78 ".repeat(63));
        let long_name = format!("20 {} {label} {label} {label} 00", "41 ".repeat(32));
        let question = format!("{long_name} 0020 0001");
        let repeat = |n: usize| "C00C 0020 0001 ".repeat(n);
        let packet = hex(&format!(
            "0AF1 0110 0009 0000 0000 0000 {question} {}",
            repeat(8)
        ));
        assert!(packet.len() < MAX_PACKET_LEN);
        assert!(matches!(
            Packet::parse(&packet),
            Err(DecodeError::TooLong {
                max: MAX_PACKET_LEN,
                ..
            })
        ));
        // Fewer pointers fit, parse, and round-trip.
        let packet = hex(&format!(
            "0AF1 0110 0002 0000 0000 0000 {question} {}",
            repeat(1)
        ));
        let parsed = Packet::parse(&packet).unwrap();
        assert_eq!(parsed.questions.len(), 2);
        let bytes = parsed.to_bytes().unwrap();
        assert_eq!(bytes.len(), parsed.buffer_len());
        assert_eq!(Packet::parse(&bytes).unwrap(), parsed);
    }

    fn arb_name() -> impl Strategy<Value = NetbiosName> {
        (proptest::array::uniform16(any::<u8>())).prop_map(NetbiosName::from_raw)
    }

    fn arb_record() -> impl Strategy<Value = ResourceRecord> {
        (
            arb_name(),
            any::<u32>(),
            proptest::collection::vec((any::<u16>(), any::<u32>()), 1..4),
        )
            .prop_map(|(n, ttl, e)| {
                let entries = e
                    .into_iter()
                    .map(|(f, a)| NbEntry {
                        flags: f,
                        address: Ipv4Addr::from(a),
                    })
                    .collect();
                ResourceRecord::new(n.into(), rr_type::NB, ttl, RData::Nb(entries))
            })
    }

    proptest! {
        #[test]
        fn packets_round_trip(trn in any::<u16>(), flags in any::<u16>(), q in arb_name(),
                              answers in proptest::collection::vec(arb_record(), 0..3)) {
            let mut p = Packet::name_query(trn, q, false);
            p.flags = Flags::from_word(flags);
            // Opcode WACK changes how 2-byte NB records read; keep these generic.
            prop_assume!(p.flags.opcode() != Opcode::WACK);
            p.answers = answers;
            let bytes = p.to_bytes().unwrap();
            prop_assert_eq!(Packet::parse(&bytes).unwrap(), p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_nbns(&data);
            fuzz_name(&data);
        }

        #[test]
        fn flags_word_round_trips(w in any::<u16>()) {
            prop_assert_eq!(Flags::from_word(w).to_word(), w);
        }
    }
}

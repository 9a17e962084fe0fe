//! The Browser protocol's `\MAILSLOT\BROWSE` frames (MS-BRWS §2.2), carried as
//! the data of a mailslot write ([`crate::smb::mailslot::MailslotWrite`]).
//!
//! HostAnnouncement (0x01), LocalMasterAnnouncement (0x0F) and
//! DomainAnnouncement (0x0C) share one layout: opcode, update count,
//! periodicity in milliseconds, a 16-byte NUL-padded name, OS version, the
//! `SV_TYPE_*` bits, browser version, the 0xAA55 signature and a NUL-terminated
//! comment (in a DomainAnnouncement: the master browser's name).
//! AnnouncementRequest (0x02) is a flags byte and a response name. The other
//! opcodes a non-browser host hears (elections, backup lists, …) are
//! recognised and kept as bytes, for the caller to ignore.

use crate::error::{DecodeError, EncodeError};
use crate::reader::Reader;

/// The browser's mailslot.
pub const BROWSE: &[u8] = b"\\MAILSLOT\\BROWSE";
/// Largest comment accepted on receipt (Samba sends at most 48 characters;
/// anything up to this bound is read, longer is refused).
pub const MAX_COMMENT: usize = 255;
/// Largest comment netsend announces: Samba's LAN Manager parser reads 43.
pub const MAX_SENT_COMMENT: usize = 43;
/// Largest response part of an AnnouncementRequest (a name of at most 16
/// bytes, with the padding byte Samba leaves before it, and its NUL).
pub const MAX_RESPONSE: usize = 32;
/// Largest body kept for an opcode netsend ignores (a whole datagram fits).
pub const MAX_IGNORED_BODY: usize = 1472;
/// The announcement signature (Samba's `BROWSER_CONSTANT`).
pub const SIGNATURE: u16 = 0xAA55;
/// Bytes of an announcement before its comment.
const ANNOUNCEMENT_FIXED: usize = 32;

/// Whether `name` is `\MAILSLOT\BROWSE`, in any case.
pub fn is_browse_mailslot(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(BROWSE)
}

/// The opcodes of `\MAILSLOT\BROWSE` (MS-BRWS §2.2; Samba `nameserv.h`).
pub mod opcode {
    /// HostAnnouncement.
    pub const HOST_ANNOUNCEMENT: u8 = 0x01;
    /// AnnouncementRequest.
    pub const ANNOUNCEMENT_REQUEST: u8 = 0x02;
    /// RequestElection.
    pub const ELECTION: u8 = 0x08;
    /// GetBackupListRequest.
    pub const GET_BACKUP_LIST_REQUEST: u8 = 0x09;
    /// GetBackupListResponse.
    pub const GET_BACKUP_LIST_RESPONSE: u8 = 0x0A;
    /// BecomeBackup.
    pub const BECOME_BACKUP: u8 = 0x0B;
    /// DomainAnnouncement (a workgroup announcement).
    pub const DOMAIN_ANNOUNCEMENT: u8 = 0x0C;
    /// MasterAnnouncement.
    pub const MASTER_ANNOUNCEMENT: u8 = 0x0D;
    /// ResetStateRequest.
    pub const RESET_BROWSER_STATE: u8 = 0x0E;
    /// LocalMasterAnnouncement.
    pub const LOCAL_MASTER_ANNOUNCEMENT: u8 = 0x0F;
    /// The opcodes recognised but not acted on by a non-browser host.
    pub const IGNORED: [u8; 6] = [
        ELECTION,
        GET_BACKUP_LIST_REQUEST,
        GET_BACKUP_LIST_RESPONSE,
        BECOME_BACKUP,
        MASTER_ANNOUNCEMENT,
        RESET_BROWSER_STATE,
    ];
}

/// The `SV_TYPE_*` server type bits (MS-RAP / Samba `misc.idl`).
pub mod server_type {
    /// A workstation.
    pub const WORKSTATION: u32 = 0x0000_0001;
    /// A file server.
    pub const SERVER: u32 = 0x0000_0002;
    /// A domain controller.
    pub const DOMAIN_CTRL: u32 = 0x0000_0008;
    /// A print queue server.
    pub const PRINTQ_SERVER: u32 = 0x0000_0200;
    /// A Unix (Xenix) server.
    pub const SERVER_UNIX: u32 = 0x0000_0800;
    /// Windows NT.
    pub const NT: u32 = 0x0000_1000;
    /// A Windows NT server.
    pub const SERVER_NT: u32 = 0x0000_8000;
    /// May become a browser.
    pub const POTENTIAL_BROWSER: u32 = 0x0001_0000;
    /// A backup browser.
    pub const BACKUP_BROWSER: u32 = 0x0002_0000;
    /// A (local) master browser.
    pub const MASTER_BROWSER: u32 = 0x0004_0000;
    /// A domain master browser.
    pub const DOMAIN_MASTER: u32 = 0x0008_0000;
    /// Learned entries in a browse list; never sent on the wire.
    pub const LOCAL_LIST_ONLY: u32 = 0x4000_0000;
    /// A workgroup or domain entry.
    pub const DOMAIN_ENUM: u32 = 0x8000_0000;
    /// Every type (`SV_TYPE_ALL`).
    pub const ALL: u32 = 0xFFFF_FFFF;
}

/// Which of the three announcements a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnouncementKind {
    /// 0x01: a host announcing itself to its workgroup's master browser.
    Host,
    /// 0x0F: a local master browser announcing itself.
    LocalMaster,
    /// 0x0C: a master browser announcing its workgroup.
    Domain,
}

impl AnnouncementKind {
    /// The opcode.
    pub const fn opcode(self) -> u8 {
        match self {
            Self::Host => opcode::HOST_ANNOUNCEMENT,
            Self::LocalMaster => opcode::LOCAL_MASTER_ANNOUNCEMENT,
            Self::Domain => opcode::DOMAIN_ANNOUNCEMENT,
        }
    }
}

/// A Host, LocalMaster or Domain announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Which announcement.
    pub kind: AnnouncementKind,
    /// UpdateCount (sent 0, ignored on receipt).
    pub update_count: u8,
    /// Milliseconds until the sender's next announcement.
    pub periodicity_ms: u32,
    /// The 16-byte name field, NUL-padded (the workgroup in a
    /// DomainAnnouncement).
    pub name_field: [u8; 16],
    /// OS major version.
    pub os_major: u8,
    /// OS minor version.
    pub os_minor: u8,
    /// The `SV_TYPE_*` bits; 0 means "going down".
    pub server_type: u32,
    /// Browser protocol major version (15).
    pub browser_major: u8,
    /// Browser protocol minor version (1).
    pub browser_minor: u8,
    /// Signature (0xAA55; not checked on receipt, as nmbd does not).
    pub signature: u16,
    /// The comment (in a DomainAnnouncement, the master browser's name),
    /// without its NUL.
    pub comment: Vec<u8>,
    /// Bytes after the comment's NUL (some senders pad), kept as sent.
    pub trailing: Vec<u8>,
}

impl Announcement {
    /// An announcement as netsend sends it: OS 6.1 and browser 15.1 like
    /// Samba, the name upper-cased and NUL-padded.
    pub fn new(
        kind: AnnouncementKind,
        name: &[u8],
        server_type: u32,
        periodicity_ms: u32,
        comment: &[u8],
    ) -> Result<Self, EncodeError> {
        if name.len() > 15 || name.contains(&0) {
            return Err(EncodeError::Unencodable {
                field: "announcement name",
                reason: "at most 15 bytes without NUL",
            });
        }
        if comment.len() > MAX_SENT_COMMENT {
            return Err(EncodeError::TooLong {
                field: "announcement comment",
                len: comment.len(),
                max: MAX_SENT_COMMENT,
            });
        }
        let mut name_field = [0u8; 16];
        for (slot, b) in name_field.iter_mut().zip(name) {
            *slot = b.to_ascii_uppercase();
        }
        Ok(Self {
            kind,
            update_count: 0,
            periodicity_ms,
            name_field,
            os_major: 6,
            os_minor: 1,
            server_type,
            browser_major: 15,
            browser_minor: 1,
            signature: SIGNATURE,
            comment: comment.to_vec(),
            trailing: Vec::new(),
        })
    }

    /// The name: the name field up to its first NUL.
    pub fn name(&self) -> &[u8] {
        let end = self.name_field.iter().position(|&b| b == 0).unwrap_or(16);
        &self.name_field[..end]
    }

    fn parse_body(kind: AnnouncementKind, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let update_count = r.u8("update count")?;
        let periodicity_ms = r.u32_le("periodicity")?;
        let name_field = r.array::<16>("server name")?;
        let os_major = r.u8("os major")?;
        let os_minor = r.u8("os minor")?;
        let server_type = r.u32_le("server type")?;
        let browser_major = r.u8("browser major")?;
        let browser_minor = r.u8("browser minor")?;
        let signature = r.u16_le("signature")?;
        let comment = r.cstring(MAX_COMMENT, "comment")?.to_vec();
        let trailing = r.rest().to_vec();
        Ok(Self {
            kind,
            update_count,
            periodicity_ms,
            name_field,
            os_major,
            os_minor,
            server_type,
            browser_major,
            browser_minor,
            signature,
            comment,
            trailing,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.comment.len() > MAX_COMMENT || self.comment.contains(&0) {
            return Err(EncodeError::Unencodable {
                field: "announcement comment",
                reason: "at most 255 bytes without NUL",
            });
        }
        out.reserve(ANNOUNCEMENT_FIXED + self.comment.len() + 1 + self.trailing.len());
        out.push(self.kind.opcode());
        out.push(self.update_count);
        out.extend_from_slice(&self.periodicity_ms.to_le_bytes());
        out.extend_from_slice(&self.name_field);
        out.extend_from_slice(&[self.os_major, self.os_minor]);
        out.extend_from_slice(&self.server_type.to_le_bytes());
        out.extend_from_slice(&[self.browser_major, self.browser_minor]);
        out.extend_from_slice(&self.signature.to_le_bytes());
        out.extend_from_slice(&self.comment);
        out.push(0);
        out.extend_from_slice(&self.trailing);
        Ok(())
    }
}

/// An AnnouncementRequest: "everyone who hears this, announce yourself".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementRequest {
    /// The reserved flags byte (sent 0; Samba puts its workgroup token here).
    pub flags: u8,
    /// The bytes after it, kept as sent: the NUL-terminated ResponseName,
    /// which Samba writes one byte late, after a NUL.
    pub response: Vec<u8>,
}

impl AnnouncementRequest {
    /// A request as netsend sends it: flags 0, `name` and its NUL.
    pub fn new(name: &[u8]) -> Result<Self, EncodeError> {
        if name.len() > 16 || name.contains(&0) {
            return Err(EncodeError::Unencodable {
                field: "response name",
                reason: "at most 16 bytes without NUL",
            });
        }
        let mut response = name.to_vec();
        response.push(0);
        Ok(Self { flags: 0, response })
    }

    /// The response name: the first non-empty NUL-terminated piece (receivers
    /// ignore it; it names the requester in logs).
    pub fn response_name(&self) -> &[u8] {
        self.response
            .split(|&b| b == 0)
            .find(|s| !s.is_empty())
            .unwrap_or_default()
    }
}

/// A `\MAILSLOT\BROWSE` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowseFrame {
    /// 0x01, 0x0F or 0x0C.
    Announcement(Announcement),
    /// 0x02.
    AnnouncementRequest(AnnouncementRequest),
    /// One of [`opcode::IGNORED`], kept as sent.
    Ignored {
        /// The opcode.
        opcode: u8,
        /// The bytes after it.
        body: Vec<u8>,
    },
}

impl BrowseFrame {
    /// Parses the data of a `\MAILSLOT\BROWSE` write.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let op = r.u8("browse opcode")?;
        let kind = match op {
            opcode::HOST_ANNOUNCEMENT => Some(AnnouncementKind::Host),
            opcode::LOCAL_MASTER_ANNOUNCEMENT => Some(AnnouncementKind::LocalMaster),
            opcode::DOMAIN_ANNOUNCEMENT => Some(AnnouncementKind::Domain),
            _ => None,
        };
        if let Some(kind) = kind {
            return Announcement::parse_body(kind, &mut r).map(Self::Announcement);
        }
        match op {
            opcode::ANNOUNCEMENT_REQUEST => {
                let flags = r.u8("request flags")?;
                let response = r.rest();
                if response.len() > MAX_RESPONSE {
                    return Err(DecodeError::TooLong {
                        field: "response name",
                        len: response.len(),
                        max: MAX_RESPONSE,
                    });
                }
                Ok(Self::AnnouncementRequest(AnnouncementRequest {
                    flags,
                    response: response.to_vec(),
                }))
            }
            op if opcode::IGNORED.contains(&op) => {
                let body = r.rest();
                if body.len() > MAX_IGNORED_BODY {
                    return Err(DecodeError::TooLong {
                        field: "browse frame",
                        len: body.len(),
                        max: MAX_IGNORED_BODY,
                    });
                }
                Ok(Self::Ignored {
                    opcode: op,
                    body: body.to_vec(),
                })
            }
            _ => Err(DecodeError::malformed(
                "browse opcode",
                "not a browser opcode",
            )),
        }
    }

    /// The frame's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        match self {
            Self::Announcement(a) => a.emit(&mut out)?,
            Self::AnnouncementRequest(req) => {
                if req.response.len() > MAX_RESPONSE {
                    return Err(EncodeError::TooLong {
                        field: "response name",
                        len: req.response.len(),
                        max: MAX_RESPONSE,
                    });
                }
                out.push(opcode::ANNOUNCEMENT_REQUEST);
                out.push(req.flags);
                out.extend_from_slice(&req.response);
            }
            Self::Ignored { opcode: op, body } => {
                if !opcode::IGNORED.contains(op) || body.len() > MAX_IGNORED_BODY {
                    return Err(EncodeError::Unencodable {
                        field: "browse frame",
                        reason: "not an ignored opcode, or too long",
                    });
                }
                out.push(*op);
                out.extend_from_slice(body);
            }
        }
        Ok(out)
    }
}

/// Fuzz entry point: browse frames, alone and inside a mailslot write.
#[doc(hidden)]
pub fn fuzz_browse(data: &[u8]) {
    if let Ok(f) = BrowseFrame::parse(data) {
        let bytes = f.to_bytes().expect("a parsed frame re-encodes");
        assert_eq!(bytes, data, "browse frames re-encode byte for byte");
        assert_eq!(BrowseFrame::parse(&bytes).expect("re-parse"), f);
    }
    if let Ok(w) = crate::smb::mailslot::MailslotWrite::parse(data) {
        if is_browse_mailslot(&w.name) {
            let _ = BrowseFrame::parse(&w.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn announcement() -> impl Strategy<Value = Announcement> {
        (
            prop_oneof![
                Just(AnnouncementKind::Host),
                Just(AnnouncementKind::LocalMaster),
                Just(AnnouncementKind::Domain)
            ],
            any::<u8>(),
            any::<u32>(),
            any::<[u8; 16]>(),
            any::<(u8, u8, u32, u8, u8, u16)>(),
            proptest::collection::vec(1u8..=255, 0..=MAX_COMMENT),
            proptest::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(
                |(kind, update_count, periodicity_ms, name_field, v, comment, trailing)| {
                    Announcement {
                        kind,
                        update_count,
                        periodicity_ms,
                        name_field,
                        os_major: v.0,
                        os_minor: v.1,
                        server_type: v.2,
                        browser_major: v.3,
                        browser_minor: v.4,
                        signature: v.5,
                        comment,
                        trailing,
                    }
                },
            )
    }

    #[test]
    fn netsend_announcement_layout() {
        let a = Announcement::new(
            AnnouncementKind::Host,
            b"alpha",
            server_type::WORKSTATION | server_type::SERVER_UNIX,
            60_000,
            b"netsend messenger",
        )
        .unwrap();
        let bytes = BrowseFrame::Announcement(a.clone()).to_bytes().unwrap();
        assert_eq!(bytes.len(), 32 + 17 + 1);
        assert_eq!(bytes[0], 0x01);
        assert_eq!(&bytes[2..6], &60_000u32.to_le_bytes());
        assert_eq!(&bytes[6..12], b"ALPHA\0");
        assert_eq!(&bytes[24..28], &[0x01, 0x08, 0, 0]);
        assert_eq!(&bytes[28..32], &[15, 1, 0x55, 0xAA]);
        assert_eq!(a.name(), b"ALPHA");
        assert!(Announcement::new(AnnouncementKind::Host, b"A", 1, 1, &[b'x'; 44]).is_err());
        assert!(Announcement::new(AnnouncementKind::Host, &[b'A'; 16], 1, 1, b"").is_err());
    }

    #[test]
    fn requests_and_ignored_opcodes() {
        // Samba's layout: its token in the flags, the name one byte late.
        let BrowseFrame::AnnouncementRequest(req) =
            BrowseFrame::parse(b"\x02\x01\x00LMBHOST\0").unwrap()
        else {
            panic!("not a request")
        };
        assert_eq!((req.flags, req.response_name()), (1, &b"LMBHOST"[..]));
        let ours = AnnouncementRequest::new(b"ALPHA").unwrap();
        assert_eq!(
            BrowseFrame::AnnouncementRequest(ours).to_bytes().unwrap(),
            b"\x02\x00ALPHA\0"
        );
        assert!(AnnouncementRequest::new(&[b'A'; 17]).is_err());
        assert!(BrowseFrame::parse(&[2, 0].repeat(20)).is_err());
        for op in opcode::IGNORED {
            let f = BrowseFrame::parse(&[op, 1, 2, 3]).unwrap();
            assert!(matches!(f, BrowseFrame::Ignored { opcode, .. } if opcode == op));
        }
        for op in [0x00, 0x03, 0x10, 0xFF] {
            assert!(BrowseFrame::parse(&[op, 0, 0]).is_err());
        }
        assert!(BrowseFrame::parse(b"").is_err());
        let good = BrowseFrame::Announcement(
            Announcement::new(AnnouncementKind::Host, b"A", 1, 1, b"c").unwrap(),
        )
        .to_bytes()
        .unwrap();
        for cut in 0..good.len() {
            assert!(BrowseFrame::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            fuzz_browse(&data);
        }

        #[test]
        fn announcements_round_trip(a in announcement()) {
            let frame = BrowseFrame::Announcement(a);
            let bytes = frame.to_bytes().unwrap();
            prop_assert_eq!(BrowseFrame::parse(&bytes).unwrap(), frame);
        }

        #[test]
        fn requests_round_trip(flags in any::<u8>(), response in proptest::collection::vec(any::<u8>(), 0..=MAX_RESPONSE)) {
            let frame = BrowseFrame::AnnouncementRequest(AnnouncementRequest { flags, response });
            prop_assert_eq!(BrowseFrame::parse(&frame.to_bytes().unwrap()).unwrap(), frame);
        }
    }
}

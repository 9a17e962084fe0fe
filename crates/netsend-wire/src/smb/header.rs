//! The 32-byte SMB1 header (little-endian) and the generic SMB layout that
//! follows it: WordCount, parameter words, ByteCount, data bytes.

use std::fmt;

use crate::error::{DecodeError, EncodeError};
use crate::reader::Reader;

/// Length of the SMB1 header.
pub const HEADER_LEN: usize = 32;
/// The protocol magic `\xFFSMB`.
pub const MAGIC: [u8; 4] = *b"\xFFSMB";
/// Flags bit: this is a reply.
pub const FLAGS_REPLY: u8 = 0x80;
/// Flags bit: case-insensitive path names (echoed by smbd).
pub const FLAGS_CASE_INSENSITIVE: u8 = 0x08;
/// Flags2 bit: the status field is a 32-bit NTSTATUS.
pub const FLAGS2_NT_STATUS: u16 = 0x4000;
/// Flags2 smbd sends with a successful reply (long names, EAs, NT status).
pub const FLAGS2_REPLY_SUCCESS: u16 = 0x4003;
/// Flags2 smbd sends with a DOS error reply.
pub const FLAGS2_REPLY_DOS_ERROR: u16 = 0x0003;

/// An SMB1 command code (open).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SmbCommand(pub u8);

impl SmbCommand {
    /// SMB_COM_TRANSACTION (mailslot writes).
    pub const TRANSACTION: Self = Self(0x25);
    /// SMB_COM_NEGOTIATE.
    pub const NEGOTIATE: Self = Self(0x72);
    /// SMB_COM_SEND_MESSAGE: single-block message.
    pub const SEND_MESSAGE: Self = Self(0xD0);
    /// SMB_COM_SEND_BROADCAST_MESSAGE (LAN Manager; never sent by netsend).
    pub const SEND_BROADCAST_MESSAGE: Self = Self(0xD1);
    /// SMB_COM_FORWARD_USER_NAME.
    pub const FORWARD_USER_NAME: Self = Self(0xD2);
    /// SMB_COM_CANCEL_FORWARD.
    pub const CANCEL_FORWARD: Self = Self(0xD3);
    /// SMB_COM_GET_MACHINE_NAME.
    pub const GET_MACHINE_NAME: Self = Self(0xD4);
    /// SMB_COM_SEND_START_MB_MESSAGE.
    pub const SEND_START_MB_MESSAGE: Self = Self(0xD5);
    /// SMB_COM_SEND_END_MB_MESSAGE.
    pub const SEND_END_MB_MESSAGE: Self = Self(0xD6);
    /// SMB_COM_SEND_TEXT_MB_MESSAGE.
    pub const SEND_TEXT_MB_MESSAGE: Self = Self(0xD7);
}

impl fmt::Debug for SmbCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::TRANSACTION => "TRANSACTION",
            Self::NEGOTIATE => "NEGOTIATE",
            Self::SEND_MESSAGE => "SEND_MESSAGE",
            Self::SEND_BROADCAST_MESSAGE => "SEND_BROADCAST_MESSAGE",
            Self::FORWARD_USER_NAME => "FORWARD_USER_NAME",
            Self::CANCEL_FORWARD => "CANCEL_FORWARD",
            Self::GET_MACHINE_NAME => "GET_MACHINE_NAME",
            Self::SEND_START_MB_MESSAGE => "SEND_START_MB_MESSAGE",
            Self::SEND_END_MB_MESSAGE => "SEND_END_MB_MESSAGE",
            Self::SEND_TEXT_MB_MESSAGE => "SEND_TEXT_MB_MESSAGE",
            _ => return write!(f, "SmbCommand(0x{:02X})", self.0),
        };
        f.write_str(name)
    }
}

/// The status of an SMB reply: a DOS class/code pair or a 32-bit NTSTATUS,
/// chosen by Flags2 bit 0x4000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmbStatus {
    /// DOS error class and code.
    Dos {
        /// Error class: 0 success, 1 ERRDOS, 2 ERRSRV, 3 ERRHRD, 0xFF ERRCMD.
        class: u8,
        /// Error code within the class.
        code: u16,
    },
    /// NTSTATUS.
    Nt(u32),
}

impl SmbStatus {
    /// Success (DOS form).
    pub const SUCCESS: Self = Self::Dos { class: 0, code: 0 };
    /// ERRSRV/ERRerror: non-specific error (bad block, malformed SMB).
    pub const ERRSRV_ERROR: Self = Self::Dos {
        class: 2,
        code: 0x0001,
    };
    /// ERRSRV/ERRunknownsmb: unknown command (Samba's choice).
    pub const ERRSRV_UNKNOWN_SMB: Self = Self::Dos {
        class: 2,
        code: 0x0016,
    };
    /// ERRSRV/ERRsmbcmd: unrecognised command.
    pub const ERRSRV_SMBCMD: Self = Self::Dos {
        class: 2,
        code: 0x0040,
    };
    /// ERRSRV/ERRpaused: message server paused.
    pub const ERRSRV_PAUSED: Self = Self::Dos {
        class: 2,
        code: 0x0051,
    };
    /// ERRSRV/ERRmsgoff: not receiving messages (for that name).
    pub const ERRSRV_MSGOFF: Self = Self::Dos {
        class: 2,
        code: 0x0052,
    };
    /// ERRSRV/ERRnoroom: no room to buffer the message.
    pub const ERRSRV_NOROOM: Self = Self::Dos {
        class: 2,
        code: 0x0053,
    };
    /// ERRSRV/ERRrmuns: too many remote user names.
    pub const ERRSRV_RMUNS: Self = Self::Dos {
        class: 2,
        code: 0x0057,
    };
    /// ERRDOS/ERRbadfunc: invalid function.
    pub const ERRDOS_BADFUNC: Self = Self::Dos { class: 1, code: 1 };
    /// ERRDOS/ERRnomem: out of memory.
    pub const ERRDOS_NOMEM: Self = Self::Dos { class: 1, code: 8 };
    /// ERRDOS/71: request not accepted (smbd without a message command).
    pub const ERRDOS_REQ_NOT_ACCEP: Self = Self::Dos { class: 1, code: 71 };
    /// ERRDOS/ERRinvalidparam: text or end without start, short block.
    pub const ERRDOS_INVALID_PARAM: Self = Self::Dos { class: 1, code: 87 };

    /// Whether this is success in either form.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Dos { class: 0, .. } | Self::Nt(0))
    }

    /// The NERR code a NetMessageBufferSend caller gets for this reply status.
    pub const fn to_net_api_status(self) -> crate::status::NetApiStatus {
        match self {
            Self::Dos { class, code } => crate::status::NetApiStatus::from_dos_error(class, code),
            Self::Nt(status) => crate::status::NetApiStatus::from_nt_status(status),
        }
    }
}

/// The 32-byte SMB1 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmbHeader {
    /// The command.
    pub command: u8,
    /// Status bytes 5..9 as they are on the wire (see [`SmbHeader::status`]).
    pub status_raw: [u8; 4],
    /// Flags.
    pub flags: u8,
    /// Flags2.
    pub flags2: u16,
    /// High 16 bits of the process id.
    pub pid_high: u16,
    /// Security features / signature.
    pub signature: [u8; 8],
    /// Reserved.
    pub reserved: u16,
    /// Tree id.
    pub tid: u16,
    /// Low 16 bits of the process id.
    pub pid_low: u16,
    /// User id.
    pub uid: u16,
    /// Multiplex id (smbclient sends 0 on every request).
    pub mid: u16,
}

impl SmbHeader {
    /// A request header with every field zero but the command, as MS-MSRP says.
    pub fn request(command: SmbCommand) -> Self {
        Self {
            command: command.0,
            ..Self::default()
        }
    }

    /// The command as a typed code.
    pub const fn command(&self) -> SmbCommand {
        SmbCommand(self.command)
    }

    /// The status, interpreted by Flags2.
    pub fn status(&self) -> SmbStatus {
        if self.flags2 & FLAGS2_NT_STATUS != 0 {
            SmbStatus::Nt(u32::from_le_bytes(self.status_raw))
        } else {
            SmbStatus::Dos {
                class: self.status_raw[0],
                code: u16::from_le_bytes([self.status_raw[2], self.status_raw[3]]),
            }
        }
    }

    /// Whether this is a reply.
    pub const fn is_reply(&self) -> bool {
        self.flags & FLAGS_REPLY != 0
    }

    /// The reply header for `request`, as smbd builds it: command, TID, PIDs,
    /// UID and MID echoed; Flags 0x80 plus the request's case bit; Flags2 0x4003
    /// with success or 0x0003 with a DOS error.
    pub fn reply_to(request: &Self, status: SmbStatus) -> Self {
        let (flags2, status_raw) = match status {
            SmbStatus::Dos { class, code } => {
                let c = code.to_le_bytes();
                let flags2 = if class == 0 {
                    FLAGS2_REPLY_SUCCESS
                } else {
                    FLAGS2_REPLY_DOS_ERROR
                };
                (flags2, [class, 0, c[0], c[1]])
            }
            SmbStatus::Nt(s) => (FLAGS2_REPLY_SUCCESS, s.to_le_bytes()),
        };
        Self {
            command: request.command,
            status_raw,
            flags: FLAGS_REPLY | (request.flags & FLAGS_CASE_INSENSITIVE),
            flags2,
            pid_high: request.pid_high,
            signature: [0; 8],
            reserved: 0,
            tid: request.tid,
            pid_low: request.pid_low,
            uid: request.uid,
            mid: request.mid,
        }
    }

    /// Reads the header (magic checked).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.array::<4>("smb magic")? != MAGIC {
            return Err(DecodeError::malformed("smb magic", "not \\xFFSMB"));
        }
        Ok(Self {
            command: r.u8("smb command")?,
            status_raw: r.array("smb status")?,
            flags: r.u8("smb flags")?,
            flags2: r.u16_le("smb flags2")?,
            pid_high: r.u16_le("smb pid high")?,
            signature: r.array("smb signature")?,
            reserved: r.u16_le("smb reserved")?,
            tid: r.u16_le("smb tid")?,
            pid_low: r.u16_le("smb pid low")?,
            uid: r.u16_le("smb uid")?,
            mid: r.u16_le("smb mid")?,
        })
    }

    /// Writes the 32 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(self.command);
        out.extend_from_slice(&self.status_raw);
        out.push(self.flags);
        out.extend_from_slice(&self.flags2.to_le_bytes());
        out.extend_from_slice(&self.pid_high.to_le_bytes());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.reserved.to_le_bytes());
        out.extend_from_slice(&self.tid.to_le_bytes());
        out.extend_from_slice(&self.pid_low.to_le_bytes());
        out.extend_from_slice(&self.uid.to_le_bytes());
        out.extend_from_slice(&self.mid.to_le_bytes());
    }
}

/// One SMB1 message: header, parameter words and data bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smb {
    /// The header.
    pub header: SmbHeader,
    /// Parameter words as raw bytes (2 × WordCount).
    pub words: Vec<u8>,
    /// Data bytes (ByteCount of them).
    pub bytes: Vec<u8>,
}

impl Smb {
    /// Parses one SMB. WordCount and ByteCount must fit the bytes present;
    /// bytes after the data area (allowed by some senders) are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let header = SmbHeader::read(&mut r)?;
        let wct = r.u8("smb word count")?;
        let words = r
            .take(usize::from(wct) * 2, "smb parameter words")?
            .to_vec();
        let bcc = r.u16_le("smb byte count")?;
        let bytes = r.take(usize::from(bcc), "smb data bytes")?.to_vec();
        Ok(Self {
            header,
            words,
            bytes,
        })
    }

    /// Parameter word `i`, if present.
    pub fn word(&self, i: usize) -> Option<u16> {
        self.words
            .get(2 * i..2 * i + 2)
            .map(|w| u16::from_le_bytes([w[0], w[1]]))
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + 1 + self.words.len() + 2 + self.bytes.len()
    }

    /// Writes the SMB; fails if the word or byte area is too long.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.words.len() % 2 != 0 || self.words.len() > 2 * 255 {
            return Err(EncodeError::Unencodable {
                field: "smb parameter words",
                reason: "must be an even number of bytes, at most 510",
            });
        }
        let bcc = u16::try_from(self.bytes.len()).map_err(|_| EncodeError::TooLong {
            field: "smb data bytes",
            len: self.bytes.len(),
            max: usize::from(u16::MAX),
        })?;
        self.header.emit(out);
        out.push((self.words.len() / 2) as u8);
        out.extend_from_slice(&self.words);
        out.extend_from_slice(&bcc.to_le_bytes());
        out.extend_from_slice(&self.bytes);
        Ok(())
    }

    /// The SMB as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

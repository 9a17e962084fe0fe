//! The server side of one session-service connection, sans IO.
//!
//! Feed each complete NBSS frame to [`ServerSession::handle_frame`]; it returns
//! the [`Action`] the driver must take. A finished message comes back as
//! [`Action::Deliver`] with two prepared replies: the driver commits the message
//! durably and only then writes `ack` (or `refuse` if the commit failed), so a
//! sender is never told "delivered" about a message that could be lost.
//!
//! A multi-block message must end within `max_assembly_time` of its start
//! block: drivers wait for [`ServerSession::poll_timeout`] beside the next
//! frame and call [`ServerSession::handle_timeout`] when it comes, so a
//! sender that goes silent mid-message has it discarded on time.

use std::time::{Duration, Instant};

use netsend_wire::name::NetbiosName;
use netsend_wire::nbss::{NegativeCode, SessionPacket};
use netsend_wire::oem::CodePage;
use netsend_wire::smb::header::{Smb, SmbCommand, SmbHeader, SmbStatus};
use netsend_wire::smb::message::{message_reply, MessengerRequest, MAX_BLOCK_LEN};

use crate::delivery_tag::DeliveryTag;
use crate::message::Message;

/// Limits of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Largest NBSS trailer accepted; larger frames close the connection.
    pub max_frame_len: usize,
    /// Largest text block accepted (the protocol's 128).
    pub max_block_len: usize,
    /// Largest assembled text, in bytes (Windows shows at most ~4 KiB).
    pub max_message_len: usize,
    /// Longest a multi-block message may take from start to end; a later
    /// block is answered as if no message had been started.
    pub max_assembly_time: Duration,
    /// OEM code page of names and text.
    pub code_page: CodePage,
}

impl SessionConfig {
    /// The defaults: 128-byte blocks, 4 KiB messages, frames up to 1 KiB.
    pub const fn new(code_page: CodePage) -> Self {
        Self {
            max_frame_len: 1024,
            max_block_len: MAX_BLOCK_LEN,
            max_message_len: 4096,
            max_assembly_time: Duration::from_secs(60),
            code_page,
        }
    }
}

/// What the driver must do after a frame.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes and keep reading.
    Send(Vec<u8>),
    /// Write these bytes, then close.
    SendAndClose(Vec<u8>),
    /// Close without a reply.
    Close,
    /// Nothing to write (keep-alive).
    Nothing,
    /// Commit `message` durably, then write `ack`; write `refuse` if the commit failed.
    Deliver {
        /// The finished message.
        message: Message,
        /// Success reply, to write after the commit.
        ack: Vec<u8>,
        /// ERRSRV/ERRnoroom reply, to write if the commit failed.
        refuse: Vec<u8>,
        /// The sender's delivery tag (of the start block for a multi-block
        /// message): a message with a tag already stored from the same
        /// address gets `ack` and is not stored again.
        tag: Option<DeliveryTag>,
    },
}

/// A multi-block message being assembled.
#[derive(Debug)]
struct Pending {
    originator: Vec<u8>,
    destination: Vec<u8>,
    blocks: Vec<Vec<u8>>,
    len: usize,
    /// When the start block came, if the driver passes time in.
    started: Option<Instant>,
    /// The start block's delivery tag.
    tag: Option<DeliveryTag>,
}

/// Server state of one connection.
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    session_requested: bool,
    first_frame: bool,
    pending: Option<Pending>,
    next_group_id: u16,
}

/// Wraps an SMB into an NBSS session message.
fn frame(smb: &Smb) -> Vec<u8> {
    let mut payload = Vec::with_capacity(smb.buffer_len());
    // Replies are built here from bounded parts; encoding cannot fail.
    if smb.emit(&mut payload).is_err() {
        return Vec::new();
    }
    SessionPacket::Message(payload)
        .to_bytes()
        .unwrap_or_default()
}

impl ServerSession {
    /// A new connection.
    pub const fn new(config: SessionConfig) -> Self {
        Self {
            config,
            session_requested: false,
            first_frame: true,
            pending: None,
            next_group_id: 1,
        }
    }

    /// Largest NBSS trailer this session reads; check it before buffering.
    pub const fn max_frame_len(&self) -> usize {
        self.config.max_frame_len
    }

    /// Handles one complete frame (header and trailer). `is_ours` tells whether a
    /// called name (session request, any suffix) or a destination name (as
    /// `NAME<03>`, built with [`NetbiosName::from_oem_lossy`]) is one of ours.
    /// No time limit applies; drivers use [`Self::handle_frame_at`].
    pub fn handle_frame(&mut self, bytes: &[u8], is_ours: &dyn Fn(&NetbiosName) -> bool) -> Action {
        self.handle(None, bytes, is_ours)
    }

    /// [`Self::handle_frame`] at time `now`: a multi-block message older than
    /// `max_assembly_time` is discarded first.
    pub fn handle_frame_at(
        &mut self,
        now: Instant,
        bytes: &[u8],
        is_ours: &dyn Fn(&NetbiosName) -> bool,
    ) -> Action {
        self.handle(Some(now), bytes, is_ours)
    }

    /// When the multi-block message being assembled expires: its start
    /// block's time plus `max_assembly_time`. `None` when no message is
    /// being assembled, or its start block came without a time
    /// ([`Self::handle_frame`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let started = self.pending.as_ref()?.started?;
        started.checked_add(self.config.max_assembly_time)
    }

    /// Advances time: a multi-block message whose [`Self::poll_timeout`]
    /// has come is discarded, and a later text or end block is answered as
    /// if none had been started. Returns whether one was discarded.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let expired = self.poll_timeout().is_some_and(|at| at <= now);
        if expired {
            self.pending = None;
        }
        expired
    }

    fn handle(
        &mut self,
        now: Option<Instant>,
        bytes: &[u8],
        is_ours: &dyn Fn(&NetbiosName) -> bool,
    ) -> Action {
        if let Some(now) = now {
            self.handle_timeout(now);
        }
        let first = std::mem::replace(&mut self.first_frame, false);
        let Ok(packet) = SessionPacket::parse(bytes) else {
            return Action::Close;
        };
        match packet {
            SessionPacket::Request { called, .. } => {
                if !first || self.session_requested {
                    return Action::Close;
                }
                self.session_requested = true;
                let reply = if is_ours(&called.name) {
                    SessionPacket::Positive
                } else {
                    SessionPacket::Negative(NegativeCode::CALLED_NAME_NOT_PRESENT)
                };
                let close = reply != SessionPacket::Positive;
                let bytes = reply.to_bytes().unwrap_or_default();
                if close {
                    Action::SendAndClose(bytes)
                } else {
                    Action::Send(bytes)
                }
            }
            SessionPacket::KeepAlive => Action::Nothing,
            SessionPacket::KeepAliveRequest => {
                Action::Send(SessionPacket::KeepAlive.to_bytes().unwrap_or_default())
            }
            SessionPacket::Message(payload) => self.handle_smb(now, &payload, is_ours),
            _ => Action::Close,
        }
    }

    fn handle_smb(
        &mut self,
        now: Option<Instant>,
        payload: &[u8],
        is_ours: &dyn Fn(&NetbiosName) -> bool,
    ) -> Action {
        let Ok(smb) = Smb::parse(payload) else {
            return reply_to_unreadable(payload);
        };
        let reply =
            |status: SmbStatus| Action::Send(frame(&message_reply(&smb.header, status, None)));
        let request = match MessengerRequest::from_smb(&smb) {
            Ok(Some(r)) => r,
            Ok(None) if smb.header.command() == SmbCommand::NEGOTIATE => {
                return Action::Send(frame(&negotiate_reply(&smb)));
            }
            Ok(None) => return reply(SmbStatus::ERRSRV_UNKNOWN_SMB),
            Err(_) => {
                return match smb.header.command() {
                    SmbCommand::SEND_TEXT_MB_MESSAGE | SmbCommand::SEND_END_MB_MESSAGE
                        if self.pending.is_none() =>
                    {
                        reply(SmbStatus::ERRDOS_INVALID_PARAM)
                    }
                    _ => reply(SmbStatus::ERRSRV_ERROR),
                };
            }
        };
        let ours = |dest: &[u8]| is_ours(&NetbiosName::from_oem_lossy(dest, 0x03));
        match request {
            MessengerRequest::Send {
                originator,
                destination,
                text,
            } => {
                self.pending = None;
                if text.len() > self.config.max_block_len {
                    return reply(SmbStatus::ERRSRV_ERROR);
                }
                if !ours(&destination) {
                    return reply(SmbStatus::ERRSRV_MSGOFF);
                }
                let message = Message::decode(
                    &originator,
                    &destination,
                    &[text],
                    false,
                    self.config.code_page,
                );
                self.deliver(
                    &smb.header,
                    message,
                    DeliveryTag::from_wire(smb.header.signature),
                )
            }
            MessengerRequest::Start {
                originator,
                destination,
            } => {
                // A new start discards any unfinished message, as smbd does.
                self.pending = None;
                if !ours(&destination) {
                    return reply(SmbStatus::ERRSRV_MSGOFF);
                }
                let group_id = self.next_group_id;
                self.next_group_id = self.next_group_id.wrapping_add(1).max(1);
                self.pending = Some(Pending {
                    originator,
                    destination,
                    blocks: Vec::new(),
                    len: 0,
                    started: now,
                    tag: DeliveryTag::from_wire(smb.header.signature),
                });
                Action::Send(frame(&message_reply(
                    &smb.header,
                    SmbStatus::SUCCESS,
                    Some(group_id),
                )))
            }
            MessengerRequest::Text { text, .. } => {
                let Some(pending) = self.pending.as_mut() else {
                    return reply(SmbStatus::ERRDOS_INVALID_PARAM);
                };
                if text.len() > self.config.max_block_len {
                    self.pending = None;
                    return reply(SmbStatus::ERRSRV_ERROR);
                }
                if pending.len + text.len() > self.config.max_message_len {
                    self.pending = None;
                    return reply(SmbStatus::ERRSRV_NOROOM);
                }
                pending.len += text.len();
                pending.blocks.push(text);
                reply(SmbStatus::SUCCESS)
            }
            MessengerRequest::End { .. } => {
                let Some(p) = self.pending.take() else {
                    return reply(SmbStatus::ERRDOS_INVALID_PARAM);
                };
                let message = Message::decode(
                    &p.originator,
                    &p.destination,
                    &p.blocks,
                    true,
                    self.config.code_page,
                );
                self.deliver(&smb.header, message, p.tag)
            }
        }
    }

    fn deliver(&self, header: &SmbHeader, message: Message, tag: Option<DeliveryTag>) -> Action {
        Action::Deliver {
            message,
            ack: frame(&message_reply(header, SmbStatus::SUCCESS, None)),
            refuse: frame(&message_reply(header, SmbStatus::ERRSRV_NOROOM, None)),
            tag,
        }
    }
}

/// ERRSRV/ERRerror then close when at least the SMB header is readable; else
/// just close.
fn reply_to_unreadable(payload: &[u8]) -> Action {
    let head = payload
        .get(..32)
        .and_then(|h| Smb::parse(&[h, &[0, 0, 0]].concat()).ok());
    match head {
        Some(head) => Action::SendAndClose(frame(&message_reply(
            &head.header,
            SmbStatus::ERRSRV_ERROR,
            None,
        ))),
        None => Action::Close,
    }
}

/// Reply to SMB_COM_NEGOTIATE: the core dialect if offered, else "none".
fn negotiate_reply(request: &Smb) -> Smb {
    let dialects = request.bytes.split(|&b| b == 0).filter(|d| !d.is_empty());
    let index = dialects
        .enumerate()
        .find(|(_, d)| d.strip_prefix(&[0x02]) == Some(b"PC NETWORK PROGRAM 1.0".as_slice()))
        .map_or(0xFFFF, |(i, _)| i as u16);
    Smb {
        header: SmbHeader::reply_to(&request.header, SmbStatus::SUCCESS),
        words: index.to_le_bytes().to_vec(),
        bytes: Vec::new(),
    }
}

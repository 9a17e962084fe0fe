//! The client side of a directed message, sans IO: the frames to send and the
//! checks of each reply.
//!
//! Call [`ClientSession::poll_transmit`] until it returns `None`, write each
//! frame, then feed the next reply frame to [`ClientSession::handle_frame`];
//! repeat until [`ClientSession::is_done`]. Samba's smbd refuses 0xD0 before a
//! NEGOTIATE, so messages go as 0xD5/0xD7/0xD6 unless `single_block_when_fits`.
//!
//! A session given a deadline ([`ClientSession::with_deadline`]) reports it in
//! [`ClientSession::poll_timeout`]; call [`ClientSession::handle_timeout`]
//! when it passes. Nothing the peer sends moves it: a peer that answers with
//! session keep-alives (`85 00 00 00`) and nothing else fails at the deadline.

use std::time::Instant;

use netsend_wire::name::{NetbiosName, WireName};
use netsend_wire::nbss::{NegativeCode, SessionPacket};
use netsend_wire::oem::{encode_message_blocks, CodePage, LineBreaks};
use netsend_wire::smb::header::{Smb, SmbCommand, SmbHeader, SmbStatus};
use netsend_wire::smb::message::{MessengerReply, MessengerRequest, MAX_BLOCK_LEN};
use netsend_wire::DecodeError;

use crate::delivery_tag::DeliveryTag;

/// How to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// OEM code page of names and text.
    pub code_page: CodePage,
    /// How line breaks are written.
    pub line_breaks: LineBreaks,
    /// Text bytes per block (smbclient 127, Windows 128).
    pub block_len: usize,
    /// Send one 0xD0 when the text fits a block (Windows does; smbd refuses it).
    pub single_block_when_fits: bool,
    /// Open with an NBSS session request (required on port 139).
    pub send_session_request: bool,
    /// PIDLow put in the SMB headers.
    pub pid: u16,
    /// The message's delivery tag, put in every request's SecurityFeatures
    /// field, for a sender that may repeat it.
    pub tag: Option<DeliveryTag>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            code_page: CodePage::default(),
            line_breaks: LineBreaks::CrLf,
            block_len: 127,
            single_block_when_fits: false,
            send_session_request: true,
            pid: 0,
            tag: None,
        }
    }
}

/// Why sending failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session request was refused because the name is not there (0x80, 0x82).
    NameNotPresent,
    /// The session request was refused for another reason.
    SessionRefused(u8),
    /// The recipient answered a request with an SMB error.
    Refused(SmbStatus),
    /// The recipient broke the protocol.
    Protocol(&'static str),
    /// A reply could not be decoded.
    Decode(DecodeError),
    /// The deadline passed before the last reply.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Frames are queued; nothing awaited yet.
    Ready,
    /// Waiting for the session response.
    AwaitSession,
    /// Waiting for the reply to this command.
    AwaitReply(SmbCommand),
    Done,
    Failed,
}

/// One message being sent.
#[derive(Debug)]
pub struct ClientSession {
    called: NetbiosName,
    calling: NetbiosName,
    originator: Vec<u8>,
    destination: Vec<u8>,
    blocks: std::collections::VecDeque<Vec<u8>>,
    options: SendOptions,
    state: State,
    session_open: bool,
    started: bool,
    group_id: u16,
    deadline: Option<Instant>,
}

impl ClientSession {
    /// Plans sending `text` from `from` to `to` over a session to `called`.
    pub fn new(
        called: NetbiosName,
        calling: NetbiosName,
        from: &str,
        to: &str,
        text: &str,
        options: SendOptions,
    ) -> Self {
        let oem = |s: &str| {
            options
                .code_page
                .encode(s)
                .unwrap_or_else(|_| s.as_bytes().to_vec())
        };
        let block_len = options.block_len.clamp(1, MAX_BLOCK_LEN);
        Self {
            called,
            calling,
            originator: oem(from),
            destination: oem(&to.to_uppercase()),
            blocks: encode_message_blocks(text, options.code_page, options.line_breaks, block_len)
                .into(),
            options,
            state: State::Ready,
            session_open: !options.send_session_request,
            started: false,
            group_id: 0,
            deadline: None,
        }
    }

    /// Gives the whole exchange one deadline (no deadline by default).
    #[must_use]
    pub const fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// When [`ClientSession::handle_timeout`] is due, while the exchange is
    /// still going on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Done | State::Failed => None,
            _ => self.deadline,
        }
    }

    /// Tells the session the time; past its deadline an unfinished exchange
    /// fails with [`SendError::TimedOut`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SendError> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                self.state = State::Failed;
                Err(SendError::TimedOut)
            }
            _ => Ok(()),
        }
    }

    /// Whether the message was delivered (the last reply was a success).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn header(&self) -> SmbHeader {
        SmbHeader {
            pid_low: self.options.pid,
            signature: self.options.tag.map_or([0; 8], DeliveryTag::to_wire),
            ..SmbHeader::default()
        }
    }

    fn smb_frame(&self, request: &MessengerRequest) -> Option<Vec<u8>> {
        let smb = request.to_smb(self.header()).ok()?;
        SessionPacket::Message(smb.to_bytes().ok()?).to_bytes().ok()
    }

    /// The next frame to write, if one is due now.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.state != State::Ready {
            return None;
        }
        if !self.session_open {
            self.state = State::AwaitSession;
            return SessionPacket::Request {
                called: WireName::new(self.called),
                calling: WireName::new(self.calling),
            }
            .to_bytes()
            .ok();
        }
        let request = if !self.started {
            self.started = true;
            let fits = self.blocks.len() == 1;
            if self.options.single_block_when_fits && fits {
                let text = self.blocks.pop_front().unwrap_or_default();
                MessengerRequest::Send {
                    originator: self.originator.clone(),
                    destination: self.destination.clone(),
                    text,
                }
            } else {
                MessengerRequest::Start {
                    originator: self.originator.clone(),
                    destination: self.destination.clone(),
                }
            }
        } else if let Some(text) = self.blocks.pop_front() {
            MessengerRequest::Text {
                group_id: self.group_id,
                text,
            }
        } else {
            MessengerRequest::End {
                group_id: self.group_id,
            }
        };
        self.state = State::AwaitReply(request.command());
        self.smb_frame(&request)
    }

    /// Feeds one complete reply frame.
    pub fn handle_frame(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        let result = self.handle(bytes);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn handle(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        let packet = SessionPacket::parse(bytes).map_err(SendError::Decode)?;
        match (self.state, packet) {
            // A keep-alive is no answer: it changes nothing, the deadline included.
            (_, SessionPacket::KeepAlive) => Ok(()),
            (State::AwaitSession, SessionPacket::Positive) => {
                self.session_open = true;
                self.state = State::Ready;
                Ok(())
            }
            (State::AwaitSession, SessionPacket::Negative(code)) => Err(match code {
                NegativeCode::CALLED_NAME_NOT_PRESENT | NegativeCode::NOT_LISTENING_ON_CALLED => {
                    SendError::NameNotPresent
                }
                other => SendError::SessionRefused(other.0),
            }),
            (State::AwaitReply(command), SessionPacket::Message(payload)) => {
                let smb = Smb::parse(&payload).map_err(SendError::Decode)?;
                let reply = MessengerReply::from_smb(&smb).map_err(SendError::Decode)?;
                if reply.command != command {
                    return Err(SendError::Protocol("reply to another command"));
                }
                if !reply.status.is_success() {
                    return Err(SendError::Refused(reply.status));
                }
                if command == SmbCommand::SEND_START_MB_MESSAGE {
                    self.group_id = reply.group_id;
                }
                self.state = if matches!(
                    command,
                    SmbCommand::SEND_MESSAGE | SmbCommand::SEND_END_MB_MESSAGE
                ) {
                    State::Done
                } else {
                    State::Ready
                };
                Ok(())
            }
            _ => Err(SendError::Protocol("unexpected frame")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn session(deadline: Instant) -> ClientSession {
        let called = NetbiosName::new("ALICE", 3).unwrap();
        let calling = NetbiosName::new("BOB", 0).unwrap();
        ClientSession::new(
            called,
            calling,
            "bob",
            "alice",
            "hi",
            SendOptions::default(),
        )
        .with_deadline(deadline)
    }

    #[test]
    fn keep_alives_do_not_move_the_deadline() {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(15);
        let mut s = session(deadline);
        assert!(s.poll_transmit().is_some(), "session request");
        s.handle_frame(&[0x82, 0, 0, 0]).unwrap();
        assert!(s.poll_transmit().is_some(), "0xD5");
        for second in 1..15 {
            s.handle_frame(&[0x85, 0, 0, 0]).unwrap();
            s.handle_timeout(t0 + Duration::from_secs(second)).unwrap();
            assert_eq!(s.poll_timeout(), Some(deadline));
            assert!(s.poll_transmit().is_none(), "still awaiting the reply");
        }
        assert_eq!(s.handle_timeout(deadline), Err(SendError::TimedOut));
        assert_eq!(s.poll_timeout(), None);
        assert!(!s.is_done());
    }

    #[test]
    fn without_a_deadline_nothing_times_out() {
        let called = NetbiosName::new("ALICE", 3).unwrap();
        let calling = NetbiosName::new("BOB", 0).unwrap();
        let mut s = ClientSession::new(called, calling, "b", "a", "", SendOptions::default());
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.handle_timeout(Instant::now()), Ok(()));
    }
}

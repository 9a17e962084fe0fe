//! The client side of a directed message, sans IO: the frames to send and the
//! checks of each reply.
//!
//! Call [`ClientSession::poll_transmit`] until it returns `None`, write each
//! frame, then feed the next reply frame to [`ClientSession::handle_frame`];
//! repeat until [`ClientSession::is_done`]. Samba's smbd refuses 0xD0 before a
//! NEGOTIATE, so messages go as 0xD5/0xD7/0xD6 unless `single_block_when_fits`.

use netsend_wire::name::{NetbiosName, WireName};
use netsend_wire::nbss::{NegativeCode, SessionPacket};
use netsend_wire::oem::{encode_message_blocks, CodePage, LineBreaks};
use netsend_wire::smb::header::{Smb, SmbCommand, SmbHeader, SmbStatus};
use netsend_wire::smb::message::{MessengerReply, MessengerRequest, MAX_BLOCK_LEN};
use netsend_wire::DecodeError;

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
        }
    }

    /// Whether the message was delivered (the last reply was a success).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn header(&self) -> SmbHeader {
        SmbHeader {
            pid_low: self.options.pid,
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

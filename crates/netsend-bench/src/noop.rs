//! The no-op responder: the ceiling of the receive path on this machine.
//!
//! It answers the exchanges a `smbclient -M` sender makes (NBSS session
//! request, 0xD5, 0xD7 blocks, 0xD6) as smbd does, echoing each request's
//! TID, PIDs, UID and MID, and stores nothing, so what the load generator
//! measures against it is the cost of the connections and frames alone.
//!
//! [`Exchange`] is the whole protocol, sans IO; [`run`] is a tokio accept loop
//! around it with no logging per message. The orchestrator talks to the
//! process through its standard streams: one `ready` line once it listens,
//! then a [`Counts`] JSON line for every line written to its stdin; it exits
//! when stdin closes.

use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netsend_wire::nbss::{self, FrameHeader, PacketType, SessionPacket};
use netsend_wire::smb::header::{Smb, SmbCommand, SmbStatus};
use netsend_wire::smb::message::{message_reply, MessengerRequest};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Largest NBSS trailer read: a 0xD7 with a 128-byte block is about 70 bytes
/// of SMB around the text, so 1 KiB leaves room for odd senders.
const MAX_FRAME_LEN: usize = 1024;
/// Connections served at once (the generator runs 16; the flood case 16 more).
const MAX_CONNECTIONS: usize = 1024;
/// A connection silent this long is closed.
const IDLE: Duration = Duration::from_secs(10);

/// Arguments of `noop`.
#[derive(Debug, clap::Args)]
pub(crate) struct NoopArgs {
    /// Address to listen on.
    #[arg(long)]
    bind: Ipv4Addr,
    /// TCP port (139: `smbclient -M` sends a session request only there).
    #[arg(long, default_value_t = 139)]
    port: u16,
    /// Runtime worker threads (netsend's daemon runs 2).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// What the responder has answered since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    /// Messages completed: a 0xD6 answered with success.
    pub messages: u64,
    /// Requests answered with an SMB error.
    pub refused: u64,
}

/// The shared counters behind [`Counts`].
#[derive(Debug, Default)]
struct Counters {
    messages: AtomicU64,
    refused: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Counts {
        Counts {
            messages: self.messages.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// What [`Exchange::handle_frame`] decided; the reply, if any, is in `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Write what is in `out` (maybe nothing) and read on.
    Answered,
    /// A message was completed (0xD6 acknowledged); write `out` and read on.
    Completed,
    /// An SMB error was answered; write `out` and read on.
    Refused,
    /// Write what is in `out` and close.
    Close,
}

/// One connection's state, sans IO: smbd's rules for the messenger commands
/// before a NEGOTIATE, without delivery.
#[derive(Debug)]
struct Exchange {
    /// Whether a frame came before (a session request must be the first).
    started: bool,
    /// The group id of the message being sent, between 0xD5 and 0xD6.
    open: Option<u16>,
    next_group_id: u16,
}

impl Exchange {
    const fn new() -> Self {
        Self {
            started: false,
            open: None,
            next_group_id: 1,
        }
    }

    /// Answers one whole frame (header and trailer), appending the reply to `out`.
    fn handle_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Step {
        let first = !std::mem::replace(&mut self.started, true);
        let Some(head) = frame.first_chunk::<{ nbss::HEADER_LEN }>() else {
            return Step::Close;
        };
        let Ok(header) = FrameHeader::parse(*head) else {
            return Step::Close;
        };
        match header.packet_type {
            PacketType::SESSION_MESSAGE => self.handle_smb(&frame[nbss::HEADER_LEN..], out),
            // smbd accepts any called name; a second request closes.
            PacketType::SESSION_REQUEST if first => match SessionPacket::parse(frame) {
                Ok(SessionPacket::Request { .. }) => emit(&SessionPacket::Positive, out),
                _ => Step::Close,
            },
            PacketType::KEEP_ALIVE => Step::Answered,
            PacketType::KEEP_ALIVE_REQUEST => emit(&SessionPacket::KeepAlive, out),
            _ => Step::Close,
        }
    }

    fn handle_smb(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Step {
        let Ok(smb) = Smb::parse(payload) else {
            return Step::Close;
        };
        let (status, group_id) = match MessengerRequest::from_smb(&smb) {
            Ok(Some(MessengerRequest::Start { .. })) => {
                // A new start discards an unfinished message, as smbd does.
                let id = self.next_group_id;
                self.next_group_id = id.wrapping_add(1).max(1);
                self.open = Some(id);
                (SmbStatus::SUCCESS, Some(id))
            }
            Ok(Some(MessengerRequest::Text { .. })) if self.open.is_some() => {
                (SmbStatus::SUCCESS, None)
            }
            Ok(Some(MessengerRequest::End { .. })) if self.open.take().is_some() => {
                (SmbStatus::SUCCESS, None)
            }
            // 0xD7/0xD6 without a start, or unreadable: smbd's ERRDOS/87.
            Ok(Some(MessengerRequest::Text { .. } | MessengerRequest::End { .. })) | Err(_) => {
                (SmbStatus::ERRDOS_INVALID_PARAM, None)
            }
            // 0xD0 before a NEGOTIATE makes smbd close; so does this.
            Ok(Some(MessengerRequest::Send { .. })) => return Step::Close,
            Ok(None) => (SmbStatus::ERRSRV_UNKNOWN_SMB, None),
        };
        let reply = message_reply(&smb.header, status, group_id);
        let header = FrameHeader {
            packet_type: PacketType::SESSION_MESSAGE,
            length: reply.buffer_len(),
        };
        if header.emit(out).is_err() || reply.emit(out).is_err() {
            return Step::Close;
        }
        match smb.header.command() {
            _ if !status.is_success() => Step::Refused,
            SmbCommand::SEND_END_MB_MESSAGE => Step::Completed,
            _ => Step::Answered,
        }
    }
}

/// Appends a session packet without a payload.
fn emit(packet: &SessionPacket, out: &mut Vec<u8>) -> Step {
    match packet.emit(out) {
        Ok(()) => Step::Answered,
        Err(_) => Step::Close,
    }
}

/// Serves one connection until the peer closes, breaks the protocol or idles.
async fn serve(mut stream: TcpStream, counters: &Counters) {
    let _ = stream.set_nodelay(true);
    let mut exchange = Exchange::new();
    let mut buf = [0u8; nbss::HEADER_LEN + MAX_FRAME_LEN];
    let mut filled = 0;
    let mut out = Vec::with_capacity(128);
    loop {
        let mut close = false;
        while let Ok(Some(len)) = nbss::check_frame(&buf[..filled], MAX_FRAME_LEN) {
            match exchange.handle_frame(&buf[..len], &mut out) {
                Step::Answered => {}
                Step::Completed => {
                    counters.messages.fetch_add(1, Ordering::Relaxed);
                }
                Step::Refused => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                Step::Close => close = true,
            }
            buf.copy_within(len..filled, 0);
            filled -= len;
            if close {
                break;
            }
        }
        // A malformed or oversized header: nothing more can be framed.
        close |= nbss::check_frame(&buf[..filled], MAX_FRAME_LEN).is_err();
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
        match tokio::time::timeout(IDLE, stream.read(&mut buf[filled..])).await {
            Ok(Ok(n)) if n > 0 => filled += n,
            _ => return,
        }
    }
}

/// Accepts connections for ever, at most [`MAX_CONNECTIONS`] at once.
async fn accept_loop(listener: TcpListener, counters: Arc<Counters>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let counters = counters.clone();
                tokio::spawn(async move {
                    serve(stream, &counters).await;
                    drop(permit);
                });
            }
            // Out of descriptors or similar: back off briefly.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Runs `noop`: listens, prints `ready ADDR`, then a [`Counts`] line per stdin
/// line, and returns when stdin closes.
pub(crate) fn run(args: &NoopArgs) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let addr = SocketAddr::V4(SocketAddrV4::new(args.bind, args.port));
    let listener = rt.block_on(TcpListener::bind(addr))?;
    let counters = Arc::new(Counters::default());
    rt.spawn(accept_loop(listener, counters.clone()));
    println!("ready {addr}");
    for line in std::io::stdin().lock().lines() {
        line?;
        println!("{}", serde_json::to_string(&counters.snapshot())?);
    }
    rt.shutdown_background();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsend_proto::sender::{ClientSession, SendOptions};
    use netsend_wire::smb::header::SmbHeader;
    use netsend_wire::NetbiosName;

    /// The sender netsend uses, sending `text` from alice to NOOP as smbclient does.
    fn client(text: &str) -> ClientSession {
        let called = NetbiosName::new("NOOP", 3).unwrap();
        let calling = NetbiosName::new("TESTCLI", 0).unwrap();
        ClientSession::new(
            called,
            calling,
            "alice",
            "NOOP",
            text,
            SendOptions::default(),
        )
    }

    /// Drives [`client`] against the responder until it is done; returns the
    /// steps the responder took.
    fn exchange_with(text: &str) -> Vec<Step> {
        let mut client = client(text);
        let mut server = Exchange::new();
        let mut steps = Vec::new();
        for _ in 0..100 {
            let mut replies = Vec::new();
            while let Some(frame) = client.poll_transmit() {
                steps.push(server.handle_frame(&frame, &mut replies));
            }
            if client.is_done() {
                return steps;
            }
            let len = nbss::check_frame(&replies, MAX_FRAME_LEN).unwrap().unwrap();
            assert_eq!(len, replies.len(), "one reply per request");
            client.handle_frame(&replies).unwrap();
        }
        panic!("the exchange did not end");
    }

    #[test]
    fn a_smbclient_style_message_completes() {
        use Step::{Answered, Completed};
        assert_eq!(
            exchange_with("hello"),
            [Answered, Answered, Answered, Completed]
        );
        // 300 bytes: three 0xD7 blocks of at most 127.
        let steps = exchange_with(&"x".repeat(300));
        assert_eq!(steps.len(), 6);
        assert_eq!(steps.last(), Some(&Completed));
    }

    /// One request frame with a header whose echoed fields are all set.
    fn request(command: SmbCommand, request: &MessengerRequest) -> (SmbHeader, Vec<u8>) {
        let header = SmbHeader {
            tid: 0x1111,
            pid_low: 0x2222,
            pid_high: 0x3333,
            uid: 0x4444,
            mid: 0x5555,
            ..SmbHeader::request(command)
        };
        let smb = request.to_smb(header).unwrap().to_bytes().unwrap();
        (header, SessionPacket::Message(smb).to_bytes().unwrap())
    }

    fn reply(out: &[u8]) -> Smb {
        Smb::parse(&out[nbss::HEADER_LEN..]).unwrap()
    }

    #[test]
    fn replies_echo_the_request_ids_and_carry_a_group_id() {
        let mut server = Exchange::new();
        let start = MessengerRequest::Start {
            originator: b"alice".to_vec(),
            destination: b"NOOP".to_vec(),
        };
        let (sent, frame) = request(SmbCommand::SEND_START_MB_MESSAGE, &start);
        let mut out = Vec::new();
        assert_eq!(server.handle_frame(&frame, &mut out), Step::Answered);
        let got = reply(&out);
        assert_eq!(got.header, SmbHeader::reply_to(&sent, SmbStatus::SUCCESS));
        assert_eq!(
            (
                got.header.tid,
                got.header.pid_low,
                got.header.uid,
                got.header.mid
            ),
            (0x1111, 0x2222, 0x4444, 0x5555)
        );
        assert_eq!(got.word(0), Some(1));
        // The next start gets the next group id.
        out.clear();
        server.handle_frame(&frame, &mut out);
        assert_eq!(reply(&out).word(0), Some(2));
    }

    #[test]
    fn text_or_end_without_a_start_is_refused_as_smbd_does() {
        let mut server = Exchange::new();
        for (command, req) in [
            (
                SmbCommand::SEND_TEXT_MB_MESSAGE,
                MessengerRequest::Text {
                    group_id: 1,
                    text: b"hi".to_vec(),
                },
            ),
            (
                SmbCommand::SEND_END_MB_MESSAGE,
                MessengerRequest::End { group_id: 1 },
            ),
        ] {
            let (_, frame) = request(command, &req);
            let mut out = Vec::new();
            assert_eq!(server.handle_frame(&frame, &mut out), Step::Refused);
            assert_eq!(reply(&out).header.status(), SmbStatus::ERRDOS_INVALID_PARAM);
        }
    }

    #[test]
    fn a_second_session_request_or_a_single_block_message_closes() {
        let session_request = client("hi").poll_transmit().unwrap();
        let mut server = Exchange::new();
        let mut out = Vec::new();
        assert_eq!(
            server.handle_frame(&session_request, &mut out),
            Step::Answered
        );
        assert_eq!(out, [0x82, 0, 0, 0]);
        assert_eq!(server.handle_frame(&session_request, &mut out), Step::Close);
        let send = MessengerRequest::Send {
            originator: b"alice".to_vec(),
            destination: b"NOOP".to_vec(),
            text: b"hi".to_vec(),
        };
        let (_, frame) = request(SmbCommand::SEND_MESSAGE, &send);
        assert_eq!(Exchange::new().handle_frame(&frame, &mut out), Step::Close);
    }
}

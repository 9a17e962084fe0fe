//! A client session talking to a server session in memory, and the error paths.

use netsend_wire::nbss::SessionPacket;
use netsend_wire::smb::header::{Smb, SmbStatus};
use netsend_wire::{CodePage, NetbiosName};
use proptest::prelude::*;

use crate::delivery_tag::DeliveryTag;
use crate::message::Message;
use crate::sender::{ClientSession, SendError, SendOptions};
use crate::session::{Action, ServerSession, SessionConfig};

fn ours(n: &NetbiosName) -> bool {
    n.trimmed() == b"ALICE"
}

/// Runs a whole exchange; returns the delivered message or the sender's error.
fn exchange(to: &str, text: &str, options: SendOptions) -> Result<Message, SendError> {
    exchange_tagged(to, text, options).map(|(message, _)| message)
}

/// [`exchange`], with the delivery tag the server saw.
fn exchange_tagged(
    to: &str,
    text: &str,
    options: SendOptions,
) -> Result<(Message, Option<DeliveryTag>), SendError> {
    let called = NetbiosName::new(to, 3).unwrap();
    let calling = NetbiosName::new("BOB", 0).unwrap();
    let mut client = ClientSession::new(called, calling, "bob", to, text, options);
    let mut server = ServerSession::new(SessionConfig::new(CodePage::Cp850));
    let mut delivered = None;
    for _ in 0..1000 {
        let Some(frame) = client.poll_transmit() else {
            break;
        };
        let reply = match server.handle_frame(&frame, &ours) {
            Action::Send(r) | Action::SendAndClose(r) => r,
            Action::Deliver {
                message, ack, tag, ..
            } => {
                delivered = Some((message, tag));
                ack
            }
            Action::Close | Action::Nothing => panic!("server closed"),
        };
        client.handle_frame(&reply)?;
    }
    assert!(client.is_done());
    Ok(delivered.expect("delivered"))
}

#[test]
fn a_senders_delivery_tag_reaches_the_server_and_an_untagged_message_has_none() {
    let tag = DeliveryTag::for_site_message("NORTH-q7-0011223344556677");
    let long = "z".repeat(400);
    for (text, single) in [("hi", true), ("hi", false), (long.as_str(), false)] {
        let options = SendOptions {
            single_block_when_fits: single,
            tag: Some(tag),
            ..SendOptions::default()
        };
        let (m, seen) = exchange_tagged("alice", text, options).unwrap();
        assert_eq!(m.text, text);
        assert_eq!(
            seen,
            Some(tag),
            "single block: {single}, {} bytes",
            text.len()
        );
        let (_, untagged) = exchange_tagged("alice", text, SendOptions::default()).unwrap();
        assert_eq!(untagged, None);
    }
}

#[test]
fn multi_block_and_single_block_deliver() {
    let long: String = "x".repeat(1000);
    for (text, single) in [
        ("hi", true),
        ("hi", false),
        (long.as_str(), true),
        ("Grüße € ß\nline", false),
    ] {
        let options = SendOptions {
            single_block_when_fits: single,
            ..SendOptions::default()
        };
        let m = exchange("alice", text, options).unwrap();
        assert_eq!(m.text, text);
        assert_eq!(m.from, "bob");
        assert_eq!(m.to, "ALICE");
        assert_eq!(m.multi_block, !(single && text.len() <= 127));
    }
}

#[test]
fn a_slow_multi_block_message_expires() {
    let called = NetbiosName::new("alice", 3).unwrap();
    let calling = NetbiosName::new("BOB", 0).unwrap();
    let options = SendOptions::default();
    let mut client = ClientSession::new(called, calling, "bob", "alice", "slow", options);
    let config = SessionConfig {
        max_assembly_time: std::time::Duration::from_secs(5),
        ..SessionConfig::new(CodePage::Cp850)
    };
    let mut server = ServerSession::new(config);
    let t0 = std::time::Instant::now();
    let mut now = t0;
    let mut outcome = Ok(());
    while let Some(frame) = client.poll_transmit() {
        let reply = match server.handle_frame_at(now, &frame, &ours) {
            Action::Send(r) | Action::SendAndClose(r) => r,
            other => panic!("unexpected {other:?}"),
        };
        // Each block arrives 3 s after the last: the text block is at 3 s, in
        // time; the end block at 6 s finds the message expired.
        now += std::time::Duration::from_secs(3);
        outcome = client.handle_frame(&reply);
        if outcome.is_err() {
            break;
        }
    }
    assert!(
        outcome == Err(SendError::Refused(SmbStatus::ERRDOS_INVALID_PARAM)),
        "{outcome:?}"
    );
    assert!(now > t0 + std::time::Duration::from_secs(5));
}

#[test]
fn unknown_called_name_is_refused() {
    assert_eq!(
        exchange("carol", "hi", SendOptions::default()),
        Err(SendError::NameNotPresent)
    );
}

#[test]
fn unknown_destination_without_session_request_is_msgoff() {
    let options = SendOptions {
        send_session_request: false,
        ..SendOptions::default()
    };
    assert_eq!(
        exchange("carol", "hi", options),
        Err(SendError::Refused(SmbStatus::ERRSRV_MSGOFF))
    );
}

#[test]
fn too_long_message_is_noroom() {
    let text = "y".repeat(5000);
    assert_eq!(
        exchange("alice", &text, SendOptions::default()),
        Err(SendError::Refused(SmbStatus::ERRSRV_NOROOM))
    );
}

fn smb_frame(hex_smb: &[u8]) -> Vec<u8> {
    SessionPacket::Message(hex_smb.to_vec()).to_bytes().unwrap()
}

fn reply_status(action: Action) -> SmbStatus {
    let (Action::Send(bytes) | Action::SendAndClose(bytes)) = action else {
        panic!("no reply: {action:?}");
    };
    let SessionPacket::Message(payload) = SessionPacket::parse(&bytes).unwrap() else {
        panic!("not a message");
    };
    Smb::parse(&payload).unwrap().header.status()
}

/// A raw SMB with every header field zero.
fn smb(command: u8, words: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut v = b"\xFFSMB".to_vec();
    v.push(command);
    v.extend_from_slice(&[0; 27]);
    v.push((words.len() / 2) as u8);
    v.extend_from_slice(words);
    v.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    v.extend_from_slice(bytes);
    v
}

#[test]
fn a_silent_multi_block_sender_has_its_message_discarded_at_the_deadline() {
    let config = SessionConfig {
        max_assembly_time: std::time::Duration::from_secs(5),
        ..SessionConfig::new(CodePage::Cp850)
    };
    let mut s = ServerSession::new(config);
    let t0 = std::time::Instant::now();
    let second = std::time::Duration::from_secs(1);
    assert_eq!(s.poll_timeout(), None);
    let d5 = smb(0xD5, &[], b"\x04bob\x00\x04ALICE\x00");
    assert!(reply_status(s.handle_frame_at(t0, &smb_frame(&d5), &ours)).is_success());
    // The deadline is the start block's, and a text block does not move it.
    assert_eq!(s.poll_timeout(), Some(t0 + 5 * second));
    let d7 = smb(0xD7, &[1, 0], &[1, 4, 0, b'p', b'a', b'r', b't']);
    let text = s.handle_frame_at(t0 + second, &smb_frame(&d7), &ours);
    assert!(reply_status(text).is_success());
    assert_eq!(s.poll_timeout(), Some(t0 + 5 * second));
    // Then silence: nothing is discarded early, everything at the deadline.
    assert!(!s.handle_timeout(t0 + 4 * second));
    assert_eq!(s.poll_timeout(), Some(t0 + 5 * second));
    assert!(s.handle_timeout(t0 + 5 * second));
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.handle_timeout(t0 + 6 * second));
    // A late end block finds no message (as after a slow sender), even when
    // it comes without a time, and nothing is delivered.
    let d6 = smb(0xD6, &[1, 0], &[]);
    assert_eq!(
        reply_status(s.handle_frame(&smb_frame(&d6), &ours)),
        SmbStatus::ERRDOS_INVALID_PARAM
    );
    // A start block without a time has no deadline.
    let mut untimed = ServerSession::new(config);
    let _ = untimed.handle_frame(&smb_frame(&d5), &ours);
    assert_eq!(untimed.poll_timeout(), None);
}

#[test]
fn error_replies_match_smbd_and_the_digest() {
    let mut s = ServerSession::new(SessionConfig::new(CodePage::Cp850));
    // Text and end without a start: ERRDOS/87.
    let d7 = smb(0xD7, &[0, 0], &[1, 2, 0, b'h', b'i']);
    assert_eq!(
        reply_status(s.handle_frame(&smb_frame(&d7), &ours)),
        SmbStatus::ERRDOS_INVALID_PARAM
    );
    let d6 = smb(0xD6, &[0, 0], &[]);
    assert_eq!(
        reply_status(s.handle_frame(&smb_frame(&d6), &ours)),
        SmbStatus::ERRDOS_INVALID_PARAM
    );
    // Unknown messenger-family command: ERRSRV/22.
    let d1 = smb(0xD1, &[], &[]);
    assert_eq!(
        reply_status(s.handle_frame(&smb_frame(&d1), &ours)),
        SmbStatus::ERRSRV_UNKNOWN_SMB
    );
    // Oversized 0xD0 block: ERRSRV/ERRerror.
    let mut body = b"\x04bob\x00\x04ALICE\x00\x01".to_vec();
    body.extend_from_slice(&200u16.to_le_bytes());
    body.extend_from_slice(&[b'z'; 200]);
    assert_eq!(
        reply_status(s.handle_frame(&smb_frame(&smb(0xD0, &[], &body)), &ours)),
        SmbStatus::ERRSRV_ERROR
    );
    // Bad buffer format: ERRSRV/ERRerror.
    let bad = smb(0xD5, &[], b"\x05bob\x00\x04ALICE\x00");
    assert_eq!(
        reply_status(s.handle_frame(&smb_frame(&bad), &ours)),
        SmbStatus::ERRSRV_ERROR
    );
    // Keep-alives.
    assert_eq!(s.handle_frame(&[0x85, 0, 0, 0], &ours), Action::Nothing);
    assert_eq!(
        s.handle_frame(&[0x89, 0, 0, 0], &ours),
        Action::Send(vec![0x85, 0, 0, 0])
    );
    // A session request after the first frame closes the connection.
    let req = SessionPacket::Request {
        called: NetbiosName::new("ALICE", 3).unwrap().into(),
        calling: NetbiosName::new("BOB", 0).unwrap().into(),
    };
    assert_eq!(
        s.handle_frame(&req.to_bytes().unwrap(), &ours),
        Action::Close
    );
    // Not an SMB at all.
    let mut s = ServerSession::new(SessionConfig::new(CodePage::Cp850));
    assert_eq!(
        s.handle_frame(&smb_frame(b"GET / HTTP/1.0"), &ours),
        Action::Close
    );
}

#[test]
fn a_new_start_discards_an_unfinished_message() {
    let mut s = ServerSession::new(SessionConfig::new(CodePage::Cp850));
    let start = smb(0xD5, &[], b"\x04bob\x00\x04ALICE\x00");
    assert!(reply_status(s.handle_frame(&smb_frame(&start), &ours)).is_success());
    let text = smb(0xD7, &[1, 0], b"\x01\x03\x00old");
    assert!(reply_status(s.handle_frame(&smb_frame(&text), &ours)).is_success());
    assert!(reply_status(s.handle_frame(&smb_frame(&start), &ours)).is_success());
    let text = smb(0xD7, &[9, 9], b"\x01\x03\x00new");
    assert!(reply_status(s.handle_frame(&smb_frame(&text), &ours)).is_success());
    let Action::Deliver { message, .. } =
        s.handle_frame(&smb_frame(&smb(0xD6, &[7, 0], &[])), &ours)
    else {
        panic!()
    };
    assert_eq!(message.text, "new");
}

/// Frames of capture 01 (smbclient -M LABSRV, "Hello LABSRV\n"), client side.
#[test]
fn replays_smbclient_capture_frames() {
    let hex = |s: &str| -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let h = "FF534D42 {} 00000000 00 0000 0000 0000000000000000 0000 0000 1152 0000 0000";
    let d5 = hex(&format!(
        "{} 00 0F00 04616C69636500 044C414253525600",
        h.replace("{}", "D5")
    ));
    let d7 = hex(&format!(
        "{} 01 0000 1100 010E00 48656C6C6F204C41425352560D0A",
        h.replace("{}", "D7")
    ));
    let d6 = hex(&format!("{} 01 0000 0000", h.replace("{}", "D6")));
    let mut s = ServerSession::new(SessionConfig::new(CodePage::Cp850));
    let labsrv = |n: &NetbiosName| n.trimmed() == b"LABSRV";
    assert!(reply_status(s.handle_frame(&smb_frame(&d5), &labsrv)).is_success());
    assert!(reply_status(s.handle_frame(&smb_frame(&d7), &labsrv)).is_success());
    let Action::Deliver { message, ack, .. } = s.handle_frame(&smb_frame(&d6), &labsrv) else {
        panic!()
    };
    assert_eq!(message.text, "Hello LABSRV\n");
    assert_eq!(message.from, "alice");
    // The ack echoes smbclient's PID and MID 0.
    assert_eq!(&ack[4 + 26..4 + 32], &[0x11, 0x52, 0, 0, 0, 0]);
}

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        crate::fuzzing::session(&data);
    }

    #[test]
    fn any_text_round_trips(text in "\\PC{0,300}") {
        let m = exchange("alice", &text, SendOptions::default());
        let normalized = netsend_wire::oem::normalize_line_breaks(&text);
        prop_assert_eq!(m.unwrap().text, normalized);
    }
}

#[test]
fn handler_fuzz_corpora_replay_cleanly() {
    type Target = (&'static str, fn(&[u8]));
    let targets: [Target; 15] = [
        ("session", crate::fuzzing::session),
        ("hear", crate::fuzzing::hear),
        ("plan", crate::fuzzing::plan),
        ("sender", crate::fuzzing::sender),
        ("names", crate::fuzzing::names),
        ("datagram", crate::fuzzing::datagram),
        ("display", crate::fuzzing::display),
        ("receipt", crate::fuzzing::receipt),
        ("policy", crate::fuzzing::policy),
        ("search", crate::fuzzing::search),
        ("reply", crate::fuzzing::reply),
        ("trust", crate::fuzzing::trust),
        ("directory", crate::fuzzing::directory),
        ("wins_server", crate::fuzzing::wins_server),
        ("site_bcast", crate::fuzzing::site_broadcast),
    ];
    for (target, run) in targets {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            run(&std::fs::read(entry.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n > 0, "empty corpus {}", dir.display());
    }
}

proptest! {
    #[test]
    fn a_resolution_plan_decides_in_time_whatever_it_is_answered(
        bytes in proptest::collection::vec(any::<u8>(), 0..800)
    ) {
        crate::fuzzing::plan(&bytes);
    }

    #[test]
    fn datagram_handler_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        crate::fuzzing::datagram(&bytes);
    }

    #[test]
    fn a_sender_meets_its_deadline_whatever_it_is_sent(
        pace in any::<u8>(),
        frames in proptest::collection::vec(
            prop_oneof![
                Just(vec![0x85, 0, 0, 0]),
                Just(vec![0x82, 0, 0, 0]),
                Just(vec![0x83, 0, 0, 1, 0x80]),
                proptest::collection::vec(any::<u8>(), 0..40),
            ],
            0..40,
        ),
    ) {
        let mut data = vec![pace];
        frames.iter().for_each(|f| data.extend_from_slice(f));
        crate::fuzzing::sender(&data);
    }

    #[test]
    fn policy_events_keep_their_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..2400)) {
        crate::fuzzing::policy(&bytes);
    }

    #[test]
    fn name_table_survives_arbitrary_datagrams(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        crate::fuzzing::names(&bytes);
    }

    #[test]
    fn spoofed_demands_never_take_a_name(
        records in proptest::collection::vec((any::<u16>(), 1u8..=254, any::<u8>(), 0u8..3), 0..40)
    ) {
        // Well-formed conflict and release demands (any transaction id, any
        // sender, any pause) and no query answers: the name must stay ours.
        use netsend_wire::nbns::{NbEntry, NodeType, Packet};
        let alice = NetbiosName::new("ALICE", 3).unwrap();
        let ours = NbEntry::new(false, NodeType::B, std::net::Ipv4Addr::new(192, 0, 2, 10));
        let mut data = Vec::new();
        for (trn_id, octet, pause, kind) in records {
            let packet = match kind {
                0 => Packet::conflict_demand(trn_id, alice.into(), 0),
                1 => Packet::release_request(trn_id, alice, ours),
                _ => Packet::registration_response(trn_id, alice.into(), netsend_wire::nbns::Rcode::ACT_ERR, 0, ours),
            };
            let bytes = packet.to_bytes().unwrap();
            data.extend([bytes.len() as u8, octet, pause]);
            data.extend(bytes);
        }
        crate::fuzzing::names(&data);
    }
}

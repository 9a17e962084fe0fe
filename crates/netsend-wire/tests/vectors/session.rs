//! Every session-service frame in the captures decodes and re-emits byte for byte.

use netsend_wire::nbss::{check_frame, SessionPacket, MAX_TRAILER_LEN};
use netsend_wire::oem::{decode_block, decode_blocks, CodePage};
use netsend_wire::smb::header::{Smb, SmbStatus};
use netsend_wire::smb::message::{MessengerReply, MessengerRequest};

use crate::capture;

/// Every frame of every TCP stream in `file`.
fn frames(file: &str) -> Vec<(u16, SessionPacket)> {
    let mut out = Vec::new();
    for (first, stream) in capture::tcp_streams(file) {
        let mut rest = stream.as_slice();
        while !rest.is_empty() {
            let len = check_frame(rest, MAX_TRAILER_LEN)
                .unwrap()
                .unwrap_or_else(|| panic!("{file}: incomplete frame"));
            let (frame, tail) = rest.split_at(len);
            let packet = SessionPacket::parse(frame).unwrap();
            assert_eq!(packet.to_bytes().unwrap(), frame, "{file}");
            out.push((first.dst_port, packet));
            rest = tail;
        }
    }
    out
}

/// The messenger requests sent to the server in `file`.
fn requests(file: &str) -> Vec<MessengerRequest> {
    frames(file)
        .into_iter()
        .filter_map(|(_, p)| match p {
            SessionPacket::Message(payload) => Some(Smb::parse(&payload).unwrap()),
            _ => None,
        })
        .filter(|smb| !smb.header.is_reply())
        .filter_map(|smb| MessengerRequest::from_smb(&smb).unwrap())
        .collect()
}

fn text_blocks(file: &str) -> Vec<Vec<u8>> {
    requests(file)
        .into_iter()
        .filter_map(|r| match r {
            MessengerRequest::Text { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

#[test]
fn every_session_frame_round_trips() {
    let mut smbs = 0;
    for file in capture::all_captures() {
        for (_, packet) in frames(&file) {
            if let SessionPacket::Message(payload) = packet {
                let smb = Smb::parse(&payload).unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(smb.to_bytes().unwrap(), payload, "{file}");
                if smb.header.is_reply() {
                    MessengerReply::from_smb(&smb).unwrap();
                }
                smbs += 1;
            }
        }
    }
    assert!(smbs >= 40, "only {smbs} SMBs");
}

#[test]
fn smbclient_short_message() {
    let reqs = requests("01-smbclient-msg-short.pcap");
    assert_eq!(
        reqs[0],
        MessengerRequest::Start {
            originator: b"alice".to_vec(),
            destination: b"LABSRV".to_vec()
        }
    );
    assert_eq!(
        text_blocks("01-smbclient-msg-short.pcap"),
        [b"Hello LABSRV\r\n".to_vec()]
    );
    assert!(matches!(
        reqs.last(),
        Some(MessengerRequest::End { group_id: 0 })
    ));
    // MID 0 on every request, session request first on port 139.
    let all = frames("01-smbclient-msg-short.pcap");
    assert!(matches!(all[0].1, SessionPacket::Request { .. }));
    for (_, p) in &all {
        if let SessionPacket::Message(payload) = p {
            assert_eq!(Smb::parse(payload).unwrap().header.mid, 0);
        }
    }
}

#[test]
fn smbclient_cuts_text_into_127_byte_blocks() {
    let sizes: Vec<usize> = text_blocks("02-smbclient-msg-300.pcap")
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [127, 127, 49]);
    let sizes: Vec<usize> = text_blocks("13-smbclient-msg-truncated.pcap")
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 1598);
}

#[test]
fn cp850_and_utf8_fallback_blocks_decode() {
    let text: String = text_blocks("03-smbclient-msg-nonascii.pcap")
        .iter()
        .map(|b| decode_block(b, CodePage::Cp850))
        .collect();
    assert!(text.starts_with("Grüße aus Köln: é ü ä ö ß £"), "{text:?}");
    // é split at byte 127 and € sent as raw UTF-8: smbd delivers "├®", we recover "é".
    let text = decode_blocks(
        &text_blocks("04-smbclient-msg-utf8-fallback.pcap"),
        CodePage::Cp850,
    );
    assert!(text.contains("xé tail") && text.contains("5 €"), "{text:?}");
    // An empty message is one text block holding at most a NUL.
    let empty = text_blocks("05-smbclient-msg-empty.pcap");
    assert_eq!(empty.len(), 1);
    assert_eq!(decode_blocks(&empty, CodePage::Cp850), "");
}

#[test]
fn smbd_without_message_command_refuses_with_errdos_71() {
    let replies: Vec<Smb> = frames("10-smbclient-msg-nocmd.pcap")
        .into_iter()
        .filter_map(|(_, p)| match p {
            SessionPacket::Message(payload) => Some(Smb::parse(&payload).unwrap()),
            _ => None,
        })
        .filter(|s| s.header.is_reply())
        .collect();
    assert_eq!(replies[0].header.status(), SmbStatus::ERRDOS_REQ_NOT_ACCEP);
    assert_eq!(replies[0].header.flags2, 0x0003);
}

#[test]
fn port_445_flow_has_no_session_request() {
    let all = frames("07-smbclient-msg-port445.pcap");
    assert!(matches!(all[0].1, SessionPacket::Message(_)));
}

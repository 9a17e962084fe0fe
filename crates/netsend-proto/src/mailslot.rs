//! Receiving `\MAILSLOT\MESSNGR` datagrams (what `NET SEND *` and `/DOMAIN`
//! send): which ones are for us, and the message they carry. Sans IO: bytes and
//! the names we hold in, a decoded message out.

use std::net::Ipv4Addr;

use netsend_wire::nbds::{flags, Datagram, Header, MessageType};
use netsend_wire::oem::CodePage;
use netsend_wire::smb::mailslot::{is_messenger_mailslot, MailslotWrite, MessengerPayload};
use netsend_wire::NetbiosName;

use crate::message::Message;

/// How a datagram reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressed {
    /// Direct to one of our `<03>` names (the message's `to` is that name).
    Direct,
    /// To our workgroup `<00>`, as a group or broadcast datagram.
    Broadcast,
}

/// A MESSNGR datagram that is for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message it carries.
    pub message: Message,
    /// How it was addressed.
    pub addressed: Addressed,
    /// The originating host, from the datagram header (a relay keeps it).
    pub origin: Ipv4Addr,
}

/// A whole (unfragmented) datagram carrying a mailslot write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotDatagram {
    /// The datagram header.
    pub header: Header,
    /// The source name.
    pub source: NetbiosName,
    /// The destination name.
    pub destination: NetbiosName,
    /// The mailslot write it carries.
    pub write: MailslotWrite,
}

impl MailslotDatagram {
    /// Decodes a data datagram and its mailslot write; a fragment (never
    /// reassembled: mailslot messages never need them), another kind of
    /// datagram or a malformed one is `None`.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let Ok(Datagram::Data {
            header,
            packet_offset,
            source_name,
            destination_name,
            user_data,
        }) = Datagram::parse(bytes)
        else {
            return None;
        };
        if packet_offset != 0 || header.flags & flags::MORE != 0 {
            return None;
        }
        Some(Self {
            header,
            source: source_name.name,
            destination: destination_name.name,
            write: MailslotWrite::parse(&user_data).ok()?,
        })
    }
}

/// Decodes a MESSNGR datagram meant for us: direct to a name `is_ours`
/// accepts, or to `workgroup<00>` (group or broadcast). Anything else, a
/// fragment, a malformed packet or another mailslot, is `None`.
pub fn receive(
    bytes: &[u8],
    workgroup: &NetbiosName,
    is_ours: &dyn Fn(&NetbiosName) -> bool,
    code_page: CodePage,
) -> Option<Received> {
    let MailslotDatagram {
        header,
        destination,
        write,
        ..
    } = MailslotDatagram::parse(bytes)?;
    if !is_messenger_mailslot(&write.name) {
        return None;
    }
    let payload = MessengerPayload::parse(&write.data).ok()?;
    let addressed = match header.msg_type {
        MessageType::DIRECT_UNIQUE if is_ours(&destination) => Addressed::Direct,
        MessageType::DIRECT_GROUP | MessageType::BROADCAST if destination == *workgroup => {
            Addressed::Broadcast
        }
        _ => return None,
    };
    let message = Message::decode(
        &payload.from,
        &payload.to,
        &[payload.text],
        false,
        code_page,
    );
    Some(Received {
        message,
        addressed,
        origin: header.source_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsend_wire::nbds::{Header, MessageType};

    fn datagram(
        msg_type: MessageType,
        to: NetbiosName,
        mailslot: Option<MailslotWrite>,
    ) -> Vec<u8> {
        let payload = MessengerPayload {
            from: b"ALICE".to_vec(),
            to: b"WORKGROUP".to_vec(),
            text: b"Server going down\x14in 5 minutes".to_vec(),
        };
        let write =
            mailslot.unwrap_or_else(|| MailslotWrite::messenger(payload.to_bytes().unwrap()));
        Datagram::Data {
            header: Header {
                msg_type,
                flags: flags::FIRST | flags::NODE_H,
                id: 7,
                source_ip: Ipv4Addr::new(192, 0, 2, 10),
                source_port: 138,
            },
            packet_offset: 0,
            source_name: NetbiosName::new("SENDER", 0).unwrap().into(),
            destination_name: to.into(),
            user_data: write.to_bytes().unwrap(),
        }
        .to_bytes()
        .unwrap()
    }

    fn workgroup() -> NetbiosName {
        NetbiosName::new("WORKGROUP", 0).unwrap()
    }

    fn ours(n: &NetbiosName) -> bool {
        n == &NetbiosName::new("BOB", 3).unwrap()
    }

    #[test]
    fn broadcast_to_our_workgroup_is_received() {
        for t in [MessageType::DIRECT_GROUP, MessageType::BROADCAST] {
            let bytes = datagram(t, workgroup(), None);
            let r = receive(&bytes, &workgroup(), &ours, CodePage::Cp850).unwrap();
            assert_eq!(r.addressed, Addressed::Broadcast);
            assert_eq!(r.origin, Ipv4Addr::new(192, 0, 2, 10));
            assert_eq!(r.message.from, "ALICE");
            assert_eq!(r.message.text, "Server going down\nin 5 minutes");
        }
    }

    #[test]
    fn direct_to_our_name_only() {
        let bob = NetbiosName::new("BOB", 3).unwrap();
        let bytes = datagram(MessageType::DIRECT_UNIQUE, bob, None);
        let r = receive(&bytes, &workgroup(), &ours, CodePage::Cp850).unwrap();
        assert_eq!(r.addressed, Addressed::Direct);
        let carol = NetbiosName::new("CAROL", 3).unwrap();
        let bytes = datagram(MessageType::DIRECT_UNIQUE, carol, None);
        assert!(receive(&bytes, &workgroup(), &ours, CodePage::Cp850).is_none());
    }

    #[test]
    fn other_workgroups_mailslots_and_junk_are_ignored() {
        let other = NetbiosName::new("OTHERDOM", 0).unwrap();
        let bytes = datagram(MessageType::DIRECT_GROUP, other, None);
        assert!(receive(&bytes, &workgroup(), &ours, CodePage::Cp850).is_none());
        let browse = MailslotWrite {
            name: b"\\MAILSLOT\\BROWSE".to_vec(),
            ..MailslotWrite::messenger(vec![1, 2, 3])
        };
        let bytes = datagram(MessageType::DIRECT_GROUP, workgroup(), Some(browse));
        assert!(receive(&bytes, &workgroup(), &ours, CodePage::Cp850).is_none());
        let good = datagram(MessageType::DIRECT_GROUP, workgroup(), None);
        for cut in 0..good.len() {
            assert!(receive(&good[..cut], &workgroup(), &ours, CodePage::Cp850).is_none());
        }
    }
}

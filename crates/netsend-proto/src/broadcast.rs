//! Sending `\MAILSLOT\MESSNGR` broadcasts (`NET SEND *` and `/DOMAIN[:NAME]`),
//! sans IO: the text cut into datagrams that each fit one frame, and where
//! each goes. The driver sends the bytes and counts what left.

use std::net::Ipv4Addr;

use netsend_wire::nbds::{flags, Datagram, Header, MessageType};
use netsend_wire::oem::{encode_message_blocks, CodePage, LineBreaks};
use netsend_wire::smb::mailslot::{MailslotWrite, MessengerPayload};
use netsend_wire::{EncodeError, NetbiosName};

use crate::interface::Interface;

/// One broadcast message.
#[derive(Debug, Clone, Copy)]
pub struct Broadcast<'a> {
    /// The workgroup or domain it goes to, `NAME<00>`.
    pub domain: NetbiosName,
    /// The name the datagrams come from: our computer name `<00>`.
    pub source: NetbiosName,
    /// Who it is from, as shown to the recipients.
    pub from: &'a str,
    /// The text.
    pub text: &'a str,
    /// Whether a text too long for one datagram goes as several parts
    /// (else it is refused).
    pub split: bool,
    /// OEM code page of the names and the text.
    pub code_page: CodePage,
}

/// Where broadcasts go.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    /// Our interfaces: each one with a broadcast address sends there, from
    /// its own address.
    pub interfaces: &'a [Interface],
    /// Extra broadcast addresses (`[network] broadcast`), sent to from the
    /// first interface.
    pub extra: &'a [Ipv4Addr],
    /// Relays on other subnets (`[network] relays`), sent to from the first
    /// interface; each re-broadcasts into its own subnets.
    pub relays: &'a [Ipv4Addr],
    /// The datagram service port, ours and theirs (UDP 138).
    pub port: u16,
}

/// Why a broadcast cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// The text does not fit one datagram and splitting was not asked for.
    #[error("the broadcast text is {len} bytes; one datagram holds at most {max}")]
    TooLong {
        /// The whole text, encoded.
        len: usize,
        /// What one datagram holds with these names.
        max: usize,
    },
    /// A datagram could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// One datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The address to send from (unspecified: any).
    pub source_ip: Ipv4Addr,
    /// A broadcast address or a relay, at [`Targets::port`].
    pub target: Ipv4Addr,
    /// The whole datagram.
    pub bytes: Vec<u8>,
}

/// The mailslot writes carrying `message`: one, or one per part when the
/// text needs several and splitting is allowed. The block rules are those of
/// directed messages: a character or line break is never cut, and each part
/// is in the code page (or UTF-8 if it must be).
fn writes(message: &Broadcast<'_>) -> Result<Vec<Vec<u8>>, BroadcastError> {
    let cp = message.code_page;
    let from = cp
        .encode(message.from)
        .unwrap_or_else(|_| message.from.as_bytes().to_vec());
    let to = message.domain.trimmed().to_vec();
    let max = MessengerPayload::max_text_len(&from, &to);
    let parts = encode_message_blocks(message.text, cp, LineBreaks::CrLf, max);
    if parts.len() > 1 && !message.split {
        let len = parts.iter().map(Vec::len).sum();
        return Err(BroadcastError::TooLong { len, max });
    }
    parts
        .into_iter()
        .map(|text| {
            let payload = MessengerPayload {
                from: from.clone(),
                to: to.clone(),
                text,
            };
            Ok(MailslotWrite::messenger(payload.to_bytes()?).to_bytes()?)
        })
        .collect()
}

/// Every datagram of `message` to every target, in order: each interface's
/// broadcast address, then the extra addresses and the relays. Datagram ids
/// count up from `first_id`.
pub fn datagrams(
    message: &Broadcast<'_>,
    targets: &Targets<'_>,
    first_id: u16,
) -> Result<Vec<Outgoing>, BroadcastError> {
    let writes = writes(message)?;
    let first_ip = targets
        .interfaces
        .first()
        .map_or(Ipv4Addr::UNSPECIFIED, |i| i.address);
    let on_interfaces = targets
        .interfaces
        .iter()
        .filter_map(|i| i.broadcast.map(|b| (i.address, b)));
    let elsewhere = targets.extra.iter().chain(targets.relays);
    let to: Vec<(Ipv4Addr, Ipv4Addr)> = on_interfaces
        .chain(elsewhere.map(|&t| (first_ip, t)))
        .collect();
    let mut out = Vec::with_capacity(to.len() * writes.len());
    for (source_ip, target) in to {
        for user_data in &writes {
            let datagram = Datagram::Data {
                header: Header {
                    msg_type: MessageType::DIRECT_GROUP,
                    flags: flags::FIRST | flags::NODE_H,
                    id: first_id.wrapping_add(out.len() as u16),
                    source_ip,
                    source_port: targets.port,
                },
                packet_offset: 0,
                source_name: message.source.into(),
                destination_name: message.domain.into(),
                user_data: user_data.clone(),
            };
            out.push(Outgoing {
                source_ip,
                target,
                bytes: datagram.to_bytes()?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailslot::{receive, Addressed};
    use crate::sim::interface;

    fn workgroup() -> NetbiosName {
        NetbiosName::new("WORKGROUP", 0).unwrap()
    }

    fn message<'a>(text: &'a str, split: bool) -> Broadcast<'a> {
        Broadcast {
            domain: workgroup(),
            source: NetbiosName::new("LABSRV", 0).unwrap(),
            from: "alice",
            text,
            split,
            code_page: CodePage::Cp850,
        }
    }

    #[test]
    fn one_datagram_per_target_from_the_interface_that_reaches_it() {
        let lan = interface(Ipv4Addr::new(192, 0, 2, 10), 24);
        let lo = Interface {
            address: Ipv4Addr::LOCALHOST,
            broadcast: None,
            netmask: None,
            mac: [0; 6],
        };
        let targets = Targets {
            interfaces: &[lan, lo],
            extra: &[Ipv4Addr::new(198, 51, 100, 255)],
            relays: &[Ipv4Addr::new(203, 0, 113, 7)],
            port: 138,
        };
        let out = datagrams(
            &message("Server going down\nin 5 minutes", false),
            &targets,
            7,
        )
        .unwrap();
        let sent: Vec<(Ipv4Addr, Ipv4Addr)> = out.iter().map(|o| (o.source_ip, o.target)).collect();
        assert_eq!(
            sent,
            [
                (lan.address, Ipv4Addr::new(192, 0, 2, 255)),
                (lan.address, Ipv4Addr::new(198, 51, 100, 255)),
                (lan.address, Ipv4Addr::new(203, 0, 113, 7)),
            ]
        );
        for (i, o) in out.iter().enumerate() {
            let Ok(Datagram::Data {
                header,
                source_name,
                ..
            }) = Datagram::parse(&o.bytes)
            else {
                panic!()
            };
            assert_eq!(header.msg_type, MessageType::DIRECT_GROUP);
            assert_eq!(header.id, 7 + i as u16);
            assert_eq!((header.source_ip, header.source_port), (lan.address, 138));
            assert_eq!(source_name.name, NetbiosName::new("LABSRV", 0).unwrap());
            // What a host of the workgroup takes from it.
            let got = receive(&o.bytes, &workgroup(), &|_| false, CodePage::Cp850).unwrap();
            assert_eq!(got.addressed, Addressed::Broadcast);
            assert_eq!(got.origin, lan.address);
            assert_eq!(got.message.from, "alice");
            assert_eq!(got.message.to, "WORKGROUP");
            assert_eq!(got.message.text, "Server going down\nin 5 minutes");
        }
        // No interface at all: nothing to send (the driver reports it).
        let none = Targets {
            interfaces: &[],
            extra: &[],
            relays: &[],
            port: 138,
        };
        assert!(datagrams(&message("hi", false), &none, 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_long_text_is_refused_or_split_without_cutting_a_character() {
        let lan = interface(Ipv4Addr::new(192, 0, 2, 10), 24);
        let targets = Targets {
            interfaces: &[lan],
            extra: &[],
            relays: &[],
            port: 138,
        };
        let text = "é".repeat(1000);
        let err = datagrams(&message(&text, false), &targets, 0).unwrap_err();
        let BroadcastError::TooLong { len, max } = err else {
            panic!("{err:?}")
        };
        assert_eq!(len, 1000);
        assert!(max < 1000);
        assert_eq!(
            err.to_string(),
            format!("the broadcast text is 1000 bytes; one datagram holds at most {max}")
        );
        let out = datagrams(&message(&text, true), &targets, 0).unwrap();
        assert!(out.len() > 1);
        let texts: Vec<String> = out
            .iter()
            .map(|o| {
                receive(&o.bytes, &workgroup(), &|_| false, CodePage::Cp850)
                    .unwrap()
                    .message
                    .text
            })
            .collect();
        assert_eq!(texts.concat(), text);
        assert!(out
            .iter()
            .all(|o| o.bytes.len() <= netsend_wire::nbds::MAX_DATAGRAM_LEN));
    }
}

//! Where a reply to a received message goes (`netsend reply ID`, and the
//! automatic answers of [`crate::away`]): the pure part.
//!
//! A reply goes to the sender's name at the host the message came from.
//! The sender name is resolved like any name ([`first_step`] is given the
//! outcome); when it resolves to that host, the reply goes there under it.
//! When it is not registered anywhere (`smbclient -M -U someone` claims any
//! name), resolves to another host (two people of one name, or a spoofed
//! sender), or is not a NetBIOS name at all, the reply goes to the source
//! host's computer name instead, found in its node status
//! ([`computer_name`]), and the caller is told why ([`Fallback`]).
//! Broadcasts are replied to the same way: at the host that sent them.

use std::net::{IpAddr, SocketAddr};

use netsend_wire::name::suffix;
use netsend_wire::nbns::{name_flags, NodeName, Packet, RData};
use netsend_wire::{CodePage, NetbiosName};

/// What resolving the sender's name gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The name is registered at this session address.
    At(SocketAddr),
    /// Nobody answered for it (or several hosts did).
    NotFound,
    /// The sender name is no NetBIOS name (too long, empty, unencodable).
    NotAName,
}

/// Why a reply does not go to the sender's own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The sender's name is not registered anywhere.
    NotRegistered,
    /// The sender's name is registered at another host than the one the
    /// message came from.
    Elsewhere(IpAddr),
    /// The sender's name cannot be a NetBIOS name.
    NotAName,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRegistered => {
                f.write_str("the sender's name is not registered on the network")
            }
            Self::Elsewhere(ip) => write!(
                f,
                "the sender's name is registered at {ip}, not at the host the message came from"
            ),
            Self::NotAName => f.write_str("the sender's name is not a NetBIOS name"),
        }
    }
}

/// The next step of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send to the sender's own name at this address.
    Send {
        /// The name (the sender's, as claimed).
        name: String,
        /// Its session address, the host the message came from.
        address: SocketAddr,
    },
    /// Ask the source host for its node status and reply to its computer
    /// name ([`computer_name`]) at `address`.
    NodeStatus {
        /// The source host's session address.
        address: SocketAddr,
        /// Why the sender's own name is not used.
        why: Fallback,
    },
}

/// The address a stored message's `source` (`IP:port`, or an IP) names.
pub fn source_ip(source: &str) -> Option<IpAddr> {
    source
        .parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| source.parse::<IpAddr>())
        .ok()
}

/// Decides the first step of a reply to `sender`, whose message came from
/// `source`, once its name was resolved (`resolved`); `session_port` is the
/// port to reach the source host's session service on when its own name
/// does not say.
pub fn first_step(sender: &str, source: IpAddr, session_port: u16, resolved: Resolved) -> Step {
    let at_source = SocketAddr::new(source, session_port);
    match resolved {
        Resolved::At(address) if address.ip() == source => Step::Send {
            name: sender.trim().to_owned(),
            address,
        },
        Resolved::At(address) => Step::NodeStatus {
            address: at_source,
            why: Fallback::Elsewhere(address.ip()),
        },
        Resolved::NotFound => Step::NodeStatus {
            address: at_source,
            why: Fallback::NotRegistered,
        },
        Resolved::NotAName => Step::NodeStatus {
            address: at_source,
            why: Fallback::NotAName,
        },
    }
}

/// Whether `sender` can be resolved at all (a NetBIOS name in `code_page`).
pub fn is_name(sender: &str, code_page: CodePage) -> bool {
    NetbiosName::with_code_page(sender.trim(), suffix::MESSENGER, code_page).is_ok()
}

/// The computer name in a host's node status, to send a reply to.
///
/// The messenger name of a host's computer is its unique `NAME<03>` that is
/// also its unique `NAME<00>` (Windows and Samba's nmbd both register the
/// computer name with both suffixes; a logged-in user's `<03>` has no
/// `<00>`). So the choice is, in order: a unique `<03>` name that is also a
/// unique `<00>` name; else the first unique `<00>` name (a workstation
/// without a messenger name listed still takes sessions for it, as smbd
/// does); else the first unique `<03>` name. Group names, names in conflict
/// or being released are never chosen. `None`: nothing usable.
pub fn computer_name(names: &[NodeName], code_page: CodePage) -> Option<String> {
    let usable = |n: &&NodeName| {
        n.flags & (name_flags::GROUP | name_flags::CONFLICT | name_flags::DEREGISTERING) == 0
    };
    let with_suffix = |s: u8| {
        names
            .iter()
            .filter(usable)
            .filter(move |n| n.name.suffix() == s)
            .map(|n| n.name.trimmed().to_vec())
    };
    let workstations: Vec<Vec<u8>> = with_suffix(suffix::WORKSTATION).collect();
    let chosen = with_suffix(suffix::MESSENGER)
        .find(|m| workstations.contains(m))
        .or_else(|| workstations.first().cloned())
        .or_else(|| with_suffix(suffix::MESSENGER).next())?;
    let text = NetbiosName::from_oem_lossy(&chosen, suffix::MESSENGER).to_text(code_page);
    (!text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// The node status request to send to a host for its names (`*<00>`,
/// as `nmblookup -A` asks).
pub fn node_status_request(trn_id: u16) -> Result<Vec<u8>, netsend_wire::EncodeError> {
    Packet::node_status_request(trn_id, NetbiosName::WILDCARD, false).to_bytes()
}

/// The names of a node status answer to our request `trn_id`; `None` for
/// anything else (another transaction, a request, malformed bytes).
pub fn node_status_names(reply: &[u8], trn_id: u16) -> Option<Vec<NodeName>> {
    let packet = Packet::parse(reply).ok()?;
    if packet.trn_id != trn_id || !packet.flags.response {
        return None;
    }
    packet.answers.into_iter().find_map(|rr| match rr.rdata {
        RData::NodeStatus(status) => Some(status.names),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsend_wire::nbns::NodeStatus;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const CP: CodePage = CodePage::Cp850;

    fn unique(name: &str, suffix: u8) -> NodeName {
        NodeName {
            name: NetbiosName::new(name, suffix).unwrap(),
            flags: name_flags::ACTIVE,
        }
    }

    fn group(name: &str, suffix: u8) -> NodeName {
        NodeName {
            flags: name_flags::ACTIVE | name_flags::GROUP,
            ..unique(name, suffix)
        }
    }

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 41));

    #[test]
    fn a_name_registered_at_the_source_gets_the_reply() {
        let at = SocketAddr::new(SRC, 139);
        assert_eq!(
            first_step(" bob ", SRC, 139, Resolved::At(at)),
            Step::Send {
                name: "bob".into(),
                address: at
            }
        );
        // A netsend host on another port answers with its port.
        let at = SocketAddr::new(SRC, 1139);
        assert_eq!(
            first_step("bob", SRC, 139, Resolved::At(at)),
            Step::Send {
                name: "bob".into(),
                address: at
            }
        );
    }

    #[test]
    fn an_unregistered_elsewhere_or_invalid_name_falls_back_to_node_status() {
        let at_source = SocketAddr::new(SRC, 139);
        let elsewhere = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
        assert_eq!(
            first_step("someone", SRC, 139, Resolved::NotFound),
            Step::NodeStatus {
                address: at_source,
                why: Fallback::NotRegistered
            }
        );
        assert_eq!(
            first_step(
                "bob",
                SRC,
                139,
                Resolved::At(SocketAddr::new(elsewhere, 139))
            ),
            Step::NodeStatus {
                address: at_source,
                why: Fallback::Elsewhere(elsewhere)
            }
        );
        assert_eq!(
            first_step("a name far too long", SRC, 139, Resolved::NotAName),
            Step::NodeStatus {
                address: at_source,
                why: Fallback::NotAName
            }
        );
        assert!(!is_name("a name far too long", CP));
        assert!(is_name("someone", CP));
        assert!(Fallback::Elsewhere(elsewhere)
            .to_string()
            .contains("192.0.2.99"));
    }

    #[test]
    fn the_computer_name_is_the_messenger_name_that_is_also_the_workstation_name() {
        // nmbd: SMBHOST<00><03><20>, the workgroup <00><1e>; a user's <03>
        // listed first must not win.
        let samba = [
            unique("ALICE", 3),
            unique("SMBHOST", 0),
            unique("SMBHOST", 3),
            unique("SMBHOST", 0x20),
            group("TESTGROUP", 0),
            group("TESTGROUP", 0x1e),
        ];
        assert_eq!(computer_name(&samba, CP).as_deref(), Some("SMBHOST"));
        // No <03> at all: the workstation name.
        let no_messenger = [group("WG", 0), unique("PC1", 0), unique("PC1", 0x20)];
        assert_eq!(computer_name(&no_messenger, CP).as_deref(), Some("PC1"));
        // Only a user's <03>: that one.
        assert_eq!(
            computer_name(&[unique("CAROL", 3)], CP).as_deref(),
            Some("CAROL")
        );
        // Group names and names in conflict are never chosen.
        let mut conflict = unique("OLD", 0);
        conflict.flags |= name_flags::CONFLICT;
        assert_eq!(computer_name(&[group("WG", 3), conflict], CP), None);
        assert_eq!(computer_name(&[], CP), None);
    }

    #[test]
    fn the_source_address_is_read_from_the_stored_source() {
        assert_eq!(source_ip("192.0.2.41:49152"), Some(SRC));
        assert_eq!(source_ip("192.0.2.41"), Some(SRC));
        assert_eq!(source_ip("local"), None);
    }

    #[test]
    fn the_names_come_from_the_answer_to_our_request_only() {
        let names = vec![unique("SMBHOST", 0), unique("SMBHOST", 3)];
        let answer = Packet::node_status_response(
            7,
            NetbiosName::WILDCARD.into(),
            NodeStatus::new(names.clone(), [0; 6]),
        )
        .to_bytes()
        .unwrap();
        assert_eq!(node_status_names(&answer, 7), Some(names));
        assert_eq!(node_status_names(&answer, 8), None);
        let request = node_status_request(7).unwrap();
        assert_eq!(node_status_names(&request, 7), None);
        assert_eq!(node_status_names(&answer[..answer.len() - 3], 7), None);
    }

    proptest! {
        /// Arbitrary bytes never make the reader panic.
        #[test]
        fn any_bytes_are_read_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            trn in any::<u16>(),
        ) {
            let _ = node_status_names(&bytes, trn);
        }

        /// Whatever a node status holds, the choice is one of its unique
        /// names and never panics.
        #[test]
        fn any_node_status_gives_one_of_its_unique_names(
            raw in proptest::collection::vec((any::<[u8; 16]>(), any::<u16>()), 0..64)
        ) {
            let names: Vec<NodeName> = raw
                .iter()
                .map(|(bytes, flags)| NodeName { name: NetbiosName::from_raw(*bytes), flags: *flags })
                .collect();
            if let Some(chosen) = computer_name(&names, CP) {
                prop_assert!(!chosen.is_empty());
                prop_assert!(names.iter().any(|n| n.flags & name_flags::GROUP == 0));
            }
        }
    }
}

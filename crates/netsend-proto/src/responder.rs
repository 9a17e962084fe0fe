//! Which name service requests we answer and with what, following nmbd
//! (protocol digest §3.5). At most one reply per request, and never a reply to a
//! broadcast about a name we do not hold, so we cannot be used to amplify.

use std::net::Ipv4Addr;

use netsend_wire::nbns::{
    name_flags, rr_type, NbEntry, NodeName, NodeStatus, NodeType, Opcode, Packet, RData, Rcode,
    MAX_NODE_NAMES,
};
use netsend_wire::NetbiosName;

/// TTL put in positive query responses for our (permanent) names, as Windows does.
pub const NAME_TTL: u32 = 300_000;

/// A name we hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedName {
    /// The name with its suffix.
    pub name: NetbiosName,
    /// Whether it is a group name (the workgroup) rather than unique.
    pub group: bool,
}

/// What the host looks like to the name service.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// The names we hold, in node status order.
    pub names: &'a [OwnedName],
    /// The address of the interface the request arrived on.
    pub address: Ipv4Addr,
    /// The interface's MAC, for node status (zeros are acceptable, as nmbd sends).
    pub mac: [u8; 6],
}

impl Host<'_> {
    fn find(&self, name: &NetbiosName) -> Option<&OwnedName> {
        self.names.iter().find(|n| n.name == *name)
    }
}

/// Whether `request` asks for node status (`nmblookup -A`, `nbtscan`), whose
/// answer lists our names and is rationed (see
/// [`crate::policy::Policy::admit_status`]).
pub fn is_node_status(request: &Packet) -> bool {
    !request.flags.response
        && request.flags.opcode() == Opcode::QUERY
        && request
            .question()
            .is_some_and(|q| q.qtype == rr_type::NBSTAT)
}

/// The reply we owe to `request`, if any.
pub fn answer(request: &Packet, host: &Host<'_>) -> Option<Packet> {
    if request.flags.response {
        return None;
    }
    let question = request.question()?;
    let name = question.name.name;
    let broadcast = request.flags.broadcast;
    match request.flags.opcode() {
        Opcode::QUERY if question.qtype == rr_type::NBSTAT => {
            if !name.is_wildcard() && host.find(&name).is_none() {
                return None;
            }
            // The reply has room for MAX_NODE_NAMES; the computer name and the
            // workgroup come first, so they are always listed.
            let names = host
                .names
                .iter()
                .take(MAX_NODE_NAMES)
                .map(|n| NodeName {
                    name: n.name,
                    flags: name_flags::ACTIVE | if n.group { name_flags::GROUP } else { 0 },
                })
                .collect();
            let status = NodeStatus::new(names, host.mac);
            Some(Packet::node_status_response(
                request.trn_id,
                question.name.clone(),
                status,
            ))
        }
        Opcode::QUERY => match host.find(&name) {
            Some(owned) => {
                let entry = NbEntry::new(owned.group, NodeType::B, host.address);
                Some(Packet::positive_query_response(
                    request.trn_id,
                    question.name.clone(),
                    NAME_TTL,
                    vec![entry],
                ))
            }
            // Never answer a broadcast for a name we lack; stay silent to RD
            // unicast queries too (nmbd's observed-Windows rule).
            None if broadcast || request.flags.recursion_desired => None,
            None => Some(Packet::negative_query_response(
                request.trn_id,
                question.name.clone(),
            )),
        },
        Opcode::REGISTRATION
        | Opcode::MULTIHOMED_REGISTRATION
        | Opcode::REFRESH
        | Opcode::REFRESH_ALT
            if !broadcast =>
        {
            // We are not a WINS server.
            let entry = claimed_entry(request)?;
            let mut reply = Packet::registration_response(
                request.trn_id,
                question.name.clone(),
                Rcode::FMT_ERR,
                0,
                entry,
            );
            reply.flags.opcode = request.flags.opcode;
            Some(reply)
        }
        Opcode::REGISTRATION => {
            let owned = host.find(&name)?;
            let entry = claimed_entry(request)?;
            let conflict = !owned.group || !entry.is_group();
            (conflict && entry.address != host.address).then(|| {
                Packet::registration_response(
                    request.trn_id,
                    question.name.clone(),
                    Rcode::ACT_ERR,
                    0,
                    entry,
                )
            })
        }
        Opcode::RELEASE => {
            let owned = host.find(&name)?;
            let entry = claimed_entry(request)?;
            (!owned.group && entry.address != host.address).then(|| {
                Packet::release_response(
                    request.trn_id,
                    question.name.clone(),
                    Rcode::ACT_ERR,
                    entry,
                )
            })
        }
        _ => None,
    }
}

/// The NB entry a registration, refresh or release claims.
fn claimed_entry(request: &Packet) -> Option<NbEntry> {
    request.additional.iter().find_map(|rr| match &rr.rdata {
        RData::Nb(entries) => entries.first().copied(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<OwnedName> {
        vec![
            OwnedName {
                name: NetbiosName::new("HOST1", 0).unwrap(),
                group: false,
            },
            OwnedName {
                name: NetbiosName::new("HOST1", 3).unwrap(),
                group: false,
            },
            OwnedName {
                name: NetbiosName::new("ALICE", 3).unwrap(),
                group: false,
            },
            OwnedName {
                name: NetbiosName::new("WORKGROUP", 0).unwrap(),
                group: true,
            },
        ]
    }
    const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    fn reply(req: &Packet) -> Option<Packet> {
        let names = names();
        answer(
            req,
            &Host {
                names: &names,
                address: IP,
                mac: [0; 6],
            },
        )
    }

    #[test]
    fn queries() {
        let alice = NetbiosName::new("ALICE", 3).unwrap();
        let r = reply(&Packet::name_query(1, alice, true)).unwrap();
        assert_eq!(r.flags.to_word(), 0x8580);
        assert_eq!(
            r.answers[0].rdata,
            RData::Nb(vec![NbEntry::new(false, NodeType::B, IP)])
        );
        let bob = NetbiosName::new("BOB", 3).unwrap();
        assert!(reply(&Packet::name_query(2, bob, true)).is_none());
        assert_eq!(
            reply(&Packet::name_query(3, bob, false))
                .unwrap()
                .flags
                .to_word(),
            0x8583
        );
        let mut rd = Packet::name_query(4, bob, false);
        rd.flags.recursion_desired = true;
        assert!(reply(&rd).is_none());
        // Responses are never answered.
        assert!(reply(&r).is_none());
    }

    #[test]
    fn node_status_lists_names() {
        let r = reply(&Packet::node_status_request(5, NetbiosName::WILDCARD, true)).unwrap();
        let RData::NodeStatus(status) = &r.answers[0].rdata else {
            panic!()
        };
        assert_eq!(status.names.len(), 4);
        assert_eq!(status.names[3].flags, 0x8400);
        assert_eq!(status.names[2].flags, 0x0400);
        let other = NetbiosName::new("OTHER", 0).unwrap();
        assert!(reply(&Packet::node_status_request(6, other, false)).is_none());
        assert!(is_node_status(&Packet::node_status_request(
            6, other, false
        )));
        assert!(!is_node_status(&r));
        assert!(!is_node_status(&Packet::name_query(7, other, false)));
    }

    #[test]
    fn node_status_of_a_big_table_lists_the_first_names_and_fits() {
        let mut names = names();
        names.extend((0..300).map(|i| OwnedName {
            name: NetbiosName::new(&format!("USER{i}"), 3).unwrap(),
            group: false,
        }));
        let host = Host {
            names: &names,
            address: IP,
            mac: [0; 6],
        };
        let request = Packet::node_status_request(8, NetbiosName::WILDCARD, false);
        let r = answer(&request, &host).unwrap();
        let RData::NodeStatus(status) = &r.answers[0].rdata else {
            panic!()
        };
        assert_eq!(status.names.len(), MAX_NODE_NAMES);
        assert_eq!(status.names[0].name, names[0].name);
        let bytes = r.to_bytes().unwrap();
        assert_eq!(Packet::parse(&bytes).unwrap(), r);
    }

    #[test]
    fn registrations_of_our_names_are_defended() {
        let alice = NetbiosName::new("ALICE", 3).unwrap();
        let thief = NbEntry::new(false, NodeType::B, Ipv4Addr::new(192, 0, 2, 11));
        let r = reply(&Packet::registration_request(7, alice, thief)).unwrap();
        assert_eq!(r.flags.to_word(), 0xAD86);
        assert_eq!(r.answers[0].rdata, RData::Nb(vec![thief]));
        // Our own registration echoing back, and group joins, are not opposed.
        let ours = NbEntry::new(false, NodeType::B, IP);
        assert!(reply(&Packet::registration_request(8, alice, ours)).is_none());
        let wg = NetbiosName::new("WORKGROUP", 0).unwrap();
        let join = NbEntry::new(true, NodeType::B, Ipv4Addr::new(192, 0, 2, 11));
        assert!(reply(&Packet::registration_request(9, wg, join)).is_none());
        // Someone else's name: silence.
        let bob = NetbiosName::new("BOB", 3).unwrap();
        assert!(reply(&Packet::registration_request(10, bob, thief)).is_none());
        // Releasing our name from elsewhere: ACT_ERR.
        assert_eq!(
            reply(&Packet::release_request(11, alice, thief))
                .unwrap()
                .flags
                .to_word(),
            0xB406
        );
    }
}

//! UDP driver of the name service: answers name queries and node status requests
//! for our names, using the pure rules of [`netsend_proto::responder`], and
//! hands unicast requests to the WINS server when `[wins_server]` runs one;
//! with `[gateway]` set, broadcast queries for names held at other sites
//! are answered by the gateway's name directory.

use std::net::SocketAddr;
use std::sync::Arc;

use netsend_wire::nbns;
use tokio::net::UdpSocket;

use netsend_proto::responder::{self, Host, OwnedName};
use netsend_wire::name::suffix;
use netsend_wire::NetbiosName;

use crate::naming::aliases::AliasTable;
use crate::service::Service;
use crate::system::net::Interface;
use netsend_proto::display::LogSafe;

/// Largest name service datagram read (RFC 1002's limit is 576; be generous).
const MAX_NBNS_DATAGRAM: usize = 1500;

/// Serves one name service socket until shutdown.
pub(crate) async fn serve(service: Arc<Service>, socket: Arc<UdpSocket>, iface: Interface) {
    let mut buf = vec![0u8; MAX_NBNS_DATAGRAM];
    loop {
        let (len, peer) = tokio::select! {
            _ = service.shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => { tracing::debug!(error = %LogSafe(&e), "name service receive failed"); continue; }
            },
        };
        if let SocketAddr::V4(src) = peer {
            // Answers to our registrations and checks go to the registration
            // state machines, and so do release requests (which the
            // responder answers too).
            let flags = buf.get(2).copied().unwrap_or(0);
            let response = flags & 0x80 != 0;
            if response || (flags >> 3) & 0x0F == nbns::Opcode::RELEASE.0 {
                service
                    .naming
                    .registrar
                    .handle_datagram(iface.address, src, &buf[..len]);
            }
            if response {
                // Answers to the WINS server's challenges.
                if let Some(wins) = &service.wins {
                    let none = Host {
                        names: &[],
                        address: iface.address,
                        mac: iface.mac,
                    };
                    wins.handle_datagram(&service.shutdown, &socket, &none, src, &buf[..len]);
                }
                continue;
            }
        }
        let packet = match nbns::Packet::parse(&buf[..len]) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%peer, error = %LogSafe(&e), "ignoring malformed name service packet");
                continue;
            }
        };
        if responder::is_node_status(&packet) && !service.admission.admit_status(peer) {
            tracing::debug!(%peer, "node status request not answered");
            continue;
        }
        let reply = {
            let names = service
                .naming
                .registrar
                .owned(iface.address)
                .unwrap_or_else(|| {
                    let aliases = service.naming.aliases.lock().expect("alias table lock");
                    our_names(&service, &aliases)
                });
            let host = Host {
                names: &names,
                address: iface.address,
                mac: iface.mac,
            };
            match (&service.wins, peer) {
                (Some(wins), SocketAddr::V4(src)) if for_wins_server(&packet) => {
                    wins.handle_datagram(&service.shutdown, &socket, &host, src, &buf[..len]);
                    None
                }
                _ => responder::answer(&packet, &host)
                    .or_else(|| {
                        // A broadcast query for a name held at another site
                        // is answered by this site's gateway.
                        let gateway = service.gateway.as_ref()?;
                        gateway.names.answer_broadcast(&packet, iface.address, |n| {
                            crate::gateway::names::in_wins(service.wins.as_ref(), n)
                        })
                    })
                    .and_then(|p| p.to_bytes().ok()),
            }
        };
        if let Some(reply) = reply {
            tracing::debug!(%peer, request = %LogSafe(&packet), "name service reply");
            if let Err(e) = socket.send_to(&reply, peer).await {
                tracing::debug!(%peer, error = %LogSafe(&e), "name service reply failed");
            }
        }
    }
}

/// Whether a WINS server takes `packet`: a unicast (B bit clear) name
/// query, registration, refresh or release; node status and broadcasts stay
/// with the responder.
fn for_wins_server(packet: &nbns::Packet) -> bool {
    use nbns::Opcode;
    let op = packet.flags.opcode();
    !packet.flags.broadcast
        && packet
            .question()
            .is_some_and(|q| q.qtype == nbns::rr_type::NB)
        && matches!(
            op,
            Opcode::QUERY
                | Opcode::REGISTRATION
                | Opcode::MULTIHOMED_REGISTRATION
                | Opcode::REFRESH
                | Opcode::REFRESH_ALT
                | Opcode::RELEASE
        )
}

/// The names we hold, in node status order: the computer name `<00>` and
/// `<03>`, the workgroup `<00>` (group), then every other message alias `<03>`
/// (a node status reply lists the first 64).
fn our_names(service: &Service, aliases: &AliasTable) -> Vec<OwnedName> {
    let computer = aliases.computer_name();
    let mut names = vec![OwnedName {
        name: computer.with_suffix(suffix::WORKSTATION),
        group: false,
    }];
    let mut alias_names = aliases.names();
    names.extend(
        alias_names
            .next()
            .map(|name| OwnedName { name, group: false }),
    );
    if let Ok(workgroup) = NetbiosName::with_code_page(
        &service.config.get().workgroup,
        suffix::WORKSTATION,
        service.config.get().code_page,
    ) {
        names.push(OwnedName {
            name: workgroup,
            group: true,
        });
    }
    names.extend(alias_names.map(|name| OwnedName { name, group: false }));
    names
}

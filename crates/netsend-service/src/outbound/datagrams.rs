//! Datagrams we send on UDP 138: `\\MAILSLOT\\MESSNGR` broadcasts for `*` and
//! `/DOMAIN` (which datagrams, to where, is `netsend_proto::broadcast`'s
//! decision), and the socket every outgoing datagram leaves from.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use netsend_proto::broadcast::{self, Broadcast, BroadcastError, Targets};
use netsend_proto::display::LogSafe;
use netsend_wire::name::suffix;
use netsend_wire::NetbiosName;
use tokio::net::UdpSocket;

use super::Outbound;

/// Sends `datagram` to `target` (broadcast allowed) from a socket bound to
/// `source`.
pub(crate) async fn send_from(
    source: Ipv4Addr,
    datagram: &[u8],
    target: SocketAddrV4,
) -> std::io::Result<()> {
    let socket = UdpSocket::bind(SocketAddrV4::new(source, 0)).await?;
    let _ = socket.set_broadcast(true);
    socket
        .send_to(datagram, SocketAddr::V4(target))
        .await
        .map(drop)
}

/// Sends a MESSNGR datagram to `domain<00>` on every interface's broadcast
/// address (and the configured extra ones and relays; see
/// [`broadcast::datagrams`]). Returns how many were sent.
pub(crate) async fn broadcast(
    outbound: &Outbound,
    domain: &str,
    from: &str,
    text: &str,
    split: bool,
) -> Result<usize, crate::outbound::send::SendFailure> {
    use crate::outbound::send::SendFailure;
    let config = outbound.config.get();
    let group = NetbiosName::with_code_page(domain, suffix::WORKSTATION, config.code_page)
        .map_err(|e| SendFailure::InvalidParameter(format!("domain {domain:?}: {e}")))?;
    let source = outbound.naming.datagram_source();
    broadcast_as(outbound, group, source, from, text, split).await
}

/// [`broadcast`] to `group` (`NAME<00>`) with `source` as the datagrams'
/// source name: a site gateway's re-broadcast keeps the originator's.
pub(crate) async fn broadcast_as(
    outbound: &Outbound,
    group: NetbiosName,
    source: NetbiosName,
    from: &str,
    text: &str,
    split: bool,
) -> Result<usize, crate::outbound::send::SendFailure> {
    use crate::outbound::send::SendFailure;
    let config = outbound.config.get();
    let message = Broadcast {
        domain: group,
        source,
        from,
        text,
        split,
        code_page: config.code_page,
    };
    let network = &config.network;
    let targets = Targets {
        interfaces: &outbound.host.interfaces,
        extra: &network.broadcast,
        relays: &network.relays,
        port: network.datagram_port,
    };
    let first_id = crate::naming::registrar::random_trn_id();
    let outgoing = broadcast::datagrams(&message, &targets, first_id).map_err(|e| match e {
        BroadcastError::TooLong { len, max } => SendFailure::TruncatedBroadcast(len, max),
        BroadcastError::Encode(e) => SendFailure::InvalidParameter(e.to_string()),
    })?;
    let mut sent = 0;
    for datagram in outgoing {
        let target = SocketAddrV4::new(datagram.target, targets.port);
        match send_from(datagram.source_ip, &datagram.bytes, target).await {
            Ok(()) => sent += 1,
            Err(e) => tracing::warn!(%target, error = %LogSafe(&e), "broadcast send failed"),
        }
    }
    if sent == 0 {
        return Err(SendFailure::NoBroadcastInterface);
    }
    outbound.metrics.sent("mailslot", sent as u64);
    Ok(sent)
}

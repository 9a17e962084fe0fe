//! Receipts we send: a datagram on `\MAILSLOT\NETSEND\RECEIPT` telling the
//! host a directed message came from that it was shown or read (the codec
//! is `netsend_proto::receipt`).

use std::net::{Ipv4Addr, SocketAddrV4};

use super::Outbound;

/// Sends `receipt` to the datagram service at `peer`, from the interface
/// that reaches it (the first served address).
pub(crate) async fn send(
    outbound: &Outbound,
    peer: Ipv4Addr,
    receipt: &netsend_proto::receipt::Receipt,
) -> std::io::Result<()> {
    let interfaces = &outbound.host.interfaces;
    let source_ip = interfaces
        .iter()
        .find(|i| i.is_on_link(peer))
        .or_else(|| interfaces.first())
        .map_or(Ipv4Addr::UNSPECIFIED, |i| i.address);
    let port = outbound.config.network.datagram_port;
    let source = outbound.naming.datagram_source();
    let bytes = netsend_proto::receipt::to_datagram(
        receipt,
        source,
        source_ip,
        port,
        crate::naming::registrar::random_trn_id(),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    super::datagrams::send_from(source_ip, &bytes, SocketAddrV4::new(peer, port)).await
}

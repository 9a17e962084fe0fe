//! UDP driver of the datagram service: receives `\MAILSLOT\MESSNGR` messages
//! (what `NET SEND *` and `/DOMAIN` send) and stores the ones for us; sends them
//! for broadcasts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use netsend_proto::mailslot::{self, Addressed, Received};
use netsend_wire::name::suffix;
use netsend_wire::nbds::{flags, Datagram, Header, MessageType};
use netsend_wire::oem::LineBreaks;
use netsend_wire::smb::mailslot::{MailslotWrite, MessengerPayload};
use netsend_wire::NetbiosName;
use tokio::net::UdpSocket;

use netsend_proto::policy::DropReason;

use crate::service::Service;
use crate::store::{InboxError, Transport};
use netsend_proto::display::LogSafe;

/// Largest datagram read.
const MAX_DATAGRAM: usize = 1500;

/// Serves one datagram socket until shutdown.
pub(crate) async fn serve(service: Arc<Service>, socket: UdpSocket) {
    let mut stop = service.stop_signal();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, peer) = tokio::select! {
            _ = stop.changed() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => { tracing::debug!(error = %LogSafe(&e), "datagram receive failed"); continue; }
            },
        };
        let IpAddr::V4(peer_ip) = peer.ip() else {
            continue;
        };
        if let Some(receipt) = netsend_proto::receipt::from_datagram(&buf[..len]) {
            if service.admit_address(peer) {
                take_receipt(&service, peer_ip, receipt).await;
            }
            continue;
        }
        let Some(received) = messenger_message(&service, &buf[..len]) else {
            continue;
        };
        let is_ours = |ip: Ipv4Addr| service.interfaces.iter().any(|i| i.address == ip);
        if is_ours(peer_ip) && !is_ours(received.origin) {
            // Our own relayed copy of another host's broadcast, heard back.
            continue;
        }
        let broadcast = received.addressed == Addressed::Broadcast;
        let message = received.message;
        if !service.admit_datagram(peer, &message.from) {
            continue;
        }
        if broadcast && should_relay(&service, peer_ip, received.origin) {
            relay(&service, &buf[..len], peer_ip).await;
        }
        let mut record = service.new_message(&message, peer, Transport::Mailslot);
        record.broadcast = broadcast;
        match service.inbox.store(record).await {
            Ok(stored) => {
                tracing::info!(event = "receive", id = stored.id, from = %LogSafe(&message.from), to = %LogSafe(&message.to), %peer, transport = "mailslot", broadcast, "message stored");
                service.delivered(stored);
            }
            Err(InboxError::QuotaExceeded(_)) => {
                service.count_drop(
                    DropReason::InboxQuota,
                    peer,
                    &message.from,
                    std::time::Duration::ZERO,
                );
            }
            Err(e) => {
                tracing::error!(error = %LogSafe(&e), %peer, "inbox commit failed: mailslot message dropped")
            }
        }
    }
}

/// The name our datagrams come from: the computer name `<00>`.
fn datagram_source_name(service: &Service) -> NetbiosName {
    service
        .aliases
        .lock()
        .expect("alias table lock")
        .computer_name()
        .with_suffix(suffix::WORKSTATION)
}

/// Applies a receipt from `peer` to what we sent there.
async fn take_receipt(service: &Service, peer: Ipv4Addr, receipt: netsend_proto::receipt::Receipt) {
    let state = receipt.state.as_str();
    let op = crate::store::SentOp::Receipt {
        address: peer.to_string(),
        receipt,
    };
    match service.inbox.sent_change(op).await {
        Ok(0) => tracing::debug!(%peer, state, "receipt matches nothing we sent"),
        Ok(_) => tracing::info!(%peer, state, "receipt received"),
        Err(e) => tracing::warn!(%peer, error = %LogSafe(&e), "cannot record a receipt"),
    }
}

/// Sends `receipt` to the datagram service at `peer`, from the interface
/// that reaches it (the first served address).
pub(crate) async fn send_receipt(
    service: &Service,
    peer: Ipv4Addr,
    receipt: &netsend_proto::receipt::Receipt,
) -> std::io::Result<()> {
    let source_ip = service
        .interfaces
        .iter()
        .find(|i| i.is_on_link(peer))
        .or_else(|| service.interfaces.first())
        .map_or(Ipv4Addr::UNSPECIFIED, |i| i.address);
    let port = service.config.network.datagram_port;
    let source = datagram_source_name(service);
    let bytes = netsend_proto::receipt::to_datagram(
        receipt,
        source,
        source_ip,
        port,
        crate::naming::registrar::random_trn_id(),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let socket = UdpSocket::bind(SocketAddrV4::new(source_ip, 0)).await?;
    socket
        .send_to(&bytes, SocketAddr::V4(SocketAddrV4::new(peer, port)))
        .await
        .map(drop)
}

/// Whether a domain broadcast that reached us from `peer` should be
/// re-broadcast into our subnets: it came straight from its originator (not
/// already relayed), from outside our subnets (a local broadcast was heard by
/// everyone already), and `network.relay_from` lets that host use us.
fn should_relay(service: &Service, peer: Ipv4Addr, origin: Ipv4Addr) -> bool {
    peer == origin
        && !service.interfaces.iter().any(|i| i.is_on_link(peer))
        && service
            .relay_from
            .iter()
            .any(|n| n.contains(&IpAddr::V4(peer)))
}

/// Re-broadcasts a domain datagram, unchanged (the originator stays in its
/// header), on every interface that has a broadcast address.
async fn relay(service: &Service, datagram: &[u8], peer: Ipv4Addr) {
    let port = service.config.network.datagram_port;
    for iface in &service.interfaces {
        let Some(target) = iface.broadcast else {
            continue;
        };
        let Ok(socket) = UdpSocket::bind(SocketAddrV4::new(iface.address, 0)).await else {
            continue;
        };
        let _ = socket.set_broadcast(true);
        match socket
            .send_to(datagram, SocketAddr::V4(SocketAddrV4::new(target, port)))
            .await
        {
            Ok(_) => tracing::info!(%peer, %target, "domain broadcast relayed"),
            Err(e) => tracing::warn!(%peer, %target, error = %LogSafe(&e), "relay failed"),
        }
    }
}

/// Decodes a MESSNGR datagram meant for us (see [`mailslot::receive`]). The
/// `to` of a domain broadcast is the domain, so it is delivered to the
/// computer name.
fn messenger_message(service: &Service, bytes: &[u8]) -> Option<Received> {
    let workgroup = NetbiosName::with_code_page(
        &service.config.workgroup,
        suffix::WORKSTATION,
        service.code_page,
    )
    .ok()?;
    let aliases = service.aliases.lock().expect("alias table lock");
    let mut received = mailslot::receive(
        bytes,
        &workgroup,
        &|name| aliases.find(name).is_some(),
        service.code_page,
    )?;
    if received.addressed == Addressed::Broadcast {
        received.message.to = aliases.computer_name().to_text(service.code_page);
    }
    Some(received)
}

/// Sends a MESSNGR datagram to `domain<00>` on every interface's broadcast
/// address (and the configured extra ones). Returns how many were sent.
pub(crate) async fn broadcast(
    service: &Service,
    domain: &str,
    from: &str,
    text: &str,
    split: bool,
) -> Result<usize, crate::outbound::send::SendFailure> {
    use crate::outbound::send::SendFailure;
    let cp = service.code_page;
    let group = NetbiosName::with_code_page(domain, suffix::WORKSTATION, cp)
        .map_err(|e| SendFailure::InvalidParameter(format!("domain {domain:?}: {e}")))?;
    let oem = |s: &str| cp.encode(s).unwrap_or_else(|_| s.as_bytes().to_vec());
    let from_bytes = oem(from);
    let to_bytes = group.trimmed().to_vec();
    let max = MessengerPayload::max_text_len(&from_bytes, &to_bytes);
    // The same block rules as directed messages: a character or line break is
    // never cut, and each part is CP850 (or UTF-8 if it must be).
    let parts = netsend_wire::oem::encode_message_blocks(text, cp, LineBreaks::CrLf, max);
    if parts.len() > 1 && !split {
        let len = parts.iter().map(Vec::len).sum();
        return Err(SendFailure::TruncatedBroadcast(len, max));
    }
    let mut writes = Vec::with_capacity(parts.len());
    for part in parts {
        let payload = MessengerPayload {
            from: from_bytes.clone(),
            to: to_bytes.clone(),
            text: part,
        };
        let bytes = payload
            .to_bytes()
            .and_then(|p| MailslotWrite::messenger(p).to_bytes())
            .map_err(|e| SendFailure::InvalidParameter(e.to_string()))?;
        writes.push(bytes);
    }
    let source = datagram_source_name(service);
    let port = service.config.network.datagram_port;
    let mut targets: Vec<(Ipv4Addr, Ipv4Addr)> = service
        .interfaces
        .iter()
        .filter_map(|i| i.broadcast.map(|b| (i.address, b)))
        .collect();
    let relays = service.config.network.relays.iter();
    for extra in service.config.network.broadcast.iter().chain(relays) {
        let source_ip = service
            .interfaces
            .first()
            .map_or(Ipv4Addr::UNSPECIFIED, |i| i.address);
        targets.push((source_ip, *extra));
    }
    let mut sent = 0;
    let sends: Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)> = targets
        .iter()
        .flat_map(|&(source_ip, target)| writes.iter().map(move |w| (source_ip, target, w.clone())))
        .collect();
    for (source_ip, target, user_data) in sends {
        let datagram = Datagram::Data {
            header: Header {
                msg_type: MessageType::DIRECT_GROUP,
                flags: flags::FIRST | flags::NODE_H,
                id: crate::naming::registrar::random_trn_id().wrapping_add(sent as u16),
                source_ip,
                source_port: port,
            },
            packet_offset: 0,
            source_name: source.into(),
            destination_name: group.into(),
            user_data,
        };
        let Ok(bytes) = datagram.to_bytes() else {
            continue;
        };
        let Ok(socket) = UdpSocket::bind(SocketAddrV4::new(source_ip, 0)).await else {
            continue;
        };
        let _ = socket.set_broadcast(true);
        match socket
            .send_to(&bytes, SocketAddr::V4(SocketAddrV4::new(target, port)))
            .await
        {
            Ok(_) => sent += 1,
            Err(e) => tracing::warn!(%target, error = %LogSafe(&e), "broadcast send failed"),
        }
    }
    if sent == 0 {
        return Err(SendFailure::NoBroadcastInterface);
    }
    Ok(sent)
}

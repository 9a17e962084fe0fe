//! UDP driver of the datagram service: receives `\MAILSLOT\MESSNGR` messages
//! (what `NET SEND *` and `/DOMAIN` send) and stores the ones for us; sends them
//! for broadcasts. `\MAILSLOT\BROWSE` frames go to the browse component.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use netsend_proto::mailslot::{self, Addressed, Received};
use netsend_proto::relay::{RelayRule, Verdict};
use netsend_wire::name::suffix;
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
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, peer) = tokio::select! {
            _ = service.shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => { tracing::debug!(error = %LogSafe(&e), "datagram receive failed"); continue; }
            },
        };
        let arrived = std::time::Instant::now();
        let IpAddr::V4(peer_ip) = peer.ip() else {
            continue;
        };
        if let Some(receipt) = netsend_proto::receipt::from_datagram(&buf[..len]) {
            if service.admission.admit_address(peer) {
                take_receipt(&service, peer_ip, receipt).await;
            }
            continue;
        }
        if let Some(heard) = netsend_proto::browse::hear(&buf[..len]) {
            if service.admission.admit_browse(peer) {
                let own = service.host.is_own_address(peer.ip());
                service.browse.take(peer_ip, own, &heard);
            }
            continue;
        }
        let from_us = service.host.is_own_address(peer.ip());
        let Some(received) = messenger_message(&service, &buf[..len]) else {
            // Not for us, but perhaps a broadcast to another of the site's
            // domains, which its gateway carries to the other sites.
            if let Some(gateway) = &service.gateway {
                if service.admission.admit_address(peer) {
                    gateway.broadcasts.heard(&buf[..len], peer_ip, from_us);
                }
            }
            continue;
        };
        let rule = RelayRule {
            interfaces: &service.host.interfaces,
            relay_from: &service.relay_from,
        };
        let Verdict::Take { relay_to } = rule.judge(peer_ip, received.origin, received.addressed)
        else {
            // Our own relayed copy of another host's broadcast, heard back.
            continue;
        };
        let broadcast = received.addressed == Addressed::Broadcast;
        let message = received.message;
        // A name that must come verified cannot come by datagram.
        if service.admission.refuses_unverified(peer, &message.from)
            || !service.admission.admit_datagram(peer, &message.from)
        {
            continue;
        }
        relay(&service, &buf[..len], peer_ip, &relay_to).await;
        if let (true, Some(gateway)) = (broadcast, &service.gateway) {
            gateway.broadcasts.heard(&buf[..len], peer_ip, from_us);
        }
        let mut record = service.naming.record(&message, peer, Transport::Mailslot);
        record.broadcast = broadcast;
        record.claimed_by = service.admission.claimed_by(&message.from);
        match service.inbox.store(record).await {
            Ok(stored) => {
                tracing::info!(event = "receive", id = stored.id, from = %LogSafe(&message.from), to = %LogSafe(&message.to), %peer, transport = "mailslot", broadcast, "message stored");
                service
                    .metrics
                    .received("mailslot", arrived.elapsed().as_secs_f64());
                service.delivery.deliver(stored);
            }
            Err(InboxError::QuotaExceeded(_)) => {
                service.admission.count_drop(
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

/// Re-broadcasts a domain datagram, unchanged (the originator stays in its
/// header), to each (source, broadcast address) of `relay_to`.
async fn relay(
    service: &Service,
    datagram: &[u8],
    peer: Ipv4Addr,
    relay_to: &[(Ipv4Addr, Ipv4Addr)],
) {
    let port = service.config.get().network.datagram_port;
    for &(source, target) in relay_to {
        match crate::outbound::datagrams::send_from(
            source,
            datagram,
            SocketAddrV4::new(target, port),
        )
        .await
        {
            Ok(()) => tracing::info!(%peer, %target, "domain broadcast relayed"),
            Err(e) => tracing::warn!(%peer, %target, error = %LogSafe(&e), "relay failed"),
        }
    }
}

/// Decodes a MESSNGR datagram meant for us (see [`mailslot::receive`]). The
/// `to` of a domain broadcast is the domain, so it is delivered to the
/// computer name.
fn messenger_message(service: &Service, bytes: &[u8]) -> Option<Received> {
    let workgroup = NetbiosName::with_code_page(
        &service.config.get().workgroup,
        suffix::WORKSTATION,
        service.config.get().code_page,
    )
    .ok()?;
    let aliases = service.naming.aliases.lock().expect("alias table lock");
    let mut received = mailslot::receive(
        bytes,
        &workgroup,
        &|name| aliases.find(name).is_some(),
        service.config.get().code_page,
    )?;
    if received.addressed == Addressed::Broadcast {
        received.message.to = aliases
            .computer_name()
            .to_text(service.config.get().code_page);
    }
    Some(received)
}

//! Receipts for the sender (`[display] receipts`): when a directed message
//! from another netsend host is first shown or first read here, a datagram
//! on `\MAILSLOT\NETSEND\RECEIPT` tells that host (`netsend status ID`
//! there). The codec is [`netsend_proto::receipt`].
//!
//! Not a [`DeliveryChannel`](super::DeliveryChannel): a channel runs when a
//! message is stored, and a receipt is never sent then, only at the later
//! moment it is shown (a terminal took it, `netsend agent` showed it) or
//! read (`netsend inbox read`). So this is a component of its own, which
//! the terminals channel and the control handlers call at those moments.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use netsend_proto::display::LogSafe;
use netsend_proto::receipt::{Receipt, ReceiptState};
use netsend_wire::name::suffix;
use netsend_wire::NetbiosName;

use crate::config::Config;
use crate::naming::aliases::AliasTable;
use crate::shutdown::Shutdown;
use crate::store::{StoredMessage, Transport};
use crate::system::net::Interface;

/// Sends receipts, or (with `[display] receipts` off) none.
#[derive(Clone)]
pub(crate) struct Receipts(Option<(Arc<Sender>, Shutdown)>);

/// Where receipts go out from.
struct Sender {
    /// Interfaces served: a receipt leaves from the one that reaches the peer.
    interfaces: Vec<Interface>,
    /// The datagram service's port, ours and the peer's.
    port: u16,
    /// The name receipts come from: the computer name `<00>`.
    source: NetbiosName,
}

impl Receipts {
    /// Receipts as `[display] receipts` says, from the computer name of
    /// `aliases` on the datagram port.
    pub(crate) fn from_config(
        config: &Config,
        interfaces: &[Interface],
        aliases: &Mutex<AliasTable>,
        shutdown: &Shutdown,
    ) -> Self {
        if !config.display.receipts {
            return Self(None);
        }
        let source = aliases
            .lock()
            .expect("alias table lock")
            .computer_name()
            .with_suffix(suffix::WORKSTATION);
        let port = config.network.datagram_port;
        Self::sending(interfaces.to_vec(), port, source, shutdown.clone())
    }

    /// Receipts sent from `source` to the datagram service on `port`, each
    /// on a task of `shutdown`'s.
    pub(crate) fn sending(
        interfaces: Vec<Interface>,
        port: u16,
        source: NetbiosName,
        shutdown: Shutdown,
    ) -> Self {
        let sender = Sender {
            interfaces,
            port,
            source,
        };
        Self(Some((Arc::new(sender), shutdown)))
    }

    /// Tells the host a directed message came from that it was shown or
    /// read, on a task of its own: a datagram to its datagram port. Only a
    /// directed message that came over a session (or the remote channel) from an IPv4 peer gets
    /// one; broadcasts and mailslot messages get none.
    pub(crate) fn send(&self, message: &StoredMessage, state: ReceiptState) {
        let Some((sender, shutdown)) = &self.0 else {
            return;
        };
        if message.broadcast || !matches!(message.transport, Transport::Session | Transport::Remote)
        {
            return;
        }
        let Ok(SocketAddr::V4(peer)) = message.source.parse::<SocketAddr>() else {
            return;
        };
        let receipt = Receipt {
            state,
            at_ms: crate::store::now_ms(),
            digest: netsend_proto::receipt::digest(&message.text),
            to: message.to.clone(),
            from: message.from.clone(),
        };
        let (sender, id) = (sender.clone(), message.id);
        shutdown.spawn(async move {
            match sender.send(*peer.ip(), &receipt).await {
                Ok(()) => {
                    tracing::info!(id, peer = %peer.ip(), state = state.as_str(), "receipt sent")
                }
                Err(e) => {
                    tracing::info!(id, peer = %peer.ip(), error = %LogSafe(&e), "receipt not sent")
                }
            }
        });
    }
}

impl Sender {
    /// Sends `receipt` to the datagram service at `peer`, from the interface
    /// that reaches it (the first served address).
    async fn send(&self, peer: Ipv4Addr, receipt: &Receipt) -> std::io::Result<()> {
        let source_ip = self
            .interfaces
            .iter()
            .find(|i| i.is_on_link(peer))
            .or_else(|| self.interfaces.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |i| i.address);
        let bytes = netsend_proto::receipt::to_datagram(
            receipt,
            self.source,
            source_ip,
            self.port,
            crate::naming::registrar::random_trn_id(),
        )
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let target = SocketAddrV4::new(peer, self.port);
        crate::outbound::datagrams::send_from(source_ip, &bytes, target).await
    }
}

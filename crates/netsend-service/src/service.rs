//! The components every driver is handed. They are built in one place, the
//! start-up module's `run`; this module only carries them, and imports
//! neither the drivers nor start-up.

use std::sync::Arc;

use crate::admission::Admission;
use crate::config::Config;
use crate::naming::Naming;
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;
use crate::store::InboxHandle;
use crate::system::host::Host;
use netsend_proto::display::LogSafe;

/// The components every driver is handed, built once at start-up.
///
/// Each component holds its own state and decides within its own room;
/// this struct only carries them to the drivers (`transport/`, `control/`),
/// and no component reaches back into it.
pub struct Service {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The interfaces served and the addresses listened on.
    pub host: Arc<Host>,
    /// The anti-spam policy, per-source caps and drop counters.
    pub(crate) admission: Arc<Admission>,
    /// The alias table and its registrations.
    pub(crate) naming: Arc<Naming>,
    /// The durable inbox.
    pub inbox: InboxHandle,
    /// Networks whose domain broadcasts we relay into our subnets.
    pub(crate) relay_from: Vec<ipnet::IpNet>,
    /// Resolving names and sending messages.
    pub(crate) outbound: Arc<Outbound>,
    /// What runs after each stored message (terminals, the message log,
    /// hooks, forwards), and the receipts for its sender.
    pub(crate) delivery: crate::delivery::Delivery,
    /// The stop signal and the tracker of every task.
    pub(crate) shutdown: Shutdown,
}

impl Service {
    /// Tells the host a directed message came from that it was shown or read
    /// (`[display] receipts`); see [`crate::delivery::receipts`].
    pub(crate) fn send_receipt(
        &self,
        message: &crate::store::StoredMessage,
        state: netsend_proto::receipt::ReceiptState,
    ) {
        self.delivery.receipts().send(message, state);
    }

    /// Store-and-forward: at `user`'s login, shows on their terminals the
    /// messages for them that no one has seen yet, if no older than
    /// `[display] pending_hours`.
    pub(crate) async fn show_pending(&self, user: String) {
        let hours = self.config.display.pending_hours;
        let Some(terminals) = self.delivery.terminals().filter(|_| hours > 0) else {
            return;
        };
        let since =
            crate::store::now_ms().saturating_sub(i64::try_from(hours).unwrap_or(0) * 3_600_000);
        match self.inbox.pending(&user, since).await {
            Ok(messages) => {
                for message in messages {
                    tracing::info!(id = message.id, user = %LogSafe(&user), "showing a message kept while away");
                    terminals.show(Arc::new(message), Some(user.clone())).await;
                }
            }
            Err(e) => {
                tracing::warn!(user = %LogSafe(&user), error = %LogSafe(&e), "cannot read waiting messages")
            }
        }
    }

    /// Hands a durable message to the delivery channels (its
    /// acknowledgement does not wait for them): terminals (`[display]
    /// terminals`), the message log, the matching `[[hooks]]`, and a forward
    /// when its alias is forwarded. Desktop notifications come from `netsend
    /// agent` in each user's session.
    pub(crate) fn delivered(&self, message: crate::store::StoredMessage) {
        self.delivery.deliver(message);
    }
}

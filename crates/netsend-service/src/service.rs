//! The components every driver is handed. They are built in one place,
//! [`crate::start::run`]; this module only carries them, and imports no
//! driver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::admission::Admission;
use crate::config::Config;
use crate::naming::Naming;
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;
use crate::store::{InboxHandle, Transport};
use crate::system::host::Host;
use netsend_proto::display::LogSafe;

/// The components every driver is handed, built once in [`crate::start::run`].
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
    /// The `[[hooks]]`, run after each stored message.
    pub(crate) hooks: crate::delivery::hooks::HookRunner,
    /// Slots for forwarding stored messages on.
    pub(crate) forwards: crate::admission::slots::TaskSlots,
    /// The stop signal and the tracker of every task.
    pub(crate) shutdown: Shutdown,
}

impl Service {
    /// Writes `message` to its recipients' terminals (with `only`, to that
    /// user's alone) and records the receipt "shown" for each user whose
    /// terminal took it (a shared message is shown to each for themselves).
    pub(crate) async fn show_on_terminals(
        self: &Arc<Self>,
        message: crate::store::StoredMessage,
        only: Option<String>,
    ) {
        let service = self.clone();
        let shown = tokio::task::spawn_blocking(move || {
            let reached = crate::delivery::terminals::show(&service, &message, only.as_deref());
            (reached, message)
        })
        .await;
        let Ok((reached, message)) = shown else {
            return;
        };
        for user in &reached {
            if let Err(e) = self.inbox.mark_shown(message.id, Some(user)).await {
                tracing::warn!(id = message.id, user = %LogSafe(&user), error = %LogSafe(&e), "cannot record the receipt");
            }
        }
        if !reached.is_empty() && message.shown_at.is_none() {
            self.send_receipt(&message, netsend_proto::receipt::ReceiptState::Shown);
        }
    }

    /// Tells the host a directed message came from that it was shown or read
    /// (`[display] receipts`): a datagram on `\MAILSLOT\NETSEND\RECEIPT`
    /// to its datagram port. Broadcasts and local deliveries get none.
    pub(crate) fn send_receipt(
        self: &Arc<Self>,
        message: &crate::store::StoredMessage,
        state: netsend_proto::receipt::ReceiptState,
    ) {
        if !self.config.display.receipts
            || message.broadcast
            || message.transport != Transport::Session
        {
            return;
        }
        let Ok(SocketAddr::V4(peer)) = message.source.parse::<SocketAddr>() else {
            return;
        };
        let receipt = netsend_proto::receipt::Receipt {
            state,
            at_ms: crate::store::now_ms(),
            digest: netsend_proto::receipt::digest(&message.text),
            to: message.to.clone(),
            from: message.from.clone(),
        };
        let outbound = self.outbound.clone();
        let id = message.id;
        self.shutdown.spawn(async move {
            match crate::outbound::receipts::send(&outbound, *peer.ip(), &receipt).await {
                Ok(()) => {
                    tracing::info!(id, peer = %peer.ip(), state = state.as_str(), "receipt sent")
                }
                Err(e) => {
                    tracing::info!(id, peer = %peer.ip(), error = %LogSafe(&e), "receipt not sent")
                }
            }
        });
    }

    /// Store-and-forward: at `user`'s login, shows on their terminals the
    /// messages for them that no one has seen yet, if no older than
    /// `[display] pending_hours`.
    pub(crate) async fn show_pending(self: &Arc<Self>, user: String) {
        let hours = self.config.display.pending_hours;
        if hours == 0 || !self.config.display.writes_terminals() {
            return;
        }
        let since =
            crate::store::now_ms().saturating_sub(i64::try_from(hours).unwrap_or(0) * 3_600_000);
        match self.inbox.pending(&user, since).await {
            Ok(messages) => {
                for message in messages {
                    tracing::info!(id = message.id, user = %LogSafe(&user), "showing a message kept while away");
                    self.show_on_terminals(message, Some(user.clone())).await;
                }
            }
            Err(e) => {
                tracing::warn!(user = %LogSafe(&user), error = %LogSafe(&e), "cannot read waiting messages")
            }
        }
    }

    /// Hook run after a message is durable (its acknowledgement does not wait
    /// for it): writes it to its recipients' terminals (`[display]
    /// terminals`), starts the matching `[[hooks]]`, and forwards the message
    /// when its alias is forwarded. Desktop notifications come from
    /// `netsend agent` in each user's session.
    pub(crate) fn delivered(self: &Arc<Self>, id: i64) {
        let terminals = self.config.display.writes_terminals();
        let forwards = self
            .naming
            .aliases
            .lock()
            .expect("alias table lock")
            .has_forwards();
        if !terminals && self.hooks.is_empty() && !forwards && !self.config.log.messages {
            return;
        }
        let service = self.clone();
        self.shutdown.spawn(async move {
            // Read back once for every consumer.
            let Ok(Some(message)) = service.inbox.get(id, None).await else {
                return;
            };
            if terminals {
                let (service, message) = (service.clone(), message.clone());
                service
                    .shutdown
                    .clone()
                    .spawn(async move { service.show_on_terminals(message, None).await });
            }
            if service.config.log.messages {
                let (path, line) = (service.message_log_path(), message_log_line(&message));
                let written = tokio::task::spawn_blocking(move || append_line(&path, &line)).await;
                if let Ok(Err(e)) = written {
                    tracing::warn!(id, error = %LogSafe(&e), "cannot write the message log");
                }
            }
            service.hooks.dispatch(&message);
            crate::delivery::forward::start(&service, message);
        });
    }

    /// NET LOG's file.
    fn message_log_path(&self) -> PathBuf {
        self.config
            .log
            .messages_path
            .clone()
            .unwrap_or_else(|| self.config.state_dir.join("messages.log"))
    }
}

/// One line of the message log: a JSON object with the time (UTC, RFC 3339),
/// id, sender, alias, recipient user, source, transport, broadcast flag and
/// text.
fn message_log_line(m: &crate::store::StoredMessage) -> String {
    let time = chrono::DateTime::from_timestamp_millis(m.received_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let line = serde_json::json!({
        "time": time,
        "id": m.id,
        "from": m.from,
        "to": m.to,
        "user": m.recipient_user,
        "source": m.source,
        "transport": m.transport,
        "broadcast": m.broadcast,
        "text": m.text,
    });
    netsend_control::json::to_line(&line).unwrap_or_default()
}

/// Appends `line` to `path` (created mode 0600), opened for each line so a
/// rotated log is followed.
fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}

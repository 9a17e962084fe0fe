//! Forwarding an alias to another host (`netsend name ALIAS /forward:HOST`):
//! a message to a forwarded alias is stored here first, then sent on to the
//! alias at that host, marked as forwarded. The rules are in
//! [`netsend_proto::forward`]: a forwarded copy is never forwarded again.
//!
//! The copies go out on a [`SendPath`]: the service's [`Outbound`], as
//! every directed message goes (the trait lets the tests send straight to
//! a listener). Outbound knows nothing of delivery.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use netsend_proto::display::LogSafe;
use netsend_proto::forward::{check_target, decide, forwarded_text, ForwardDecision};
use netsend_wire::name::suffix;
use netsend_wire::status::NetApiStatus;
use netsend_wire::{CodePage, NetbiosName};

use super::DeliveryChannel;
use crate::admission::slots::TaskSlots;
use crate::config::Config;
use crate::metrics::DeliveryCounter;
use crate::naming::aliases::AliasTable;
use crate::outbound::send::{self, Deadline, SendFailure};
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;
use crate::store::StoredMessage;
use crate::system::net::Interface;

/// Forwards running at once; each ends by its send deadline.
const MAX_RUNNING: usize = 32;
/// Forwards waiting for a slot; beyond this a forward is skipped (logged).
const MAX_WAITING: usize = 256;

/// A step of the send path, done by its deadline.
pub(crate) type Sending<'a, T> = Pin<Box<dyn Future<Output = Result<T, SendFailure>> + Send + 'a>>;

/// The part of the service's send path a forward uses.
pub(crate) trait SendPath: Send + Sync {
    /// Where `name` (`HOST<03>`) is, resolved as any name, by `deadline`.
    fn resolve(&self, name: NetbiosName, deadline: Deadline) -> Sending<'_, SocketAddr>;

    /// Sends `text` from `from` to the alias `to` at `address` (a host's
    /// session service), without resolving `to` there, by `deadline`.
    fn send_to_address<'a>(
        &'a self,
        to: &'a str,
        address: SocketAddr,
        from: &'a str,
        text: &'a str,
        deadline: Deadline,
    ) -> Sending<'a, ()>;
}

impl SendPath for Outbound {
    fn resolve(&self, name: NetbiosName, deadline: Deadline) -> Sending<'_, SocketAddr> {
        Box::pin(async move { send::resolve(self, &name, deadline).await })
    }

    fn send_to_address<'a>(
        &'a self,
        to: &'a str,
        address: SocketAddr,
        from: &'a str,
        text: &'a str,
        deadline: Deadline,
    ) -> Sending<'a, ()> {
        Box::pin(send::send_to_address(
            self, to, address, from, text, deadline,
        ))
    }
}

/// Why a forward could not be set or cancelled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// The target is this host, or empty.
    #[error("{0}")]
    Target(netsend_proto::forward::ForwardRefusal),
    /// The target is neither a NetBIOS name nor an IPv4 address.
    #[error("host {host:?}: {reason}")]
    BadHost {
        /// The target as given.
        host: String,
        /// Why it is no NetBIOS name.
        reason: netsend_wire::NameError,
    },
    /// The alias table refused (no such alias, not the caller's, not saved).
    #[error("cannot {verb} {alias:?}")]
    Refused {
        /// "forward" or "cancel the forward of".
        verb: &'static str,
        /// The alias.
        alias: String,
        /// The table's status.
        status: NetApiStatus,
    },
}

impl ForwardError {
    /// The NERR/Win32 code the control protocol answers with.
    pub(crate) const fn status(&self) -> NetApiStatus {
        match self {
            Self::Target(_) | Self::BadHost { .. } => NetApiStatus::ERROR_INVALID_PARAMETER,
            Self::Refused { status, .. } => *status,
        }
    }
}

/// The forwarding channel: sends messages to forwarded aliases on.
pub(crate) struct Forward {
    /// The alias table, which holds the forwards.
    aliases: Arc<Mutex<AliasTable>>,
    /// The OEM code page of names.
    code_page: CodePage,
    /// This host's name, in the forwarded copy's first line.
    computer: String,
    /// The session service's port, at the target as here.
    session_port: u16,
    /// `[limits] send_timeout_secs`: each forward's deadline.
    send_timeout_secs: u64,
    /// This host's addresses: a forward to one of them is refused.
    own_addresses: Vec<Ipv4Addr>,
    /// Our session service's addresses: a copy resolved to one stays here.
    own_sessions: Vec<SocketAddrV4>,
    /// Where copies go out.
    path: Arc<dyn SendPath>,
    /// The slots forwards run in.
    slots: TaskSlots,
    /// Where each forward's outcome is counted.
    counter: DeliveryCounter,
}

impl Forward {
    /// Forwarding for the aliases in `aliases`, sent on `path`, each
    /// forward on `shutdown`'s tracker; `interfaces` and
    /// `session_addresses` say what is this host.
    pub(crate) fn new(
        config: &Config,
        interfaces: &[Interface],
        session_addresses: &[SocketAddr],
        aliases: Arc<Mutex<AliasTable>>,
        path: Arc<dyn SendPath>,
        shutdown: Shutdown,
    ) -> Self {
        let mut own_addresses: Vec<Ipv4Addr> = interfaces.iter().map(|i| i.address).collect();
        own_addresses.extend(session_addresses.iter().filter_map(|a| match a.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        }));
        Self {
            aliases,
            code_page: config.code_page,
            computer: config.computer_name.to_uppercase(),
            session_port: config.network.session_port,
            send_timeout_secs: config.limits.send_timeout_secs,
            own_addresses,
            own_sessions: own_session_addresses(interfaces, session_addresses),
            path,
            slots: TaskSlots::new(MAX_RUNNING, MAX_WAITING, shutdown),
            counter: DeliveryCounter::default(),
        }
    }

    /// Counts each forward's outcome (`forwarded`, `not_forwarded`,
    /// `failed`, `dropped`) in `counter`.
    pub(crate) fn counted(self, counter: DeliveryCounter) -> Self {
        Self { counter, ..self }
    }

    /// Sets (or with `host` `None` cancels) the forward of `alias`, refusing
    /// a target that is this host. `requester` is `None` for root.
    pub(crate) fn set(
        &self,
        alias: &str,
        host: Option<String>,
        requester: Option<&str>,
    ) -> Result<(), ForwardError> {
        let mut table = self.aliases.lock().expect("alias table lock");
        if let Some(host) = &host {
            let own_names: Vec<String> = table.list().map(|a| a.name.clone()).collect();
            check_target(host, &own_names, &self.own_addresses).map_err(ForwardError::Target)?;
            if let Err(reason) =
                NetbiosName::with_code_page(host, suffix::MESSENGER, self.code_page)
            {
                if host.parse::<Ipv4Addr>().is_err() {
                    return Err(ForwardError::BadHost {
                        host: host.clone(),
                        reason,
                    });
                }
            }
        }
        let verb = if host.is_some() {
            "forward"
        } else {
            "cancel the forward of"
        };
        let host_text = host.clone().unwrap_or_default();
        table
            .set_forward(alias, host, requester)
            .map_err(|status| ForwardError::Refused {
                verb,
                alias: alias.to_owned(),
                status,
            })?;
        tracing::info!(event = "forward_set", alias = %LogSafe(alias), host = %LogSafe(&host_text), "alias forward changed");
        Ok(())
    }

    /// The host `alias` is forwarded to, if it is.
    fn host_of(&self, alias: &str) -> Option<String> {
        let table = self.aliases.lock().expect("alias table lock");
        table.forward_of(alias).map(str::to_owned)
    }

    /// Sends a stored message on when its alias is forwarded; logs the
    /// outcome and returns it in a word.
    async fn forward(&self, message: &StoredMessage) -> &'static str {
        let Some(host) = self.host_of(&message.to) else {
            return "not_forwarded";
        };
        let deadline = Deadline::within(self.send_timeout_secs);
        let target = match host.parse::<Ipv4Addr>() {
            Ok(ip) => Ok(SocketAddr::V4(SocketAddrV4::new(ip, self.session_port))),
            Err(_) => match NetbiosName::with_code_page(&host, suffix::MESSENGER, self.code_page) {
                Ok(name) => self.path.resolve(name, deadline).await,
                Err(e) => Err(SendFailure::InvalidParameter(e.to_string())),
            },
        };
        let target = match target {
            Ok(SocketAddr::V4(t)) => t,
            Ok(other) => {
                tracing::warn!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), peer = %other, reason = "not IPv4", "message not forwarded");
                return "failed";
            }
            Err(e) => {
                tracing::warn!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), reason = %LogSafe(&e), "message not forwarded");
                return "failed";
            }
        };
        let decision = decide(&message.text, target, &self.own_sessions);
        if decision != ForwardDecision::Forward {
            tracing::info!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), reason = ?decision, "message not forwarded");
            return "not_forwarded";
        }
        let text = forwarded_text(&self.computer, &message.text);
        let sent = self
            .path
            .send_to_address(
                &message.to,
                SocketAddr::V4(target),
                &message.from,
                &text,
                deadline,
            )
            .await;
        match sent {
            Ok(()) => {
                tracing::info!(event = "forward", id = message.id, from = %LogSafe(&message.from), to = %LogSafe(&message.to), host = %LogSafe(&host), peer = %target, transport = "session", "message forwarded");
                "forwarded"
            }
            Err(e) => {
                tracing::warn!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), peer = %target, reason = %LogSafe(&e), "message not forwarded");
                "failed"
            }
        }
    }
}

impl DeliveryChannel for Forward {
    fn name(&self) -> &'static str {
        "forward"
    }

    fn wants(&self, message: &StoredMessage) -> bool {
        let table = self.aliases.lock().expect("alias table lock");
        table.forward_of(&message.to).is_some()
    }

    /// Starts the forward in one of the channel's slots.
    fn deliver(self: Arc<Self>, message: Arc<StoredMessage>) {
        let (id, to) = (message.id, message.to.clone());
        let forward = self.clone();
        if !self.slots.spawn(async move {
            let outcome = forward.forward(&message).await;
            forward.counter.record("forward", outcome);
        }) {
            self.counter.record("forward", "dropped");
            tracing::warn!(event = "forward", id, to = %LogSafe(&to), reason = "too many forwards waiting", "message not forwarded");
        }
    }
}

/// Our session service's addresses, with a wildcard bind expanded to every
/// served interface.
fn own_session_addresses(
    interfaces: &[Interface],
    session_addresses: &[SocketAddr],
) -> Vec<SocketAddrV4> {
    let mut own = Vec::new();
    for address in session_addresses {
        let SocketAddr::V4(a) = address else { continue };
        if a.ip().is_unspecified() {
            own.extend(
                interfaces
                    .iter()
                    .map(|i| SocketAddrV4::new(i.address, a.port())),
            );
            own.push(SocketAddrV4::new(Ipv4Addr::LOCALHOST, a.port()));
        } else {
            own.push(*a);
        }
    }
    own
}

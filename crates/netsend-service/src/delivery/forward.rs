//! Forwarding an alias to another host (`netsend name ALIAS /forward:HOST`):
//! a message to a forwarded alias is stored here first, then sent on to the
//! alias at that host, marked as forwarded. The rules are in
//! [`netsend_proto::forward`]: a forwarded copy is never forwarded again.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use netsend_proto::forward::{decide, forwarded_text, ForwardDecision};
use netsend_wire::name::suffix;
use netsend_wire::NetbiosName;

use crate::admission::slots::TaskSlots;
use crate::service::Service;
use crate::store::StoredMessage;
use netsend_proto::display::LogSafe;

/// Our session service's addresses, with a wildcard bind expanded to every
/// served interface.
fn own_session_addresses(service: &Service) -> Vec<SocketAddrV4> {
    let mut own = Vec::new();
    for address in &service.host.session_addresses {
        let SocketAddr::V4(a) = address else { continue };
        if a.ip().is_unspecified() {
            own.extend(
                service
                    .host
                    .interfaces
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

/// Forwards running at once; each ends by its send deadline.
const MAX_RUNNING: usize = 32;
/// Forwards waiting for a slot; beyond this a forward is skipped (logged).
const MAX_WAITING: usize = 256;

/// The slots forwards run in.
pub(crate) fn slots() -> TaskSlots {
    TaskSlots::new(MAX_RUNNING, MAX_WAITING)
}

/// Starts forwarding a stored message when its alias is forwarded, in one
/// of the service's forward slots.
pub(crate) fn start(service: &Arc<Service>, message: StoredMessage) {
    let forwarded = service
        .naming
        .aliases
        .lock()
        .expect("alias table lock")
        .forward_of(&message.to)
        .is_some();
    if !forwarded {
        return;
    }
    let (id, to) = (message.id, message.to.clone());
    let task = {
        let service = service.clone();
        async move { forward(&service, &message).await }
    };
    if !service.forwards.spawn(task) {
        tracing::warn!(event = "forward", id, to = %LogSafe(&to), reason = "too many forwards waiting", "message not forwarded");
    }
}

/// Sends a stored message on when its alias is forwarded; logs the outcome.
async fn forward(service: &Arc<Service>, message: &StoredMessage) {
    let host = {
        let table = service.naming.aliases.lock().expect("alias table lock");
        match table.forward_of(&message.to) {
            Some(h) => h.to_owned(),
            None => return,
        }
    };
    let deadline = crate::outbound::send::Deadline::start(&service.outbound);
    let port = service.config.network.session_port;
    let target = match host.parse::<Ipv4Addr>() {
        Ok(ip) => Ok(SocketAddr::V4(SocketAddrV4::new(ip, port))),
        Err(_) => {
            match NetbiosName::with_code_page(&host, suffix::MESSENGER, service.config.code_page) {
                Ok(name) => {
                    crate::outbound::send::resolve(&service.outbound, &name, deadline).await
                }
                Err(e) => Err(crate::outbound::send::SendFailure::InvalidParameter(
                    e.to_string(),
                )),
            }
        }
    };
    let target = match target {
        Ok(SocketAddr::V4(t)) => t,
        Ok(other) => {
            tracing::warn!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), peer = %other, reason = "not IPv4", "message not forwarded");
            return;
        }
        Err(e) => {
            tracing::warn!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), reason = %LogSafe(&e), "message not forwarded");
            return;
        }
    };
    let decision = decide(&message.text, target, &own_session_addresses(service));
    if decision != ForwardDecision::Forward {
        tracing::info!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), reason = ?decision, "message not forwarded");
        return;
    }
    let computer = service.config.computer_name.to_uppercase();
    let text = forwarded_text(&computer, &message.text);
    match crate::outbound::send::send_to_address(
        &service.outbound,
        &message.to,
        SocketAddr::V4(target),
        &message.from,
        &text,
        deadline,
    )
    .await
    {
        Ok(()) => {
            tracing::info!(event = "forward", id = message.id, from = %LogSafe(&message.from), to = %LogSafe(&message.to), host = %LogSafe(&host), peer = %target, transport = "session", "message forwarded")
        }
        Err(e) => {
            tracing::warn!(event = "forward", id = message.id, to = %LogSafe(&message.to), host = %LogSafe(&host), peer = %target, reason = %LogSafe(&e), "message not forwarded")
        }
    }
}

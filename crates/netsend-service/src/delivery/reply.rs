//! Replying to a received message (`netsend reply`, and away messages'
//! automatic answers): the sender's name is resolved and, when it is not
//! theirs at the host the message came from, that host's computer name is
//! taken from its node status. The decisions are
//! [`netsend_proto::reply`]'s; this drives them on a [`SendPath`].

use std::net::{IpAddr, SocketAddr};

use netsend_proto::reply::{computer_name, first_step, source_ip, Fallback, Resolved, Step};
use netsend_wire::name::suffix;
use netsend_wire::{CodePage, NetbiosName};

use super::forward::SendPath;
use crate::outbound::send::{Deadline, SendFailure};
use crate::store::StoredMessage;

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// The name it is sent to.
    pub(crate) name: String,
    /// The session address it is sent to.
    pub(crate) address: SocketAddr,
    /// Why it is not the sender's own name, if it is not.
    pub(crate) fallback: Option<Fallback>,
}

/// Finds where a reply to `message` goes, by `deadline`: `session_port`
/// is the port of the source host's session service when its name does not
/// say.
pub(crate) async fn route(
    path: &dyn SendPath,
    message: &StoredMessage,
    code_page: CodePage,
    session_port: u16,
    deadline: Deadline,
) -> Result<Route, SendFailure> {
    let source = source_ip(&message.source).ok_or_else(|| {
        SendFailure::InvalidParameter(format!(
            "message {} has no source address to reply to",
            message.id
        ))
    })?;
    let resolved =
        match NetbiosName::with_code_page(message.from.trim(), suffix::MESSENGER, code_page) {
            Err(_) => Resolved::NotAName,
            Ok(name) => match path.resolve(name, deadline).await {
                Ok(address) => Resolved::At(address),
                Err(_) => Resolved::NotFound,
            },
        };
    match first_step(&message.from, source, session_port, resolved) {
        Step::Send { name, address } => Ok(Route {
            name,
            address,
            fallback: None,
        }),
        Step::NodeStatus { address, why } => {
            let IpAddr::V4(ip) = address.ip() else {
                return Err(SendFailure::NameNotFound(format!(
                    "{}: no node status over IPv6",
                    address.ip()
                )));
            };
            let names = path.node_status(ip, deadline).await?;
            let name = computer_name(&names, code_page).ok_or_else(|| {
                SendFailure::NameNotFound(format!("a computer name in the node status of {ip}"))
            })?;
            Ok(Route {
                name,
                address,
                fallback: Some(why),
            })
        }
    }
}

/// Sends `text` from `from` along `route`, by `deadline`.
pub(crate) async fn send(
    path: &dyn SendPath,
    route: &Route,
    from: &str,
    text: &str,
    deadline: Deadline,
) -> Result<(), SendFailure> {
    path.send_to_address(&route.name, route.address, from, text, deadline)
        .await
}

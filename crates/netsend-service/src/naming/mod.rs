//! The names this host holds: the alias table, the registrar that registers
//! and defends them on the LAN, and the logins that give users their names.

pub mod aliases;
pub(crate) mod logins;
pub(crate) mod registrar;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aliases::AliasTable;
use registrar::Registrar;

use crate::store::{NewMessage, Transport};

/// The naming component: the alias table and its registrations.
pub(crate) struct Naming {
    /// The message alias table (shared with the delivery channels).
    pub(crate) aliases: Arc<Mutex<AliasTable>>,
    /// Name registrations on the broadcast segments (and WINS).
    pub(crate) registrar: Arc<Registrar>,
}

/// One word for where a name stands over every segment and at the WINS
/// server (`states`, as [`Registrar::states`] gives them): `local` when
/// nothing registers it, `conflict` when another host holds it anywhere,
/// `registering` while any scope is still asking, else `registered`.
pub(crate) fn state_word(
    states: &[(registrar::Scope, netsend_proto::registration::NameState)],
) -> &'static str {
    use netsend_proto::registration::NameState;
    if states.is_empty() {
        "local"
    } else if states
        .iter()
        .any(|(_, s)| matches!(s, NameState::Conflict { .. }))
    {
        "conflict"
    } else if states.iter().any(|(_, s)| *s == NameState::Registering) {
        "registering"
    } else {
        "registered"
    }
}

impl Naming {
    /// Each alias's state in one word ([`state_word`]).
    pub(crate) fn state_words(&self) -> Vec<&'static str> {
        let names: Vec<netsend_wire::NetbiosName> = self
            .aliases
            .lock()
            .expect("alias table lock")
            .names()
            .collect();
        names
            .iter()
            .map(|name| state_word(&self.registrar.states(name)))
            .collect()
    }

    /// The name our datagrams come from: the computer name `<00>`.
    pub(crate) fn datagram_source(&self) -> netsend_wire::NetbiosName {
        self.aliases
            .lock()
            .expect("alias table lock")
            .computer_name()
            .with_suffix(netsend_wire::name::suffix::WORKSTATION)
    }

    /// The inbox record of `message`, received from `peer`: addressed to
    /// the alias it names (or its name as sent) and to that alias's owner.
    pub(crate) fn record(
        &self,
        message: &netsend_proto::message::Message,
        peer: SocketAddr,
        transport: Transport,
    ) -> NewMessage {
        let aliases = self.aliases.lock().expect("alias table lock");
        let to_name = netsend_wire::NetbiosName::from_oem_lossy(message.to.as_bytes(), 0x03);
        let alias = aliases.resolve_destination(&to_name);
        NewMessage {
            from: message.from.clone(),
            to: alias.map_or_else(|| message.to.clone(), |a| a.name.clone()),
            recipient_user: alias.and_then(|a| a.owner.clone()),
            source: peer.to_string(),
            text: message.text.clone(),
            transport,
            broadcast: false,
            verified_host: None,
            claimed_by: None,
        }
    }
}

//! What the handlers work with: the components they read and change, passed
//! in by reference so a test builds them from a real inbox and alias table
//! without a running service; and the one function that takes them from the
//! running [`Service`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use netsend_proto::receipt::ReceiptState;

use std::net::Ipv4Addr;

use netsend_wire::nbns::NodeName;
use netsend_wire::NetbiosName;

use crate::admission::Admission;
use crate::browse::Browse;
use crate::config::Config;
use crate::delivery::forward::Forward;
use crate::naming::aliases::AliasTable;
use crate::naming::registrar::Registrar;
use crate::outbound::send::SendFailure;
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::store::{InboxHandle, StoredMessage};
use crate::system::host::Host;
use netsend_control::types::SendReport;

/// A network operation under way, owning what it needs (so it can be spawned).
pub(crate) type Pending<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What leaves this host: directed messages, broadcasts and receipts.
pub(crate) trait Network: Send + Sync {
    /// Sends `text` from `from` to the alias `to`, on behalf of the local
    /// user `uid` when there is one.
    fn send(
        &self,
        uid: Option<u32>,
        to: String,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>>;
    /// Sends `text` to `user` at the machine they sit at (`client`; `None`:
    /// a local login).
    fn send_to_session(
        &self,
        uid: Option<u32>,
        user: String,
        client: Option<String>,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>>;
    /// Broadcasts `text` to `domain`; the number of datagrams sent.
    fn broadcast(
        &self,
        domain: String,
        from: String,
        text: String,
        split: bool,
    ) -> Pending<Result<usize, SendFailure>>;
    /// Tells the host `message` came from that it was shown or read, when
    /// receipts are on (in the background).
    fn send_receipt(&self, message: &StoredMessage, state: ReceiptState);
    /// The name table of the host at `address` (node status), `None` when
    /// it does not answer.
    fn node_status(&self, address: Ipv4Addr) -> Pending<Option<Vec<NodeName>>>;
    /// The address of the host `name` (its `<00>` name), resolved like a
    /// recipient's.
    fn resolve_host(&self, name: NetbiosName) -> Pending<Result<Ipv4Addr, SendFailure>>;
}

/// The components one control request may use.
pub(crate) struct Context<'a> {
    /// The configuration in force.
    pub(crate) config: &'a Config,
    /// The interfaces served and the addresses listened on.
    pub(crate) host: &'a Host,
    /// The durable inbox, outgoing queue and sent records.
    pub(crate) inbox: &'a InboxHandle,
    /// The message alias table.
    pub(crate) aliases: &'a Mutex<AliasTable>,
    /// Name registrations on the network.
    pub(crate) registrar: &'a Registrar,
    /// Forwarding, which holds the rules for setting a forward.
    pub(crate) forward: &'a Forward,
    /// The drop counters.
    pub(crate) admission: &'a Admission,
    /// The stop signal.
    pub(crate) shutdown: &'a Shutdown,
    /// Sends, broadcasts and receipts.
    pub(crate) network: &'a dyn Network,
    /// The browse list.
    pub(crate) browse: &'a Browse,
}

impl<'a> Context<'a> {
    /// The handlers' view of the running service.
    pub(crate) fn from_service(service: &'a Arc<Service>) -> Self {
        Self {
            config: &service.config,
            host: &service.host,
            inbox: &service.inbox,
            aliases: &service.naming.aliases,
            registrar: &service.naming.registrar,
            forward: service.delivery.forward(),
            admission: &service.admission,
            shutdown: &service.shutdown,
            network: service,
            browse: &service.browse,
        }
    }
}

impl Network for Arc<Service> {
    fn send(
        &self,
        uid: Option<u32>,
        to: String,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>> {
        let outbound = self.outbound.clone();
        Box::pin(
            async move { crate::outbound::send::send(&outbound, uid, &to, &from, &text).await },
        )
    }

    fn send_to_session(
        &self,
        uid: Option<u32>,
        user: String,
        client: Option<String>,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>> {
        let outbound = self.outbound.clone();
        Box::pin(async move {
            crate::outbound::send::send_to_session(
                &outbound,
                uid,
                &user,
                client.as_deref(),
                &from,
                &text,
            )
            .await
        })
    }

    fn broadcast(
        &self,
        domain: String,
        from: String,
        text: String,
        split: bool,
    ) -> Pending<Result<usize, SendFailure>> {
        let outbound = self.outbound.clone();
        Box::pin(async move {
            crate::outbound::datagrams::broadcast(&outbound, &domain, &from, &text, split).await
        })
    }

    fn send_receipt(&self, message: &StoredMessage, state: ReceiptState) {
        self.delivery.receipts().send(message, state);
    }

    fn node_status(&self, address: Ipv4Addr) -> Pending<Option<Vec<NodeName>>> {
        let port = self.config.network.name_port;
        Box::pin(crate::browse::node_status(address, port))
    }

    fn resolve_host(&self, name: NetbiosName) -> Pending<Result<Ipv4Addr, SendFailure>> {
        let outbound = self.outbound.clone();
        Box::pin(async move {
            let deadline = crate::outbound::send::Deadline::within(5);
            match crate::outbound::send::resolve(&outbound, &name, deadline).await? {
                std::net::SocketAddr::V4(a) => Ok(*a.ip()),
                std::net::SocketAddr::V6(a) => Err(SendFailure::NameNotFound(a.to_string())),
            }
        })
    }
}

//! What the handlers work with: the components they read and change, passed
//! in by reference so a test builds them from a real inbox and alias table
//! without a running service; and the one function that takes them from the
//! running [`Service`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use netsend_proto::receipt::ReceiptState;
use netsend_proto::reply::Fallback;

use std::net::Ipv4Addr;

use netsend_wire::nbns::NodeName;
use netsend_wire::NetbiosName;

use crate::admission::Admission;
use crate::alerter::Alerter;
use crate::browse::Browse;
use crate::config::Config;
use crate::delivery::away::AwayBook;
use crate::delivery::forward::{Forward, SendPath};
use crate::delivery::reply;
use crate::naming::aliases::AliasTable;
use crate::naming::registrar::Registrar;
use crate::outbound::send::{Deadline, SendFailure};
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
    /// Sends `text` from `from` in reply to `message`: to its sender at the
    /// host it came from, or to that host's computer name (and why).
    fn reply(
        &self,
        message: StoredMessage,
        from: String,
        text: String,
    ) -> Pending<Result<(SendReport, Option<Fallback>), SendFailure>>;
    /// The name table of the host at `address` (node status), `None` when
    /// it does not answer.
    fn node_status(&self, address: Ipv4Addr) -> Pending<Option<Vec<NodeName>>>;
    /// The address of the host `name` (its `<00>` name), resolved like a
    /// recipient's.
    fn resolve_host(&self, name: NetbiosName) -> Pending<Result<Ipv4Addr, SendFailure>>;
}

/// The components one control request may use.
pub(crate) struct Context<'a> {
    /// The configuration in force when the client connected.
    pub(crate) config: Arc<Config>,
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
    /// The outcome of the last configuration reload.
    pub(crate) reloads: &'a crate::reload::ReloadLog,
    /// Sends, broadcasts and receipts.
    pub(crate) network: &'a dyn Network,
    /// The Alerter, when it is on.
    pub(crate) alerter: Option<&'a Alerter>,
    /// Who is away.
    pub(crate) away: &'a AwayBook,
    /// The browse list.
    pub(crate) browse: &'a Browse,
    /// The WINS server, when it runs.
    pub(crate) wins: Option<&'a crate::wins::WinsServer>,
}

impl<'a> Context<'a> {
    /// The handlers' view of the running service.
    pub(crate) fn from_service(service: &'a Arc<Service>) -> Self {
        Self {
            config: service.config.get(),
            host: &service.host,
            inbox: &service.inbox,
            aliases: &service.naming.aliases,
            registrar: &service.naming.registrar,
            forward: service.delivery.forward(),
            admission: &service.admission,
            shutdown: &service.shutdown,
            reloads: &service.reloads,
            network: service,
            alerter: service.alerter.as_deref(),
            away: service.delivery.away(),
            browse: &service.browse,
            wins: service.wins.as_ref(),
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

    fn reply(
        &self,
        message: StoredMessage,
        from: String,
        text: String,
    ) -> Pending<Result<(SendReport, Option<Fallback>), SendFailure>> {
        let outbound = self.outbound.clone();
        Box::pin(async move {
            let config = outbound.config.get();
            if text.len() > config.limits.max_message_len {
                return Err(SendFailure::InvalidParameter(format!(
                    "the reply is {} bytes long; the limit is {}",
                    text.len(),
                    config.limits.max_message_len
                )));
            }
            let deadline = Deadline::start(&outbound);
            let path: &dyn SendPath = outbound.as_ref();
            let route = reply::route(
                path,
                &message,
                config.code_page,
                config.network.session_port,
                deadline,
            )
            .await?;
            reply::send(path, &route, &from, &text, deadline).await?;
            let report = SendReport {
                to: route.name,
                address: route.address.to_string(),
                multi_block: true,
                receipt_id: None,
                // A reply goes by SMB to the host the message came from.
                verified: false,
            };
            Ok((report, route.fallback))
        })
    }

    fn node_status(&self, address: Ipv4Addr) -> Pending<Option<Vec<NodeName>>> {
        let port = self.config.get().network.name_port;
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

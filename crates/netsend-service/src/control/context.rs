//! What the handlers work with: the components they read and change, passed
//! in by reference so a test builds them from a real inbox and alias table
//! without a running service; and the one function that takes them from the
//! running [`Service`].

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use netsend_proto::queue::RetryRules;
use netsend_proto::receipt::ReceiptState;
use netsend_wire::CodePage;
use tokio::sync::watch;

use crate::config::Config;
use crate::control::SendReport;
use crate::naming::aliases::AliasTable;
use crate::naming::registrar::Registrar;
use crate::outbound::send::SendFailure;
use crate::service::Service;
use crate::store::{InboxHandle, StoredMessage};
use crate::system::net::Interface;

/// A network operation under way, owning what it needs (so it can be spawned).
pub(crate) type Pending<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What leaves this host: directed messages, broadcasts and receipts.
pub(crate) trait Outbound: Send + Sync {
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
}

/// The running service's own state that handlers read or change.
pub(crate) trait Daemon: Send + Sync {
    /// Drops counted since start, by reason.
    fn drop_counts(&self) -> BTreeMap<String, u64>;
    /// Asks every driver to stop.
    fn request_stop(&self);
    /// A receiver that changes when the service is asked to stop.
    fn stop_signal(&self) -> watch::Receiver<bool>;
}

/// The components one control request may use.
pub(crate) struct Context<'a> {
    /// The configuration in force.
    pub(crate) config: &'a Config,
    /// The OEM code page for names.
    pub(crate) code_page: CodePage,
    /// The durable inbox, outgoing queue and sent records.
    pub(crate) inbox: &'a InboxHandle,
    /// The message alias table.
    pub(crate) aliases: &'a Mutex<AliasTable>,
    /// Name registrations on the network.
    pub(crate) registrar: &'a Registrar,
    /// Interfaces served.
    pub(crate) interfaces: &'a [Interface],
    /// Where the session service listens.
    pub(crate) session_addresses: &'a [SocketAddr],
    /// Where the name service listens.
    pub(crate) name_addresses: &'a [SocketAddr],
    /// Where the remote-call channel listens.
    pub(crate) remote_addresses: &'a [SocketAddr],
    /// The service's public key for remote calls, as text.
    pub(crate) remote_key: Option<&'a str>,
    /// The outgoing queue's retry rules.
    pub(crate) retry: RetryRules,
    /// Sends, broadcasts and receipts.
    pub(crate) outbound: &'a dyn Outbound,
    /// Drop counts and stopping.
    pub(crate) daemon: &'a dyn Daemon,
}

impl<'a> Context<'a> {
    /// The handlers' view of the running service.
    pub(crate) fn from_service(service: &'a Arc<Service>) -> Self {
        Self {
            config: &service.config,
            code_page: service.code_page,
            inbox: &service.inbox,
            aliases: &service.aliases,
            registrar: &service.registrar,
            interfaces: &service.interfaces,
            session_addresses: &service.session_addresses,
            name_addresses: &service.name_addresses,
            remote_addresses: &service.remote_addresses,
            remote_key: service.remote_key.as_deref(),
            retry: service.retry_rules(),
            outbound: service,
            daemon: service.as_ref(),
        }
    }
}

impl Outbound for Arc<Service> {
    fn send(
        &self,
        uid: Option<u32>,
        to: String,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>> {
        let service = self.clone();
        Box::pin(async move { crate::outbound::send::send(&service, uid, &to, &from, &text).await })
    }

    fn send_to_session(
        &self,
        uid: Option<u32>,
        user: String,
        client: Option<String>,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>> {
        let service = self.clone();
        Box::pin(async move {
            crate::outbound::send::send_to_session(
                &service,
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
        let service = self.clone();
        Box::pin(async move {
            crate::transport::datagrams::broadcast(&service, &domain, &from, &text, split).await
        })
    }

    fn send_receipt(&self, message: &StoredMessage, state: ReceiptState) {
        Service::send_receipt(self, message, state);
    }
}

impl Daemon for Service {
    fn drop_counts(&self) -> BTreeMap<String, u64> {
        Self::drop_counts(self)
    }

    fn request_stop(&self) {
        Self::request_stop(self);
    }

    fn stop_signal(&self) -> watch::Receiver<bool> {
        Self::stop_signal(self)
    }
}

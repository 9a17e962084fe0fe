//! Messages this host sends: resolving a name, delivering a directed message
//! over a NetBIOS session, broadcasts and the socket every outgoing datagram
//! leaves from (receipts, which delivery decides, too), and the
//! outgoing queue's retries.

pub(crate) mod datagrams;
pub(crate) mod node_status;
pub(crate) mod queue;
pub mod send;
pub(crate) mod verified;

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use netsend_proto::sites::SiteName;
use netsend_wire::name::NetbiosName;

use crate::admission::Admission;
use crate::config::{Config, Live};
use crate::naming::Naming;
use crate::system::host::Host;

/// The outbound component: what sending needs, and the cache of names
/// resolved recently.
pub(crate) struct Outbound {
    /// The configuration in force.
    pub(crate) config: Live<Config>,
    /// Our addresses (a send to ourselves is a local delivery).
    pub(crate) host: Arc<Host>,
    /// Counts a local user's message against that user at our own session
    /// service.
    pub(crate) admission: Arc<Admission>,
    /// Our names (the calling name of a session, the registrar's sockets).
    pub(crate) naming: Arc<Naming>,
    /// Recently resolved names.
    pub(crate) name_cache: Mutex<netsend_proto::plan::NameCache>,
    /// Counts what is sent and how long a send takes.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// The verified path to netsend hosts (`[trust] verified_send`).
    pub(crate) verified: Option<verified::VerifiedSend>,
    /// The way to other sites, when this host is a site gateway (set once
    /// at start, after the gateway is built).
    pub(crate) backbone: OnceLock<Arc<dyn Backbone>>,
    /// This host's own WINS server, when it is its site's (set once at
    /// start): names registered with it are found without a query.
    pub(crate) wins: OnceLock<crate::wins::WinsServer>,
}

/// A directed message handed to the backbone for another site.
#[derive(Debug, Clone)]
pub(crate) struct Carry {
    /// The dedup id, the same at every retry of this message.
    pub(crate) msg_id: String,
    /// The sender name.
    pub(crate) from: String,
    /// The recipient name.
    pub(crate) to: String,
    /// The text.
    pub(crate) text: String,
    /// The sending host's address at this site.
    pub(crate) sender: Ipv4Addr,
}

/// What the send path needs of a site gateway: which names live at other
/// sites, and carrying a message there. The gateway implements it, so
/// this room does not import the gateway (which sends through this one).
pub(crate) trait Backbone: Send + Sync {
    /// The site holding `name`, if the directory lists it.
    fn site_of(&self, name: &NetbiosName) -> Option<SiteName>;
    /// The site this gateway serves (the dedup ids start with it).
    fn site(&self) -> &SiteName;
    /// Publishes `letter` for `site`; Ok once JetStream acknowledged it.
    fn carry(
        &self,
        site: SiteName,
        letter: Carry,
    ) -> Pin<Box<dyn Future<Output = Result<(), send::SendFailure>> + Send + '_>>;
}

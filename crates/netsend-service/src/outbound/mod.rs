//! Messages this host sends: resolving a name, delivering a directed message
//! over a NetBIOS session, broadcasts and the socket every outgoing datagram
//! leaves from (receipts, which delivery decides, too), and the
//! outgoing queue's retries.

pub(crate) mod datagrams;
pub(crate) mod node_status;
pub(crate) mod queue;
pub mod send;
pub(crate) mod verified;

use std::sync::{Arc, Mutex};

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
}

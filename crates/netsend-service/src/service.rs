//! The components every driver is handed. They are built in one place, the
//! start-up module's `run`; this module only carries them, and imports
//! neither the drivers nor start-up.

use std::sync::Arc;

use crate::admission::Admission;
use crate::config::{Config, Live};
use crate::naming::Naming;
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;
use crate::store::InboxHandle;
use crate::system::host::Host;

/// The components every driver is handed, built once at start-up.
///
/// Each component holds its own state and decides within its own room;
/// this struct only carries them to the drivers (`transport/`, `control/`),
/// and no component reaches back into it.
pub struct Service {
    /// The configuration in force (a reload replaces it; keys that need a
    /// restart keep their values from the start, `reload::in_force`).
    pub config: Live<Config>,
    /// The outcome of the last reload.
    pub reloads: Arc<crate::reload::ReloadLog>,
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
    /// The browse list and our announcements.
    pub(crate) browse: Arc<crate::browse::Browse>,
    /// Resolving names and sending messages.
    pub(crate) outbound: Arc<Outbound>,
    /// What runs after each stored message (terminals, the message log,
    /// hooks, forwards), and the receipts for its sender.
    pub(crate) delivery: crate::delivery::Delivery,
    /// Every metric `/metrics` serves.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The stop signal and the tracker of every task.
    pub(crate) shutdown: Shutdown,
    /// The Alerter, when `[alerter]` turns it on.
    pub(crate) alerter: Option<Arc<crate::alerter::Alerter>>,
    /// The WINS server, when `[wins_server] enabled = true`.
    pub(crate) wins: Option<crate::wins::WinsServer>,
    /// The site gateway, when `[gateway]` is set.
    pub(crate) gateway: Option<crate::gateway::Gateway>,
}

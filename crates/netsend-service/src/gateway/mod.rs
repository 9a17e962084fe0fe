//! The site gateway: this service carries names and messages between its
//! site and the other sites over a NATS JetStream cluster (`[gateway]`).
//!
//! - `link`: the connection to the cluster, the stream and the buckets.
//! - `directory`: the names held at other sites.
//! - `names`: the name directory kept in step with the KV bucket, and the
//!   answers for names held at other sites.
//! - `broadcast`: `*` and `/DOMAIN` broadcasts between sites.
//! - `status`: what `netsend gateway status` shows.
//! - `outgoing`: messages for names at other sites, published with a
//!   dedup id (the send path's `Backbone`), and the SMB sessions for them.
//! - `incoming`: this site's messages consumed and delivered here.

pub(crate) mod broadcast;
pub(crate) mod directory;
mod incoming;
pub(crate) mod link;
pub(crate) mod names;
mod outgoing;
pub(crate) mod status;

use std::sync::Arc;

use netsend_proto::sites::SiteName;

use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;
use crate::store::InboxHandle;
use broadcast::Broadcasts;
use directory::Directory;
use link::Link;

/// The site gateway's parts (cheap to clone).
#[derive(Clone)]
pub(crate) struct Gateway {
    /// This site.
    pub(crate) site: SiteName,
    /// The connection to the cluster.
    pub(crate) link: Link,
    /// The names held at other sites.
    pub(crate) directory: Directory,
    /// The directory's sync with the bucket, and the answers it gives.
    pub(crate) names: names::Names,
    /// Broadcasts to and from the other sites.
    pub(crate) broadcasts: Broadcasts,
    /// `[gateway]` as the service started with it.
    config: Arc<GatewayConfig>,
    /// The send path: local deliveries of messages from other sites.
    outbound: Arc<Outbound>,
    /// The outgoing queue, where messages wait for the backbone.
    inbox: InboxHandle,
    /// Publishes, deliveries and failures are counted here.
    metrics: Arc<Metrics>,
}

impl Gateway {
    /// The gateway `config` asks for, not yet connected ([`Gateway::run`]
    /// connects it); its deliveries and re-broadcasts go through `outbound`.
    pub(crate) fn new(
        config: &GatewayConfig,
        outbound: Arc<Outbound>,
        inbox: InboxHandle,
        metrics: Arc<Metrics>,
    ) -> Result<Self, crate::config::ConfigError> {
        let site = config.site_name()?;
        let link = Link::new(config.clone());
        let directory = Directory::default();
        Ok(Self {
            names: names::Names::new(config, site.clone(), directory.clone()),
            broadcasts: Broadcasts::new(
                site.clone(),
                link.clone(),
                outbound.clone(),
                outbound.config.clone(),
            ),
            site,
            link,
            directory,
            config: Arc::new(config.clone()),
            outbound,
            inbox,
            metrics,
        })
    }

    /// Spawns the link, this site's consumer and the broadcast tasks on the
    /// stop's tracker (the name sync is spawned by `start`, which knows the
    /// local names).
    pub(crate) fn run(&self, shutdown: &Shutdown) {
        shutdown.spawn(self.link.clone().run(shutdown.clone()));
        shutdown.spawn(self.clone().consume(shutdown.clone()));
        self.broadcasts.spawn(shutdown);
    }

    /// The name directory's state, for `gateway status`: names per site,
    /// this site's published names, the last sync and the last failure.
    pub(crate) fn directory_state(&self) -> names::DirectoryState {
        self.names.state()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;

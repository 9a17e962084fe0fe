//! The site gateway: this service carries names and messages between its
//! site and the other sites over a NATS JetStream cluster (`[gateway]`).
//!
//! - `link`: the connection to the cluster, the stream and the buckets.
//! - `directory`: the names held at other sites.
//! - `broadcast`: `*` and `/DOMAIN` broadcasts between sites.
//! - `status`: what `netsend gateway status` shows.

// The contract other parts build on; its users land after it.
#![allow(dead_code)]

pub(crate) mod broadcast;
pub(crate) mod directory;
pub(crate) mod link;
pub(crate) mod status;

use std::sync::Arc;

use netsend_proto::sites::SiteName;

use crate::config::{Config, GatewayConfig, Live};
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;
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
    /// Broadcasts to and from the other sites.
    pub(crate) broadcasts: Broadcasts,
}

impl Gateway {
    /// The gateway `config` asks for, not yet connected (`start` calls
    /// [`Gateway::spawn`]); its re-broadcasts go through `outbound`.
    pub(crate) fn new(
        config: &GatewayConfig,
        outbound: Arc<Outbound>,
        live: Live<Config>,
    ) -> Result<Self, crate::config::ConfigError> {
        let site = config.site_name()?;
        let link = Link::new(config.clone());
        Ok(Self {
            broadcasts: Broadcasts::new(site.clone(), link.clone(), outbound, live),
            site,
            link,
            directory: Directory::default(),
        })
    }

    /// Spawns the link and the broadcast tasks on `shutdown`'s tracker.
    pub(crate) fn spawn(&self, shutdown: &Shutdown) {
        shutdown.spawn(self.link.clone().run(shutdown.clone()));
        self.broadcasts.spawn(shutdown);
    }
}

#[cfg(test)]
mod tests;

//! The site gateway: this service carries names and messages between its
//! site and the other sites over a NATS JetStream cluster (`[gateway]`).
//!
//! - `link`: the connection to the cluster, the stream and the buckets.
//! - `directory`: the names held at other sites.
//! - `names`: the name directory kept in step with the KV bucket, and the
//!   answers for names held at other sites.
//! - `broadcast`: `*` and `/DOMAIN` broadcasts between sites.
//! - `status`: what `netsend gateway status` shows.

// The contract other parts build on; its users land after it.
#![allow(dead_code)]

pub(crate) mod broadcast;
pub(crate) mod directory;
pub(crate) mod link;
pub(crate) mod names;
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
    /// The directory's sync with the bucket, and the answers it gives.
    pub(crate) names: names::Names,
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
        let directory = Directory::default();
        Ok(Self {
            names: names::Names::new(config, site.clone(), directory.clone()),
            broadcasts: Broadcasts::new(site.clone(), link.clone(), outbound, live),
            site,
            link,
            directory,
        })
    }

    /// The name directory's state, for `gateway status`: names per site,
    /// this site's published names, the last sync and the last failure.
    pub(crate) fn directory_state(&self) -> names::DirectoryState {
        self.names.state()
    }

    /// Spawns the link and the broadcast tasks on `shutdown`'s tracker (the
    /// name sync is spawned by `start`, which knows the local names).
    pub(crate) fn spawn(&self, shutdown: &Shutdown) {
        shutdown.spawn(self.link.clone().run(shutdown.clone()));
        self.broadcasts.spawn(shutdown);
    }
}

#[cfg(test)]
mod tests;

//! The site gateway: this service carries names and messages between its
//! site and the other sites over a NATS JetStream cluster (`[gateway]`).
//!
//! - `link`: the connection to the cluster, the stream and the buckets.
//! - `directory`: the names held at other sites.
//! - `names`: the name directory kept in step with the KV bucket, and the
//!   answers for names held at other sites.

// The contract other parts build on; its users land after it.
#![allow(dead_code)]

pub(crate) mod directory;
pub(crate) mod link;
pub(crate) mod names;

use netsend_proto::sites::SiteName;

use crate::config::GatewayConfig;
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
}

impl Gateway {
    /// The gateway `config` asks for, not yet connected (`start` spawns
    /// `link.run`).
    pub(crate) fn new(config: &GatewayConfig) -> Result<Self, crate::config::ConfigError> {
        let site = config.site_name()?;
        let directory = Directory::default();
        Ok(Self {
            names: names::Names::new(config, site.clone(), directory.clone()),
            site,
            link: Link::new(config.clone()),
            directory,
        })
    }

    /// The name directory's state, for `gateway status`: names per site,
    /// this site's published names, the last sync and the last failure.
    pub(crate) fn directory_state(&self) -> names::DirectoryState {
        self.names.state()
    }
}

#[cfg(test)]
mod tests;

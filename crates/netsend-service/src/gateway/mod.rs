//! The site gateway: this service carries names and messages between its
//! site and the other sites over a NATS JetStream cluster (`[gateway]`).
//!
//! - `link`: the connection to the cluster, the stream and the buckets.
//! - `directory`: the names held at other sites.

// The contract other parts build on; its users land after it.
#![allow(dead_code)]

pub(crate) mod directory;
pub(crate) mod link;

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
}

impl Gateway {
    /// The gateway `config` asks for, not yet connected (`start` spawns
    /// `link.run`).
    pub(crate) fn new(config: &GatewayConfig) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            site: config.site_name()?,
            link: Link::new(config.clone()),
            directory: Directory::default(),
        })
    }
}

#[cfg(test)]
mod tests;

//! Beyond one LAN (issue 18): the multi-site lab (`lab`) with its 3-node
//! NATS JetStream cluster, and the tests against reality run on it
//! (`multi`, as the gateway lands): gateways per site, netsend hosts and
//! Samba at each site.

pub(crate) mod lab;
mod multi;

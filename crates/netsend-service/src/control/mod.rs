//! The control socket: the protocol shared with clients ([`protocol`],
//! re-exported here) and the server that answers it.

pub mod protocol;
pub(crate) mod server;

pub use protocol::*;

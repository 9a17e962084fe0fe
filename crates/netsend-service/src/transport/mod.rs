//! The listeners: accept, caps and framing for each socket, handing what
//! arrives to the components that decide.
//!
//! - [`session`]: TCP 139, NetBIOS sessions carrying SMB message blocks.
//! - [`name_service`]: UDP 137, name queries and node status.
//! - [`datagrams`]: UDP 138, `\MAILSLOT\MESSNGR` datagrams.
//! - [`control_socket`]: the local control socket: peer credentials,
//!   per-user caps and line framing.
//! - [`remote`]: the encrypted remote-call channel's server.

pub(crate) mod control_socket;
pub(crate) mod datagrams;
pub(crate) mod metrics;
pub(crate) mod name_service;
pub(crate) mod remote;
pub(crate) mod session;

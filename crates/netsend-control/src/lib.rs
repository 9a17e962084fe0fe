//! The client contract of the netsend messenger service, with no runtime:
//! what the `netsend` command, its desktop agent and `libnetapi32` need to
//! talk to a service, here or on another host.
//!
//! # Layout
//! - [`protocol`]: the control protocol's [`Request`] and [`Response`] and
//!   its limits; [`types`]: the data they carry.
//! - [`client`]: the control socket's blocking client and, with the cargo
//!   feature `async`, its tokio client.
//! - [`ClientError`]: every way a call fails, and its one mapping to a
//!   NERR/Win32 code ([`ClientError::status`]).
//! - [`config`]: where the configuration file is, and the keys a client
//!   reads of it.
//! - [`remote`]: the remote-call channel's caller side, its keys, framing and
//!   known-servers file.
//! - [`since`]: the times `--since` accepts.
//! - [`json`]: JSON for people's tools (`--json`, the message log), control
//!   characters written as visible text.

pub mod client;
pub mod config;
mod error;
pub mod json;
pub mod protocol;
pub mod remote;
pub mod since;
pub mod types;

pub use error::ClientError;
pub use protocol::{Request, Response};

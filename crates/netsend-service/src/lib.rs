//! The messenger service: the tokio shell around the wire codecs and the sans-IO
//! state machines.
//!
//! # Layout
//! - [`config`]: the TOML configuration and its defaults.
//! - [`aliases`]: the message alias table, persisted in the state directory.
//! - [`inbox`]: the durable SQLite inbox; a message is committed before it is acknowledged.
//!   Its reads run on the threads of its `readers` submodule, never on the async workers.
//! - [`net`]: interface discovery and socket binding.
//! - [`service`]: start-up, the shared state and the shutdown path.
//! - `session`, `names`, `datagrams`, `control_server`: the drivers (TCP 139,
//!   UDP 137, UDP 138, control socket).
//! - [`send`]: name resolution and the client side of a directed message.
//! - `hooks`, `forward`: delivery hooks and alias forwarding, run after a
//!   message is stored.
//! - [`control`]: the control protocol and its client, used by the CLI.
//! - [`remote`]: the authenticated, encrypted channel that runs a control
//!   request on another host's service (`servername`, `--server`); its driver
//!   is `remote_server`.
//! - [`terminals`]: received messages written to the recipients' terminals.
//! - [`users`], [`logind`]: who is logged in (systemd-logind, utmp) or has an
//!   SMB session (smbstatus).
#![warn(missing_docs)]

pub mod aliases;
pub mod config;
pub mod control;
mod control_server;
mod datagrams;
mod drops;
mod forward;
mod hooks;
pub mod inbox;
pub mod json;
pub mod logind;
mod names;
pub mod net;
pub mod privileges;
mod registrar;
pub mod remote;
mod remote_server;
pub mod send;
pub mod service;
mod session;
mod slots;
pub mod terminals;
pub mod users;

//! The messenger service: the tokio shell around the wire codecs and the sans-IO
//! state machines.
//!
//! # Layout
//! - [`config`]: the TOML configuration and its defaults.
//! - [`start`]: binding, building every component in one place, running the
//!   drivers, and the stop; [`shutdown`]: the stop signal and task tracker.
//! - [`service`]: the components handed to the drivers.
//! - `transport`: the listeners (TCP 139, UDP 137, UDP 138, the control
//!   socket, the remote-call channel): accept, caps and framing.
//! - `control`: the handlers of the control requests
//!   (`netsend_control::protocol`), one file per request family.
//! - `admission`: per-source caps and the counted drop reasons.
//! - `browse`: our `\MAILSLOT\BROWSE` announcements and the host list of
//!   `netsend view`.
//! - [`naming`]: the alias table and the registrar that defends our names.
//! - [`outbound`]: name resolution and the client side of a directed message.
//! - `wins`: the WINS server of `[wins_server]`: its table, kept in the
//!   store, and the hook the site gateway uses.
//! - [`delivery`]: what runs after a message is stored (terminals, hooks,
//!   forwarding).
//! - [`store`]: the durable SQLite inbox; a message is committed before it is
//!   acknowledged. Its reads run on the threads of its `readers` submodule,
//!   never on the async workers.
//! - [`system`]: interfaces, logged-in users, privileges, systemd's
//!   notification socket.
//! - [`reload`]: which changed keys a reload takes live.
//! - [`metrics`]: every metric `/metrics` serves; its driver is
//!   `transport::metrics`.
//! - [`remote`]: the service's side of the authenticated, encrypted channel
//!   that runs a control request from another host (`servername`,
//!   `--server`); its driver is `transport::remote`.
//!
//! The control protocol, its clients, the caller's side of the remote-call
//! channel and the `--json` writer are the crate `netsend-control`.
#![warn(missing_docs)]

mod admission;
mod alerter;
mod browse;
pub mod config;
mod control;
pub mod delivery;
mod gateway;
pub mod metrics;
pub mod naming;
pub mod outbound;
pub mod reload;
pub mod remote;
pub mod service;
pub mod shutdown;
pub mod start;
pub mod store;
pub mod system;
mod transport;
mod wins;

//! The control socket's server: it answers the requests of
//! `netsend_control::protocol` from local clients and remote callers.

pub(crate) mod server;

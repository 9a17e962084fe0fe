//! The names this host holds: the alias table and the registrar that
//! registers and defends them on the LAN.

pub mod aliases;
pub(crate) mod registrar;

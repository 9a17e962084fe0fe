//! Messages this host sends: resolving a name and delivering a directed
//! message over a NetBIOS session.

pub mod send;

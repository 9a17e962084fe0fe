//! The host around the service: interfaces and sockets, logged-in users
//! (utmp, systemd-logind, smbstatus) and dropping privileges.

pub mod host;
pub mod logind;
pub mod net;
pub mod notify;
pub mod privileges;
pub mod users;

//! What happens to a message once it is stored: terminals, hooks and
//! forwarding to another host.

pub(crate) mod forward;
pub(crate) mod hooks;
pub mod terminals;

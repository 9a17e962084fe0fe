//! The send path as the forwarding channel sees it ([`SendPath`]):
//! resolution, and a send to a known address, as every directed message
//! goes.

use std::net::SocketAddr;

use netsend_wire::NetbiosName;

use super::send::{self, Deadline};
use super::Outbound;
use crate::delivery::forward::{SendPath, Sending};

impl SendPath for Outbound {
    fn resolve(&self, name: NetbiosName, deadline: Deadline) -> Sending<'_, SocketAddr> {
        Box::pin(async move { send::resolve(self, &name, deadline).await })
    }

    fn send_to_address<'a>(
        &'a self,
        to: &'a str,
        address: SocketAddr,
        from: &'a str,
        text: &'a str,
        deadline: Deadline,
    ) -> Sending<'a, ()> {
        Box::pin(send::send_to_address(
            self, to, address, from, text, deadline,
        ))
    }
}

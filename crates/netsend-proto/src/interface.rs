//! The IPv4 interfaces a host serves, as the protocol decisions see them:
//! an address, the subnet it reaches by broadcast, and who is on its link.

use std::net::Ipv4Addr;

/// An IPv4 interface address the services answer and send on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// The interface's own address.
    pub address: Ipv4Addr,
    /// Its subnet broadcast address, if it has one (loopback has none).
    pub broadcast: Option<Ipv4Addr>,
    /// Its subnet mask, when known.
    pub netmask: Option<Ipv4Addr>,
    /// Its hardware address, for node status answers (zeros when unknown).
    pub mac: [u8; 6],
}

impl Interface {
    /// Whether `peer` is on this interface's subnet (and so hears its broadcasts).
    pub fn is_on_link(&self, peer: Ipv4Addr) -> bool {
        self.netmask.is_some_and(|mask| {
            let mask = u32::from(mask);
            u32::from(peer) & mask == u32::from(self.address) & mask
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_link_needs_a_netmask_and_the_same_subnet() {
        let mut i = Interface {
            address: Ipv4Addr::new(192, 0, 2, 10),
            broadcast: Some(Ipv4Addr::new(192, 0, 2, 127)),
            netmask: Some(Ipv4Addr::new(255, 255, 255, 128)),
            mac: [0; 6],
        };
        assert!(i.is_on_link(Ipv4Addr::new(192, 0, 2, 100)));
        assert!(!i.is_on_link(Ipv4Addr::new(192, 0, 2, 200)));
        i.netmask = None;
        assert!(!i.is_on_link(Ipv4Addr::new(192, 0, 2, 100)));
    }
}

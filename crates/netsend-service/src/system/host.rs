//! What this host is on the network: the interfaces served and the addresses
//! the service listens on, fixed once the sockets are bound.

use std::net::{IpAddr, SocketAddr};

use crate::system::net::Interface;

/// The served interfaces and listening addresses.
#[derive(Debug, Clone)]
pub struct Host {
    /// Interfaces served.
    pub interfaces: Vec<Interface>,
    /// Where the session service listens (for status and local delivery).
    pub session_addresses: Vec<SocketAddr>,
    /// Where the name service listens.
    pub name_addresses: Vec<SocketAddr>,
    /// Where the remote-call channel listens (empty when `[remote] listen`
    /// is off).
    pub remote_addresses: Vec<SocketAddr>,
    /// The service's public key for remote calls, as text, which callers pin
    /// (`netsend remote trust`); `None` when the channel is off.
    pub remote_key: Option<String>,
}

impl Host {
    /// Whether `ip` is this host: loopback or a served address.
    pub fn is_own_address(&self, ip: IpAddr) -> bool {
        ip.is_loopback()
            || self.interfaces.iter().any(|i| IpAddr::V4(i.address) == ip)
            || self.session_addresses.iter().any(|a| a.ip() == ip)
    }

    /// Where a client reaches our own session service: each listening
    /// address, a wildcard one at every served interface's address and at
    /// the loopback address.
    pub fn own_session_addresses(&self) -> Vec<SocketAddr> {
        let mut own = Vec::new();
        for listen in &self.session_addresses {
            if listen.ip().is_unspecified() {
                own.extend(
                    self.interfaces
                        .iter()
                        .map(|i| i.address)
                        .chain([std::net::Ipv4Addr::LOCALHOST])
                        .map(|ip| SocketAddr::from((ip, listen.port()))),
                );
            } else {
                own.push(*listen);
            }
        }
        own
    }

    /// Whether `ip` is this host or on the subnet of a served interface.
    pub fn is_on_link(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                self.is_own_address(ip) || self.interfaces.iter().any(|i| i.is_on_link(v4))
            }
            IpAddr::V6(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn host(session: &[&str]) -> Host {
        Host {
            interfaces: vec![Interface {
                address: Ipv4Addr::new(192, 0, 2, 1),
                broadcast: Some(Ipv4Addr::new(192, 0, 2, 255)),
                netmask: Some(Ipv4Addr::new(255, 255, 255, 0)),
                mac: [0; 6],
            }],
            session_addresses: session.iter().map(|a| a.parse().unwrap()).collect(),
            name_addresses: Vec::new(),
            remote_addresses: Vec::new(),
            remote_key: None,
        }
    }

    #[test]
    fn our_session_service_is_reached_where_it_listens() {
        let listed = |h: Host| -> Vec<String> {
            h.own_session_addresses()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(listed(host(&["192.0.2.1:139"])), ["192.0.2.1:139"]);
        assert_eq!(
            listed(host(&["0.0.0.0:1139"])),
            ["192.0.2.1:1139", "127.0.0.1:1139"]
        );
    }
}

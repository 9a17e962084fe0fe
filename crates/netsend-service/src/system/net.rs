//! Socket set-up: which IPv4 interfaces to serve, and binding with errors that
//! name the port and the fix.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

pub use netsend_proto::interface::Interface;

/// Lists the IPv4 interfaces to serve: those whose address is in `bind`, or
/// every non-loopback IPv4 interface when `bind` holds `0.0.0.0`. Interface names
/// in `only` restrict the choice further.
pub fn interfaces(bind: &[Ipv4Addr], only: &[String]) -> Vec<Interface> {
    let wildcard = bind.iter().any(|a| a.is_unspecified());
    let mut found = Vec::new();
    let mut macs: Vec<(String, [u8; 6])> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        let addrs: Vec<nix::ifaddrs::InterfaceAddress> = addrs.collect();
        for ifa in &addrs {
            if let Some(mac) = ifa
                .address
                .as_ref()
                .and_then(|a| a.as_link_addr())
                .and_then(|l| l.addr())
            {
                macs.push((ifa.interface_name.clone(), mac));
            }
        }
        for ifa in addrs {
            if !only.is_empty() && !only.contains(&ifa.interface_name) {
                continue;
            }
            let Some(address) = ifa
                .address
                .as_ref()
                .and_then(|a| a.as_sockaddr_in())
                .map(|a| a.ip())
            else {
                continue;
            };
            let wanted = if wildcard {
                !address.is_loopback()
            } else {
                bind.contains(&address)
            };
            if !wanted {
                continue;
            }
            let broadcast = ifa
                .broadcast
                .as_ref()
                .and_then(|a| a.as_sockaddr_in())
                .map(|a| a.ip());
            let netmask = ifa
                .netmask
                .as_ref()
                .and_then(|a| a.as_sockaddr_in())
                .map(|a| a.ip());
            let mac = macs
                .iter()
                .find(|(name, _)| *name == ifa.interface_name)
                .map_or([0; 6], |(_, m)| *m);
            let iface = Interface {
                address,
                broadcast,
                netmask,
                mac,
            };
            if !found.contains(&iface) {
                found.push(iface);
            }
        }
    }
    // Addresses that are not on any interface (e.g. 127.0.0.2) are still served.
    for &address in bind {
        if !address.is_unspecified() && !found.iter().any(|i| i.address == address) {
            found.push(Interface {
                address,
                broadcast: None,
                netmask: None,
                mac: [0; 6],
            });
        }
    }
    found
}

/// Why a socket could not be bound, with the fix.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {what} on {addr}: {source}{hint}")]
pub struct BindError {
    /// Which service the port is for.
    pub what: &'static str,
    /// The address and port.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
    /// The fix, preformatted.
    pub hint: String,
}

fn bind_error(what: &'static str, addr: SocketAddr, source: std::io::Error) -> BindError {
    let port = addr.port();
    let hint = match source.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "\n  hint: port {port} is privileged: start the messenger as root (it drops privileges \
             after binding) or grant CAP_NET_BIND_SERVICE; for tests, set a port >= 1024 in [network]"
        ),
        std::io::ErrorKind::AddrInUse => format!(
            "\n  hint: port {port} is already in use{}; stop that service (e.g. `systemctl stop smbd nmbd`) \
             or bind netsend to another address",
            match port {
                137 | 138 => " (is Samba's nmbd running?)",
                139 | 445 => " (is Samba's smbd running?)",
                _ => "",
            }
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            "\n  hint: no interface has this address; check [network] bind".to_owned()
        }
        _ => String::new(),
    };
    BindError {
        what,
        addr,
        source,
        hint,
    }
}

/// Binds a UDP socket with SO_REUSEADDR and SO_BROADCAST, non-blocking.
pub fn bind_udp(what: &'static str, addr: SocketAddrV4) -> Result<std::net::UdpSocket, BindError> {
    let sa = SocketAddr::V4(addr);
    let build = || -> std::io::Result<std::net::UdpSocket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_broadcast(true)?;
        s.set_nonblocking(true)?;
        s.bind(&sa.into())?;
        Ok(s.into())
    };
    build().map_err(|e| bind_error(what, sa, e))
}

/// Binds a listening TCP socket with SO_REUSEADDR, non-blocking.
pub fn bind_tcp(
    what: &'static str,
    addr: SocketAddrV4,
) -> Result<std::net::TcpListener, BindError> {
    bind_tcp_at(what, SocketAddr::V4(addr))
}

/// [`bind_tcp`] for an IPv4 or IPv6 address (the metrics endpoint).
pub fn bind_tcp_at(what: &'static str, sa: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    let build = || -> std::io::Result<std::net::TcpListener> {
        let s = Socket::new(Domain::for_address(sa), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&sa.into())?;
        s.listen(1024)?;
        Ok(s.into())
    };
    build().map_err(|e| bind_error(what, sa, e))
}

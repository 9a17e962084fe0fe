//! Asking a host for its node status (its NetBIOS names), as `nmblookup -A`
//! does: for a reply to a sender whose name is not theirs, which goes to
//! their host's computer name ([`netsend_proto::reply`]).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use netsend_proto::reply::{node_status_names, node_status_request};
use netsend_wire::nbns::NodeName;
use tokio::net::UdpSocket;

use super::send::{Deadline, SendFailure};
use super::Outbound;

/// Tries of the request, each waiting this long for the answer.
const TRIES: u32 = 3;
const TRY_WAIT: Duration = Duration::from_millis(750);

/// The names `ip` lists in its node status, asked at its name service
/// port (ours, `[network] name_port`), by `deadline`.
pub(crate) async fn node_status(
    service: &Outbound,
    ip: Ipv4Addr,
    deadline: Deadline,
) -> Result<Vec<NodeName>, SendFailure> {
    let target = SocketAddr::V4(SocketAddrV4::new(
        ip,
        service.config.get().network.name_port,
    ));
    let net = |e: String| SendFailure::Network(target, e);
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(|e| net(e.to_string()))?;
    // Any 16 bits that differ between requests will do.
    let trn_id = (crate::naming::registrar::random_seed() ^ u64::from(std::process::id())) as u16;
    let request = node_status_request(trn_id).map_err(|e| net(e.to_string()))?;
    let mut buf = [0u8; 1500];
    for _ in 0..TRIES {
        socket
            .send_to(&request, target)
            .await
            .map_err(|e| net(e.to_string()))?;
        let until = tokio::time::Instant::now() + TRY_WAIT;
        let until = until.min(deadline.tokio());
        loop {
            match tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await {
                Ok(Ok((len, from))) if from.ip() == target.ip() => {
                    if let Some(names) = node_status_names(&buf[..len], trn_id) {
                        return Ok(names);
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(net(e.to_string())),
                Err(_) => break,
            }
        }
        if tokio::time::Instant::now() >= deadline.tokio() {
            break;
        }
    }
    Err(SendFailure::NameNotFound(format!(
        "the host {ip} (it did not answer a node status request)"
    )))
}

//! Asking a host for its name table (node status, UDP 137), to learn
//! whether it runs a messenger (its `<03>` names) and for `netsend view
//! \\HOST`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use netsend_proto::browse::{status_names, status_request};
use netsend_wire::nbns::NodeName;
use tokio::net::UdpSocket;

/// Tries (each waits this long for the answer).
const TRIES: usize = 2;
/// How long one try waits.
const WAIT: Duration = Duration::from_millis(750);

/// The name table of the host at `address` (its name service on `port`),
/// or `None` when it does not answer.
pub(crate) async fn node_status(address: Ipv4Addr, port: u16) -> Option<Vec<NodeName>> {
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .await
        .ok()?;
    let trn_id = crate::naming::registrar::random_trn_id();
    let request = status_request(trn_id);
    let target = SocketAddrV4::new(address, port);
    let mut buf = vec![0u8; 1500];
    for _ in 0..TRIES {
        socket.send_to(&request, target).await.ok()?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Ok(Ok((len, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        {
            if from.ip() == address {
                if let Some(names) = status_names(&buf[..len], trn_id) {
                    return Some(names);
                }
            }
        }
    }
    None
}

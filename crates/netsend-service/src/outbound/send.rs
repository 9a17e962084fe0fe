//! Sending a directed message: resolve the name, open a NetBIOS session to
//! `NAME<03>` and drive [`netsend_proto::sender::ClientSession`] over it.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use netsend_proto::resolver::{Resolution, Resolver};
use netsend_proto::sender::{ClientSession, SendError, SendOptions};
use netsend_wire::name::suffix;
use netsend_wire::status::NetApiStatus;
use netsend_wire::{nbss, NetbiosName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

use super::Outbound;
use crate::control::SendReport;

/// How long to wait for a TCP connection to the recipient.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for each reply from the recipient (within the
/// delivery's [`Deadline`]).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Broadcast query tries and their spacing (RFC 1002 BCAST_REQ_RETRY_*).
const QUERY_RETRIES: u32 = 3;
const QUERY_INTERVAL: Duration = Duration::from_millis(250);
/// Largest reply frame accepted from a recipient.
const MAX_REPLY_FRAME: usize = 1024;

/// How long a resolved address is reused without asking the network again.
pub const NAME_CACHE_TTL: Duration = Duration::from_secs(60);
/// Most names kept in the cache.
const NAME_CACHE_LEN: usize = 256;

/// Recently resolved names and where their messenger answered.
#[derive(Debug, Default)]
pub struct NameCache {
    entries: Vec<(NetbiosName, SocketAddr, Instant)>,
}

impl NameCache {
    /// The cached address of `name`, unless it expired.
    pub fn get(&mut self, name: &NetbiosName, now: Instant) -> Option<SocketAddr> {
        self.entries
            .retain(|(_, _, at)| now.duration_since(*at) < NAME_CACHE_TTL);
        self.entries
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, a, _)| *a)
    }

    /// Remembers that `name` answered at `address`.
    pub fn insert(&mut self, name: NetbiosName, address: SocketAddr, now: Instant) {
        self.remove(&name);
        if self.entries.len() >= NAME_CACHE_LEN {
            self.entries.remove(0);
        }
        self.entries.push((name, address, now));
    }

    /// Forgets `name`.
    pub fn remove(&mut self, name: &NetbiosName) {
        self.entries.retain(|(n, _, _)| n != name);
    }
}

/// The one deadline of an outbound delivery (`[limits] send_timeout_secs`):
/// resolution, connection, session and every block must be done by then,
/// whatever the peer sends meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    secs: u64,
}

impl Deadline {
    /// The deadline of a delivery that starts now.
    pub(crate) fn start(service: &Outbound) -> Self {
        let secs = service.config.limits.send_timeout_secs.max(1);
        Self {
            at: Instant::now() + Duration::from_secs(secs),
            secs,
        }
    }

    fn tokio(self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.at)
    }

    fn passed(self) -> String {
        format!(
            "not delivered within {} s ([limits] send_timeout_secs)",
            self.secs
        )
    }
}

/// Why a send failed, with the NERR code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// The name or the text is not acceptable.
    #[error("{0}")]
    InvalidParameter(String),
    /// Nobody answered for the name.
    #[error("{0} could not be found on the network")]
    NameNotFound(String),
    /// Several hosts claim the name; none was picked.
    #[error("{name} is claimed by several hosts: {addresses}")]
    Duplicate {
        /// The name.
        name: String,
        /// The hosts, comma-separated.
        addresses: String,
    },
    /// The connection or the exchange failed.
    #[error("network error talking to {0}: {1}")]
    Network(SocketAddr, String),
    /// The recipient answered with an error.
    #[error("{0} refused the message: {1}")]
    Refused(SocketAddr, String, NetApiStatus),
    /// A broadcast text does not fit one datagram (length, limit).
    #[error("the broadcast text is {0} bytes; one datagram holds at most {1}")]
    TruncatedBroadcast(usize, usize),
    /// No interface has a broadcast address (and none is configured).
    #[error("no interface with a broadcast address to send on; add [network] broadcast addresses")]
    NoBroadcastInterface,
    /// The caller may not do this.
    #[error("{0}")]
    AccessDenied(String),
}

impl SendFailure {
    /// The NERR/Win32 code for the failure.
    pub fn status(&self) -> NetApiStatus {
        match self {
            Self::InvalidParameter(_) => NetApiStatus::ERROR_INVALID_PARAMETER,
            Self::NameNotFound(_) => NetApiStatus::NERR_NAME_NOT_FOUND,
            Self::Duplicate { .. } => NetApiStatus::NERR_DUPLICATE_NAME,
            Self::Network(..) => NetApiStatus::NERR_NETWORK_ERROR,
            Self::Refused(_, _, status) => *status,
            Self::TruncatedBroadcast(..) => NetApiStatus::NERR_TRUNCATED_BROADCAST,
            Self::NoBroadcastInterface => NetApiStatus::NERR_NETWORK_ERROR,
            Self::AccessDenied(_) => NetApiStatus::ERROR_ACCESS_DENIED,
        }
    }
}

/// Sends `text` from `from` to the alias `to`, on behalf of the local user
/// `uid` when there is one (a message to one of our own names then counts
/// against that user's limits, not against our address).
pub(crate) async fn send(
    service: &Outbound,
    uid: Option<u32>,
    to: &str,
    from: &str,
    text: &str,
) -> Result<SendReport, SendFailure> {
    let name = NetbiosName::with_code_page(to, suffix::MESSENGER, service.config.code_page)
        .map_err(|e| SendFailure::InvalidParameter(format!("recipient {to:?}: {e}")))?;
    if text.len() > service.config.limits.max_message_len {
        return Err(SendFailure::InvalidParameter(format!(
            "the message is {} bytes long; the limit is {}",
            text.len(),
            service.config.limits.max_message_len
        )));
    }
    let deadline = Deadline::start(service);
    let cached = service
        .name_cache
        .lock()
        .expect("name cache lock")
        .get(&name, Instant::now());
    let address = match cached {
        Some(address) => address,
        None => resolve(service, &name, deadline).await?,
    };
    let session = || client_session(service, name, from, to, text);
    let address = match deliver(service, uid, address, session(), deadline).await {
        Ok(()) => address,
        // A cached address may be stale (the owner left): forget it and ask again.
        Err(SendFailure::Network(..) | SendFailure::NameNotFound(_)) if cached.is_some() => {
            service
                .name_cache
                .lock()
                .expect("name cache lock")
                .remove(&name);
            let fresh = resolve(service, &name, deadline).await?;
            deliver(service, uid, fresh, session(), deadline).await?;
            fresh
        }
        Err(e) => return Err(e),
    };
    service
        .name_cache
        .lock()
        .expect("name cache lock")
        .insert(name, address, Instant::now());
    Ok(SendReport {
        to: name.to_text(service.config.code_page),
        address: address.to_string(),
        multi_block: true,
        receipt_id: None,
    })
}

/// The client side of one message from this host.
fn client_session(
    service: &Outbound,
    name: NetbiosName,
    from: &str,
    to: &str,
    text: &str,
) -> ClientSession {
    let calling = service
        .naming
        .aliases
        .lock()
        .expect("alias table lock")
        .computer_name()
        .with_suffix(suffix::WORKSTATION);
    let options = SendOptions {
        code_page: service.config.code_page,
        ..SendOptions::default()
    };
    ClientSession::new(name, calling, from, to, text, options)
}

/// Sends `text` to `user` at the machine they sit at: their alias here when
/// `client` is `None` (a local login), else `USER<03>` at that client (an IPv4
/// address, or a NetBIOS name resolved like any other), on behalf of the
/// local user `uid` as in [`send`].
pub(crate) async fn send_to_session(
    service: &Outbound,
    uid: Option<u32>,
    user: &str,
    client: Option<&str>,
    from: &str,
    text: &str,
) -> Result<SendReport, SendFailure> {
    let Some(client) = client else {
        return send(service, uid, user, from, text).await;
    };
    let name = NetbiosName::with_code_page(user, suffix::MESSENGER, service.config.code_page)
        .map_err(|e| SendFailure::InvalidParameter(format!("user {user:?}: {e}")))?;
    let deadline = Deadline::start(service);
    let port = service.config.network.session_port;
    let address = match client.parse::<Ipv4Addr>() {
        Ok(ip) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
        Err(_) => {
            let machine =
                NetbiosName::with_code_page(client, suffix::MESSENGER, service.config.code_page)
                    .map_err(|e| {
                        SendFailure::NameNotFound(format!("client machine {client:?}: {e}"))
                    })?;
            resolve(service, &machine, deadline).await?
        }
    };
    let session = client_session(service, name, from, user, text);
    deliver(service, uid, address, session, deadline).await?;
    Ok(SendReport {
        to: name.to_text(service.config.code_page),
        address: address.to_string(),
        multi_block: true,
        receipt_id: None,
    })
}

/// Sends `text` to the alias `to` at `address` (a host's session service),
/// without resolving `to` there, by `deadline`.
pub(crate) async fn send_to_address(
    service: &Outbound,
    to: &str,
    address: SocketAddr,
    from: &str,
    text: &str,
    deadline: Deadline,
) -> Result<(), SendFailure> {
    let name = NetbiosName::with_code_page(to, suffix::MESSENGER, service.config.code_page)
        .map_err(|e| SendFailure::InvalidParameter(format!("recipient {to:?}: {e}")))?;
    deliver(
        service,
        None,
        address,
        client_session(service, name, from, to, text),
        deadline,
    )
    .await
}

/// Resolves `NAME<03>` by `deadline` (see [`resolve_now`]); a resolution
/// still going on then fails as not found.
pub(crate) async fn resolve(
    service: &Outbound,
    name: &NetbiosName,
    deadline: Deadline,
) -> Result<SocketAddr, SendFailure> {
    tokio::time::timeout_at(deadline.tokio(), resolve_now(service, name))
        .await
        .unwrap_or_else(|_| {
            Err(SendFailure::NameNotFound(format!(
                "{name}: {}",
                deadline.passed()
            )))
        })
}

/// Resolves `NAME<03>` in order: our own aliases, static entries, the WINS
/// server (when configured), then broadcast queries on every interface. (The
/// cache of recent answers is consulted by the caller before this.)
async fn resolve_now(service: &Outbound, name: &NetbiosName) -> Result<SocketAddr, SendFailure> {
    let session_port = service.config.network.session_port;
    if service
        .naming
        .aliases
        .lock()
        .expect("alias table lock")
        .find(name)
        .is_some()
    {
        let local = service
            .host
            .session_addresses
            .first()
            .copied()
            .ok_or_else(|| SendFailure::NameNotFound(name.to_string()))?;
        let ip = match local.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST,
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
        };
        return Ok(SocketAddr::V4(SocketAddrV4::new(ip, local.port())));
    }
    for entry in &service.config.static_names {
        if let Ok(n) =
            NetbiosName::with_code_page(&entry.name, suffix::MESSENGER, service.config.code_page)
        {
            if n == *name {
                return entry
                    .socket_addr(session_port)
                    .map_err(SendFailure::InvalidParameter);
            }
        }
    }
    let name_port = service.config.network.name_port;
    let mut targets: Vec<(Ipv4Addr, SocketAddrV4)> = service
        .host
        .interfaces
        .iter()
        .filter_map(|i| {
            i.broadcast
                .map(|b| (i.address, SocketAddrV4::new(b, name_port)))
        })
        .collect();
    for extra in &service.config.network.broadcast {
        targets.push((Ipv4Addr::UNSPECIFIED, SocketAddrV4::new(*extra, name_port)));
    }
    // H-node order: the WINS server first, then broadcast.
    let mut found = Vec::new();
    if let Some(wins) = &service.config.wins {
        let server = [(
            Ipv4Addr::UNSPECIFIED,
            SocketAddrV4::new(wins.server, name_port),
        )];
        found = query(name, &server, false).await;
    }
    if found.is_empty() {
        found = query(name, &targets, true).await;
    }
    match found.as_slice() {
        [] => Err(SendFailure::NameNotFound(name.to_string())),
        [one] => Ok(SocketAddr::V4(SocketAddrV4::new(*one, session_port))),
        many => Err(SendFailure::Duplicate {
            name: name.to_string(),
            addresses: many
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Sends name queries for `name` from each source address to its target and
/// collects the distinct addresses that answered.
async fn query(
    name: &NetbiosName,
    targets: &[(Ipv4Addr, SocketAddrV4)],
    broadcast: bool,
) -> Vec<Ipv4Addr> {
    let mut found: Vec<Ipv4Addr> = Vec::new();
    for &(source, target) in targets {
        let Ok(socket) = UdpSocket::bind(SocketAddrV4::new(source, 0)).await else {
            continue;
        };
        let _ = socket.set_broadcast(true);
        let trn_id = crate::naming::registrar::random_trn_id();
        let mut resolver = Resolver::with_mode(
            *name,
            trn_id,
            Instant::now(),
            QUERY_RETRIES,
            QUERY_INTERVAL,
            broadcast,
        );
        let mut buf = [0u8; 1500];
        loop {
            let now = Instant::now();
            while let Some(packet) = resolver.poll_transmit(now) {
                let _ = socket.send_to(&packet, target).await;
            }
            if resolver.result().is_some() {
                break;
            }
            let Some(deadline) = resolver.poll_timeout() else {
                break;
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
                Ok(Ok((len, SocketAddr::V4(src)))) => {
                    resolver.handle_datagram(Instant::now(), *src.ip(), &buf[..len])
                }
                Ok(_) => {}
                Err(_) => resolver.handle_timeout(Instant::now()),
            }
        }
        if let Some(Resolution::Found(addresses)) = resolver.result() {
            for a in addresses {
                if !found.contains(&a) {
                    found.push(a);
                }
            }
        }
    }
    found
}

/// Connects to `address` and runs the client session to completion, or
/// fails at `deadline`. When the message is the local user `uid`'s and
/// `address` is this host, the connection's local end is bound first and
/// recorded, so our session service counts it against that user from the
/// moment it is accepted.
async fn deliver(
    service: &Outbound,
    uid: Option<u32>,
    address: SocketAddr,
    session: ClientSession,
    deadline: Deadline,
) -> Result<(), SendFailure> {
    let net = |e: String| SendFailure::Network(address, e);
    let mut session = session.with_deadline(deadline.at);
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| net(e.to_string()))?;
    let _local_sender = match uid {
        Some(uid) if service.host.is_own_address(address.ip()) => Some(
            socket
                .bind(SocketAddr::new(address.ip(), 0))
                .and_then(|()| socket.local_addr())
                .map(|local| service.admission.local_sender(local, uid))
                .map_err(|e| net(e.to_string()))?,
        ),
        _ => None,
    };
    let connect_by = deadline.at.min(Instant::now() + CONNECT_TIMEOUT);
    let mut stream = tokio::time::timeout_at(connect_by.into(), socket.connect(address))
        .await
        .map_err(|_| net("connection timed out".into()))?
        .map_err(|e| net(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    loop {
        while let Some(frame) = session.poll_transmit() {
            tokio::time::timeout_at(deadline.tokio(), stream.write_all(&frame))
                .await
                .map_err(|_| net(deadline.passed()))?
                .map_err(|e| net(e.to_string()))?;
        }
        if session.is_done() {
            return Ok(());
        }
        let frame_len = loop {
            match nbss::check_frame(&buf, MAX_REPLY_FRAME) {
                Ok(Some(n)) => break n,
                Ok(None) => {}
                Err(e) => return Err(net(e.to_string())),
            }
            let mut chunk = [0u8; 1024];
            let reply_by = Instant::now() + REPLY_TIMEOUT;
            let until = session.poll_timeout().map_or(reply_by, |d| d.min(reply_by));
            let Ok(read) = tokio::time::timeout_at(until.into(), stream.read(&mut chunk)).await
            else {
                session
                    .handle_timeout(Instant::now())
                    .map_err(|e| map_send_error(address, e, deadline))?;
                return Err(net("no reply".into()));
            };
            let n = read.map_err(|e| net(e.to_string()))?;
            if n == 0 {
                return Err(net("the recipient closed the connection".into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let frame: Vec<u8> = buf.drain(..frame_len).collect();
        session
            .handle_frame(&frame)
            .map_err(|e| map_send_error(address, e, deadline))?;
    }
}

/// Maps a protocol failure to the NERR code NetMessageBufferSend returns.
fn map_send_error(address: SocketAddr, error: SendError, deadline: Deadline) -> SendFailure {
    match error {
        SendError::TimedOut => SendFailure::Network(address, deadline.passed()),
        SendError::NameNotPresent => SendFailure::NameNotFound(format!("the name at {address}")),
        SendError::Refused(status) => {
            let code = status.to_net_api_status();
            SendFailure::Refused(address, format!("{status:?}"), code)
        }
        other => SendFailure::Network(address, format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_expire_and_can_be_forgotten() {
        let mut c = NameCache::default();
        let t0 = Instant::now();
        let bob = NetbiosName::new("BOB", 3).unwrap();
        let at: SocketAddr = "192.0.2.11:139".parse().unwrap();
        c.insert(bob, at, t0);
        assert_eq!(c.get(&bob, t0 + Duration::from_secs(59)), Some(at));
        assert_eq!(c.get(&bob, t0 + NAME_CACHE_TTL), None);
        c.insert(bob, at, t0);
        c.remove(&bob);
        assert_eq!(c.get(&bob, t0), None);
    }
}

//! Sending a directed message: resolve the name, open a NetBIOS session to
//! `NAME<03>` and drive [`netsend_proto::sender::ClientSession`] over it.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use netsend_proto::delivery_tag::DeliveryTag;
use netsend_proto::plan::{Known, Next, PlanConfig, ResolveError, ResolvePlan, Source};
use netsend_proto::sender::{ClientSession, SendError, SendOptions};
use netsend_proto::sites::SiteName;
use netsend_wire::name::suffix;
use netsend_wire::status::NetApiStatus;
use netsend_wire::{nbss, NetbiosName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

use super::verified::{Outcome, VerifiedSend};
use super::Outbound;
use netsend_control::types::SendReport;
use netsend_proto::display::LogSafe;

/// How long to wait for a TCP connection to the recipient.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for each reply from the recipient (within the
/// delivery's [`Deadline`]).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest reply frame accepted from a recipient.
const MAX_REPLY_FRAME: usize = 1024;

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
        Self::within(service.config.get().limits.send_timeout_secs)
    }

    /// The deadline of a delivery that starts now and has `secs` (at least
    /// one) to finish.
    pub(crate) fn within(secs: u64) -> Self {
        let secs = secs.max(1);
        Self {
            at: Instant::now() + Duration::from_secs(secs),
            secs,
        }
    }

    /// When it passes.
    pub(crate) const fn instant(self) -> Instant {
        self.at
    }

    pub(crate) fn tokio(self) -> tokio::time::Instant {
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
    /// The name could not be resolved: nobody answered, or several hosts
    /// claim it and none was picked.
    #[error(transparent)]
    Unresolved(#[from] ResolveError),
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
    /// The message for another site could not be handed to the NATS
    /// cluster (not connected, no acknowledgement in time).
    #[error("the site backbone did not take the message: {0}")]
    Backbone(String),
}

impl SendFailure {
    /// The NERR/Win32 code for the failure.
    pub fn status(&self) -> NetApiStatus {
        match self {
            Self::InvalidParameter(_) => NetApiStatus::ERROR_INVALID_PARAMETER,
            Self::NameNotFound(_) => NetApiStatus::NERR_NAME_NOT_FOUND,
            Self::Unresolved(ResolveError::NotFound(_)) => NetApiStatus::NERR_NAME_NOT_FOUND,
            Self::Unresolved(ResolveError::Duplicate { .. }) => NetApiStatus::NERR_DUPLICATE_NAME,
            Self::Network(..) => NetApiStatus::NERR_NETWORK_ERROR,
            Self::Refused(_, _, status) => *status,
            Self::TruncatedBroadcast(..) => NetApiStatus::NERR_TRUNCATED_BROADCAST,
            Self::NoBroadcastInterface => NetApiStatus::NERR_NETWORK_ERROR,
            Self::AccessDenied(_) => NetApiStatus::ERROR_ACCESS_DENIED,
            Self::Backbone(_) => NetApiStatus::NERR_NETWORK_ERROR,
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
    send_with(service, uid, to, from, text, Sites::Fresh, None).await
}

/// Whether, and with which dedup id, a name at another site goes over the
/// site backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sites {
    /// Over the backbone with a fresh id (a send from this host).
    Fresh,
    /// Over the backbone with the id of this queued entry (its retries).
    Queued {
        /// The queue entry.
        id: i64,
    },
    /// Never: the message came over the backbone and is delivered here.
    Local,
}

/// [`send`], with the way to other sites given, and the delivery tag of a
/// sender that may repeat this message (the queue, a gateway delivering
/// what came from another site) so that a netsend recipient stores a
/// repeat once.
pub(crate) async fn send_with(
    service: &Outbound,
    uid: Option<u32>,
    to: &str,
    from: &str,
    text: &str,
    sites: Sites,
    tag: Option<DeliveryTag>,
) -> Result<SendReport, SendFailure> {
    let name = NetbiosName::with_code_page(to, suffix::MESSENGER, service.config.get().code_page)
        .map_err(|e| SendFailure::InvalidParameter(format!("recipient {to:?}: {e}")))?;
    let max_len = service.config.get().limits.max_message_len;
    if text.len() > max_len {
        return Err(SendFailure::InvalidParameter(format!(
            "the message is {} bytes long; the limit is {}",
            text.len(),
            max_len
        )));
    }
    let deadline = Deadline::start(service);
    let cached = service
        .name_cache
        .lock()
        .expect("name cache lock")
        .get(&name, Instant::now());
    let mut plan = resolve_plan(service, &name, cached, sites);
    let mut verified_sent = false;
    let address = loop {
        let (address, source) = match drive(&mut plan, deadline).await? {
            Found::Host(address, source) => (address, source),
            Found::Site(site) => {
                return carry(service, site, name, Letter { from, to, text }, sites).await
            }
        };
        if let Some(verified) = verified_path(service, address) {
            match verified.deliver(address, from, to, text, deadline).await? {
                Outcome::Delivered => {
                    verified_sent = true;
                    break address;
                }
                Outcome::Unavailable(why) => {
                    tracing::debug!(%address, why = %LogSafe(&why), "verified path unavailable: sending by SMB");
                }
            }
        }
        let session = client_session(service, name, from, to, text, tag);
        match deliver(service, uid, address, session, deadline).await {
            Ok(()) => break address,
            // A cached address may be stale (the owner left): forget it and ask again.
            Err(SendFailure::Network(..) | SendFailure::NameNotFound(_))
                if source == Source::Cache =>
            {
                service
                    .name_cache
                    .lock()
                    .expect("name cache lock")
                    .remove(&name);
                plan.handle_stale();
            }
            Err(e) => return Err(e),
        }
    };
    service
        .name_cache
        .lock()
        .expect("name cache lock")
        .insert(name, address, Instant::now());
    Ok(SendReport {
        to: name.to_text(service.config.get().code_page),
        address: address.to_string(),
        multi_block: true,
        receipt_id: None,
        verified: verified_sent,
    })
}

/// The verified path to the host at `address`, when `[trust] verified_send`
/// is on and that host is not this one (a local message stays a local
/// user's, counted against them).
fn verified_path(service: &Outbound, address: SocketAddr) -> Option<&VerifiedSend> {
    service
        .verified
        .as_ref()
        .filter(|_| !service.host.is_own_address(address.ip()))
}

/// The client side of one message from this host.
fn client_session(
    service: &Outbound,
    name: NetbiosName,
    from: &str,
    to: &str,
    text: &str,
    tag: Option<DeliveryTag>,
) -> ClientSession {
    let calling = service
        .naming
        .aliases
        .lock()
        .expect("alias table lock")
        .computer_name()
        .with_suffix(suffix::WORKSTATION);
    let options = SendOptions {
        code_page: service.config.get().code_page,
        tag,
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
    let name = NetbiosName::with_code_page(user, suffix::MESSENGER, service.config.get().code_page)
        .map_err(|e| SendFailure::InvalidParameter(format!("user {user:?}: {e}")))?;
    let deadline = Deadline::start(service);
    let port = service.config.get().network.session_port;
    let address = match client.parse::<Ipv4Addr>() {
        Ok(ip) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
        Err(_) => {
            let machine = NetbiosName::with_code_page(
                client,
                suffix::MESSENGER,
                service.config.get().code_page,
            )
            .map_err(|e| SendFailure::NameNotFound(format!("client machine {client:?}: {e}")))?;
            resolve(service, &machine, deadline).await?
        }
    };
    let session = client_session(service, name, from, user, text, None);
    deliver(service, uid, address, session, deadline).await?;
    Ok(SendReport {
        to: name.to_text(service.config.get().code_page),
        address: address.to_string(),
        multi_block: true,
        receipt_id: None,
        verified: false,
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
    let name = NetbiosName::with_code_page(to, suffix::MESSENGER, service.config.get().code_page)
        .map_err(|e| SendFailure::InvalidParameter(format!("recipient {to:?}: {e}")))?;
    deliver(
        service,
        None,
        address,
        client_session(service, name, from, to, text, None),
        deadline,
    )
    .await
}

/// Resolves `NAME<03>` by `deadline`, without the cache (see
/// [`ResolvePlan`] for the order); a resolution still going on then fails
/// as not found.
pub(crate) async fn resolve(
    service: &Outbound,
    name: &NetbiosName,
    deadline: Deadline,
) -> Result<SocketAddr, SendFailure> {
    let mut plan = resolve_plan(service, name, None, Sites::Local);
    match drive(&mut plan, deadline).await? {
        Found::Host(address, _) => Ok(address),
        // Not asked for: the plan was given no remote site.
        Found::Site(site) => Err(SendFailure::NameNotFound(format!("{name}: at site {site}"))),
    }
}

/// A directed message's sender, recipient and text.
#[derive(Debug, Clone, Copy)]
struct Letter<'a> {
    from: &'a str,
    to: &'a str,
    text: &'a str,
}

/// Hands a message for a name at `site` to the site backbone, with the
/// dedup id `sites` says; delivered once JetStream acknowledged it.
async fn carry(
    service: &Outbound,
    site: SiteName,
    name: NetbiosName,
    letter: Letter<'_>,
    sites: Sites,
) -> Result<SendReport, SendFailure> {
    let backbone = service
        .backbone
        .get()
        .ok_or_else(|| SendFailure::Backbone("this host is not a site gateway".into()))?;
    let msg_id = match sites {
        Sites::Queued { id } => netsend_proto::sites::queued_msg_id(
            backbone.site(),
            id,
            letter.from,
            letter.to,
            letter.text,
        ),
        Sites::Fresh | Sites::Local => fresh_msg_id(backbone.site()),
    };
    let sender = service
        .host
        .session_addresses
        .iter()
        .find_map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) if !v4.is_unspecified() => Some(v4),
            _ => None,
        })
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    backbone
        .carry(
            site.clone(),
            super::Carry {
                msg_id,
                from: letter.from.to_owned(),
                to: letter.to.to_owned(),
                text: letter.text.to_owned(),
                sender,
            },
        )
        .await?;
    Ok(SendReport {
        to: name.to_text(service.config.get().code_page),
        address: format!("site {site}"),
        multi_block: false,
        receipt_id: None,
        verified: false,
    })
}

/// A fresh dedup id: the clock, a process-wide counter and a random
/// number (the std hasher's random keys).
pub(crate) fn fresh_msg_id(site: &SiteName) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u64(count);
    netsend_proto::sites::fresh_msg_id(site, nanos, count, random.finish())
}

/// What resolution found: a host to connect to, or the site holding the
/// name.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    Host(SocketAddr, Source),
    Site(SiteName),
}

/// The plan for `name`: what this host knows of it (the cache's address,
/// our own names, the static entries) and where to ask.
fn resolve_plan(
    service: &Outbound,
    name: &NetbiosName,
    cached: Option<SocketAddr>,
    sites: Sites,
) -> ResolvePlan {
    let config = service.config.get();
    let network = &config.network;
    let cp = config.code_page;
    let static_names = config
        .static_names
        .iter()
        .filter_map(|entry| {
            let n = NetbiosName::with_code_page(&entry.name, suffix::MESSENGER, cp).ok()?;
            // Checked when the configuration was loaded.
            Some((n, entry.socket_addr(network.session_port).ok()?))
        })
        .collect();
    let known = Known {
        cached,
        ours: service
            .naming
            .aliases
            .lock()
            .expect("alias table lock")
            .find(name)
            .is_some(),
        local_session: service.host.session_addresses.first().copied(),
        static_names,
        wins_table: service
            .wins
            .get()
            .and_then(|wins| wins.unique_address(name)),
        remote_site: match sites {
            Sites::Local => None,
            Sites::Fresh | Sites::Queued { .. } => {
                service.backbone.get().and_then(|b| b.site_of(name))
            }
        },
        own_sessions: service.host.own_session_addresses(),
    };
    let config = PlanConfig::new(
        &service.host.interfaces,
        &network.broadcast,
        config.wins.as_ref().map(|w| w.server),
        network.session_port,
        network.name_port,
    );
    ResolvePlan::new(
        *name,
        config,
        known,
        crate::naming::registrar::random_seed(),
    )
}

/// Drives `plan` until it names an address (and where it came from), by
/// `deadline`.
async fn drive(plan: &mut ResolvePlan, deadline: Deadline) -> Result<Found, SendFailure> {
    let name = *plan.name();
    tokio::time::timeout_at(deadline.tokio(), drive_now(plan))
        .await
        .unwrap_or_else(|_| {
            Err(SendFailure::NameNotFound(format!(
                "{name}: {}",
                deadline.passed()
            )))
        })
}

/// Runs the plan's queries: each from its source address to its target on
/// a socket of its own, whose answers are fed back until the next query.
async fn drive_now(plan: &mut ResolvePlan) -> Result<Found, SendFailure> {
    let mut socket: Option<(Ipv4Addr, SocketAddrV4, UdpSocket)> = None;
    let mut buf = [0u8; 1500];
    loop {
        match plan.poll(Instant::now()) {
            Next::Connect { address, source } => return Ok(Found::Host(address, source)),
            Next::Remote(site) => return Ok(Found::Site(site)),
            Next::Fail(e) => return Err(e.into()),
            Next::Send(query) => {
                let same = |(source, target, _): &(Ipv4Addr, SocketAddrV4, UdpSocket)| {
                    *source == query.source && *target == query.target
                };
                if !socket.as_ref().is_some_and(same) {
                    socket = None;
                    let Ok(bound) = UdpSocket::bind(SocketAddrV4::new(query.source, 0)).await
                    else {
                        plan.skip_query();
                        continue;
                    };
                    let _ = bound.set_broadcast(true);
                    socket = Some((query.source, query.target, bound));
                }
                if let Some((_, target, s)) = &socket {
                    let _ = s.send_to(&query.bytes, *target).await;
                }
            }
            Next::Wait(until) => {
                let Some((_, _, s)) = &socket else {
                    tokio::time::sleep_until(until.into()).await;
                    plan.handle_timeout(Instant::now());
                    continue;
                };
                match tokio::time::timeout_at(until.into(), s.recv_from(&mut buf)).await {
                    Ok(Ok((len, SocketAddr::V4(src)))) => {
                        plan.handle_datagram(Instant::now(), *src.ip(), &buf[..len])
                    }
                    Ok(_) => {}
                    Err(_) => plan.handle_timeout(Instant::now()),
                }
            }
        }
    }
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
    let started = Instant::now();
    let outcome = exchange(socket, address, session, deadline).await;
    service.metrics.send_took(started.elapsed().as_secs_f64());
    if outcome.is_ok() {
        service.metrics.sent("session", 1);
    }
    outcome
}

/// Connects `socket` to `address` and runs the client session to
/// completion, or fails at `deadline`.
pub(crate) async fn exchange(
    socket: TcpSocket,
    address: SocketAddr,
    session: ClientSession,
    deadline: Deadline,
) -> Result<(), SendFailure> {
    let net = |e: String| SendFailure::Network(address, e);
    let mut session = session.with_deadline(deadline.at);
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
    use netsend_wire::nbns::{NbEntry, NodeType, Packet};

    fn within(d: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + d,
            secs: d.as_secs().max(1),
        }
    }

    /// A real UDP socket on loopback plays the WINS server: the driver sends
    /// the plan's query there and returns the address it answers; when the
    /// server falls silent the plan's tries run out; the delivery's
    /// deadline ends a plan still waiting.
    #[tokio::test]
    async fn the_driver_runs_the_plans_queries_on_real_sockets() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let name = NetbiosName::new("BOB", 3).unwrap();
        let interval = Duration::from_millis(50);
        let config = PlanConfig {
            session_port: 1139,
            name_port: server.local_addr().unwrap().port(),
            wins: Some(Ipv4Addr::LOCALHOST),
            broadcast: Vec::new(),
            retries: 3,
            interval,
        };
        let answering = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            let (len, from) = server.recv_from(&mut buf).await.unwrap();
            let query = Packet::parse(&buf[..len]).unwrap();
            let owner = NbEntry::new(false, NodeType::H, Ipv4Addr::new(127, 0, 0, 9));
            let reply =
                Packet::positive_query_response(query.trn_id, name.into(), 300, vec![owner]);
            server
                .send_to(&reply.to_bytes().unwrap(), from)
                .await
                .unwrap();
            server
        });
        let mut plan = ResolvePlan::new(name, config.clone(), Known::default(), 1);
        let found = drive(&mut plan, within(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(
            found,
            Found::Host("127.0.0.9:1139".parse().unwrap(), Source::Wins)
        );
        let _silent = answering.await.unwrap();
        let mut plan = ResolvePlan::new(name, config.clone(), Known::default(), 2);
        let started = Instant::now();
        let failed = drive(&mut plan, within(Duration::from_secs(5))).await;
        assert!(
            matches!(
                failed,
                Err(SendFailure::Unresolved(ResolveError::NotFound(_)))
            ),
            "{failed:?}"
        );
        assert!(started.elapsed() >= interval * 3, "{:?}", started.elapsed());
        let slow = PlanConfig {
            interval: Duration::from_secs(2),
            ..config
        };
        let mut plan = ResolvePlan::new(name, slow, Known::default(), 3);
        let failed = drive(&mut plan, within(Duration::from_millis(100))).await;
        let Err(SendFailure::NameNotFound(why)) = failed else {
            panic!("{failed:?}")
        };
        assert!(why.contains("send_timeout_secs"), "{why}");
    }
}

//! Driver of the name registration state machines
//! ([`netsend_proto::registration::NameTable`]), one per interface that has a
//! broadcast address: it broadcasts registrations and releases from the
//! interface's name service socket, feeds responses (and release requests)
//! in, tells waiting callers whether a name was registered or refused, and
//! logs and counts the demands for our names that the tables ignored.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsend_proto::policy::DropReason;
use netsend_proto::registration::{
    NameEvent, NameReport, NameState, NameTable, RegistrationConfig,
};
use netsend_proto::responder::OwnedName;
use netsend_proto::wins::{WinsClient, WinsConfig};
use netsend_wire::NetbiosName;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, Notify};

use crate::admission::drops::Drops;
use crate::system::net::Interface;
use netsend_proto::display::LogSafe;

/// How long an alias add waits for its registration to settle.
const REGISTRATION_WAIT: Duration = Duration::from_secs(5);

/// One broadcast segment: an interface, its name service socket and its names.
struct Segment {
    iface: Interface,
    socket: Arc<UdpSocket>,
    table: Mutex<NameTable>,
}

/// Registrations with the WINS server.
struct Wins {
    socket: Arc<UdpSocket>,
    client: Mutex<WinsClient>,
}

/// Where a name is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// On a broadcast segment.
    Broadcast,
    /// With the WINS server.
    Wins,
}

/// Every segment's registrations, and the WINS server's.
pub(crate) struct Registrar {
    segments: Vec<Segment>,
    wins: Option<Wins>,
    name_port: u16,
    wake: Notify,
    events: broadcast::Sender<NameEvent>,
    drops: Arc<Drops>,
}

/// A transaction id other hosts cannot guess.
pub(crate) fn random_trn_id() -> u16 {
    random_seed() as u16
}

/// A random number (std's per-process random hash keys, fresh each call).
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

impl Registrar {
    /// A registrar for the interfaces with a broadcast address, using their
    /// unicast name service sockets, and for the WINS server when one is given;
    /// ignored name demands are counted in `drops`.
    pub(crate) fn new(
        sockets: &[(Arc<UdpSocket>, Interface)],
        name_port: u16,
        wins_server: Option<Ipv4Addr>,
        config: RegistrationConfig,
        drops: Arc<Drops>,
    ) -> Self {
        let unicast = |(s, iface): &&(Arc<UdpSocket>, Interface)| {
            s.local_addr()
                .is_ok_and(|a| a.ip() == std::net::IpAddr::V4(iface.address))
        };
        let wins = wins_server.and_then(|server| {
            let (socket, iface) = sockets
                .iter()
                .filter(unicast)
                .find(|(_, i)| !i.address.is_loopback())
                .or_else(|| sockets.iter().find(unicast))?;
            Some(Wins {
                socket: socket.clone(),
                client: Mutex::new(WinsClient::new(
                    server,
                    iface.address,
                    WinsConfig {
                        conflict_retry: config.conflict_retry,
                        conflict_max_retry: config.conflict_max_retry,
                        ..WinsConfig::default()
                    },
                )),
            })
        });
        let segments = sockets
            .iter()
            .filter(|(s, iface)| {
                iface.broadcast.is_some()
                    && s.local_addr()
                        .is_ok_and(|a| a.ip() == std::net::IpAddr::V4(iface.address))
            })
            .map(|(s, iface)| Segment {
                iface: *iface,
                socket: s.clone(),
                table: Mutex::new(NameTable::new(iface.address, config, random_seed())),
            })
            .collect();
        Self {
            segments,
            wins,
            name_port,
            wake: Notify::new(),
            events: broadcast::channel(256).0,
            drops,
        }
    }

    /// Starts registering `name` on every segment and with the WINS server.
    pub(crate) fn register(&self, name: NetbiosName, group: bool) {
        let now = Instant::now();
        for s in &self.segments {
            let mut table = s.table.lock().expect("name table lock");
            table.register(now, name, group, random_trn_id());
        }
        if let Some(w) = &self.wins {
            let mut client = w.client.lock().expect("wins lock");
            client.register(now, name, group, random_trn_id());
        }
        self.wake.notify_one();
    }

    /// Registers `name` and waits until every segment (and the WINS server)
    /// registered it; `Err` with the owner's address when another host holds it.
    pub(crate) async fn register_and_wait(&self, name: NetbiosName) -> Result<(), Ipv4Addr> {
        let mut events = self.events.subscribe();
        self.register(name, false);
        let deadline = tokio::time::Instant::now() + REGISTRATION_WAIT;
        loop {
            let states = self.states(&name);
            if states.iter().all(|(_, s)| *s == NameState::Registered) {
                return Ok(());
            }
            let conflict = states.into_iter().find_map(|(_, s)| match s {
                NameState::Conflict { owner } => Some(owner),
                _ => None,
            });
            if let Some(owner) = conflict {
                return Err(owner);
            }
            if tokio::time::timeout_at(deadline, events.recv())
                .await
                .is_err()
            {
                // No answer in time (e.g. the WINS server is down): keep the name.
                return Ok(());
            }
        }
    }

    /// Releases `name` on every segment and at the WINS server.
    pub(crate) fn release(&self, name: &NetbiosName) {
        let now = Instant::now();
        for s in &self.segments {
            let mut table = s.table.lock().expect("name table lock");
            table.release(now, name, random_trn_id());
        }
        if let Some(w) = &self.wins {
            w.client
                .lock()
                .expect("wins lock")
                .release(name, random_trn_id());
        }
        self.wake.notify_one();
    }

    /// `name`'s state on each segment and at the WINS server.
    pub(crate) fn states(&self, name: &NetbiosName) -> Vec<(Scope, NameState)> {
        let mut states: Vec<(Scope, NameState)> = self
            .segments
            .iter()
            .filter_map(|s| s.table.lock().expect("name table lock").state(name))
            .map(|s| (Scope::Broadcast, s))
            .collect();
        if let Some(w) = &self.wins {
            if let Some(s) = w.client.lock().expect("wins lock").state(name) {
                states.push((Scope::Wins, s));
            }
        }
        states
    }

    /// What happened to `name` lately on each broadcast segment.
    pub(crate) fn reports(&self, name: &NetbiosName) -> Vec<NameReport> {
        self.segments
            .iter()
            .filter_map(|s| s.table.lock().expect("name table lock").report(name))
            .collect()
    }

    /// The names registered on the segment of `address`; `None` when that
    /// interface has no broadcast segment (loopback), where every name counts.
    pub(crate) fn owned(&self, address: Ipv4Addr) -> Option<Vec<OwnedName>> {
        self.segments
            .iter()
            .find(|s| s.iface.address == address)
            .map(|s| s.table.lock().expect("name table lock").owned())
    }

    /// Feeds a name service packet that arrived on the segment of `address`:
    /// the WINS server's answers to the WINS client, others to the segment.
    pub(crate) fn handle_datagram(&self, address: Ipv4Addr, src: SocketAddrV4, bytes: &[u8]) {
        let now = Instant::now();
        if let Some(w) = &self.wins {
            let mut client = w.client.lock().expect("wins lock");
            if *src.ip() == client.server() {
                client.handle_datagram(now, *src.ip(), bytes);
                drop(client);
                self.wake.notify_one();
                return;
            }
        }
        if let Some(s) = self.segments.iter().find(|s| s.iface.address == address) {
            let mut table = s.table.lock().expect("name table lock");
            table.handle_datagram(now, src, bytes);
            drop(table);
            self.wake.notify_one();
        }
    }

    /// Sends what is due and forwards events; returns the next deadline.
    async fn step(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for s in &self.segments {
            let (packets, events, deadline) = {
                let mut t = s.table.lock().expect("name table lock");
                t.handle_timeout(now);
                let packets: Vec<Vec<u8>> = std::iter::from_fn(|| t.poll_transmit()).collect();
                let events: Vec<NameEvent> = std::iter::from_fn(|| t.poll_event()).collect();
                (packets, events, t.poll_timeout())
            };
            if let Some(bcast) = s.iface.broadcast {
                let to = SocketAddr::V4(SocketAddrV4::new(bcast, self.name_port));
                for p in packets {
                    if let Err(e) = s.socket.send_to(&p, to).await {
                        tracing::warn!(error = %LogSafe(&e), to = %LogSafe(&to), "name registration broadcast failed");
                    }
                }
            }
            for e in events {
                match &e {
                    NameEvent::Registered(n) => {
                        tracing::info!(name = %LogSafe(&n), iface = %s.iface.address, "name registered")
                    }
                    NameEvent::Conflict { name, owner } => {
                        tracing::warn!(name = %LogSafe(&name), owner = %LogSafe(&owner), iface = %s.iface.address, "name owned by another host")
                    }
                    NameEvent::Ignored {
                        name,
                        from,
                        demand,
                        count,
                    } => {
                        tracing::warn!(
                            name = %name,
                            %from,
                            demand = demand.as_str(),
                            count,
                            iface = %s.iface.address,
                            "name demand ignored: no other host answers for the name"
                        );
                        self.drops.count(
                            DropReason::UnverifiedNameDemand,
                            SocketAddr::V4(*from),
                            &from.ip().to_string(),
                            &name.to_string(),
                            Duration::ZERO,
                            u64::from(*count),
                        );
                    }
                }
                let _ = self.events.send(e);
            }
            next = earliest(next, deadline);
        }
        if let Some(w) = &self.wins {
            let (packets, events, deadline, server) = {
                let mut c = w.client.lock().expect("wins lock");
                c.handle_timeout(now);
                let packets: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_transmit()).collect();
                let events: Vec<NameEvent> = std::iter::from_fn(|| c.poll_event()).collect();
                (packets, events, c.poll_timeout(), c.server())
            };
            let to = SocketAddr::V4(SocketAddrV4::new(server, self.name_port));
            for p in packets {
                if let Err(e) = w.socket.send_to(&p, to).await {
                    tracing::warn!(error = %LogSafe(&e), to = %LogSafe(&to), "WINS request failed");
                }
            }
            for e in events {
                tracing::info!(event = ?e, %server, "WINS registration");
                let _ = self.events.send(e);
            }
            next = earliest(next, deadline);
        }
        next
    }

    /// Drives registrations until `stop` fires.
    pub(crate) async fn run(self: Arc<Self>, shutdown: crate::shutdown::Shutdown) {
        loop {
            let next = self.step().await;
            let sleep = next.map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Releases every name and sends the releases (service stop), bounded.
    pub(crate) async fn release_all(&self) {
        let now = Instant::now();
        for s in &self.segments {
            s.table
                .lock()
                .expect("name table lock")
                .release_all(now, random_trn_id());
        }
        if let Some(w) = &self.wins {
            w.client
                .lock()
                .expect("wins lock")
                .release_all(random_trn_id());
        }
        for _ in 0..8 {
            match self.step().await {
                Some(t) => tokio::time::sleep(t.saturating_duration_since(Instant::now())).await,
                None => return,
            }
        }
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

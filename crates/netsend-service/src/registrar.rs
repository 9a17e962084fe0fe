//! Driver of the name registration state machines
//! ([`netsend_proto::registration::NameTable`]), one per interface that has a
//! broadcast address: it broadcasts registrations and releases from the
//! interface's name service socket, feeds responses in, and tells waiting
//! callers whether a name was registered or refused.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsend_proto::registration::{NameEvent, NameState, NameTable, RegistrationConfig};
use netsend_proto::responder::OwnedName;
use netsend_wire::NetbiosName;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, watch, Notify};

use crate::net::Interface;

/// How long an alias add waits for its registration to settle.
const REGISTRATION_WAIT: Duration = Duration::from_secs(5);

/// One broadcast segment: an interface, its name service socket and its names.
struct Segment {
    iface: Interface,
    socket: Arc<UdpSocket>,
    table: Mutex<NameTable>,
}

/// Every segment's registrations.
pub(crate) struct Registrar {
    segments: Vec<Segment>,
    name_port: u16,
    wake: Notify,
    events: broadcast::Sender<NameEvent>,
}

/// A transaction id other hosts cannot guess.
pub(crate) fn random_trn_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u16
}

impl Registrar {
    /// A registrar for the interfaces with a broadcast address, using their
    /// unicast name service sockets.
    pub(crate) fn new(sockets: &[(Arc<UdpSocket>, Interface)], name_port: u16) -> Self {
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
                table: Mutex::new(NameTable::new(iface.address, RegistrationConfig::default())),
            })
            .collect();
        Self {
            segments,
            name_port,
            wake: Notify::new(),
            events: broadcast::channel(256).0,
        }
    }

    /// Starts registering `name` on every segment.
    pub(crate) fn register(&self, name: NetbiosName, group: bool) {
        let now = Instant::now();
        for s in &self.segments {
            s.table
                .lock()
                .expect("name table lock")
                .register(now, name, group, random_trn_id());
        }
        self.wake.notify_one();
    }

    /// Registers `name` and waits until every segment registered it; `Err` with
    /// the owner's address when another host holds it.
    pub(crate) async fn register_and_wait(&self, name: NetbiosName) -> Result<(), Ipv4Addr> {
        let mut events = self.events.subscribe();
        self.register(name, false);
        let deadline = tokio::time::Instant::now() + REGISTRATION_WAIT;
        loop {
            if self
                .states(&name)
                .iter()
                .all(|s| *s == NameState::Registered)
            {
                return Ok(());
            }
            if let Some(NameState::Conflict { owner }) = self
                .states(&name)
                .into_iter()
                .find(|s| matches!(s, NameState::Conflict { .. }))
            {
                return Err(owner);
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
    }

    /// Releases `name` on every segment.
    pub(crate) fn release(&self, name: &NetbiosName) {
        let now = Instant::now();
        for s in &self.segments {
            s.table
                .lock()
                .expect("name table lock")
                .release(now, name, random_trn_id());
        }
        self.wake.notify_one();
    }

    /// `name`'s state on each segment.
    pub(crate) fn states(&self, name: &NetbiosName) -> Vec<NameState> {
        self.segments
            .iter()
            .filter_map(|s| s.table.lock().expect("name table lock").state(name))
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

    /// Feeds a name service packet that arrived on the segment of `address`.
    pub(crate) fn handle_datagram(&self, address: Ipv4Addr, src: Ipv4Addr, bytes: &[u8]) {
        if let Some(s) = self.segments.iter().find(|s| s.iface.address == address) {
            s.table
                .lock()
                .expect("name table lock")
                .handle_datagram(Instant::now(), src, bytes);
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
                        tracing::warn!(error = %e, %to, "name registration broadcast failed");
                    }
                }
            }
            for e in events {
                match &e {
                    NameEvent::Registered(n) => {
                        tracing::info!(name = %n, iface = %s.iface.address, "name registered")
                    }
                    NameEvent::Conflict { name, owner } => {
                        tracing::warn!(name = %name, %owner, iface = %s.iface.address, "name owned by another host")
                    }
                }
                let _ = self.events.send(e);
            }
            next = match (next, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        next
    }

    /// Drives registrations until `stop` fires.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = self.step().await;
            let sleep = next.map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                _ = stop.changed() => return,
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
        for _ in 0..8 {
            match self.step().await {
                Some(t) => tokio::time::sleep(t.saturating_duration_since(Instant::now())).await,
                None => return,
            }
        }
    }
}

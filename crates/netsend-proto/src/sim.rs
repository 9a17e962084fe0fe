//! A simulated LAN for the tests: hosts with their name tables (and WINS
//! clients) on broadcast segments, an optional WINS server (the real
//! [`crate::wins_server`], its challenges answered by the hosts), all stepped with
//! simulated time and no latency. Every loop is bounded, so a livelock
//! fails the test instead of hanging it.
//!
//! A host hears a broadcast when the broadcast address is its subnet's: the
//! hosts of [`Lan::new`] share one /24, and [`Lan::with_prefix`] cuts the
//! addresses into smaller subnets, one segment each.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime};

use netsend_wire::nbns::Packet;
use netsend_wire::{CodePage, NetbiosName};

use ipnet::IpNet;

use crate::browse::{hear, is_request_for, Announcer, HostList};
use crate::interface::Interface;
use crate::mailslot::{receive, Received};
use crate::plan::{Next, ResolvePlan};
use crate::registration::{NameTable, RegistrationConfig};
use crate::relay::{RelayRule, Verdict};
use crate::responder::{answer, Host};
use crate::wins::WinsClient;
use crate::wins_server::{Action as WinsAction, Context, WinsServer, WinsServerConfig};

/// `address` at the name service port.
pub(crate) fn at(address: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(address, 137)
}

/// The interface of a host at `address` in a subnet of `prefix` bits.
pub(crate) fn interface(address: Ipv4Addr, prefix: u8) -> Interface {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Interface {
        address,
        broadcast: Some(Ipv4Addr::from(u32::from(address) | !mask)),
        netmask: Some(Ipv4Addr::from(mask)),
        mac: [0; 6],
    }
}

/// The network's WINS server: [`crate::wins_server::WinsServer`] at `address`,
/// holding no names of its own.
#[derive(Debug)]
pub(crate) struct SimWins {
    pub(crate) address: Ipv4Addr,
    pub(crate) server: WinsServer,
    /// Changes it asked to commit (the simulated store).
    pub(crate) committed: usize,
}

/// Where simulated wall-clock time starts.
fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Hosts on simulated broadcast segments, stepped with simulated time.
pub(crate) struct Lan {
    pub(crate) now: Instant,
    pub(crate) hosts: Vec<NameTable>,
    /// Hosts cut off the network (they neither send nor hear).
    pub(crate) cut: Vec<bool>,
    /// Each host's interface: its address and subnet.
    pub(crate) interfaces: Vec<Interface>,
    /// Each host's WINS client, when it registers with the server.
    pub(crate) wins_clients: Vec<Option<WinsClient>>,
    /// The WINS server, if the network has one.
    pub(crate) wins: Option<SimWins>,
    /// When the simulation started (the WINS server's wall clock counts from it).
    start: Instant,
}

impl Lan {
    /// Hosts at `addresses`, all on one /24 segment.
    pub(crate) fn new(addresses: &[[u8; 4]]) -> Self {
        Self::with_prefix(addresses, 24)
    }

    /// Hosts at `addresses` in subnets of `prefix` bits: hosts of one subnet
    /// share a segment, and hear no other segment's broadcasts.
    pub(crate) fn with_prefix(addresses: &[[u8; 4]], prefix: u8) -> Self {
        let now = Instant::now();
        Self {
            now,
            start: now,
            hosts: addresses
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    NameTable::new(Ipv4Addr::from(*a), RegistrationConfig::default(), i as u64)
                })
                .collect(),
            cut: vec![false; addresses.len()],
            interfaces: addresses
                .iter()
                .map(|a| interface(Ipv4Addr::from(*a), prefix))
                .collect(),
            wins_clients: addresses.iter().map(|_| None).collect(),
            wins: None,
        }
    }

    /// Adds a WINS server at `server`, and a WINS client of it to every host.
    pub(crate) fn with_wins(mut self, server: Ipv4Addr) -> Self {
        let now = self.wall();
        self.wins = Some(SimWins {
            address: server,
            server: WinsServer::new(WinsServerConfig::default(), Vec::new(), now, 0x5000),
            committed: 0,
        });
        for (i, client) in self.wins_clients.iter_mut().enumerate() {
            let address = self.interfaces[i].address;
            *client = Some(WinsClient::new(server, address, Default::default()));
        }
        self
    }

    /// The WINS server's wall clock at the simulation's `now`.
    pub(crate) fn wall(&self) -> SystemTime {
        epoch() + (self.now - self.start)
    }

    /// Hands `bytes` from `src` to the WINS server and carries out what it
    /// does: challenges go to the owner's host, which answers by the
    /// responder rules (nothing when it is cut off or gone), and the
    /// answers to clients are returned with their destination.
    fn wins_exchange(&mut self, src: Ipv4Addr, bytes: Option<&[u8]>) -> Vec<(Ipv4Addr, Vec<u8>)> {
        let Some(mut wins) = self.wins.take() else {
            return Vec::new();
        };
        let cx = Context {
            own: Host {
                names: &[],
                address: wins.address,
                mac: [0; 6],
            },
            fallback: None,
        };
        let now = self.wall();
        match bytes {
            Some(bytes) => {
                wins.server
                    .handle_datagram(now, SocketAddrV4::new(src, 137), bytes, &cx)
            }
            None => wins.server.handle_timeout(now),
        }
        let mut replies = Vec::new();
        for _ in 0..100 {
            let Some(action) = wins.server.poll_action() else {
                break;
            };
            match action {
                WinsAction::Persist(_) => wins.committed += 1,
                WinsAction::Reply { to, packet } => replies.push((*to.ip(), packet)),
                WinsAction::Challenge { to, packet } => {
                    let request = Packet::parse(&packet).unwrap();
                    let owner = self.host_at(*to.ip());
                    if let Some(answer) = owner.and_then(|h| self.answer_of(h, &request)) {
                        wins.server.handle_datagram(now, to, &answer, &cx);
                    }
                }
            }
        }
        self.wins = Some(wins);
        replies
    }

    /// Gives each answer of the WINS server to the client at its address.
    fn deliver_wins(&mut self, replies: Vec<(Ipv4Addr, Vec<u8>)>) {
        let Some(server) = self.wins.as_ref().map(|w| w.address) else {
            return;
        };
        for (to, packet) in replies {
            let i = self.host_at(to);
            if let Some(client) = i.and_then(|i| self.wins_clients[i].as_mut()) {
                client.handle_datagram(self.now, server, &packet);
            }
        }
    }

    /// The host at `address`, if one is there and on the network.
    fn host_at(&self, address: Ipv4Addr) -> Option<usize> {
        (0..self.hosts.len()).find(|&i| self.interfaces[i].address == address && !self.cut[i])
    }

    /// The hosts other than `from` that hear a broadcast to `target`.
    fn hearing(&self, from: usize, target: Ipv4Addr) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| i != from && !self.cut[i] && self.interfaces[i].broadcast == Some(target))
            .collect()
    }

    /// Host `to`'s name service answer to `request`, by the responder rules.
    fn answer_of(&self, to: usize, request: &Packet) -> Option<Vec<u8>> {
        let names = self.hosts[to].owned();
        let host = Host {
            names: &names,
            address: self.interfaces[to].address,
            mac: [0; 6],
        };
        answer(request, &host).and_then(|reply| reply.to_bytes().ok())
    }

    /// Delivers every broadcast of the name tables to the other hosts of the
    /// segment, lets each answer with the responder rules (and feeds
    /// releases to its table), carries WINS traffic to the server and back,
    /// and advances time; bounded, so a livelock fails. Stops once nothing
    /// is due before `until`.
    pub(crate) fn drive_until(&mut self, until: Instant) {
        for _ in 0..1000 {
            let mut sent = false;
            for from in 0..self.hosts.len() {
                while let Some(packet) = self.hosts[from].poll_transmit() {
                    sent = true;
                    if self.cut[from] {
                        continue;
                    }
                    let request = Packet::parse(&packet).unwrap();
                    let sender = self.interfaces[from].address;
                    let target = self.interfaces[from].broadcast.unwrap();
                    for to in self.hearing(from, target) {
                        self.hosts[to].handle_datagram(self.now, at(sender), &packet);
                        if let Some(bytes) = self.answer_of(to, &request) {
                            let replier = self.interfaces[to].address;
                            self.hosts[from].handle_datagram(self.now, at(replier), &bytes);
                        }
                    }
                }
                sent |= self.carry_wins(from);
            }
            let tables = self.hosts.iter().filter_map(NameTable::poll_timeout);
            let clients = self.wins_clients.iter().flatten();
            let server = self.wins.as_ref().and_then(|w| w.server.poll_timeout());
            let server = server.map(|t| self.start + t.duration_since(epoch()).unwrap_or_default());
            let next = tables
                .chain(clients.filter_map(WinsClient::poll_timeout))
                .chain(server)
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.timeout_all();
                }
                _ if !sent => return,
                _ => {}
            }
        }
        panic!("the simulated LAN did not settle");
    }

    /// Carries host `from`'s WINS requests to the server and its answers
    /// back; whether anything was sent.
    fn carry_wins(&mut self, from: usize) -> bool {
        let mut packets = Vec::new();
        if let Some(client) = self.wins_clients[from].as_mut() {
            packets.extend(std::iter::from_fn(|| client.poll_transmit()));
        }
        let sent = !packets.is_empty();
        if !self.cut[from] {
            let src = self.interfaces[from].address;
            for packet in packets {
                let replies = self.wins_exchange(src, Some(&packet));
                self.deliver_wins(replies);
            }
        }
        sent
    }

    fn timeout_all(&mut self) {
        for h in &mut self.hosts {
            h.handle_timeout(self.now);
        }
        for c in self.wins_clients.iter_mut().flatten() {
            c.handle_timeout(self.now);
        }
        let replies = self.wins_exchange(Ipv4Addr::UNSPECIFIED, None);
        self.deliver_wins(replies);
    }

    /// [`Lan::drive_until`] with no end but quiet.
    pub(crate) fn drive(&mut self) {
        let far = self.now + Duration::from_secs(30);
        self.drive_until(far);
    }

    /// Lets `d` pass (timers due meanwhile fire).
    pub(crate) fn wait(&mut self, d: Duration) {
        let until = self.now + d;
        self.drive_until(until);
        self.now = until;
        self.timeout_all();
        self.drive_until(until);
    }

    /// Registers `name` (unique) on host `i`, by broadcast and with the WINS
    /// server when the host has a client, and lets the network settle.
    pub(crate) fn register(&mut self, i: usize, name: NetbiosName, trn_id: u16) {
        let now = self.now;
        self.hosts[i].register(now, name, false, trn_id);
        if let Some(client) = self.wins_clients[i].as_mut() {
            client.register(now, name, false, trn_id);
        }
        self.drive();
    }

    /// Drives `plan` from host `from` until it decides: its queries go to
    /// the WINS server, to a host, or as broadcasts to the hosts of the
    /// segment, which answer with the responder rules; time moves to each
    /// wait's end. Returns the decision and how long it took.
    pub(crate) fn resolve(&mut self, from: usize, plan: &mut ResolvePlan) -> (Next, Duration) {
        let start = self.now;
        for _ in 0..1000 {
            match plan.poll(self.now) {
                Next::Send(query) => {
                    if self.cut[from] {
                        continue;
                    }
                    let target = *query.target.ip();
                    let mut replies = Vec::new();
                    if self.wins.as_ref().is_some_and(|s| s.address == target) {
                        let src = self.interfaces[from].address;
                        let answers = self.wins_exchange(src, Some(&query.bytes));
                        replies.extend(answers.into_iter().map(|(_, r)| (target, r)));
                    } else {
                        let request = Packet::parse(&query.bytes).unwrap();
                        let to = match self.host_at(target) {
                            Some(host) => vec![host],
                            None => self.hearing(from, target),
                        };
                        for to in to {
                            let replier = self.interfaces[to].address;
                            replies.extend(self.answer_of(to, &request).map(|r| (replier, r)));
                        }
                    }
                    for (src, reply) in replies {
                        plan.handle_datagram(self.now, src, &reply);
                    }
                }
                Next::Wait(t) => {
                    self.now = self.now.max(t);
                    plan.handle_timeout(self.now);
                }
                decided => return (decided, self.now - start),
            }
        }
        panic!("the resolution plan did not decide");
    }

    /// Carries MESSNGR datagrams (host, target address, bytes) through the
    /// network, the segments joined by a router: a broadcast reaches every
    /// host of its segment, the sender included (a socket hears its own
    /// broadcast), a unicast reaches its host, and each host applies the
    /// relay rule with its `relay_from` and re-broadcasts what it says.
    /// Returns the messages each host took; bounded, so a relay loop fails.
    pub(crate) fn carry_datagrams(
        &self,
        relay_from: &[Vec<IpNet>],
        first: Vec<(usize, Ipv4Addr, Vec<u8>)>,
    ) -> Vec<Vec<Received>> {
        let workgroup = NetbiosName::new("WORKGROUP", 0).unwrap();
        let mut taken = vec![Vec::new(); self.hosts.len()];
        let mut queue = std::collections::VecDeque::from(first);
        let mut steps = 0;
        while let Some((from, target, bytes)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 1000, "datagrams loop between relays");
            if self.cut[from] {
                continue;
            }
            let hearing = (0..self.hosts.len()).filter(|&i| {
                let iface = &self.interfaces[i];
                !self.cut[i] && (iface.address == target || iface.broadcast == Some(target))
            });
            for to in hearing {
                let Some(got) = receive(&bytes, &workgroup, &|_| false, CodePage::Cp850) else {
                    continue;
                };
                let rule = RelayRule {
                    interfaces: &self.interfaces[to..=to],
                    relay_from: &relay_from[to],
                };
                let peer = self.interfaces[from].address;
                if let Verdict::Take { relay_to } = rule.judge(peer, got.origin, got.addressed) {
                    for (_, broadcast) in relay_to {
                        queue.push_back((to, broadcast, bytes.clone()));
                    }
                    taken[to].push(got);
                }
            }
        }
        taken
    }

    /// Steps the browsing of every host until `until`: each host's
    /// announcer broadcasts on its segment (heard by every host there, the
    /// sender included), each hearer feeds announcements to its host list and
    /// requests for its workgroup to its announcer. Bounded.
    pub(crate) fn drive_browse(
        &mut self,
        announcers: &mut [Option<Announcer>],
        lists: &mut [HostList],
        until: Instant,
    ) {
        let workgroup = NetbiosName::new("WORKGROUP", 0).unwrap();
        for _ in 0..10_000 {
            for from in 0..announcers.len() {
                let Some(a) = announcers[from].as_mut() else {
                    continue;
                };
                let mut sent = Vec::new();
                while let Some(bytes) = a.poll_transmit() {
                    sent.push(bytes);
                }
                if self.cut[from] {
                    continue;
                }
                let target = self.interfaces[from].broadcast;
                let peer = self.interfaces[from].address;
                for bytes in sent {
                    let heard = hear(&bytes).expect("our own datagrams decode");
                    for to in (0..lists.len())
                        .filter(|&i| !self.cut[i] && self.interfaces[i].broadcast == target)
                    {
                        let _ = lists[to].observe(self.now, peer, &heard, CodePage::Cp850);
                        if to != from && is_request_for(&heard, &workgroup) {
                            if let Some(b) = announcers[to].as_mut() {
                                b.handle_request(self.now);
                            }
                        }
                    }
                }
            }
            let next = announcers
                .iter()
                .flatten()
                .filter_map(Announcer::poll_timeout)
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    for a in announcers.iter_mut().flatten() {
                        a.handle_timeout(self.now);
                    }
                }
                // Everything queued was carried at the top of this round.
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("the simulated browsing did not settle");
    }
}

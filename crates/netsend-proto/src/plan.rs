//! The resolution plan of a directed message, sans IO: where `NAME<03>` is
//! looked for, in which order, and when an answer is final.
//!
//! Order: the cache of recent answers (when the caller has one for the
//! name), our own names (this host's session service), the static entries,
//! the WINS server when one is configured (a unicast query), and when it
//! knows nothing, a broadcast query on every interface and every extra
//! broadcast address. A unique name that two different hosts answer for is a
//! duplicate: no host is picked ([`ResolveError::Duplicate`]). For a name
//! that is not ours, an address of our own session service is never used,
//! wherever it came from (the cache, a static entry, our WINS table, an
//! answer): it is a site gateway's own proxy answer or a mistake, and a
//! gateway delivering there would hand the message back to itself.
//!
//! Call order: [`ResolvePlan::poll`] until it returns [`Next::Connect`] or
//! [`Next::Fail`]. Send what [`Next::Send`] gives (answers come back on the
//! socket it went from: [`ResolvePlan::handle_datagram`]); at [`Next::Wait`]
//! wait for an answer or that instant ([`ResolvePlan::handle_timeout`]). When
//! a cached address does not take the message (the owner left),
//! [`ResolvePlan::handle_stale`] forgets it and the next [`ResolvePlan::poll`]
//! asks the network.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

#[cfg(test)]
use netsend_wire::nbns::Packet;
use netsend_wire::NetbiosName;

use crate::interface::Interface;
use crate::resolver::{self, Resolution, Resolver};

/// Broadcast query tries and their spacing (RFC 1002 BCAST_REQ_RETRY_*);
/// a WINS query uses the same.
pub const QUERY_RETRIES: u32 = 3;
/// Wait between two tries of a query.
pub const QUERY_INTERVAL: Duration = Duration::from_millis(250);

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

/// Where names are asked for on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    /// The session service port of the hosts found (TCP 139).
    pub session_port: u16,
    /// The name service port queries go to (UDP 137).
    pub name_port: u16,
    /// The WINS server, asked first when there is one.
    pub wins: Option<Ipv4Addr>,
    /// Broadcast queries: from which source address to which broadcast address.
    pub broadcast: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Tries of each query.
    pub retries: u32,
    /// Wait between tries, and for other owners after a first answer.
    pub interval: Duration,
}

impl PlanConfig {
    /// Queries on every interface that has a broadcast address (from that
    /// interface) and to every `extra` broadcast address (from any), after
    /// the `wins` server when there is one.
    pub fn new(
        interfaces: &[Interface],
        extra: &[Ipv4Addr],
        wins: Option<Ipv4Addr>,
        session_port: u16,
        name_port: u16,
    ) -> Self {
        let on_interfaces = interfaces
            .iter()
            .filter_map(|i| i.broadcast.map(|b| (i.address, b)));
        let extra = extra.iter().map(|&b| (Ipv4Addr::UNSPECIFIED, b));
        Self {
            session_port,
            name_port,
            wins,
            broadcast: on_interfaces.chain(extra).collect(),
            retries: QUERY_RETRIES,
            interval: QUERY_INTERVAL,
        }
    }
}

/// What the caller knows about the name before the network is asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// The cache's address for the name, if it has one.
    pub cached: Option<SocketAddr>,
    /// Whether the name is one of ours.
    pub ours: bool,
    /// The first address our session service listens on.
    pub local_session: Option<SocketAddr>,
    /// The static entries: a name and its session address.
    pub static_names: Vec<(NetbiosName, SocketAddr)>,
    /// The site that holds the name, when this host is a site gateway and
    /// its directory of other sites' names lists it.
    pub remote_site: Option<crate::sites::SiteName>,
    /// The address this host's own WINS server table holds the name at (a
    /// live unique registration), when this host is its site's WINS server:
    /// asked before the other sites and before any query.
    pub wins_table: Option<Ipv4Addr>,
    /// Where our own session service is reached. For a name that is not
    /// ours, an address there (cached, or answered to our query) can only
    /// be a site gateway's proxy answer for a name at another site:
    /// connecting would hand the message back to ourselves, again and
    /// again. Such an address is never used.
    pub own_sessions: Vec<SocketAddr>,
}

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache of recent answers.
    Cache,
    /// One of our own names: our own session service.
    Own,
    /// A static entry.
    Static,
    /// The WINS server's answer.
    Wins,
    /// The one host that answered a broadcast query.
    Broadcast,
}

/// Why a name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nobody answered for the name (or it is ours and our session service
    /// has no address).
    #[error("{0} could not be found on the network")]
    NotFound(NetbiosName),
    /// Several hosts claim the unique name; none was picked.
    #[error("{name} is claimed by several hosts: {}", list(.addresses))]
    Duplicate {
        /// The name.
        name: NetbiosName,
        /// Every host that answered, in answer order.
        addresses: Vec<Ipv4Addr>,
    },
}

/// The addresses, comma-separated.
fn list(addresses: &[Ipv4Addr]) -> String {
    let texts: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    texts.join(", ")
}

/// One name query to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The address to send from (unspecified: any).
    pub source: Ipv4Addr,
    /// The WINS server or a broadcast address, at the name service port.
    pub target: SocketAddrV4,
    /// Whether `target` is a broadcast address.
    pub broadcast: bool,
    /// The query packet.
    pub bytes: Vec<u8>,
}

/// What the driver does next.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send this query, then poll again.
    Send(Query),
    /// Wait for an answer until this instant, then call
    /// [`ResolvePlan::handle_timeout`].
    Wait(Instant),
    /// Deliver to this session address.
    Connect {
        /// The session service to connect to.
        address: SocketAddr,
        /// Where it came from.
        source: Source,
    },
    /// Hand the message to the site gateway for this site: the name lives
    /// at another site (after our own names and static entries; before
    /// WINS and broadcasts, which cannot see other sites).
    Remote(crate::sites::SiteName),
    /// Give up.
    Fail(ResolveError),
}

/// Where the plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing done yet.
    Start,
    /// The cached address is being tried.
    Cached,
    /// The cache was tried (or had nothing): own names, static entries, WINS.
    Local,
    /// The WINS query is under way.
    Wins,
    /// The broadcast queries are under way.
    Broadcast,
    /// The outcome is known.
    Done,
}

/// One name being resolved.
#[derive(Debug)]
pub struct ResolvePlan {
    name: NetbiosName,
    config: PlanConfig,
    known: Known,
    stage: Stage,
    queries: VecDeque<(Ipv4Addr, SocketAddrV4, bool)>,
    current: Option<(Ipv4Addr, SocketAddrV4, bool, Resolver)>,
    found: Vec<Ipv4Addr>,
    outcome: Option<Next>,
    /// State of the transaction id generator; `seed` should be random.
    seed: u64,
}

impl ResolvePlan {
    /// A plan for `name`; `seed` (random, e.g. from the OS) makes the
    /// transaction ids of its queries unpredictable to other hosts.
    pub fn new(name: NetbiosName, config: PlanConfig, known: Known, seed: u64) -> Self {
        Self {
            name,
            config,
            known,
            stage: Stage::Start,
            queries: VecDeque::new(),
            current: None,
            found: Vec::new(),
            outcome: None,
            seed,
        }
    }

    /// The name being resolved.
    pub const fn name(&self) -> &NetbiosName {
        &self.name
    }

    /// The next thing to do at `now`.
    pub fn poll(&mut self, now: Instant) -> Next {
        loop {
            if let Some((source, target, broadcast, resolver)) = &mut self.current {
                if let Some(bytes) = resolver.poll_transmit(now) {
                    return Next::Send(Query {
                        source: *source,
                        target: *target,
                        broadcast: *broadcast,
                        bytes,
                    });
                }
                let Some(result) = resolver.result() else {
                    return Next::Wait(resolver.poll_timeout().unwrap_or(now));
                };
                if let Resolution::Found(addresses) = result {
                    for a in addresses {
                        if !self.found.contains(&a) && !self.is_own_proxy(self.session_at(a)) {
                            self.found.push(a);
                        }
                    }
                }
                self.current = None;
            }
            if let Some((source, target, broadcast)) = self.queries.pop_front() {
                let trn_id = resolver::next_trn_id(&mut self.seed);
                let resolver = Resolver::with_mode(
                    self.name,
                    trn_id,
                    now,
                    self.config.retries,
                    self.config.interval,
                    broadcast,
                );
                self.current = Some((source, target, broadcast, resolver));
                continue;
            }
            if let Some(next) = self.advance() {
                return next;
            }
        }
    }

    /// Moves to the next stage once the current one has no query left;
    /// returns what to do when the stage decided something.
    fn advance(&mut self) -> Option<Next> {
        match self.stage {
            Stage::Start => {
                self.stage = match self.known.cached {
                    Some(a) if !self.is_own_proxy(a) => Stage::Cached,
                    _ => Stage::Local,
                };
            }
            Stage::Cached => {
                let address = self.known.cached?;
                return Some(Next::Connect {
                    address,
                    source: Source::Cache,
                });
            }
            Stage::Local => {
                if self.known.ours {
                    return Some(self.finish(match self.known.local_session {
                        Some(local) => Next::Connect {
                            address: reachable(local),
                            source: Source::Own,
                        },
                        None => Next::Fail(ResolveError::NotFound(self.name)),
                    }));
                }
                let listed = self
                    .known
                    .static_names
                    .iter()
                    .find(|(n, a)| *n == self.name && !self.is_own_proxy(*a));
                if let Some(&(_, address)) = listed {
                    return Some(self.finish(Next::Connect {
                        address,
                        source: Source::Static,
                    }));
                }
                let in_table = self
                    .known
                    .wins_table
                    .map(|a| self.session_at(a))
                    .filter(|a| !self.is_own_proxy(*a));
                if let Some(address) = in_table {
                    return Some(self.finish(Next::Connect {
                        address,
                        source: Source::Wins,
                    }));
                }
                if let Some(site) = self.known.remote_site.clone() {
                    return Some(self.finish(Next::Remote(site)));
                }
                self.stage = Stage::Wins;
                if let Some(server) = self.config.wins {
                    let target = SocketAddrV4::new(server, self.config.name_port);
                    self.queries
                        .push_back((Ipv4Addr::UNSPECIFIED, target, false));
                }
            }
            Stage::Wins if self.found.is_empty() => {
                self.stage = Stage::Broadcast;
                let port = self.config.name_port;
                let targets = self.config.broadcast.iter();
                self.queries
                    .extend(targets.map(|&(source, b)| (source, SocketAddrV4::new(b, port), true)));
            }
            Stage::Wins => return Some(self.found(Source::Wins)),
            Stage::Broadcast => return Some(self.found(Source::Broadcast)),
            Stage::Done => return self.outcome.clone(),
        }
        None
    }

    /// The session service of the host at `ip`.
    fn session_at(&self, ip: Ipv4Addr) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(ip, self.config.session_port))
    }

    /// Whether `address` is our own session service while the name is not
    /// ours: our own proxy answer, never a place to deliver.
    fn is_own_proxy(&self, address: SocketAddr) -> bool {
        !self.known.ours && self.known.own_sessions.contains(&address)
    }

    /// The outcome of the queries: one host, nobody, or a duplicate.
    fn found(&mut self, source: Source) -> Next {
        let next = match self.found.as_slice() {
            [] => Next::Fail(ResolveError::NotFound(self.name)),
            [one] => Next::Connect {
                address: self.session_at(*one),
                source,
            },
            many => Next::Fail(ResolveError::Duplicate {
                name: self.name,
                addresses: many.to_vec(),
            }),
        };
        self.finish(next)
    }

    fn finish(&mut self, next: Next) -> Next {
        self.stage = Stage::Done;
        self.outcome = Some(next.clone());
        next
    }

    /// Feeds a datagram received from `src` on the socket the current query
    /// went from.
    pub fn handle_datagram(&mut self, now: Instant, src: Ipv4Addr, bytes: &[u8]) {
        if let Some((.., resolver)) = &mut self.current {
            resolver.handle_datagram(now, src, bytes);
        }
    }

    /// Advances time: the current query finishes once its last wait is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((.., resolver)) = &mut self.current {
            resolver.handle_timeout(now);
        }
    }

    /// The current query cannot be sent (no socket from its source): it is
    /// given up as if nobody had answered, and the next poll goes on.
    pub fn skip_query(&mut self) {
        self.current = None;
    }

    /// The cached address did not take the message (the owner left): the
    /// next [`ResolvePlan::poll`] goes on with our own names, the static
    /// entries and the network. Does nothing unless the last
    /// [`Next::Connect`] was [`Source::Cache`]; until this is called, polling
    /// gives that [`Next::Connect`] again.
    pub fn handle_stale(&mut self) {
        if self.stage == Stage::Cached {
            self.stage = Stage::Local;
        }
    }
}

/// Our own session address as a client reaches it: a wildcard (or IPv6)
/// listener is reached on the loopback address.
fn reachable(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => ip,
        _ => Ipv4Addr::LOCALHOST,
    };
    SocketAddr::V4(SocketAddrV4::new(ip, local.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Lan;

    const WINS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn name(s: &str) -> NetbiosName {
        NetbiosName::new(s, 3).unwrap()
    }

    fn session(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    /// A plan for `n` from host `from` of `lan`, asking `wins` first if given.
    fn plan_on(
        lan: &Lan,
        from: usize,
        n: &str,
        wins: Option<Ipv4Addr>,
        known: Known,
    ) -> ResolvePlan {
        let config = PlanConfig::new(&lan.interfaces[from..=from], &[], wins, 139, 137);
        ResolvePlan::new(name(n), config, known, 7)
    }

    fn connect(address: SocketAddr, source: Source) -> Next {
        Next::Connect { address, source }
    }

    #[test]
    fn the_cache_comes_first_and_a_stale_entry_falls_back_to_the_network() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        lan.register(1, name("BOB"), 1);
        let known = Known {
            cached: Some(session([192, 0, 2, 99], 139)),
            ..Known::default()
        };
        let mut plan = plan_on(&lan, 0, "BOB", None, known);
        let (next, took) = lan.resolve(0, &mut plan);
        assert_eq!(next, connect(session([192, 0, 2, 99], 139), Source::Cache));
        assert_eq!(took, Duration::ZERO);
        // Until the driver says the address is stale, the answer stands.
        assert_eq!(lan.resolve(0, &mut plan).0, next);
        plan.handle_stale();
        let (next, took) = lan.resolve(0, &mut plan);
        assert_eq!(
            next,
            connect(session([192, 0, 2, 11], 139), Source::Broadcast)
        );
        // One interval after the first answer, for other owners.
        assert_eq!(took, QUERY_INTERVAL);
        // A stale report after the decision changes nothing.
        plan.handle_stale();
        assert_eq!(lan.resolve(0, &mut plan).0, next);
    }

    #[test]
    fn a_name_at_another_site_goes_to_the_gateway_without_a_query() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        lan.register(1, name("CAROL"), 1);
        let south = crate::sites::SiteName::new("south").unwrap();
        let remote = |ours| Known {
            ours,
            local_session: Some(session([192, 0, 2, 10], 139)),
            remote_site: Some(south.clone()),
            ..Known::default()
        };
        let mut plan = plan_on(&lan, 0, "CAROL", Some(WINS), remote(false));
        assert_eq!(
            lan.resolve(0, &mut plan),
            (Next::Remote(south.clone()), Duration::ZERO)
        );
        // Our own name stays ours, whatever the directory says.
        let mut plan = plan_on(&lan, 0, "CAROL", Some(WINS), remote(true));
        assert_eq!(
            lan.resolve(0, &mut plan).0,
            connect(session([192, 0, 2, 10], 139), Source::Own)
        );
        // Without a directory entry the LAN is asked as before.
        let mut plan = plan_on(&lan, 0, "CAROL", None, Known::default());
        assert_eq!(
            lan.resolve(0, &mut plan).0,
            connect(session([192, 0, 2, 11], 139), Source::Broadcast)
        );
    }

    #[test]
    fn a_gateway_never_resolves_a_name_that_is_not_its_own_to_itself() {
        // A gateway at 192.0.2.10 (also 192.0.2.11) answers queries for
        // CAROL, held at another site, with its own address; an earlier
        // send cached that answer.
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        lan.register(1, name("CAROL"), 1);
        let south = crate::sites::SiteName::new("south").unwrap();
        let gateway = |remote_site| Known {
            cached: Some(session([192, 0, 2, 10], 139)),
            local_session: Some(session([192, 0, 2, 10], 139)),
            own_sessions: vec![session([192, 0, 2, 10], 139), session([192, 0, 2, 11], 139)],
            remote_site,
            ..Known::default()
        };
        // The directory knows the site: the cached proxy answer is passed by.
        let mut plan = plan_on(&lan, 0, "CAROL", None, gateway(Some(south.clone())));
        assert_eq!(
            lan.resolve(0, &mut plan),
            (Next::Remote(south.clone()), Duration::ZERO)
        );
        // Not yet in the directory: our own answer to our broadcast is no
        // host to deliver to.
        let mut plan = plan_on(&lan, 0, "CAROL", None, gateway(None));
        assert_eq!(
            lan.resolve(0, &mut plan).0,
            Next::Fail(ResolveError::NotFound(name("CAROL")))
        );
        // A name that is ours still goes to our own session service, and
        // another host's cached address is still tried first.
        let mut ours = gateway(None);
        ours.ours = true;
        let mut plan = plan_on(&lan, 0, "CAROL", None, ours);
        assert_eq!(
            lan.resolve(0, &mut plan).0,
            connect(session([192, 0, 2, 10], 139), Source::Cache)
        );
        // A static entry or a WINS table entry at our own address is
        // passed by the same way.
        let mut listed = gateway(Some(south.clone()));
        listed.cached = None;
        listed.static_names = vec![(name("CAROL"), session([192, 0, 2, 10], 139))];
        listed.wins_table = Some(Ipv4Addr::new(192, 0, 2, 11));
        let mut plan = plan_on(&lan, 0, "CAROL", None, listed);
        assert_eq!(lan.resolve(0, &mut plan).0, Next::Remote(south.clone()));
        let mut other = gateway(None);
        other.cached = Some(session([192, 0, 2, 99], 139));
        let mut plan = plan_on(&lan, 0, "CAROL", None, other);
        assert_eq!(
            lan.resolve(0, &mut plan).0,
            connect(session([192, 0, 2, 99], 139), Source::Cache)
        );
    }

    #[test]
    fn a_name_in_our_own_wins_table_needs_no_query_and_stays_at_this_site() {
        let lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        let known = Known {
            wins_table: Some(Ipv4Addr::new(192, 0, 2, 140)),
            remote_site: Some(crate::sites::SiteName::new("south").unwrap()),
            ..Known::default()
        };
        // No WINS client server and nobody on the LAN holds it: the table
        // alone answers, before the other sites' directory.
        let mut plan = plan_on(&lan, 0, "SMBHOST", None, known);
        let mut lan = lan;
        assert_eq!(
            lan.resolve(0, &mut plan),
            (
                connect(session([192, 0, 2, 140], 139), Source::Wins),
                Duration::ZERO
            )
        );
    }

    #[test]
    fn our_own_names_and_static_entries_need_no_query() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        lan.register(1, name("BOB"), 1);
        let own = |local| Known {
            ours: true,
            local_session: local,
            static_names: vec![(name("BOB"), session([192, 0, 2, 50], 1139))],
            ..Known::default()
        };
        // A wildcard or IPv6 listener is reached on loopback.
        for (local, reached) in [
            (session([0, 0, 0, 0], 1139), session([127, 0, 0, 1], 1139)),
            ("[::]:139".parse().unwrap(), session([127, 0, 0, 1], 139)),
            (session([192, 0, 2, 10], 139), session([192, 0, 2, 10], 139)),
        ] {
            let mut plan = plan_on(&lan, 0, "BOB", Some(WINS), own(Some(local)));
            assert_eq!(
                lan.resolve(0, &mut plan),
                (connect(reached, Source::Own), Duration::ZERO)
            );
        }
        let mut plan = plan_on(&lan, 0, "BOB", None, own(None));
        assert_eq!(
            lan.resolve(0, &mut plan).0,
            Next::Fail(ResolveError::NotFound(name("BOB")))
        );
        // A static entry beats the network, where BOB is another host.
        let listed = Known {
            ours: false,
            ..own(None)
        };
        let mut plan = plan_on(&lan, 0, "BOB", Some(WINS), listed);
        let (next, took) = lan.resolve(0, &mut plan);
        assert_eq!(
            next,
            connect(session([192, 0, 2, 50], 1139), Source::Static)
        );
        assert_eq!(took, Duration::ZERO);
    }

    #[test]
    fn a_name_registered_on_one_host_is_found_from_another_by_broadcast() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11], [192, 0, 2, 12]]);
        lan.register(2, name("CAROL"), 1);
        let mut plan = plan_on(&lan, 0, "CAROL", None, Known::default());
        let first = plan.poll(lan.now);
        let Next::Send(query) = first else {
            panic!("{first:?}")
        };
        assert!(query.broadcast);
        assert_eq!(query.source, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(
            query.target,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 255), 137)
        );
        let (next, _) = lan.resolve(0, &mut plan);
        assert_eq!(
            next,
            connect(session([192, 0, 2, 12], 139), Source::Broadcast)
        );
        // Nobody holds DAVE: three tries, 250 ms apart, and a last wait.
        let mut plan = plan_on(&lan, 1, "DAVE", None, Known::default());
        let (next, took) = lan.resolve(1, &mut plan);
        assert_eq!(next, Next::Fail(ResolveError::NotFound(name("DAVE"))));
        assert_eq!(took, QUERY_INTERVAL * 3);
    }

    #[test]
    fn two_owners_of_a_unique_name_are_a_duplicate() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11], [192, 0, 2, 12]]);
        // Both took ALICE while the segment was split.
        lan.cut[2] = true;
        lan.register(1, name("ALICE"), 1);
        lan.cut[2] = false;
        lan.cut[1] = true;
        lan.register(2, name("ALICE"), 2);
        lan.cut[1] = false;
        let mut plan = plan_on(&lan, 0, "ALICE", None, Known::default());
        let (next, _) = lan.resolve(0, &mut plan);
        let Next::Fail(error) = next else {
            panic!("{next:?}")
        };
        assert_eq!(
            error,
            ResolveError::Duplicate {
                name: name("ALICE"),
                addresses: vec![Ipv4Addr::new(192, 0, 2, 11), Ipv4Addr::new(192, 0, 2, 12)],
            }
        );
        assert_eq!(
            error.to_string(),
            "ALICE<03> is claimed by several hosts: 192.0.2.11, 192.0.2.12"
        );
    }

    #[test]
    fn wins_is_asked_first_and_broadcast_only_when_it_knows_nothing() {
        let mut lan =
            Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11], [192, 0, 2, 12]]).with_wins(WINS);
        lan.register(1, name("BOB"), 1);
        // CAROL is held by broadcast only: the server does not know her.
        lan.wins_clients[2] = None;
        lan.register(2, name("CAROL"), 2);
        let mut plan = plan_on(&lan, 0, "BOB", Some(WINS), Known::default());
        let Next::Send(query) = plan.poll(lan.now) else {
            panic!()
        };
        assert_eq!(query.target, SocketAddrV4::new(WINS, 137));
        assert!(!query.broadcast);
        assert_eq!(Packet::parse(&query.bytes).unwrap().flags.to_word(), 0x0100);
        // That first query was not delivered: the second try is answered.
        let (next, took) = lan.resolve(0, &mut plan);
        assert_eq!(next, connect(session([192, 0, 2, 11], 139), Source::Wins));
        assert_eq!(took, QUERY_INTERVAL * 2);
        // The server's "no such name" is final for it; broadcast finds CAROL.
        let mut plan = plan_on(&lan, 0, "CAROL", Some(WINS), Known::default());
        let (next, took) = lan.resolve(0, &mut plan);
        assert_eq!(
            next,
            connect(session([192, 0, 2, 12], 139), Source::Broadcast)
        );
        assert_eq!(took, QUERY_INTERVAL);
        // A silent server costs its three tries, then broadcast goes on.
        lan.wins = None;
        let mut plan = plan_on(&lan, 0, "CAROL", Some(WINS), Known::default());
        let (next, took) = lan.resolve(0, &mut plan);
        assert_eq!(
            next,
            connect(session([192, 0, 2, 12], 139), Source::Broadcast)
        );
        assert_eq!(took, QUERY_INTERVAL * 4);
    }

    #[test]
    fn every_interface_and_extra_address_is_asked_and_answers_are_merged() {
        // Two segments; the asking host sits on both (two interfaces).
        let mut lan = Lan::with_prefix(&[[192, 0, 2, 10], [192, 0, 2, 20], [192, 0, 2, 140]], 25);
        lan.register(1, name("BOB"), 1);
        lan.register(2, name("CAROL"), 2);
        let second = crate::sim::interface(Ipv4Addr::new(192, 0, 2, 130), 25);
        let interfaces = [lan.interfaces[0], second];
        let extra = [Ipv4Addr::new(198, 51, 100, 255)];
        let config = PlanConfig::new(&interfaces, &extra, None, 139, 137);
        assert_eq!(
            config.broadcast,
            [
                (Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 127)),
                (Ipv4Addr::new(192, 0, 2, 130), Ipv4Addr::new(192, 0, 2, 255)),
                (Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(198, 51, 100, 255)),
            ]
        );
        // Host 0 alone hears only its own segment: CAROL is not found there.
        let mut plan = plan_on(&lan, 0, "CAROL", None, Known::default());
        assert!(matches!(
            lan.resolve(0, &mut plan).0,
            Next::Fail(ResolveError::NotFound(_))
        ));
        // From both interfaces, CAROL is found on the second.
        let mut plan = ResolvePlan::new(name("CAROL"), config, Known::default(), 9);
        let mut targets = Vec::new();
        let mut now = lan.now;
        let next = loop {
            match plan.poll(now) {
                Next::Send(q) => {
                    targets.push(*q.target.ip());
                    if *q.target.ip() == Ipv4Addr::new(192, 0, 2, 255) {
                        let request = Packet::parse(&q.bytes).unwrap();
                        let names = lan.hosts[2].owned();
                        let host = crate::responder::Host {
                            names: &names,
                            address: lan.interfaces[2].address,
                            mac: [0; 6],
                        };
                        let reply = crate::responder::answer(&request, &host).unwrap();
                        plan.handle_datagram(now, host.address, &reply.to_bytes().unwrap());
                    }
                }
                Next::Wait(t) => {
                    now = t;
                    plan.handle_timeout(now);
                }
                other => break other,
            }
        };
        assert_eq!(
            next,
            connect(session([192, 0, 2, 140], 139), Source::Broadcast)
        );
        targets.dedup();
        assert_eq!(
            targets,
            [
                Ipv4Addr::new(192, 0, 2, 127),
                Ipv4Addr::new(192, 0, 2, 255),
                Ipv4Addr::new(198, 51, 100, 255)
            ]
        );
    }

    #[test]
    fn a_query_that_cannot_be_sent_is_skipped() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]).with_wins(WINS);
        lan.register(1, name("BOB"), 1);
        let mut plan = plan_on(&lan, 0, "BOB", Some(WINS), Known::default());
        let Next::Send(query) = plan.poll(lan.now) else {
            panic!()
        };
        assert_eq!(*query.target.ip(), WINS);
        // No socket for the WINS query: broadcast is next, at once.
        plan.skip_query();
        let Next::Send(query) = plan.poll(lan.now) else {
            panic!()
        };
        assert!(query.broadcast);
        plan.skip_query();
        assert_eq!(
            plan.poll(lan.now),
            Next::Fail(ResolveError::NotFound(name("BOB")))
        );
    }

    #[test]
    fn cache_entries_expire_and_can_be_forgotten() {
        let mut c = NameCache::default();
        let t0 = Instant::now();
        let bob = name("BOB");
        let at: SocketAddr = "192.0.2.11:139".parse().unwrap();
        c.insert(bob, at, t0);
        assert_eq!(c.get(&bob, t0 + Duration::from_secs(59)), Some(at));
        assert_eq!(c.get(&bob, t0 + NAME_CACHE_TTL), None);
        c.insert(bob, at, t0);
        c.remove(&bob);
        assert_eq!(c.get(&bob, t0), None);
    }
}

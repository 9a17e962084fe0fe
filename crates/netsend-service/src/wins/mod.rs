//! The `WinsServer` component (`[wins_server] enabled = true`): drives
//! `netsend-proto`'s WINS server with the unicast requests the name service
//! driver hands it, commits every change of its table to the store before
//! the answer that follows it, and runs its challenges and expiries on a
//! timer task. The site gateway reads its names ([`WinsServer::active_names`])
//! and answers, through [`WinsServer::set_fallback`], the queries for names
//! the table does not hold.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use netsend_control::types::WinsServerStatus;
use netsend_proto::display::LogSafe;
use netsend_proto::responder::Host;
use netsend_proto::wins_server::{self, Action, Context, Event};
use netsend_wire::NetbiosName;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, Semaphore};

use crate::metrics::{Metrics, WinsTable};
use crate::shutdown::Shutdown;
use crate::store::{InboxError, InboxHandle};
use crate::system::net::Interface;

/// Answers that may wait for their change's commit at the same time; past
/// them an answer is dropped (the client asks again).
const MAX_IN_FLIGHT: usize = 64;

/// The longest the timer task sleeps, so a clock step is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// One name the WINS server answers for, as the site gateway publishes it.
// Read by the site gateway (issue 18, branch f18-gw).
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WinsName {
    /// The name with its suffix.
    pub(crate) name: NetbiosName,
    /// A group name rather than a unique one.
    pub(crate) group: bool,
    /// Its holders' addresses.
    pub(crate) addresses: Vec<Ipv4Addr>,
    /// When the last of them lapses unless refreshed.
    pub(crate) expires: SystemTime,
}

/// Addresses for a name the table does not hold (set by the site gateway).
pub(crate) type Fallback = Arc<dyn Fn(&NetbiosName) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// A cheap, cloneable handle on the WINS server.
#[derive(Clone)]
pub(crate) struct WinsServer {
    inner: Arc<Inner>,
}

struct Inner {
    table: Mutex<wins_server::WinsServer>,
    fallback: RwLock<Option<Fallback>>,
    inbox: InboxHandle,
    /// The name service sockets: challenges and timed answers go out of the
    /// one whose subnet holds the destination (else the first).
    sockets: Vec<(Arc<UdpSocket>, Interface)>,
    in_flight: Arc<Semaphore>,
    wake: Notify,
    metrics: Arc<Metrics>,
}

/// Why the WINS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WinsError {
    /// The table could not be read or cleaned.
    #[error("the WINS table: {0}")]
    Store(#[from] InboxError),
}

impl WinsServer {
    /// The server with the table the store holds; the names lapsed since
    /// the last run are forgotten before it answers anything.
    pub(crate) async fn load(
        config: wins_server::WinsServerConfig,
        inbox: InboxHandle,
        sockets: Vec<(Arc<UdpSocket>, Interface)>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WinsError> {
        let records = inbox.wins_records().await?;
        let now = SystemTime::now();
        let mut table = wins_server::WinsServer::new(
            config,
            records,
            now,
            crate::naming::registrar::random_seed(),
        );
        while let Some(action) = table.poll_action() {
            if let Action::Persist(change) = action {
                inbox.wins_change(change).await?;
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                table: Mutex::new(table),
                fallback: RwLock::new(None),
                inbox,
                sockets,
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                wake: Notify::new(),
                metrics,
            }),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, wins_server::WinsServer> {
        self.inner.table.lock().expect("WINS table lock")
    }

    /// The address a live unique registration of `name` holds, for this
    /// host's own sends (a gateway delivering to its site's hosts).
    pub(crate) fn unique_address(&self, name: &NetbiosName) -> Option<Ipv4Addr> {
        let now = SystemTime::now();
        let table = self.table();
        let record = table.get(name).filter(|r| !r.group)?;
        let address = record.live(now).next().map(|m| m.address);
        address
    }

    /// The names answered now, for the site gateway to publish.
    pub(crate) fn active_names(&self) -> Vec<WinsName> {
        let now = SystemTime::now();
        self.table()
            .active(now)
            .map(|r| WinsName {
                name: r.name,
                group: r.group,
                addresses: r.live(now).map(|m| m.address).collect(),
                expires: r.live(now).map(|m| m.expires).max().unwrap_or(now),
            })
            .collect()
    }

    /// Sets the answer for unicast queries of names the table does not hold
    /// (called under the table's lock: it must answer from memory, at once).
    pub(crate) fn set_fallback(&self, f: Fallback) {
        *self.inner.fallback.write().expect("WINS fallback lock") = Some(f);
    }

    /// The table's size and counters, for `messenger status`.
    pub(crate) fn status(&self) -> WinsServerStatus {
        let now = SystemTime::now();
        let table = self.table();
        let (held, challenging) = table.size();
        WinsServerStatus {
            names: table.active(now).count(),
            held,
            challenging,
            counts: table.counters(),
        }
    }

    /// The table's size, for the metrics.
    pub(crate) fn table_sizes(&self) -> WinsTable {
        let table = self.table();
        WinsTable {
            names: table.active(SystemTime::now()).count(),
            held: table.size().0,
        }
    }

    /// Handles one unicast request, or the answer to a challenge, that
    /// arrived on `socket` (the interface `own` describes); its changes are
    /// committed and its answers sent on a task of `shutdown`, bounded.
    pub(crate) fn handle_datagram(
        &self,
        shutdown: &Shutdown,
        socket: &Arc<UdpSocket>,
        own: &Host<'_>,
        src: SocketAddrV4,
        bytes: &[u8],
    ) {
        let (steps, challenged) = {
            let fallback = self
                .inner
                .fallback
                .read()
                .expect("WINS fallback lock")
                .clone();
            let lookup = fallback
                .as_ref()
                .map(|f| f.as_ref() as wins_server::Lookup<'_>);
            let cx = Context {
                own: *own,
                fallback: lookup,
            };
            let mut table = self.table();
            let (before, counted) = (table.size().1, table.counters());
            table.handle_datagram(SystemTime::now(), src, bytes, &cx);
            let challenged = table.size().1 > before;
            self.count(counted, table.counters());
            (self.steps(&mut table), challenged)
        };
        if challenged {
            // A challenge's next try is due before the timer's sleep ends.
            self.inner.wake.notify_one();
        }
        if !steps.iter().any(|s| matches!(s, Step::Commit(_))) {
            // Nothing to wait for (a query, a refusal, a WACK): sent now.
            for step in steps {
                if let Step::Send(to, packet) = step {
                    if let Err(e) = socket.try_send_to(&packet, SocketAddr::V4(to)) {
                        tracing::debug!(%to, error = %LogSafe(&e), "WINS answer not sent");
                    }
                }
            }
            return;
        }
        // The answer waits for its commit, on a task; a bounded number wait
        // at once (the change is made either way: the client's next try is
        // answered from the table, after its own commit).
        let Ok(permit) = self.inner.in_flight.clone().try_acquire_owned() else {
            tracing::debug!(%src, "WINS answer dropped: too many waiting for their commit");
            return;
        };
        let (this, socket) = (self.clone(), socket.clone());
        shutdown.spawn(async move {
            this.carry_out(Some(&socket), steps).await;
            drop(permit);
        });
    }

    /// Runs the challenges' retries and the expiries until shutdown.
    pub(crate) async fn run(self, shutdown: Shutdown) {
        loop {
            let wait = {
                let table = self.table();
                table
                    .poll_timeout()
                    .map_or(MAX_SLEEP, |t| {
                        t.duration_since(SystemTime::now()).unwrap_or_default()
                    })
                    .min(MAX_SLEEP)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.wake.notified() => continue,
                _ = tokio::time::sleep(wait) => {}
            }
            let actions = {
                let mut table = self.table();
                let counted = table.counters();
                table.handle_timeout(SystemTime::now());
                self.count(counted, table.counters());
                self.steps(&mut table)
            };
            self.carry_out(None, actions).await;
        }
    }

    /// Feeds the metrics what the table decided between two readings of
    /// its counters (a registration refused after a defended challenge is
    /// counted as `defended` only).
    fn count(&self, before: wins_server::Counters, after: wins_server::Counters) {
        let m = &self.inner.metrics;
        let defended = after.defended - before.defended;
        for (outcome, n) in [
            ("granted", after.granted - before.granted),
            (
                "refused",
                (after.refused - before.refused).saturating_sub(defended),
            ),
            ("defended", defended),
        ] {
            if n > 0 {
                m.wins_registrations(outcome, n);
            }
        }
        for (outcome, n) in [
            ("answered", after.answered - before.answered),
            ("unknown", after.unknown - before.unknown),
        ] {
            if n > 0 {
                m.wins_queries(outcome, n);
            }
        }
        m.wins_releases(after.released - before.released);
        m.wins_challenges(after.challenges - before.challenges);
    }

    /// The table's actions, each change handed to the writer at once (in
    /// the order the table made them, under its lock); its challenge
    /// outcomes are logged.
    fn steps(&self, table: &mut wins_server::WinsServer) -> Vec<Step> {
        while let Some(event) = table.poll_event() {
            match event {
                Event::Defended {
                    name,
                    owner,
                    claimant,
                } => tracing::info!(
                    name = %LogSafe(&name), %owner, %claimant,
                    "WINS registration refused: the owner still holds the name"
                ),
                Event::Taken {
                    name,
                    owner,
                    claimant,
                } => tracing::info!(
                    name = %LogSafe(&name), %owner, %claimant,
                    "WINS name given to a new owner: the old one no longer holds it"
                ),
            }
        }
        std::iter::from_fn(|| table.poll_action())
            .map(|action| match action {
                Action::Persist(change) => {
                    Step::Commit(Box::pin(self.inner.inbox.wins_change(change)))
                }
                Action::Reply { to, packet } | Action::Challenge { to, packet } => {
                    Step::Send(to, packet)
                }
            })
            .collect()
    }

    /// Waits for each commit before what follows it; a failed commit drops
    /// the rest (the client asks again). Answers go out of `socket`, when
    /// given.
    async fn carry_out(&self, socket: Option<&Arc<UdpSocket>>, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Commit(commit) => {
                    if let Err(e) = commit.await {
                        tracing::warn!(error = %LogSafe(&e), "WINS table change not committed");
                        return;
                    }
                }
                Step::Send(to, packet) => {
                    let Some(out) = socket.or_else(|| self.socket_for(*to.ip())) else {
                        continue;
                    };
                    if let Err(e) = out.send_to(&packet, SocketAddr::V4(to)).await {
                        tracing::debug!(%to, error = %LogSafe(&e), "WINS answer not sent");
                    }
                }
            }
        }
    }

    fn socket_for(&self, to: Ipv4Addr) -> Option<&Arc<UdpSocket>> {
        let on_link = self.inner.sockets.iter().find(|(_, iface)| {
            iface.netmask.is_some_and(|mask| {
                let m = u32::from(mask);
                u32::from(iface.address) & m == u32::from(to) & m
            })
        });
        on_link.or(self.inner.sockets.first()).map(|(s, _)| s)
    }
}

/// One thing to do for the table, in order.
enum Step {
    /// Wait for a change handed to the writer to commit.
    Commit(Pin<Box<dyn Future<Output = Result<i64, InboxError>> + Send>>),
    /// Send a packet.
    Send(SocketAddrV4, Vec<u8>),
}

#[cfg(test)]
mod tests;

//! Who may reach the service and how much: the anti-spam policy's verdicts
//! (made in `netsend_proto::policy`), per-source connection caps, and the
//! counted reasons for what was dropped.

pub(crate) mod drops;
pub(crate) mod slots;
pub(crate) mod trust;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsend_proto::policy::{DropReason, Policy, Refusal, Source};

use crate::system::host::Host;

/// One TCP session counted against its source; released on drop.
pub(crate) type SessionSlot = slots::CountedSlot<Source>;

/// The admission component: the policy, the per-source session table and
/// the drop counters.
pub(crate) struct Admission {
    /// Allow/deny lists and rate limits per source and per claimed sender.
    policy: Mutex<Policy>,
    /// Messages, connections and name demands dropped since start, by reason.
    drops: Arc<drops::Drops>,
    /// Open TCP sessions per source (an address, or a local user), at most
    /// `[limits] max_connections_per_source` each.
    connections: slots::OpenTable<Source>,
    /// The local end of each of our own connections to our session service
    /// that carries a local user's message, with that user's uid.
    local_senders: Mutex<HashMap<SocketAddr, u32>>,
    /// Which addresses are this host and on its links.
    host: Arc<Host>,
    /// Verified senders: pinned host keys and the names that must come
    /// verified.
    pub(crate) trust: trust::Trust,
}

impl Admission {
    /// Admission under `policy`, counting drops in `drops`.
    pub(crate) fn new(
        policy: Policy,
        drops: Arc<drops::Drops>,
        max_connections_per_source: usize,
        host: Arc<Host>,
        trust: trust::Trust,
    ) -> Self {
        Self {
            policy: Mutex::new(policy),
            drops,
            connections: slots::OpenTable::new(max_connections_per_source),
            local_senders: Mutex::default(),
            host,
            trust,
        }
    }

    /// Admission as `config` sets it up, with no verified names (tests).
    #[cfg(test)]
    pub(crate) fn for_tests(
        config: &crate::config::Config,
        drops: Arc<drops::Drops>,
        host: Arc<Host>,
    ) -> Self {
        Self::new(
            config.policy().expect("a valid policy"),
            drops,
            config.limits.max_connections_per_source,
            host,
            trust::Trust::new(
                config.trust.file_in(&config.state_dir),
                config.trust.pin_new,
                Vec::new(),
            ),
        )
    }

    /// Takes a reloaded configuration's lists and limits: the policy
    /// keeps what each source has used ([`Policy::reconfigure`]), and the
    /// per-source session cap changes for the next connection.
    pub(crate) fn reconfigure(
        &self,
        access: netsend_proto::policy::AccessList,
        limits: netsend_proto::policy::Limits,
        max_connections_per_source: usize,
    ) {
        self.policy
            .lock()
            .expect("policy lock")
            .reconfigure(access, limits);
        self.connections.set_cap(max_connections_per_source);
    }

    /// What a connection from `peer` counts against: the local user whose
    /// message we are carrying on it, or else its address.
    fn source_of(&self, peer: SocketAddr) -> Source {
        let local = self.local_senders.lock().expect("local sender lock");
        local
            .get(&peer)
            .map_or(Source::Address(peer.ip()), |&uid| Source::LocalUser(uid))
    }

    /// Records that the connection from `local` (to our own session
    /// service) carries a message of the local user `uid`, until the guard
    /// is dropped.
    pub(crate) fn local_sender(self: &Arc<Self>, local: SocketAddr, uid: u32) -> LocalSender {
        self.local_senders
            .lock()
            .expect("local sender lock")
            .insert(local, uid);
        LocalSender {
            admission: self.clone(),
            local,
        }
    }

    /// Whether `peer` may deliver one more message claiming `from` now;
    /// counts and logs a drop.
    pub(crate) fn admit(&self, peer: SocketAddr, from: &str) -> bool {
        let source = self.source_of(peer);
        let verdict = self
            .policy
            .lock()
            .expect("policy lock")
            .admit(Instant::now(), source, from);
        self.verdict(verdict, peer, from)
    }

    /// Whether an unverified message from `peer` claiming `from` is refused
    /// by `[trust] require_verified_from`; counts and logs the drop.
    pub(crate) fn refuses_unverified(&self, peer: SocketAddr, from: &str) -> bool {
        if !self.trust.refuses_unverified(from) {
            return false;
        }
        self.count_drop(DropReason::UnverifiedSender, peer, from, Duration::ZERO);
        true
    }

    /// The host whose verified sender name an unverified message claiming
    /// `from` uses, if any (its `claimed_by`).
    pub(crate) fn claimed_by(&self, from: &str) -> Option<String> {
        match self.trust.mark(from, None) {
            netsend_proto::trust::Mark::Claims { host, .. } => Some(host),
            _ => None,
        }
    }

    /// [`Self::admit`] for a MESSNGR datagram, which also takes from the
    /// budget all datagram sources share.
    pub(crate) fn admit_datagram(&self, peer: SocketAddr, from: &str) -> bool {
        let verdict = self.policy.lock().expect("policy lock").admit_datagram(
            Instant::now(),
            peer.ip(),
            from,
        );
        self.verdict(verdict, peer, from)
    }

    /// Whether a `\MAILSLOT\BROWSE` frame from `peer` may be taken: its
    /// address is admitted and the browse budgets (its own, and the one all
    /// sources share) have room. Counts and logs a drop.
    pub(crate) fn admit_browse(&self, peer: SocketAddr) -> bool {
        self.budgeted(peer, Policy::admit_browse)
    }

    /// Whether a WINS registration, refresh or release from `peer` may be
    /// handled: its address is admitted and the WINS budgets (its own, and
    /// the writes all sources share) have room. Counts and logs a drop.
    pub(crate) fn admit_wins(&self, peer: SocketAddr) -> bool {
        self.budgeted(peer, Policy::admit_wins)
    }

    /// A verdict on `peer` by one of the policy's budgets; counts a drop.
    fn budgeted(
        &self,
        peer: SocketAddr,
        admit: fn(&mut Policy, Instant, std::net::IpAddr) -> Result<(), Refusal>,
    ) -> bool {
        let verdict = admit(
            &mut self.policy.lock().expect("policy lock"),
            Instant::now(),
            peer.ip(),
        );
        self.verdict(verdict, peer, "")
    }

    /// Whether a datagram from `peer` that carries no message (a receipt)
    /// may be taken: its address is not denied. Counts and logs a drop.
    pub(crate) fn admit_address(&self, peer: SocketAddr) -> bool {
        if self
            .policy
            .lock()
            .expect("policy lock")
            .admits_address(peer.ip())
        {
            return true;
        }
        self.count_drop(DropReason::DeniedAddress, peer, "", Duration::ZERO);
        false
    }

    /// Whether a node status request from `peer` is answered now; it is
    /// on-link when it is this host or on the subnet of a served interface.
    pub(crate) fn admit_status(&self, peer: SocketAddr) -> bool {
        let on_link = self.host.is_on_link(peer.ip());
        self.policy
            .lock()
            .expect("policy lock")
            .admit_status(Instant::now(), peer.ip(), on_link)
    }

    fn verdict(&self, verdict: Result<(), Refusal>, peer: SocketAddr, from: &str) -> bool {
        match verdict {
            Ok(()) => true,
            Err(refusal) => {
                self.count_drop(refusal.reason, peer, from, refusal.retry_after);
                false
            }
        }
    }

    /// Counts a drop and writes its log line (structured: reason, peer,
    /// source, sender).
    pub(crate) fn count_drop(
        &self,
        reason: DropReason,
        peer: SocketAddr,
        from: &str,
        retry_after: Duration,
    ) {
        // What the drop was counted against: the address, or a local user.
        let source = self.source_of(peer).to_string();
        self.drops
            .count(reason, peer, &source, from, retry_after, 1);
    }

    /// Drops counted since start, by reason (every reason listed).
    pub(crate) fn drop_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.drops.counts()
    }

    /// Takes a session slot for `peer`, or `None` (counted and logged) when
    /// the address is denied or already holds its share of sessions.
    pub(crate) fn open_session(&self, peer: SocketAddr) -> Option<SessionSlot> {
        if !self.admit_address(peer) {
            return None;
        }
        let slot = self.connections.take(self.source_of(peer));
        if slot.is_none() {
            self.count_drop(DropReason::SourceConnections, peer, "", Duration::ZERO);
        }
        slot
    }
}

/// A local user's connection to our own session service, known by its
/// local end (see [`Admission::local_sender`]); forgotten when dropped.
pub(crate) struct LocalSender {
    admission: Arc<Admission>,
    local: SocketAddr,
}

impl Drop for LocalSender {
    fn drop(&mut self) {
        self.admission
            .local_senders
            .lock()
            .expect("local sender lock")
            .remove(&self.local);
    }
}

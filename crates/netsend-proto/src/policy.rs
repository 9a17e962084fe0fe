//! Anti-spam, sans IO and bounded in memory: allow and deny lists by network and
//! by sender name, token-bucket rate limits per source (an address, or a local
//! user by uid) and per claimed sender name, a budget shared by every
//! datagram source (their addresses can be spoofed), and who gets node status
//! answers.
//!
//! Each key may deliver `burst` messages at once and then `per_minute` a minute.
//! A limiter holds at most [`MAX_KEYS`] keys; when it is full, the key seen
//! longest ago is forgotten, so a flood of spoofed addresses or invented sender
//! names cannot grow memory.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// Most keys one limiter tracks at once.
pub const MAX_KEYS: usize = 4096;

/// Why a message or a connection was dropped. Every drop is counted under one
/// of these and logged with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The source address is on the deny list or not on a non-empty allow list.
    DeniedAddress,
    /// The claimed sender name is on the deny list or not on a non-empty allow list.
    DeniedSender,
    /// The source address exceeded its message rate.
    SourceRate,
    /// The claimed sender name exceeded its message rate.
    SenderRate,
    /// The source address holds too many connections already.
    SourceConnections,
    /// The recipient's inbox is full.
    InboxQuota,
    /// Datagrams from every source together exceeded their budget.
    DatagramRate,
    /// A name conflict or release demand (or a refusal of our registration)
    /// for one of our names that no other host's answer to a query bore out.
    UnverifiedNameDemand,
    /// Browse frames (from one source, or from all together) exceeded their
    /// budget.
    BrowseRate,
    /// An unverified message claimed a sender name `[trust]
    /// require_verified_from` says must arrive verified.
    UnverifiedSender,
    /// WINS registrations, refreshes and releases (from one source, or from
    /// all together) exceeded their budget.
    WinsRate,
}

impl DropReason {
    /// Every reason, in the order counters are reported.
    pub const ALL: [Self; 11] = [
        Self::DeniedAddress,
        Self::DeniedSender,
        Self::SourceRate,
        Self::SenderRate,
        Self::SourceConnections,
        Self::InboxQuota,
        Self::DatagramRate,
        Self::UnverifiedNameDemand,
        Self::BrowseRate,
        Self::UnverifiedSender,
        Self::WinsRate,
    ];

    /// A stable snake_case label for logs, counters and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DeniedAddress => "denied_address",
            Self::DeniedSender => "denied_sender",
            Self::SourceRate => "source_rate",
            Self::SenderRate => "sender_rate",
            Self::SourceConnections => "source_connections",
            Self::InboxQuota => "inbox_quota",
            Self::DatagramRate => "datagram_rate",
            Self::UnverifiedNameDemand => "unverified_name_demand",
            Self::BrowseRate => "browse_rate",
            Self::UnverifiedSender => "unverified_sender",
            Self::WinsRate => "wins_rate",
        }
    }

    /// The position of this reason in [`Self::ALL`] (for counter arrays).
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Message rate limits per key (a source address or a sender name).
#[derive(Debug)]
pub struct RateLimiter<K> {
    per_sec: f64,
    burst: f64,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_minute` messages a minute after a `burst`; 0 disables the limit.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Whether `key` may deliver one more message at `now` (and takes it).
    pub fn allow(&mut self, now: Instant, key: &K) -> bool {
        if self.per_sec == 0.0 {
            return true;
        }
        if !self.buckets.contains_key(key) && self.buckets.len() >= MAX_KEYS {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.buckets.remove(&k);
            }
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Changes the rate to `per_minute` after a `burst` (a configuration
    /// reload) without forgetting what each key has used: its tokens stay
    /// as they are, at most the new burst, so a reload hands no flooding
    /// source a fresh burst.
    pub fn set_rate(&mut self, per_minute: u32, burst: u32) {
        self.per_sec = f64::from(per_minute) / 60.0;
        self.burst = f64::from(burst.max(1));
        for bucket in self.buckets.values_mut() {
            bucket.tokens = bucket.tokens.min(self.burst);
        }
    }

    /// How long until `key` may send again (zero if it may now).
    pub fn retry_after(&self, key: &K) -> Duration {
        match self.buckets.get(key) {
            Some(b) if b.tokens < 1.0 && self.per_sec > 0.0 => {
                Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec)
            }
            _ => Duration::ZERO,
        }
    }

    /// How many keys are tracked now (at most [`MAX_KEYS`]).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// A sender-name pattern: a NetBIOS name where `*` matches any run of
/// characters and `?` any one character, compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(String);

/// Why a pattern or network in the configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A name pattern that is empty or longer than a NetBIOS name can match.
    #[error("bad sender pattern {0:?}: 1-15 characters, `*` and `?` as wildcards")]
    BadPattern(String),
    /// An address or network that does not parse.
    #[error("bad network {0:?}: write an address (192.0.2.7) or a network (192.0.2.0/24)")]
    BadNetwork(String),
    /// A node status audience other than `on-link`, `anyone` or `none`.
    #[error("bad node status audience {0:?}: \"on-link\", \"anyone\" or \"none\"")]
    BadAudience(String),
}

impl FromStr for NamePattern {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let literal = s.chars().filter(|c| *c != '*').count();
        if s.is_empty() || literal > 15 || s.chars().any(char::is_control) {
            return Err(PolicyError::BadPattern(s.to_owned()));
        }
        Ok(Self(s.to_uppercase()))
    }
}

impl NamePattern {
    /// Whether `name` (a sender name as received) matches.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.trim_end().to_uppercase().chars().collect();
        let pattern: Vec<char> = self.0.chars().collect();
        glob(&pattern, &name)
    }
}

/// Iterative wildcard match with one backtrack point: linear in practice and
/// never recursive, so a hostile name cannot blow the stack.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Parses a network (`192.0.2.0/24`) or a single address (`192.0.2.7`).
pub fn parse_network(s: &str) -> Result<IpNet, PolicyError> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| PolicyError::BadNetwork(s.to_owned()))
}

/// Allow and deny lists. A deny entry always wins; a non-empty allow list
/// admits only what it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    /// Networks that may send (empty: every network).
    pub allow_networks: Vec<IpNet>,
    /// Networks that may not send.
    pub deny_networks: Vec<IpNet>,
    /// Sender names that may send (empty: every name).
    pub allow_senders: Vec<NamePattern>,
    /// Sender names that may not send.
    pub deny_senders: Vec<NamePattern>,
}

impl AccessList {
    /// Whether `source` may connect or send at all.
    pub fn admits_address(&self, source: IpAddr) -> bool {
        let source = canonical(source);
        if self.deny_networks.iter().any(|n| n.contains(&source)) {
            return false;
        }
        self.allow_networks.is_empty() || self.allow_networks.iter().any(|n| n.contains(&source))
    }

    /// Whether a message claiming to be from `sender` may be delivered.
    pub fn admits_sender(&self, sender: &str) -> bool {
        if self.deny_senders.iter().any(|p| p.matches(sender)) {
            return false;
        }
        self.allow_senders.is_empty() || self.allow_senders.iter().any(|p| p.matches(sender))
    }
}

/// Who a message or a connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A peer address (IPv4-mapped IPv6 counts as IPv4).
    Address(IpAddr),
    /// A local user sending through this host's own service, by uid: local
    /// senders share an address but not its limits.
    LocalUser(u32),
}

impl Source {
    fn canonical(self) -> Self {
        match self {
            Self::Address(ip) => Self::Address(canonical(ip)),
            user => user,
        }
    }
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        Self::Address(ip)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(ip) => ip.fmt(f),
            Self::LocalUser(uid) => write!(f, "uid {uid}"),
        }
    }
}

/// IPv4-mapped IPv6 addresses compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The limits of a [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages per minute per source address (0: no limit).
    pub source_per_minute: u32,
    /// Burst per source address.
    pub source_burst: u32,
    /// Messages per minute per claimed sender name (0: no limit).
    pub sender_per_minute: u32,
    /// Burst per claimed sender name.
    pub sender_burst: u32,
    /// MESSNGR datagrams per minute from every source together (0: no limit).
    pub datagram_per_minute: u32,
    /// Burst of datagrams from every source together.
    pub datagram_burst: u32,
    /// Who gets node status answers.
    pub status_audience: StatusAudience,
    /// Node status answers per minute per source address (0: no limit).
    pub status_per_minute: u32,
    /// Burst of node status answers per source address.
    pub status_burst: u32,
    /// `\MAILSLOT\BROWSE` frames per minute from every source together (0:
    /// no limit); each source is held to [`BROWSE_SOURCE_PER_MINUTE`] too.
    pub browse_per_minute: u32,
    /// Burst of browse frames from every source together.
    pub browse_burst: u32,
    /// WINS registrations, refreshes and releases per minute per source
    /// address, after the burst (0: no limit).
    pub wins_per_minute: u32,
    /// Burst of WINS requests per source address.
    pub wins_burst: u32,
    /// WINS registrations, refreshes and releases a second from every source
    /// together, also the burst (0: no limit): each may be a database write.
    pub wins_writes_per_second: u32,
}

/// Browse frames per minute one source address may send, after
/// [`BROWSE_SOURCE_BURST`]: a master browser sends three every few minutes,
/// a host one, and each answers a request once.
pub const BROWSE_SOURCE_PER_MINUTE: u32 = 30;
/// Browse frames one source address may send at once.
pub const BROWSE_SOURCE_BURST: u32 = 10;

/// Who gets node status answers (`nmblookup -A`, `nbtscan`). A node status
/// reply lists every name we hold (up to 64, the logged-in users among them)
/// and is many times the size of the request, so answering forged sources
/// anywhere would make us an amplifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusAudience {
    /// Hosts on the subnet of a served interface, and this host itself.
    #[default]
    OnLink,
    /// Any address.
    Anyone,
    /// Nobody.
    Nobody,
}

impl StatusAudience {
    /// The configuration spelling: `on-link`, `anyone` or `none`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OnLink => "on-link",
            Self::Anyone => "anyone",
            Self::Nobody => "none",
        }
    }
}

impl FromStr for StatusAudience {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::OnLink, Self::Anyone, Self::Nobody]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| PolicyError::BadAudience(s.to_owned()))
    }
}

/// A refused message: why, and when the sender may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The reason it is counted under.
    pub reason: DropReason,
    /// How long until a retry can succeed (zero for list denials).
    pub retry_after: Duration,
}

/// Decides, per message, whether it may be delivered.
#[derive(Debug)]
pub struct Policy {
    access: AccessList,
    per_source: RateLimiter<Source>,
    per_sender: RateLimiter<String>,
    datagrams: RateLimiter<()>,
    status_audience: StatusAudience,
    status_per_source: RateLimiter<IpAddr>,
    browse: RateLimiter<()>,
    browse_per_source: RateLimiter<IpAddr>,
    wins_per_source: RateLimiter<IpAddr>,
    wins_writes: RateLimiter<()>,
}

impl Policy {
    /// A policy with these lists and limits.
    pub fn new(access: AccessList, limits: Limits) -> Self {
        Self {
            access,
            per_source: RateLimiter::new(limits.source_per_minute, limits.source_burst),
            per_sender: RateLimiter::new(limits.sender_per_minute, limits.sender_burst),
            datagrams: RateLimiter::new(limits.datagram_per_minute, limits.datagram_burst),
            status_audience: limits.status_audience,
            status_per_source: RateLimiter::new(limits.status_per_minute, limits.status_burst),
            browse: RateLimiter::new(limits.browse_per_minute, limits.browse_burst),
            browse_per_source: RateLimiter::new(BROWSE_SOURCE_PER_MINUTE, BROWSE_SOURCE_BURST),
            wins_per_source: RateLimiter::new(limits.wins_per_minute, limits.wins_burst),
            wins_writes: RateLimiter::new(
                limits.wins_writes_per_second.saturating_mul(60),
                limits.wins_writes_per_second,
            ),
        }
    }

    /// Takes new lists and limits (a configuration reload) and keeps what
    /// every source and sender has used of its limits so far
    /// ([`RateLimiter::set_rate`]).
    pub fn reconfigure(&mut self, access: AccessList, limits: Limits) {
        self.access = access;
        self.per_source
            .set_rate(limits.source_per_minute, limits.source_burst);
        self.per_sender
            .set_rate(limits.sender_per_minute, limits.sender_burst);
        self.datagrams
            .set_rate(limits.datagram_per_minute, limits.datagram_burst);
        self.status_audience = limits.status_audience;
        self.status_per_source
            .set_rate(limits.status_per_minute, limits.status_burst);
        self.browse
            .set_rate(limits.browse_per_minute, limits.browse_burst);
        self.wins_per_source
            .set_rate(limits.wins_per_minute, limits.wins_burst);
        self.wins_writes.set_rate(
            limits.wins_writes_per_second.saturating_mul(60),
            limits.wins_writes_per_second,
        );
    }

    /// Whether a WINS registration, refresh or release from `source` may be
    /// handled at `now`: the address is admitted, and both its own budget
    /// and the writes every source shares (a datagram's source can be
    /// forged) have a token. Queries, answered from memory, are not held
    /// to it.
    pub fn admit_wins(&mut self, now: Instant, source: IpAddr) -> Result<(), Refusal> {
        admit_budgeted(
            &self.access,
            (&mut self.wins_per_source, &mut self.wins_writes),
            now,
            source,
            DropReason::WinsRate,
        )
    }

    /// Whether a browse frame from `source` may be taken at `now`: the
    /// address is admitted, and both its own budget and the one every
    /// source shares (a datagram's source can be forged) have a token.
    pub fn admit_browse(&mut self, now: Instant, source: IpAddr) -> Result<(), Refusal> {
        admit_budgeted(
            &self.access,
            (&mut self.browse_per_source, &mut self.browse),
            now,
            source,
            DropReason::BrowseRate,
        )
    }

    /// Whether a node status request from `source` gets an answer at `now`
    /// (and takes a token from its limit): `on_link` says whether the source
    /// is on the subnet of the interface it reached, or is this host. Denied
    /// networks (and those outside a non-empty allow list) get none.
    pub fn admit_status(&mut self, now: Instant, source: IpAddr, on_link: bool) -> bool {
        let audience = match self.status_audience {
            StatusAudience::OnLink => on_link,
            StatusAudience::Anyone => true,
            StatusAudience::Nobody => false,
        };
        audience
            && self.access.admits_address(source)
            && self.status_per_source.allow(now, &canonical(source))
    }

    /// Whether `source` may connect at all (checked before reading a byte).
    pub fn admits_address(&self, source: IpAddr) -> bool {
        self.access.admits_address(source)
    }

    /// Whether a message from `source` claiming `sender` may be delivered at
    /// `now`; takes a token from both rate limits when it may. The lists
    /// apply to addresses; a local user is limited like an address of its own.
    pub fn admit(
        &mut self,
        now: Instant,
        source: impl Into<Source>,
        sender: &str,
    ) -> Result<(), Refusal> {
        let source = source.into();
        let deny = |reason| {
            Err(Refusal {
                reason,
                retry_after: Duration::ZERO,
            })
        };
        if let Source::Address(ip) = source {
            if !self.access.admits_address(ip) {
                return deny(DropReason::DeniedAddress);
            }
        }
        if !self.access.admits_sender(sender) {
            return deny(DropReason::DeniedSender);
        }
        let source = source.canonical();
        if !self.per_source.allow(now, &source) {
            return Err(Refusal {
                reason: DropReason::SourceRate,
                retry_after: self.per_source.retry_after(&source),
            });
        }
        let sender = sender.trim_end().to_uppercase();
        if !self.per_sender.allow(now, &sender) {
            return Err(Refusal {
                reason: DropReason::SenderRate,
                retry_after: self.per_sender.retry_after(&sender),
            });
        }
        Ok(())
    }

    /// [`Self::admit`] for a MESSNGR datagram from `source`, which must also
    /// fit the budget every datagram source shares: a datagram's source
    /// address can be forged, so a flood from ever new addresses, which no
    /// per-source limit sees, is bounded by it too.
    pub fn admit_datagram(
        &mut self,
        now: Instant,
        source: IpAddr,
        sender: &str,
    ) -> Result<(), Refusal> {
        self.admit(now, Source::Address(source), sender)?;
        if !self.datagrams.allow(now, &()) {
            return Err(Refusal {
                reason: DropReason::DatagramRate,
                retry_after: self.datagrams.retry_after(&()),
            });
        }
        Ok(())
    }

    /// Keys tracked by the rate limiters (bounded by `4 * MAX_KEYS`).
    pub fn tracked_keys(&self) -> usize {
        self.per_source.len()
            + self.per_sender.len()
            + self.datagrams.len()
            + self.status_per_source.len()
            + self.wins_per_source.len()
    }
}

/// Whether `source` is admitted by `access` and has a token in both its own
/// budget and the one every source shares (taken in that order, so one
/// source over its own budget spends none of the shared one); a refusal
/// over either is counted under `reason`.
fn admit_budgeted(
    access: &AccessList,
    (own, shared): (&mut RateLimiter<IpAddr>, &mut RateLimiter<()>),
    now: Instant,
    source: IpAddr,
    reason: DropReason,
) -> Result<(), Refusal> {
    if !access.admits_address(source) {
        return Err(Refusal {
            reason: DropReason::DeniedAddress,
            retry_after: Duration::ZERO,
        });
    }
    let key = canonical(source);
    if !own.allow(now, &key) {
        return Err(Refusal {
            reason,
            retry_after: own.retry_after(&key),
        });
    }
    if !shared.allow(now, &()) {
        return Err(Refusal {
            reason,
            retry_after: shared.retry_after(&()),
        });
    }
    Ok(())
}

/// Connections open at once per key (a source address), each key at most
/// `cap`. Only keys with an open connection are held, so memory is bounded by
/// the connections themselves.
#[derive(Debug, Clone)]
pub struct OpenCounts<K> {
    cap: usize,
    open: HashMap<K, usize>,
}

impl<K: Eq + Hash + Clone> OpenCounts<K> {
    /// Nothing open yet; `cap` is at least 1.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: HashMap::new(),
        }
    }

    /// Changes the cap (a configuration reload); connections open above a
    /// lower cap stay open, and new ones wait until a key is below it.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// Counts a new connection of `key`, unless it already holds `cap`.
    pub fn try_open(&mut self, key: &K) -> bool {
        let n = self.open.entry(key.clone()).or_insert(0);
        if *n >= self.cap {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection of `key` closed.
    pub fn close(&mut self, key: &K) {
        if let Some(n) = self.open.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(key);
            }
        }
    }

    /// Connections of `key` open now.
    pub fn open(&self, key: &K) -> usize {
        self.open.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_source_holds_its_cap_only() {
        let mut c = OpenCounts::new(2);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert!(c.try_open(&a) && c.try_open(&a));
        assert!(!c.try_open(&a), "a third from a");
        assert!(c.try_open(&b), "b is not held up by a");
        c.close(&a);
        assert!(c.try_open(&a));
        c.close(&b);
        c.close(&b);
        assert_eq!(c.open(&b), 0);
        assert_eq!(c.open.len(), 1, "closed keys are forgotten");
        // A lower cap keeps what is open and refuses more; a higher one
        // admits up to it.
        c.set_cap(1);
        assert_eq!(c.open(&a), 2);
        assert!(!c.try_open(&a), "a holds two already");
        c.set_cap(3);
        assert!(c.try_open(&a), "a third under the new cap");
        assert!(!c.try_open(&a), "no fourth");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn unlimited() -> Limits {
        Limits {
            source_per_minute: 0,
            source_burst: 0,
            sender_per_minute: 0,
            sender_burst: 0,
            datagram_per_minute: 0,
            datagram_burst: 0,
            status_audience: StatusAudience::Anyone,
            status_per_minute: 0,
            status_burst: 0,
            browse_per_minute: 0,
            browse_burst: 0,
            wins_per_minute: 0,
            wins_burst: 0,
            wins_writes_per_second: 0,
        }
    }

    #[test]
    fn a_reconfigured_policy_keeps_what_sources_used_and_applies_new_limits() {
        let t0 = Instant::now();
        let limits = |burst| Limits {
            source_per_minute: 60,
            source_burst: burst,
            ..unlimited()
        };
        let mut p = Policy::new(AccessList::default(), limits(3));
        let a = ip("192.0.2.1");
        let sent = (0..5).filter(|_| p.admit(t0, a, "x").is_ok()).count();
        assert_eq!(sent, 3);
        // A larger burst after a reload gives the spent source nothing back.
        p.reconfigure(AccessList::default(), limits(10));
        assert!(p.admit(t0, a, "x").is_err(), "no fresh burst from a reload");
        // A new source gets the new burst.
        let b = ip("192.0.2.2");
        assert_eq!((0..20).filter(|_| p.admit(t0, b, "x").is_ok()).count(), 10);
        // A smaller burst caps what a source had saved.
        let c = ip("192.0.2.3");
        p.reconfigure(AccessList::default(), limits(2));
        assert_eq!((0..5).filter(|_| p.admit(t0, c, "x").is_ok()).count(), 2);
        // New lists apply at once.
        let deny = AccessList {
            deny_networks: vec![parse_network("192.0.2.0/24").unwrap()],
            ..AccessList::default()
        };
        p.reconfigure(deny, limits(2));
        assert_eq!(
            p.admit(t0 + Duration::from_secs(60), b, "x")
                .unwrap_err()
                .reason,
            DropReason::DeniedAddress
        );
    }

    #[test]
    fn browse_frames_have_budgets_per_source_and_shared() {
        let t0 = Instant::now();
        let limits = Limits {
            browse_per_minute: 60,
            browse_burst: 15,
            ..unlimited()
        };
        let access = AccessList {
            deny_networks: vec![parse_network("192.0.2.66").unwrap()],
            ..AccessList::default()
        };
        let mut p = Policy::new(access, limits);
        let forged = |i: u32| IpAddr::from(std::net::Ipv4Addr::new(192, 0, 2, i as u8));
        let refused = p.admit_browse(t0, forged(66)).unwrap_err();
        assert_eq!(refused.reason, DropReason::DeniedAddress);
        let one = forged(1);
        let ok = (0..100).filter(|_| p.admit_browse(t0, one).is_ok()).count();
        assert_eq!(ok, BROWSE_SOURCE_BURST as usize);
        let others = (2..100)
            .filter(|&i| p.admit_browse(t0, forged(i)).is_ok())
            .count();
        assert_eq!(others, 15 - BROWSE_SOURCE_BURST as usize);
        let refused = p.admit_browse(t0, forged(200)).unwrap_err();
        assert_eq!(refused.reason, DropReason::BrowseRate);
        assert!(p
            .admit_browse(t0 + Duration::from_secs(60), forged(200))
            .is_ok());
    }

    #[test]
    fn wins_requests_have_budgets_per_source_and_a_shared_write_cap() {
        let t0 = Instant::now();
        let limits = Limits {
            wins_per_minute: 120,
            wins_burst: 5,
            wins_writes_per_second: 8,
            ..unlimited()
        };
        let access = AccessList {
            deny_networks: vec![parse_network("192.0.2.66").unwrap()],
            ..AccessList::default()
        };
        let mut p = Policy::new(access, limits);
        let host = |i: u8| IpAddr::from(std::net::Ipv4Addr::new(192, 0, 2, i));
        let refused = p.admit_wins(t0, host(66)).unwrap_err();
        assert_eq!(refused.reason, DropReason::DeniedAddress);
        // One flooder gets its burst and no more...
        let flooder = (0..1000).filter(|_| p.admit_wins(t0, host(1)).is_ok());
        assert_eq!(flooder.count(), 5);
        let refused = p.admit_wins(t0, host(1)).unwrap_err();
        assert_eq!(refused.reason, DropReason::WinsRate);
        assert!(refused.retry_after > Duration::ZERO);
        // ...and leaves the shared cap to the others, until it is spent.
        let others = (2..60).filter(|&i| p.admit_wins(t0, host(i)).is_ok());
        assert_eq!(others.count(), 8 - 5);
        // A second later the cap has room again, and the flooder has two
        // a second of its own.
        let t1 = t0 + Duration::from_secs(1);
        assert!(p.admit_wins(t1, host(2)).is_ok());
        assert_eq!(
            (0..100)
                .filter(|_| p.admit_wins(t1, host(1)).is_ok())
                .count(),
            2
        );
        // No limit at all when both are 0.
        p.reconfigure(AccessList::default(), unlimited());
        assert!((0..10_000).all(|_| p.admit_wins(t1, host(1)).is_ok()));
    }

    #[test]
    fn each_local_user_has_a_limit_of_its_own() {
        let t0 = Instant::now();
        let limits = Limits {
            source_per_minute: 60,
            source_burst: 3,
            ..unlimited()
        };
        let access = AccessList {
            deny_networks: vec![parse_network("127.0.0.0/8").unwrap()],
            deny_senders: vec!["SPAM*".parse().unwrap()],
            ..AccessList::default()
        };
        let mut p = Policy::new(access, limits);
        let flooder = Source::LocalUser(1001);
        let ok = (0..10)
            .filter(|i| p.admit(t0, flooder, &format!("u{i}")).is_ok())
            .count();
        assert_eq!(ok, 3);
        let refused = p.admit(t0, flooder, "again").unwrap_err();
        assert_eq!(refused.reason, DropReason::SourceRate);
        // Another user on the same host is not held up, whatever the
        // address lists say (they are about networks) ...
        assert_eq!(p.admit(t0, Source::LocalUser(1002), "bob"), Ok(()));
        // ... but the sender lists still apply.
        assert_eq!(
            p.admit(t0, Source::LocalUser(1002), "spammer")
                .unwrap_err()
                .reason,
            DropReason::DeniedSender
        );
        assert_eq!(
            p.admit(t0, ip("127.0.0.1"), "bob").unwrap_err().reason,
            DropReason::DeniedAddress
        );
    }

    #[test]
    fn datagrams_from_ever_new_addresses_share_one_budget() {
        let t0 = Instant::now();
        let limits = Limits {
            source_per_minute: 60,
            source_burst: 5,
            datagram_per_minute: 60,
            datagram_burst: 10,
            ..unlimited()
        };
        let mut p = Policy::new(AccessList::default(), limits);
        let forged = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0xC633_6400 + i));
        let ok = (0..100)
            .filter(|&i| p.admit_datagram(t0, forged(i), &format!("S{i}")).is_ok())
            .count();
        assert_eq!(ok, 10);
        let refused = p.admit_datagram(t0, forged(500), "S500").unwrap_err();
        assert_eq!(refused.reason, DropReason::DatagramRate);
        assert!(refused.retry_after > Duration::ZERO);
        // The budget refills at its rate; sessions (not forgeable) are not held up.
        assert!(p
            .admit_datagram(t0 + Duration::from_secs(1), forged(501), "S501")
            .is_ok());
        assert_eq!(p.admit(t0, forged(502), "S502"), Ok(()));
        // A single flooding address is stopped by its own limit first.
        let mut q = Policy::new(AccessList::default(), limits);
        let one = ip("192.0.2.9");
        assert_eq!(
            (0..20)
                .filter(|i| q.admit_datagram(t0, one, &format!("x{i}")).is_ok())
                .count(),
            5
        );
        assert!(q.admit_datagram(t0, forged(1), "other").is_ok());
    }

    #[test]
    fn node_status_goes_to_on_link_sources_each_a_few_times() {
        let t0 = Instant::now();
        let limits = Limits {
            status_audience: StatusAudience::OnLink,
            status_per_minute: 60,
            status_burst: 3,
            ..unlimited()
        };
        let access = AccessList {
            deny_networks: vec![parse_network("192.0.2.66").unwrap()],
            ..AccessList::default()
        };
        let mut p = Policy::new(access.clone(), limits);
        assert!(!p.admit_status(t0, ip("198.51.100.7"), false));
        assert!(!p.admit_status(t0, ip("192.0.2.66"), true));
        let lan = ip("192.0.2.7");
        assert_eq!((0..10).filter(|_| p.admit_status(t0, lan, true)).count(), 3);
        assert!(p.admit_status(t0, ip("192.0.2.8"), true));
        assert!(p.admit_status(t0 + Duration::from_secs(1), lan, true));
        let anyone = Limits {
            status_audience: StatusAudience::Anyone,
            ..limits
        };
        assert!(Policy::new(access.clone(), anyone).admit_status(t0, ip("198.51.100.7"), false));
        let nobody = Limits {
            status_audience: StatusAudience::Nobody,
            ..limits
        };
        assert!(!Policy::new(access, nobody).admit_status(t0, lan, true));
        for a in [
            StatusAudience::OnLink,
            StatusAudience::Anyone,
            StatusAudience::Nobody,
        ] {
            assert_eq!(a.as_str().parse::<StatusAudience>(), Ok(a));
        }
        assert!("everyone".parse::<StatusAudience>().is_err());
    }

    #[test]
    fn burst_then_rate_per_source() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, 5);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!((0..10).filter(|_| l.allow(t0, &a)).count(), 5);
        // Another source is not held up by the flood.
        assert!(l.allow(t0, &b));
        assert!(!l.allow(t0, &a));
        assert!(l.retry_after(&a) > Duration::ZERO);
        assert!(l.allow(t0 + Duration::from_secs(1), &a));
        assert!(!l.allow(t0 + Duration::from_secs(1), &a));
    }

    #[test]
    fn memory_is_bounded_and_zero_disables() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, 1);
        for i in 0..(MAX_KEYS as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i));
            l.allow(t0 + Duration::from_millis(u64::from(i)), &ip);
        }
        assert!(l.len() <= MAX_KEYS);
        let mut off = RateLimiter::new(0, 0);
        let a = ip("192.0.2.1");
        assert!((0..1000).all(|_| off.allow(t0, &a)));
    }

    #[test]
    fn one_sender_name_from_many_addresses_is_limited() {
        let t0 = Instant::now();
        let limits = Limits {
            source_per_minute: 600,
            source_burst: 60,
            sender_per_minute: 60,
            sender_burst: 3,
            ..unlimited()
        };
        let mut p = Policy::new(AccessList::default(), limits);
        for i in 1..=3u8 {
            assert_eq!(p.admit(t0, IpAddr::from([192, 0, 2, i]), "spammer"), Ok(()));
        }
        let refused = p.admit(t0, ip("192.0.2.9"), "SPAMMER ").unwrap_err();
        assert_eq!(refused.reason, DropReason::SenderRate);
        assert!(refused.retry_after > Duration::ZERO);
        assert_eq!(p.admit(t0, ip("192.0.2.9"), "alice"), Ok(()));
    }

    #[test]
    fn deny_wins_and_allow_lists_restrict() {
        let access = AccessList {
            allow_networks: vec![parse_network("192.0.2.0/24").unwrap()],
            deny_networks: vec![parse_network("192.0.2.66").unwrap()],
            allow_senders: vec![],
            deny_senders: vec!["SPAM*".parse().unwrap(), "B?D".parse().unwrap()],
        };
        assert!(access.admits_address(ip("192.0.2.7")));
        assert!(access.admits_address(ip("::ffff:192.0.2.7")));
        assert!(!access.admits_address(ip("192.0.2.66")));
        assert!(!access.admits_address(ip("198.51.100.1")));
        assert!(access.admits_sender("alice"));
        assert!(!access.admits_sender("spambot"));
        assert!(!access.admits_sender("bad"));
        assert!(access.admits_sender("bard"));
        let only_admins = AccessList {
            allow_senders: vec!["ADMIN*".parse().unwrap()],
            ..AccessList::default()
        };
        assert!(only_admins.admits_sender("administrator"));
        assert!(!only_admins.admits_sender("guest"));
        let mut p = Policy::new(access, unlimited());
        let now = Instant::now();
        assert_eq!(
            p.admit(now, ip("192.0.2.66"), "alice").unwrap_err().reason,
            DropReason::DeniedAddress
        );
        assert_eq!(
            p.admit(now, ip("192.0.2.7"), "SPAMMER").unwrap_err().reason,
            DropReason::DeniedSender
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!("".parse::<NamePattern>().is_err());
        assert!("ABCDEFGHIJKLMNOP".parse::<NamePattern>().is_err());
        assert!("ABCDEFGHIJKLMNO*".parse::<NamePattern>().is_ok());
        assert!(parse_network("192.0.2.0/33").is_err());
        assert!(parse_network("not-a-net").is_err());
    }

    fn reference_glob(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                reference_glob(&p[1..], t) || (!t.is_empty() && reference_glob(p, &t[1..]))
            }
            (Some(&c), Some(&x)) if c == '?' || c == x => reference_glob(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_the_recursive_definition(
            p in "[AB*?]{0,8}",
            t in "[AB]{0,10}",
        ) {
            let (p, t): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
            prop_assert_eq!(glob(&p, &t), reference_glob(&p, &t));
        }

        #[test]
        fn limiter_never_exceeds_burst_plus_rate(
            gaps in proptest::collection::vec(0u64..2000, 1..200),
        ) {
            let t0 = Instant::now();
            let mut l = RateLimiter::new(60, 5);
            let mut now = t0;
            let mut allowed = 0u64;
            for g in &gaps {
                now += Duration::from_millis(*g);
                if l.allow(now, &1u8) { allowed += 1; }
            }
            let elapsed = now.duration_since(t0).as_secs();
            prop_assert!(allowed <= 5 + elapsed + 1);
        }

        #[test]
        fn forged_datagram_sources_never_exceed_the_shared_budget(
            datagrams in proptest::collection::vec((any::<u32>(), 0u64..500), 1..300),
        ) {
            let t0 = Instant::now();
            let limits = Limits {
                source_per_minute: 600,
                source_burst: 60,
                sender_per_minute: 600,
                sender_burst: 60,
                datagram_per_minute: 60,
                datagram_burst: 10,
                ..unlimited()
            };
            let mut p = Policy::new(AccessList::default(), limits);
            let mut now = t0;
            let mut stored = 0u64;
            for (addr, gap) in &datagrams {
                now += Duration::from_millis(*gap);
                let source = IpAddr::from(std::net::Ipv4Addr::from(*addr));
                if p.admit_datagram(now, source, &format!("{addr:x}")).is_ok() {
                    stored += 1;
                }
            }
            let elapsed = now.duration_since(t0).as_secs();
            prop_assert!(stored <= 10 + elapsed + 1);
            prop_assert!(p.tracked_keys() <= 4 * MAX_KEYS);
        }
    }
}

//! The name directory between sites: what one site's gateway writes into the
//! shared KV bucket for each of its names, when it writes it again, which
//! entries a reader believes, and what a name query for a remote name is
//! answered with. Sans IO: times are Unix milliseconds passed in.
//!
//! # The entry (KV value), version 1
//! Written by another site, so read as untrusted input: at most
//! [`MAX_ENTRY_LEN`] bytes, every byte accounted for.
//!
//! | bytes | field |
//! |---|---|
//! | 0..3 | magic `NSD` |
//! | 3 | version, `1` |
//! | 4 | flags: bit 0 group name; other bits must be 0 |
//! | 5 | site length `n`, 1..=32 |
//! | 6..6+n | site name (`A`–`Z`, `0`–`9`, `-`, `_`) |
//! | +4 | owner's IPv4 address at its site |
//! | +4 | that site's gateway address |
//! | +8 | published time, Unix ms, big endian |
//!
//! # Refresh
//! On NATS 2.9 a KV bucket's `max_age` applies to every entry alike, so a
//! site re-puts each of its live names every `max_age / 3`; a name gone
//! locally is deleted at once; a reader ignores an entry published more than
//! `max_age` ago (its site stopped refreshing it) or more than
//! [`MAX_CLOCK_SKEW_MS`] in the future.
//!
//! # Conflicts
//! The bucket holds one key per name. A site writes a name only when the key
//! is free, already its own, or holds an entry that is no longer live
//! ([`may_claim`]): the first site to publish a name keeps it until it
//! deletes it or stops refreshing it; the other site's hosts still reach
//! their own copy, because local names are answered before the directory.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use netsend_wire::nbns::{rr_type, NbEntry, NodeType, Opcode, Packet};
use netsend_wire::NetbiosName;

use crate::sites::SiteName;

/// Largest entry a reader accepts (the longest version-1 entry is 57 bytes).
pub const MAX_ENTRY_LEN: usize = 64;
/// How far in the future a published time may lie before the entry is
/// ignored: clocks of two sites differ, but not by minutes.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// TTL in our answers for a remote name: short, since the name may move to
/// another site; a querier asks again after it.
pub const REMOTE_NAME_TTL: u32 = 600;

const MAGIC: &[u8; 3] = b"NSD";
const VERSION: u8 = 1;
const FLAG_GROUP: u8 = 0x01;
const MAX_SITE_LEN: usize = 32;

/// One site's claim on one name, as stored in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The site that holds the name.
    pub site: SiteName,
    /// The owner's address at its site.
    pub owner: Ipv4Addr,
    /// The address of that site's gateway.
    pub gateway: Ipv4Addr,
    /// Whether it is a group name.
    pub group: bool,
    /// When the site last wrote it, Unix ms (its clock).
    pub published_ms: i64,
}

/// Why an entry's bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// More than [`MAX_ENTRY_LEN`] bytes.
    #[error("directory entry longer than {MAX_ENTRY_LEN} bytes")]
    TooLong,
    /// The bytes end inside a field.
    #[error("directory entry ends inside {0}")]
    Truncated(&'static str),
    /// The magic is not `NSD`.
    #[error("not a directory entry")]
    Magic,
    /// A version this reader does not know.
    #[error("directory entry version {0} is not supported")]
    Version(u8),
    /// Flag bits this version does not define.
    #[error("directory entry has unknown flags {0:#04x}")]
    Flags(u8),
    /// The site name is not a valid site name.
    #[error("directory entry has an invalid site name")]
    Site,
    /// Bytes after the last field.
    #[error("directory entry has trailing data")]
    TrailingData,
}

impl DirectoryEntry {
    /// The entry's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let site = self.site.as_str().as_bytes();
        let mut out = Vec::with_capacity(6 + site.len() + 16);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(if self.group { FLAG_GROUP } else { 0 });
        // SiteName guarantees 1..=32 ASCII bytes.
        out.push(site.len() as u8);
        out.extend_from_slice(site);
        out.extend_from_slice(&self.owner.octets());
        out.extend_from_slice(&self.gateway.octets());
        out.extend_from_slice(&self.published_ms.to_be_bytes());
        out
    }

    /// Reads an entry another site wrote.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLong);
        }
        let mut rest = bytes;
        let mut take = |n: usize, what: &'static str| {
            let (head, tail) = rest
                .split_at_checked(n)
                .ok_or(EntryError::Truncated(what))?;
            rest = tail;
            Ok::<_, EntryError>(head)
        };
        if take(3, "magic")? != MAGIC {
            return Err(EntryError::Magic);
        }
        let version = take(1, "version")?[0];
        if version != VERSION {
            return Err(EntryError::Version(version));
        }
        let flags = take(1, "flags")?[0];
        if flags & !FLAG_GROUP != 0 {
            return Err(EntryError::Flags(flags));
        }
        let site_len = usize::from(take(1, "site length")?[0]);
        if site_len == 0 || site_len > MAX_SITE_LEN {
            return Err(EntryError::Site);
        }
        let site = std::str::from_utf8(take(site_len, "site")?).map_err(|_| EntryError::Site)?;
        let site = SiteName::new(site).map_err(|_| EntryError::Site)?;
        // Only the canonical (upper-case) spelling is accepted.
        if site.as_str().len() != site_len {
            return Err(EntryError::Site);
        }
        let addr = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        let owner = addr(take(4, "owner address")?);
        let gateway = addr(take(4, "gateway address")?);
        let time = take(8, "published time")?;
        let published_ms = i64::from_be_bytes(
            time.try_into()
                .map_err(|_| EntryError::Truncated("published time"))?,
        );
        if !rest.is_empty() {
            return Err(EntryError::TrailingData);
        }
        let entry = Self {
            site,
            owner,
            gateway,
            group: flags & FLAG_GROUP != 0,
            published_ms,
        };
        if entry.to_bytes() != bytes {
            return Err(EntryError::Site);
        }
        Ok(entry)
    }

    /// Whether a reader at `now_ms` believes the entry: published at most
    /// `max_age_ms` ago and not further than [`MAX_CLOCK_SKEW_MS`] ahead.
    pub fn is_live(&self, now_ms: i64, max_age_ms: i64) -> bool {
        let age = now_ms.saturating_sub(self.published_ms);
        age < max_age_ms && age > -MAX_CLOCK_SKEW_MS
    }
}

/// Whether site `me` may write its entry for a name whose key now holds
/// `current` (None: absent or deleted): when it is free, ours already, or no
/// longer live. The first site to publish a name keeps it.
pub fn may_claim(
    current: Option<&DirectoryEntry>,
    me: &SiteName,
    now_ms: i64,
    max_age_ms: i64,
) -> bool {
    current.is_none_or(|c| c.site == *me || !c.is_live(now_ms, max_age_ms))
}

/// Which names of a site go into the directory: unique names of the
/// messenger (`<03>`), workstation (`<00>`) and file server (`<20>`)
/// services, so NET SEND reaches aliases and `smbclient` reaches `smbd` by
/// name. Group names (the workgroup, `<1C>` lists) exist at every site and
/// stay local; the wildcard is never a name.
pub fn is_published(name: &NetbiosName, group: bool) -> bool {
    use netsend_wire::name::suffix;
    !group
        && !name.is_wildcard()
        && matches!(
            name.suffix(),
            suffix::MESSENGER | suffix::WORKSTATION | suffix::SERVER
        )
}

/// A name this site holds now, as the publisher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalName {
    /// The name with its suffix.
    pub name: NetbiosName,
    /// The owner's address at this site.
    pub owner: Ipv4Addr,
}

/// A write the publisher wants done in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write this entry for the name (new, moved or due for refresh).
    Put(NetbiosName, DirectoryEntry),
    /// The name is gone here: delete its key if it is still ours.
    Delete(NetbiosName),
}

/// The publishing side of one site: which of its names to write or delete
/// and when each is due again. At most `cap` names are published; beyond
/// that names are left out (lowest names first kept, so the choice is
/// stable) and counted in [`Publisher::left_out`].
#[derive(Debug, Clone)]
pub struct Publisher {
    site: SiteName,
    gateway: Ipv4Addr,
    max_age_ms: i64,
    cap: usize,
    /// What we last wrote for each name, and when.
    written: BTreeMap<NetbiosName, (Ipv4Addr, i64)>,
    /// Names another site held first, at their last try.
    elsewhere: BTreeSet<NetbiosName>,
    left_out: usize,
}

impl Publisher {
    /// A publisher for `site`, whose gateway is at `gateway`, into a bucket
    /// whose entries live `max_age_ms`.
    pub fn new(site: SiteName, gateway: Ipv4Addr, max_age_ms: i64, cap: usize) -> Self {
        Self {
            site,
            gateway,
            max_age_ms,
            cap,
            written: BTreeMap::new(),
            elsewhere: BTreeSet::new(),
            left_out: 0,
        }
    }

    /// How often every live name is written again: a third of `max_age`.
    pub fn refresh_interval_ms(&self) -> i64 {
        (self.max_age_ms / 3).max(1)
    }

    /// Names over the cap at the last [`Publisher::plan`].
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// The changes due at `now_ms` for the names held now: new or moved
    /// names and names due for refresh are put, names gone are deleted.
    /// Call [`Publisher::written`] / [`Publisher::deleted`] for each change
    /// once the bucket took it; a change that failed comes back next time.
    pub fn plan(&mut self, now_ms: i64, local: &[LocalName]) -> Vec<Change> {
        let mut held: BTreeMap<NetbiosName, Ipv4Addr> = BTreeMap::new();
        for l in local {
            held.entry(l.name).or_insert(l.owner);
        }
        self.left_out = held.len().saturating_sub(self.cap);
        let held: BTreeMap<_, _> = held.into_iter().take(self.cap).collect();
        let mut changes: Vec<Change> = self
            .written
            .keys()
            .filter(|n| !held.contains_key(n))
            .map(|n| Change::Delete(*n))
            .collect();
        let refresh = self.refresh_interval_ms();
        for (name, owner) in held {
            let due = self.written.get(&name).is_none_or(|&(was, at)| {
                was != owner || now_ms.saturating_sub(at) >= refresh || now_ms < at
            });
            if due {
                changes.push(Change::Put(
                    name,
                    DirectoryEntry {
                        site: self.site.clone(),
                        owner,
                        gateway: self.gateway,
                        group: false,
                        published_ms: now_ms,
                    },
                ));
            }
        }
        changes
    }

    /// The bucket took the put of `name` at `at_ms`; it is due again after
    /// the interval.
    pub fn written(&mut self, name: NetbiosName, owner: Ipv4Addr, at_ms: i64) {
        self.written.insert(name, (owner, at_ms));
        self.elsewhere.remove(&name);
    }

    /// Another site holds `name` ([`may_claim`] said no) at `at_ms`: it is
    /// tried again after the interval. True when it was not so before (worth
    /// a log line).
    pub fn held_elsewhere(&mut self, name: NetbiosName, owner: Ipv4Addr, at_ms: i64) -> bool {
        self.written.insert(name, (owner, at_ms));
        self.elsewhere.insert(name)
    }

    /// The delete of `name` is done (or the key was no longer ours).
    pub fn deleted(&mut self, name: &NetbiosName) {
        self.written.remove(name);
        self.elsewhere.remove(name);
    }

    /// Names of this site in the bucket now.
    pub fn published(&self) -> usize {
        self.written.len() - self.elsewhere.len()
    }

    /// Names of this site another site held first.
    pub fn conflicts(&self) -> usize {
        self.elsewhere.len()
    }

    /// Forget what was written (after a reconnect: the bucket may have
    /// been recreated), so the next plan puts every name again.
    pub fn reset(&mut self) {
        self.written.clear();
        self.elsewhere.clear();
    }
}

/// A change the reader makes to the gateway's in-memory directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorChange {
    /// The name is held at another site, here.
    Upsert(NetbiosName, DirectoryEntry),
    /// The name is no longer known at another site.
    Remove(NetbiosName),
}

/// The reading side: which entries of the bucket a site believes, kept in
/// step with the bucket's revisions, bounded per site and in all. Its own
/// site's entries, entries it cannot read and entries no longer live are
/// left out (counted in [`Mirror::refused`]).
#[derive(Debug, Clone)]
pub struct Mirror {
    me: SiteName,
    max_age_ms: i64,
    per_site_cap: usize,
    total_cap: usize,
    known: BTreeMap<NetbiosName, (DirectoryEntry, u64)>,
    per_site: BTreeMap<SiteName, usize>,
    /// The revision of the last delete seen per name, so an older put that
    /// arrives after it is not believed.
    deleted: BTreeMap<NetbiosName, u64>,
    refused: u64,
}

impl Mirror {
    /// The reader of site `me`, for a bucket whose entries live
    /// `max_age_ms`, keeping at most `per_site_cap` names of one site and
    /// `total_cap` in all.
    pub fn new(me: SiteName, max_age_ms: i64, per_site_cap: usize, total_cap: usize) -> Self {
        Self {
            me,
            max_age_ms,
            per_site_cap,
            total_cap,
            known: BTreeMap::new(),
            per_site: BTreeMap::new(),
            deleted: BTreeMap::new(),
            refused: 0,
        }
    }

    /// Names known at other sites.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Whether no name of another site is known.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Entries left out since the start: unreadable, not live, or over a cap.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The names known per site, in site order.
    pub fn sites(&self) -> Vec<(SiteName, usize)> {
        self.per_site.iter().map(|(s, n)| (s.clone(), *n)).collect()
    }

    fn forget(&mut self, name: &NetbiosName) -> Option<MirrorChange> {
        let (entry, _) = self.known.remove(name)?;
        if let Some(n) = self.per_site.get_mut(&entry.site) {
            *n -= 1;
            if *n == 0 {
                self.per_site.remove(&entry.site);
            }
        }
        Some(MirrorChange::Remove(*name))
    }

    /// The bucket holds `value` for `name` at `revision` (seen at `now_ms`).
    pub fn put(
        &mut self,
        name: NetbiosName,
        revision: u64,
        value: &[u8],
        now_ms: i64,
    ) -> Option<MirrorChange> {
        let newer_than_known = self.known.get(&name).is_none_or(|&(_, r)| revision > r);
        let after_delete = self.deleted.get(&name).is_none_or(|&r| revision > r);
        if !newer_than_known || !after_delete {
            return None;
        }
        self.deleted.remove(&name);
        let entry = match DirectoryEntry::parse(value) {
            Ok(e) if e.site == self.me => return self.forget(&name),
            Ok(e) if e.is_live(now_ms, self.max_age_ms) => e,
            _ => {
                self.refused += 1;
                return self.forget(&name);
            }
        };
        let moved = self
            .known
            .get(&name)
            .is_some_and(|(e, _)| e.site != entry.site);
        if moved || !self.known.contains_key(&name) {
            let site_full =
                self.per_site.get(&entry.site).copied().unwrap_or(0) >= self.per_site_cap;
            let all_full = self.known.len() >= self.total_cap && !moved;
            if site_full || all_full {
                self.refused += 1;
                return self.forget(&name);
            }
            self.forget(&name);
            *self.per_site.entry(entry.site.clone()).or_insert(0) += 1;
        }
        self.known.insert(name, (entry.clone(), revision));
        Some(MirrorChange::Upsert(name, entry))
    }

    /// The bucket deleted (or purged) `name` at `revision`.
    pub fn delete(&mut self, name: NetbiosName, revision: u64) -> Option<MirrorChange> {
        if self.known.get(&name).is_some_and(|&(_, r)| r >= revision) {
            return None;
        }
        if self.deleted.len() < self.total_cap || self.deleted.contains_key(&name) {
            self.deleted.insert(name, revision);
        }
        self.forget(&name)
    }

    /// Forgets the entries no longer live at `now_ms`: their site stopped
    /// refreshing them (on NATS 2.9 an entry aged out of the bucket is not
    /// announced to watchers).
    pub fn expire(&mut self, now_ms: i64) -> Vec<MirrorChange> {
        let gone: Vec<NetbiosName> = self
            .known
            .iter()
            .filter(|(_, (e, _))| !e.is_live(now_ms, self.max_age_ms))
            .map(|(n, _)| *n)
            .collect();
        gone.iter().filter_map(|n| self.forget(n)).collect()
    }

    /// Replaces everything with a fresh read of the bucket (after a
    /// reconnect): the changes that bring the directory from the old state
    /// to the new one.
    pub fn resync(
        &mut self,
        snapshot: &[(NetbiosName, u64, Vec<u8>)],
        now_ms: i64,
    ) -> Vec<MirrorChange> {
        let old: Vec<NetbiosName> = self.known.keys().copied().collect();
        self.known.clear();
        self.per_site.clear();
        self.deleted.clear();
        let mut changes: Vec<MirrorChange> = snapshot
            .iter()
            .filter_map(|(name, revision, value)| self.put(*name, *revision, value, now_ms))
            .collect();
        changes.extend(
            old.into_iter()
                .filter(|n| !self.known.contains_key(n))
                .map(MirrorChange::Remove),
        );
        changes
    }
}

/// How a gateway answers for a remote name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// With its own address on the interface the query came in on; the
    /// gateway then carries the traffic (sites that cannot reach each other).
    Proxy,
    /// With the owner's address at its site (routed sites).
    Direct,
}

/// Where the answer to a query for a name comes from, in order: the host's
/// own names, then the local WINS table, then the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The name is ours (the responder answers it as usual).
    Own,
    /// The local WINS server holds it (it answers as usual).
    LocalWins,
    /// Another site holds it.
    Remote {
        /// The owner's address at its site.
        owner: Ipv4Addr,
    },
    /// Nobody we know.
    Unknown,
}

/// Who answers a query for a name: the first of own names, the local WINS
/// table and the directory that has it.
pub fn holder(own: bool, local_wins: bool, remote_owner: Option<Ipv4Addr>) -> Holder {
    match (own, local_wins, remote_owner) {
        (true, _, _) => Holder::Own,
        (false, true, _) => Holder::LocalWins,
        (false, false, Some(owner)) => Holder::Remote { owner },
        (false, false, None) => Holder::Unknown,
    }
}

/// The address a remote name is answered with: ours on the arrival
/// interface in proxy mode, the owner's in direct mode.
pub fn answer_address(mode: AnswerMode, owner: Ipv4Addr, arrival: Ipv4Addr) -> Ipv4Addr {
    match mode {
        AnswerMode::Proxy => arrival,
        AnswerMode::Direct => owner,
    }
}

/// The name a request is a plain name query for (not node status, not a
/// response), if it is one.
pub fn queried_name(request: &Packet) -> Option<NetbiosName> {
    let question = request.question()?;
    (!request.flags.response
        && request.flags.opcode() == Opcode::QUERY
        && question.qtype == rr_type::NB
        && !question.name.name.is_wildcard())
    .then_some(question.name.name)
}

/// The positive query response for a remote name answered with `address`,
/// in the responder's format (one unique B-node entry), with
/// [`REMOTE_NAME_TTL`]; None if `request` is not a plain name query.
pub fn remote_answer(request: &Packet, address: Ipv4Addr) -> Option<Packet> {
    queried_name(request)?;
    let question = request.question()?;
    Some(Packet::positive_query_response(
        request.trn_id,
        question.name.clone(),
        REMOTE_NAME_TTL,
        vec![NbEntry::new(false, NodeType::B, address)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn site(s: &str) -> SiteName {
        SiteName::new(s).unwrap()
    }

    fn entry() -> DirectoryEntry {
        DirectoryEntry {
            site: site("NORTH"),
            owner: Ipv4Addr::new(192, 0, 2, 10),
            gateway: Ipv4Addr::new(192, 0, 2, 1),
            group: false,
            published_ms: 1_764_000_000_000,
        }
    }

    #[test]
    fn an_entry_round_trips_and_its_bytes_are_fixed() {
        let e = entry();
        let bytes = e.to_bytes();
        assert_eq!(&bytes[..6], b"NSD\x01\x00\x05");
        assert_eq!(&bytes[6..11], b"NORTH");
        assert_eq!(&bytes[11..15], &[192, 0, 2, 10]);
        assert_eq!(&bytes[15..19], &[192, 0, 2, 1]);
        assert_eq!(bytes.len(), 27);
        assert_eq!(DirectoryEntry::parse(&bytes), Ok(e));
        let longest = DirectoryEntry {
            site: site(&"S".repeat(32)),
            ..entry()
        };
        assert!(longest.to_bytes().len() <= MAX_ENTRY_LEN);
    }

    #[test]
    fn bad_entries_are_refused_by_cause() {
        let good = entry().to_bytes();
        let with = |i: usize, b: u8| {
            let mut v = good.clone();
            v[i] = b;
            v
        };
        assert_eq!(
            DirectoryEntry::parse(&with(0, b'X')),
            Err(EntryError::Magic)
        );
        assert_eq!(
            DirectoryEntry::parse(&with(3, 2)),
            Err(EntryError::Version(2))
        );
        assert_eq!(
            DirectoryEntry::parse(&with(4, 0x80)),
            Err(EntryError::Flags(0x80))
        );
        assert_eq!(DirectoryEntry::parse(&with(5, 0)), Err(EntryError::Site));
        assert_eq!(DirectoryEntry::parse(&with(5, 33)), Err(EntryError::Site));
        assert_eq!(DirectoryEntry::parse(&with(6, b'n')), Err(EntryError::Site));
        assert_eq!(DirectoryEntry::parse(&with(6, b'.')), Err(EntryError::Site));
        assert_eq!(
            DirectoryEntry::parse(&good[..good.len() - 1]),
            Err(EntryError::Truncated("published time"))
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(DirectoryEntry::parse(&long), Err(EntryError::TrailingData));
        assert_eq!(DirectoryEntry::parse(&[0; 65]), Err(EntryError::TooLong));
        assert_eq!(
            DirectoryEntry::parse(b""),
            Err(EntryError::Truncated("magic"))
        );
    }

    #[test]
    fn an_entry_lives_max_age_and_not_from_far_in_the_future() {
        let e = entry();
        let t = e.published_ms;
        assert!(e.is_live(t, 60_000));
        assert!(e.is_live(t + 59_999, 60_000));
        assert!(!e.is_live(t + 60_000, 60_000));
        assert!(e.is_live(t - MAX_CLOCK_SKEW_MS + 1, 60_000));
        assert!(!e.is_live(t - MAX_CLOCK_SKEW_MS, 60_000));
    }

    #[test]
    fn the_first_site_keeps_a_name_until_it_lapses() {
        let north = entry();
        let t = north.published_ms;
        assert!(may_claim(None, &site("SOUTH"), t, 60_000));
        assert!(may_claim(Some(&north), &site("NORTH"), t, 60_000));
        assert!(!may_claim(Some(&north), &site("SOUTH"), t + 1, 60_000));
        assert!(may_claim(Some(&north), &site("SOUTH"), t + 60_000, 60_000));
    }

    #[test]
    fn only_unique_service_names_are_published() {
        let n = |s: u8| NetbiosName::new("ALICE", s).unwrap();
        assert!(is_published(&n(0x03), false));
        assert!(is_published(&n(0x00), false));
        assert!(is_published(&n(0x20), false));
        assert!(!is_published(&n(0x00), true));
        assert!(!is_published(&n(0x1D), false));
        assert!(!is_published(&NetbiosName::WILDCARD, false));
    }

    fn local(name: &str, last: u8) -> LocalName {
        LocalName {
            name: NetbiosName::new(name, 3).unwrap(),
            owner: Ipv4Addr::new(192, 0, 2, last),
        }
    }

    fn apply(p: &mut Publisher, changes: &[Change], now: i64) {
        for c in changes {
            match c {
                Change::Put(n, e) => p.written(*n, e.owner, now),
                Change::Delete(n) => p.deleted(n),
            }
        }
    }

    #[test]
    fn the_publisher_puts_new_names_refreshes_at_a_third_and_deletes_gone_ones() {
        let mut p = Publisher::new(site("NORTH"), Ipv4Addr::new(192, 0, 2, 1), 90_000, 10);
        assert_eq!(p.refresh_interval_ms(), 30_000);
        let names = [local("ALICE", 10), local("BOB", 11)];
        let first = p.plan(0, &names);
        assert_eq!(first.len(), 2);
        assert!(matches!(&first[0], Change::Put(n, e)
            if *n == names[0].name && e.owner == names[0].owner && e.published_ms == 0
                && e.gateway == Ipv4Addr::new(192, 0, 2, 1) && e.site == site("NORTH")));
        apply(&mut p, &first, 0);
        assert!(p.plan(29_999, &names).is_empty());
        // A failed put comes back: nothing was recorded for it.
        assert_eq!(p.plan(30_000, &names).len(), 2);
        let again = p.plan(30_000, &names);
        apply(&mut p, &again, 30_000);
        // BOB moves, ALICE leaves.
        let moved = [local("BOB", 12)];
        let changes = p.plan(31_000, &moved);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0], Change::Delete(names[0].name));
        assert!(
            matches!(&changes[1], Change::Put(n, e) if *n == moved[0].name && e.owner == moved[0].owner)
        );
        apply(&mut p, &changes, 31_000);
        assert!(p.plan(32_000, &moved).is_empty());
        // A clock stepping back puts again rather than waiting.
        assert_eq!(p.plan(1_000, &moved).len(), 1);
        p.reset();
        assert_eq!(p.plan(32_000, &moved).len(), 1);
        // A name another site holds is counted, logged once, retried later.
        assert!(p.held_elsewhere(moved[0].name, moved[0].owner, 32_000));
        assert!(!p.held_elsewhere(moved[0].name, moved[0].owner, 32_000));
        assert_eq!((p.published(), p.conflicts()), (0, 1));
        assert!(p.plan(33_000, &moved).is_empty());
        p.written(moved[0].name, moved[0].owner, 62_000);
        assert_eq!((p.published(), p.conflicts()), (1, 0));
        assert_eq!(p.plan(63_000, &[]), [Change::Delete(moved[0].name)]);
    }

    #[test]
    fn the_publisher_keeps_to_its_cap_with_a_stable_choice() {
        let mut p = Publisher::new(site("NORTH"), Ipv4Addr::new(192, 0, 2, 1), 90_000, 2);
        let names = [local("CAROL", 3), local("ALICE", 1), local("BOB", 2)];
        let plan = p.plan(0, &names);
        let put: Vec<_> = plan
            .iter()
            .map(|c| match c {
                Change::Put(n, _) => *n,
                Change::Delete(n) => *n,
            })
            .collect();
        assert_eq!(put, [names[1].name, names[2].name]);
        assert_eq!(p.left_out(), 1);
    }

    #[test]
    fn own_names_then_local_wins_then_the_directory() {
        let owner = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(holder(true, true, Some(owner)), Holder::Own);
        assert_eq!(holder(false, true, Some(owner)), Holder::LocalWins);
        assert_eq!(holder(false, false, Some(owner)), Holder::Remote { owner });
        assert_eq!(holder(false, false, None), Holder::Unknown);
        let arrival = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(answer_address(AnswerMode::Proxy, owner, arrival), arrival);
        assert_eq!(answer_address(AnswerMode::Direct, owner, arrival), owner);
    }

    #[test]
    fn a_remote_name_is_answered_like_our_own() {
        let name = NetbiosName::new("BOB", 3).unwrap();
        let query = Packet::name_query(0x1234, name, true);
        let reply = remote_answer(&query, Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        let bytes = reply.to_bytes().unwrap();
        let parsed = Packet::parse(&bytes).unwrap();
        assert!(parsed.flags.response);
        assert_eq!(parsed.trn_id, 0x1234);
        assert_eq!(parsed.answers[0].ttl, REMOTE_NAME_TTL);
        assert_eq!(parsed.answers, reply.answers);
        assert!(!reply.flags.broadcast);
        let status = Packet::node_status_request(1, NetbiosName::WILDCARD, false);
        assert!(remote_answer(&status, Ipv4Addr::new(192, 0, 2, 1)).is_none());
    }

    fn remote(site_name: &str, last: u8, at: i64) -> Vec<u8> {
        DirectoryEntry {
            site: site(site_name),
            owner: Ipv4Addr::new(198, 51, 100, last),
            gateway: Ipv4Addr::new(198, 51, 100, 1),
            group: false,
            published_ms: at,
        }
        .to_bytes()
    }

    #[test]
    fn the_mirror_believes_other_sites_live_entries_in_revision_order() {
        let mut m = Mirror::new(site("NORTH"), 90_000, 10, 100);
        let bob = NetbiosName::new("BOB", 3).unwrap();
        let alice = NetbiosName::new("ALICE", 3).unwrap();
        assert!(
            matches!(m.put(bob, 5, &remote("SOUTH", 7, 0), 0), Some(MirrorChange::Upsert(n, e))
            if n == bob && e.owner == Ipv4Addr::new(198, 51, 100, 7))
        );
        // An older revision arriving late is not believed.
        assert_eq!(m.put(bob, 4, &remote("SOUTH", 8, 0), 0), None);
        assert!(
            matches!(m.put(bob, 6, &remote("SOUTH", 8, 0), 0), Some(MirrorChange::Upsert(_, e))
            if e.owner == Ipv4Addr::new(198, 51, 100, 8))
        );
        // Our own entries are never in the directory.
        assert_eq!(
            m.put(alice, 7, &entry().to_bytes(), entry().published_ms),
            None
        );
        assert_eq!(m.sites(), [(site("SOUTH"), 1)]);
        // A delete older than what we know is ignored; a newer one removes,
        // and a put older than the delete does not bring it back.
        assert_eq!(m.delete(bob, 6), None);
        assert_eq!(m.delete(bob, 8), Some(MirrorChange::Remove(bob)));
        assert_eq!(m.put(bob, 7, &remote("SOUTH", 8, 0), 0), None);
        assert!(m.is_empty() && m.sites().is_empty());
        // Garbage and stale entries are refused and counted.
        assert_eq!(m.put(alice, 9, b"junk", 0), None);
        assert_eq!(m.put(alice, 10, &remote("SOUTH", 9, 0), 90_000), None);
        assert_eq!(m.refused(), 2);
    }

    #[test]
    fn the_mirror_forgets_lapsed_entries_and_keeps_to_its_caps() {
        let mut m = Mirror::new(site("NORTH"), 90_000, 2, 3);
        let n = |s: &str| NetbiosName::new(s, 3).unwrap();
        assert!(m.put(n("A1"), 1, &remote("SOUTH", 1, 0), 0).is_some());
        assert!(m.put(n("A2"), 2, &remote("SOUTH", 2, 50_000), 0).is_some());
        assert_eq!(m.put(n("A3"), 3, &remote("SOUTH", 3, 0), 0), None);
        assert!(m.put(n("B1"), 4, &remote("EAST", 1, 0), 0).is_some());
        assert_eq!(m.put(n("B2"), 5, &remote("EAST", 2, 0), 0), None);
        assert_eq!(m.refused(), 2);
        // Moving a known name to another site is not blocked by the total.
        assert!(m.put(n("A1"), 6, &remote("EAST", 9, 0), 0).is_some());
        assert_eq!(m.sites(), [(site("EAST"), 2), (site("SOUTH"), 1)]);
        assert_eq!(m.expire(89_999), []);
        let mut gone = m.expire(90_000);
        gone.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(gone.len(), 2);
        assert_eq!(m.sites(), [(site("SOUTH"), 1)]);
    }

    #[test]
    fn a_resync_removes_what_the_bucket_no_longer_holds() {
        let mut m = Mirror::new(site("NORTH"), 90_000, 10, 100);
        let n = |s: &str| NetbiosName::new(s, 3).unwrap();
        m.put(n("OLD"), 1, &remote("SOUTH", 1, 0), 0);
        m.put(n("KEPT"), 2, &remote("SOUTH", 2, 0), 0);
        let changes = m.resync(
            &[
                (n("KEPT"), 2, remote("SOUTH", 2, 0)),
                (n("NEW"), 3, remote("EAST", 3, 0)),
            ],
            0,
        );
        assert_eq!(changes.len(), 3);
        assert!(changes.contains(&MirrorChange::Remove(n("OLD"))));
        assert_eq!(m.sites(), [(site("EAST"), 1), (site("SOUTH"), 1)]);
    }

    proptest! {
        #[test]
        fn any_entry_round_trips(
            s in "[A-Z0-9_-]{1,32}",
            owner in any::<u32>(),
            gateway in any::<u32>(),
            group in any::<bool>(),
            published_ms in any::<i64>(),
        ) {
            let e = DirectoryEntry {
                site: SiteName::new(&s).unwrap(),
                owner: owner.into(),
                gateway: gateway.into(),
                group,
                published_ms,
            };
            let bytes = e.to_bytes();
            prop_assert!(bytes.len() <= MAX_ENTRY_LEN);
            prop_assert_eq!(DirectoryEntry::parse(&bytes), Ok(e));
        }

        #[test]
        fn any_bytes_parse_without_panic_and_re_encode_exactly(
            bytes in proptest::collection::vec(any::<u8>(), 0..80)
        ) {
            crate::fuzzing::directory(&bytes);
        }
    }
}

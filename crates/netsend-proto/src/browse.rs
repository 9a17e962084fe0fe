//! Browsing (what `NET VIEW` shows), sans IO: when we announce ourselves on
//! `\MAILSLOT\BROWSE` ([`Announcer`], one per broadcast interface), what we
//! take from the announcements we hear ([`hear`]), and the host list built from
//! them ([`HostList`]: expiry at three announced periods, a hard bound on
//! entries, whether a host runs a messenger from its node status).
//!
//! Time is passed in; nothing here reads a clock or touches a socket.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netsend_wire::browse::{
    is_browse_mailslot, server_type, Announcement, AnnouncementKind, AnnouncementRequest,
    BrowseFrame,
};
use netsend_wire::name::suffix;
use netsend_wire::nbds::{flags, Datagram, Header, MessageType};
use netsend_wire::nbns::{NodeName, Packet, RData};
use netsend_wire::smb::mailslot::MailslotWrite;
use netsend_wire::{CodePage, EncodeError, NetbiosName};

use crate::mailslot::MailslotDatagram;

/// What netsend announces itself as: a workstation on Unix. Not a file
/// server: it answers no share enumeration on 139.
pub const SERVER_TYPE: u32 = server_type::WORKSTATION | server_type::SERVER_UNIX;
/// The announcement intervals of MS-BRWS §3.2.6: 1, 2, 4, 8, then 12
/// minutes.
pub const INTERVALS: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(240),
    Duration::from_secs(480),
    Duration::from_secs(720),
];
/// Longest wait before answering an AnnouncementRequest (a random delay
/// below it, so that a LAN does not answer all at once).
pub const MAX_REQUEST_DELAY: Duration = Duration::from_secs(10);
/// Most hosts kept in the list (all workgroups together).
pub const MAX_HOSTS: usize = 1024;
/// Most workgroups kept in the list.
pub const MAX_DOMAINS: usize = 64;
/// Most entries (hosts and workgroups) one source address may hold.
pub const MAX_PER_SOURCE: usize = 4;
/// Longest an entry lives without a new announcement, whatever its
/// periodicity says (three times the 12-minute maximum, with room).
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a node status answer (messenger or not) is trusted.
pub const STATUS_TTL: Duration = Duration::from_secs(600);

/// The interval after the `n`th announcement (0-based).
pub fn interval(n: usize) -> Duration {
    INTERVALS[n.min(INTERVALS.len() - 1)]
}

/// Who we are, for the announcements of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Our computer name.
    pub name: NetbiosName,
    /// Our workgroup, `<00>`.
    pub workgroup: NetbiosName,
    /// The comment (OEM bytes, at most 43).
    pub comment: Vec<u8>,
    /// The interface address (the datagram header's source).
    pub address: Ipv4Addr,
    /// The datagram port (138).
    pub port: u16,
}

/// The announcement schedule of one interface.
///
/// Call order: [`Announcer::start`], then send what [`Announcer::poll_transmit`]
/// returns (to the interface's broadcast address) and call
/// [`Announcer::handle_timeout`] at [`Announcer::poll_timeout`]; feed each
/// AnnouncementRequest to [`Announcer::handle_request`]; [`Announcer::stop`]
/// at the end queues the type 0 announcement.
#[derive(Debug)]
pub struct Announcer {
    identity: Identity,
    sent: usize,
    next: Option<Instant>,
    answer_at: Option<Instant>,
    seed: u64,
    datagram_id: u16,
    out: Vec<Vec<u8>>,
}

impl Announcer {
    /// An announcer that has not started; `seed` (random) picks the answer
    /// delays and datagram ids.
    pub fn new(identity: Identity, seed: u64) -> Self {
        Self {
            identity,
            sent: 0,
            next: None,
            answer_at: None,
            seed,
            datagram_id: (seed & 0xFFFF) as u16,
            out: Vec::new(),
        }
    }

    /// Announces at once and asks every member of the workgroup to announce
    /// itself (one AnnouncementRequest, so our list fills at start).
    pub fn start(&mut self, now: Instant) {
        self.announce(now);
        let request = AnnouncementRequest::new(self.identity.name.trimmed());
        if let Ok(request) = request {
            let frame = BrowseFrame::AnnouncementRequest(request);
            self.queue(frame, self.identity.workgroup);
        }
    }

    /// An AnnouncementRequest was heard: announce once more within
    /// [`MAX_REQUEST_DELAY`] (one answer pending at most, so a flood of
    /// requests costs one announcement).
    pub fn handle_request(&mut self, now: Instant) {
        if self.next.is_none() || self.answer_at.is_some() {
            return;
        }
        let delay = crate::resolver::next_trn_id(&mut self.seed);
        let millis = u64::from(delay) % MAX_REQUEST_DELAY.as_millis() as u64;
        self.answer_at = Some(now + Duration::from_millis(millis));
    }

    /// Sends what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        if now >= next {
            self.sent += 1;
            self.answer_at = None;
            self.announce(now);
        } else if self.answer_at.is_some_and(|t| now >= t) {
            self.answer_at = None;
            let left = next - now;
            self.queue_announcement(SERVER_TYPE, left);
        }
    }

    /// Announces that we are going down (type 0, periodicity 0); nothing is
    /// sent after it.
    pub fn stop(&mut self) {
        if self.next.take().is_some() {
            self.answer_at = None;
            self.queue_announcement(0, Duration::ZERO);
        }
    }

    /// The next instant [`Announcer::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next, self.answer_at) {
            (Some(n), Some(a)) => Some(n.min(a)),
            (n, _) => n,
        }
    }

    /// The next datagram to broadcast.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| self.out.remove(0))
    }

    /// The periodicity our last regular announcement carried.
    pub fn current_interval(&self) -> Duration {
        interval(self.sent)
    }

    fn announce(&mut self, now: Instant) {
        let period = interval(self.sent);
        self.next = Some(now + period);
        self.queue_announcement(SERVER_TYPE, period);
    }

    fn queue_announcement(&mut self, server_type: u32, period: Duration) {
        let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
        let announcement = Announcement::new(
            AnnouncementKind::Host,
            self.identity.name.trimmed(),
            server_type,
            millis,
            &self.identity.comment,
        );
        if let Ok(a) = announcement {
            let to = self.identity.workgroup.with_suffix(suffix::MASTER_BROWSER);
            self.queue(BrowseFrame::Announcement(a), to);
        }
    }

    fn queue(&mut self, frame: BrowseFrame, to: NetbiosName) {
        self.datagram_id = self.datagram_id.wrapping_add(1);
        if let Ok(bytes) = browse_datagram(&self.identity, self.datagram_id, &frame, to) {
            self.out.push(bytes);
        }
    }
}

/// A `\MAILSLOT\BROWSE` datagram from `identity` to the group `to`, in
/// Samba's layout (direct group, first and only fragment).
pub fn browse_datagram(
    identity: &Identity,
    id: u16,
    frame: &BrowseFrame,
    to: NetbiosName,
) -> Result<Vec<u8>, EncodeError> {
    let write = MailslotWrite::to_mailslot(netsend_wire::browse::BROWSE, frame.to_bytes()?);
    Datagram::Data {
        header: Header {
            msg_type: MessageType::DIRECT_GROUP,
            flags: flags::FIRST | flags::NODE_H,
            id,
            source_ip: identity.address,
            source_port: identity.port,
        },
        packet_offset: 0,
        source_name: identity.name.with_suffix(suffix::WORKSTATION).into(),
        destination_name: to.into(),
        user_data: write.to_bytes()?,
    }
    .to_bytes()
}

/// A browse frame heard on UDP 138, with the names it was sent between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The datagram's source name.
    pub source: NetbiosName,
    /// The datagram's destination name.
    pub destination: NetbiosName,
    /// The frame.
    pub frame: BrowseFrame,
}

/// Decodes a `\MAILSLOT\BROWSE` datagram; anything else (a fragment, another
/// mailslot, a malformed frame, an opcode we do not know) is `None`.
pub fn hear(bytes: &[u8]) -> Option<Heard> {
    let datagram = MailslotDatagram::parse(bytes)?;
    if !is_browse_mailslot(&datagram.write.name) {
        return None;
    }
    Some(Heard {
        source: datagram.source,
        destination: datagram.destination,
        frame: BrowseFrame::parse(&datagram.write.data).ok()?,
    })
}

/// Whether `heard` asks the members of `workgroup` (its `<00>`, `<1d>` or
/// `<1e>` name; nmbd uses `<1e>`) to announce themselves.
pub fn is_request_for(heard: &Heard, workgroup: &NetbiosName) -> bool {
    matches!(heard.frame, BrowseFrame::AnnouncementRequest(_))
        && heard.destination.trimmed() == workgroup.trimmed()
        && matches!(
            heard.destination.suffix(),
            suffix::WORKSTATION | suffix::MASTER_BROWSER | suffix::BROWSER_ELECTION
        )
}

/// What is known of a host's messenger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Messenger {
    /// Not asked yet (or the answer is stale).
    Unknown,
    /// Its node status lists these `<03>` names.
    Names(Vec<String>),
    /// Its node status lists no `<03>` name.
    None,
    /// It did not answer a node status query.
    NoAnswer,
}

/// One host of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// Its name (decoded from OEM, not sanitised).
    pub name: String,
    /// Its workgroup.
    pub workgroup: String,
    /// Its comment (not sanitised).
    pub comment: String,
    /// Its `SV_TYPE_*` bits.
    pub server_type: u32,
    /// OS version it announced.
    pub os_version: (u8, u8),
    /// The address it announced from.
    pub address: Ipv4Addr,
    /// When it drops out unless it announces again.
    pub expires: Instant,
    /// Its messenger, as far as known.
    pub messenger: Messenger,
    status_at: Option<Instant>,
}

/// One workgroup of the list (from DomainAnnouncement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEntry {
    /// The workgroup.
    pub name: String,
    /// Its master browser's name.
    pub master: String,
    /// The address it was announced from.
    pub address: Ipv4Addr,
    /// When it drops out.
    pub expires: Instant,
}

/// Why an announcement was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The list is full.
    Full,
    /// The source address holds its share of entries already.
    SourceFull,
    /// An empty or `*` name (nmbd drops those too).
    BadName,
}

/// The hosts and workgroups heard, bounded and expiring.
#[derive(Debug, Default)]
pub struct HostList {
    hosts: HashMap<(String, String), HostEntry>,
    domains: HashMap<String, DomainEntry>,
}

/// How long an entry announced with `periodicity_ms` lives.
pub fn lifetime(periodicity_ms: u32) -> Duration {
    (Duration::from_millis(u64::from(periodicity_ms)) * 3)
        .clamp(Duration::from_secs(1), MAX_LIFETIME)
}

fn key(text: &str) -> String {
    text.to_ascii_uppercase()
}

impl HostList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes what an announcement heard from `peer` at `now` says. A
    /// HostAnnouncement or LocalMasterAnnouncement adds or refreshes a host of
    /// the workgroup it was sent to (type 0 removes it); a DomainAnnouncement
    /// a workgroup. Other frames change nothing.
    pub fn observe(
        &mut self,
        now: Instant,
        peer: Ipv4Addr,
        heard: &Heard,
        code_page: CodePage,
    ) -> Result<(), Refused> {
        self.expire(now);
        let BrowseFrame::Announcement(a) = &heard.frame else {
            return Ok(());
        };
        let name = code_page.decode(a.name());
        if name.is_empty() || name.starts_with('*') {
            return Err(Refused::BadName);
        }
        let expires = now + lifetime(a.periodicity_ms);
        match a.kind {
            AnnouncementKind::Domain => {
                let k = key(&name);
                if a.server_type == 0 {
                    self.domains.remove(&k);
                    return Ok(());
                }
                if !self.domains.contains_key(&k) {
                    self.admit(peer, self.domains.len() >= MAX_DOMAINS)?;
                }
                let master = code_page.decode(&a.comment);
                self.domains.insert(
                    k,
                    DomainEntry {
                        name,
                        master,
                        address: peer,
                        expires,
                    },
                );
            }
            AnnouncementKind::Host | AnnouncementKind::LocalMaster => {
                let workgroup = heard.destination.to_text(code_page);
                let k = (key(&workgroup), key(&name));
                if a.server_type == 0 {
                    self.hosts.remove(&k);
                    return Ok(());
                }
                let previous = self.hosts.remove(&k);
                if previous.is_none() {
                    self.admit(peer, self.hosts.len() >= MAX_HOSTS)?;
                }
                // A host that moved or restarted is asked again.
                let (messenger, status_at) = match previous {
                    Some(p) if p.address == peer => (p.messenger, p.status_at),
                    _ => (Messenger::Unknown, None),
                };
                self.hosts.insert(
                    k,
                    HostEntry {
                        name,
                        workgroup,
                        comment: code_page.decode(&a.comment),
                        server_type: a.server_type,
                        os_version: (a.os_major, a.os_minor),
                        address: peer,
                        expires,
                        messenger,
                        status_at,
                    },
                );
            }
        }
        Ok(())
    }

    fn admit(&self, peer: Ipv4Addr, full: bool) -> Result<(), Refused> {
        if full {
            return Err(Refused::Full);
        }
        let held = self.hosts.values().filter(|h| h.address == peer).count()
            + self.domains.values().filter(|d| d.address == peer).count();
        if held >= MAX_PER_SOURCE {
            return Err(Refused::SourceFull);
        }
        Ok(())
    }

    /// Drops every entry whose time is up.
    pub fn expire(&mut self, now: Instant) {
        self.hosts.retain(|_, h| h.expires > now);
        self.domains.retain(|_, d| d.expires > now);
    }

    /// The hosts of `workgroup` at `now`, by name.
    pub fn hosts(&self, now: Instant, workgroup: &str) -> Vec<HostEntry> {
        let wanted = key(workgroup);
        let mut out: Vec<HostEntry> = self
            .hosts
            .iter()
            .filter(|((w, _), h)| *w == wanted && h.expires > now)
            .map(|(_, h)| h.clone())
            .collect();
        out.sort_by_key(|e| key(&e.name));
        out
    }

    /// The workgroups at `now`, by name; `own` is listed even when no
    /// master has announced it (with no master).
    pub fn domains(&self, now: Instant, own: &str) -> Vec<DomainEntry> {
        let mut out: Vec<DomainEntry> = self
            .domains
            .values()
            .filter(|d| d.expires > now)
            .cloned()
            .collect();
        if !out.iter().any(|d| key(&d.name) == key(own)) {
            out.push(DomainEntry {
                name: own.to_ascii_uppercase(),
                master: String::new(),
                address: Ipv4Addr::UNSPECIFIED,
                expires: now,
            });
        }
        out.sort_by_key(|e| key(&e.name));
        out
    }

    /// Hosts of `workgroup` whose messenger is unknown or known for longer
    /// than [`STATUS_TTL`]: (name, address), at most `limit`.
    pub fn wants_status(
        &self,
        now: Instant,
        workgroup: &str,
        limit: usize,
    ) -> Vec<(String, Ipv4Addr)> {
        self.hosts(now, workgroup)
            .into_iter()
            .filter(|h| {
                h.status_at
                    .is_none_or(|t| now.saturating_duration_since(t) >= STATUS_TTL)
            })
            .take(limit)
            .map(|h| (h.name, h.address))
            .collect()
    }

    /// Records the node status answer of the host `name` at `address`:
    /// `Some(names)` its name table, `None` no answer.
    pub fn record_status(
        &mut self,
        now: Instant,
        name: &str,
        address: Ipv4Addr,
        names: Option<&[NodeName]>,
        code_page: CodePage,
    ) {
        let messenger = match names {
            None => Messenger::NoAnswer,
            Some(names) => match messenger_names(names, code_page) {
                m if m.is_empty() => Messenger::None,
                m => Messenger::Names(m),
            },
        };
        for ((_, n), h) in &mut self.hosts {
            if *n == key(name) && h.address == address {
                h.messenger = messenger.clone();
                h.status_at = Some(now);
            }
        }
    }

    /// Hosts and workgroups held (for status and bounds).
    pub fn len(&self) -> (usize, usize) {
        (self.hosts.len(), self.domains.len())
    }
}

/// The unique `<03>` names of a node status name table, as text.
pub fn messenger_names(names: &[NodeName], code_page: CodePage) -> Vec<String> {
    names
        .iter()
        .filter(|n| n.name.suffix() == suffix::MESSENGER && n.flags & 0x8000 == 0)
        .map(|n| n.name.to_text(code_page))
        .collect()
}

/// A node status request for the wildcard name, as `nmblookup -A` sends it.
pub fn status_request(trn_id: u16) -> Vec<u8> {
    Packet::node_status_request(trn_id, NetbiosName::WILDCARD, false)
        .to_bytes()
        .unwrap_or_default()
}

/// The name table of a node status response to `trn_id`, if `bytes` is one.
pub fn status_names(bytes: &[u8], trn_id: u16) -> Option<Vec<NodeName>> {
    let packet = Packet::parse(bytes).ok()?;
    if !packet.flags.response || packet.trn_id != trn_id {
        return None;
    }
    packet.answers.iter().find_map(|rr| match &rr.rdata {
        RData::NodeStatus(status) => Some(status.names.clone()),
        _ => None,
    })
}

/// Fuzz entry point: a datagram heard on 138 goes into a host list; the
/// list never exceeds its bounds and never panics.
#[doc(hidden)]
pub fn fuzz_hear(data: &[u8]) {
    let now = Instant::now();
    let mut list = HostList::new();
    if let Some(heard) = hear(data) {
        let _ = list.observe(now, Ipv4Addr::new(192, 0, 2, 9), &heard, CodePage::Cp850);
        let (hosts, domains) = list.len();
        assert!(hosts <= 1 && domains <= 1);
        let _ = list.hosts(now, "WORKGROUP");
        let _ = is_request_for(&heard, &NetbiosName::WILDCARD);
    }
    let _ = status_names(data, 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Lan;

    fn identity(name: &str, address: [u8; 4]) -> Identity {
        Identity {
            name: NetbiosName::new(name, 0).unwrap(),
            workgroup: NetbiosName::new("WORKGROUP", 0).unwrap(),
            comment: b"netsend messenger".to_vec(),
            address: Ipv4Addr::from(address),
            port: 138,
        }
    }

    fn announcement_of(bytes: &[u8]) -> (Heard, Announcement) {
        let heard = hear(bytes).unwrap();
        match &heard.frame {
            BrowseFrame::Announcement(a) => {
                let a = a.clone();
                (heard, a)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_schedule_grows_and_each_frame_carries_the_real_next_interval() {
        let t0 = Instant::now();
        let mut a = Announcer::new(identity("ALPHA", [192, 0, 2, 1]), 7);
        a.start(t0);
        let (heard, first) = announcement_of(&a.poll_transmit().unwrap());
        assert_eq!(heard.destination.to_string(), "WORKGROUP<1d>");
        assert_eq!(heard.source.to_string(), "ALPHA<00>");
        assert_eq!(first.server_type, SERVER_TYPE);
        assert_eq!(first.comment, b"netsend messenger");
        let request = hear(&a.poll_transmit().unwrap()).unwrap();
        assert!(is_request_for(
            &request,
            &NetbiosName::new("WORKGROUP", 0).unwrap()
        ));
        assert_eq!(request.destination.to_string(), "WORKGROUP<00>");
        assert!(a.poll_transmit().is_none());
        let mut now = t0;
        let mut period = first.periodicity_ms;
        let mut gaps = Vec::new();
        for _ in 0..7 {
            let next = a.poll_timeout().unwrap();
            assert_eq!(next - now, Duration::from_millis(u64::from(period)));
            gaps.push((next - now).as_secs() / 60);
            a.handle_timeout(next - Duration::from_millis(1));
            assert!(a.poll_transmit().is_none(), "nothing before it is due");
            a.handle_timeout(next);
            let (_, frame) = announcement_of(&a.poll_transmit().unwrap());
            period = frame.periodicity_ms;
            now = next;
        }
        assert_eq!(gaps, [1, 2, 4, 8, 12, 12, 12]);
    }

    #[test]
    fn a_request_is_answered_soon_once_with_the_time_left() {
        for seed in 0..50 {
            let t0 = Instant::now();
            let mut a = Announcer::new(identity("ALPHA", [192, 0, 2, 1]), seed);
            a.start(t0);
            while a.poll_transmit().is_some() {}
            let asked = t0 + Duration::from_secs(20);
            for _ in 0..100 {
                a.handle_request(asked);
            }
            let at = a.poll_timeout().unwrap();
            assert!(at >= asked && at < asked + MAX_REQUEST_DELAY, "seed {seed}");
            a.handle_timeout(at);
            let (_, answer) = announcement_of(&a.poll_transmit().unwrap());
            assert!(a.poll_transmit().is_none(), "one answer to a flood");
            let regular = t0 + INTERVALS[0];
            assert_eq!(
                u128::from(answer.periodicity_ms),
                (regular - at).as_millis(),
                "the real time to the next announcement"
            );
            assert_eq!(a.poll_timeout(), Some(regular));
        }
    }

    #[test]
    fn stop_says_type_zero_and_then_nothing() {
        let t0 = Instant::now();
        let mut a = Announcer::new(identity("ALPHA", [192, 0, 2, 1]), 1);
        a.handle_request(t0);
        assert_eq!(a.poll_timeout(), None, "a request before start is ignored");
        a.start(t0);
        while a.poll_transmit().is_some() {}
        a.stop();
        let (_, last) = announcement_of(&a.poll_transmit().unwrap());
        assert_eq!((last.server_type, last.periodicity_ms), (0, 0));
        assert_eq!(a.poll_timeout(), None);
        a.stop();
        a.handle_request(t0);
        assert!(a.poll_transmit().is_none() && a.poll_timeout().is_none());
    }

    #[test]
    fn hosts_see_each_other_and_a_silent_host_drops_out_after_three_periods() {
        let mut lan = Lan::new(&[[192, 0, 2, 1], [192, 0, 2, 2], [192, 0, 2, 3]]);
        let t0 = lan.now;
        let mut announcers = vec![
            Some(Announcer::new(identity("ALPHA", [192, 0, 2, 1]), 1)),
            Some(Announcer::new(identity("BETA", [192, 0, 2, 2]), 2)),
            None,
        ];
        let mut lists = vec![HostList::new(), HostList::new(), HostList::new()];
        for a in announcers.iter_mut().flatten() {
            a.start(t0);
        }
        lan.drive_browse(&mut announcers, &mut lists, t0 + Duration::from_secs(30));
        for list in &lists {
            let names: Vec<String> = list
                .hosts(lan.now, "workgroup")
                .into_iter()
                .map(|h| h.name)
                .collect();
            assert_eq!(names, ["ALPHA", "BETA"]);
        }
        let beta = &lists[2].hosts(lan.now, "WORKGROUP")[1];
        assert_eq!(
            (beta.address, beta.comment.as_str()),
            (Ipv4Addr::new(192, 0, 2, 2), "netsend messenger")
        );
        // Hours of announcing keep both listed.
        lan.drive_browse(
            &mut announcers,
            &mut lists,
            t0 + Duration::from_secs(3 * 3600),
        );
        assert_eq!(lists[2].hosts(lan.now, "WORKGROUP").len(), 2);
        // BETA goes silent (cut off, no type 0): listed until three of its
        // last periods (12 min) have passed, gone after.
        lan.cut[1] = true;
        let cut_at = lan.now;
        lan.drive_browse(
            &mut announcers,
            &mut lists,
            cut_at + Duration::from_secs(3 * 720 - 720),
        );
        assert_eq!(
            lists[2].hosts(lan.now, "WORKGROUP").len(),
            2,
            "still within its expiry"
        );
        lan.drive_browse(
            &mut announcers,
            &mut lists,
            cut_at + Duration::from_secs(3 * 720 + 1),
        );
        let names: Vec<String> = lists[2]
            .hosts(lan.now, "WORKGROUP")
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, ["ALPHA"]);
        // ALPHA stops: its type 0 removes it at once.
        announcers[0].as_mut().unwrap().stop();
        let now = lan.now;
        lan.drive_browse(&mut announcers, &mut lists, now);
        assert!(lists[2].hosts(lan.now, "WORKGROUP").is_empty());
    }

    #[test]
    fn a_request_heard_on_the_lan_brings_an_answer_within_the_bound() {
        let mut lan = Lan::new(&[[192, 0, 2, 1], [192, 0, 2, 2]]);
        let t0 = lan.now;
        let mut announcers = vec![
            Some(Announcer::new(identity("ALPHA", [192, 0, 2, 1]), 3)),
            Some(Announcer::new(identity("LATE", [192, 0, 2, 2]), 4)),
        ];
        let mut lists = vec![HostList::new(), HostList::new()];
        announcers[0].as_mut().unwrap().start(t0);
        lan.drive_browse(&mut announcers, &mut lists, t0 + Duration::from_secs(5));
        // LATE starts (and asks) after ALPHA's first announcement: ALPHA
        // answers well before its next regular one.
        let late = lan.now;
        announcers[1].as_mut().unwrap().start(late);
        lan.drive_browse(&mut announcers, &mut lists, late + MAX_REQUEST_DELAY);
        assert!(t0 + INTERVALS[0] > late + MAX_REQUEST_DELAY);
        let names: Vec<String> = lists[1]
            .hosts(lan.now, "WORKGROUP")
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, ["ALPHA", "LATE"]);
    }

    fn host_frame(name: &str, workgroup: &str, periodicity_ms: u32) -> Heard {
        Heard {
            source: NetbiosName::from_oem_lossy(name.as_bytes(), 0),
            destination: NetbiosName::new(workgroup, suffix::MASTER_BROWSER).unwrap(),
            frame: BrowseFrame::Announcement(
                Announcement::new(
                    AnnouncementKind::Host,
                    name.as_bytes(),
                    1,
                    periodicity_ms,
                    b"x",
                )
                .unwrap(),
            ),
        }
    }

    #[test]
    fn a_flood_of_invented_hosts_cannot_grow_the_list() {
        let now = Instant::now();
        let mut list = HostList::new();
        let one = Ipv4Addr::new(192, 0, 2, 66);
        for i in 0..100 {
            let r = list.observe(
                now,
                one,
                &host_frame(&format!("FAKE{i}"), "WORKGROUP", 720_000),
                CodePage::Cp850,
            );
            assert_eq!(r.is_ok(), i < MAX_PER_SOURCE, "{i}");
        }
        for i in 0..5000u32 {
            let peer = Ipv4Addr::from(0x0A00_0000 + i);
            let _ = list.observe(
                now,
                peer,
                &host_frame(&format!("H{i}"), "WORKGROUP", 720_000),
                CodePage::Cp850,
            );
        }
        assert_eq!(list.len().0, MAX_HOSTS);
        // A host already listed still refreshes; a new one waits for room.
        let held = Ipv4Addr::from(0x0A00_0000 + 7);
        assert!(list
            .observe(
                now,
                held,
                &host_frame("H7", "WORKGROUP", 720_000),
                CodePage::Cp850
            )
            .is_ok());
        let r = list.observe(
            now,
            Ipv4Addr::new(192, 0, 2, 5),
            &host_frame("REAL", "WORKGROUP", 60_000),
            CodePage::Cp850,
        );
        assert_eq!(r, Err(Refused::Full));
        // Invented hosts expire like any other; then there is room.
        let later = now + lifetime(720_000) + Duration::from_secs(1);
        assert!(list
            .observe(
                later,
                Ipv4Addr::new(192, 0, 2, 5),
                &host_frame("REAL", "WORKGROUP", 60_000),
                CodePage::Cp850
            )
            .is_ok());
        assert_eq!(list.len().0, 1);
        let bad = host_frame("*SMBSERVER", "WORKGROUP", 1);
        assert_eq!(
            list.observe(later, one, &bad, CodePage::Cp850),
            Err(Refused::BadName)
        );
        assert_eq!(lifetime(u32::MAX), MAX_LIFETIME);
        assert_eq!(lifetime(0), Duration::from_secs(1));
    }

    #[test]
    fn messenger_names_come_from_node_status_and_are_cached() {
        let now = Instant::now();
        let mut list = HostList::new();
        let peer = Ipv4Addr::new(192, 0, 2, 7);
        let announce = |list: &mut HostList, at: Instant, from: Ipv4Addr, name: &str, ms: u32| {
            let frame = host_frame(name, "WORKGROUP", ms);
            list.observe(at, from, &frame, CodePage::Cp850).unwrap();
        };
        announce(&mut list, now, peer, "GAMMA", 60_000);
        announce(&mut list, now, peer, "DELTA", 60_000);
        assert_eq!(list.wants_status(now, "WORKGROUP", 10).len(), 2);
        assert_eq!(list.wants_status(now, "WORKGROUP", 1).len(), 1);
        let table = [
            NodeName {
                name: NetbiosName::new("GAMMA", 0).unwrap(),
                flags: 0x0400,
            },
            NodeName {
                name: NetbiosName::new("GAMMA", 3).unwrap(),
                flags: 0x0400,
            },
            NodeName {
                name: NetbiosName::new("ALICE", 3).unwrap(),
                flags: 0x0400,
            },
            NodeName {
                name: NetbiosName::new("WORKGROUP", 3).unwrap(),
                flags: 0x8400,
            },
        ];
        list.record_status(now, "GAMMA", peer, Some(&table), CodePage::Cp850);
        list.record_status(now, "DELTA", peer, Some(&table[..1]), CodePage::Cp850);
        let hosts = list.hosts(now, "WORKGROUP");
        assert_eq!(hosts[0].messenger, Messenger::None);
        assert_eq!(
            hosts[1].messenger,
            Messenger::Names(vec!["GAMMA".into(), "ALICE".into()])
        );
        assert!(list
            .wants_status(now + Duration::from_secs(60), "WORKGROUP", 10)
            .is_empty());
        // A refresh keeps the answer; stale after STATUS_TTL; a move forgets it.
        announce(&mut list, now, peer, "GAMMA", 60_000);
        assert!(matches!(
            list.hosts(now, "WORKGROUP")[1].messenger,
            Messenger::Names(_)
        ));
        let later = now + STATUS_TTL;
        announce(&mut list, later, peer, "GAMMA", 900_000);
        announce(&mut list, later, peer, "DELTA", 900_000);
        assert_eq!(list.wants_status(later, "WORKGROUP", 10).len(), 2);
        list.observe(
            later,
            Ipv4Addr::new(192, 0, 2, 8),
            &host_frame("GAMMA", "WORKGROUP", 60_000),
            CodePage::Cp850,
        )
        .unwrap();
        assert_eq!(
            list.hosts(later, "WORKGROUP")[1].messenger,
            Messenger::Unknown
        );
        list.record_status(later, "DELTA", peer, None, CodePage::Cp850);
        assert_eq!(
            list.hosts(later, "WORKGROUP")[0].messenger,
            Messenger::NoAnswer
        );
        // The request and its answer.
        let request = Packet::parse(&status_request(9)).unwrap();
        let status = netsend_wire::nbns::NodeStatus::new(table.to_vec(), [0; 6]);
        let reply = Packet::node_status_response(9, request.questions[0].name.clone(), status);
        let bytes = reply.to_bytes().unwrap();
        assert_eq!(status_names(&bytes, 9).unwrap().len(), 4);
        assert!(status_names(&bytes, 10).is_none());
        assert!(status_names(&status_request(9), 9).is_none());
    }

    #[test]
    fn nmbds_announcements_fill_the_list() {
        let dir = "/../netsend-wire/tests/captures/nmbd-lmb/";
        let read =
            |f: &str| std::fs::read(format!("{}{dir}{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let now = Instant::now();
        let peer = Ipv4Addr::new(192, 0, 2, 61);
        let mut list = HostList::new();
        for f in [
            "01-host-announcement.bin",
            "02-election.bin",
            "04-local-master-announcement.bin",
            "05-domain-announcement.bin",
        ] {
            list.observe(now, peer, &hear(&read(f)).unwrap(), CodePage::Cp850)
                .unwrap();
        }
        let hosts = list.hosts(now, "capgroup");
        assert_eq!(hosts.len(), 1);
        assert_eq!(
            (hosts[0].name.as_str(), hosts[0].comment.as_str()),
            ("LMBHOST", "Samba LMB capture")
        );
        assert_ne!(hosts[0].server_type & server_type::MASTER_BROWSER, 0);
        let domains = list.domains(now, "WORKGROUP");
        let names: Vec<(&str, &str)> = domains
            .iter()
            .map(|d| (d.name.as_str(), d.master.as_str()))
            .collect();
        assert_eq!(names, [("CAPGROUP", "LMBHOST"), ("WORKGROUP", "")]);
        let request = hear(&read("03-announcement-request.bin")).unwrap();
        assert!(is_request_for(
            &request,
            &NetbiosName::new("CAPGROUP", 0).unwrap()
        ));
        assert!(!is_request_for(
            &request,
            &NetbiosName::new("WORKGROUP", 0).unwrap()
        ));
        // nmbd's stop removes it.
        for f in ["06-local-master-stop.bin", "07-host-stop.bin"] {
            list.observe(now, peer, &hear(&read(f)).unwrap(), CodePage::Cp850)
                .unwrap();
        }
        assert!(list.hosts(now, "CAPGROUP").is_empty());
    }
}

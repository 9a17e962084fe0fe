//! Entry points shared by the fuzz targets and the tests.

use netsend_wire::nbss::check_frame;
use netsend_wire::oem::CodePage;

use crate::session::{Action, ServerSession, SessionConfig};

pub use crate::browse::fuzz_hear as hear;

/// Drives a server session with arbitrary bytes split into frames, as the TCP
/// driver does: it must never panic, and must never deliver more text than the
/// limit allows.
#[doc(hidden)]
pub fn session(data: &[u8]) {
    let config = SessionConfig::new(CodePage::Cp850);
    let mut session = ServerSession::new(config);
    let mut rest = data;
    let is_ours = |n: &netsend_wire::NetbiosName| n.trimmed().first() == Some(&b'A');
    while let Ok(Some(len)) = check_frame(rest, session.max_frame_len()) {
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        match session.handle_frame(frame, &is_ours) {
            Action::Close | Action::SendAndClose(_) => return,
            Action::Deliver { message, .. } => {
                assert!(message.text.len() <= 4 * config.max_message_len)
            }
            Action::Send(_) | Action::Nothing => {}
        }
    }
}

/// Drives the datagram receive path with arbitrary bytes, as the UDP driver
/// does: it must never panic, a message it accepts is addressed to us, and
/// the relay rule relays only a broadcast that came straight from an
/// off-link originator it relays for, and drops only our own copies.
#[doc(hidden)]
pub fn datagram(data: &[u8]) {
    use std::net::Ipv4Addr;

    use crate::interface::Interface;
    use crate::mailslot::Addressed;
    use crate::relay::{RelayRule, Verdict};

    let workgroup = netsend_wire::NetbiosName::new("WORKGROUP", 0).expect("valid name");
    let is_ours = |n: &netsend_wire::NetbiosName| n.trimmed().first() == Some(&b'A');
    let Some(received) = crate::mailslot::receive(data, &workgroup, &is_ours, CodePage::Cp850)
    else {
        return;
    };
    assert!(received.message.text.len() <= 4 * data.len() + 16);
    let ours = [Interface {
        address: Ipv4Addr::new(192, 0, 2, 130),
        broadcast: Some(Ipv4Addr::new(192, 0, 2, 255)),
        netmask: Some(Ipv4Addr::new(255, 255, 255, 128)),
        mac: [0; 6],
    }];
    let relay_from: [ipnet::IpNet; 1] = ["192.0.2.0/24".parse().expect("valid network")];
    let rule = RelayRule {
        interfaces: &ours,
        relay_from: &relay_from,
    };
    let origin = received.origin;
    for peer in [origin, ours[0].address, Ipv4Addr::new(192, 0, 2, 10)] {
        match rule.judge(peer, origin, received.addressed) {
            Verdict::HeardBack => assert!(peer == ours[0].address && origin != peer),
            Verdict::Take { relay_to } if !relay_to.is_empty() => {
                assert_eq!(relay_to, [(ours[0].address, Ipv4Addr::new(192, 0, 2, 255))]);
                assert_eq!(received.addressed, Addressed::Broadcast);
                assert_eq!(peer, origin);
                assert!(
                    !ours[0].is_on_link(peer)
                        && relay_from[0].contains(&std::net::IpAddr::V4(peer))
                );
            }
            Verdict::Take { .. } => {}
        }
    }
}

/// Drives a resolution plan (a WINS server, then two broadcast addresses)
/// with arbitrary answers, as hostile hosts may send them. The data is
/// records `[what, src, len, bytes…]`: the datagram `bytes` comes from
/// `192.0.2.src`; `what` bit 0 feeds it at once (else the current wait ends
/// first), bit 1 gives it the transaction id of the last query. The plan
/// must never panic, decide within the time its queries allow, and connect
/// only to a session port.
#[doc(hidden)]
pub fn plan(data: &[u8]) {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use crate::plan::{Known, Next, PlanConfig, ResolvePlan};

    let interval = Duration::from_millis(250);
    let config = PlanConfig {
        session_port: 139,
        name_port: 137,
        wins: Some(Ipv4Addr::new(192, 0, 2, 1)),
        broadcast: vec![
            (Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 255)),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(198, 51, 100, 255)),
        ],
        retries: 3,
        interval,
    };
    // Three queries of three tries each, the last one waited out.
    let most = interval * 9;
    let name = netsend_wire::NetbiosName::new("BOB", 3).expect("valid name");
    let mut plan = ResolvePlan::new(name, config, Known::default(), 1);
    let t0 = Instant::now();
    let mut now = t0;
    let mut trn_id = [0u8; 2];
    let mut rest = data;
    for _ in 0..10_000 {
        match plan.poll(now) {
            Next::Send(query) => {
                trn_id.copy_from_slice(&query.bytes[..2]);
            }
            Next::Wait(until) => {
                let record = match rest {
                    [what, src, len, tail @ ..] => {
                        let (bytes, tail) = tail.split_at(usize::from(*len).min(tail.len()));
                        rest = tail;
                        Some((*what, *src, bytes.to_vec()))
                    }
                    _ => None,
                };
                if record.as_ref().is_none_or(|(what, ..)| what & 1 == 0) {
                    now = now.max(until);
                    plan.handle_timeout(now);
                }
                if let Some((what, src, mut bytes)) = record {
                    if what & 2 != 0 && bytes.len() >= 2 {
                        bytes[..2].copy_from_slice(&trn_id);
                    }
                    plan.handle_datagram(now, Ipv4Addr::new(192, 0, 2, src), &bytes);
                }
            }
            Next::Connect { address, .. } => {
                assert_eq!(address.port(), 139);
                assert!(now - t0 <= most, "{:?}", now - t0);
                return;
            }
            Next::Fail(_) | Next::Remote(_) => {
                assert!(now - t0 <= most, "{:?}", now - t0);
                return;
            }
        }
    }
    panic!("the resolution plan did not decide");
}

/// Sanitises arbitrary text and builds the terminal and notification texts,
/// the CLI's first lines and error details and the log field escape from it:
/// none may panic, none may hold a control character other than the line
/// ends (and the terminal banner's one BEL), a detail's continuation lines
/// are indented, and a log field holds no unsafe character at all.
#[doc(hidden)]
pub fn display(data: &[u8]) {
    use crate::display::{sanitize, Shown, TimeOfDay};
    let text = String::from_utf8_lossy(data);
    let clean = sanitize(&text);
    assert!(clean.chars().all(|c| c == '\n' || !c.is_control()));
    assert_eq!(sanitize(&clean), clean);
    let shown = Shown {
        from: &text,
        to: &text,
        text: &text,
        broadcast: data.first().is_some_and(|b| b & 1 == 1),
        time: TimeOfDay {
            hour: 23,
            minute: 59,
        },
        verified_host: data.get(1).is_some_and(|b| b & 1 == 1).then_some(&*text),
        claimed_by: Some(&text),
    };
    let terminal = shown.terminal_text(&text).replace("\r\n", "");
    assert_eq!(terminal.chars().filter(|c| c.is_control()).count(), 1);
    let body = shown.notification_body(true);
    assert!(body.chars().all(|c| c == '\n' || !c.is_control()));
    assert!(!body.contains('<'));
    assert!(!shown.summary().contains('\n'));
    // The CLI's listings, details and log fields.
    assert!(!crate::display::sanitize_first_line(&text)
        .chars()
        .any(char::is_control));
    let detail = crate::display::sanitize_detail(&text, "    ");
    assert!(detail.lines().skip(1).all(|l| l.starts_with("    ")));
    assert!(!detail.chars().any(|c| c != '\n' && c.is_control()));
    let logged = crate::display::escape_log(&text);
    assert!(!logged.chars().any(crate::display::is_unsafe_raw));
}

/// Reads arbitrary bytes as a receipt payload and as a receipt datagram, as
/// the datagram driver does: neither may panic, and an accepted payload is
/// written back byte for byte.
#[doc(hidden)]
pub fn receipt(data: &[u8]) {
    use crate::receipt::{from_datagram, Receipt};
    if let Ok(receipt) = Receipt::parse(data) {
        assert_eq!(
            receipt.to_bytes().expect("a parsed receipt re-encodes"),
            data
        );
    }
    if let Some(receipt) = from_datagram(data) {
        let again = Receipt::parse(&receipt.to_bytes().expect("re-encodes")).expect("re-parses");
        assert_eq!(again, receipt);
    }
}

/// Reads arbitrary bytes as a name directory entry, as a gateway reads what
/// another site wrote into the bucket: it must never panic, an accepted
/// entry is written back byte for byte, and judging its age never overflows.
#[doc(hidden)]
pub fn directory(data: &[u8]) {
    use crate::directory::{may_claim, DirectoryEntry, Mirror, MirrorChange};
    let me = crate::sites::SiteName::new("HERE").expect("valid site");
    let mut mirror = Mirror::new(me, 90_000, 1, 1);
    let name = netsend_wire::NetbiosName::from_raw([b'A'; 16]);
    for now in [0, i64::MAX] {
        match mirror.put(name, 1, data, now) {
            Some(MirrorChange::Upsert(_, e)) => assert_eq!(e.to_bytes(), data),
            Some(MirrorChange::Remove(_)) | None => {}
        }
        assert!(mirror.len() <= 1);
    }
    if let Ok(entry) = DirectoryEntry::parse(data) {
        assert_eq!(entry.to_bytes(), data);
        for now in [i64::MIN, 0, entry.published_ms, i64::MAX] {
            let live = entry.is_live(now, 90_000);
            assert!(may_claim(Some(&entry), &entry.site, now, 90_000));
            assert!(
                !live
                    || now
                        .checked_sub(entry.published_ms)
                        .is_some_and(|age| age < 90_000)
            );
        }
    }
}

/// Reads arbitrary bytes (the first two the transaction id asked for) as a
/// node status answer to a reply's request, and as a message text the away
/// rule reads: neither may panic, and the name a reply goes to is one of
/// the answer's unique names.
#[doc(hidden)]
pub fn reply(data: &[u8]) {
    use crate::reply::{computer_name, node_status_names};
    let Some((trn, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    if let Some(names) = node_status_names(rest, u16::from_be_bytes(*trn)) {
        if let Some(chosen) = computer_name(&names, netsend_wire::CodePage::Cp850) {
            assert!(!chosen.is_empty());
            assert!(names
                .iter()
                .any(|n| n.flags & netsend_wire::nbns::name_flags::GROUP == 0));
        }
    }
    let text = String::from_utf8_lossy(rest);
    let _ = crate::away::is_automatic(&text);
}

/// Drives the client side of a one-block message against arbitrary reply
/// bytes, as a hostile recipient may send them (the first byte sets the
/// seconds that pass between its frames): it must never panic, never write
/// more than the message's four frames, and once its deadline has passed it
/// fails, however many keep-alives came.
#[doc(hidden)]
pub fn sender(data: &[u8]) {
    use crate::sender::{ClientSession, SendOptions};
    use std::time::{Duration, Instant};
    let Some((&pace, mut rest)) = data.split_first() else {
        return;
    };
    let called = netsend_wire::NetbiosName::new("ALICE", 3).expect("valid name");
    let calling = netsend_wire::NetbiosName::new("BOB", 0).expect("valid name");
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(15);
    let options = SendOptions::default();
    let mut session =
        ClientSession::new(called, calling, "bob", "alice", "hi", options).with_deadline(deadline);
    let (mut written, mut elapsed) = (0, 0u64);
    loop {
        while session.poll_transmit().is_some() {
            written += 1;
        }
        assert!(written <= 4, "{written} frames for one block");
        if session.is_done() {
            return;
        }
        let Ok(Some(len)) = check_frame(rest, 1024) else {
            return;
        };
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        elapsed += u64::from(pace & 7);
        let now = t0 + Duration::from_secs(elapsed);
        if session.handle_timeout(now).is_err() || session.handle_frame(frame).is_err() {
            assert!(now >= deadline || session.poll_timeout().is_none());
            assert!(session.poll_transmit().is_none() && !session.is_done());
            return;
        }
        assert!(now < deadline);
    }
}

/// Drives the anti-spam policy with arbitrary events, 8 bytes each (kind,
/// gap in ms, IPv4 address, sender byte): session messages from addresses
/// and local users, MESSNGR datagrams, WINS writes and node status requests.
/// None may panic, its tables stay bounded, the datagrams and WINS writes
/// admitted from every source together never exceed their shared budgets,
/// and no off-link source is ever
/// answered a node status.
#[doc(hidden)]
pub fn policy(data: &[u8]) {
    use crate::policy::{AccessList, Limits, Policy, Source, StatusAudience, MAX_KEYS};
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};
    let limits = Limits {
        source_per_minute: 600,
        source_burst: 60,
        sender_per_minute: 120,
        sender_burst: 30,
        datagram_per_minute: 120,
        datagram_burst: 30,
        status_audience: StatusAudience::OnLink,
        status_per_minute: 30,
        status_burst: 10,
        browse_per_minute: 60,
        browse_burst: 10,
        wins_per_minute: 120,
        wins_burst: 60,
        wins_writes_per_second: 50,
    };
    let mut policy = Policy::new(AccessList::default(), limits);
    let t0 = Instant::now();
    let mut now = t0;
    let mut datagrams = 0u64;
    let mut wins = 0u64;
    for event in data.chunks_exact(8) {
        now += Duration::from_millis(u64::from(u16::from_le_bytes([event[1], event[2]])));
        let address = IpAddr::V4(Ipv4Addr::new(event[3], event[4], event[5], event[6]));
        let sender = format!("S{:02X}", event[7]);
        match event[0] % 5 {
            0 => drop(policy.admit(now, address, &sender)),
            3 => wins += u64::from(policy.admit_wins(now, address).is_ok()),
            1 => drop(policy.admit(now, Source::LocalUser(u32::from(event[7])), &sender)),
            2 => datagrams += u64::from(policy.admit_datagram(now, address, &sender).is_ok()),
            _ => {
                let on_link = event[0] & 0x80 != 0;
                let answered = policy.admit_status(now, address, on_link);
                assert!(on_link || !answered);
            }
        }
    }
    let minutes = now.duration_since(t0).as_secs_f64() / 60.0;
    assert!(datagrams as f64 <= 30.0 + 120.0 * minutes + 1.0);
    assert!(wins as f64 <= 50.0 + 50.0 * 60.0 * minutes + 1.0);
    assert!(policy.tracked_keys() <= 4 * MAX_KEYS);
}

/// Drives a B-node name table that holds a unique and a group name with
/// arbitrary datagrams, as the name service driver does. Each record is a
/// length byte, the last octet of the sender's address (192.0.2.x; ours is
/// .10), a pause in tens of ms, then that many bytes. It must never panic,
/// never send more than its retries allow, and never give a name up unless
/// another host answered a name query.
#[doc(hidden)]
pub fn names(data: &[u8]) {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::{Duration, Instant};

    use netsend_wire::nbns::{Opcode, Packet};

    use crate::registration::{NameState, NameTable, RegistrationConfig};

    let ours = Ipv4Addr::new(192, 0, 2, 10);
    let config = RegistrationConfig::default();
    let mut table = NameTable::new(ours, config, 7);
    let start = Instant::now();
    let mut now = start;
    let unique = netsend_wire::NetbiosName::new("ALICE", 3).expect("valid name");
    let group = netsend_wire::NetbiosName::new("WORKGROUP", 0).expect("valid name");
    table.register(now, unique, false, 1);
    table.register(now, group, true, 2);
    let mut sent = 0usize;
    let mut answered = false;
    let mut rest = data;
    while let [len, octet, pause, tail @ ..] = rest {
        let (bytes, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        now += Duration::from_millis(10 * u64::from(*pause));
        let src = Ipv4Addr::new(192, 0, 2, *octet);
        if let Ok(p) = Packet::parse(bytes) {
            answered |= p.flags.response && p.flags.opcode() == Opcode::QUERY && src != ours;
        }
        table.handle_datagram(now, SocketAddrV4::new(src, 137), bytes);
        table.handle_timeout(now);
        sent += std::iter::from_fn(|| table.poll_transmit()).count();
        while table.poll_event().is_some() {}
    }
    for name in [unique, group] {
        if let Some(NameState::Conflict { .. }) = table.state(&name) {
            assert!(
                answered,
                "{name} was given up without an answer from another host"
            );
        }
    }
    // Registrations, retries after conflicts and checks, each at most
    // `retries` packets per `interval`, for two names.
    let intervals = (now - start).as_millis() / config.interval.as_millis() + 2;
    assert!(
        sent as u128 <= 2 * u128::from(config.retries) * intervals,
        "{sent} packets"
    );
}
/// Reads arbitrary bytes as an inbox search text, as the control socket
/// does: it must never panic, and an indexed query must be one FTS5 phrase
/// of exactly the text.
#[doc(hidden)]
pub fn search(data: &[u8]) {
    use crate::search::{unquote, Search, MAX_SEARCH_LEN};
    let text = String::from_utf8_lossy(data);
    match Search::parse(&text) {
        Ok(Search::Indexed(query)) => {
            assert!(query.len() <= 2 * MAX_SEARCH_LEN + 2);
            assert_eq!(unquote(&query).as_deref(), Some(&*text));
        }
        // Lowercasing may add characters (U+0130 becomes two): the input's
        // count is what picks the scan.
        Ok(Search::Scan(s)) => {
            assert!(text.chars().count() < 3);
            assert_eq!(s, text.to_lowercase());
        }
        Ok(Search::All) => assert!(text.is_empty()),
        Err(_) => assert!(text.len() > MAX_SEARCH_LEN || text.contains('\0')),
    }
}

/// The trust decisions on peer-supplied names: a claimed host and sender
/// name (split at the first NUL) against pins, the table of verified names
/// and `require_verified_from`; marks are single clean lines.
#[doc(hidden)]
pub fn trust(data: &[u8]) {
    use crate::trust::{identify, mark_text, requires_verified, Identity, Names};
    let text = String::from_utf8_lossy(data);
    let (host, from) = text.split_once('\0').unwrap_or((&text, &text));
    let pins = vec![("HOSTA".to_owned(), [1u8; 32])];
    match identify(&pins, host, &[2u8; 32], true) {
        Identity::FirstContact(h) | Identity::KeyChanged { host: h } => {
            assert!(crate::trust::is_host_name(&h));
        }
        Identity::Known(_) => unreachable!("key 2 is pinned for no host"),
        Identity::Unknown => assert!(!crate::trust::is_host_name(host.trim())),
    }
    let _ = requires_verified(&["ADMIN*".to_owned(), from.to_owned()], from);
    let mut names = Names::new();
    names.mark(from, Some(host));
    let shown = mark_text(None, Some(host), from);
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    let _ = names.mark(from, None);
}

/// Drives the WINS server with arbitrary datagrams from a few sources, as
/// the name service driver does, time moving on between them: it must never
/// panic, every packet it sends must parse, and its table and challenges
/// stay within their bounds. Each datagram is `[source, length, bytes...]`.
#[doc(hidden)]
pub fn wins_server(data: &[u8]) {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::{Duration, SystemTime};

    use crate::responder::{Host, OwnedName};
    use crate::wins_server::{Action, Context, WinsServer, WinsServerConfig};

    let config = WinsServerConfig {
        max_names: 8,
        max_per_address: 3,
        max_group_members: 2,
        max_challenges: 2,
        ..Default::default()
    };
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut server = WinsServer::new(config, Vec::new(), start, 1);
    let own = [OwnedName {
        name: netsend_wire::NetbiosName::new("WINS", 0).expect("valid name"),
        group: false,
    }];
    let fallback = |n: &netsend_wire::NetbiosName| {
        (n.trimmed().first() == Some(&b'F')).then(|| vec![Ipv4Addr::new(198, 51, 100, 1)])
    };
    let cx = Context {
        own: Host {
            names: &own,
            address: Ipv4Addr::new(192, 0, 2, 1),
            mac: [0; 6],
        },
        fallback: Some(&fallback),
    };
    let mut now = start;
    let mut rest = data;
    for _ in 0..256 {
        let [src, len, tail @ ..] = rest else {
            break;
        };
        let (packet, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10 + (src & 7)), 137);
        server.handle_datagram(now, from, packet, &cx);
        now += Duration::from_secs(u64::from(src >> 3));
        server.handle_timeout(now);
        while let Some(action) = server.poll_action() {
            if let Action::Reply { packet, .. } | Action::Challenge { packet, .. } = action {
                netsend_wire::nbns::Packet::parse(&packet).expect("our packets parse");
            }
        }
        let (names, challenges) = server.size();
        assert!(names <= 8 && challenges <= 2);
    }
}

/// Reads arbitrary bytes as a datagram a site gateway heard, as the
/// datagram driver does: it must never panic, and what it publishes carries
/// the site and encodes.
#[doc(hidden)]
pub fn site_broadcast(data: &[u8]) {
    use netsend_wire::NetbiosName;
    let domains = vec![
        NetbiosName::new("WORKGROUP", 0).expect("a name"),
        NetbiosName::WILDCARD,
    ];
    let mut rule = crate::site_broadcast::SiteBroadcasts::new("FUZZ", domains);
    let peer = std::net::Ipv4Addr::new(192, 0, 2, 10);
    for now in [0, 1] {
        if let Some(Ok((b, id))) = rule.hear_datagram(data, peer, false, CodePage::Cp850, now) {
            assert_eq!(b.site, "FUZZ");
            assert!(id.starts_with("bcast-FUZZ-"));
            let _ = b.to_bytes();
        }
    }
}

use super::*;

use netsend_wire::nbns::{Flags, NodeType};
use proptest::prelude::*;

use crate::responder::OwnedName;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn bob() -> NetbiosName {
    NetbiosName::new("BOB", 0x20).unwrap()
}

fn group_name() -> NetbiosName {
    NetbiosName::new("STAFF", 0).unwrap()
}

fn client(address: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(address, 40_000)
}

/// A unicast registration of `name` for `address`, asking for `ttl`.
fn registration(trn: u16, name: NetbiosName, group: bool, address: Ipv4Addr, ttl: u32) -> Vec<u8> {
    let mut p = Packet::registration_request(trn, name, NbEntry::new(group, NodeType::H, address));
    p.flags.broadcast = false;
    p.additional[0].ttl = ttl;
    p.to_bytes().unwrap()
}

fn release(trn: u16, name: NetbiosName, address: Ipv4Addr) -> Vec<u8> {
    let mut p = Packet::release_request(trn, name, NbEntry::new(false, NodeType::H, address));
    p.flags.broadcast = false;
    p.to_bytes().unwrap()
}

fn query(trn: u16, name: NetbiosName) -> Vec<u8> {
    Packet::name_query(trn, name, false).to_bytes().unwrap()
}

fn no_names() -> Context<'static> {
    Context {
        own: Host {
            names: &[],
            address: SERVER,
            mac: [0; 6],
        },
        fallback: None,
    }
}

fn server() -> WinsServer {
    WinsServer::new(WinsServerConfig::default(), Vec::new(), start(), 0x7000)
}

fn actions(s: &mut WinsServer) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

/// The one reply in `actions`, parsed, with where it goes.
fn reply(actions: &[Action]) -> (SocketAddrV4, Packet) {
    let replies: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply { to, packet } => Some((*to, Packet::parse(packet).unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "{actions:?}");
    replies.into_iter().next().unwrap()
}

fn addresses(p: &Packet) -> Vec<Ipv4Addr> {
    match &p.answers[0].rdata {
        RData::Nb(e) => e.iter().map(|e| e.address).collect(),
        _ => Vec::new(),
    }
}

fn ask(s: &mut WinsServer, now: SystemTime, name: NetbiosName) -> Packet {
    s.handle_datagram(now, client(B), &query(9, name), &no_names());
    reply(&actions(s)).1
}

fn register(
    s: &mut WinsServer,
    now: SystemTime,
    trn: u16,
    address: Ipv4Addr,
    ttl: u32,
) -> Vec<Action> {
    s.handle_datagram(
        now,
        client(address),
        &registration(trn, bob(), false, address, ttl),
        &no_names(),
    );
    actions(s)
}

#[test]
fn a_new_name_is_committed_then_granted_with_a_clamped_ttl() {
    let mut s = server();
    let got = register(&mut s, start(), 1, A, 0);
    // Durable before acknowledged: the change comes before the answer.
    assert!(matches!(&got[0], Action::Persist(Change::Put(r)) if r.name == bob() && !r.group));
    let (to, p) = reply(&got);
    assert_eq!(to, client(A));
    assert_eq!((p.trn_id, p.flags.to_word()), (1, 0xAD80));
    assert_eq!(p.answers[0].ttl, 518_400, "TTL 0 asks for the longest");
    assert_eq!(addresses(&p), [A]);
    // Too short a TTL is raised to the minimum, too long cut to the maximum.
    let (_, p) = reply(&register(&mut s, start(), 2, A, 60));
    assert_eq!(p.answers[0].ttl, 21_600);
    let (_, p) = reply(&register(&mut s, start(), 3, A, u32::MAX));
    assert_eq!(p.answers[0].ttl, 518_400);
    let q = ask(&mut s, start(), bob());
    assert_eq!((q.flags.rcode(), addresses(&q)), (Rcode::OK, vec![A]));
    assert!(q.answers[0].ttl > 500_000);
    assert_eq!(
        ask(&mut s, start(), group_name()).flags.rcode(),
        Rcode::NAM_ERR
    );
    assert_eq!(s.counters().granted, 3);
    assert_eq!(s.counters().unknown, 1);
}

#[test]
fn a_refresh_by_the_owner_moves_the_expiry() {
    let mut s = server();
    register(&mut s, start(), 1, A, 21_600);
    let later = start() + Duration::from_secs(20_000);
    let mut p = Packet::refresh_request(2, bob(), 21_600, NbEntry::new(false, NodeType::H, A));
    p.flags.opcode = 9;
    s.handle_datagram(later, client(A), &p.to_bytes().unwrap(), &no_names());
    let (_, answer) = reply(&actions(&mut s));
    assert_eq!(answer.flags.rcode(), Rcode::OK);
    // Past the first expiry the refreshed name is still answered.
    let after = start() + Duration::from_secs(30_000);
    s.handle_timeout(after);
    assert!(!actions(&mut s)
        .iter()
        .any(|a| matches!(a, Action::Persist(Change::Remove(_)))));
    assert_eq!(addresses(&ask(&mut s, after, bob())), [A]);
}

#[test]
fn a_live_owner_keeps_its_name_and_the_registrant_gets_act_err() {
    let mut s = server();
    register(&mut s, start(), 1, A, 0);
    let got = register(&mut s, start(), 2, B, 0);
    // WACK to the registrant, a unicast query to the owner, nothing stored.
    let (to, wack) = reply(&got);
    assert_eq!(to, client(B));
    assert_eq!(wack.flags.opcode(), Opcode::WACK);
    assert_eq!(wack.answers[0].ttl, 60);
    assert!(!got.iter().any(|a| matches!(a, Action::Persist(_))));
    let Some(Action::Challenge { to, packet }) =
        got.iter().find(|a| matches!(a, Action::Challenge { .. }))
    else {
        panic!("no challenge: {got:?}");
    };
    assert_eq!(*to, SocketAddrV4::new(A, 137));
    let challenge = Packet::parse(packet).unwrap();
    assert!(!challenge.flags.broadcast && !challenge.flags.response);
    assert_eq!(s.size(), (1, 1));
    // The owner answers: it still holds the name.
    let owner_answer = Packet::positive_query_response(
        challenge.trn_id,
        bob().into(),
        0,
        vec![NbEntry::new(false, NodeType::H, A)],
    );
    // An answer from somebody else is not the owner's.
    s.handle_datagram(
        start(),
        client(B),
        &owner_answer.to_bytes().unwrap(),
        &no_names(),
    );
    assert!(actions(&mut s).is_empty());
    s.handle_datagram(
        start(),
        SocketAddrV4::new(A, 137),
        &owner_answer.to_bytes().unwrap(),
        &no_names(),
    );
    let (to, refused) = reply(&actions(&mut s));
    assert_eq!(
        (to, refused.trn_id, refused.flags.to_word()),
        (client(B), 2, 0xAD86)
    );
    assert_eq!(addresses(&refused), [A], "the refusal names the owner");
    assert_eq!(addresses(&ask(&mut s, start(), bob())), [A]);
    let c = s.counters();
    assert_eq!((c.challenges, c.defended, c.refused), (1, 1, 1));
    assert_eq!(s.size(), (1, 0));
}

#[test]
fn a_silent_owner_loses_its_name_after_the_retries() {
    let mut s = server();
    register(&mut s, start(), 1, A, 0);
    let got = register(&mut s, start(), 2, B, 0);
    let mut challenges = got
        .iter()
        .filter(|a| matches!(a, Action::Challenge { .. }))
        .count();
    // A retransmission of the request gets its WACK again, no new challenge.
    let again = register(&mut s, start(), 2, B, 0);
    assert_eq!(reply(&again).1.flags.opcode(), Opcode::WACK);
    let mut now = start();
    let mut granted = None;
    for _ in 0..10 {
        let Some(next) = s.poll_timeout() else { break };
        now = next;
        s.handle_timeout(now);
        let got = actions(&mut s);
        challenges += got
            .iter()
            .filter(|a| matches!(a, Action::Challenge { .. }))
            .count();
        if let Some(i) = got.iter().position(|a| matches!(a, Action::Reply { .. })) {
            assert!(
                matches!(&got[i - 1], Action::Persist(Change::Put(r)) if r.members[0].address == B)
            );
            granted = Some(reply(&got).1);
            break;
        }
    }
    assert_eq!(challenges, 3);
    assert_eq!(now, start() + Duration::from_secs(6));
    let granted = granted.expect("the registrant got the name");
    assert_eq!((granted.trn_id, granted.flags.rcode()), (2, Rcode::OK));
    assert_eq!(addresses(&ask(&mut s, now, bob())), [B]);
}

#[test]
fn an_owner_that_no_longer_holds_the_name_loses_it_at_once() {
    let mut s = server();
    register(&mut s, start(), 1, A, 0);
    let got = register(&mut s, start(), 2, B, 0);
    let Some(Action::Challenge { packet, .. }) =
        got.iter().find(|a| matches!(a, Action::Challenge { .. }))
    else {
        panic!("no challenge");
    };
    let trn = Packet::parse(packet).unwrap().trn_id;
    let negative = Packet::negative_query_response(trn, bob().into());
    s.handle_datagram(
        start(),
        SocketAddrV4::new(A, 137),
        &negative.to_bytes().unwrap(),
        &no_names(),
    );
    let (to, p) = reply(&actions(&mut s));
    assert_eq!((to, p.flags.rcode()), (client(B), Rcode::OK));
    assert_eq!(addresses(&ask(&mut s, start(), bob())), [B]);
}

#[test]
fn groups_take_every_member_and_refuse_a_unique_claim() {
    let mut s = server();
    for (trn, address) in [(1, A), (2, B)] {
        s.handle_datagram(
            start(),
            client(address),
            &registration(trn, group_name(), true, address, 0),
            &no_names(),
        );
        assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::OK);
    }
    let q = ask(&mut s, start(), group_name());
    let mut members = addresses(&q);
    members.sort();
    assert_eq!(members, [A, B]);
    assert!(matches!(&q.answers[0].rdata, RData::Nb(e) if e.iter().all(NbEntry::is_group)));
    s.handle_datagram(
        start(),
        client(A),
        &registration(3, group_name(), false, A, 0),
        &no_names(),
    );
    assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::RFS_ERR);
    // A member's release leaves the others.
    let mut rel = Packet::release_request(4, group_name(), NbEntry::new(true, NodeType::H, A));
    rel.flags.broadcast = false;
    s.handle_datagram(start(), client(A), &rel.to_bytes().unwrap(), &no_names());
    assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::OK);
    assert_eq!(addresses(&ask(&mut s, start(), group_name())), [B]);
}

#[test]
fn a_release_from_the_owner_tombstones_the_name_and_others_are_refused() {
    let mut s = server();
    register(&mut s, start(), 1, A, 0);
    s.handle_datagram(start(), client(B), &release(2, bob(), A), &no_names());
    assert_eq!(reply(&actions(&mut s)).1.flags.to_word(), 0xB405);
    assert_eq!(addresses(&ask(&mut s, start(), bob())), [A]);
    s.handle_datagram(start(), client(A), &release(3, bob(), A), &no_names());
    let got = actions(&mut s);
    assert!(matches!(&got[0], Action::Persist(Change::Put(r)) if r.released));
    assert_eq!(reply(&got).1.flags.to_word(), 0xB400);
    assert_eq!(ask(&mut s, start(), bob()).flags.rcode(), Rcode::NAM_ERR);
    assert!(s.get(&bob()).is_some_and(|r| r.released));
    // Released twice, or never held: NAM_ERR.
    s.handle_datagram(start(), client(A), &release(4, bob(), A), &no_names());
    assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::NAM_ERR);
    // Anyone may take the released name, without a challenge.
    let got = register(&mut s, start(), 5, B, 0);
    assert_eq!(reply(&got).1.flags.rcode(), Rcode::OK);
    assert!(!got.iter().any(|a| matches!(a, Action::Challenge { .. })));
    // The tombstone lapses at its expiry and is forgotten.
    let mut s = server();
    register(&mut s, start(), 1, A, 21_600);
    s.handle_datagram(start(), client(A), &release(2, bob(), A), &no_names());
    actions(&mut s);
    let end = start() + Duration::from_secs(21_600);
    assert_eq!(s.poll_timeout(), Some(end));
    s.handle_timeout(end);
    assert_eq!(actions(&mut s), [Action::Persist(Change::Remove(bob()))]);
    assert_eq!(s.size(), (0, 0));
}

#[test]
fn names_lapse_at_their_ttl_and_lapsed_records_are_not_loaded() {
    let mut s = server();
    register(&mut s, start(), 1, A, 21_600);
    let end = start() + Duration::from_secs(21_600);
    assert_eq!(s.poll_timeout(), Some(end));
    // Lapsed but not yet swept: not answered.
    assert_eq!(ask(&mut s, end, bob()).flags.rcode(), Rcode::NAM_ERR);
    s.handle_timeout(end);
    assert_eq!(actions(&mut s), [Action::Persist(Change::Remove(bob()))]);

    let record = |name: NetbiosName, secs: u64| Record {
        name,
        group: false,
        nb_flags: 0x6000,
        members: vec![Member {
            address: A,
            expires: start() + Duration::from_secs(secs),
        }],
        released: false,
    };
    let loaded = vec![record(bob(), 100), record(group_name(), 0)];
    let mut s = WinsServer::new(WinsServerConfig::default(), loaded, start(), 1);
    assert_eq!(
        actions(&mut s),
        [Action::Persist(Change::Remove(group_name()))]
    );
    assert_eq!(addresses(&ask(&mut s, start(), bob())), [A]);
}

#[test]
fn the_table_and_each_address_are_bounded() {
    let config = WinsServerConfig {
        max_names: 5,
        max_per_address: 3,
        ..Default::default()
    };
    let mut s = WinsServer::new(config, Vec::new(), start(), 1);
    let name = |i: u16| NetbiosName::new(&format!("N{i}"), 0).unwrap();
    let mut granted = 0;
    for i in 0..10u16 {
        let address = if i < 4 {
            A
        } else {
            Ipv4Addr::new(192, 0, 2, 20 + i as u8)
        };
        s.handle_datagram(
            start(),
            client(address),
            &registration(i, name(i), false, address, 0),
            &no_names(),
        );
        if reply(&actions(&mut s)).1.flags.rcode() == Rcode::OK {
            granted += 1;
        }
    }
    // Three for A (its fourth refused), then two more fill the table.
    assert_eq!(granted, 5);
    assert_eq!(s.size().0, 5);
    assert_eq!(ask(&mut s, start(), name(3)).flags.rcode(), Rcode::NAM_ERR);
    // A holder refreshing is not turned away by the bound.
    s.handle_datagram(
        start(),
        client(A),
        &registration(20, name(0), false, A, 0),
        &no_names(),
    );
    assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::OK);
}

#[test]
fn the_server_hosts_own_names_and_the_fallback_are_answered() {
    let mut s = server();
    let own = [
        OwnedName {
            name: NetbiosName::new("WINSHOST", 3).unwrap(),
            group: false,
        },
        OwnedName {
            name: NetbiosName::new("WORKGROUP", 0).unwrap(),
            group: true,
        },
    ];
    let far = Ipv4Addr::new(198, 51, 100, 7);
    let fallback = |n: &NetbiosName| (n.trimmed() == b"FARAWAY").then(|| vec![far]);
    let cx = Context {
        own: Host {
            names: &own,
            address: SERVER,
            mac: [0; 6],
        },
        fallback: Some(&fallback),
    };
    s.handle_datagram(start(), client(B), &query(1, own[0].name), &cx);
    assert_eq!(addresses(&reply(&actions(&mut s)).1), [SERVER]);
    s.handle_datagram(
        start(),
        client(B),
        &registration(2, own[0].name, false, B, 0),
        &cx,
    );
    assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::ACT_ERR);
    // Others join the workgroup; the answer lists the server too.
    s.handle_datagram(
        start(),
        client(B),
        &registration(3, own[1].name, true, B, 0),
        &cx,
    );
    assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::OK);
    s.handle_datagram(start(), client(A), &query(4, own[1].name), &cx);
    assert_eq!(addresses(&reply(&actions(&mut s)).1), [SERVER, B]);
    let faraway = NetbiosName::new("FARAWAY", 3).unwrap();
    s.handle_datagram(start(), client(A), &query(5, faraway), &cx);
    assert_eq!(addresses(&reply(&actions(&mut s)).1), [far]);
    s.handle_datagram(start(), client(A), &query(6, bob()), &cx);
    assert_eq!(reply(&actions(&mut s)).1.flags.rcode(), Rcode::NAM_ERR);
}

#[test]
fn broadcasts_node_status_and_strays_are_not_the_servers() {
    let mut s = server();
    let mut bcast = Packet::registration_request(1, bob(), NbEntry::new(false, NodeType::B, A));
    bcast.flags = Flags::from_word(0x2910);
    s.handle_datagram(start(), client(A), &bcast.to_bytes().unwrap(), &no_names());
    s.handle_datagram(
        start(),
        client(A),
        &Packet::name_query(2, bob(), true).to_bytes().unwrap(),
        &no_names(),
    );
    let status = Packet::node_status_request(3, NetbiosName::WILDCARD, false);
    s.handle_datagram(start(), client(A), &status.to_bytes().unwrap(), &no_names());
    let stray = Packet::positive_query_response(
        4,
        bob().into(),
        0,
        vec![NbEntry::new(false, NodeType::H, A)],
    );
    s.handle_datagram(start(), client(A), &stray.to_bytes().unwrap(), &no_names());
    s.handle_datagram(start(), client(A), b"\x00\x01junk", &no_names());
    assert!(actions(&mut s).is_empty());
    assert_eq!(s.size(), (0, 0));
}

proptest! {
    #[test]
    fn arbitrary_requests_never_panic_and_stay_bounded(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        crate::fuzzing::wins_server(&data);
    }

    #[test]
    fn registrations_of_many_names_keep_the_bounds(names in proptest::collection::vec((any::<[u8; 4]>(), 0u8..3, any::<u8>()), 1..200)) {
        let config = WinsServerConfig { max_names: 50, max_per_address: 5, ..Default::default() };
        let mut s = WinsServer::new(config, Vec::new(), start(), 1);
        for (i, (name, kind, host)) in names.iter().enumerate() {
            let text: String = name.iter().map(|b| char::from(b'A' + b % 26)).collect();
            let name = NetbiosName::new(&text, 0).unwrap();
            let address = Ipv4Addr::new(192, 0, 2, *host);
            let bytes = match kind {
                0 => registration(i as u16, name, false, address, 0),
                1 => registration(i as u16, name, true, address, 0),
                _ => release(i as u16, name, address),
            };
            s.handle_datagram(start(), client(address), &bytes, &no_names());
            actions(&mut s);
        }
        prop_assert!(s.size().0 <= 50);
        for host in 0..=255u8 {
            let address = Ipv4Addr::new(192, 0, 2, host);
            let held = s.records.values().filter(|r| r.members.iter().any(|m| m.address == address)).count();
            prop_assert!(held <= 5);
            prop_assert_eq!(held, s.held.get(&address).copied().unwrap_or(0));
        }
    }
}

#[test]
fn on_the_simulated_lan_a_gone_owner_loses_its_name_and_a_live_one_keeps_it() {
    use crate::registration::NameState;
    use crate::sim::Lan;
    let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11], [192, 0, 2, 12]]).with_wins(SERVER);
    // Each host on its own as far as broadcasts go: only the server decides.
    lan.cut[1] = true;
    lan.cut[2] = true;
    lan.register(0, bob(), 1);
    lan.cut[1] = false;
    let state = |lan: &Lan, i: usize| lan.wins_clients[i].as_ref().unwrap().state(&bob());
    assert_eq!(state(&lan, 0), Some(NameState::Registered));
    // Host 1 asks while host 0 is up: host 0 answers the challenge.
    let now = lan.now;
    lan.wins_clients[1]
        .as_mut()
        .unwrap()
        .register(now, bob(), false, 2);
    lan.drive_until(now + Duration::from_secs(10));
    assert_eq!(state(&lan, 1), Some(NameState::Conflict { owner: A }));
    // Host 0 goes away without releasing; host 2 asks and gets the name once
    // the challenge goes unanswered.
    lan.cut[0] = true;
    lan.cut[2] = false;
    let now = lan.now;
    lan.wins_clients[2]
        .as_mut()
        .unwrap()
        .register(now, bob(), false, 3);
    lan.drive_until(now + Duration::from_secs(30));
    assert_eq!(state(&lan, 2), Some(NameState::Registered));
    let wins = lan.wins.as_ref().unwrap();
    let holders: Vec<Ipv4Addr> = wins
        .server
        .get(&bob())
        .unwrap()
        .live(lan.wall())
        .map(|m| m.address)
        .collect();
    assert_eq!(holders, [Ipv4Addr::new(192, 0, 2, 12)]);
    let c = wins.server.counters();
    assert_eq!((c.challenges, c.defended), (2, 1));
    assert!(wins.committed >= 2);
}

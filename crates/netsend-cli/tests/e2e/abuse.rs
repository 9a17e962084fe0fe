//! Abuse from outside: node status amplification from off-link (forged)
//! sources, MESSNGR floods from forged ever-new source addresses, receipts
//! from denied networks, and one local user's flood against another's sends.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netsend_wire::nbds::{flags, Datagram, Header, MessageType};
use netsend_wire::nbns::Packet;
use netsend_wire::smb::mailslot::{MailslotWrite, MessengerPayload};
use netsend_wire::NetbiosName;

use crate::harness::{
    have, is_root, lans_available, require, stderr, stdout, Lan, Service, TestUsers,
};

/// Runs `f` on a thread inside network namespace `ns`: the sockets it makes
/// are that host's.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let netns = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            netns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// Sends `count` node status requests for `*` from `from` (an address of
/// host `ns`) to `to`:137 and returns how many were answered within 2 s.
fn node_status_answers(lan: &Lan, ns: &str, from: Ipv4Addr, to: Ipv4Addr, count: u16) -> usize {
    in_netns(&lan.ns(ns), move || {
        let socket = UdpSocket::bind(SocketAddrV4::new(from, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        for trn in 0..count {
            let request = Packet::node_status_request(0x4000 + trn, NetbiosName::WILDCARD, false);
            socket
                .send_to(&request.to_bytes().unwrap(), SocketAddrV4::new(to, 137))
                .unwrap();
        }
        let (mut answers, deadline) = (0, Instant::now() + Duration::from_secs(2));
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if let Ok((len, _)) = socket.recv_from(&mut buf) {
                let reply = Packet::parse(&buf[..len]).unwrap();
                assert!(reply.flags.response, "{reply}");
                answers += 1;
            }
        }
        answers
    })
}

#[test]
fn node_status_is_answered_on_link_only_and_a_few_times_per_source() {
    if !lans_available() {
        return;
    }
    // a and its neighbours in 192.0.2.0/25; o behind the router, off-link.
    let lan = Lan::routed(
        "st",
        &[
            ("a", "192.0.2.10"),
            ("l", "192.0.2.20"),
            ("n", "192.0.2.30"),
        ],
        &[("o", "192.0.2.140")],
    );
    let a = Service::start_in(
        Some(&lan.ns("a")),
        "HOSTST",
        "192.0.2.10",
        139,
        137,
        "",
        "[limits]\nnode_status_per_minute = 1\nnode_status_burst = 4\n",
    );
    let target = Ipv4Addr::new(192, 0, 2, 10);
    // A neighbour's nmblookup -A and nbtscan still list our names.
    if have("nmblookup") {
        let conf = crate::samba::client_conf(a.dir.path(), "interfaces = eth0");
        let out = lan.exec("n", &["nmblookup", "-s", &conf, "-A", "192.0.2.10"], None);
        let listed = stdout(&out);
        assert!(listed.contains("HOSTST"), "{listed}{}", stderr(&out));
    }
    if have("nbtscan") {
        let out = lan.exec("n", &["nbtscan", "-v", "-s", ":", "192.0.2.10"], None);
        let listed = stdout(&out);
        assert!(listed.contains("HOSTST"), "{listed}{}", stderr(&out));
    }
    // The neighbour l is answered, at most its burst (4) of 12 times.
    let l = Ipv4Addr::new(192, 0, 2, 20);
    assert_eq!(node_status_answers(&lan, "l", l, target, 1), 1);
    assert_eq!(node_status_answers(&lan, "l", l, target, 12), 3);
    // A host that is not on our subnet (or anyone forging its address) gets
    // nothing: the 64-name answer would be ~25 times the request.
    let o = Ipv4Addr::new(192, 0, 2, 140);
    assert_eq!(node_status_answers(&lan, "o", o, target, 3), 0);
    // Name queries from there are still answered (they list one name).
    let query = in_netns(&lan.ns("o"), move || {
        let socket = UdpSocket::bind(SocketAddrV4::new(o, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let name = NetbiosName::new("HOSTST", 3).unwrap();
        let q = Packet::name_query(0x5000, name, false).to_bytes().unwrap();
        socket.send_to(&q, SocketAddrV4::new(target, 137)).unwrap();
        let mut buf = [0u8; 1500];
        socket.recv_from(&mut buf).map(|(n, _)| n).ok()
    });
    assert!(query.is_some(), "name query from off-link not answered");
    drop(a);
}

/// An IPv4/UDP packet from `from` to `to` on port 138 carrying `payload`,
/// for a raw socket (the kernel fills in the IP checksum).
fn forged_udp(from: Ipv4Addr, to: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + 8 + payload.len()).unwrap();
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&from.octets());
    p.extend_from_slice(&to.octets());
    p.extend_from_slice(&138u16.to_be_bytes());
    p.extend_from_slice(&138u16.to_be_bytes());
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A `\MAILSLOT\MESSNGR` broadcast to `workgroup` claiming `from` at `source`.
fn messenger_datagram(source: Ipv4Addr, from: &str, workgroup: &str, text: &str) -> Vec<u8> {
    let payload = MessengerPayload {
        from: from.as_bytes().to_vec(),
        to: workgroup.as_bytes().to_vec(),
        text: text.as_bytes().to_vec(),
    };
    Datagram::Data {
        header: Header {
            msg_type: MessageType::DIRECT_GROUP,
            flags: flags::FIRST | flags::NODE_H,
            id: 1,
            source_ip: source,
            source_port: 138,
        },
        packet_offset: 0,
        source_name: NetbiosName::new(from, 0).unwrap().into(),
        destination_name: NetbiosName::new(workgroup, 0).unwrap().into(),
        user_data: MailslotWrite::messenger(payload.to_bytes().unwrap())
            .to_bytes()
            .unwrap(),
    }
    .to_bytes()
    .unwrap()
}

/// Waits (bounded) until `svc`'s status shows `what`; returns the status.
fn wait_status(svc: &Service, what: &str) -> String {
    let mut status = String::new();
    for _ in 0..100 {
        status = stdout(&svc.cli(&["messenger", "status"]));
        if status.contains(what) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    status
}

#[test]
fn a_forged_datagram_flood_from_ever_new_sources_is_bounded() {
    if !lans_available() {
        return;
    }
    let lan = Lan::new("df", &[("a", "192.0.2.51"), ("b", "192.0.2.52")]);
    let a = Service::start_in(
        Some(&lan.ns("a")),
        "HOSTDF",
        "192.0.2.51",
        139,
        137,
        "",
        "[limits]\ndatagrams_per_minute = 1\ndatagram_burst = 5\n",
    );
    // From b, 40 broadcasts, each forged from another address and sender
    // name: no per-source or per-sender limit ever sees one twice.
    let target = Ipv4Addr::new(192, 0, 2, 51);
    in_netns(&lan.ns("b"), move || {
        let raw = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        raw.set_header_included_v4(true).unwrap();
        let to: socket2::SockAddr = SocketAddr::V4(SocketAddrV4::new(target, 0)).into();
        for i in 0..40u8 {
            let source = Ipv4Addr::new(192, 0, 2, 150 + i);
            let datagram = messenger_datagram(source, &format!("SPOOF{i}"), "TESTGROUP", "spam");
            raw.send_to(&forged_udp(source, target, &datagram), &to)
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let status = wait_status(&a, "datagram_rate 35");
    assert!(status.contains("datagram_rate 35"), "{status}");
    let inbox = a.inbox();
    assert_eq!(inbox.len(), 5, "{inbox:?}");
    assert!(inbox.iter().all(|m| m["broadcast"] == true));
}

#[test]
fn receipts_from_a_denied_network_are_dropped() {
    if !lans_available() {
        return;
    }
    let lan = Lan::new("rd", &[("a", "192.0.2.63"), ("b", "192.0.2.64")]);
    let a = Service::start_in(
        Some(&lan.ns("a")),
        "HOSTRDA",
        "192.0.2.63",
        139,
        137,
        "",
        "[filter]\ndeny_networks = [\"192.0.2.64\"]\n",
    );
    // b's browse announcements would be denied too: keep it silent, so the
    // one drop counted is the receipt's.
    let b = Service::start_in(
        Some(&lan.ns("b")),
        "HOSTRDB",
        "192.0.2.64",
        139,
        137,
        "",
        "[browse]\nannounce = false\n",
    );
    let out = a.cli(&["send", "HOSTRDB", "did you get this?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = crate::harness::receipt_id(&out);
    // b reads it, and its host sends the receipt from the denied address.
    let stored = b.wait_inbox(1);
    let read = b.cli(&[
        "inbox",
        "read",
        &stored[0]["id"].as_i64().unwrap().to_string(),
    ]);
    assert!(read.status.success(), "{}", stderr(&read));
    let counted = wait_status(&a, "denied_address 1");
    assert!(counted.contains("denied_address 1"), "{counted}");
    let status = stdout(&a.cli(&["status", &id]));
    assert!(status.contains("read not yet"), "{status}");
}

#[test]
fn one_local_users_flood_does_not_refuse_anothers_sends() {
    if !require(
        is_root() && have("useradd") && have("runuser"),
        "root, useradd and runuser (two real test accounts)",
    ) {
        return;
    }
    let tag = std::process::id() % 100_000;
    let (flooder, quiet) = (format!("nsf{tag}"), format!("nsq{tag}"));
    let _accounts = TestUsers::create(&[&flooder, &quiet], None);
    let mut svc = Service::start(
        "HOSTLU",
        "",
        "[limits]\nmessages_per_minute = 1\nmessage_burst = 5\n",
    );
    let outcomes: Vec<bool> = (0..8)
        .map(|i| {
            svc.cli_as(&flooder, &["send", "HOSTLU", &format!("flood {i}")])
                .status
                .success()
        })
        .collect();
    // The flooder gets its burst and then is refused ...
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 5, "{outcomes:?}");
    let refused = svc.cli_as(&flooder, &["send", "HOSTLU", "more"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("2282"), "{}", stderr(&refused));
    // ... while the other account, on the same host, still gets through.
    let out = svc.cli_as(&quiet, &["send", "HOSTLU", "hello from the quiet one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let inbox = svc.inbox();
    assert_eq!(inbox.len(), 6, "{inbox:?}");
    assert!(inbox.iter().any(|m| m["from"] == quiet.as_str()));
    // The drops were counted against the flooder's uid.
    let uid = nix::unistd::User::from_name(&flooder).unwrap().unwrap().uid;
    let log = svc.log_text();
    let drops: Vec<&str> = log.lines().filter(|l| l.contains("source_rate")).collect();
    assert!(!drops.is_empty(), "{log}");
    assert!(
        drops.iter().all(|l| l.contains(&format!("uid {uid}"))),
        "{log}"
    );
}

#[test]
fn sessions_held_from_this_hosts_address_do_not_block_local_users() {
    if !require(
        is_root() && have("useradd") && have("runuser"),
        "root, useradd and runuser (a real test account)",
    ) {
        return;
    }
    let user = format!("nsh{}", std::process::id() % 100_000);
    let _account = TestUsers::create(&[&user], None);
    let svc = Service::start("HOSTLH", "", "[limits]\nmax_connections_per_source = 1\n");
    // A program here (as smbclient -M would) holds 127.0.0.1's one session ...
    let held = std::net::TcpStream::connect(svc.session).unwrap();
    let mut second = std::net::TcpStream::connect(svc.session).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(std::io::Read::read(&mut second, &mut byte), Ok(0) | Err(_)),
        "a second session from 127.0.0.1 was not closed"
    );
    // ... and a user's `netsend send` to this host still gets its own.
    let out = svc.cli_as(&user, &["send", "HOSTLH", "through anyway"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(svc.inbox().len(), 1);
    drop(held);
}

//! The component in-process, with a real inbox and real UDP sockets on
//! loopback: an answer comes only after its change is committed, the table
//! is loaded again at start, and the site gateway's hooks work.

use std::net::Ipv4Addr;
use std::time::Duration;

use netsend_proto::responder::{Host, OwnedName};
use netsend_wire::nbns::{NbEntry, NodeType, Packet, Rcode};
use netsend_wire::NetbiosName;

use super::*;
use crate::store::Inbox;

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn interface() -> Interface {
    Interface {
        address: LOOPBACK,
        broadcast: None,
        netmask: Some(Ipv4Addr::new(255, 0, 0, 0)),
        mac: [0; 6],
    }
}

async fn server(inbox: &InboxHandle) -> (WinsServer, Arc<UdpSocket>) {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let config = wins_server::WinsServerConfig::default();
    let wins = WinsServer::load(config, inbox.clone(), vec![(socket.clone(), interface())])
        .await
        .unwrap();
    (wins, socket)
}

/// Hands `packet` to the server as from `client`, and waits (bounded) for
/// the answer.
async fn exchange(
    wins: &WinsServer,
    shutdown: &Shutdown,
    socket: &Arc<UdpSocket>,
    client: &UdpSocket,
    packet: &Packet,
) -> Packet {
    let own = [OwnedName {
        name: NetbiosName::new("WINSHOST", 3).unwrap(),
        group: false,
    }];
    let host = Host {
        names: &own,
        address: LOOPBACK,
        mac: [0; 6],
    };
    let SocketAddr::V4(src) = client.local_addr().unwrap() else {
        panic!("IPv4 client");
    };
    wins.handle_datagram(shutdown, socket, &host, src, &packet.to_bytes().unwrap());
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    Packet::parse(&buf[..n]).unwrap()
}

fn registration(name: NetbiosName) -> Packet {
    let mut p = Packet::registration_request(7, name, NbEntry::new(false, NodeType::H, LOOPBACK));
    p.flags.broadcast = false;
    p.additional[0].ttl = 3600;
    p
}

#[tokio::test]
async fn a_registration_is_answered_once_committed_and_loaded_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let bob = NetbiosName::new("BOB", 0x20).unwrap();
    let shutdown = Shutdown::new();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    {
        let inbox = Inbox::open(&path, 0).unwrap();
        let (wins, socket) = server(&inbox).await;
        let answer = exchange(&wins, &shutdown, &socket, &client, &registration(bob)).await;
        assert_eq!(answer.flags.rcode(), Rcode::OK);
        // Answered: so committed.
        let stored = inbox.wins_records().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, bob);
        let status = wins.status();
        assert_eq!((status.names, status.counts.granted), (1, 1));
        shutdown.finish().await;
        inbox.close().await;
    }
    let inbox = Inbox::open(&path, 0).unwrap();
    let (wins, socket) = server(&inbox).await;
    let query = Packet::name_query(8, bob, false);
    let answer = exchange(&wins, &shutdown, &socket, &client, &query).await;
    assert_eq!(answer.flags.rcode(), Rcode::OK);
    let names = wins.active_names();
    assert_eq!(names.len(), 1);
    assert_eq!((names[0].name, names[0].group), (bob, false));
    assert_eq!(names[0].addresses, [LOOPBACK]);
    assert!(names[0].expires > SystemTime::now() + Duration::from_secs(3000));
}

#[tokio::test]
async fn the_fallback_answers_what_the_table_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("inbox.db"), 0).unwrap();
    let (wins, socket) = server(&inbox).await;
    let shutdown = Shutdown::new();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let far = NetbiosName::new("FARHOST", 3).unwrap();
    let query = |trn| Packet::name_query(trn, far, false);
    let answer = exchange(&wins, &shutdown, &socket, &client, &query(1)).await;
    assert_eq!(answer.flags.rcode(), Rcode::NAM_ERR);
    let gateway = Ipv4Addr::new(198, 51, 100, 1);
    wins.set_fallback(Arc::new(move |n: &NetbiosName| {
        (n.trimmed() == b"FARHOST").then(|| vec![gateway])
    }));
    let answer = exchange(&wins, &shutdown, &socket, &client, &query(2)).await;
    assert_eq!(answer.flags.rcode(), Rcode::OK);
    assert!(matches!(
        &answer.answers[0].rdata,
        netsend_wire::nbns::RData::Nb(e) if e[0].address == gateway
    ));
    // The server host's own names come first, from its alias table.
    let own = Packet::name_query(3, NetbiosName::new("WINSHOST", 3).unwrap(), false);
    let answer = exchange(&wins, &shutdown, &socket, &client, &own).await;
    assert_eq!(answer.flags.rcode(), Rcode::OK);
    assert!(wins.active_names().is_empty());
    inbox.close().await;
}

//! In-process tests of the delivery channels, each with real components:
//! files in a temporary directory, `/bin/sh`, a pseudo-terminal, a real
//! SQLite inbox, UDP and TCP sockets on loopback with the real session
//! machine answering.

use std::io::{ErrorKind, Read as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsend_proto::message::Message;
use netsend_proto::receipt::{Receipt, ReceiptState};
use netsend_proto::sender::{ClientSession, SendOptions};
use netsend_proto::session::{Action, ServerSession, SessionConfig};
use netsend_wire::name::suffix;
use netsend_wire::nbns::NodeName;
use netsend_wire::status::NetApiStatus;
use netsend_wire::{nbss, CodePage, NetbiosName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::mpsc;

use super::forward::{Forward, ForwardError, SendPath, Sending};
use super::hooks::HookRunner;
use super::message_log::MessageLog;
use super::receipts::Receipts;
use super::terminals::Terminals;
use super::{Delivery, DeliveryChannel, Parts};
use crate::admission::slots::TaskSlots;
use crate::config::{Config, HookConfig, HookFormat};
use crate::naming::aliases::AliasTable;
use crate::outbound::send::{exchange, Deadline, SendFailure};
use crate::shutdown::Shutdown;
use crate::store::{Inbox, InboxHandle, NewMessage, StoredMessage, Transport};
use crate::system::host::Host;

/// 2023-11-14T22:13:20Z.
const RECEIVED_AT: i64 = 1_700_000_000_000;

/// A directed message received over a session from `192.0.2.20`.
fn message(id: i64, from: &str, to: &str, text: &str) -> StoredMessage {
    StoredMessage {
        id,
        received_at: RECEIVED_AT,
        from: from.into(),
        to: to.into(),
        recipient_user: None,
        source: "192.0.2.20:1139".into(),
        text: text.into(),
        transport: Transport::Session,
        broadcast: false,
        read: false,
        shown_at: None,
        read_at: None,
        verified_host: None,
        claimed_by: None,
    }
}

/// What `probe` finds, waiting up to ten seconds for it.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The file at `path` once it exists.
async fn file(path: &Path) -> String {
    let what = path.display().to_string();
    eventually(&what, || std::fs::read_to_string(path).ok()).await
}

/// A hook running `script` with `/bin/sh`.
fn sh_hook(alias: &str, script: &str) -> HookConfig {
    HookConfig {
        alias: alias.into(),
        exec: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        url: None,
        format: HookFormat::default(),
        timeout_secs: 10,
    }
}

/// A hook for every alias that creates `started-ID` in `dir`, waits for
/// the file `go` there, then appends its id to the file `ran`.
fn gated_hook(dir: &Path) -> HookConfig {
    let d = dir.display();
    let script = format!(
        "touch {d}/started-$NETSEND_ID; while [ ! -e {d}/go ]; do sleep 0.02; done; echo $NETSEND_ID >> {d}/ran"
    );
    sh_hook("*", &script)
}

/// The alias table of host `HOSTA` in `dir`, with the added alias `ALICE`.
fn alias_table(dir: &Path) -> Arc<Mutex<AliasTable>> {
    let mut table = AliasTable::load("HOSTA", dir, CodePage::Cp850).unwrap();
    table.add("ALICE", None, true).unwrap();
    Arc::new(Mutex::new(table))
}

/// A real inbox in `dir`.
fn inbox(dir: &Path) -> InboxHandle {
    Inbox::open(&dir.join("inbox.db"), 1 << 20).unwrap()
}

/// Stores a message from `peer` to the computer name; returns it as stored.
async fn stored(inbox: &InboxHandle, peer: SocketAddr, text: &str) -> StoredMessage {
    let id = inbox
        .store(NewMessage {
            from: "EVE".into(),
            to: "HOSTA".into(),
            recipient_user: None,
            source: peer.to_string(),
            text: text.into(),
            transport: Transport::Session,
            broadcast: false,
            verified_host: None,
            claimed_by: None,
        })
        .await
        .unwrap();
    // Read back: the row as a later reader sees it.
    inbox.get(id.id, None).await.unwrap().unwrap()
}

/// The next receipt on `socket`, if one comes within `wait`.
async fn next_receipt(socket: &UdpSocket, wait: Duration) -> Option<Receipt> {
    let mut buf = [0u8; 1500];
    let (len, _) = tokio::time::timeout(wait, socket.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(netsend_proto::receipt::from_datagram(&buf[..len]).expect("a receipt datagram"))
}

/// A receipt listener on loopback, and receipts that go to it.
async fn receipt_listener() -> (UdpSocket, Receipts) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let source = NetbiosName::new("HOSTA", suffix::WORKSTATION).unwrap();
    let receipts = Receipts::sending(Vec::new(), port, source, Shutdown::new());
    (socket, receipts)
}

#[tokio::test]
async fn the_message_log_gets_one_visible_line_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.log");
    let text = "hi\u{1b}[2J\nforged line\u{7}";
    let m = message(7, "EVE", "ALICE", text);
    // The stop waits for the write.
    let shutdown = Shutdown::new();
    let log = Arc::new(MessageLog::at(path.clone(), shutdown.clone()));
    assert!(log.wants(&m));
    log.deliver(Arc::new(m.clone()));
    shutdown.finish().await;
    let first = std::fs::read_to_string(&path).unwrap();
    assert_eq!(first.lines().count(), 1, "{first:?}");
    assert!(first.ends_with('\n'));
    assert!(
        !first.bytes().any(|b| b == 0x1b || b == 0x07),
        "raw control bytes in {first:?}"
    );
    let line: serde_json::Value = serde_json::from_str(first.trim_end()).unwrap();
    assert_eq!(line["time"], "2023-11-14T22:13:20.000Z");
    assert_eq!(line["id"], 7);
    assert_eq!(line["from"], "EVE");
    assert_eq!(line["to"], "ALICE");
    assert_eq!(line["source"], "192.0.2.20:1139");
    assert_eq!(
        line["transport"],
        serde_json::to_value(Transport::Session).unwrap()
    );
    assert_eq!(line["broadcast"], false);
    assert_eq!(line["text"], netsend_control::json::visible(text));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Appended, not rewritten.
    let shutdown = Shutdown::new();
    let log = Arc::new(MessageLog::at(path.clone(), shutdown.clone()));
    log.deliver(Arc::new(message(8, "EVE", "ALICE", "again")));
    shutdown.finish().await;
    let both = std::fs::read_to_string(&path).unwrap();
    assert!(both.starts_with(&first));
    assert_eq!(both.lines().count(), 2);
}

/// The message ids of a message log's lines, in file order.
fn log_ids(log: &str) -> Vec<i64> {
    log.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_message_log_keeps_the_delivery_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.log");
    let shutdown = Shutdown::new();
    let log = Arc::new(MessageLog::at(path.clone(), shutdown.clone()));
    for id in 1..=200 {
        Arc::clone(&log).deliver(Arc::new(message(id, "EVE", "ALICE", "in order")));
    }
    shutdown.finish().await;
    let ids = log_ids(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(ids, (1..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn exec_hooks_run_sh_with_the_message_in_env_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let env = dir.path().join("env");
    let script = format!(
        "printf '%s|%s|%s|%s|' \"$NETSEND_FROM\" \"$NETSEND_TO\" \"$NETSEND_ID\" \"$NETSEND_PEER\" > {o}.tmp; \
         cat >> {o}.tmp; env > {e}; mv {o}.tmp {o}",
        o = out.display(),
        e = env.display()
    );
    let hooks = [sh_hook("alice", &script)];
    let runner = Arc::new(HookRunner::with(
        &hooks,
        TaskSlots::new(2, 2, Shutdown::new()),
        || false,
    ));
    // A sender named like an option stays a value.
    let m = message(7, "-f/etc/shadow", "ALICE", "hello\nworld");
    assert!(runner.wants(&m));
    assert!(!runner.wants(&message(8, "EVE", "BOB", "not for the hook")));
    runner.deliver(Arc::new(m));
    assert_eq!(
        file(&out).await,
        "-f/etc/shadow|ALICE|7|192.0.2.20:1139|hello\nworld"
    );
    // The environment is PATH and the message's fields (and what sh adds).
    let names: Vec<String> = std::fs::read_to_string(&env)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    assert!(names.contains(&"PATH".to_owned()), "{names:?}");
    for name in &names {
        assert!(
            name == "PATH"
                || name.starts_with("NETSEND_")
                || ["PWD", "SHLVL", "_", "OLDPWD"].contains(&name.as_str()),
            "{name} leaked into the hook's environment"
        );
    }
}

#[tokio::test]
async fn exec_hooks_are_refused_when_the_service_runs_as_root() {
    let dir = tempfile::tempdir().unwrap();
    let (refused, ran) = (dir.path().join("refused"), dir.path().join("ran"));
    let hook = |path: &Path| [sh_hook("*", &format!("touch {}", path.display()))];
    let as_root = Arc::new(HookRunner::with(
        &hook(&refused),
        TaskSlots::new(1, 1, Shutdown::new()),
        || true,
    ));
    let as_user = Arc::new(HookRunner::with(
        &hook(&ran),
        TaskSlots::new(1, 1, Shutdown::new()),
        || false,
    ));
    let m = Arc::new(message(7, "EVE", "ALICE", "hello"));
    as_root.deliver(m.clone());
    as_user.deliver(m);
    file(&ran).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!refused.exists(), "an exec hook ran as root");
}

#[tokio::test]
async fn hooks_run_in_bounded_slots_and_the_overflow_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (go, ran) = (dir.path().join("go"), dir.path().join("ran"));
    // One running, one waiting: a third is dropped.
    let hooks = [gated_hook(dir.path())];
    let runner = Arc::new(HookRunner::with(
        &hooks,
        TaskSlots::new(1, 1, Shutdown::new()),
        || false,
    ));
    runner
        .clone()
        .deliver(Arc::new(message(1, "EVE", "ALICE", "one")));
    file(&dir.path().join("started-1")).await;
    runner
        .clone()
        .deliver(Arc::new(message(2, "EVE", "ALICE", "two")));
    runner
        .clone()
        .deliver(Arc::new(message(3, "EVE", "ALICE", "three")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !dir.path().join("started-2").exists(),
        "two hooks ran at once in one slot"
    );
    std::fs::write(&go, "").unwrap();
    eventually("both hooks", || {
        std::fs::read_to_string(&ran)
            .ok()
            .filter(|s| s.lines().count() == 2)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "1\n2\n");
}

#[tokio::test]
async fn a_stop_waits_for_running_hooks_and_starts_no_waiting_one() {
    let dir = tempfile::tempdir().unwrap();
    let (go, ran) = (dir.path().join("go"), dir.path().join("ran"));
    let shutdown = Shutdown::new();
    let hooks = [gated_hook(dir.path())];
    let slots = TaskSlots::new(1, 1, shutdown.clone());
    let runner = Arc::new(HookRunner::with(&hooks, slots, || false));
    runner
        .clone()
        .deliver(Arc::new(message(1, "EVE", "ALICE", "one")));
    file(&dir.path().join("started-1")).await;
    runner.deliver(Arc::new(message(2, "EVE", "ALICE", "two")));
    let stopped = tokio::spawn(async move { shutdown.finish().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopped.is_finished(), "the stop did not wait for the hook");
    std::fs::write(&go, "").unwrap();
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the stop ends once the hook has")
        .unwrap();
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "1\n");
    assert!(
        !dir.path().join("started-2").exists(),
        "a waiting hook started at the stop"
    );
}

/// A pseudo-terminal of the user running the test, listed in a utmp file.
struct LoggedIn {
    /// The master end, non-blocking.
    master: std::fs::File,
    /// The slave end, held open as a login shell would.
    _slave: std::os::fd::OwnedFd,
    /// The utmp file that lists it.
    utmp: std::path::PathBuf,
    /// Its device, `/dev/pts/N`.
    device: std::path::PathBuf,
}

/// A pseudo-terminal listed in a utmp file in `dir`, `mesg y`.
fn terminal_in_utmp(dir: &Path) -> LoggedIn {
    let pty = nix::pty::openpty(None, None).unwrap();
    let device = nix::unistd::ttyname(&pty.slave).unwrap();
    std::fs::set_permissions(&device, std::fs::Permissions::from_mode(0o620)).unwrap();
    let line = device
        .strip_prefix("/dev/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    // One glibc x86_64 utmp record (384 bytes) of a live user process.
    let mut record = vec![0u8; 384];
    record[0..2].copy_from_slice(&7i16.to_le_bytes());
    record[4..8].copy_from_slice(&std::process::id().to_le_bytes());
    record[8..8 + line.len()].copy_from_slice(line.as_bytes());
    record[44..44 + user.len()].copy_from_slice(user.as_bytes());
    let utmp = dir.join("utmp");
    std::fs::write(&utmp, record).unwrap();
    let flags = nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    LoggedIn {
        master: std::fs::File::from(pty.master),
        _slave: pty.slave,
        utmp,
        device,
    }
}

/// What the terminal's master end has to read now.
fn read_now(master: &mut std::fs::File) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match master.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
            Err(e) => panic!("reading the terminal: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_get_the_sanitised_text_and_the_sender_a_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let LoggedIn {
        mut master,
        _slave,
        utmp,
        device,
    } = terminal_in_utmp(dir.path());
    let inbox = inbox(dir.path());
    let (receipts_socket, receipts) = receipt_listener().await;
    let terminals = Arc::new(Terminals::new(
        utmp,
        "HOSTA".into(),
        inbox.clone(),
        receipts,
        Shutdown::new(),
    ));
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000));
    let m = stored(&inbox, peer, "\u{1b}]0;owned\u{7}hello there").await;
    let id = m.id;
    assert!(terminals.wants(&m));
    terminals.clone().deliver(Arc::new(m));
    let mut shown = Vec::new();
    eventually("the text on the terminal", || {
        shown.extend(read_now(&mut master));
        String::from_utf8_lossy(&shown)
            .contains("hello there")
            .then_some(())
    })
    .await;
    let shown = String::from_utf8_lossy(&shown).into_owned();
    assert!(shown.contains("Message from EVE to HOSTA"), "{shown:?}");
    // The banner's bell is the only control character besides line breaks.
    assert!(
        !shown.contains('\u{1b}') && shown.matches('\u{7}').count() == 1,
        "control characters reached the terminal: {shown:?}"
    );
    let receipt = next_receipt(&receipts_socket, Duration::from_secs(10))
        .await
        .expect("a receipt for the sender");
    assert_eq!(receipt.state, ReceiptState::Shown);
    assert_eq!(receipt.from, "EVE");
    assert_eq!(
        receipt.digest,
        netsend_proto::receipt::digest("\u{1b}]0;owned\u{7}hello there")
    );
    let marked = inbox.get(id, None).await.unwrap().unwrap();
    assert!(marked.shown_at.is_some(), "the terminal's user saw it");

    // With `mesg n` nothing is written, nothing marked, no receipt sent.
    std::fs::set_permissions(&device, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m = stored(&inbox, peer, "not now").await;
    let id = m.id;
    terminals.show(Arc::new(m), None).await;
    assert!(read_now(&mut master).is_empty(), "written despite mesg n");
    assert_eq!(inbox.get(id, None).await.unwrap().unwrap().shown_at, None);
    assert!(next_receipt(&receipts_socket, Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn receipts_go_only_to_the_sender_of_a_directed_session_message() {
    let (socket, receipts) = receipt_listener().await;
    let mut m = message(7, "EVE", "ALICE", "hello");
    m.source = "127.0.0.1:40000".into();
    let broadcast = StoredMessage {
        broadcast: true,
        ..m.clone()
    };
    let mailslot = StoredMessage {
        transport: Transport::Mailslot,
        ..m.clone()
    };
    receipts.send(&broadcast, ReceiptState::Read);
    receipts.send(&mailslot, ReceiptState::Read);
    receipts.send(&m, ReceiptState::Read);
    let receipt = next_receipt(&socket, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (receipt.state, receipt.from.as_str(), receipt.to.as_str()),
        (ReceiptState::Read, "EVE", "ALICE")
    );
    assert_eq!(receipt.digest, netsend_proto::receipt::digest("hello"));
    assert!(next_receipt(&socket, Duration::from_millis(300))
        .await
        .is_none());
    // Off in the configuration: none at all.
    let off = Config {
        display: crate::config::DisplayConfig {
            receipts: false,
            ..Default::default()
        },
        ..Config::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let off = Receipts::from_config(&off, &[], &alias_table(dir.path()), &Shutdown::new());
    off.send(&m, ReceiptState::Read);
    assert!(next_receipt(&socket, Duration::from_millis(300))
        .await
        .is_none());
}

/// The send path straight to an address, as `HOSTA`; names do not resolve
/// (the forwards here go to addresses).
struct ToAddress;

impl SendPath for ToAddress {
    fn resolve(&self, name: NetbiosName, _: Deadline) -> Sending<'_, SocketAddr> {
        Box::pin(async move { Err(SendFailure::NameNotFound(name.to_string())) })
    }

    fn send_to_address<'a>(
        &'a self,
        to: &'a str,
        address: SocketAddr,
        from: &'a str,
        text: &'a str,
        deadline: Deadline,
    ) -> Sending<'a, ()> {
        Box::pin(async move {
            let called = NetbiosName::new(to, suffix::MESSENGER)
                .map_err(|e| SendFailure::InvalidParameter(e.to_string()))?;
            let calling = NetbiosName::new("HOSTA", suffix::WORKSTATION).unwrap();
            let session =
                ClientSession::new(called, calling, from, to, text, SendOptions::default());
            let socket =
                TcpSocket::new_v4().map_err(|e| SendFailure::Network(address, e.to_string()))?;
            exchange(socket, address, session, deadline).await
        })
    }

    fn node_status(&self, ip: Ipv4Addr, _: Deadline) -> Sending<'_, Vec<NodeName>> {
        Box::pin(async move { Err(SendFailure::NameNotFound(ip.to_string())) })
    }
}

/// A session service on a real loopback listener that accepts messages to
/// `ALICE<03>`: each message the server session assembles is acknowledged
/// and passed on.
async fn session_listener() -> (SocketAddrV4, mpsc::UnboundedReceiver<Message>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let SocketAddr::V4(address) = listener.local_addr().unwrap() else {
        panic!("an IPv4 listener");
    };
    let (got, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let alice = NetbiosName::new("ALICE", suffix::MESSENGER).unwrap();
                let mut session = ServerSession::new(SessionConfig::new(CodePage::Cp850));
                let mut buf = Vec::new();
                loop {
                    let n = match nbss::check_frame(&buf, session.max_frame_len()) {
                        Ok(Some(n)) => n,
                        Ok(None) => {
                            let mut chunk = [0u8; 1024];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        }
                        Err(_) => return,
                    };
                    let frame: Vec<u8> = buf.drain(..n).collect();
                    let reply = match session
                        .handle_frame_at(Instant::now(), &frame, &|name| *name == alice)
                    {
                        Action::Send(bytes) => bytes,
                        Action::SendAndClose(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            return;
                        }
                        Action::Close => return,
                        Action::Nothing => continue,
                        Action::Deliver { message, ack, .. } => {
                            let _ = got.send(message);
                            ack
                        }
                    };
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, received)
}

/// A configuration whose session service port is `port`.
fn config_with_session_port(port: u16) -> Config {
    let mut config = Config {
        computer_name: "HOSTA".into(),
        ..Config::default()
    };
    config.network.session_port = port;
    config
}

/// The alias table of [`alias_table`], `ALICE` forwarded to 127.0.0.1.
fn forwarded_to_loopback(dir: &Path) -> Arc<Mutex<AliasTable>> {
    let aliases = alias_table(dir);
    let forward = Some("127.0.0.1".into());
    aliases
        .lock()
        .unwrap()
        .set_forward("ALICE", forward, None)
        .unwrap();
    aliases
}

/// The channels `config` turns on for this [`host`], with an inbox in
/// `dir`, forwards sent [`ToAddress`].
fn delivery(config: &Config, aliases: &Arc<Mutex<AliasTable>>, dir: &Path) -> Delivery {
    let path = Arc::new(ToAddress);
    Delivery::from_config(
        &Parts {
            config,
            host: &host(),
            aliases,
            inbox: &inbox(dir),
            shutdown: &Shutdown::new(),
            counter: crate::metrics::DeliveryCounter::default(),
        },
        path,
    )
}

/// This host: no interfaces, its session service at [`OWN_SESSION`].
fn host() -> Host {
    Host {
        interfaces: Vec::new(),
        session_addresses: vec![OWN_SESSION],
        name_addresses: Vec::new(),
        remote_addresses: Vec::new(),
        remote_key: None,
    }
}

/// What this host's session service is, for the forwards here.
const OWN_SESSION: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1));

#[tokio::test]
async fn forwards_reach_a_real_session_service_once_and_never_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, mut received) = session_listener().await;
    let aliases = forwarded_to_loopback(dir.path());
    let config = config_with_session_port(listener.port());
    let forward = Arc::new(Forward::new(
        &config,
        &[],
        &[OWN_SESSION],
        aliases,
        Arc::new(ToAddress),
        Shutdown::new(),
    ));
    assert!(!forward.wants(&message(1, "EVE", "BOB", "not forwarded")));
    // A copy forwarded to us already stays here; a new message goes on.
    let copy = netsend_proto::forward::forwarded_text("HOSTB", "from far away");
    let already = message(1, "EVE", "ALICE", &copy);
    assert!(forward.wants(&already));
    forward.clone().deliver(Arc::new(already));
    forward
        .clone()
        .deliver(Arc::new(message(2, "EVE", "ALICE", "hello\nthere")));
    let got = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the forwarded copy")
        .unwrap();
    assert_eq!(got.from, "EVE");
    assert_eq!(got.to, "ALICE");
    assert_eq!(got.text, "(forwarded by HOSTA)\nhello\nthere");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        received.try_recv().is_err(),
        "a forwarded copy went on again"
    );
}

#[test]
fn forwards_to_this_host_or_of_others_aliases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let aliases = alias_table(dir.path());
    let config = config_with_session_port(139);
    let interface = crate::system::net::Interface {
        address: Ipv4Addr::new(192, 0, 2, 10),
        broadcast: None,
        netmask: None,
        mac: [0; 6],
    };
    let forward = Forward::new(
        &config,
        &[interface],
        &[OWN_SESSION],
        aliases.clone(),
        Arc::new(ToAddress),
        Shutdown::new(),
    );
    let refused = |e: ForwardError| (e.status(), e.to_string());
    for own in ["127.0.0.1", "192.0.2.10", "hosta", "Alice"] {
        let e = forward.set("ALICE", Some(own.into()), None).expect_err(own);
        assert_eq!(e.status(), NetApiStatus::ERROR_INVALID_PARAMETER, "{own}");
    }
    assert_eq!(
        refused(
            forward
                .set("ALICE", Some("A.B".repeat(9)), None)
                .unwrap_err()
        )
        .0,
        NetApiStatus::ERROR_INVALID_PARAMETER
    );
    assert_eq!(
        refused(
            forward
                .set("NOSUCH", Some("HOSTB".into()), None)
                .unwrap_err()
        ),
        (
            NetApiStatus::NERR_NOT_LOCAL_NAME,
            "cannot forward \"NOSUCH\"".into()
        )
    );
    assert_eq!(
        refused(forward.set("ALICE", None, Some("mallory")).unwrap_err()),
        (
            NetApiStatus::ERROR_ACCESS_DENIED,
            "cannot cancel the forward of \"ALICE\"".into()
        )
    );
    forward.set("alice", Some("HOSTB".into()), None).unwrap();
    assert_eq!(aliases.lock().unwrap().forward_of("ALICE"), Some("HOSTB"));
    assert!(forward.wants(&message(1, "EVE", "ALICE", "hello")));
}

/// An HTTP server on loopback that answers 200 to every request and
/// passes on each request's body.
async fn http_listener() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (got, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break body.to_owned();
                    }
                };
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = got.send(body);
            });
        }
    });
    (address, received)
}

/// A channel that wants the messages to one alias and keeps the ids it is
/// given.
struct Recorder {
    alias: &'static str,
    given: Mutex<Vec<i64>>,
}

impl DeliveryChannel for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn wants(&self, message: &StoredMessage) -> bool {
        message.to == self.alias
    }

    fn deliver(self: Arc<Self>, message: Arc<StoredMessage>) {
        self.given.lock().unwrap().push(message.id);
    }
}

#[tokio::test]
async fn delivery_runs_only_the_channels_that_want_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let (session, mut forwarded) = session_listener().await;
    let (http, mut posted) = http_listener().await;
    let log = dir.path().join("messages.log");
    let mut config = config_with_session_port(session.port());
    config.display.terminals = false;
    config.log.messages = true;
    config.log.messages_path = Some(log.clone());
    config.hooks = vec![HookConfig {
        alias: "ALICE".into(),
        exec: None,
        url: Some(format!("http://{http}/netsend")),
        format: HookFormat::Ntfy,
        timeout_secs: 10,
    }];
    let aliases = forwarded_to_loopback(dir.path());
    let delivery = delivery(&config, &aliases, dir.path());
    assert!(delivery.terminals().is_none(), "terminals are off");
    let recorder = Arc::new(Recorder {
        alias: "BOB",
        given: Mutex::default(),
    });
    delivery.register(recorder.clone());
    delivery.deliver(message(1, "EVE", "BOB", "for bob"));
    delivery.deliver(message(2, "EVE", "ALICE", "for alice"));
    assert_eq!(*recorder.given.lock().unwrap(), [1]);
    let body = tokio::time::timeout(Duration::from_secs(10), posted.recv())
        .await
        .expect("the hook's POST")
        .unwrap();
    assert_eq!(body, "for alice");
    let copy = tokio::time::timeout(Duration::from_secs(10), forwarded.recv())
        .await
        .expect("the forwarded copy")
        .unwrap();
    assert_eq!(copy.text, "(forwarded by HOSTA)\nfor alice");
    let lines = eventually("both log lines", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.lines().count() == 2)
    })
    .await;
    let ids = log_ids(&lines);
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&1) && ids.contains(&2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(posted.try_recv().is_err(), "the hook ran for BOB");
    assert!(forwarded.try_recv().is_err(), "BOB's message was forwarded");
}

/// A reload rebuilds the channels: a message stored after it goes to the
/// channels the new configuration turns on, and not to those it turns off.
#[tokio::test]
async fn a_reload_puts_the_new_channels_in_force_for_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("messages.log");
    let mut config = config_with_session_port(1);
    config.display.terminals = false;
    let aliases = forwarded_to_loopback(dir.path());
    let delivery = delivery(&config, &aliases, dir.path());
    delivery.deliver(message(1, "EVE", "BOB", "before"));
    config.log.messages = true;
    config.log.messages_path = Some(log.clone());
    let (host, inbox, shutdown) = (host(), inbox(dir.path()), Shutdown::new());
    let parts = Parts {
        config: &config,
        host: &host,
        aliases: &aliases,
        inbox: &inbox,
        shutdown: &shutdown,
        counter: crate::metrics::DeliveryCounter::default(),
    };
    delivery.reconfigure(&parts);
    delivery.deliver(message(2, "EVE", "BOB", "after"));
    let lines = eventually("the log line", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.lines().count() == 1)
    })
    .await;
    let logged: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert_eq!(logged["id"], 2, "{lines}");
    let mut off = config.clone();
    off.log.messages = false;
    delivery.reconfigure(&Parts {
        config: &off,
        counter: crate::metrics::DeliveryCounter::default(),
        ..parts
    });
    delivery.deliver(message(3, "EVE", "BOB", "off again"));
    shutdown.finish().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
}

/// The send path of a LAN where every name is at the sender's host
/// (`192.0.2.20:139`, as [`message`] says): what goes there is delivered to
/// a real session listener on loopback instead.
struct AtSource {
    listener: SocketAddr,
}

impl SendPath for AtSource {
    fn resolve(&self, _: NetbiosName, _: Deadline) -> Sending<'_, SocketAddr> {
        Box::pin(async { Ok(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 20), 139))) })
    }

    fn send_to_address<'a>(
        &'a self,
        to: &'a str,
        address: SocketAddr,
        from: &'a str,
        text: &'a str,
        deadline: Deadline,
    ) -> Sending<'a, ()> {
        assert_eq!(
            address,
            SocketAddr::from((Ipv4Addr::new(192, 0, 2, 20), 139))
        );
        ToAddress.send_to_address(to, self.listener, from, text, deadline)
    }

    fn node_status(&self, ip: Ipv4Addr, _: Deadline) -> Sending<'_, Vec<NodeName>> {
        Box::pin(async move { Err(SendFailure::NameNotFound(ip.to_string())) })
    }
}

/// While bob is away, ALICE's first message gets one marked automatic
/// answer at her host, from bob, recorded in his sent archive; her second
/// within the hour, a broadcast and an automatic answer get none.
#[tokio::test]
async fn an_away_user_answers_each_sender_once_and_never_an_automatic_answer() {
    use super::away::{Away, AwayBook};
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("inbox.db"), 0).unwrap();
    let (listener, mut received) = session_listener().await;
    let book = Arc::new(AwayBook::default());
    let away = Arc::new(Away::new(
        &Config::default(),
        &[],
        &[OWN_SESSION],
        book.clone(),
        Arc::new(AtSource {
            listener: SocketAddr::V4(listener),
        }),
        inbox.clone(),
        Shutdown::new(),
    ));
    let for_bob = |id, text: &str, broadcast| StoredMessage {
        recipient_user: Some("bob".into()),
        broadcast,
        ..message(id, "ALICE", "BOB", text)
    };
    assert!(!away.wants(&for_bob(1, "hi", false)), "bob is not away yet");
    book.set(
        "bob",
        Some(crate::store::AwayState {
            user: "bob".into(),
            text: "back on Monday".into(),
            since: 0,
        }),
    );
    assert!(away.wants(&for_bob(1, "hi", false)));
    assert!(!away.wants(&message(1, "ALICE", "HOSTA", "to the computer")));
    for m in [
        for_bob(1, "hi", true),
        for_bob(2, &netsend_proto::away::automatic_text("away too"), false),
        for_bob(3, "hi", false),
        for_bob(4, "are you there?", false),
    ] {
        away.clone().deliver(Arc::new(m));
    }
    let got = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the automatic answer")
        .unwrap();
    assert_eq!(got.from, "bob");
    assert_eq!(got.to, "ALICE");
    assert_eq!(got.text, "(automatic answer)\nback on Monday");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received.try_recv().is_err(), "a second automatic answer");
    let filter = crate::store::SentFilter {
        limit: 10,
        ..Default::default()
    };
    let mut archived = Vec::new();
    for _ in 0..100 {
        archived = inbox.sent_list(&filter, false).await.unwrap().0;
        if !archived.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert_eq!(archived[0].owner, "bob");
    assert_eq!(
        archived[0].kind,
        netsend_control::types::SentKind::Automatic
    );
    assert_eq!(archived[0].outcome, "delivered");
}

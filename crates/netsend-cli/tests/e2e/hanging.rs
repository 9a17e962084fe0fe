//! Recipients that never finish: a real listener that answers the session
//! request and then only sends session keep-alives (`85 00 00 00`). Each
//! outbound delivery has one deadline (`[limits] send_timeout_secs`) that
//! keep-alives do not extend, such a peer holds one slot of the outgoing
//! queue, not the queue, and forwards to it run in bounded slots. Senders
//! that never finish: a multi-block message left unfinished is discarded at
//! its deadline (`[limits] assembly_timeout_secs`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{netsend_bin, stderr, stdout, Service};
use crate::local::{nbss, read_frame, session_request, smb};

/// A messenger that accepts every connection, answers the session request
/// with a positive response, and then sends a keep-alive every 500 ms and
/// nothing else, until the sender hangs up (or two minutes pass).
struct KeepAliveOnly {
    address: SocketAddr,
    keep_alives: Arc<AtomicUsize>,
    open: Arc<Open>,
    stop: Arc<AtomicBool>,
}

/// Connections a [`KeepAliveOnly`] holds now, and the most it held at once.
#[derive(Default)]
struct Open {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl KeepAliveOnly {
    fn bind(address: &str) -> Self {
        let listener = TcpListener::bind(address).unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let keep_alives = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(Open::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (count, held, halt) = (keep_alives.clone(), open.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (count, held, halt) = (count.clone(), held.clone(), halt.clone());
                        let now = held.now.fetch_add(1, Ordering::SeqCst) + 1;
                        held.most.fetch_max(now, Ordering::SeqCst);
                        std::thread::spawn(move || {
                            stall(stream, &count, &halt);
                            held.now.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self {
            address,
            keep_alives,
            open,
            stop,
        }
    }

    fn keep_alives(&self) -> usize {
        self.keep_alives.load(Ordering::Relaxed)
    }

    fn most_open(&self) -> usize {
        self.open.most.load(Ordering::SeqCst)
    }
}

impl Drop for KeepAliveOnly {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn stall(mut stream: TcpStream, count: &AtomicUsize, stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    // The session request (whatever its length), then a positive response.
    if !matches!(stream.read(&mut buf), Ok(n) if n > 0)
        || stream.write_all(&[0x82, 0, 0, 0]).is_err()
    {
        return;
    }
    for _ in 0..240 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return, // the sender hung up
            Ok(_) => {}      // requests are read and never answered
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        if stream.write_all(&[0x85, 0, 0, 0]).is_err() {
            return;
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `netsend --config CONFIG args...`, killed if it is still running
/// after `limit`; returns its output and how long it took.
fn run_bounded(svc: &Service, args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(netsend_bin())
        .arg("--config")
        .arg(&svc.config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "netsend {args:?} still running after {limit:?}\nstderr: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    (child.wait_with_output().unwrap(), took)
}

fn static_name(name: &str, address: impl std::fmt::Display) -> String {
    format!("[[static_names]]\nname = \"{name}\"\naddress = \"{address}\"\n")
}

#[test]
fn a_peer_that_only_sends_keep_alives_fails_the_send_at_the_deadline() {
    let hung = KeepAliveOnly::bind("127.0.0.1:0");
    let svc = Service::start(
        "HANGSEND",
        "",
        &format!(
            "{}[limits]\nsend_timeout_secs = 3\n",
            static_name("HUNG", hung.address)
        ),
    );
    // Keep-alives every 500 ms would reset a per-reply timeout forever.
    let (out, took) = run_bounded(
        &svc,
        &["send", "HUNG", "are you there?"],
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("NERR_NetworkError (2136)"), "{err}");
    assert!(err.contains("send_timeout_secs"), "{err}");
    eprintln!(
        "send to a keep-alive-only peer failed after {took:?} ({} keep-alives)",
        hung.keep_alives()
    );
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        hung.keep_alives() >= 2,
        "the peer sent {} keep-alives",
        hung.keep_alives()
    );
}

#[test]
fn a_hanging_recipient_holds_one_queue_slot_not_the_queue() {
    // Nothing listens on these yet: each message is queued at once.
    let (hung_one, hung_two, later) = (free_port(), free_port(), free_port());
    let sender = Service::start(
        "QHANG",
        "",
        &format!(
            "{}{}{}[limits]\nsend_timeout_secs = 60\n[queue]\nretry_secs = 1\nmax_retry_secs = 1\n",
            static_name("HUNGONE", format!("127.0.0.1:{hung_one}")),
            static_name("HUNGTWO", format!("127.0.0.1:{hung_two}")),
            static_name("LATER", format!("127.0.0.1:{later}")),
        ),
    );
    for (to, text) in [
        ("HUNGONE", "one"),
        ("HUNGTWO", "two"),
        ("LATER", "for later"),
    ] {
        let out = sender.cli(&["send", "--queue", to, text]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("queued as"), "{}", stdout(&out));
    }
    // Now the first two recipients hang and the third is a real messenger.
    let _hung = [
        KeepAliveOnly::bind(&format!("127.0.0.1:{hung_one}")),
        KeepAliveOnly::bind(&format!("127.0.0.1:{hung_two}")),
    ];
    let receiver = Service::start_in(None, "LATER", "127.0.0.1", later, 0, "", "");
    // Sequential retries would wait out both hung attempts (2 × 60 s) first.
    let started = Instant::now();
    let mut shown = String::new();
    while started.elapsed() < Duration::from_secs(30) {
        shown = stdout(&sender.cli(&["queue"]));
        if shown.contains("delivered at") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(shown.contains("delivered at"), "{shown}");
    eprintln!(
        "queued message delivered {:?} after its recipient came up",
        started.elapsed()
    );
    let inbox = receiver.wait_inbox(1);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["text"], "for later");
    // The hung ones are still waiting, not lost.
    for to in ["HUNGONE", "HUNGTWO"] {
        let line = shown.lines().find(|l| l.contains(to)).unwrap_or_default();
        assert!(line.contains("[queued, "), "{to}: {shown}");
    }
}

#[test]
fn users_copies_to_a_hanging_machine_end_at_the_deadline() {
    // A remote login from 127.0.0.3: its copy goes to 127.0.0.3 at our
    // session port, where a peer only sends keep-alives.
    let port = free_port();
    let _hung = KeepAliveOnly::bind(&format!("127.0.0.3:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let utmp = dir.path().join("utmp");
    let me = std::process::id();
    let records = [
        crate::local::utmp_record(me, "pts/4", "nshang", "127.0.0.3"),
        crate::local::utmp_record(me, "pts/5", "nsgone", "127.0.0.4"),
    ]
    .concat();
    std::fs::write(&utmp, records).unwrap();
    let svc = Service::start_in(
        None,
        "HOSTHANG",
        "127.0.0.1",
        port,
        0,
        &format!("utmp_path = \"{}\"", utmp.display()),
        "[limits]\nsend_timeout_secs = 3\n",
    );
    let (out, took) = run_bounded(
        &svc,
        &["send", "/USERS", "going down"],
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let hung_line = err
        .lines()
        .find(|l| l.contains("nshang"))
        .unwrap_or_default();
    assert!(
        hung_line.contains("(2136)") && err.contains("send_timeout_secs"),
        "{err}"
    );
    assert!(err.contains("nsgone"), "{err}");
    eprintln!("/USERS with a hanging machine took {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn forwards_to_a_hanging_host_hold_a_bounded_number_of_connections() {
    let hung = KeepAliveOnly::bind("127.0.0.1:0");
    let svc = Service::start(
        "FWDHANG",
        "",
        &format!(
            "{}[limits]\nsend_timeout_secs = 60\nmessages_per_minute = 0\nsender_messages_per_minute = 0\n",
            static_name("FARAWAY", hung.address)
        ),
    );
    for args in [
        &["name", "ONWARD", "/add"][..],
        &["name", "ONWARD", "/forward:FARAWAY"],
    ] {
        let out = svc.cli(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // Each stored message starts a forward to a host that never finishes.
    for i in 0..80 {
        let out = svc.cli(&["send", "ONWARD", &format!("flood {i}")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(svc.wait_inbox(80).len(), 80);
    let started = Instant::now();
    while hung.most_open() < 32 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Give any forward beyond the bound time to show up.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        hung.most_open(),
        32,
        "connections to the hanging host at once"
    );
}

#[test]
fn a_multi_block_message_left_unfinished_is_discarded_at_its_deadline() {
    let mut svc = Service::start(
        "HANGRECV",
        "",
        "[limits]\nassembly_timeout_secs = 2\nsession_idle_timeout_secs = 60\n",
    );
    let mut s = TcpStream::connect(svc.session).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&session_request("HANGRECV", "MALLORY"))
        .unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head, [0x82, 0, 0, 0]);
    // A start block and one text block, each acknowledged, then silence.
    s.write_all(&nbss(&smb(0xD5, &[], b"\x04mallory\x00\x04HANGRECV\x00")))
        .unwrap();
    assert_eq!(read_frame(&mut s).unwrap()[5], 0);
    let started = Instant::now();
    let mut block = vec![1u8, 7, 0];
    block.extend_from_slice(b"partial");
    s.write_all(&nbss(&smb(0xD7, &[1, 0], &block))).unwrap();
    assert_eq!(read_frame(&mut s).unwrap()[5], 0);
    // No further frame comes, yet the service discards the message at its
    // deadline, long before the idle timeout would close the session.
    let discarded = loop {
        if svc
            .log_text()
            .contains("unfinished multi-block message discarded")
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not discarded:\n{}",
            svc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("unfinished message discarded after {discarded:?}");
    assert!(discarded >= Duration::from_millis(1800), "{discarded:?}");
    assert!(discarded < Duration::from_secs(10), "{discarded:?}");
    // The session is still open: a late end block finds no message
    // (ERRDOS/87, as smbd answers), and nothing was stored.
    s.write_all(&nbss(&smb(0xD6, &[1, 0], &[]))).unwrap();
    let reply = read_frame(&mut s).unwrap();
    assert_eq!(
        (reply[5], u16::from_le_bytes([reply[7], reply[8]])),
        (0x01, 87)
    );
    assert!(svc.inbox().is_empty(), "{:?}", svc.inbox());
}
